"""Convolution of any spatial rank, lowered to matrix products over sliding windows.

One ``ConvND`` serves 1-D, 2-D and 3-D. The padded input is split by stride phase (the
samples at positions ≡ r mod stride along every axis, an ordinary copy of the input; no copy
at stride 1) and each phase image is flattened. In a flat phase image every kernel tap reads,
for all output positions at once, ONE contiguous run (see `_Lowering`), so the columns of the
im2col product are a few long copies and the input gradient is a few long adds, whatever the
image size. A block of samples at a time, each group's filters multiply the columns in one
matrix product (one per sample when the weight is tiny). Backward rebuilds the same columns:
the weight gradient is ``(cols · gyᵀ)ᵀ``; the input gradient is, at stride 1, the transposed
convolution of ``gy`` run through the same forward lowering, and otherwise ``Wᵀ · gy`` added
back tap by tap onto the flat phase images.
"""
import functools
import itertools
import math

from striate._backend import xp
from striate._blas import GEMM_AVAILABLE, gemm
from striate.autograd.function import Function
from striate.kernels.sizes import check_non_negative, check_positive, ntuple, same_padding, window_span
from striate.ops._validate import as_tensor, expect_float, expect_spatial_input

_PADDING_MODES = ("valid", "same", "full")


# Samples are processed in blocks whose columns take about this many bytes, so each block's
# columns are still in cache when the matrix product reads them (and memory stays bounded).
_BLOCK_BYTES = 2 * 2**20

# The shifted products hold only input- and output-sized arrays per block (no columns).
_SHIFTED_BLOCK_BYTES = 4 * 2**20
_SHIFTED_BACKWARD_BLOCK_BYTES = 8 * 2**20
_SHIFTED_MIN_CHANNELS = 16


class _Lowering:
    """Where every kernel tap reads in the flat, stride-phase-split padded input.

    Along each axis the padded input (``Dp`` samples) is cut into ``s`` phases of
    ``Dq = ceil(Dp / s)`` samples: phase ``r`` holds positions ``r, r + s, r + 2s, …``. Output
    ``o`` at tap ``k`` reads padded position ``o·s + k·dil``, which is sample
    ``o + (k·dil) // s`` of phase ``(k·dil) % s``: at any stride, a tap is a stride-1 shift
    inside one phase. Flattening each phase image row-major and letting the output index run
    over a *grid* ``(O₁, Dq₂, …, Dqₙ)`` — whole phase rows instead of just the ``O_d`` valid
    columns — makes every tap's reads one contiguous run of ``∏grid`` samples starting at a
    fixed offset. Grid positions past a row's last output wrap into the next row; their
    results are computed and dropped (and their gradient is zero). One extra zero row at the
    end of each phase image keeps the last sample's wrapped reads in bounds.
    """

    def __init__(self, size, kernel, stride, dilation, pad_lo, pad_hi):
        n = len(kernel)
        padded = [d + lo + hi for d, lo, hi in zip(size, pad_lo, pad_hi)]
        self.out_size = tuple((p - dil * (k - 1) - 1) // s + 1
                              for p, k, s, dil in zip(padded, kernel, stride, dilation))
        phase = [-(-p // s) for p, s in zip(padded, stride)]                      # Dq per axis
        phase[0] += n > 1                                                         # the extra row
        self.phase_size = tuple(phase)
        self.grid = (self.out_size[0],) + self.phase_size[1:]
        self.length = math.prod(self.grid)                                        # L, the run length
        self.phases = math.prod(stride)
        self.pad_lo = tuple(pad_lo)
        self.size, self.kernel, self.stride = tuple(size), tuple(kernel), tuple(stride)
        pitch = [math.prod(phase[d + 1:]) for d in range(n)]
        phase_pitch = [math.prod(stride[d + 1:]) for d in range(n)]
        self.taps = []                                                            # (phase, offset) per tap
        for tap in itertools.product(*(range(k) for k in kernel)):
            reach = [t * dil for t, dil in zip(tap, dilation)]
            self.taps.append((sum(r % s * q for r, s, q in zip(reach, stride, phase_pitch)),
                              sum(r // s * p for r, s, p in zip(reach, stride, pitch))))

    def _phase_slices(self):
        """Per phase ``r``: the input samples it holds and where they sit in the phase image.

        Padded position ``r + s·j`` holds input sample ``r + s·j − lo`` when that is inside the
        input; everything else in a phase image is padding (zero).
        """
        pieces = []
        for phase in itertools.product(*(range(s) for s in self.stride)):
            source, target = [], []
            for r, s, lo, d in zip(phase, self.stride, self.pad_lo, self.size):
                first = max(0, -(-(lo - r) // s))                 # first j with r + s·j ≥ lo
                start = r + s * first - lo                        # its input sample
                count = max(0, -(-(d - start) // s))              # samples start, start + s, … < d
                source.append(slice(start, start + s * count, s))
                target.append(slice(first, first + count))
            pieces.append((phase, tuple(source), tuple(target)))
        return pieces

    def split(self, x):
        """``x (N, C, *D)`` padded and split into flat phase images ``(N, C, ∏s, ∏Dq)``."""
        batch, channels = x.shape[:2]
        if self.phases == 1 and self.phase_size == self.size:
            return x.reshape(batch, channels, 1, math.prod(self.size))            # no padding: a view
        out = xp.zeros((batch, channels, *self.stride, *self.phase_size), dtype=x.dtype)  # (N, C, *s, *Dq)
        for phase, source, target in self._phase_slices():
            out[(slice(None), slice(None)) + phase + target] = x[(Ellipsis,) + source]
        return out.reshape(batch, channels, self.phases, math.prod(self.phase_size))  # (N, C, ∏s, ∏Dq)

    def merge(self, g, gx):
        """Adjoint of `split`: write the gradient ``g (C, n, ∏s, ∏Dq)`` of the phase images into ``gx (n, C, *D)``."""
        channels, batch = g.shape[:2]
        g = g.reshape(channels, batch, *self.stride, *self.phase_size).swapaxes(0, 1)  # (n, C, *s, *Dq) view
        for phase, source, target in self._phase_slices():
            gx[(Ellipsis,) + source] = g[(slice(None), slice(None)) + phase + target]

    def columns(self, phases, groups):
        """Flat phase images ``(n, C, ∏s, ∏Dq)`` of a block as per-group columns ``(G, Cg·∏K, n·L)``.

        Every sample's output positions sit side by side, so each group needs a single large
        matrix product rather than one small product per sample.
        """
        batch, channels = phases.shape[:2]
        length, taps = self.length, self.taps
        cols = xp.empty((channels, len(taps), batch, length), dtype=phases.dtype)  # (C, ∏K, n, L)
        for i, (phase, offset) in enumerate(taps):
            cols[:, i] = phases[:, :, phase, offset:offset + length].swapaxes(0, 1)  # (C, n, L)
        return cols.reshape(groups, -1, batch * length)                           # (G, Cg·∏K, n·L)

    def add_columns(self, g, gcols):
        """Adjoint of `columns`: add ``gcols (G, Cg·∏K, n·L)`` tap by tap into ``g (C, n, ∏s, ∏Dq)``."""
        channels, batch = g.shape[:2]
        length = self.length
        gcols = gcols.reshape(channels, len(self.taps), batch, length)            # (C, ∏K, n, L)
        for i, (phase, offset) in enumerate(self.taps):
            g[:, :, phase, offset:offset + length] += gcols[:, i]

    @property
    def image_length(self):
        """``∏Dq``: the samples in one flat phase image."""
        return math.prod(self.phase_size)

    def span(self, batch):
        """Output positions one shifted product covers for ``batch`` samples laid end to end.

        Sample ``j``'s grid starts at ``j·∏Dq``; the last one needs only its first ``L``, so
        every tap's window ``[offset, offset + span)`` stays inside the images.
        """
        return (batch - 1) * self.image_length + self.length

    def split_channels_first(self, x):
        """``x (n, C, *D)`` padded and split into phase images laid out ``(∏s, C, n·∏Dq)``.

        Channel-major with the samples end to end, so a tap's window over the whole block is
        one strided matrix ``(C, span)`` that BLAS reads in place.
        """
        batch, channels = x.shape[:2]
        out = xp.zeros((*self.stride, channels, batch, *self.phase_size), dtype=x.dtype)  # (*s, C, n, *Dq)
        x = x.swapaxes(0, 1)                                                      # (C, n, *D) view
        for phase, source, target in self._phase_slices():
            out[phase + (slice(None), slice(None)) + target] = x[(Ellipsis,) + source]
        return out.reshape(self.phases, channels, batch * self.image_length)

    def columns_of_images(self, x, span, groups):
        """The im2col columns of ``x (n, C, *D)`` over the shifted products' positions: ``(G, Cg·∏K, span)``."""
        images = self.split_channels_first(x)                                      # (∏s, C, n·∏Dq)
        channels = images.shape[1]
        cols = xp.empty((channels, len(self.taps), span), dtype=x.dtype)           # (C, ∏K, span)
        for i, (phase, offset) in enumerate(self.taps):
            cols[:, i] = images[phase, :, offset:offset + span]
        return cols.reshape(groups, -1, span)

    def merge_channels_first(self, g, gx):
        """Adjoint of `split_channels_first`: write ``g (∏s, C, n·∏Dq)`` into ``gx (n, C, *D)``."""
        channels, batch = g.shape[1], gx.shape[0]
        g = g.reshape(*self.stride, channels, batch, *self.phase_size)           # (*s, C, n, *Dq) view
        gx = gx.swapaxes(0, 1)                                                    # (C, n, *D) view
        for phase, source, target in self._phase_slices():
            gx[(Ellipsis,) + source] = g[phase + (slice(None), slice(None)) + target]

    def runs_as_grid(self, runs, batch):
        """``runs (R, n·∏Dq)`` seen as ``(R, n, *grid)``: each sample's first ``L`` positions."""
        rows = runs.shape[0]
        return runs.reshape(rows, batch, self.image_length)[:, :, :self.length].reshape(rows, batch, *self.grid)

    def valid(self, grid_array):
        """The true outputs ``[..., :O₁, …, :Oₙ]`` of an array whose last axes span the grid."""
        return grid_array[(Ellipsis,) + tuple(slice(0, o) for o in self.out_size)]


@functools.lru_cache(maxsize=256)
def _cached_lowering(size, kernel, stride, dilation, pad_lo, pad_hi):
    return _Lowering(size, kernel, stride, dilation, pad_lo, pad_hi)


def _lowering(size, kernel, stride, dilation, pad_lo, pad_hi):
    """The `_Lowering` of one geometry, built once: a training loop asks for the same few every step."""
    return _cached_lowering(*(tuple(int(v) for v in a) for a in (size, kernel, stride, dilation, pad_lo, pad_hi)))


# The transposed input gradient runs while its columns are at most this many times the
# scatter path's (measured: 1.1–1.2× faster backward on ResNet shapes, 0.65× at LeNet's 6→16).
_TRANSPOSED_COST = 1.25


def _blocks(batch, bytes_per_sample, block_bytes=_BLOCK_BYTES):
    """``slice``s of the batch, each holding as many samples as fit in ``block_bytes`` (at least one)."""
    step = max(1, block_bytes // max(1, bytes_per_sample))
    return [slice(start, min(start + step, batch)) for start in range(0, batch, step)]


class ConvND(Function):
    """Cross-correlation of ``x (N, C, *D)`` with ``w (O, C/G, *K)`` plus an optional bias ``b (O,)``.

    Padding arrives already resolved to per-dimension ``pad_lo``/``pad_hi`` (they may differ,
    as "same" needs), and every setting is an ``n``-tuple of ints. Padded phase images and
    columns are built block by block and never stored: backward rebuilds them from the input.
    """

    def forward(self, x, w, b, *, stride, pad_lo, pad_hi, dilation, groups):
        channels, (out_channels, _, *kernel) = x.shape[1], w.shape
        plan = _lowering(x.shape[2:], kernel, stride, dilation, pad_lo, pad_hi)
        need_x, need_w, _ = self.needs_input_grad
        self.shifted = _shifted_products(channels // groups, out_channels // groups)
        if self.shifted:
            w_taps = _weight_taps(w, groups)                                       # (∏K, G, Og, Cg)
            y = _shifted_correlate(x, w_taps, b, plan)
            self.x_padded, self.w_taps = (x if need_w else None), (w_taps if need_x else None)
            self.plan, self.groups, self.channels = plan, groups, channels
            return y
        w_mat = w.reshape(groups, out_channels // groups, -1)                      # (G, Og, Cg·∏K)
        y = _correlate(x, w_mat, b, plan, groups)

        # The input itself, not its padded phase images: backward splits it again block by
        # block, so a layer keeps no activation-sized copy between forward and backward.
        self.x_padded = x if need_w else None
        self.w_mat = w_mat if need_x else None
        self.plan, self.groups, self.channels = plan, groups, channels
        self.dilation, self.pad_lo, self.pad_hi = dilation, pad_lo, pad_hi
        return y

    def backward(self, gy):
        need_x, need_w, need_b = self.needs_input_grad
        plan, groups, channels = self.plan, self.groups, self.channels
        batch, out_channels, *out_size = gy.shape
        group_out = out_channels // groups
        gx = gw = gb = None
        if need_b:
            gb = gy.sum(axis=(0, *range(2, gy.ndim)))                              # (O,)
        if self.shifted:
            gx, gw = self._shifted_backward(gy)
            return gx, gw, gb
        transposed = need_x and self._transposed_plan(out_size)
        if transposed:
            gx = _correlate(gy, self._transposed_weight(), None, transposed, groups)  # (N, C, *D)
        elif need_x:
            gx = xp.empty((batch, channels, *plan.size), dtype=gy.dtype)           # (N, C, *D)
        if need_w:
            gw = xp.zeros((groups, channels // groups * len(plan.taps), group_out), dtype=gy.dtype)  # (G, Cg·∏K, Og)
        scatter = need_x and not transposed
        per_sample = need_w and _per_sample(gw.swapaxes(-1, -2))
        if not (scatter or need_w):
            return gx, gw, gb
        for block in _blocks(batch, channels * len(plan.taps) * plan.length * gy.itemsize):
            gy_block = gy[block]
            samples = gy_block.shape[0]
            # The upstream gradient laid out like the products' output: zero off the true outputs.
            gy_grid = xp.zeros((out_channels, samples, *plan.grid), dtype=gy.dtype)  # (O, n, *grid)
            plan.valid(gy_grid)[...] = gy_block.swapaxes(0, 1)
            gy_grid = gy_grid.reshape(groups, group_out, -1)                       # (G, Og, n·L)
            if need_w:
                cols = plan.columns(plan.split(self.x_padded[block]), groups)      # (G, Cg·∏K, n·L)
                # gwᵀ = cols · gyᵀ: BLAS runs this orientation (long inner dimension, the small
                # Og last) 1.5–1.8× faster than gy · colsᵀ on the thin shapes of small layers.
                if per_sample:
                    gw += xp.matmul(_by_sample(cols, samples),
                                    _by_sample(gy_grid, samples).swapaxes(-1, -2)).sum(axis=0)
                else:
                    gw += xp.matmul(cols, gy_grid.swapaxes(-1, -2))                # (G, Cg·∏K, Og)
            if scatter:
                gcols = xp.matmul(self.w_mat.swapaxes(-1, -2), gy_grid)            # (G, Cg·∏K, n·L)
                g = xp.zeros((channels, samples, plan.phases, math.prod(plan.phase_size)), dtype=gy.dtype)
                plan.add_columns(g, gcols)                                         # (C, n, ∏s, ∏Dq)
                plan.merge(g, gx[block])
        if need_w:
            gw = gw.swapaxes(-1, -2).reshape(out_channels, -1, *plan.kernel)      # (O, Cg, *K)
        return gx, gw, gb

    def _shifted_backward(self, gy):
        """Both gradients of `_shifted_correlate`.

        ``y = Σₖ Wₖ · xₖ`` (``xₖ`` the tap's window of the phase images) gives
        ``∂xₖ += Wₖᵀ · gy``, which BLAS accumulates tap by tap straight into the window of the
        images' gradient (no column gradients), and ``∂Wₖ = gy · xₖᵀ``, computed for all taps
        at once from the block's columns.
        """
        need_x, need_w, _ = self.needs_input_grad
        plan, channels = self.plan, self.channels
        batch, out_channels = gy.shape[:2]
        taps, groups, group_out, group_in = (len(plan.taps), self.groups, out_channels // self.groups,
                                             channels // self.groups)
        gx = xp.empty((batch, channels, *plan.size), dtype=gy.dtype) if need_x else None   # (N, C, *D)
        gw = xp.zeros((groups, group_in * taps, group_out), dtype=gy.dtype) if need_w else None  # (G, Cg·∏K, Og)
        per_sample = (channels * (plan.phases * (1 + need_x) + need_w * taps) + out_channels) * plan.image_length * gy.itemsize
        for block in _blocks(batch, per_sample, _SHIFTED_BACKWARD_BLOCK_BYTES):
            gy_block = gy[block]
            samples = gy_block.shape[0]
            span = plan.span(samples)
            # The upstream gradient on the block's output positions, zero where no output sits.
            gy_runs = xp.zeros((out_channels, samples * plan.image_length), dtype=gy.dtype)  # (O, n·∏Dq)
            plan.valid(plan.runs_as_grid(gy_runs, samples))[...] = gy_block.swapaxes(0, 1)
            g_images = xp.zeros((plan.phases, channels, samples * plan.image_length), dtype=gy.dtype) if need_x else None
            if need_w:
                # One product over the block's columns, not one per tap: a per-tap ∂Wₖ has a
                # tiny (Og × Cg) output over a very long inner dimension, which BLAS runs
                # 1.4–2.4× slower than this (Og × Cg·∏K) one, even with the columns' copy.
                cols = plan.columns_of_images(self.x_padded[block], span, groups)  # (G, Cg·∏K, span)
                gw += xp.matmul(cols, gy_runs[:, :span].reshape(groups, group_out, span).swapaxes(-1, -2))
            for i, (phase, offset) in enumerate(plan.taps):
                for g in range(groups if need_x else 0):
                    rows_in, rows_out = slice(g * group_in, (g + 1) * group_in), slice(g * group_out, (g + 1) * group_out)
                    gemm(self.w_taps[i, g].T, gy_runs[rows_out, :span],
                         g_images[phase, rows_in, offset:offset + span], beta=1.0)
            if need_x:
                plan.merge_channels_first(g_images, gx[block])
        if need_w:
            gw = gw.swapaxes(-1, -2).reshape(out_channels, group_in, *plan.kernel)  # (O, Cg, *K)
        return gx, gw

    def _transposed_plan(self, out_size):
        """At stride 1, the lowering of ``gx = gy ⋆ flip(W)ᵀ``, or None when it does not apply.

        ``y[o] = Σₖ x[o + k·dil − lo]·w[k]`` gives ``gx[i] = Σₖ gy[i + lo − k·dil]·w[k]``: a
        stride-1 correlation of ``gy`` padded by ``(K − 1)·dil − lo`` below and
        ``(K − 1)·dil − hi`` above with the kernel reversed and in/out channels swapped. It
        writes ``gx`` directly, which is much cheaper than scattering ∏K column gradients back
        (the general path, kept for strides > 1 and for padding wider than the kernel's reach).
        """
        plan = self.plan
        if any(s != 1 for s in plan.stride):
            return None
        reach = [(k - 1) * dil for k, dil in zip(plan.kernel, self.dilation)]
        lo = [r - p for r, p in zip(reach, self.pad_lo)]
        hi = [r - p for r, p in zip(reach, self.pad_hi)]
        if min(lo + hi) < 0:
            return None
        transposed = _lowering(out_size, plan.kernel, plan.stride, self.dilation, lo, hi)
        # Its columns hold O·L' values per tap against the scatter path's C·L; with many more
        # outputs than inputs (LeNet's 6→16) or a wide "full" padding they outgrow the cost of
        # the scatter, so it only runs while they stay within `_TRANSPOSED_COST` times as many.
        out_channels = self.w_mat.shape[0] * self.w_mat.shape[1]
        if out_channels * transposed.length > _TRANSPOSED_COST * self.channels * plan.length:
            return None
        return transposed

    def _transposed_weight(self):
        """The weight reversed in space with in/out swapped per group: ``(G, Cg, Og·∏K)``."""
        groups, kernel = self.groups, self.plan.kernel
        out_channels, group_in, n = self.w_mat.shape[0] * self.w_mat.shape[1], self.channels // groups, len(kernel)
        w = self.w_mat.reshape(out_channels, group_in, *kernel)                         # (O, Cg, *K)
        w = w[(slice(None), slice(None)) + (slice(None, None, -1),) * n]               # flip every spatial axis
        w = w.reshape(groups, out_channels // groups, group_in, *kernel)                # (G, Og, Cg, *K)
        return xp.ascontiguousarray(w.swapaxes(1, 2)).reshape(groups, group_in, -1)     # (G, Cg, Og·∏K)


def _shifted_products(group_in, group_out):
    """Whether a convolution with these channels per group runs as shifted products.

    Only where BLAS's accumulating product is reachable (`striate._blas`), and only for
    groups wide enough that each tap's product is worth a call: for a depthwise layer every
    tap would be a product of a single row.
    """
    return GEMM_AVAILABLE and group_in >= _SHIFTED_MIN_CHANNELS and group_out >= _SHIFTED_MIN_CHANNELS


def _weight_taps(w, groups):
    """``w (O, Cg, *K)`` as one ``(Og, Cg)`` matrix per tap and group: ``(∏K, G, Og, Cg)``."""
    out_channels, group_in = w.shape[:2]
    w = w.reshape(groups, out_channels // groups, group_in, -1)                    # (G, Og, Cg, ∏K)
    return xp.ascontiguousarray(w.transpose(3, 0, 1, 2))


def _shifted_correlate(x, w_taps, b, plan):
    """``x (N, C, *D)`` correlated with ``w_taps (∏K, G, Og, Cg)`` as a sum of shifted products.

    ``y = Σₖ Wₖ · xₖ``: for every tap ``k``, the block's phase images seen through the tap's
    window ``xₖ`` (a strided ``(C, span)`` view, no copy) are multiplied by that tap's
    ``(O, C)`` weight and added into the output runs by BLAS itself (β = 1). No columns are
    built: the only copy of the input is its padded, phase-split layout.
    """
    batch, channels = x.shape[:2]
    taps, groups, group_out, group_in = w_taps.shape
    out_channels = groups * group_out
    y = xp.empty((batch, out_channels, *plan.out_size), dtype=x.dtype)             # (N, O, *O)
    per_sample = (channels * plan.phases + out_channels) * plan.image_length * x.itemsize
    for block in _blocks(batch, per_sample, _SHIFTED_BLOCK_BYTES):
        images = plan.split_channels_first(x[block])                               # (∏s, C, n·∏Dq)
        samples = x[block].shape[0]
        span = plan.span(samples)
        runs = xp.empty((out_channels, samples * plan.image_length), dtype=x.dtype)  # (O, n·∏Dq)
        for i, (phase, offset) in enumerate(plan.taps):
            window = images[phase, :, offset:offset + span]                        # (C, span) view
            for g in range(groups):
                gemm(w_taps[i, g], window[g * group_in:(g + 1) * group_in],
                     runs[g * group_out:(g + 1) * group_out, :span], beta=float(i > 0))
        y_block = plan.valid(plan.runs_as_grid(runs, samples)).swapaxes(0, 1)      # (n, O, *O) view
        if b is None:
            y[block] = y_block
        else:
            xp.add(y_block, b.reshape(out_channels, *(1,) * len(plan.kernel)), out=y[block])
    return y


def _per_sample(w_mat):
    """Whether products with this ``(G, Og, Cg·∏K)`` weight run one sample at a time.

    A tiny weight (LeNet's first layer: 6 × 25) makes a thin product that BLAS streams from
    memory at a fraction of its speed when it spans the whole block; per sample, each product's
    columns stay in the fastest cache (about 3× faster measured, at 1 and 2 threads). Larger
    weights keep the single product, which BLAS spreads over its threads better.
    """
    return w_mat.shape[1] * w_mat.shape[2] <= 512


def _by_sample(grid_array, samples):
    """``(G, R, n·L)`` viewed as ``(n, G, R, L)``, each sample's block a strided 2-D matrix BLAS takes as is."""
    groups, rows, _ = grid_array.shape
    return grid_array.reshape(groups, rows, samples, -1).transpose(2, 0, 1, 3)   # (n, G, R, L) view


def _correlate(x, w_mat, b, plan, groups):
    """``x (N, C, *D)`` correlated by ``plan`` with ``w_mat (G, Og, Cg·∏K)`` plus ``b``: ``(N, O, *O)``.

    A block of samples at a time: split into phase images, one matrix product per group over
    the block's columns, the valid outputs copied out (the bias added on the way).
    """
    batch, channels = x.shape[:2]
    out_channels = w_mat.shape[0] * w_mat.shape[1]
    n = len(plan.kernel)
    y = xp.empty((batch, out_channels, *plan.out_size), dtype=x.dtype)             # (N, O, *O)
    per_sample = _per_sample(w_mat)
    for block in _blocks(batch, channels * len(plan.taps) * plan.length * x.itemsize):
        phases = plan.split(x[block])                                              # (n, C, ∏s, ∏Dq)
        cols = plan.columns(phases, groups)                                        # (G, Cg·∏K, n·L)
        if per_sample:
            y_block = xp.matmul(w_mat, _by_sample(cols, phases.shape[0]))          # (n, G, Og, L)
            y_block = plan.valid(y_block.reshape(-1, out_channels, *plan.grid))    # (n, O, *O) view
        else:
            y_block = xp.matmul(w_mat, cols)                                       # (G, Og, n·L)
            y_block = plan.valid(y_block.reshape(out_channels, -1, *plan.grid))    # (O, n, *O) view
            y_block = y_block.swapaxes(0, 1)                                       # (n, O, *O) view
        if b is None:
            y[block] = y_block
        else:
            xp.add(y_block, b.reshape(out_channels, *(1,) * n), out=y[block])      # bias added while copying
    return y


def _resolve_padding(padding, size, kernel, stride, dilation, op):
    """Per-dimension (low, high) padding from an int, a tuple or "valid" / "same" / "full"."""
    n = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return (0,) * n, (0,) * n
        if padding == "same":
            pairs = [same_padding(d, k, s, dil) for d, k, s, dil in zip(size, kernel, stride, dilation)]
            return tuple(lo for lo, _ in pairs), tuple(hi for _, hi in pairs)
        if padding == "full":
            full = tuple(dil * (k - 1) for k, dil in zip(kernel, dilation))
            return full, full
        raise ValueError(f"{op}: padding must be an int, a tuple of {n} ints or one of "
                         f"{', '.join(repr(m) for m in _PADDING_MODES)}, got {padding!r}")
    pad = ntuple(padding, n, "padding", op)
    check_non_negative(pad, "padding", op)
    return pad, pad


def conv_nd(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, flip=False):
    """N-d convolution (cross-correlation, as in every deep-learning library) of ``input`` with ``weight``.

    The number of spatial dimensions ``n`` is ``weight.ndim − 2``.

    Args:
        input: ``(N, C_in, *D)`` or unbatched ``(C_in, *D)``.
        weight: ``(C_out, C_in / groups, *K)``.
        bias: optional ``(C_out,)``.
        stride: step between windows, an int or an ``n``-tuple (positive).
        padding: zeros added around the input: an int or ``n``-tuple (both sides alike), or
            ``"valid"`` (none), ``"full"`` (``dilation·(k − 1)`` on both sides, every partial
            overlap) or ``"same"``. "same" gives ``ceil(d / stride)`` outputs at ANY stride and
            dilation (PyTorch refuses stride > 1 with "same"; striate allows it, like
            TensorFlow): the total padding is
            ``max((ceil(d/s) − 1)·s + (k − 1)·dil + 1 − d, 0)``, split evenly with the odd
            sample on the high side.
        dilation: spacing between kernel taps, an int or ``n``-tuple (positive).
        groups: split channels into ``groups`` independent convolutions; ``groups == C_in``
            is a depthwise convolution. Both ``C_in`` and ``C_out`` must divide by it.
        flip: compute the mathematician's convolution instead: the kernel is reversed on every
            spatial axis before it slides, ``Σ x[i − j]·w[j]`` rather than ``Σ x[i + j]·w[j]``.
            Learned filters don't care which one a layer computes (the flipped filter is
            learned instead); classical filters and `striate.signal.convolve` do. Default False.

    Shape:
        Output ``(N, C_out, *O)`` (no ``N`` for unbatched input), per dimension
        ``O = floor((D + lo + hi − dilation·(K − 1) − 1) / stride) + 1``
        with ``lo``/``hi`` the padding on each side.

    Example::

        >>> x = st.randn(8, 3, 32, 32)
        >>> w = st.randn(16, 3, 3, 3, requires_grad=True)
        >>> conv_nd(x, w, stride=2, padding="same").shape
        (8, 16, 16, 16)
    """
    return _convolve(input, weight, bias, stride, padding, dilation, groups, flip, "conv_nd")


def _convolve(input, weight, bias, stride, padding, dilation, groups, flip, op, rank=None):
    """Validate and normalise every argument once, naming ``op`` in errors, then run `ConvND`.

    ``rank`` fixes the number of spatial dimensions (conv1d/2d/3d); without it the weight decides.
    """
    weight = as_tensor(weight, op, "weight")
    if rank is None:
        n = weight.ndim - 2
        if n < 1:
            raise ValueError(f"{op}: expected weight of shape (C_out, C_in / groups, *kernel) with at least one "
                             f"spatial dimension, got {weight.ndim}-D weight of shape {tuple(weight.shape)}")
        input = as_tensor(input, op)
        if input.ndim not in (n + 1, n + 2):
            raise ValueError(f"{op}: a {weight.ndim}-D weight has {n} spatial dimension(s), so the input must be "
                             f"{n + 2}-D (N, C, *D) or {n + 1}-D (C, *D), got {input.ndim}-D input of shape "
                             f"{tuple(input.shape)}")
    else:
        n = rank
    x, added_batch = expect_spatial_input(input, n, op)
    if weight.ndim != n + 2:
        kernel = ", ".join(f"k{i}" for i in range(1, n + 1))
        raise ValueError(f"{op}: expected {n + 2}-D weight of shape (C_out, C_in / groups, {kernel}), got "
                         f"{weight.ndim}-D weight of shape {tuple(weight.shape)}")
    expect_float(x, op)
    expect_float(weight, op, "weight")
    if weight.dtype != x.dtype:
        raise TypeError(f"{op}: input and weight must have the same dtype, got input {x.dtype} "
                        f"and weight {weight.dtype}")
    if isinstance(groups, bool) or not isinstance(groups, int) and not hasattr(groups, "__index__"):
        raise TypeError(f"{op}: groups must be an int, got {groups!r}")
    groups = int(groups)
    if groups <= 0:
        raise ValueError(f"{op}: groups must be positive, got {groups}")
    channels, size = x.shape[1], tuple(x.shape[2:])
    out_channels, kernel = weight.shape[0], tuple(weight.shape[2:])
    if channels != weight.shape[1] * groups:
        raise ValueError(f"{op}: input channels must equal weight.shape[1] · groups, got {channels} input "
                         f"channels and weight of shape {tuple(weight.shape)} with groups={groups} "
                         f"(expects {weight.shape[1] * groups})")
    if out_channels % groups:
        raise ValueError(f"{op}: output channels (weight.shape[0]) must be divisible by groups, "
                         f"got {out_channels} output channels and groups={groups}")
    if bias is not None:
        bias = as_tensor(bias, op, "bias")
        if tuple(bias.shape) != (out_channels,):
            raise ValueError(f"{op}: expected bias of shape ({out_channels},) (one per output channel), "
                             f"got shape {tuple(bias.shape)}")
        if bias.dtype != x.dtype:
            raise TypeError(f"{op}: bias must have the input's dtype {x.dtype}, got {bias.dtype}")

    stride = ntuple(stride, n, "stride", op)
    check_positive(stride, "stride", op)
    dilation = ntuple(dilation, n, "dilation", op)
    check_positive(dilation, "dilation", op)
    pad_lo, pad_hi = _resolve_padding(padding, size, kernel, stride, dilation, op)
    padded = tuple(d + lo + hi for d, lo, hi in zip(size, pad_lo, pad_hi))
    span = window_span(kernel, dilation)
    if any(s > p for s, p in zip(span, padded)):
        raise ValueError(f"{op}: the (dilated) kernel must fit in the padded input (else the output is "
                         f"empty), got kernel span "
                         f"{span} (kernel {kernel}, dilation {dilation}) and padded input size {padded} "
                         f"(input {size}, padding {tuple(zip(pad_lo, pad_hi))})")

    if not isinstance(flip, (bool, xp.bool_)):
        raise TypeError(f"{op}: flip must be True or False, got {flip!r}")
    if bool(flip):
        # True convolution is correlation with the kernel reversed on every spatial axis; the
        # reversal is an indexing op, so the weight's gradient is reversed back by autograd.
        weight = weight[(slice(None), slice(None)) + (slice(None, None, -1),) * n]
    y = ConvND.apply(x, weight, bias, stride=stride, pad_lo=pad_lo, pad_hi=pad_hi,
                     dilation=dilation, groups=groups)
    return y.squeeze(0) if added_batch else y


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, flip=False):
    """1-D convolution: `conv_nd` with exactly one spatial dimension (same arguments).

    Shape:
        input ``(N, C_in, L)`` or ``(C_in, L)``, weight ``(C_out, C_in / groups, k)``, output
        ``(N, C_out, L_out)`` with ``L_out = floor((L + lo + hi − dilation·(k − 1) − 1) / stride) + 1``.

    Example::

        >>> F.conv1d(st.randn(4, 2, 100), st.randn(8, 2, 5), padding="same", stride=3).shape
        (4, 8, 34)
    """
    return _convolve(input, weight, bias, stride, padding, dilation, groups, flip, "conv1d", rank=1)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, flip=False):
    """2-D convolution: `conv_nd` with exactly two spatial dimensions (same arguments).

    Shape:
        input ``(N, C_in, H, W)`` or ``(C_in, H, W)``, weight ``(C_out, C_in / groups, kH, kW)``,
        output ``(N, C_out, H_out, W_out)``, each
        ``floor((D + lo + hi − dilation·(k − 1) − 1) / stride) + 1``.

    Example::

        >>> F.conv2d(st.randn(8, 3, 32, 32), st.randn(16, 3, 5, 5), st.zeros(16)).shape
        (8, 16, 28, 28)
    """
    return _convolve(input, weight, bias, stride, padding, dilation, groups, flip, "conv2d", rank=2)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, flip=False):
    """3-D convolution: `conv_nd` with exactly three spatial dimensions (same arguments).

    Shape:
        input ``(N, C_in, D, H, W)`` or ``(C_in, D, H, W)``, weight ``(C_out, C_in / groups, kD, kH, kW)``,
        output ``(N, C_out, D_out, H_out, W_out)``, each
        ``floor((D + lo + hi − dilation·(k − 1) − 1) / stride) + 1``.

    Example::

        >>> F.conv3d(st.randn(2, 1, 16, 16, 16), st.randn(4, 1, 3, 3, 3), padding="full").shape
        (2, 4, 18, 18, 18)
    """
    return _convolve(input, weight, bias, stride, padding, dilation, groups, flip, "conv3d", rank=3)


__all__ = ["conv_nd", "conv1d", "conv2d", "conv3d"]
