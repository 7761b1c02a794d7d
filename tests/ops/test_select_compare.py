"""SELECT, SELECT_V2 and the comparison ops against LiteRT BUILTIN_REF (bit-exact), plus rejections."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refquant.errors import PrepareError, QuantParamError, UnsupportedOpError
from tests.opcheck import check_against_litert, run_refquant
from tests.ops.movement_helpers import ALL_DTYPES, In, Out, one_op, quant_for, rand_array, seeds, shapes

COMPARISONS = ["EQUAL", "NOT_EQUAL", "LESS", "LESS_EQUAL", "GREATER", "GREATER_EQUAL"]


def _ok(litert, model: bytes, feeds: list[np.ndarray]) -> None:
    status = check_against_litert(litert, model, feeds)
    assert status == "ok", status


def _broadcastable(draw, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A shape that broadcasts against ``shape`` (a suffix, with some dims set to 1)."""
    k = draw(st.integers(0, len(shape)))
    return tuple(1 if draw(st.booleans()) else d for d in shape[len(shape) - k :])


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@settings()
@given(data=st.data(), seed=seeds)
def test_select_v2_matches_litert(litert, dtype, data, seed):
    rng = np.random.default_rng(seed)
    shape = shapes(data.draw, 0, 5, 3)
    sc, sx, sy = (_broadcastable(data.draw, shape) if data.draw(st.booleans()) else shape for _ in range(3))
    q = quant_for(rng, dtype)
    model, feeds = one_op(
        "SELECT_V2",
        [
            In(rand_array(rng, "bool", sc)),
            In(rand_array(rng, dtype, sx), quant=q),
            In(rand_array(rng, dtype, sy), quant=q),
        ],
        [Out(dtype, quant=q)],
    )
    _ok(litert, model, feeds)


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@settings()
@given(data=st.data(), seed=seeds)
def test_select_matches_litert(litert, dtype, data, seed):
    rng = np.random.default_rng(seed)
    shape = shapes(data.draw, 1, 4, 3)
    cshape = data.draw(st.sampled_from([shape, (), (shape[0],)]))
    q = quant_for(rng, dtype)
    model, feeds = one_op(
        "SELECT",
        [
            In(rand_array(rng, "bool", cshape)),
            In(rand_array(rng, dtype, shape), quant=q),
            In(rand_array(rng, dtype, shape), quant=q),
        ],
        [Out(dtype, quant=q)],
    )
    _ok(litert, model, feeds)


@pytest.mark.oracle
def test_select_rejections(litert):
    c = In(np.array([True, False]))
    x = In(np.zeros((2, 3), np.int8))
    model, feeds = one_op("SELECT", [c, x, In(np.zeros((3,), np.int8))], [Out("int8")])
    assert check_against_litert(litert, model, feeds) == "rejected"
    with pytest.raises(PrepareError):
        run_refquant(model, feeds)
    model, feeds = one_op("SELECT_V2", [In(np.array([True, False])), x, x], [Out("int8")])
    assert check_against_litert(litert, model, feeds) == "rejected"
    with pytest.raises(PrepareError, match="do not broadcast"):
        run_refquant(model, feeds)


# bool compares only for (NOT_)EQUAL; LiteRT's NOT_EQUAL on unquantized int16 is garbage (tested below).
_CMP_CASES = [
    (op, dt)
    for op in COMPARISONS
    for dt in ("float32", "int32", "int64", "int8", "uint8", "int16", "int16q", "bool")
    if not (dt == "bool" and op not in ("EQUAL", "NOT_EQUAL")) and not (dt == "int16" and op == "NOT_EQUAL")
]


@pytest.mark.oracle
@pytest.mark.parametrize("opcode,dtype", _CMP_CASES)
@settings()
@given(data=st.data(), seed=seeds)
def test_comparison_matches_litert(litert, opcode, dtype, data, seed):
    rng = np.random.default_rng(seed)
    dt = "int16" if dtype == "int16q" else dtype
    shape = shapes(data.draw, 0, 4, 4)
    sa = _broadcastable(data.draw, shape) if data.draw(st.booleans()) else shape
    sb = _broadcastable(data.draw, shape) if data.draw(st.booleans()) else shape
    qa = qb = None
    if dt in ("int8", "uint8") or dtype == "int16q":
        qa, qb = quant_for(rng, dt), quant_for(rng, dt)
        if data.draw(st.booleans()):
            qb = qa  # equal parameters: exercises exact ties
    a = rand_array(rng, dt, sa)
    b = rand_array(rng, dt, sb)
    if dt != "bool" and data.draw(st.booleans()):  # many equal pairs
        b = np.broadcast_to(a, np.broadcast_shapes(a.shape, b.shape))[tuple(slice(0, d) for d in b.shape)].copy()
        b = b.reshape(sb) if b.size == int(np.prod(sb)) else rand_array(rng, dt, sb)
    model, feeds = one_op(opcode, [In(a, quant=qa), In(b, quant=qb)], [Out("bool")])
    _ok(litert, model, feeds)


@pytest.mark.oracle
@pytest.mark.parametrize("scale", [0.0, 1.0, 2.5])
def test_quantized_comparison_needs_scale_below_one(litert, scale):
    q = {"scale": scale, "zero_point": 0}
    model, feeds = one_op("LESS", [In(np.zeros(3, np.int8), quant=q), In(np.ones(3, np.int8), quant=q)], [Out("bool")])
    # 0 and 1 fail a CHECK in QuantizeMultiplier*; above 1 the kernel shifts by a negative amount.
    assert litert.run(model, feeds).status == ("ok" if scale > 1 else "aborted")
    with pytest.raises(QuantParamError, match="0 < scale < 1"):
        run_refquant(model, feeds)


def test_comparison_trace_shows_rescaled_operands():
    qa, qb = {"scale": 0.5, "zero_point": 1}, {"scale": 0.25, "zero_point": -3}
    a, b = np.array([3, 4], np.int8), np.array([1, 5], np.int8)
    model, feeds = one_op("GREATER", [In(a, quant=qa), In(b, quant=qb)], [Out("bool")])
    tr = run_refquant(model, feeds)
    for i in range(2):
        steps = tr.op_data[0].trace([a, b], 0, (i,))
        assert [s.name for s in steps] == ["x", "y", "scaled x", "scaled y", "output"]
        assert steps[-1].value == tr.values[2][i]


def test_not_equal_rejects_unquantized_int16():
    """LiteRT's NOT_EQUAL has no unquantized int16 branch: it returns success and an uninitialized output."""
    model, feeds = one_op("NOT_EQUAL", [In(np.zeros(3, np.int16)), In(np.ones(3, np.int16))], [Out("bool")])
    with pytest.raises(UnsupportedOpError, match="NOT_EQUAL on unquantized int16"):
        run_refquant(model, feeds)
