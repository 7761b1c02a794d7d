"""Rescaling in the runtimes other than LiteRT's reference kernels: LiteRT's optimized kernels (NEON
semantics through NEON_2_SSE) and the XNNPACK delegate, for the conv family, FULLY_CONNECTED, MEAN, SUM and
RESIZE_BILINEAR. See :mod:`refquant.requantize` for the table of every variant.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..fixedpoint import (
    INT32_MAX,
    INT32_MIN,
    checked_int64,
    checked_int_param,
    int32_result,
    round_half_away_from_zero,
    saturating_rounding_doubling_high_mul_py,
    wrap_int,
    wrap_int32_i64,
)
from .reference import RequantStep, left_shift_wrap32

__all__ = [
    "xnn_reduce_params",
    "xnn_float_reduce",
    "opt_sum_params",
    "float_round_away_sum",
    "legacy_mean_params",
    "xnn_q11_round",
    "neon_mbqm",
    "neon_mbqm_steps",
    "xnnpack_requant_scale",
    "xnnpack_output_bound",
    "fp32_rne_requant",
    "fp32_rne_steps",
]


# ---------------------------------------------------------------------------------------------
# Arithmetic profiles: MEAN, SUM and RESIZE_BILINEAR outside LiteRT's reference kernels
#
# litert-xnnpack (XNNPACK's qs8/qu8 reduce and ibilinear), litert-optimized (LiteRT's optimized
# reduce kernels: tflite/kernels/internal/optimized/reduce.h and integer_ops/mean.h). Every float below
# is a C ``float`` (np.float32), evaluated in the order the C source writes it.


def xnn_reduce_params(
    s_in: float, s_out: float, zp_in: int, zp_out: int, n: int, mean: bool
) -> tuple[np.float32, np.float32]:
    """XNNPACK's reduce rescale for qs8/qu8 MEAN and SUM: ``(scale, zero point)``, both float32.

    XNNPACK ``src/operators/reduce-nd.c`` with ``xnn_init_qs8_reduce_scalar_params``:
    ``scale = f32(s_in / s_out)`` (times ``f32(1 / n)`` for MEAN) and the converted output zero point
    ``zp' = f32(zp_out) - f32(f32(n * zp_in) * scale)``. ``n`` >= 1 for MEAN.
    """
    f = np.float32
    sc = f(f(s_in) / f(s_out))
    if mean:
        sc = f(sc * f(f(1.0) / f(n)))
    zpf = f(f(zp_out) - f(f(n * zp_in) * sc))
    return sc, zpf


def xnn_float_reduce(
    s: ArrayLike, scale: np.float32, zero_point: np.float32, qmin: int, qmax: int
) -> NDArray[np.int64]:
    """XNNPACK's qs8/qu8 MEAN/SUM output: ``sat(nearbyint(f32(f32(S) * scale) + zero_point))``.

    ``S`` is the int32 sum of the raw q values (no zero point subtracted; :func:`xnn_reduce_params`
    folds it into ``zero_point``); the product and the sum are rounded to float32 separately (no FMA),
    then rounded half to even (``nearbyintf``) and saturated to ``[qmin, qmax]``. Output: int64 array.
    """
    f = np.float32
    v = (np.asarray(s).astype(f) * f(scale)).astype(f)
    v = (v + f(zero_point)).astype(f)
    return np.clip(np.rint(v.astype(np.float64)), qmin, qmax).astype(np.int64)


def opt_sum_params(s_in: float, s_out: float, zp_in: int, n: int) -> tuple[np.float32, np.float32]:
    """LiteRT's optimized quantized SUM (``optimized_ops::QuantizedMeanOrSum``): ``(scale, bias)``, float32.

    ``scale = f32(s_in / s_out)``, ``bias = f32(f32(-zp_in * scale) * f32(n))``.
    """
    f = np.float32
    sc = f(f(s_in) / f(s_out))
    return sc, f(f(f(-zp_in) * sc) * f(n))


def float_round_away_sum(
    s: ArrayLike, scale: np.float32, bias: np.float32, zp_out: int, qmin: int, qmax: int
) -> NDArray[np.int64]:
    """LiteRT's optimized quantized SUM output: ``sat(int(roundf(f32(f32(S) * scale) + bias)) + zp_out)``.

    ``S``: the int32 sum of the raw q values; ``roundf`` (TfLiteRound) rounds half away from zero.
    Output: int64 array.
    """
    f = np.float32
    v = (np.asarray(s).astype(f) * f(scale)).astype(f)
    v = (v + f(bias)).astype(f)
    r = np.clip(round_half_away_from_zero(v).astype(np.float64), -(2.0**40), 2.0**40).astype(np.int64)
    return np.clip(r + zp_out, qmin, qmax)


def legacy_mean_params(s_in: float, s_out: float, zp_in: int, zp_out: int, n: int) -> tuple[np.float32, int]:
    """LiteRT's optimized 4-D MEAN over axes {1, 2} (``optimized_integer_ops::Mean``, ``optimized_ops::Mean``).

    Returns ``(real_scale, bias)``: ``temp = f32(f32(zp_in * s_in) / s_out)``, moved 0.5 away from zero
    in float32 and truncated: ``bias = zp_out - int(temp)``; ``real_scale = f32(s_in / f32(f32(n) * s_out))``,
    which the kernel turns into ``(M, shift)`` with QuantizeMultiplier. The output is
    ``sat(R(S, M, shift) + bias)`` with ``S`` the int32 sum of the raw q values and ``R`` NEON's MBQM
    (:func:`neon_mbqm`) on SIMD blocks of channels, the reference MBQM on the scalar tail.
    """
    f = np.float32
    temp = f(f(f(zp_in) * f(s_in)) / f(s_out))
    temp = f(temp + f(0.5)) if temp > 0 else f(temp - f(0.5))
    bias = int(zp_out) - int(np.trunc(np.float64(temp)))
    return f(f(s_in) / f(f(n) * f(s_out))), bias


def xnn_q11_round(acc: ArrayLike) -> NDArray[np.int64]:
    """XNNPACK's s8/u8 bilinear output rounding: ``(acc + 2^21) >> 22`` of the Q22 sum (ties up)."""
    return (np.asarray(acc, dtype=np.int64) + (1 << 21)) >> 22


# Arithmetic profiles: the conv family's and FULLY_CONNECTED's requantization in LiteRT's optimized
# kernels (litert-optimized) and in the XNNPACK delegate (litert-xnnpack)


def neon_mbqm(x: ArrayLike, multiplier: ArrayLike, shift: ArrayLike) -> NDArray[np.int32]:
    """MultiplyByQuantizedMultiplier as LiteRT's NEON code computes it (the ``litert-optimized`` profile).

    Reproduces ``vrshlq_s32(vqrdmulhq_s32(vshlq_s32(x, max(shift, 0)), M), -max(-shift, 0))``
    (``MultiplyByQuantizedMultiplier4Rows`` and friends in LiteRT's ``kernels/internal/common.h``,
    non-single-rounding branch), which the x86 wheel runs through NEON_2_SSE, and the gemm output stage
    of the optimized CONV_2D / FULLY_CONNECTED / TRANSPOSE_CONV kernels. Two roundings, **both ties toward
    +infinity**: ``vqrdmulh`` is SRDHM (``x*M / 2^31``, saturating ``INT32_MIN * INT32_MIN``) and
    ``vrshl`` by a negative count is ``(y + 2^(r-1)) >> r`` (where :func:`mbqm_double_rounding` rounds
    ties away from zero). The left shift wraps in int32 like the reference one.

    ``x``: int32 values; ``multiplier``: int32 values; ``shift``: ints in ``[-31, 30]``, scalars or arrays
    broadcastable against ``x``. Output: int32 array. One floor division:
    ``floor((p + 2^30 + 2^(30+r)) / 2^(31+r))`` with ``p = wrap32(x << l) * M`` equals the two steps
    (nested floor divisions by powers of two), and ``|p| + 2^61 < 2^63``.
    """
    x64 = checked_int64(x, "x", INT32_MIN, INT32_MAX)
    m64 = checked_int64(multiplier, "multiplier", INT32_MIN, INT32_MAX)
    s = checked_int_param(shift, "shift", -31, 30)
    left = np.maximum(s, 0)
    right = np.maximum(-s, 0)
    xs = left_shift_wrap32(x64, left)
    p = np.multiply(xs, m64, dtype=np.int64)
    res = (p + (np.int64(1) << 30) + np.where(right > 0, np.int64(1) << (30 + right), 0)) >> (31 + right)
    if np.any(m64 == INT32_MIN):
        saturated = (xs == INT32_MIN) & (m64 == INT32_MIN)
        if np.any(saturated):
            sat = (np.int64(INT32_MAX) + np.where(right > 0, np.int64(1) << np.maximum(right - 1, 0), 0)) >> right
            res = np.where(saturated, sat, res)
    return int32_result(res)


def neon_mbqm_steps(x: int, multiplier: int, shift: int) -> tuple[int, list[RequantStep]]:
    """:func:`neon_mbqm` of one int32 ``x``, literally, returning its steps.

    ``"left shift"`` (only when ``shift > 0``), ``"vqrdmulh"`` (SRDHM, ties up) and ``"vrshl"`` (rounding
    shift right by ``max(-shift, 0)``, ties up). Python ints; the last step's value is the result.
    """
    if not -31 <= shift <= 30:
        raise ValueError(f"shift: values must lie in [-31, 30], found {shift}")
    left, right = max(shift, 0), max(-shift, 0)
    steps: list[RequantStep] = []
    shifted = x
    if left:
        shifted = wrap_int(x * (1 << left), 32)
        steps.append(("left shift", shifted, f"{x} << {left} (int32, wraps)"))
    high = saturating_rounding_doubling_high_mul_py(shifted, multiplier)
    steps.append(("vqrdmulh", high, f"vqrdmulh({shifted}, {multiplier}): x*M / 2^31, ties up"))
    res = (high + (1 << (right - 1))) >> right if right else high
    steps.append(("vrshl", res, f"rounding shift right of {high} by {right}: ties up (NEON vrshl)"))
    return res, steps


def xnnpack_requant_scale(s_in: ArrayLike, s_w: ArrayLike, s_out: ArrayLike) -> NDArray[np.float32]:
    """XNNPACK's per-channel requantization scale ``f32(f32(s_in * s_w[c]) / s_out)``.

    ``requantization_scale[c] = input_scale * kernel_scale[c] / output_scale`` in C ``float``, left to right
    (XNNPACK ``src/operators/convolution-nhwc.c``, ``fully-connected-nc.c``, ``deconvolution-nhwc.c``).
    Output: float32 array of the broadcast shape.
    """
    prod = np.multiply(np.float32(s_in), np.asarray(s_w, np.float32), dtype=np.float32)
    return np.divide(prod, np.float32(s_out), dtype=np.float32)


def xnnpack_output_bound(value: float, s_out: float, zp_out: int, qmin: int, qmax: int) -> int:
    """A fused-activation bound as XNNPACK quantizes it: ``lrintf(min(max(f32(value / s_out) + zp, qmin), qmax))``.

    ``xnn_qs8_quantize`` / ``xnn_qu8_quantize`` (XNNPACK ``src/xnnpack/requantization.h``), called by the
    subgraph on the delegate's float bounds (``ConvertActivationToOutputRange``: RELU [0, inf), RELU6 [0, 6],
    RELU_N1_TO_1 [-1, 1], none (-inf, inf)). ``lrintf`` rounds half to even, where LiteRT's
    ``CalculateActivationRangeQuantized`` rounds ties away from zero. ``value`` may be +-inf.
    """
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        v = np.float32(np.float32(value) / np.float32(s_out))
        v = np.float32(v + np.float32(zp_out))
    v = min(max(v, np.float32(qmin)), np.float32(qmax))
    return int(np.rint(v))


def _cvtps_epi32(v: NDArray[np.float32]) -> NDArray[np.int64]:
    """x86 ``cvtps2dq`` (MXCSR default): round half to even; NaN and values outside int32 give INT32_MIN."""
    r = np.rint(v.astype(np.float64))
    bad = ~((r >= INT32_MIN) & (r <= INT32_MAX))
    if np.any(bad):
        r = np.where(bad, float(INT32_MIN), r)
    return r.astype(np.int64)


def fp32_rne_requant(
    acc: ArrayLike,
    scale: ArrayLike,
    zp_out: int,
    act_min: int,
    act_max: int,
    qmin: int,
    qmax: int,
) -> NDArray[np.int64]:
    """XNNPACK's fp32 requantization of GEMM / convolution accumulators (the ``litert-xnnpack`` profile).

    Reproduces the ``minmax_fp32`` output stage of XNNPACK's qs8-qc8w / qu8 gemm, igemm and dwconv kernels
    (e.g. ``qs8-qc8w-gemm-1x16c8-minmax-fp32-avx512vnni-prfm.c``; the scalar, SSE and AVX2 variants give the
    same integers)::

        v = min(f32(f32(acc) * scale[c]), f32(act_max - zp_out))    (float32)
        y = max(sat(wrap32(cvtps(v) + zp_out)), act_min)             (cvtps: ties to even; |v| >= 2^31 -> INT32_MIN)

    ``acc``: the exact int32 accumulators (bias included, input and filter zero points applied; XNNPACK
    folds them into its packed bias, which gives the same integers); ``scale``: float32 per channel
    (:func:`xnnpack_requant_scale`), broadcast against ``acc``'s last axis; ``act_min`` / ``act_max``:
    :func:`xnnpack_output_bound` values; ``qmin`` / ``qmax``: the output type's range. Output: int64 array.
    """
    a = np.asarray(acc).astype(np.float32)  # cvtdq2ps: round half to even
    v = np.multiply(a, np.asarray(scale, np.float32), dtype=np.float32)
    np.minimum(v, np.float32(act_max - zp_out), out=v)
    r = wrap_int32_i64(_cvtps_epi32(v) + zp_out)
    return np.maximum(np.clip(r, qmin, qmax), act_min)


def fp32_rne_steps(
    acc: int, scale: float, zp_out: int, act_min: int, act_max: int, qmin: int, qmax: int
) -> tuple[int, list[RequantStep]]:
    """:func:`fp32_rne_requant` of one accumulator, step by step (float32 values; the last step is the result)."""
    a = np.float32(acc)
    v = np.float32(a * np.float32(scale))
    steps: list[RequantStep] = [
        ("f32(acc)", a, f"float32({acc}) (ties to even)"),  # type: ignore[list-item]
        ("scaled", v, f"f32({a} * {np.float32(scale)!r}) (float32 product)"),  # type: ignore[list-item]
    ]
    capped = np.float32(min(v, np.float32(act_max - zp_out)))
    steps.append(("capped", capped, f"min(scaled, act_max - zp_out = {act_max - zp_out})"))  # type: ignore[arg-type]
    r = int(_cvtps_epi32(np.array([capped], np.float32))[0])
    steps.append(("rounded", r, "cvtps2dq: round half to even"))
    plus = wrap_int(r + zp_out, 32)
    steps.append(("+ zero point", plus, f"+ zp_out {zp_out} (int32)"))
    value = max(min(max(plus, qmin), qmax), act_min)
    steps.append(("clamp", value, f"saturate to [{qmin}, {qmax}], then max with act_min {act_min} -> output value"))
    return value, steps
