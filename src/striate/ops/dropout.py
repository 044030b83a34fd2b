"""dropout ops — placeholder until implemented."""

def dropout(*args, **kwargs):
    raise NotImplementedError("dropout is not implemented yet")


__all__ = ['dropout']
