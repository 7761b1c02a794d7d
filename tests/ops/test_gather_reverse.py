"""GATHER_ND and REVERSE_V2 against LiteRT BUILTIN_REF (raw copies, bit-exact), plus rejections."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refquant.errors import EvalError, PrepareError, RefquantError
from tests.opcheck import check_against_litert, run_refquant
from tests.ops.movement_helpers import ALL_DTYPES, In, Out, one_op, quant_for, rand_array, seeds, shapes


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@settings()
@given(data=st.data(), seed=seeds)
def test_gather_nd_matches_litert(litert, dtype, data, seed):
    rng = np.random.default_rng(seed)
    shape = shapes(data.draw, 1, 4, 4)
    nd = data.draw(st.integers(1, len(shape)))
    lead = shapes(data.draw, 0, 2, 3, min_dim=0)
    idx = np.stack([rng.integers(0, shape[j], size=lead) for j in range(nd)], axis=-1)
    idx = idx.astype(data.draw(st.sampled_from(["int16", "int32", "int64"])))
    q = quant_for(rng, dtype)
    model, feeds = one_op(
        "GATHER_ND",
        [In(rand_array(rng, dtype, shape), quant=q), In(idx, const=data.draw(st.booleans()))],
        [Out(dtype, quant=q)],
    )
    assert check_against_litert(litert, model, feeds) == "ok"


@pytest.mark.oracle
@pytest.mark.parametrize(
    "params,idx,const",
    [
        (np.arange(6.0, dtype=np.float32).reshape(2, 3), [[0, 5]], False),  # in the flat range, not in dim 1
        (np.arange(6.0, dtype=np.float32).reshape(2, 3), [[0, 5]], True),
        (np.arange(6.0, dtype=np.float32).reshape(2, 3), [[-1, 0]], False),
        (np.arange(6.0, dtype=np.float32).reshape(2, 3), [[2]], False),
        (np.arange(6.0, dtype=np.float32).reshape(2, 3), np.zeros((2, 0), np.int32), False),  # no coordinates
        (np.zeros((0, 3), np.float32), [[0]], False),
        (np.arange(6.0, dtype=np.float32).reshape(2, 3), np.int32(1), False),  # rank-0 indices
        (np.arange(6.0, dtype=np.float32).reshape(2, 3), np.zeros((1, 3), np.int32), False),  # depth > rank
        (np.arange(6.0, dtype=np.float32).reshape(2, 3), np.zeros((1, 1), np.uint8), False),
    ],
)
def test_gather_nd_rejections(litert, params, idx, const):
    idx = np.asarray(idx) if np.asarray(idx).dtype != np.int64 else np.asarray(idx, np.int32)
    model, feeds = one_op("GATHER_ND", [In(params), In(idx, const=const)], [Out("float32")])
    assert check_against_litert(litert, model, feeds) == "rejected"
    with pytest.raises((EvalError, PrepareError, RefquantError)):
        run_refquant(model, feeds)


@pytest.mark.oracle
def test_gather_nd_empty_indices_and_params(litert):
    model, feeds = one_op(
        "GATHER_ND", [In(np.zeros((0, 3), np.float32)), In(np.zeros((0, 1), np.int32))], [Out("float32")]
    )
    assert check_against_litert(litert, model, feeds) == "ok"


def test_gather_nd_trace_names_the_source():
    p = np.arange(24, dtype=np.int8).reshape(2, 3, 4)
    idx = np.array([[1, 2], [0, 1]], np.int32)
    model, feeds = one_op("GATHER_ND", [In(p), In(idx)], [Out("int8")])
    steps = run_refquant(model, feeds).op_data[0].trace([p, idx], 0, (0, 3))
    assert steps[0].value == (0, (1, 2, 3)) and steps[-1].value == p[1, 2, 3]


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@settings()
@given(data=st.data(), seed=seeds)
def test_reverse_v2_matches_litert(litert, dtype, data, seed):
    rng = np.random.default_rng(seed)
    shape = shapes(data.draw, 1, 5, 4)
    rank = len(shape)
    first = data.draw(st.integers(0, rank - 1))
    last = data.draw(st.integers(first, rank - 1))
    axes = [a - rank if data.draw(st.booleans()) else a for a in data.draw(st.permutations(range(first, last + 1)))]
    q = quant_for(rng, dtype)
    model, feeds = one_op(
        "REVERSE_V2",
        [In(rand_array(rng, dtype, shape), quant=q), In(np.array(axes, np.int32), const=data.draw(st.booleans()))],
        [Out(dtype, quant=q)],
    )
    assert check_against_litert(litert, model, feeds) == "ok"


@pytest.mark.oracle
@pytest.mark.parametrize(
    "axes,const,status",
    [
        (np.array([0, 2], np.int32), True, "rejected"),  # non-contiguous
        (np.array([0, 2], np.int32), False, "rejected"),
        (np.array([1, 1], np.int32), True, "rejected"),  # duplicates
        (np.array([3], np.int32), False, "rejected"),
        (np.array([[1]], np.int32), True, "rejected"),
        (np.array([1], np.int64), True, "rejected"),
        (np.zeros(0, np.int32), True, "aborted"),  # LiteRT crashes
    ],
)
def test_reverse_v2_rejections(litert, axes, const, status):
    x = np.arange(24, dtype=np.int32).reshape(2, 3, 4)
    model, feeds = one_op("REVERSE_V2", [In(x), In(axes, const=const)], [Out("int32")])
    assert check_against_litert(litert, model, feeds) == status


@pytest.mark.oracle
def test_reverse_v2_ignores_quantization(litert):
    """LiteRT copies raw values even when input and output parameters differ."""
    model, feeds = one_op(
        "REVERSE_V2",
        [In(np.array([1, 2, 3], np.int8), quant={"scale": 0.1, "zero_point": 3}), In(np.array([0], np.int32))],
        [Out("int8", quant={"scale": 0.2, "zero_point": 1})],
    )
    assert check_against_litert(litert, model, feeds) == "ok"
