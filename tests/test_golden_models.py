"""Every golden model: refquant's outputs and every intermediate tensor equal LiteRT BUILTIN_REF's.

Integer tensors must be identical. Float tensors (float models, and the float ends of quantized
models) are compared with a tolerance relative to the tensor's magnitude:
``|refquant - litert| <= FLOAT_RTOL * max|litert| + FLOAT_ATOL``. Justification: refquant's float
kernels accumulate in float64 BLAS or in a different order than LiteRT's sequential float32 loops;
float32 rounding (eps = 1.2e-7) over accumulation lengths up to ~10^3 and ~10^2 layers stays far
below 1e-4 of a tensor's range, while any real kernel bug (wrong tap, wrong padding, wrong
activation) shows up as errors of order 1e-2 of the range or more.
"""

from __future__ import annotations

import numpy as np
import pytest

import refquant
from tests.golden_models import manifest, model_path, vectors_path
from tests.opcheck import assert_equal_arrays

FLOAT_RTOL = 1e-4
FLOAT_ATOL = 1e-6

MODELS = [m for m in manifest()["models"] if model_path(m["name"]).exists() and vectors_path(m["name"]).exists()]


def _inputs(vec) -> list[np.ndarray]:
    keys = sorted((k for k in vec.files if k.startswith("input_")), key=lambda s: int(s.split("_")[1]))
    return [vec[k] for k in keys]


def _close(name: str, expected: np.ndarray, actual: np.ndarray) -> None:
    assert expected.shape == actual.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    err = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    bound = FLOAT_RTOL * scale + FLOAT_ATOL
    assert float(err.max(initial=0.0)) <= bound, f"{name}: max error {err.max():.3g} > {bound:.3g}"


@pytest.mark.parametrize("entry", MODELS, ids=[m["name"] for m in MODELS])
def test_golden_model_bit_exact(entry):
    name = entry["name"]
    vec = np.load(vectors_path(name))
    it = refquant.Interpreter(model_path=model_path(name))
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), _inputs(vec)):
        it.set_tensor(d["index"], x)
    it.invoke()
    trace = it.trace
    sg = trace.model.main
    checked = 0
    for key in vec.files:
        if not key.startswith("tensor_"):
            continue
        idx = int(key.split("_")[1])
        t = sg.tensors[idx]
        if t.is_constant:
            continue
        expected = vec[key]
        actual = trace.values[idx]
        label = f"{name}: tensor {idx} {t.name!r} (op {trace.producer(idx)})"
        if expected.dtype.kind == "f":
            _close(label, expected, actual)
        else:
            assert_equal_arrays(label, expected, actual)
        checked += 1
    for k, idx in enumerate(sg.outputs):
        expected = vec[f"output_{k}"]
        if expected.dtype.kind == "f":
            _close(f"{name}: output {k}", expected, trace.values[idx])
        else:
            assert_equal_arrays(f"{name}: output {k}", expected, trace.values[idx])
    assert checked > 0


def test_float_shadow_runs_every_quantized_golden_model():
    """The shadow of every quantized golden model prepares and runs (0-d constants included)."""
    from refquant.shadow import float_shadow

    for entry in MODELS:
        model = refquant.load_model(model_path(entry["name"]))
        if not any(t.quantization is not None for t in model.main.tensors):
            continue
        shadow = float_shadow(model)
        assert all(t.quantization is None or t.dtype == "float32" for t in shadow.main.tensors if t.dtype != "int32")
        it = refquant.Interpreter(model=shadow)
        it.allocate_tensors()
        rng = np.random.default_rng(0)
        for d in it.get_input_details():
            it.set_tensor(d["index"], rng.normal(0, 1, tuple(d["shape"])).astype(np.float32))
        it.invoke()
        out = it.get_tensor(it.get_output_details()[0]["index"])
        assert np.isfinite(out).all(), entry["name"]
