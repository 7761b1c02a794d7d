"""Integer fixed-point primitives of gemmlowp and LiteRT, vectorized over NumPy integer arrays.

Every function here reproduces one C++ primitive bit for bit, as the LiteRT reference kernels
(ai-edge-litert 2.3.0, ``BUILTIN_REF``, x86-64) execute it. The names are gemmlowp's and LiteRT's,
in snake_case. See docs/litert_semantics.md §1 for the definitions. The requantization routines
built from these (``MultiplyByQuantizedMultiplier`` and its variants) live in :mod:`refquant.requantize`.

Conventions

* A "Qm.n" value is an integer ``v`` standing for the real number ``v / 2^n``; for int32, ``m + n = 31``.
* Inputs may be Python ints, NumPy scalars, 0-d or n-d integer arrays. Every function returns a NumPy
  array (0-d for scalar inputs) of the documented dtype. Values must lie in the documented integer range
  (for example int32 values held in an int64 array are accepted); anything outside raises ``ValueError``
  rather than being silently wrapped. Exceptions: the ``*_py`` functions and :func:`wrap_int` take and
  return Python ints (for the per-element traces).
* One set of wrap helpers emulates C integer overflow explicitly: :func:`wrap_int32` / :func:`wrap_int16`
  (result in the narrow dtype), :func:`wrap_int32_i64` / :func:`wrap_int16_i64` (wrapped values kept in
  int64, for further int64 steps) and :func:`wrap_int` (Python ints, any width).
* Computation is done in int64. Each function says why int64 cannot overflow (the bound is in a comment).
  The building blocks :mod:`refquant.requantize` composes are public too: the argument checks
  (:func:`checked_int64`, :func:`checked_int_param`), the unchecked int64 forms of SRDHM and
  RoundingDivideByPOT (:func:`srdhm32_i64`, :func:`rdbpot_i64`) and :func:`int32_result`.
* C integer semantics: ``/`` truncates toward zero, ``>>`` on signed values floors. "wrap" means the
  two's-complement wrap that x86 performs on signed overflow (undefined behaviour in C, relied on by
  LiteRT in a few places, each named in the docstring).
* No function here rounds ties to even; every rounding rule is named in its docstring.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "INT8_MIN",
    "INT8_MAX",
    "UINT8_MAX",
    "INT16_MIN",
    "INT16_MAX",
    "INT32_MIN",
    "INT32_MAX",
    "INT64_MIN",
    "INT64_MAX",
    "EXP_BARREL_SHIFTER_MULTIPLIERS",
    "wrap_int32",
    "wrap_int16",
    "wrap_int32_i64",
    "wrap_int16_i64",
    "wrap_int",
    "checked_int64",
    "checked_int_param",
    "int32_result",
    "srdhm32_i64",
    "rdbpot_i64",
    "saturating_rounding_doubling_high_mul",
    "saturating_rounding_doubling_high_mul_int16",
    "saturating_doubling_high_mul_int16",
    "rounding_divide_by_pot",
    "rounding_divide_by_pot_x86",
    "saturating_rounding_doubling_high_mul_py",
    "rounding_divide_by_pot_py",
    "inv_sqrt_quantized_multiplier_exp",
    "rounding_half_sum",
    "saturating_rounding_multiply_by_pot",
    "round_half_away_from_zero",
    "count_leading_zeros32",
    "exp_on_negative_values",
    "one_over_one_plus_x_for_x_in_0_1",
]

INT8_MIN: int = -(2**7)
INT8_MAX: int = 2**7 - 1
UINT8_MAX: int = 2**8 - 1
INT16_MIN: int = -(2**15)
INT16_MAX: int = 2**15 - 1
INT32_MIN: int = -(2**31)
INT32_MAX: int = 2**31 - 1
INT64_MIN: int = -(2**63)
INT64_MAX: int = 2**63 - 1

# gemmlowp exp_on_negative_values barrel shifter: for k = -2..4, the Q0.31 value of exp(-2^k),
# i.e. round(exp(-2^k) * 2^31). These are gemmlowp's literal constants; tests recompute them.
EXP_BARREL_SHIFTER_MULTIPLIERS: dict[int, int] = {
    -2: 1672461947,
    -1: 1302514674,
    0: 790015084,
    1: 290630308,
    2: 39332535,
    3: 720401,
    4: 242,
}
# Q0.31 exp(-1/8), Q0.31 1/3 (exp_on_interval_between_negative_one_quarter_and_0_excl).
_EXP_MINUS_ONE_EIGHTH_Q31 = 1895147668
_ONE_THIRD_Q31 = 715827883
# Q2.29 48/17 and -32/17: Newton-Raphson start for 1/(1+x) (one_over_one_plus_x_for_x_in_0_1).
_48_OVER_17_Q29 = 1515870810
_NEG_32_OVER_17_Q29 = -1010580540

_I64 = np.int64


# ---------------------------------------------------------------------------------------------
# Argument handling


def checked_int64(x: ArrayLike, name: str, lo: int, hi: int) -> NDArray[np.int64]:
    """Return ``x`` as an int64 array, checking every value lies in ``[lo, hi]``.

    The range check is skipped when the dtype already guarantees it (e.g. int8/int16/int32 for an int32
    argument), so the common case costs one conversion pass only.
    """
    a = np.asarray(x)
    if a.dtype == np.bool_ or not np.issubdtype(a.dtype, np.integer):
        if a.dtype == object or a.size == 0:
            try:
                a = a.astype(np.int64)
            except (OverflowError, TypeError, ValueError) as exc:
                raise ValueError(f"{name}: expected integers in [{lo}, {hi}], got {x!r}") from exc
        else:
            raise TypeError(f"{name}: expected an integer array, got dtype {a.dtype}")
    info = np.iinfo(a.dtype)
    if info.min < lo or info.max > hi:
        if a.dtype == np.uint64 and a.size and int(a.max()) > INT64_MAX:
            raise ValueError(f"{name}: values must lie in [{lo}, {hi}], found {int(a.max())}")
        a64 = a.astype(np.int64)
        if a64.size:
            mn, mx = int(a64.min()), int(a64.max())
            if mn < lo or mx > hi:
                bad = mn if mn < lo else mx
                raise ValueError(f"{name}: values must lie in [{lo}, {hi}], found {bad}")
        return a64
    return a.astype(np.int64)


def checked_int_param(x: ArrayLike, name: str, lo: int, hi: int) -> NDArray[np.int64]:
    """A shift/exponent argument: a scalar or array of ints in ``[lo, hi]`` (raises ``ValueError``)."""
    return checked_int64(x, name, lo, hi)


def _is16(x: ArrayLike) -> bool:
    return isinstance(x, np.ndarray | np.generic) and x.dtype == np.int16


def wrap_int32(x: ArrayLike) -> NDArray[np.int32]:
    """Reduce integers modulo 2^32 into ``[-2^31, 2^31)``: what an overflowing C int32 holds on x86.

    Input: any integers (an int64 array, or Python ints up to int64). Output: int32 array.
    """
    a = np.asarray(x)
    if not np.issubdtype(a.dtype, np.integer):
        a = a.astype(np.int64)
    return np.asarray(a.astype(np.int32, casting="unsafe"))


def wrap_int16(x: ArrayLike) -> NDArray[np.int16]:
    """Reduce integers modulo 2^16 into ``[-2^15, 2^15)``: the value of a C ``static_cast<int16_t>``.

    Input: any integers up to int64. Output: int16 array.
    """
    a = np.asarray(x)
    if not np.issubdtype(a.dtype, np.integer):
        a = a.astype(np.int64)
    return np.asarray(a.astype(np.int16, casting="unsafe"))


def wrap_int32_i64(v: ArrayLike) -> NDArray[np.int64]:
    """Integers reduced modulo 2^32 into ``[-2^31, 2^31)``, held as int64: a C int32 that overflowed on x86.

    The form kernels use between int64 steps. Input: int64 values (array or scalar). Output: int64 array.
    """
    return ((np.asarray(v, dtype=np.int64) + 2**31) & 0xFFFFFFFF) - 2**31


def wrap_int16_i64(v: ArrayLike) -> NDArray[np.int64]:
    """Integers reduced modulo 2^16 into ``[-2^15, 2^15)``, held as int64: a C ``static_cast<int16_t>``.

    Input: int64 values (array or scalar). Output: int64 array.
    """
    return ((np.asarray(v, dtype=np.int64) + 2**15) & 0xFFFF) - 2**15


def wrap_int(v: int, bits: int) -> int:
    """A Python int reduced modulo ``2^bits`` into ``[-2^(bits-1), 2^(bits-1))``: a wrapped C signed integer.

    For the per-element traces, which compute with Python ints (``bits`` is 8, 16, 32 or 64).
    """
    half = 1 << (bits - 1)
    return ((int(v) + half) % (1 << bits)) - half


def int32_result(v: ArrayLike) -> NDArray[np.int32]:
    """int64 values already in the int32 range, as the int32 array a function returns (no wrap, no check)."""
    return np.asarray(v, dtype=np.int64).astype(np.int32)


def _out16(v: ArrayLike) -> NDArray[np.int16]:
    return np.asarray(v, dtype=np.int64).astype(np.int16)


# ---------------------------------------------------------------------------------------------
# Kernels on int64 arrays holding in-range values (no validation; used by the public wrappers)


def srdhm32_i64(a: NDArray[np.int64], b: NDArray[np.int64]) -> NDArray[np.int64]:
    """:func:`saturating_rounding_doubling_high_mul` on int64 arrays of int32 values, unchecked (int64 result)."""
    # p = a*b lies in [-2^62 + 2^31, 2^62]; p + 2^30 cannot overflow int64.
    # gemmlowp: trunc((p + (p >= 0 ? 2^30 : 1 - 2^30)) / 2^31) == floor((p + 2^30) / 2^31) for all p.
    res = (a * b + (1 << 30)) >> 31
    overflow = (a == INT32_MIN) & (b == INT32_MIN)
    if np.any(overflow):
        res = np.where(overflow, INT32_MAX, res)
    return res


def _srdhm16(a: NDArray[np.int64], b: NDArray[np.int64]) -> NDArray[np.int64]:
    res = (a * b + (1 << 14)) >> 15
    overflow = (a == INT16_MIN) & (b == INT16_MIN)
    if np.any(overflow):
        res = np.where(overflow, INT16_MAX, res)
    return res


def rdbpot_i64(x: NDArray[np.int64], e: NDArray[np.int64] | int, bits: int = 32) -> NDArray[np.int64]:
    """:func:`rounding_divide_by_pot` on int64 arrays of int``bits`` values, unchecked (int64 result)."""
    # gemmlowp RoundingDivideByPOT, literally: mask = (1ll << e) - 1 converted to the raw type.
    mask = (np.int64(1) << np.asarray(e, dtype=np.int64)) - 1
    if bits == 16:
        # static_cast<int16_t>((1ll << e) - 1): for e >= 16 this is -1 (the quirk LiteRT inherits).
        mask = mask.astype(np.int16).astype(np.int64)
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + (remainder > threshold)


def _shift_left_saturating(x: NDArray[np.int64], e: NDArray[np.int64] | int, bits: int) -> NDArray[np.int64]:
    # e in [1, bits-1]; |x| < 2^(bits-1) so x << e < 2^62 in int64.
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    threshold = (np.int64(1) << (bits - 1 - np.asarray(e, dtype=np.int64))) - 1
    res = x << e
    res = np.where(x > threshold, hi, res)
    return np.where(x < -threshold, lo, res)


def _srmbpot(x: NDArray[np.int64], e: NDArray[np.int64] | int, bits: int = 32) -> NDArray[np.int64]:
    ea = np.asarray(e, dtype=np.int64)
    if ea.ndim == 0:
        ei = int(ea)
        if ei == 0:
            return x
        if ei > 0:
            return _shift_left_saturating(x, ei, bits)
        return rdbpot_i64(x, -ei, bits)
    pos = np.maximum(ea, 1)
    left = _shift_left_saturating(x, np.minimum(pos, bits - 1), bits)
    right = rdbpot_i64(x, np.maximum(-ea, 0), bits)
    return np.where(ea > 0, left, np.where(ea < 0, right, x))


# ---------------------------------------------------------------------------------------------
# Public primitives


def saturating_rounding_doubling_high_mul(a: ArrayLike, b: ArrayLike) -> NDArray[np.int32]:
    """gemmlowp ``SaturatingRoundingDoublingHighMul`` for int32 (ARM ``VQRDMULH``).

    Real meaning: the Q0.31 product ``(a / 2^31) * (b / 2^31)``, i.e. ``a*b / 2^31`` rounded to nearest
    with ties toward +infinity (``floor((a*b + 2^30) / 2^31)``). The single product that does not fit,
    ``INT32_MIN * INT32_MIN`` (= +1.0), saturates to ``INT32_MAX``.

    Inputs: int32 values (broadcastable). Output: int32 array, in ``[-2^31 + 1, 2^31 - 1]``.
    """
    return int32_result(
        srdhm32_i64(checked_int64(a, "a", INT32_MIN, INT32_MAX), checked_int64(b, "b", INT32_MIN, INT32_MAX))
    )


def saturating_rounding_doubling_high_mul_int16(a: ArrayLike, b: ArrayLike) -> NDArray[np.int16]:
    """gemmlowp ``SaturatingRoundingDoublingHighMul`` for int16 (ARM ``VQRDMULH.S16``).

    Real meaning: the Q0.15 product ``a*b / 2^15``, rounded to nearest with ties toward +infinity;
    ``-32768 * -32768`` saturates to ``32767``.

    Inputs: int16 values (broadcastable). Output: int16 array.
    """
    return _out16(_srdhm16(checked_int64(a, "a", INT16_MIN, INT16_MAX), checked_int64(b, "b", INT16_MIN, INT16_MAX)))


def saturating_doubling_high_mul_int16(a: ArrayLike, b: ArrayLike) -> NDArray[np.int16]:
    """LiteRT ``reference_ops::SaturatingDoublingHighMul`` (hard_swish.h; ARM ``SQDMULH``), int16.

    Real meaning: the Q0.15 product ``a*b / 2^15`` **truncated toward zero** (no rounding);
    ``-32768 * -32768`` saturates to ``32767``. Used by HARD_SWISH, where the truncation cancels the
    upward bias of the rounding multiplies before it.

    Inputs: int16 values (broadcastable). Output: int16 array.
    """
    a64 = checked_int64(a, "a", INT16_MIN, INT16_MAX)
    b64 = checked_int64(b, "b", INT16_MIN, INT16_MAX)
    p = a64 * b64
    res = np.where(p >= 0, p >> 15, -((-p) >> 15))  # C '/' truncates toward zero
    res = np.where((a64 == INT16_MIN) & (b64 == INT16_MIN), INT16_MAX, res)
    return _out16(res)


def rounding_divide_by_pot(x: ArrayLike, exponent: ArrayLike) -> NDArray[np.signedinteger]:
    """gemmlowp ``RoundingDivideByPOT``: ``x / 2^exponent`` rounded to nearest, ties away from zero.

    ``exponent`` is a scalar or an array broadcastable against ``x``, each in ``[0, 31]``.

    For an int16 ``x`` the int16 instantiation is used and the result is int16. LiteRT computes its
    mask as ``static_cast<int16_t>((1 << exponent) - 1)``, which is ``-1`` for ``exponent >= 16``; that
    case is reproduced literally: every ``x >= 0`` then gives 1 and every ``x < 0`` gives -1 (not 0).

    Inputs: int32 values (any other dtype) or int16 values (int16 dtype). Output: int32 or int16 array.
    """
    e = checked_int_param(exponent, "exponent", 0, 31)
    if _is16(x):
        return _out16(rdbpot_i64(checked_int64(x, "x", INT16_MIN, INT16_MAX), e, bits=16))
    return int32_result(rdbpot_i64(checked_int64(x, "x", INT32_MIN, INT32_MAX), e))


def rounding_half_sum(a: ArrayLike, b: ArrayLike) -> NDArray[np.signedinteger]:
    """gemmlowp ``RoundingHalfSum`` (ARM ``VRHADD``): ``(a + b) / 2`` rounded to nearest, ties away from 0.

    The sum is formed in a wider type, so it never overflows. Both int16 -> int16 result; otherwise
    int32 inputs -> int32 result.
    """
    if _is16(a) and _is16(b):
        s = checked_int64(a, "a", INT16_MIN, INT16_MAX) + checked_int64(b, "b", INT16_MIN, INT16_MAX)
        return _out16(np.where(s >= 0, (s + 1) >> 1, s >> 1))
    s = checked_int64(a, "a", INT32_MIN, INT32_MAX) + checked_int64(b, "b", INT32_MIN, INT32_MAX)
    # trunc((s + sign(s)) / 2): for s >= 0 that is floor((s+1)/2); for s < 0 it is floor(s/2).
    return int32_result(np.where(s >= 0, (s + 1) >> 1, s >> 1))


def saturating_rounding_multiply_by_pot(x: ArrayLike, exponent: ArrayLike) -> NDArray[np.signedinteger]:
    """gemmlowp ``SaturatingRoundingMultiplyByPOT`` / LiteRT ``SaturatingRoundingMultiplyByPOTParam``.

    Real meaning: ``x * 2^exponent``. For ``exponent > 0`` an exact left shift that saturates to the
    type's min/max when ``|x| > 2^(bits-1-exponent) - 1``; for ``exponent < 0`` it is
    :func:`rounding_divide_by_pot` by ``-exponent`` (ties away from zero); 0 is the identity.

    ``exponent``: scalar or array; in ``[-31, 31]`` for int32 ``x``, in ``[-31, 15]`` for int16 ``x``.
    Output: int16 array for an int16 ``x``, otherwise int32.
    """
    if _is16(x):
        e = checked_int_param(exponent, "exponent", -31, 15)
        return _out16(_srmbpot(checked_int64(x, "x", INT16_MIN, INT16_MAX), e, bits=16))
    e = checked_int_param(exponent, "exponent", -31, 31)
    return int32_result(_srmbpot(checked_int64(x, "x", INT32_MIN, INT32_MAX), e))


def rounding_divide_by_pot_x86(x: ArrayLike, exponent: ArrayLike) -> NDArray[np.int64]:
    """gemmlowp ``RoundingDivideByPOT(int32 x, int e)`` as x86 scalar code runs it for ANY ``e``.

    For ``0 <= e <= 31`` this is :func:`rounding_divide_by_pot` (ties away from zero). Outside that range
    the C++ is undefined; the compiled REF kernel (DIV's double-rounding tail) computes
    ``mask = int32((1ll << (e & 63)) - 1)`` and ``x >> (e & 31)`` (the hardware masks shift counts),
    which this reproduces. ``x``: int32 values (int64 arrays accepted); ``exponent``: any ints,
    broadcastable. Output: int64 array.
    """
    xa = np.asarray(x, dtype=np.int64)
    e = np.asarray(exponent, dtype=np.int64)
    with np.errstate(over="ignore"):
        mask64 = (np.int64(1) << (e & 63)) - np.int64(1)
    mask = wrap_int32_i64(mask64)
    remainder = xa & mask
    threshold = (mask >> 1) + (xa < 0)
    return (xa >> (e & 31)) + (remainder > threshold)


# ---------------------------------------------------------------------------------------------
# Python-int versions, for the per-element traces (literal C, one scalar at a time)


def saturating_rounding_doubling_high_mul_py(a: int, b: int) -> int:
    """:func:`saturating_rounding_doubling_high_mul` of two Python ints, as written in C (docs/litert_semantics.md §1.2).

    ``trunc((a*b + (a*b >= 0 ? 2^30 : 1 - 2^30)) / 2^31)``; ``INT32_MIN * INT32_MIN`` saturates to
    ``INT32_MAX``. ``a``, ``b``: ints in the int32 range. Returns a Python int.
    """
    if a == b == INT32_MIN:
        return INT32_MAX
    p = a * b
    t = p + ((1 << 30) if p >= 0 else 1 - (1 << 30))
    return t // (1 << 31) if t >= 0 else -((-t) // (1 << 31))  # C '/': truncation toward zero


def rounding_divide_by_pot_py(x: int, exponent: int) -> int:
    """:func:`rounding_divide_by_pot` of a Python int: mask, remainder, threshold (ties away from zero).

    ``x``: an int in the int32 range; ``exponent``: 0..31. Returns a Python int.
    """
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


# ---------------------------------------------------------------------------------------------
# Float rounding and bit counting


def round_half_away_from_zero(x: ArrayLike) -> NDArray[np.floating]:
    """C ``round``/``roundf`` (what LiteRT's ``TfLiteRound`` calls): nearest integer, ties away from 0.

    Exact for every finite value (``floor`` and ``|x| - floor(|x|)`` are exact in binary floating
    point; no ``+ 0.5`` that could round). ``±inf``, NaN and ``-0.0`` are returned unchanged, as C does.
    A float32 input stays float32 (roundf); float16/float64 keep their dtype; integer or Python inputs
    become float64. Output: a float array of the same shape.
    """
    a = np.asarray(x)
    if not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float64)
    mag = np.abs(a)
    whole = np.floor(mag)
    with np.errstate(invalid="ignore"):
        up = (mag - whole) >= 0.5  # inf - inf is NaN -> False, leaving inf as is
    return np.asarray(np.copysign(whole + up.astype(a.dtype), a), dtype=a.dtype)


def count_leading_zeros32(x: ArrayLike) -> NDArray[np.int32]:
    """LiteRT ``CountLeadingZeros<uint32_t>``: the number of leading zero bits of ``x`` as a uint32.

    ``x``: int32 values (reinterpreted as their uint32 bit pattern, so negatives give 0) or uint32
    values. Output: int32 array in ``[0, 32]``; ``clz(0) == 32``.
    """
    a = np.asarray(x)
    if a.dtype == np.uint32:
        u = a.astype(np.int64)
    else:
        u = checked_int64(x, "x", INT32_MIN, 2**32 - 1) & 0xFFFFFFFF
    # frexp of an integer below 2^53 is exact: v = m * 2^e with 0.5 <= m < 1, so e is bit_length(v).
    _, e = np.frexp(u.astype(np.float64))
    return np.asarray(32 - e, dtype=np.int32)


# ---------------------------------------------------------------------------------------------
# gemmlowp transcendental helpers (int32 raw values)


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a: NDArray[np.int64]) -> NDArray[np.int64]:
    """Q0.31 ``a`` in [-1/4, 0) -> Q0.31 exp(a): a 4th-order Taylor expansion around -1/8."""
    x = wrap_int32_i64(a + (1 << 28))  # a + 1/8
    x2 = srdhm32_i64(x, x)
    x3 = srdhm32_i64(x2, x)
    x4 = srdhm32_i64(x2, x2)
    x4_over_4 = rdbpot_i64(x4, 2)
    inner = wrap_int32_i64(srdhm32_i64(wrap_int32_i64(x4_over_4 + x3), np.int64(_ONE_THIRD_Q31)) + x2)
    x4_over_24_plus_x3_over_6_plus_x2_over_2 = rdbpot_i64(inner, 1)
    c = np.int64(_EXP_MINUS_ONE_EIGHTH_Q31)
    return wrap_int32_i64(c + srdhm32_i64(c, wrap_int32_i64(x + x4_over_24_plus_x3_over_6_plus_x2_over_2)))


def exp_on_negative_values(a: ArrayLike, integer_bits: int) -> NDArray[np.int32]:
    """gemmlowp ``exp_on_negative_values`` for ``FixedPoint<int32, integer_bits>``.

    Real meaning: ``exp(a / 2^(31 - integer_bits))`` for ``a <= 0``, as a Q0.31 value (``2^31 - 1`` for
    ``a == 0``). SOFTMAX int8 uses ``integer_bits = 5`` (Q5.26 input). The input is split into
    ``a mod 1/4 - 1/4`` (evaluated by a Taylor polynomial) and a multiple of 1/4 whose bits select the
    Q0.31 factors :data:`EXP_BARREL_SHIFTER_MULTIPLIERS` (``exp(-2^k)`` for ``k < integer_bits``); for
    ``integer_bits > 5``, inputs below -32 give 0. Adds wrap in int32 as in gemmlowp; positive inputs
    are outside the contract and give whatever the integer recipe gives.

    ``a``: int32 values. ``integer_bits``: 0..29 (gemmlowp needs 1/4 to be representable, so 30 and 31
    do not compile there and raise ``ValueError`` here). Output: int32 array in ``[0, 2^31 - 1]`` for
    ``a <= 0``.
    """
    if not isinstance(integer_bits, int | np.integer) or not 0 <= int(integer_bits) <= 29:
        raise ValueError(f"integer_bits must be an int in [0, 29], got {integer_bits!r}")
    ib = int(integer_bits)
    frac = 31 - ib
    a64 = checked_int64(a, "a", INT32_MIN, INT32_MAX)
    one_quarter = 1 << (frac - 2)
    a_mod_quarter_minus_one_quarter = wrap_int32_i64((a64 & (one_quarter - 1)) - one_quarter)
    # Rescale<0>: from integer_bits to 0 integer bits is a saturating multiply by 2^integer_bits.
    rescaled = _srmbpot(a_mod_quarter_minus_one_quarter, ib)
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(rescaled)
    remainder = wrap_int32_i64(a_mod_quarter_minus_one_quarter - a64)
    for k, multiplier in EXP_BARREL_SHIFTER_MULTIPLIERS.items():
        if ib > k:
            selected = (remainder & (1 << (frac + k))) != 0
            result = np.where(selected, srdhm32_i64(result, np.int64(multiplier)), result)
    if ib > 5:
        result = np.where(a64 < -(1 << (36 - ib)), 0, result)  # below -32: exp underflows to 0
    result = np.where(a64 == 0, INT32_MAX, result)
    return int32_result(result)


def one_over_one_plus_x_for_x_in_0_1(a: ArrayLike) -> NDArray[np.int32]:
    """gemmlowp ``one_over_one_plus_x_for_x_in_0_1`` for int32.

    Real meaning: ``1 / (1 + a/2^31)`` for a Q0.31 ``a`` in ``[0, 1)``, returned in Q0.31 (so the result
    lies in ``(2^30, 2^31 - 1]``). Computed as three Newton-Raphson steps on the half denominator
    ``(1 + a) / 2`` in Q2.29, starting from ``48/17 - 32/17 * d``; saturating shifts rescale back.

    ``a``: int32 values. Output: int32 array.
    """
    a64 = checked_int64(a, "a", INT32_MIN, INT32_MAX)
    s = a64 + INT32_MAX
    half_denominator = np.where(s >= 0, (s + 1) >> 1, s >> 1)  # RoundingHalfSum(a, One)
    x = wrap_int32_i64(_48_OVER_17_Q29 + srdhm32_i64(half_denominator, np.int64(_NEG_32_OVER_17_Q29)))
    one_q29 = 1 << 29
    for _ in range(3):
        half_denominator_times_x = srdhm32_i64(half_denominator, x)
        one_minus_half_denominator_times_x = wrap_int32_i64(one_q29 - half_denominator_times_x)
        x = wrap_int32_i64(x + _srmbpot(srdhm32_i64(x, one_minus_half_denominator_times_x), 2))
    return int32_result(_srmbpot(x, 1))


def inv_sqrt_quantized_multiplier_exp(values: ArrayLike) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """LiteRT ``GetInvSqrtQuantizedMultiplierExp(v, kReverseShift=-1)`` (common.h), vectorized.

    Real meaning: ``1 / sqrt(v)`` as a Q0.31 multiplier ``M`` and an exponent ``e`` with
    ``1/sqrt(v) ~= M * 2^(e - 31)``, computed with five gemmlowp Newton-Raphson steps on a normalized
    Q3.28 value. Used by RSQRT and L2_NORMALIZATION. ``values``: int32 values; ``0`` and ``1`` give
    ``(INT32_MAX, 0)`` as in LiteRT. Returns two int64 arrays of ``values``' shape.
    """
    v = np.asarray(values).astype(np.int64)
    small = v <= 1  # LiteRT returns (INT32_MAX, 0) for inputs 0 and 1
    v = np.where(small, 2, v)
    shift = np.full(v.shape, 11, np.int64)
    while np.any(v >= (1 << 29)):
        big = v >= (1 << 29)
        v = np.where(big, v // 4, v)
        shift = shift + big
    max_left_shift_bits = count_leading_zeros32(v).astype(np.int64) - 1
    left_shift_bit_pairs = max_left_shift_bits // 2 - 1
    shift = shift - left_shift_bit_pairs
    v = v << (2 * left_shift_bit_pairs)
    srdhm = saturating_rounding_doubling_high_mul
    fixedpoint_input = v >> 1  # F3
    half_input = saturating_rounding_multiply_by_pot(fixedpoint_input, -1).astype(np.int64)
    half_three = (1 << 28) + (1 << 27)
    x = np.full(v.shape, 1 << 28, np.int64)  # F3 one
    for _ in range(5):
        x3 = saturating_rounding_multiply_by_pot(srdhm(srdhm(x, x), x), 6).astype(np.int64)  # F9 -> F3
        diff = wrap_int32_i64(srdhm(half_three, x).astype(np.int64) - srdhm(half_input, x3).astype(np.int64))  # F6
        x = saturating_rounding_multiply_by_pot(diff, 3).astype(np.int64)  # F6 -> F3
    x = srdhm(x, 1518500250).astype(np.int64)  # * sqrt(2)/2 (F0)
    neg = shift < 0
    x = np.where(neg, wrap_int32_i64(x << np.where(neg, -shift, 0)), x)
    shift = np.where(neg, 0, shift)
    return np.where(small, 2**31 - 1, x), np.where(small, 0, -shift)
