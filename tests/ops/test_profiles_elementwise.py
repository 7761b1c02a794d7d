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
from hypothesis import strategies as st

from refquant.engine import Engine
from refquant.errors import UnsupportedOpError
from refquant.testing import const, op_model, tensor
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
