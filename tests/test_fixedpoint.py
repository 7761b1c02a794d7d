"""Tests of refquant.fixedpoint against literal pure-Python-int definitions (docs/litert_semantics.md §1.2-§1.4, §3.12, §7).

The ``ref_*`` functions below are written from the C++ definitions with Python's arbitrary-precision ints,
one scalar at a time, so they share no code (and no int64 concerns) with the vectorized implementation.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from refquant import fixedpoint as fp
from refquant import requantize as rq

I32_MIN, I32_MAX = -(2**31), 2**31 - 1
I16_MIN, I16_MAX = -(2**15), 2**15 - 1


# ---------------------------------------------------------------------------------------------
# Literal scalar references


def c_div(a: int, b: int) -> int:
    """C integer division: truncates toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def wrap(v: int, bits: int = 32) -> int:
    m = 1 << bits
    return ((v + (m >> 1)) % m) - (m >> 1)


def ref_srdhm(a: int, b: int, bits: int = 32) -> int:
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if a == b == lo:
        return hi
    p = a * b
    half = 1 << (bits - 2)
    nudge = half if p >= 0 else 1 - half
    return c_div(p + nudge, 1 << (bits - 1))


def ref_sdhm16(a: int, b: int) -> int:
    if a == b == I16_MIN:
        return I16_MAX
    return c_div(a * b, 1 << 15)


def ref_rdbpot(x: int, e: int, bits: int = 32) -> int:
    mask = wrap((1 << e) - 1, bits)  # static_cast<IntegerType>((1ll << exponent) - 1)
    remainder = x & mask
    threshold = wrap((mask >> 1) + (1 if x < 0 else 0), bits)
    return wrap((x >> e) + (1 if remainder > threshold else 0), bits)


def round_half_away(f: Fraction) -> int:
    r = math.floor(abs(f) + Fraction(1, 2))
    return r if f >= 0 else -r


def ref_rhs(a: int, b: int) -> int:
    s = a + b
    return c_div(s + (1 if s >= 0 else -1), 2)


def ref_srmbpot(x: int, e: int, bits: int = 32) -> int:
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if e == 0:
        return x
    if e < 0:
        return ref_rdbpot(x, -e, bits)
    threshold = (1 << (bits - 1 - e)) - 1
    if x > threshold:
        return hi
    if x < -threshold:
        return lo
    return x << e


def ref_mbqm_double(x: int, m: int, shift: int) -> int:
    left = shift if shift > 0 else 0
    right = -shift if shift < 0 else 0
    xs = wrap(x * wrap(1 << (left & 31)))  # x * (1 << left_shift) in int32 on x86
    return ref_rdbpot(ref_srdhm(xs, m), right)


def ref_mbqm_single(x: int, m: int, shift: int) -> int:
    ts = 31 - shift
    return wrap((x * m + (1 << (ts - 1))) >> ts)


def ref_mbqm64(x: int, m: int, shift: int) -> int:
    reduced = (m + (1 << 15)) >> 16 if m < 0x7FFF0000 else 0x7FFF
    ts = 15 - shift
    return wrap(wrap(x * reduced + (1 << (ts - 1)), 64) >> ts)


def ref_exp_interval(a: int) -> int:
    x = wrap(a + (1 << 28))
    x2 = ref_srdhm(x, x)
    x3 = ref_srdhm(x2, x)
    x4 = ref_srdhm(x2, x2)
    x4_over_4 = ref_rdbpot(x4, 2)
    poly = ref_rdbpot(wrap(ref_srdhm(wrap(x4_over_4 + x3), 715827883) + x2), 1)
    return wrap(1895147668 + ref_srdhm(1895147668, wrap(x + poly)))


NOTES_EXP_TABLE = [
    (-2, 1672461947),
    (-1, 1302514674),
    (0, 790015084),
    (1, 290630308),
    (2, 39332535),
    (3, 720401),
    (4, 242),
]


def ref_exp_on_negative_values(a: int, ib: int) -> int:
    frac = 31 - ib
    quarter = 1 << (frac - 2)
    amod = wrap((a & (quarter - 1)) - quarter)
    result = ref_exp_interval(ref_srmbpot(amod, ib))
    remainder = wrap(amod - a)
    for k, m in NOTES_EXP_TABLE:
        if ib > k and remainder & (1 << (frac + k)):
            result = ref_srdhm(result, m)
    if ib > 5 and a < -(1 << (36 - ib)):
        result = 0
    if a == 0:
        result = I32_MAX
    return result


def ref_one_over_one_plus_x(a: int) -> int:
    hd = ref_rhs(a, I32_MAX)
    x = wrap(1515870810 + ref_srdhm(hd, -1010580540))
    for _ in range(3):
        x = wrap(x + ref_srmbpot(ref_srdhm(x, wrap((1 << 29) - ref_srdhm(hd, x))), 2))
    return ref_srmbpot(x, 1)


# ---------------------------------------------------------------------------------------------
# Edge values and strategies

EDGES32 = sorted(
    {0, 1, -1, I32_MIN, I32_MAX, I32_MIN + 1, I32_MAX - 1}
    | {s * (2**k + d) for k in range(1, 31) for d in (-1, 0, 1) for s in (1, -1)}
)
EDGES32 = [v for v in EDGES32 if I32_MIN <= v <= I32_MAX]
EDGES16 = sorted(
    {0, 1, -1, I16_MIN, I16_MAX} | {s * (2**k + d) for k in range(1, 15) for d in (-1, 0, 1) for s in (1, -1)}
)

i32 = st.one_of(st.integers(I32_MIN, I32_MAX), st.sampled_from(EDGES32))
i16 = st.one_of(st.integers(I16_MIN, I16_MAX), st.sampled_from(EDGES16))
i32_lists = st.lists(i32, min_size=1, max_size=64)


def arr32(values):
    return np.array(values, dtype=np.int32)


# ---------------------------------------------------------------------------------------------
# Constants


def test_exp_constants_match_kernel_notes_table():
    assert list(fp.EXP_BARREL_SHIFTER_MULTIPLIERS.items()) == NOTES_EXP_TABLE


@pytest.mark.parametrize("k", range(-2, 5))
def test_exp_constants_are_rounded_exp_of_minus_two_pow_k(k):
    assert fp.EXP_BARREL_SHIFTER_MULTIPLIERS[k] == round_half_away(Fraction(math.exp(-(2.0**k))) * 2**31)


@pytest.mark.parametrize(
    ("raw", "value", "frac_bits"),
    [
        (fp._EXP_MINUS_ONE_EIGHTH_Q31, math.exp(-1 / 8), 31),
        (fp._ONE_THIRD_Q31, 1 / 3, 31),
        (fp._48_OVER_17_Q29, 48 / 17, 29),
        (fp._NEG_32_OVER_17_Q29, -32 / 17, 29),
    ],
)
def test_polynomial_constants(raw, value, frac_bits):
    assert raw == round_half_away(Fraction(value) * 2**frac_bits)


# ---------------------------------------------------------------------------------------------
# SRDHM


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (I32_MIN, I32_MIN, I32_MAX),  # -1 * -1 saturates
        (I32_MIN, I32_MAX, I32_MIN + 1),
        (I32_MAX, I32_MAX, I32_MAX - 1),
        (2**30, 2**30, 2**29),
        (1, 2**30, 1),  # 0.5 -> ties up
        (-1, 2**30, 0),  # -0.5 -> ties up
        (3, 2**30, 2),  # 1.5 -> 2
        (-3, 2**30, -1),  # -1.5 -> -1
        (0, I32_MIN, 0),
    ],
)
def test_srdhm_table(a, b, expected):
    assert int(fp.saturating_rounding_doubling_high_mul(a, b)) == expected


def test_srdhm_edge_grid():
    a, b = np.meshgrid(arr32(EDGES32), arr32(EDGES32))
    got = fp.saturating_rounding_doubling_high_mul(a, b)
    want = [[ref_srdhm(int(x), int(y)) for x, y in zip(ra, rb)] for ra, rb in zip(a, b)]
    np.testing.assert_array_equal(got, np.array(want, dtype=np.int64))
    assert got.dtype == np.int32


@given(st.lists(st.tuples(i32, i32), min_size=1, max_size=64))
def test_srdhm_matches_reference(pairs):
    a, b = zip(*pairs)
    got = fp.saturating_rounding_doubling_high_mul(arr32(a), arr32(b))
    assert got.tolist() == [ref_srdhm(x, y) for x, y in pairs]


@given(st.lists(st.tuples(i16, i16), min_size=1, max_size=64))
def test_srdhm_int16_matches_reference(pairs):
    a, b = zip(*pairs)
    got = fp.saturating_rounding_doubling_high_mul_int16(np.array(a, np.int16), np.array(b, np.int16))
    assert got.dtype == np.int16
    assert got.tolist() == [ref_srdhm(x, y, 16) for x, y in pairs]


@pytest.mark.parametrize(
    ("a", "b", "rounded", "truncated"),
    [
        (I16_MIN, I16_MIN, I16_MAX, I16_MAX),
        (1, 2**14, 1, 0),
        (-1, 2**14, 0, 0),
        (3, 2**14, 2, 1),
        (-3, 2**14, -1, -1),
        (I16_MAX, I16_MAX, I16_MAX - 1, I16_MAX - 1),
        (I16_MIN, I16_MAX, I16_MIN + 1, I16_MIN + 1),
    ],
)
def test_int16_high_mul_tables(a, b, rounded, truncated):
    assert int(fp.saturating_rounding_doubling_high_mul_int16(a, b)) == rounded
    assert int(fp.saturating_doubling_high_mul_int16(a, b)) == truncated


@given(st.lists(st.tuples(i16, i16), min_size=1, max_size=64))
def test_sdhm_int16_matches_reference(pairs):
    a, b = zip(*pairs)
    got = fp.saturating_doubling_high_mul_int16(np.array(a, np.int16), np.array(b, np.int16))
    assert got.dtype == np.int16
    assert got.tolist() == [ref_sdhm16(x, y) for x, y in pairs]


# ---------------------------------------------------------------------------------------------
# RoundingDivideByPOT, RoundingHalfSum, SaturatingRoundingMultiplyByPOT


@pytest.mark.parametrize(
    ("x", "e", "expected"),
    [
        (5, 1, 3),
        (-5, 1, -3),
        (3, 1, 2),
        (-3, 1, -2),
        (4, 1, 2),
        (7, 2, 2),
        (6, 2, 2),
        (-6, 2, -2),
        (2, 2, 1),
        (-2, 2, -1),
        (1, 1, 1),
        (-1, 1, -1),
        (I32_MIN, 31, -1),
        (I32_MAX, 31, 1),
        (2**30, 31, 1),
        (-(2**30), 31, -1),
        (2**30 - 1, 31, 0),
        (-(2**30) + 1, 31, 0),
        (12345, 0, 12345),
        (I32_MIN, 0, I32_MIN),
    ],
)
def test_rdbpot_table(x, e, expected):
    assert int(fp.rounding_divide_by_pot(x, e)) == expected


def test_rdbpot_edges_all_exponents_equal_exact_rounding():
    x = arr32(EDGES32)[:, None]
    e = np.arange(32)[None, :]
    got = fp.rounding_divide_by_pot(x, e)
    want = [[round_half_away(Fraction(int(v), 2 ** int(k))) for k in range(32)] for v in EDGES32]
    np.testing.assert_array_equal(got, np.array(want, dtype=np.int64))


@given(i32_lists, st.integers(0, 31))
def test_rdbpot_matches_reference(xs, e):
    got = fp.rounding_divide_by_pot(arr32(xs), e)
    assert got.tolist() == [ref_rdbpot(x, e) for x in xs]
    assert got.tolist() == [round_half_away(Fraction(x, 2**e)) for x in xs]


@given(st.lists(st.tuples(i16, st.integers(0, 31)), min_size=1, max_size=64))
def test_rdbpot_int16_matches_literal_gemmlowp(pairs):
    xs, es = zip(*pairs)
    got = fp.rounding_divide_by_pot(np.array(xs, np.int16), np.array(es))
    assert got.dtype == np.int16
    assert got.tolist() == [ref_rdbpot(x, e, 16) for x, e in pairs]


def test_rdbpot_int16_large_exponent_quirk():
    # int16 mask static_cast<int16_t>((1 << e) - 1) == -1 for e >= 16: x >= 0 -> 1, x < 0 -> -1.
    # Confirmed against BUILTIN_REF HARD_SWISH int8 with output exponent -16..-23.
    x = np.array([I16_MIN, -5, -1, 0, 1, 5, I16_MAX], np.int16)
    assert fp.rounding_divide_by_pot(x, 15).tolist() == [-1, 0, 0, 0, 0, 0, 1]
    for e in (16, 17, 23, 31):
        assert fp.rounding_divide_by_pot(x, e).tolist() == [-1, -1, -1, 1, 1, 1, 1]
    # The int32 instantiation has no such quirk.
    assert fp.rounding_divide_by_pot(x.astype(np.int32), 16).tolist() == [-1, 0, 0, 0, 0, 0, 0]


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (1, 2, 2),
        (-1, -2, -2),
        (0, 1, 1),
        (0, -1, -1),
        (I32_MAX, I32_MAX, I32_MAX),
        (I32_MIN, I32_MIN, I32_MIN),
        (I32_MIN, I32_MAX, -1),
        (0, I32_MAX, 2**30),
    ],
)
def test_rounding_half_sum_table(a, b, expected):
    assert int(fp.rounding_half_sum(a, b)) == expected


@given(st.lists(st.tuples(i32, i32), min_size=1, max_size=64))
def test_rounding_half_sum_matches_reference(pairs):
    a, b = zip(*pairs)
    assert fp.rounding_half_sum(arr32(a), arr32(b)).tolist() == [ref_rhs(x, y) for x, y in pairs]


@given(st.lists(st.tuples(i16, i16), min_size=1, max_size=64))
def test_rounding_half_sum_int16(pairs):
    a, b = zip(*pairs)
    got = fp.rounding_half_sum(np.array(a, np.int16), np.array(b, np.int16))
    assert got.dtype == np.int16
    assert got.tolist() == [ref_rhs(x, y) for x, y in pairs]


@pytest.mark.parametrize(
    ("x", "e", "expected"),
    [
        (2**30, 1, I32_MAX),
        (2**30 - 1, 1, 2**31 - 2),
        (-(2**30), 1, I32_MIN),
        (-(2**30) + 1, 1, -(2**31) + 2),
        (-(2**30) - 1, 1, I32_MIN),
        (1, 31, I32_MAX),
        (-1, 31, I32_MIN),
        (0, 31, 0),
        (5, -1, 3),
        (-5, -1, -3),
        (7, 0, 7),
    ],
)
def test_srmbpot_table(x, e, expected):
    assert int(fp.saturating_rounding_multiply_by_pot(x, e)) == expected


@given(i32_lists, st.integers(-31, 31))
def test_srmbpot_matches_reference(xs, e):
    assert fp.saturating_rounding_multiply_by_pot(arr32(xs), e).tolist() == [ref_srmbpot(x, e) for x in xs]


@given(st.lists(st.tuples(i32, st.integers(-31, 31)), min_size=1, max_size=64))
def test_srmbpot_array_exponent(pairs):
    xs, es = zip(*pairs)
    got = fp.saturating_rounding_multiply_by_pot(arr32(xs), np.array(es))
    assert got.tolist() == [ref_srmbpot(x, e) for x, e in pairs]


@given(st.lists(i16, min_size=1, max_size=64), st.integers(-15, 15))
def test_srmbpot_int16(xs, e):
    got = fp.saturating_rounding_multiply_by_pot(np.array(xs, np.int16), e)
    assert got.dtype == np.int16
    assert got.tolist() == [ref_srmbpot(x, e, 16) for x in xs]


# ---------------------------------------------------------------------------------------------
# MultiplyByQuantizedMultiplier

MBQM_025 = [  # docs/litert_semantics.md §1.3: multiplier 0.25 = (2^30, -1)
    (1, 1, 0),
    (5, 2, 1),
    (-2, -1, 0),
    (-6, -2, -1),
]


@pytest.mark.parametrize(("x", "double", "single"), MBQM_025)
def test_mbqm_quarter_table(x, double, single):
    for f in (rq.multiply_by_quantized_multiplier,):
        assert int(f(x, 2**30, -1, rounding="double")) == double
        assert int(f(x, 2**30, -1, rounding="single")) == single
    assert int(rq.mbqm_double_rounding_reference(x, 2**30, -1)) == double
    assert int(rq.multiply_by_quantized_multiplier_smaller_than_one_exp(x, 2**30, -1)) == double
    assert int(rq.multiply_by_quantized_multiplier_smaller_than_one_exp(x, 2**30, -1, "single")) == single


def test_mbqm_quarter_all_int8_both_roundings():
    x = np.arange(-128, 128, dtype=np.int32)
    dbl = rq.multiply_by_quantized_multiplier(x, 2**30, -1)
    sgl = rq.multiply_by_quantized_multiplier(x, 2**30, -1, rounding="single")
    assert dbl.tolist() == [ref_mbqm_double(v, 2**30, -1) for v in range(-128, 128)]
    assert sgl.tolist() == [ref_mbqm_single(v, 2**30, -1) for v in range(-128, 128)]
    assert (dbl != sgl).any()


def test_mbqm_left_shift_wraps():
    # docs/litert_semantics.md §1.1: multiplier 1e6 = (2048000000, 20); acc 16129 << 20 wraps in int32.
    got = int(rq.multiply_by_quantized_multiplier(16129, 2048000000, 20))
    assert got == ref_mbqm_double(16129, 2048000000, 20) < 0
    assert int(rq.multiply_by_quantized_multiplier_greater_than_one(16129, 2048000000, 20)) == got


def test_mbqm_saturating_corner():
    # SRDHM(INT32_MIN, INT32_MIN) saturates; the one-shift shortcut must not miss it.
    for shift in (0, -1, -5, -31, 1, 31):
        x = I32_MIN if shift <= 0 else (I32_MIN >> shift if shift < 31 else 1)
        want = ref_mbqm_double(x, I32_MIN, shift)
        assert int(rq.multiply_by_quantized_multiplier(x, I32_MIN, shift)) == want
        assert int(rq.mbqm_double_rounding_reference(x, I32_MIN, shift)) == want


mults = st.one_of(st.integers(I32_MIN, I32_MAX), st.integers(2**30, I32_MAX), st.sampled_from(EDGES32))


@given(i32_lists, mults, st.integers(-31, 31))
def test_mbqm_double_matches_reference(xs, m, shift):
    want = [ref_mbqm_double(x, m, shift) for x in xs]
    assert rq.multiply_by_quantized_multiplier(arr32(xs), m, shift).tolist() == want
    assert rq.mbqm_double_rounding_reference(arr32(xs), m, shift).tolist() == want


@given(i32_lists, st.integers(0, I32_MAX), st.integers(-31, 30))
def test_mbqm_single_matches_reference(xs, m, shift):
    want = [ref_mbqm_single(x, m, shift) for x in xs]
    assert rq.multiply_by_quantized_multiplier(arr32(xs), m, shift, rounding="single").tolist() == want


@given(i32_lists, st.integers(2**30, I32_MAX), st.integers(-31, 0))
def test_mbqm_double_is_close_to_exact(xs, m, shift):
    # Two roundings: at most one unit from the exact product.
    got = rq.multiply_by_quantized_multiplier(arr32(xs), m, shift)
    for x, g in zip(xs, got.tolist()):
        assert abs(Fraction(x * m, 2 ** (31 - shift)) - g) <= 1


@given(st.lists(st.tuples(i32, mults, st.integers(-31, 31)), min_size=1, max_size=64))
def test_mbqm_per_element_parameters(triples):
    xs, ms, ss = zip(*triples)
    got = rq.multiply_by_quantized_multiplier(arr32(xs), arr32(ms), np.array(ss))
    assert got.tolist() == [ref_mbqm_double(*t) for t in triples]


def test_mbqm_per_channel_broadcast_last_axis():
    rng = np.random.default_rng(7)
    x = rng.integers(-(2**20), 2**20, size=(2, 3, 5)).astype(np.int32)
    m = rng.integers(2**30, 2**31, size=5).astype(np.int32)
    s = np.array([-3, 0, 2, -31, -12], dtype=np.int32)
    for rounding, ref in (("double", ref_mbqm_double), ("single", ref_mbqm_single)):
        got = rq.multiply_by_quantized_multiplier(x, m, s, rounding=rounding)
        assert got.shape == x.shape and got.dtype == np.int32
        want = np.vectorize(lambda v, mm, ss, r=ref: r(int(v), int(mm), int(ss)))(x, m, s)
        np.testing.assert_array_equal(got, want)


def test_mbqm_shortcut_agrees_with_two_step_bulk():
    # docs/litert_semantics.md §7.1 shortcut vs the literal SRDHM + RDBPOT, with many ties and extreme magnitudes.
    rng = np.random.default_rng(12345)
    n = 200_000
    x = rng.integers(I32_MIN, I32_MAX, n, endpoint=True, dtype=np.int64)
    x[: n // 4] = rng.integers(-4096, 4096, n // 4)
    x[-100:] = np.repeat([I32_MIN, I32_MAX, I32_MIN + 1, -1], 25)
    m = rng.integers(I32_MIN, I32_MAX, n, endpoint=True, dtype=np.int64)
    special = [2**30, 3 * 2**29, 2**30 + 2**29 + 2**28, I32_MIN, I32_MAX, -(2**30), 1, 0]
    m[: n // 2] = rng.choice(special, n // 2)
    s = rng.integers(-31, 31, n, endpoint=True)
    s[: n // 8] = -1
    args = (x.astype(np.int32), m.astype(np.int32))
    fast = rq.multiply_by_quantized_multiplier(*args, s)
    slow = rq.mbqm_double_rounding_reference(*args, s)
    np.testing.assert_array_equal(fast, slow)
    # Scalar-shift code path too.
    for shift in (-31, -17, -1, 0, 3, 31):
        np.testing.assert_array_equal(
            rq.multiply_by_quantized_multiplier(*args, shift),
            rq.mbqm_double_rounding_reference(*args, shift),
        )
    # A sample against the pure-Python definition (guards against both vectorized paths sharing a bug).
    idx = rng.choice(n, 2000, replace=False)
    want = [ref_mbqm_double(int(x[i]), int(m[i]), int(s[i])) for i in idx]
    assert fast[idx].tolist() == want


@given(i32_lists, mults, st.integers(-31, 0))
def test_smaller_than_one_exp_matches_reference(xs, m, shift):
    want = [ref_rdbpot(ref_srdhm(x, m), -shift) for x in xs]
    assert rq.multiply_by_quantized_multiplier_smaller_than_one_exp(arr32(xs), m, shift).tolist() == want


@given(i32_lists, mults, st.integers(0, 31))
def test_greater_than_one_matches_reference(xs, m, shift):
    want = [ref_srdhm(wrap(x << shift), m) for x in xs]
    assert rq.multiply_by_quantized_multiplier_greater_than_one(arr32(xs), m, shift).tolist() == want


@given(i32_lists, st.integers(0, I32_MAX), st.integers(-31, 30))
def test_single_rounding_variants_are_mbqm(xs, m, shift):
    want = [ref_mbqm_single(x, m, shift) for x in xs]
    f_small = rq.multiply_by_quantized_multiplier_smaller_than_one_exp
    f_big = rq.multiply_by_quantized_multiplier_greater_than_one
    assert f_small(arr32(xs), m, shift, rounding="single").tolist() == want
    assert f_big(arr32(xs), m, shift, rounding="single").tolist() == want


i48 = st.one_of(st.integers(-(2**47), 2**47 - 1), st.integers(-(2**31), 2**31), st.sampled_from([0, 1, -1]))


@given(
    st.lists(i48, min_size=1, max_size=64),
    st.one_of(
        st.integers(0, I32_MAX),
        st.sampled_from([0x7FFF0000 - 1, 0x7FFF0000, I32_MAX, 2**30, 2**30 + 2**15, 2**30 + 2**15 - 1]),
    ),
    st.integers(-31, 7),
)
def test_mbqm_int64_matches_reference(xs, m, shift):
    got = rq.multiply_by_quantized_multiplier_int64(np.array(xs, dtype=np.int64), m, shift)
    assert got.dtype == np.int32
    assert got.tolist() == [ref_mbqm64(x, m, shift) for x in xs]


@pytest.mark.parametrize(
    ("x", "m", "shift", "expected"),
    [
        (1, 2**30, -1, 0),  # Mr = 2^14; (2^14 + 2^15) >> 16 = 0
        (2, 2**30, -1, 1),  # 0.5 -> ties up
        (-2, 2**30, -1, 0),  # -0.5 -> ties up
        (-6, 2**30, -1, -1),  # -1.5 -> -1
        (2**40, I32_MAX, 0, -(2**25)),  # Mr = 0x7FFF: (2^40 * 0x7FFF + 2^14) >> 15 = 2^40 - 2^25, low 32 bits
        (12345, 0x7FFF0000 - 1, 0, (12345 * 0x7FFF + 2**14) >> 15),  # rounds to Mr = 0x7FFF as well
    ],
)
def test_mbqm_int64_table(x, m, shift, expected):
    assert int(rq.multiply_by_quantized_multiplier_int64(x, m, shift)) == wrap(expected)


# ---------------------------------------------------------------------------------------------
# round_half_away_from_zero, count_leading_zeros32


def test_round_half_away_table():
    values = [0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.49999997, -0.49999997, 0.0, -0.0, 1e30, np.inf, -np.inf]
    x = np.array(values, np.float32)
    got = fp.round_half_away_from_zero(x)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(
        got, np.array([1, -1, 2, -2, 3, -3, 0, -0.0, 0, -0.0, 1e30, np.inf, -np.inf], np.float32)
    )
    assert np.signbit(got[9]) and np.signbit(got[7])
    assert np.isnan(fp.round_half_away_from_zero(np.float32(np.nan)))
    assert fp.round_half_away_from_zero(2.5).dtype == np.float64


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, width=32), min_size=1, max_size=64))
def test_round_half_away_float32(xs):
    got = fp.round_half_away_from_zero(np.array(xs, np.float32))
    assert got.dtype == np.float32
    assert [float(v) for v in got] == [float(round_half_away(Fraction(x))) for x in xs]


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=64))
def test_round_half_away_float64(xs):
    got = fp.round_half_away_from_zero(np.array(xs, np.float64))
    assert [float(v) for v in got] == [float(round_half_away(Fraction(x))) for x in xs]


@given(st.lists(i32, min_size=1, max_size=64))
def test_clz(xs):
    got = fp.count_leading_zeros32(arr32(xs))
    assert got.tolist() == [32 - (x & 0xFFFFFFFF).bit_length() for x in xs]


def test_clz_table():
    assert fp.count_leading_zeros32(arr32([0, 1, 2, 3, 2**30, I32_MAX, -1, I32_MIN])).tolist() == [
        32,
        31,
        30,
        30,
        1,
        1,
        0,
        0,
    ]
    assert int(fp.count_leading_zeros32(np.uint32(2**32 - 1))) == 0


# ---------------------------------------------------------------------------------------------
# exp_on_negative_values, one_over_one_plus_x_for_x_in_0_1

NON_POSITIVE_EDGES = [0, -1, I32_MIN, -(2**26), -(2**24), -(2**24) - 1]
non_positive = st.one_of(st.integers(I32_MIN, 0), st.sampled_from(NON_POSITIVE_EDGES))


@given(st.lists(non_positive, min_size=1, max_size=32), st.integers(0, 29))
def test_exp_on_negative_values_matches_reference(xs, ib):
    got = fp.exp_on_negative_values(arr32(xs), ib)
    assert got.tolist() == [ref_exp_on_negative_values(x, ib) for x in xs]


@given(st.lists(st.integers(I32_MIN, I32_MAX), min_size=1, max_size=32), st.integers(0, 29))
def test_exp_on_any_int32_matches_reference(xs, ib):
    # Positive inputs are outside the contract, but must still follow the integer recipe bit for bit.
    want = [ref_exp_on_negative_values(x, ib) for x in xs]
    assert fp.exp_on_negative_values(arr32(xs), ib).tolist() == want


@given(st.lists(non_positive, min_size=1, max_size=32), st.integers(0, 29))
def test_exp_on_negative_values_accuracy(xs, ib):
    got = fp.exp_on_negative_values(arr32(xs), ib)
    for x, g in zip(xs, got.tolist()):
        assert abs(g / 2**31 - math.exp(x / 2 ** (31 - ib))) < 2e-6


def test_exp_q5_table():
    # Q5.26 inputs (SOFTMAX): 0 -> INT32_MAX; -1/4 uses only the polynomial; -1, -2 use the barrel shifter.
    a = arr32([0, -(2**24), -(2**26), -(2**27), -(31 * 2**26), I32_MIN])
    got = fp.exp_on_negative_values(a, 5).tolist()
    assert got[0] == I32_MAX
    for g, x in zip(got[1:], [-0.25, -1.0, -2.0, -31.0, -32.0]):
        assert abs(g - math.exp(x) * 2**31) < 1000
    assert got == [ref_exp_on_negative_values(int(v), 5) for v in a]


def test_exp_clamps_below_minus_32_when_integer_bits_above_5():
    assert fp.exp_on_negative_values(arr32([-(33 << 24), -(32 << 24) + 1]), 7).tolist() == [
        0,
        ref_exp_on_negative_values(-(32 << 24) + 1, 7),
    ]


unit_q31 = st.one_of(st.integers(0, I32_MAX), st.sampled_from([0, 1, 2**30, I32_MAX]))


@given(st.lists(unit_q31, min_size=1, max_size=64))
def test_one_over_one_plus_x(xs):
    got = fp.one_over_one_plus_x_for_x_in_0_1(arr32(xs))
    assert got.tolist() == [ref_one_over_one_plus_x(x) for x in xs]
    for x, g in zip(xs, got.tolist()):
        assert abs(g / 2**31 - 1 / (1 + x / 2**31)) < 1e-8


@given(st.lists(st.integers(I32_MIN, I32_MAX), min_size=1, max_size=32))
def test_one_over_one_plus_x_any_int32_matches_reference(xs):
    assert fp.one_over_one_plus_x_for_x_in_0_1(arr32(xs)).tolist() == [ref_one_over_one_plus_x(x) for x in xs]


# ---------------------------------------------------------------------------------------------
# Types, shapes and argument validation


def test_scalar_inputs_give_0d_arrays():
    r = fp.saturating_rounding_doubling_high_mul(3, 2**30)
    assert isinstance(r, np.ndarray) and r.shape == () and r.dtype == np.int32
    r = rq.multiply_by_quantized_multiplier(np.int32(5), 2**30, -1)
    assert isinstance(r, np.ndarray) and r.shape == () and r.dtype == np.int32
    assert fp.rounding_divide_by_pot(np.int16(5), 1).dtype == np.int16
    assert fp.rounding_divide_by_pot(np.array(5, np.int64), 1).dtype == np.int32


def test_int32_values_in_wider_dtypes_are_accepted():
    x = np.array([I32_MIN, -1, I32_MAX], dtype=np.int64)
    want = [ref_mbqm_double(int(v), 2**30, -1) for v in x]
    assert rq.multiply_by_quantized_multiplier(x, 2**30, -1).tolist() == want


def test_wrap_helpers():
    assert fp.wrap_int32(np.array([2**31, -(2**31) - 1, 2**32 + 5])).tolist() == [I32_MIN, I32_MAX, 5]
    assert fp.wrap_int16(np.array([2**15, -(2**15) - 1])).tolist() == [I16_MIN, I16_MAX]


INVALID_CALLS = [
    (ValueError, fp.saturating_rounding_doubling_high_mul, (2**31, 1)),
    (ValueError, fp.saturating_rounding_doubling_high_mul, (np.array([I32_MIN - 1]), 1)),
    (TypeError, fp.saturating_rounding_doubling_high_mul, (np.array([1.5]), 1)),
    (ValueError, fp.saturating_rounding_doubling_high_mul_int16, (2**15, 1)),
    (ValueError, fp.rounding_divide_by_pot, (5, 32)),
    (ValueError, fp.rounding_divide_by_pot, (5, -1)),
    (ValueError, fp.rounding_divide_by_pot, (5, np.array([0, 40]))),
    (ValueError, fp.saturating_rounding_multiply_by_pot, (5, 32)),
    (ValueError, fp.saturating_rounding_multiply_by_pot, (np.int16(5), 16)),
    (ValueError, rq.multiply_by_quantized_multiplier, (5, 2**30, -32)),
    (ValueError, rq.multiply_by_quantized_multiplier, (5, 2**31, 0)),
    (ValueError, rq.multiply_by_quantized_multiplier, (5, 2**30, 31, "single")),
    (ValueError, rq.multiply_by_quantized_multiplier, (5, 2**30, 0, "triple")),
    (ValueError, rq.check_rounding, ("nearest",)),
    (ValueError, rq.multiply_by_quantized_multiplier_smaller_than_one_exp, (5, 2**30, 1)),
    (ValueError, rq.multiply_by_quantized_multiplier_smaller_than_one_exp, (5, 2**30, 0, "both")),
    (ValueError, rq.multiply_by_quantized_multiplier_greater_than_one, (5, 2**30, -1)),
    (ValueError, rq.multiply_by_quantized_multiplier_int64, (5, 2**30, 15)),
    (ValueError, rq.multiply_by_quantized_multiplier_int64, (5, 2**30, -32)),
    (ValueError, fp.exp_on_negative_values, (-5, 30)),
    (ValueError, fp.exp_on_negative_values, (-5, -1)),
    (ValueError, fp.count_leading_zeros32, (2**32,)),
]


@pytest.mark.parametrize(("error", "func", "args"), INVALID_CALLS)
def test_invalid_calls(error, func, args):
    with pytest.raises(error):
        func(*args)


@given(st.integers(I32_MIN, I32_MAX), st.integers(-31, 31))
def test_mbqm_scalar_equals_vector(x, shift):
    m = 1518500250
    assert int(rq.multiply_by_quantized_multiplier(x, m, shift)) == ref_mbqm_double(x, m, shift)
    assume(shift <= 30)
    got = rq.multiply_by_quantized_multiplier(x, m, shift, rounding="single")
    assert int(got) == ref_mbqm_single(x, m, shift)
