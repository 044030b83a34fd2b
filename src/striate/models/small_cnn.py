"""Small CNNs for 1-D signals and 3-D volumes: one N-d network, two shapes of kernel.

``CNN1d`` (time series, audio frames, sensor traces, ECG beats) and ``CNN3d`` (CT/MRI patches,
voxel grids, clips of frames × height × width) are the same three-stage network with the
1-D or 3-D layers; only their kernels and default widths differ.
"""
from striate import nn
from striate.models.registry import register_model
from striate.models.weights import load_weights
from striate.nn.modules._validate import positive_int

_LAYERS = {1: (nn.Conv1d, nn.BatchNorm1d, nn.MaxPool1d, nn.AdaptiveAvgPool1d),
           3: (nn.Conv3d, nn.BatchNorm3d, nn.MaxPool3d, nn.AdaptiveAvgPool3d)}


class _SmallCNN(nn.Module):
    """Three conv → batch norm → ReLU stages of ``width``, 2·``width``, 4·``width`` filters, 2× max
    pooling between them, global average pooling, then a Linear layer."""

    def __init__(self, dims, kernels, in_channels, num_classes, width):
        super().__init__()
        name = type(self).__name__
        positive_int(in_channels, "in_channels", name)
        positive_int(num_classes, "num_classes", name)
        positive_int(width, "width", name)
        self.in_channels, self.num_classes, self.width = in_channels, num_classes, width
        conv, norm, pool, global_pool = _LAYERS[dims]
        layers, channels = [], in_channels
        for stage, (k, filters) in enumerate(zip(kernels, (width, 2 * width, 4 * width))):
            if stage:
                layers.append(pool(2))                                    # halve every spatial side
            layers += [conv(channels, filters, kernel_size=k, padding=k // 2, bias=False),  # sides kept
                       norm(filters), nn.ReLU(inplace=True)]
            channels = filters
        self.features = nn.Sequential(*layers)                            # (N, 4w, *D/4)
        self.avgpool = global_pool(1)                                     # (N, 4w, 1, ...)
        self.fc = nn.Linear(4 * width, num_classes)

    def forward(self, input):
        return self.fc(self.avgpool(self.features(input)).flatten(1))    # (N, 4w)

    def extra_repr(self):
        return f"in_channels={self.in_channels}, num_classes={self.num_classes}, width={self.width}"


class CNN1d(_SmallCNN):
    """Three Conv1d → BatchNorm1d → ReLU stages, max pooling between them, global average pool, then a Linear layer.

    The kernels shrink as the maps do (7, 5, 3 taps on the full, ½ and ¼ length); an output of
    the last stage sees 7 + 1 + 2·4 + 2·1 + 4·2 = 26 input samples. Global average pooling makes
    the classifier independent of the signal's length, so one model takes signals of any
    length ≥ 4. Filters 32-64-128 by default (``width`` scales them).

    Args:
        in_channels: channels of the signal (1 for a single trace, 3 for a 3-axis accelerometer, ...).
        num_classes: number of outputs (logits).
        width: filters of the first stage; the next two have 2× and 4× that.

    Shape:
        Input ``(N, in_channels, L)`` with L ≥ 4, output ``(N, num_classes)``.

    Example::

        >>> model = CNN1d(in_channels=1, num_classes=2)
        >>> model(st.randn(8, 1, 128)).shape
        (8, 2)
    """

    def __init__(self, in_channels=1, num_classes=10, width=32):
        super().__init__(1, (7, 5, 3), in_channels, num_classes, width)


class CNN3d(_SmallCNN):
    """Three Conv3d 3×3×3 → BatchNorm3d → ReLU stages, 2×2×2 max pooling between them, global average pool, Linear.

    A 3-D kernel sees depth (or time) as it sees height and width, so a shape is recognised
    wherever it sits in the volume and a motion wherever it happens in the clip. Global
    average pooling makes the classifier independent of the volume's size (each side ≥ 4).
    Filters 16-32-64 by default (``width`` scales them).

    Args:
        in_channels: channels per voxel (1 for a scalar volume, 3 for RGB clips).
        num_classes: number of outputs (logits).
        width: filters of the first stage; the next two have 2× and 4× that.

    Shape:
        Input ``(N, in_channels, D, H, W)`` with each side ≥ 4, output ``(N, num_classes)``.

    Example::

        >>> model = CNN3d(in_channels=1, num_classes=2)
        >>> model(st.randn(2, 1, 16, 16, 16)).shape
        (2, 2)
    """

    def __init__(self, in_channels=1, num_classes=10, width=16):
        super().__init__(3, (3, 3, 3), in_channels, num_classes, width)


@register_model(description="small 1-D CNN for signals (N, C, L): 3 conv stages 32-64-128, global pooling",
                input_size=(1, 256))
def cnn1d(in_channels=1, num_classes=10, width=32, weights=None):
    """A small 1-D CNN for signals (see ``CNN1d``); 36,778 parameters for 1 channel and 10 classes.

    Args:
        in_channels, num_classes, width: as ``CNN1d``.
        weights: ``None``, or the path of a ``.safetensors`` state dict (see ``striate.models.weights``).

    Example::

        >>> model = st.models.cnn1d(in_channels=1, num_classes=2)
        >>> model(st.randn(4, 1, 256)).shape
        (4, 2)
    """
    return load_weights(CNN1d(in_channels, num_classes, width), weights, "cnn1d")


@register_model(description="small 3-D CNN for volumes/clips (N, C, D, H, W): 3 conv stages 16-32-64",
                input_size=(1, 8, 16, 16))
def cnn3d(in_channels=1, num_classes=10, width=16, weights=None):
    """A small 3-D CNN for volumes and clips (see ``CNN3d``); 70,426 parameters for 1 channel and 10 classes.

    Args:
        in_channels, num_classes, width: as ``CNN3d``.
        weights: ``None``, or the path of a ``.safetensors`` state dict (see ``striate.models.weights``).

    Example::

        >>> model = st.models.cnn3d(in_channels=1, num_classes=2)
        >>> model(st.randn(2, 1, 8, 16, 16)).shape
        (2, 2)
    """
    return load_weights(CNN3d(in_channels, num_classes, width), weights, "cnn3d")


__all__ = ["CNN1d", "cnn1d", "CNN3d", "cnn3d"]
