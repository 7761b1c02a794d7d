"""Tests of refquant.requantize: every rescaling variant against an arbitrary-precision Python reference.

The ``ref_*`` functions state each variant mathematically with Python ints and ``Fraction`` (a rounding of
an exact rational), not in the shift-and-mask form of the C++ or of the vectorized code, so an error in
either formulation shows up as a disagreement. Edge tables cover powers of two +-1, INT32_MIN/MAX and
exact ties; Hypothesis adds random values (example counts bounded by the test profile).
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refquant import fixedpoint as fp
from refquant import requantize as rq
from refquant.errors import InputError
from refquant.quantization import quantize_multiplier_array

I32_MIN, I32_MAX = -(2**31), 2**31 - 1


# ---------------------------------------------------------------------------------------------
# References


def wrap(v: int, bits: int = 32) -> int:
    m = 1 << bits
    return ((v + (m >> 1)) % m) - (m >> 1)


def round_half_up(f: Fraction) -> int:
    """Nearest integer, ties toward +infinity."""
    return math.floor(f + Fraction(1, 2))


def round_half_away(f: Fraction) -> int:
    """Nearest integer, ties away from zero."""
    r = math.floor(abs(f) + Fraction(1, 2))
    return r if f >= 0 else -r


def ref_srdhm(a: int, b: int) -> int:
    if a == b == I32_MIN:
        return I32_MAX
    return round_half_up(Fraction(a * b, 2**31))


def ref_mbqm_double(x: int, m: int, shift: int) -> int:
    left, right = max(shift, 0), max(-shift, 0)
    return round_half_away(Fraction(ref_srdhm(wrap(x * 2 ** (left % 32)), m), 2**right))


def ref_mbqm_single(x: int, m: int, shift: int) -> int:
    return wrap(round_half_up(Fraction(x * m, 2 ** (31 - shift))))


def ref_reduced(m: int) -> int:
    return (m + 2**15) // 2**16 if m < 0x7FFF0000 else 0x7FFF


def ref_mbqm64(x: int, m: int, shift: int) -> int:
    return wrap(round_half_up(Fraction(x * ref_reduced(m), 2 ** (15 - shift))))


def ref_single_any_shift(x: int, m: int, shift: int) -> int:
    t = 31 - shift
    return wrap(x * m * 2 ** (-t)) if t <= 0 else wrap(round_half_up(Fraction(x * m, 2**t)))


def ref_requantize_float64(acc: int, scale: float) -> int:
    v = float(acc) * scale  # one IEEE double multiply, as in C
    if math.isnan(v) or math.isinf(v):
        return I32_MIN
    r = round_half_away(Fraction(v))
    return r if I32_MIN <= r <= I32_MAX else I32_MIN


# ---------------------------------------------------------------------------------------------
# Edge tables

POWERS = sorted({s * v for k in range(32) for v in (2**k - 1, 2**k, 2**k + 1) for s in (1, -1)})
X_EDGES = [v for v in POWERS if I32_MIN <= v <= I32_MAX] + [I32_MIN, I32_MAX, I32_MIN + 1, 0]
M_EDGES = [2**30, 2**30 + 1, 3 * 2**29, I32_MAX, 0x7FFF0000, 0x7FFEFFFF, 0x7FFF8000, 1, 0]
M_EDGES_SIGNED = M_EDGES + [-(2**30), I32_MIN, -I32_MAX]
SHIFTS_DOUBLE = [-31, -30, -17, -2, -1, 0, 1, 2, 17, 30, 31, 32, 33]
SHIFTS_SINGLE = [-31, -30, -17, -2, -1, 0, 1, 2, 17, 30]
SHIFTS_64 = [-31, -20, -15, -1, 0, 1, 7, 14]


def arr(values: list[int]) -> np.ndarray:
    return np.array(values, dtype=np.int64)


@pytest.mark.parametrize("shift", SHIFTS_DOUBLE)
@pytest.mark.parametrize("m", M_EDGES_SIGNED)
def test_mbqm_double_edges(m, shift):
    want = [ref_mbqm_double(x, m, shift) for x in X_EDGES]
    assert rq.mbqm_double_rounding(arr(X_EDGES), m, shift).tolist() == want
    assert rq.mbqm_double_rounding_reference(arr(X_EDGES), m, shift).tolist() == want
    assert rq.multiply_by_quantized_multiplier(arr(X_EDGES), m, shift, "double").tolist() == want


@pytest.mark.parametrize("shift", SHIFTS_SINGLE)
@pytest.mark.parametrize("m", M_EDGES_SIGNED)
def test_mbqm_single_edges(m, shift):
    want = [ref_mbqm_single(x, m, shift) for x in X_EDGES]
    assert rq.mbqm_single_rounding(arr(X_EDGES), m, shift).tolist() == want
    assert rq.multiply_by_quantized_multiplier(arr(X_EDGES), m, shift, "single").tolist() == want
    assert rq.mbqm_single_rounding_any_shift(arr(X_EDGES), m, shift).tolist() == want


@pytest.mark.parametrize("shift", SHIFTS_64)
@pytest.mark.parametrize("m", M_EDGES)
def test_mbqm64_edges(m, shift):
    xs = X_EDGES + [2**47 - 1, -(2**47) + 1, 2**40 + 2**24, -(2**33) - 1]
    want = [ref_mbqm64(x, m, shift) for x in xs]
    assert rq.multiply_by_quantized_multiplier_int64(arr(xs), m, shift).tolist() == want
    assert [rq.mbqm64_steps(x, m, shift)[0] for x in xs] == want


@pytest.mark.parametrize(
    ("x", "m", "shift", "double", "single"),
    [
        # M = 2^30, shift -1: x * 1/4. Ties at x = 2 (mod 4): double rounds SRDHM's x/2 then the /2 away
        # from zero; single rounds once, ties up.
        (1, 2**30, -1, 1, 0),
        (2, 2**30, -1, 1, 1),
        (-2, 2**30, -1, -1, 0),
        (-6, 2**30, -1, -2, -1),
        (6, 2**30, -1, 2, 2),
        # M = 2^30, shift 0: x / 2, a tie for every odd x.
        (3, 2**30, 0, 2, 2),
        (-3, 2**30, 0, -1, -1),
        (I32_MIN, I32_MIN, 0, I32_MAX, I32_MIN),  # SRDHM saturates; single wraps 2^31 to INT32_MIN
        (I32_MIN, I32_MIN, -1, 2**30, 2**30),
    ],
)
def test_mbqm_tie_table(x, m, shift, double, single):
    assert int(rq.multiply_by_quantized_multiplier(x, m, shift, "double")) == double == ref_mbqm_double(x, m, shift)
    assert int(rq.multiply_by_quantized_multiplier(x, m, shift, "single")) == single == ref_mbqm_single(x, m, shift)


@pytest.mark.parametrize("shift", [-31, -5, -1, 0])
@pytest.mark.parametrize("m", M_EDGES_SIGNED)
def test_smaller_than_one_exp_edges(m, shift):
    want = [ref_mbqm_double(x, m, shift) for x in X_EDGES]
    got = rq.multiply_by_quantized_multiplier_smaller_than_one_exp(arr(X_EDGES), m, shift)
    assert got.tolist() == want
    single = rq.multiply_by_quantized_multiplier_smaller_than_one_exp(arr(X_EDGES), m, shift, "single")
    assert single.tolist() == [ref_mbqm_single(x, m, shift) for x in X_EDGES]


@pytest.mark.parametrize("shift", [0, 1, 5, 30, 31])
@pytest.mark.parametrize("m", M_EDGES_SIGNED)
def test_greater_than_one_edges(m, shift):
    want = [ref_mbqm_double(x, m, shift) for x in X_EDGES]
    assert rq.multiply_by_quantized_multiplier_greater_than_one(arr(X_EDGES), m, shift).tolist() == want


def test_shift_ranges_are_enforced():
    with pytest.raises(ValueError):
        rq.multiply_by_quantized_multiplier_smaller_than_one_exp(1, 2**30, 1)
    with pytest.raises(ValueError):
        rq.multiply_by_quantized_multiplier_greater_than_one(1, 2**30, -1)
    with pytest.raises(ValueError):
        rq.mbqm_single_rounding(1, 2**30, 31)
    with pytest.raises(ValueError):
        rq.multiply_by_quantized_multiplier_int64(1, 2**30, 15)
    with pytest.raises(ValueError):
        rq.mbqm_steps(1, 2**30, 31, "single")
    with pytest.raises(ValueError):
        rq.mbqm_per_tensor_inplace(arr([1]), 2**30, 1, "double")


def test_check_rounding_is_the_one_validation():
    assert rq.ROUNDINGS == ("double", "single")
    for r in rq.ROUNDINGS:
        assert rq.check_rounding(r) == r
    for bad in ("nearest", "Double", None, 1):
        with pytest.raises(ValueError, match="rounding must be one of"):
            rq.check_rounding(bad)
    with pytest.raises(ValueError, match="rounding must be one of"):
        rq.multiply_by_quantized_multiplier(1, 2**30, 0, "triple")
    with pytest.raises(InputError, match=r"rounding must be one of \['double', 'single'\], got 'x'"):
        rq.check_rounding("x", InputError)


def test_each_variant_has_one_home():
    """The MBQM variants and the folded form live in refquant.requantize only: no alias elsewhere."""
    from refquant.ops import fastpath, fully_connected

    for name in (
        "multiply_by_quantized_multiplier",
        "multiply_by_quantized_multiplier_smaller_than_one_exp",
        "multiply_by_quantized_multiplier_greater_than_one",
        "multiply_by_quantized_multiplier_int64",
    ):
        assert hasattr(rq, name) and not hasattr(fp, name)
    for name in ("FoldedRequant", "prepare_folded_requant", "requant_tail", "mbqm_scalar_inplace"):
        assert not hasattr(fastpath, name)
    assert "FLOAT_SUM_STEPS" not in fully_connected.__all__


# ---------------------------------------------------------------------------------------------
# Random values

i32 = st.integers(I32_MIN, I32_MAX)
x_lists = st.lists(st.one_of(i32, st.sampled_from(X_EDGES)), min_size=1, max_size=40)
mults = st.one_of(i32, st.integers(2**30, I32_MAX), st.sampled_from(M_EDGES_SIGNED))


@settings(max_examples=200)
@given(x_lists, mults, st.integers(-31, 40), st.sampled_from(rq.ROUNDINGS))
def test_mbqm_random(xs, m, shift, rounding):
    if rounding == "single":
        shift = min(shift, 30)
        ref = ref_mbqm_single
    else:
        ref = ref_mbqm_double
    want = [ref(x, m, shift) for x in xs]
    assert rq.multiply_by_quantized_multiplier(arr(xs), m, shift, rounding).tolist() == want
    assert [rq.mbqm_steps(x, m, shift, rounding)[0] for x in xs] == want


@settings(max_examples=100)
@given(st.lists(st.tuples(i32, mults, st.integers(-31, 31)), min_size=1, max_size=40))
def test_mbqm_double_per_element_parameters(triples):
    xs, ms, ss = (list(t) for t in zip(*triples))
    want = [ref_mbqm_double(x, m, s) for x, m, s in triples]
    assert rq.mbqm_double_rounding(arr(xs), arr(ms), arr(ss)).tolist() == want
    assert rq.mbqm_double_rounding_reference(arr(xs), arr(ms), arr(ss)).tolist() == want


@settings(max_examples=100)
@given(
    st.lists(st.integers(-(2**47) + 1, 2**47 - 1), min_size=1, max_size=40),
    st.integers(0, I32_MAX),
    st.integers(-31, 7),
)
def test_mbqm64_random(xs, m, shift):
    want = [ref_mbqm64(x, m, shift) for x in xs]
    assert rq.multiply_by_quantized_multiplier_int64(arr(xs), m, shift).tolist() == want
    assert [rq.mbqm64_steps(x, m, shift)[0] for x in xs] == want


@settings(max_examples=100)
@given(x_lists, st.integers(0, I32_MAX), st.integers(-40, 80))
def test_single_rounding_any_shift_random(xs, m, shift):
    assert rq.mbqm_single_rounding_any_shift(arr(xs), m, shift).tolist() == [
        ref_single_any_shift(x, m, shift) for x in xs
    ]


@settings(max_examples=100)
@given(x_lists, st.integers(0, I32_MAX), st.integers(-31, 0), st.sampled_from(rq.ROUNDINGS))
def test_per_tensor_inplace_equals_mbqm(xs, m, shift, rounding):
    p = arr(xs)
    out = rq.mbqm_per_tensor_inplace(p, m, shift, rounding)
    assert out is p
    assert p.tolist() == rq.multiply_by_quantized_multiplier(arr(xs), m, shift, rounding).tolist()


@settings(max_examples=100)
@given(
    st.lists(st.one_of(st.integers(-(2**40), 2**40), st.sampled_from(X_EDGES)), min_size=1, max_size=40),
    st.one_of(
        st.floats(1e-9, 4.0),
        st.sampled_from([0.5, 0.25, 2.0**-20, 1.5, 2.0**-31, 1e-300, 2.0**31]),
    ),
)
def test_requantize_float64_random(accs, scale):
    want = [ref_requantize_float64(a, scale) for a in accs]
    assert rq.requantize_float64(arr(accs), np.float64(scale)).tolist() == want


def test_requantize_float64_ties_and_range():
    accs = arr([1, 3, -1, -3, 2**31, -(2**31), 2**32])
    assert rq.requantize_float64(accs, np.float64(0.5)).tolist() == [1, 2, -1, -2, 2**30, -(2**30), I32_MIN]
    assert rq.requantize_float64(arr([1]), np.float64(np.nan)).tolist() == [I32_MIN]


@settings(max_examples=100)
@given(st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=40), st.sampled_from(rq.ROUNDINGS))
def test_resize_bilinear_rounding_shift(vs, rounding):
    rnd = round_half_up if rounding == "single" else round_half_away
    want = [rnd(Fraction(v, 2**20)) for v in vs]
    assert rq.resize_bilinear_rounding_shift(arr(vs), 20, rounding).tolist() == want
    ties = arr([2**19, -(2**19), 3 * 2**19, -3 * 2**19, 0])
    want_ties = [rnd(Fraction(int(v), 2**20)) for v in ties]
    assert rq.resize_bilinear_rounding_shift(ties, 20, rounding).tolist() == want_ties


def test_requantize_concatenation_uint8():
    r, bias = np.float32(0.75), np.float32(-3.0)
    q = np.arange(256, dtype=np.uint8)
    want = []
    for v in range(256):
        t = np.float32(np.float32(np.float32(v) * r) + bias)  # float32 product, then add
        i = round_half_away(Fraction(float(t)))
        want.append(min(max(i + 10, 0), 255))
    assert rq.requantize_concatenation_uint8(q, r, bias, 10).tolist() == want


# ---------------------------------------------------------------------------------------------
# Steps beside the vectorized versions


@pytest.mark.parametrize("rounding", ["double", "single"])
def test_mbqm_steps_agree_on_edges(rounding):
    shifts = SHIFTS_DOUBLE if rounding == "double" else SHIFTS_SINGLE
    for m in M_EDGES_SIGNED:
        for shift in shifts:
            vec = rq.multiply_by_quantized_multiplier(arr(X_EDGES), m, shift, rounding).tolist()
            assert [rq.mbqm_steps(x, m, shift, rounding)[0] for x in X_EDGES] == vec


def test_mbqm_steps_name_each_rounding():
    res, steps = rq.mbqm_steps(-6, 2**30, -1, "double")
    assert res == -2 and [s[0] for s in steps] == ["SRDHM", "RDBPOT"] and steps[-1][1] == res
    res, steps = rq.mbqm_steps(5, 2**30, 2, "double")
    assert [s[0] for s in steps] == ["left shift", "SRDHM", "RDBPOT"] and steps[0][1] == 20
    res, steps = rq.mbqm_steps(-6, 2**30, -1, "single")
    assert res == -1 and [s[0] for s in steps] == ["scaled"] and "single rounding" in steps[0][2]
    res, steps = rq.mbqm64_steps(1000, 2**30, -1)
    assert [s[0] for s in steps] == ["reduced multiplier", "scaled"] and steps[0][1] == 2**14
    assert res == steps[-1][1] == ref_mbqm64(1000, 2**30, -1)


# ---------------------------------------------------------------------------------------------
# The folded per-channel form (the conv family's fast path)


def folded_case(kind: str, seed: int, act: tuple[int, int]):
    """A random per-channel layer: (FoldedRequant, exact bias-free sums, literal(acc, cs), expected output)."""
    rng = np.random.default_rng(seed)
    o, k, n = 6, 20, 50
    in_dt = np.int16 if kind == "mbqm64" else np.int8
    info = np.iinfo(in_dt)
    w = rng.integers(-127, 128, (o, k)).astype(np.int8)
    x = rng.integers(info.min, int(info.max) + 1, (n, k)).astype(in_dt)
    bias = rng.integers(-(2**12), 2**12, o).astype(np.int64)
    input_offset = 0 if kind == "mbqm64" else int(rng.integers(-128, 128))
    output_offset = 0 if kind == "mbqm64" else int(rng.integers(-128, 128))
    real = rng.uniform(2**-10, 2**-4, o)  # small enough multipliers make prepare decline (2^53 bound)
    m, sh = quantize_multiplier_array(real, "single" if kind == "single" else "double")
    out_dtype = "int16" if kind == "mbqm64" else "int8"
    lo, hi = (max(act[0] * 256, -32768), min(act[1] * 256, 32767)) if kind == "mbqm64" else act
    fr = rq.prepare_folded_requant(
        multiplier=m,
        shift=sh,
        kind=kind,
        weights=w,
        bias=bias,
        input_offset=input_offset,
        filter_offset=0,
        x_max_abs=int(max(-int(info.min), int(info.max))) + abs(input_offset),
        output_offset=output_offset,
        act_min=lo,
        act_max=hi,
        out_dtype=out_dtype,
    )
    assert fr is not None

    def literal(acc: np.ndarray, cs: slice = slice(None)) -> np.ndarray:
        if kind == "mbqm64":
            scaled = rq.multiply_by_quantized_multiplier_int64(acc, m[cs], sh[cs])
        else:
            scaled = rq.multiply_by_quantized_multiplier(fp.wrap_int32(acc), m[cs], sh[cs], kind)
        return np.clip(fp.wrap_int32_i64(scaled.astype(np.int64) + output_offset), lo, hi).astype(out_dtype)

    acc = (x.astype(np.int64) + input_offset) @ w.astype(np.int64).T + bias
    sums = x.astype(np.float64) @ w.astype(np.float64).T  # exact: far below 2^53
    return fr, sums, literal, literal(acc)


KINDS = st.sampled_from(["double", "single", "mbqm64"])
ACTS = st.sampled_from([(-128, 127), (0, 127), (-20, 60)])


@settings(max_examples=30, deadline=None)
@given(KINDS, st.integers(0, 2**32 - 1), ACTS)
def test_folded_requant_equals_literal(kind, seed, act):
    fr, sums, _, expected = folded_case(kind, seed, act)
    out = np.empty(expected.shape, expected.dtype)
    if fr.mode == "folded":
        t = sums * fr.scale + fr.const
    else:
        t = (sums + fr.folded_bias) * fr.scale + fr.rounding_const
    rq.requant_tail(t, out, fr)
    np.testing.assert_array_equal(out, expected)


@settings(max_examples=20, deadline=None)
@given(KINDS, st.integers(0, 2**32 - 1), ACTS)
def test_requant_block_and_sums_equal_literal(kind, seed, act):
    """Both modes of requant_block / requant_sums, on every channel and on a channel block, and the checked
    mode's fallback to the caller's literal requantization when a block exceeds the proven limit."""
    fr, sums, literal, expected = folded_case(kind, seed, act)
    calls = []

    def counted(acc: np.ndarray, cs: slice) -> np.ndarray:
        calls.append(cs)
        return literal(acc, cs)

    modes = {fr.mode, "checked"}  # "folded" only where prepare proved it exact
    sum_dtype = np.float32 if fr.sums_fit_f32 else np.float64  # as the kernels choose
    for cs in (slice(None), slice(2, 5)):
        for mode in modes:
            out = np.empty(expected[:, cs].shape, expected.dtype)
            rq.requant_sums(sums[:, cs].astype(sum_dtype), out, fr, mode, counted, cs)
            np.testing.assert_array_equal(out, expected[:, cs])
            t = sums[:, cs] * fr.scale[cs] + fr.const[cs] if mode == "folded" else sums[:, cs] + fr.folded_bias[cs]
            out = np.empty_like(out)
            rq.requant_block(t, out, fr, mode, counted, cs)
            np.testing.assert_array_equal(out, expected[:, cs])
    assert calls == []  # the limit holds for these small layers
    unproven = dataclasses.replace(fr, checked_limit=-1.0)
    out = np.empty_like(expected[:, 1:])
    rq.requant_sums(sums[:, 1:].astype(sum_dtype), out, unproven, "checked", counted, slice(1, None))
    np.testing.assert_array_equal(out, expected[:, 1:])
    assert calls == [slice(1, None)]


# ---------------------------------------------------------------------------------------------
# The wrap helpers and Python-int primitives of fixedpoint used by the variants


@given(st.lists(st.integers(-(2**62), 2**62), min_size=1, max_size=30))
def test_wrap_helpers(vs):
    assert fp.wrap_int32_i64(arr(vs)).tolist() == [wrap(v, 32) for v in vs]
    assert fp.wrap_int16_i64(arr(vs)).tolist() == [wrap(v, 16) for v in vs]
    assert fp.wrap_int32(arr(vs)).tolist() == [wrap(v, 32) for v in vs]
    assert fp.wrap_int16(arr(vs)).tolist() == [wrap(v, 16) for v in vs]
    assert [fp.wrap_int(v * 2**70 + v, 64) for v in vs] == [wrap(v * 2**70 + v, 64) for v in vs]


@given(i32, i32, st.integers(0, 31))
def test_python_int_primitives(a, b, e):
    assert fp.saturating_rounding_doubling_high_mul_py(a, b) == ref_srdhm(a, b)
    assert fp.saturating_rounding_doubling_high_mul_py(a, b) == int(fp.saturating_rounding_doubling_high_mul(a, b))
    assert fp.rounding_divide_by_pot_py(a, e) == round_half_away(Fraction(a, 2**e))
    assert int(fp.rounding_divide_by_pot_x86(a, e)) == int(fp.rounding_divide_by_pot(a, e))
