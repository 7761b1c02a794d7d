"""AVERAGE_POOL_2D, MAX_POOL_2D, L2_POOL_2D against LiteRT BUILTIN_REF (bit-exact, float included).

Float pools are compared bit-exactly too (no tolerance): the kernels are sequential float32 sums and
comparisons, which refquant reproduces operation for operation.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import refquant
from refquant.errors import PrepareError, QuantParamError, UnsupportedOpError
from refquant.ops.pooling import pool_output_size
from refquant.testing import op_model, tensor
from tests.opcheck import check_against_litert, run_refquant

INFO = {"int8": np.iinfo(np.int8), "uint8": np.iinfo(np.uint8), "int16": np.iinfo(np.int16)}
ACTS = ["NONE", "RELU", "RELU6", "RELU_N1_TO_1"]


def _model(
    op,
    shape,
    dtype="int8",
    *,
    filt=(2, 2),
    stride=(2, 2),
    padding="VALID",
    act="NONE",
    s_in=0.05,
    zp_in=0,
    s_out=None,
    zp_out=None,
    quant=True,
    out_dtype=None,
) -> bytes:
    """A one-op pooling model (NHWC); quantization is ignored for float32."""
    q = quant and dtype != "float32"
    s_out = s_in if s_out is None else s_out
    zp_out = zp_in if zp_out is None else zp_out
    x = tensor(shape, dtype, name="x", **({"scale": s_in, "zero_point": zp_in} if q else {}))
    oh, ow, _, _ = pool_output_size(padding, shape[1], shape[2], filt[0], filt[1], stride[0], stride[1])
    y = tensor(
        (shape[0], oh, ow, shape[3]),
        out_dtype or dtype,
        name="y",
        **({"scale": s_out, "zero_point": zp_out} if q else {}),
    )
    return op_model(
        op,
        [x],
        [y],
        padding=padding,
        stride_h=stride[0],
        stride_w=stride[1],
        filter_height=filt[0],
        filter_width=filt[1],
        fused_activation_function=act,
    )


def _rand(rng, dtype, shape, special=False):
    if dtype == "float32":
        x = (rng.standard_normal(shape) * 10 ** rng.uniform(-2, 2)).astype(np.float32)
        if special:
            m = rng.random(shape) < 0.15
            x[m] = rng.choice(np.array([np.nan, np.inf, -np.inf, 0.0, -0.0], np.float32), int(m.sum()))
        return x
    info = INFO[dtype]
    return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)


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
def pool_case(draw, dtype):
    """Random geometry (including windows hanging over every border), quant params and activation."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 9)), draw(st.integers(1, 9)), draw(st.integers(1, 4)))
    filt = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = draw(st.sampled_from(["SAME", "VALID"]))
    act = draw(st.sampled_from(ACTS))
    kw = {}
    if dtype != "float32":
        info = INFO[dtype]
        s_in = float(10 ** rng.uniform(-4, -1))
        # Pools ignore the output params except for the activation clamp: draw them independently.
        s_out = s_in if draw(st.booleans()) else float(10 ** rng.uniform(-4, -1))
        zp_in = int(rng.integers(info.min, info.max, endpoint=True)) if dtype != "int16" else int(rng.integers(-50, 50))
        zp_out = zp_in if draw(st.booleans()) else int(rng.integers(max(info.min, -100), min(info.max, 100)))
        kw = {"s_in": s_in, "zp_in": zp_in, "s_out": s_out, "zp_out": zp_out}
    x = _rand(rng, dtype, shape, special=draw(st.booleans()))
    return shape, filt, stride, padding, act, kw, x


@pytest.mark.oracle
@settings()
@given(c=pool_case("int8"))
@pytest.mark.parametrize("op", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
def test_pool_int8(litert, op, c):
    shape, filt, stride, padding, act, kw, x = c
    check_against_litert(
        litert, _model(op, shape, "int8", filt=filt, stride=stride, padding=padding, act=act, **kw), [x]
    )


@pytest.mark.oracle
@settings()
@given(c=pool_case("uint8"))
@pytest.mark.parametrize("op", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
def test_pool_uint8(litert, op, c):
    shape, filt, stride, padding, act, kw, x = c
    check_against_litert(
        litert, _model(op, shape, "uint8", filt=filt, stride=stride, padding=padding, act=act, **kw), [x]
    )


@pytest.mark.oracle
@settings()
@given(c=pool_case("int16"))
@pytest.mark.parametrize("op", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
def test_pool_int16(litert, op, c):
    shape, filt, stride, padding, act, kw, x = c
    check_against_litert(
        litert, _model(op, shape, "int16", filt=filt, stride=stride, padding=padding, act=act, **kw), [x]
    )


@pytest.mark.oracle
@settings()
@given(c=pool_case("float32"))
@pytest.mark.parametrize("op", ["AVERAGE_POOL_2D", "MAX_POOL_2D", "L2_POOL_2D"])
def test_pool_float32(litert, op, c):
    shape, filt, stride, padding, act, _, x = c
    check_against_litert(litert, _model(op, shape, "float32", filt=filt, stride=stride, padding=padding, act=act), [x])


# ---------------------------------------------------------------------------------------------
# Deterministic cases


def _run(model, x):
    return run_refquant(model, [x]).values


@pytest.mark.oracle
def test_avg_pool_rounds_half_away_and_excludes_padding(litert):
    # SAME 3x3 stride 1 on a 2x2 image: every window holds the 4 pixels; corners would count padding.
    x = np.array([1, 2, -1, -2], np.int8).reshape(1, 2, 2, 1)
    m = _model("AVERAGE_POOL_2D", (1, 2, 2, 1), filt=(3, 3), stride=(1, 1), padding="SAME")
    assert check_against_litert(litert, m, [x]) == "ok"
    assert _run(m, x)[1].reshape(-1).tolist() == [0, 0, 0, 0]  # (1+2-1-2)/4 = 0
    x2 = np.array([1, 2, 0, 0], np.int8).reshape(1, 2, 2, 1)  # 3/4 = 0.75 -> 1 ; 1-D pair (1,2) -> 1.5 -> 2
    m2 = _model("AVERAGE_POOL_2D", (1, 2, 2, 1), filt=(1, 2), stride=(1, 1), padding="VALID")
    check_against_litert(litert, m2, [x2])
    it = refquant.Interpreter(model_content=m2)
    it.allocate_tensors()
    it.set_tensor(0, x2)
    it.invoke()
    assert it.get_tensor(1).reshape(-1).tolist() == [2, 0]
    x3 = -x2
    check_against_litert(litert, m2, [x3])
    it.set_tensor(0, x3)
    it.invoke()
    assert it.get_tensor(1).reshape(-1).tolist() == [-2, 0]  # -1.5 -> -2 (half away from zero)


@pytest.mark.oracle
@pytest.mark.parametrize("op", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
def test_pool_ignores_output_params_except_activation(litert, op):
    x = np.arange(-8, 8, dtype=np.int8).reshape(1, 4, 4, 1) * 7
    m = _model(op, (1, 4, 4, 1), s_in=0.1, zp_in=3, s_out=0.9, zp_out=-20)
    check_against_litert(litert, m, [x])
    m = _model(op, (1, 4, 4, 1), s_in=0.1, zp_in=3, s_out=0.01, zp_out=-20, act="RELU6")
    check_against_litert(litert, m, [x])


@pytest.mark.oracle
@pytest.mark.parametrize(
    "shape,filt,stride,padding",
    [
        ((1, 4, 4, 1), (5, 2), (2, 2), "VALID"),  # window taller than the image: empty output
        ((1, 4, 4, 1), (2, 5), (1, 1), "VALID"),
        ((1, 4, 4, 2), (0, 2), (2, 2), "VALID"),  # filter 0: LiteRT silently produces an empty output
        ((1, 1, 1, 1), (4, 4), (3, 3), "SAME"),
    ],
)
@pytest.mark.parametrize("op", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
def test_pool_degenerate_geometry(litert, op, shape, filt, stride, padding):
    x = np.arange(np.prod(shape), dtype=np.int8).reshape(shape)
    check_against_litert(litert, _model(op, shape, filt=filt, stride=stride, padding=padding), [x])


@pytest.mark.oracle
def test_max_pool_float_nan_inf_and_signed_zero(litert):
    x = np.array([np.nan, -np.inf, -0.0, 0.0, -np.inf, -np.inf, np.nan, np.nan], np.float32).reshape(1, 2, 4, 1)
    for op in ("MAX_POOL_2D", "AVERAGE_POOL_2D", "L2_POOL_2D"):
        _check_float_bits(litert, _model(op, (1, 2, 4, 1), "float32", filt=(2, 2), stride=(2, 2)), [x])
        for act in ("NONE", "RELU"):
            m = _model(op, (1, 2, 4, 1), "float32", filt=(2, 2), stride=(1, 1), padding="SAME", act=act)
            _check_float_bits(litert, m, [x])


def test_pool_rejections():
    with pytest.raises(PrepareError, match="4-D"):
        x = tensor((4, 4, 1), "int8", scale=0.1, zero_point=0, name="x")
        y = tensor((2, 2, 1), "int8", scale=0.1, zero_point=0, name="y")
        m = op_model("MAX_POOL_2D", [x], [y], padding="VALID", stride_h=2, stride_w=2, filter_height=2, filter_width=2)
        refquant.Interpreter(model_content=m).allocate_tensors()
    with pytest.raises(PrepareError, match="strides"):
        refquant.Interpreter(model_content=_model("AVERAGE_POOL_2D", (1, 4, 4, 1), stride=(0, 1))).allocate_tensors()
    with pytest.raises(UnsupportedOpError):
        refquant.Interpreter(model_content=_model("L2_POOL_2D", (1, 4, 4, 1), "int8")).allocate_tensors()
    with pytest.raises(UnsupportedOpError):
        refquant.Interpreter(
            model_content=_model("MAX_POOL_2D", (1, 4, 4, 1), "int8", out_dtype="int16")
        ).allocate_tensors()
    with pytest.raises(QuantParamError):
        refquant.Interpreter(model_content=_model("MAX_POOL_2D", (1, 4, 4, 1), "int8", quant=False)).allocate_tensors()
    with pytest.raises(QuantParamError):  # RELU6 bound does not fit int32 with a tiny output scale
        refquant.Interpreter(
            model_content=_model("AVERAGE_POOL_2D", (1, 4, 4, 1), "uint8", s_out=1e-12, act="RELU6")
        ).allocate_tensors()


@pytest.mark.oracle
def test_pool_rejections_agree_with_litert(litert):
    assert (
        check_against_litert(
            litert, _model("AVERAGE_POOL_2D", (1, 4, 4, 1), stride=(0, 1)), [np.zeros((1, 4, 4, 1), np.int8)]
        )
        != "ok"
    )
    assert (
        check_against_litert(litert, _model("L2_POOL_2D", (1, 4, 4, 1), "int8"), [np.zeros((1, 4, 4, 1), np.int8)])
        != "ok"
    )


def test_avg_pool_trace_ends_at_output():
    x = np.array([[5, -3], [7, 100]], np.int8).reshape(1, 2, 2, 1)
    m = _model("AVERAGE_POOL_2D", (1, 2, 2, 1), filt=(3, 3), stride=(1, 1), padding="SAME", act="RELU")
    tr = run_refquant(m, [x])
    data = tr.op_data[0]
    steps = data.trace([x], 0, (0, 0, 0, 0))
    assert [s.name for s in steps] == ["window", "acc", "n", "avg", "output"]
    assert steps[1].value == 109 and steps[2].value == 4 and steps[3].value == 27
    assert steps[-1].value == tr.values[1][0, 0, 0, 0]
    steps = run_refquant(_model("MAX_POOL_2D", (1, 2, 2, 1)), [x]).op_data[0].trace([x], 0, (0, 0, 0, 0))
    assert steps[-1].value == 100
