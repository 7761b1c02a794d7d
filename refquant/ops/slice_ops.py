"""Slicing and gathering: LiteRT's STRIDED_SLICE, SLICE, GATHER, GATHER_ND and REVERSE_V2 kernels (raw copies).

* STRIDED_SLICE (``strided_slice.cc`` BuildStridedSliceParams / ResizeOutputTensor and
  ``reference/strided_slice.h`` StridedSlice): the masks are resolved literally as LiteRT does, into an
  "effective" input shape (new axes inserted, the ellipsis expanded) with per-axis start/stop/stride.
  LiteRT writes the selected elements *sequentially* into an output whose shape it computed
  separately; where the two disagree (a shrunk axis whose index is out of range, a negative stride on
  a shrunk axis, an ``offset`` slice running past the end), LiteRT leaves garbage or writes past the
  buffer, and refquant raises a PrepareError instead.
* SLICE (``slice.cc``): ``begin``/``size`` (size -1 = to the end); negative begins, out-of-range
  slices and a static declared output shape that differs from the computed one are rejected, as the
  LiteRT wheel does.
* GATHER (``gather.cc``, reference_ops::Gather): ``axis`` and ``batch_dims``; int16/int32/int64
  indices. An index outside ``[0, axis_size)`` makes LiteRT fail the invocation; refquant raises an
  :class:`refquant.errors.EvalError` at eval (a PrepareError when the indices are constant).
* GATHER_ND (``gather_nd.cc``, reference_ops::GatherNd): int16/int32/int64 indices whose last dim
  (``nd <= rank(params)``) addresses the leading params dims. LiteRT fails the invocation for a
  negative index, a coordinate outside its dim, non-empty indices into empty params, and indices
  with no elements when the output has slices (it then reads a null buffer).
* REVERSE_V2 (``reverse.cc``, reference_ops::Reverse): an int32 rank-1 axis tensor; the sorted axes
  must be contiguous (duplicates fail too); an empty axis tensor crashes LiteRT, so refquant rejects it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import EvalError
from .base import OpContext
from .movement import COPY_TYPES, MovementData, contiguous, int_vector, require_output_dtype

__all__ = [
    "StridedSliceData",
    "SliceData",
    "GatherData",
    "prepare_strided_slice",
    "prepare_slice",
    "prepare_gather",
    "GatherNdData",
    "ReverseData",
    "prepare_gather_nd",
    "prepare_reverse_v2",
]

_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1


# ---------------------------------------------------------------------------------------------
# STRIDED_SLICE


@dataclass(frozen=True)
class StridedSliceData(MovementData):
    """STRIDED_SLICE (reference_ops::StridedSlice with LiteRT's DynamicStridedSliceParams).

    ``out = in.reshape(effective_shape)[ix_(index_0, ..., index_n)]`` written sequentially into the
    prepared output shape (shrunk axes contribute one index and no output dimension).
    """

    #: The input shape with new axes inserted and the ellipsis expanded (same element count).
    effective_shape: tuple[int, ...] = ()
    #: Per effective axis, the input indices visited, in order.
    indices: tuple[tuple[int, ...], ...] = ()

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """The selected elements in the output shape."""
        x = inputs[0]
        assert x is not None
        if not self.effective_shape:
            return [np.asarray(x).reshape(-1)[:1].reshape(self.output_shapes[0])]
        xe = np.reshape(x, self.effective_shape)
        sel = xe[np.ix_(*[np.asarray(ix, dtype=np.int64) for ix in self.indices])]
        return [contiguous(sel).reshape(self.output_shapes[0])]


def _clamp(v: int, lo: int, hi: int) -> int:
    """strided_slice::Clamp: ``hi`` when above it, ``lo`` when below it."""
    if hi < v:
        return hi
    if v < lo:
        return lo
    return v


def _start_for_axis(begin: int, stride: int, size: int, begin_masked: bool) -> int:
    """reference_ops::StartForAxis (DynamicStridedSliceParams)."""
    start = begin
    if start < 0:
        start += size
    start = _clamp(start, 0, size) if stride > 0 else _clamp(start, -1, size - 1)
    if begin_masked:
        start = 0 if stride > 0 else size - 1
    return start


def _end_for_axis(end: int, stride: int, size: int, start: int, end_masked: bool, shrink: bool, offset: bool) -> int:
    """reference_ops::EndForAxis (DynamicStridedSliceParams)."""
    if shrink:
        return start if start >= size else start + 1
    if offset:
        end += start
    if end < 0:
        end += size
    end = _clamp(end, 0, size) if stride > 0 else _clamp(end, -1, size - 1)
    if end_masked:
        end = size if stride > 0 else -1
    return end


def prepare_strided_slice(ctx: OpContext) -> StridedSliceData:
    """STRIDED_SLICE (LiteRT ``strided_slice.cc``, REF): all masks, negative strides, ``offset``.

    Inputs (input, begin, end, strides): int32 1-D index tensors (at most 31 entries; ``begin`` and
    ``end`` of one length, ``strides`` at least as long). Every stride must be nonzero (and not
    INT32_MIN). Checked beyond LiteRT, which would otherwise produce garbage: a shrunk axis must select
    exactly one element (index in range, positive stride) unless the output is empty; with ``offset``
    the slice must stay inside the input, ``begin`` must have one entry per input dimension, and
    ``offset`` cannot be combined with ``ellipsis_mask``/``new_axis_mask``.
    """
    ctx.check_counts(4, 1)
    x = ctx.input(0)
    out = ctx.output(0)
    ctx.check_dtype(x, COPY_TYPES, "input")
    require_output_dtype(ctx, out, x.dtype)
    for i, role in ((1, "begin"), (2, "end"), (3, "strides")):
        t = ctx.input(i)
        ctx.check_dtype(t, ("int32",), role)
        if len(t.shape) != 1:
            raise ctx.error(f"{role} has rank {len(t.shape)}; expected 1", t)
    begin_count = ctx.input(1).shape[0]
    if ctx.input(2).shape[0] != begin_count:
        raise ctx.error(f"begin has {begin_count} entries but end has {ctx.input(2).shape[0]}")
    if ctx.input(3).shape[0] < begin_count:
        raise ctx.error(f"strides has {ctx.input(3).shape[0]} entries; begin has {begin_count}")
    if begin_count > 31:
        raise ctx.error(f"{begin_count} indices; STRIDED_SLICE supports at most 31")
    begin = int_vector(ctx, 1, "begin", ("int32",))
    end = int_vector(ctx, 2, "end", ("int32",))
    strides_in = int_vector(ctx, 3, "strides", ("int32",))
    begin_mask_o = int(ctx.option("begin_mask", 0)) & 0xFFFFFFFF
    end_mask_o = int(ctx.option("end_mask", 0)) & 0xFFFFFFFF
    ellipsis_mask = int(ctx.option("ellipsis_mask", 0)) & 0xFFFFFFFF
    new_axis_mask = int(ctx.option("new_axis_mask", 0)) & 0xFFFFFFFF
    shrink_mask_o = int(ctx.option("shrink_axis_mask", 0)) & 0xFFFFFFFF
    offset = bool(ctx.option("offset", False))
    if offset and (ellipsis_mask or new_axis_mask):
        raise ctx.unsupported(
            "offset together with ellipsis_mask or new_axis_mask (LiteRT indexes `end` inconsistently)"
        )
    in_shape = x.shape
    input_dims = len(in_shape)

    # -- BuildStridedSliceParams: resolve the ellipsis and new axes into an effective input shape.
    num_add_axis = sum(1 for i in range(begin_count) if not (1 << i) & ellipsis_mask and (1 << i) & new_axis_mask)
    eff_dims = input_dims + num_add_axis
    if eff_dims > 31:
        raise ctx.error(f"{eff_dims} effective dimensions; at most 31 are supported")
    eff_ellipsis = 0
    eff_new_axis = 0
    ellipsis_start = eff_dims
    expanded = 0
    i = 0
    while i < eff_dims:
        if (1 << i) & ellipsis_mask:
            ellipsis_start = i
            ellipsis_end = max(i + 1, min(i + 1 + num_add_axis + input_dims - begin_count, eff_dims))
            expanded = ellipsis_end - ellipsis_start - 1
            while i < ellipsis_end:
                eff_ellipsis |= 1 << i
                i += 1
            continue
        if (1 << (i - expanded)) & new_axis_mask:
            eff_new_axis |= 1 << i
        i += 1
    starts = [0] * eff_dims
    stops = [0] * eff_dims
    strides = [1] * eff_dims
    begin_mask = end_mask = shrink_mask = 0
    eff_shape = [0] * eff_dims
    added_ellipsis = added_axes = 0

    def input_dim(k: int) -> int:
        if not 0 <= k < input_dims:
            raise ctx.error("the masks do not describe the input's dimensions consistently", x)
        return in_shape[k]

    for i in range(eff_dims):
        bit = 1 << i
        if bit & eff_ellipsis:
            added_ellipsis = max(0, i - ellipsis_start)
            begin_mask |= bit
            end_mask |= bit
            eff_shape[i] = input_dim(i - added_axes)
        elif bit & eff_new_axis:
            stops[i] = 1
            eff_shape[i] = 1
            added_axes += 1
        elif i >= begin_count + expanded:
            begin_mask |= bit
            end_mask |= bit
            eff_shape[i] = input_dim(i - added_axes)
        else:
            orig = i - added_ellipsis
            if not 0 <= orig < begin_count:
                raise ctx.error("the masks do not describe the input's dimensions consistently", x)
            starts[i] = begin[orig]
            stops[i] = end[orig]
            strides[i] = strides_in[orig]
            if begin_mask_o & (1 << orig):
                begin_mask |= bit
            if end_mask_o & (1 << orig):
                end_mask |= bit
            if shrink_mask_o & (1 << orig):
                shrink_mask |= bit
            eff_shape[i] = input_dim(i - added_axes)
    if int(np.prod(eff_shape, dtype=np.int64)) != x.size:
        raise ctx.error("the masks do not describe the input's dimensions consistently", x)
    if offset and begin_count != eff_dims:
        raise ctx.error(
            f"offset=True with {begin_count} indices for {eff_dims} dimensions: LiteRT sizes the output from "
            "end[] past its length (out-of-bounds read; it crashes)"
        )

    # -- ResizeOutputTensor: the output shape LiteRT allocates.
    out_shape = []
    for i in range(eff_dims):
        stride = strides[i]
        if stride == 0:
            raise ctx.error("stride value has to be non-zero", ctx.input(3))
        if (shrink_mask >> i) & 1:
            continue
        if stride == _INT32_MIN:
            raise ctx.error("stride value INT32_MIN is not supported", ctx.input(3))
        if offset:
            dim = stops[i]
        else:
            s = _start_for_axis(starts[i], stride, eff_shape[i], bool((begin_mask >> i) & 1))
            e = _end_for_axis(stops[i], stride, eff_shape[i], s, bool((end_mask >> i) & 1), False, False)
            dim = e - s
        if (dim < 0) != (stride < 0):
            dim = 0
        elif stride < 0:
            dim = (dim + 1) // stride + 1  # both negative: floor == C truncation here
        else:
            dim = 0 if dim == 0 else (dim - 1) // stride + 1
        if dim < 0 or dim > _INT32_MAX:
            raise ctx.error(f"integer overflow computing output dim at axis {i}")
        out_shape.append(dim)

    # -- The elements reference_ops::StridedSlice visits, in order.
    indices = []
    bad_shrink: list[str] = []
    for i in range(eff_dims):
        size = eff_shape[i]
        stride = strides[i]
        shrink = bool((shrink_mask >> i) & 1)
        s = _start_for_axis(starts[i], stride, size, bool((begin_mask >> i) & 1))
        e = _end_for_axis(stops[i], stride, size, s, bool((end_mask >> i) & 1), shrink, offset)
        idx = tuple(range(s, e, stride))
        if shrink and len(idx) != 1:
            bad_shrink.append(f"shrink_axis on effective axis {i} selects {len(idx)} elements")
        if any(not 0 <= k < size for k in idx):
            raise ctx.error(f"axis {i} reads outside the input (indices {idx[:4]}..., size {size})")
        indices.append(idx)
    visited = int(np.prod([len(ix) for ix in indices], dtype=np.int64)) if eff_dims else 1
    n_out = int(np.prod(out_shape, dtype=np.int64)) if out_shape else 1
    if visited != n_out:
        why = f" ({'; '.join(bad_shrink)})" if bad_shrink else ""
        raise ctx.error(
            f"the slice selects {visited} elements{why} but LiteRT sizes the output {out_shape} ({n_out} elements); "
            "LiteRT would leave it uninitialized or write past the buffer"
        )
    return StridedSliceData(
        (tuple(out_shape),),
        (out.dtype,),
        effective_shape=tuple(eff_shape),
        indices=tuple(indices),
    )


# ---------------------------------------------------------------------------------------------
# SLICE


@dataclass(frozen=True)
class SliceData(MovementData):
    """SLICE (reference_ops::Slice): ``out = in[begin[0]:begin[0]+size[0], ...]``."""

    #: Start index per dimension.
    begin: tuple[int, ...] = ()

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """The slice, contiguous."""
        x = inputs[0]
        assert x is not None
        sl = tuple(slice(b, b + n) for b, n in zip(self.begin, self.output_shapes[0]))
        return [contiguous(np.asarray(x)[sl]).reshape(self.output_shapes[0])]


def _declared_static(ctx: OpContext, index: int) -> tuple[int, ...] | None:
    """The model's declared shape of tensor ``index`` when it is fully static (no -1 in its signature)."""
    t = ctx.model.subgraphs[ctx.subgraph_index].tensors[index]
    sig = t.shape_signature if t.shape_signature is not None else t.shape
    if len(t.shape) == 0 or any(d < 0 for d in sig):
        return None
    return tuple(t.shape)


def prepare_slice(ctx: OpContext) -> SliceData:
    """SLICE (LiteRT ``slice.cc``, REF): int32/int64 ``begin`` and ``size`` with one entry per input dim.

    ``size[k] == -1`` means "to the end". Rejected as by the LiteRT wheel: a negative begin, a size
    below -1, ``begin + size`` past the dimension, and a static declared output shape (no -1 in its
    signature) that differs from the computed one.
    """
    ctx.check_counts(3, 1)
    x = ctx.input(0)
    out = ctx.output(0)
    ctx.check_dtype(x, COPY_TYPES, "input")
    require_output_dtype(ctx, out, x.dtype)
    for i, role in ((1, "begin"), (2, "size")):
        t = ctx.input(i)
        ctx.check_dtype(t, ("int32", "int64"), role)
        if len(t.shape) != 1:
            raise ctx.error(f"{role} has rank {len(t.shape)}; expected 1", t)
    rank = len(x.shape)
    if ctx.input(1).shape[0] != ctx.input(2).shape[0]:
        raise ctx.error("begin and size have different lengths")
    if ctx.input(1).shape[0] != rank:
        raise ctx.error(f"begin has {ctx.input(1).shape[0]} entries for a rank-{rank} input", ctx.input(1))
    begin = int_vector(ctx, 1, "begin")
    size = int_vector(ctx, 2, "size")
    shape = []
    for k, (b, n, d) in enumerate(zip(begin, size, x.shape)):
        if b < 0:
            raise ctx.error(f"Invalid begin: begin[{k}] = {b} is negative", ctx.input(1))
        if n < 0:
            if n != -1:
                raise ctx.error(f"Invalid size: size[{k}] = {n}", ctx.input(2))
            n = d - b
            if n < 0:
                raise ctx.error(f"Invalid begin: begin[{k}] = {b} is past dimension {d}", ctx.input(1))
        elif b + n > d:
            raise ctx.error(f"Invalid begin and size: {b} + {n} exceeds dimension {k} of size {d}", ctx.input(2))
        shape.append(n)
    declared = _declared_static(ctx, out.index)
    if declared is not None and declared != tuple(shape):
        raise ctx.error(f"the declared static output shape {list(declared)} differs from the slice shape {shape}", out)
    return SliceData((tuple(shape),), (out.dtype,), begin=tuple(begin))


# ---------------------------------------------------------------------------------------------
# GATHER


@dataclass(frozen=True)
class GatherData(MovementData):
    """GATHER (reference_ops::Gather): ``out[b, o, i, r] = in[b, o, idx[b, i], r]``.

    With the input viewed as ``[batch, outer, axis_size, inner]`` (batch = the first ``batch_dims``
    dims, outer = the dims up to ``axis``) and the indices as ``[batch, coords]``.
    """

    #: (batch, outer, axis_size, inner) view of the input.
    view: tuple[int, int, int, int] = (1, 1, 1, 1)
    #: Number of indices per batch.
    coords: int = 1
    #: Where the op is, for the eval-time index error.
    _where: str = ""

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """The gathered slices; EvalError for an index outside ``[0, axis_size)`` (LiteRT fails Invoke)."""
        x, idx = inputs[0], inputs[1]
        assert x is not None and idx is not None
        batch, outer, axis_size, inner = self.view
        pos = np.asarray(idx).astype(np.int64).reshape(batch, self.coords)
        bad = (pos < 0) | (pos >= axis_size)
        if bad.any():
            k = int(np.argmax(bad.reshape(-1)))
            raise EvalError(
                f"{self._where}: gather index {int(pos.reshape(-1)[k])} (flat position {k}) is outside "
                f"[0, {axis_size}); LiteRT fails the invocation (gather index out of bounds)"
            )
        x4 = np.asarray(x).reshape(batch, outer, axis_size, inner)
        out = x4[np.arange(batch)[:, None, None], np.arange(outer)[None, :, None], pos[:, None, :]]
        return [contiguous(out).reshape(self.output_shapes[0])]


def prepare_gather(ctx: OpContext) -> GatherData:
    """GATHER (LiteRT ``gather.cc``): ``axis`` and ``batch_dims`` may be negative; int16/int32/int64 indices.

    ``batch_dims <= axis``, ``0 <= batch_dims < rank(input)``, ``batch_dims <= rank(indices)`` and the
    first ``batch_dims`` dims of input and indices equal. Output shape: ``in[:axis] + idx[batch_dims:] +
    in[axis+1:]``. Constant indices are range-checked here (LiteRT gathers constants at Prepare).
    """
    ctx.check_counts(2, 1)
    x = ctx.input(0)
    pos = ctx.input(1)
    out = ctx.output(0)
    ctx.check_dtype(pos, ("int16", "int32", "int64"), "positions")
    ctx.check_dtype(x, ("float32", "float16", "uint8", "int8", "int16", "int32", "int64", "bool"), "input")
    require_output_dtype(ctx, out, x.dtype)
    rank = len(x.shape)
    axis = int(ctx.option("axis", 0))
    if axis < 0:
        axis += rank
    if not 0 <= axis < rank:
        raise ctx.error(f"axis {ctx.option('axis', 0)} is out of range for rank {rank}", x)
    bd = int(ctx.option("batch_dims", 0))
    if bd < 0:
        bd += len(pos.shape)
    if not (bd <= axis and 0 <= bd < rank and bd <= len(pos.shape)):
        raise ctx.error(
            f"batch_dims {ctx.option('batch_dims', 0)} is invalid for axis {axis}, input rank {rank} and "
            f"indices rank {len(pos.shape)}"
        )
    for k in range(bd):
        if x.shape[k] != pos.shape[k]:
            raise ctx.error(f"batch dimension {k}: input {x.shape[k]} != indices {pos.shape[k]}", pos)
    shape = x.shape[:axis] + pos.shape[bd:] + x.shape[axis + 1 :]
    batch = int(np.prod(x.shape[:bd], dtype=np.int64))
    outer = int(np.prod(x.shape[bd:axis], dtype=np.int64))
    inner = int(np.prod(x.shape[axis + 1 :], dtype=np.int64))
    coords = int(np.prod(pos.shape[bd:], dtype=np.int64))
    data = GatherData(
        (shape,), (out.dtype,), view=(batch, outer, x.shape[axis], inner), coords=coords, _where=ctx.where()
    )
    if pos.value is not None:
        v = np.asarray(pos.value).astype(np.int64)
        bad = (v < 0) | (v >= x.shape[axis])
        if bad.any():
            raise ctx.error(
                f"gather index {int(v.reshape(-1)[int(np.argmax(bad.reshape(-1)))])} is outside [0, {x.shape[axis]})",
                pos,
            )
    return data


# ---------------------------------------------------------------------------------------------
# GATHER_ND

_GATHER_ND_TYPES = ("float32", "float16", "uint8", "int8", "int16", "int32", "int64", "bool")


def _gather_nd_error(params: np.ndarray, idx: np.ndarray, nd: int, n_slices: int) -> str | None:
    """Why LiteRT 2.3.0's GATHER_ND Eval fails for these values (None: it runs), in its order of checks."""
    if params.size == 0 and idx.size != 0:
        return "params has no elements but indices do"
    if idx.size and bool((idx < 0).any()):
        return f"negative index {int(idx.min())} (LiteRT requires every index >= 0)"
    if n_slices == 0:
        return None
    if idx.size == 0:
        return "indices have no elements but the output has slices (LiteRT reads a null buffer: index out of bounds)"
    coords = idx.reshape(n_slices, nd)
    bad = coords >= np.asarray(params.shape[:nd], dtype=np.int64)
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        return f"index {int(coords[i, j])} at slice {i}, coordinate {j} is outside [0, {params.shape[j]})"
    return None


@dataclass(frozen=True)
class GatherNdData(MovementData):
    """GATHER_ND (reference_ops::GatherNd): ``out[i..., :] = params[idx[i..., 0], ..., idx[i..., nd-1], :]``."""

    #: Length of the innermost index dimension (coordinates per slice).
    nd: int = 1
    #: Number of slices gathered (product of the indices' leading dims).
    n_slices: int = 0
    #: Where the op is, for the eval-time index error.
    _where: str = ""

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """The gathered slices; EvalError where LiteRT fails the invocation (bad or negative indices)."""
        params, idx = np.asarray(inputs[0]), np.asarray(inputs[1]).astype(np.int64)
        why = _gather_nd_error(params, idx, self.nd, self.n_slices)
        if why is not None:
            raise EvalError(f"{self._where}: {why}; LiteRT fails the invocation")
        out_shape = self.output_shapes[0]
        if self.n_slices == 0:
            return [np.zeros(out_shape, params.dtype)]
        coords = idx.reshape(self.n_slices, self.nd)
        lead = params.reshape(params.shape[: self.nd] + (-1,))
        picked = lead[tuple(coords[:, j] for j in range(self.nd))]
        return [contiguous(picked).reshape(out_shape)]


def prepare_gather_nd(ctx: OpContext) -> GatherNdData:
    """GATHER_ND (LiteRT ``gather_nd.cc``): int16/int32/int64 indices, output ``idx.shape[:-1] + params.shape[nd:]``.

    Index errors are run-time errors in LiteRT; refquant reports them at prepare when the indices are
    constant (and known params shape makes them certain), else at eval.
    """
    ctx.check_counts(2, 1)
    params, idx, out = ctx.input(0), ctx.input(1), ctx.output(0)
    ctx.check_dtype(params, _GATHER_ND_TYPES, "params")
    ctx.check_dtype(idx, ("int16", "int32", "int64"), "indices")
    if len(params.shape) < 1:
        raise ctx.error("params must be at least a vector", params)
    if len(idx.shape) < 1:
        raise ctx.error("indices must be at least a vector", idx)
    nd = idx.shape[-1]
    if nd > len(params.shape):
        raise ctx.error(f"index depth {nd} exceeds the params rank {len(params.shape)}", idx)
    require_output_dtype(ctx, out, params.dtype)
    shape = tuple(idx.shape[:-1]) + tuple(params.shape[nd:])
    n_slices = int(np.prod(idx.shape[:-1], dtype=np.int64))
    if idx.value is not None and params.size > 0:
        why = _gather_nd_error(np.zeros(params.shape, np.int8), np.asarray(idx.value).astype(np.int64), nd, n_slices)
        if why is not None:
            raise ctx.error(f"{why}; LiteRT fails the invocation", idx)
    return GatherNdData((shape,), (out.dtype,), nd=nd, n_slices=n_slices, _where=ctx.where())


# ---------------------------------------------------------------------------------------------
# REVERSE_V2

_REVERSE_TYPES = ("int32", "float32", "uint8", "int8", "int16", "int64", "bool", "float16")


def _reverse_axes(axis_values: np.ndarray, rank: int) -> tuple[int, ...] | str:
    """LiteRT 2.3.0 ``reverse.cc`` Eval: normalized, sorted axes, or why it fails (abort included)."""
    vals = [int(v) for v in np.asarray(axis_values).reshape(-1)]
    if not vals:
        return "an empty axis tensor crashes LiteRT's REVERSE_V2 (it reads axes[0] of none)"
    if len(vals) > 8:
        return f"{len(vals)} axes; at most 8"
    axes = []
    for v in vals:
        a = v + rank if v < 0 else v
        if not 0 <= a < rank:
            return f"axis {v} is out of range for rank {rank}"
        axes.append(a)
    axes.sort()
    if any(axes[i - 1] + 1 != axes[i] for i in range(1, len(axes))):
        return f"axes {axes} are not contiguous (LiteRT: Non-contiguous `axes` not supported; duplicates count)"
    return tuple(axes)


@dataclass(frozen=True)
class ReverseData(MovementData):
    """REVERSE_V2 (reference_ops::Reverse): the input with the order of the given (contiguous) axes reversed."""

    #: The sorted axes when the axis tensor is constant; None: read from input 1 at run time.
    axes: tuple[int, ...] | None = None
    #: Where the op is, for run-time errors.
    _where: str = ""

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """``np.flip`` over the axes; EvalError for axes LiteRT rejects at run time."""
        x = np.asarray(inputs[0])
        axes = self.axes
        if axes is None:
            res = _reverse_axes(np.asarray(inputs[1]), x.ndim)
            if isinstance(res, str):
                raise EvalError(f"{self._where}: {res}")
            axes = res
        return [contiguous(np.flip(x, axes))]


def prepare_reverse_v2(ctx: OpContext) -> ReverseData:
    """REVERSE_V2 (LiteRT ``reverse.cc``): a rank-1 int32 axis tensor; input rank <= 8; contiguous axes."""
    ctx.check_counts(2, 1)
    x, a, out = ctx.input(0), ctx.input(1), ctx.output(0)
    if len(a.shape) != 1:
        raise ctx.error(f"axis tensor has rank {len(a.shape)}; expected 1", a)
    if len(x.shape) > 8:
        raise ctx.error(f"input rank {len(x.shape)} exceeds 8", x)
    if len(x.shape) < a.size:
        raise ctx.error(f"{a.size} axes for an input of rank {len(x.shape)}", a)
    ctx.check_dtype(x, _REVERSE_TYPES, "input")
    ctx.check_dtype(a, ("int32",), "axis")
    require_output_dtype(ctx, out, x.dtype)
    axes = None
    if a.value is not None:
        res = _reverse_axes(a.value, len(x.shape))
        if isinstance(res, str):
            raise ctx.error(res, a)
        axes = res
    elif a.size == 0:
        raise ctx.error("an empty axis tensor crashes LiteRT's REVERSE_V2 (it reads axes[0] of none)", a)
    return ReverseData((x.shape,), (out.dtype,), axes=axes, _where=ctx.where())
