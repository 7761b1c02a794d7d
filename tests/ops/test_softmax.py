"""SOFTMAX and LOG_SOFTMAX against LiteRT BUILTIN_REF (bit-exact, float32 included).

float32 is compared bit-exactly: refquant uses glibc ``expf``/``logf`` (the functions LiteRT calls)
and LiteRT's order of float32 operations.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import refquant
from refquant.errors import EvalError, QuantParamError, UnsupportedOpError
from refquant.fixedpoint import exp_on_negative_values, rounding_divide_by_pot, wrap_int32
from refquant.ops.softmax import glibc_expf, log_x_for_x_greater_than_or_equal_to_1, softmax_int16_luts
from refquant.requantize import multiply_by_quantized_multiplier
from refquant.testing import op_model, tensor
from refquant.tracer import format_trace, trace_element
from tests.opcheck import check_against_litert, run_refquant

INFO = {"int8": np.iinfo(np.int8), "uint8": np.iinfo(np.uint8), "int16": np.iinfo(np.int16)}
#: Output params LiteRT requires (int8->int8, int16->int16) or that a converter would use.
OUT_PARAMS = {
    ("int8", "int8"): (1 / 256, -128),
    ("int8", "int16"): (1 / 65536, -32768),
    ("uint8", "uint8"): (1 / 256, 0),
    ("uint8", "int16"): (1 / 65536, -32768),
    ("int16", "int16"): (1 / 32768, 0),
}


def _model(op, shape, in_dt, out_dt=None, *, s_in=0.1, zp_in=0, s_out=None, zp_out=None, quant=True, **opts) -> bytes:
    out_dt = out_dt or in_dt
    q = quant and in_dt != "float32"
    if s_out is None:
        s_out, zp_def = (
            (16 / 256, 127 if in_dt == "int8" else 255)
            if op == "LOG_SOFTMAX"
            else OUT_PARAMS.get((in_dt, out_dt), (1 / 256, 0))
        )
        zp_out = zp_def if zp_out is None else zp_out
    x = tensor(shape, in_dt, name="x", **({"scale": s_in, "zero_point": zp_in} if q else {}))
    y = tensor(shape, out_dt, name="y", **({"scale": s_out, "zero_point": zp_out or 0} if q else {}))
    return op_model(op, [x], [y], **opts)


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
def softmax_case(draw, in_dt):
    """Rank 1..4, rows up to 40 long (sometimes 500+), beta and input scale spanning decades."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rank = draw(st.integers(1, 4))
    shape = [draw(st.integers(1, 6)) for _ in range(rank - 1)] + [draw(st.integers(1, 40))]
    if draw(st.integers(0, 19)) == 0:
        shape = [draw(st.integers(1, 2)), draw(st.integers(400, 700))]  # long rows: the 8-bit abort path
    shape = tuple(shape)
    beta = float(10 ** rng.uniform(-1, 1))
    if in_dt == "float32":
        x = (rng.standard_normal(shape) * 10 ** rng.uniform(-1, 2)).astype(np.float32)
        if draw(st.booleans()):
            m = rng.random(shape) < 0.1
            x[m] = rng.choice(np.array([np.nan, np.inf, -np.inf, -0.0, 1e30, -1e30], np.float32), int(m.sum()))
        return shape, beta, {}, x
    info = INFO[in_dt]
    s_in = float(10 ** rng.uniform(-4, 0))
    zp_in = 0 if in_dt == "int16" else int(rng.integers(info.min, info.max, endpoint=True))
    spread = int(10 ** rng.uniform(0, np.log10(info.max - info.min)))
    centre = int(rng.integers(info.min, info.max, endpoint=True))
    x = np.clip(rng.integers(centre - spread, centre + spread, size=shape, endpoint=True), info.min, info.max)
    if draw(st.integers(0, 9)) == 0:
        x[...] = centre  # all equal: exercises the largest sums
    return shape, beta, {"s_in": s_in, "zp_in": zp_in}, x.astype(in_dt)


@pytest.mark.oracle
@settings()
@given(data=st.data())
@pytest.mark.parametrize("in_dt,out_dt", sorted(OUT_PARAMS))
def test_softmax_quantized(litert, in_dt, out_dt, data):
    shape, beta, kw, x = data.draw(softmax_case(in_dt))
    check_against_litert(litert, _model("SOFTMAX", shape, in_dt, out_dt, beta=beta, **kw), [x])


@pytest.mark.oracle
@settings()
@given(data=st.data())
def test_softmax_float32(litert, data):
    shape, beta, _, x = data.draw(softmax_case("float32"))
    if data.draw(st.booleans()):
        beta = -beta
    _check_float_bits(litert, _model("SOFTMAX", shape, "float32", beta=beta), [x])


@pytest.mark.oracle
@settings()
@given(data=st.data())
@pytest.mark.parametrize("dtype", ["int8", "uint8", "float32"])
def test_log_softmax(litert, dtype, data):
    shape, _, kw, x = data.draw(softmax_case(dtype))
    _check_float_bits(litert, _model("LOG_SOFTMAX", shape, dtype, **kw), [x])


# ---------------------------------------------------------------------------------------------
# Deterministic cases


@pytest.mark.oracle
def test_softmax_int8_abort_when_row_sum_reaches_512(litert):
    # 511 equal values sum to 511 < 512: fine; 512 make LiteRT's TFLITE_CHECK(exponent <= 31) abort.
    for depth, status in ((511, "ok"), (512, "aborted")):
        x = np.zeros((1, depth), np.int8)
        assert check_against_litert(litert, _model("SOFTMAX", (1, depth), "int8", beta=1.0), [x]) == status
    with pytest.raises(EvalError, match="aborts"):
        run_refquant(_model("SOFTMAX", (1, 512), "int8", beta=1.0), [np.zeros((1, 512), np.int8)])
    # int16 output has 8 more bits of headroom: no abort.
    x = np.zeros((1, 600), np.int8)
    assert check_against_litert(litert, _model("SOFTMAX", (1, 600), "int8", "int16", beta=1.0), [x]) == "ok"


@pytest.mark.oracle
def test_softmax_uint8_and_int16_output_params_are_ignored(litert):
    x = np.array([[1, 2, 3, 200]], np.uint8)
    assert check_against_litert(litert, _model("SOFTMAX", (1, 4), "uint8", s_out=0.3, zp_out=7, beta=1.0), [x]) == "ok"
    x8 = np.array([[1, 2, 3, -100]], np.int8)
    m = _model("SOFTMAX", (1, 4), "int8", "int16", s_out=0.3, zp_out=7, beta=1.0)
    assert check_against_litert(litert, m, [x8]) == "ok"


@pytest.mark.oracle
@pytest.mark.parametrize(
    "kw,err",
    [
        ({"zp_out": 0}, QuantParamError),  # int8 output zero point must be -128
        ({"s_out": 1 / 250, "zp_out": -128}, QuantParamError),  # scale not within 0.001/256 of 1/256
        ({"s_in": 2.0**-26, "beta": 1.0}, QuantParamError),  # beta * s_in * 2^26 <= 1: LiteRT aborts
        ({"s_in": 0.1, "beta": 0.0}, QuantParamError),
    ],
)
def test_softmax_int8_rejections(litert, kw, err):
    kw = dict(kw)
    kw.setdefault("beta", 1.0)
    m = _model("SOFTMAX", (1, 4), "int8", **kw)
    with pytest.raises(err):
        refquant.Interpreter(model_content=m).allocate_tensors()
    assert check_against_litert(litert, m, [np.zeros((1, 4), np.int8)]) != "ok"


@pytest.mark.oracle
def test_softmax_other_rejections(litert):
    cases = [
        (_model("SOFTMAX", (1, 4), "int16", s_out=1 / 32768, zp_out=0, zp_in=3, beta=1.0), QuantParamError),
        (_model("SOFTMAX", (1, 4), "int16", s_out=1 / 256, zp_out=0, beta=1.0), QuantParamError),
        (_model("SOFTMAX", (1, 4), "int16", "int8", s_out=1 / 256, zp_out=0, beta=1.0), UnsupportedOpError),
        (_model("SOFTMAX", (1, 4), "int8", "uint8", s_out=1 / 256, zp_out=0, beta=1.0), UnsupportedOpError),
        (_model("SOFTMAX", (1, 4), "int8", quant=False, beta=1.0), QuantParamError),
        (_model("LOG_SOFTMAX", (1, 4), "int8", s_out=1 / 16, zp_out=0), QuantParamError),
        (_model("LOG_SOFTMAX", (1, 4), "uint8", s_out=0.0625001, zp_out=255), QuantParamError),
        (_model("LOG_SOFTMAX", (1, 4), "int8", s_in=2.0**-27), QuantParamError),
        (_model("LOG_SOFTMAX", (1, 4), "int16", s_out=1 / 16, zp_out=0), UnsupportedOpError),
    ]
    for m, err in cases:
        with pytest.raises(err):
            refquant.Interpreter(model_content=m).allocate_tensors()
    for k, (m, _) in enumerate(cases):
        if k == 2:
            # int16 -> int8: LiteRT runs SoftmaxInt16 into the int8 buffer (writes past its end); refquant rejects.
            continue
        dt = refquant.Interpreter(model_content=m).get_input_details()[0]["dtype"]
        assert check_against_litert(litert, m, [np.zeros((1, 4), dt)]) != "ok"
    scalar = op_model("SOFTMAX", [tensor((), "float32", name="x")], [tensor((), "float32", name="y")], beta=1.0)
    with pytest.raises(refquant.RefquantError, match="rank"):
        refquant.Interpreter(model_content=scalar).allocate_tensors()


def test_glibc_expf_matches_libm_everywhere_it_is_risky():
    lib = ctypes.CDLL(ctypes.util.find_library("m"))
    expf = lib.expf
    expf.restype, expf.argtypes = ctypes.c_float, [ctypes.c_float]
    rng = np.random.default_rng(5)
    x = np.concatenate(
        [
            (rng.standard_normal(20000) * 30).astype(np.float32),
            np.array([0, -0.0, 88.72, 88.73, -103.9, -104, -87.3, np.inf, -np.inf], np.float32),
        ]
    )
    want = np.array([expf(float(v)) for v in x], np.float32)
    got = glibc_expf(x)
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))


def test_int16_luts_and_log_helper_spot_values():
    exp_lut, recip_lut = softmax_int16_luts()
    assert exp_lut.shape == recip_lut.shape == (513,)
    assert exp_lut[-1] == 32767 and recip_lut[0] == 32767  # exp(0) = 1 and 1/(1+0) = 1 in Q0.15
    assert abs(int(recip_lut[-1]) - 16384) <= 1  # 1/(1+1) = 0.5
    x = np.array([1 << 19, 3 << 19, 100 << 19], np.int64)  # 1, 3, 100 in Q12.19
    got = log_x_for_x_greater_than_or_equal_to_1(x) / 2**26
    np.testing.assert_allclose(got, np.log([1, 3, 100]), atol=2e-6)  # an approximation: tolerance


def test_softmax_int8_trace():
    x = np.array([[10, -20, 30, 30]], np.int8)
    m = _model("SOFTMAX", (1, 4), "int8", s_in=0.05, beta=1.0)
    tr = run_refquant(m, [x])
    steps = tr.op_data[0].trace([x], 0, (0, 1))
    names = [s.name for s in steps]
    assert names[:2] == ["row_max", "input_diff"] and "exp_q0_31" in names and "reciprocal_q0_31" in names
    assert steps[1].value == -50
    assert steps[-1].value == tr.values[1][0, 1]


def test_single_rounding_build_variant_runs_and_stays_close():
    """rounding="single" caps the softmax multiplier at 2^30 - 1 and rounds MBQM once: results stay close."""
    rng = np.random.default_rng(4)
    x = rng.integers(-128, 127, size=(5, 9), endpoint=True).astype(np.int8)
    for op, kw in (("SOFTMAX", {"beta": 1.0}), ("LOG_SOFTMAX", {})):
        m = _model(op, (5, 9), "int8", s_in=0.07, **kw)
        d = run_refquant(m, [x]).values[1].astype(np.int64)
        s = run_refquant(m, [x], rounding="single").values[1].astype(np.int64)
        assert np.abs(d - s).max() <= 1
    x16 = rng.integers(-3000, 3000, size=(5, 9)).astype(np.int16)
    m = _model("SOFTMAX", (5, 9), "int16", s_in=0.001, beta=1.0)
    d = run_refquant(m, [x16]).values[1].astype(np.int64)
    s = run_refquant(m, [x16], rounding="single").values[1].astype(np.int64)
    assert np.abs(d - s).max() <= 2


# ---------------------------------------------------------------------------------------------
# LOG_SOFTMAX int8/uint8 trace: the literal per-element path against eval, for every element


@st.composite
def small_log_softmax_case(draw, in_dt):
    """Shapes small enough to trace every element (at most 3 x 3 x 40), scales spanning 10^-4..10."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = tuple(draw(st.integers(1, 3)) for _ in range(draw(st.integers(0, 2)))) + (draw(st.integers(1, 40)),)
    info = INFO[in_dt]
    s_in = float(10 ** rng.uniform(-4, 1))
    zp_in = int(rng.integers(info.min, info.max, endpoint=True))
    spread = int(10 ** rng.uniform(0, np.log10(info.max - info.min)))
    centre = int(rng.integers(info.min, info.max, endpoint=True))
    x = np.clip(rng.integers(centre - spread, centre + spread, size=shape, endpoint=True), info.min, info.max)
    if draw(st.integers(0, 9)) == 0:
        x[...] = centre
    return shape, {"s_in": s_in, "zp_in": zp_in}, x.astype(in_dt)


def _log_softmax_row_sums(data, x):
    """Per row, vectorized: the Q12.19 exp terms, their wrapping int32 sum and its Q5.26 log."""
    rows = x.reshape(-1, x.shape[-1]).astype(np.int64)
    d = rows - rows.max(axis=1, keepdims=True)
    valid = d >= data.diff_min
    q5 = multiply_by_quantized_multiplier(
        np.where(valid, d, 0), data.input_multiplier, data.input_left_shift, data.rounding
    )
    terms = np.where(valid, rounding_divide_by_pot(exp_on_negative_values(q5, 5), 12), 0).astype(np.int64)
    sums = wrap_int32(terms.sum(axis=1)).astype(np.int64)
    return terms, sums, log_x_for_x_greater_than_or_equal_to_1(sums)


@settings()
@given(data=st.data(), rounding=st.sampled_from(["double", "single"]))
@pytest.mark.parametrize("dtype", ["int8", "uint8"])
def test_log_softmax_trace_matches_eval_for_every_element(dtype, data, rounding):
    shape, kw, x = data.draw(small_log_softmax_case(dtype))
    try:
        tr = run_refquant(_model("LOG_SOFTMAX", shape, dtype, **kw), [x], rounding=rounding)
    except QuantParamError:
        return  # a scale LiteRT rejects (CHECK-aborts) at prepare time
    op = tr.op_data[0]
    out = tr.values[1]
    terms, sums, logs = _log_softmax_row_sums(op, x)
    depth = shape[-1]
    for el in itertools.product(*(range(n) for n in shape)):
        steps = op.trace([x], 0, el)
        named = {s.name: s.value for s in steps}
        assert [s.name for s in steps[:2]] == ["row_max", "input_diff"], steps
        assert steps[-1].name == "output" and steps[-1].value == out[el], (el, steps)
        row = int(np.ravel_multi_index(el, shape)) // depth
        assert named["exp_terms_q12_19"] == terms[row].tolist(), (el, steps)
        assert named["sum_of_exps_q12_19"] == sums[row], (el, steps)
        assert named["log_sum_q5_26"] == logs[row], (el, steps)
        if out[el] != np.iinfo(dtype).min:
            assert "scaled_diff_q5_26" in named and "rounded" in named, (el, steps)


def test_log_softmax_trace_element_through_the_tracer():
    """``refquant trace`` on a LOG_SOFTMAX output: a kept tap and a cut-off tap, both equal to the run."""
    x = np.array([[[10, -20, 30, 127, -128, 5]]], np.int8)
    model = refquant.load_model(_model("LOG_SOFTMAX", (1, 1, 6), "int8", s_in=0.1, zp_in=3))
    y = model.main.outputs[0]
    tr = trace_element(model, {"input_0": x[None]}, y, "0,0,1")
    assert tr.opcode == "LOG_SOFTMAX" and tr.matches_run
    assert [s.name for s in tr.steps] == [
        "row_max",
        "input_diff",
        "exp_terms_q12_19",
        "sum_of_exps_q12_19",
        "log_sum_q5_26",
        "adjusted_diff_min",
        "scaled_diff_q5_26",
        "log_softmax_q5_26",
        "rounded",
        "output",
    ]
    assert tr.steps[0].value == 127 and tr.steps[1].value == -147
    assert "equals the value the run produced" in format_trace(tr)
    # d = -255 is below diff_min = -248: no exp term, and d <= adjusted_diff_min gives the type minimum.
    tr = trace_element(model, {"input_0": x[None]}, y, "0,0,4")
    assert tr.matches_run and tr.value == -128
    assert tr.steps[2].value[4] == 0 and tr.steps[-2].name == "adjusted_diff_min"
    assert "the type minimum" in tr.steps[-1].detail
