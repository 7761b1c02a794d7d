"""QUANTIZE and DEQUANTIZE against LiteRT BUILTIN_REF (bit-exact), the trace, and rejections."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refquant.errors import QuantParamError, UnsupportedOpError
from tests.opcheck import check_against_litert, run_refquant
from tests.ops.movement_helpers import In, Out, one_op, rand_array, seeds, shapes

RANGE = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767), "int32": (-(2**31), 2**31 - 1)}


def _ok(litert, model: bytes, feeds: list[np.ndarray]) -> None:
    status = check_against_litert(litert, model, feeds)
    assert status == "ok", status


def _zp(rng: np.random.Generator, dtype: str) -> int:
    if dtype in ("int16", "int32"):
        return 0
    lo, hi = RANGE[dtype]
    return int(rng.integers(lo, hi, endpoint=True))


def _float_inputs(rng: np.random.Generator, shape, scale: np.ndarray, zp: np.ndarray) -> np.ndarray:
    """Floats around the quantization grid: exact ties (k + 0.5) * scale, edges, out of range, inf, NaN."""
    k = rng.integers(-40000, 40000, size=shape)
    v = ((k + 0.5 - zp) * scale).astype(np.float32)
    v = np.where(rng.random(shape) < 0.4, rng.standard_normal(shape).astype(np.float32) * 200 * scale, v)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e30, -1e30, 3e9, 4.967752], np.float32)
    v = np.where(rng.random(shape) < 0.05, rng.choice(special, size=shape), v)
    return v.astype(np.float32)


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16"])
@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
@settings()
@given(data=st.data(), seed=seeds)
def test_quantize_float_matches_litert(litert, dtype, per_channel, data, seed):
    rng = np.random.default_rng(seed)
    shape = shapes(data.draw, 1 if per_channel else 0, 4, 5)
    if per_channel:
        axis = data.draw(st.integers(0, len(shape) - 1))
        n = shape[axis]
    else:
        axis, n = 0, 1
    scale = (10 ** rng.uniform(-5, 0, n)).astype(np.float32)
    zp = np.array([_zp(rng, dtype) for _ in range(n)])
    bshape = [1] * len(shape)
    if per_channel:
        bshape[axis] = n
    x = _float_inputs(rng, shape, scale.reshape(bshape), zp.reshape(bshape))
    q = {"scale": scale if per_channel else float(scale[0]), "zero_point": zp if per_channel else int(zp[0])}
    if per_channel:
        q["quantized_dimension"] = axis
    model, feeds = one_op("QUANTIZE", [In(x)], [Out(dtype, tuple(shape), quant=q)])
    _ok(litert, model, feeds)


@pytest.mark.oracle
def test_quantize_divides_by_the_scale_and_rounds_ties_away(litert):
    """x / s = 2.5 exactly in float32 gives 3; x * (1/s) = 2.4999998 would give 2. NaN/overflow -> qmin."""
    x = np.array([0.20362216, 4.967752], np.float32)
    model, feeds = one_op("QUANTIZE", [In(x)], [Out("int8", quant={"scale": 0.08144887, "zero_point": 0})])
    _ok(litert, model, feeds)
    assert run_refquant(model, feeds).values[1][0] == 3
    x = np.array([0.5, -0.5, 2.5, 1e10, np.nan, np.inf, -np.inf], np.float32)
    model, feeds = one_op("QUANTIZE", [In(x)], [Out("int8", quant={"scale": 1.0, "zero_point": 0})])
    _ok(litert, model, feeds)
    np.testing.assert_array_equal(run_refquant(model, feeds).values[1], [1, -1, 3, -128, -128, -128, -128])


@pytest.mark.oracle
@pytest.mark.parametrize(
    "src,dst",
    [
        ("int8", "int8"),
        ("int8", "uint8"),
        ("int8", "int16"),
        ("uint8", "int8"),
        ("uint8", "uint8"),
        ("uint8", "int16"),
        ("int16", "int8"),
        ("int16", "int16"),
        ("int16", "int32"),
        ("int32", "int8"),
        ("int32", "int16"),
    ],
)
@settings()
@given(data=st.data(), seed=seeds)
def test_requantize_matches_litert(litert, src, dst, data, seed):
    rng = np.random.default_rng(seed)
    s_in = float(10 ** rng.uniform(-4, 0))
    kind = data.draw(st.sampled_from(["random", "equal", "ratio"]))
    if kind == "equal":
        s_out = s_in
    elif kind == "ratio":  # exact power-of-two or simple ratios: exercises ties of the double rounding
        s_out = s_in * data.draw(st.sampled_from([0.25, 0.5, 2.0, 4.0, 3.0, 1 / 3, 256.0, 1 / 256]))
    else:
        s_out = float(10 ** rng.uniform(-4, 0))
    zp_in, zp_out = _zp(rng, src), _zp(rng, dst)
    if {src, dst} == {"int8", "uint8"} and data.draw(st.booleans()):
        zp_out = zp_in + (128 if dst == "uint8" else -128)  # the q ^ 0x80 fast path
        s_out = s_in
    if src == "int16" and dst == "int16":
        zp_in = zp_out = 0
    x = rand_array(rng, src, shapes(data.draw, 0, 3, 6))
    if src == "int32":
        x = (x // int(rng.choice([1, 2**8, 2**20]))).astype(np.int32)
    model, feeds = one_op(
        "QUANTIZE",
        [In(x, quant={"scale": s_in, "zero_point": zp_in})],
        [Out(dst, quant={"scale": s_out, "zero_point": zp_out})],
    )
    _ok(litert, model, feeds)


def test_requantize_single_rounding_differs_on_ties():
    """Multiplier 0.25 (M = 2^30, shift = -1): x = 1 -> 1 with double rounding, 0 with single rounding."""
    x = np.array([1, 5, -2, -6], np.int8)
    model, feeds = one_op(
        "QUANTIZE",
        [In(x, quant={"scale": 0.25, "zero_point": 0})],
        [Out("int8", quant={"scale": 1.0, "zero_point": 0})],
    )
    np.testing.assert_array_equal(run_refquant(model, feeds, "double").values[1], [1, 2, -1, -2])
    np.testing.assert_array_equal(run_refquant(model, feeds, "single").values[1], [0, 1, 0, -1])


def test_quantize_trace_ends_at_the_output():
    rng = np.random.default_rng(0)
    x = np.array([[4.967752, np.nan], [1e10, -3.3]], np.float32)
    q = {"scale": [0.1091814, 0.5], "zero_point": [3, -2], "quantized_dimension": 1}
    model, feeds = one_op("QUANTIZE", [In(x)], [Out("int8", (2, 2), quant=q)])
    tr = run_refquant(model, feeds)
    for el in np.ndindex(2, 2):
        steps = tr.op_data[0].trace([x], 0, el)
        assert [s.name for s in steps][:3] == ["input", "scale", "x / scale"]
        assert steps[-1].value == tr.values[1][el]
    q = rand_array(rng, "int16", (7,))
    model, feeds = one_op(
        "QUANTIZE",
        [In(q, quant={"scale": 0.003, "zero_point": 0})],
        [Out("int8", quant={"scale": 0.07, "zero_point": 5})],
    )
    tr = run_refquant(model, feeds)
    for i in range(7):
        steps = tr.op_data[0].trace([q], 0, (i,))
        assert steps[2].name == "MBQM" and steps[-1].value == tr.values[1][i]


@pytest.mark.oracle
@pytest.mark.parametrize(
    "src,dst,in_q,out_q,err",
    [
        ("int16", "int16", {"scale": 0.5, "zero_point": 1}, {"scale": 0.5, "zero_point": 0}, QuantParamError),
        ("int32", "uint8", {"scale": 0.5, "zero_point": 0}, {"scale": 0.5, "zero_point": 0}, UnsupportedOpError),
        ("int8", "int32", {"scale": 0.5, "zero_point": 0}, {"scale": 0.5, "zero_point": 0}, UnsupportedOpError),
        ("float32", "int8", None, None, QuantParamError),
    ],
)
def test_quantize_rejections(litert, src, dst, in_q, out_q, err):
    model, feeds = one_op("QUANTIZE", [In(np.zeros(3, src), quant=in_q)], [Out(dst, quant=out_q)])
    assert check_against_litert(litert, model, feeds) == "rejected"
    with pytest.raises(err):
        run_refquant(model, feeds)


# ---------------------------------------------------------------------------------------------
# DEQUANTIZE


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16"])
@settings()
@given(data=st.data(), seed=seeds)
def test_dequantize_per_tensor_matches_litert(litert, dtype, data, seed):
    rng = np.random.default_rng(seed)
    q = {"scale": float(10 ** rng.uniform(-6, 2)), "zero_point": _zp(rng, dtype)}
    x = rand_array(rng, dtype, shapes(data.draw, 0, 4, 6))
    model, feeds = one_op("DEQUANTIZE", [In(x, quant=q, const=data.draw(st.booleans()))], [Out("float32")])
    _ok(litert, model, feeds)


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", ["int8", "uint8", "int4", "uint4", "int2"])
@settings()
@given(data=st.data(), seed=seeds)
def test_dequantize_per_channel_and_packed_matches_litert(litert, dtype, data, seed):
    rng = np.random.default_rng(seed)
    shape = shapes(data.draw, 1, 4, 5)
    per_channel = data.draw(st.booleans())
    axis = data.draw(st.integers(0, len(shape) - 1))
    n = shape[axis] if per_channel else 1
    lo, hi = {"int4": (-8, 7), "uint4": (0, 15), "int2": (-2, 1)}.get(dtype, RANGE.get(dtype, (0, 0)))
    zp = [int(rng.integers(lo, hi, endpoint=True)) for _ in range(n)]
    scale = (10 ** rng.uniform(-5, 1, n)).astype(np.float32)
    q = {"scale": scale if per_channel else float(scale[0]), "zero_point": zp if per_channel else zp[0]}
    if per_channel:
        q["quantized_dimension"] = axis
    x = rng.integers(lo, hi, size=shape, endpoint=True)
    storage = "uint8" if dtype in ("uint8", "uint4") else "int8"
    const = dtype not in ("int8", "uint8") or data.draw(st.booleans())  # packed types are constants
    model, feeds = one_op("DEQUANTIZE", [In(x.astype(storage), quant=q, const=const, dtype=dtype)], [Out("float32")])
    _ok(litert, model, feeds)


@pytest.mark.oracle
@settings()
@given(data=st.data(), seed=seeds)
def test_dequantize_float16_matches_litert(litert, data, seed):
    rng = np.random.default_rng(seed)
    x = rand_array(rng, "float16", shapes(data.draw, 0, 3, 6))
    model, feeds = one_op("DEQUANTIZE", [In(x, const=True)], [Out("float32")])
    _ok(litert, model, feeds)


@pytest.mark.oracle
def test_dequantize_rejections(litert):
    q16 = {"scale": [0.5, 0.25], "zero_point": [0, 0], "quantized_dimension": 0}
    model, feeds = one_op("DEQUANTIZE", [In(np.zeros(2, np.int16), quant=q16)], [Out("float32")])
    assert check_against_litert(litert, model, feeds) == "rejected"
    with pytest.raises(UnsupportedOpError, match="per-channel int16"):
        run_refquant(model, feeds)
    model, feeds = one_op(
        "DEQUANTIZE", [In(np.zeros(2, np.int16), quant={"scale": 0.5, "zero_point": 3})], [Out("float32")]
    )
    assert check_against_litert(litert, model, feeds) == "rejected"
    with pytest.raises(QuantParamError, match="int16 zero point"):
        run_refquant(model, feeds)
    model, feeds = one_op(
        "DEQUANTIZE", [In(np.zeros(2, np.int32), quant={"scale": 0.5, "zero_point": 0})], [Out("float32")]
    )
    assert check_against_litert(litert, model, feeds) == "rejected"
    with pytest.raises(UnsupportedOpError):
        run_refquant(model, feeds)


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16"])
@settings()
@given(seed=seeds, special=st.booleans(), log_scale=st.floats(-12, 2))
def test_quantize_float_fast_path_equals_reference(dtype, seed, special, log_scale):
    """The per-tensor fast path (float32 floor/copysign rounding) gives quantize()'s values; inputs with
    NaN, inf or quotients near 2^31 take the readable path."""
    from refquant.ops.quantize import QuantizeFloatData

    rng = np.random.default_rng(seed)
    scale = np.float32(2.0**log_scale)
    zp = _zp(rng, dtype)
    x = _float_inputs(rng, (257,), np.asarray(scale), np.asarray(zp))
    if not special:
        x = np.where(np.isfinite(x) & (np.abs(x / scale) < 2.0**30), x, np.float32(0.5) * scale).astype(np.float32)
    data = QuantizeFloatData(
        output_shapes=(x.shape,), output_dtypes=(dtype,), scale=scale, zero_point=np.int64(zp), axis=None
    )
    np.testing.assert_array_equal(data.eval([x])[0], data.eval_reference([x])[0])
