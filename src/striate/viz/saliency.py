"""Saliency: the gradient of one class's score with respect to the input pixels (Simonyan et al., 2014).

Where the gradient is large, changing the pixel changes the score most: the pixels the model's
decision is most sensitive to. The score is the class's logit (before the softmax), as in the
paper; the model runs in evaluation mode, and its parameters' gradients are left untouched.

    grad = saliency_map(model, x, target=7)     # (C, H, W), the same shape as the input
    plot_saliency(model, x, path="saliency.png")
"""
import numpy

from striate.autograd.grad_mode import enable_grad
from striate.autograd.tensor import Tensor
from striate.viz._common import eval_mode, finish, image_of, model_input, new_figure, one_sample


def class_scores(model, input):
    """The model's logits ``(K,)`` for one input, in evaluation mode (float64 copy)."""
    from striate.autograd.grad_mode import no_grad
    x = model_input(model, input, "class_scores")
    with eval_mode(model), no_grad():
        return numpy.asarray(model(Tensor._from_array(x)).data[0], dtype=numpy.float64)


def saliency_map(model, input, target=None):
    """``∂ score[target] / ∂ input`` for one input: the gradient of a class's logit with respect to each pixel.

    Args:
        model: an ``nn.Module`` returning ``(1, K)`` logits.
        input: one model-ready sample ``(C, *D)`` or ``(1, C, *D)`` (array or Tensor, float32 or float64).
        target: the class whose score is differentiated; default the predicted (highest-scoring) class.

    Returns:
        An ndarray ``(C, *D)`` (no batch dimension) in the model's dtype.

    Example::

        >>> grad = saliency_map(model, x)           # x (1, 28, 28)
        >>> grad.shape
        (1, 28, 28)
    """
    x = model_input(model, input, "saliency_map").copy()
    leaf = Tensor._from_array(x, requires_grad=True)
    params = [(p, p.requires_grad) for p in model.parameters()]
    try:
        for p, _ in params:
            p.requires_grad_(False)        # only the input's gradient is wanted; the model's .grad stay as they were
        with eval_mode(model), enable_grad():
            logits = model(leaf)
            if logits.ndim != 2 or logits.shape[0] != 1:
                raise ValueError(f"saliency_map: expected the model to return (1, K) scores, got shape {logits.shape}")
            classes = logits.shape[1]
            if target is None:
                target = int(numpy.argmax(logits.data[0]))
            if isinstance(target, bool) or not isinstance(target, (int, numpy.integer)) or not 0 <= target < classes:
                raise IndexError(f"saliency_map: target must be a class index in 0…{classes - 1}, got {target!r}")
            logits[0, int(target)].backward()
    finally:
        for p, required in params:
            p.requires_grad_(required)
    return leaf.grad.data[0]


def plot_saliency(model, input, target=None, *, classes=None, path=None, cmap="hot"):
    """Draw the input, the saliency ``max_c |∂ score / ∂ x_c|`` and the two overlaid.

    Args:
        model: an ``nn.Module`` on 2-D images.
        input: one model-ready sample ``(C, H, W)`` or ``(1, C, H, W)``.
        target: the class to explain; default the predicted one.
        classes: class names for the title.
        path: save the figure there as PNG when given.
        cmap: colour map of the saliency.

    Returns:
        The matplotlib ``Figure``.
    """
    x = one_sample(input, 2, "plot_saliency")
    scores = class_scores(model, x)
    if target is None:
        target = int(numpy.argmax(scores))
    grad = saliency_map(model, x, target)
    heat = numpy.abs(grad).max(axis=0)                                     # strongest over the colour channels
    probabilities = numpy.exp(scores - scores.max())
    probabilities /= probabilities.sum()
    name = str(classes[target]) if classes is not None else str(target)
    figure = new_figure(9, 3.4, "plot_saliency")
    axes = figure.subplots(1, 3)
    image, gray = image_of(x)
    axes[0].imshow(image, cmap=gray, interpolation="nearest")
    axes[0].set_title("input", fontsize=9)
    picture = axes[1].imshow(heat, cmap=cmap, interpolation="nearest")
    figure.colorbar(picture, ax=axes[1], shrink=0.8)
    axes[1].set_title(f"|∂ score('{name}') / ∂ pixel|", fontsize=9)
    axes[2].imshow(image, cmap=gray, interpolation="nearest")
    axes[2].imshow(heat, cmap=cmap, alpha=0.55, interpolation="nearest")
    axes[2].set_title(f"overlay; P('{name}') = {probabilities[target]:.1%}", fontsize=9)
    for axis in axes:
        axis.set_xticks([])
        axis.set_yticks([])
    return finish(figure, path)


__all__ = ["saliency_map", "class_scores", "plot_saliency"]
