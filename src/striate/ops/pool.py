"""pool ops — placeholder until implemented."""

def max_pool1d(*args, **kwargs):
    raise NotImplementedError("max_pool1d is not implemented yet")


def max_pool2d(*args, **kwargs):
    raise NotImplementedError("max_pool2d is not implemented yet")


def max_pool3d(*args, **kwargs):
    raise NotImplementedError("max_pool3d is not implemented yet")


def min_pool1d(*args, **kwargs):
    raise NotImplementedError("min_pool1d is not implemented yet")


def min_pool2d(*args, **kwargs):
    raise NotImplementedError("min_pool2d is not implemented yet")


def min_pool3d(*args, **kwargs):
    raise NotImplementedError("min_pool3d is not implemented yet")


def avg_pool1d(*args, **kwargs):
    raise NotImplementedError("avg_pool1d is not implemented yet")


def avg_pool2d(*args, **kwargs):
    raise NotImplementedError("avg_pool2d is not implemented yet")


def avg_pool3d(*args, **kwargs):
    raise NotImplementedError("avg_pool3d is not implemented yet")


def adaptive_avg_pool1d(*args, **kwargs):
    raise NotImplementedError("adaptive_avg_pool1d is not implemented yet")


def adaptive_avg_pool2d(*args, **kwargs):
    raise NotImplementedError("adaptive_avg_pool2d is not implemented yet")


def adaptive_avg_pool3d(*args, **kwargs):
    raise NotImplementedError("adaptive_avg_pool3d is not implemented yet")


def adaptive_max_pool1d(*args, **kwargs):
    raise NotImplementedError("adaptive_max_pool1d is not implemented yet")


def adaptive_max_pool2d(*args, **kwargs):
    raise NotImplementedError("adaptive_max_pool2d is not implemented yet")


def adaptive_max_pool3d(*args, **kwargs):
    raise NotImplementedError("adaptive_max_pool3d is not implemented yet")


__all__ = ['max_pool1d', 'max_pool2d', 'max_pool3d', 'min_pool1d', 'min_pool2d', 'min_pool3d', 'avg_pool1d', 'avg_pool2d', 'avg_pool3d', 'adaptive_avg_pool1d', 'adaptive_avg_pool2d', 'adaptive_avg_pool3d', 'adaptive_max_pool1d', 'adaptive_max_pool2d', 'adaptive_max_pool3d']
