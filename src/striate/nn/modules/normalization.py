"""Batch normalisation: one ``_BatchNorm``; ``BatchNorm1d``/``2d``/``3d`` only check the input rank."""
from striate._backend import xp
from striate.autograd.tensor import Tensor, float32, int64
from striate.nn import functional as F
from striate.nn import init
from striate.nn.module import Module
from striate.nn.modules._validate import positive_int
from striate.nn.parameter import Parameter


class _BatchNorm(Module):
    """Normalise each channel by its batch statistics, then scale by ``weight`` and shift by ``bias``.

    ``y = (x − mean) / √(var + eps) · weight + bias``, statistics over every dimension but
    the channel one (dimension 1). In training, ``mean``/``var`` are the batch's (biased
    variance) and the running estimates move towards them:
    ``running = (1 − momentum) · running + momentum · batch`` (the batch variance unbiased here);
    with ``momentum=None`` they are the cumulative average of all batches seen so far. In eval
    mode the running estimates are used. ``num_batches_tracked`` counts training batches.

    Args:
        num_features: the number of channels ``C``.
        eps: added to the variance for stability. Default 1e-5.
        momentum: weight of the newest batch in the running estimates, or ``None`` for a
            cumulative average. Default 0.1.
        affine: learn ``weight`` (init 1) and ``bias`` (init 0). Default True.
        track_running_stats: keep running estimates (``running_mean`` 0, ``running_var`` 1
            initially); if False, batch statistics are used in eval mode too.
        bias: with ``affine``, whether to learn the shift (keyword only). Default True.
        dtype: parameter and running-statistic dtype, float32 by default.
    """

    _ranks = ()
    _layout = ""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 dtype=None, *, bias=True):
        super().__init__()
        name = type(self).__name__
        self.num_features = positive_int(num_features, "num_features", name)
        if eps <= 0:
            raise ValueError(f"{name}: eps must be positive. Received: eps={eps}")
        if momentum is not None and not 0 <= momentum <= 1:
            raise ValueError(f"{name}: momentum must be in [0, 1] or None. Received: momentum={momentum}")
        self.eps, self.momentum = eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        dtype = float32 if dtype is None else xp.dtype(dtype)
        if affine:
            self.weight = Parameter(xp.ones(num_features, dtype=dtype))
            if bias:
                self.bias = Parameter(xp.zeros(num_features, dtype=dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", Tensor._from_array(xp.zeros(num_features, dtype=dtype)))
            self.register_buffer("running_var", Tensor._from_array(xp.ones(num_features, dtype=dtype)))
            self.register_buffer("num_batches_tracked", Tensor._from_array(xp.zeros((), dtype=int64)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def reset_parameters(self):
        """Running statistics back to (0, 1, 0 batches), weight to 1, bias to 0."""
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def _check_input_dim(self, input):
        if input.ndim not in self._ranks:
            raise ValueError(f"{type(self).__name__}: expected input of shape {self._layout}, "
                             f"got {input.ndim}-D input of shape {tuple(input.shape)}")

    def forward(self, input):
        self._check_input_dim(input)
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data += 1
            if self.momentum is None:  # cumulative average: the k-th batch weighs 1/k
                momentum = 1.0 / float(self.num_batches_tracked.data)
        # Batch statistics while training, and always when there are no running ones.
        use_batch_stats = self.training or self.running_mean is None
        tracking = not self.training or self.track_running_stats
        return F.batch_norm(input, self.running_mean if tracking else None, self.running_var if tracking else None,
                            self.weight, self.bias, use_batch_stats, momentum, self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of ``(N, C)`` or ``(N, C, L)`` input (see ``_BatchNorm`` for Args).

    Shape:
        Input ``(N, C)`` or ``(N, C, L)``; output the same.

    Example::

        >>> nn.BatchNorm1d(100)(st.randn(20, 100)).shape
        (20, 100)
    """

    _ranks = (2, 3)
    _layout = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of ``(N, C, H, W)`` input (see ``_BatchNorm`` for Args).

    Shape:
        Input ``(N, C, H, W)``; output the same.

    Example::

        >>> nn.BatchNorm2d(16)(st.randn(8, 16, 32, 32)).shape
        (8, 16, 32, 32)
    """

    _ranks = (4,)
    _layout = "(N, C, H, W)"


class BatchNorm3d(_BatchNorm):
    """Batch normalisation of ``(N, C, D, H, W)`` input (see ``_BatchNorm`` for Args).

    Shape:
        Input ``(N, C, D, H, W)``; output the same.

    Example::

        >>> nn.BatchNorm3d(4)(st.randn(2, 4, 6, 6, 6)).shape
        (2, 4, 6, 6, 6)
    """

    _ranks = (5,)
    _layout = "(N, C, D, H, W)"


__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d"]
