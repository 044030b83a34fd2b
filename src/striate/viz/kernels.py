"""Hand-made kernels beside learned ones: what Sobel, Laplacian, ... do to an image, and what the first layer learned.

Before CNNs, features were designed: a Sobel kernel answers "is there a vertical edge here?",
a Laplacian "is there a blob or a line?". A network's first convolution learns its own
kernels from the data. This picture sets the two side by side on the same input: each
hand-made kernel (``striate.signal.kernels``) and its response, computed with
``striate.signal.correlate`` (correlation, what a convolution layer does), then each learned
filter of the first convolution and its response (the layer's own output, before any
activation).

    plot_kernels(model, x, path="kernels.png")
"""
import numpy

from striate.viz._common import finish, image_of, model_input, new_figure, one_sample, scale

DEFAULT_KERNELS = ("sobel_x", "sobel_y", "laplacian", "gaussian", "sharpen")


def kernel_responses(image, names=DEFAULT_KERNELS):
    """Each named hand-made kernel and its response on ``image``: ``[(name, kernel, response)]``.

    Args:
        image: a 2-D array ``(H, W)``.
        names: keys of ``striate.signal.kernels.PRESETS``.

    Returns:
        ``(name, kernel (k, k) float64, response (H, W) float64)`` per name, where ``response``
        is ``correlate(image, kernel, mode="same")``.
    """
    from striate.signal import correlate, kernels
    image = numpy.asarray(image, dtype=numpy.float64)
    if image.ndim != 2:
        raise ValueError(f"kernel_responses: expected a 2-D image (H, W), got shape {image.shape}")
    unknown = [name for name in names if name not in kernels.PRESETS]
    if unknown:
        raise ValueError(f"kernel_responses: unknown kernel {unknown[0]!r}; choose from "
                         + ", ".join(kernels.PRESETS))
    return [(name, kernels.PRESETS[name](), correlate(image, kernels.PRESETS[name](), mode="same")) for name in names]


def learned_responses(model, input):
    """The first convolution of ``model`` and its output on one input: ``(name, weight (O, C, kh, kw), (O, H, W))``.

    The response is the layer's own output (``Σ x·w + b``, before any activation).
    """
    from striate.viz.features import feature_maps
    from striate.viz.filters import find_conv
    name, module = find_conv(model, None, "learned_responses")
    maps = feature_maps(model, model_input(model, input, "learned_responses"), after_activation=False)
    fmap = next(m for m in maps if m.module is module)
    return name, module.weight.data.copy(), fmap.values


def plot_kernels(model, input, names=DEFAULT_KERNELS, *, path=None, max_filters=8, cmap="RdBu_r"):
    """Draw hand-made kernels and their responses above the first layer's learned filters and theirs.

    Args:
        model: an ``nn.Module`` on 2-D images with a convolution.
        input: one model-ready sample ``(C, H, W)`` or ``(1, C, H, W)``; the hand-made kernels
            run on its channel mean scaled to [0, 1].
        names: the hand-made kernels (keys of ``striate.signal.kernels.PRESETS``).
        path: save the figure there as PNG when given.
        max_filters: learned filters to show (the first ones).
        cmap: the diverging colour map of kernels and responses (each tile symmetric about 0).

    Returns:
        The matplotlib ``Figure``.
    """
    x = one_sample(input, 2, "plot_kernels")
    image = scale(x[0].mean(axis=0))     # in [0, 1]: the zero padding of "same" then matches a dark background
    designed = kernel_responses(image, names)
    layer, weight, responses = learned_responses(model, x)
    learned = [(f"{layer.rsplit('.', 1)[-1]}[{i}]", weight[i].mean(axis=0) if weight.shape[1] != 1 else weight[i, 0],
                responses[i]) for i in range(min(max_filters, len(weight)))]
    columns = 1 + max(len(designed), len(learned))
    figure = new_figure(1.6 * columns, 7.0, "plot_kernels")
    axes = figure.subplots(4, columns, squeeze=False)
    picture, gray = image_of(x)
    for row in range(4):
        for axis in axes[row]:
            axis.set_xticks([])
            axis.set_yticks([])
            axis.set_axis_off()
    axes[0][0].imshow(picture, cmap=gray, interpolation="nearest")
    axes[0][0].set_title("input", fontsize=8)
    axes[0][0].set_axis_on()
    axes[2][0].text(0.5, 0.5, "learned\n(first layer)", ha="center", va="center", fontsize=9,
                    transform=axes[2][0].transAxes)
    axes[1][0].text(0.5, 0.5, "hand-made\nresponses", ha="center", va="center", fontsize=9,
                    transform=axes[1][0].transAxes)
    axes[3][0].text(0.5, 0.5, "learned\nresponses", ha="center", va="center", fontsize=9,
                    transform=axes[3][0].transAxes)
    for top, rows in ((0, designed), (2, learned)):
        for column, (name, kernel, response) in enumerate(rows, start=1):
            for axis, values in ((axes[top][column], kernel), (axes[top + 1][column], response)):
                peak = float(numpy.abs(values).max()) or 1.0
                axis.imshow(values, cmap=cmap, vmin=-peak, vmax=peak, interpolation="nearest")
                axis.set_axis_on()
            axes[top][column].set_title(name, fontsize=8)
    return finish(figure, path)


__all__ = ["DEFAULT_KERNELS", "kernel_responses", "learned_responses", "plot_kernels"]
