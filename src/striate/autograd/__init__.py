"""Reverse-mode automatic differentiation: Tensor, Function, the backward engine, grad mode."""
from striate.autograd.function import Function
from striate.autograd.gradcheck import gradcheck
from striate.autograd.grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from striate.autograd.tensor import Tensor, cat, stack, tensor
from striate.autograd.anomaly import AnomalyError, detect_anomaly, is_anomaly_enabled, set_detect_anomaly

__all__ = ["Tensor", "tensor", "cat", "stack", "Function", "gradcheck",
           "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
           "detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled", "AnomalyError"]
