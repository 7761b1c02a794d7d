"""Hybrid (dynamic-range quantized) CONV_2D and DEPTHWISE_CONV_2D against LiteRT BUILTIN_REF.

float32 input and output, int8 filter, float32 bias: what ``TFLiteConverter`` writes with
``optimizations=[tf.lite.Optimize.DEFAULT]`` and no representative dataset. Equality is required, with no
``float_tolerance``: refquant reproduces every step of the x86 wheel's kernels (the on-the-fly int8
quantization of each batch element, the exact int32 sums, each float32 product of the scales in LiteRT's
order, the bias add and the clamp), so nothing is left to round differently.

The conv options have no ``asymmetric_quantize_inputs`` field; the kernel decides: the per-tensor CONV_2D
kernel (one distinct filter scale, no groups) quantizes the input symmetrically, the per-channel kernels
(CONV_2D with differing scales or groups, every DEPTHWISE_CONV_2D) asymmetrically. The strategies draw both.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from refquant.errors import EvalError, QuantParamError, RefquantError, UnsupportedOpError
from refquant.ops.conv.hybrid import ConvHybridData, DepthwiseHybridData
from refquant.testing import const, op_model, tensor
from tests.opcheck import check_against_litert, run_refquant
from tests.ops.test_conv import _conv_model, _fit_valid, _op_and_inputs, _tconv_model

#: Every fused activation the conv kernels accept (TANH and SIGN_BIT mean "no clamp" there).
ACTS = ["NONE", "RELU", "RELU6", "RELU_N1_TO_1", "TANH", "SIGN_BIT"]
SAME1 = dict(padding="SAME", stride_h=1, stride_w=1)


# ---------------------------------------------------------------------------------------------
# Hypothesis cases


def _float_input(draw, rng, shape):
    """float32 input of one of several kinds that stress the per-batch int8 quantization."""
    kind = draw(st.sampled_from(["normal", "normal", "positive", "negative", "zero_batch", "zeros", "const", "ties"]))
    x = rng.standard_normal(shape) * 10 ** draw(st.floats(-3, 3)) + draw(st.sampled_from([0.0, 0.0, 0.5, -2.0]))
    if kind == "positive":
        x = np.abs(x)
    elif kind == "negative":
        x = -np.abs(x)
    elif kind == "zero_batch":
        x[0] = 0  # an all-zero batch element: scale 1, zero point 0
    elif kind == "zeros":
        x[...] = 0
    elif kind == "const":
        x[...] = draw(st.sampled_from([-3.0, 0.25, 7.0]))
    elif kind == "ties":
        # Symmetric range exactly 127: inv = 1 and every x * inv = n + 0.5 is a rounding tie.
        x = rng.integers(-127, 127, size=shape) + 0.5
        x.reshape(x.shape[0], -1)[:, 0] = 127.0
    return x.astype(np.float32)


def _filter(draw, rng, shape):
    """int8 filter values, sometimes with many -128 (the SSE sign quirk), sometimes restricted to +-127."""
    w = rng.integers(-128, 127, size=shape, endpoint=True).astype(np.int8)
    mode = draw(st.sampled_from(["full", "full", "many_min", "narrow"]))
    if mode == "many_min":
        w[rng.random(shape) < 0.4] = -128
    elif mode == "narrow":
        w = np.clip(w, -127, 127).astype(np.int8)
    return w


def _opts(draw, kh, kw):
    return dict(
        padding=draw(st.sampled_from(["SAME", "VALID"])),
        stride_h=draw(st.integers(1, 3)),
        stride_w=draw(st.integers(1, 3)),
        dilation_h_factor=draw(st.integers(1, 3)),
        dilation_w_factor=draw(st.integers(1, 3)),
        fused_activation_function=draw(st.sampled_from(ACTS)),
    )


@st.composite
def hybrid_conv_case(draw, kernel):
    """Random hybrid CONV_2D for ``kernel`` "per_tensor" (one distinct scale), "per_channel" (differing
    scales) or "grouped" (groups > 1; a per-tensor scale there, drawn 1 time in 4, is rejected)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    groups = draw(st.integers(2, 3)) if kernel == "grouped" else 1
    ig = draw(st.integers(1, 12))  # K = KH*KW*Ig spans the SSE 16-column blocks
    og = draw(st.integers(1, 6))
    c, o = ig * groups, og * groups
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    bsz = draw(st.integers(1, 3))
    opts = _opts(draw, kh, kw)
    h, w = _fit_valid(draw, opts, h, w, kh, kw)
    x = _float_input(draw, rng, (bsz, h, w, c))
    wts = _filter(draw, rng, (o, kh, kw, ig))
    base = np.float32(10 ** draw(st.floats(-4, 0)))
    if kernel == "per_tensor":
        # A single scale, or per-channel quantization whose scales are all equal (LiteRT runs the same kernel).
        s_w = base if draw(st.booleans()) else np.full(o, base, np.float32)
    elif kernel == "per_channel":
        s_w = (base * 10 ** rng.uniform(-1, 1, o)).astype(np.float32)
        if o > 1:
            s_w[-1] = base * np.float32(1.5)  # at least two scales differ
    else:
        s_w = draw(st.sampled_from(["differ", "equal", "equal", "single"]))
        s_w = {
            "differ": (base * 10 ** rng.uniform(-1, 1, o)).astype(np.float32),
            "equal": np.full(o, base, np.float32),
            "single": base,
        }[s_w]
    zp_w = int(rng.integers(-5, 6)) if draw(st.booleans()) else 0  # ignored by the hybrid kernels
    bias = (rng.standard_normal(o) * 10 ** draw(st.floats(-2, 2))).astype(np.float32)
    model = _conv_model("CONV_2D", x.shape, wts, bias, dt="float32", w_dt="int8", s_w=s_w, zp_w=zp_w, **opts)
    return model, x


@st.composite
def hybrid_dw_case(draw):
    """Random hybrid DEPTHWISE_CONV_2D: depth multiplier from the shapes (option random), optional bias."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    c = draw(st.integers(1, 6))
    dm = draw(st.integers(1, 3))
    o = c * dm
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    bsz = draw(st.integers(1, 3))
    opts = _opts(draw, kh, kw)
    opts["depth_multiplier"] = draw(st.sampled_from([0, 1, dm, dm + 1]))  # ignored: the wheel uses the shapes
    h, w = _fit_valid(draw, opts, h, w, kh, kw)
    x = _float_input(draw, rng, (bsz, h, w, c))
    wts = _filter(draw, rng, (1, kh, kw, o))
    base = np.float32(10 ** draw(st.floats(-4, 0)))
    kind = draw(st.sampled_from(["differ", "differ", "equal"] + (["single"] if o == 1 else [])))
    s_w = {
        "differ": (base * 10 ** rng.uniform(-1, 1, o)).astype(np.float32),
        "equal": np.full(o, base, np.float32),
        "single": base,
    }[kind]
    zp_w = int(rng.integers(-5, 6)) if draw(st.booleans()) else 0
    bias = (rng.standard_normal(o) * 10 ** draw(st.floats(-2, 2))).astype(np.float32) if draw(st.booleans()) else None
    model = _conv_model(
        "DEPTHWISE_CONV_2D", x.shape, wts, bias, dt="float32", w_dt="int8", s_w=s_w, zp_w=zp_w, qdim=3, **opts
    )
    return model, x


# ---------------------------------------------------------------------------------------------
# Differential tests against LiteRT: bit-exact float32 outputs


def _check(litert, case):
    model, x = case
    status = check_against_litert(litert, model, [x])
    event(f"LiteRT {status}")  # --hypothesis-show-statistics: how many cases ran and how many were rejected
    return status


@pytest.mark.oracle
@settings()
@given(hybrid_conv_case("per_tensor"))
def test_conv_hybrid_per_tensor(litert, case):
    # Symmetric input quantization, im2col int32 sums (ruy or the SSE dot product), f32(acc * f32(s_x * s_w)).
    _check(litert, case)


@pytest.mark.oracle
@settings()
@given(hybrid_conv_case("per_channel"))
def test_conv_hybrid_per_channel(litert, case):
    # Asymmetric input quantization, reference HybridConvPerChannel: f32(f32(f32(acc) * s_w[oc]) * s_x).
    _check(litert, case)


@pytest.mark.oracle
@settings()
@given(hybrid_conv_case("grouped"))
def test_conv_hybrid_grouped(litert, case):
    _check(litert, case)


@pytest.mark.oracle
@settings()
@given(hybrid_dw_case())
def test_depthwise_hybrid(litert, case):
    _check(litert, case)


# ---------------------------------------------------------------------------------------------
# Trace and accumulators against the eval path


def _check_trace_all(model, x):
    try:
        data, inputs, out = _op_and_inputs(model, x)
    except RefquantError:
        return
    assert isinstance(data, (ConvHybridData, DepthwiseHybridData))
    accs = data.accumulators(inputs)
    for el in itertools.product(*(range(d) for d in out.shape)):
        steps = data.trace(inputs, 0, el)
        final = steps[-1].value
        assert isinstance(final, np.float32) and final == out[el], (el, steps)
        named = {s.name: s.value for s in steps}
        assert named["acc"] == int(accs["acc"][el]), (el, steps)
        assert named["input scale"] == accs["input_scale"][el[0]]
        assert named["input zero point"] == int(accs["input_zero_point"][el[0]])


@settings()
@given(st.data())
def test_trace_equals_eval(data):
    """Every element's trace (a literal per-element path) ends with the output value; its int32 accumulator
    and input quantization equal ``accumulators()``."""
    strat = data.draw(
        st.sampled_from(
            [hybrid_conv_case("per_tensor"), hybrid_conv_case("per_channel"), hybrid_conv_case("grouped")]
            + [hybrid_dw_case()]
        )
    )
    model, x = data.draw(strat)
    _check_trace_all(model, x)


def test_trace_steps_per_tensor():
    x = np.zeros((1, 1, 1, 16), np.float32)
    x[0, 0, 0, 0] = -127.0  # range 127: inv = 1, q = x
    x[0, 0, 0, 1] = -3.0
    w = np.zeros((3, 1, 1, 16), np.int8)
    w[0, 0, 0, :2] = -128
    model = _conv_model("CONV_2D", x.shape, w, np.array([0.5, 0, 0], np.float32), dt="float32", w_dt="int8",
                        s_w=0.25, **SAME1)  # fmt: skip
    data, inputs, out = _op_and_inputs(model, x)
    assert isinstance(data, ConvHybridData) and not data.asymmetric and data.sign_quirk
    named = {s.name: s.value for s in data.trace(inputs, 0, (0, 0, 0, 0))}
    # exact sum (-127 - 3) * -128 = 16640; the SSE sign quirk adds 256 * (-127 - 3)
    assert named["sum"] == 16640 and named["sign quirk"] == -33280 and named["acc"] == -16640
    assert named["scaling factor"] == np.float32(0.25)  # f32(1.0 * 0.25)
    assert named["scaled"] == np.float32(-4160.0) and named["clamp"] == np.float32(-4159.5) == out[0, 0, 0, 0]
    acc = data.accumulators(inputs)
    assert acc["acc"].dtype == np.int32 and acc["input_q"].dtype == np.int8
    assert acc["input_q"][0, 0, 0, :2].tolist() == [-127, -3] and acc["input_zero_point"].tolist() == [0]
    assert data.params()["sign_quirk"] is True and data.params()["filter_scales"].tolist() == [0.25] * 3


def test_trace_steps_depthwise():
    x = np.arange(8, dtype=np.float32).reshape(2, 2, 2, 1) - 2.0
    w = np.ones((1, 2, 2, 2), np.int8)
    model = _conv_model("DEPTHWISE_CONV_2D", x.shape, w, None, dt="float32", w_dt="int8",
                        s_w=np.array([0.5, 0.25], np.float32), qdim=3, depth_multiplier=2, **SAME1)  # fmt: skip
    data, inputs, out = _op_and_inputs(model, x)
    assert isinstance(data, DepthwiseHybridData) and data.asymmetric and data.depth_multiplier == 2
    steps = data.trace(inputs, 0, (1, 0, 0, 1))
    names = [s.name for s in steps]
    assert names[:2] == ["input scale", "input zero point"] and names[-2:] == ["bias", "clamp"]
    assert steps[-1].value == out[1, 0, 0, 1]
    with pytest.raises(UnsupportedOpError):
        data.trace(inputs, 0, (2, 0, 0, 0))


# ---------------------------------------------------------------------------------------------
# Deterministic cases against the oracle


@pytest.mark.oracle
@pytest.mark.parametrize("o", [3, 4, 5, 8])
@pytest.mark.parametrize("c", [15, 16, 17, 40])
def test_sign_quirk_of_the_sse_dot_product(litert, o, c):
    """A -128 filter value times a negative input in the first K & ~15 columns: LiteRT's SSE dot product
    (output channels not a multiple of 4) adds -128*|q|; ruy's GEMM (multiples of 4) is exact."""
    rng = np.random.default_rng(o * 100 + c)
    x = rng.standard_normal((2, 3, 3, c)).astype(np.float32)
    w = rng.integers(-127, 127, (o, 1, 1, c), endpoint=True).astype(np.int8)
    w[:, 0, 0, ::2] = -128
    model = _conv_model("CONV_2D", x.shape, w, np.zeros(o, np.float32), dt="float32", w_dt="int8", s_w=0.01,
                        padding="VALID", stride_h=1, stride_w=1)  # fmt: skip
    assert check_against_litert(litert, model, [x]) == "ok"
    data, inputs, _ = _op_and_inputs(model, x)
    assert data.sign_quirk == (o % 4 != 0)
    quirk = data.trace(inputs, 0, (0, 0, 0, 0))
    affected = c >= 16 and o % 4 != 0
    assert any(s.name == "sign quirk" and s.value != 0 for s in quirk) == affected


@pytest.mark.oracle
def test_equal_per_channel_scales_run_the_per_tensor_kernel(litert):
    """LiteRT picks the kernel by whether the scales differ, not by how many there are."""
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((2, 5, 5, 3)) + 1.0).astype(np.float32)
    w = rng.integers(-127, 127, (4, 3, 3, 3), endpoint=True).astype(np.int8)
    b = rng.standard_normal(4).astype(np.float32)
    equal = _conv_model("CONV_2D", x.shape, w, b, dt="float32", w_dt="int8", s_w=[0.01] * 4, **SAME1)
    single = _conv_model("CONV_2D", x.shape, w, b, dt="float32", w_dt="int8", s_w=0.01, **SAME1)
    differ = _conv_model("CONV_2D", x.shape, w, b, dt="float32", w_dt="int8", s_w=[0.01] * 3 + [0.02], **SAME1)
    for m in (equal, single, differ):
        assert check_against_litert(litert, m, [x]) == "ok"
    assert not _op_and_inputs(equal, x)[0].asymmetric and _op_and_inputs(differ, x)[0].asymmetric
    out_eq, out_single = run_refquant(equal, [x]).values[3], run_refquant(single, [x]).values[3]
    np.testing.assert_array_equal(out_eq, out_single)


@pytest.mark.oracle
@pytest.mark.parametrize("kernel", ["per_tensor", "per_channel", "dw"])
def test_batches_are_quantized_separately(litert, kernel):
    """Batch elements of very different magnitudes: one scale (and zero point) each, including through the
    per-tensor kernel's im2col rows (strided 3x3) and its direct 1x1 path."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 7, 6, 4)).astype(np.float32)
    x *= np.array([1e-3, 1.0, 1e3], np.float32).reshape(3, 1, 1, 1)
    x[1] += 0.7
    for kh, stride in ((3, 2), (1, 1)):
        if kernel == "dw":
            w = rng.integers(-127, 127, (1, kh, kh, 8), endpoint=True).astype(np.int8)
            s_w = (10 ** rng.uniform(-3, -1, 8)).astype(np.float32)
            m = _conv_model("DEPTHWISE_CONV_2D", x.shape, w, None, dt="float32", w_dt="int8", s_w=s_w, qdim=3,
                            padding="SAME", stride_h=stride, stride_w=stride, depth_multiplier=2)  # fmt: skip
        else:
            w = rng.integers(-127, 127, (5, kh, kh, 4), endpoint=True).astype(np.int8)
            s_w = 0.01 if kernel == "per_tensor" else (10 ** rng.uniform(-3, -1, 5)).astype(np.float32)
            m = _conv_model("CONV_2D", x.shape, w, rng.standard_normal(5).astype(np.float32), dt="float32",
                            w_dt="int8", s_w=s_w, padding="SAME", stride_h=stride, stride_w=stride)  # fmt: skip
        assert check_against_litert(litert, m, [x]) == "ok"
        acc = _op_and_inputs(m, x)[0].accumulators([x, w] + ([] if kernel == "dw" else [np.zeros(5, np.float32)]))
        assert len(set(acc["input_scale"].tolist())) == 3


@pytest.mark.oracle
@pytest.mark.parametrize("act", ACTS)
def test_activations_and_large_values(litert, act):
    """Fused activations (TANH and SIGN_BIT do not clamp), and scales large enough to overflow float32:
    inf is clamped to FLT_MAX."""
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((2, 4, 4, 3)) * 1e30).astype(np.float32)
    w = rng.integers(-127, 127, (3, 2, 2, 3), endpoint=True).astype(np.int8)
    for s_w in (np.float32(0.5), np.array([1e10, 0.5, 2.0], np.float32)):
        m = _conv_model("CONV_2D", x.shape, w, np.ones(3, np.float32), dt="float32", w_dt="int8", s_w=s_w,
                        fused_activation_function=act, **SAME1)  # fmt: skip
        assert check_against_litert(litert, m, [x]) == "ok"
    wd = rng.integers(-127, 127, (1, 2, 2, 3), endpoint=True).astype(np.int8)
    md = _conv_model("DEPTHWISE_CONV_2D", x.shape, wd, None, dt="float32", w_dt="int8", qdim=3,
                     s_w=np.array([1e10, 0.5, 2.0], np.float32), fused_activation_function=act, **SAME1)  # fmt: skip
    assert check_against_litert(litert, md, [x]) == "ok"


@pytest.mark.oracle
def test_filter_zero_point_and_depth_multiplier_option_are_ignored(litert):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 4, 4, 2)).astype(np.float32)
    w = rng.integers(-127, 127, (1, 3, 3, 4), endpoint=True).astype(np.int8)
    s_w = (10 ** rng.uniform(-3, -1, 4)).astype(np.float32)
    outs = []
    for zp_w, dm_opt in ((0, 2), (7, 0), (-3, 1), (0, 3)):
        m = _conv_model("DEPTHWISE_CONV_2D", x.shape, w, None, dt="float32", w_dt="int8", s_w=s_w, qdim=3,
                        zp_w=zp_w, depth_multiplier=dm_opt, **SAME1)  # fmt: skip
        assert check_against_litert(litert, m, [x]) == "ok"
        outs.append(run_refquant(m, [x]).values[2])
    wc = rng.integers(-127, 127, (3, 2, 2, 2), endpoint=True).astype(np.int8)
    for zp_w in (0, 5):
        for s_w in (0.02, [0.02, 0.03, 0.04]):
            m = _conv_model("CONV_2D", x.shape, wc, np.zeros(3, np.float32), dt="float32", w_dt="int8", s_w=s_w,
                            zp_w=zp_w, **SAME1)  # fmt: skip
            assert check_against_litert(litert, m, [x]) == "ok"
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])


@pytest.mark.oracle
def test_empty_output(litert):
    """A VALID window larger than the input gives a 0x0 output: LiteRT returns before quantizing anything."""
    x = np.ones((1, 2, 2, 3), np.float32)
    w = np.ones((2, 3, 3, 3), np.int8)
    m = _conv_model("CONV_2D", x.shape, w, np.zeros(2, np.float32), dt="float32", w_dt="int8", s_w=0.1,
                    padding="VALID", stride_h=4, stride_w=4, dilation_h_factor=1, dilation_w_factor=1)  # fmt: skip
    x3 = np.ones((1, 3, 3, 3), np.float32)
    m3 = _conv_model("CONV_2D", x3.shape, w, np.zeros(2, np.float32), dt="float32", w_dt="int8", s_w=0.1,
                     padding="VALID", stride_h=4, stride_w=4)  # fmt: skip
    for model, xx, shape in ((m, x, (1, 0, 0, 2)), (m3, x3, (1, 1, 1, 2))):
        assert check_against_litert(litert, model, [xx]) == "ok"
        assert run_refquant(model, [xx]).values[3].shape == shape


# ---------------------------------------------------------------------------------------------
# Configurations LiteRT rejects: refquant raises a named error too


def _reject(litert, model, x, cls=RefquantError, match=None):
    assert check_against_litert(litert, model, [x]) == "rejected"
    with pytest.raises(cls, match=match):
        run_refquant(model, [x])


@pytest.mark.oracle
def test_rejected_like_litert(litert):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 4, 4, 4)).astype(np.float32)
    w = rng.integers(-127, 127, (4, 2, 2, 4), endpoint=True).astype(np.int8)
    wg = rng.integers(-127, 127, (4, 2, 2, 2), endpoint=True).astype(np.int8)  # 2 groups
    b = np.zeros(4, np.float32)
    s4 = np.array([0.01, 0.02, 0.03, 0.04], np.float32)
    conv = dict(dt="float32", w_dt="int8", **SAME1)
    # CONV_2D needs a bias, and a float32 one
    _reject(litert, _conv_model("CONV_2D", x.shape, w, None, s_w=0.1, **conv), x, match="bias")
    _reject(litert, _conv_model("CONV_2D", x.shape, w, np.zeros(4, np.int32), bias_dt="int32", bias_scale=None,
                                s_w=0.1, **conv), x, match="bias")  # fmt: skip
    # differing scales along a dimension other than 0; grouped with one scale or along dimension 3
    _reject(litert, _conv_model("CONV_2D", x.shape, w, b, s_w=s4, qdim=3, **conv), x, QuantParamError, "dimension 3")
    _reject(litert, _conv_model("CONV_2D", x.shape, wg, b, s_w=0.1, **conv), x, QuantParamError, "grouped")
    wg8 = rng.integers(-127, 127, (4, 2, 2, 4), endpoint=True).astype(np.int8)
    x8 = rng.standard_normal((1, 4, 4, 8)).astype(np.float32)
    _reject(litert, _conv_model("CONV_2D", x8.shape, wg8, b, s_w=[0.1] * 4, qdim=3, **conv), x8, QuantParamError,
            "grouped")  # fmt: skip
    # DEPTHWISE: one scale for a quantized dimension of size 4; a uint8 filter; an int4 filter (fails at Eval)
    wd = rng.integers(-127, 127, (1, 3, 3, 4), endpoint=True).astype(np.int8)
    dw = dict(dt="float32", depth_multiplier=1, **SAME1)
    _reject(litert, _conv_model("DEPTHWISE_CONV_2D", x.shape, wd, b, w_dt="int8", s_w=0.1, qdim=3, **dw), x,
            QuantParamError, "quantized_dimension")  # fmt: skip
    _reject(litert, _conv_model("DEPTHWISE_CONV_2D", x.shape, wd.view(np.uint8), b, w_dt="uint8", s_w=0.1, qdim=3,
                                **dw), x)  # fmt: skip
    w4 = np.clip(wd, -8, 7).astype(np.int8)
    _reject(litert, _conv_model("DEPTHWISE_CONV_2D", x.shape, w4, b, w_dt="int4", s_w=s4, qdim=3, **dw), x)
    # a bias of the wrong size
    _reject(litert, _conv_model("DEPTHWISE_CONV_2D", x.shape, wd, b[:3], w_dt="int8", s_w=s4, qdim=3, **dw), x)


# ---------------------------------------------------------------------------------------------
# Configurations refquant refuses where LiteRT runs (undefined output, or not reproduced)


@pytest.mark.oracle
def test_per_tensor_depthwise_filter_refused(litert):
    """One scale with quantized_dimension 0 passes LiteRT's Prepare (dimension 0 has size 1), but its kernel
    reads scale[oc] for every output channel, past the end of the array: NaN and ~1e33 that change between
    runs. The converter writes exactly this with ``_experimental_disable_per_channel``."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((1, 4, 4, 4)).astype(np.float32)
    wd = rng.integers(-127, 127, (1, 3, 3, 4), endpoint=True).astype(np.int8)
    m = _conv_model("DEPTHWISE_CONV_2D", x.shape, wd, None, dt="float32", w_dt="int8", s_w=0.1, qdim=0,
                    depth_multiplier=1, **SAME1)  # fmt: skip
    assert litert.run(m, [x]).status == "ok"
    with pytest.raises(UnsupportedOpError, match="past the end of the scale array"):
        run_refquant(m, [x])
    # one output channel: one scale is all the kernel reads
    m1 = _conv_model("DEPTHWISE_CONV_2D", x[..., :1].shape, wd[..., :1], None, dt="float32", w_dt="int8", s_w=0.1,
                     qdim=0, depth_multiplier=1, **SAME1)  # fmt: skip
    assert check_against_litert(litert, m1, [x[..., :1].copy()]) == "ok"


@pytest.mark.oracle
def test_refused_filters(litert):
    """uint8 filters (LiteRT reads the bytes as int8, zero point ignored), int4 CONV_2D filters (not
    implemented) and filters without quantization parameters (LiteRT multiplies by a 0 scale)."""
    x = np.ones((1, 3, 3, 2), np.float32)
    b = np.ones(2, np.float32)
    wu = np.full((2, 1, 1, 2), 130, np.uint8)
    mu = _conv_model("CONV_2D", x.shape, wu, b, dt="float32", w_dt="uint8", s_w=0.1, zp_w=128, **SAME1)
    assert litert.run(mu, [x]).status == "ok"
    with pytest.raises(UnsupportedOpError, match="hybrid CONV_2D with a uint8 filter"):
        run_refquant(mu, [x])
    m4 = _conv_model("CONV_2D", x.shape, np.ones((2, 1, 1, 2), np.int8), b, dt="float32", w_dt="int4", s_w=0.1,
                     **SAME1)  # fmt: skip
    assert litert.run(m4, [x]).status == "ok"
    with pytest.raises(UnsupportedOpError, match="int4"):
        run_refquant(m4, [x])
    xi, wt = tensor(x.shape, "float32", name="x"), const(np.ones((2, 1, 1, 2), np.int8), "int8", name="w")
    m = op_model(
        "CONV_2D", [xi, wt, const(b, "float32", name="b")], [tensor((1, 3, 3, 2), "float32", name="y")], **SAME1
    )
    res = litert.run(m, [x])
    assert res.status == "ok" and (res.outputs[0] == 1).all()  # 0 * acc + bias
    with pytest.raises(QuantParamError, match="no quantization parameters"):
        run_refquant(m, [x])


@pytest.mark.oracle
@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_non_finite_input_refused(litert, bad):
    """LiteRT runs (NaN/inf through its min/max search and float-to-int conversions); refquant raises."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 3, 2)).astype(np.float32)
    x[1, 1, 1, 1] = bad
    w = rng.integers(-127, 127, (2, 2, 2, 2), endpoint=True).astype(np.int8)
    conv = _conv_model("CONV_2D", x.shape, w, np.zeros(2, np.float32), dt="float32", w_dt="int8", s_w=0.1, **SAME1)
    dw = _conv_model("DEPTHWISE_CONV_2D", x.shape, w[:1], None, dt="float32", w_dt="int8", s_w=[0.1, 0.2], qdim=3,
                     depth_multiplier=1, **SAME1)  # fmt: skip
    for m in (conv, dw):
        assert litert.run(m, [x]).status == "ok"
        with pytest.raises(EvalError, match=r"input element \[1, 1, 1, 1\] is"):
            run_refquant(m, [x])


# ---------------------------------------------------------------------------------------------
# Hybrid TRANSPOSE_CONV (Keras Conv2DTranspose under dynamic-range quantization)


@pytest.mark.oracle
@pytest.mark.parametrize(
    "case",
    [
        # (input shape, output shape, kernel, stride, padding, per-channel, bias, activation)
        ((1, 5, 5, 4), (1, 10, 10, 3), 3, 2, "SAME", True, True, "NONE"),
        ((2, 4, 3, 3), (2, 9, 7, 2), 3, 2, "VALID", False, True, "RELU"),
        ((1, 6, 6, 5), (1, 6, 6, 4), 2, 1, "SAME", True, False, "RELU6"),
        ((1, 3, 4, 2), (1, 8, 10, 3), 4, 2, "VALID", True, True, "NONE"),
    ],
)
def test_hybrid_transpose_conv(litert, case):
    """float32 input, int8 weights (per-tensor or per-channel), float32 bias: the converter's dynamic-range
    Conv2DTranspose. Equal to LiteRT's ``HybridTransposeConv`` (asymmetric per-batch input quantization, each
    scattered term scaled in float32 in the scatter loop's order)."""
    x_shape, out_shape, k, s, pad, per_channel, with_bias, act = case
    rng = np.random.default_rng(11)
    oc, ic = out_shape[3], x_shape[3]
    w = rng.integers(-127, 127, (oc, k, k, ic), endpoint=True).astype(np.int8)
    s_w = list(rng.uniform(0.001, 0.02, oc).astype(np.float32)) if per_channel else 0.01
    bias = rng.standard_normal(oc).astype(np.float32) if with_bias else None
    model = _tconv_model(
        out_shape,
        x_shape,
        w,
        bias,
        dt="float32",
        w_dt="int8",
        s_w=s_w,
        padding=pad,
        stride_h=s,
        stride_w=s,
        fused_activation_function=act,
    )
    x = (rng.standard_normal(x_shape) * 3 + 0.5).astype(np.float32)
    assert check_against_litert(litert, model, [x]) == "ok"
