"""Differential checking of refquant against the LiteRT oracle, shared by the op tests."""

from __future__ import annotations

import numpy as np

import refquant
from refquant.errors import RefquantError
from refquant.testing import LiteRTWorker

#: Bound of the default float64-accumulation run against LiteRT's float32 loop, relative to the
#: tensor's largest magnitude (plus FLOAT64_ATOL); see ``check_against_litert``.
FLOAT64_RTOL = 1e-5
FLOAT64_ATOL = 1e-6


def run_refquant(
    model: bytes, inputs: list[np.ndarray], rounding: str = "double", float_accumulation: str = "sequential"
) -> refquant.Trace:
    """Run ``model`` with refquant; return the trace (every tensor of the run).

    The default ``float_accumulation="sequential"`` is LiteRT BUILTIN_REF's float32 loop (bit-exact).
    """
    it = refquant.Interpreter(model_content=model, rounding=rounding, float_accumulation=float_accumulation)
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
    float64: bool = True,
) -> str:
    """Run ``model`` in LiteRT BUILTIN_REF and in refquant and require identical results.

    Where LiteRT rejects the model (or aborts its process), refquant must raise a RefquantError
    too. Returns LiteRT's status ("ok", "rejected", "aborted"). Integer tensors must be equal;
    float tensors equal too unless ``float_tolerance`` (relative, for float graphs) is given: that is
    refquant with ``float_accumulation="sequential"``. Models with float tensors run a second time
    with refquant's default float64 accumulation, whose float tensors must agree with LiteRT's within
    ``FLOAT64_RTOL * max|litert| + FLOAT64_ATOL`` (the float32 loop's own rounding error, about
    ``sqrt(K) * 2^-24`` of the magnitudes summed, is far below it for the test shapes, while a wrong tap
    or term is not), same NaN and infinity positions, and integer tensors equal. ``float64=False`` skips
    that run (inputs whose float32 products or partial sums overflow, where float64 sums stay finite).
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
    if float64 and any(t.dtype == "float32" for t in sg.tensors):
        trace64 = run_refquant(model, inputs, float_accumulation="float64")
        for k, (d_exp, idx) in enumerate(zip(res.outputs, sg.outputs)):
            name = f"float64 run, output {k} (tensor {idx} {sg.tensors[idx].name!r})"
            _compare_float64(name, d_exp, trace64.values[idx], float_tolerance)
    return "ok"


def _compare_float64(name: str, expected: np.ndarray, actual: np.ndarray, float_tolerance: float | None) -> None:
    expected, actual = np.asarray(expected), np.asarray(actual)
    if expected.dtype.kind != "f":
        assert_equal_arrays(name, expected, actual)
        return
    assert expected.shape == actual.shape and expected.dtype == actual.dtype, f"{name}: {actual.dtype}{actual.shape}"
    for what, f in (("NaN", np.isnan), ("+inf", np.isposinf), ("-inf", np.isneginf)):
        if not np.array_equal(f(expected), f(actual)):
            raise AssertionError(f"{name}: {what} positions differ\n{mismatch_report(name, expected, actual)}")
    fin = np.isfinite(expected)
    scale = float(np.abs(expected[fin]).max(initial=0.0))
    rtol = max(FLOAT64_RTOL, float_tolerance or 0.0)
    bound = rtol * scale + FLOAT64_ATOL
    err = float(np.abs(expected[fin].astype(np.float64) - actual[fin].astype(np.float64)).max(initial=0.0))
    if err > bound:
        raise AssertionError(f"{name}: max error {err:.3g} > {bound:.3g}\n{mismatch_report(name, expected, actual)}")


def _compare(name: str, expected: np.ndarray, actual: np.ndarray, float_tolerance: float | None) -> None:
    if float_tolerance is not None and np.asarray(expected).dtype.kind == "f":
        np.testing.assert_allclose(actual, expected, rtol=float_tolerance, atol=float_tolerance, err_msg=name)
    else:
        assert_equal_arrays(name, expected, actual)
