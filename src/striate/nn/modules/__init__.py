"""The layers of ``striate.nn``, one concern per file; import them from ``striate.nn``."""
from striate.nn.modules.activation import ELU, GELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Softplus, Tanh
from striate.nn.modules.container import ModuleList, Sequential
from striate.nn.modules.conv import Conv1d, Conv2d, Conv3d
from striate.nn.modules.dropout import Dropout
from striate.nn.modules.flatten import Flatten
from striate.nn.modules.linear import Identity, Linear
from striate.nn.modules.loss import CrossEntropyLoss, MSELoss
from striate.nn.modules.normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d
from striate.nn.modules.pooling import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveAvgPool3d, AdaptiveMaxPool1d,
                                        AdaptiveMaxPool2d, AdaptiveMaxPool3d, AvgPool1d, AvgPool2d, AvgPool3d,
                                        MaxPool1d, MaxPool2d, MaxPool3d, MinPool1d, MinPool2d, MinPool3d)

__all__ = [
    "Sequential", "ModuleList",
    "Conv1d", "Conv2d", "Conv3d",
    "MaxPool1d", "MaxPool2d", "MaxPool3d", "MinPool1d", "MinPool2d", "MinPool3d",
    "AvgPool1d", "AvgPool2d", "AvgPool3d",
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d",
    "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d",
    "Linear", "Identity", "Flatten", "Dropout",
    "ReLU", "LeakyReLU", "ELU", "GELU", "Sigmoid", "Tanh", "Softplus", "Softmax", "LogSoftmax",
    "BatchNorm1d", "BatchNorm2d", "BatchNorm3d",
    "CrossEntropyLoss", "MSELoss",
]
