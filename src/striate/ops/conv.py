"""Convolution of any spatial rank, lowered to matrix products over sliding windows.

One ``ConvND`` serves 1-D, 2-D and 3-D. A block of samples is padded, split by stride phase
(the samples at positions ≡ r mod stride along every axis) and laid out channel by channel
with the samples end to end, each phase one flat array (see `_Lowering`). In that layout
every kernel tap reads, for every output position of the whole block at once, ONE contiguous
window, so a tap is a strided view and needs no copy.

Two lowerings use it, chosen per layer (`_shifted_fold`):

- **shifted products** ``y = Σₖ Wₖ · xₖ``, one matrix product per tap added in place by BLAS
  itself (``C += A·B``, reached through `striate._blas`): no columns at all. Used for groups of
  at least 16 channels in and out, wherever NumPy's BLAS is reachable. For 4–15 channels the
  taps of the first axis are first *folded* into the rows (a copy per such tap), so each
  product is ``K₁`` times wider and there are ``K₁`` times fewer; so are a wide layer's in
  forward when its kernel has 27 taps or more (3³, 7×7). An ungrouped layer's bias rides in
  the first product as a row of ones.
- **im2col**: the taps' windows copied into columns and multiplied in one product per group
  (one per sample when the weight is tiny). Pure NumPy; used for depthwise and narrow groups,
  the input gradient of 1–3 input channels (images, signals; their forward folds the first
  axis, and so does their weight gradient when its products are tiny), and everywhere when
  BLAS is not reachable.

Either way the outputs are returned as a strided view of the products' grid (`_outputs`).

Backward reuses the layout. The weight gradient is ``(cols · gyᵀ)ᵀ``: over all columns with
im2col, and with shifted products one such product per tap of the other axes, over the rows
folded along the first axis (taken in chunks of positions when its output is tiny). The input
gradient is, with shifted products, ``Wₖᵀ · gy``
accumulated by BLAS into each tap's window;
with im2col, at stride 1 the transposed convolution of ``gy`` through the same forward
lowering, and otherwise ``Wᵀ · gy`` added back tap by tap onto the phase arrays. Gradients
added into phase arrays at stride 1 are returned as a view of them, like the outputs.
"""
import collections
import functools
import itertools
import math

from striate._backend import xp
from striate._blas import GEMM_AVAILABLE, gemm
from striate.autograd.function import Function
from striate.kernels.sizes import check_non_negative, check_positive, ntuple, same_padding, window_span
from striate.kernels.transpose import swapped
from striate.ops._validate import as_tensor, einsum_layout, expect_float, expect_spatial_input

_PADDING_MODES = ("valid", "same", "full")


# im2col processes samples in blocks whose columns take about this many bytes, so each
# block's columns are still in cache when the matrix product reads them (and memory stays
# bounded).
_BLOCK_BYTES = 2 * 2**20

# Shifted products hold only input- and output-sized arrays per block in forward (no
# columns), and in backward the rows folded along the first axis (a K₁-fold copy of the
# input) for the weight gradient. Measured best of 1–32 MB.
_SHIFTED_BLOCK_BYTES = 16 * 2**20
_SHIFTED_BACKWARD_BLOCK_BYTES = 8 * 2**20
# Below this many channels per group (in or out), one tap's product is too thin for BLAS
# (measured unfolded against im2col: LeNet's 6→16 no faster, 1→6 and a 3-channel stem 2×
# slower, 8-channel groups 1.15× slower).
_SHIFTED_MIN_CHANNELS = 16
# From this many input channels (and up to 15), an ungrouped layer folds its first axis's taps
# into the shifted products (LeNet's 6→16 forward+backward 3.9 → 3.1 ms); below it the
# products are too thin again in backward (1→6: weight gradient 1.73 → 2.25 ms, a 3-channel
# 7×7 stem 62 → 70 ms forward+backward), so backward stays im2col (forward folds: `_shifted_fold`).
_FOLDED_MIN_CHANNELS = 4
# From this many taps, a layer wide enough to need no folding still folds its first axis in
# forward: a 3³ kernel's 27 products become 9 three times deeper, 8–14 % faster at 32–128
# channels (3-D 32 → 32 on 8×28×28: 10.4 → 9.3 ms; 128 → 128 on 4×7×7: 8.6 → 7.4 ms), equal
# at 16, and a 7×7 32-channel layer 5 % faster; a 5×5 16-channel layer (25 taps) was 15 %
# slower. Backward keeps the unfolded products (its input gradient accumulates into windows).
_WIDE_FOLD_TAPS = 27
# A weight-gradient product with at most this many outputs (LeNet's 30 × 16 per outer tap,
# its first layer's 5 × 6) over a whole block is long and thin: OpenBLAS ran it at 11–60
# GFLOP/s, packing both long operands for few flops per value. It is taken instead as one
# batched matmul over chunks of about this many positions (`_chunk_length`), then summed:
# small products, which OpenBLAS multiplies unpacked. LeNet's 6 → 16 at batch 64, forward and
# weight gradient: 1.70 → 1.39 ms; chunks of 2,048 gained less (1.53 ms), of 4,096 nothing,
# and chunking wider outputs nothing either (ResNet-20's 48 × 16: equal; 512 channels slower).
_CHUNKED_OUTPUTS = 512
_CHUNK_POSITIONS = 1024
# A layer's outputs are returned as a view of the products' grid while the grid holds at most
# this many positions per output (see `_outputs`); beyond it they are copied out. Small maps
# waste the most (ResNet-20's 8×8 at padding 1: 9×9 cells, 1.27; ResNet-18's 7×7: 1.31), and
# their copy-out was 10–13 % of the forward (ResNet-20 64→64 4.33 → 3.78 ms without it);
# LeNet's unpadded 6→16 (14×10 positions per 10×10 outputs, 1.4) is compacted.
_GRID_WASTE = 1.35
# Below this size the input gradient is still copied out of per-block phase arrays: the copy
# costs under 0.05 ms there, and the batch-wide array changed how glibc laid out LeNet-5's
# small step (b64: peak RSS 10.5 → 11.6 MB with NumPy's own allocations unchanged at 9.5 MB).
_GRADIENT_VIEW_BYTES = 2**20


class _Lowering:
    """Where every kernel tap reads in a block of samples laid end to end.

    Along each axis the padded input is cut into ``s`` stride phases: phase ``r`` holds padded
    positions ``r, r + s, r + 2s, …``. Output ``o`` at tap ``k`` reads padded position
    ``o·s + k·dil``, which is sample ``o + (k·dil) // s`` of phase ``(k·dil) % s``: at any
    stride, a tap is a stride-1 shift inside one phase.

    Each sample, and along each axis each row of a sample, takes a *cell* of
    ``P = max(ceil((D + max(lo, hi)) / s), O)`` phase samples, holding the ``D`` input samples
    at their padded positions; the rest of the cell is zero. Cells sit back to back, so a
    cell's padding is shared with its neighbours' (``max(lo, hi)``, not ``lo + hi``, zeros
    between two rows or two samples). The output runs over the *grid* of every cell position;
    the positions past ``O`` on an axis are computed and dropped (their gradient is zero).

    A block of ``n`` samples is stored as ``(∏s, C, n·∏P + tail)``: phase, channel, then the
    flat cells, with ``tail`` zeros after the last sample so that every tap's window
    ``[offset, offset + n·∏P)`` is in bounds. A true output's read never leaves its own cell's
    data and zeros: reads stop ``hi`` past the data, before the next cell's data starts, and a
    read that runs into the next cell along an axis lands in that cell's leading zeros (at most
    ``lo`` into it). So every tap reads all its inputs as one contiguous window.
    """

    def __init__(self, size, kernel, stride, dilation, pad_lo, pad_hi):
        n = len(kernel)
        padded = [d + lo + hi for d, lo, hi in zip(size, pad_lo, pad_hi)]
        self.out_size = tuple((p - dil * (k - 1) - 1) // s + 1
                              for p, k, s, dil in zip(padded, kernel, stride, dilation))
        self.cell = tuple(max(-(-(d + max(lo, hi)) // s), o)
                          for d, lo, hi, s, o in zip(size, pad_lo, pad_hi, stride, self.out_size))
        self.length = math.prod(self.cell)                                        # L: positions per sample
        self.phases = math.prod(stride)
        self.pad_lo = tuple(pad_lo)
        self.size, self.kernel, self.stride, self.dilation = tuple(size), tuple(kernel), tuple(stride), tuple(dilation)
        pitch = [math.prod(self.cell[d + 1:]) for d in range(n)]
        phase_pitch = [math.prod(stride[d + 1:]) for d in range(n)]
        self.taps = []                                                            # (phase, offset) per tap
        for tap in itertools.product(*(range(k) for k in kernel)):
            reach = [t * dil for t, dil in zip(tap, dilation)]
            self.taps.append((sum(r % s * q for r, s, q in zip(reach, stride, phase_pitch)),
                              sum(r // s * p for r, s, p in zip(reach, stride, pitch))))
        self.tail = max(offset for _, offset in self.taps)
        self._grids = {}                                                          # (fold, compact) → _Grid

    def _phase_slices(self):
        """Per phase ``r``: the input samples it holds and where they sit in a cell.

        Padded position ``r + s·j`` holds input sample ``r + s·j − lo`` when that is inside the
        input; everything else in a cell is padding (zero).
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

    def _cells(self, images, batch):
        """The ``(*s, C, n, *P)`` view of ``images (∏s, C, n·∏P + tail)`` without its tail."""
        channels = images.shape[1]
        return images[:, :, :batch * self.length].reshape(*self.stride, channels, batch, *self.cell)

    def split(self, x, ones=False):
        """``x (n, C, *D)`` padded and split into the block's phase arrays ``(∏s, C, n·∏P + tail)``.

        With ``ones``, a channel of ones follows the input's (``C + 1`` channels in all): the
        row a bias is multiplied by inside a product (see `_shifted_correlate`).
        """
        batch, channels = x.shape[:2]
        # At stride 1 only the padding is zeroed, slab by slab along each axis, before the data
        # is copied in: zeroing the whole array first is a pass more (1-D 64 → 64: 0.95 →
        # 0.66 ms). Phases of a stride leave many one-sample gaps, which were slower that way.
        strided = self.phases > 1
        shape = (self.phases, channels + ones, batch * self.length + self.tail)
        images = xp.zeros(shape, dtype=x.dtype) if strided else xp.empty(shape, dtype=x.dtype)
        images[:, channels:] = 1
        images[:, :channels, batch * self.length:] = 0
        cells, x = self._cells(images[:, :channels], batch), x.swapaxes(0, 1)     # x: (C, n, *D) view
        for phase, source, target in self._phase_slices():
            cell = cells[phase]
            for axis, kept in enumerate(target if not strided else ()):
                lead = (slice(None),) * (2 + axis)
                cell[lead + (slice(0, kept.start),)] = 0
                cell[lead + (slice(kept.stop, None),)] = 0
            cell[(slice(None), slice(None)) + target] = x[(Ellipsis,) + source]
        return images

    def merge(self, g, gx):
        """Adjoint of `split`: write the gradient ``g (∏s, C, n·∏P + tail)`` of the phase arrays into ``gx (n, C, *D)``."""
        cells, gx = self._cells(g, gx.shape[0]), gx.swapaxes(0, 1)                # gx: (C, n, *D) view
        for phase, source, target in self._phase_slices():
            gx[(Ellipsis,) + source] = cells[phase + (slice(None), slice(None)) + target]

    def unsplit(self, g, batch):
        """At stride 1, the adjoint of `split` without a copy: ``g``'s input positions as an ``(n, C, *D)`` view."""
        (phase, _, target), = self._phase_slices()
        return self._cells(g, batch)[phase + (slice(None), slice(None)) + target].swapaxes(0, 1)

    def _windows(self, images, phase, offset, batch, run):
        """Tap ``(phase, offset)``'s window of every sample: ``(C, n, run)``, a view of ``images``."""
        window = images[phase, :, offset:offset + batch * self.length]             # in bounds: offset ≤ tail
        return window.reshape(window.shape[0], batch, self.length)[:, :, :run]

    def columns(self, images, batch, groups):
        """The block's im2col columns, each tap's window of ``images``: ``(G, Cg·∏K, n·run)``.

        Each sample keeps its grid positions only up to its last output row (`im2col_run`),
        which skips the padding rows and, without padding, the ``(K − 1)·dil`` rows each
        sample ends with.
        """
        channels, run = images.shape[1], self.im2col_run
        cols = xp.empty((channels, len(self.taps), batch, run), dtype=images.dtype)  # (C, ∏K, n, run)
        for i, (phase, offset) in enumerate(self.taps):
            cols[:, i] = self._windows(images, phase, offset, batch, run)
        return cols.reshape(groups, -1, batch * run)

    def add_columns(self, g, gcols, batch):
        """Adjoint of `columns`: add ``gcols (G, Cg·∏K, n·run)`` tap by tap into ``g (∏s, C, n·∏P + tail)``."""
        channels = g.shape[1]
        gcols = gcols.reshape(channels, len(self.taps), batch, -1)                # (C, ∏K, n, run)
        for i, (phase, offset) in enumerate(self.taps):
            self._windows(g, phase, offset, batch, gcols.shape[-1])[...] += gcols[:, i]

    def grid(self, fold, compact=True):
        """Where shifted products that fold the first ``fold`` axes' taps into rows compute (a `_Grid`).

        Taps run row-major over the axes, so tap ``j·I + i`` is inner tap ``j`` (one of the
        ``J`` taps over the first ``fold`` axes) combined with outer tap ``i`` (a shift: one of
        the ``I`` taps over the other axes). Nothing shifts along a folded axis, so with
        ``compact`` the grid keeps only its ``O`` output positions there, not the cell's ``P``
        (LeNet's unpadded 5×5 on 14×14 computes 10×14 positions, not 14×14). The other axes
        keep the cell, so the outer taps' offsets are the same in the grid as in the phase
        arrays, and the inner taps keep theirs in the phase arrays, which `fold` reads.
        Folding the first axes rather than the last makes each inner tap's copy a run of whole
        rows (LeNet's 6 → 16: 47 µs, against 133 µs in runs of 10 folding the last).
        Each grid is built once per lowering: every call of a layer asks for the same ones.
        """
        key = (fold, compact and fold > 0)
        if key not in self._grids:
            self._grids[key] = self._grid(fold, compact)
        return self._grids[key]

    def _grid(self, fold, compact):
        outer_taps = math.prod(self.kernel[fold:])
        outer, inner = self.taps[:outer_taps], self.taps[::outer_taps]
        cell = self.out_size[:fold] + self.cell[fold:] if compact else self.cell
        return _Grid(cell, math.prod(cell), outer, inner, fold, len(inner) == 1 and cell == self.cell)

    def _inner_window(self, image, offset, batch, grid):
        """An inner tap's values at every grid position: a ``(C, n, *grid.cell)`` view of ``image (C, n·∏P + tail)``.

        The tap's run of the flat phase array, cut into cells and kept along the folded axes
        only at the grid's positions. A read past a cell's end runs on into the next cell's
        leading zeros, as every tap's read does (see the class docstring).
        """
        run = image[:, offset:offset + batch * self.length]                          # in bounds: offset ≤ tail
        cells = run.reshape(run.shape[0], batch, *self.cell)
        return cells[(slice(None), slice(None)) + tuple(slice(0, c) for c in grid.cell)]

    @staticmethod
    def _on_grid(row, batch, grid):
        """``row (C, n·grid.length + reach)``'s grid positions as ``(C, n, *grid.cell)``, a view."""
        return row[:, :batch * grid.length].reshape(row.shape[0], batch, *grid.cell)

    def fold(self, images, batch, grid, ones=False):
        """``images`` with every inner tap's values stacked as rows: ``{outer phase: (C·J, n·grid.length + reach)}``.

        Row ``c·J + j`` holds channel ``c`` at inner tap ``j`` on every grid position, then
        zeros as far as the outer taps reach past the last sample; with ``ones``, a row of
        ones follows (``C·J + 1`` rows), as `split` adds a channel. Where the grid is the
        phase arrays' own and nothing is folded (``grid.views``), the values are views of
        ``images`` (a ones channel included if `split` made one), and accumulating into them
        accumulates into ``images``.
        """
        width = batch * grid.length + max(offset for _, offset in grid.outer)   # in bounds: within the tail
        channels, inner, folded = images.shape[1], len(grid.inner), {}
        for phase in sorted({phase for phase, _ in grid.outer}):
            if grid.views:
                folded[phase] = images[phase, :, :width]
                continue
            rows = xp.empty((channels * inner + ones, width), dtype=images.dtype)
            rows[channels * inner:] = 1
            taps = rows[:channels * inner].reshape(channels, inner, width)              # (C, J, width)
            taps[:, :, batch * grid.length:] = 0
            for j, (inner_phase, offset) in enumerate(grid.inner):
                self._on_grid(taps[:, j], batch, grid)[...] = self._inner_window(images[phase + inner_phase],
                                                                               offset, batch, grid)
            folded[phase] = rows
        return folded

    def unfold(self, g_folded, g, batch, grid):
        """Adjoint of `fold` (unless ``grid.views``): add every inner tap's rows back into ``g (∏s, C, n·∏P + tail)``."""
        channels = g.shape[1]
        for phase, rows in g_folded.items():
            rows = rows.reshape(channels, len(grid.inner), -1)                         # (C, J, width)
            for j, (inner_phase, offset) in enumerate(grid.inner):
                self._inner_window(g[phase + inner_phase], offset, batch, grid)[...] += \
                    self._on_grid(rows[:, j], batch, grid)

    @property
    def im2col_cell(self):
        """Grid positions per sample in im2col's columns: up to the last output row, ``(O₁, P₂, …)``."""
        return self.out_size[:1] + self.cell[1:]

    @property
    def im2col_run(self):
        return math.prod(self.im2col_cell)

    def valid(self, runs, batch, cell):
        """The true outputs ``(R, n, *O)`` (a view) of ``runs (R, n·∏cell)``, one value per grid position."""
        grid = runs.reshape(runs.shape[0], batch, *cell)
        return grid[(slice(None), slice(None)) + tuple(slice(0, o) for o in self.out_size)]


# The positions shifted products compute at, per sample (``length = ∏cell``), their outer
# taps ``(phase, offset in the grid)`` and inner taps ``(phase, offset in the phase arrays)``
# for ``fold`` folded axes, and whether `_Lowering.fold` can return views (`_Lowering.grid`).
_Grid = collections.namedtuple("_Grid", "cell length outer inner fold views")


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
    as "same" needs), and every setting is an ``n``-tuple of ints. Phase arrays and columns
    are built block by block and never stored: backward rebuilds them from the input.
    """

    def forward(self, x, w, b, *, stride, pad_lo, pad_hi, dilation, groups):
        channels, (out_channels, _, *kernel) = x.shape[1], w.shape
        plan = _lowering(x.shape[2:], kernel, stride, dilation, pad_lo, pad_hi)
        need_x, need_w, _ = self.needs_input_grad
        group_in, group_out = channels // groups, out_channels // groups
        # Forward and backward may lower differently (see `_shifted_fold`); backward's choice is kept.
        fold = _shifted_fold(group_in, group_out, groups, len(plan.taps), forward=True)
        self.fold = _shifted_fold(group_in, group_out, groups, len(plan.taps))
        self.shifted = self.fold is not None
        self.weight_fold = self.fold if self.shifted else _weight_gradient_fold(group_in, group_out, groups, kernel[0])
        if fold is not None:
            w_folds = _weight_folds(w, groups, plan.grid(fold).inner)               # (outer taps, G, Og, Cg·J)
            y = _shifted_correlate(x, w_folds, b, plan, fold)
        else:
            y = _correlate(x, w.reshape(groups, group_out, -1), b, plan, groups)     # w: (G, Og, Cg·∏K)
        self.w_folds = None
        if need_x and self.shifted:
            self.w_folds = w_folds if fold == self.fold else _weight_folds(w, groups, plan.grid(self.fold).inner)
        # The input itself, not its phase arrays: backward splits it again block by block, so
        # a layer keeps no activation-sized copy between forward and backward.
        self.x = x if need_w else None
        self.w_mat = w.reshape(groups, group_out, -1) if need_x and not self.shifted else None
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
            # One einsum pass: 3–4× faster than sum over axes (0, 2, …) on LeNet's gradients.
            gb = xp.einsum(f"{einsum_layout(gy.ndim)}->c", gy)                     # (O,)
        transposed = need_x and not self.shifted and self._transposed_plan(out_size)
        if transposed:
            gx = _correlate(gy, self._transposed_weight(), None, transposed, groups)  # (N, C, *D)
        scatter = need_x and not transposed
        # At stride 1 the input gradient is left in the phase arrays' gradient, one for the
        # whole batch, and returned as a view of it (no copy-out: ResNet-20 16→16 backward
        # 1.1 ms less), unless their cells hold too many padding positions per input (`_GRID_WASTE`)
        # or the whole array is small (`_GRADIENT_VIEW_BYTES`).
        whole = (scatter and plan.phases == 1 and plan.length <= _GRID_WASTE * math.prod(plan.size)
                 and channels * (batch * plan.length + plan.tail) * gy.itemsize >= _GRADIENT_VIEW_BYTES)
        if whole:
            g_all = xp.zeros((1, channels, batch * plan.length + plan.tail), dtype=gy.dtype)
        elif scatter:
            gx = xp.empty((batch, channels, *plan.size), dtype=gy.dtype)           # (N, C, *D)
        if need_w:
            gw = xp.zeros((groups, channels // groups * len(plan.taps), group_out), dtype=gy.dtype)  # (G, Cg·∏K, Og)
        if not (scatter or need_w):
            return gx, gw, gb
        folded_w = need_w and self.weight_fold is not None
        per_sample = need_w and not folded_w and _per_sample(gw.swapaxes(-1, -2))
        # Shifted products need each tap's window over the block in one piece: every grid position.
        grid = plan.grid(self.fold) if self.shifted else None
        cell = grid.cell if self.shifted else plan.im2col_cell                     # im2col's is grid(1)'s
        run = math.prod(cell)
        if self.shifted or (folded_w and not scatter):
            # Per sample: the phase arrays and (folded) gradient rows for ∂x; the phase arrays
            # and the rows folded over the first axis for ∂W; the upstream gradient.
            folded = len(grid.inner) * plan.phases if self.fold else 0
            per_block = (channels * (plan.phases + folded) * scatter
                         + channels * (plan.phases + plan.kernel[0] * plan.phases) * need_w + out_channels) * run
            blocks = _blocks(batch, per_block * gy.itemsize, _SHIFTED_BACKWARD_BLOCK_BYTES)
        else:
            blocks = _blocks(batch, channels * len(plan.taps) * run * gy.itemsize)
        for block in blocks:
            gy_block = gy[block]
            samples = gy_block.shape[0]
            # The upstream gradient laid out like the products' output: zero off the true outputs.
            gy_runs = xp.zeros((out_channels, samples * run), dtype=gy.dtype)     # (O, n·run)
            plan.valid(gy_runs, samples, cell)[...] = gy_block.swapaxes(0, 1)
            gy_runs = gy_runs.reshape(groups, group_out, -1)                       # (G, Og, n·run)
            if folded_w:
                # Folded over the first axis even when the forward is not: K₁-times-wider
                # outputs than per tap, and a K₁-fold copy instead of full columns (∏K-fold).
                _folded_weight_gradient(gw, self.x[block], gy_runs, plan, samples, self.weight_fold)
            elif need_w:
                cols = plan.columns(plan.split(self.x[block]), samples, groups)    # (G, Cg·∏K, n·run)
                # gwᵀ = cols · gyᵀ: BLAS runs this orientation (long inner dimension, the small
                # Og last) 1.5–1.8× faster than gy · colsᵀ on the thin shapes of small layers;
                # and one product over all taps beats a (tiny) product per tap by 1.1–2.4×.
                if per_sample:
                    gw += xp.matmul(_by_sample(cols, samples),
                                    _by_sample(gy_runs, samples).swapaxes(-1, -2)).sum(axis=0)
                else:
                    gw += xp.matmul(cols, gy_runs.swapaxes(-1, -2))                # (G, Cg·∏K, Og)
            if scatter:
                if whole:   # this block's part; its windows' spill past it only reaches padding
                    g = g_all[:, :, block.start * plan.length:block.stop * plan.length + plan.tail]
                else:
                    g = xp.zeros((plan.phases, channels, samples * plan.length + plan.tail), dtype=gy.dtype)
                if self.shifted:
                    _shifted_add(g, self.w_folds, gy_runs, plan, samples, grid)
                else:
                    plan.add_columns(g, xp.matmul(self.w_mat.swapaxes(-1, -2), gy_runs), samples)  # Wᵀ·gy
                if not whole:
                    plan.merge(g, gx[block])
        if whole:
            gx = plan.unsplit(g_all, batch)                                        # (N, C, *D) view
        if need_w:
            gw = swapped(gw, 1).reshape(out_channels, -1, *plan.kernel)           # (O, Cg, *K)
        return gx, gw, gb

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
        return swapped(w, 1).reshape(groups, group_in, -1)                             # (G, Cg, Og·∏K)


def _shifted_fold(group_in, group_out, groups, taps, forward=False):
    """How a convolution with these channels per group and ``taps`` (∏K) runs: shifted products or im2col.

    Returns the number of leading axes whose taps are folded into the products' inner
    dimension (`_Lowering.grid`), or None for im2col. Only where BLAS's accumulating product
    is reachable (`striate._blas`). Groups of 16 channels or more in and out fold nothing: a
    tap's product is wide enough; but with `_WIDE_FOLD_TAPS` taps or more their ``forward``
    folds the first axis, as fewer, deeper products beat the copy. 4 to 15 input channels
    fold the first axis's taps (LeNet's 6 → 16 then multiplies 30-wide rows, not 6-wide).
    Grouped layers with few channels (depthwise) stay with im2col, whose per-sample products
    suit them better.

    Fewer input channels (images, signals: 1 or 3) fold the first axis in the ``forward`` only:
    a K₁-fold copy of the input instead of im2col's ∏K-fold was faster (same process,
    median of 7: LeNet's 1 → 6 0.62 → 0.47 ms, a 3-channel 3-D layer 8.1 → 6.5 ms, a 1 → 32
    signal 0.93 → 0.77 ms, a 7×7 stem equal), while its weight gradient, per outer tap with a
    tiny ``(C·K₁ × O)`` output, was slower than im2col's (forward+backward: the 3-D layer
    37 → 49 ms, the stem 64 → 82 ms), so backward keeps im2col there.
    """
    if not GEMM_AVAILABLE:
        return None
    if min(group_in, group_out) >= _SHIFTED_MIN_CHANNELS:
        return int(forward and taps >= _WIDE_FOLD_TAPS)
    if groups != 1:
        return None
    return 1 if forward or group_in >= _FOLDED_MIN_CHANNELS else None


def _weight_gradient_fold(group_in, group_out, groups, first_taps):
    """Under an im2col input gradient, whether the weight gradient takes folded products (1) or columns (None).

    An ungrouped layer whose weight-gradient products per outer tap are tiny, ``C·K₁ × O`` at
    most `_CHUNKED_OUTPUTS` values (LeNet's first layer 5 × 6, a 3-channel 3³ layer's 9 × 16, a
    1 → 32 signal's 9 × 32), takes them chunk by chunk from rows folded along the first axis,
    as shifted layers do (same process, forward and weight gradient: LeNet's first layer at
    batch 64 1.52 → 1.43 ms, the 3-D layer 20.9 → 20.2 ms, the signal equal). A wider product
    (a 7×7 stem's 21 × 64) is faster from columns: 38.7 against 54.1 ms. Such layers' input
    gradient stays im2col's, 5–6 % faster than shifted products for the signal and the 3-D layer.
    """
    if not GEMM_AVAILABLE or groups != 1 or group_in * first_taps * group_out > _CHUNKED_OUTPUTS:
        return None
    return 1


def _weight_folds(w, groups, inner):
    """``w (O, Cg, *K)`` as one ``(Og, Cg·J)`` matrix per outer tap and group: ``(∏K / J, G, Og, Cg·J)``.

    The inner taps lead ``K`` (`_Lowering.grid`), so ``(O·Cg·J, outer)`` is transposed as one matrix.
    """
    out_channels = w.shape[0]
    w = swapped(w.reshape(-1, math.prod(w.shape[2:]) // len(inner), 1), 0)       # (outer, O·Cg·J, 1)
    return w.reshape(w.shape[0], groups, out_channels // groups, -1)


def _shifted_correlate(x, w_folds, b, plan, fold):
    """``x (N, C, *D)`` correlated with ``w_folds (outer taps, G, Og, Cg·J)`` as a sum of shifted products.

    ``y = Σᵢ Wᵢ · xᵢ``: for every outer tap ``i``, the block's (folded) phase arrays seen
    through the tap's window ``xᵢ`` (a strided ``(C·J, n·L)`` view, no copy) are multiplied
    by that tap's ``(O, C·J)`` weight and added into the output runs by BLAS itself (β = 1).
    Unfolded (``J = 1``), no columns are built at all: the only copy of the input is its
    padded, phase-split layout.
    """
    batch, channels = x.shape[:2]
    outer_taps, groups, group_out, group_rows = w_folds.shape
    out_channels = groups * group_out
    grid = plan.grid(fold)
    folded_rows = 0 if grid.views else channels * len(grid.inner) * len({phase for phase, _ in grid.outer})
    per_sample = (channels * plan.phases * plan.length + folded_rows * grid.length) * x.itemsize
    # An ungrouped layer's bias rides in the first tap's product: one more input row, all ones,
    # times one more weight column, b. Filling the outputs with b first cost a whole extra pass
    # over them (a 1 → 32 signal's forward: 1.37 ms with a bias, 1.0 without).
    ones = b is not None and groups == 1
    first = xp.concatenate([w_folds[0, 0], b[:, None]], axis=1) if ones else None   # (O, C·J + 1)
    prefilled = b is not None and not ones  # grouped: every product adds onto b, cheaper than adding it after
    runs = xp.empty((out_channels, batch * grid.length), dtype=x.dtype)            # (O, N·L)
    if prefilled:
        runs[...] = b[:, None]
    for block in _blocks(batch, per_sample, _SHIFTED_BLOCK_BYTES):
        samples = x[block].shape[0]
        images = plan.split(x[block], ones=ones and grid.views)
        folded, span = plan.fold(images, samples, grid, ones=ones and not grid.views), samples * grid.length
        block_runs = runs[:, block.start * grid.length:block.start * grid.length + span]  # (O, n·L) view
        for i, (phase, offset) in enumerate(grid.outer):
            window = folded[phase][:, offset:offset + span]                        # (C·J (+ 1), n·L) view
            for g in range(groups):
                weight = first if ones and i == 0 else w_folds[i, g]
                gemm(weight, window[g * group_rows:g * group_rows + weight.shape[1]],
                     block_runs[g * group_out:(g + 1) * group_out], beta=float(i > 0 or prefilled))
    return _outputs(runs, None, plan, batch, grid.cell)


def _folded_weight_gradient(gw, x, gy_runs, plan, samples, fold):
    """``∂Wᵢ += xᵢ · gyᵀ`` per outer tap from the input's folded rows, into ``gw (G, Cg·∏K, Og)``.

    The rows are folded along the first axis at least (``fold`` axes when the layer folds
    more), on the grid of ``gy_runs``: the layer's own. Folded, each product's output is
    ``(Cg·J × Og)``: J times wider than one tap's, which BLAS runs 1.1–2.4× faster (measured
    against per-tap products), and no full columns are built: the block keeps only its rows
    folded along the first axis (a K₁-fold copy of the input, not ∏K-fold), which keeps a
    small network's step within the memory of the im2col path (LeNet-5 b64: 10.4 MB against
    12.8 MB with columns).
    """
    grid = plan.grid(max(fold, 1), compact=fold > 0)
    groups, _, group_out = gw.shape
    inner = len(grid.inner)
    rows = x.shape[1] // groups * inner                                            # Cg·J
    folded, span = plan.fold(plan.split(x), samples, grid), samples * grid.length
    by_tap = gw.reshape(groups, rows // inner, inner, len(grid.outer), group_out)  # (G, Cg, J, outer, Og) view
    # Tiny outputs are taken chunk by chunk, the rest of the block (if any) at once.
    chunk = _chunk_length(span) if rows * group_out <= _CHUNKED_OUTPUTS else span
    whole = span // chunk * chunk if span >= 2 * chunk else 0                      # positions in whole chunks
    part = xp.empty((rows, group_out), dtype=gw.dtype)
    for i, (phase, offset) in enumerate(grid.outer):
        for g in range(groups):
            window = folded[phase][g * rows:(g + 1) * rows, offset:offset + span]  # (Cg·J, n·L) view
            gy_g = gy_runs[g]                                                       # (Og, n·L)
            if whole:
                xp.sum(xp.matmul(window[:, :whole].reshape(rows, -1, chunk).swapaxes(0, 1),         # (chunks, Cg·J, P)
                                 gy_g[:, :whole].reshape(group_out, -1, chunk).transpose(1, 2, 0)),  # (chunks, P, Og)
                       axis=0, out=part)
            if whole < span:
                gemm(window[:, whole:], gy_g[:, whole:].T, part, beta=float(whole > 0))
            by_tap[g, :, :, i] += part.reshape(rows // inner, inner, group_out)


def _chunk_length(span):
    """The chunk length for a tiny product over ``span`` positions.

    Equal chunks of ½–1 × `_CHUNK_POSITIONS` where some length in that range divides ``span``;
    otherwise `_CHUNK_POSITIONS`, and the remainder is one more product, which OpenBLAS ran 3.5
    times slower per position than the batched chunks: LeNet's 6 → 16 at batch 64 left 768 of
    8,960 positions over; in chunks of 896 instead, its forward and weight gradient took 1.39 ms,
    not 1.44.
    """
    for count in range(-(-span // _CHUNK_POSITIONS), span // (_CHUNK_POSITIONS // 2) + 1):
        if span % count == 0:
            return span // count
    return _CHUNK_POSITIONS


def _shifted_add(g, w_folds, gy_runs, plan, samples, grid):
    """``∂xᵢ += Wᵢᵀ · gy`` for every outer tap and group, added by BLAS into the tap's window of ``g``.

    Unfolded, the windows are views of ``g`` itself; folded, they are windows of the folded
    rows' gradient, which `_Lowering.unfold` then adds back into ``g``.
    """
    outer_taps, groups, group_out, group_rows = w_folds.shape
    span = samples * grid.length
    if grid.views:
        g_folded = plan.fold(g, samples, grid)
    else:
        width = span + max(offset for _, offset in grid.outer)
        g_folded = {phase: xp.zeros((groups * group_rows, width), dtype=g.dtype) for phase in {p for p, _ in grid.outer}}
    for i, (phase, offset) in enumerate(grid.outer):
        for g_index in range(groups):
            gemm(w_folds[i, g_index].T, gy_runs[g_index],
                 g_folded[phase][g_index * group_rows:(g_index + 1) * group_rows, offset:offset + span], beta=1.0)
    if not grid.views:
        plan.unfold(g_folded, g, samples, grid)


def _per_sample(w_mat):
    """Whether im2col products with this ``(G, Og, Cg·∏K)`` weight run one sample at a time.

    A tiny weight (LeNet's first layer: 6 × 25) makes a thin product that BLAS streams from
    memory at a fraction of its speed when it spans the whole block; per sample, each product's
    columns stay in the fastest cache (about 3× faster measured, at 1 and 2 threads). Larger
    weights keep the single product, which BLAS spreads over its threads better.
    """
    return w_mat.shape[1] * w_mat.shape[2] <= 512


def _by_sample(runs, samples):
    """``(G, R, n·run)`` viewed as ``(n, G, R, run)``, each sample's block a strided 2-D matrix BLAS takes as is."""
    groups, rows, _ = runs.shape
    return runs.reshape(groups, rows, samples, -1).transpose(2, 0, 1, 3)         # (n, G, R, run) view


def _correlate(x, w_mat, b, plan, groups):
    """``x (N, C, *D)`` correlated by ``plan`` with ``w_mat (G, Og, Cg·∏K)`` plus ``b``: ``(N, O, *O)``.

    im2col, a block of samples at a time: split into phase arrays, the taps' windows copied
    into columns, one matrix product per group over the block's columns, the valid outputs
    copied out (the bias added on the way).
    """
    batch, channels = x.shape[:2]
    out_channels = w_mat.shape[0] * w_mat.shape[1]
    per_sample, run = _per_sample(w_mat), plan.im2col_run
    runs = xp.empty((out_channels, batch * run), dtype=x.dtype)                    # (O, N·run)
    for block in _blocks(batch, channels * len(plan.taps) * run * x.itemsize):
        samples = x[block].shape[0]
        cols = plan.columns(plan.split(x[block]), samples, groups)                 # (G, Cg·∏K, n·run)
        block_runs = runs[:, block.start * run:block.stop * run].reshape(cols.shape[0], -1, samples * run)
        if per_sample:
            xp.matmul(w_mat, _by_sample(cols, samples), out=_by_sample(block_runs, samples))  # (n, G, Og, run)
        else:
            xp.matmul(w_mat, cols, out=block_runs)                                 # (G, Og, n·run)
    return _outputs(runs, b, plan, batch, plan.im2col_cell)


def _outputs(runs, b, plan, batch, cell):
    """The true outputs of ``runs (O, N·∏cell)`` as ``(N, O, *O)``, plus ``b`` when given.

    A strided view of ``runs``, not a copy: copying the outputs out of the grid was up to a
    third of a layer's forward (a ResNet stem's 3.6 of 17.5 ms). Where the grid is larger
    than the outputs by more than `_GRID_WASTE` (a kernel wider than the padding leaves rows
    of every cell unused: LeNet's unpadded 5×5 on 14×14 computes 14×10 positions for 10×10
    outputs), the view would hold that waste for as long as the activation lives, so it is
    compacted.
    """
    y = plan.valid(runs, batch, cell).swapaxes(0, 1)                               # (N, O, *O) view
    bias = None if b is None else b.reshape(-1, *(1,) * len(plan.kernel))
    if runs.shape[1] > _GRID_WASTE * batch * math.prod(plan.out_size):
        out = xp.empty(y.shape, dtype=y.dtype)                                     # (N, O, *O), C order
        if bias is None:
            out[...] = y
        else:
            xp.add(y, bias, out=out)
        return out
    if bias is not None:
        y += bias
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
