"""Differential checking of refquant against the LiteRT oracle, shared by the op tests."""

from __future__ import annotations

import numpy as np

import refquant
from refquant.errors import RefquantError
from refquant.testing import LiteRTWorker


def run_refquant(model: bytes, inputs: list[np.ndarray], rounding: str = "double") -> refquant.Trace:
    """Run ``model`` with refquant; return the trace (every tensor of the run)."""
    it = refquant.Interpreter(model_content=model, rounding=rounding)
    for d, x in zip(it.get_input_details(), inputs):
        if tuple(d["shape"]) != tuple(np.shape(x)):
            it.resize_tensor_input(d["index"], np.shape(x))
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), inputs):
        it.set_tensor(d["index"], np.asarray(x))
    it.invoke()
    return it.trace


def mismatch_report(name: str, expected: np.ndarray, actual: np.ndarray) -> str:
    """numpy.testing-style description of where two integer arrays differ (wide type, no wrap)."""
    if expected.shape != actual.shape:
        return f"{name}: shape {actual.shape} != expected {expected.shape}"
    if expected.dtype.kind in "iub":
        diff = actual.astype(np.int64) - expected.astype(np.int64)
        bad = diff != 0
    else:
        diff = actual.astype(np.float64) - expected.astype(np.float64)
        bad = ~((actual == expected) | (np.isnan(actual) & np.isnan(expected)))
    k = int(bad.sum())
    first = tuple(int(v) for v in np.argwhere(bad)[0]) if k else ()
    return (
        f"{name}: Mismatched elements: {k} / {expected.size} ({100.0 * k / max(expected.size, 1):.3g}%), "
        f"max abs difference {np.abs(diff[bad]).max() if k else 0}, first at {first}: "
        f"expected {expected[first] if k else ''}, got {actual[first] if k else ''}"
    )


def assert_equal_arrays(name: str, expected: np.ndarray, actual: np.ndarray) -> None:
    """Bit-exact equality (NaN equal to NaN for float arrays); never a tolerance."""
    expected = np.asarray(expected)
    actual = np.asarray(actual)
    ok = expected.shape == actual.shape and expected.dtype == actual.dtype
    if ok:
        if expected.dtype.kind == "f":
            ok = bool(np.all((expected == actual) | (np.isnan(expected) & np.isnan(actual))))
        else:
            ok = bool(np.array_equal(expected, actual))
    if not ok:
        if expected.dtype != actual.dtype:
            raise AssertionError(f"{name}: dtype {actual.dtype} != expected {expected.dtype}")
        raise AssertionError(mismatch_report(name, expected, actual))


def check_against_litert(
    litert: LiteRTWorker,
    model: bytes,
    inputs: list[np.ndarray],
    *,
    intermediates: bool = True,
    float_tolerance: float | None = None,
) -> str:
    """Run ``model`` in LiteRT BUILTIN_REF and in refquant and require identical results.

    Where LiteRT rejects the model (or aborts its process), refquant must raise a RefquantError
    too. Returns LiteRT's status ("ok", "rejected", "aborted"). Integer tensors must be equal;
    float tensors equal too unless ``float_tolerance`` (relative, for float graphs) is given.
    """
    res = litert.run(model, inputs)
    if res.status != "ok":
        try:
            run_refquant(model, inputs)
        except RefquantError:
            return res.status
        raise AssertionError(f"LiteRT {res.status} this model ({res.message}) but refquant ran it")
    trace = run_refquant(model, inputs)
    sg = trace.model.subgraphs[0]
    for k, (d_exp, idx) in enumerate(zip(res.outputs, sg.outputs)):
        _compare(f"output {k} (tensor {idx} {sg.tensors[idx].name!r})", d_exp, trace.values[idx], float_tolerance)
    if intermediates:
        for idx, exp in res.tensors.items():
            if idx in trace.values and sg.tensors[idx].data is None:
                _compare(f"tensor {idx} {sg.tensors[idx].name!r}", exp, trace.values[idx], float_tolerance)
    return "ok"


def _compare(name: str, expected: np.ndarray, actual: np.ndarray, float_tolerance: float | None) -> None:
    if float_tolerance is not None and np.asarray(expected).dtype.kind == "f":
        np.testing.assert_allclose(actual, expected, rtol=float_tolerance, atol=float_tolerance, err_msg=name)
    else:
        assert_equal_arrays(name, expected, actual)
