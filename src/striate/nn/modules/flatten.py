"""``Flatten``: merge a range of dimensions into one (typically before a Linear layer)."""
from striate.nn.module import Module


class Flatten(Module):
    """Merge dimensions ``start_dim`` to ``end_dim`` (inclusive) into one.

    Args:
        start_dim: first dimension to merge. Default 1 (keep the batch dimension).
        end_dim: last dimension to merge. Default -1.

    Shape:
        Input ``(*, S_start, ..., S_end, *)``, output ``(*, ∏S, *)``.

    Example::

        >>> nn.Flatten()(st.randn(32, 1, 5, 5)).shape
        (32, 25)
    """

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input):
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


__all__ = ["Flatten"]
