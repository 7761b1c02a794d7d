"""BATCH_MATMUL against LiteRT BUILTIN_REF (bit-exact), plus deterministic edge cases and rejections."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import refquant
from refquant.errors import PrepareError, QuantParamError, UnsupportedOpError
from refquant.testing import const, op_model, tensor
from tests.opcheck import check_against_litert, run_refquant

INFO = {"int8": np.iinfo(np.int8), "int16": np.iinfo(np.int16)}


def _model(
    l_shape,
    r_shape,
    out_shape,
    *,
    l_dt="int8",
    r_dt="int8",
    out_dt="int8",
    s_l=0.05,
    zp_l=0,
    s_r=0.02,
    zp_r=0,
    s_out=0.1,
    zp_out=0,
    rhs_const=None,
    quant=True,
    **options,
) -> bytes:
    """A one-op BATCH_MATMUL model; ``rhs_const`` makes the RHS a constant tensor."""

    def q(s, z, dt):
        return {"scale": s, "zero_point": z} if quant and dt != "float32" else {}

    lhs = tensor(l_shape, l_dt, name="lhs", **q(s_l, zp_l, l_dt))
    if rhs_const is not None:
        rhs = const(rhs_const, r_dt, name="rhs", **q(s_r, zp_r, r_dt))
    else:
        rhs = tensor(r_shape, r_dt, name="rhs", **q(s_r, zp_r, r_dt))
    y = tensor(out_shape, out_dt, name="y", **q(s_out, zp_out, out_dt))
    return op_model("BATCH_MATMUL", [lhs, rhs], [y], **options)


@st.composite
def shapes(draw):
    """Operand shapes (ranks 2..5, broadcastable batch dims) and adj flags."""
    rank_l, rank_r = draw(st.integers(2, 5)), draw(st.integers(2, 5))
    rank = max(rank_l, rank_r)
    batch = [draw(st.integers(1, 3)) for _ in range(rank - 2)]
    lb, rb = [], []
    for d in batch:
        mode = draw(st.sampled_from(["same", "lhs1", "rhs1"]))
        lb.append(1 if mode == "lhs1" else d)
        rb.append(1 if mode == "rhs1" else d)
    lb, rb = lb[rank - rank_l :], rb[rank - rank_r :]
    m, k, n = draw(st.integers(1, 6)), draw(st.integers(1, 24)), draw(st.integers(1, 6))
    adj_x, adj_y = draw(st.booleans()), draw(st.booleans())
    l_shape = tuple(lb) + ((k, m) if adj_x else (m, k))
    r_shape = tuple(rb) + ((n, k) if adj_y else (k, n))
    out_shape = tuple(np.broadcast_shapes(tuple(lb), tuple(rb))) + (m, n)
    return l_shape, r_shape, out_shape, adj_x, adj_y, k


def _rand(rng, dt, shape):
    info = INFO[dt]
    return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dt)


@st.composite
def quant_case(draw, l_dt, r_dt):
    l_shape, r_shape, out_shape, adj_x, adj_y, k = draw(shapes())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    sym = l_dt == "int16"
    zp_l = 0 if sym else int(rng.integers(-128, 128))
    zp_r = 0 if sym else int(rng.integers(-128, 128))
    zp_out = 0 if sym else int(rng.integers(-128, 64))
    s_l, s_r = float(10 ** draw(st.floats(-3, -1))), float(10 ** draw(st.floats(-4, -1)))
    lhs, rhs = _rand(rng, l_dt, l_shape), _rand(rng, r_dt, r_shape)
    mag = (np.abs(lhs.astype(np.int64) - zp_l).mean() + 1) * (np.abs(rhs.astype(np.int64) - zp_r).mean() + 1)
    typical = s_l * s_r * mag * np.sqrt(k)
    s_out = float(typical / (INFO[l_dt].max / 2) * 10 ** draw(st.floats(-1, 0.7)))
    if draw(st.sampled_from([False, False, True])):
        # Power-of-two multiplier 2^-j exactly: many accumulators land on rounding ties.
        prod = np.float32(np.float32(s_l) * np.float32(s_r))
        s_out = float(prod * np.float32(2.0 ** round(np.log2(s_out / float(prod)))))
    const = draw(st.booleans())
    return dict(
        l_shape=l_shape,
        r_shape=r_shape,
        out_shape=out_shape,
        adj_x=adj_x,
        adj_y=adj_y,
        lhs=lhs,
        rhs=rhs,
        s_l=s_l,
        s_r=s_r,
        s_out=s_out,
        zp_l=zp_l,
        zp_r=zp_r,
        zp_out=zp_out,
        const=const,
    )


def _check(litert, c, l_dt, r_dt, out_dt, quant=True):
    m = _model(
        c["l_shape"],
        c["r_shape"],
        c["out_shape"],
        l_dt=l_dt,
        r_dt=r_dt,
        out_dt=out_dt,
        s_l=c["s_l"],
        zp_l=c["zp_l"],
        s_r=c["s_r"],
        zp_r=c["zp_r"],
        s_out=c["s_out"],
        zp_out=c["zp_out"],
        rhs_const=c["rhs"] if c["const"] else None,
        adj_x=c["adj_x"],
        adj_y=c["adj_y"],
        quant=quant,
    )
    inputs = [c["lhs"]] if c["const"] else [c["lhs"], c["rhs"]]
    assert check_against_litert(litert, m, inputs) == "ok"


@pytest.mark.oracle
@settings()
@given(c=quant_case("int8", "int8"))
def test_bmm_int8(litert, c):
    _check(litert, c, "int8", "int8", "int8")


@pytest.mark.oracle
@settings()
@given(c=quant_case("int8", "int8"), quant=st.booleans())
def test_bmm_int8_to_int32(litert, c, quant):
    _check(litert, c, "int8", "int8", "int32", quant=quant)


@pytest.mark.oracle
@settings()
@given(c=quant_case("int16", "int16"))
def test_bmm_int16(litert, c):
    _check(litert, c, "int16", "int16", "int16")


@pytest.mark.oracle
@settings()
@given(c=quant_case("int16", "int8"))
def test_bmm_int16_int8(litert, c):
    _check(litert, c, "int16", "int8", "int16")


@pytest.mark.oracle
@settings()
@given(sh=shapes(), seed=st.integers(0, 2**32 - 1), const=st.booleans(), scale=st.floats(-3, 3))
def test_bmm_float32(litert, sh, seed, const, scale):
    # Bit-exact: refquant sums in float32 in k order like the reference kernel (no tolerance needed).
    l_shape, r_shape, out_shape, adj_x, adj_y, _ = sh
    rng = np.random.default_rng(seed)
    lhs = (rng.standard_normal(l_shape) * 10**scale).astype(np.float32)
    rhs = rng.standard_normal(r_shape).astype(np.float32)
    m = _model(
        l_shape,
        r_shape,
        out_shape,
        l_dt="float32",
        r_dt="float32",
        out_dt="float32",
        rhs_const=rhs if const else None,
        adj_x=adj_x,
        adj_y=adj_y,
    )
    assert check_against_litert(litert, m, [lhs] if const else [lhs, rhs]) == "ok"


# ---------------------------------------------------------------------------------------------
# Deterministic edge cases against the oracle


@pytest.mark.oracle
@pytest.mark.parametrize("rounding_probe", [True])
def test_bmm_int8_double_rounding_ties(litert, rounding_probe):
    # Multiplier exactly 0.25 (M = 2^30, shift = -1): double rounding gives x=1 -> 1, x=-6 -> -2.
    lhs = np.arange(-128, 128, dtype=np.int8).reshape(256, 1)
    rhs = np.ones((1, 1), np.int8)
    m = _model((256, 1), (1, 1), (256, 1), s_l=0.5, s_r=0.5, s_out=1.0, rhs_const=rhs)
    check_against_litert(litert, m, [lhs])
    out = run_refquant(m, [lhs]).values[2].ravel()
    assert out[128 + 1] == 1 and out[128 - 6] == -2
    single = run_refquant(m, [lhs], rounding="single").values[2].ravel()
    assert single[128 + 1] == 0 and single[128 - 6] == -1


@pytest.mark.oracle
def test_bmm_multiplier_uses_float32_scale_product(litert):
    # Scales found by search: QM(f64(f32(s_l*s_r))/s_out) gives -77 for acc -6692; the float64 product
    # s_l*s_r would give a different M and -76.
    s_l, s_r, s_out = np.float32(0.011553891), np.float32(0.0019176569), np.float32(0.001938376)
    lhs = np.array([[28]], np.int8)
    rhs = np.array([[-128]], np.int8)
    m = _model((1, 1), (1, 1), (1, 1), s_l=float(s_l), s_r=float(s_r), s_out=float(s_out), zp_r=111, rhs_const=rhs)
    check_against_litert(litert, m, [lhs])
    assert run_refquant(m, [lhs]).values[2][0, 0] == -77


@pytest.mark.oracle
@pytest.mark.parametrize("adj_y", [False, True])
def test_bmm_per_channel_rhs_is_rejected(litert, adj_y):
    # LiteRT's legacy params.scale of a per-channel tensor is 0: the multiplier is 0 and every output is
    # zp_out. refquant refuses such models instead of reproducing that.
    rng = np.random.default_rng(10)
    lhs = _rand(rng, "int8", (2, 3, 4))
    rhs = _rand(rng, "int8", (2, 5, 4) if adj_y else (2, 4, 5))
    x = tensor(lhs.shape, "int8", scale=0.05, zero_point=3, name="lhs")
    r = const(
        rhs,
        "int8",
        scale=[0.01, 0.2, 0.3, 0.4, 0.5],
        zero_point=[2, 0, 0, 0, 0],
        quantized_dimension=1 if adj_y else 2,
        name="rhs",
    )
    y = tensor((2, 3, 5), "int8", scale=0.3, zero_point=-1, name="y")
    m = op_model("BATCH_MATMUL", [x, r], [y], adj_y=adj_y)
    res = litert.run(m, [lhs])
    assert res.status == "ok" and (res.outputs[0] == -1).all()
    with pytest.raises(QuantParamError, match="per-channel"):
        run_refquant(m, [lhs])


@pytest.mark.oracle
def test_bmm_int32_accumulator_wraps(litert):
    k = 70000
    lhs = np.full((1, k), -128, np.int8)
    rhs = np.full((k, 1), -128, np.int8)
    for out_dt in ("int8", "int32"):
        m = _model((1, k), (k, 1), (1, 1), out_dt=out_dt, s_out=1000.0, rhs_const=rhs)
        check_against_litert(litert, m, [lhs])


@pytest.mark.oracle
def test_bmm_rank5_broadcast_and_compress(litert):
    # RHS [..., 1, K, N] triggers LiteRT's batch-compression shortcut; results must be unchanged.
    rng = np.random.default_rng(7)
    lhs = _rand(rng, "int8", (2, 1, 3, 4, 5))
    rhs = _rand(rng, "int8", (3, 1, 5, 2))
    m = _model(lhs.shape, rhs.shape, (2, 3, 3, 4, 2))
    check_against_litert(litert, m, [lhs, rhs])
    m = _model(lhs.shape, (1, 5, 2), (2, 1, 3, 4, 2))
    check_against_litert(litert, m, [lhs, _rand(rng, "int8", (1, 5, 2))])


@pytest.mark.oracle
def test_bmm_zero_size(litert):
    lhs = np.zeros((2, 0, 3), np.int8)
    rhs = np.ones((2, 3, 4), np.int8)
    check_against_litert(litert, _model(lhs.shape, rhs.shape, (2, 0, 4)), [lhs, rhs])
    lhs = np.ones((2, 3, 0), np.int8)
    rhs = np.ones((2, 0, 4), np.int8)
    check_against_litert(litert, _model(lhs.shape, rhs.shape, (2, 3, 4), zp_out=7), [lhs, rhs])


@pytest.mark.oracle
def test_bmm_rejections_match_litert(litert):
    cases = [
        (_model((2, 3), (4, 5), (2, 5)), [(2, 3), (4, 5)]),  # depth mismatch
        (_model((2, 2, 3), (3, 3, 4), (2, 2, 4)), [(2, 2, 3), (3, 3, 4)]),  # batch 2 vs 3
        (_model((3,), (3, 4), (1, 4)), [(3,), (3, 4)]),  # rank 1
        (_model((1, 1, 1, 1, 1, 2, 3), (3, 4), (1, 1, 1, 1, 1, 2, 4)), [(1, 1, 1, 1, 1, 2, 3), (3, 4)]),  # rank 7
        (_model((2, 3), (3, 4), (2, 4), l_dt="int16", r_dt="int16", out_dt="int16", zp_l=1), [(2, 3), (3, 4)]),
        (_model((2, 3), (3, 4), (2, 4), l_dt="int16", r_dt="int8", out_dt="int16", zp_r=1), [(2, 3), (3, 4)]),
        (_model((2, 3), (3, 4), (2, 4), l_dt="int8", r_dt="int16", out_dt="int16"), [(2, 3), (3, 4)]),
    ]
    for m, shapes_ in cases:
        it = refquant.Interpreter(model_content=m)
        inputs = [np.zeros(s, d["dtype"]) for s, d in zip(shapes_, it.get_input_details())]
        assert check_against_litert(litert, m, inputs) == "rejected"


# ---------------------------------------------------------------------------------------------
# Rejections and helpers without the oracle


def _prepare(m: bytes):
    it = refquant.Interpreter(model_content=m)
    it.allocate_tensors()
    return it


def test_bmm_rejects_hybrid_and_bad_outputs():
    with pytest.raises(UnsupportedOpError, match="hybrid"):
        _prepare(_model((2, 3), (3, 4), (2, 4), l_dt="float32", r_dt="int8", out_dt="float32"))
    with pytest.raises(UnsupportedOpError):
        _prepare(_model((2, 3), (3, 4), (2, 4), out_dt="int16"))  # LiteRT writes int32 into an int16 buffer
    with pytest.raises(UnsupportedOpError):
        _prepare(_model((2, 3), (3, 4), (2, 4), l_dt="int16", r_dt="int16", out_dt="int8"))
    with pytest.raises(PrepareError, match="depth"):
        _prepare(_model((2, 3), (4, 5), (2, 5)))
    with pytest.raises(QuantParamError, match="int16 BATCH_MATMUL"):
        _prepare(_model((2, 3), (3, 4), (2, 4), l_dt="int16", r_dt="int16", out_dt="int16", zp_out=2))


def test_bmm_accumulators_and_trace():
    rng = np.random.default_rng(8)
    lhs = _rand(rng, "int8", (2, 1, 4, 3))
    rhs = _rand(rng, "int8", (3, 5, 3))
    m = _model(lhs.shape, rhs.shape, (2, 3, 4, 5), zp_l=3, zp_r=-2, zp_out=5, adj_y=True)
    tr = run_refquant(m, [lhs, rhs])
    data = tr.op_data[0]
    acc = data.accumulators([lhs, rhs])["acc"]
    want = np.matmul(lhs.astype(np.int64) - 3, np.swapaxes(rhs.astype(np.int64) + 2, -1, -2))
    assert acc.dtype == np.int32 and np.array_equal(acc, want)
    out = tr.values[2]
    for e in [(0, 0, 0, 0), (1, 2, 3, 4), (1, 0, 2, 1)]:
        steps = data.trace([lhs, rhs], 0, e)
        assert steps[-1].value == out[e]
        assert [s.name for s in steps][:4] == ["lhs_row", "rhs_col", "lhs_offset", "rhs_offset"]


def test_bmm_int16_and_float_trace_match_eval():
    rng = np.random.default_rng(9)
    lhs = _rand(rng, "int16", (3, 2, 4))
    rhs = _rand(rng, "int16", (4, 3))
    m = _model(lhs.shape, rhs.shape, (3, 2, 3), l_dt="int16", r_dt="int16", out_dt="int16", s_out=300.0)
    tr = run_refquant(m, [lhs, rhs])
    for e in [(0, 0, 0), (2, 1, 2)]:
        assert tr.op_data[0].trace([lhs, rhs], 0, e)[-1].value == tr.values[2][e]
    lf, rf = rng.standard_normal((2, 3)).astype(np.float32), rng.standard_normal((3, 2)).astype(np.float32)
    m = _model((2, 3), (3, 2), (2, 2), l_dt="float32", r_dt="float32", out_dt="float32")
    tr = run_refquant(m, [lf, rf])
    assert tr.op_data[0].trace([lf, rf], 0, (1, 1))[-1].value == tr.values[2][1, 1]
