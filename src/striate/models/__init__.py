"""Classic architectures, built from ``striate.nn`` and registered by name.

    import striate.models as models
    model = models.resnet18(num_classes=10)          # or models.get_model("resnet18", num_classes=10)
    model = models.resnet18(weights="resnet18.safetensors")   # a PyTorch state dict saved as safetensors
    models.list_models()                             # ['alexnet', 'cnn1d', 'cnn3d', 'lenet5', 'mlp', ...]

The ImageNet models (``alexnet``, ``vgg*``, ``resnet18/34/50``) have torchvision's parameter
names and layouts, so ``safetensors.torch.save_file(model.state_dict(), "x.safetensors")`` on
the PyTorch side is all it takes to bring its weights over (see ``striate.models.weights``).
"""
from striate.models.alexnet import AlexNet, alexnet
from striate.models.lenet import LeNet5, lenet5
from striate.models.mlp import MLP, mlp
from striate.models.registry import ModelEntry, get_model, list_models, model_entry, register_model
from striate.models.resnet import (BasicBlock, Bottleneck, CifarResNet, ResNet, ZeroPadShortcut, resnet18, resnet20,
                                   resnet32, resnet34, resnet50, resnet56)
from striate.models.small_cnn import CNN1d, CNN3d, cnn1d, cnn3d
from striate.models.vgg import VGG, vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn
from striate.models.weights import load_weights

__all__ = [
    "LeNet5", "lenet5", "MLP", "mlp",
    "AlexNet", "alexnet",
    "VGG", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
    "ResNet", "BasicBlock", "Bottleneck", "resnet18", "resnet34", "resnet50",
    "CifarResNet", "ZeroPadShortcut", "resnet20", "resnet32", "resnet56",
    "CNN1d", "cnn1d", "CNN3d", "cnn3d",
    "load_weights", "get_model", "list_models", "model_entry", "register_model", "ModelEntry",
]
