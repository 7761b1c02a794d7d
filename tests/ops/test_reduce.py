"""MEAN, SUM, REDUCE_MAX/MIN/PROD, ARG_MAX/ARG_MIN against LiteRT BUILTIN_REF.

Everything is bit-exact (float32 included: the reductions are sequential float32 operations that
refquant reproduces in order), except SUM on int8/int16, where refquant deliberately computes the
correct sum and LiteRT's reference kernel does not (see ``refquant/ops/reduce.py``). SUM int8 is
checked against LiteRT's own (correct) uint8 SUM of the same real values, SUM int16 against an
independent Python-integer implementation, and LiteRT's int8/int16 SUM against the documented
byte-reinterpretation pattern.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import refquant
from refquant.errors import PrepareError, QuantParamError, UnsupportedOpError
from refquant.ops.reduce import _reduced_shape, resolve_axes
from refquant.requantize import multiply_by_quantized_multiplier_int64
from refquant.testing import const, op_model, tensor
from refquant.tracer import format_trace, trace_element
from tests.opcheck import assert_equal_arrays, check_against_litert, run_refquant

INFO = {
    "int8": np.iinfo(np.int8),
    "uint8": np.iinfo(np.uint8),
    "int16": np.iinfo(np.int16),
    "int32": np.iinfo(np.int32),
    "int64": np.iinfo(np.int64),
}
SPECIALS = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 3.4028235e38, -3.4028235e38], np.float32)


def _model(
    op,
    shape,
    dtype,
    axes,
    *,
    keep=False,
    s_in=0.05,
    zp_in=0,
    s_out=None,
    zp_out=None,
    quant=None,
    axis_dtype="int32",
    out_dtype=None,
    const_axis=True,
) -> bytes:
    """A one-op reduction model; ``quant`` defaults to True for int8/uint8/int16."""
    quant = dtype in ("int8", "uint8", "int16") if quant is None else quant
    s_out = s_in if s_out is None else s_out
    zp_out = zp_in if zp_out is None else zp_out
    x = tensor(shape, dtype, name="x", **({"scale": s_in, "zero_point": zp_in} if quant else {}))
    axes_arr = np.array(axes, axis_dtype)
    a = const(axes_arr, name="axis") if const_axis else tensor(axes_arr.shape, axis_dtype, name="axis")
    ra = resolve_axes(len(shape), np.array(axes, np.int64))
    out_shape = _reduced_shape(tuple(shape), ra, keep) if not isinstance(ra, str) else (1,)
    y = tensor(out_shape, out_dtype or dtype, name="y", **({"scale": s_out, "zero_point": zp_out} if quant else {}))
    return op_model(op, [x, a], [y], keep_dims=keep)


def _rand(rng, dtype, shape, special=False):
    if dtype == "float32":
        x = np.asarray(rng.standard_normal(shape) * 10 ** rng.uniform(-2, 2), np.float32).reshape(shape)
        if special and x.ndim:
            m = rng.random(shape) < 0.2
            x[m] = rng.choice(SPECIALS, int(m.sum()))
        return x
    if dtype == "bool":
        return np.asarray(rng.integers(0, 2, shape)).astype(bool).reshape(shape)
    info = INFO[dtype]
    lo, hi = (info.min, info.max) if dtype in ("int8", "uint8", "int16") else (-1000, 1000)
    if dtype in ("int32", "int64") and rng.random() < 0.5:
        lo, hi = info.min, info.max  # wrapping sums/products
    return np.asarray(rng.integers(lo, hi, size=shape, endpoint=True)).astype(dtype).reshape(shape)


def _check_float_bits(litert, model, inputs):
    """check_against_litert, plus the sign of zeros (opcheck compares floats with ==): bit-equal non-NaNs."""
    status = check_against_litert(litert, model, inputs)
    if status == "ok":
        want = litert.run(model, inputs).outputs[0]
        sg = run_refquant(model, inputs)
        got = sg.values[sg.model.subgraphs[0].outputs[0]]
        if want.dtype == np.float32:
            keep = ~np.isnan(want)
            assert np.array_equal(want[keep].view(np.uint32), got[keep].view(np.uint32)), "float bits differ"
    return status


@st.composite
def reduce_case(draw, dtype, scaled=True, same_params=False, max_dim=5):
    """Random rank 0..4 shape, axes (negative, duplicated, empty), keep_dims and quant params."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rank = draw(st.integers(0, 4))
    shape = tuple(draw(st.integers(1, max_dim)) for _ in range(rank))
    n_axes = draw(st.integers(0, rank + 1)) if rank else draw(st.integers(0, 1))
    axes = [draw(st.integers(-rank, rank - 1)) if rank else 0 for _ in range(n_axes)]
    keep = draw(st.booleans())
    kw = {}
    if dtype in ("int8", "uint8", "int16"):
        info = INFO[dtype]
        s_in = float(10 ** rng.uniform(-4, -1))
        s_out = s_in if same_params else (s_in * float(10 ** rng.uniform(-1.5, 1.5)) if scaled else s_in)
        zp_in = 0 if dtype == "int16" else int(rng.integers(info.min, info.max, endpoint=True))
        zp_out = (
            zp_in if same_params else (0 if dtype == "int16" else int(rng.integers(info.min, info.max, endpoint=True)))
        )
        kw = {"s_in": s_in, "zp_in": zp_in, "s_out": s_out, "zp_out": zp_out}
    x = _rand(rng, dtype, shape, special=draw(st.booleans()))
    return shape, axes, keep, kw, x


# ---------------------------------------------------------------------------------------------
# MEAN


@pytest.mark.oracle
@settings()
@given(data=st.data())
@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16"])
def test_mean_quantized(litert, dtype, data):
    shape, axes, keep, kw, x = data.draw(reduce_case(dtype))
    check_against_litert(litert, _model("MEAN", shape, dtype, axes, keep=keep, **kw), [x])


@pytest.mark.oracle
@settings()
@given(data=st.data())
@pytest.mark.parametrize("dtype", ["float32", "int32", "int64"])
def test_mean_float_and_raw_int(litert, dtype, data):
    shape, axes, keep, _, x = data.draw(reduce_case(dtype))
    _check_float_bits(litert, _model("MEAN", shape, dtype, axes, keep=keep), [x])


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "float32"])
def test_mean_large_reduction_and_4d_spatial_axes(litert, dtype):
    # The 4-D keep_dims axes {1, 2} case (special-cased only by the optimized kernel) and n = 3600.
    rng = np.random.default_rng(7)
    zp_in, zp_out = {"int16": (0, 0), "uint8": (130, 120)}.get(dtype, (5, -5))
    x = _rand(rng, dtype, (2, 60, 60, 3))
    for axes in ([1, 2], [2, 1], [-3, -2, 1]):
        m = _model("MEAN", (2, 60, 60, 3), dtype, axes, keep=True, s_in=0.02, zp_in=zp_in, s_out=0.013, zp_out=zp_out)
        check_against_litert(litert, m, [x])


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", ["int8", "float32"])
def test_mean_empty_input(litert, dtype):
    # LiteRT fills the output with quiet_NaN<T>(): 0 for integers (not the zero point), NaN for float.
    m = _model("MEAN", (2, 0, 3), dtype, [1], s_in=0.5, zp_in=3, s_out=0.25, zp_out=-7)
    assert check_against_litert(litert, m, [np.zeros((2, 0, 3), dtype)]) == "ok"


# ---------------------------------------------------------------------------------------------
# SUM


def _quantize_multiplier(d):
    """Independent QuantizeMultiplier (frexp; round half away; 2^31 -> 2^30 with shift + 1)."""
    if d == 0:
        return 0, 0
    q, e = math.frexp(d)
    m = int(math.floor(abs(q) * 2**31 + 0.5))  # exact: |q| * 2^31 has at most 53 significant bits
    if m == 2**31:
        m //= 2
        e += 1
    if e < -31:
        return 0, 0
    return m, e


def _wrap32(v):
    return ((v + 2**31) % 2**32) - 2**31


def _mbqm_literal(x, m, shift):
    """RDBPOT(SRDHM(wrap32(x << left), M), right) on Python ints, step by step."""
    left, right = max(shift, 0), max(-shift, 0)
    xs = _wrap32(x * (1 << left))
    p = xs * m
    nudge = (1 << 30) if p >= 0 else 1 - (1 << 30)
    t = p + nudge
    hi = (abs(t) >> 31) * (1 if t >= 0 else -1)  # C '/' truncates toward zero
    mask = (1 << right) - 1
    rem = hi & mask
    thr = (mask >> 1) + (1 if hi < 0 else 0)
    return (hi >> right) + (1 if rem > thr else 0)


def _independent_sum(x, axes, keep, s_in, zp_in, s_out, zp_out, dtype):
    """The correct quantized SUM with Python integers, one output element at a time."""
    m, sh = _quantize_multiplier(float(np.float32(s_in)) / float(np.float32(s_out)))
    rank = x.ndim
    ra = resolve_axes(rank, np.array(axes, np.int64))
    keep_axes = [i for i in range(rank) if i not in ra]
    out = np.zeros(_reduced_shape(x.shape, ra, keep), dtype)
    info = INFO[dtype]
    flat_out = out.reshape(-1)
    n = int(np.prod([x.shape[i] for i in ra], dtype=np.int64)) if ra else 1
    for k, idx in enumerate(np.ndindex(*[x.shape[i] for i in keep_axes])):
        sl = [slice(None)] * rank
        for ax, v in zip(keep_axes, idx):
            sl[ax] = v
        s = int(np.asarray(x[tuple(sl)], np.int64).sum())
        v = _mbqm_literal(_wrap32(s - zp_in * n), m, sh) + zp_out
        flat_out[k] = min(max(v, info.min), info.max)
    return out


@pytest.mark.oracle
@settings()
@given(data=st.data())
def test_sum_uint8_equals_litert(litert, data):
    shape, axes, keep, kw, x = data.draw(reduce_case("uint8"))
    check_against_litert(litert, _model("SUM", shape, "uint8", axes, keep=keep, **kw), [x])


@pytest.mark.oracle
@settings()
@given(data=st.data())
def test_sum_int8_equals_litert_byte_reading(litert, data):
    """int8 SUM == LiteRT BUILTIN_REF (which reads the int8 data as uint8 bytes), and trace shows both values."""
    shape, axes, keep, kw, x = data.draw(reduce_case("int8"))
    model = _model("SUM", shape, "int8", axes, keep=keep, **kw)
    check_against_litert(litert, model, [x])
    tr = run_refquant(model, [x])
    got = tr.values[2]
    want = _litert_ref_sum_bytes(x, axes, keep, kw["s_in"], kw["zp_in"], kw["s_out"], kw["zp_out"]).view(np.int8)
    assert_equal_arrays("int8 SUM vs the byte-reading emulation", want.reshape(got.shape), got)
    correct = _independent_sum(x, axes, keep, kw["s_in"], kw["zp_in"], kw["s_out"], kw["zp_out"], "int8")
    if got.size:
        el = tuple(int(i) for i in np.unravel_index(got.size - 1, got.shape))
        steps = tr.op_data[0].trace([x, np.array(axes, np.int32)], 0, el)
        assert steps[-1].value == got[el] and steps[0].value == correct[el]


@pytest.mark.oracle
@settings()
@given(data=st.data())
def test_sum_int16_is_the_correct_sum(litert, data):
    shape, axes, keep, kw, x = data.draw(reduce_case("int16"))
    model = _model("SUM", shape, "int16", axes, keep=keep, **kw)
    got = run_refquant(model, [x]).values[2]
    want = _independent_sum(x, axes, keep, kw["s_in"], kw["zp_in"], kw["s_out"], kw["zp_out"], "int16")
    assert_equal_arrays("int16 SUM vs independent sum", want, got)
    # LiteRT's optimized int16 SUM requantizes in float32: it must agree with the correct sum within 1.
    res = litert.run(model, [x], resolver="BUILTIN_WITHOUT_DEFAULT_DELEGATES")
    assert res.status == "ok", res.message
    assert np.abs(res.outputs[0].astype(np.int64) - got.astype(np.int64)).max(initial=0) <= 1


def _litert_ref_sum_bytes(x, axes, keep, s_in, zp_in, s_out, zp_out):
    """What LiteRT's REF SUM writes for int8/int16: the uint8 formula on the first x.size bytes."""
    raw = np.frombuffer(np.ascontiguousarray(x).tobytes(), np.uint8)[: x.size].reshape(x.shape)
    m, sh = _quantize_multiplier(float(np.float32(s_in)) / float(np.float32(s_out)))
    ra = resolve_axes(x.ndim, np.array(axes, np.int64))
    n = int(np.prod([x.shape[i] for i in ra], dtype=np.int64)) if ra else 1
    sums = raw.astype(np.int64).sum(axis=tuple(ra), keepdims=keep) if ra else raw.astype(np.int64)
    out = [min(max(_mbqm_literal(_wrap32(int(s) - zp_in * n), m, sh) + zp_out, 0), 255) for s in sums.reshape(-1)]
    return np.array(out, np.uint8)


@pytest.mark.oracle
def test_litert_ref_sum_int8_int16_bug_pattern(litert):
    """LiteRT BUILTIN_REF SUM int8/int16 reads and writes uint8 bytes (refquant reproduces int8; int16 is undefined)."""
    x = np.array([[-1, -2, 3, 4], [5, -6, 7, -8]], np.int8)
    m = _model("SUM", (2, 4), "int8", [1], s_in=1.0, s_out=1.0)
    res = litert.run(m, [x])
    assert res.outputs[0].tolist() == [-1, -1]  # bytes 255, 255 (the true sums are [4, -2])
    assert run_refquant(m, [x]).values[2].tolist() == [-1, -1]  # refquant reproduces it for int8
    rng = np.random.default_rng(11)
    for trial in range(30):
        dtype = "int8" if trial % 2 == 0 else "int16"
        shape = tuple(int(v) for v in rng.integers(1, 5, int(rng.integers(1, 4))))
        axes = [int(rng.integers(-len(shape), len(shape)))]
        keep = bool(rng.integers(2))
        info = INFO[dtype]
        zp_in = 0 if dtype == "int16" else int(rng.integers(-20, 20))
        zp_out = 0 if dtype == "int16" else int(rng.integers(-20, 20))
        s_in, s_out = 0.1, float(0.1 * 10 ** rng.uniform(-0.5, 1.5))
        x = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
        res = litert.run(
            _model("SUM", shape, dtype, axes, keep=keep, s_in=s_in, zp_in=zp_in, s_out=s_out, zp_out=zp_out), [x]
        )
        assert res.status == "ok"
        want = _litert_ref_sum_bytes(x, axes, keep, s_in, zp_in, s_out, zp_out)
        got = np.frombuffer(res.outputs[0].tobytes(), np.uint8)[: want.size]
        assert got.tolist() == want.tolist(), (dtype, shape, axes)


# ---------------------------------------------------------------------------------------------
# SUM / MAX / MIN / PROD on float and raw integers, MAX/MIN quantized


@pytest.mark.oracle
@settings()
@given(data=st.data())
@pytest.mark.parametrize("dtype", ["float32", "int32", "int64"])
@pytest.mark.parametrize("op", ["SUM", "REDUCE_PROD"])
def test_sum_prod_float_and_raw_int(litert, op, dtype, data):
    shape, axes, keep, _, x = data.draw(reduce_case(dtype))
    _check_float_bits(litert, _model(op, shape, dtype, axes, keep=keep), [x])


@pytest.mark.oracle
@settings()
@given(data=st.data())
@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "float32", "int32", "int64"])
@pytest.mark.parametrize("op", ["REDUCE_MAX", "REDUCE_MIN"])
def test_reduce_max_min(litert, op, dtype, data):
    shape, axes, keep, kw, x = data.draw(reduce_case(dtype, same_params=True))
    _check_float_bits(litert, _model(op, shape, dtype, axes, keep=keep, **kw), [x])


@pytest.mark.oracle
@settings()
@given(data=st.data())
@pytest.mark.parametrize("dtype", ["int8", "int16"])
def test_reduce_prod_quantized(litert, dtype, data):
    shape, axes, keep, kw, x = data.draw(reduce_case(dtype, max_dim=4))
    kw["s_out"] = float(10 ** data.draw(st.floats(-3, 0)))
    check_against_litert(litert, _model("REDUCE_PROD", shape, dtype, axes, keep=keep, **kw), [x])


@pytest.mark.oracle
def test_reduce_float_special_orders(litert):
    # ReduceAllDims starts from element 0 (NaN or -inf stay); the generic path starts from -FLT_MAX.
    rows = np.array([[np.nan, 1, 2], [-np.inf, -np.inf, -np.inf], [-0.0, 0.0, -0.0], [np.inf, np.nan, 1]], np.float32)
    for op in ("REDUCE_MAX", "REDUCE_MIN", "SUM", "REDUCE_PROD", "MEAN"):
        for axes in ([1], [0, 1], [-1, 0]):
            _check_float_bits(litert, _model(op, (4, 3), "float32", axes), [rows])
            for r in rows:
                _check_float_bits(litert, _model(op, (3,), "float32", [0]), [r])
    z = np.array([-0.0, -0.0], np.float32)
    _check_float_bits(litert, _model("SUM", (2,), "float32", [0]), [z])  # all dims: -0.0 + -0.0 = -0.0
    _check_float_bits(litert, _model("SUM", (1, 2), "float32", [1]), [z.reshape(1, 2)])  # 0.f + ...: +0.0


@pytest.mark.oracle
@pytest.mark.parametrize("op", ["SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD", "MEAN"])
@pytest.mark.parametrize("dtype", ["float32", "int32"])
def test_reduce_empty_input(litert, op, dtype):
    assert check_against_litert(litert, _model(op, (2, 0), dtype, [1]), [np.zeros((2, 0), dtype)]) == "ok"


# ---------------------------------------------------------------------------------------------
# ARG_MAX / ARG_MIN


def _arg_model(op, shape, dtype, axis, out_type="int32", axis_dtype="int32", const_axis=True) -> bytes:
    x = tensor(shape, dtype, name="x")
    ax = np.array([axis], axis_dtype)
    a = const(ax, name="axis") if const_axis else tensor((1,), axis_dtype, name="axis")
    out_shape = tuple(d for i, d in enumerate(shape) if i != axis % len(shape))
    return op_model(op, [x, a], [tensor(out_shape, out_type, name="y")], output_type=out_type.upper())


@st.composite
def arg_case(draw, dtype):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rank = draw(st.integers(1, 4))
    shape = tuple(draw(st.integers(1, 13)) for _ in range(rank))
    axis = draw(st.integers(-rank, rank - 1))
    if draw(st.integers(0, 3)) == 0:
        # A long innermost axis: LiteRT's optimized kernel then takes its 4-lane (float) / 16-value (8-bit) path.
        shape = shape[:-1] + (draw(st.integers(14, 70)),)
        axis = draw(st.sampled_from([rank - 1, -1]))
    if dtype == "float32":
        pool = np.concatenate([SPECIALS, np.array([1, 2, -1, 5], np.float32)])
        x = rng.choice(pool, shape) if draw(st.booleans()) else _rand(rng, dtype, shape)
    elif dtype == "bool":
        x = _rand(rng, dtype, shape)
    else:
        x = rng.integers(0, 4, shape).astype(dtype) if draw(st.booleans()) else _rand(rng, dtype, shape)  # ties
    return shape, axis, np.asarray(x).astype(dtype)


@pytest.mark.oracle
@settings()
@given(data=st.data(), out_type=st.sampled_from(["int32", "int64"]), axis_dtype=st.sampled_from(["int32", "int64"]))
@pytest.mark.parametrize("dtype", ["float32", "uint8", "int8", "int32", "bool"])
@pytest.mark.parametrize("op", ["ARG_MAX", "ARG_MIN"])
def test_arg_min_max(litert, op, dtype, data, out_type, axis_dtype):
    shape, axis, x = data.draw(arg_case(dtype))
    check_against_litert(litert, _arg_model(op, shape, dtype, axis, out_type, axis_dtype), [x])


@pytest.mark.oracle
def test_arg_max_float_x86_lane_reduction(litert):
    # LiteRT's x86 build runs the NEON code via NEON_2_SSE: vpmax_f32 is (a < b) ? b : a, so a NaN
    # lane can hide later lanes: [1, 2, nan, 3] -> 1 and [nan, 1, 2, 3] -> 0 (the scalar scan gives 3).
    for row, want_max in (([1, 2, np.nan, 3], 1), ([np.nan, 1, 2, 3], 0), ([np.nan, 1, 2], 2)):
        x = np.array([row], np.float32)
        check_against_litert(litert, _arg_model("ARG_MAX", x.shape, "float32", 1), [x])
        assert run_refquant(_arg_model("ARG_MAX", x.shape, "float32", 1), [x]).values[2].tolist() == [want_max]
        check_against_litert(litert, _arg_model("ARG_MIN", x.shape, "float32", 1), [x])


# ---------------------------------------------------------------------------------------------
# Rejections and trace


def _alloc(model):
    refquant.Interpreter(model_content=model).allocate_tensors()


@pytest.mark.oracle
def test_reduce_rejections(litert):
    z = np.zeros((2, 3), np.int8)
    cases = [
        (_model("MEAN", (2, 3), "int8", [2]), PrepareError),  # axis out of range
        (_model("REDUCE_MAX", (2, 3), "int8", [1], s_in=0.5, s_out=0.25), QuantParamError),
        (_model("REDUCE_MIN", (2, 3), "int8", [1], zp_in=1, zp_out=2), QuantParamError),
        (_model("MEAN", (2, 3), "int16", [1], zp_in=1, zp_out=0), QuantParamError),
        (_model("SUM", (2, 3), "int16", [1], zp_in=0, zp_out=3), QuantParamError),
        (_model("REDUCE_PROD", (2, 3), "int16", [1], zp_in=2, zp_out=2), QuantParamError),
    ]
    for model, err in cases:
        with pytest.raises(err):
            _alloc(model)
    for model, _ in cases[:3]:
        assert check_against_litert(litert, model, [z]) != "ok"
    zu = np.zeros((2, 3), np.uint8)
    m = _model("REDUCE_PROD", (2, 3), "uint8", [1])
    with pytest.raises(PrepareError, match="int8/int16 only"):
        _alloc(m)
    assert check_against_litert(litert, m, [zu]) != "ok"
    with pytest.raises(PrepareError, match="int32"):
        _alloc(_model("SUM", (2, 3), "float32", [1], axis_dtype="int64"))
    with pytest.raises(UnsupportedOpError):
        _alloc(_model("SUM", (2, 3), "float32", [1], out_dtype="int32"))
    with pytest.raises(QuantParamError):
        _alloc(_model("MEAN", (2, 3), "int8", [1], quant=False))
    with pytest.raises(PrepareError, match="uninitialized"):
        _alloc(_model("REDUCE_PROD", (2, 0), "int8", [1]))
    with pytest.raises(QuantParamError, match="exponent"):
        _alloc(_model("REDUCE_PROD", (2, 1), "int8", [1], s_in=1.0, s_out=1e-6))


@pytest.mark.oracle
def test_arg_rejections(litert):
    x = np.zeros((2, 3), np.float32)
    m = _arg_model("ARG_MAX", (2, 3), "float32", 2)
    with pytest.raises(PrepareError, match="out of range"):
        _alloc(m)
    assert check_against_litert(litert, m, [x]) != "ok"
    m = _arg_model("ARG_MAX", (2, 0), "float32", 1)
    with pytest.raises(PrepareError, match="empty axis"):
        _alloc(m)
    assert check_against_litert(litert, m, [np.zeros((2, 0), np.float32)]) != "ok"
    m = _arg_model("ARG_MIN", (2, 3), "int16", 1)
    with pytest.raises(UnsupportedOpError):
        _alloc(m)
    assert check_against_litert(litert, m, [x.astype(np.int16)]) != "ok"
    xi, a = tensor((2, 3), "float32", name="x"), const(np.array([0, 1], np.int32), name="axis")
    m = op_model("ARG_MAX", [xi, a], [tensor((3,), "int32", name="y")], output_type="INT32")
    with pytest.raises(PrepareError, match="exactly one element"):
        _alloc(m)
    xi, a = tensor((2, 3), "float32", name="x"), const(np.array([1], np.int32), name="axis")
    m = op_model("ARG_MAX", [xi, a], [tensor((2,), "int32", name="y")], output_type="INT64")
    with pytest.raises(PrepareError, match="output_type"):
        _alloc(m)


def test_mean_trace_shows_truncated_multiplier():
    x = np.array([[3, 4, 9], [-128, 127, 0]], np.int8)
    m = _model("MEAN", (2, 3), "int8", [1], s_in=0.1, zp_in=2, s_out=0.07, zp_out=-3)
    tr = run_refquant(m, [x])
    data = tr.op_data[0]
    steps = data.trace([x], 0, (0,))
    names = [s.name for s in steps]
    assert names == ["values", "acc", "shifted_sum", "multiplier", "requantized", "output"]
    assert steps[1].value == 16 and steps[2].value == 16 - 2 * 3
    mq, sh = _quantize_multiplier(float(np.float32(0.1)) / float(np.float32(0.07)))
    k = min(1, 32, 31 + sh)  # floor(log2 3) = 1
    assert steps[3].value == ((mq << k) // 3, sh - k)
    assert steps[-1].value == tr.values[2][0]


def test_single_rounding_build_variant_runs_and_stays_within_one():
    """rounding="single" (TFLITE_SINGLE_ROUNDING) changes only the MBQM rounding: results within 1 LSB."""
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 127, size=(3, 7, 5), endpoint=True).astype(np.int8)
    for op in ("MEAN", "SUM"):
        m = _model(op, (3, 7, 5), "int8", [1, -1], s_in=0.03, zp_in=-7, s_out=0.011 if op == "MEAN" else 0.2, zp_out=4)
        d = run_refquant(m, [x]).values[2].astype(np.int64)
        s = run_refquant(m, [x], rounding="single").values[2].astype(np.int64)
        assert np.abs(d - s).max() <= 1


@pytest.mark.oracle
def test_mean_multiplier_is_truncated_not_rounded(litert):
    # n = 285: M' = (M << 8) // 285 truncates; with the rounded-up M' this sum would give -166 + zp_out.
    s_in, s_out, zp_out = 0.0038240314461290836, 0.0013108572456985712, 100
    x = np.full((1, 285), -57, np.int8)
    x[0, :77] = -56  # sum = -16168
    m = _model("MEAN", (1, 285), "int8", [1], s_in=s_in, zp_in=0, s_out=s_out, zp_out=zp_out)
    check_against_litert(litert, m, [x])
    assert run_refquant(m, [x]).values[2].tolist() == [-165 + zp_out]


def test_float_sum_signed_zero():
    # (opcheck compares floats with ==, so the sign of zero is checked here explicitly.)
    z = np.array([[-0.0, -0.0]], np.float32)
    all_dims = run_refquant(_model("SUM", (2,), "float32", [0]), [z[0]]).values[2]
    generic = run_refquant(_model("SUM", (1, 2), "float32", [1]), [z]).values[2]
    assert np.signbit(all_dims) and not np.signbit(generic[0])  # ReduceAllDims starts at x0; generic at 0.f
    mx = run_refquant(_model("REDUCE_MAX", (1, 2), "float32", [1]), [np.array([[-0.0, 0.0]], np.float32)])
    assert np.signbit(mx.values[2][0])  # equal values never replace: the first zero (-0.0) stays


@pytest.mark.oracle
@pytest.mark.parametrize("op", ["MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD"])
@pytest.mark.parametrize("dtype", ["int8", "float32"])
def test_reduce_axis_given_at_run_time(litert, op, dtype):
    """A non-constant axis tensor: the output shape is decided at run time (the op is prepared then)."""
    if op == "SUM" and dtype == "int8":
        dtype = "uint8"
    rng = np.random.default_rng(9)
    x = _rand(rng, dtype, (3, 4, 5))
    kw = {"s_in": 0.05, "zp_in": 3, "s_out": 0.05 if op.startswith("REDUCE_M") else 0.02, "zp_out": 3}
    for axes in ([1], [-1, 0], [2, 2, -3]):
        for keep in (False, True):
            m = _model(op, (3, 4, 5), dtype, axes, keep=keep, const_axis=False, **(kw if dtype != "float32" else {}))
            assert check_against_litert(litert, m, [x, np.array(axes, np.int32)]) == "ok"
    m = _model(op, (3, 4, 5), dtype, [1], const_axis=False, **(kw if dtype != "float32" else {}))
    assert check_against_litert(litert, m, [x, np.array([3], np.int32)]) != "ok"  # invalid axis at run time


@pytest.mark.oracle
@pytest.mark.parametrize("op", ["ARG_MAX", "ARG_MIN"])
def test_arg_axis_given_at_run_time(litert, op):
    x = np.random.default_rng(10).standard_normal((3, 4, 5)).astype(np.float32)
    for axis in (0, -1, 1):
        m = _arg_model(op, (3, 4, 5), "float32", axis, const_axis=False)
        assert check_against_litert(litert, m, [x, np.array([axis], np.int32)]) == "ok"


# ---------------------------------------------------------------------------------------------
# Traces of quantized REDUCE_PROD and ARG_MAX / ARG_MIN: the literal per-element path against eval


def _reduced_rows(x, axes):
    """(outputs, n): the reduced values of each output element in row-major input order."""
    ra = resolve_axes(x.ndim, np.array(axes, np.int64))
    red = sorted(ra)
    keep = [i for i in range(x.ndim) if i not in red]
    n = int(np.prod([x.shape[i] for i in red], dtype=np.int64))
    return np.transpose(x, keep + red).reshape(-1, n)


def _prod_chain(rows, zp, m, sh):
    """The int32 rescaled product chain (temp_prod) of every row, vectorized with the MBQM64 primitive."""
    r = rows.astype(np.int64) - zp
    acc = r[:, 0]
    for j in range(1, r.shape[1]):
        acc = multiply_by_quantized_multiplier_int64(acc * r[:, j], m, sh).astype(np.int64)
    return acc


@settings()
@given(data=st.data())
@pytest.mark.parametrize("dtype", ["int8", "int16"])
def test_reduce_prod_quantized_trace_matches_eval_for_every_element(dtype, data):
    shape, axes, keep, kw, x = data.draw(reduce_case(dtype, max_dim=4))
    kw["s_out"] = float(10 ** data.draw(st.floats(-3, 0)))
    try:
        tr = run_refquant(_model("REDUCE_PROD", shape, dtype, axes, keep=keep, **kw), [x])
    except QuantParamError:
        return  # a product scaling whose exponent LiteRT's MBQM64 does not define (rejected at prepare)
    op = tr.op_data[0]
    out = tr.values[2]
    rows = _reduced_rows(x, axes)
    chain = _prod_chain(rows, kw["zp_in"], op.scaling_multiplier, op.scaling_shift)
    for el in itertools.product(*(range(d) for d in out.shape)):
        steps = op.trace([x, tr.values[1]], 0, el)
        named = {s.name: s.value for s in steps}
        k = int(np.ravel_multi_index(el, out.shape)) if out.shape else 0
        assert steps[-1].name == "output" and steps[-1].value == out[el], (el, steps)
        assert named["values"] == rows[k].tolist(), (el, steps)
        assert named["acc"] == chain[k], (el, steps)
        assert named["multiplier"] == (op.scaling_multiplier, op.scaling_shift)
        assert ("running_product" in named) == (rows.shape[1] > 1)


def test_reduce_prod_trace_element_through_the_tracer():
    x = np.array([[[3, -4], [9, 100]], [[-128, 127], [0, 5]]], np.int8)
    model = refquant.load_model(
        _model("REDUCE_PROD", (2, 2, 2), "int8", [2, -2], keep=True, s_in=0.1, zp_in=2, s_out=0.5, zp_out=-3)
    )
    tr = trace_element(model, {"input_0": x[None]}, model.main.outputs[0], "1,0,0")
    assert tr.opcode == "REDUCE_PROD" and tr.matches_run
    names = [s.name for s in tr.steps]
    assert names == ["values", "multiplier", "first", "products", "running_product", "acc", "requantized", "output"]
    assert tr.steps[0].value == [-128, 127, 0, 5] and tr.steps[2].value == -130
    assert tr.steps[3].value[0] == -130 * 125  # int64 current * (q_1 - zp_in)
    assert "equals the value the run produced" in format_trace(tr)


@settings()
@given(data=st.data())
@pytest.mark.parametrize("dtype", ["float32", "uint8", "int8", "int32", "bool"])
@pytest.mark.parametrize("op", ["ARG_MAX", "ARG_MIN"])
def test_arg_min_max_trace_matches_eval_for_every_element(op, dtype, data):
    shape, axis, x = data.draw(arg_case(dtype))
    if data.draw(st.booleans()):
        # A long axis (the float lanes with leftovers, the 16-value chunks), values from the drawn pool.
        ax = axis % len(shape)
        shape = tuple(data.draw(st.integers(14, 70)) if i == ax else min(d, 3) for i, d in enumerate(shape))
        rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
        x = rng.choice(x.reshape(-1), shape).astype(dtype)
    tr = run_refquant(_arg_model(op, shape, dtype, axis), [x])
    arg = tr.op_data[0]
    out = tr.values[2]
    for el in itertools.product(*(range(d) for d in out.shape)):
        steps = arg.trace([x, tr.values[1]], 0, el)
        assert steps[0].name == "values" and steps[-1].name == "output", steps
        assert steps[-1].value == out[el], (el, _format_steps(steps))


def _format_steps(steps):
    """One line per step, for assertion messages."""
    return "\n".join(f"{s.name}: {s.value!r}  {s.detail}" for s in steps)


def test_arg_max_trace_shows_the_x86_lane_reduction():
    # [1, 2, nan, 3]: the lanes hold 1, 2, nan, 3; vpmax_f32 (a < b) ? b : a gives 2 and nan, then 2: index 1.
    x = np.array([[1, 2, np.nan, 3]], np.float32)
    tr = run_refquant(_arg_model("ARG_MAX", x.shape, "float32", 1), [x])
    steps = tr.op_data[0].trace([x, tr.values[1]], 0, (0,))
    named = {s.name: s.value for s in steps}
    assert named["combined_value"] == 2.0 and named["combined_index"] == 1 and steps[-1].value == 1
    # An all-NaN row: the combined value is NaN, no lane equals it, the result is index 0.
    x = np.full((1, 9), np.nan, np.float32)
    tr = run_refquant(_arg_model("ARG_MIN", x.shape, "float32", 1), [x])
    steps = tr.op_data[0].trace([x, tr.values[1]], 0, (0,))
    assert {s.name: s.value for s in steps}["combined_index"] == 2**31 - 1 and steps[-1].value == 0
    # int8 ARG_MAX over 16-value chunks: the first chunk holding the maximum, then its first position.
    xi = np.zeros((1, 40), np.int8)
    xi[0, [20, 25, 38]] = 7  # chunks 0..15 and 16..31; 38 is in the scalar leftover loop and does not win
    tr = run_refquant(_arg_model("ARG_MAX", xi.shape, "int8", 1), [xi])
    steps = tr.op_data[0].trace([xi, tr.values[1]], 0, (0,))
    named = {s.name: s.value for s in steps}
    assert named["chunk_maxima"] == [0, 7] and named["chunk_index"] == 20 and steps[-1].value == 20
    # Along a non-innermost axis the reference kernel's NaN-aware comparator runs from element 0.
    xf = np.array([[np.nan, 1], [2, np.nan], [2, 5]], np.float32)
    tr = run_refquant(_arg_model("ARG_MAX", xf.shape, "float32", 0), [xf])
    for j, want in enumerate([1, 2]):
        steps = tr.op_data[0].trace([xf, tr.values[1]], 0, (j,))
        assert steps[-1].value == want == tr.values[2][j] and "reference_ops::ArgMinMax" in steps[-2].detail
