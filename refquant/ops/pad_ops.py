"""Padding: LiteRT's PAD, PADV2 (``pad.cc``, REF) and MIRROR_PAD (``mirror_pad.cc``) kernels.

The input is copied raw; only the pad value needs care (docs/litert_semantics.md §3.16):

* quantized int8/int16 and all uint8 tensors pad with the **output** zero point (PAD), or with the
  raw ``constant_values`` scalar (PADV2), whose (scale, zero point) must equal the output's;
* unquantized int8/int16, int32, int64, float32 and bool pad with 0 or the raw ``constant_values``.

Input and output scales are never compared. MIRROR_PAD reflects (REFLECT excludes the edge, SYMMETRIC
repeats it); it requires equal (scale, zero point) on quantized types and zero point 0 for int16.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import OpContext, TensorInfo
from .movement import (
    MovementData,
    int_vector,
    legacy_params,
    require_output_dtype,
    require_same_params,
    require_zero_zp,
)

__all__ = ["PadData", "MirrorPadData", "prepare_pad", "prepare_mirror_pad"]

_INT32_MAX = 2**31 - 1


def _paddings(
    ctx: OpContext, x: TensorInfo, dtypes: tuple[str, ...], mirror_offset: int | None = None
) -> list[tuple[int, int]]:
    """The ``[rank, 2]`` paddings matrix of input 1, validated (non-negative, output dims < 2^31)."""
    p = ctx.input(1)
    ctx.check_dtype(p, dtypes, "paddings")
    rank = len(x.shape)
    if len(p.shape) != 2 or p.shape[1] != 2 or p.shape[0] != rank:
        raise ctx.error(f"paddings has shape {list(p.shape)}; expected [{rank}, 2]", p)
    flat = int_vector(ctx, 1, "paddings", dtypes)
    pairs = [(flat[2 * k], flat[2 * k + 1]) for k in range(rank)]
    for k, (lo, hi) in enumerate(pairs):
        if lo < 0 or hi < 0:
            raise ctx.error(f"paddings {pairs} must be >= 0", p)
        if mirror_offset is not None and max(lo, hi) > x.shape[k] - mirror_offset:
            raise ctx.error(
                f"paddings {lo}, {hi} of dimension {k} exceed the input size {x.shape[k]} minus the mode offset "
                f"{mirror_offset}",
                p,
            )
        if x.shape[k] + lo + hi > _INT32_MAX:
            raise ctx.error(f"padded dimension {k} overflows int32", p)
    return pairs


@dataclass(frozen=True)
class PadData(MovementData):
    """PAD / PADV2 (reference_ops::Pad, PadImageStyle): the input surrounded by a constant.

    ``pad_value`` is None when it comes from the ``constant_values`` input at run time (PADV2 with a
    non-constant scalar); otherwise the prepared raw value.
    """

    #: (before, after) per dimension.
    paddings: tuple[tuple[int, int], ...] = ()
    #: The raw pad value in the tensor's type, or None to read input 2 at eval.
    pad_value: int | float | bool | None = 0

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """``np.pad`` with the constant."""
        x = inputs[0]
        assert x is not None
        v = self.pad_value
        if v is None:
            c = inputs[2]
            assert c is not None
            v = np.asarray(c).reshape(-1)[0]
        out = np.full(self.output_shapes[0], v, dtype=x.dtype)
        inner = tuple(slice(lo, lo + d) for (lo, _), d in zip(self.paddings, x.shape))
        out[inner] = x
        return [out]

    def source(
        self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]
    ) -> tuple[int, tuple[int, ...]] | None:
        """The input element, or None inside the padding."""
        idx = tuple(e - lo for e, (lo, _) in zip(element, self.paddings))
        if all(0 <= i < d for i, d in zip(idx, np.shape(inputs[0]))):
            return 0, idx
        return None


_PAD_TYPES = ("int8", "uint8", "int16", "int32", "int64", "float32", "bool")


def prepare_pad(ctx: OpContext) -> PadData:
    """PAD and PADV2 (LiteRT ``pad.cc``, REF): up to 5-D; paddings int32/int64/int8/int16/bool ``[rank, 2]``.

    The pad value is described in the module docstring. PADV2's ``constant_values`` must have the
    input's type and exactly one element; an omitted third input (index -1) behaves like PAD. For
    quantized types the output zero point must fit the type (checked by LiteRT at Eval).
    """
    ctx.check_counts((2, 3), 1)
    x = ctx.input(0)
    out = ctx.output(0)
    ctx.check_dtype(x, _PAD_TYPES, "input")
    require_output_dtype(ctx, out, x.dtype)
    c = ctx.optional_input(2)
    if c is not None:
        if c.dtype != x.dtype:
            raise ctx.error(f"constant_values type {c.dtype} differs from the input type {x.dtype}", c)
        if c.size != 1:
            raise ctx.error(f"constant_values has {c.size} elements; expected 1", c)
    if len(x.shape) > 5:
        raise ctx.error(f"input rank {len(x.shape)}; PAD supports at most 5 dims", x)
    pairs = _paddings(ctx, x, ("int32", "int64", "int8", "int16", "bool"))
    shape = tuple(d + lo + hi for d, (lo, hi) in zip(x.shape, pairs))
    quantized_path = x.dtype == "uint8" or (x.dtype in ("int8", "int16") and x.is_quantized)
    pad_value: int | float | bool | None
    if quantized_path:
        zp_out = legacy_params(out)[1]
        if c is None:
            info = np.iinfo(np.dtype(x.dtype))
            if not info.min <= zp_out <= info.max:
                raise ctx.fail_quant(f"output zero point {zp_out} does not fit {x.dtype}", out)
            pad_value = zp_out
        else:
            require_same_params(ctx, c, out, "constant_values")
            pad_value = None if c.value is None else np.asarray(c.value).reshape(-1)[0].item()
    elif c is None:
        pad_value = False if x.dtype == "bool" else 0
    else:
        pad_value = None if c.value is None else np.asarray(c.value).reshape(-1)[0].item()
    return PadData((shape,), (out.dtype,), paddings=tuple(pairs), pad_value=pad_value)


@dataclass(frozen=True)
class MirrorPadData(MovementData):
    """MIRROR_PAD (``mirror_pad.cc``): each output index maps to an input index per dimension.

    With ``offset`` 1 (REFLECT) or 0 (SYMMETRIC), LiteRT's GetInputDimension maps ``p`` to
    ``left + offset - 1 - min(p, left - 1)`` before the data, ``p - left`` inside, and
    ``in - 1 - offset - min(p - left - in, in - 1 - offset)`` after it.
    """

    #: Input index per output position, one tuple per dimension.
    index_maps: tuple[tuple[int, ...], ...] = ()

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """The mirrored array."""
        x = inputs[0]
        assert x is not None
        if not self.index_maps:
            return [np.array(x)]
        return [np.asarray(x)[np.ix_(*[np.asarray(m, dtype=np.int64) for m in self.index_maps])]]


def _mirror_map(size: int, left: int, right: int, offset: int) -> tuple[int, ...]:
    """GetInputDimension for every padded position of one dimension."""
    out = []
    for p in range(size + left + right):
        if p < left:
            original = left + offset - 1
            out.append(original - min(p, original - offset))
        elif p - left >= size:
            q = p - left - size
            original = size - (1 + offset)
            out.append(original - min(q, original))
        else:
            out.append(p - left)
    return tuple(out)


def prepare_mirror_pad(ctx: OpContext) -> MirrorPadData:
    """MIRROR_PAD (LiteRT ``mirror_pad.cc``): int32/int64 paddings ``[rank, 2]``, each <= size - offset.

    ``mode`` REFLECT (offset 1) or SYMMETRIC (offset 0). Quantized uint8/int8/int16 need equal input and
    output (scale, zero point); int16 zero points must be 0.
    """
    ctx.check_counts(2, 1)
    x = ctx.input(0)
    out = ctx.output(0)
    ctx.check_dtype(x, ("int8", "uint8", "int16", "int32", "int64", "float32", "float16", "bool"), "input")
    require_output_dtype(ctx, out, x.dtype)
    mode = ctx.option("mode", None)
    if mode not in ("REFLECT", "SYMMETRIC"):
        raise ctx.error(f"mode {mode!r}; expected REFLECT or SYMMETRIC")
    offset = 1 if mode == "REFLECT" else 0
    if x.dtype in ("uint8", "int8", "int16"):
        require_same_params(ctx, x, out, "input")
    if x.dtype == "int16":
        require_zero_zp(ctx, x, out)
    pairs = _paddings(ctx, x, ("int32", "int64"), mirror_offset=offset)
    maps = tuple(_mirror_map(d, lo, hi, offset) for d, (lo, hi) in zip(x.shape, pairs))
    shape = tuple(len(m) for m in maps)
    return MirrorPadData((shape,), (out.dtype,), index_maps=maps)
