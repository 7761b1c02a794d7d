"""FULLY_CONNECTED against LiteRT BUILTIN_REF (bit-exact), plus deterministic edge cases and rejections."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import refquant
from refquant.errors import PrepareError, QuantParamError, RefquantError, UnsupportedOpError
from refquant.quantization import calculate_activation_range_float
from refquant.testing import const, op_model, tensor
from tests.opcheck import check_against_litert, run_refquant

INFO = {"int8": np.iinfo(np.int8), "uint8": np.iinfo(np.uint8), "int16": np.iinfo(np.int16)}
ACTS = ["NONE", "RELU", "RELU6", "RELU_N1_TO_1"]


def _model(
    x_shape,
    w,
    *,
    in_dt="int8",
    w_dt="int8",
    out_dt="int8",
    s_in=0.05,
    zp_in=0,
    s_w=0.02,
    zp_w=0,
    qdim=0,
    s_out=0.1,
    zp_out=0,
    bias=None,
    bias_dt="int32",
    bias_scale=None,
    const_filter=True,
    out_shape=None,
    **options,
) -> bytes:
    """A one-op FULLY_CONNECTED model; quantization arguments are ignored for float32."""
    q = in_dt != "float32"
    x = tensor(x_shape, in_dt, name="x", **({"scale": s_in, "zero_point": zp_in} if q else {}))
    wq = {"scale": s_w, "zero_point": zp_w, "quantized_dimension": qdim} if w_dt != "float32" else {}
    wt = const(w, w_dt, name="w", **wq) if const_filter else tensor(w.shape, w_dt, name="w", **wq)
    ins = [x, wt]
    if bias is not None:
        if bias_dt == "float32":
            ins.append(const(bias, bias_dt, name="b"))
        else:
            sc = bias_scale if bias_scale is not None else np.float32(s_in) * np.asarray(s_w, np.float32)
            ins.append(const(bias, bias_dt, name="b", scale=sc, zero_point=0))
    units = w.shape[0]
    if out_shape is None:
        out_shape = (1, units)
    y = tensor(out_shape, out_dt, name="y", **({"scale": s_out, "zero_point": zp_out} if q else {}))
    return op_model("FULLY_CONNECTED", ins, [y], **options)


def _rand_int(rng, dt, shape, lo=None, hi=None):
    info = INFO[dt]
    lo = info.min if lo is None else lo
    hi = info.max if hi is None else hi
    return rng.integers(lo, hi, size=shape, endpoint=True).astype(dt)


@st.composite
def fc_case(draw, in_dt, w_dt, out_dt, per_channel_ok=True, zp_w_ok=True):
    """Random FC parameters: shapes (rank 1..4, keep_num_dims, non-divisible batch), scales, zps, bias, act."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    depth = draw(st.integers(1, 40))
    units = draw(st.integers(1, 12))
    keep = draw(st.booleans())
    rank = draw(st.integers(1, 4))
    if keep:
        lead = [draw(st.integers(1, 4)) for _ in range(rank - 1)]
        x_shape = tuple(lead) + (depth,)
    else:
        total = draw(st.integers(1, 16)) * depth + draw(st.sampled_from([0, 0, 0, 1, depth - 1]))
        # spread `total` elements over two dims when possible (else a single dim)
        x_shape = (total,)
        if rank >= 2 and total % 2 == 0:
            x_shape = (2, total // 2)
    per_channel = per_channel_ok and draw(st.booleans())
    s_in = float(10 ** draw(st.floats(-3, -1)))
    if per_channel:
        s_w = (10 ** rng.uniform(-4, -1, size=units)).astype(np.float32)
    else:
        s_w = np.float32(10 ** draw(st.floats(-4, -1)))
    info_in, info_out = INFO[in_dt], INFO[out_dt]
    sym16 = in_dt == "int16"
    zp_in = 0 if sym16 else int(rng.integers(info_in.min, info_in.max, endpoint=True))
    if out_dt == "int16":
        zp_out = 0 if in_dt == "int16" else int(rng.integers(-1000, 1000))
    else:
        zp_out = int(rng.integers(info_out.min, info_out.max // 2))
    if w_dt in ("int8", "uint8", "int16") and zp_w_ok and not per_channel:
        wi = INFO[w_dt]
        zp_w = int(rng.integers(wi.min // 4, wi.max // 4 + 1)) if w_dt != "uint8" else int(rng.integers(64, 192))
    elif per_channel and draw(st.booleans()) and w_dt == "int8":
        zp_w = rng.integers(-10, 10, size=units)  # ignored by the per-channel kernel
    else:
        zp_w = 0
    w_store = "int8" if w_dt in ("int4", "int2") else w_dt
    if w_dt == "int4":
        w = rng.integers(-8, 7, size=(units, depth), endpoint=True).astype(np.int8)
    elif w_dt == "int2":
        w = rng.integers(-2, 1, size=(units, depth), endpoint=True).astype(np.int8)
    else:
        w = _rand_int(rng, w_store, (units, depth))
    x = _rand_int(rng, in_dt, x_shape)
    # Output scale chosen so that typical outputs land inside the type range (with some saturation).
    w_mag = float(np.abs(w.astype(np.int64)).mean() + 1)
    x_mag = float(np.abs(x.astype(np.int64) - zp_in).mean() + 1)
    s_w_max = float(np.median(s_w))
    typical = s_in * s_w_max * w_mag * x_mag * np.sqrt(depth)
    s_out = float(typical / (info_out.max / 2) * 10 ** draw(st.floats(-1, 0.7)))
    if draw(st.sampled_from([False, False, True])):
        # Power-of-two scales: the float64 effective scale is exactly 2^-j, so rounding ties are frequent.
        s_in = float(2.0 ** round(np.log2(s_in)))
        s_w = (2.0 ** np.round(np.log2(s_w))).astype(np.float32)
        s_w = s_w if per_channel else np.float32(s_w)
        s_out = float(2.0 ** round(np.log2(s_out)))
        typical = s_in * float(np.median(s_w)) * w_mag * x_mag * np.sqrt(depth)
    bias = None
    if draw(st.booleans()):
        bmax = int(min(2**31 - 1, max(1, typical / (s_in * s_w_max))))
        bias = rng.integers(-bmax, bmax, size=units, endpoint=True)
    act = draw(st.sampled_from(ACTS))
    return dict(
        x=x,
        w=w,
        s_in=s_in,
        zp_in=zp_in,
        s_w=s_w,
        zp_w=zp_w,
        s_out=s_out,
        zp_out=zp_out,
        bias=bias,
        keep=keep,
        act=act,
        per_channel=per_channel,
        depth=depth,
        units=units,
    )


def _run_case(litert, c, in_dt, w_dt, out_dt, bias_dt="int32", const_filter=True, **extra):
    m = _model(
        c["x"].shape,
        c["w"],
        in_dt=in_dt,
        w_dt=w_dt,
        out_dt=out_dt,
        s_in=c["s_in"],
        zp_in=c["zp_in"],
        s_w=c["s_w"],
        zp_w=c["zp_w"],
        s_out=c["s_out"],
        zp_out=c["zp_out"],
        bias=None if c["bias"] is None else c["bias"].astype(bias_dt),
        bias_dt=bias_dt,
        keep_num_dims=c["keep"],
        fused_activation_function=c["act"],
        const_filter=const_filter,
        **extra,
    )
    inputs = [c["x"]] if const_filter else [c["x"], c["w"]]
    status = check_against_litert(litert, m, inputs)
    assert status == "ok", status


@pytest.mark.oracle
@settings()
@given(c=fc_case("int8", "int8", "int8"), const_filter=st.booleans())
def test_fc_int8(litert, c, const_filter):
    _run_case(litert, c, "int8", "int8", "int8", const_filter=const_filter)


@pytest.mark.oracle
@pytest.mark.parametrize("in_dt", ["int8", "int16"])
@pytest.mark.parametrize("w_dt", ["int4", "int2"])
@settings()
@given(data=st.data())
def test_fc_packed_filter(litert, w_dt, in_dt, data):
    c = data.draw(fc_case(in_dt, w_dt, in_dt, zp_w_ok=False))
    _run_case(litert, c, in_dt, w_dt, in_dt, bias_dt="int64" if in_dt == "int16" else "int32")


@pytest.mark.oracle
@settings()
@given(c=fc_case("uint8", "uint8", "uint8", per_channel_ok=False))
def test_fc_uint8(litert, c):
    _run_case(litert, c, "uint8", "uint8", "uint8")


@pytest.mark.oracle
@settings()
@given(c=fc_case("uint8", "uint8", "int16", per_channel_ok=False))
def test_fc_uint8_to_int16(litert, c):
    if c["bias"] is None:
        c["bias"] = np.zeros(c["units"], np.int64)
    _run_case(litert, c, "uint8", "uint8", "int16")


@pytest.mark.oracle
@settings()
@given(c=fc_case("int16", "int8", "int16"), bias_kind=st.sampled_from(["int64-default", "int64", "int32"]))
def test_fc_int16x8(litert, c, bias_kind):
    if bias_kind == "int64-default":
        _run_case(litert, c, "int16", "int8", "int16", bias_dt="int64")
    elif bias_kind == "int64":
        _run_case(litert, c, "int16", "int8", "int16", bias_dt="int64", quantized_bias_type="INT64")
    else:
        _run_case(litert, c, "int16", "int8", "int16", bias_dt="int32", quantized_bias_type="INT32")


@pytest.mark.oracle
@settings()
@given(c=fc_case("int16", "int16", "int16"), bias64=st.booleans())
def test_fc_int16x16(litert, c, bias64):
    if bias64:
        _run_case(litert, c, "int16", "int16", "int16", bias_dt="int64", quantized_bias_type="INT64")
    else:
        _run_case(litert, c, "int16", "int16", "int16", bias_dt="int32")


@st.composite
def fc_float_case(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    depth, units = draw(st.integers(1, 64)), draw(st.integers(1, 12))
    keep = draw(st.booleans())
    if keep:
        x_shape = (draw(st.integers(1, 3)), draw(st.integers(1, 3)), depth)
    else:
        x_shape = (draw(st.integers(1, 4)) * depth + draw(st.sampled_from([0, 1])),)
    scale = 10 ** draw(st.floats(-3, 3))
    x = (rng.standard_normal(x_shape) * scale).astype(np.float32)
    w = rng.standard_normal((units, depth)).astype(np.float32)
    bias = rng.standard_normal(units).astype(np.float32) * scale if draw(st.booleans()) else None
    return x, w, bias, keep, draw(st.sampled_from(ACTS))


@pytest.mark.oracle
@settings()
@given(case=fc_float_case())
def test_fc_float32(litert, case):
    # Bit-exact: refquant sums in float32 in d order like the reference kernel (no tolerance needed).
    x, w, bias, keep, act = case
    m = _model(
        x.shape,
        w,
        in_dt="float32",
        w_dt="float32",
        out_dt="float32",
        bias=bias,
        bias_dt="float32",
        keep_num_dims=keep,
        fused_activation_function=act,
    )
    assert check_against_litert(litert, m, [x]) == "ok"


@st.composite
def fc_hybrid_case(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    depth, units = draw(st.integers(1, 40)), draw(st.integers(1, 10))
    keep = draw(st.booleans())
    if keep:
        x_shape = (draw(st.integers(1, 3)), draw(st.integers(1, 3)), depth)
    else:
        x_shape = (draw(st.integers(1, 8)) * depth + draw(st.sampled_from([0, 0, 1])),)
    x = (rng.standard_normal(x_shape) * 10 ** draw(st.floats(-3, 3))).astype(np.float32)
    kind = draw(st.sampled_from(["mixed", "positive", "negative", "zero_row", "all_zero"]))
    if kind == "positive":
        x = np.abs(x)
    elif kind == "negative":
        x = -np.abs(x)
    elif kind == "zero_row":
        x.reshape(-1)[:depth] = 0
    elif kind == "all_zero":
        x[...] = 0
    w_dt = draw(st.sampled_from(["int8", "int8", "int4"]))
    lim = 127 if w_dt == "int8" else 7
    w = rng.integers(-lim, lim, size=(units, depth), endpoint=True).astype(np.int8)
    if draw(st.booleans()) and units > 1:
        s_w = (10 ** rng.uniform(-4, -1, size=units)).astype(np.float32)
    else:
        s_w = np.float32(10 ** draw(st.floats(-4, -1)))
    zp_w = int(rng.integers(-5, 5)) if w_dt == "int8" and np.ndim(s_w) == 0 else 0  # ignored by the kernel
    bias = (
        (rng.standard_normal(units) * 10 ** draw(st.floats(-2, 2))).astype(np.float32) if draw(st.booleans()) else None
    )
    act = draw(st.sampled_from(ACTS + ["TANH", "SIGN_BIT"]))
    return dict(x=x, w=w, w_dt=w_dt, s_w=s_w, zp_w=zp_w, bias=bias, keep=keep, act=act, asym=draw(st.booleans()))


@pytest.mark.oracle
@settings()
@given(c=fc_hybrid_case())
def test_fc_hybrid(litert, c):
    # Bit-exact except with TANH, where LiteRT uses Eigen's vectorized tanh: then rtol/atol 1e-6.
    m = _model(
        c["x"].shape,
        c["w"],
        in_dt="float32",
        w_dt=c["w_dt"],
        out_dt="float32",
        s_w=c["s_w"],
        zp_w=c["zp_w"],
        bias=c["bias"],
        bias_dt="float32",
        keep_num_dims=c["keep"],
        fused_activation_function=c["act"],
        asymmetric_quantize_inputs=c["asym"],
    )
    tol = 1e-6 if c["act"] == "TANH" else None
    assert check_against_litert(litert, m, [c["x"]], float_tolerance=tol) == "ok"


@pytest.mark.oracle
@pytest.mark.parametrize("asym", [False, True])
def test_fc_hybrid_neon_rounding_quirk(litert, asym):
    # x86 LiteRT quantizes the first D & ~7 columns with trunc(v + 0.5f) (NEON_2_SSE), the rest with roundf:
    # 0.49999997 becomes 1 in column 1 but 0 in column 16 (D = 17, range 127 so inv = 1).
    x = np.zeros((1, 17), np.float32)
    x[0, 0] = 127.0
    x[0, 1] = x[0, 16] = np.float32(0.49999997)
    w = np.zeros((2, 17), np.int8)
    w[0, 1] = w[1, 16] = 1
    m = _model(
        x.shape, w, in_dt="float32", out_dt="float32", s_w=1.0, asymmetric_quantize_inputs=asym, out_shape=(1, 2)
    )
    check_against_litert(litert, m, [x])
    if not asym:
        assert run_refquant(m, [x]).values[2].tolist() == [[1.0, 0.0]]


# ---------------------------------------------------------------------------------------------
# Deterministic edge cases against the oracle


@pytest.mark.oracle
def test_fc_ties_round_away(litert):
    # Effective scale exactly 0.25: every acc = 4k+2 is a tie; REF rounds half away from zero in float64.
    x = np.arange(-128, 128, dtype=np.int8).reshape(256, 1)
    w = np.ones((1, 1), np.int8)
    m = _model(x.shape, w, s_in=0.5, s_w=0.5, s_out=1.0, out_shape=(256, 1))
    check_against_litert(litert, m, [x])
    out = run_refquant(m, [x]).values[2].ravel()
    assert out[128 + 1] == 0 and out[128 + 5] == 1 and out[128 - 2] == -1 and out[128 - 6] == -2


@pytest.mark.oracle
def test_fc_effective_scale_is_a_double_product(litert):
    # Scales found by search: acc * f64(s_in)*f64(s_w)/f64(s_out) rounds to -95, while a float32 product
    # s_in*s_w (the legacy multiplier precision) would give -96.
    s_in, s_w, s_out = np.float32(0.0012729338), np.float32(0.0011125575), np.float32(5.240726e-05)
    x = np.array([[-62]], np.int8)
    w = np.array([[57]], np.int8)
    m = _model(x.shape, w, s_in=float(s_in), s_w=float(s_w), s_out=float(s_out))
    check_against_litert(litert, m, [x])
    assert run_refquant(m, [x]).values[2][0, 0] == -95


@pytest.mark.oracle
@pytest.mark.parametrize("s_out", [0.5, 0.001])
def test_fc_bias_check_uses_legacy_scale_of_per_channel_bias(litert, s_out):
    # A bias with several scales has legacy params.scale 0, so the 2% check compares s_in*s_w with 0:
    # it passes when s_in*s_w/s_out <= 0.02 (s_out 0.5) and fails otherwise (s_out 0.001).
    rng = np.random.default_rng(0)
    x = _rand_int(rng, "int8", (2, 4))
    w = _rand_int(rng, "int8", (3, 4))
    bias = np.array([100, -200, 300], np.int32)
    m = _model(x.shape, w, bias=bias, bias_scale=[5.0, 6.0, 7.0], s_out=s_out, out_shape=(2, 3))
    assert check_against_litert(litert, m, [x]) == ("ok" if s_out == 0.5 else "rejected")


@pytest.mark.oracle
@pytest.mark.parametrize("zp_out", [-5, 0, 5])
def test_fc_requant_overflow_gives_int32_min(litert, zp_out):
    # acc * eff far above 2^31: the cast gives INT32_MIN; + a negative zp wraps to INT32_MAX -> qmax.
    x = np.array([[127], [-127], [1]], np.int8)
    w = np.full((1, 1), 127, np.int8)
    m = _model(x.shape, w, s_in=1.0, s_w=1.0, s_out=1e-6, zp_out=zp_out, out_shape=(3, 1))
    check_against_litert(litert, m, [x])
    out = run_refquant(m, [x]).values[2].ravel()
    assert out[0] == (127 if zp_out < 0 else -128)


@pytest.mark.oracle
def test_fc_int32_accumulator_wraps(litert):
    # D = 40000 with all products 127*127 overflows the int32 accumulator; LiteRT wraps.
    d = 40000
    x = np.full((1, d), 127, np.int8)
    w = np.full((1, d), 127, np.int8)
    m = _model(x.shape, w, s_in=0.01, s_w=0.01, s_out=100.0)
    check_against_litert(litert, m, [x])


@pytest.mark.oracle
def test_fc_non_divisible_batch_and_zero_size(litert):
    rng = np.random.default_rng(1)
    x = _rand_int(rng, "int8", (2, 7))  # 14 elements, D = 4 -> 3 rows, 2 ignored
    w = _rand_int(rng, "int8", (5, 4))
    m = _model(x.shape, w, out_shape=(3, 5))
    check_against_litert(litert, m, [x])
    assert run_refquant(m, [x]).values[2].shape == (3, 5)
    x0 = np.zeros((0, 4), np.int8)
    m0 = _model(x0.shape, w, out_shape=(0, 5))
    check_against_litert(litert, m0, [x0])


@pytest.mark.oracle
@pytest.mark.parametrize("dt", ["int8", "float32"])
@pytest.mark.parametrize("keep", [False, True])
def test_fc_zero_depth_writes_zeros(litert, dt, keep):
    # Filter [3, 0]: LiteRT memsets the output to 0 (not to zp_out).
    x = np.zeros((2, 0), dt)
    m = _model(
        (2, 0), np.zeros((3, 0), dt), in_dt=dt, w_dt=dt, out_dt=dt, zp_out=5, out_shape=(2, 3), keep_num_dims=keep
    )
    check_against_litert(litert, m, [x])
    out = run_refquant(m, [x]).values[2]
    assert out.shape == (2, 3) and not out.any()


@pytest.mark.oracle
def test_fc_float_special_values(litert):
    x = np.array([[np.inf, 1.0, 0.0], [np.nan, 2.0, 3.0], [-0.0, -0.0, -0.0], [3e38, 3e38, 1.0]], np.float32)
    w = np.array([[1.0, 1.0, 1.0], [0.0, 1.0, 1.0], [-1.0, 2.0, 0.5]], np.float32)
    for act in ACTS:
        m = _model(
            x.shape,
            w,
            in_dt="float32",
            w_dt="float32",
            out_dt="float32",
            fused_activation_function=act,
            out_shape=(4, 3),
        )
        check_against_litert(litert, m, [x], float64=False)
        # float64 sums: 3e38 * 2 is not rounded to float32 (inf), so the last row's third sum stays finite.
        seq = run_refquant(m, [x]).values[2]
        f64 = run_refquant(m, [x], float_accumulation="float64").values[2]
        lo, hi = calculate_activation_range_float(act)
        assert f64[3, 2] == min(max(np.float32(3e38), lo), hi)
        np.testing.assert_array_equal(f64[:3], seq[:3])
        np.testing.assert_array_equal(f64[3, :2], seq[3, :2])


@pytest.mark.oracle
def test_fc_rejections_match_litert(litert):
    rng = np.random.default_rng(2)
    x = _rand_int(rng, "int8", (2, 4))
    w = _rand_int(rng, "int8", (3, 4))
    bias = rng.integers(-100, 100, 3).astype(np.int32)
    cases = [
        _model(x.shape, w, bias=bias, bias_scale=0.05 * 0.02 * 3, out_shape=(2, 3)),  # bias scale off by 200%
        _model(x.shape, w, s_w=[0.1, 0.2, 0.3, 0.4], qdim=1, out_shape=(2, 3)),  # per-channel along dim 1
        _model(x.shape, w, fused_activation_function="TANH", out_shape=(2, 3)),
        _model((2, 5), w, keep_num_dims=True, out_shape=(2, 3)),  # last dim != depth
        _model(x.shape, w, in_dt="int16", w_dt="int8", out_dt="int16", zp_in=3, out_shape=(2, 3)),
        _model(
            x.shape,
            w,
            in_dt="int16",
            w_dt="int8",
            out_dt="int16",
            bias=bias.astype(np.int64),
            bias_dt="int64",
            quantized_bias_type="INT32",
            out_shape=(2, 3),
        ),
        _model(
            x.shape,
            w.astype(np.uint8),
            in_dt="uint8",
            w_dt="uint8",
            out_dt="uint8",
            s_w=[0.1, 0.2, 0.3],
            zp_in=128,
            out_shape=(2, 3),
        ),
    ]
    for m in cases:
        it = refquant.Interpreter(model_content=m)
        inputs = [np.zeros(d["shape"], d["dtype"]) for d in it.get_input_details()]
        assert check_against_litert(litert, m, inputs) == "rejected"


# ---------------------------------------------------------------------------------------------
# Rejections of configurations refquant does not implement (no oracle needed)


def _prepare(m: bytes):
    it = refquant.Interpreter(model_content=m)
    it.allocate_tensors()
    return it


def test_fc_hybrid_refuses_minus_128_weights_where_litert_sse_is_wrong():
    # LiteRT's SSE dot product wraps -(-128): with -128 in the first depth & ~15 columns its sums are wrong.
    w = np.ones((3, 17), np.int8)
    w[1, 15] = -128
    m = _model((1, 17), w, in_dt="float32", out_dt="float32", s_w=0.01, out_shape=(1, 3))
    with pytest.raises(UnsupportedOpError, match="-128"):
        _prepare(m)
    w[1, 15], w[1, 16] = 1, -128  # column 16 is summed by the scalar tail: accepted
    _prepare(_model((1, 17), w, in_dt="float32", out_dt="float32", s_w=0.01, out_shape=(1, 3)))


def test_fc_rejects_hybrid_uint8_weights():
    w = np.ones((2, 3), np.uint8)
    m = _model((1, 3), w, in_dt="float32", w_dt="uint8", out_dt="float32", out_shape=(1, 2))
    with pytest.raises(UnsupportedOpError, match="hybrid"):
        _prepare(m)


def test_fc_rejects_shuffled_weights():
    w = np.ones((4, 16), np.uint8)
    m = _model((1, 16), w, in_dt="uint8", w_dt="uint8", out_dt="int16", weights_format="SHUFFLED4x16INT8")
    with pytest.raises(UnsupportedOpError, match="SHUFFLED4x16INT8"):
        _prepare(m)


def test_fc_rejects_int16_bias_type_trap():
    # int32 bias with quantized_bias_type unset: LiteRT reads the buffer as int64 (garbage).
    w = np.ones((2, 3), np.int8)
    m = _model((1, 3), w, in_dt="int16", out_dt="int16", bias=np.zeros(2, np.int32), out_shape=(1, 2))
    with pytest.raises(UnsupportedOpError, match="reinterpreted"):
        _prepare(m)


def test_fc_rejects_mixed_types_and_errors():
    w = np.ones((2, 3), np.int8)
    with pytest.raises(UnsupportedOpError):
        _prepare(_model((1, 3), w, out_dt="int16", out_shape=(1, 2)))  # int8 -> int16
    with pytest.raises(UnsupportedOpError):
        _prepare(_model((1, 3), w, bias=np.zeros(2, np.int64), bias_dt="int64", out_shape=(1, 2)))
    with pytest.raises(PrepareError, match="filter must be 2-D"):
        _prepare(_model((1, 3), np.ones((2, 3, 1), np.int8), out_shape=(1, 2)))
    with pytest.raises(PrepareError, match="bias has"):
        _prepare(_model((1, 3), w, bias=np.zeros(3, np.int32), out_shape=(1, 2)))
    with pytest.raises(QuantParamError, match="bias scale"):
        _prepare(_model((1, 3), w, bias=np.zeros(2, np.int32), bias_scale=1.0, out_shape=(1, 2)))
    with pytest.raises(PrepareError, match="needs a bias"):
        _prepare(_model((1, 3), w.astype(np.uint8), in_dt="uint8", w_dt="uint8", out_dt="int16", out_shape=(1, 2)))
    with pytest.raises(QuantParamError, match="dimension 1"):
        _prepare(_model((1, 3), w, s_w=[0.1, 0.1, 0.1], qdim=1, out_shape=(1, 2)))


def test_fc_accumulators_and_trace():
    rng = np.random.default_rng(3)
    x = _rand_int(rng, "int8", (2, 5))
    w = _rand_int(rng, "int8", (3, 5))
    bias = rng.integers(-1000, 1000, 3).astype(np.int32)
    m = _model(x.shape, w, zp_in=-3, zp_w=2, zp_out=4, bias=bias, out_shape=(2, 3))
    tr = run_refquant(m, [x])
    data = tr.op_data[0]
    acc = data.accumulators([x, w, bias])["acc"]
    want = (x.astype(np.int64) + 3) @ (w.astype(np.int64) - 2).T + bias
    assert acc.dtype == np.int32 and np.array_equal(acc, want)
    out = tr.values[3]
    for e in [(0, 0), (1, 2), (0, 1)]:
        steps = data.trace([x, w, bias], 0, e)
        assert steps[-1].value == out[e]
        assert [s.name for s in steps][:5] == ["input_row", "input_offset", "filter_row", "filter_offset", "dot"]
    with pytest.raises(IndexError):
        data.trace([x, w, bias], 0, (2, 0))


def test_fc_float_trace_matches_eval():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 7)).astype(np.float32)
    w = rng.standard_normal((2, 7)).astype(np.float32)
    m = _model(
        x.shape,
        w,
        in_dt="float32",
        w_dt="float32",
        out_dt="float32",
        out_shape=(3, 2),
        fused_activation_function="RELU",
    )
    tr = run_refquant(m, [x])
    out = tr.values[2]
    for e in [(0, 0), (2, 1)]:
        assert tr.op_data[0].trace([x, w, None], 0, e)[-1].value == out[e]


def test_fc_single_rounding_only_changes_int16x16():
    # The float64 requant of int8 FC does not depend on the MBQM rounding build.
    rng = np.random.default_rng(5)
    x = _rand_int(rng, "int8", (4, 9))
    w = _rand_int(rng, "int8", (3, 9))
    m = _model(x.shape, w, s_out=0.5, out_shape=(4, 3))
    a = run_refquant(m, [x]).values[2]
    b = run_refquant(m, [x], rounding="single").values[2]
    assert np.array_equal(a, b)


def test_fc_is_refquant_error_subclass():
    assert issubclass(UnsupportedOpError, RefquantError)


def test_exact_matmul_paths_agree_and_int64_is_exact():
    from refquant.ops.matmul import exact_matmul, float64_matmul_is_exact

    rng = np.random.default_rng(6)
    a = rng.integers(-(2**15), 2**15, size=(3, 50))
    b = rng.integers(-(2**16), 2**16, size=(50, 4))
    assert float64_matmul_is_exact(2**15, 2**16, 50)
    assert np.array_equal(exact_matmul(a, b, True), exact_matmul(a, b, False))
    # Beyond 2^53 float64 loses the low bits; the int64 path does not.
    big_a = np.full((1, 4), 2**31 - 1, np.int64)
    big_b = np.full((4, 1), 2**22 + 1, np.int64)
    assert not float64_matmul_is_exact(2**31, 2**23, 4)
    assert int(exact_matmul(big_a, big_b, False)[0, 0]) == 4 * (2**31 - 1) * (2**22 + 1)


def test_fc_int64_fallback_matches_float64_path():
    import dataclasses

    rng = np.random.default_rng(7)
    x = _rand_int(rng, "int16", (5, 33))
    w = _rand_int(rng, "int16", (4, 33))
    bias = rng.integers(-(10**6), 10**6, 4)
    m = _model(
        x.shape,
        w,
        in_dt="int16",
        w_dt="int16",
        out_dt="int16",
        zp_w=7,
        s_out=50.0,
        bias=bias.astype(np.int32),
        out_shape=(5, 4),
    )
    tr = run_refquant(m, [x])
    data = tr.op_data[0]
    assert data.float64_exact
    slow = dataclasses.replace(data, float64_exact=False)
    assert np.array_equal(slow.eval([x, w, bias.astype(np.int32)])[0], tr.values[3])


# ---------------------------------------------------------------------------------------------
# Fast path (blocked exact float32/float64 products) == the readable kernel


FAST_KINDS = [
    ("int8", "int8", "int8"),
    ("uint8", "uint8", "uint8"),
    ("uint8", "uint8", "int16"),
    ("int16", "int8", "int16"),
    ("int16", "int16", "int16"),
]


def _fast_and_reference(c, in_dt, w_dt, out_dt, bias_dt="int32"):
    m = _model(
        c["x"].shape, c["w"], in_dt=in_dt, w_dt=w_dt, out_dt=out_dt, s_in=c["s_in"], zp_in=c["zp_in"],
        s_w=c["s_w"], zp_w=c["zp_w"], s_out=c["s_out"], zp_out=c["zp_out"],
        bias=None if c["bias"] is None else c["bias"].astype(bias_dt), bias_dt=bias_dt,
        keep_num_dims=c["keep"], fused_activation_function=c["act"],
    )  # fmt: skip
    try:
        tr = run_refquant(m, [c["x"]])
    except RefquantError:
        return
    op = tr.model.subgraphs[0].operators[0]
    data = tr.op_data[0]
    inputs = [tr.values[i] if i >= 0 else None for i in op.inputs]
    np.testing.assert_array_equal(tr.values[op.outputs[0]], data.eval_reference(inputs)[0])


@settings()
@given(kind=st.sampled_from(FAST_KINDS), data=st.data())
def test_fast_eval_equals_reference(kind, data):
    in_dt, w_dt, out_dt = kind
    c = data.draw(fc_case(in_dt, w_dt, out_dt, per_channel_ok=in_dt != "uint8"))
    _fast_and_reference(c, in_dt, w_dt, out_dt, "int64" if in_dt == "int16" else "int32")


@pytest.mark.parametrize("depth", [300, 1100, 2500])
@pytest.mark.parametrize("kind", [("int8", "int8", "int8"), ("uint8", "uint8", "uint8"), ("int16", "int8", "int16")])
def test_fast_eval_depth_chunks_and_row_blocks(monkeypatch, depth, kind):
    """K split into exact float32 chunks (int8: 2^24 // 2^16 = 256 terms with zero points), filter rows
    converted in blocks, extreme operands: still the readable kernel's integers."""
    from refquant.ops import fastpath

    monkeypatch.setattr(fastpath, "_CONVERT_BLOCK", 1000)
    in_dt, w_dt, out_dt = kind
    rng = np.random.default_rng(depth)
    lo_x, hi_x = INFO[in_dt].min, INFO[in_dt].max
    x = np.where(rng.random((3, depth)) < 0.5, lo_x, hi_x).astype(in_dt)  # worst-case magnitudes
    w = _rand_int(rng, w_dt, (5, depth))
    sym = in_dt == "int16"
    c = dict(
        x=x, w=w, s_in=0.02, zp_in=0 if sym else int(rng.integers(-100, 100)) + (128 if in_dt == "uint8" else 0),
        s_w=np.float32(0.01), zp_w=0 if w_dt != "uint8" else 77, s_out=float(0.02 * 0.01 * depth * 40),
        zp_out=0 if out_dt == "int16" else 3, bias=rng.integers(-(2**20), 2**20, 5), keep=False, act="NONE",
    )  # fmt: skip
    _fast_and_reference(c, in_dt, w_dt, out_dt, "int64" if sym else "int32")


@settings()
@given(
    m=st.integers(0, 5), k=st.integers(0, 70), n=st.integers(0, 9), batch=st.sampled_from([(), (2,), (3, 1)]),
    block=st.sampled_from([1, 5, 100, 1 << 16]), special=st.booleans(), seed=st.integers(0, 2**32 - 1),
)  # fmt: skip
def test_sequential_matmul_f32_blocked_equals_loop(m, k, n, batch, block, special, seed):
    """The blocked products + ``np.add.reduce(axis=1, initial=0)`` add the same float32 terms in the same
    order as the readable loop over k: bit-identical, signed zeros, inf and NaN included."""
    from refquant.ops import matmul as fc

    rng = np.random.default_rng(seed)
    a = (rng.standard_normal(batch + (m, k)) * np.exp(rng.normal(0, 4, batch + (m, k)))).astype(np.float32)
    b = (rng.standard_normal((k, n)) * np.exp(rng.normal(0, 4, (k, n)))).astype(np.float32)
    if special and a.size and b.size:
        a.reshape(-1)[rng.integers(0, a.size, 3)] = [np.inf, -0.0, np.nan]
        b.reshape(-1)[rng.integers(0, b.size, 2)] = [-0.0, -np.inf]
        b[:, :1] = -0.0  # a column of -0.0 products: C's 0.0f + (-0.0f) gives +0.0
    old = fc._SEQ_BLOCK
    try:
        fc._SEQ_BLOCK = block
        with np.errstate(all="ignore"):
            fast = fc.sequential_matmul_f32(a, b, blocked=True)
            ref = fc.sequential_matmul_f32(a, b, blocked=False)
    finally:
        fc._SEQ_BLOCK = old
    assert fast.shape == ref.shape and fast.dtype == ref.dtype
    nan = np.isnan(ref)  # a NaN's sign and payload depend on the operand order the hardware picks
    np.testing.assert_array_equal(np.isnan(fast), nan)
    np.testing.assert_array_equal(np.where(nan, 0, fast).view(np.int32), np.where(nan, 0, ref).view(np.int32))
