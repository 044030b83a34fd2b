"""Tools on top of the library: the training loop (``train``), checkpoints (``checkpoint``) and the ``striate`` command (``cli``).

    from striate.tools.train import fit, evaluate
    from striate.tools.checkpoint import load_checkpoint

Nothing is imported here, so ``import striate`` stays fast; import the submodule you need.
"""
