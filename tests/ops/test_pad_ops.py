"""PAD, PADV2 and MIRROR_PAD against LiteRT BUILTIN_REF (bit-exact), plus rejections."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refquant.errors import PrepareError, QuantParamError, RefquantError
from tests.opcheck import check_against_litert, run_refquant
from tests.ops.movement_helpers import ALL_DTYPES, In, Out, one_op, quant_for, rand_array, seeds, shapes


def _ok(litert, model: bytes, feeds: list[np.ndarray]) -> None:
    status = check_against_litert(litert, model, feeds)
    assert status == "ok", status


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("opcode", ["PAD", "PADV2"])
@settings()
@given(data=st.data(), seed=seeds)
def test_pad_matches_litert(litert, opcode, dtype, data, seed):
    rng = np.random.default_rng(seed)
    shape = shapes(data.draw, 1, 5, 4, 0)
    pads = [[data.draw(st.integers(0, 3)), data.draw(st.integers(0, 3))] for _ in shape]
    p_dt = data.draw(st.sampled_from(["int32", "int64", "int8", "int16"]))
    quantized = dtype == "uint8" or (dtype in ("int8", "int16") and data.draw(st.booleans()))
    in_q = quant_for(rng, dtype) if quantized else None
    out_q = quant_for(rng, dtype) if quantized else None  # scales are never compared; the pad uses out zp
    ins = [In(rand_array(rng, dtype, shape), quant=in_q), In(np.array(pads, p_dt), const=True)]
    if opcode == "PADV2":
        ins.append(In(rand_array(rng, dtype, ()), quant=out_q, const=data.draw(st.booleans())))
    model, feeds = one_op(opcode, ins, [Out(dtype, quant=out_q)])
    _ok(litert, model, feeds)


@pytest.mark.oracle
def test_pad_uses_output_zero_point(litert):
    x = In(np.array([1, 2, 3], np.int8), quant={"scale": 0.1, "zero_point": -4})
    model, feeds = one_op(
        "PAD", [x, In(np.array([[2, 1]], np.int32), const=True)], [Out("int8", quant={"scale": 0.7, "zero_point": 5})]
    )
    _ok(litert, model, feeds)
    np.testing.assert_array_equal(run_refquant(model, feeds).values[2], [5, 5, 1, 2, 3, 5])


@pytest.mark.oracle
def test_pad_runtime_paddings(litert):
    """Paddings fed as a graph input: the op is prepared when the graph runs."""
    model, feeds = one_op(
        "PAD",
        [In(np.arange(6, dtype=np.float32).reshape(2, 3)), In(np.array([[1, 0], [0, 2]], np.int32))],
        [Out("float32")],
    )
    _ok(litert, model, feeds)


@pytest.mark.oracle
@pytest.mark.parametrize(
    "pads,cq,out_q,err",
    [
        ([[-1, 1]], None, {"scale": 0.5, "zero_point": 0}, PrepareError),  # negative padding
        ([[1, 1]], {"scale": 0.25, "zero_point": 0}, {"scale": 0.5, "zero_point": 0}, QuantParamError),
        ([[1, 1]], {"scale": 0.5, "zero_point": 1}, {"scale": 0.5, "zero_point": 0}, QuantParamError),
        ([[1, 1], [0, 0]], None, {"scale": 0.5, "zero_point": 0}, PrepareError),  # paddings shape
    ],
)
def test_pad_rejections(litert, pads, cq, out_q, err):
    q = {"scale": 0.5, "zero_point": 0}
    ins = [In(np.zeros(3, np.int8), quant=q), In(np.array(pads, np.int32), const=True)]
    if cq is not None:
        ins.append(In(np.array(1, np.int8), quant=cq, const=True))
    model, feeds = one_op("PADV2" if cq else "PAD", ins, [Out("int8", quant=out_q)])
    assert check_against_litert(litert, model, feeds) == "rejected"
    with pytest.raises(err):
        run_refquant(model, feeds)


def test_pad_rejects_rank_6():
    model, feeds = one_op(
        "PAD", [In(np.zeros((1,) * 6, np.float32)), In(np.zeros((6, 2), np.int32), const=True)], [Out("float32")]
    )
    with pytest.raises(PrepareError, match="at most 5"):
        run_refquant(model, feeds)


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("mode", ["REFLECT", "SYMMETRIC"])
@settings()
@given(data=st.data(), seed=seeds)
def test_mirror_pad_matches_litert(litert, mode, dtype, data, seed):
    rng = np.random.default_rng(seed)
    offset = 1 if mode == "REFLECT" else 0
    shape = shapes(data.draw, 1, 4, 4)
    pads = [[data.draw(st.integers(0, d - offset)), data.draw(st.integers(0, d - offset))] for d in shape]
    q = quant_for(rng, dtype)
    model, feeds = one_op(
        "MIRROR_PAD",
        [
            In(rand_array(rng, dtype, shape), quant=q),
            In(np.array(pads, data.draw(st.sampled_from(["int32", "int64"]))), const=True),
        ],
        [Out(dtype, quant=q)],
        options_type="MirrorPadOptions",
        mode=mode,
    )
    _ok(litert, model, feeds)


@pytest.mark.oracle
@pytest.mark.parametrize(
    "mode,pads,in_q,out_q",
    [
        ("REFLECT", [[3, 0]], None, None),  # padding > size - 1
        ("SYMMETRIC", [[0, 4]], None, None),  # padding > size
        ("REFLECT", [[1, 1]], {"scale": 0.5, "zero_point": 1}, {"scale": 0.5, "zero_point": 2}),
    ],
)
def test_mirror_pad_rejections(litert, mode, pads, in_q, out_q):
    model, feeds = one_op(
        "MIRROR_PAD",
        [In(np.arange(3, dtype=np.int8), quant=in_q), In(np.array(pads, np.int32), const=True)],
        [Out("int8", quant=out_q)],
        options_type="MirrorPadOptions",
        mode=mode,
    )
    assert check_against_litert(litert, model, feeds) == "rejected"
    with pytest.raises(RefquantError):
        run_refquant(model, feeds)
