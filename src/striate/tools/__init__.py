"""Tools on top of the library: the training loop (``train``), checkpoints (``checkpoint``) and the ``striate`` command (``cli``).

    from striate.tools.train import fit, evaluate
    from striate.tools.checkpoint import load_checkpoint

``import striate`` does not import this package, so it stays fast; import the submodule you need.
``to_fully_convolutional`` (rewrite a classifier's Linear head as convolutions) and ``to_onnx`` /
``to_safetensors`` (export a model for other runtimes, see docs/export.md) are exported here.
"""
from striate.tools.export import to_onnx, to_safetensors
from striate.tools.fully_convolutional import to_fully_convolutional

__all__ = ["to_fully_convolutional", "to_onnx", "to_safetensors"]
