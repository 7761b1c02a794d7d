"""ADD, SUB, MUL, DIV, SQUARED_DIFFERENCE, MAXIMUM and MINIMUM against LiteRT BUILTIN_REF.

Integer outputs are compared bit-exactly. Float32 ADD/SUB/MUL/DIV/SQUARED_DIFFERENCE/MAXIMUM/MINIMUM
are single IEEE operations plus a clamp, so they are compared bit-exactly too (no tolerance).
Shapes broadcast numpy-style up to rank 6 in the random tests (LiteRT's limit is 8, tested separately).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from refquant.errors import InputError, PrepareError, QuantParamError, RefquantError, UnsupportedOpError
from refquant.ops import elementwise
from refquant.testing import OpSpec, build_model, const, model_bytes, op_model, operator, tensor
from refquant.tflite.writer import write_model
from tests.opcheck import check_against_litert, run_refquant

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

INFO = {dt: np.iinfo(dt) for dt in ("int8", "uint8", "int16", "int32", "int64")}
ACTS = ["NONE", "RELU", "RELU6", "RELU_N1_TO_1", "TANH"]
STATS: Counter = Counter()


@pytest.fixture(scope="module", autouse=True)
def _report_stats():
    yield
    if STATS:
        print("\nelementwise oracle statuses:")
        for key in sorted(STATS):
            print(f"  {key}: {STATS[key]}")


def _q(dt, scale, zp):
    return {} if scale is None or dt in ("float32", "int32", "int64") else {"scale": scale, "zero_point": zp}


def _model(op, shape1, shape2, dt, q1=(None, 0), q2=(None, 0), qo=(None, 0), out_dt=None, const2=None, **opts):
    """A one-op binary model: inputs ``a`` (and ``b`` unless ``const2`` gives a constant), output ``o``."""
    out_dt = out_dt or dt
    x1 = tensor(shape1, dt, name="a", **_q(dt, *q1))
    if const2 is None:
        x2 = tensor(shape2, dt, name="b", **_q(dt, *q2))
    else:
        x2 = const(np.asarray(const2).astype(dt), dt, name="b", **_q(dt, *q2))
    oshape = tuple(np.broadcast_shapes(tuple(shape1), tuple(shape2)))
    return op_model(op, [x1, x2], [tensor(oshape, out_dt, name="o", **_q(out_dt, *qo))], **opts)


def _rand(rng, dt, shape, lo=None, hi=None):
    if dt == "float32":
        return (rng.standard_normal(shape) * 4).astype(np.float32)
    info = INFO[dt]
    lo = int(info.min) if lo is None else lo
    hi = int(info.max) if hi is None else hi
    return rng.integers(lo, hi, size=shape, endpoint=True).astype(dt)


@st.composite
def broadcast_shapes(draw, max_rank=6, max_dim=4):
    """Two numpy-broadcastable shapes of rank <= max_rank (sometimes equal, sometimes rank 0)."""
    rank = draw(st.integers(0, max_rank))
    out = [draw(st.integers(1, max_dim)) for _ in range(rank)]
    if draw(st.booleans()):
        return tuple(out), tuple(out)

    def one():
        r = draw(st.integers(0, rank))
        return tuple(d if draw(st.integers(0, 2)) else 1 for d in out[rank - r :])

    return one(), one()


def scale():
    return st.floats(-4, -1).map(lambda e: float(np.float32(10.0**e)))


def zero_point(dt):
    if dt == "int16":
        return st.just(0)
    info = INFO[dt]
    return st.integers(int(info.min), int(info.max))


def _check(litert, op, dt, model, inputs, **kw):
    status = check_against_litert(litert, model, inputs, **kw)
    STATS[(op, dt, status)] += 1
    return status


# ---------------------------------------------------------------------------------------------
# ADD / SUB


@pytest.mark.oracle
@pytest.mark.parametrize("op", ["ADD", "SUB"])
@pytest.mark.parametrize("dt", ["int8", "uint8", "int16"])
@settings()
@given(data=st.data())
def test_add_sub_quantized(litert, op, dt, data):
    shape1, shape2 = data.draw(broadcast_shapes())
    s1, s2, so = data.draw(scale()), data.draw(scale()), data.draw(scale())
    zp1, zp2, zpo = data.draw(zero_point(dt)), data.draw(zero_point(dt)), data.draw(zero_point(dt))
    act = data.draw(st.sampled_from(ACTS))
    opts = {"fused_activation_function": act}
    if dt == "int16":
        opts["pot_scale_int16"] = data.draw(st.booleans())
        if data.draw(st.booleans()):  # power-of-two scales: exercises the POT path (or its Prepare errors)
            s1, s2, so = (float(2.0 ** -data.draw(st.integers(6, 16))) for _ in range(3))
    if op == "SUB":
        # SUB's output multiplier > 1 is undefined behaviour in LiteRT: refquant refuses it (tested below).
        assume(2 * max(s1, s2) / (2**20 * so if dt != "int16" else 2**15 * so) <= 1.0)
    seed = data.draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    m = _model(op, shape1, shape2, dt, (s1, zp1), (s2, zp2), (so, zpo), **opts)
    _check(litert, op, dt, m, [_rand(rng, dt, shape1), _rand(rng, dt, shape2)])


@pytest.mark.parametrize("op", ["ADD", "SUB"])
@pytest.mark.parametrize("dt", ["int8", "uint8", "int16"])
@settings()
@given(data=st.data())
def test_add_sub_fast_path_equals_readable_kernel(op, dt, data):
    """8-bit: the prepared 65536-entry table; int16: the in-place closed-form MBQM; both == ``_stages``."""
    shape1, shape2 = data.draw(broadcast_shapes())
    s1, s2, so = data.draw(scale()), data.draw(scale()), data.draw(scale())
    zp1, zp2, zpo = data.draw(zero_point(dt)), data.draw(zero_point(dt)), data.draw(zero_point(dt))
    act = data.draw(st.sampled_from(ACTS))
    rounding = data.draw(st.sampled_from(["double", "single"]))
    opts = {"fused_activation_function": act, "pot_scale_int16": False}
    m = _model(op, shape1, shape2, dt, (s1, zp1), (s2, zp2), (so, zpo), **opts)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    xs = [_rand(rng, dt, shape1), _rand(rng, dt, shape2)]
    try:
        tr = run_refquant(m, xs, rounding=rounding)
    except RefquantError:
        return
    data_ = tr.op_data[0]
    if dt != "int16":
        assert data_.lut is not None
    out = tr.values[tr.model.subgraphs[0].operators[0].outputs[0]]
    np.testing.assert_array_equal(out, data_.eval_reference(xs)[0])


@pytest.mark.oracle
@pytest.mark.parametrize("op", ["ADD", "SUB", "MUL"])
@pytest.mark.parametrize("dt", ["int32", "int64", "float32"])
@settings()
@given(data=st.data())
def test_add_sub_mul_plain(litert, op, dt, data):
    shape1, shape2 = data.draw(broadcast_shapes())
    act = data.draw(st.sampled_from(ACTS))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    if dt == "float32":
        x1, x2 = _rand(rng, dt, shape1), _rand(rng, dt, shape2)
        if data.draw(st.booleans()):  # large values: overflow to inf, clamped to FLT_MAX by NONE
            x1 = (x1 * np.float32(1e37)).astype(np.float32)
    else:
        big = data.draw(st.booleans())  # full range: exercises wrapping
        lim = None if big else 1000
        x1 = _rand(rng, dt, shape1, None if big else -lim, lim)
        x2 = _rand(rng, dt, shape2, None if big else -lim, lim)
    m = _model(op, shape1, shape2, dt, fused_activation_function=act)
    _check(litert, op, dt, m, [x1, x2])


# ---------------------------------------------------------------------------------------------
# MUL


@pytest.mark.oracle
@pytest.mark.parametrize("dt", ["int8", "uint8", "int16"])
@settings()
@given(data=st.data())
def test_mul_quantized(litert, dt, data):
    shape1, shape2 = data.draw(broadcast_shapes())
    s1, s2, so = data.draw(scale()), data.draw(scale()), data.draw(scale())
    zp1, zp2, zpo = data.draw(zero_point(dt)), data.draw(zero_point(dt)), data.draw(zero_point(dt))
    if data.draw(st.booleans()):  # scales giving a multiplier > 1 (a left shift that may wrap)
        so = so * 1e-4
    act = data.draw(st.sampled_from(ACTS))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    m = _model("MUL", shape1, shape2, dt, (s1, zp1), (s2, zp2), (so, zpo), fused_activation_function=act)
    _check(litert, "MUL", dt, m, [_rand(rng, dt, shape1), _rand(rng, dt, shape2)])


@pytest.mark.oracle
@pytest.mark.parametrize("out_dt", ["int8", "uint8"])
@settings()
@given(data=st.data())
def test_mul_int16_to_8bit(litert, out_dt, data):
    shape, _ = data.draw(broadcast_shapes())
    so, zpo = data.draw(scale()), data.draw(zero_point(out_dt))
    act = data.draw(st.sampled_from(ACTS))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    m = _model(
        "MUL", shape, shape, "int16", (1 / 32768, 0), (1 / 32768, 0), (so, zpo), out_dt=out_dt,
        fused_activation_function=act,
    )  # fmt: skip
    _check(litert, "MUL", f"int16->{out_dt}", m, [_rand(rng, "int16", shape), _rand(rng, "int16", shape)])


# ---------------------------------------------------------------------------------------------
# DIV


@pytest.mark.oracle
@pytest.mark.parametrize("dt", ["int8", "uint8", "int16"])
@settings()
@given(data=st.data())
def test_div_quantized(litert, dt, data):
    shape1, shape2 = data.draw(broadcast_shapes())
    s1, s2, so = data.draw(scale()), data.draw(scale()), data.draw(scale())
    zp1, zp2, zpo = data.draw(zero_point(dt)), data.draw(zero_point(dt)), data.draw(zero_point(dt))
    act = data.draw(st.sampled_from(ACTS))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x1, x2 = _rand(rng, dt, shape1), _rand(rng, dt, shape2)
    if not data.draw(st.integers(0, 9)) == 0:  # mostly valid divisors; sometimes a zero divisor (an error)
        x2 = np.where(x2 == zp2, np.asarray(zp2 + (1 if zp2 < INFO[dt].max else -1)), x2).astype(dt)
    m = _model("DIV", shape1, shape2, dt, (s1, zp1), (s2, zp2), (so, zpo), fused_activation_function=act)
    _check(litert, "DIV", dt, m, [x1, x2])


@pytest.mark.oracle
@pytest.mark.parametrize("dt", ["int32", "float32"])
@settings()
@given(data=st.data())
def test_div_plain(litert, dt, data):
    shape1, shape2 = data.draw(broadcast_shapes())
    act = data.draw(st.sampled_from(ACTS))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x1, x2 = _rand(rng, dt, shape1, -(10**6), 10**6), _rand(rng, dt, shape2, -50, 50)
    if dt == "int32" and data.draw(st.integers(0, 9)):
        x2 = np.where(x2 == 0, 7, x2).astype(dt)
    if dt == "float32" and data.draw(st.booleans()):
        x2 = np.where(rng.random(shape2) < 0.3, np.float32(0), x2).astype(dt)  # inf/NaN, clamped
    m = _model("DIV", shape1, shape2, dt, fused_activation_function=act)
    _check(litert, "DIV", dt, m, [x1, x2])


# ---------------------------------------------------------------------------------------------
# SQUARED_DIFFERENCE, MAXIMUM, MINIMUM


@pytest.mark.oracle
@pytest.mark.parametrize("dt", ["int8", "int32", "float32"])
@settings()
@given(data=st.data())
def test_squared_difference(litert, dt, data):
    shape1, shape2 = data.draw(broadcast_shapes())
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    if dt == "int8":
        s1, s2, zp1, zp2, zpo = (data.draw(scale()), data.draw(scale()), *(data.draw(zero_point(dt)) for _ in "abc"))
        # down to 1e-7: (2*max(s))^2/(2^14*s_out) >= 1 makes LiteRT abort (refquant raises)
        so = data.draw(st.floats(-7, 0).map(lambda e: float(np.float32(10.0**e))))
        m = _model("SQUARED_DIFFERENCE", shape1, shape2, dt, (s1, zp1), (s2, zp2), (so, zpo))
        x1, x2 = _rand(rng, dt, shape1), _rand(rng, dt, shape2)
    else:
        m = _model("SQUARED_DIFFERENCE", shape1, shape2, dt)
        big = data.draw(st.booleans())
        x1 = _rand(rng, dt, shape1, None if big else -3000, None if big else 3000)
        x2 = _rand(rng, dt, shape2, None if big else -3000, None if big else 3000)
    _check(litert, "SQUARED_DIFFERENCE", dt, m, [x1, x2])


@pytest.mark.oracle
@pytest.mark.parametrize("op", ["MAXIMUM", "MINIMUM"])
@pytest.mark.parametrize("dt", ["int8", "uint8", "int16", "int32", "int64", "float32"])
@settings()
@given(data=st.data())
def test_maximum_minimum(litert, op, dt, data):
    shape1, shape2 = data.draw(broadcast_shapes())
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x1, x2 = _rand(rng, dt, shape1), _rand(rng, dt, shape2)
    if dt == "float32" and data.draw(st.booleans()):
        x1 = np.where(rng.random(shape1) < 0.3, np.float32(np.nan), x1).astype(dt)
        x2 = np.where(rng.random(shape2) < 0.3, np.float32(np.nan), x2).astype(dt)
    q = (data.draw(scale()), data.draw(zero_point(dt))) if dt in ("int8", "uint8", "int16") else (None, 0)
    m = _model(op, shape1, shape2, dt, q, q, q)
    _check(litert, op, dt, m, [x1, x2])


# ---------------------------------------------------------------------------------------------
# Deterministic edge cases and rejections


@pytest.mark.oracle
@pytest.mark.parametrize("op", ["ADD", "MUL", "SUB", "MAXIMUM", "DIV"])
@pytest.mark.parametrize("rank", [7, 8, 9])
def test_high_rank_broadcast(litert, op, rank):
    """LiteRT broadcasts up to rank 8 and aborts above; refquant follows (raises above 8)."""
    s1, s2 = (2,) + (1,) * (rank - 2) + (3,), (1,) * (rank - 1) + (3,)
    m = _model(op, s1, s2, "int8", (0.1, 1), (0.05, -2), (0.2, 3))
    rng = np.random.default_rng(rank)
    x2 = np.full(s2, 5, np.int8)
    status = check_against_litert(litert, m, [_rand(rng, "int8", s1), x2])
    assert status == ("ok" if rank <= 8 else "aborted")


def test_add_output_multiplier_ge_one_rejected():
    # 2*max(s)/(2^20*s_out) >= 1: LiteRT aborts (QuantizeMultiplierSmallerThanOneExp CHECK).
    m = _model("ADD", (4,), (4,), "int8", (1.0, 0), (1.0, 0), (1e-7, 0))
    with pytest.raises(QuantParamError, match="must be in"):
        run_refquant(m, [np.zeros(4, np.int8), np.zeros(4, np.int8)])


@pytest.mark.oracle
def test_add_output_multiplier_ge_one_oracle_aborts(litert):
    m = _model("ADD", (4,), (4,), "int8", (1.0, 0), (1.0, 0), (1e-7, 0))
    assert check_against_litert(litert, m, [np.zeros(4, np.int8), np.zeros(4, np.int8)]) == "aborted"


@pytest.mark.oracle
def test_sub_output_multiplier_above_one_refused(litert):
    """LiteRT runs it (undefined behaviour, length-dependent); refquant refuses with QuantParamError."""
    m = _model("SUB", (21,), (21,), "int8", (1.0, 0), (1.0, 0), (1e-12, 0))
    x1, x2 = np.full(21, 100, np.int8), np.full(21, -20, np.int8)
    res = litert.run(m, [x1, x2])
    assert res.status == "ok"
    out = res.outputs[0]
    assert out[0] == 1 and out[-1] == 127  # vectorized body vs scalar tail: the UB that refquant refuses
    with pytest.raises(QuantParamError, match="above 1"):
        run_refquant(m, [x1, x2])


def test_int16_add_pot_broadcast_rejected():
    m = _model("ADD", (2, 4), (4,), "int16", (2**-10, 0), (2**-12, 0), (2**-10, 0))
    with pytest.raises(UnsupportedOpError, match="non-broadcast"):
        run_refquant(m, [np.zeros((2, 4), np.int16), np.zeros(4, np.int16)])


@pytest.mark.oracle
def test_int16_add_sub_pot_paths(litert):
    x1 = np.arange(-32768, 32768, 37, dtype=np.int16)
    x2 = x1[::-1].copy()
    for op in ("ADD", "SUB"):
        for scales in [(2**-10, 2**-12, 2**-10), (2**-14, 2**-10, 2**-10), (2**-10, 2**-30, 2**-10)]:
            q = [(s, 0) for s in scales]
            m = _model(op, x1.shape, x2.shape, "int16", *q)
            assert check_against_litert(litert, m, [x1, x2]) == "ok"
        # both inputs shifted, or an input scale above the output's: LiteRT fails Prepare
        for scales in [(2**-12, 2**-12, 2**-10), (2**-8, 2**-10, 2**-10)]:
            m = _model(op, x1.shape, x2.shape, "int16", *[(s, 0) for s in scales])
            assert check_against_litert(litert, m, [x1, x2]) == "rejected"
            with pytest.raises(QuantParamError):
                run_refquant(m, [x1, x2])


def test_int16_nonzero_zero_point_rejected():
    for op in ("ADD", "SUB", "MUL"):
        m = _model(op, (4,), (4,), "int16", (0.1, 1), (0.1, 0), (0.1, 0))
        with pytest.raises(QuantParamError, match="zero point"):
            run_refquant(m, [np.zeros(4, np.int16), np.zeros(4, np.int16)])


def test_type_mismatch_rejected():
    x1 = tensor((4,), "int8", scale=0.1, zero_point=0, name="a")
    x2 = tensor((4,), "uint8", scale=0.1, zero_point=0, name="b")
    m = op_model("ADD", [x1, x2], [tensor((4,), "int8", scale=0.1, zero_point=0, name="o")])
    with pytest.raises(UnsupportedOpError, match="input types differ"):
        run_refquant(m, [np.zeros(4, np.int8), np.zeros(4, np.uint8)])
    m = _model("ADD", (4,), (4,), "int8", (0.1, 0), (0.1, 0), (0.1, 0), out_dt="int16")
    with pytest.raises(UnsupportedOpError, match="output type"):
        run_refquant(m, [np.zeros(4, np.int8), np.zeros(4, np.int8)])


def test_unsupported_types_rejected():
    with pytest.raises(UnsupportedOpError):
        run_refquant(_model("SQUARED_DIFFERENCE", (4,), (4,), "uint8", (0.1, 0), (0.1, 0), (0.1, 0)),
                     [np.zeros(4, np.uint8)] * 2)  # fmt: skip
    with pytest.raises(UnsupportedOpError):
        run_refquant(_model("DIV", (4,), (4,), "int64"), [np.ones(4, np.int64)] * 2)


def test_incompatible_shapes_rejected():
    m = _model("ADD", (2, 3), (2, 3), "int8", (0.1, 0), (0.1, 0), (0.1, 0))
    with pytest.raises(PrepareError, match="do not broadcast"):
        run_refquant(m, [np.zeros((2, 3), np.int8), np.zeros((3, 2), np.int8)])


def test_missing_quantization_rejected():
    x1 = tensor((4,), "int8", name="a")
    x2 = tensor((4,), "int8", scale=0.1, zero_point=0, name="b")
    m = op_model("MUL", [x1, x2], [tensor((4,), "int8", scale=0.1, zero_point=0, name="o")])
    with pytest.raises(QuantParamError, match="no quantization"):
        run_refquant(m, [np.zeros(4, np.int8)] * 2)


@pytest.mark.oracle
def test_div_zero_divisor_is_an_error(litert):
    m = _model("DIV", (4,), (4,), "int8", (0.1, 0), (0.1, 3), (0.1, 0))
    x1, x2 = np.array([1, 2, 3, 4], np.int8), np.array([1, 3, 5, 7], np.int8)
    assert check_against_litert(litert, m, [x1, x2]) == "rejected"
    with pytest.raises(InputError, match="zero point"):
        run_refquant(m, [x1, x2])
    m = _model("DIV", (2,), (2,), "int32")
    with pytest.raises(InputError, match="division by zero"):
        run_refquant(m, [np.array([1, 2], np.int32), np.array([0, 1], np.int32)])
    # INT32_MIN / -1 overflows: the wheel returns INT32_MAX (no SIGFPE); refquant reproduces it.
    x = [np.array([-(2**31), 2], np.int32), np.array([-1, 1], np.int32)]
    assert check_against_litert(litert, m, x) == "ok"
    assert run_refquant(m, x).values[2][0] == 2**31 - 1


@pytest.mark.oracle
def test_div_int8_exhaustive(litert):
    """All 65280 (x1, x2) int8 pairs with a valid divisor; the shift exponents leave [0, 31] often."""
    vals = np.arange(-128, 128)
    x1, x2 = (g.ravel() for g in np.meshgrid(vals, vals, indexing="ij"))
    for s1, s2, so, zp1, zp2, zpo in [
        (1.0, 1.0, 8.0, 0, 0, 0),
        (1.0, 1e-4, 1e-4, 5, -3, 0),
        (1e-6, 1.0, 100.0, 5, -3, 0),
    ]:
        keep = x2 != zp2
        a, b = x1[keep].astype(np.int8), x2[keep].astype(np.int8)
        m = _model("DIV", a.shape, b.shape, "int8", (s1, zp1), (s2, zp2), (so, zpo))
        assert check_against_litert(litert, m, [a, b]) == "ok"


@pytest.mark.oracle
def test_mul_constant_inputs_folded(litert):
    """Both inputs constant: LiteRT evaluates at Prepare; the values are the same."""
    c1 = const(np.array([[1, -5, 7]], np.int8), "int8", scale=0.1, zero_point=1, name="c1")
    c2 = const(np.array([3, 4, -128], np.int8), "int8", scale=0.2, zero_point=-1, name="c2")
    o = tensor((1, 3), "int8", scale=0.05, zero_point=2, name="o")
    x = tensor((1, 3), "int8", scale=0.05, zero_point=2, name="x")
    y = tensor((1, 3), "int8", scale=0.05, zero_point=2, name="y")
    m = model_bytes([operator("MUL", [c1, c2], [o]), operator("MAXIMUM", [o, x], [y])])
    assert check_against_litert(litert, m, [np.zeros((1, 3), np.int8)]) == "ok"


def test_trace_add_matches_eval():
    m = _model("ADD", (2, 3), (3,), "int8", (0.1, 1), (0.05, -2), (0.2, 3), fused_activation_function="RELU")
    rng = np.random.default_rng(0)
    x1, x2 = _rand(rng, "int8", (2, 3)), _rand(rng, "int8", (3,))
    tr = run_refquant(m, [x1, x2])
    data = tr.op_data[0]
    out = data.eval([x1, x2])[0]
    for el in [(0, 0), (1, 2)]:
        steps = data.trace([x1, x2], 0, el)
        assert steps[0].value == int(x1[el]) and steps[1].value == int(x2[el[1]])
        assert steps[-1].name == "output" and steps[-1].value == int(out[el])
    with pytest.raises(RefquantError):
        data.trace([x1, x2], 0, (2, 0))


def test_element_inputs_broadcasting():
    a = np.arange(6).reshape(2, 3)
    b = np.arange(3).reshape(1, 3)
    c = np.array(9)
    got = elementwise.element_inputs([a, b, c, None], (2, 3), (1, 2))
    assert [int(g) for g in got[:3]] == [5, 2, 9] and got[3] is None


def test_mul_int16_to_int8_needs_equal_sizes():
    m = _model("MUL", (2, 1), (2,), "int16", (2**-15, 0), (2**-15, 0), (0.01, 0), out_dt="int8")
    with pytest.raises(UnsupportedOpError, match="cannot broadcast"):
        run_refquant(m, [np.zeros((2, 1), np.int16), np.zeros(2, np.int16)])


@pytest.mark.oracle
def test_mul_int16_to_int8_broadcast_aborts(litert):
    m = _model("MUL", (2, 1), (2,), "int16", (2**-15, 0), (2**-15, 0), (0.01, 0), out_dt="int8")
    assert check_against_litert(litert, m, [np.ones((2, 1), np.int16), np.ones(2, np.int16)]) == "aborted"


def test_single_rounding_variant():
    """Multiplier 0.25 (M = 2^30, shift -1) on product 1: double rounding gives 1, single rounding 0."""
    m = _model("MUL", (3,), (3,), "int8", (0.5, 0), (0.5, 0), (1.0, 0))
    x = [np.array([1, 5, -6], np.int8), np.array([1, 1, 1], np.int8)]
    assert list(run_refquant(m, x).values[2]) == [1, 2, -2]
    assert list(run_refquant(m, x, rounding="single").values[2]) == [0, 1, -1]
    m = _model("ADD", (3,), (3,), "int8", (0.5, 0), (0.5, 0), (1.0, 0))
    assert run_refquant(m, x, rounding="single").values[2].dtype == np.int8


@pytest.mark.parametrize(
    "op,dt,q",
    [
        ("ADD", "int8", ((0.1, 1), (0.05, -2), (0.2, 3))),
        ("SUB", "int16", ((2**-10, 0), (2**-12, 0), (2**-10, 0))),
        ("MUL", "uint8", ((0.1, 100), (0.05, 3), (0.2, 7))),
        ("DIV", "int8", ((0.1, 1), (0.05, -2), (0.2, 3))),
        ("SQUARED_DIFFERENCE", "int8", ((0.1, 1), (0.05, -2), (0.2, 3))),
        ("MINIMUM", "int16", ((0.1, 0), (0.1, 0), (0.1, 0))),
        ("MUL", "int32", ((None, 0), (None, 0), (None, 0))),
    ],
)
def test_trace_ends_at_output(op, dt, q):
    rng = np.random.default_rng(1)
    x1, x2 = _rand(rng, dt, (2, 3), 1, 50), _rand(rng, dt, (3,), 60, 90)
    tr = run_refquant(_model(op, (2, 3), (3,), dt, *q), [x1, x2])
    data, out = tr.op_data[0], tr.values[2]
    for el in [(0, 0), (0, 2), (1, 1)]:
        steps = data.trace([x1, x2], 0, el)
        assert steps[-1].name == "output" and steps[-1].value == out[el].item()


@pytest.mark.oracle
@pytest.mark.parametrize("op", ["ADD", "SUB"])
def test_int16_without_options_table_uses_general_path(litert, op):
    """No AddOptions/SubOptions table: LiteRT zero-initializes its params, so pot_scale_int16 is false."""
    import dataclasses

    q = [(2**-10, 0), (2**-12, 0), (2**-10, 0)]
    x1 = tensor((64,), "int16", scale=q[0][0], zero_point=0, name="a")
    x2 = tensor((64,), "int16", scale=q[1][0], zero_point=0, name="b")
    o = tensor((64,), "int16", scale=q[2][0], zero_point=0, name="o")
    model = build_model(OpSpec(op, [x1, x2], [o]))
    sg = model.subgraphs[0]
    no_table = dataclasses.replace(sg.operators[0], options={}, options_type=None)
    m = write_model(dataclasses.replace(model, subgraphs=(dataclasses.replace(sg, operators=(no_table,)),)))
    rng = np.random.default_rng(3)
    x = [_rand(rng, "int16", (64,)), _rand(rng, "int16", (64,))]
    assert check_against_litert(litert, m, x) == "ok"
    assert type(run_refquant(m, x).op_data[0]).__name__ == "AddSubQuantized"
    with_table = _model(op, (64,), (64,), "int16", *q)
    assert type(run_refquant(with_table, x).op_data[0]).__name__ == "AddSubInt16Pot"


@pytest.mark.oracle
def test_activation_range_overflow_rejected(litert):
    """RELU6 bound 6/s_out beyond int32: LiteRT's CalculateActivationRangeQuantized fails Prepare."""
    m = _model("MUL", (4,), (4,), "int8", (0.5, 0), (0.5, 0), (1e-12, 0), fused_activation_function="RELU6")
    x = [np.ones(4, np.int8), np.ones(4, np.int8)]
    assert check_against_litert(litert, m, x) == "rejected"
    with pytest.raises(QuantParamError, match="does not fit int32"):
        run_refquant(m, x)
