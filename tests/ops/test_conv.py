"""CONV_2D, DEPTHWISE_CONV_2D and TRANSPOSE_CONV against LiteRT BUILTIN_REF (bit-exact, float32 included),
the fast paths against the literal per-element trace path, and deterministic edge cases and rejections."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import refquant
from refquant.errors import PrepareError, QuantParamError, RefquantError, UnsupportedOpError
from refquant.testing import const, op_model, tensor
from tests.opcheck import check_against_litert, run_refquant

INFO = {"int8": np.iinfo(np.int8), "uint8": np.iinfo(np.uint8), "int16": np.iinfo(np.int16)}
ACTS = ["NONE", "RELU", "RELU6", "RELU_N1_TO_1"]
W_DT = {"int8": "int8", "int16": "int8", "uint8": "uint8", "float32": "float32"}


def _rand_int(rng, dt, shape, lo=None, hi=None):
    info = INFO[dt]
    lo = info.min if lo is None else lo
    hi = info.max if hi is None else hi
    return rng.integers(lo, hi, size=shape, endpoint=True).astype(dt)


def _quant(dt, scale, zp, qdim=0):
    return {} if dt == "float32" else {"scale": scale, "zero_point": zp, "quantized_dimension": qdim}


def _bias_tensor(bias, bias_dt, scale, bias_zp=0):
    if bias_dt == "float32":
        return const(bias, "float32", name="b")
    if scale is None:
        return const(bias, bias_dt, name="b")
    return const(bias, bias_dt, scale=scale, zero_point=bias_zp, name="b")


def _conv_model(
    op,
    x_shape,
    w,
    bias,
    *,
    dt="int8",
    s_in=0.05,
    zp_in=0,
    s_w=0.02,
    zp_w=0,
    qdim=None,
    s_out=0.1,
    zp_out=0,
    bias_dt=None,
    bias_scale="auto",
    bias_zp=0,
    w_dt=None,
    omit_bias_slot=False,
    **options,
) -> bytes:
    """A one-op CONV_2D or DEPTHWISE_CONV_2D model (quantization arguments ignored for float32)."""
    x = tensor(x_shape, dt, name="x", **_quant(dt, s_in, zp_in))
    w_dt = w_dt or W_DT[dt]
    if qdim is None:
        qdim = 0 if op == "CONV_2D" else 3
    wt = const(w, w_dt, name="w", **_quant(w_dt, s_w, zp_w, qdim))
    ins = [x, wt]
    if bias is not None:
        bias_dt = bias_dt or {"int8": "int32", "uint8": "int32", "int16": "int64", "float32": "float32"}[dt]
        if isinstance(bias_scale, str):
            bias_scale = np.float32(s_in) * np.asarray(s_w, np.float32)
        ins.append(_bias_tensor(bias, bias_dt, bias_scale, bias_zp))
    elif omit_bias_slot:
        ins.append(None)
    return op_model(op, ins, [tensor((1, 1, 1, 1), dt, name="y", **_quant(dt, s_out, zp_out))], **options)


def _tconv_model(
    out_shape,
    x_shape,
    w,
    bias,
    *,
    dt="int8",
    s_in=0.05,
    zp_in=0,
    s_w=0.02,
    zp_w=0,
    s_out=0.1,
    zp_out=0,
    bias_dt=None,
    bias_scale="auto",
    bias_zp=0,
    w_dt=None,
    omit_bias_slot=False,
    shape_dt="int32",
    shape_input=False,
    **options,
) -> bytes:
    """A one-op TRANSPOSE_CONV model: inputs (output_shape, weights [O,KH,KW,I], input, optional bias).

    ``shape_input``: output_shape is the first graph input (fed at run time) instead of a constant.
    """
    if shape_input:
        shp = tensor((len(out_shape),), shape_dt, name="output_shape")
    else:
        shp = const(np.asarray(out_shape), shape_dt, name="output_shape")
    w_dt = w_dt or W_DT[dt]
    wt = const(w, w_dt, name="w", **_quant(w_dt, s_w, zp_w, 0))
    x = tensor(x_shape, dt, name="x", **_quant(dt, s_in, zp_in))
    ins = [shp, wt, x]
    if bias is not None:
        bias_dt = bias_dt or {"int8": "int32", "uint8": "int32", "int16": "int64", "float32": "float32"}[dt]
        if isinstance(bias_scale, str):
            bias_scale = np.float32(s_in) * np.asarray(s_w, np.float32)
        ins.append(_bias_tensor(bias, bias_dt, bias_scale, bias_zp))
    elif omit_bias_slot:
        ins.append(None)
    y = tensor(out_shape if len(out_shape) == 4 else (1, 1, 1, 1), dt, name="y", **_quant(dt, s_out, zp_out))
    return op_model("TRANSPOSE_CONV", ins, [y], **options)


def _scales(rng, n, per_channel):
    s = 10 ** rng.uniform(-4, -1, n if per_channel else 1)
    return s.astype(np.float32)


def _out_scale(rng, s_in, s_w, depth):
    """An output scale that puts typical accumulators near the middle of the output range, spread x/÷ 16."""
    gmean = float(np.exp(np.log(np.asarray(s_w, np.float64)).mean()))
    return np.float32(float(s_in) * gmean * np.sqrt(depth) * 80.0 * 10 ** rng.uniform(-1.2, 1.2))


def _quant_params(rng, dt, channels, depth, per_channel):
    s_in = np.float32(10 ** rng.uniform(-3, 0))
    s_w = _scales(rng, channels, per_channel)
    if dt == "int8":
        zp_in, zp_out = int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
    elif dt == "uint8":
        zp_in, zp_out = int(rng.integers(0, 256)), int(rng.integers(0, 256))
    else:
        zp_in = zp_out = 0
    s_out = _out_scale(rng, s_in, s_w, depth)
    if rng.random() < 0.05:  # effective multipliers above 1: MBQM left shifts (which may wrap in int32)
        s_out = np.float32(s_out / 10 ** rng.uniform(2, 4))
    return s_in, s_w, zp_in, zp_out, s_out


def _bias(rng, dt, n, bias_dt=None):
    if dt == "float32":
        return rng.normal(0, 1, n).astype(np.float32)
    bias_dt = bias_dt or ("int64" if dt == "int16" else "int32")
    mag = 2**14 if dt != "int16" else 2**26
    if rng.random() < 0.15:  # up to the full int32 range: the int32 accumulator may wrap
        mag = 2**31 - 1 if bias_dt == "int32" else 2**40
    return rng.integers(-mag, mag, n, endpoint=True).astype(bias_dt)


def _input(rng, dt, shape):
    if dt == "float32":
        return rng.normal(0, 2, shape).astype(np.float32)
    return _rand_int(rng, dt, shape)


def _weights(rng, dt, shape):
    if dt == "float32":
        return rng.normal(0, 0.5, shape).astype(np.float32)
    if dt == "uint8":
        return _rand_int(rng, "uint8", shape)
    return _rand_int(rng, "int8", shape)  # -128 included: LiteRT does not restrict weights to [-127, 127]


# ---------------------------------------------------------------------------------------------
# Hypothesis cases


def _draw_bias_option(draw, dt):
    """quantized_bias_type for an int64 (int16) bias: FLOAT32 (default) or INT64; ignored by other types."""
    if dt == "int16":
        return draw(st.sampled_from(["FLOAT32", "INT64"]))
    return draw(st.sampled_from(["FLOAT32", "FLOAT32", "INT32", "INT64"]))


def _fit_valid(draw, opts, h, w, kh, kw):
    """With VALID padding, grow the input to the effective kernel size, except in 1 case of 10 (rejections)."""
    if opts["padding"] == "VALID" and draw(st.integers(0, 9)) > 0:
        h = max(h, (kh - 1) * opts["dilation_h_factor"] + 1)
        w = max(w, (kw - 1) * opts["dilation_w_factor"] + 1)
    return h, w


@st.composite
def conv_case(draw, dt, per_channel=True, int32_bias=False):
    """Random CONV_2D: shapes, groups, strides, dilations, padding, activation, scales, zero points."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    groups = draw(st.sampled_from([1, 1, 1, 2, 3]))
    ig = draw(st.integers(1, 4))
    og = draw(st.integers(1, 4))
    c, o = ig * groups, og * groups
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    bsz = draw(st.integers(1, 2))
    opts = dict(
        padding=draw(st.sampled_from(["SAME", "VALID"])),
        stride_h=draw(st.integers(1, 3)),
        stride_w=draw(st.integers(1, 3)),
        dilation_h_factor=draw(st.integers(1, 3)),
        dilation_w_factor=draw(st.integers(1, 3)),
        fused_activation_function=draw(st.sampled_from(ACTS)),
    )
    h, w = _fit_valid(draw, opts, h, w, kh, kw)
    x = _input(rng, dt, (bsz, h, w, c))
    wts = _weights(rng, dt, (o, kh, kw, ig))
    kwargs = {}
    if dt != "float32":
        s_in, s_w, zp_in, zp_out, s_out = _quant_params(rng, dt, o, kh * kw * ig, per_channel)
        kwargs = dict(s_in=s_in, s_w=s_w, zp_in=zp_in, zp_out=zp_out, s_out=s_out)
        if dt == "uint8":
            kwargs["zp_w"] = int(rng.integers(0, 256))
            if rng.random() < 0.1:  # a bias scale LiteRT rejects (off by more than 2% of an output step)
                kwargs["bias_scale"] = np.float32(s_in * s_w[0] + s_out * 0.5)
    bias_dt = None
    if int32_bias:
        bias_dt = "int32"
        opts["quantized_bias_type"] = "INT32"
    else:
        opts["quantized_bias_type"] = _draw_bias_option(draw, dt)
    bias = _bias(rng, dt, o, bias_dt)
    return _conv_model("CONV_2D", x.shape, wts, bias, dt=dt, bias_dt=bias_dt, **kwargs, **opts), x


@st.composite
def dw_case(draw, dt, per_channel=True):
    """Random DEPTHWISE_CONV_2D: depth multiplier from the shapes (option random), filter zp random for int8."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    c = draw(st.integers(1, 5))
    dm = draw(st.integers(1, 3))
    o = c * dm
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    bsz = draw(st.integers(1, 2))
    opts = dict(
        padding=draw(st.sampled_from(["SAME", "VALID"])),
        stride_h=draw(st.integers(1, 3)),
        stride_w=draw(st.integers(1, 3)),
        dilation_h_factor=draw(st.integers(1, 3)),
        dilation_w_factor=draw(st.integers(1, 3)),
        fused_activation_function=draw(st.sampled_from(ACTS)),
        depth_multiplier=draw(st.sampled_from([0, 1, dm, dm + 1])),
    )
    h, w = _fit_valid(draw, opts, h, w, kh, kw)
    x = _input(rng, dt, (bsz, h, w, c))
    wts = _weights(rng, dt, (1, kh, kw, o))
    kwargs = {}
    if dt != "float32":
        s_in, s_w, zp_in, zp_out, s_out = _quant_params(rng, dt, o, kh * kw, per_channel)
        kwargs = dict(s_in=s_in, s_w=s_w, zp_in=zp_in, zp_out=zp_out, s_out=s_out)
        if dt == "uint8":
            kwargs["zp_w"] = int(rng.integers(0, 256))
        elif dt == "int8" and rng.random() < 0.3:
            kwargs["zp_w"] = int(rng.integers(-20, 20))  # ignored by the int8 kernel
    bias = _bias(rng, dt, o) if draw(st.booleans()) else None
    return _conv_model("DEPTHWISE_CONV_2D", x.shape, wts, bias, dt=dt, **kwargs, **opts), x


@st.composite
def tconv_case(draw, dt, per_channel=True, int32_bias=False, shape_input=False):
    """Random TRANSPOSE_CONV: output size consistent with the input (sometimes not), optional bias.

    ``shape_input``: output_shape is a graph input and the case is ``(model, [output_shape, x])``.
    """
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    c, o = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    padding = draw(st.sampled_from(["SAME", "VALID"]))
    bsz = draw(st.integers(1, 2))

    def out_size(i, k, s):
        if padding == "SAME":
            lo, hi = (i - 1) * s + 1, i * s
        else:
            lo, hi = (i - 1) * s + k, (i - 1) * s + k + s - 1
        v = draw(st.integers(lo, hi))
        return v + (draw(st.sampled_from([-1, 1])) if draw(st.integers(0, 19)) == 0 else 0)

    oh, ow = out_size(h, kh, sh), out_size(w, kw, sw)
    opts = dict(padding=padding, stride_h=sh, stride_w=sw, fused_activation_function=draw(st.sampled_from(ACTS)))
    x = _input(rng, dt, (bsz, h, w, c))
    wts = _weights(rng, dt, (o, kh, kw, c))
    kwargs = {}
    if dt != "float32":
        s_in, s_w, zp_in, zp_out, s_out = _quant_params(rng, dt, o, kh * kw * c, per_channel)
        kwargs = dict(s_in=s_in, s_w=s_w, zp_in=zp_in, zp_out=zp_out, s_out=s_out)
        if dt == "uint8":
            kwargs["zp_w"] = int(rng.integers(0, 256))
    bias_dt = None
    if int32_bias:
        bias_dt = "int32"
        opts["quantized_bias_type"] = "INT32"
    else:
        opts["quantized_bias_type"] = _draw_bias_option(draw, dt)
    bias = _bias(rng, dt, o, bias_dt) if draw(st.booleans()) else None
    out_shape = (bsz, max(oh, 1), max(ow, 1), o)
    model = _tconv_model(
        out_shape, x.shape, wts, bias, dt=dt, bias_dt=bias_dt, shape_input=shape_input, **kwargs, **opts
    )
    if shape_input:
        return model, [np.asarray(out_shape, np.int32), x]
    return model, x


# ---------------------------------------------------------------------------------------------
# Differential tests against LiteRT


def _check(litert, case):
    model, x = case
    return check_against_litert(litert, model, [x])


@pytest.mark.oracle
@settings()
@given(conv_case("int8", per_channel=True))
def test_conv2d_int8_per_channel(litert, case):
    _check(litert, case)


@pytest.mark.oracle
@settings()
@given(conv_case("int8", per_channel=False))
def test_conv2d_int8_per_tensor(litert, case):
    _check(litert, case)


@pytest.mark.oracle
@settings()
@given(conv_case("int16"))
def test_conv2d_int16_int64_bias(litert, case):
    _check(litert, case)


@pytest.mark.oracle
@settings()
@given(conv_case("int16", int32_bias=True))
def test_conv2d_int16_int32_bias(litert, case):
    _check(litert, case)


@pytest.mark.oracle
@settings()
@given(conv_case("uint8", per_channel=False))
def test_conv2d_uint8(litert, case):
    _check(litert, case)


@pytest.mark.oracle
@settings()
@given(conv_case("float32"))
def test_conv2d_float32(litert, case):
    # Bit-exact: refquant adds float32 products sequentially in the reference loop order.
    _check(litert, case)


@pytest.mark.oracle
@settings()
@given(dw_case("int8", per_channel=True))
def test_depthwise_int8_per_channel(litert, case):
    _check(litert, case)


@pytest.mark.oracle
@settings()
@given(dw_case("int8", per_channel=False))
def test_depthwise_int8_per_tensor(litert, case):
    _check(litert, case)


@pytest.mark.oracle
@settings()
@given(dw_case("int16"))
def test_depthwise_int16(litert, case):
    _check(litert, case)


@pytest.mark.oracle
@settings()
@given(dw_case("uint8", per_channel=False))
def test_depthwise_uint8(litert, case):
    _check(litert, case)


@pytest.mark.oracle
@settings()
@given(dw_case("float32"))
def test_depthwise_float32(litert, case):
    _check(litert, case)


@pytest.mark.oracle
@settings()
@given(tconv_case("int8", per_channel=True))
def test_transpose_conv_int8_per_channel(litert, case):
    _check(litert, case)


@pytest.mark.oracle
@settings()
@given(tconv_case("int8", per_channel=False))
def test_transpose_conv_int8_per_tensor(litert, case):
    _check(litert, case)


@pytest.mark.oracle
@settings()
@given(tconv_case("int16"))
def test_transpose_conv_int16_int64(litert, case):
    _check(litert, case)


@pytest.mark.oracle
@settings()
@given(tconv_case("int16", int32_bias=True))
def test_transpose_conv_int16_int32(litert, case):
    _check(litert, case)


@pytest.mark.oracle
@settings()
@given(tconv_case("uint8", per_channel=False))
def test_transpose_conv_uint8(litert, case):
    _check(litert, case)


@pytest.mark.oracle
@settings()
@given(tconv_case("float32"))
def test_transpose_conv_float32(litert, case):
    _check(litert, case)


# ---------------------------------------------------------------------------------------------
# Fast path == literal per-element path (trace), for every element of small random cases


def _op_and_inputs(model, x, rounding="double"):
    tr = run_refquant(model, [x], rounding=rounding)
    op = tr.model.subgraphs[0].operators[0]
    data = tr.op_data[0]
    inputs = [tr.values[i] if i >= 0 else None for i in op.inputs]
    return data, inputs, tr.values[op.outputs[0]]


def _check_trace_all(model, x, rounding="double"):
    try:
        data, inputs, out = _op_and_inputs(model, x, rounding)
    except RefquantError:
        return
    acc = data.accumulators(inputs)["acc"]
    for el in itertools.product(*(range(d) for d in out.shape)):
        steps = data.trace(inputs, 0, el)
        final = steps[-1].value
        if out.dtype.kind == "f":
            assert np.float32(final) == out[el] or (np.isnan(final) and np.isnan(out[el])), (el, steps)
        else:
            assert int(final) == int(out[el]), (el, steps)
            acc_step = next(s for s in steps if s.name == "acc")
            assert int(acc_step.value) == int(acc[el]), (el, steps)


@settings()
@given(
    st.sampled_from(["int8", "int16", "uint8", "float32"]),
    st.sampled_from(["conv", "dw", "tconv"]),
    st.sampled_from(["double", "single"]),
    st.data(),
)
def test_fast_path_equals_trace(dt, kind, rounding, data):
    strat = {"conv": conv_case, "dw": dw_case, "tconv": tconv_case}[kind]
    per_channel = dt != "uint8"
    model, x = data.draw(strat(dt, per_channel=per_channel))
    _check_trace_all(model, x, rounding)


def test_im2col_row_blocks_match_single_block(monkeypatch):
    from refquant.ops.conv import common

    rng = np.random.default_rng(3)
    x = _rand_int(rng, "int8", (2, 11, 9, 6))
    w = _rand_int(rng, "int8", (4, 3, 3, 3), -127, 127)
    model = _conv_model(
        "CONV_2D", x.shape, w, rng.integers(-999, 999, 4).astype(np.int32), s_w=_scales(rng, 4, True), s_out=1.0,
        padding="SAME", stride_h=2, stride_w=1, dilation_h_factor=2, dilation_w_factor=1,
    )  # fmt: skip
    full = run_refquant(model, [x]).values[3]
    for block in (1, 1000, 3000):  # one row per block, two rows per block, one batch element per block
        monkeypatch.setattr(common, "_IM2COL_BLOCK", block)
        blocks = run_refquant(model, [x]).values[3]
        np.testing.assert_array_equal(full, blocks)


# ---------------------------------------------------------------------------------------------
# Fast float64 paths (refquant.ops.fastpath) == the readable kernel (eval_reference)


def _assert_fast_equals_reference(data, inputs):
    """Every fast mode that applies gives the readable kernel's output; returns the prepared FoldedRequant."""
    ref = data.eval_reference(inputs)[0]
    np.testing.assert_array_equal(data.eval(inputs)[0], ref)
    fr = getattr(data, "fast", None)
    if fr is None:
        return None
    modes = {fr.mode, "checked"}  # "folded" only where prepare proved it exact
    for mode in modes:
        got = data._eval_fast(inputs, mode)
        assert got.dtype == ref.dtype
        np.testing.assert_array_equal(got, ref, err_msg=f"mode {mode}")
    # checked mode with every block falling back to the literal requantization
    fallback = dataclasses.replace(data, fast=dataclasses.replace(fr, checked_limit=-1.0))
    np.testing.assert_array_equal(fallback._eval_fast(inputs, "checked"), ref)
    return fr


@settings()
@given(
    st.sampled_from(["int8", "int16", "int16-int32-bias", "uint8"]),
    st.sampled_from(["conv", "dw"]),
    st.sampled_from(["double", "single"]),
    st.data(),
)
def test_fast_paths_equal_reference(dt, kind, rounding, data):
    if dt == "int16-int32-bias":
        model, x = data.draw(conv_case("int16", int32_bias=True))
    else:
        strat = {"conv": conv_case, "dw": dw_case}[kind]
        model, x = data.draw(strat(dt, per_channel=dt != "uint8"))
    try:
        opdata, inputs, _ = _op_and_inputs(model, x, rounding)
    except RefquantError:
        return
    _assert_fast_equals_reference(opdata, inputs)


@settings()
@given(
    dt=st.sampled_from(["int8", "uint8", "int16"]),
    rounding=st.sampled_from(["double", "single"]),
    seed=st.integers(0, 2**32 - 1),
    k=st.sampled_from([1, 1, 3]),
    c=st.integers(11, 90),
    o=st.integers(1, 40),
    stride=st.integers(1, 2),
    act=st.sampled_from(ACTS),
    big_bias=st.booleans(),
)
def test_fast_paths_deep_convolutions(dt, rounding, seed, k, c, o, stride, act, big_bias):
    """Depths of 32 and more take the float32 GEMM (exact bias-free sums, then float64 requantization)."""
    rng = np.random.default_rng(seed)
    x = _input(rng, dt, (int(rng.integers(1, 3)), int(rng.integers(1, 7)), int(rng.integers(1, 7)), c))
    w = _weights(rng, dt, (o, k, k, c))
    s_in, s_w, zp_in, zp_out, s_out = _quant_params(rng, dt, o, k * k * c, dt != "uint8")
    kwargs = dict(s_in=s_in, s_w=s_w, zp_in=zp_in, zp_out=zp_out, s_out=s_out)
    if dt == "uint8":
        kwargs["zp_w"] = int(rng.integers(0, 256))
    bias = _bias(rng, dt, o)
    if big_bias:
        bias = rng.integers(-(2**24), 2**24, o).astype(bias.dtype)
    model = _conv_model(
        "CONV_2D", x.shape, w, bias, dt=dt, padding="SAME", stride_h=stride, stride_w=stride,
        dilation_h_factor=1, dilation_w_factor=1, fused_activation_function=act, **kwargs,
    )  # fmt: skip
    opdata, inputs, _ = _op_and_inputs(model, x, rounding)
    _assert_fast_equals_reference(opdata, inputs)


@pytest.mark.parametrize("op", ["CONV_2D", "DEPTHWISE_CONV_2D"])
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("zp_out", [-128, -5, 0, 90])
@pytest.mark.parametrize("rounding", ["double", "single"])
def test_fast_path_rounding_ties(op, act, zp_out, rounding):
    """Power-of-two multipliers make every rounding tie appear: floor(t) with the y < 0 correction (double
    rounding), the skipped correction under a ReLU clamp, and clamping at both ends, all in folded mode."""
    rng = np.random.default_rng(zp_out + 128 + 1000 * ACTS.index(act))
    c = 4
    x = np.arange(-128, 128, dtype=np.int8).reshape(1, 16, 16, 1).repeat(c, axis=3)
    w_shape = (c, 1, 1, c) if op == "CONV_2D" else (1, 1, 1, c)
    w = rng.integers(-3, 4, w_shape).astype(np.int8)
    w[..., 0] = 1
    # effective multipliers 2^-1 .. 2^-4 per channel: r = 1..4, ties at every multiple of 2^(r-1)
    s_w = np.float32(0.5) ** np.arange(1, c + 1, dtype=np.float32)
    model = _conv_model(
        op, x.shape, w, rng.integers(-40, 40, c).astype(np.int32), s_in=1.0, s_w=s_w, s_out=1.0, zp_in=3,
        zp_out=zp_out, padding="SAME", stride_h=1, stride_w=1, dilation_h_factor=1, dilation_w_factor=1,
        fused_activation_function=act,
    )  # fmt: skip
    opdata, inputs, _ = _op_and_inputs(model, x, rounding)
    fr = _assert_fast_equals_reference(opdata, inputs)
    assert fr is not None and fr.mode == "folded"
    assert (fr.neg_fix is not None) == (rounding == "double" and opdata.act_min < zp_out)


@pytest.mark.parametrize("op", ["CONV_2D", "DEPTHWISE_CONV_2D"])
def test_fast_path_checked_mode_for_large_bounds(op):
    """A filter whose static bound exceeds the folded limit runs in checked mode; still exact."""
    rng = np.random.default_rng(7)
    c, k = (48, 3) if op == "CONV_2D" else (8, 5)
    x = _rand_int(rng, "int8", (1, 6, 6, c))
    w = _rand_int(rng, "int8", (4, k, k, c) if op == "CONV_2D" else (1, k, k, c), 120, 127)
    o = w.shape[0] if op == "CONV_2D" else c
    model = _conv_model(
        op, x.shape, w, rng.integers(-9, 9, o).astype(np.int32), s_in=0.5, s_w=_scales(rng, o, True),
        s_out=np.float32(1e-4 if op == "CONV_2D" else 3e-4), zp_in=-128, zp_out=4,
        padding="SAME", stride_h=1, stride_w=1, dilation_h_factor=1, dilation_w_factor=1,
    )  # fmt: skip
    opdata, inputs, _ = _op_and_inputs(model, x)
    fr = _assert_fast_equals_reference(opdata, inputs)
    assert fr is not None
    if op == "CONV_2D":
        assert fr.mode == "checked"


@pytest.mark.parametrize("block", [1, 5, 300])
@pytest.mark.parametrize("weight_block", [1, 7, 1 << 17])
def test_fast_path_blocks(monkeypatch, block, weight_block):
    """Row blocks, output-channel chunks, strided (phase-split) depthwise and grouped convolutions."""
    from refquant.ops import fastpath
    from refquant.ops.conv import conv2d

    monkeypatch.setattr(fastpath, "BLOCK_ELEMENTS", block)
    monkeypatch.setattr(conv2d, "_WEIGHT_BLOCK", weight_block)
    rng = np.random.default_rng(block + weight_block)
    cases = [
        ("CONV_2D", (2, 7, 9, 6), (5, 1, 1, 6), dict(stride_h=1, stride_w=1)),
        ("CONV_2D", (2, 9, 8, 6), (4, 3, 3, 3), dict(stride_h=2, stride_w=1)),  # 2 groups
        ("CONV_2D", (1, 9, 8, 3), (4, 1, 1, 3), dict(stride_h=2, stride_w=2)),
        ("CONV_2D", (2, 5, 4, 6), (4, 1, 1, 3), dict(stride_h=1, stride_w=1)),  # grouped pointwise
        ("CONV_2D", (1, 6, 5, 40), (3, 1, 1, 40), dict(stride_h=1, stride_w=1)),  # float32 GEMM (depth >= 32)
        ("CONV_2D", (1, 6, 5, 8), (3, 3, 3, 8), dict(stride_h=1, stride_w=2)),  # float32 im2col GEMM
        ("DEPTHWISE_CONV_2D", (2, 9, 11, 3), (1, 3, 3, 6), dict(stride_h=2, stride_w=2)),
        ("DEPTHWISE_CONV_2D", (1, 10, 7, 4), (1, 3, 2, 4), dict(stride_h=1, stride_w=3, dilation_w_factor=2)),
    ]
    for op, xs, ws, opts in cases:
        o = ws[0] if op == "CONV_2D" else ws[3]
        model = _conv_model(
            op, xs, _rand_int(rng, "int8", ws), rng.integers(-999, 999, o).astype(np.int32),
            s_w=_scales(rng, o, True), s_out=np.float32(0.01), zp_in=-7, zp_out=3,
            **{"padding": "SAME", "dilation_h_factor": 1, "dilation_w_factor": 1, **opts},
        )  # fmt: skip
        opdata, inputs, _ = _op_and_inputs(model, _rand_int(rng, "int8", xs))
        assert _assert_fast_equals_reference(opdata, inputs) is not None


@settings()
@given(kind=st.sampled_from(["conv", "dw"]), block=st.sampled_from([1, 7, 64, 1 << 16]), data=st.data())
def test_float_blocked_sums_equal_unblocked(kind, block, data):
    """The blocked float32 kernels do the same float32 steps as the unblocked readable loops (bit for bit,
    signed zeros, inf and NaN included)."""
    from refquant.ops import fastpath

    strat = {"conv": conv_case, "dw": dw_case}[kind]
    model, x = data.draw(strat("float32"))
    if data.draw(st.booleans()):
        x = x.copy()
        x.reshape(-1)[:: max(1, x.size // 5)] = data.draw(st.sampled_from([np.inf, -np.inf, np.nan, -0.0, 0.0]))
    try:
        opdata, inputs, _ = _op_and_inputs(model, x)
    except RefquantError:
        return
    old = fastpath.BLOCK_ELEMENTS
    try:
        fastpath.BLOCK_ELEMENTS = block
        with np.errstate(all="ignore"):
            fast = opdata._total(inputs, blocked=True)
            ref = opdata._total(inputs, blocked=False)
    finally:
        fastpath.BLOCK_ELEMENTS = old
    _assert_same_floats(fast, ref)


def _assert_same_floats(a, b):
    """Equal values, equal signs of zeros; NaN equal to any NaN (its sign and payload depend on which
    operand the hardware propagates, which LiteRT does not fix either)."""
    nan = np.isnan(a)
    np.testing.assert_array_equal(nan, np.isnan(b))
    np.testing.assert_array_equal(np.where(nan, 0, a).view(np.int32), np.where(nan, 0, b).view(np.int32))


def test_fast_path_not_used_without_constant_filter():
    from refquant.requantize import prepare_folded_requant

    assert (
        prepare_folded_requant(
            multiplier=np.array([2**30]),
            shift=np.array([-1]),
            kind="double",
            weights=None,
            bias=None,
            input_offset=0,
            filter_offset=0,
            x_max_abs=128,
            output_offset=0,
            act_min=-128,
            act_max=127,
            out_dtype="int8",
        )  # fmt: skip
        is None
    )


def test_trace_steps_conv_int8():
    x = np.arange(-8, 8, dtype=np.int8).reshape(1, 4, 4, 1)
    w = np.ones((1, 3, 3, 1), np.int8)
    model = _conv_model(
        "CONV_2D", x.shape, w, np.array([7], np.int32), s_in=0.5, s_w=0.5, s_out=1.0, zp_in=1, zp_out=-3,
        padding="SAME", stride_h=1, stride_w=1, dilation_h_factor=1, dilation_w_factor=1,
    )  # fmt: skip
    data, inputs, out = _op_and_inputs(model, x)
    steps = data.trace(inputs, 0, (0, 0, 0, 0))
    names = [s.name for s in steps]
    assert names[:6] == ["window", "positions", "in image", "taps", "offsets", "sum"]
    assert names[-4:] == ["SRDHM", "RDBPOT", "+ zero point", "clamp"]
    # window at (0,0): in-image taps are x[0:2, 0:2] = [-8,-7,-4,-3]; offset -1 each; sum -26; + bias 7
    assert dict((s.name, s.value) for s in steps)["sum"] == -26
    assert dict((s.name, s.value) for s in steps)["acc"] == -19
    assert steps[-1].value == out[0, 0, 0, 0]
    with pytest.raises(UnsupportedOpError):
        data.trace(inputs, 0, (0, 9, 0, 0))


# ---------------------------------------------------------------------------------------------
# Deterministic edge cases against the oracle


def _base_int8(rng, c=2, o=3, k=3):
    x = _rand_int(rng, "int8", (1, 5, 5, c))
    w = _rand_int(rng, "int8", (o, k, k, c), -127, 127)
    b = rng.integers(-500, 500, o).astype(np.int32)
    return x, w, b


CONV_OPTS = dict(padding="SAME", stride_h=1, stride_w=1, dilation_h_factor=1, dilation_w_factor=1)


@pytest.mark.oracle
def test_conv_without_bias_rejected(litert):
    rng = np.random.default_rng(0)
    x, w, _ = _base_int8(rng)
    assert check_against_litert(litert, _conv_model("CONV_2D", x.shape, w, None, **CONV_OPTS), [x]) == "rejected"
    model = _conv_model("CONV_2D", x.shape, w, None, omit_bias_slot=True, **CONV_OPTS)
    assert check_against_litert(litert, model, [x]) == "rejected"


@pytest.mark.oracle
def test_conv_valid_kernel_larger_than_input(litert):
    rng = np.random.default_rng(1)
    x = _rand_int(rng, "int8", (1, 2, 2, 2))
    w = _rand_int(rng, "int8", (3, 5, 5, 2), -127, 127)
    b = np.zeros(3, np.int32)
    opts = dict(CONV_OPTS, padding="VALID")
    # (2 + 1 - 5) / 1 < 0: rejected; (2 + 2 - 5) / 2 truncates to 0: an empty output, no error.
    assert check_against_litert(litert, _conv_model("CONV_2D", x.shape, w, b, **opts), [x]) == "rejected"
    opts2 = dict(opts, stride_h=2, stride_w=2)
    assert check_against_litert(litert, _conv_model("CONV_2D", x.shape, w, b, **opts2), [x]) == "ok"
    out = run_refquant(_conv_model("CONV_2D", x.shape, w, b, **opts2), [x]).values[3]
    assert out.shape == (1, 0, 0, 3)


@pytest.mark.oracle
def test_conv_nonzero_filter_zero_point_rejected(litert):
    rng = np.random.default_rng(2)
    x, w, b = _base_int8(rng)
    model = _conv_model("CONV_2D", x.shape, w, b, s_w=[0.01, 0.02, 0.03], zp_w=[0, 1, 0], **CONV_OPTS)
    assert check_against_litert(litert, model, [x]) == "rejected"
    with pytest.raises(QuantParamError):
        run_refquant(model, [x])


@pytest.mark.oracle
def test_conv_large_multiplier_wraps(litert):
    # Effective multiplier 1e6 (shift 20): the int32 left shift wraps as in the C++ kernel.
    x = np.full((1, 1, 1, 1), 127, np.int8)
    w = np.full((1, 1, 1, 1), 127, np.int8)
    model = _conv_model("CONV_2D", x.shape, w, np.zeros(1, np.int32), s_in=1.0, s_w=1.0, s_out=1e-6, **CONV_OPTS)
    assert check_against_litert(litert, model, [x]) == "ok"


@pytest.mark.oracle
@pytest.mark.parametrize("act", ["TANH", "SIGN_BIT"])
@pytest.mark.parametrize("op", ["CONV_2D", "DEPTHWISE_CONV_2D"])
def test_tanh_sign_bit_activation_means_no_clamp(litert, act, op):
    rng = np.random.default_rng(4)
    x = _rand_int(rng, "int8", (1, 4, 4, 3))
    w = _rand_int(rng, "int8", (3, 2, 2, 3) if op == "CONV_2D" else (1, 2, 2, 3), -127, 127)
    model = _conv_model(op, x.shape, w, np.zeros(3, np.int32), s_out=0.01, fused_activation_function=act, **CONV_OPTS)
    assert check_against_litert(litert, model, [x]) == "ok"


@pytest.mark.oracle
def test_conv_int16_int32_accumulator_wraps(litert):
    x = np.full((1, 2, 2, 1), 32767, np.int16)
    w = np.full((1, 2, 2, 1), 127, np.int8)
    bias = np.array([2**31 - 10], np.int32)
    opts = dict(CONV_OPTS, padding="VALID", quantized_bias_type="INT32")
    model = _conv_model("CONV_2D", x.shape, w, bias, dt="int16", bias_dt="int32", s_out=0.5, **opts)
    assert check_against_litert(litert, model, [x]) == "ok"


def test_conv_int16_int32_bias_without_option_is_refused():
    # LiteRT reads the int32 bias as int64 (garbage output); refquant refuses instead.
    x = np.zeros((1, 3, 3, 1), np.int16)
    w = np.ones((2, 1, 1, 1), np.int8)
    model = _conv_model("CONV_2D", x.shape, w, np.zeros(2, np.int32), dt="int16", bias_dt="int32", **CONV_OPTS)
    with pytest.raises(UnsupportedOpError, match="quantized_bias_type"):
        run_refquant(model, [x])
    tmodel = _tconv_model(
        (1, 3, 3, 2), x.shape, w, np.zeros(2, np.int32), dt="int16", bias_dt="int32", padding="SAME",
        stride_h=1, stride_w=1,
    )  # fmt: skip
    with pytest.raises(UnsupportedOpError, match="quantized_bias_type"):
        run_refquant(tmodel, [x])


@pytest.mark.oracle
def test_conv_int16_bias_type_must_match_option(litert):
    x = np.zeros((1, 3, 3, 1), np.int16)
    w = np.ones((2, 1, 1, 1), np.int8)
    opts = dict(CONV_OPTS, quantized_bias_type="INT32")
    model = _conv_model("CONV_2D", x.shape, w, np.zeros(2, np.int64), dt="int16", bias_dt="int64", **opts)
    assert check_against_litert(litert, model, [x]) == "rejected"


@pytest.mark.oracle
@pytest.mark.parametrize("dm_option", [0, 1, 2, 5])
def test_depthwise_int16_ignores_depth_multiplier_option(litert, dm_option):
    rng = np.random.default_rng(5)
    x = _rand_int(rng, "int16", (1, 5, 5, 2))
    w = _rand_int(rng, "int8", (1, 3, 3, 4), -127, 127)
    bias = rng.integers(-1000, 1000, 4).astype(np.int64)
    model = _conv_model("DEPTHWISE_CONV_2D", x.shape, w, bias, dt="int16", depth_multiplier=dm_option, **CONV_OPTS)
    assert check_against_litert(litert, model, [x]) == "ok"


@pytest.mark.oracle
def test_depthwise_omitted_bias_slot(litert):
    rng = np.random.default_rng(6)
    x = _rand_int(rng, "int8", (1, 4, 4, 2))
    w = _rand_int(rng, "int8", (1, 3, 3, 2), -127, 127)
    # Three inputs with the bias slot -1: LiteRT's Prepare expects a tensor there and fails.
    model = _conv_model("DEPTHWISE_CONV_2D", x.shape, w, None, omit_bias_slot=True, **CONV_OPTS)
    assert check_against_litert(litert, model, [x]) == "rejected"
    model2 = _conv_model("DEPTHWISE_CONV_2D", x.shape, w, None, **CONV_OPTS)
    assert check_against_litert(litert, model2, [x]) == "ok"


@pytest.mark.oracle
def test_uint8_bias_scale_check(litert):
    rng = np.random.default_rng(7)
    x = _rand_int(rng, "uint8", (1, 4, 4, 2))
    w = _rand_int(rng, "uint8", (3, 3, 3, 2))
    b = rng.integers(-500, 500, 3).astype(np.int32)
    kw = dict(dt="uint8", s_in=0.05, s_w=0.02, s_out=0.1, zp_in=128, zp_w=120, zp_out=100)
    ok = _conv_model("CONV_2D", x.shape, w, b, **kw, **CONV_OPTS)
    assert check_against_litert(litert, ok, [x]) == "ok"
    for op in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        ww = w if op == "CONV_2D" else _rand_int(rng, "uint8", (1, 3, 3, 2))
        bad = _conv_model(op, x.shape, ww, b[:2] if op != "CONV_2D" else b, bias_scale=0.5, **kw, **CONV_OPTS)
        assert check_against_litert(litert, bad, [x]) == "rejected"
        with pytest.raises(QuantParamError, match="bias scale"):
            run_refquant(bad, [x])
        # A bias without quantization counts as scale 0: accepted while s_in * s_w <= 0.02 * s_out.
        bb = b[:2] if op != "CONV_2D" else b
        unq = _conv_model(op, x.shape, ww, bb, bias_scale=None, **kw, **CONV_OPTS)
        assert check_against_litert(litert, unq, [x]) == "ok"
        unq_bad = _conv_model(op, x.shape, ww, bb, bias_scale=None, **dict(kw, s_in=0.5, s_w=0.1), **CONV_OPTS)
        assert check_against_litert(litert, unq_bad, [x]) == "rejected"


@pytest.mark.oracle
def test_uint8_per_channel_rejected(litert):
    rng = np.random.default_rng(8)
    x = _rand_int(rng, "uint8", (1, 4, 4, 2))
    w = _rand_int(rng, "uint8", (3, 3, 3, 2))
    model = _conv_model(
        "CONV_2D", x.shape, w, np.zeros(3, np.int32), dt="uint8", s_w=[0.01, 0.02, 0.03], zp_w=[3, 3, 3],
        zp_in=128, **CONV_OPTS,
    )  # fmt: skip
    assert check_against_litert(litert, model, [x]) == "rejected"


@pytest.mark.oracle
def test_zero_batch(litert):
    rng = np.random.default_rng(9)
    _, w, b = _base_int8(rng)
    model = _conv_model("CONV_2D", (1, 5, 5, 2), w, b, **CONV_OPTS)
    x0 = np.zeros((0, 5, 5, 2), np.int8)
    assert check_against_litert(litert, model, [x0]) == "ok"


@pytest.mark.oracle
def test_float_special_values(litert):
    # inf and NaN inputs; fused NONE clamps +-inf to +-FLT_MAX; skipped padded taps never make 0*inf.
    x = np.array([np.inf, -np.inf, np.nan, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0], np.float32).reshape(1, 3, 3, 1)
    w = np.array([1.0, -2.0, 0.5, 0.0], np.float32).reshape(1, 2, 2, 1)
    for op in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        model = _conv_model(op, x.shape, w, np.zeros(1, np.float32), dt="float32", **CONV_OPTS)
        assert check_against_litert(litert, model, [x]) == "ok"
    wi = np.array([np.inf, 1.0, 1.0, 1.0], np.float32).reshape(1, 2, 2, 1)
    xf = np.ones((1, 3, 3, 1), np.float32)
    model = _conv_model("CONV_2D", xf.shape, wi, np.zeros(1, np.float32), dt="float32", **CONV_OPTS)
    assert check_against_litert(litert, model, [xf]) == "ok"
    tmodel = _tconv_model((1, 3, 3, 1), xf.shape, wi, None, dt="float32", padding="SAME", stride_h=1, stride_w=1)
    assert check_against_litert(litert, tmodel, [xf]) == "ok"


@pytest.mark.oracle
def test_transpose_conv_bias_slot_omitted_and_inconsistent_shape(litert):
    rng = np.random.default_rng(10)
    x = _rand_int(rng, "int8", (1, 3, 3, 2))
    w = _rand_int(rng, "int8", (4, 3, 3, 2), -127, 127)
    opts = dict(padding="SAME", stride_h=2, stride_w=2)
    model = _tconv_model((1, 6, 6, 4), x.shape, w, None, omit_bias_slot=True, **opts)
    assert check_against_litert(litert, model, [x]) == "ok"
    bad = _tconv_model((1, 7, 6, 4), x.shape, w, None, **opts)
    assert check_against_litert(litert, bad, [x]) == "rejected"
    bad_c = _tconv_model((1, 6, 6, 5), x.shape, w, None, **opts)
    assert check_against_litert(litert, bad_c, [x]) == "rejected"
    bad_rank = _tconv_model((1, 6, 6), x.shape, w, None, **opts)
    assert check_against_litert(litert, bad_rank, [x]) == "rejected"
    bad_dt = _tconv_model((1, 6, 6, 4), x.shape, w, None, shape_dt="int64", **opts)
    assert check_against_litert(litert, bad_dt, [x]) == "rejected"


@pytest.mark.oracle
def test_transpose_conv_int8_bias_zero_point_rejected_uint8_accepted(litert):
    rng = np.random.default_rng(11)
    opts = dict(padding="VALID", stride_h=1, stride_w=1)
    x = _rand_int(rng, "int8", (1, 3, 3, 2))
    w = _rand_int(rng, "int8", (2, 2, 2, 2), -127, 127)
    model = _tconv_model((1, 4, 4, 2), x.shape, w, np.array([5, -5], np.int32), bias_zp=3, **opts)
    assert check_against_litert(litert, model, [x]) == "rejected"
    xu = _rand_int(rng, "uint8", (1, 3, 3, 2))
    wu = _rand_int(rng, "uint8", (2, 2, 2, 2))
    kw = dict(dt="uint8", zp_in=100, zp_w=128, zp_out=120)
    model_u = _tconv_model((1, 4, 4, 2), xu.shape, wu, np.array([5, -5], np.int32), bias_zp=3, **kw, **opts)
    assert check_against_litert(litert, model_u, [xu]) == "ok"


@pytest.mark.oracle
@pytest.mark.parametrize("op", ["CONV_2D", "DEPTHWISE_CONV_2D"])
def test_bad_options_rejected(litert, op):
    rng = np.random.default_rng(12)
    x = _rand_int(rng, "int8", (1, 4, 4, 2))
    w = _rand_int(rng, "int8", (2, 2, 2, 2) if op == "CONV_2D" else (1, 2, 2, 2), -127, 127)
    b = np.zeros(2, np.int32)
    for bad in (dict(stride_h=0), dict(stride_w=-1), dict(dilation_h_factor=0)):
        model = _conv_model(op, x.shape, w, b, **dict(CONV_OPTS, **bad))
        assert check_against_litert(litert, model, [x]) == "rejected"
        with pytest.raises(PrepareError):
            run_refquant(model, [x])


@pytest.mark.oracle
def test_bad_shapes_rejected(litert):
    rng = np.random.default_rng(13)
    x = _rand_int(rng, "int8", (1, 4, 4, 6))
    b = np.zeros(4, np.int32)
    # filter input channels 4 do not divide 6
    model = _conv_model("CONV_2D", x.shape, _rand_int(rng, "int8", (4, 1, 1, 4)), b, **CONV_OPTS)
    assert check_against_litert(litert, model, [x]) == "rejected"
    # 3 groups but 4 output channels
    model = _conv_model("CONV_2D", x.shape, _rand_int(rng, "int8", (4, 1, 1, 2)), b, **CONV_OPTS)
    assert check_against_litert(litert, model, [x]) == "rejected"
    # bias size
    model = _conv_model("CONV_2D", x.shape, _rand_int(rng, "int8", (3, 1, 1, 6)), b, **CONV_OPTS)
    assert check_against_litert(litert, model, [x]) == "rejected"
    # depthwise: 4 filter channels for 6 input channels; filter dim 0 != 1
    model = _conv_model("DEPTHWISE_CONV_2D", x.shape, _rand_int(rng, "int8", (1, 2, 2, 4)), b, **CONV_OPTS)
    assert check_against_litert(litert, model, [x]) == "rejected"
    model = _conv_model("DEPTHWISE_CONV_2D", x.shape, _rand_int(rng, "int8", (2, 2, 2, 6)), None, **CONV_OPTS)
    assert check_against_litert(litert, model, [x]) == "rejected"


@pytest.mark.oracle
def test_int16_nonzero_zero_point_rejected(litert):
    x = np.zeros((1, 3, 3, 1), np.int16)
    w = np.ones((1, 1, 1, 1), np.int8)
    for op in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        model = _conv_model(op, x.shape, w, np.zeros(1, np.int64), dt="int16", zp_in=3, **CONV_OPTS)
        assert check_against_litert(litert, model, [x]) == "rejected"
        with pytest.raises(QuantParamError):
            run_refquant(model, [x])
    tmodel = _tconv_model((1, 3, 3, 1), x.shape, w, None, dt="int16", zp_out=2, padding="SAME", stride_h=1, stride_w=1)
    assert check_against_litert(litert, tmodel, [x]) == "rejected"


# ---------------------------------------------------------------------------------------------
# Rejections refquant makes where LiteRT would produce numbers it cannot reproduce


def test_unsupported_filter_types():
    x = np.zeros((1, 3, 3, 1), np.float32)
    # float32 input with an int8 filter is hybrid CONV_2D (tests/ops/test_conv_hybrid.py); uint8 is refused.
    w8 = np.ones((1, 1, 1, 1), np.uint8)
    model = _conv_model("CONV_2D", x.shape, w8, np.zeros(1, np.float32), dt="float32", w_dt="uint8", **CONV_OPTS)
    with pytest.raises(UnsupportedOpError, match="hybrid"):
        run_refquant(model, [x])
    xi = np.zeros((1, 3, 3, 1), np.int16)
    w16 = np.ones((1, 1, 1, 1), np.int16)
    model = _conv_model(
        "DEPTHWISE_CONV_2D", xi.shape, w16, np.zeros(1, np.int64), dt="int16", w_dt="int16", **CONV_OPTS
    )
    with pytest.raises(UnsupportedOpError):
        run_refquant(model, [xi])


# ---------------------------------------------------------------------------------------------
# TRANSPOSE_CONV whose output_shape is fed at run time (tflite-micro's seanet models: int16x8, the shape a
# graph input): prepare is deferred to the run, where LiteRT resizes its dynamic output


def _tconv_runtime_model(dt, x_shape, w, bias, out_shape, rng, **opts):
    """A quantized TRANSPOSE_CONV whose output_shape is graph input 0 (int32[4]), fed at run time."""
    s_in, s_w, zp_in, zp_out, s_out = _quant_params(rng, dt, w.shape[0], w[0].size, True)
    return _tconv_model(
        out_shape, x_shape, w, bias, dt=dt, s_in=s_in, s_w=s_w, zp_in=zp_in, zp_out=zp_out, s_out=s_out,
        shape_input=True, **opts,
    )  # fmt: skip


RUNTIME_SHAPE_CASES = [
    # (input NHWC, weights OHWI, output_shape, options)
    ((1, 4, 5, 3), (2, 3, 3, 3), (1, 8, 10, 2), dict(padding="SAME", stride_h=2, stride_w=2)),
    ((2, 3, 3, 2), (3, 2, 3, 2), (2, 8, 11, 3), dict(padding="VALID", stride_h=3, stride_w=3)),
    ((1, 6, 1, 4), (4, 5, 1, 4), (1, 6, 1, 4), dict(padding="SAME", stride_h=1, stride_w=1)),  # seanet-like 1-D
    ((1, 5, 1, 2), (2, 4, 1, 2), (1, 10, 1, 2), dict(padding="SAME", stride_h=2, stride_w=1)),
]


@pytest.mark.oracle
@pytest.mark.parametrize("dt", ["int8", "int16"])
@pytest.mark.parametrize("case", range(len(RUNTIME_SHAPE_CASES)))
def test_transpose_conv_output_shape_fed_at_run_time(litert, dt, case):
    """output_shape is an int32[4] graph input: refquant.Interpreter equals LiteRT BUILTIN_REF element for element."""
    x_shape, w_shape, out_shape, opts = RUNTIME_SHAPE_CASES[case]
    rng = np.random.default_rng(case * 2 + (dt == "int16"))
    w = _rand_int(rng, "int8", w_shape)
    bias = _bias(rng, dt, w_shape[0])
    model = _tconv_runtime_model(dt, x_shape, w, bias, out_shape, rng, quantized_bias_type="FLOAT32", **opts)
    x = _rand_int(rng, dt, x_shape)
    shape = np.asarray(out_shape, np.int32)
    res = litert.run(model, [shape, x])
    assert res.status == "ok", res.message
    assert res.outputs[0].shape == out_shape
    it = refquant.Interpreter(model_content=model)
    it.allocate_tensors()
    shp_d, x_d = it.get_input_details()
    it.set_tensor(shp_d["index"], shape)
    it.set_tensor(x_d["index"], x)
    it.invoke()
    out = it.get_tensor(it.get_output_details()[0]["index"])
    np.testing.assert_array_equal(out, res.outputs[0], strict=True)
    assert check_against_litert(litert, model, [shape, x]) == "ok"  # every tensor, through the shared helper
    # The same model run again with another (consistent) output_shape is prepared afresh.
    if opts["padding"] == "SAME" and opts["stride_h"] > 1:
        smaller = np.asarray(out_shape, np.int32) - np.array([0, 1, 0, 0], np.int32)
        assert check_against_litert(litert, model, [smaller, x]) == "ok"


@pytest.mark.oracle
@settings()
@given(st.sampled_from(["int8", "int16"]), st.data())
def test_transpose_conv_output_shape_fed_at_run_time_random(litert, dt, data):
    """Random geometries (some inconsistent, which both must refuse) with output_shape fed at run time."""
    model, inputs = data.draw(tconv_case(dt, shape_input=True))
    check_against_litert(litert, model, inputs)


WRONG_RUNTIME_SHAPES = [
    ((1, 9, 9, 2), "convolution of the output 9x9"),  # SAME stride 2 of 9 gives 5, not the input's 3
    ((1, 6, 7, 2), "convolution of the output 6x7"),
    ((1, -6, 6, 2), "height and width must be > 0"),
    ((1, 6, -6, 2), "height and width must be > 0"),
    ((-1, 6, 6, 2), "batch"),
    ((1, 6, 6, -2), "output channels"),
    ((2, 6, 6, 2), "batch"),
    ((1, 6, 6, 3), "output channels"),
    ((1, 6, 6), "4 elements"),
    ((1, 6, 6, 2, 1), "4 elements"),
]


def _wrong_shape_model():
    """int8 TRANSPOSE_CONV, input 3x3, SAME stride 2 (consistent outputs: 5x5 and 6x6), output_shape fed at run time."""
    rng = np.random.default_rng(5)
    w = _rand_int(rng, "int8", (2, 3, 3, 2))
    model = _tconv_runtime_model(
        "int8", (1, 3, 3, 2), w, None, (1, 6, 6, 2), rng, padding="SAME", stride_h=2, stride_w=2
    )
    return model, _rand_int(rng, "int8", (1, 3, 3, 2))


@pytest.mark.parametrize("shape, match", WRONG_RUNTIME_SHAPES)
def test_transpose_conv_wrong_run_time_output_shape(shape, match):
    """A run-time output_shape LiteRT's checks reject is a refquant PrepareError at run time, not a raw exception."""
    model, x = _wrong_shape_model()
    it = refquant.Interpreter(model_content=model)
    it.allocate_tensors()  # the shape is not known yet: nothing to refuse
    shp_d, x_d = it.get_input_details()
    if len(shape) != 4:
        it.resize_tensor_input(shp_d["index"], (len(shape),))
        it.allocate_tensors()
    it.set_tensor(shp_d["index"], np.asarray(shape, np.int32))
    it.set_tensor(x_d["index"], x)
    with pytest.raises(PrepareError, match=match):
        it.invoke()


@pytest.mark.oracle
def test_transpose_conv_wrong_run_time_output_shape_litert_rejects(litert):
    """LiteRT BUILTIN_REF refuses each of those run-time shapes too (its Prepare or Eval fails)."""
    model, x = _wrong_shape_model()
    for shape, _ in WRONG_RUNTIME_SHAPES:
        assert check_against_litert(litert, model, [np.asarray(shape, np.int32), x]) == "rejected", shape
    assert check_against_litert(litert, model, [np.asarray((1, 5, 5, 2), np.int32), x]) == "ok"


def test_mbqm64_shift_out_of_range_refused():
    x = np.zeros((1, 1, 1, 1), np.int16)
    w = np.ones((1, 1, 1, 1), np.int8)
    model = _conv_model("CONV_2D", x.shape, w, np.zeros(1, np.int64), dt="int16", s_in=1.0, s_w=1.0, s_out=1e-6,
                        **CONV_OPTS)  # fmt: skip
    with pytest.raises(UnsupportedOpError, match="64-bit"):
        run_refquant(model, [x])


def test_params_and_accumulators_types():
    rng = np.random.default_rng(14)
    x, w, b = _base_int8(rng)
    model = _conv_model("CONV_2D", x.shape, w, b, s_w=[0.01, 0.02, 0.03], **CONV_OPTS)
    data, inputs, out = _op_and_inputs(model, x)
    p = data.params()
    assert p["multiplier"].dtype == np.int32 and p["multiplier"].shape == (3,)
    assert p["acc_bits"] == 32 and p["groups"] == 1
    acc = data.accumulators(inputs)["acc"]
    assert acc.dtype == np.int32 and acc.shape == out.shape
    x16 = _rand_int(rng, "int16", (1, 5, 5, 2))
    model16 = _conv_model("CONV_2D", x16.shape, w, b.astype(np.int64), dt="int16", **CONV_OPTS)
    data16, inputs16, _ = _op_and_inputs(model16, x16)
    assert data16.accumulators(inputs16)["acc"].dtype == np.int64


@pytest.mark.oracle
@pytest.mark.parametrize("dt", ["int8", "float32"])
def test_conv_runtime_filter_and_bias(litert, dt):
    """Filter and bias given as graph inputs (not constants)."""
    rng = np.random.default_rng(15)
    q = dt != "float32"
    x = tensor((1, 5, 4, 3), dt, name="x", **_quant(dt, 0.05, 3))
    wt = tensor((2, 3, 2, 3), dt, name="w", **_quant(dt, [0.01, 0.03], [0, 0]))
    bias_dt = "int32" if q else "float32"
    bt = tensor((2,), bias_dt, name="b", **({"scale": [0.0005, 0.0015], "zero_point": [0, 0]} if q else {}))
    y = tensor((1, 5, 4, 2), dt, name="y", **_quant(dt, 0.2, -4))
    model = op_model("CONV_2D", [x, wt, bt], [y], **CONV_OPTS)
    xs = _input(rng, dt, (1, 5, 4, 3))
    ws = _weights(rng, dt, (2, 3, 2, 3))
    bs = _bias(rng, dt, 2)
    assert check_against_litert(litert, model, [xs, ws, bs]) == "ok"


@pytest.mark.oracle
def test_conv_per_channel_on_dimension_3(litert):
    """quantized_dimension 3 with I == O is accepted; scales still apply per output channel."""
    rng = np.random.default_rng(16)
    x = _rand_int(rng, "int8", (1, 4, 4, 3))
    w = _rand_int(rng, "int8", (3, 2, 2, 3))
    model = _conv_model("CONV_2D", x.shape, w, np.array([1, 2, 3], np.int32), s_w=[0.001, 0.01, 0.1], qdim=3,
                        s_out=0.5, **CONV_OPTS)  # fmt: skip
    assert check_against_litert(litert, model, [x]) == "ok"


@pytest.mark.oracle
def test_filter_zero_point_ignored_where_unchecked(litert):
    """int8 TRANSPOSE_CONV and int8/int16 DEPTHWISE_CONV_2D neither check nor use the filter zero point."""
    rng = np.random.default_rng(17)
    x = _rand_int(rng, "int8", (1, 3, 3, 2))
    w = _rand_int(rng, "int8", (2, 2, 2, 2))
    model = _tconv_model((1, 4, 4, 2), x.shape, w, None, zp_w=[7, -3], s_w=[0.02, 0.03], padding="VALID",
                         stride_h=1, stride_w=1)  # fmt: skip
    assert check_against_litert(litert, model, [x]) == "ok"
    x16 = _rand_int(rng, "int16", (1, 4, 4, 2))
    for dt, xx in (("int8", x), ("int16", x16)):
        wd = _rand_int(rng, "int8", (1, 2, 2, 2))
        bias = np.array([3, -3], np.int64 if dt == "int16" else np.int32)
        model = _conv_model("DEPTHWISE_CONV_2D", xx.shape, wd, bias, dt=dt, zp_w=[9, -9], s_w=[0.02, 0.03], **CONV_OPTS)
        data, _, _ = _op_and_inputs(model, xx)
        assert data.filter_offset == 0
        assert check_against_litert(litert, model, [xx]) == "ok"


@pytest.mark.oracle
def test_depthwise_int16_needs_int64_bias(litert):
    rng = np.random.default_rng(18)
    x = _rand_int(rng, "int16", (1, 4, 4, 2))
    w = _rand_int(rng, "int8", (1, 3, 3, 2))
    model = _conv_model(
        "DEPTHWISE_CONV_2D", x.shape, w, np.zeros(2, np.int32), dt="int16", bias_dt="int32", **CONV_OPTS
    )
    assert check_against_litert(litert, model, [x]) == "rejected"
    x3 = _rand_int(rng, "int16", (1, 4, 4, 2))
    w3 = _rand_int(rng, "int8", (3, 3, 3, 2))
    bad = _conv_model(
        "CONV_2D", x3.shape, w3, np.zeros(3, np.int64), dt="int16", quantized_bias_type="INT8", **CONV_OPTS
    )
    assert check_against_litert(litert, bad, [x3]) == "rejected"


def test_uint8_depthwise_always_double_rounding():
    """uint8 DEPTHWISE uses DepthwiseConvRound<kAwayFromZero>: double rounding even in a single-rounding build."""
    rng = np.random.default_rng(19)
    xu = _rand_int(rng, "uint8", (1, 3, 3, 2))
    model = _conv_model("DEPTHWISE_CONV_2D", xu.shape, _rand_int(rng, "uint8", (1, 2, 2, 2)), None, dt="uint8",
                        zp_in=128, zp_w=128, zp_out=128, **CONV_OPTS)  # fmt: skip
    assert _op_and_inputs(model, xu, "single")[0].rounding == "double"
    xi = _rand_int(rng, "int8", (1, 3, 3, 2))
    model = _conv_model("DEPTHWISE_CONV_2D", xi.shape, _rand_int(rng, "int8", (1, 2, 2, 2)), None, **CONV_OPTS)
    assert _op_and_inputs(model, xi, "single")[0].rounding == "single"
