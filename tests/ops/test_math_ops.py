"""FLOOR, SIN, COS, SIGN, FLOOR_DIV, FLOOR_MOD, POW, ADD_N, CUMSUM, ONE_HOT against LiteRT BUILTIN_REF (bit-exact), plus rejections."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refquant.errors import InputError, PrepareError, RefquantError, UnsupportedOpError
from tests.opcheck import check_against_litert, run_refquant
from tests.ops.movement_helpers import In, Out, one_op, rand_array, seeds, shapes

SPECIAL = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 0.5, -0.5, 1.5, -2.5, 3e38, -3e38, 1e-40, 1e10], np.float32)


def _ok(litert, model: bytes, feeds: list[np.ndarray]) -> None:
    status = check_against_litert(litert, model, feeds)
    assert status == "ok", status


def _broadcastable(draw, shape: tuple[int, ...]) -> tuple[int, ...]:
    k = draw(st.integers(0, len(shape)))
    return tuple(1 if draw(st.booleans()) else d for d in shape[len(shape) - k :])


def _with_specials(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    x = x.copy()
    if x.size:
        flat = x.reshape(-1)
        k = rng.integers(0, flat.size, size=min(4, flat.size))
        flat[k] = rng.choice(SPECIAL, size=k.size)
    return x


@pytest.mark.oracle
@pytest.mark.parametrize("opcode", ["FLOOR", "SIN", "COS", "SIGN"])
@settings()
@given(data=st.data(), seed=seeds)
def test_float_unary_matches_litert(litert, opcode, data, seed):
    rng = np.random.default_rng(seed)
    x = _with_specials(rng, rand_array(rng, "float32", shapes(data.draw, 0, 4, 5)))
    model, feeds = one_op(opcode, [In(x)], [Out("float32")])
    _ok(litert, model, feeds)


@pytest.mark.oracle
def test_unary_special_values_and_int32_sign(litert):
    for opcode in ("FLOOR", "SIN", "COS", "SIGN"):
        _ok(litert, *one_op(opcode, [In(SPECIAL)], [Out("float32")]))
    x = np.array([-(2**31), -7, -1, 0, 1, 9, 2**31 - 1], np.int32)
    _ok(litert, *one_op("SIGN", [In(x)], [Out("int32")]))
    y = run_refquant(*one_op("SIGN", [In(SPECIAL)], [Out("float32")])).values[1]
    assert np.isnan(y[0]) and not np.signbit(y[3]) and y[4] == 0  # NaN passes, -0.0 -> +0.0


@pytest.mark.oracle
@pytest.mark.parametrize("opcode", ["ELU", "CEIL", "ROUND"])
def test_ops_missing_from_builtin_ref_are_rejected(litert, opcode):
    """LiteRT 2.3.0's BUILTIN_REF resolver registers no ELU, CEIL or ROUND kernel: refquant rejects them too."""
    model, feeds = one_op(opcode, [In(np.zeros(3, np.float32))], [Out("float32")])
    assert check_against_litert(litert, model, feeds) == "rejected"
    with pytest.raises(UnsupportedOpError):
        run_refquant(model, feeds)


_DIV_MOD = [("FLOOR_DIV", dt) for dt in ("int8", "int16", "int32", "float32")] + [
    ("FLOOR_MOD", dt) for dt in ("int8", "int16", "int32", "int64", "float32")
]


@pytest.mark.oracle
@pytest.mark.parametrize("opcode,dtype", _DIV_MOD)
@settings()
@given(data=st.data(), seed=seeds)
def test_floor_div_mod_match_litert(litert, opcode, dtype, data, seed):
    rng = np.random.default_rng(seed)
    shape = shapes(data.draw, 0, 4, 4)
    sa = _broadcastable(data.draw, shape) if data.draw(st.booleans()) else shape
    sb = _broadcastable(data.draw, shape) if data.draw(st.booleans()) else shape
    a, b = rand_array(rng, dtype, sa), rand_array(rng, dtype, sb)
    if dtype != "float32" and data.draw(st.booleans()):
        b = rng.integers(-4, 5, size=sb).astype(dtype)  # small divisors: many exact and negative cases
    if dtype == "float32" and data.draw(st.booleans()):
        a = _with_specials(rng, a)
    b = np.where(b == 0, np.ones((), b.dtype), b).astype(dtype)
    if opcode == "FLOOR_MOD" and dtype in ("int32", "int64"):
        a = np.where(a == np.iinfo(a.dtype).min, np.zeros((), a.dtype), a).astype(dtype)
    _ok(litert, *one_op(opcode, [In(a), In(b, const=data.draw(st.booleans()))], [Out(dtype)]))


@pytest.mark.oracle
def test_floor_div_wraps_like_x86(litert):
    """``MIN // -1`` overflows the type: LiteRT's double->int conversion gives MIN (int8: -128)."""
    for dt in ("int8", "int16", "int32"):
        lo = np.iinfo(np.dtype(dt)).min
        a, b = np.array([lo, lo, 7, -7], dt), np.array([-1, 1, -2, 2], dt)
        _ok(litert, *one_op("FLOOR_DIV", [In(a), In(b)], [Out(dt)]))
        assert run_refquant(*one_op("FLOOR_DIV", [In(a), In(b)], [Out(dt)])).values[2][0] == lo


@pytest.mark.oracle
@pytest.mark.parametrize(
    "opcode,a,b,status",
    [
        ("FLOOR_DIV", np.array([1.0], np.float32), np.array([-0.0], np.float32), "rejected"),
        ("FLOOR_DIV", np.array([4, 5], np.int32), np.array([1, 0], np.int32), "rejected"),
        ("FLOOR_DIV", np.zeros((0,), np.int32), np.array([0], np.int32), "rejected"),  # checked before broadcasting
        ("FLOOR_MOD", np.array([4], np.int16), np.array([0], np.int16), "rejected"),
        ("FLOOR_MOD", np.array([-(2**31)], np.int32), np.array([-1], np.int32), "aborted"),  # SIGFPE
        ("FLOOR_MOD", np.array([-(2**63)], np.int64), np.array([-1], np.int64), "aborted"),
        ("FLOOR_DIV", np.array([4], np.int64), np.array([2], np.int64), "rejected"),
        ("FLOOR_DIV", np.array([4], np.uint8), np.array([2], np.uint8), "rejected"),
        ("FLOOR_MOD", np.array([4], np.int32), np.array([2], np.int16), "rejected"),
    ],
)
def test_floor_div_mod_rejections(litert, opcode, a, b, status):
    model, feeds = one_op(opcode, [In(a), In(b)], [Out(a.dtype.name)])
    assert check_against_litert(litert, model, feeds) == status


@pytest.mark.oracle
def test_float_floor_mod_by_zero_is_nan(litert):
    a = np.array([1.0, -1.0, 5.5, -5.5, np.inf, 7.0], np.float32)
    b = np.array([0.0, -0.0, -2.0, 2.0, 2.0, np.inf], np.float32)
    _ok(litert, *one_op("FLOOR_MOD", [In(a), In(b)], [Out("float32")]))


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", ["float32", "int32"])
@settings()
@given(data=st.data(), seed=seeds)
def test_pow_matches_litert(litert, dtype, data, seed):
    rng = np.random.default_rng(seed)
    shape = shapes(data.draw, 0, 4, 4)
    path = data.draw(st.sampled_from(["same", "broadcast", "scalar"]))
    se = shape if path == "same" else (_broadcastable(data.draw, shape) if path == "broadcast" else ())
    if path == "scalar" and data.draw(st.booleans()):
        se = (1,) * data.draw(st.integers(1, 3))
    if dtype == "int32":
        x = rng.integers(-60, 60, size=shape).astype(np.int32)
        e = rng.integers(0, 12, size=se).astype(np.int32)
    else:
        x = (
            _with_specials(rng, rand_array(rng, "float32", shape))
            if data.draw(st.booleans())
            else rand_array(rng, "float32", shape)
        )
        e = (rng.integers(-3, 40, size=se) + rng.choice([0.0, 0.0, 0.5, 1e-6, 0.37], size=se)).astype(np.float32)
    _ok(litert, *one_op("POW", [In(x), In(e, const=data.draw(st.booleans()))], [Out(dtype)]))


@pytest.mark.oracle
def test_pow_scalar_exponent_quirks(litert):
    """LiteRT's repeated squaring: 2.000001 counts as 2, overflow saturates at FLT_MAX, int32 wraps."""
    x = np.array([1.1, -2.0, 1e20, -1e20, np.nan, 7.3], np.float32)
    for e in (2.0, 2.000001, 3.0, 40.0, 0.5, 0.0, -1.0):
        _ok(litert, *one_op("POW", [In(x), In(np.array(e, np.float32))], [Out("float32")]))
    y = run_refquant(*one_op("POW", [In(x), In(np.array(2.000001, np.float32))], [Out("float32")])).values[2]
    assert y[0] == np.float32(np.float32(1.1) * np.float32(1.1)) and y[2] == np.finfo(np.float32).max
    xi = np.array([46341, -3, 2, 7], np.int32)
    for e in (np.array(2, np.int32), np.full(4, 2, np.int32)):
        _ok(litert, *one_op("POW", [In(xi), In(e)], [Out("int32")]))
    wrapped = run_refquant(*one_op("POW", [In(xi), In(np.array(2, np.int32))], [Out("int32")])).values[2][0]
    saturated = run_refquant(*one_op("POW", [In(xi), In(np.full(4, 2, np.int32))], [Out("int32")])).values[2][0]
    assert (wrapped, saturated) == (-2147479015, -(2**31))


@pytest.mark.oracle
def test_pow_rejections(litert):
    model, feeds = one_op("POW", [In(np.array([2, 3], np.int32)), In(np.array([1, -1], np.int32))], [Out("int32")])
    assert check_against_litert(litert, model, feeds) == "rejected"
    with pytest.raises(InputError, match="negative int32 exponent"):
        run_refquant(model, feeds)
    model, feeds = one_op("POW", [In(np.array([2], np.int64)), In(np.array([2], np.int64))], [Out("int64")])
    assert check_against_litert(litert, model, feeds) == "rejected"


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", ["float32", "int32"])
@settings()
@given(data=st.data(), seed=seeds)
def test_add_n_matches_litert(litert, dtype, data, seed):
    rng = np.random.default_rng(seed)
    shape = shapes(data.draw, 0, 4, 4)
    n = data.draw(st.integers(2, 5))
    xs = [rand_array(rng, dtype, shape) for _ in range(n)]
    if dtype == "float32" and data.draw(st.booleans()):
        xs = [_with_specials(rng, x) for x in xs]
    _ok(litert, *one_op("ADD_N", [In(x) for x in xs], [Out(dtype)]))


@pytest.mark.oracle
def test_add_n_saturates_and_rejections(litert):
    a = np.array([1e38, np.inf, np.nan, 1.0, -0.0], np.float32)
    b = np.array([1e38, -np.inf, 1.0, np.nan, -0.0], np.float32)
    _ok(litert, *one_op("ADD_N", [In(a), In(a), In(b)], [Out("float32")]))
    y = run_refquant(*one_op("ADD_N", [In(a), In(a), In(b)], [Out("float32")])).values[3]
    assert y[1] == -np.finfo(np.float32).max  # inf + inf clamps to FLT_MAX, then + -inf clamps to -FLT_MAX
    for ins in (
        [In(np.ones(2, np.int32))],
        [In(np.ones(2, np.int8)), In(np.ones(2, np.int8))],
        [In(np.ones(2, np.int32)), In(np.ones(1, np.int32))],
    ):
        model, feeds = one_op("ADD_N", ins, [Out(ins[0].value.dtype.name)])
        assert check_against_litert(litert, model, feeds) == "rejected"


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", ["float32", "int32", "int64"])
@settings()
@given(data=st.data(), seed=seeds)
def test_cumsum_matches_litert(litert, dtype, data, seed):
    rng = np.random.default_rng(seed)
    shape = shapes(data.draw, 1, 4, 5)
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = rand_array(rng, dtype, shape)
    if dtype == "float32" and data.draw(st.booleans()):
        x = _with_specials(rng, x)
    ax = In(np.array(axis, np.int32).reshape(data.draw(st.sampled_from([(), (1,)]))), const=data.draw(st.booleans()))
    model, feeds = one_op(
        "CUMSUM", [In(x), ax], [Out(dtype)], exclusive=data.draw(st.booleans()), reverse=data.draw(st.booleans())
    )
    _ok(litert, model, feeds)


@pytest.mark.oracle
@pytest.mark.parametrize(
    "x,axis,const",
    [
        (np.ones((2, 3), np.float32), 2, True),
        (np.ones((2, 3), np.float32), 2, False),
        (np.ones((2, 3), np.float32), -3, True),
        (np.array(1.0, np.float32), 0, True),
        (np.ones(3, np.int8), 0, True),
        (np.ones(3, np.float32), np.int64(0), True),
    ],
)
def test_cumsum_rejections(litert, x, axis, const):
    a = np.array(axis, np.int64 if isinstance(axis, np.int64) else np.int32)
    model, feeds = one_op("CUMSUM", [In(x), In(a, const=const)], [Out(x.dtype.name)])
    assert check_against_litert(litert, model, feeds) == "rejected"


_ONE_HOT_VALUES = {
    "float32": (1.5, -0.25),
    "int32": (7, -3),
    "int64": (2**40, -1),
    "int8": (127, -128),
    "uint8": (255, 3),
    "bool": (True, False),
}


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", sorted(_ONE_HOT_VALUES))
@settings()
@given(data=st.data(), seed=seeds)
def test_one_hot_matches_litert(litert, dtype, data, seed):
    """ONE_HOT as tf.one_hot(tf.argmax(...)) converts (found by the sequence-model sweep): every axis, int32/int64
    indices with out-of-range values (-1, depth, and int64 values whose low 32 bits are in range)."""
    rng = np.random.default_rng(seed)
    shape = shapes(data.draw, 0, 3, 4)
    depth = data.draw(st.integers(0, 5))
    idt = data.draw(st.sampled_from([np.int32, np.int64]))
    ind = rng.integers(-1, depth + 1, size=shape).astype(idt)
    if idt == np.int64 and ind.size and data.draw(st.booleans()):
        ind.reshape(-1)[0] = 2**32 + 1  # static_cast<int> keeps the low 32 bits: index 1
    axis = data.draw(st.integers(-1, len(shape)))
    on, off = (np.array(v, dtype) for v in _ONE_HOT_VALUES[dtype])
    pos = len(shape) if axis == -1 else axis
    out_shape = tuple(shape[:pos]) + (depth,) + tuple(shape[pos:])
    ins = [
        In(ind),
        In(np.array(depth, np.int32), const=True),
        In(on, const=data.draw(st.booleans())),
        In(off, const=True),
    ]
    model, feeds = one_op("ONE_HOT", ins, [Out(dtype, out_shape)], axis=axis, options_type="OneHotOptions")
    _ok(litert, model, feeds)


@pytest.mark.oracle
def test_one_hot_rejections(litert):
    """int16 values pass LiteRT's Prepare and fail Eval; float indices and a bad axis fail Prepare."""
    i = np.array([0, 2, 1], np.int32)
    d = In(np.array(3, np.int32), const=True)
    cases = [
        ([In(i), d, In(np.array(1, np.int16), const=True), In(np.array(0, np.int16), const=True)], "int16", -1),
        ([In(i.astype(np.float32)), d, In(np.array(1.0, np.float32)), In(np.array(0.0, np.float32))], "float32", -1),
        ([In(i), d, In(np.array(1.0, np.float32)), In(np.array(0.0, np.float32))], "float32", 3),
        ([In(i), d, In(np.array(1.0, np.float32)), In(np.array(0, np.int32), const=True)], "float32", -1),
    ]
    for ins, dt, axis in cases:
        model, feeds = one_op("ONE_HOT", ins, [Out(dt, (3, 3))], axis=axis, options_type="OneHotOptions")
        assert check_against_litert(litert, model, feeds) in ("rejected", "aborted")


def test_rejection_error_classes():
    cases = [
        (one_op("FLOOR_DIV", [In(np.ones(2, np.int32)), In(np.zeros(2, np.int32))], [Out("int32")]), InputError),
        (one_op("FLOOR_DIV", [In(np.ones(2, np.uint8)), In(np.ones(2, np.uint8))], [Out("uint8")]), UnsupportedOpError),
        (one_op("ADD_N", [In(np.ones(2, np.int32))], [Out("int32")]), PrepareError),
        (one_op("SIGN", [In(np.ones(2, np.int8))], [Out("int8")]), UnsupportedOpError),
        (
            one_op("CUMSUM", [In(np.ones((2, 3), np.float32)), In(np.array(2, np.int32))], [Out("float32")]),
            InputError,
        ),
    ]
    for (model, feeds), cls in cases:
        with pytest.raises(cls):
            run_refquant(model, feeds)


def test_traces_end_with_the_output():
    x = np.array([[1.5, -2.0], [0.25, 3.0]], np.float32)
    for opcode, ins, opts in (
        ("FLOOR_MOD", [x, np.array([-2.0], np.float32)], {}),
        ("POW", [x, np.array(3.0, np.float32)], {}),
        ("ADD_N", [x, x * 2], {}),
        ("CUMSUM", [x, np.array(1, np.int32)], {"exclusive": True, "reverse": True}),
        ("SIN", [x], {}),
    ):
        tr = run_refquant(*one_op(opcode, [In(v) for v in ins], [Out("float32")], **opts))
        out = tr.values[len(ins)]
        steps = tr.op_data[0].trace(ins, 0, (1, 0))
        assert steps[-1].name == "output" and steps[-1].value == out[1, 0], (opcode, steps)


def test_errors_are_refquant_errors():
    """Every LiteRT run-time failure refquant mirrors is a RefquantError with the operator's place."""
    model, feeds = one_op(
        "FLOOR_MOD", [In(np.array([-(2**31)], np.int32)), In(np.array([-1], np.int32))], [Out("int32")]
    )
    with pytest.raises(RefquantError, match=r"operator 0 \(FLOOR_MOD\).*SIGFPE"):
        run_refquant(model, feeds)
