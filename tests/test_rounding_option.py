"""rounding="single" changes results exactly where the single-rounding formula says, and nowhere else.

The LiteRT wheel is a double-rounding build, so single-rounding expectations are derived from the
formula with Python integers: MBQM(x) = (x*M + 2^(ts-1)) >> ts, ts = 31 - shift.
"""

from __future__ import annotations

import numpy as np
import pytest

import refquant
from refquant.testing import const, op_model, tensor

X = np.arange(-128, 128, dtype=np.int8).reshape(1, 16, 16, 1)


def _one_by_one(op: str) -> bytes:
    """Effective multiplier exactly 0.25 (M = 2^30, shift = -1): input 0.5, filter 0.5, output 1.0."""
    x = tensor((1, 16, 16, 1), "int8", scale=0.5, zero_point=0, name="x")
    if op == "CONV_2D":
        w = const(np.ones((1, 1, 1, 1), np.int8), scale=0.5, zero_point=0, name="w")
        bias = const(np.zeros(1, np.int32), scale=0.25, zero_point=0, name="b")
        y = tensor((1, 16, 16, 1), "int8", scale=1.0, zero_point=0, name="y")
        return op_model("CONV_2D", [x, w, bias], [y], padding="VALID", stride_w=1, stride_h=1)
    w = const(np.ones((1, 1), np.int8), scale=0.5, zero_point=0, name="w")
    y = tensor((1, 16, 16, 1), "int8", scale=1.0, zero_point=0, name="y")
    return op_model("FULLY_CONNECTED", [x, w, None], [y], keep_num_dims=True)


def _run(model: bytes, rounding: str) -> np.ndarray:
    it = refquant.Interpreter(model_content=model, rounding=rounding)
    it.allocate_tensors()
    it.set_tensor(0, X)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"]).reshape(-1).astype(int)


def _double(x: int) -> int:
    high = (x * 2**30 + 2**30) >> 31  # SRDHM: ties up
    return (high >> 1) + (1 if (high & 1) and high >= 0 else 0)  # RDBPOT(., 1): ties away from zero


def _single(x: int) -> int:
    return (x * 2**30 + 2**31) >> 32  # ts = 31 - shift = 32; one rounding, ties up


def test_conv_single_rounding_follows_the_formula():
    model = _one_by_one("CONV_2D")
    xs = X.reshape(-1).astype(int)
    double, single = _run(model, "double"), _run(model, "single")
    assert double.tolist() == [_double(int(x)) for x in xs]
    assert single.tolist() == [_single(int(x)) for x in xs]
    differs = {int(x) for x, d, s in zip(xs, double, single) if d != s}
    assert differs == {int(x) for x in xs if _double(int(x)) != _single(int(x))}
    assert {1, 5, -6} <= differs and 0 not in differs  # the docs/litert_semantics.md §1.3 table


@pytest.mark.oracle
def test_double_rounding_is_the_wheel(litert):
    model = _one_by_one("CONV_2D")
    res = litert.run(model, [X], all_tensors=False)
    assert res.status == "ok"
    np.testing.assert_array_equal(res.outputs[0].reshape(-1).astype(int), _run(model, "double"))


def test_fully_connected_is_unaffected():
    """FC REF requantizes in float64 with C round(); the build flag does not touch it."""
    model = _one_by_one("FULLY_CONNECTED")
    np.testing.assert_array_equal(_run(model, "double"), _run(model, "single"))
