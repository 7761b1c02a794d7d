"""Tensor-by-tensor comparison of two dumps: every difference counted, the first divergence named.

Integer tensors are compared in **LSB** (one integer step), exactly or within ``tolerance`` LSB.
Float tensors are compared in **real units**: ``|OTHER - REF|``, and that difference as a fraction of
the REF tensor's range (max - min of its finite values), which is what ``float_tolerance`` bounds;
the difference in ULP (float steps along the ordered float values) is extra detail. Graph order is
REF's manifest order (inputs, constants, then op outputs in execution order), so the first divergence
is the earliest tensor in the computation that differs beyond the tolerance, and within it the first
element in sample-major C order. A tensor that differs is also tried against storage mistakes (see
:mod:`refquant.diff.layout`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import InputError
from ..escape import shell_word, terminal
from .dump import Dump, DumpTensor, load_dump
from .layout import layout_hint

__all__ = [
    "differences",
    "real_differences",
    "tensor_range",
    "diff_dumps",
    "format_diff",
    "trace_command",
    "json_value",
    "count_value",
    "check_tolerance",
    "format_number",
    "HISTOGRAM_BUCKETS",
]

#: Histogram buckets of |difference| (LSB for integer tensors, ULP for float tensors): 0, (0, 1], (1, 2], more.
HISTOGRAM_BUCKETS = ("0", "1", "2", "3+")


def _ordered_float(a: np.ndarray) -> np.ndarray:
    """Float bits mapped to integers that count float steps (ULPs) monotonically; -0.0 == +0.0."""
    bits = {2: np.int16, 4: np.int32, 8: np.int64}[a.dtype.itemsize]
    i = np.ascontiguousarray(a).view(bits).astype(np.int64)
    mag = i & np.int64(np.iinfo(bits).max)
    return np.where(i < 0, -mag, mag)


def differences(ref: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, str]:
    """``|other - ref|`` per element (float64) and its unit: ``"LSB"`` (integer ref) or ``"ULP"`` (float ref).

    Integer tensors are subtracted in int64 (no wrap). Float tensors are compared in ULPs of the REF
    dtype (OTHER cast to it first); NaN equals NaN, NaN against a number is an infinite difference.
    """
    if ref.dtype.kind in "iub":
        if other.dtype.kind in "iub":
            return np.abs(other.astype(np.int64) - ref.astype(np.int64)).astype(np.float64), "LSB"
        return np.abs(other.astype(np.float64) - ref.astype(np.float64)), "LSB"
    o = other.astype(ref.dtype)
    d = np.abs(_ordered_float(o) - _ordered_float(ref)).astype(np.float64)
    rn, on = np.isnan(ref), np.isnan(o)
    d = np.where(rn & on, 0.0, np.where(rn | on, np.inf, d))
    return d, "ULP"


def real_differences(ref: np.ndarray, other: np.ndarray) -> np.ndarray:
    """``|other - ref|`` in float64 real units; equal values (infinities, NaN against NaN) give 0, NaN against
    a number gives inf."""
    r, o = ref.astype(np.float64), other.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        d = np.abs(o - r)
    d = np.where(r == o, 0.0, d)
    rn, on = np.isnan(r), np.isnan(o)
    return np.where(rn & on, 0.0, np.where(rn | on | np.isnan(d), np.inf, d))


def tensor_range(ref: np.ndarray) -> float:
    """The span float differences are measured against: max - min of the finite values (max |v| when all
    are equal, 1.0 for an all-zero or non-finite tensor)."""
    v = ref[np.isfinite(ref)].astype(np.float64) if ref.size else np.zeros(0)
    if not v.size:
        return 1.0
    span = float(v.max() - v.min())
    if span > 0 and math.isfinite(span):
        return span
    top = float(np.abs(v).max())
    return top if top > 0 and math.isfinite(top) else 1.0


def _histogram(d: np.ndarray) -> dict[str, int]:
    zero = int(np.count_nonzero(d == 0))
    one = int(np.count_nonzero((d > 0) & (d <= 1)))
    two = int(np.count_nonzero((d > 1) & (d <= 2)))
    return {"0": zero, "1": one, "2": two, "3+": int(d.size) - zero - one - two}


def json_value(v: Any) -> Any:
    """A NumPy scalar as a JSON-able Python value (non-finite floats as the strings "nan", "inf", "-inf")."""
    v = v.item() if hasattr(v, "item") else v
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return v


def count_value(v: float) -> int | float | str:
    """A difference as JSON: an int when integral (LSB/ULP counts), else a float (non-finite as a string)."""
    if math.isfinite(v) and float(v).is_integer():
        return int(v)
    return json_value(float(v))


def _real_scale(t: DumpTensor, shape: tuple[int, ...]) -> np.ndarray | float | None:
    if not t.scale:
        return None
    if len(t.scale) == 1 or t.quantized_dimension is None:
        return t.scale[0]
    ax = t.quantized_dimension
    if not 0 <= ax < len(shape) or shape[ax] != len(t.scale):
        return max(t.scale)
    bshape = [1] * len(shape)
    bshape[ax] = len(t.scale)
    return np.asarray(t.scale, np.float64).reshape(bshape)


def _compare_tensor(
    ref_dump: Dump, r: DumpTensor, other_dump: Dump, o: DumpTensor, tol: float, float_tol: float
) -> dict[str, Any]:
    ref = np.asarray(ref_dump.load(r))
    oth = np.asarray(other_dump.load(o))
    shape = tuple(ref.shape[1:]) if r.per_sample else tuple(ref.shape)
    if not r.per_sample:
        ref = ref[None]
    if oth.ndim == len(shape) and tuple(oth.shape) == shape:
        oth = oth[None]
    res: dict[str, Any] = {}
    if oth.ndim < 1 or oth.ndim != len(shape) + 1 or tuple(oth.shape[1:]) != shape:
        got = list(oth.shape[1:]) if oth.ndim == len(shape) + 1 else list(oth.shape)
        res.update(status="shape_mismatch", expected_shape=list(shape), actual_shape=got)
        if oth.ndim == len(shape) + 1 and oth.shape[0] >= 1:
            hint = layout_hint(ref[0], oth[0], zero_point=r.zero_point, constant=not r.per_sample)
            if hint is not None:
                res["layout_hint"] = hint
        return res
    n = min(ref.shape[0], oth.shape[0]) if r.per_sample else 1
    ref, oth = ref[:n], oth[:n]
    d, unit = differences(ref, oth)
    if unit == "ULP":
        real = real_differences(ref, oth)
        span = tensor_range(ref)
        rel = real / span
        bad = rel > float_tol
        worst = float(real.max(initial=0.0))
        res.update(
            status="equal" if not np.any(real) else ("mismatch" if bad.any() else "within_tolerance"),
            samples_compared=int(n) if r.per_sample else None,
            mismatched=int(np.count_nonzero(bad)),
            total=int(d.size),
            unit="real",
            max_abs_diff=json_value(worst),
            range=json_value(span),
            max_rel_range=json_value(float(rel.max(initial=0.0))),
            max_ulp=count_value(float(d.max(initial=0.0))),
            histogram_unit="ULP",
            histogram=_histogram(d),
        )
    else:
        bad = d > tol
        res.update(
            status="equal" if not np.any(d) else ("mismatch" if bad.any() else "within_tolerance"),
            samples_compared=int(n) if r.per_sample else None,
            mismatched=int(np.count_nonzero(bad)),
            total=int(d.size),
            unit=unit,
            max_abs_diff=count_value(float(d.max(initial=0.0))),
            histogram_unit=unit,
            histogram=_histogram(d),
        )
        scale = _real_scale(r, shape)
        if scale is not None:
            res["max_abs_diff_real"] = json_value(float(np.max(d * scale, initial=0.0)))
    if res["mismatched"]:
        flat = int(np.argmax(bad.reshape(-1)))
        pos = tuple(int(p) for p in np.unravel_index(flat, bad.shape))
        res["first_mismatch"] = {
            "sample": pos[0] if r.per_sample else None,
            "element": list(pos[1:]),
            "expected": json_value(ref[pos]),
            "actual": json_value(oth[pos]),
            "difference": json_value(float(real[pos])) if unit == "ULP" else count_value(float(d[pos])),
        }
        if unit == "ULP":
            res["first_mismatch"]["ulp"] = count_value(float(d[pos]))
        hint = layout_hint(ref[0], oth[0], zero_point=r.zero_point, constant=not r.per_sample)
        if hint is not None:
            res["layout_hint"] = hint
    return res


def _graph_key(item: tuple[int, DumpTensor]) -> tuple[int, int]:
    pos, t = item
    return (t.op_index if t.op_index >= 0 else -1, pos)


def check_tolerance(v: Any, what: str) -> float:
    """``v`` as a float when it is a finite number >= 0, else an :class:`InputError` naming ``what``."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (v >= 0 and math.isfinite(v)):
        raise InputError(f"{what} must be a finite number >= 0, got {v!r}")
    return float(v)


def diff_dumps(
    ref_dir: str | os.PathLike,
    other_dir: str | os.PathLike,
    tolerance: float = 0,
    float_tolerance: float = 0,
) -> dict[str, Any]:
    """Compare two dumps; return the JSON document ``refquant diff --json`` prints (docs/diff_json.md).

    ``tolerance``: allowed |difference| in LSB for integer tensors; ``float_tolerance``: allowed
    |difference| of float tensors as a fraction of the REF tensor's range. Raises :class:`InputError`
    for unreadable dumps, for dumps of different models (their manifests' ``model_sha256`` differ) and
    when no tensor of OTHER matches REF.
    """
    tol = check_tolerance(tolerance, "tolerance")
    ftol = check_tolerance(float_tolerance, "float tolerance")
    ref = load_dump(ref_dir)
    other = load_dump(other_dir)
    a, b = ref.manifest.get("model_sha256"), other.manifest.get("model_sha256")
    if isinstance(a, str) and isinstance(b, str) and a != b:
        raise InputError(
            f"the dumps come from different models (model_sha256 {terminal(a)[:16]}... vs {terminal(b)[:16]}...): "
            "nothing to compare"
        )
    o_idx, o_name = other.by_index(), other.by_name()
    rows: list[dict[str, Any]] = []
    missing: list[dict[str, Any]] = []
    matched_other: set[int] = set()
    first: dict[str, Any] | None = None
    for _, r in sorted(enumerate(ref.tensors), key=_graph_key):
        o = o_idx.get(r.index) if r.index is not None else None
        if o is None and r.name is not None:
            o = o_name.get(r.name)
        base = {"tensor_index": r.index, "name": r.name, "op_index": r.op_index, "opcode": r.opcode}
        if o is None:
            missing.append(base)
            rows.append({**base, "status": "missing"})
            continue
        matched_other.add(id(o))
        row = {**base, **_compare_tensor(ref, r, other, o, tol, ftol)}
        rows.append(row)
        if first is None and row["status"] in ("mismatch", "shape_mismatch"):
            if row["status"] == "mismatch":
                first = {**base, **row["first_mismatch"], "unit": row["unit"], "reason": "value"}
            else:
                first = {
                    **base,
                    "sample": None,
                    "element": None,
                    "expected": None,
                    "actual": None,
                    "reason": "shape",
                    "expected_shape": row["expected_shape"],
                    "actual_shape": row["actual_shape"],
                }
            if "layout_hint" in row:
                first["layout_hint"] = row["layout_hint"]
    compared = [row for row in rows if row["status"] != "missing"]
    if not compared:
        raise InputError(
            f"no tensor of {terminal(str(other.root))!r} matches one of {terminal(str(ref.root))!r} by index or "
            "name; nothing to compare"
        )
    extra = [{"tensor_index": t.index, "name": t.name} for t in other.tensors if id(t) not in matched_other]
    n_cmp = [row["samples_compared"] for row in compared if row.get("samples_compared") is not None]
    warnings = []
    for key, what in (
        ("input_sha256", "input data"),
        ("arithmetic", "arithmetic profiles"),
        ("rounding", "roundings"),
    ):
        a, b = ref.manifest.get(key), other.manifest.get(key)
        if a is not None and b is not None and a != b:
            warnings.append(f"the dumps come from different {what} ({key}: {a} vs {b})")
    if extra:
        warnings.append(f"OTHER has {len(extra)} tensor entr{'y' if len(extra) == 1 else 'ies'} REF does not hold")
    return {
        "ref": str(ref.root),
        "other": str(other.root),
        "model": ref.manifest.get("model"),
        "input": ref.manifest.get("input"),
        "arithmetic": ref.manifest.get("arithmetic", "litert-ref"),
        "rounding": ref.manifest.get("rounding", "double"),
        "tolerance": tolerance,
        "float_tolerance": float_tolerance,
        "samples": {"ref": ref.samples, "other": other.samples, "compared": min(n_cmp) if n_cmp else None},
        "equal": first is None,
        "first_divergence": first,
        "tensors": rows,
        "missing": missing,
        "extra": extra,
        "warnings": warnings,
    }


# ---------------------------------------------------------------------------------------------
# Text view


def trace_command(doc: Mapping[str, Any]) -> str | None:
    """The ``refquant trace`` command line that explains ``doc``'s first divergence (None when equal)."""
    fd = doc.get("first_divergence")
    if not fd or fd.get("element") is None or fd.get("tensor_index") is None:
        return None
    model = doc.get("model") or "MODEL.tflite"
    data = doc.get("input") or "DATA.npz"
    parts = ["refquant", "trace", str(model), "--input", str(data)]
    parts += ["--tensor", str(fd["tensor_index"]), "--element", ",".join(str(e) for e in fd["element"]) or "''"]
    if fd.get("sample") is not None:
        parts += ["--sample", str(fd["sample"])]
    if doc.get("arithmetic") not in (None, "litert-ref"):
        parts += ["--arithmetic", str(doc["arithmetic"])]
    if doc.get("rounding") not in (None, "double"):
        parts += ["--rounding", str(doc["rounding"])]
    if doc.get("float_accumulation") not in (None, "float64"):
        parts += ["--float-accumulation", str(doc["float_accumulation"])]
    # every part quoted: manifest values must not become shell syntax when the line is pasted
    return " ".join(p if p in ("''",) else shell_word(p) for p in parts)


def format_number(v: Any) -> str:
    """A count or difference for the text view: integral floats as integers, other floats to 4 digits."""
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else f"{v:.4g}"
    return str(v)


def _where(fd: Mapping[str, Any]) -> str:
    if fd["op_index"] is not None and fd["op_index"] >= 0:
        return f"operator {fd['op_index']} ({fd['opcode']}), output tensor {fd['tensor_index']} {fd['name']!r}"
    return f"tensor {fd['tensor_index']} {fd['name']!r} (a graph input or constant: the data itself differs)"


def _max_column(r: Mapping[str, Any]) -> str:
    if r["unit"] == "real":
        return f"{format_number(r['max_abs_diff'])} ({format_number(r['max_rel_range'])} of range)"
    return f"{format_number(r['max_abs_diff'])} {r['unit']}"


def _entries(items: list[Mapping[str, Any]], limit: int = 8) -> str:
    shown = ", ".join(f"{m['tensor_index']} {m['name']!r}" for m in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def format_diff(doc: Mapping[str, Any], verbose: bool = False) -> str:
    """The human-readable report of a :func:`diff_dumps` document (the same facts as the JSON)."""
    lines = []
    s = doc["samples"]
    lines.append(f"REF   {doc['ref']}  ({s['ref']} samples, model {doc.get('model')})")
    lines.append(f"OTHER {doc['other']}  ({s['other']} samples)")
    lines.extend(f"warning: {w}" for w in doc.get("warnings", ()))
    rows = doc["tensors"]
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    tol = format_number(doc["tolerance"])
    ftol = format_number(doc.get("float_tolerance", 0))
    summary = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in sorted(counts.items()))
    lines.append(
        f"compared {len(rows) - counts.get('missing', 0)} tensors over {s['compared']} sample(s), tolerance {tol} LSB "
        f"(float: {ftol} of range): {summary}"
    )
    show = [r for r in rows if verbose or r["status"] not in ("equal", "missing")]
    if show:
        lines.append("")
        lines.append(
            f"{'tensor':>6} {'op':>4}  {'opcode':<20} {'mismatched/total':>18} {'max|d|':>24} {'|d|=0':>8} {'1':>7} {'2':>7} {'3+':>7}  name"
        )
        for r in show:
            op = str(r["op_index"]) if r["op_index"] is not None and r["op_index"] >= 0 else "-"
            opcode = r["opcode"] or "(input/const)"
            if r["status"] == "missing":
                lines.append(
                    f"{r['tensor_index']!s:>6} {op:>4}  {opcode:<20} {'missing in OTHER':>18}{'':>56}  {r['name']}"
                )
            elif r["status"] == "shape_mismatch":
                what = f"shape {r['actual_shape']} != {r['expected_shape']}"
                lines.append(f"{r['tensor_index']!s:>6} {op:>4}  {opcode:<20} {what}  {r['name']}")
            else:
                h = r["histogram"]
                mt = f"{r['mismatched']}/{r['total']}"
                lines.append(
                    f"{r['tensor_index']!s:>6} {op:>4}  {opcode:<20} {mt:>18} {_max_column(r):>24} {h['0']:>8} {h['1']:>7} {h['2']:>7} {h['3+']:>7}  {r['name']}"
                )
            if "layout_hint" in r:
                lh = r["layout_hint"]
                lines.append(
                    f"{'':>13}hint: {lh['description']}; mapped back, {lh['mismatched_after']}/{lh['total']} differ"
                )
    if doc["missing"]:
        lines.append(f"\nmissing in OTHER ({len(doc['missing'])}): {_entries(doc['missing'])}")
    if doc.get("extra"):
        lines.append(f"\nin OTHER but not in REF ({len(doc['extra'])}): {_entries(doc['extra'])}")
    fd = doc["first_divergence"]
    lines.append("")
    if fd is None:
        lines.append("no divergence: every tensor present in both dumps is equal within the tolerance")
        return terminal("\n".join(lines), keep_newlines=True)
    lines.append(f"FIRST DIVERGENCE: {_where(fd)}")
    if fd["reason"] == "shape":
        lines.append(f"  OTHER has shape {fd['actual_shape']}, REF {fd['expected_shape']}")
    else:
        diff = fd["difference"]
        sample = f"sample {fd['sample']}, " if fd["sample"] is not None else ""
        if fd["unit"] == "LSB" and isinstance(fd["expected"], (int, float)) and isinstance(fd["actual"], (int, float)):
            what = f"{fd['actual'] - fd['expected']:+} LSB; |d| = {format_number(diff)} > tolerance {tol}"
        elif fd["unit"] == "real":
            what = f"|d| = {format_number(diff)}, {format_number(fd.get('ulp'))} ULP; above {ftol} of the range"
        else:
            what = f"|d| = {format_number(diff)} {fd['unit']} > tolerance {tol}"
        lines.append(f"  {sample}element {fd['element']}: REF {fd['expected']}, OTHER {fd['actual']} ({what})")
    if "layout_hint" in fd:
        lines.append(f"  layout: {fd['layout_hint']['description']}")
    cmd = trace_command(doc)
    if cmd:
        lines.append(f"  see every arithmetic step of that element:\n    {cmd}")
    return terminal("\n".join(lines), keep_newlines=True)
