"""ADD, SUB, MUL, LEAKY_RELU, QUANTIZE and DEQUANTIZE under the non-reference arithmetic profiles, against each runtime.

Every case runs the model in refquant under a profile and in that profile's runtime (``LiteRTWorker().run(...,
profile=P)``) and requires equal outputs element for element (floats included: the DEQUANTIZE formulas are exact),
and that the trace of the first and last output element ends at the run's value. Inputs are exhaustive (every
8-bit value or pair) or designed to hit rounding ties, plus random draws; shapes cover SIMD blocks and scalar
tails (lengths around 8 and 16) and broadcasting.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

from refquant.engine import Engine
from refquant.errors import UnsupportedOpError
from refquant.testing import const, model_bytes, op_model, operator, tensor
from refquant.tflite.reader import load_model
from refquant.tracer import trace_in_run

F32 = np.float32
Q8 = ("int8", "uint8")
NON_REF = ("litert-xnnpack", "litert-optimized", "tflm")


def _run(model: bytes, inputs: list[np.ndarray], profile: str):
    return Engine(load_model(model), arithmetic=profile).run([np.asarray(x) for x in inputs])


def differs_from_ref(model: bytes, inputs: list[np.ndarray], profile: str) -> int:
    """How many output elements refquant computes differently under ``profile`` than under litert-ref."""
    a, b = _run(model, inputs, profile), _run(model, inputs, "litert-ref")
    n = 0
    for o in load_model(model).main.outputs:
        x, y = np.asarray(a.values[o]), np.asarray(b.values[o])
        n += int(np.sum(x.view(np.uint32) != y.view(np.uint32))) if x.dtype == np.float32 else int(np.sum(x != y))
    return n


def check(litert, model: bytes, inputs: list[np.ndarray], profile: str) -> int:
    """refquant's outputs under ``profile`` equal the runtime's; traces end at the run's value. Returns the count."""
    want = litert.run(model, inputs, profile=profile)
    assert want.status == "ok", want.message
    run = _run(model, inputs, profile)
    m = load_model(model)
    outs = m.main.outputs
    n = 0
    for k, o in enumerate(outs):
        got = np.asarray(run.values[o])
        exp = np.asarray(want.outputs[k])
        assert got.dtype == exp.dtype and got.shape == exp.shape
        bad = (
            np.flatnonzero(
                got.view(np.uint8 if got.itemsize == 1 else got.dtype).reshape(-1)
                != exp.view(np.uint8 if exp.itemsize == 1 else exp.dtype).reshape(-1)
            )
            if got.dtype != np.float32
            else np.flatnonzero(got.view(np.uint32) != exp.view(np.uint32))
        )
        assert bad.size == 0, (
            f"{profile}: {bad.size} of {got.size} elements differ; first at {bad[0]}: refquant "
            f"{got.reshape(-1)[bad[0]]!r}, runtime {exp.reshape(-1)[bad[0]]!r}; inputs "
            f"{[np.asarray(x).reshape(-1)[bad[0] % max(np.asarray(x).size, 1)] for x in inputs]}"
        )
        for flat in sorted({0, got.size - 1}) if got.size else ():
            element = tuple(int(i) for i in np.unravel_index(flat, got.shape))
            assert trace_in_run(run, o, element).matches_run
        n += got.size
    return n


def _all8(dt: str) -> np.ndarray:
    return np.arange(256, dtype=np.uint8).view(np.dtype(dt))


def _pairs(dt: str) -> tuple[np.ndarray, np.ndarray]:
    v = _all8(dt)
    a, b = np.meshgrid(v, v, indexing="ij")
    return a.reshape(256, 256), b.reshape(256, 256)


def _binary(op: str, dt: str, sa, za, sb, zb, so, zo, sha=(256, 256), shb=(256, 256), act="NONE") -> bytes:
    out = tuple(np.broadcast_shapes(sha, shb))
    return op_model(
        op,
        [tensor(sha, dt, scale=sa, zero_point=za), tensor(shb, dt, scale=sb, zero_point=zb)],
        [tensor(out, dt, scale=so, zero_point=zo)],
        fused_activation_function=act,
    )


def _zp(rng, dt: str) -> int:
    return int(rng.integers(-100, 101)) if dt == "int8" else int(rng.integers(20, 236))


# (s_a, s_b, s_out) sets: ratios 1/2 and 1/4 make ties at every odd input; the rest are random-like
_TIE_SCALES = [(0.5, 0.25, 1.0), (0.25, 0.125, 0.5), (1.0, 0.5, 2.0), (0.0625, 0.0625, 0.125)]


@pytest.mark.parametrize("dt", Q8)
@pytest.mark.parametrize("op", ["ADD", "SUB"])
def test_add_sub_xnnpack_exhaustive(litert, op, dt):
    rng = np.random.default_rng(14)
    a, b = _pairs(dt)
    n = diff = 0
    scales = _TIE_SCALES + [tuple(float(F32(v)) for v in rng.uniform(0.005, 0.3, 3)) for _ in range(4)]
    for k, (sa, sb, so) in enumerate(scales):
        act = ("NONE", "RELU", "NONE", "RELU_N1_TO_1")[k % 4]
        m = _binary(op, dt, sa, _zp(rng, dt), sb, _zp(rng, dt), so, _zp(rng, dt), act=act)
        n += check(litert, m, [a, b], "litert-xnnpack")
        diff += differs_from_ref(m, [a, b], "litert-xnnpack")
    assert n == len(scales) * 65536
    assert diff > 0  # the cases do tell XNNPACK's rounding from the reference kernel's


@pytest.mark.parametrize("dt", Q8)
@pytest.mark.parametrize("op", ["ADD", "SUB", "MUL"])
def test_binary_activation_bound_ties_xnnpack(litert, op, dt):
    """RELU6 with s_out = 12 (6/12 = 0.5: XNNPACK rounds the bound to even) and RELU_N1_TO_1 with s_out = 2."""
    a, b = _pairs(dt)
    zo = 0 if dt == "int8" else 128
    for act, so in (("RELU6", 12.0), ("RELU_N1_TO_1", 2.0), ("RELU6", 4.0)):
        s_in = so / 4 if op != "MUL" else float(np.sqrt(so))
        m = _binary(op, dt, s_in, 0 if dt == "int8" else 128, s_in, 0 if dt == "int8" else 128, so, zo, act=act)
        check(litert, m, [a, b], "litert-xnnpack")


@pytest.mark.parametrize("dt", Q8)
@pytest.mark.parametrize("op", ["ADD", "SUB", "MUL"])
def test_binary_broadcast_profiles(litert, op, dt):
    rng = np.random.default_rng(3)
    v = _all8(dt)
    shapes = [((256, 1), (1, 17)), ((1, 17), (256, 1)), ((2, 3, 16), (16,)), ((7, 9), (1,)), ((1,), (5, 33))]
    for profile in ("litert-xnnpack", "litert-optimized"):
        for sha, shb in shapes:
            sa, sb, so = (float(F32(x)) for x in rng.uniform(0.01, 0.2, 3))
            m = _binary(op, dt, sa, _zp(rng, dt), sb, _zp(rng, dt), so, _zp(rng, dt), sha, shb)
            xa = rng.choice(v, sha)
            xb = rng.choice(v, shb)
            check(litert, m, [xa, xb], profile)


@pytest.mark.parametrize("dt", Q8)
def test_mul_xnnpack_exhaustive(litert, dt):
    rng = np.random.default_rng(21)
    a, b = _pairs(dt)
    diff = 0
    scales = [(0.5, 0.5, 0.5), (0.25, 0.5, 1.0)] + [
        tuple(float(F32(v)) for v in rng.uniform(0.01, 0.3, 3)) for _ in range(4)
    ]
    for k, (sa, sb, so) in enumerate(scales):
        act = ("NONE", "RELU", "RELU6", "NONE")[k % 4]
        m = _binary("MUL", dt, sa, _zp(rng, dt), sb, _zp(rng, dt), so, _zp(rng, dt), act=act)
        check(litert, m, [a, b], "litert-xnnpack")
        diff += differs_from_ref(m, [a, b], "litert-xnnpack")
    assert diff > 0


def _wrap_case(dt: str) -> tuple[tuple[int, int, int, int, int], tuple[float, float, float]]:
    """(a, zp_a, b, zp_b, zp_out) and scales where (a-zp_a)(b-zp_b) * 2 + zp_out = 32770 leaves int16."""
    if dt == "int8":
        return (127, -3, 126, 0, 10), (1.0, 1.0, 0.5)
    return (255, 125, 255, 129, 10), (1.0, 1.0, 0.5)


@pytest.mark.parametrize("dt", Q8)
def test_mul_optimized_int16_wrap_blocks_and_tails(litert, dt):
    """The SIMD blocks (16 int8 / 8 uint8 elements of the innermost run) wrap in int16; scalar tails do not."""
    (a0, za, b0, zb, zo), (sa, sb, so) = _wrap_case(dt)
    rng = np.random.default_rng(5)
    v = _all8(dt)
    diff = 0
    shapes = [((n,), (n,)) for n in (1, 7, 8, 9, 15, 16, 17, 24, 31, 33, 40)]
    shapes += [((n,), (1,)) for n in (9, 17, 33)] + [((1,), (n,)) for n in (9, 17)]
    shapes += [((3, 17), (1, 17)), ((3, 17), (3, 1)), ((2, 9), (1, 9)), ((5, 3), (5, 1)), ((2, 2, 20), (2, 2, 20))]
    for sha, shb in shapes:
        m = _binary("MUL", dt, sa, za, sb, zb, so, zo, sha, shb)
        xa = np.full(sha, a0, dt)
        xb = np.full(shb, b0, dt)
        xa.reshape(-1)[::3] = rng.choice(v, xa.reshape(-1)[::3].shape)
        check(litert, m, [xa, xb], "litert-optimized")
        diff += differs_from_ref(m, [xa, xb], "litert-optimized")
    assert diff > 0


@pytest.mark.parametrize("dt", Q8)
def test_mul_optimized_random(litert, dt):
    rng = np.random.default_rng(8)
    v = _all8(dt)
    for _ in range(6):
        sa, sb = (float(F32(x)) for x in rng.uniform(0.05, 1.0, 2))
        so = float(F32(sa * sb / rng.uniform(0.3, 3.0)))
        n = int(rng.integers(1, 70))
        m = _binary("MUL", dt, sa, _zp(rng, dt), sb, _zp(rng, dt), so, _zp(rng, dt), (n,), (n,))
        check(litert, m, [rng.choice(v, n), rng.choice(v, n)], "litert-optimized")


def test_mul_optimized_unmeasured_broadcast_refuses():
    (a0, za, b0, zb, zo), (sa, sb, so) = _wrap_case("int8")
    m = _binary("MUL", "int8", sa, za, sb, zb, so, zo, (2, 1, 4), (1, 3, 1))
    with pytest.raises(UnsupportedOpError, match="litert-optimized"):
        _run(m, [np.zeros((2, 1, 4), np.int8), np.zeros((1, 3, 1), np.int8)], "litert-optimized")


def _unary(op: str, x_spec, y_spec, **options) -> bytes:
    return op_model(op, [x_spec], [y_spec], **options)


@pytest.mark.parametrize("dt", Q8)
def test_leaky_relu_xnnpack_exhaustive(litert, dt):
    rng = np.random.default_rng(2)
    v = _all8(dt).reshape(16, 16)
    diff = 0
    cases = [(0.5, 0.5, 0.5), (0.25, 0.5, -0.25)] + [
        (float(F32(rng.uniform(0.01, 0.2))), float(F32(rng.uniform(0.01, 0.2))), float(F32(rng.uniform(-1.5, 1.5))))
        for _ in range(8)
    ]
    for si, so, alpha in cases:
        m = _unary(
            "LEAKY_RELU",
            tensor((16, 16), dt, scale=si, zero_point=_zp(rng, dt)),
            tensor((16, 16), dt, scale=so, zero_point=_zp(rng, dt)),
            alpha=alpha,
        )
        check(litert, m, [v], "litert-xnnpack")
        diff += differs_from_ref(m, [v], "litert-xnnpack")
    assert diff > 0


def test_leaky_relu_small_alpha_not_taken(litert):
    """alpha 0.003 (|ratio * alpha| < 1/256): the delegate leaves the node to the optimized kernel (= reference)."""
    m = _unary(
        "LEAKY_RELU",
        tensor((256,), "int8", scale=0.05, zero_point=3),
        tensor((256,), "int8", scale=0.05, zero_point=-2),
        alpha=0.003,
    )
    check(litert, m, [_all8("int8")], "litert-xnnpack")
    assert differs_from_ref(m, [_all8("int8")], "litert-xnnpack") == 0


def _tie_floats(s: float, zp: int, n: int, rng) -> np.ndarray:
    """Values (k + 1/2) * s (exact ties of x / s) mixed with random ones, as float32."""
    k = rng.integers(-140 - zp, 140 - zp, n)
    x = ((k + 0.5) * s).astype(F32)
    x[::5] = rng.uniform(-150 * s, 150 * s, x[::5].shape).astype(F32)
    return x


@pytest.mark.parametrize("profile", ["litert-xnnpack", "litert-optimized"])
@pytest.mark.parametrize("dt", ["int8", "uint8", "int16"])
def test_quantize_float_profiles(litert, profile, dt):
    rng = np.random.default_rng(11)
    diff = 0
    for n in (1, 7, 8, 9, 15, 16, 20, 64, 67):
        for s in (0.5, 0.25, 2.0 / 3, float(F32(rng.uniform(0.001, 0.2)))):
            zp = 0 if dt == "int16" else _zp(rng, dt)
            m = _unary("QUANTIZE", tensor((n,), "float32"), tensor((n,), dt, scale=s, zero_point=zp))
            x = _tie_floats(s, zp, n, rng)
            check(litert, m, [x], profile)
            diff += differs_from_ref(m, [x], profile)
    assert diff > 0


@pytest.mark.parametrize("profile", ["litert-xnnpack", "litert-optimized"])
def test_quantize_float_extremes(litert, profile):
    x = np.array([1e12, -1e12, np.inf, -np.inf, 3e9, -3e9, 1.0, -0.0] * 2 + [1e12, -1e12, np.inf, 2.5], F32)
    for dt, zp in (("int8", 3), ("int8", -3), ("uint8", 7), ("int16", 0)):
        m = _unary("QUANTIZE", tensor(x.shape, "float32"), tensor(x.shape, dt, scale=0.5, zero_point=zp))
        check(litert, m, [x], profile)


@pytest.mark.parametrize("profile", ["litert-xnnpack", "litert-optimized"])
@pytest.mark.parametrize("src,dst", [("int8", "int8"), ("uint8", "uint8"), ("int8", "uint8"), ("uint8", "int8")])
def test_requantize_profiles(litert, profile, src, dst):
    rng = np.random.default_rng(4)
    diff = 0
    cases = [(0.5, 1.0), (0.25, 1.0), (1.0, 0.5)] + [
        (float(F32(rng.uniform(0.01, 0.3))), float(F32(rng.uniform(0.01, 0.3)))) for _ in range(5)
    ]
    for n in (256, 9, 17, 40):
        for si, so in cases:
            m = _unary(
                "QUANTIZE",
                tensor((n,), src, scale=si, zero_point=_zp(rng, src)),
                tensor((n,), dst, scale=so, zero_point=_zp(rng, dst)),
            )
            x = _all8(src) if n == 256 else rng.choice(_all8(src), n)
            check(litert, m, [x], profile)
            diff += differs_from_ref(m, [x], profile)
    assert diff > 0


@pytest.mark.parametrize("dt", Q8)
def test_requantize_ratio_outside_xnnpack_range_is_optimized(litert, dt):
    """s_in/s_out = 200 > 128: not delegated; the optimized kernel's NEON blocks run it."""
    m = _unary(
        "QUANTIZE",
        tensor((40,), dt, scale=2.0, zero_point=_zp(np.random.default_rng(0), dt)),
        tensor((40,), dt, scale=0.01, zero_point=_zp(np.random.default_rng(1), dt)),
    )
    x = np.random.default_rng(2).choice(_all8(dt), 40)
    check(litert, m, [x], "litert-xnnpack")


@pytest.mark.parametrize("profile", ["litert-xnnpack", "litert-optimized"])
@pytest.mark.parametrize("dt", Q8)
def test_dequantize_profiles(litert, profile, dt):
    rng = np.random.default_rng(9)
    diff = 0
    for n in (256, 1, 8, 9, 15, 16, 23):
        for _ in range(3):
            s = float(F32(rng.uniform(0.001, 0.1)))
            m = _unary("DEQUANTIZE", tensor((n,), dt, scale=s, zero_point=_zp(rng, dt)), tensor((n,), "float32"))
            x = _all8(dt) if n == 256 else rng.choice(_all8(dt), n)
            check(litert, m, [x], profile)
            diff += differs_from_ref(m, [x], profile)
    if profile == "litert-optimized":
        assert diff > 0


@pytest.mark.parametrize("profile", NON_REF)
@pytest.mark.parametrize("per_channel", [False, True])
def test_dequantize_constant_profiles(litert, profile, per_channel):
    """A constant DEQUANTIZE feeding a float ADD (how converters use it): per-tensor and per-channel weights."""
    rng = np.random.default_rng(6)
    sc = rng.uniform(0.001, 0.1, 5).astype(F32) if per_channel else 0.0371
    zp = rng.integers(-20, 20, 5) if per_channel else 3
    w = rng.integers(-128, 128, (3, 5)).astype(np.int8)
    c = const(w, scale=sc, zero_point=zp, quantized_dimension=1)
    d, x, y = tensor((3, 5), "float32"), tensor((3, 5), "float32"), tensor((3, 5), "float32")
    m = model_bytes([operator("DEQUANTIZE", [c], [d]), operator("ADD", [d, x], [y])])
    check(litert, m, [np.zeros((3, 5), F32)], profile)
    if profile == "tflm" and per_channel:
        assert differs_from_ref(m, [np.zeros((3, 5), F32)], profile) > 0


@pytest.mark.parametrize("profile", NON_REF)
def test_dequantize_per_channel_input_profiles(litert, profile):
    rng = np.random.default_rng(7)
    sc = rng.uniform(0.001, 0.1, 5).astype(F32)
    zp = rng.integers(-20, 20, 5)
    m = _unary(
        "DEQUANTIZE", tensor((3, 5), "int8", scale=sc, zero_point=zp, quantized_dimension=1), tensor((3, 5), "float32")
    )
    check(litert, m, [rng.integers(-128, 128, (3, 5)).astype(np.int8)], profile)


def test_dequantize_constant_output_fails_under_xnnpack(litert):
    m = _unary(
        "DEQUANTIZE",
        const(np.arange(15, dtype=np.int8).reshape(3, 5), scale=0.1, zero_point=3),
        tensor((3, 5), "float32"),
    )
    assert litert.run(m, [], profile="litert-xnnpack").status == "rejected"
    with pytest.raises(UnsupportedOpError, match="litert-xnnpack.*fails"):
        _run(m, [], "litert-xnnpack")


@pytest.mark.parametrize("op", ["ADD", "MUL"])
def test_rank7_binary_not_delegated(litert, op):
    """XNN_MAX_TENSOR_DIMS is 6: a rank-7 node stays with the optimized kernel (reference values for ADD)."""
    rng = np.random.default_rng(12)
    shape = (1, 2, 1, 2, 3, 2, 17)
    m = _binary(op, "int8", 0.5, 3, 0.25, -5, 1.0, 1, shape, shape)
    xs = [rng.integers(-128, 128, shape).astype(np.int8) for _ in range(2)]
    check(litert, m, xs, "litert-xnnpack")
    data = _run(m, xs, "litert-xnnpack").op_data[0]
    assert data.arithmetic is None or data.arithmetic.executor != "XNNPACK delegate"


def test_rank7_leaky_relu_not_delegated(litert):
    shape = (1, 2, 1, 2, 2, 2, 16)
    x = np.random.default_rng(1).integers(-128, 128, shape).astype(np.int8)
    m = _unary(
        "LEAKY_RELU",
        tensor(shape, "int8", scale=0.1, zero_point=4),
        tensor(shape, "int8", scale=0.07, zero_point=-3),
        alpha=0.3,
    )
    check(litert, m, [x], "litert-xnnpack")
    assert differs_from_ref(m, [x], "litert-xnnpack") == 0


@pytest.mark.parametrize("op", ["ADD", "SUB", "MUL", "LEAKY_RELU", "QUANTIZE", "DEQUANTIZE"])
def test_tflm_int8(litert, op):
    """tflite-micro computes these ops as LiteRT's reference kernels (int8)."""
    rng = np.random.default_rng(13)
    v = _all8("int8")
    if op in ("ADD", "SUB", "MUL"):
        a, b = _pairs("int8")
        m = _binary(op, "int8", 0.05, 3, 0.11, -9, 0.13 if op != "MUL" else 0.02, 2, act="RELU")
        check(litert, m, [a, b], "tflm")
        return
    if op == "LEAKY_RELU":
        m = _unary(
            "LEAKY_RELU",
            tensor((256,), "int8", scale=0.1, zero_point=4),
            tensor((256,), "int8", scale=0.07, zero_point=-3),
            alpha=0.3,
        )
        check(litert, m, [v], "tflm")
    elif op == "QUANTIZE":
        m = _unary("QUANTIZE", tensor((67,), "float32"), tensor((67,), "int8", scale=0.25, zero_point=3))
        check(litert, m, [_tie_floats(0.25, 3, 67, rng)], "tflm")
        m = _unary(
            "QUANTIZE",
            tensor((256,), "int8", scale=0.3, zero_point=3),
            tensor((256,), "int8", scale=0.15, zero_point=-1),
        )
        check(litert, m, [v], "tflm")
    else:
        m = _unary("DEQUANTIZE", tensor((256,), "int8", scale=0.0213, zero_point=7), tensor((256,), "float32"))
        check(litert, m, [v], "tflm")


_DRAWN = [
    (op, dt)
    for op in ("ADD", "SUB", "MUL", "LEAKY_RELU", "QUANTIZE", "DEQUANTIZE")
    for dt in ("int8", "uint8", "int16", "float32")
    if not (op == "DEQUANTIZE" and dt == "float32")
]


@pytest.mark.parametrize("profile", NON_REF)
@pytest.mark.parametrize("op,dt", _DRAWN)
def test_drawn_models_match_each_runtime(litert, profile, op, dt):
    """Models drawn by refquant.strategies: refquant under the profile equals the runtime, or refuses by name."""
    from refquant.strategies import op_models

    @settings(max_examples=15, database=None)
    @given(case=op_models(op, dt))
    def drawn(case):
        inputs = [np.asarray(x) for x in case.inputs]
        try:
            _run(case.model, inputs, profile)
        except UnsupportedOpError as exc:
            assert profile in str(exc) or "litert" in str(exc) or "tflite-micro" in str(exc)
            return
        m = load_model(case.model)
        if any(m.main.tensors[o].dtype == "float32" for o in m.main.outputs) and op != "DEQUANTIZE":
            return  # float outputs of XNNPACK's float kernels are compared within a tolerance elsewhere
        check(litert, case.model, inputs, profile)

    drawn()


@pytest.mark.parametrize("dt", Q8)
def test_add_optimized_blocks(litert, dt):
    """The optimized ADD's NEON blocks round the inputs once and wrap the int16 output stage (ratio >= 200)."""
    rng = np.random.default_rng(31)
    a, b = _pairs(dt)
    diff = 0
    for ratio in (0.5, 0.37, 8, 200, 1000):
        so = 0.01
        m = _binary("ADD", dt, so * ratio, _zp(rng, dt), so * ratio / 3, _zp(rng, dt), so, _zp(rng, dt))
        check(litert, m, [a, b], "litert-optimized")
        diff += differs_from_ref(m, [a, b], "litert-optimized")
    assert diff > 0


@pytest.mark.parametrize("dt", Q8)
def test_add_optimized_tails_and_broadcasts(litert, dt):
    rng = np.random.default_rng(32)
    v = _all8(dt)
    shapes = [((n,), (n,)) for n in (7, 8, 9, 17, 33, 40)]
    shapes += [((n,), (1,)) for n in (9, 17, 33)] + [((1,), (17,))]
    shapes += [((3, 17), (1, 17)), ((3, 17), (3, 1)), ((2, 9), (1, 9)), ((5, 3), (5, 1))]
    for ratio in (0.5, 300):
        for sha, shb in shapes:
            so = 0.01
            m = _binary("ADD", dt, so * ratio, _zp(rng, dt), so * ratio / 3, _zp(rng, dt), so, _zp(rng, dt), sha, shb)
            for profile in ("litert-optimized", "litert-xnnpack"):
                check(litert, m, [rng.choice(v, sha), rng.choice(v, shb)], profile)
