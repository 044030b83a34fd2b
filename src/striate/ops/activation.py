"""activation ops — placeholder until implemented."""

def relu(*args, **kwargs):
    raise NotImplementedError("relu is not implemented yet")


def leaky_relu(*args, **kwargs):
    raise NotImplementedError("leaky_relu is not implemented yet")


def elu(*args, **kwargs):
    raise NotImplementedError("elu is not implemented yet")


def gelu(*args, **kwargs):
    raise NotImplementedError("gelu is not implemented yet")


def sigmoid(*args, **kwargs):
    raise NotImplementedError("sigmoid is not implemented yet")


def tanh(*args, **kwargs):
    raise NotImplementedError("tanh is not implemented yet")


def softplus(*args, **kwargs):
    raise NotImplementedError("softplus is not implemented yet")


def softmax(*args, **kwargs):
    raise NotImplementedError("softmax is not implemented yet")


def log_softmax(*args, **kwargs):
    raise NotImplementedError("log_softmax is not implemented yet")


__all__ = ['relu', 'leaky_relu', 'elu', 'gelu', 'sigmoid', 'tanh', 'softplus', 'softmax', 'log_softmax']
