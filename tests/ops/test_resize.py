"""RESIZE_BILINEAR and RESIZE_NEAREST_NEIGHBOR against LiteRT BUILTIN_REF (bit-exact, float32 included)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refquant.errors import PrepareError, RefquantError, UnsupportedOpError
from tests.opcheck import check_against_litert, run_refquant
from tests.ops.movement_helpers import In, Out, one_op, quant_for, rand_array, seeds

FLAGS = [(False, False), (True, False), (False, True)]


def _ok(litert, model: bytes, feeds: list[np.ndarray]) -> None:
    status = check_against_litert(litert, model, feeds)
    assert status == "ok", status


def _resize_model(opcode, x, size, dtype, q, out_q, align, half, size_const=True):
    return one_op(
        opcode,
        [In(x, quant=q), In(np.array(size, np.int32), const=size_const)],
        [Out(dtype, quant=out_q)],
        align_corners=align,
        half_pixel_centers=half,
    )


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", ["int8", "int16", "uint8", "float32"])
@pytest.mark.parametrize("flags", FLAGS, ids=["plain", "align_corners", "half_pixel"])
@settings()
@given(data=st.data(), seed=seeds)
def test_resize_bilinear_matches_litert(litert, dtype, flags, data, seed):
    """Integer kernel for int8/int16, float kernel (sequential float32, no FMA) for uint8 and float32."""
    rng = np.random.default_rng(seed)
    b, h, w, c = (
        data.draw(st.integers(1, 3)),
        data.draw(st.integers(1, 7)),
        data.draw(st.integers(1, 7)),
        data.draw(st.integers(1, 3)),
    )
    size = [data.draw(st.integers(1, 16)), data.draw(st.integers(1, 16))]
    model, feeds = _resize_model(
        "RESIZE_BILINEAR",
        rand_array(rng, dtype, (b, h, w, c)),
        size,
        dtype,
        quant_for(rng, dtype),
        quant_for(rng, dtype),  # output parameters are ignored by the kernel
        *flags,
        size_const=data.draw(st.integers(0, 4)) > 0,
    )
    _ok(litert, model, feeds)


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "int32", "float32"])
@pytest.mark.parametrize("flags", FLAGS + [(True, True)], ids=["plain", "align_corners", "half_pixel", "both"])
@settings()
@given(data=st.data(), seed=seeds)
def test_resize_nearest_matches_litert(litert, dtype, flags, data, seed):
    rng = np.random.default_rng(seed)
    b, h, w, c = (
        data.draw(st.integers(1, 3)),
        data.draw(st.integers(1, 9)),
        data.draw(st.integers(1, 9)),
        data.draw(st.integers(1, 3)),
    )
    size = [data.draw(st.integers(0, 20)), data.draw(st.integers(0, 20))]
    q = quant_for(rng, dtype)
    model, feeds = _resize_model(
        "RESIZE_NEAREST_NEIGHBOR",
        rand_array(rng, dtype, (b, h, w, c)),
        size,
        dtype,
        q,
        q,
        *flags,
        size_const=data.draw(st.integers(0, 4)) > 0,
    )
    _ok(litert, model, feeds)


def test_resize_bilinear_single_rounding_rounds_ties_up():
    """o20 = -2^19 exactly: double rounding gives -1 (half away from zero), single rounding 0 (half up)."""
    x = np.array([0, -1], np.int8).reshape(1, 1, 2, 1)
    model, feeds = _resize_model(
        "RESIZE_BILINEAR", x, [1, 4], "int8", {"scale": 1.0, "zero_point": 0}, None, False, False
    )
    assert run_refquant(model, feeds, "double").values[2][0, 0, 1, 0] == -1
    assert run_refquant(model, feeds, "single").values[2][0, 0, 1, 0] == 0


def test_resize_bilinear_trace_matches_output():
    rng = np.random.default_rng(1)
    x = rand_array(rng, "int16", (1, 3, 4, 2))
    model, feeds = _resize_model(
        "RESIZE_BILINEAR", x, [5, 7], "int16", {"scale": 0.01, "zero_point": 0}, None, False, True
    )
    tr = run_refquant(model, feeds)
    out = tr.values[2]
    data = tr.op_data[0]
    for el in [(0, 0, 0, 0), (0, 4, 6, 1), (0, 2, 3, 0)]:
        steps = data.trace([x, None], 0, el)
        assert steps[-1].value == out[el]


@pytest.mark.oracle
@pytest.mark.parametrize(
    "opcode,shape,size,dtype,opts",
    [
        ("RESIZE_BILINEAR", (1, 2, 2, 1), [3, 3], "int8", {"align_corners": True, "half_pixel_centers": True}),
        ("RESIZE_BILINEAR", (1, 2, 2, 1), [0, 3], "int8", {}),
        ("RESIZE_BILINEAR", (2, 2, 1), [3, 3], "int8", {}),
        ("RESIZE_BILINEAR", (1, 2, 2, 1), [3, 3], "int32", {}),
        ("RESIZE_NEAREST_NEIGHBOR", (1, 2, 2, 1), [3, 3], "int64", {}),
        ("RESIZE_NEAREST_NEIGHBOR", (1, 2, 2, 1), [3, 3, 3], "int8", {}),
    ],
)
def test_resize_rejections(litert, opcode, shape, size, dtype, opts):
    model, feeds = one_op(
        opcode, [In(np.zeros(shape, dtype)), In(np.array(size, np.int32), const=True)], [Out(dtype)], **opts
    )
    assert check_against_litert(litert, model, feeds) == "rejected"
    with pytest.raises(RefquantError):
        run_refquant(model, feeds)


def test_resize_bilinear_rejects_out_of_bounds_integer_upsampling():
    """2 -> 300 rows: the rounded Q10 scale (7 instead of 6.83) makes LiteRT read row 2 of a 2-row image."""
    model, feeds = _resize_model(
        "RESIZE_BILINEAR",
        np.zeros((1, 2, 1, 1), np.int8),
        [300, 1],
        "int8",
        {"scale": 1.0, "zero_point": 0},
        None,
        False,
        False,
    )
    with pytest.raises(UnsupportedOpError, match="reads past the input"):
        run_refquant(model, feeds)


def test_resize_size_must_be_int32():
    model, feeds = one_op(
        "RESIZE_BILINEAR",
        [In(np.zeros((1, 2, 2, 1), np.float32)), In(np.array([3, 3], np.int64), const=True)],
        [Out("float32")],
    )
    with pytest.raises(UnsupportedOpError, match="size type int64"):
        run_refquant(model, feeds)
    model, feeds = one_op(
        "RESIZE_NEAREST_NEIGHBOR",
        [In(np.zeros((1, 2, 2, 1), np.float32)), In(np.array([-1, 3], np.int32), const=True)],
        [Out("float32")],
    )
    with pytest.raises(PrepareError, match="negative"):
        run_refquant(model, feeds)


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_resize_bilinear_float_trace_reproduces_the_output(dtype):
    rng = np.random.default_rng(2)
    x = rand_array(rng, dtype, (2, 3, 4, 2))
    q = {"scale": 0.1, "zero_point": 3} if dtype == "uint8" else None
    model, feeds = _resize_model("RESIZE_BILINEAR", x, [5, 7], dtype, q, q, False, True)
    tr = run_refquant(model, feeds)
    out = tr.values[2]
    for el in list(np.ndindex(out.shape))[::7]:
        steps = tr.op_data[0].trace([x, None], 0, el)
        assert steps[-1].value == out[el].item()
        if dtype == "float32":
            assert steps[-2].value == out[el].item()  # the traced float32 sum is the output
