"""Elementwise kernels of the non-reference arithmetic profiles: XNNPACK's ADD/SUB, MUL and LEAKY_RELU.

The reference kernels (and the optimized kernels' block/tail variants, which extend them) are in
:mod:`refquant.ops.elementwise`; it calls :func:`prepare_add_sub_xnnpack` and :func:`prepare_mul_xnnpack` when
the profile's decision (``ctx.arithmetic``) is ``xnn_add20`` or ``fp32_rne``
(:mod:`refquant.ops.activations` calls :func:`prepare_leaky_relu_xnnpack` for ``xnn_mul8``), and :func:`optimized_simd_mask`
for the optimized kernels' SIMD blocks. The formulas live in :mod:`refquant.requantize.elementwise`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from ..errors import UnsupportedOpError
from ..requantize.elementwise import (
    XnnAddParams,
    fp32_rne,
    xnn_activation_bounds,
    xnn_add20,
    xnn_add20_params,
    xnn_mul8,
    xnn_mul8_multiplier,
    xnn_mul_scale,
)
from .base import OpContext, OpData, TensorInfo
from .staging import Stage, Staged

__all__ = [
    "AddSubXnnpack",
    "MulXnnpack",
    "prepare_add_sub_xnnpack",
    "prepare_mul_xnnpack",
    "optimized_simd_mask",
    "innermost_run",
    "LeakyReluXnnpack",
    "prepare_leaky_relu_xnnpack",
]

#: Use the byte-pair tables (tests switch this off to compare with the readable stages).
FAST_PATHS = True


def _byte_table(data: Staged, dtype: str, out_dtype: str) -> np.ndarray:
    """All 65536 8-bit input pairs through ``data``'s readable stages: ``table[u1 << 8 | u2]``."""
    vals = np.arange(256, dtype=np.uint8).view(np.dtype(dtype))
    table = np.asarray(data._stages([vals[:, None], vals[None, :]])[-1][1]).reshape(-1).astype(np.dtype(out_dtype))
    table.flags.writeable = False
    return table


def _table_lookup(table: np.ndarray, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    idx = np.left_shift(np.asarray(x1).view(np.uint8), 8, dtype=np.uint16)
    idx = np.bitwise_or(idx, np.asarray(x2).view(np.uint8), dtype=np.uint16)
    return np.take(table, idx)


class _PairTable:
    """Eval of an 8-bit binary kernel by one lookup per element in a 65536-entry table of its stages."""

    lut: np.ndarray | None
    output_shapes: tuple[tuple[int, ...], ...]

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """One table lookup per element (the table is ``_stages`` over all pairs, built at prepare)."""
        if not FAST_PATHS or self.lut is None:
            return Staged.eval(self, inputs)  # type: ignore[arg-type]
        out = _table_lookup(self.lut, np.asarray(inputs[0]), np.asarray(inputs[1]))
        shape = self.output_shapes[0]
        return [out if out.shape == shape else np.array(np.broadcast_to(out, shape))]


@dataclass(frozen=True)
class AddSubXnnpack(_PairTable, Staged, OpData):
    """int8/uint8 ADD/SUB as the XNNPACK delegate computes them (profile litert-xnnpack, ``xnn_add20``).

    ``clamp(((bias + x1*ma + x2*mb) >> shift) + zp_out, lo, hi)`` (:func:`refquant.requantize.xnn_add20`):
    20-bit multipliers of ``s1/s_out`` and ``±s2/s_out`` (negative for SUB), one arithmetic shift (ties up),
    activation bounds rounded half to even (:func:`refquant.requantize.xnn_activation_bounds`).
    """

    #: XNNPACK's multipliers, shift and bias.
    params: XnnAddParams = None  # type: ignore[assignment]
    #: Output zero point.
    output_offset: int = 0
    #: Output bounds (fused activation, XNNPACK's rounding).
    act_min: int = 0
    act_max: int = 0
    #: ``table[u1 << 8 | u2]``: the readable stages over every input pair (prepare).
    lut: np.ndarray | None = field(default=None, repr=False)

    _not_params = OpData._not_params | frozenset({"lut"})

    def _stages(self, inputs: list[np.ndarray | None]) -> list[Stage]:
        p = self.params
        x1 = np.asarray(inputs[0]).astype(np.int64)
        x2 = np.asarray(inputs[1]).astype(np.int64)
        acc = p.bias + x1 * p.a_multiplier + x2 * p.b_multiplier
        shifted = acc >> p.shift
        out = xnn_add20(x1, x2, p, self.output_offset, self.act_min, self.act_max).astype(self.output_dtypes[0])
        return [
            ("accumulator", acc, f"{p.bias} + x1 * {p.a_multiplier} + x2 * {p.b_multiplier} (XNNPACK, int32)"),
            ("shifted", shifted, f">> {p.shift} (arithmetic: ties toward +inf)"),
            ("plus zero point", shifted + self.output_offset, f"+ {self.output_offset}"),
            ("output", out, f"clamp to [{self.act_min}, {self.act_max}] (XNNPACK bounds, ties to even)"),
        ]


@dataclass(frozen=True)
class MulXnnpack(_PairTable, Staged, OpData):
    """int8/uint8 MUL as the XNNPACK delegate computes it (profile litert-xnnpack, ``fp32_rne``).

    ``clamp(rne(f32(f32((x1 - zp1)*(x2 - zp2)) * f32(f32(s1*s2)/s_out))) + zp_out, lo, hi)``
    (:func:`refquant.requantize.fp32_rne`), bounds from :func:`refquant.requantize.xnn_activation_bounds`.
    """

    #: -zero_point of input 1 and input 2.
    input1_offset: int = 0
    input2_offset: int = 0
    #: The float32 scale f32(f32(s1*s2)/s_out).
    scale: float = 0.0
    #: Output zero point.
    output_offset: int = 0
    #: Output bounds (fused activation, XNNPACK's rounding).
    act_min: int = 0
    act_max: int = 0
    #: ``table[u1 << 8 | u2]``: the readable stages over every input pair (prepare).
    lut: np.ndarray | None = field(default=None, repr=False)

    _not_params = OpData._not_params | frozenset({"lut"})

    def _stages(self, inputs: list[np.ndarray | None]) -> list[Stage]:
        v1 = np.asarray(inputs[0]).astype(np.int64) + self.input1_offset
        v2 = np.asarray(inputs[1]).astype(np.int64) + self.input2_offset
        prod = v1 * v2  # |prod| <= 255^2: exact in float32
        scaled = fp32_rne(prod, np.float32(self.scale))
        shifted = scaled + self.output_offset
        out = np.clip(shifted, self.act_min, self.act_max).astype(self.output_dtypes[0])
        return [
            ("product", prod, f"(x1 + {self.input1_offset}) * (x2 + {self.input2_offset})"),
            ("rescaled", scaled, f"rne(f32(product) * {float(np.float32(self.scale))!r}) (float32, ties to even)"),
            ("plus zero point", shifted, f"+ {self.output_offset}"),
            ("output", out, f"clamp to [{self.act_min}, {self.act_max}] (XNNPACK bounds, ties to even)"),
        ]


def prepare_add_sub_xnnpack(
    ctx: OpContext,
    sign: int,
    a: TensorInfo,
    o: TensorInfo,
    shape: tuple[int, ...],
    act: str,
    q1: tuple[np.float32, int],
    q2: tuple[np.float32, int],
    qo: tuple[np.float32, int],
) -> OpData:
    """ADD/SUB int8/uint8 under the XNNPACK delegate (the decision ``xnn_add20``); ``q*``: (scale, zero point)."""
    if a.dtype not in ("int8", "uint8"):
        raise ctx.unsupported(f"XNNPACK ADD/SUB of {a.dtype}")
    (s1, zp1), (s2, zp2), (so, zpo) = q1, q2, qo
    arith = ctx.arithmetic
    params = xnn_add20_params(float(s1), zp1, float(s2), zp2, float(so), subtract=sign < 0)
    if params is None:
        raise ctx.fail_quant("XNNPACK ADD/SUB: an input/output scale ratio is outside [2^-10, 2^8)", o)
    lo, hi = xnn_activation_bounds(act, float(so), zpo, o.dtype)
    data = AddSubXnnpack(
        output_shapes=(shape,),
        output_dtypes=(o.dtype,),
        params=params,
        output_offset=zpo,
        act_min=lo,
        act_max=hi,
        arithmetic=arith,
    )
    return dataclasses.replace(data, lut=_byte_table(data, a.dtype, o.dtype))


def prepare_mul_xnnpack(
    ctx: OpContext,
    a: TensorInfo,
    o: TensorInfo,
    shape: tuple[int, ...],
    act: str,
    q1: tuple[np.float32, int],
    q2: tuple[np.float32, int],
    qo: tuple[np.float32, int],
) -> OpData:
    """MUL int8/uint8 under the XNNPACK delegate (the decision ``fp32_rne``); ``q*``: (scale, zero point)."""
    (s1, zp1), (s2, zp2), (so, zpo) = q1, q2, qo
    arith = ctx.arithmetic
    if a.dtype not in ("int8", "uint8"):
        raise ctx.unsupported(f"XNNPACK MUL of {a.dtype}")
    lo, hi = xnn_activation_bounds(act, float(so), zpo, o.dtype)
    xdata = MulXnnpack(
        output_shapes=(shape,),
        output_dtypes=(o.dtype,),
        input1_offset=-zp1,
        input2_offset=-zp2,
        scale=float(xnn_mul_scale(float(s1), float(s2), float(so))),
        output_offset=zpo,
        act_min=lo,
        act_max=hi,
        arithmetic=arith,
    )
    return dataclasses.replace(xdata, lut=_byte_table(xdata, a.dtype, o.dtype))


def innermost_run(sa: tuple[int, ...], sb: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, bool]:
    """(length of the innermost run of output dimensions that broadcast alike, whether one input is a scalar along
    it): the inner loop of LiteRT's optimized broadcast kernels (``BroadcastBinaryFunction...Fivefold``)."""
    r = len(shape)
    pa = (1,) * (r - len(sa)) + tuple(sa)
    pb = (1,) * (r - len(sb)) + tuple(sb)
    pats = [(pa[d] == 1, pb[d] == 1) for d in range(r) if shape[d] > 1]
    run = 1
    for d in range(r - 1, -1, -1):
        if shape[d] == 1:
            continue
        if (pa[d] == 1, pb[d] == 1) != pats[-1]:
            break
        run *= shape[d]
    return run, bool(pats) and pats[-1] != (False, False)


def optimized_simd_mask(
    ctx: OpContext, sa: tuple[int, ...], sb: tuple[int, ...], shape: tuple[int, ...], block: int, name: str = "MUL"
) -> np.ndarray:
    """Which output elements LiteRT's optimized MUL/ADD computes in its SIMD loop (blocks of ``block`` elements).

    Measured (ai-edge-litert 2.3.0, x86-64): the loop runs over the innermost run of output dimensions that
    broadcast alike (all of the tensor without broadcasting; the trailing dimensions where one input is a
    scalar or both are full), ``block`` elements at a time (int8: 16, uint8: 8); the rest of each run is the
    scalar tail. Broadcasts that alternate more than once are refused (not measured).
    """
    r = len(shape)
    pa = (1,) * (r - len(sa)) + tuple(sa)
    pb = (1,) * (r - len(sb)) + tuple(sb)
    pats = [(pa[d] == 1, pb[d] == 1) for d in range(r) if shape[d] > 1]
    changes = sum(1 for k in range(1, len(pats)) if pats[k] != pats[k - 1])
    if changes > 1:
        raise ctx.error(
            f"arithmetic {ctx.arithmetic.profile}: not reproduced by refquant: LiteRT's optimized {name} whose SIMD "
            "blocks round differently "
            "from its scalar tail, with a broadcast pattern whose blocks were not measured",
            cls=UnsupportedOpError,
        )
    run = innermost_run(sa, sb, shape)[0]
    size = int(np.prod(shape, dtype=np.int64))
    pos = np.arange(size) % run
    return (pos < block * (run // block)).reshape(shape)


@dataclass(frozen=True)
class LeakyReluXnnpack(Staged, OpData):
    """int8/uint8 LEAKY_RELU as the XNNPACK delegate computes it (profile litert-xnnpack, ``xnn_mul8``).

    ``d = q - zp_in``; ``sat(((zp_out << 8) + 128 + d * (d < 0 ? nm : pm)) >> 8)`` with the 8-bit multipliers
    ``pm = lrintf(256 * f32(s_in/s_out))`` and ``nm = lrintf(256 * f32(f32(s_in/s_out) * alpha))``
    (``xnn_init_qs8_lrelu_scalar_params``, qs8-vlrelu; :func:`refquant.requantize.xnn_mul8`).
    """

    #: Input zero point (subtracted).
    input_offset: int = 0
    #: Output zero point.
    output_offset: int = 0
    #: 8-bit multipliers for d >= 0 and d < 0.
    positive_multiplier: int = 0
    negative_multiplier: int = 0

    def _stages(self, inputs: list[np.ndarray | None]) -> list[Stage]:
        d = np.asarray(inputs[0]).astype(np.int64) - self.input_offset
        m = np.where(d < 0, self.negative_multiplier, self.positive_multiplier)
        out = xnn_mul8(d, m, self.output_offset, self.output_dtypes[0]).astype(self.output_dtypes[0])
        return [
            ("offset input", d, f"x - {self.input_offset}"),
            ("multiplier", m, f"{self.negative_multiplier} if negative else {self.positive_multiplier} (256ths)"),
            (
                "output",
                out,
                f"saturate(({self.output_offset} << 8) + 128 + offset * multiplier) >> 8) (XNNPACK: ties up)",
            ),
        ]


def prepare_leaky_relu_xnnpack(
    ctx: OpContext,
    x: TensorInfo,
    o: TensorInfo,
    qi: tuple[np.float32, int],
    qo: tuple[np.float32, int],
    alpha: np.float32,
) -> OpData:
    """LEAKY_RELU int8/uint8 under the XNNPACK delegate (the decision ``xnn_mul8``); ``q*``: (scale, zero point)."""
    if x.dtype not in ("int8", "uint8"):
        raise ctx.unsupported(f"XNNPACK LEAKY_RELU of {x.dtype}")
    (s_in, zp_in), (s_out, zp_out) = qi, qo
    ratio = np.float32(s_in / s_out)
    return LeakyReluXnnpack(
        output_shapes=(x.shape,),
        output_dtypes=(o.dtype,),
        input_offset=zp_in,
        output_offset=zp_out,
        positive_multiplier=xnn_mul8_multiplier(float(ratio)),
        negative_multiplier=xnn_mul8_multiplier(float(np.float32(ratio * alpha))),
        arithmetic=ctx.arithmetic,
    )
