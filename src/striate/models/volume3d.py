"""A small 3-D CNN for volumes (CT/MRI patches, voxel grids) and clips (frames × height × width)."""
from striate import nn
from striate.models.registry import register_model
from striate.models.weights import load_weights
from striate.nn.modules._validate import positive_int


class CNN3d(nn.Module):
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
        super().__init__()
        positive_int(in_channels, "in_channels", "CNN3d")
        positive_int(num_classes, "num_classes", "CNN3d")
        positive_int(width, "width", "CNN3d")
        self.in_channels, self.num_classes, self.width = in_channels, num_classes, width
        self.features = nn.Sequential(
            nn.Conv3d(in_channels, width, kernel_size=3, padding=1, bias=False),    # (N, w, D, H, W)
            nn.BatchNorm3d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool3d(2),                                                          # (N, w, D/2, H/2, W/2)
            nn.Conv3d(width, 2 * width, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm3d(2 * width),
            nn.ReLU(inplace=True),
            nn.MaxPool3d(2),                                                          # (N, 2w, D/4, H/4, W/4)
            nn.Conv3d(2 * width, 4 * width, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm3d(4 * width),
            nn.ReLU(inplace=True),
        )
        self.avgpool = nn.AdaptiveAvgPool3d(1)                                        # (N, 4w, 1, 1, 1)
        self.fc = nn.Linear(4 * width, num_classes)

    def forward(self, input):
        return self.fc(self.avgpool(self.features(input)).flatten(1))    # (N, 4w)

    def extra_repr(self):
        return f"in_channels={self.in_channels}, num_classes={self.num_classes}, width={self.width}"


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


__all__ = ["CNN3d", "cnn3d"]
