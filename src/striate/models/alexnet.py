"""AlexNet (Krizhevsky, Sutskever and Hinton, 2012), as torchvision builds it: 61,100,840 parameters."""
from striate import nn
from striate.models.registry import register_model
from striate.models.weights import load_weights
from striate.nn.modules._validate import positive_int, probability


class AlexNet(nn.Module):
    """AlexNet in torchvision's single-tower form (the "one weird trick" variant): five convolutions, three FC layers.

    Module names, order and parameter layouts are torchvision's (``features``, ``avgpool``,
    ``classifier``; Sequential indices included), so its state dict loads unchanged. The
    convolutions have 64-192-384-256-256 filters (the 2012 paper's two GPU towers had
    96-256-384-384-256, split in halves); there is no local response normalisation.
    Initialisation is PyTorch's default for each layer, as in torchvision.

    ============  ==================================  ============
    layer         arithmetic                          parameters
    ============  ==================================  ============
    features.0    64·(3·11·11) + 64                         23,296
    features.3    192·(64·5·5) + 192                       307,392
    features.6    384·(192·3·3) + 384                      663,936
    features.8    256·(384·3·3) + 256                      884,992
    features.10   256·(256·3·3) + 256                      590,080
    classifier.1  4096·(256·6·6) + 4096                 37,752,832
    classifier.4  4096·4096 + 4096                      16,781,312
    classifier.6  1000·4096 + 1000                       4,097,000
    total                                               61,100,840
    ============  ==================================  ============

    Args:
        num_classes: number of outputs (logits). Default 1000 (ImageNet).
        in_channels: channels of the input image (3 for RGB, 1 for grayscale). Default 3.
        dropout: dropout probability before the first two FC layers. Default 0.5.

    Shape:
        Input ``(N, in_channels, H, W)`` with H, W ≥ 63 (224 for ImageNet; adaptive average
        pooling makes the FC input 256·6·6 for any size), output ``(N, num_classes)``.

    Example::

        >>> model = AlexNet(num_classes=10)
        >>> model(st.randn(2, 3, 64, 64)).shape
        (2, 10)
    """

    def __init__(self, num_classes=1000, in_channels=3, dropout=0.5):
        super().__init__()
        positive_int(num_classes, "num_classes", "AlexNet")
        positive_int(in_channels, "in_channels", "AlexNet")
        dropout = probability(dropout, "dropout", "AlexNet")
        self.num_classes, self.in_channels = num_classes, in_channels
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, kernel_size=11, stride=4, padding=2),   # (N, 64, 55, 55) at 224
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),                              # (N, 64, 27, 27)
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),                              # (N, 192, 13, 13)
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),                              # (N, 256, 6, 6)
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, input):
        x = self.avgpool(self.features(input))
        return self.classifier(x.flatten(1))    # (N, 256·6·6)

    def extra_repr(self):
        return f"num_classes={self.num_classes}, in_channels={self.in_channels}"


@register_model(description="AlexNet (torchvision layout): 61,100,840 parameters; inputs at least 63x63",
                input_size=(3, 224, 224))
def alexnet(num_classes=1000, in_channels=3, dropout=0.5, weights=None):
    """AlexNet (see ``AlexNet``), optionally with weights from a PyTorch state dict saved as safetensors.

    Args:
        num_classes, in_channels, dropout: as ``AlexNet``.
        weights: ``None``, or the path of a ``.safetensors`` state dict, e.g. exported from
            torchvision with ``safetensors.torch.save_file(model.state_dict(), "alexnet.safetensors")``
            (see ``striate.models.weights``).

    Example::

        >>> model = st.models.alexnet()
        >>> sum(p.numel() for p in model.parameters())
        61100840
    """
    model = AlexNet(num_classes=num_classes, in_channels=in_channels, dropout=dropout)
    return load_weights(model, weights, "alexnet")


__all__ = ["AlexNet", "alexnet"]
