"""LOGICAL_AND, LOGICAL_OR, LOGICAL_NOT, REDUCE_ANY and REDUCE_ALL against LiteRT BUILTIN_REF, plus rejections."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refquant.errors import UnsupportedOpError
from tests.opcheck import check_against_litert, run_refquant
from tests.ops.movement_helpers import In, Out, one_op, rand_array, seeds, shapes


def _broadcastable(draw, shape: tuple[int, ...]) -> tuple[int, ...]:
    k = draw(st.integers(0, len(shape)))
    return tuple(1 if draw(st.booleans()) else d for d in shape[len(shape) - k :])


@pytest.mark.oracle
@pytest.mark.parametrize("opcode", ["LOGICAL_AND", "LOGICAL_OR", "LOGICAL_NOT"])
@settings()
@given(data=st.data(), seed=seeds)
def test_logical_matches_litert(litert, opcode, data, seed):
    rng = np.random.default_rng(seed)
    shape = shapes(data.draw, 0, 6, 3)
    if opcode == "LOGICAL_NOT":
        ins = [In(rand_array(rng, "bool", shape))]
    else:
        sa = _broadcastable(data.draw, shape) if data.draw(st.booleans()) else shape
        sb = _broadcastable(data.draw, shape) if data.draw(st.booleans()) else shape
        ins = [In(rand_array(rng, "bool", sa)), In(rand_array(rng, "bool", sb), const=data.draw(st.booleans()))]
    assert check_against_litert(litert, *one_op(opcode, ins, [Out("bool")])) == "ok"


@pytest.mark.oracle
@pytest.mark.parametrize("opcode", ["REDUCE_ANY", "REDUCE_ALL"])
@settings()
@given(data=st.data(), seed=seeds)
def test_reduce_any_all_match_litert(litert, opcode, data, seed):
    rng = np.random.default_rng(seed)
    shape = shapes(data.draw, 0, 4, 4, min_dim=data.draw(st.sampled_from([0, 1, 1, 1])))
    rank = len(shape)
    n = data.draw(st.integers(0, rank))
    axes = list(data.draw(st.permutations(range(rank)))[:n]) if rank else data.draw(st.sampled_from([[], [0]]))
    axes = [a - rank if rank and data.draw(st.booleans()) else a for a in axes]
    x = rand_array(rng, "bool", shape)
    if x.size and data.draw(st.booleans()):
        x = np.full(shape, data.draw(st.booleans()))
    model, feeds = one_op(
        opcode,
        [In(x), In(np.array(axes, np.int32), const=True)],
        [Out("bool")],
        keep_dims=data.draw(st.booleans()),
    )
    assert check_against_litert(litert, model, feeds) == "ok"


@pytest.mark.oracle
@pytest.mark.parametrize(
    "opcode,ins",
    [
        ("LOGICAL_AND", [np.ones(2, np.int32), np.ones(2, np.int32)]),
        ("LOGICAL_OR", [np.ones(2, bool), np.ones(3, bool)]),
        ("LOGICAL_NOT", [np.ones(2, np.float32)]),
        ("REDUCE_ANY", [np.ones(2, np.int32), np.array([0], np.int32)]),
        ("REDUCE_ALL", [np.ones((2, 2), bool), np.array([2], np.int32)]),
    ],
)
def test_logical_rejections(litert, opcode, ins):
    model, feeds = one_op(
        opcode, [In(v, const=k == 1 and opcode.startswith("REDUCE")) for k, v in enumerate(ins)], [Out("bool")]
    )
    assert check_against_litert(litert, model, feeds) == "rejected"


def test_logical_type_errors_are_named():
    model, feeds = one_op("LOGICAL_AND", [In(np.ones(2, np.int8)), In(np.ones(2, np.int8))], [Out("bool")])
    with pytest.raises(UnsupportedOpError, match="LOGICAL_AND"):
        run_refquant(model, feeds)


def test_reduce_any_trace():
    x = np.array([[False, True], [False, False]])
    model, feeds = one_op("REDUCE_ANY", [In(x), In(np.array([1], np.int32), const=True)], [Out("bool")])
    tr = run_refquant(model, feeds)
    assert tr.values[2].tolist() == [True, False]
    steps = tr.op_data[0].trace([x, np.array([1], np.int32)], 0, (1,))
    assert steps[0].value == [False, False] and steps[-1].value is False
