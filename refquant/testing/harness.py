"""Differential testing of a backend against refquant: :class:`Case` and :func:`assert_matches_reference`.

A *backend* is any callable ``run(model_bytes, inputs) -> list of arrays`` that executes a .tflite
model on the given input arrays (in model input order) and returns the output arrays (in model output
order): an accelerator's driver, a compiler's simulator, firmware under test, or another runtime.
refquant computes the reference for the same model and inputs, and :func:`assert_matches_reference`
compares the two in the manner of ``numpy.testing``::

    from refquant.testing import assert_matches_reference
    assert_matches_reference(my_backend, case)          # case from refquant.strategies.op_models(...)

A mismatch raises ``AssertionError`` naming the output, the number and share of differing elements,
the largest difference in LSB (quantization steps; ULPs for float outputs), the first differing
index, and a ``refquant trace`` command line that explains how refquant computed that element. The
model and its inputs are written to a directory (content-addressed, so Hypothesis' repeated calls
while shrinking reuse it) so that command runs as printed.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "Backend",
    "Case",
    "run_reference",
    "assert_matches_reference",
    "litert_backend",
    "MISMATCH_DIR_ENV",
]

#: ``run(model_bytes, inputs) -> outputs``: the interface a backend under test implements.
Backend = Callable[[bytes, list[np.ndarray]], Sequence[np.ndarray]]

#: Environment variable naming the directory where mismatching cases are written
#: (default: ``<system temp dir>/refquant-mismatches``).
MISMATCH_DIR_ENV = "REFQUANT_MISMATCH_DIR"


@dataclass(frozen=True, repr=False, eq=False)
class Case:
    """One test case: a .tflite model, its inputs and a readable summary.

    ``model`` holds the .tflite bytes; ``inputs`` one array per model input, in model input order
    (the dtype and shape of each input tensor); ``description`` a human-readable summary of the
    operators, tensors, quantization parameters and options (and of the values of small inputs).
    ``repr(case)`` is the description, so a Hypothesis falsifying example reads as the model it is.
    Cases compare by identity (their arrays make value equality ambiguous).
    """

    model: bytes
    inputs: list[np.ndarray] = field(default_factory=list)
    description: str = ""

    def __repr__(self) -> str:
        return f"Case({self.description})" if self.description else f"Case(<{len(self.model)} bytes>)"

    def save(self, directory: str | os.PathLike) -> tuple[Path, Path]:
        """Write ``model.tflite`` and ``inputs.npz`` into ``directory`` (created); return both paths.

        ``inputs.npz`` holds ``input_0``, ``input_1``, ... each with a leading sample axis of length 1,
        the layout ``refquant trace --input`` and ``refquant golden --input`` read.
        """
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        model_path = d / "model.tflite"
        data_path = d / "inputs.npz"
        model_path.write_bytes(bytes(self.model))
        np.savez(data_path, **{f"input_{i}": np.asarray(x)[None] for i, x in enumerate(self.inputs)})
        return model_path, data_path

    def digest(self) -> str:
        """A short SHA-256 digest of the model and the inputs (names the directory a mismatch is saved in)."""
        h = hashlib.sha256(bytes(self.model))
        for x in self.inputs:
            a = np.ascontiguousarray(x)
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(a.tobytes())
        return h.hexdigest()[:16]


def run_reference(
    model: bytes,
    inputs: Sequence[np.ndarray],
    *,
    rounding: str = "double",
    float_accumulation: str = "float64",
    arithmetic: str = "litert-ref",
) -> list[np.ndarray]:
    """Run ``model`` on ``inputs`` with refquant; return the outputs in model output order.

    ``rounding`` is ``"double"`` (LiteRT's default build) or ``"single"`` (``TFLITE_SINGLE_ROUNDING``);
    ``float_accumulation`` ``"float64"`` (default) or ``"sequential"`` (LiteRT BUILTIN_REF's float32 loop:
    use it to compare a float backend bit for bit with LiteRT's reference kernels); ``arithmetic`` the
    runtime whose integer arithmetic is reproduced (:data:`refquant.arithmetic.PROFILES`).
    Raises :class:`refquant.RefquantError` when refquant cannot run the model (an
    :class:`refquant.UnsupportedOpError` naming the runtime where it does not reproduce it).
    """
    from ..interpreter import Interpreter

    it = Interpreter(
        model_content=bytes(model), rounding=rounding, float_accumulation=float_accumulation, arithmetic=arithmetic
    )
    for d, x in zip(it.get_input_details(), inputs):
        if tuple(d["shape"]) != tuple(np.shape(x)):
            it.resize_tensor_input(d["index"], np.shape(x))
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), inputs):
        it.set_tensor(d["index"], np.asarray(x))
    it.invoke()
    return [it.get_tensor(d["index"]) for d in it.get_output_details()]


def litert_backend(
    worker: object | None = None, *, resolver: str = "BUILTIN_REF", profile: str | None = None
) -> Backend:
    """A backend running models in LiteRT (``ai-edge-litert``), e.g. to try the harness without hardware.

    ``worker``: a :class:`refquant.testing.LiteRTWorker` (a separate process, safe against LiteRT
    aborting); ``None`` runs LiteRT in this process. ``profile``: run the runtime of that arithmetic
    profile instead of ``resolver`` (:func:`refquant.testing.oracle.run_profile`; ``"tflm"`` runs
    tflite-micro). A model the runtime rejects raises ``RuntimeError``.
    """
    from .oracle import run_litert, run_profile

    def run(model: bytes, inputs: list[np.ndarray]) -> list[np.ndarray]:
        if worker is not None:
            res = worker.run(model, inputs, all_tensors=False, resolver=resolver, profile=profile)  # type: ignore[attr-defined]
        elif profile is not None:
            res = run_profile(model, inputs, profile)
        else:
            res = run_litert(model, inputs, all_tensors=False, resolver=resolver)
        if res.status != "ok":
            raise RuntimeError(f"LiteRT {res.status} the model: {res.message}")
        return res.outputs

    return run


# ---------------------------------------------------------------------------------------------
# Comparison


def _float_ulps(a: np.ndarray) -> np.ndarray:
    """float32 values mapped to int64 so that adjacent floats differ by 1 (+0 and -0 both map to 0)."""
    bits = np.asarray(a, dtype=np.float32).view(np.int32).astype(np.int64)
    return np.where(bits < 0, -(bits & 0x7FFFFFFF), bits)


def _differences(expected: np.ndarray, actual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(absolute difference per element in LSB or ULP as float64, NaN-aware "differs" mask)."""
    if expected.dtype.kind == "f" or actual.dtype.kind == "f":
        e = np.asarray(expected, np.float32)
        a = np.asarray(actual, np.float32)
        e_nan, a_nan = np.isnan(e), np.isnan(a)
        diff = np.abs(_float_ulps(a) - _float_ulps(e)).astype(np.float64)
        diff = np.where(e_nan | a_nan, np.where(e_nan & a_nan, 0.0, np.inf), diff)
        return diff, diff != 0
    diff = np.abs(actual.astype(np.int64) - expected.astype(np.int64)).astype(np.float64)
    return diff, diff != 0


def _fmt_value(v: object) -> str:
    if isinstance(v, (np.floating, float)):
        return repr(float(v))
    if isinstance(v, np.generic):
        return repr(v.item())
    return repr(v)


def _tensor_label(model: object, k: int) -> tuple[str, int | None]:
    """('output k: tensor i 'name' dtype[shape] (quant)', tensor index) for output ``k``."""
    try:
        sg = model.main  # type: ignore[attr-defined]
        idx = sg.outputs[k]
        t = sg.tensors[idx]
    except (AttributeError, IndexError):
        return f"output {k}", None
    q = ""
    if t.quantization is not None and t.quantization.scale.size:
        s = t.quantization.scale
        z = t.quantization.zero_point
        q = f" (scale {float(s[0]):.7g}, zero point {int(z[0])})" if s.size == 1 else " (per-channel)"
    return f"output {k}: tensor {idx} {t.name!r} {t.dtype}{list(t.shape)}{q}", idx


def _mismatch_dir(case: Case) -> Path:
    root = os.environ.get(MISMATCH_DIR_ENV) or os.path.join(tempfile.gettempdir(), "refquant-mismatches")
    return Path(root) / case.digest()


def assert_matches_reference(
    run: Backend,
    case: Case,
    *,
    tolerance: float = 0,
    atol: float = 0.0,
    rounding: str = "double",
    float_accumulation: str = "float64",
    arithmetic: str = "litert-ref",
) -> None:
    """Run ``case`` on the backend ``run`` and on refquant; raise ``AssertionError`` where they differ.

    ``run(model_bytes, inputs) -> list of arrays`` gets the case's model bytes and copies of its
    inputs, and returns the outputs in model output order. Each output must have the reference's
    shape, and values equal within ``tolerance`` (default 0: bit-exact): a number of quantization
    steps (LSB) for integer outputs, of units in the last place (ULP) for float outputs; NaN equals
    NaN. ``atol`` (float outputs only) also accepts elements within that absolute difference, for
    values near 0 where a few ULPs are very little. Dtypes are not compared, values are (in a wide type, so int8 never wraps): an int32 array
    holding the right int8 values passes, a float array for an integer output does not.
    ``rounding`` selects refquant's requantization rounding (``"double"``: LiteRT's default build);
    ``float_accumulation`` how refquant sums float32 conv/FC/matmul products (``"float64"``, or
    ``"sequential"`` for LiteRT BUILTIN_REF's float32 loop, bit for bit); ``arithmetic`` which runtime's
    integer arithmetic refquant reproduces (:data:`refquant.arithmetic.PROFILES`: compare a backend
    with LiteRT's default XNNPACK interpreter, its optimized kernels or tflite-micro instead of the
    reference kernels; an unknown name is an :class:`refquant.InputError`).

    The message follows ``numpy.testing``: "Mismatched elements: k / n (p%)", the largest difference
    in LSB, the first differing index with both values, the case description, and the
    ``refquant trace MODEL --input DATA.npz --tensor T --element i,j,k`` command for that element
    (model and inputs are written to ``$REFQUANT_MISMATCH_DIR`` or the system temp directory).
    Errors refquant raises for the case itself (:class:`refquant.RefquantError`) propagate.
    """
    if not isinstance(case, Case):
        raise TypeError(f"case must be a refquant.testing.Case, got {type(case).__name__}")
    if tolerance < 0 or not np.isfinite(tolerance):
        raise ValueError(f"tolerance must be a finite number >= 0, got {tolerance!r}")
    if atol < 0 or not np.isfinite(atol):
        raise ValueError(f"atol must be a finite number >= 0, got {atol!r}")
    from ..arithmetic import get_profile

    get_profile(arithmetic)
    expected = run_reference(
        case.model, case.inputs, rounding=rounding, float_accumulation=float_accumulation, arithmetic=arithmetic
    )
    got = run(bytes(case.model), [np.array(x, copy=True) for x in case.inputs])
    if got is None or isinstance(got, np.ndarray) or not isinstance(got, Sequence):
        raise AssertionError(
            f"the backend returned {type(got).__name__}; expected a list of {len(expected)} output array(s)"
            f"\n\nCase: {case.description}"
        )
    got = [np.asarray(g) for g in got]
    problems: list[str] = []
    first: tuple[int | None, tuple[int, ...]] | None = None
    model = None
    try:
        from ..tflite.reader import load_model

        model = load_model(bytes(case.model))
    except Exception:  # noqa: BLE001 - only used for labels; the reference run already read the model
        model = None
    if len(got) != len(expected):
        problems.append(f"the backend returned {len(got)} output(s); the model has {len(expected)}")
    for k, (e, a) in enumerate(zip(expected, got)):
        label, tensor = _tensor_label(model, k)
        unit = "ULP" if e.dtype.kind == "f" else "LSB"
        if a.shape != e.shape:
            problems.append(f"{label}\nshape {list(a.shape)} differs from the reference shape {list(e.shape)}")
            continue
        if (e.dtype.kind == "f") != (a.dtype.kind == "f"):
            problems.append(f"{label}\ndtype {a.dtype} where the reference is {e.dtype}")
            continue
        diff, differs = _differences(e, a)
        bad = diff > tolerance
        if atol and e.dtype.kind == "f":
            with np.errstate(invalid="ignore", over="ignore"):
                close = np.abs(a.astype(np.float64) - e.astype(np.float64)) <= atol
            bad &= ~close
        k_bad = int(bad.sum())
        if not k_bad:
            continue
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        worst = float(diff[bad].max())
        worst_at = tuple(int(i) for i in np.unravel_index(int(np.argmax(np.where(bad, diff, -1.0))), e.shape))
        worst_txt = "inf (NaN or infinity where the other is not)" if worst == np.inf else f"{worst:.0f}"
        lines = [
            label,
            f"Mismatched elements: {k_bad} / {e.size} ({100.0 * k_bad / max(e.size, 1):.3g}%)",
            f"Max absolute difference: {worst_txt} {unit} (at index {worst_at})",
            f"First differing index {idx}: reference {_fmt_value(e[idx])}, backend {_fmt_value(a[idx])}",
        ]
        if tolerance or atol:
            within = f"tolerance {tolerance:g} {unit}" + (f", atol {atol:g}" if atol and unit == "ULP" else "")
            lines.append(f"({int(differs.sum())} element(s) differ at all; {within})")
        problems.append("\n".join(lines))
        if first is None:
            first = (tensor, idx)
    if not problems:
        return
    text = [
        f"the backend does not match refquant's reference (tolerance {tolerance:g}; rounding {rounding!r}"
        + (f"; arithmetic {arithmetic!r})" if arithmetic != "litert-ref" else ")"),
        "",
        *("\n\n".join(problems).splitlines()),
        "",
        f"Case: {case.description}" if case.description else "Case: (no description)",
    ]
    try:
        model_path, data_path = case.save(_mismatch_dir(case))
    except OSError as exc:  # a read-only temp dir must not hide the mismatch itself
        text.append(f"(could not write the model and inputs: {exc})")
    else:
        text += ["", f"Model and inputs written to {model_path.parent}{os.sep}: {model_path.name}, {data_path.name}"]
        if first is not None and first[0] is not None:
            tensor, idx = first
            cmd = ["refquant", "trace", str(model_path), "--input", str(data_path), "--tensor", str(tensor)]
            if idx:
                cmd += ["--element", ",".join(str(i) for i in idx)]
            if arithmetic != "litert-ref":
                cmd += ["--arithmetic", arithmetic]
            if rounding != "double":
                cmd += ["--rounding", rounding]
            if float_accumulation != "float64":
                cmd += ["--float-accumulation", float_accumulation]
            text += ["Explain refquant's value of the first differing element:", "  " + shlex.join(cmd)]
    raise AssertionError("\n".join(text))
