"""conv ops — placeholder until implemented."""

def conv_nd(*args, **kwargs):
    raise NotImplementedError("conv_nd is not implemented yet")


def conv1d(*args, **kwargs):
    raise NotImplementedError("conv1d is not implemented yet")


def conv2d(*args, **kwargs):
    raise NotImplementedError("conv2d is not implemented yet")


def conv3d(*args, **kwargs):
    raise NotImplementedError("conv3d is not implemented yet")


__all__ = ['conv_nd', 'conv1d', 'conv2d', 'conv3d']
