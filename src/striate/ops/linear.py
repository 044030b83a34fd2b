"""linear ops — placeholder until implemented."""

def linear(*args, **kwargs):
    raise NotImplementedError("linear is not implemented yet")


__all__ = ['linear']
