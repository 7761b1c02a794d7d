"""Shape and data-movement operators: LiteRT's reshape-like, transpose, pack/split, concat, tile, cast kernels.

None of these ops does arithmetic on quantized values, except the uint8 CONCATENATION rescale
(docs/litert_semantics.md §3.16). They move raw values, so quantized tensors are copied unchanged; where LiteRT's
Prepare compares the legacy quantization parameters of input and output (``TfLiteTensor.params``:
``scale[0]``/``zero_point[0]``, or ``(0, 0)`` for an unquantized tensor), refquant compares the same
pair and raises :class:`refquant.errors.QuantParamError` when LiteRT would fail.

Output shapes are computed from the current input shapes and, where the shape depends on an input
*value* (a RESHAPE target, SPLIT axis, TILE multiples...), from that value. When the value is known
only at run time, prepare raises :class:`refquant.ops.base.DeferredPrepare` and the graph prepares the
op again just before it runs (LiteRT's "dynamic output tensor").

Kernels (LiteRT ``tflite/kernels/``): reshape.cc, squeeze.cc, expand_dims.cc, shape.cc, transpose.cc
(reference_ops::Transpose), pack.cc, unpack.cc, split.cc, split_v.cc, concatenation.cc
(reference_ops::Concatenation / ConcatenationWithScaling), tile.cc, broadcast_to.cc, fill.cc,
zeros_like.cc, cast.cc, space_to_depth.cc and depth_to_space.cc (the reference_ops kernels).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, TypeVar

import numpy as np

from ..fixedpoint import INT32_MIN, round_half_away_from_zero
from ..model import numpy_dtype
from ..requantize import requantize_concatenation_uint8
from .base import OpContext, OpData, Step, TensorInfo
from .movement import (
    CODE_SHIFT,
    COPY_TYPES,
    INDEX_TYPES,
    MovementData,
    contiguous,
    int_vector,
    legacy_params,
    require_output_dtype,
    require_same_params,
    require_zero_zp,
)

__all__ = [
    "legacy_params",
    "contiguous",
    "MovementData",
    "int_vector",
    "ReshapeData",
    "ShapeData",
    "TransposeData",
    "PackData",
    "UnpackData",
    "SplitData",
    "ConcatenationData",
    "TileData",
    "BroadcastToData",
    "FillData",
    "ZerosLikeData",
    "CastData",
    "SpaceToDepthData",
    "DepthToSpaceData",
    "prepare_reshape",
    "prepare_squeeze",
    "prepare_expand_dims",
    "prepare_shape",
    "prepare_transpose",
    "prepare_pack",
    "prepare_unpack",
    "prepare_split",
    "prepare_split_v",
    "prepare_concatenation",
    "prepare_tile",
    "prepare_broadcast_to",
    "prepare_fill",
    "prepare_zeros_like",
    "prepare_cast",
    "prepare_space_to_depth",
    "prepare_depth_to_space",
]

_INT32_MAX = 2**31 - 1


def _axis(ctx: OpContext, axis: int, rank: int, what: str = "axis") -> int:
    """``axis`` made non-negative (``axis + rank`` when negative), checked in ``[0, rank)``."""
    a = axis + rank if axis < 0 else axis
    if not 0 <= a < rank:
        raise ctx.error(f"{what} {axis} is out of range for rank {rank}; expected [-{rank}, {rank})")
    return a


def _shape_str(shape: Sequence[int]) -> str:
    return str(list(shape))


# ---------------------------------------------------------------------------------------------
# RESHAPE, SQUEEZE, EXPAND_DIMS: raw copies with a new shape


@dataclass(frozen=True)
class ReshapeData(MovementData):
    """RESHAPE / SQUEEZE / EXPAND_DIMS (``reshape.cc``, ``squeeze.cc``, ``expand_dims.cc``): a raw copy.

    The values (and their quantization) pass unchanged; only the shape changes to ``output_shapes[0]``.
    """

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """The input reshaped (a view where NumPy can)."""
        x = inputs[0]
        assert x is not None
        return [np.reshape(x, self.output_shapes[0])]


def _resolve_reshape(ctx: OpContext, in_shape: tuple[int, ...], target: list[int]) -> tuple[int, ...]:
    """LiteRT ``reshape_internal::ResolveOutputShape``: one ``-1`` inferred, zeros allowed, counts must match."""
    n_in = int(np.prod(in_shape, dtype=np.int64)) if in_shape else 1
    nonzero_in = 1
    for d in in_shape:
        if d != 0:
            nonzero_in *= d
    stretch = -1
    n_out = 1
    nonzero_out = 1
    for k, v in enumerate(target):
        if v == -1:
            if stretch != -1:
                raise ctx.error(f"new shape {target} has more than one -1")
            stretch = k
            continue
        if v < 0:
            raise ctx.error(f"new shape {target} has a negative dimension")
        if v != 0:
            nonzero_out *= v
        n_out *= v
    out = list(target)
    if stretch != -1:
        if n_in == 0 and n_out != 0:
            out[stretch] = 0
        else:
            inferred = nonzero_in // nonzero_out
            if inferred > _INT32_MAX:
                raise ctx.error(f"new shape {target}: the inferred dimension {inferred} overflows int32")
            out[stretch] = inferred
        n_out *= out[stretch]
    if n_in != n_out:
        raise ctx.error(f"cannot reshape {n_in} elements (shape {_shape_str(in_shape)}) to {target} ({n_out} elements)")
    return tuple(out)


def prepare_reshape(ctx: OpContext) -> ReshapeData:
    """RESHAPE (LiteRT ``reshape.cc``): the target from the shape tensor, else from the ``new_shape`` option.

    As in LiteRT, the shape tensor is used when it is present, 1-D and int32; otherwise the
    ``new_shape`` option is (``[0]`` meaning a scalar, as legacy converters write it). One ``-1`` is
    inferred (zero-sized dimensions are allowed). Quantization parameters are not compared (raw copy).
    """
    ctx.check_counts((1, 2), 1)
    x = ctx.input(0)
    out = ctx.output(0)
    require_output_dtype(ctx, out, x.dtype)
    shape_t = ctx.optional_input(1)
    if shape_t is not None and len(shape_t.shape) == 1 and shape_t.dtype == "int32":
        target = [int(v) for v in np.asarray(ctx.input_value(1)).reshape(-1)]
    else:
        new_shape = ctx.option("new_shape", None)
        target = [] if new_shape is None else [int(v) for v in new_shape]
        if target == [0]:
            target = []
    return ReshapeData((_resolve_reshape(ctx, x.shape, target),), (out.dtype,))


def prepare_squeeze(ctx: OpContext) -> ReshapeData:
    """SQUEEZE (LiteRT ``squeeze.cc``): drop the size-1 dims listed in ``squeeze_dims`` (all when empty).

    Listed dims may be negative or repeated; each must have size 1. At most 8 input dims.
    """
    ctx.check_counts(1, 1)
    x = ctx.input(0)
    out = ctx.output(0)
    require_output_dtype(ctx, out, x.dtype)
    rank = len(x.shape)
    if rank > 8:
        raise ctx.error(f"input rank {rank} exceeds the 8 dims SQUEEZE supports", x)
    dims = ctx.option("squeeze_dims", None) or []
    squeeze = [False] * rank
    if not dims:
        squeeze = [d == 1 for d in x.shape]
    for d in dims:
        a = int(d) + rank if int(d) < 0 else int(d)
        if not (0 <= a < rank and x.shape[a] == 1):
            raise ctx.error(f"squeeze_dims entry {int(d)} does not name a size-1 dimension of {list(x.shape)}", x)
        squeeze[a] = True
    shape = tuple(d for d, s in zip(x.shape, squeeze) if not s)
    return ReshapeData((shape,), (out.dtype,))


def prepare_expand_dims(ctx: OpContext) -> ReshapeData:
    """EXPAND_DIMS (LiteRT ``expand_dims.cc``): insert a size-1 dim at the axis given by input 1.

    The axis tensor (int32 or int64, one element) may be negative (``rank + 1 + axis``). LiteRT requires
    equal input/output (scale, zero point), and zero point 0 for int16.
    """
    ctx.check_counts(2, 1)
    x = ctx.input(0)
    out = ctx.output(0)
    require_output_dtype(ctx, out, x.dtype)
    require_same_params(ctx, x, out, "input")
    if x.dtype == "int16":
        require_zero_zp(ctx, x)
    axis_t = ctx.input(1)
    if axis_t.size != 1:
        raise ctx.error(f"axis tensor has {axis_t.size} elements; expected 1", axis_t)
    axis = int_vector(ctx, 1, "axis")[0]
    rank = len(x.shape)
    if axis < 0:
        axis = rank + 1 + axis
    if not 0 <= axis <= rank:
        raise ctx.error(f"axis {axis} is out of range for inserting into rank {rank}", axis_t)
    shape = x.shape[:axis] + (1,) + x.shape[axis:]
    return ReshapeData((shape,), (out.dtype,))


# ---------------------------------------------------------------------------------------------
# SHAPE


@dataclass(frozen=True)
class ShapeData(OpData):
    """SHAPE (``shape.cc``): the input's dimensions as a 1-D int32/int64 tensor, known at prepare time."""

    #: The input's dimensions, as the output dtype.
    dims: np.ndarray = None  # type: ignore[assignment]
    #: The output depends on the input shape only, so the graph folds it even for run-time inputs.
    fold_needs_values = False

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """The prepared dimensions (the input values are not read)."""
        return [self.dims.copy()]

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """Element k is the input's dimension k."""
        k = int(element[0])
        return [Step("output", int(self.dims[k]), f"size of the input's dimension {k}")]


def prepare_shape(ctx: OpContext) -> ShapeData:
    """SHAPE (LiteRT ``shape.cc``): ``out_type`` must be INT32 or INT64 (LiteRT rejects anything else)."""
    ctx.check_counts(1, 1)
    x = ctx.input(0)
    out = ctx.output(0)
    out_type = ctx.option("out_type", None)
    dtypes = {"INT32": "int32", "INT64": "int64"}
    if out_type not in dtypes:
        raise ctx.error(f"out_type {out_type!r} is not supported; LiteRT's SHAPE accepts INT32 or INT64")
    require_output_dtype(ctx, out, dtypes[out_type])
    dims = np.array(x.shape, dtype=dtypes[out_type])
    dims.flags.writeable = False
    return ShapeData(((len(x.shape),),), (out.dtype,), dims=dims)


# ---------------------------------------------------------------------------------------------
# TRANSPOSE


@dataclass(frozen=True)
class TransposeData(MovementData):
    """TRANSPOSE (``transpose.cc``, reference_ops::Transpose): ``out[i0..] = in[...]`` with ``out.dim[k] = in.dim[perm[k]]``."""

    #: The permutation (non-negative).
    perm: tuple[int, ...] = ()

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """The permuted array, contiguous."""
        x = inputs[0]
        assert x is not None
        return [contiguous(np.transpose(x, self.perm))]


def prepare_transpose(ctx: OpContext) -> TransposeData:
    """TRANSPOSE (LiteRT ``transpose.cc``): up to 8-D, int32 ``perm`` of length rank, entries in ``[-rank, rank)``.

    refquant also rejects a ``perm`` with repeated entries (LiteRT reads out of bounds) and an int64
    ``perm`` (LiteRT reinterprets its bytes as int32).
    """
    ctx.check_counts(2, 1)
    x = ctx.input(0)
    out = ctx.output(0)
    ctx.check_dtype(x, COPY_TYPES, "input")
    require_output_dtype(ctx, out, x.dtype)
    rank = len(x.shape)
    if rank > 8:
        raise ctx.error(f"input rank {rank}; TRANSPOSE supports 1-D to 8-D", x)
    perm_t = ctx.input(1)
    ctx.check_dtype(perm_t, ("int32",), "perm")
    if len(perm_t.shape) != 1 or perm_t.shape[0] != rank:
        raise ctx.error(f"perm has shape {list(perm_t.shape)}; expected [{rank}]", perm_t)
    perm = []
    for p in int_vector(ctx, 1, "perm", ("int32",)):
        if not -rank <= p < rank:
            raise ctx.error(f"perm entry {p} is out of bounds for rank {rank}", perm_t)
        perm.append(p + rank if p < 0 else p)
    if sorted(perm) != list(range(rank)):
        raise ctx.error(f"perm {perm} is not a permutation of 0..{rank - 1}", perm_t)
    shape = tuple(x.shape[p] for p in perm)
    return TransposeData((shape,), (out.dtype,), perm=tuple(perm))


# ---------------------------------------------------------------------------------------------
# PACK, UNPACK


@dataclass(frozen=True)
class PackData(MovementData):
    """PACK (``pack.cc``, reference_ops::Pack): stack the inputs along a new ``axis``."""

    #: Position of the new dimension (non-negative).
    axis: int = 0

    def moved_inputs(self, inputs: list[np.ndarray | None]) -> tuple[int, ...]:
        """Every input is stacked."""
        return tuple(range(len(inputs)))

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """``np.stack`` of the inputs."""
        return [np.stack([np.asarray(x) for x in inputs], axis=self.axis)]


def prepare_pack(ctx: OpContext) -> PackData:
    """PACK (LiteRT ``pack.cc``): ``values_count`` inputs of one shape and type, equal (scale, zp) to the output.

    Types: int8, uint8, int16, int32, uint32, int64, float32 (LiteRT rejects bool).
    """
    count = int(ctx.option("values_count", 0))
    ctx.check_counts(count, 1)
    if count < 1:
        raise ctx.error("values_count is 0; PACK needs at least one input")
    x0 = ctx.input(0)
    out = ctx.output(0)
    ctx.check_dtype(x0, ("int8", "uint8", "int16", "int32", "uint32", "int64", "float32"), "input")
    rank = len(x0.shape) + 1
    axis = int(ctx.option("axis", 0))
    if axis < 0:
        axis += rank
    if not 0 <= axis <= len(x0.shape):
        raise ctx.error(f"axis {ctx.option('axis', 0)} is out of range for packing rank-{len(x0.shape)} inputs")
    for k in range(1, count):
        t = ctx.input(k)
        if t.shape != x0.shape or t.dtype != x0.dtype:
            raise ctx.error(f"input {k} {t.dtype}{list(t.shape)} differs from input 0 {x0.dtype}{list(x0.shape)}", t)
    require_output_dtype(ctx, out, x0.dtype)
    for k in range(count):
        require_same_params(ctx, ctx.input(k), out, f"input {k}")
    shape = x0.shape[:axis] + (count,) + x0.shape[axis:]
    return PackData((shape,), (out.dtype,), axis=axis)


@dataclass(frozen=True)
class UnpackData(MovementData):
    """UNPACK (``unpack.cc``, reference_ops::Unpack): split along ``axis`` into ``num`` arrays without it."""

    #: The unpacked dimension (non-negative).
    axis: int = 0

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """One contiguous array per index along ``axis``."""
        x = inputs[0]
        assert x is not None
        return [contiguous(np.take(x, k, axis=self.axis)) for k in range(x.shape[self.axis])]


def prepare_unpack(ctx: OpContext) -> UnpackData:
    """UNPACK (LiteRT ``unpack.cc``): ``num`` must equal ``shape[axis]`` and the number of outputs.

    Types: int8, uint8, int16, int32, float32, float16, bool (LiteRT rejects int64). The input may not
    be empty; each output needs the input's type and (scale, zero point).
    """
    num = int(ctx.option("num", 0))
    ctx.check_counts(1, num)
    x = ctx.input(0)
    ctx.check_dtype(x, ("int8", "uint8", "int16", "int32", "float32", "float16", "bool"), "input")
    if x.size == 0:
        raise ctx.error("input is empty; LiteRT's UNPACK requires at least one element", x)
    axis = _axis(ctx, int(ctx.option("axis", 0)), len(x.shape))
    if num != x.shape[axis]:
        raise ctx.error(f"num = {num} but the input has {x.shape[axis]} entries along axis {axis}", x)
    shape = x.shape[:axis] + x.shape[axis + 1 :]
    for k in range(num):
        out = ctx.output(k)
        require_output_dtype(ctx, out, x.dtype)
        require_same_params(ctx, x, out, "input")
    return UnpackData((shape,) * num, (x.dtype,) * num, axis=axis)


# ---------------------------------------------------------------------------------------------
# SPLIT, SPLIT_V


@dataclass(frozen=True)
class SplitData(MovementData):
    """SPLIT / SPLIT_V (``split.cc``, ``split_v.cc``, reference_ops::Split): consecutive pieces along ``axis``."""

    #: The split dimension (non-negative).
    axis: int = 0
    #: Index of the data input (1 for SPLIT, whose axis tensor comes first; 0 for SPLIT_V).
    data_input: int = 0
    #: Size of each piece along ``axis``.
    sizes: tuple[int, ...] = ()

    def moved_inputs(self, inputs: list[np.ndarray | None]) -> tuple[int, ...]:
        """The data input (SPLIT's comes after the axis tensor)."""
        return (self.data_input,)

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """The pieces, each a contiguous copy."""
        x = inputs[self.data_input]
        assert x is not None
        bounds = np.cumsum((0,) + self.sizes)
        return [
            contiguous(np.take(x, np.arange(bounds[k], bounds[k + 1]), axis=self.axis)) for k in range(len(self.sizes))
        ]


_SPLIT_TYPES = ("int8", "uint8", "int16", "int32", "int64", "float32")


def _split_data(ctx: OpContext, n_inputs: int, data_input: int) -> tuple[int, TensorInfo]:
    """SPLIT/SPLIT_V: ``num_splits``, the counts, the data input's type and every output's (same) type."""
    num = int(ctx.option("num_splits", 0))
    ctx.check_counts(n_inputs, num)
    x = ctx.input(data_input)
    ctx.check_dtype(x, _SPLIT_TYPES, "input")
    for k in range(num):
        require_output_dtype(ctx, ctx.output(k), x.dtype)
    return num, x


def _scalar_axis(ctx: OpContext, i: int, rank: int) -> int:
    """The split axis from input ``i`` (LiteRT reads its first element as an int32), made non-negative."""
    t = ctx.input(i)
    ctx.check_dtype(t, INDEX_TYPES, "axis")
    if t.size < 1:
        raise ctx.error("axis tensor is empty", t)
    v = int_vector(ctx, i, "axis")[0]
    if not INT32_MIN <= v <= _INT32_MAX:
        raise ctx.error(f"axis {v} does not fit int32", t)
    return _axis(ctx, v, rank)


def prepare_split(ctx: OpContext) -> SplitData:
    """SPLIT (LiteRT ``split.cc``): inputs (axis, data); ``num_splits`` equal pieces; the axis may be negative.

    Types: int8, uint8, int16, int32, int64, float32. Quantization passes unchanged (not compared).
    """
    num, x = _split_data(ctx, 2, 1)
    axis = _scalar_axis(ctx, 0, len(x.shape))
    if num == 0:
        raise ctx.error("num_splits is 0")
    if x.shape[axis] % num:
        raise ctx.error(f"dimension {axis} of size {x.shape[axis]} does not split evenly into {num} pieces", x)
    size = x.shape[axis] // num
    shape = x.shape[:axis] + (size,) + x.shape[axis + 1 :]
    return SplitData((shape,) * num, (x.dtype,) * num, axis=axis, data_input=1, sizes=(size,) * num)


def prepare_split_v(ctx: OpContext) -> SplitData:
    """SPLIT_V (LiteRT ``split_v.cc``): inputs (data, size_splits, axis); one size may be -1 (the rest).

    ``size_splits`` is a 1-D int32/int64 tensor with one entry per output. refquant rejects negative
    sizes other than -1 (LiteRT fails allocating them).
    """
    num, x = _split_data(ctx, 3, 0)
    sizes_t = ctx.input(1)
    ctx.check_dtype(sizes_t, INDEX_TYPES, "size_splits")
    if len(sizes_t.shape) != 1 or sizes_t.shape[0] != num:
        raise ctx.error(f"size_splits has shape {list(sizes_t.shape)}; expected [{num}] (one per output)", sizes_t)
    sizes = int_vector(ctx, 1, "size_splits")
    axis = _scalar_axis(ctx, 2, len(x.shape))
    if sizes.count(-1) > 1:
        raise ctx.error(f"size_splits {sizes} contains more than one -1", sizes_t)
    if any(s < -1 for s in sizes):
        raise ctx.error(f"size_splits {sizes} has a negative size", sizes_t)
    total = sum(s for s in sizes if s != -1)
    dim = x.shape[axis]
    if -1 in sizes:
        if total > dim:
            raise ctx.error(f"size_splits {sizes} sum to more than dimension {axis} ({dim})", sizes_t)
        sizes[sizes.index(-1)] = dim - total
    elif total != dim:
        raise ctx.error(f"size_splits {sizes} do not sum to dimension {axis} ({dim})", sizes_t)
    shapes = tuple(x.shape[:axis] + (s,) + x.shape[axis + 1 :] for s in sizes)
    return SplitData(shapes, (x.dtype,) * num, axis=axis, data_input=0, sizes=tuple(sizes))


# ---------------------------------------------------------------------------------------------
# CONCATENATION


@dataclass(frozen=True)
class ConcatenationData(MovementData):
    """CONCATENATION (``concatenation.cc``): reference_ops::Concatenation, a raw copy along ``axis``.

    For uint8 inputs whose (scale, zero point) differ from the output's, ConcatenationWithScaling
    rescales in float32 (docs/litert_semantics.md §3.16)::

        r    = f32(s_in * f32(1 / s_out))
        bias = f32(f32(-zp_in) * r)
        q'   = clamp(int32(roundf(f32(f32(q) * r) + bias)) + zp_out, 0, 255)

    (an out-of-range conversion gives INT32_MIN, as on x86).
    """

    #: The concatenation dimension (non-negative); for the constant-scalar case the output is 1-D.
    axis: int = 0
    #: Per input: ``None`` for a raw copy, else ``(r, bias, zp_out)`` of the uint8 rescale (float32, float32, int).
    rescale: tuple[tuple[np.float32, np.float32, int] | None, ...] = ()
    #: True when all inputs are scalars (only valid for values known at prepare time): output ``[n]``.
    scalars: bool = False

    def moved_inputs(self, inputs: list[np.ndarray | None]) -> tuple[int, ...]:
        """Every input is concatenated."""
        return tuple(range(len(inputs)))

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """The concatenated array."""
        return [self._concat(inputs, rescale=True)]

    def _concat(self, inputs: list[np.ndarray | None], rescale: bool) -> np.ndarray:
        parts = []
        for x, rs in zip(inputs, self.rescale):
            assert x is not None
            a = np.asarray(x)
            if self.scalars:
                a = a.reshape(1)
            if rs is not None and rescale:
                a = requantize_concatenation_uint8(a, *rs)
            parts.append(a)
        return np.concatenate(parts, axis=self.axis)

    def source(
        self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]
    ) -> tuple[int, tuple[int, ...]] | None:
        """The input element an output element comes from (found without the uint8 rescale)."""
        probe = [
            (np.arange(np.size(x), dtype=np.int64) + ((k + 1) << CODE_SHIFT)).reshape(np.shape(x))
            for k, x in enumerate(inputs)
        ]
        code = int(self._concat(probe, rescale=False)[tuple(element)])
        k = (code >> CODE_SHIFT) - 1
        shape = np.shape(inputs[k])
        flat = code & ((1 << CODE_SHIFT) - 1)
        return k, tuple(int(i) for i in np.unravel_index(flat, shape)) if shape else ()

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """The source element; for a rescaled uint8 input also the float32 requantization steps."""
        src = self.source(inputs, output, element)
        assert src is not None
        k, idx = src
        rs = self.rescale[k]
        q = np.asarray(inputs[k])[idx] if idx else np.asarray(inputs[k]).reshape(-1)[0]
        steps = [Step("source", (k, idx), f"input {k} element {list(idx)}")]
        if rs is None:
            return steps + [Step("output", q.item(), "the raw value, copied unchanged")]
        r, bias, zp_out = rs
        prod = np.float32(np.float32(q) * r)
        total = np.float32(prod + bias)
        out = int(requantize_concatenation_uint8(np.asarray([q]), r, bias, zp_out)[0])
        return steps + [
            Step("q", int(q), "uint8 input value"),
            Step("q * r", float(prod), f"float32 product with r = f32(s_in * f32(1/s_out)) = {float(r)!r}"),
            Step("+ bias", float(total), f"bias = f32(-zp_in * r) = {float(bias)!r}"),
            Step("roundf", float(round_half_away_from_zero(total)), "round half away from zero"),
            Step("output", out, f"+ output zero point {zp_out}, clamped to [0, 255]"),
        ]


_CONCAT_TYPES = ("int8", "uint8", "int16", "int32", "int64", "float32", "float16", "bool", "uint32")


def prepare_concatenation(ctx: OpContext) -> ConcatenationData:
    """CONCATENATION (LiteRT ``concatenation.cc``, REF kernel).

    * Any fused activation other than NONE is rejected (LiteRT's Prepare does).
    * int8: every input's (scale, zero point) must equal the output's (QuantParamError otherwise); raw copy.
    * int16: all zero points 0; scales are not compared (raw copy, docs/litert_semantics.md §3.16).
    * uint8: inputs with other (scale, zp) than the output are rescaled in float32.
    * All inputs of one rank and type, equal except along ``axis`` (which may be negative).
    * Scalars concatenate only when all their values are known at prepare time (LiteRT: constants).
    """
    n = len(ctx.inputs)
    ctx.check_counts(n, 1)
    if n < 1:
        raise ctx.error("CONCATENATION needs at least one input")
    if ctx.option("fused_activation_function", "NONE") != "NONE":
        raise ctx.error(
            f"fused activation {ctx.option('fused_activation_function')}; LiteRT's CONCATENATION accepts only NONE"
        )
    x0 = ctx.input(0)
    out = ctx.output(0)
    ctx.check_dtype(x0, _CONCAT_TYPES, "input")
    rank = len(x0.shape)
    axis = int(ctx.option("axis", 0))
    if axis < 0:
        axis += rank
    if not (axis >= 0 and (axis < rank or (rank == 0 and axis == 0))):
        raise ctx.error(f"axis {ctx.option('axis', 0)} is out of range for rank {rank}")
    ins = [ctx.input(k) for k in range(n)]
    scalars = False
    if rank == 0:
        if any(len(t.shape) != 0 for t in ins) or any(t.value is None for t in ins):
            raise ctx.error("scalar inputs can only be concatenated when all are constant (LiteRT's rule)")
        if any(t.dtype != x0.dtype for t in ins):
            raise ctx.error("inputs have different types")
        scalars = True
        shape: tuple[int, ...] = (n,)
    else:
        total = 0
        for k, t in enumerate(ins):
            if len(t.shape) != rank or t.dtype != x0.dtype:
                raise ctx.error(f"input {k} {t.dtype}{list(t.shape)} differs in rank or type from input 0", t)
            for d in range(rank):
                if d != axis and t.shape[d] != x0.shape[d]:
                    raise ctx.error(f"input {k} shape {list(t.shape)} differs from input 0 {list(x0.shape)}", t)
            total += t.shape[axis]
        if total > _INT32_MAX:
            raise ctx.error(f"concatenated dimension {total} overflows int32")
        shape = x0.shape[:axis] + (total,) + x0.shape[axis + 1 :]
    require_output_dtype(ctx, out, x0.dtype)
    rescale: list[tuple[np.float32, np.float32, int] | None] = [None] * n
    if x0.dtype == "int8":
        for k, t in enumerate(ins):
            require_same_params(ctx, t, out, f"input {k}")
    elif x0.dtype == "int16":
        require_zero_zp(ctx, *ins, out)
    elif x0.dtype == "uint8" and not scalars:
        s_out, zp_out = legacy_params(out)
        for k, t in enumerate(ins):
            s_in, zp_in = legacy_params(t)
            if (s_in, zp_in) == (s_out, zp_out):
                continue
            if not (np.isfinite(s_out) and s_out > 0 and np.isfinite(s_in)):
                raise ctx.fail_quant(
                    f"uint8 rescale from scale {s_in} to output scale {s_out}: expected finite scales and s_out > 0",
                    t,
                )
            with np.errstate(over="ignore"):
                inv = np.float32(1.0) / np.float32(s_out)
                r = np.float32(np.float32(s_in) * inv)
                bias = np.float32(np.float32(-zp_in) * r)
            rescale[k] = (r, bias, zp_out)
    return ConcatenationData(
        (shape,), (out.dtype,), axis=0 if scalars else axis, rescale=tuple(rescale), scalars=scalars
    )


# ---------------------------------------------------------------------------------------------
# TILE, BROADCAST_TO, FILL, ZEROS_LIKE


@dataclass(frozen=True)
class TileData(MovementData):
    """TILE (``tile.cc``): repeat the input ``multiples[k]`` times along each dim k."""

    #: Repetitions per dimension.
    multiples: tuple[int, ...] = ()

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """``np.tile`` of the input."""
        x = inputs[0]
        assert x is not None
        return [np.tile(x, self.multiples).reshape(self.output_shapes[0])]


def prepare_tile(ctx: OpContext) -> TileData:
    """TILE (LiteRT ``tile.cc``): int32/int64 multiples, one per input dim, each >= 0; output dims < 2^31."""
    ctx.check_counts(2, 1)
    x = ctx.input(0)
    out = ctx.output(0)
    ctx.check_dtype(x, COPY_TYPES, "input")
    require_output_dtype(ctx, out, x.dtype)
    m_t = ctx.input(1)
    ctx.check_dtype(m_t, INDEX_TYPES, "multipliers")
    if m_t.size != len(x.shape):
        raise ctx.error(f"{m_t.size} multipliers for a rank-{len(x.shape)} input", m_t)
    mult = int_vector(ctx, 1, "multipliers")
    shape = []
    for d, m in zip(x.shape, mult):
        if m < 0:
            raise ctx.error(f"multipliers {mult} must be non-negative", m_t)
        if d * m > _INT32_MAX:
            raise ctx.error(f"output dimension {d} * {m} exceeds INT32_MAX", m_t)
        shape.append(d * m)
    return TileData((tuple(shape),), (out.dtype,), multiples=tuple(mult))


@dataclass(frozen=True)
class BroadcastToData(MovementData):
    """BROADCAST_TO (``broadcast_to.cc``, reference_ops::BroadcastTo): NumPy broadcasting to the target shape."""

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """The broadcast input, materialized."""
        x = inputs[0]
        assert x is not None
        return [contiguous(np.broadcast_to(x, self.output_shapes[0]))]


def prepare_broadcast_to(ctx: OpContext) -> BroadcastToData:
    """BROADCAST_TO (LiteRT ``broadcast_to.cc``): 1-D int32/int64 target; each input dim 1 or equal.

    refquant rejects negative target dimensions (LiteRT would size the output with them).
    """
    ctx.check_counts(2, 1)
    x = ctx.input(0)
    out = ctx.output(0)
    ctx.check_dtype(x, COPY_TYPES, "input")
    require_output_dtype(ctx, out, x.dtype)
    s_t = ctx.input(1)
    ctx.check_dtype(s_t, INDEX_TYPES, "shape")
    if len(s_t.shape) != 1:
        raise ctx.error(f"shape tensor has rank {len(s_t.shape)}; expected 1", s_t)
    target = int_vector(ctx, 1, "shape")
    if any(v < 0 or v > _INT32_MAX for v in target):
        raise ctx.error(f"target shape {target} has a dimension outside [0, 2^31)", s_t)
    if len(x.shape) > len(target):
        raise ctx.error(f"input shape {list(x.shape)} has more dims than the target {target}", s_t)
    ext = len(target) - len(x.shape)
    for k, d in enumerate(x.shape):
        if d != 1 and d != target[ext + k]:
            raise ctx.error(f"input shape {list(x.shape)} does not broadcast to {target}", s_t)
    return BroadcastToData((tuple(target),), (out.dtype,))


@dataclass(frozen=True)
class FillData(OpData):
    """FILL (``fill.cc``, reference_ops::Fill): every output element is the scalar input 1."""

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """The output filled with the value."""
        v = inputs[1]
        assert v is not None
        return [np.full(self.output_shapes[0], np.asarray(v).reshape(()), dtype=np.asarray(v).dtype)]

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """Every element is the scalar value input."""
        v = np.asarray(inputs[1]).reshape(())
        return [Step("source", (1, ()), "the scalar value input"), Step("output", v.item(), "copied unchanged")]


def prepare_fill(ctx: OpContext) -> FillData:
    """FILL (LiteRT ``fill.cc``): 1-D int32/int64 dims (each >= 0) and a scalar value.

    The output takes the value's type; LiteRT requires the output's (scale, zero point) to equal the
    value's, and zero point 0 for int16.
    """
    ctx.check_counts(2, 1)
    dims_t = ctx.input(0)
    v = ctx.input(1)
    out = ctx.output(0)
    ctx.check_dtype(dims_t, INDEX_TYPES, "dims")
    if len(dims_t.shape) != 1:
        raise ctx.error(f"dims tensor has rank {len(dims_t.shape)}; expected 1", dims_t)
    if len(v.shape) != 0:
        raise ctx.error(f"value has shape {list(v.shape)}; expected a scalar", v)
    ctx.check_dtype(v, COPY_TYPES, "value")
    require_output_dtype(ctx, out, v.dtype)
    require_same_params(ctx, out, v, "output")
    if v.dtype == "int16":
        require_zero_zp(ctx, v)
    dims = int_vector(ctx, 0, "dims")
    if any(d < 0 for d in dims):
        raise ctx.error(f"dims {dims} must be >= 0", dims_t)
    return FillData((tuple(dims),), (out.dtype,))


@dataclass(frozen=True)
class ZerosLikeData(OpData):
    """ZEROS_LIKE (``zeros_like.cc``): zeros of the input's shape and type."""

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """All zeros."""
        return [np.zeros(self.output_shapes[0], dtype=numpy_dtype(self.output_dtypes[0]))]

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """Always zero."""
        return [Step("output", 0, "ZEROS_LIKE writes zeros")]


def prepare_zeros_like(ctx: OpContext) -> ZerosLikeData:
    """ZEROS_LIKE (LiteRT ``zeros_like.cc``): int32, int64 and float32 only (LiteRT fails others at Eval)."""
    ctx.check_counts(1, 1)
    x = ctx.input(0)
    out = ctx.output(0)
    ctx.check_dtype(x, ("int32", "int64", "float32"), "input")
    require_output_dtype(ctx, out, x.dtype)
    return ZerosLikeData((x.shape,), (out.dtype,))


# ---------------------------------------------------------------------------------------------
# CAST


@dataclass(frozen=True)
class CastData(OpData):
    """CAST (``cast.cc``): C++ value conversion ignoring quantization.

    Integer -> integer wraps (``static_cast``); anything -> bool is ``!= 0`` (NaN is true); bool -> number
    is 0/1; integer -> float rounds to nearest even. Float -> integer truncates toward zero and
    **saturates** (SafeCast): ``x >= 2^bits`` gives the max, ``x < min`` the min, NaN the max.
    """

    #: Output NumPy dtype name.
    to: str = "float32"

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """The converted array."""
        x = inputs[0]
        assert x is not None
        to = np.dtype(self.to)
        if x.dtype.kind == "f" and to.kind in "iu":
            info = np.iinfo(to)
            xf = x.astype(np.float64)  # exact for float16/float32; float64 stays itself
            with np.errstate(invalid="ignore"):
                low = xf < float(info.min)
                high = xf >= 2.0 ** (info.bits - (1 if to.kind == "i" else 0))
                nan = np.isnan(xf)
                safe = np.where(low | high | nan, 0.0, np.trunc(xf))
            out = safe.astype(to)
            out[low] = info.min
            out[high | nan] = info.max
            return [out]
        if to == np.bool_:
            return [np.asarray(x != 0)]
        if to == np.float16 and x.dtype != np.float16:
            x = x.astype(np.float32)  # LiteRT converts to float first, then float -> half
        with np.errstate(invalid="ignore", over="ignore"):
            return [np.asarray(x.astype(to))]

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """The input element and its C++ conversion."""
        x = np.asarray(inputs[0])
        v = x[tuple(element)]
        out = np.asarray(self.eval([x[tuple(element)].reshape(1)])[0])[0]
        to = np.dtype(self.to)
        if x.dtype.kind == "f" and to.kind in "iu":
            rule = "truncate toward zero, saturating (NaN -> max)"
        elif to == np.bool_:
            rule = "!= 0"
        elif x.dtype.kind in "iub" and to.kind in "iu":
            rule = "static_cast: keep the low bits (wraps)"
        else:
            rule = "static_cast (floating conversions round to nearest even)"
        return [Step("input", v.item(), f"{x.dtype} value"), Step("output", out.item(), f"to {to}: {rule}")]


_CAST_TYPES = (
    "int8",
    "uint8",
    "int16",
    "uint16",
    "int32",
    "uint32",
    "int64",
    "float16",
    "float32",
    "float64",
    "bool",
)


def prepare_cast(ctx: OpContext) -> CastData:
    """CAST (LiteRT ``cast.cc``): between the numeric types and bool, from the tensors' types (options ignored)."""
    ctx.check_counts(1, 1)
    x = ctx.input(0)
    out = ctx.output(0)
    ctx.check_dtype(x, _CAST_TYPES, "input")
    ctx.check_dtype(out, _CAST_TYPES, "output")
    return CastData((x.shape,), (out.dtype,), to=out.dtype)


# ---------------------------------------------------------------------------------------------
# SPACE_TO_DEPTH, DEPTH_TO_SPACE


@dataclass(frozen=True)
class _SpaceDepthData(MovementData):
    """Shared eval of SPACE_TO_DEPTH / DEPTH_TO_SPACE: the NHWC input viewed as 6-D, axes 2 and 3 swapped."""

    #: True for SPACE_TO_DEPTH (image blocks into the depth), False for DEPTH_TO_SPACE.
    to_depth: ClassVar[bool]
    #: Block size.
    block_size: int = 1

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """Blocks of the image moved into the depth (SPACE_TO_DEPTH) or the depth spread into blocks."""
        x = inputs[0]
        assert x is not None
        b, h, w, c = x.shape
        bs = self.block_size
        six = (b, h // bs, bs, w // bs, bs, c) if self.to_depth else (b, h, w, bs, bs, c // (bs * bs))
        y = x.reshape(six).transpose(0, 1, 3, 2, 4, 5)
        return [contiguous(y).reshape(self.output_shapes[0])]


@dataclass(frozen=True)
class SpaceToDepthData(_SpaceDepthData):
    """SPACE_TO_DEPTH (reference_ops::SpaceToDepth): ``out[b, h, w, (dy*bs + dx)*C + c] = in[b, h*bs+dy, w*bs+dx, c]``."""

    to_depth: ClassVar[bool] = True


@dataclass(frozen=True)
class DepthToSpaceData(_SpaceDepthData):
    """DEPTH_TO_SPACE (reference_ops::DepthToSpace): ``out[b, h*bs+dy, w*bs+dx, c] = in[b, h, w, (dy*bs + dx)*C + c]``."""

    to_depth: ClassVar[bool] = False


_S2D_TYPES = ("float32", "uint8", "int8", "int32", "int64")
_SD = TypeVar("_SD", bound=_SpaceDepthData)


def _block_size(ctx: OpContext) -> int:
    bs = int(ctx.option("block_size", 0))
    if bs <= 0:
        raise ctx.error(f"block_size {bs}; expected > 0")
    return bs


def _prepare_space_depth(ctx: OpContext, cls: type[_SD]) -> _SD:
    """SPACE_TO_DEPTH or DEPTH_TO_SPACE (``cls.to_depth`` says which): checks and output shape."""
    ctx.check_counts(1, 1)
    x = ctx.input(0)
    out = ctx.output(0)
    if len(x.shape) != 4:
        raise ctx.error(f"input rank {len(x.shape)}; expected 4 (NHWC)", x)
    ctx.check_dtype(out, _S2D_TYPES, "output")
    require_output_dtype(ctx, out, x.dtype)
    bs = _block_size(ctx)
    b, h, w, c = x.shape
    if cls.to_depth:
        if h % bs or w % bs:
            raise ctx.error(f"height {h} and width {w} must be multiples of block_size {bs}", x)
        shape = (b, h // bs, w // bs, c * bs * bs)
    else:
        if c % (bs * bs):
            raise ctx.error(f"depth {c} is not a multiple of block_size^2 = {bs * bs}", x)
        shape = (b, h * bs, w * bs, c // (bs * bs))
    return cls((shape,), (out.dtype,), block_size=bs)


def prepare_space_to_depth(ctx: OpContext) -> SpaceToDepthData:
    """SPACE_TO_DEPTH (LiteRT ``space_to_depth.cc``): 4-D NHWC, H and W divisible by ``block_size``.

    Types: float32, uint8, int8, int32, int64 (LiteRT rejects int16). Quantization passes unchanged.
    """
    return _prepare_space_depth(ctx, SpaceToDepthData)


def prepare_depth_to_space(ctx: OpContext) -> DepthToSpaceData:
    """DEPTH_TO_SPACE (LiteRT ``depth_to_space.cc``): 4-D NHWC, depth divisible by ``block_size^2``.

    Types: float32, uint8, int8, int32, int64 (LiteRT rejects int16). Quantization passes unchanged.
    """
    return _prepare_space_depth(ctx, DepthToSpaceData)
