"""LiteRT reference kernels' rescaling: MultiplyByQuantizedMultiplier (double, single rounding, int64), the
float64 and float32 forms, the exact folded form of the conv fast path, and the step-by-step versions traces use.

See :mod:`refquant.requantize` for the table of every variant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..fixedpoint import (
    INT32_MAX,
    INT32_MIN,
    INT64_MAX,
    INT64_MIN,
    checked_int64,
    checked_int_param,
    int32_result,
    rdbpot_i64,
    round_half_away_from_zero,
    rounding_divide_by_pot_py,
    saturating_rounding_doubling_high_mul_py,
    srdhm32_i64,
    wrap_int,
    wrap_int32_i64,
)

__all__ = [
    "left_shift_wrap32",
    "ROUNDINGS",
    "Rounding",
    "RequantStep",
    "check_rounding",
    "multiply_by_quantized_multiplier",
    "mbqm_double_rounding",
    "mbqm_double_rounding_reference",
    "mbqm_single_rounding",
    "mbqm_single_rounding_any_shift",
    "multiply_by_quantized_multiplier_smaller_than_one_exp",
    "multiply_by_quantized_multiplier_greater_than_one",
    "mbqm64_reduced_multiplier",
    "multiply_by_quantized_multiplier_int64",
    "requantize_float64",
    "requantize_concatenation_uint8",
    "mbqm_per_tensor_inplace",
    "FoldedRequant",
    "prepare_folded_requant",
    "requant_tail",
    "requant_block",
    "requant_sums",
    "resize_bilinear_rounding_shift",
    "mbqm_steps",
    "mbqm64_steps",
]

#: The valid values of the ``rounding`` option: ``"double"`` (LiteRT's default build, which the
#: ai-edge-litert wheel ships) and ``"single"`` (a build with ``TFLITE_SINGLE_ROUNDING=1``).
ROUNDINGS: tuple[str, ...] = ("double", "single")

#: Type of the ``rounding`` option.
Rounding = Literal["double", "single"]

#: One step of a step-by-step requantization: ``(name, value, explanation)``.
RequantStep = tuple[str, int, str]


def check_rounding(rounding: object, error: type[Exception] = ValueError) -> Rounding:
    """Return ``rounding`` if it is one of :data:`ROUNDINGS`, else raise ``error`` (``ValueError`` by default).

    The one validation of the rounding option. Entry points that report user errors with their own
    exception class pass it (``check_rounding(rounding, InputError)``); the message names the valid values.
    """
    if rounding not in ROUNDINGS:
        raise error(f"rounding must be one of {list(ROUNDINGS)}, got {rounding!r}")
    return rounding  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------
# MultiplyByQuantizedMultiplier, int32 (common.cc / common.h)


def left_shift_wrap32(x: NDArray[np.int64], left: NDArray[np.int64]) -> NDArray[np.int64]:
    """C ``x * (1 << left)`` in int32 on x86: wraps modulo 2^32; the shift count is taken mod 32."""
    if not np.any(left):
        return x
    # 1 << (left & 31) <= 2^31 and |x| <= 2^31, so the int64 product is below 2^62.
    return wrap_int32_i64(x * (np.int64(1) << (left & 31)))


def multiply_by_quantized_multiplier(
    x: ArrayLike, multiplier: ArrayLike, shift: ArrayLike, rounding: str = "double"
) -> NDArray[np.int32]:
    """LiteRT ``MultiplyByQuantizedMultiplier(int32_t x, int32_t M, int shift)`` of the chosen build.

    Real meaning: ``x * M * 2^(shift - 31)``, i.e. ``x`` times the real multiplier that
    :func:`refquant.quantization.quantize_multiplier` encoded as ``(M, shift)``, rounded to an int32.
    ``rounding="double"`` is :func:`mbqm_double_rounding` (the default build, two roundings);
    ``rounding="single"`` is :func:`mbqm_single_rounding` (``TFLITE_SINGLE_ROUNDING=1``, one rounding).
    This is the one place where the rounding option selects the variant. Ranges as in those two.
    """
    if check_rounding(rounding) == "single":
        return mbqm_single_rounding(x, multiplier, shift)
    return mbqm_double_rounding(x, multiplier, shift)


def mbqm_double_rounding_reference(x: ArrayLike, multiplier: ArrayLike, shift: ArrayLike) -> NDArray[np.int32]:
    """Literal LiteRT ``MultiplyByQuantizedMultiplier(int32, int32, int)``, default (double rounding) build.

    ``RDBPOT(SRDHM(wrap32(x << max(shift, 0)), M), max(-shift, 0))`` written as the C++ does it (common.cc):
    the slow, readable version. :func:`mbqm_double_rounding` must agree with it on every input.
    Ranges as in :func:`mbqm_double_rounding`.
    """
    x64 = checked_int64(x, "x", INT32_MIN, INT32_MAX)
    m64 = checked_int64(multiplier, "multiplier", INT32_MIN, INT32_MAX)
    s = checked_int_param(shift, "shift", -31, 2**31 - 1)
    left = np.maximum(s, 0)
    right = np.maximum(-s, 0)
    return int32_result(rdbpot_i64(srdhm32_i64(left_shift_wrap32(x64, left), m64), right))


def mbqm_double_rounding(x: ArrayLike, multiplier: ArrayLike, shift: ArrayLike) -> NDArray[np.int32]:
    """LiteRT ``MultiplyByQuantizedMultiplier(int32_t x, int32_t M, int shift)``, double rounding (common.cc).

    The default build (the ai-edge-litert wheel's, docs/litert_semantics.md §1.3/§1.5):
    ``RDBPOT(SRDHM(wrap32(x << max(shift, 0)), M), max(-shift, 0))``: two roundings, the first
    (``SaturatingRoundingDoublingHighMul``) with ties toward +infinity, the second
    (``RoundingDivideByPOT``) with ties away from zero. The left shift **wraps** in int32 (x86 behaviour
    LiteRT relies on); a shift count of 32 or more is taken mod 32, as the x86 ``shl`` does. Negative
    ``M`` (from a negative real multiplier) is supported; ``x = M = INT32_MIN`` saturates SRDHM.

    ``x``: int32 values. ``multiplier``: int32 values. ``shift``: ints ``>= -31``. ``multiplier`` and
    ``shift`` may be scalars or arrays broadcastable against ``x`` (per-channel: shape ``(C,)`` against
    ``x`` of shape ``(..., C)``). Output: int32 array. Computed in one floor division (below); equal to
    :func:`mbqm_double_rounding_reference` everywhere.
    """
    x64 = checked_int64(x, "x", INT32_MIN, INT32_MAX)
    m64 = checked_int64(multiplier, "multiplier", INT32_MIN, INT32_MAX)
    s = checked_int_param(shift, "shift", -31, 2**31 - 1)
    left = np.maximum(s, 0)
    right = np.maximum(-s, 0)
    xs = left_shift_wrap32(x64, left)
    # docs/litert_semantics.md §7.1: SRDHM(xs, M) = floor((p + 2^30) / 2^31) and RDBPOT(y, r) =
    # floor((y + 2^(r-1) - [y < 0]) / 2^r) collapse into a single floor division by 2^(31+r):
    #   r == 0:  (p + 2^30) >> 31
    #   r >= 1:  (p + 2^30 + 2^(30+r) - [p < -2^30] * 2^31) >> (31 + r)      (y < 0  <=>  p < -2^30)
    # [p < 0] may replace [p < -2^30]: for -2^30 <= p < 0 the numerator lies in [0, 2^(31+r)) with or
    # without the 2^31 correction, so both give 0. [p < 0] * 2^31 is just the sign bit, (p >> 63) & 2^31,
    # which lets the whole computation run in place on one int64 buffer.
    # Overflow: |p| <= 2^62 and the added terms are <= 2^30 + 2^61 (r <= 31), so every intermediate
    # stays within (-2^63, 2^63); no fallback to the two-step form is needed. The one input where the
    # closed form is wrong is SRDHM's saturation INT32_MIN * INT32_MIN, patched below.
    res = np.multiply(xs, m64, dtype=np.int64)
    if right.ndim == 0:
        r = int(right)
        if r == 0:
            res += 1 << 30
            res >>= 31
        else:
            negative_fix = res >> 63
            negative_fix &= 1 << 31
            res += (1 << 30) + (1 << (30 + r))
            res -= negative_fix
            res >>= 31 + r
    else:
        rounding_term = (1 << 30) + np.where(right > 0, np.int64(1) << (30 + right), 0)
        negative_fix = (res >> 63) & np.where(right > 0, np.int64(1) << 31, 0)
        res = (res + rounding_term - negative_fix) >> (31 + right)
    if np.any(m64 == INT32_MIN):
        saturated = (xs == INT32_MIN) & (m64 == INT32_MIN)
        if np.any(saturated):
            res = np.where(saturated, rdbpot_i64(np.int64(INT32_MAX), right), res)
    return int32_result(res)


def mbqm_single_rounding(x: ArrayLike, multiplier: ArrayLike, shift: ArrayLike) -> NDArray[np.int32]:
    """LiteRT ``MultiplyByQuantizedMultiplier(int32_t x, int32_t M, int shift)``, ``TFLITE_SINGLE_ROUNDING=1``.

    ``int32((int64(x) * M + 2^(30 - shift)) >> (31 - shift))`` (common.cc, single-rounding branch): one
    rounding, ties toward +infinity, the result truncated to int32.

    ``x``, ``multiplier``: int32 values; ``shift``: ints in ``[-31, 30]`` (the range LiteRT asserts),
    scalars or arrays broadcastable against ``x``. Output: int32 array.
    """
    x64 = checked_int64(x, "x", INT32_MIN, INT32_MAX)
    m64 = checked_int64(multiplier, "multiplier", INT32_MIN, INT32_MAX)
    s = checked_int_param(shift, "shift", -31, 30)
    ts = 31 - s
    # |x*M| <= 2^62 and the rounding term is <= 2^61: the sum stays below 2^63.
    return int32_result(wrap_int32_i64((x64 * m64 + (np.int64(1) << (ts - 1))) >> ts))


def mbqm_single_rounding_any_shift(x: ArrayLike, multiplier: ArrayLike, shift: ArrayLike) -> NDArray[np.int64]:
    """The single-rounding MBQM formula for ANY shift: ``wrap32(floor((x*M + 2^(t-1)) / 2^t))``, ``t = 31 - shift``.

    LiteRT's single-rounding build only defines ``-31 <= shift <= 30``; DIV (``reference_ops::Div`` of a
    ``TFLITE_SINGLE_ROUNDING`` build) feeds it intermediate shifts outside that range, where this returns
    the exact mathematical value: ``t`` is capped at 63 (beyond which the result no longer changes) and
    ``t <= 0`` is an exact left shift, wrapped to int32. Inside the range it equals
    :func:`mbqm_single_rounding`. Source: ``reference_ops::Div`` (reference/div.h) over common.cc's MBQM.

    ``x``, ``multiplier``: int32 values (int64 arrays accepted, not range-checked: ``|x*M| < 2^62`` is
    the caller's contract); ``shift``: any ints, broadcastable against ``x``. Output: int64 array holding
    int32 values.
    """
    t = 31 - np.asarray(shift, dtype=np.int64)
    p = np.asarray(x, dtype=np.int64) * np.asarray(multiplier, dtype=np.int64)  # |p| < 2^62
    t_right = np.clip(t, 1, 63)
    right = (p + (np.int64(1) << (t_right - 1))) >> t_right  # p + 2^62 < 2^63
    if np.any(t <= 0):
        with np.errstate(over="ignore"):
            left = p << np.clip(-t, 0, 62)
        right = np.where(t >= 1, right, left)
    return wrap_int32_i64(right)


def multiply_by_quantized_multiplier_smaller_than_one_exp(
    x: ArrayLike, multiplier: ArrayLike, shift: ArrayLike, rounding: str = "double"
) -> NDArray[np.int32]:
    """LiteRT ``MultiplyByQuantizedMultiplierSmallerThanOneExp(x, M, left_shift)`` (common.h).

    Real meaning: ``x * M * 2^(shift - 31)`` for a multiplier below one (``shift <= 0``).
    double: ``RDBPOT(SRDHM(x, M), -shift)`` (ties up, then ties away from zero); single: identical to
    :func:`mbqm_single_rounding`.

    ``x``, ``multiplier``: int32 values; ``shift``: ints in ``[-31, 0]`` (``ValueError`` otherwise,
    since LiteRT's ``RoundingDivideByPOT`` asserts a non-negative exponent). Output: int32 array.
    """
    if check_rounding(rounding) == "single":
        return mbqm_single_rounding(x, multiplier, shift)
    s = checked_int_param(shift, "shift", -31, 0)
    return int32_result(
        rdbpot_i64(
            srdhm32_i64(
                checked_int64(x, "x", INT32_MIN, INT32_MAX),
                checked_int64(multiplier, "multiplier", INT32_MIN, INT32_MAX),
            ),
            -s,
        )
    )


def multiply_by_quantized_multiplier_greater_than_one(
    x: ArrayLike, multiplier: ArrayLike, shift: ArrayLike, rounding: str = "double"
) -> NDArray[np.int32]:
    """LiteRT ``MultiplyByQuantizedMultiplierGreaterThanOne(x, M, left_shift)`` (common.h).

    Real meaning: ``x * M * 2^(shift - 31)`` for a multiplier above one (``shift >= 0``).
    double: ``SRDHM(wrap32(x << shift), M)`` (the shift wraps, as in LiteRT; one rounding, ties up);
    single: identical to :func:`mbqm_single_rounding`.

    ``x``, ``multiplier``: int32 values; ``shift``: ints ``>= 0``. Output: int32 array.
    """
    if check_rounding(rounding) == "single":
        return mbqm_single_rounding(x, multiplier, shift)
    s = checked_int_param(shift, "shift", 0, 2**31 - 1)
    xs = left_shift_wrap32(checked_int64(x, "x", INT32_MIN, INT32_MAX), s)
    return int32_result(srdhm32_i64(xs, checked_int64(multiplier, "multiplier", INT32_MIN, INT32_MAX)))


# ---------------------------------------------------------------------------------------------
# MultiplyByQuantizedMultiplier, int64 accumulator (common.cc)


def mbqm64_reduced_multiplier(multiplier: ArrayLike) -> NDArray[np.int64]:
    """MBQM64's 15-bit multiplier: ``(M + 2^15) >> 16``, or ``0x7FFF`` when ``M >= 0x7FFF0000`` (common.cc).

    ``multiplier``: int32 values. Output: int64 array (``M + 2^15`` cannot overflow int64).
    """
    m = np.asarray(multiplier).astype(np.int64)
    return np.where(m < 0x7FFF0000, (m + (1 << 15)) >> 16, 0x7FFF)


def multiply_by_quantized_multiplier_int64(
    x: ArrayLike,
    multiplier: ArrayLike,
    shift: ArrayLike,
) -> NDArray[np.int32]:
    """LiteRT ``MultiplyByQuantizedMultiplier(int64_t x, int32_t M, int shift)`` (common.cc), "MBQM64".

    Used for int64 accumulators (int16x8 CONV/DEPTHWISE/TRANSPOSE_CONV with an int64 bias, int16
    BATCH_MATMUL, int16x16 FULLY_CONNECTED, REDUCE_PROD). The same code in both rounding builds. Real
    meaning: ``x * M * 2^(shift - 31)``, computed with the multiplier reduced to about 15 bits::

        Mr = M < 0x7FFF0000 ? (M + 2^15) >> 16 : 0x7FFF                   (mbqm64_reduced_multiplier)
        result = int32((x * Mr + 2^(14 - shift)) >> (15 - shift))      # one rounding, ties toward +inf

    LiteRT asserts (debug builds only) ``|x| < 2^47``, ``-31 <= shift < 8`` and ``M >= 0``; then
    ``x * Mr`` stays below 2^62. Outside that contract the int64 product wraps, as it does in the C++,
    and the final conversion keeps the low 32 bits.

    ``x``: int64 values; ``multiplier``: int32 values; ``shift``: ints in ``[-31, 14]`` (the range in
    which the C++ shifts are defined). Output: int32 array.
    """
    x64 = checked_int64(x, "x", INT64_MIN, INT64_MAX)
    m64 = checked_int64(multiplier, "multiplier", INT32_MIN, INT32_MAX)
    s = checked_int_param(shift, "shift", -31, 14)
    reduced = mbqm64_reduced_multiplier(m64)
    total_shift = 15 - s
    with np.errstate(over="ignore"):
        acc = x64 * reduced + (np.int64(1) << (total_shift - 1))
    return int32_result(wrap_int32_i64(acc >> total_shift))


# ---------------------------------------------------------------------------------------------
# float64 requantization (FULLY_CONNECTED)


def requantize_float64(acc: ArrayLike, effective_scale: ArrayLike) -> NDArray[np.int64]:
    """``static_cast<int32_t>(round(double(acc) * effective_scale))``: FULLY_CONNECTED's requantization.

    LiteRT's ``fully_connected.cc`` (the wheel's x86 kernels, int8/uint8/int16x8 paths) rescales the
    accumulator in double precision instead of with MBQM: one rounding of the float64 product, C
    ``round`` (ties away from zero). A result outside ``[-2^31, 2^31)``, or NaN, becomes INT32_MIN, which
    is what the x86 conversion (``cvttsd2si``) produces.

    ``acc``: integer accumulators (exact in float64 below 2^53); ``effective_scale``: float64 values
    broadcastable against ``acc`` (per output channel). Output: int64 array of values in the int32 range.
    """
    a = np.asarray(acc)
    with np.errstate(invalid="ignore", over="ignore"):
        v = round_half_away_from_zero(a.astype(np.float64) * effective_scale)
        ok = (v >= -(2.0**31)) & (v < 2.0**31)
    out = np.where(ok, v, 0.0).astype(np.int64)
    return np.where(ok, out, INT32_MIN)


# ---------------------------------------------------------------------------------------------
# float32 requantization of CONCATENATION's uint8 inputs (concatenation.h)


def requantize_concatenation_uint8(q: ArrayLike, r: np.float32, bias: np.float32, zp_out: int) -> NDArray[np.uint8]:
    """``reference_ops::ConcatenationWithScaling``'s per-element float32 requantization of a uint8 input.

    ``clamp(int32(roundf(f32(f32(q) * r) + bias)) + zp_out, 0, 255)`` with ``r = f32(s_in * f32(1/s_out))``
    and ``bias = f32(-zp_in * r)`` (computed by the caller at prepare time): a float32 product and add,
    then ``roundf`` (ties away from zero). An out-of-range or NaN conversion gives INT32_MIN (x86
    ``cvttss2si``) and ``+ zp_out`` wraps like a C int32. ``q``: uint8 values. Output: uint8 array.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        v = round_half_away_from_zero(np.asarray(q).astype(np.float32) * r + bias)  # float32 product, add, roundf
        ok = (v >= np.float32(INT32_MIN)) & (v < np.float32(2**31))  # NaN -> False
    i32 = np.where(ok, v, np.float32(0)).astype(np.int64)
    i32 = np.where(ok, i32, INT32_MIN)
    out = wrap_int32_i64(i32 + zp_out)  # int32 add, wrapping
    return np.clip(out, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# In-place per-tensor MBQM (the elementwise fast path)


def mbqm_per_tensor_inplace(p: NDArray[np.int64], multiplier: int, shift: int, rounding: str) -> NDArray[np.int64]:
    """``MultiplyByQuantizedMultiplier[SmallerThanOneExp](x, M, shift)`` (common.cc / common.h) in place.

    Needs ``0 <= M < 2^31`` and ``-31 <= shift <= 0`` (``ValueError`` otherwise); ``p`` is an int64 array
    holding int32 values ``x`` and is overwritten with the result (also returned). Same integers as
    :func:`multiply_by_quantized_multiplier` (and its SmallerThanOneExp form, which coincides for
    ``shift <= 0``) in the selected build, in four or five passes without temporaries but a sign mask.

    docs/litert_semantics.md §7.1: double rounding ``(x*M + 2^30 + 2^(30+r) - [x*M < 0]*2^31) >> (31 + r)`` with
    ``r = -shift`` (just ``(x*M + 2^30) >> 31`` for r = 0); single rounding ``(x*M + 2^(ts-1)) >> ts`` with
    ``ts = 31 - shift``. ``|x*M| < 2^62`` and the added terms are below 2^62, so nothing overflows; the
    result fits int32.
    """
    check_rounding(rounding)
    if not (0 <= multiplier < 2**31 and -31 <= shift <= 0):
        raise ValueError(
            f"mbqm_per_tensor_inplace needs 0 <= M < 2^31 and -31 <= shift <= 0, got ({multiplier}, {shift})"
        )
    p *= multiplier
    if rounding == "single":
        ts = 31 - shift
        p += 1 << (ts - 1)
        p >>= ts
        return p
    r = -shift
    if r == 0:
        p += 1 << 30
        p >>= 31
        return p
    fix = p >> 63  # -1 where x*M < 0 (which may replace x*M < -2^30, see mbqm_double_rounding)
    fix &= 1 << 31
    p += (1 << 30) + (1 << (30 + r))
    p -= fix
    p >>= 31 + r
    return p


# ---------------------------------------------------------------------------------------------
# Per-channel MBQM folded into an exact float64 accumulation (the conv family's fast path)
#
# **Closed form of the requantization** (docs/litert_semantics.md §1.3, §1.4 and §7). With ``acc`` the int accumulator
# including the bias, every variant LiteRT uses is ``floor(v + c)`` of a scaled value ``v``:
#
# * double rounding, ``r = max(-shift, 0)``, ``l = max(shift, 0)``, ``v = acc * M * 2^(l - 31 - r)``::
#
#       MBQM(acc) = floor(v + 1/2 + d)        if y >= 0       d = 2^(-1-r) (0 when r == 0)
#                   floor(v + 1/2 - d)        if y <  0       y = SRDHM(acc << l, M); for r >= 1, y < 0 <=> v < -d
#
#   Derivation: SRDHM(x, M) = floor((p + 2^30) / 2^31) with p = x*M; RDBPOT(y, r) = floor((y + 2^(r-1) -
#   [y < 0]) / 2^r); floor((floor(a/b) + c)/e) = floor((a + c*b)/(b*e)). The one input where this is wrong
#   is SRDHM's saturation M = x = INT32_MIN, excluded in prepare (M == INT32_MIN never takes this path).
# * single rounding (TFLITE_SINGLE_ROUNDING), ``ts = 31 - shift``: ``(acc*M + 2^(ts-1)) >> ts = floor(acc*M*2^-ts + 1/2)``.
# * MBQM64 (int64 accumulators), ``Mr`` the 16-bit multiplier, ``ts = 15 - shift``: ``floor(acc*Mr*2^-ts + 1/2)``.
#
# So ``out = clamp(floor(t) - zp_shift, act_min, act_max)`` with ``t = acc*scale[c] + const[c]`` where
# ``scale[c]`` is an integer times a power of two and ``const[c]`` holds the rounding terms, the output zero
# point and ``zp_shift`` (128 for int8, 32768 for int16, 0 for uint8), which makes every clamped value
# non-negative so that the float -> unsigned cast (truncation) *is* the floor; the shift is undone by an XOR
# of the sign bit (``u ^ 0x80 == u - 128`` modulo 256, reinterpreted as int8). For y < 0 the double-rounding
# form subtracts ``2 d = 2^-r`` where ``t < 1/2 + zp_out + zp_shift``; when ``act_min >= zp_out`` the two forms
# can only differ on values the clamp maps to ``act_min`` anyway (both are ``<= zp_out``), so the
# correction is skipped (every fused-ReLU layer).
#
# **Why float64 is exact here.** Every term — ``x * (w * scale[c])``, the folded constant and each partial
# sum in any order a BLAS kernel picks, FMA included — is an integer multiple of ``u = 2^-e`` (``e = 31 + r - l``,
# ``ts`` resp.). A float64 holds every multiple of ``u`` up to ``2^53 * u`` exactly, and every partial sum is
# bounded by ``sum_k |x_k w_k| * |M| + const``; with ``|x| <= x_max`` the static bound per channel is
# ``B[c] = x_max * sum_k |w_kc| + |b'_c|``. :func:`prepare_folded_requant` computes ``acc_limit[c]``, the
# largest ``|acc|`` for which every count stays within 2^53 (and for which the C int32 accumulator, the
# left shift and the int32 result cannot wrap); the *folded* mode (scale folded into float64 weights,
# constants into a bias row) is used when ``B[c] <= acc_limit[c]`` for every channel. Otherwise the
# *checked* mode computes the exact integer accumulator in float64 first (exact below 2^53) and applies
# the closed form only when the run's ``max |acc|`` is within the limit, falling back to the literal int64
# requantization for that block.
#
# The input zero point is folded into the bias: ``sum_k w_k (x_k - zp) + b = sum_k w_k x_k + (b - zp sum_k w_k)``
# with padded taps holding the raw value ``zp`` (their terms cancel exactly, as skipped taps do).
#
# **float32 for the sums where it is exact** (``FoldedRequant.sums_fit_f32``): the bias-free sums
# ``S = sum_k x_k w_k`` of raw integers have every partial sum (any order, FMA included) bounded by
# ``x_max * sum_k |w_k| <= 2^24``, below which float32 holds every integer; int8 MobileNets satisfy it in every
# layer. A float32 GEMM (or float32 depthwise taps) then computes S exactly at twice the float64 speed, and
# ``t = S*scale + const`` follows in float64, exact by the bound above since ``|S| <= B[c]``.

_TWO53 = float(2**53)
#: float32 holds every integer up to 2^24 exactly.
_F32_EXACT = 2**24


@dataclass(frozen=True)
class FoldedRequant:
    """Per-channel constants of the float64 requantization ``floor(acc*scale + const)`` (see the section comment).

    Computed once in prepare from the multipliers, shifts, bias, input/output zero points and the clamp.
    """

    #: "folded" (scale folded into float64 weights; the static bound proves exactness) or "checked"
    #: (exact integer accumulator first; closed form when the run's max |acc| <= ``checked_limit``).
    mode: str
    #: float64 (O,): M * 2^(l-31-r) (double), M * 2^-ts (single), Mr * 2^-ts (MBQM64). Exact.
    scale: np.ndarray
    #: float64 (O,): b'*scale + rounding terms + zp_out + zp_shift, with b' = bias - zp_in * sum_k w (+ filter
    #: offset): the bias row of the folded mode.
    const: np.ndarray
    #: float64 (O,): rounding terms + zp_out + zp_shift, added to acc*scale by the checked mode.
    rounding_const: np.ndarray
    #: int64 (O,): b', the bias with the input zero point folded in (the bias row of the checked mode).
    folded_bias: np.ndarray
    #: float64 (O,) or None: 2^-r subtracted where ``t < neg_threshold`` (double rounding, some r >= 1,
    #: and act_min < zp_out); None when the correction cannot change a clamped output.
    neg_fix: np.ndarray | None
    #: t below this <=> SRDHM's result y < 0 (1/2 + zp_out + zp_shift).
    neg_threshold: float
    #: Largest |acc| (over all channels) for which the checked mode's closed form is exact.
    checked_limit: float
    #: Clamp bounds in shifted units: act_min + zp_shift, act_max + zp_shift.
    lo: float
    hi: float
    #: 128 (int8), 32768 (int16) or 0 (uint8): added in ``const``, undone by XOR after the unsigned cast.
    zp_shift: int
    #: Output dtype name.
    out_dtype: str
    #: Whether the bias-free sums ``sum_k x_k (w_k + filter_offset)`` are exact in float32 (every partial sum
    #: is at most ``x_max * sum_k |w_k + filter_offset| <= 2^24``): then a float32 GEMM (twice as fast)
    #: computes them and ``t = S*scale + const`` follows in float64.
    sums_fit_f32: bool = False


def prepare_folded_requant(
    *,
    multiplier: np.ndarray,
    shift: np.ndarray,
    kind: str,
    weights: np.ndarray | None,
    bias: np.ndarray | None,
    input_offset: int,
    filter_offset: int,
    x_max_abs: int,
    output_offset: int,
    act_min: int,
    act_max: int,
    out_dtype: str,
) -> FoldedRequant | None:
    """Constants of the folded per-channel requantization, or None when it does not apply.

    Reproduces, for a whole conv/depthwise layer (``reference_integer_ops::ConvPerChannel``,
    ``DepthwiseConvPerChannel`` and their uint8 / int16 forms), ``clamp(MBQM(acc, M[c], shift[c]) + zp_out)``
    with the int32 MBQM of either build (common.cc) or MBQM64, as an exact float64 ``floor`` (the proof
    is in the section comment above). When it returns None the caller runs the literal requantization.

    ``kind``: "double", "single" (int32 accumulator, MBQM rounding variant) or "mbqm64". ``weights``:
    the constant filter as an integer array (O, K) (raw values; ``filter_offset`` is added), or None when
    the filter is not constant. ``bias``: constant bias (O,) or None (no bias). ``x_max_abs``: the largest
    ``|x|`` of the input type (padded taps hold ``-input_offset``, inside the type range).
    """
    if weights is None:
        return None
    o = weights.shape[0]
    m = np.asarray(multiplier, np.int64).reshape(-1)
    sh = np.asarray(shift, np.int64).reshape(-1)
    if m.size != o or sh.size != o:
        return None
    # Per-channel sums of w + filter_offset and of |w + filter_offset|, in row chunks of int32 (small
    # temporaries: prepare must not leave a big heap behind, see the peak-RSS target).
    wsum = np.empty(o, np.int64)
    wabs = np.empty(o, np.int64)
    rows = max(1, (1 << 16) // max(1, weights.shape[1]))
    for r0 in range(0, o, rows):
        wc = np.add(weights[r0 : r0 + rows], filter_offset, dtype=np.int32)
        wsum[r0 : r0 + rows] = wc.sum(axis=1, dtype=np.int64)
        np.abs(wc, out=wc)
        wabs[r0 : r0 + rows] = wc.sum(axis=1, dtype=np.int64)
    b = np.zeros(o, np.int64) if bias is None else np.asarray(bias).reshape(-1).astype(np.int64)
    if b.size != o:
        return None
    folded_bias = b + input_offset * wsum
    sums = float(x_max_abs) * wabs.astype(np.float64)
    static = sums + np.abs(folded_bias).astype(np.float64)

    zp_shift = {"int8": 128, "int16": 32768, "uint8": 0}.get(out_dtype)
    if zp_shift is None:
        return None
    zp_total = output_offset + zp_shift
    if kind == "double":
        if np.any(m == INT32_MIN) or np.any(sh > 30):
            return None
        left = np.maximum(sh, 0)
        right = np.maximum(-sh, 0)
        e = 31 + right - left  # unit 2^-e; e >= 1 since left <= 30
        mq = m
        half_d = np.where(right > 0, np.ldexp(1.0, (-1 - right).astype(np.int32)), 0.0)
        rounding = 0.5 + half_d
        neg_fix = np.where(right > 0, np.ldexp(1.0, (-right).astype(np.int32)), 0.0)
        need_fix = bool(np.any(right > 0)) and act_min < output_offset
    elif kind in ("single", "mbqm64"):
        if kind == "single":
            if np.any(sh < -31) or np.any(sh > 30):
                return None
            mq = m
            e = 31 - sh
        else:
            mq = mbqm64_reduced_multiplier(m)
            e = 15 - sh
            if np.any(e < 1):
                return None
        left = np.zeros(o, np.int64)
        rounding = np.full(o, 0.5)
        neg_fix = np.zeros(o)
        need_fix = False
    else:
        raise ValueError(f"unknown requantization kind {kind!r}")
    if np.any(e > 62):
        return None
    unit = np.ldexp(1.0, e.astype(np.int32))  # 2^e: counts per unit value
    scale = np.ldexp(mq.astype(np.float64), (-e).astype(np.int32))  # exact: |mq| < 2^31
    # Counts (multiples of 2^-e) of everything added to acc*scale: the rounding terms, the output zero
    # point and shift, and the negative correction's margin.
    const_counts = rounding * unit + abs(zp_total) * unit + neg_fix * unit
    mabs = np.abs(mq).astype(np.float64)  # counts of acc * scale per unit of |acc|
    with np.errstate(divide="ignore", invalid="ignore"):
        limit = np.where(mabs > 0, np.floor((_TWO53 - const_counts) / np.where(mabs > 0, mabs, 1.0)), np.inf)
        # The C accumulator is int32 for "double"/"single": no wrap while |acc| < 2^31, and no wrap of the
        # left shift while |acc| * 2^l < 2^31; the scaled result must stay below 2^30 so that neither the
        # int32 result nor "+ zp_out" wraps.
        if kind != "mbqm64":
            limit = np.minimum(limit, np.floor((2.0**31 - 1) / np.ldexp(1.0, left.astype(np.int32))))
        result_cap = np.where(mabs > 0, np.floor(2.0**30 * unit / np.where(mabs > 0, mabs, 1.0)), np.inf)
    limit = np.minimum(limit, result_cap)
    if np.any(const_counts >= _TWO53) or np.any(limit < 1):
        return None
    const = folded_bias.astype(np.float64) * scale + rounding + zp_total
    mode = "folded" if np.all(static <= limit) else "checked"
    if mode == "checked" and not np.all(static < _TWO53 / 2):
        return None  # the unscaled float64 sum itself would not be provably exact
    return FoldedRequant(
        mode=mode,
        scale=scale,
        const=const,
        rounding_const=rounding + zp_total,
        folded_bias=folded_bias,
        neg_fix=neg_fix if need_fix else None,
        neg_threshold=0.5 + zp_total,
        checked_limit=float(limit.min()),
        lo=float(act_min + zp_shift),
        hi=float(act_max + zp_shift),
        zp_shift=zp_shift,
        out_dtype=out_dtype,
        sums_fit_f32=bool(np.all(sums <= _F32_EXACT)),
    )


def requant_tail(t: np.ndarray, out: np.ndarray, fr: FoldedRequant, cs: slice = slice(None)) -> None:
    """``out[...] = clamp(floor(t) - zp_shift, act_min, act_max)`` for a block ``t`` of shape (..., channels
    ``cs``) holding ``acc*scale + const`` exactly (float64; used as scratch). Three passes: (correction),
    clip, cast to the unsigned type (truncation == floor on non-negative values), XOR of the sign bit.

    With ``fr`` from :func:`prepare_folded_requant` the result equals the literal
    ``clamp(MBQM(acc) + zp_out, act_min, act_max)`` (common.cc's MBQM of the chosen variant), written to
    ``out`` (int8, uint8 or int16).
    """
    if fr.neg_fix is not None:
        corr = np.less(t, fr.neg_threshold)
        corr = np.multiply(corr, fr.neg_fix[cs])
        np.subtract(t, corr, out=t)
    np.clip(t, fr.lo, fr.hi, out=t)
    if fr.zp_shift == 0:
        np.copyto(out, t, casting="unsafe")
        return
    u = out.view(np.uint8 if fr.zp_shift == 128 else np.uint16)
    np.copyto(u, t, casting="unsafe")
    np.bitwise_xor(u, u.dtype.type(fr.zp_shift), out=u)


def requant_block(
    t: np.ndarray,
    out: np.ndarray,
    fr: FoldedRequant,
    mode: str,
    literal: Callable[[NDArray[np.int64], slice], np.ndarray],
    cs: slice = slice(None),
) -> None:
    """Requantize one block ``t`` (float64, shape (..., channels ``cs``), used as scratch) into ``out``.

    ``mode`` "folded": ``t`` already holds ``acc*scale + const`` (exact by prepare's static bound) and goes
    straight to :func:`requant_tail`. ``mode`` "checked": ``t`` holds the exact integer accumulators
    (bias folded in, ``fr.folded_bias``); when the block's ``max |acc|`` is within ``fr.checked_limit`` the
    closed form ``acc*scale + rounding_const`` is exact and :func:`requant_tail` finishes it, else
    ``out[...] = literal(acc, cs)`` with ``acc`` the int64 accumulators: the caller's literal
    requantization (which applies its C accumulator's int32 wrap, if any). Either way ``out`` holds
    ``clamp(MBQM(acc) + zp_out, act_min, act_max)`` of the variant ``fr`` was prepared for.
    """
    if mode == "checked":
        if t.size and max(-float(t.min()), float(t.max())) > fr.checked_limit:
            out[...] = literal(t.astype(np.int64), cs)
            return
        np.multiply(t, fr.scale[cs], out=t)
        np.add(t, fr.rounding_const[cs], out=t)
    requant_tail(t, out, fr, cs)


def requant_sums(
    s: np.ndarray,
    out: np.ndarray,
    fr: FoldedRequant,
    mode: str,
    literal: Callable[[NDArray[np.int64], slice], np.ndarray],
    cs: slice = slice(None),
) -> None:
    """Requantize a block of exact bias-free sums ``s`` (``sum_k x_k (w_k + filter_offset)``, float32 or
    float64, shape (..., channels ``cs``)) into ``out``.

    "folded": ``t = s*scale + const`` in float64, exact because ``|s|`` is within the static bound
    (``fr.sums_fit_f32``), then :func:`requant_tail`; "checked": ``t = s + folded_bias`` and
    :func:`requant_block` (``literal`` as there).
    """
    t = np.empty(s.shape)
    if mode == "folded":
        np.multiply(s, fr.scale[cs], out=t)
        np.add(t, fr.const[cs], out=t)
        requant_tail(t, out, fr, cs)
    else:
        np.add(s, fr.folded_bias[cs], out=t, dtype=np.float64)
        requant_block(t, out, fr, "checked", literal, cs)


# ---------------------------------------------------------------------------------------------
# Rounding right shift of RESIZE_BILINEAR's integer kernel (resize_bilinear.h)


def resize_bilinear_rounding_shift(v: ArrayLike, exponent: int, rounding: str = "double") -> NDArray[np.int64]:
    """The rounding of ``reference_ops::ResizeBilinearInteger``'s fixed-point sum by ``2^exponent``.

    double (default build): ``(v + (v > 0 ? 2^(e-1) : -2^(e-1))) / 2^e`` with C division (truncation):
    nearest, ties away from zero. single (``TFLITE_SINGLE_ROUNDING``): ``(v + 2^(e-1)) >> e``: nearest,
    ties toward +infinity. ``v``: integers with ``|v| < 2^62``; ``exponent``: 1..62 (RESIZE uses 20).
    Output: int64 array.
    """
    a = np.asarray(v, dtype=np.int64)
    half = np.int64(1) << (exponent - 1)
    if check_rounding(rounding) == "single":
        return (a + half) >> exponent
    r = a + np.where(a > 0, half, -half)
    return np.where(r >= 0, r >> exponent, -((-r) >> exponent))  # C '/' truncates toward zero


# ---------------------------------------------------------------------------------------------
# Step-by-step versions on Python ints (for the per-element traces)


def mbqm_steps(x: int, multiplier: int, shift: int, rounding: str = "double") -> tuple[int, list[RequantStep]]:
    """:func:`multiply_by_quantized_multiplier` of one int32 ``x``, literally, returning its steps.

    double: ``"left shift"`` (only when ``shift > 0``: ``wrap32(x * 2^(shift & 31))``), ``"SRDHM"``
    (``SaturatingRoundingDoublingHighMul(x, M)``, ties up) and ``"RDBPOT"`` (``RoundingDivideByPOT`` by
    ``max(-shift, 0)``, ties away from zero); single: ``"scaled"`` (``(x*M + 2^(ts-1)) >> ts`` wrapped
    to int32, ``ts = 31 - shift``). Computed with Python ints (no int64 concerns); the last step's
    value is the result. Same ranges and results as the vectorized function (tested).
    """
    if check_rounding(rounding) == "single":
        if not -31 <= shift <= 30:
            raise ValueError(f"shift: values must lie in [-31, 30], found {shift}")
        ts = 31 - shift
        res = wrap_int((x * multiplier + (1 << (ts - 1))) >> ts, 32)
        return res, [("scaled", res, f"single rounding: ({x} * {multiplier} + 2^{ts - 1}) >> {ts} = {res}")]
    left, right = max(shift, 0), max(-shift, 0)
    steps: list[RequantStep] = []
    shifted = x
    if left:
        shifted = wrap_int(x * (1 << (left & 31)), 32)
        steps.append(("left shift", shifted, f"{x} << {left} (int32, wraps)"))
    high = saturating_rounding_doubling_high_mul_py(shifted, multiplier)
    steps.append(("SRDHM", high, f"SaturatingRoundingDoublingHighMul({shifted}, {multiplier}): x*M / 2^31, ties up"))
    res = rounding_divide_by_pot_py(high, right)
    steps.append(("RDBPOT", res, f"RoundingDivideByPOT({high}, {right}): ties away from zero"))
    return res, steps


def mbqm64_steps(x: int, multiplier: int, shift: int) -> tuple[int, list[RequantStep]]:
    """:func:`multiply_by_quantized_multiplier_int64` of one int64 ``x``, literally, returning its steps.

    ``"reduced multiplier"`` (:func:`mbqm64_reduced_multiplier`) and ``"scaled"``
    (``int32((x * Mr + 2^(ts-1)) >> ts)``, ``ts = 15 - shift``, the product and sum in wrapping int64).
    Python ints; the last step's value is the result.
    """
    if not -31 <= shift <= 14:
        raise ValueError(f"shift: values must lie in [-31, 14], found {shift}")
    reduced = int(mbqm64_reduced_multiplier(multiplier))
    ts = 15 - shift
    acc = wrap_int(x * reduced + (1 << (ts - 1)), 64)
    res = wrap_int(acc >> ts, 32)
    return res, [
        ("reduced multiplier", reduced, f"MBQM64: 16-bit multiplier ({multiplier} + 2^15) >> 16"),
        ("scaled", res, f"MBQM64: ({x} * {reduced} + 2^{ts - 1}) >> {ts}, ties toward +inf, as int32 = {res}"),
    ]
