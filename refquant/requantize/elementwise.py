"""Elementwise rescaling variants of the runtimes other than LiteRT's reference kernels (arithmetic profiles).

The companion of :mod:`refquant.requantize` (which holds the reference kernels' variants and the conv family's):
each variant here reproduces one runtime's elementwise arithmetic, once, for the kernels and their traces.

=================================================  ===================================================
Variant                                            Reproduces
=================================================  ===================================================
:func:`xnn_add20` (:func:`xnn_add20_params`)       XNNPACK's ADD/SUB (20-bit multipliers, one shift)
:func:`fp32_rne` (:func:`xnn_mul_scale`)           XNNPACK's float32 requantization (MUL), ties to even
:func:`xnn_mul8`                                   XNNPACK's 8-bit multipliers (LEAKY_RELU, requantizing
                                                   QUANTIZE)
:func:`xnn_activation_bounds`                      XNNPACK's fused-activation bounds (ties to even)
:func:`mbqm_int16_wrap`                            LiteRT optimized MUL's int16 output stage (wraps)
:func:`neon_add_block`                             LiteRT optimized ADD's SIMD blocks (int16 output stage)
:func:`xnn_quantize_f32` / :func:`opt_quantize_f32`  float32 -> integer QUANTIZE of XNNPACK / optimized
:func:`dequantize_two_products`                    LiteRT optimized DEQUANTIZE's SIMD blocks
:func:`block_mask`                                 which flat elements a SIMD loop covers
=================================================  ===================================================

Conventions as in :mod:`refquant.requantize`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..fixedpoint import (
    INT32_MIN,
    rdbpot_i64,
    round_half_away_from_zero,
    srdhm32_i64,
    wrap_int32_i64,
)

__all__ = [
    "xnn_activation_bounds",
    "XnnAddParams",
    "xnn_add20_params",
    "xnn_add20",
    "xnn_mul_scale",
    "fp32_rne",
    "mbqm_int16_wrap",
    "xnn_mul8_multiplier",
    "xnn_mul8",
    "block_mask",
    "xnn_quantize_f32",
    "opt_quantize_f32",
    "dequantize_two_products",
    "neon_add_block",
]


# ---------------------------------------------------------------------------------------------
# Elementwise arithmetic of the non-reference runtimes: XNNPACK's ADD/SUB, MUL, LEAKY_RELU, QUANTIZE
# and LiteRT's optimized MUL, QUANTIZE, DEQUANTIZE (arithmetic profiles litert-xnnpack, litert-optimized)
#
# XNNPACK sources (google/XNNPACK): src/microparams-init.c (xnn_init_qs8_add_minmax_scalar_params,
# xnn_init_qs8_mul_minmax_scalar_params, xnn_init_qs8_lrelu_scalar_params, xnn_init_qs8_cvt_scalar_params,
# xnn_init_f32_qs8_cvt_scalar_params and their qu8 twins), src/xnnpack/requantization.h (xnn_qs8_quantize,
# xnn_qu8_quantize), the scalar kernels qs8-vadd, qs8-vmul (fp32), qs8-vlrelu, qs8-vcvt, f32-qs8-vcvt.
# LiteRT sources: tflite/kernels/internal/optimized/integer_ops/mul.h and optimized_ops.h (MulElementwise,
# MulSimpleBroadcast, AffineQuantize, Requantize, Dequantize), compiled on x86 through NEON_2_SSE.
# Every formula was checked against ai-edge-litert 2.3.0 on x86-64 (tests/ops/test_profiles_elementwise.py).

#: Float bounds of the fused activations, as the XNNPACK delegate passes them (ConvertActivationToOutputRange).
_XNN_ACT_RANGES: dict[str, tuple[float, float]] = {
    "NONE": (-np.inf, np.inf),
    "RELU": (0.0, np.inf),
    "RELU_N1_TO_1": (-1.0, 1.0),
    "RELU6": (0.0, 6.0),
}


def xnn_activation_bounds(activation: str, scale: float, zero_point: int, dtype: str) -> tuple[int, int]:
    """XNNPACK's integer output bounds of a fused activation: ``xnn_qs8_quantize`` / ``xnn_qu8_quantize``.

    Each float bound ``v`` becomes ``lrintf(clamp(f32(v / s_out) + zp_out, qmin, qmax))`` (float32, ties to
    even), where TFLite's ``CalculateActivationRangeQuantized`` rounds ties away from zero. ``activation``:
    "NONE", "RELU", "RELU_N1_TO_1" or "RELU6"; ``dtype``: "int8" or "uint8". Returns ``(lo, hi)``.
    """
    info = np.iinfo(np.dtype(dtype))
    s = np.float32(scale)
    out = []
    for v in _XNN_ACT_RANGES[activation]:
        with np.errstate(over="ignore"):
            t = np.float32(np.float32(v) / s) + np.float32(zero_point)
        t = np.float32(min(max(t, np.float32(info.min)), np.float32(info.max)))
        out.append(int(np.rint(t)))
    return out[0], out[1]


@dataclass(frozen=True)
class XnnAddParams:
    """XNNPACK's quantized ADD/SUB parameters (``xnn_init_qs8_add_minmax_scalar_params``)."""

    #: Signed 21-bit multipliers of ``s_a/s_out`` and ``±s_b/s_out`` (negative for SUB).
    a_multiplier: int
    b_multiplier: int
    #: Right shift, 12..30.
    shift: int
    #: ``2^(shift-1) - a_multiplier*zp_a - b_multiplier*zp_b``.
    bias: int


def xnn_add20_params(
    s_a: float, zp_a: int, s_b: float, zp_b: int, s_out: float, subtract: bool = False
) -> XnnAddParams | None:
    """The multipliers, shift and bias of XNNPACK's ADD (``subtract``: SUB, input b's ratio negated).

    ``ra = f32(s_a)/f32(s_out)``, ``rb = ±f32(s_b)/f32(s_out)``; ``shift = 20 - e`` with ``e`` the float
    exponent of ``max(|ra|, |rb|)``; each multiplier is ``±lrintf(|r| * 2^shift)`` (an exact power-of-two
    scaling, then ties to even). None when a ratio is outside ``[2^-10, 2^8)`` (XNNPACK asserts; the
    delegate does not take such nodes).
    """
    so = np.float32(s_out)
    ra = np.float32(np.float32(s_a) / so)
    rb = np.float32(np.float32(s_b) / so)
    if subtract:
        rb = -rb
    lo, hi = np.float32(2.0**-10), np.float32(2.0**8)
    if not (lo <= abs(ra) < hi and lo <= abs(rb) < hi):
        return None
    mx = max(abs(ra), abs(rb))
    e = int(np.array(mx, np.float32).view(np.uint32) >> 23) - 127
    shift = 20 - e
    ma = int(np.rint(np.float32(abs(ra) * np.float32(2.0**shift))))
    mb = int(np.rint(np.float32(abs(rb) * np.float32(2.0**shift))))
    ma = -ma if ra < 0 else ma
    mb = -mb if rb < 0 else mb
    return XnnAddParams(ma, mb, shift, (1 << (shift - 1)) - ma * zp_a - mb * zp_b)


def xnn_add20(a: ArrayLike, b: ArrayLike, p: XnnAddParams, zp_out: int, lo: int, hi: int) -> NDArray[np.int64]:
    """XNNPACK's ADD/SUB of raw 8-bit values: ``clamp(((bias + a*ma + b*mb) >> shift) + zp_out, lo, hi)``.

    One rounding: the arithmetic shift after the ``2^(shift-1)`` bias rounds ties toward +infinity.
    ``a``, ``b``: raw int8/uint8 values (broadcastable); ``lo``/``hi``: :func:`xnn_activation_bounds`.
    The int32 sum cannot overflow (``|a*ma| < 2^8 * 2^21``). Output: int64 array.
    """
    acc = p.bias + np.asarray(a, np.int64) * p.a_multiplier + np.asarray(b, np.int64) * p.b_multiplier
    return np.clip((acc >> p.shift) + zp_out, lo, hi)


def xnn_mul_scale(s_a: float, s_b: float, s_out: float) -> np.float32:
    """XNNPACK's MUL requantization scale ``f32(f32(s_a*s_b)/s_out)`` (every factor a C float)."""
    return np.float32(np.float32(np.float32(s_a) * np.float32(s_b)) / np.float32(s_out))


def fp32_rne(acc: ArrayLike, scale: ArrayLike) -> NDArray[np.int64]:
    """XNNPACK's fp32 requantization of int32 values: ``rne(f32(f32(acc) * scale))``, ties to even.

    (qs8-vmul fp32 kernels: ``cvtepi32_ps``, ``mul_ps``, ``cvtps_epi32`` under the default MXCSR). The caller
    adds the output zero point and clamps; clamping in float before rounding (as the kernels do, against
    integer bounds) gives the same integers. Output: int64 array.
    """
    v = np.multiply(np.asarray(acc).astype(np.float32), np.asarray(scale, np.float32), dtype=np.float32)
    return np.rint(v).astype(np.int64)


def mbqm_int16_wrap(v: ArrayLike, zp_out: int, lo: int, hi: int) -> NDArray[np.int64]:
    """LiteRT's optimized MUL output stage in its SIMD blocks, after MultiplyByQuantizedMultiplier.

    ``vqmovn_s32`` (saturate to int16), ``vaddq_s16`` of the output zero point (wraps in int16), then
    ``vqmovn`` to the 8-bit type and the activation clamp: ``clamp(sat8(wrap16(sat16(v) + zp_out)), lo, hi)``.
    Equal to the reference ``clamp(v + zp_out)`` unless ``v + zp_out`` leaves int16. ``v``: MBQM results
    (int32 values). Output: int64 array.
    """
    s = np.clip(np.asarray(v, np.int64), -32768, 32767) + zp_out
    s = ((s + 32768) & 0xFFFF) - 32768
    return np.clip(s, lo, hi)


def xnn_mul8_multiplier(ratio: float) -> int:
    """XNNPACK's 8-bit multiplier ``lrintf(256 * ratio)`` (``ratio`` a float32 value; ties to even)."""
    return int(np.rint(np.float32(np.float32(256.0) * np.float32(ratio))))


def xnn_mul8(d: ArrayLike, multiplier: ArrayLike, zp_out: int, dtype: str) -> NDArray[np.int64]:
    """XNNPACK's 8-bit-multiplier requantization (qs8-vcvt, qs8-vlrelu scalar kernels).

    ``sat(((zp_out << 8) + 128 + d * multiplier) >> 8)``: one rounding, ties toward +infinity, saturated
    to ``dtype`` ("int8"/"uint8"). ``d``: ``q - zp_in``; ``multiplier``: :func:`xnn_mul8_multiplier`
    (per element for LEAKY_RELU's two slopes). Output: int64 array.
    """
    info = np.iinfo(np.dtype(dtype))
    acc = (zp_out << 8) + 128 + np.asarray(d, np.int64) * np.asarray(multiplier, np.int64)
    return np.clip(acc >> 8, info.min, info.max)


def block_mask(n: int, blocks: int) -> NDArray[np.bool_]:
    """The flat positions a SIMD loop over blocks of ``blocks`` elements covers: ``i < blocks*floor(n/blocks)``."""
    return np.arange(n) < blocks * (n // blocks)


def xnn_quantize_f32(x: ArrayLike, scale: float, zero_point: int, dtype: str) -> NDArray[np.int64]:
    """XNNPACK's float32 -> int8/uint8 conversion (f32-qs8-vcvt): ``sat(rne(f32(x * f32(1/s))) + zp)``.

    The reciprocal is a float32 division (``xnn_init_f32_qs8_cvt_scalar_params``), the product rounds to
    float32, the conversion rounds ties to even. NaN gives qmax and out-of-range values saturate (measured
    on the x86 kernels: the upper clamp is a float ``min`` that returns its bound for NaN). Output: int64.
    """
    info = np.iinfo(np.dtype(dtype))
    inv = np.float32(np.float32(1.0) / np.float32(scale))
    with np.errstate(over="ignore", invalid="ignore"):
        v = np.multiply(np.asarray(x, np.float32), inv, dtype=np.float32)
        v = np.where(np.isnan(v), np.float32(info.max - zero_point), v)
        v = np.clip(v, np.float32(info.min - zero_point), np.float32(info.max - zero_point))
    return np.rint(v).astype(np.int64) + zero_point


def opt_quantize_f32(x: ArrayLike, scale: float, zero_point: int, dtype: str, blocks: int) -> NDArray[np.int64]:
    """LiteRT's optimized float32 -> int8/uint8/int16 ``AffineQuantize`` (optimized_ops.h), on flat elements.

    SIMD blocks (flat positions below ``blocks*floor(n/blocks)``): ``rne(f32(x * f32(1/f64(s))))`` with the
    x86 conversion (out of range and NaN give INT32_MIN), ``+ zp`` wrapping in int32, then saturation. The
    scalar tail: ``int32(round_away(f64(x) / f64(s))) + zp``, saturated (the reference formula in double).
    ``x`` is flattened; the output has its shape. Output: int64 array.
    """
    info = np.iinfo(np.dtype(dtype))
    xf = np.asarray(x, np.float32)
    flat = xf.reshape(-1)
    inv = np.float32(1.0 / np.float64(scale))
    mask = block_mask(flat.size, blocks)
    with np.errstate(over="ignore", invalid="ignore"):
        block = np.rint(np.multiply(flat, inv, dtype=np.float32)).astype(np.float64)
        tail = round_half_away_from_zero(flat.astype(np.float64) / np.float64(scale))
    r = np.where(mask, block, tail)
    ok = np.isfinite(r) & (r >= -(2.0**31)) & (r < 2.0**31)
    i32 = np.where(ok, np.where(ok, r, 0).astype(np.int64), INT32_MIN)
    return np.clip(wrap_int32_i64(i32 + zero_point), info.min, info.max).reshape(xf.shape)


def dequantize_two_products(q: ArrayLike, scale: float, zero_point: int) -> NDArray[np.float32]:
    """LiteRT's optimized DEQUANTIZE SIMD block: ``f32(f32(q) * s) - f32(f32(zp) * s)`` (two roundings).

    (optimized_ops.h ``Dequantize``: a multiply-add of ``q`` by the scale and the float ``-zp * s``; NEON_2_SSE
    emulates ``vmlaq_f32`` as a multiply then an add.) The reference rounds once: ``f32((q - zp) * s)``.
    Output: float32 array.
    """
    s = np.float32(scale)
    zs = np.float32(np.float32(zero_point) * s)
    return np.subtract(np.multiply(np.asarray(q).astype(np.float32), s, dtype=np.float32), zs, dtype=np.float32)


def neon_add_block(
    x1: ArrayLike,
    x2: ArrayLike,
    *,
    offsets: tuple[int, int],
    multipliers: tuple[int, int],
    shifts: tuple[int, int],
    output_multiplier: int,
    output_shift: int,
    output_offset: int,
    lo: int,
    hi: int,
    dtype: str,
    left_shift: int = 20,
    fold_input_shift: bool | None = None,
) -> NDArray[np.int64]:
    """LiteRT's optimized quantized ADD in its NEON blocks (optimized_integer_ops/add.h ``AddElementwiseInt8``,
    optimized_ops.h ``AddElementwise`` for uint8), as compiled on x86 through NEON_2_SSE.

    int8 ``AddElementwiseInt8`` (``fold_input_shift``, the default for int8): each input
    ``(x + offset) << (20 + shift_k)`` (one shift, no rounding), then ``vqrdmulh`` by its multiplier (ties up).
    uint8, and int8's ``AddScalarBroadcast``: ``(x + offset) << 20``, ``vqrdmulh``, then ``vshl`` by the
    (negative) input shift: a truncating arithmetic right shift. Both: the int32 sum, ``vqrdmulh`` by the output multiplier and
    gemmlowp's ``RoundingDivideByPOT`` (ties away), ``vmovn`` (wraps to int16), ``+ output_offset`` in int16
    (wraps), saturation to the 8-bit type, the activation clamp ``[lo, hi]``. The scalar tail is the reference
    kernel. Inputs: raw 8-bit values (broadcastable); parameters as the reference kernel prepares them
    (``QuantizeMultiplierSmallerThanOneExp``). Output: int64 array.
    """
    fold = dtype == "int8" if fold_input_shift is None else fold_input_shift
    parts = []
    for x, off, m, s in zip((x1, x2), offsets, multipliers, shifts):
        v = np.asarray(x, np.int64) + off
        if fold:
            ls = left_shift + s
            v = wrap_int32_i64(v << ls) if ls >= 0 else v >> -ls
            parts.append(srdhm32_i64(v, np.int64(m)))
        else:
            v = srdhm32_i64(wrap_int32_i64(v << left_shift), np.int64(m))
            parts.append(v >> -s if s < 0 else wrap_int32_i64(v << s))
    total = wrap_int32_i64(parts[0] + parts[1])
    scaled = rdbpot_i64(srdhm32_i64(total, np.int64(output_multiplier)), -output_shift)
    n16 = ((scaled + 32768) & 0xFFFF) - 32768
    t = ((n16 + output_offset + 32768) & 0xFFFF) - 32768
    info = np.iinfo(np.dtype(dtype))
    return np.clip(np.clip(t, info.min, info.max), lo, hi)
