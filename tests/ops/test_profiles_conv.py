"""CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED and TRANSPOSE_CONV under every non-reference arithmetic profile.

Each test runs refquant's ``Interpreter(arithmetic=P)`` and the runtime of profile ``P`` (the ``litert``
worker's ``run(..., profile=P)``: LiteRT's optimized kernels, its default XNNPACK interpreter, tflite-micro)
on the same model and compares the integer outputs element for element. Tie-heavy models put every odd
accumulator on an exact .5 (weights 1, power-of-two scales), where the profiles' roundings part ways
(ties up twice, ties to even, ties away); random models come from ``refquant.strategies.op_models``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import refquant
from refquant.errors import RefquantError, UnsupportedOpError
from refquant.strategies import op_models
from refquant.testing import const, op_model, tensor
from refquant.testing.oracle import tflm_available
from refquant.tracer import trace_in_run

PROFILES = ("litert-optimized", "litert-xnnpack", "tflm")
OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")


def _oracle(litert, model: bytes, inputs: list[np.ndarray], profile: str):
    if profile == "tflm" and not tflm_available():
        pytest.skip("tflite-micro is not installed")
    return litert.run(model, inputs, profile=profile)


def _interpreter(model: bytes, inputs: list[np.ndarray], profile: str) -> refquant.Interpreter:
    it = refquant.Interpreter(model_content=model, arithmetic=profile)
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), inputs):
        it.set_tensor(d["index"], x)
    it.invoke()
    return it


def _check(litert, model: bytes, inputs: list[np.ndarray], profile: str, trace: bool = False) -> np.ndarray | None:
    """refquant under ``profile`` equals the runtime (or both refuse); returns the output (None if refused)."""
    res = _oracle(litert, model, inputs, profile)
    if res.status != "ok":
        with pytest.raises(RefquantError):
            _interpreter(model, inputs, profile)
        return None
    it = _interpreter(model, inputs, profile)
    out = it.get_tensor(it.get_output_details()[0]["index"])
    want = res.outputs[0]
    assert out.dtype == want.dtype and out.shape == want.shape
    bad = np.argwhere(out != want)
    assert bad.size == 0, (
        f"{profile}: {len(bad)} of {out.size} differ, first at {bad[0]}: {out[tuple(bad[0])]} != {want[tuple(bad[0])]}"
    )
    if trace:
        run = it.trace
        index = it.get_output_details()[0]["index"]
        for element in np.ndindex(*out.shape):
            tr = trace_in_run(run, index, element)
            assert tr.matches_run and tr.steps[-1].value == out[element], (profile, element)
    return out


# ---------------------------------------------------------------------------------------------
# Tie-heavy models: weights 1, s_in = s_w = 1/16, eff = s_in * s_w / s_out a power of two


def _q(dt: str, scale, zp) -> dict:
    return {"scale": scale, "zero_point": zp}


def _tie_model(
    opcode: str, dt: str, channels: int, eff: float, *, per_channel: bool = False, act: str = "NONE", s_out=None
) -> tuple[bytes, list[np.ndarray]]:
    """A one-op model whose accumulators are ``x - zp_in`` (+ small sums) and whose requantization is ``eff``."""
    rng = np.random.default_rng(channels * 7 + len(opcode))
    s_in = s_w = 1.0 / 16
    s_o = s_out if s_out is not None else s_in * s_w / eff
    zp_in = 0 if dt == "int8" else 128
    zp_out = 0 if dt == "int8" else 128
    zp_w = 0 if dt == "int8" else 100
    one = 1 + zp_w
    wdt = dt
    nsc = channels if per_channel else 1
    ws = [s_w] * nsc
    wz = [0] * nsc if dt == "int8" else zp_w
    if opcode == "FULLY_CONNECTED":
        depth = 2
        x = tensor((6, depth), dt, name="x", **_q(dt, s_in, zp_in))
        w = const(np.full((channels, depth), one, np.int8 if dt == "int8" else np.uint8), wdt, scale=ws, zero_point=wz)
        b = const(np.zeros(channels, np.int32), "int32", scale=[s_in * s_w] * nsc, zero_point=[0] * nsc)
        y = tensor((6, channels), dt, name="y", **_q(dt, s_o, zp_out))
        model = op_model(opcode, [x, w, b], [y], fused_activation_function=act)
        xin = _tie_inputs(rng, (6, depth), dt)
        return model, [xin]
    if opcode == "TRANSPOSE_CONV":
        x = tensor((1, 4, 4, 1), dt, name="x", **_q(dt, s_in, zp_in))
        w = const(
            np.full((channels, 1, 1, 1), one, np.int8 if dt == "int8" else np.uint8),
            wdt,
            scale=ws,
            zero_point=wz,
            quantized_dimension=0,
        )
        shape = const(np.array([1, 4, 4, channels], np.int32), "int32")
        b = const(np.zeros(channels, np.int32), "int32", scale=[s_in * s_w] * nsc, zero_point=[0] * nsc)
        y = tensor((1, 4, 4, channels), dt, name="y", **_q(dt, s_o, zp_out))
        model = op_model(
            opcode, [shape, w, x, b], [y], padding="VALID", stride_h=1, stride_w=1, fused_activation_function=act
        )
        return model, [_tie_inputs(rng, (1, 4, 4, 1), dt)]
    if opcode == "CONV_2D":
        x = tensor((1, 4, 4, 1), dt, name="x", **_q(dt, s_in, zp_in))
        w = const(
            np.full((channels, 1, 1, 1), one, np.int8 if dt == "int8" else np.uint8),
            wdt,
            scale=ws,
            zero_point=wz,
            quantized_dimension=0,
        )
        b = const(np.zeros(channels, np.int32), "int32", scale=[s_in * s_w] * nsc, zero_point=[0] * nsc)
        y = tensor((1, 4, 4, channels), dt, name="y", **_q(dt, s_o, zp_out))
        model = op_model(opcode, [x, w, b], [y], padding="VALID", stride_h=1, stride_w=1, fused_activation_function=act)
        return model, [_tie_inputs(rng, (1, 4, 4, 1), dt)]
    # DEPTHWISE_CONV_2D, depth multiplier 1
    x = tensor((1, 3, 3, channels), dt, name="x", **_q(dt, s_in, zp_in))
    w = const(
        np.full((1, 1, 1, channels), one, np.int8 if dt == "int8" else np.uint8),
        wdt,
        scale=ws,
        zero_point=wz,
        quantized_dimension=3,
    )
    b = const(np.zeros(channels, np.int32), "int32", scale=[s_in * s_w] * nsc, zero_point=[0] * nsc)
    y = tensor((1, 3, 3, channels), dt, name="y", **_q(dt, s_o, zp_out))
    model = op_model(
        opcode,
        [x, w, b],
        [y],
        padding="VALID",
        stride_h=1,
        stride_w=1,
        depth_multiplier=1,
        fused_activation_function=act,
    )
    return model, [_tie_inputs(rng, (1, 3, 3, channels), dt)]


def _tie_inputs(rng: np.random.Generator, shape: tuple[int, ...], dt: str) -> np.ndarray:
    """Small odd and even values around the zero point (ties at eff = 1/2 and 1/4) and a few extremes."""
    base = 0 if dt == "int8" else 128
    v = rng.integers(-9, 10, shape) + base
    flat = v.reshape(-1)
    flat[:4] = [base - 5, base - 3, base + 3, base + 5][: flat.size]
    return v.astype(np.int8 if dt == "int8" else np.uint8)


TIE_CASES = [
    (op, dt, c, pc)
    for op in OPS
    for dt in ("int8", "uint8")
    for c, pc in ((1, False), (3, False), (12, False), (12, True), (20, True))
    if not (pc and dt == "uint8")
]


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize(("opcode", "dt", "channels", "per_channel"), TIE_CASES)
@pytest.mark.parametrize("eff", [0.5, 0.25])
def test_exact_ties_match_each_runtime(litert, profile, opcode, dt, channels, per_channel, eff):
    model, inputs = _tie_model(opcode, dt, channels, eff, per_channel=per_channel)
    _check(litert, model, inputs, profile, trace=channels <= 3)


def test_the_profiles_differ_at_ties(litert):
    """The tie models do separate the roundings: optimized (ties up), XNNPACK (to even), tflm / ref (away)."""
    model, _ = _tie_model("FULLY_CONNECTED", "int8", 3, 0.5)
    inputs = [np.array([[-1, 0], [1, 0], [-3, 0], [3, 0], [-5, 0], [5, 0]], np.int8)]
    outs = {p: _check(litert, model, inputs, p) for p in ("litert-ref", "litert-optimized", "litert-xnnpack")}
    assert not np.array_equal(outs["litert-ref"], outs["litert-optimized"])
    assert not np.array_equal(outs["litert-optimized"], outs["litert-xnnpack"])
    assert not np.array_equal(outs["litert-ref"], outs["litert-xnnpack"])


def test_depthwise_int8_optimized_splits_blocks_of_8_channels(litert):
    """Channels [0, 8) and [8, 16) round ties up, channels 16..19 as the reference kernel (away from zero)."""
    model, inputs = _tie_model("DEPTHWISE_CONV_2D", "int8", 20, 0.25)
    opt = _check(litert, model, inputs, "litert-optimized")
    ref = _check(litert, model, inputs, "litert-ref")
    assert opt is not None and ref is not None
    assert np.array_equal(opt[..., 16:], ref[..., 16:])
    assert not np.array_equal(opt[..., :16], ref[..., :16])


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("opcode", OPS)
@pytest.mark.parametrize(("act", "s_out"), [("RELU6", 12.0), ("RELU_N1_TO_1", 2.0), ("RELU", 0.75)])
def test_fused_activation_bounds_at_a_tie(litert, profile, opcode, act, s_out):
    """6 / s_out = 0.5 (and 1 / s_out = 0.5): XNNPACK rounds the bound to even, LiteRT's kernels away from zero."""
    model, inputs = _tie_model(opcode, "int8", 3, 0.5, act=act, s_out=s_out)
    inputs = [np.full_like(inputs[0], 127)] if act != "RELU_N1_TO_1" else [np.full_like(inputs[0], -128)]
    _check(litert, model, inputs, profile, trace=True)


# ---------------------------------------------------------------------------------------------
# Random models


def _random_case(litert, case, profile):
    _check(litert, case.model, case.inputs, profile, trace=False)


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("opcode", OPS)
@pytest.mark.parametrize("dt", ["int8", "uint8"])
def test_random_models_match_each_runtime(litert, profile, opcode, dt):
    if profile == "tflm" and not tflm_available():
        pytest.skip("tflite-micro is not installed")

    @settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
    @given(op_models(opcode, dt, max_side=8))
    def run(case):
        _random_case(litert, case, profile)

    run()


@pytest.mark.parametrize("profile", ["litert-optimized", "litert-xnnpack"])
@pytest.mark.parametrize("opcode", OPS)
def test_random_per_channel_models_trace_to_the_run(litert, profile, opcode):
    @settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
    @given(op_models(opcode, "int8", max_side=4, per_channel=True, max_batch=1))
    def run(case):
        _check(litert, case.model, case.inputs, profile, trace=True)

    run()


# ---------------------------------------------------------------------------------------------
# The delegate's partitioning


def _data(model: bytes, inputs: list[np.ndarray], profile: str):
    """The prepared data of the model's one operator under ``profile`` (from a run)."""
    return _interpreter(model, inputs, profile).trace.op_data[0]


def test_a_node_the_delegate_does_not_take_gets_the_optimized_arithmetic(litert):
    """TRANSPOSE_CONV with SAME padding and a kernel smaller than the stride: XNNPACK refuses it
    (CalculateTransposeConvPaddings), so the default interpreter runs the optimized kernel (ties up)."""
    s = 1.0 / 16
    x = tensor((1, 3, 3, 1), "int8", name="x", scale=s, zero_point=0)
    w = const(np.ones((3, 1, 1, 1), np.int8), "int8", scale=s, zero_point=0)
    shape = const(np.array([1, 6, 6, 3], np.int32), "int32")
    b = const(np.zeros(3, np.int32), "int32", scale=s * s, zero_point=0)
    y = tensor((1, 6, 6, 3), "int8", name="y", scale=s * s / 0.5, zero_point=0)
    model = op_model("TRANSPOSE_CONV", [shape, w, x, b], [y], padding="SAME", stride_h=2, stride_w=2)
    inputs = [np.array([-5, -3, -1, 1, 3, 5, 7, -7, 9], np.int8).reshape(1, 3, 3, 1)]
    d = _data(model, inputs, "litert-xnnpack").arithmetic
    assert d.executor == "builtin optimized kernel" and d.rescale == "neon_mbqm" and "stride" in d.note
    xnn = _check(litert, model, inputs, "litert-xnnpack")
    assert np.array_equal(xnn, _check(litert, model, inputs, "litert-optimized"))
    # The same model with stride 1 is delegated: ties go to even there.
    model1 = op_model(
        "TRANSPOSE_CONV",
        [const(np.array([1, 3, 3, 3], np.int32), "int32"), w, x, b],
        [tensor((1, 3, 3, 3), "int8", name="y", scale=s * s / 0.5, zero_point=0)],
        padding="SAME",
        stride_h=1,
        stride_w=1,
    )
    assert _data(model1, inputs, "litert-xnnpack").arithmetic.rescale == "fp32_rne"
    out1 = _check(litert, model1, inputs, "litert-xnnpack")
    assert not np.array_equal(out1, _check(litert, model1, inputs, "litert-optimized"))


def test_fc_with_a_nonzero_int8_filter_zero_point_is_not_delegated(litert):
    s = 1.0 / 16
    x = tensor((4, 2), "int8", name="x", scale=s, zero_point=0)
    w = const(np.full((3, 2), 6, np.int8), "int8", scale=s, zero_point=5)
    y = tensor((4, 3), "int8", name="y", scale=s * s / 0.5, zero_point=0)
    model = op_model("FULLY_CONNECTED", [x, w, None], [y])
    inputs = [np.array([-5, -3, -1, 1, 3, 5, 7, -7], np.int8).reshape(4, 2)]
    assert _data(model, inputs, "litert-xnnpack").arithmetic.rescale == "neon_mbqm"
    _check(litert, model, inputs, "litert-xnnpack")


def test_depthwise_without_bias_is_refused_where_the_optimized_kernel_crashes(litert):
    x = tensor((1, 2, 2, 2), "int8", name="x", scale=0.1, zero_point=0)
    w = const(np.ones((1, 1, 1, 2), np.int8), "int8", scale=0.1, zero_point=0, quantized_dimension=3)
    y = tensor((1, 2, 2, 2), "int8", name="y", scale=0.1, zero_point=0)
    model = op_model("DEPTHWISE_CONV_2D", [x, w], [y], padding="VALID", stride_h=1, stride_w=1, depth_multiplier=1)
    inputs = [np.ones((1, 2, 2, 2), np.int8)]
    for profile in ("litert-optimized", "litert-xnnpack"):
        assert litert.run(model, inputs, profile=profile).status == "aborted"
        with pytest.raises(UnsupportedOpError, match="crashes"):
            _interpreter(model, inputs, profile)


def test_reference_profile_keeps_the_fast_path():
    model, inputs = _tie_model("CONV_2D", "int8", 12, 0.5)
    ref = _data(model, inputs, "litert-ref")
    opt = _data(model, inputs, "litert-optimized")
    assert ref.fast is not None and ref.rescale == "reference"
    assert opt.fast is None and opt.rescale == "neon_mbqm" and opt.neon_channels == 12


@pytest.mark.parametrize("dt", ["int8", "uint8"])
@pytest.mark.parametrize(
    ("batch", "h", "w", "channels"), [(1, 1, 1, 9), (1, 1, 5, 4), (1, 1, 7, 3), (2, 3, 3, 3), (3, 1, 3, 3)]
)
def test_transpose_conv_optimized_block_split(litert, dt, batch, h, w, channels):
    """int8: blocks of 8 output channels; uint8: blocks of 16 flat output elements (over every batch);
    the rest rounds as the reference kernel. Every element is the tie -0.5."""
    s = 1.0 / 16
    zp, wz, npdt = (0, 0, np.int8) if dt == "int8" else (128, 100, np.uint8)
    x = tensor((batch, h, w, 1), dt, name="x", scale=s, zero_point=zp)
    wt = const(np.full((channels, 1, 1, 1), 1 + wz, npdt), dt, scale=s, zero_point=wz)
    shape = const(np.array([batch, h, w, channels], np.int32), "int32")
    b = const(np.zeros(channels, np.int32), "int32", scale=s * s, zero_point=0)
    y = tensor((batch, h, w, channels), dt, name="y", scale=s * s / 0.25, zero_point=zp)
    model = op_model("TRANSPOSE_CONV", [shape, wt, x, b], [y], padding="VALID", stride_h=1, stride_w=1)
    inputs = [np.full((batch, h, w, 1), zp - 2, npdt)]
    out = _check(litert, model, inputs, "litert-optimized", trace=True)
    assert out is not None
    up = out.astype(int).reshape(-1) - zp == 0
    n = out.size
    if dt == "uint8":
        assert up.tolist() == [i < 16 * (n // 16) for i in range(n)]
    else:
        assert up.reshape(-1, channels).tolist() == [[c < 8 * (channels // 8) for c in range(channels)]] * (
            n // channels
        )


def test_neon_mbqm_and_fp32_rne_agree_with_their_step_by_step_versions():
    from refquant.requantize import fp32_rne_requant, fp32_rne_steps, neon_mbqm, neon_mbqm_steps

    rng = np.random.default_rng(3)
    x = np.concatenate([rng.integers(-(2**31), 2**31, 3000), [-(2**31), 2**31 - 1, -5, -3, -1, 1, 3, 5]])
    m = np.concatenate([rng.integers(2**30, 2**31, 3000), [-(2**31), 2**30, 2**30, 2**30, 2**30, 2**30, 2**30, 2**30]])
    s = np.concatenate([rng.integers(-31, 4, 3000), [-3, 0, -1, -1, -1, -1, -1, -1]])
    got = neon_mbqm(x, m, s)
    assert got.tolist() == [neon_mbqm_steps(int(a), int(b), int(c))[0] for a, b, c in zip(x, m, s)]
    assert got[-6:].tolist() == [-1, 0, 0, 1, 1, 2]  # ties up at both stages: -2.5 -> -2 -> -1 (x * 1/4)
    acc = np.concatenate([rng.integers(-(2**31), 2**31, 2000), [-5, -3, -1, 1, 3, 5]])
    scale = np.float32(0.5)
    got = fp32_rne_requant(acc, scale, -3, -128, 127, -128, 127)
    assert got.tolist() == [fp32_rne_steps(int(a), float(scale), -3, -128, 127, -128, 127)[0] for a in acc]
    assert got[-6:].tolist() == [-5, -5, -3, -3, -1, -1]  # ties to even, then + zp


def test_an_int32_bias_without_quantization_keeps_the_node_from_the_delegate(litert):
    """CheckTensorFloat32OrFloat16OrQCInt32Type refuses an int32 bias without affine quantization: the default
    interpreter then runs the optimized CONV_2D (ties up), not XNNPACK (ties to even)."""
    s = 1.0 / 16
    x = tensor((1, 2, 3, 1), "int8", name="x", scale=s, zero_point=0)
    w = const(np.ones((2, 1, 1, 1), np.int8), "int8", scale=s, zero_point=0)
    y = tensor((1, 2, 3, 2), "int8", name="y", scale=s * s / 0.25, zero_point=0)
    inputs = [np.array([-6, -2, 2, 6, -10, 10], np.int8).reshape(1, 2, 3, 1)]
    outs = {}
    for quantized in (True, False):
        b = const(
            np.zeros(2, np.int32), "int32", scale=s * s if quantized else None, zero_point=0 if quantized else None
        )
        model = op_model("CONV_2D", [x, w, b], [y], padding="VALID", stride_h=1, stride_w=1)
        want = "fp32_rne" if quantized else "neon_mbqm"
        assert _data(model, inputs, "litert-xnnpack").arithmetic.rescale == want
        outs[quantized] = _check(litert, model, inputs, "litert-xnnpack")
    assert not np.array_equal(outs[True], outs[False])


@pytest.mark.parametrize("profile", ["litert-optimized", "litert-xnnpack"])
@pytest.mark.parametrize(
    ("stride", "dm", "channels", "padding"),
    [(1, 1, 12, "SAME"), (2, 1, 20, "VALID"), (2, 2, 6, "SAME"), (1, 2, 10, "VALID")],
)
def test_depthwise_3x3_ties_across_strides_and_multipliers(litert, profile, stride, dm, channels, padding):
    """The optimized depthwise kernels for other geometries keep the 8-channel split (centre tap 1, ties at -0.5)."""
    s = 1.0 / 16
    cin = channels
    o = cin * dm
    taps = np.zeros((1, 3, 3, o), np.int8)
    taps[0, 1, 1, :] = 1
    taps[0, 0, 0, ::3] = 2
    x = tensor((1, 9, 9, cin), "int8", name="x", scale=s, zero_point=0)
    w = const(taps, "int8", scale=[s] * o, zero_point=[0] * o, quantized_dimension=3)
    b = const(np.zeros(o, np.int32), "int32", scale=[s * s] * o, zero_point=[0] * o)
    oh = 9 if padding == "SAME" and stride == 1 else (5 if padding == "SAME" else (9 - 3) // stride + 1)
    y = tensor((1, oh, oh, o), "int8", name="y", scale=s * s / 0.25, zero_point=0)
    model = op_model(
        "DEPTHWISE_CONV_2D", [x, w, b], [y], padding=padding, stride_h=stride, stride_w=stride, depth_multiplier=dm
    )
    rng = np.random.default_rng(channels)
    inputs = [(rng.integers(-6, 7, (1, 9, 9, cin)) * 2).astype(np.int8)]
    _check(litert, model, inputs, profile)


@pytest.mark.oracle
@pytest.mark.parametrize("profile", ["litert-ref", "litert-optimized", "litert-xnnpack"])
@pytest.mark.parametrize("dtype", ["int8", "uint8"])
@pytest.mark.parametrize("groups", [2, 4])
def test_grouped_conv_matches_each_runtime(litert, profile, dtype, groups):
    """Grouped CONV_2D (filter input channels < input channels): LiteRT's optimized build runs its reference kernel."""
    rng = np.random.default_rng(groups * 7 + len(dtype))
    zp_x, zp_w, zp_y = (2, 0, 0) if dtype == "int8" else (130, 128, 128)
    cin, cout = 2 * groups, 2 * groups
    wv = (rng.integers(-3, 4, size=(cout, 1, 1, cin // groups)) + zp_w).astype(dtype)
    x = tensor((1, 3, 3, cin), dtype, scale=1.0, zero_point=zp_x, name="x")
    w = const(wv, dtype, scale=1.0, zero_point=zp_w, name="w")
    b = const(rng.integers(-3, 4, size=cout).astype(np.int32), "int32", scale=1.0, zero_point=0, name="bias")
    y = tensor((1, 3, 3, cout), dtype, scale=4.0, zero_point=zp_y, name="y")  # scale 1/4: many exact ties
    m = op_model("CONV_2D", [x, w, b], [y], padding="SAME", stride_w=1, stride_h=1)
    xs = [(rng.integers(-4, 5, size=(1, 3, 3, cin)) + zp_x).astype(dtype)]
    want = litert.run(m, xs, profile=profile)
    assert want.status == "ok", want.message
    it = refquant.Interpreter(model_content=m, arithmetic=profile)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], xs[0])
    it.invoke()
    np.testing.assert_array_equal(it.get_tensor(it.get_output_details()[0]["index"]), want.outputs[0], strict=True)
