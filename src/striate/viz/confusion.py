"""The confusion matrix of an evaluation: which classes the model mistakes for which.

Rows are the true class, columns the predicted one (``striate.tools.train.evaluate``'s
``confusion_matrix``). Cells are coloured by the fraction of the row (the recall of the true
class on the diagonal), so a rare class's mistakes show as clearly as a common one's, and
each cell is labelled with its count.

    result = evaluate(model, test_loader)
    plot_confusion(result, classes, path="confusion.png")
"""
import numpy

from striate.viz._common import finish, new_figure


def _matrix(matrix_or_evaluation, op):
    matrix = getattr(matrix_or_evaluation, "confusion_matrix", matrix_or_evaluation)
    matrix = numpy.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.size == 0:
        raise ValueError(f"{op}: expected a square (K, K) confusion matrix, got shape {matrix.shape}")
    if matrix.dtype.kind not in "iuf" or (matrix < 0).any():
        raise ValueError(f"{op}: expected non-negative counts, got dtype {matrix.dtype}")
    return matrix


def confusion_rates(matrix_or_evaluation):
    """Each row of the confusion matrix divided by its total: ``rates[t, p]`` = P(predicted p | true t).

    A class with no example gets a row of NaN.

    Example::

        >>> confusion_rates([[3, 1], [0, 0]])
        array([[0.75, 0.25],
               [ nan,  nan]])
    """
    matrix = _matrix(matrix_or_evaluation, "confusion_rates").astype(numpy.float64)
    totals = matrix.sum(axis=1, keepdims=True)
    with numpy.errstate(invalid="ignore", divide="ignore"):
        return numpy.where(totals > 0, matrix / numpy.maximum(totals, 1), numpy.nan)


def plot_confusion(matrix_or_evaluation, classes=None, *, path=None, title=None, cmap="Blues"):
    """Draw the confusion matrix: colour = fraction of the true class's row, label = count.

    Args:
        matrix_or_evaluation: a ``(K, K)`` count matrix (rows true, columns predicted) or an
            ``Evaluation`` from ``striate.tools.train.evaluate``.
        classes: the ``K`` class names (default ``0 … K−1``).
        path: save the figure there as PNG when given.
        title: the figure's title (default: the accuracy and the number of images).
        cmap: the colour map.

    Returns:
        The matplotlib ``Figure``.
    """
    matrix = _matrix(matrix_or_evaluation, "plot_confusion")
    k = len(matrix)
    classes = [str(i) for i in range(k)] if classes is None else [str(c) for c in classes]
    if len(classes) != k:
        raise ValueError(f"plot_confusion: {k} classes in the matrix but {len(classes)} names given")
    rates = confusion_rates(matrix)
    side = min(12.0, 2.0 + 0.55 * k)
    figure = new_figure(side + 1.2, side, "plot_confusion")
    axis = figure.subplots()
    picture = axis.imshow(rates, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    figure.colorbar(picture, ax=axis, shrink=0.8, label="fraction of the true class")
    if k <= 30:
        size = 8 if k <= 12 else 6
        for t in range(k):
            for p in range(k):
                count = matrix[t, p]
                if count:
                    dark = rates[t, p] > 0.55
                    axis.text(p, t, f"{count:g}", ha="center", va="center", fontsize=size,
                              color="white" if dark else "black")
        axis.set_xticks(range(k), classes, rotation=90 if max(map(len, classes)) > 3 else 0)
        axis.set_yticks(range(k), classes)
    axis.set_xlabel("predicted class")
    axis.set_ylabel("true class")
    total = matrix.sum()
    if title is None and total:
        title = f"accuracy {numpy.trace(matrix) / total:.2%} on {total:g} images"
    if title:
        axis.set_title(title, fontsize=10)
    return finish(figure, path)


__all__ = ["confusion_rates", "plot_confusion"]
