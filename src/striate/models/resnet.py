"""Residual networks (He, Zhang, Ren and Sun): the ImageNet ResNets as torchvision builds them, and the CIFAR family.

Each block learns a residual ``F(x)`` and outputs ``relu(F(x) + shortcut(x))``; the identity
shortcut lets gradients reach early layers unattenuated, which is what makes 50 or 56
layers trainable where a plain stack of that depth trains worse than a shallow one.

- ``resnet18/34/50``: the ImageNet networks ("Deep Residual Learning for Image Recognition",
  CVPR 2016, table 1) with torchvision's names, layouts and initialisation, so its state
  dicts load unchanged. ResNet-50's Bottleneck strides in its 3×3 convolution (torchvision's
  "v1.5"), not in the first 1×1 as in the paper.
- ``resnet20/32/56``: the CIFAR-10 networks of the same paper (section 4.2): 6n + 2 layers,
  three stages of n blocks with 16, 32, 64 filters on 32×32 inputs, and parameter-free
  identity shortcuts (the paper's option A).
"""
from striate import nn
from striate.models.registry import register_model
from striate.models.weights import load_weights
from striate.nn import functional as F
from striate.nn import init
from striate.nn.modules._validate import positive_int


def conv3x3(in_planes, out_planes, stride=1):
    """3×3 convolution with padding 1 and no bias (a batch norm follows)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes, out_planes, stride=1):
    """1×1 convolution without bias."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with batch norm, plus the shortcut: ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``.

    Args:
        inplanes: input channels.
        planes: output channels (``expansion`` is 1).
        stride: stride of the first convolution (2 halves the size at a stage's first block).
        downsample: the module applied to ``x`` on the shortcut when the shape changes
            (a strided 1×1 convolution and batch norm, or ``ZeroPadShortcut``); None for identity.
    """

    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1×1 (reduce) → 3×3 (strided) → 1×1 (expand ×4) convolutions with batch norm, plus the shortcut.

    The stride sits on the 3×3 convolution, as in torchvision ("ResNet v1.5"; the paper put it
    on the first 1×1), which is slightly more accurate and is what torchvision's weights expect.

    Args:
        inplanes: input channels.
        planes: channels of the 3×3 convolution; the block outputs ``planes · 4``.
        stride: stride of the 3×3 convolution.
        downsample: the shortcut module when the shape changes, None for identity.
    """

    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _init_resnet(model, zero_init_residual):
    """torchvision's initialisation: He-normal convolutions (``fan_out``), batch norm weight 1 and bias 0.

    With ``zero_init_residual`` the last batch norm of every block starts at weight 0, so each
    block starts as the identity (Goyal et al., 2017). Linear layers keep PyTorch's default.
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            init.ones_(module.weight)
            init.zeros_(module.bias)
    if zero_init_residual:
        for module in model.modules():
            if isinstance(module, Bottleneck):
                init.zeros_(module.bn3.weight)
            elif isinstance(module, BasicBlock):
                init.zeros_(module.bn2.weight)


class ResNet(nn.Module):
    """The ImageNet ResNet: a 7×7 stem and max pool, four stages of residual blocks, global average pool, FC.

    Module names and parameter layouts are torchvision's (``conv1``, ``bn1``, ``relu``,
    ``maxpool``, ``layer1``..``layer4``, ``avgpool``, ``fc``; ``downsample.0`` and ``.1``
    the projection shortcut — a strided 1×1 convolution and batch norm, the paper's
    option B — at each stage whose shape changes), so its state dicts load unchanged.

    Args:
        block: ``BasicBlock`` (ResNet-18/34) or ``Bottleneck`` (ResNet-50 and deeper).
        layers: blocks per stage, e.g. ``(2, 2, 2, 2)`` for ResNet-18.
        num_classes: number of outputs (logits). Default 1000 (ImageNet).
        in_channels: channels of the input image (3 for RGB, 1 for grayscale). Default 3.
        zero_init_residual: start each block's last batch norm at weight 0. Default False.

    Shape:
        Input ``(N, in_channels, H, W)`` (224 for ImageNet: the stages see 56, 28, 14 and 7;
        global average pooling accepts any size ≥ 1 at the last stage), output ``(N, num_classes)``.

    Example::

        >>> model = ResNet(BasicBlock, (2, 2, 2, 2), num_classes=10)
        >>> model(st.randn(2, 3, 64, 64)).shape
        (2, 10)
    """

    def __init__(self, block, layers, num_classes=1000, in_channels=3, zero_init_residual=False):
        super().__init__()
        if block not in (BasicBlock, Bottleneck):
            raise TypeError(f"ResNet: block must be BasicBlock or Bottleneck, got {block!r}")
        layers = tuple(layers)
        if len(layers) != 4:
            raise ValueError(f"ResNet: layers must give the number of blocks of each of 4 stages. "
                             f"Received: layers={layers}")
        for index, count in enumerate(layers):
            positive_int(count, f"layers[{index}]", "ResNet")
        positive_int(num_classes, "num_classes", "ResNet")
        positive_int(in_channels, "in_channels", "ResNet")
        self.num_classes, self.in_channels = num_classes, in_channels
        self.inplanes = 64
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)  # (N, 64, 112, 112)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)                           # (N, 64, 56, 56)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)                           # 28×28
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)                           # 14×14
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)                           # 7×7
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        _init_resnet(self, zero_init_residual)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, input):
        x = self.maxpool(self.relu(self.bn1(self.conv1(input))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))    # (N, 512·expansion)

    def extra_repr(self):
        return f"num_classes={self.num_classes}, in_channels={self.in_channels}"


class ZeroPadShortcut(nn.Module):
    """The parameter-free shortcut of option A: subsample by ``stride``, then pad the new channels with zeros.

    ``x[:, :, ::stride, ::stride]`` (the top-left pixel of each ``stride``×``stride`` block, as
    the strided convolution on the main path sees it) gets ``pad_channels`` zero channels
    split over both ends (``pad // 2`` before, the rest after), so the identity mapping is
    kept for the existing channels and the block's added channels start from zero.

    Args:
        stride: spatial subsampling factor.
        pad_channels: zero channels to add.
    """

    def __init__(self, stride, pad_channels):
        super().__init__()
        self.stride = positive_int(stride, "stride", "ZeroPadShortcut")
        if isinstance(pad_channels, bool) or not isinstance(pad_channels, int) or pad_channels < 0:
            raise ValueError(f"ZeroPadShortcut: pad_channels must be a non-negative int. "
                             f"Received: pad_channels={pad_channels!r}")
        self.pad_channels = pad_channels

    def forward(self, x):
        s = self.stride
        x = x[:, :, ::s, ::s]                                  # (N, C, ⌈H/s⌉, ⌈W/s⌉)
        before = self.pad_channels // 2
        return F.pad(x, (0, 0, 0, 0, before, self.pad_channels - before))   # (N, C + pad, ...)

    def extra_repr(self):
        return f"stride={self.stride}, pad_channels={self.pad_channels}"


class CifarResNet(nn.Module):
    """The CIFAR-10 ResNet of He et al. (2016, section 4.2): 6n + 2 layers on 32×32 images.

    A 3×3 convolution with 16 filters, then three stages of ``n`` ``BasicBlock``s with 16, 32
    and 64 filters on 32×32, 16×16 and 8×8 maps (the first block of stages 2 and 3 strides
    by 2), global average pooling and an FC layer: 2 + 3·2n weight layers. Names follow
    torchvision's ResNet (``conv1``, ``bn1``, ``layer1``..``layer3``, ``fc``, a block's
    shortcut in ``downsample``); initialisation is torchvision's (He-normal ``fan_out``
    convolutions, batch norm 1 and 0, default Linear).

    Shortcuts: ``"A"`` (default, as in the paper's CIFAR experiments) — identity everywhere;
    where a stage doubles the channels and halves the size, the input is subsampled by 2 and
    zero-padded with the new channels (``ZeroPadShortcut``, no parameters); ResNet-20 has
    269,722 parameters (0.27 M, the paper's table 6). ``"B"`` — a strided 1×1 convolution
    and batch norm at those two places (``downsample.0``/``.1``, as torchvision's), which
    adds 2,752 parameters (272,474 for ResNet-20).

    Args:
        depth: 6n + 2 layers: 20, 32, 44, 56, 110, ...
        num_classes: number of outputs (logits). Default 10.
        in_channels: channels of the input image (3 for RGB, 1 for grayscale). Default 3.
        shortcut: ``"A"`` or ``"B"``, as above.

    Shape:
        Input ``(N, in_channels, H, W)`` (32×32 for CIFAR; global average pooling accepts any
        size), output ``(N, num_classes)``.

    Example::

        >>> model = CifarResNet(20)
        >>> model(st.randn(2, 3, 32, 32)).shape
        (2, 10)
    """

    def __init__(self, depth=20, num_classes=10, in_channels=3, shortcut="A"):
        super().__init__()
        positive_int(depth, "depth", "CifarResNet")
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"CifarResNet: depth must be 6n + 2 for some n ≥ 1 (20, 32, 44, 56, 110, ...). "
                             f"Received: depth={depth}")
        positive_int(num_classes, "num_classes", "CifarResNet")
        positive_int(in_channels, "in_channels", "CifarResNet")
        if shortcut not in ("A", "B"):
            raise ValueError(f"CifarResNet: shortcut must be 'A' (zero-padded identity) or 'B' (1×1 projection). "
                             f"Received: shortcut={shortcut!r}")
        self.depth, self.num_classes, self.in_channels, self.shortcut = depth, num_classes, in_channels, shortcut
        blocks = (depth - 2) // 6
        self.inplanes = 16
        self.conv1 = conv3x3(in_channels, 16)                          # (N, 16, 32, 32)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(16, blocks)                     # (N, 16, 32, 32)
        self.layer2 = self._make_layer(32, blocks, stride=2)           # (N, 32, 16, 16)
        self.layer3 = self._make_layer(64, blocks, stride=2)           # (N, 64, 8, 8)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(64, num_classes)
        _init_resnet(self, zero_init_residual=False)

    def _make_layer(self, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes:
            if self.shortcut == "A":
                downsample = ZeroPadShortcut(stride, planes - self.inplanes)
            else:
                downsample = nn.Sequential(conv1x1(self.inplanes, planes, stride), nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, input):
        x = self.relu(self.bn1(self.conv1(input)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.avgpool(x).flatten(1))    # (N, 64)

    def extra_repr(self):
        return (f"depth={self.depth}, num_classes={self.num_classes}, in_channels={self.in_channels}, "
                f"shortcut={self.shortcut!r}")


@register_model(description="ResNet-18 (BasicBlock, 2-2-2-2): 11,689,512 parameters", input_size=(3, 224, 224))
def resnet18(num_classes=1000, in_channels=3, zero_init_residual=False, weights=None):
    """ResNet-18: ``ResNet(BasicBlock, (2, 2, 2, 2))``, 11,689,512 parameters for 3 channels and 1000 classes.

    Args:
        num_classes, in_channels, zero_init_residual: as ``ResNet``.
        weights: ``None``, or the path of a ``.safetensors`` state dict, e.g. from torchvision:
            ``safetensors.torch.save_file(model.state_dict(), "resnet18.safetensors")``
            (see ``striate.models.weights``).

    Example::

        >>> model = st.models.resnet18(num_classes=10)
        >>> model(st.randn(1, 3, 64, 64)).shape
        (1, 10)
    """
    model = ResNet(BasicBlock, (2, 2, 2, 2), num_classes, in_channels, zero_init_residual)
    return load_weights(model, weights, "resnet18")


@register_model(description="ResNet-34 (BasicBlock, 3-4-6-3): 21,797,672 parameters", input_size=(3, 224, 224))
def resnet34(num_classes=1000, in_channels=3, zero_init_residual=False, weights=None):
    """ResNet-34: ``ResNet(BasicBlock, (3, 4, 6, 3))``, 21,797,672 parameters for 3 channels and 1000 classes.

    Args: as ``resnet18``.
    """
    model = ResNet(BasicBlock, (3, 4, 6, 3), num_classes, in_channels, zero_init_residual)
    return load_weights(model, weights, "resnet34")


@register_model(description="ResNet-50 (Bottleneck, 3-4-6-3): 25,557,032 parameters", input_size=(3, 224, 224))
def resnet50(num_classes=1000, in_channels=3, zero_init_residual=False, weights=None):
    """ResNet-50: ``ResNet(Bottleneck, (3, 4, 6, 3))``, 25,557,032 parameters for 3 channels and 1000 classes.

    Args: as ``resnet18``.
    """
    model = ResNet(Bottleneck, (3, 4, 6, 3), num_classes, in_channels, zero_init_residual)
    return load_weights(model, weights, "resnet50")


@register_model(description="CIFAR ResNet-20 (He 2016, option A shortcuts): 269,722 parameters", input_size=(3, 32, 32))
def resnet20(num_classes=10, in_channels=3, shortcut="A", weights=None):
    """CIFAR ResNet-20: ``CifarResNet(20)``, 3 stages of 3 blocks; 269,722 parameters (0.27 M) with option A.

    Args:
        num_classes, in_channels, shortcut: as ``CifarResNet``.
        weights: ``None``, or the path of a ``.safetensors`` state dict saved from PyTorch with
            ``safetensors.torch.save_file(model.state_dict(), "resnet20.safetensors")``
            (see ``striate.models.weights``); the names must be this model's.

    Example::

        >>> model = st.models.resnet20()
        >>> sum(p.numel() for p in model.parameters())
        269722
    """
    return load_weights(CifarResNet(20, num_classes, in_channels, shortcut), weights, "resnet20")


@register_model(description="CIFAR ResNet-32 (He 2016, option A shortcuts): 464,154 parameters", input_size=(3, 32, 32))
def resnet32(num_classes=10, in_channels=3, shortcut="A", weights=None):
    """CIFAR ResNet-32: ``CifarResNet(32)``, 3 stages of 5 blocks; 464,154 parameters (0.46 M) with option A.

    Args: as ``resnet20``.
    """
    return load_weights(CifarResNet(32, num_classes, in_channels, shortcut), weights, "resnet32")


@register_model(description="CIFAR ResNet-56 (He 2016, option A shortcuts): 853,018 parameters", input_size=(3, 32, 32))
def resnet56(num_classes=10, in_channels=3, shortcut="A", weights=None):
    """CIFAR ResNet-56: ``CifarResNet(56)``, 3 stages of 9 blocks; 853,018 parameters (0.85 M) with option A.

    Args: as ``resnet20``.
    """
    return load_weights(CifarResNet(56, num_classes, in_channels, shortcut), weights, "resnet56")


__all__ = ["ResNet", "BasicBlock", "Bottleneck", "CifarResNet", "ZeroPadShortcut", "conv1x1", "conv3x3",
           "resnet18", "resnet34", "resnet50", "resnet20", "resnet32", "resnet56"]
