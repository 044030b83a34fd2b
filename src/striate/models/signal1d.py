"""A small 1-D CNN for signals: time series, audio frames, sensor traces, ECG beats."""
from striate import nn
from striate.models.registry import register_model
from striate.models.weights import load_weights
from striate.nn.modules._validate import positive_int


class CNN1d(nn.Module):
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
        super().__init__()
        positive_int(in_channels, "in_channels", "CNN1d")
        positive_int(num_classes, "num_classes", "CNN1d")
        positive_int(width, "width", "CNN1d")
        self.in_channels, self.num_classes, self.width = in_channels, num_classes, width
        self.features = nn.Sequential(
            nn.Conv1d(in_channels, width, kernel_size=7, padding=3, bias=False),   # (N, w, L)
            nn.BatchNorm1d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool1d(2),                                                          # (N, w, L/2)
            nn.Conv1d(width, 2 * width, kernel_size=5, padding=2, bias=False),
            nn.BatchNorm1d(2 * width),
            nn.ReLU(inplace=True),
            nn.MaxPool1d(2),                                                          # (N, 2w, L/4)
            nn.Conv1d(2 * width, 4 * width, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm1d(4 * width),
            nn.ReLU(inplace=True),
        )
        self.avgpool = nn.AdaptiveAvgPool1d(1)                                        # (N, 4w, 1)
        self.fc = nn.Linear(4 * width, num_classes)

    def forward(self, input):
        return self.fc(self.avgpool(self.features(input)).flatten(1))    # (N, 4w)

    def extra_repr(self):
        return f"in_channels={self.in_channels}, num_classes={self.num_classes}, width={self.width}"


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


__all__ = ["CNN1d", "cnn1d"]
