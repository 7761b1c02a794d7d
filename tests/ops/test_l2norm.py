"""L2_NORMALIZATION against LiteRT BUILTIN_REF (float32, int8, uint8; bit-exact), plus rejections."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refquant.errors import QuantParamError, UnsupportedOpError
from tests.opcheck import check_against_litert, run_refquant
from tests.ops.movement_helpers import In, Out, one_op, rand_array, seeds, shapes

OUT_Q = {"int8": {"scale": 1 / 128, "zero_point": 0}, "uint8": {"scale": 1 / 128, "zero_point": 128}}


def _model(x: np.ndarray, q_in: dict | None, dtype: str, **opts) -> tuple[bytes, list[np.ndarray]]:
    return one_op("L2_NORMALIZATION", [In(x, quant=q_in)], [Out(dtype, quant=OUT_Q.get(dtype))], **opts)


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", ["float32", "int8", "uint8"])
@settings()
@given(data=st.data(), seed=seeds)
def test_l2norm_matches_litert(litert, dtype, data, seed):
    rng = np.random.default_rng(seed)
    shape = shapes(data.draw, 1, 4, 6)
    if data.draw(st.booleans()):
        shape = shape[:-1] + (data.draw(st.integers(1, 300)),)  # long rows: large sums of squares
    x = rand_array(rng, dtype, shape)
    q_in = None
    if dtype != "float32":
        lo, hi = (-128, 127) if dtype == "int8" else (0, 255)
        zp = int(rng.integers(lo, hi + 1))
        q_in = {"scale": float(10 ** rng.uniform(-3, 0)), "zero_point": zp}
        if data.draw(st.booleans()):  # rows near the zero point: tiny norms, the inverse sqrt's edge
            x = np.clip(zp + rng.integers(-2, 3, size=shape), lo, hi).astype(dtype)
    elif data.draw(st.booleans()):
        x = (x * np.float32(10.0 ** data.draw(st.sampled_from([-40, -20, 15, 19])))).astype(np.float32)
    if x.size and data.draw(st.booleans()):
        x.reshape(-1, shape[-1])[0] = 0 if dtype == "float32" else (q_in or {}).get("zero_point", 0)  # a zero row
    model, feeds = _model(x, q_in, dtype)
    assert check_against_litert(litert, model, feeds) == "ok"


@pytest.mark.oracle
@pytest.mark.parametrize(
    "dtype,out_q,opts",
    [
        ("int8", {"scale": 1 / 127, "zero_point": 0}, {}),
        ("int8", {"scale": 1 / 128, "zero_point": 1}, {}),
        ("uint8", {"scale": 1 / 128, "zero_point": 0}, {}),
        ("int8", None, {}),
        ("float32", None, {"fused_activation_function": "RELU"}),
        ("int16", {"scale": 1 / 128, "zero_point": 0}, {}),
    ],
)
def test_l2norm_rejections(litert, dtype, out_q, opts):
    q_in = {"scale": 0.1, "zero_point": 0} if dtype != "float32" else None
    model, feeds = one_op(
        "L2_NORMALIZATION", [In(np.ones((2, 3), dtype), quant=q_in)], [Out(dtype, quant=out_q)], **opts
    )
    assert check_against_litert(litert, model, feeds) == "rejected"
    with pytest.raises((QuantParamError, UnsupportedOpError)):
        run_refquant(model, feeds)


@pytest.mark.oracle
def test_l2norm_edge_values(litert):
    f = np.array([[0.0, 0.0, 0.0], [np.nan, 1.0, 2.0], [np.inf, 1.0, 0.0], [1e-30, -1e-30, 0.0], [3e38, 3e38, 1.0]])
    assert check_against_litert(litert, *_model(f.astype(np.float32), None, "float32")) == "ok"
    for dtype in ("int8", "uint8"):
        lo, hi = (-128, 127) if dtype == "int8" else (0, 255)
        x = np.array([[lo, lo, hi], [hi, lo, lo], [0, 1, 0], [hi, hi, hi]] * 2, dtype)
        q = {"scale": 0.5, "zero_point": int(x[2, 0])}
        assert check_against_litert(litert, *_model(x, q, dtype)) == "ok"


def test_l2norm_trace_int8():
    x = np.array([[3, -4, 0]], np.int8)
    model, feeds = _model(x, {"scale": 0.1, "zero_point": 0}, "int8")
    tr = run_refquant(model, feeds)
    steps = tr.op_data[0].trace([x], 0, (0, 1))
    assert [s.name for s in steps] == ["diff", "sum_of_squares", "multiplier", "shift", "output"]
    assert steps[1].value == 25 and steps[-1].value == tr.values[1][0, 1] == -102  # -0.8 * 128, rounded
