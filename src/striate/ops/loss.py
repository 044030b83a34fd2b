"""loss ops — placeholder until implemented."""

def cross_entropy(*args, **kwargs):
    raise NotImplementedError("cross_entropy is not implemented yet")


def nll_loss(*args, **kwargs):
    raise NotImplementedError("nll_loss is not implemented yet")


def mse_loss(*args, **kwargs):
    raise NotImplementedError("mse_loss is not implemented yet")


def binary_cross_entropy_with_logits(*args, **kwargs):
    raise NotImplementedError("binary_cross_entropy_with_logits is not implemented yet")


__all__ = ['cross_entropy', 'nll_loss', 'mse_loss', 'binary_cross_entropy_with_logits']
