"""VGG (Simonyan and Zisserman, 2014), configurations A, B, D, E with and without batch norm, as torchvision builds them."""
from striate import nn
from striate.models.registry import register_model
from striate.models.weights import load_weights
from striate.nn import init
from striate.nn.modules._validate import positive_int, probability

# Output channels of each 3×3 convolution (padding 1, so the size is kept), "M" a 2×2 max pool
# that halves it. The paper's columns A (11 weight layers), B (13), D (16) and E (19).
CONFIGS = {
    "vgg11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg13": (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    "vgg19": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"),
}


def make_layers(config, batch_norm=False, in_channels=3):
    """The ``features`` Sequential for ``config``: conv 3×3 (pad 1) [→ BatchNorm2d] → ReLU, or a 2×2 max pool for "M".

    The Sequential's indices are torchvision's (each conv, batch norm, ReLU and pool takes one),
    so state-dict keys such as ``features.28.weight`` agree.
    """
    layers = []
    for value in config:
        if value == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        layers.append(nn.Conv2d(in_channels, value, kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(value))
        layers.append(nn.ReLU(inplace=True))
        in_channels = value
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """A stack of 3×3 convolutions and 2×2 max pools, then three FC layers (torchvision's layout and initialisation).

    Module names and parameter layouts are torchvision's (``features``, ``avgpool``,
    ``classifier``), so its state dicts load unchanged. Initialisation is torchvision's:
    convolutions He-normal with ``mode="fan_out"`` (std = √(2 / (out·3·3))) and zero bias,
    batch norm weight 1 and bias 0, FC weights N(0, 0.01²) and zero bias.

    Parameters (3 input channels, 1000 classes): vgg11 132,863,336, vgg13 133,047,848,
    vgg16 138,357,544, vgg19 143,667,240; the ``_bn`` variants add 2 per conv channel
    (vgg11_bn 132,868,840, vgg13_bn 133,053,736, vgg16_bn 138,365,992, vgg19_bn 143,678,248).
    Of VGG-16's, 123,642,856 (89%) are in the three FC layers: the first alone is
    4096·(512·7·7) + 4096 = 102,764,544.

    Args:
        features: the convolutional part (see ``make_layers``), ending with 512 channels.
        num_classes: number of outputs (logits). Default 1000 (ImageNet).
        dropout: dropout probability after the first two FC layers. Default 0.5.
        init_weights: apply torchvision's initialisation (above). Default True.

    Shape:
        Input ``(N, C, H, W)`` with H, W ≥ 32 (224 for ImageNet: five pools halve it to 7;
        adaptive average pooling makes the FC input 512·7·7 for any size), output ``(N, num_classes)``.

    Example::

        >>> model = VGG(make_layers(CONFIGS["vgg11"]), num_classes=10)
        >>> model(st.randn(1, 3, 32, 32)).shape
        (1, 10)
    """

    def __init__(self, features, num_classes=1000, init_weights=True, dropout=0.5):
        super().__init__()
        if not isinstance(features, nn.Module):
            raise TypeError(f"VGG: features must be an nn.Module, got {type(features).__name__}")
        positive_int(num_classes, "num_classes", "VGG")
        dropout = probability(dropout, "dropout", "VGG")
        self.num_classes = num_classes
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )
        if init_weights:
            for module in self.modules():
                if isinstance(module, nn.Conv2d):
                    init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                    if module.bias is not None:
                        init.zeros_(module.bias)
                elif isinstance(module, nn.BatchNorm2d):
                    init.ones_(module.weight)
                    init.zeros_(module.bias)
                elif isinstance(module, nn.Linear):
                    init.normal_(module.weight, 0, 0.01)
                    init.zeros_(module.bias)

    def forward(self, input):
        x = self.avgpool(self.features(input))
        return self.classifier(x.flatten(1))    # (N, 512·7·7)

    def extra_repr(self):
        return f"num_classes={self.num_classes}"


def _vgg(name, batch_norm, num_classes, in_channels, dropout, weights):
    positive_int(in_channels, "in_channels", name)
    model = VGG(make_layers(CONFIGS[name[:5]], batch_norm, in_channels), num_classes=num_classes, dropout=dropout)
    return load_weights(model, weights, name)


_ARGS = """
    Args:
        num_classes: number of outputs (logits). Default 1000 (ImageNet).
        in_channels: channels of the input image (3 for RGB, 1 for grayscale). Default 3.
        dropout: dropout probability in the classifier. Default 0.5.
        weights: ``None``, or the path of a ``.safetensors`` state dict, e.g. exported from
            torchvision with ``safetensors.torch.save_file(model.state_dict(), "vgg16.safetensors")``
            (see ``striate.models.weights``).
"""


@register_model(description="VGG-11 (configuration A): 132,863,336 parameters; inputs at least 32x32",
                input_size=(3, 224, 224))
def vgg11(num_classes=1000, in_channels=3, dropout=0.5, weights=None):
    return _vgg("vgg11", False, num_classes, in_channels, dropout, weights)


@register_model(description="VGG-11 with batch norm: 132,868,840 parameters; inputs at least 32x32",
                input_size=(3, 224, 224))
def vgg11_bn(num_classes=1000, in_channels=3, dropout=0.5, weights=None):
    return _vgg("vgg11_bn", True, num_classes, in_channels, dropout, weights)


@register_model(description="VGG-13 (configuration B): 133,047,848 parameters; inputs at least 32x32",
                input_size=(3, 224, 224))
def vgg13(num_classes=1000, in_channels=3, dropout=0.5, weights=None):
    return _vgg("vgg13", False, num_classes, in_channels, dropout, weights)


@register_model(description="VGG-13 with batch norm: 133,053,736 parameters; inputs at least 32x32",
                input_size=(3, 224, 224))
def vgg13_bn(num_classes=1000, in_channels=3, dropout=0.5, weights=None):
    return _vgg("vgg13_bn", True, num_classes, in_channels, dropout, weights)


@register_model(description="VGG-16 (configuration D): 138,357,544 parameters; inputs at least 32x32",
                input_size=(3, 224, 224))
def vgg16(num_classes=1000, in_channels=3, dropout=0.5, weights=None):
    return _vgg("vgg16", False, num_classes, in_channels, dropout, weights)


@register_model(description="VGG-16 with batch norm: 138,365,992 parameters; inputs at least 32x32",
                input_size=(3, 224, 224))
def vgg16_bn(num_classes=1000, in_channels=3, dropout=0.5, weights=None):
    return _vgg("vgg16_bn", True, num_classes, in_channels, dropout, weights)


@register_model(description="VGG-19 (configuration E): 143,667,240 parameters; inputs at least 32x32",
                input_size=(3, 224, 224))
def vgg19(num_classes=1000, in_channels=3, dropout=0.5, weights=None):
    return _vgg("vgg19", False, num_classes, in_channels, dropout, weights)


@register_model(description="VGG-19 with batch norm: 143,678,248 parameters; inputs at least 32x32",
                input_size=(3, 224, 224))
def vgg19_bn(num_classes=1000, in_channels=3, dropout=0.5, weights=None):
    return _vgg("vgg19_bn", True, num_classes, in_channels, dropout, weights)


for _builder in (vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn):
    _layers = _builder.__name__[3:5]
    _bn = " with batch norm after every convolution" if _builder.__name__.endswith("_bn") else ""
    _builder.__doc__ = (f"VGG-{_layers}{_bn} (see ``VGG``), optionally loading PyTorch weights saved as "
                        f"safetensors.\n{_ARGS}")
del _builder, _layers, _bn


__all__ = ["VGG", "make_layers", "CONFIGS", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn",
           "vgg19", "vgg19_bn"]
