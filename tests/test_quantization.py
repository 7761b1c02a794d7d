"""Tests of refquant.quantization against literal pure-Python definitions (docs/litert_semantics.md §1.1, §2.2, §3.15)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from refquant import quantization as qz
from refquant.errors import QuantParamError, RefquantError

I32_MIN, I32_MAX = -(2**31), 2**31 - 1
FLT_MAX = float(np.finfo(np.float32).max)


# ---------------------------------------------------------------------------------------------
# Literal references


def round_half_away(f: Fraction) -> int:
    r = math.floor(abs(f) + Fraction(1, 2))
    return r if f >= 0 else -r


def ref_quantize_multiplier(d: float, single: bool = False) -> tuple[int, int]:
    """QuantizeMultiplier with exact rationals: d = q * 2^e, |q| in [1/2, 1), M = round_away(q * 2^31)."""
    if d == 0:
        return 0, 0
    f = Fraction(d)
    e = 0
    while abs(f) >= 1:
        f /= 2
        e += 1
    while abs(f) < Fraction(1, 2):
        f *= 2
        e -= 1
    m = round_half_away(f * 2**31)
    assert m <= 2**31
    if m == 2**31:
        m, e = 2**30, e + 1
    if e < -31:
        return 0, 0
    if single and e > 30:
        return I32_MAX, 30
    return m, e


def f32(v: float) -> float:
    with np.errstate(over="ignore"):
        return float(np.float32(v))


def f32_div(a: float, b: float) -> float:
    # The float64 quotient of two float32 values rounds to the correctly rounded float32 quotient.
    return f32(a / b) if b != 0 else math.nan


def ref_quantize(x: float, scale: float, zp: int, lo: int, hi: int) -> int:
    s = f32(scale)
    t = f32_div(f32(x), s) if math.isfinite(f32(x)) else math.nan
    if math.isfinite(t):
        r = round_half_away(Fraction(t))
        q = r if -(2**31) <= r < 2**31 else I32_MIN
    else:
        q = I32_MIN
    q = ((q + zp + 2**31) % 2**32) - 2**31
    return min(max(q, lo), hi)


# ---------------------------------------------------------------------------------------------
# quantize_multiplier


@pytest.mark.parametrize(
    ("d", "expected"),
    [
        (0.0, (0, 0)),
        (-0.0, (0, 0)),
        (1.0, (2**30, 1)),
        (0.5, (2**30, 0)),
        (0.25, (2**30, -1)),
        (-0.5, (-(2**30), 0)),
        (0.75, (3 * 2**29, 0)),
        (2.0**-31, (2**30, -30)),
        (2.0**-32, (2**30, -31)),
        (2.0**-33, (0, 0)),  # shift -32: flushed
        (1 - 2.0**-53, (2**30, 1)),  # q * 2^31 rounds to 2^31
        (-(1 - 2.0**-53), (I32_MIN, 0)),  # negative side keeps M = -2^31
        (1e6, (2048000000, 20)),
        (2.0**40, (2**30, 41)),
        (5e-324, (0, 0)),
        (0.1, (1717986918, -3)),
        (0.5 + 2.0**-32, (2**30 + 1, 0)),  # q * 2^31 = 2^30 + 0.5: a tie, rounded away (not to even)
        (-(0.5 + 2.0**-32), (-(2**30) - 1, 0)),
        (0.75 + 2.0**-32, (3 * 2**29 + 1, 0)),  # 3 * 2^29 + 0.5 -> + 1
    ],
)
def test_quantize_multiplier_table(d, expected):
    assert qz.quantize_multiplier(d) == expected
    m, s = qz.quantize_multiplier_array(np.array([d]))
    assert (int(m[0]), int(s[0])) == expected


@pytest.mark.parametrize(
    ("d", "expected"),
    [(2.0**40, (I32_MAX, 30)), (2.0**30, (I32_MAX, 30)), (2.0**29, (2**30, 30)), (0.25, (2**30, -1))],
)
def test_quantize_multiplier_single_saturates(d, expected):
    assert qz.quantize_multiplier(d, rounding="single") == expected
    m, s = qz.quantize_multiplier_array([d], rounding="single")
    assert (int(m[0]), int(s[0])) == expected


@pytest.mark.parametrize("d", [0.1, 0.3, 0.000123, 0.9999, 1.7, 3.0, 12345.678, 2.0**-20 * 1.2345])
def test_quantize_multiplier_vs_math_frexp(d):
    # Independent computation: frexp, then round half away with Python's exact Decimal-free integer math.
    q, e = math.frexp(d)
    v = q * 2**31  # exact
    m = int(math.floor(v + 0.5)) if v - math.floor(v) != 0.5 else int(math.floor(v)) + 1
    if m == 2**31:
        m, e = 2**30, e + 1
    assert qz.quantize_multiplier(d) == (m, e)
    assert abs(m * 2.0 ** (e - 31) - d) <= 2.0 ** (e - 32)


finite_doubles = st.floats(allow_nan=False, allow_infinity=False)
interesting_doubles = st.one_of(
    finite_doubles,
    st.floats(min_value=2.0**-40, max_value=2.0**40),
    st.builds(lambda k, sign: sign * (1 - 2.0**-k), st.integers(20, 53), st.sampled_from([1.0, -1.0])),
    st.builds(lambda f: float(np.float32(f)), st.floats(1e-8, 1e3)),
    # Exact ties of q * 2^31: (k + 1/2) * 2^-31 * 2^e
    st.builds(lambda k, e: math.ldexp(k + 0.5, e - 31), st.integers(2**30, 2**31 - 1), st.integers(-40, 40)),
)


@given(interesting_doubles)
def test_quantize_multiplier_matches_reference(d):
    assert qz.quantize_multiplier(d) == ref_quantize_multiplier(d)
    assert qz.quantize_multiplier(d, rounding="single") == ref_quantize_multiplier(d, single=True)


@given(st.lists(interesting_doubles, min_size=1, max_size=32), st.sampled_from(["double", "single"]))
def test_quantize_multiplier_array_matches_scalar(ds, rounding):
    m, s = qz.quantize_multiplier_array(np.array(ds), rounding=rounding)
    assert m.dtype == np.int32 and s.dtype == np.int32
    assert list(zip(m.tolist(), s.tolist())) == [qz.quantize_multiplier(d, rounding) for d in ds]


@given(st.floats(min_value=2.0**-31, max_value=2.0**30))
def test_quantize_multiplier_properties(d):
    m, s = qz.quantize_multiplier(d)
    assert 2**30 <= m < 2**31
    assert abs(Fraction(m) * Fraction(2) ** (s - 31) - Fraction(d)) <= Fraction(2) ** (s - 32)


def test_quantize_multiplier_per_channel_shape():
    d = np.array([[0.5, 0.25], [1e-12, 3.0]])
    m, s = qz.quantize_multiplier_array(d)
    assert m.shape == (2, 2) and s.shape == (2, 2)
    assert m.tolist() == [[2**30, 2**30], [0, 3 * 2**29]] and s.tolist() == [[0, -1], [0, 2]]


@pytest.mark.parametrize("d", [math.inf, -math.inf, math.nan])
def test_quantize_multiplier_non_finite(d):
    with pytest.raises(QuantParamError, match="not finite"):
        qz.quantize_multiplier(d)
    with pytest.raises(QuantParamError, match=r"index \(1,\)"):
        qz.quantize_multiplier_array(np.array([0.5, d]))


def test_quantize_multiplier_rejects_arrays_and_bad_rounding():
    with pytest.raises(TypeError):
        qz.quantize_multiplier(np.array([0.5, 0.25]))
    with pytest.raises(ValueError):
        qz.quantize_multiplier(0.5, rounding="half_even")
    with pytest.raises(ValueError):
        qz.quantize_multiplier_array([0.5], rounding="x")


@pytest.mark.parametrize("d", [0.0, 1.0, 1.5, -0.5, math.nan, math.inf, 1 - 2.0**-40])
def test_smaller_than_one_exp_errors(d):
    with pytest.raises(QuantParamError) as info:
        qz.quantize_multiplier_smaller_than_one_exp(d)
    assert repr(d) in str(info.value) or str(d) in str(info.value)
    assert isinstance(info.value, RefquantError)


@given(st.floats(min_value=2.0**-60, max_value=1 - 2.0**-30))
def test_smaller_than_one_exp_valid(d):
    m, s = qz.quantize_multiplier_smaller_than_one_exp(d)
    assert s <= 0
    assert (m, s) == ref_quantize_multiplier(d)


@pytest.mark.parametrize("d", [1.0, 0.5, 0.0, -3.0, math.nan, math.inf])
def test_greater_than_one_errors(d):
    with pytest.raises(QuantParamError, match="greater than 1|not finite"):
        qz.quantize_multiplier_greater_than_one(d)


@given(st.floats(min_value=1 + 2.0**-52, max_value=1e300))
def test_greater_than_one_valid(d):
    m, s = qz.quantize_multiplier_greater_than_one(d)
    assert s >= 1 and (m, s) == ref_quantize_multiplier(d)


# ---------------------------------------------------------------------------------------------
# Activation ranges


@pytest.mark.parametrize(
    ("activation", "scale", "zp", "dtype", "expected"),
    [
        ("NONE", 0.1, 3, np.int8, (-128, 127)),
        ("TANH", 0.1, 3, np.int16, (-32768, 32767)),
        ("SIGN_BIT", 0.1, 3, np.uint8, (0, 255)),
        ("NONE", 0.0, 0, np.int8, (-128, 127)),  # no Quantize() call, so no error for a zero scale
        ("RELU", 0.1, -128, np.int8, (-128, 127)),
        ("RELU", 0.1, 5, np.int8, (5, 127)),
        ("RELU6", 6 / 255, -128, np.int8, (-128, 127)),
        ("RELU6", 0.05, -10, np.int8, (-10, 110)),
        ("RELU6", 12.0, 3, np.int8, (3, 4)),  # 6/12 = 0.5 -> 1 (ties away, not to even)
        ("RELU_N1_TO_1", 2.0, 0, np.int8, (-1, 1)),  # -0.5 -> -1 and 0.5 -> 1
        ("RELU_N1_TO_1", 1 / 128, 0, np.int8, (-128, 127)),
        ("RELU_N1_TO_1", 1 / 64, 10, np.uint8, (0, 74)),
        ("RELU6", 1e-6, 0, np.int16, (0, 32767)),
        ("RELU6", 0.1, 300, np.uint8, (300, 255)),  # lo = max(qmin, Q(0)) is not capped at qmax
    ],
)
def test_activation_range_quantized_table(activation, scale, zp, dtype, expected):
    assert qz.calculate_activation_range_quantized(activation, scale, zp, dtype) == expected


@given(
    st.sampled_from(["RELU", "RELU6", "RELU_N1_TO_1"]),
    st.floats(min_value=2.0**-20, max_value=10.0, width=32),
    st.integers(-128, 127),
)
def test_activation_range_quantized_matches_reference(activation, scale, zp):
    def q(f):
        return zp + round_half_away(Fraction(f32_div(f, scale)))

    lo_f, hi_f = {"RELU": (0.0, None), "RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0)}[activation]
    want = (max(-128, q(lo_f)), 127 if hi_f is None else min(127, q(hi_f)))
    assert qz.calculate_activation_range_quantized(activation, scale, zp, np.int8) == want


def test_activation_range_float_division_not_reciprocal():
    # f32(6) / f32(s) is exactly 10.5 (-> 11) while 6 * f32(1/s) is 10.499999 (-> 10).
    s = f32(6 / 10.5)
    assert f32_div(6.0, s) == 10.5 and f32(6.0 * f32(1 / s)) < 10.5
    assert qz.calculate_activation_range_quantized("RELU6", s, -128, np.int8) == (-128, -128 + 11)


@pytest.mark.parametrize("scale", [0.0, math.nan, 1e-40, -0.0, 1e-9])
def test_activation_range_overflow_is_an_error(scale):
    # Oracle-checked: MUL int8 + RELU/RELU6 with output scale 0 or 1e-9 fails Prepare.
    with pytest.raises(QuantParamError, match="does not fit int32"):
        qz.calculate_activation_range_quantized("RELU6", scale, 0, np.int8)


def test_activation_range_two_pow_31_wraps_like_x86():
    # 6 / (3 * 2^-30) == 2^31 exactly passes LiteRT's check; static_cast<int32_t>(2^31f) is INT32_MIN, and
    # zp + INT32_MIN wraps for zp < 0. Oracle-checked with MUL int8 + RELU6: zp=5 outputs int8(INT32_MIN + 5)
    # = 5 everywhere; zp=-3 clamps to [-3, 127].
    s = 3 * 2.0**-30
    assert qz.calculate_activation_range_quantized("RELU6", s, 5, np.int8) == (5, I32_MIN + 5)
    assert qz.calculate_activation_range_quantized("RELU6", s, -3, np.int8) == (-3, 127)


def test_activation_range_bad_arguments():
    with pytest.raises(ValueError, match="unknown fused activation"):
        qz.calculate_activation_range_quantized("relu", 0.1, 0, np.int8)
    with pytest.raises(ValueError):
        qz.calculate_activation_range_quantized("RELU", 0.1, 0, np.int32)
    with pytest.raises(ValueError):
        qz.calculate_activation_range_float("GELU")


@pytest.mark.parametrize(
    ("activation", "expected"),
    [
        ("NONE", (-FLT_MAX, FLT_MAX)),
        ("TANH", (-FLT_MAX, FLT_MAX)),
        ("SIGN_BIT", (-FLT_MAX, FLT_MAX)),
        ("RELU", (0.0, FLT_MAX)),
        ("RELU6", (0.0, 6.0)),
        ("RELU_N1_TO_1", (-1.0, 1.0)),
    ],
)
def test_activation_range_float(activation, expected):
    lo, hi = qz.calculate_activation_range_float(activation)
    assert isinstance(lo, np.float32) and isinstance(hi, np.float32)
    assert (float(lo), float(hi)) == expected


# ---------------------------------------------------------------------------------------------
# QUANTIZE / DEQUANTIZE


def test_dtype_range():
    assert qz.dtype_range(np.int8) == (-128, 127)
    assert qz.dtype_range("uint8") == (0, 255)
    assert qz.dtype_range(np.int16) == (-32768, 32767)
    assert qz.dtype_range(np.int32) == (I32_MIN, I32_MAX)
    with pytest.raises(ValueError):
        qz.dtype_range(np.float32)


def test_quantize_divides_by_scale():
    # docs/litert_semantics.md §3.15: x/s = 45.5 exactly in float32 (-> 46) while x * (1/s) = 45.499996 (-> 45).
    s = np.float32(0.1091814)
    x = np.float32(45.5) * s
    assert float(x / s) == 45.5 and float(x * (np.float32(1) / s)) < 45.5
    assert int(qz.quantize(x, s, 0, np.int8)) == 46


@pytest.mark.parametrize(
    ("x", "zp", "dtype", "expected"),
    [
        (0.5, 0, np.int8, 1),
        (-0.5, 0, np.int8, -1),
        (2.5, 0, np.int8, 3),
        (-2.5, 0, np.int8, -3),
        (1e10, 0, np.int8, -128),  # int32(roundf) out of range -> INT32_MIN -> qmin
        (3e9, 0, np.int8, -128),
        (math.inf, 0, np.int8, -128),
        (-math.inf, 0, np.int8, -128),
        (math.nan, 0, np.int8, -128),
        (math.nan, 7, np.uint8, 0),
        (math.nan, -128, np.int8, 127),  # INT32_MIN + (-128) wraps to a huge positive: qmax [oracle-checked]
        (1e10, -5, np.int8, 127),
        (2.0**31 - 2**7, 0, np.int16, 32767),  # largest float32 below 2^31 still converts
        (-(2.0**31), 0, np.int16, -32768),
        (127.4, 0, np.int8, 127),
        (-300.0, 0, np.int8, -128),
        (100.0, 200, np.uint8, 255),
    ],
)
def test_quantize_table(x, zp, dtype, expected):
    got = qz.quantize(np.array([x], np.float32), 1.0, zp, dtype)
    assert got.dtype == np.dtype(dtype) and got.tolist() == [expected]


finite32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
any32 = st.floats(width=32)
scales32 = st.floats(min_value=2.0**-26, max_value=1024.0, width=32)


@given(
    st.lists(st.one_of(any32, st.floats(-300, 300, width=32)), min_size=1, max_size=64),
    scales32,
    st.integers(-128, 127),
)
def test_quantize_int8_matches_reference(xs, scale, zp):
    got = qz.quantize(np.array(xs, np.float32), scale, zp, np.int8)
    assert got.tolist() == [ref_quantize(x, scale, zp, -128, 127) for x in xs]


@given(st.lists(st.integers(-400, 400), min_size=1, max_size=64), scales32, st.integers(-200, 200))
def test_quantize_ties(ks, scale, zp):
    # x = (k + 1/2) * s is often an exact float32 tie after division; the rule must be ties-away.
    xs = [f32((k + 0.5) * f32(scale)) for k in ks]
    got = qz.quantize(np.array(xs, np.float32), scale, zp, np.int16)
    assert got.tolist() == [ref_quantize(x, scale, zp, -32768, 32767) for x in xs]


@given(st.lists(finite32, min_size=1, max_size=32), scales32, st.integers(0, 255))
def test_quantize_uint8_matches_reference(xs, scale, zp):
    got = qz.quantize(np.array(xs, np.float32), scale, zp, np.uint8)
    assert got.tolist() == [ref_quantize(x, scale, zp, 0, 255) for x in xs]


def test_quantize_per_channel():
    x = np.array([[0.5, 1.0, -2.0], [3.0, -0.25, 7.0]], np.float32)
    scales = np.array([0.5, 1.0], np.float32)
    zps = np.array([1, -2])
    got = qz.quantize(x, scales, zps, np.int8, axis=0)
    want = [[ref_quantize(v, scales[i], zps[i], -128, 127) for v in row] for i, row in enumerate(x.tolist())]
    assert got.tolist() == want
    scales3 = np.array([0.5, 0.25, 2.0], np.float32)
    got = qz.quantize(x, scales3, 3, np.int8, axis=-1)  # one zero point is broadcast, as in LiteRT
    want = [[ref_quantize(v, scales3[j], 3, -128, 127) for j, v in enumerate(row)] for row in x.tolist()]
    assert got.tolist() == want


def test_quantize_parameter_errors():
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(QuantParamError, match="needs 3 scales"):
        qz.quantize(x, [0.1, 0.2], 0, np.int8, axis=1)
    with pytest.raises(QuantParamError, match="per-tensor"):
        qz.quantize(x, [0.1, 0.2], 0, np.int8)
    with pytest.raises(QuantParamError, match="zero point must be integer"):
        qz.quantize(x, 0.1, 0.5, np.int8)
    with pytest.raises(ValueError):
        qz.quantize(x, 0.1, 0, np.int8, axis=2)
    with pytest.raises(ValueError):
        qz.quantize(x, 0.1, 0, np.float32)


@given(st.lists(st.integers(-128, 127), min_size=1, max_size=64), scales32, st.integers(-128, 127))
def test_dequantize_matches_reference(qs, scale, zp):
    got = qz.dequantize(np.array(qs, np.int8), scale, zp)
    assert got.dtype == np.float32
    assert got.tolist() == [f32(Fraction(f32(scale)) * (q - zp)) for q in qs]


@given(st.lists(st.integers(-32768, 32767), min_size=4, max_size=4), st.tuples(scales32, scales32))
def test_dequantize_per_channel_equals_per_tensor_slices(qs, scales):
    q = np.array(qs, np.int16).reshape(2, 2)
    zps = [3, -7]
    got = qz.dequantize(q, scales, zps, axis=1)
    for c in range(2):
        np.testing.assert_array_equal(got[:, c], qz.dequantize(q[:, c], scales[c], zps[c]))


def test_dequantize_float32_scale_and_type_errors():
    # The scale is stored as float32 in a .tflite: 0.1 means f32(0.1).
    assert float(qz.dequantize(np.int8(10), 0.1, 0)) == f32(Fraction(f32(0.1)) * 10)
    with pytest.raises(TypeError):
        qz.dequantize(np.array([0.5]), 0.1, 0)


@given(st.lists(st.integers(-128, 127), min_size=1, max_size=32), scales32, st.integers(-128, 127))
def test_quantize_dequantize_round_trip(qs, scale, zp):
    q = np.array(qs, np.int8)
    x = qz.dequantize(q, scale, zp)
    assume(np.all(np.isfinite(x)))
    np.testing.assert_array_equal(qz.quantize(x, scale, zp, np.int8), np.clip(q, -128, 127))
