"""padding ops — placeholder until implemented."""

def pad(*args, **kwargs):
    raise NotImplementedError("pad is not implemented yet")


__all__ = ['pad']
