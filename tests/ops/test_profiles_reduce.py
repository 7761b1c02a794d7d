"""MEAN, SUM, RESIZE_BILINEAR and RELU6 under the non-reference arithmetic profiles, against each runtime.

Every test runs the real runtime of the profile (LiteRT's default interpreter with XNNPACK, its
optimized kernels, tflite-micro) in the oracle worker and requires refquant's output to be equal,
element for element; traces of a few elements must end at the run's value. Inputs are drawn at random
(derandomized Hypothesis) and built to hit exact rounding ties, where the runtimes differ from LiteRT's
reference kernels and from each other.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from refquant import load_model
from refquant.arithmetic.decide import XNN
from refquant.engine import Engine
from refquant.errors import UnsupportedOpError
from refquant.requantize import mbqm_double_rounding, neon_mbqm_mean
from refquant.testing import const, op_model, tensor
from refquant.testing.oracle import tflm_available
from refquant.tracer import trace_in_run

pytestmark = pytest.mark.oracle

XNNPACK, OPTIMIZED, TFLM = "litert-xnnpack", "litert-optimized", "tflm"


# ---------------------------------------------------------------------------------------------
# helpers


def _oracle(litert, model: bytes, inputs: list[np.ndarray], profile: str):
    if profile == TFLM and not tflm_available():
        pytest.skip("tflite-micro (the tflm oracle) is not installed")
    return litert.run(model, inputs, profile=profile)


def _refquant(model: bytes, inputs: list[np.ndarray], profile: str):
    m = load_model(model)
    run = Engine(m, arithmetic=profile).run(inputs)
    return run, m.subgraphs[0].outputs[0]


def check(litert, model: bytes, inputs: list[np.ndarray], profile: str, traces: int = 3) -> np.ndarray:
    """refquant under ``profile`` equals the runtime, element for element; traces end at the run's value."""
    res = _oracle(litert, model, inputs, profile)
    assert res.status == "ok", res.message
    expected = res.outputs[0]
    run, out = _refquant(model, inputs, profile)
    got = np.asarray(run.values[out])
    assert got.dtype == expected.dtype and got.shape == expected.shape
    bad = np.argwhere(got != expected)
    assert bad.size == 0, f"{len(bad)} of {got.size} elements differ, first at {bad[0].tolist()}"
    if got.size:
        flat = np.unique(np.linspace(0, got.size - 1, traces).astype(int))
        for f in flat:
            element = tuple(int(i) for i in np.unravel_index(f, got.shape))
            tr = trace_in_run(run, out, element)
            assert tr.matches_run and tr.steps[-1].value == expected[element], (element, tr.steps)
    return expected


def _reduced_shape(shape: tuple[int, ...], axes: list[int], keep: bool) -> tuple[int, ...]:
    r = len(shape)
    ax = {a % r for a in axes} if r else set()
    if keep:
        return tuple(1 if i in ax else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in ax)


def reduce_model(op, dt, shape, axes, keep, s_in, zp_in, s_out, zp_out) -> bytes:
    """A one-operator MEAN / SUM model."""
    x = tensor(shape, dt, scale=s_in, zero_point=zp_in)
    y = tensor(_reduced_shape(shape, axes, keep), dt, scale=s_out, zero_point=zp_out)
    return op_model(op, [x, const(np.array(axes, np.int32))], [y], keep_dims=keep)


def _delegated(model: bytes) -> bool:
    """Whether LiteRT's default interpreter hands the (one) node to XNNPACK (a DELEGATE node in its plan)."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=model, num_threads=1)
    it.allocate_tensors()
    return "DELEGATE" in [d["op_name"] for d in it._get_ops_details()]


def _decision(model: bytes, profile: str):
    data = Engine(load_model(model), arithmetic=profile).prepare().prepared(0)
    assert data is not None
    return data.arithmetic


_Q8 = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767)}


@st.composite
def reduce_cases(draw, op: str, dt: str, global_pool: bool | None = None):
    """A MEAN / SUM model and input: random rank, axes (negative, repeated), keep_dims, scales, zero points."""
    lo, hi = _Q8[dt]
    pool = draw(st.booleans()) if global_pool is None else global_pool
    if pool:  # 4-D, axes {1, 2}: LiteRT's optimized global average pooling for MEAN
        shape = (draw(st.integers(1, 2)), draw(st.integers(1, 5)), draw(st.integers(1, 5)), draw(st.integers(1, 40)))
        axes = draw(st.sampled_from([[1, 2], [2, 1], [-3, -2], [1, 2, 1]]))
        keep = draw(st.booleans()) if global_pool is None else True
    else:
        shape = tuple(draw(st.lists(st.integers(1, 6), min_size=1, max_size=4)))
        r = len(shape)
        axes = draw(st.lists(st.integers(-r, r - 1), min_size=1, max_size=r + 1))
        keep = draw(st.booleans())
    s_in = float(np.float32(draw(st.floats(0.004, 0.3))))
    grow = 1.0 if op == "MEAN" else 6.0
    s_out = float(np.float32(s_in * draw(st.floats(0.3, 3.0)) * grow))
    if dt == "int16":
        zp_in = zp_out = 0
    else:
        zp_in, zp_out = draw(st.integers(lo, hi)), draw(st.integers(lo, hi))
    seed = draw(st.integers(0, 2**32 - 1))
    x = np.random.default_rng(seed).integers(lo, hi + 1, shape).astype(dt)
    return reduce_model(op, dt, shape, axes, keep, s_in, zp_in, s_out, zp_out), [x]


# ---------------------------------------------------------------------------------------------
# litert-xnnpack: which MEAN / SUM nodes the delegate takes


@pytest.mark.parametrize("op", ["MEAN", "SUM"])
@pytest.mark.parametrize(
    ("shape", "axes", "dt"),
    [
        ((2, 3, 4), [1], "int8"),
        ((2, 3, 4), [-1, 0], "uint8"),
        ((2, 3, 4), [1, -2], "int8"),  # a repeated axis: still taken
        ((2, 3, 4, 5), [0, 1, 2, 3], "int8"),
        ((2, 3), [], "int8"),  # no axes: not taken
        ((), [0], "int8"),  # the "ill defined" rank-0 reduction: not taken
        ((2, 3), [1], "int16"),  # int16: never taken
        ((2, 3), [1], "float32"),
    ],
)
def test_xnnpack_reduce_partitioning_follows_the_delegate(litert, op, shape, axes, dt):
    quant = {} if dt == "float32" else {"scale": 0.05, "zero_point": 0}
    x = tensor(shape, dt, **quant)
    y = tensor(_reduced_shape(shape, axes, True), dt, **quant)
    model = op_model(op, [x, const(np.array(axes, np.int32))], [y], keep_dims=True)
    assert (_decision(model, XNNPACK).executor == XNN) == _delegated(model)


@pytest.mark.parametrize("op", ["MEAN", "SUM"])
def test_xnnpack_rank0_reduction_fails_like_the_default_interpreter(litert, op):
    x, y = tensor((), "int8", scale=0.05, zero_point=0), tensor((), "int8", scale=0.05, zero_point=0)
    model = op_model(op, [x, const(np.array([-1], np.int32))], [y], keep_dims=True)
    assert _oracle(litert, model, [np.zeros((), np.int8)], XNNPACK).status == "rejected"
    with pytest.raises(UnsupportedOpError, match="litert-xnnpack.*fails to reshape"):
        _refquant(model, [np.zeros((), np.int8)], XNNPACK)


# ---------------------------------------------------------------------------------------------
# MEAN / SUM: random models, exact ties


@pytest.mark.parametrize("profile", [XNNPACK, OPTIMIZED])
@pytest.mark.parametrize("op", ["MEAN", "SUM"])
@pytest.mark.parametrize("dt", ["int8", "uint8"])
@given(data=st.data())
def test_mean_sum_random_equal_the_runtime(litert, profile, op, dt, data):
    model, inputs = data.draw(reduce_cases(op, dt))
    check(litert, model, inputs, profile)


@pytest.mark.parametrize("profile", [XNNPACK, OPTIMIZED])
@given(data=st.data())
def test_int16_sum_is_the_optimized_float_formula(litert, profile, data):
    """int16 is never delegated: both profiles run LiteRT's optimized SUM (float32, ties away)."""
    model, inputs = data.draw(reduce_cases("SUM", "int16", global_pool=False))
    check(litert, model, inputs, profile)


@pytest.mark.parametrize("dt", ["int8", "int16"])
@given(data=st.data())
def test_tflm_sum_is_the_true_sum(litert, dt, data):
    model, inputs = data.draw(reduce_cases("SUM", dt, global_pool=False))
    check(litert, model, inputs, TFLM)


def _tie_sums(n: int, dt: str, count: int) -> np.ndarray:
    """Inputs whose sums over the last axis (length ``n``) run through consecutive values around 0."""
    lo, hi = _Q8[dt]
    rows = []
    base = 0 if lo < 0 else 128
    for k in range(count):
        target = k - count // 2
        row = np.full(n, base, np.int64)
        row[0] += target
        rows.append(np.clip(row, lo, hi))
    return np.asarray(rows).astype(dt)


@pytest.mark.parametrize("profile", [XNNPACK, OPTIMIZED, TFLM])
@pytest.mark.parametrize("dt", ["int8", "uint8"])
def test_sum_ties(litert, profile, dt):
    """s_in / s_out = 1/2 exactly: every odd sum is a tie (XNNPACK: to even; optimized: away; tflm: MBQM)."""
    if profile == TFLM and dt == "uint8":
        pytest.skip("tflite-micro has no uint8 SUM")
    zp = 0 if dt == "int8" else 128
    x = _tie_sums(3, dt, 40)
    model = reduce_model("SUM", dt, x.shape, [1], False, 0.25, zp, 0.5, 0 if dt == "int8" else 128)
    out = check(litert, model, [x], profile, traces=6).astype(np.int64) - (0 if dt == "int8" else 128)
    s = x.astype(np.int64).sum(axis=1) - 3 * zp
    halves = s % 2 == 1
    assert halves.sum() >= 15  # the test hits ties
    if profile == XNNPACK:
        assert np.array_equal(out[halves], np.rint(s[halves] / 2).astype(np.int64))
    elif profile == OPTIMIZED:
        assert np.array_equal(out[halves], (np.sign(s) * ((np.abs(s) + 1) // 2))[halves])


@pytest.mark.parametrize("profile", [XNNPACK, OPTIMIZED])
@pytest.mark.parametrize("dt", ["int8", "uint8"])
def test_mean_ties_other_axes(litert, profile, dt):
    """MEAN over 2 elements with equal scales (n = 2): odd sums are ties."""
    zp = 0 if dt == "int8" else 128
    x = _tie_sums(2, dt, 40)
    model = reduce_model("MEAN", dt, x.shape, [-1], True, 0.1, zp, 0.1, zp)
    check(litert, model, [x], profile, traces=6)


@pytest.mark.parametrize("channels", [7, 16, 20, 33])
@pytest.mark.parametrize("dt", ["int8", "uint8"])
def test_optimized_global_average_pool_blocks_and_tail(litert, channels, dt):
    """4-D MEAN over {1, 2}: NEON requantization on blocks of 16 int8 channels, the reference MBQM on the rest.

    n = 4 and s_in = s_out give the multiplier 1/4 (M = 2^30, shift -1): sums of -6 mod 8 are ties at
    the second rounding, where NEON rounds up and the reference away from zero.
    """
    lo, hi = _Q8[dt]
    zp = 0 if dt == "int8" else 128
    sums = np.arange(-40, 40) if dt == "int8" else np.arange(0, 80)
    x = np.zeros((len(sums), 2, 2, channels), np.int64) + zp
    x[:, 0, 0, :] = np.clip(zp + sums[:, None] + np.arange(channels)[None, :] % 3, lo, hi)
    x = x.astype(dt)
    model = reduce_model("MEAN", dt, x.shape, [1, 2], True, 0.1, zp, 0.1, zp)
    expected = check(litert, model, [x], OPTIMIZED, traces=8).reshape(len(sums), channels).astype(np.int64)
    s = x.astype(np.int64).sum(axis=(1, 2))  # raw sums
    m, shift = 1 << 30, -1
    bias = expected - np.where(
        np.arange(channels) < (16 * (channels // 16) if dt == "int8" else 0),
        neon_mbqm_mean(s, m, shift),
        mbqm_double_rounding(s, m, shift),
    )
    inside = (expected > lo) & (expected < hi)
    assert np.unique(bias[inside]).size == 1  # one bias: the block split is exactly the runtime's
    if dt == "int8" and channels >= 16:
        neon, ref = neon_mbqm_mean(s, m, shift)[:, :16], mbqm_double_rounding(s, m, shift)[:, :16]
        assert (neon != ref).any()  # ties were hit inside the NEON block


def test_optimized_sum_of_an_empty_input_is_refused(litert):
    model = reduce_model("SUM", "int8", (2, 0, 3), [1], True, 0.1, 1, 0.2, 2)
    with pytest.raises(UnsupportedOpError, match="uninitialized"):
        _refquant(model, [np.zeros((2, 0, 3), np.int8)], OPTIMIZED)


@pytest.mark.parametrize("op", ["MEAN", "SUM"])
@pytest.mark.parametrize("dt", ["int8", "uint8"])
def test_xnnpack_empty_input(litert, op, dt):
    """XNNPACK: MEAN of nothing is 0, SUM of nothing is the output zero point."""
    zp = 5 if dt == "int8" else 133
    model = reduce_model(op, dt, (2, 0, 3), [1], True, 0.1, 1, 0.2, zp)
    check(litert, model, [np.zeros((2, 0, 3), dt)], XNNPACK)


# ---------------------------------------------------------------------------------------------
# RESIZE_BILINEAR under litert-xnnpack: Q11 weights


@st.composite
def resize_cases(draw, dt: str):
    lo, hi = _Q8[dt]
    h, w = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    oh, ow = draw(st.integers(1, 16)), draw(st.integers(1, 16))
    mode = draw(st.sampled_from(["legacy", "align", "half"]))
    s, zp = float(np.float32(draw(st.floats(0.01, 0.5)))), draw(st.integers(lo, hi))
    x = tensor((2, h, w, 3), dt, scale=s, zero_point=zp)
    y = tensor((2, oh, ow, 3), dt, scale=s, zero_point=zp)
    model = op_model(
        "RESIZE_BILINEAR",
        [x, const(np.array([oh, ow], np.int32))],
        [y],
        align_corners=mode == "align",
        half_pixel_centers=mode == "half",
    )
    seed = draw(st.integers(0, 2**32 - 1))
    return model, [np.random.default_rng(seed).integers(lo, hi + 1, (2, h, w, 3)).astype(dt)]


@pytest.mark.parametrize("dt", ["int8", "uint8"])
@given(data=st.data())
def test_xnnpack_resize_bilinear_random(litert, dt, data):
    model, inputs = data.draw(resize_cases(dt))
    assert _decision(model, XNNPACK).rescale == "xnn_q11"
    check(litert, model, inputs, XNNPACK)


@pytest.mark.parametrize("dt", ["int8", "uint8"])
@pytest.mark.parametrize("mode", ["legacy", "align", "half"])
def test_xnnpack_resize_bilinear_ties(litert, dt, mode):
    """Upsampling x2 / x4 of neighbours one apart: the Q11 sum lands on halves, rounded up."""
    lo, hi = _Q8[dt]
    x = np.clip(np.arange(2 * 4 * 4 * 3).reshape(2, 4, 4, 3) % 7 + (lo if lo == 0 else -3), lo, hi).astype(dt)
    for oh, ow in ((8, 8), (16, 7), (3, 16)):
        q = tensor(x.shape, dt, scale=0.1, zero_point=0 if dt == "int8" else 128)
        y = tensor((2, oh, ow, 3), dt, scale=0.1, zero_point=0 if dt == "int8" else 128)
        model = op_model(
            "RESIZE_BILINEAR",
            [q, const(np.array([oh, ow], np.int32))],
            [y],
            align_corners=mode == "align",
            half_pixel_centers=mode == "half",
        )
        check(litert, model, [x], XNNPACK, traces=6)


def test_xnnpack_resize_bilinear_with_different_quantization_fails_like_the_runtime(litert):
    x, y = tensor((1, 2, 2, 1), "int8", scale=0.1, zero_point=0), tensor((1, 4, 4, 1), "int8", scale=0.2, zero_point=0)
    model = op_model("RESIZE_BILINEAR", [x, const(np.array([4, 4], np.int32))], [y])
    inputs = [np.zeros((1, 2, 2, 1), np.int8)]
    assert _oracle(litert, model, inputs, XNNPACK).status == "rejected"
    with pytest.raises(UnsupportedOpError, match="fails on this node"):
        _refquant(model, inputs, XNNPACK)


# ---------------------------------------------------------------------------------------------
# RELU6 under tflm: the raw clamp


@pytest.mark.parametrize("dt", ["int8", "int16"])
@given(
    scale=st.floats(0.002, 0.2),
    zp_in=st.integers(-128, 127),
    tie=st.integers(0, 200),
    out_scale=st.floats(0.001, 0.1),
    zp_out=st.integers(-128, 127),
    seed=st.integers(0, 2**32 - 1),
)
def test_tflm_relu6_raw_clamp(litert, dt, scale, zp_in, tie, out_scale, zp_out, seed):
    """Every input value, the output quantization ignored; 6 / s_in on an exact half half of the time."""
    lo, hi = _Q8[dt]
    s_in = float(np.float32(6.0 / (tie + 10.5))) if tie % 2 else float(np.float32(scale))
    if dt == "int16":
        s_in, out_scale = s_in / 256, out_scale / 256
    x = np.arange(lo, hi + 1) if dt == "int8" else np.random.default_rng(seed).integers(lo, hi + 1, 1024)
    model = op_model(
        "RELU6",
        [tensor(x.shape, dt, scale=s_in, zero_point=zp_in)],
        [tensor(x.shape, dt, scale=float(np.float32(out_scale)), zero_point=zp_out)],
    )
    out = check(litert, model, [x.astype(dt)], TFLM).astype(np.int64)
    assert out.min() >= zp_in  # no requantization: the input's zero point is the floor
