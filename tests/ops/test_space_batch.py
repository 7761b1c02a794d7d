"""SPACE_TO_BATCH_ND and BATCH_TO_SPACE_ND against LiteRT BUILTIN_REF (bit-exact), plus rejections."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refquant.errors import PrepareError, QuantParamError
from tests.opcheck import check_against_litert, run_refquant
from tests.ops.movement_helpers import ALL_DTYPES, In, Out, one_op, quant_for, rand_array, seeds


def _ok(litert, model: bytes, feeds: list[np.ndarray]) -> None:
    status = check_against_litert(litert, model, feeds)
    assert status == "ok", status


def _model(opcode, x, block, pairs, q):
    dtype = x.dtype.name
    return one_op(
        opcode,
        [In(x, quant=q), In(np.array(block, np.int32), const=True), In(np.array(pairs, np.int32), const=True)],
        [Out(dtype, quant=q)],
    )


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@settings()
@given(data=st.data(), seed=seeds)
def test_space_to_batch_nd_matches_litert(litert, dtype, data, seed):
    rng = np.random.default_rng(seed)
    rank = data.draw(st.sampled_from([3, 4]))
    spatial = rank - 2
    block = [data.draw(st.integers(1, 3)) for _ in range(spatial)]
    pads = []
    dims = []
    for b in block:
        total = b * data.draw(st.integers(1, 3))  # padded size: a multiple of the block
        dims.append(data.draw(st.integers(0, total)))
        lo = data.draw(st.integers(0, total - dims[-1]))
        pads.append([lo, total - dims[-1] - lo])
    shape = (data.draw(st.integers(1, 3)), *dims, data.draw(st.integers(1, 3)))
    model, feeds = _model("SPACE_TO_BATCH_ND", rand_array(rng, dtype, shape), block, pads, quant_for(rng, dtype))
    _ok(litert, model, feeds)


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@settings()
@given(data=st.data(), seed=seeds)
def test_batch_to_space_nd_matches_litert(litert, dtype, data, seed):
    rng = np.random.default_rng(seed)
    rank = data.draw(st.sampled_from([3, 4]))
    spatial = rank - 2
    block = [data.draw(st.integers(1, 3)) for _ in range(spatial)]
    dims = [data.draw(st.integers(1, 3)) for _ in range(spatial)]
    crops = []
    for b, d in zip(block, dims):
        lo = data.draw(st.integers(0, b * d))
        crops.append([lo, data.draw(st.integers(0, b * d - lo))])
    shape = (int(np.prod(block)) * data.draw(st.integers(1, 3)), *dims, data.draw(st.integers(1, 3)))
    model, feeds = _model("BATCH_TO_SPACE_ND", rand_array(rng, dtype, shape), block, crops, quant_for(rng, dtype))
    _ok(litert, model, feeds)


@pytest.mark.oracle
def test_space_to_batch_pads_with_the_output_zero_point(litert):
    q = {"scale": 0.5, "zero_point": -3}
    model, feeds = _model(
        "SPACE_TO_BATCH_ND", np.arange(4, dtype=np.int8).reshape(1, 2, 2, 1), [2, 2], [[1, 1], [0, 2]], q
    )
    _ok(litert, model, feeds)
    assert (run_refquant(model, feeds).values[3] == -3).sum() == 12


@pytest.mark.oracle
@pytest.mark.parametrize(
    "opcode,shape,block,pairs",
    [
        ("SPACE_TO_BATCH_ND", (1, 3, 4, 1), [2, 2], [[0, 0], [0, 0]]),  # not a multiple of the block
        ("SPACE_TO_BATCH_ND", (1, 4, 4, 1), [-2, 2], [[0, 0], [0, 0]]),
        ("BATCH_TO_SPACE_ND", (3, 2, 2, 1), [2, 2], [[0, 0], [0, 0]]),  # batch not a multiple
        ("BATCH_TO_SPACE_ND", (4, 2, 2, 1), [2, 2], [[-1, 0], [0, 0]]),
        ("BATCH_TO_SPACE_ND", (4, 2, 2, 1), [2, 2], [[3, 3], [0, 0]]),  # crops exceed the size
        ("BATCH_TO_SPACE_ND", (4, 2, 2, 1, 1), [2, 2], [[0, 0], [0, 0]]),  # rank 5
    ],
)
def test_space_batch_rejections(litert, opcode, shape, block, pairs):
    model, feeds = _model(opcode, np.zeros(shape, np.int8), block, pairs, None)
    assert check_against_litert(litert, model, feeds) == "rejected"
    with pytest.raises(PrepareError):
        run_refquant(model, feeds)


def test_space_to_batch_rejects_negative_paddings_and_mismatched_params():
    """LiteRT crops with negative paddings (TensorFlow forbids them); refquant rejects them."""
    model, feeds = _model("SPACE_TO_BATCH_ND", np.zeros((1, 4, 4, 1), np.int8), [2, 2], [[-1, 1], [0, 0]], None)
    with pytest.raises(PrepareError, match="paddings"):
        run_refquant(model, feeds)
    model, feeds = one_op(
        "SPACE_TO_BATCH_ND",
        [
            In(np.zeros((1, 2, 2, 1), np.int8), quant={"scale": 0.5, "zero_point": 0}),
            In(np.array([2, 2], np.int32), const=True),
            In(np.zeros((2, 2), np.int32), const=True),
        ],
        [Out("int8", quant={"scale": 0.25, "zero_point": 0})],
    )
    with pytest.raises(QuantParamError):
        run_refquant(model, feeds)
