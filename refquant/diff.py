"""``refquant diff``: compare two golden dumps tensor by tensor and name the first divergence.

``REF_DIR`` is a dump written by ``refquant golden``; ``OTHER_DIR`` is a dump in the same layout from
any other implementation (a hardware simulator, an RTL testbench, another runtime). OTHER needs only
``manifest.json`` with ``samples`` and ``tensors: [{"index" or "name", "file", ...}]`` (``dtype`` and
``shape`` too for raw ``.bin`` files); tensors it lacks are reported as missing, not as errors
(docs/golden_format.md).

Differences are counted in units of the tensor's last place: LSB (one integer step) for integer
tensors, ULP (one float32/float64 step, counted along the ordered float values) for float tensors.
Graph order is REF's manifest order (inputs, constants, then op outputs in execution order), so the
first divergence is the earliest tensor in the computation that differs beyond the tolerance, and
within it the first element in sample-major C order.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError, RefquantError
from .escape import shell_word, terminal
from .inputs import MAX_ARRAY_BYTES, regular_file
from .model import Model
from .options import EngineOptions, engine_options

__all__ = [
    "DumpTensor",
    "Dump",
    "load_dump",
    "diff_dumps",
    "format_diff",
    "trace_command",
    "isolate_operators",
    "format_isolated",
    "HISTOGRAM_BUCKETS",
]

#: Histogram buckets of |difference| (in LSB/ULP): 0, (0, 1], (1, 2], more.
HISTOGRAM_BUCKETS = ("0", "1", "2", "3+")


@dataclass(frozen=True)
class DumpTensor:
    """One tensor entry of a dump's manifest, with its file resolved against the dump directory."""

    index: int | None
    name: str | None
    path: Path
    dtype: str | None = None
    shape: tuple[int, ...] | None = None
    per_sample: bool = True
    op_index: int = -1
    opcode: str | None = None
    scale: tuple[float, ...] = ()
    zero_point: tuple[int, ...] = ()
    quantized_dimension: int | None = None


@dataclass
class Dump:
    """A golden dump directory: its manifest and tensor entries (arrays are read on demand)."""

    root: Path
    manifest: dict[str, Any]
    tensors: list[DumpTensor] = field(default_factory=list)

    @property
    def samples(self) -> int | None:
        """``manifest["samples"]`` (None when absent)."""
        n = self.manifest.get("samples")
        return int(n) if isinstance(n, int) else None

    def by_index(self) -> dict[int, DumpTensor]:
        """Entries that carry a tensor index."""
        return {t.index: t for t in self.tensors if t.index is not None}

    def by_name(self) -> dict[str, DumpTensor]:
        """Entries that carry a name."""
        return {t.name: t for t in self.tensors if t.name is not None}

    def load(self, t: DumpTensor) -> np.ndarray:
        """The tensor's array: ``.npy`` as stored; ``.bin`` little-endian raw reshaped to ``(N, *shape)``."""
        where = f"dump {terminal(str(self.root))!r}"
        if not t.path.is_file():
            raise InputError(f"{where}: tensor file {terminal(str(t.path))!r} is missing")
        size = regular_file(t.path, f"{where}: tensor file")
        if size > MAX_ARRAY_BYTES:
            raise InputError(
                f"{where}: {terminal(t.path.name)} holds {size} bytes, above the {MAX_ARRAY_BYTES}-byte bound"
            )
        try:
            if t.path.suffix == ".bin":
                if t.dtype is None or t.shape is None:
                    raise InputError(f"{where}: {terminal(t.path.name)} is raw .bin; its entry needs dtype and shape")
                dt = np.dtype(t.dtype).newbyteorder("<")
                arr = np.memmap(t.path, dtype=dt, mode="r") if size else np.zeros(0, dt)
                per = 1
                for d in t.shape:
                    per *= d
                if not t.per_sample:
                    return arr.reshape(t.shape).astype(np.dtype(t.dtype))
                if per == 0 or arr.size % per:
                    raise InputError(
                        f"dump {str(self.root)!r}: {t.path.name} holds {arr.size} values, not a multiple of shape {list(t.shape)}"
                    )
                return arr.reshape((arr.size // per, *t.shape)).astype(np.dtype(t.dtype))
            arr = np.load(t.path, mmap_mode="r", allow_pickle=False)
            if not isinstance(arr, np.ndarray) or arr.dtype.fields is not None or arr.dtype.kind not in "biuf":
                raise InputError(f"{where}: {terminal(t.path.name)} is not a plain numeric array")
            return arr
        except InputError:
            raise
        except (ValueError, OSError, TypeError, OverflowError) as exc:
            raise InputError(f"{where}: cannot read {terminal(str(t.path))!r}: {exc}") from exc


#: Element types a dump's raw ``.bin`` files may declare.
_DUMP_DTYPES = ("int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "bool")
_DUMP_DTYPES += ("float16", "float32", "float64")


def _dtype_field(v: Any, where: str) -> str | None:
    if v is None:
        return None
    if not isinstance(v, str) or v not in _DUMP_DTYPES:
        raise InputError(f"{where}: dtype {terminal(repr(v))} is not one of {list(_DUMP_DTYPES)}")
    return v


def _shape_field(v: Any, where: str) -> tuple[int, ...] | None:
    if v is None:
        return None
    if not isinstance(v, list) or len(v) > 16 or not all(isinstance(d, int) and not isinstance(d, bool) for d in v):
        raise InputError(f"{where}: shape {terminal(repr(v))[:80]} is not a list of at most 16 integers")
    n = 1
    for d in v:
        if d < 0:
            raise InputError(f"{where}: shape {v} has a negative dimension")
        n *= d
    if n > MAX_ARRAY_BYTES:
        raise InputError(f"{where}: shape {v} holds {n} elements, more than a dump can hold")
    return tuple(v)


def _number_list(v: Any, where: str, field: str, kind: type) -> list[Any]:
    """A manifest's ``scale`` / ``zero_point``: a number or a list of numbers (None or absent: empty)."""
    if v is None:
        return []
    items = v if isinstance(v, list) else [v]
    ok = (int, float) if kind is float else (int,)
    if not all(isinstance(x, ok) and not isinstance(x, bool) for x in items):
        raise InputError(f"{where}: {field} {terminal(repr(v))[:80]} is not a number or a list of numbers")
    return items


def _int_or_none(v: Any) -> int | None:
    return int(v) if isinstance(v, int) and not isinstance(v, bool) else None


def _check_inside(root: Path, rel: str, where: str) -> None:
    """A manifest's file must be a relative path inside the dump, reached without leaving it (no ``..``, no
    absolute path, no symbolic link pointing elsewhere): a dump cannot make refquant read other files."""
    p = Path(rel)
    if not rel or p.is_absolute() or ".." in p.parts or "\x00" in rel:
        raise InputError(
            f"dump {terminal(str(root))!r}: {where} file {terminal(rel)!r} is not a relative path inside the dump"
        )
    real_root = os.path.realpath(root)
    if os.path.commonpath([real_root, os.path.realpath(root / p)]) != real_root:
        raise InputError(
            f"dump {terminal(str(root))!r}: {where} file {terminal(rel)!r} leads outside the dump (a symbolic link)"
        )


def load_dump(path: str | os.PathLike) -> Dump:
    """Read ``path/manifest.json`` (InputError, naming the problem, when it is missing or malformed)."""
    root = Path(path)
    mpath = root / "manifest.json"
    if not root.is_dir():
        raise InputError(f"dump {str(root)!r} is not a directory")
    if not mpath.is_file():
        raise InputError(f"dump {str(root)!r} has no manifest.json")
    regular_file(mpath, f"dump {terminal(str(root))!r}: manifest.json")
    try:
        manifest = json.loads(mpath.read_text())
    except RecursionError:
        raise InputError(f"dump {terminal(str(root))!r}: manifest.json is nested too deeply") from None
    except (ValueError, OSError) as exc:
        raise InputError(f"dump {str(root)!r}: manifest.json is not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("tensors"), list):
        raise InputError(f"dump {str(root)!r}: manifest.json needs a 'tensors' list")
    tensors = []
    for k, e in enumerate(manifest["tensors"]):
        if not isinstance(e, dict):
            raise InputError(f"dump {str(root)!r}: tensors[{k}] is not an object")
        files = e.get("files") if isinstance(e.get("files"), dict) else {}
        rel = e.get("file") or files.get("npy") or files.get("bin")
        index, name = _int_or_none(e.get("index")), e.get("name")
        if not isinstance(rel, str) or (index is None and not isinstance(name, str)):
            raise InputError(f"dump {str(root)!r}: tensors[{k}] needs 'file' and an 'index' or 'name'")
        _check_inside(root, rel, f"tensors[{k}]")
        here = f"dump {terminal(str(root))!r}: tensors[{k}]"
        tensors.append(
            DumpTensor(
                index=index,
                name=name if isinstance(name, str) else None,
                path=root / rel,
                dtype=_dtype_field(e.get("dtype"), here),
                shape=_shape_field(e.get("shape"), here),
                per_sample=bool(e.get("per_sample", True)),
                op_index=_int_or_none(e.get("op_index")) if _int_or_none(e.get("op_index")) is not None else -1,
                opcode=e.get("opcode") if isinstance(e.get("opcode"), str) else None,
                scale=tuple(float(s) for s in _number_list(e.get("scale"), here, "scale", float)),
                zero_point=tuple(int(z) for z in _number_list(e.get("zero_point"), here, "zero_point", int)),
                quantized_dimension=_int_or_none(e.get("quantized_dimension")),
            )
        )
    return Dump(root, manifest, tensors)


# ---------------------------------------------------------------------------------------------
# Differences


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


def _histogram(d: np.ndarray) -> dict[str, int]:
    zero = int(np.count_nonzero(d == 0))
    one = int(np.count_nonzero((d > 0) & (d <= 1)))
    two = int(np.count_nonzero((d > 1) & (d <= 2)))
    return {"0": zero, "1": one, "2": two, "3+": int(d.size) - zero - one - two}


def _py(v: Any) -> Any:
    """A NumPy scalar as a JSON-able Python value (non-finite floats as strings)."""
    v = v.item() if hasattr(v, "item") else v
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return v


def _count(v: float) -> int | float | str:
    """A difference count: an int when integral (LSB/ULP counts), else a float."""
    if math.isfinite(v) and float(v).is_integer():
        return int(v)
    return _py(float(v))


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


def _compare_tensor(ref_dump: Dump, r: DumpTensor, other_dump: Dump, o: DumpTensor, tol: float) -> dict[str, Any]:
    ref = np.asarray(ref_dump.load(r))
    oth = np.asarray(other_dump.load(o))
    shape = tuple(ref.shape[1:]) if r.per_sample else tuple(ref.shape)
    if not r.per_sample:
        ref = ref[None]
    if oth.ndim == len(shape) and tuple(oth.shape) == shape:
        oth = oth[None]
    res: dict[str, Any] = {}
    if oth.ndim != len(shape) + 1 or tuple(oth.shape[1:]) != shape:
        got = list(oth.shape[1:]) if oth.ndim == len(shape) + 1 else list(oth.shape)
        hint = " (a different layout?)" if sorted(got) == sorted(shape) else ""
        res.update(status="shape_mismatch", expected_shape=list(shape), actual_shape=got, hint=hint.strip(" ()"))
        return res
    n = min(ref.shape[0], oth.shape[0]) if r.per_sample else 1
    ref, oth = ref[:n], oth[:n]
    d, unit = differences(ref, oth)
    bad = d > tol
    mismatched = int(np.count_nonzero(bad))
    res.update(
        status="equal" if not np.any(d) else ("mismatch" if mismatched else "within_tolerance"),
        samples_compared=int(n) if r.per_sample else None,
        mismatched=mismatched,
        total=int(d.size),
        unit=unit,
        max_abs_diff=_count(float(d.max(initial=0.0))),
        histogram=_histogram(d),
    )
    scale = _real_scale(r, shape)
    if unit == "ULP":
        with np.errstate(invalid="ignore", over="ignore"):
            real = np.abs(oth.astype(np.float64) - ref.astype(np.float64))
        res["max_abs_diff_real"] = _py(float(np.nanmax(real, initial=0.0))) if real.size else 0.0
    elif scale is not None:
        res["max_abs_diff_real"] = _py(float(np.max(d * scale, initial=0.0)))
    if mismatched:
        flat = int(np.argmax(bad.reshape(-1)))
        pos = tuple(int(p) for p in np.unravel_index(flat, bad.shape))
        res["first_mismatch"] = {
            "sample": pos[0] if r.per_sample else None,
            "element": list(pos[1:]),
            "expected": _py(ref[pos]),
            "actual": _py(oth[pos]),
            "difference": _count(float(d[pos])),
        }
    return res


def _graph_key(item: tuple[int, DumpTensor]) -> tuple[int, int]:
    pos, t = item
    return (t.op_index if t.op_index >= 0 else -1, pos)


def diff_dumps(ref_dir: str | os.PathLike, other_dir: str | os.PathLike, tolerance: float = 0) -> dict[str, Any]:
    """Compare two dumps; return the JSON document ``refquant diff --json`` prints.

    ``{"ref", "other", "tolerance", "samples": {"ref", "other", "compared"}, "equal": bool,
    "first_divergence": {...} | null, "tensors": [...], "missing": [...], "extra": [...],
    "warnings": [...]}`` (warnings: the manifests name different models, inputs or roundings). Raises
    :class:`InputError` for unreadable dumps or when no tensor of OTHER matches REF.
    """
    if not (isinstance(tolerance, (int, float)) and tolerance >= 0 and math.isfinite(tolerance)):
        raise InputError(f"tolerance must be a finite number >= 0, got {tolerance!r}")
    ref = load_dump(ref_dir)
    other = load_dump(other_dir)
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
        row = {**base, **_compare_tensor(ref, r, other, o, float(tolerance))}
        rows.append(row)
        if first is None and row["status"] in ("mismatch", "shape_mismatch"):
            if row["status"] == "mismatch":
                fm = row["first_mismatch"]
                first = {**base, **fm, "unit": row["unit"], "reason": "value"}
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
    compared = [row for row in rows if row["status"] != "missing"]
    if not compared:
        raise InputError(
            f"no tensor of {str(other.root)!r} matches one of {str(ref.root)!r} by index or name; nothing to compare"
        )
    extra = [{"tensor_index": t.index, "name": t.name} for t in other.tensors if id(t) not in matched_other]
    n_cmp = [row["samples_compared"] for row in compared if row.get("samples_compared") is not None]
    warnings = []
    for key, what in (
        ("model_sha256", "models"),
        ("input_sha256", "input data"),
        ("arithmetic", "arithmetic profiles"),
        ("rounding", "roundings"),
    ):
        a, b = ref.manifest.get(key), other.manifest.get(key)
        if a is not None and b is not None and a != b:
            warnings.append(f"the dumps come from different {what} ({key}: {a} vs {b})")
    return {
        "ref": str(ref.root),
        "other": str(other.root),
        "model": ref.manifest.get("model"),
        "input": ref.manifest.get("input"),
        "arithmetic": ref.manifest.get("arithmetic", "litert-ref"),
        "rounding": ref.manifest.get("rounding", "double"),
        "tolerance": tolerance,
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


def _fmt_num(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _where(fd: Mapping[str, Any]) -> str:
    if fd["op_index"] is not None and fd["op_index"] >= 0:
        return f"operator {fd['op_index']} ({fd['opcode']}), output tensor {fd['tensor_index']} {fd['name']!r}"
    return f"tensor {fd['tensor_index']} {fd['name']!r} (a graph input or constant: the data itself differs)"


def format_diff(doc: Mapping[str, Any], verbose: bool = False) -> str:
    """The human-readable report of a :func:`diff_dumps` document."""
    lines = []
    s = doc["samples"]
    lines.append(f"REF   {doc['ref']}  ({s['ref']} samples, model {doc.get('model')})")
    lines.append(f"OTHER {doc['other']}  ({s['other']} samples)")
    lines.extend(f"warning: {w}" for w in doc.get("warnings", ()))
    rows = doc["tensors"]
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    tol = _fmt_num(doc["tolerance"])
    summary = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in sorted(counts.items()))
    lines.append(
        f"compared {len(rows) - counts.get('missing', 0)} tensors over {s['compared']} sample(s), tolerance {tol}: {summary}"
    )
    show = [r for r in rows if verbose or r["status"] not in ("equal", "missing")]
    if show:
        lines.append("")
        lines.append(
            f"{'tensor':>6} {'op':>4}  {'opcode':<20} {'mismatched/total':>18} {'max|d|':>10} {'|d|=0':>8} {'1':>7} {'2':>7} {'3+':>7}  name"
        )
        for r in show:
            op = str(r["op_index"]) if r["op_index"] is not None and r["op_index"] >= 0 else "-"
            opcode = r["opcode"] or "(input/const)"
            if r["status"] == "missing":
                lines.append(
                    f"{r['tensor_index']!s:>6} {op:>4}  {opcode:<20} {'missing in OTHER':>18}{'':>42}  {r['name']}"
                )
                continue
            if r["status"] == "shape_mismatch":
                what = f"shape {r['actual_shape']} != {r['expected_shape']}"
                lines.append(f"{r['tensor_index']!s:>6} {op:>4}  {opcode:<20} {what}  {r['name']}")
                continue
            h = r["histogram"]
            mt = f"{r['mismatched']}/{r['total']}"
            md = f"{_fmt_num(r['max_abs_diff'])} {r['unit']}"
            lines.append(
                f"{r['tensor_index']!s:>6} {op:>4}  {opcode:<20} {mt:>18} {md:>10} {h['0']:>8} {h['1']:>7} {h['2']:>7} {h['3+']:>7}  {r['name']}"
            )
    if doc["missing"]:
        names = ", ".join(f"{m['tensor_index']} {m['name']!r}" for m in doc["missing"][:8])
        more = f" and {len(doc['missing']) - 8} more" if len(doc["missing"]) > 8 else ""
        lines.append(f"\nmissing in OTHER ({len(doc['missing'])}): {names}{more}")
    fd = doc["first_divergence"]
    lines.append("")
    if fd is None:
        lines.append(f"no divergence: every tensor present in both dumps is equal within {tol} LSB/ULP")
        return terminal("\n".join(lines), keep_newlines=True)
    lines.append(f"FIRST DIVERGENCE: {_where(fd)}")
    if fd["reason"] == "shape":
        lines.append(f"  OTHER has shape {fd['actual_shape']}, REF {fd['expected_shape']}")
        return terminal("\n".join(lines), keep_newlines=True)
    diff = fd["difference"]
    signed = ""
    if isinstance(fd["expected"], (int, float)) and isinstance(fd["actual"], (int, float)) and fd["unit"] == "LSB":
        signed = f"{fd['actual'] - fd['expected']:+}"
    else:
        signed = _fmt_num(diff)
    sample = f"sample {fd['sample']}, " if fd["sample"] is not None else ""
    lines.append(
        f"  {sample}element {fd['element']}: REF {fd['expected']}, OTHER {fd['actual']} "
        f"({signed} {fd['unit']}; |d| = {_fmt_num(diff)} > tolerance {tol})"
    )
    cmd = trace_command(doc)
    if cmd:
        lines.append(f"  see every arithmetic step of that element:\n    {cmd}")
    return terminal("\n".join(lines), keep_newlines=True)


# ---------------------------------------------------------------------------------------------
# Isolation: every operator recomputed from OTHER's own inputs


def _dump_model(ref: Dump, model: Any) -> tuple[Model, str]:
    """The model REF was made from: ``model`` (a path or Model) or the manifest's ``model`` path, checked by SHA-256."""
    from .golden import sha256_file
    from .tflite.reader import load_model

    if isinstance(model, Model):
        return model, "<model>"
    path = model if model is not None else ref.manifest.get("model")
    if not isinstance(path, (str, os.PathLike)) or not os.path.isfile(path):
        raise InputError(
            f"isolating operators needs the model: REF's manifest names {path!r}, which is not a file; give --model"
        )
    want = ref.manifest.get("model_sha256")
    if isinstance(want, str) and sha256_file(path) != want:
        raise InputError(f"model {os.fspath(path)!r} is not the model REF was made from (SHA-256 differs)")
    return load_model(path), os.fspath(path)


def _sample_arrays(dump: Dump, t: DumpTensor, n: int) -> np.ndarray | None:
    """``(n, *shape)`` values of a dumped tensor (constants repeated), or None when it has fewer samples."""
    arr = np.asarray(dump.load(t))
    if not t.per_sample:
        return np.broadcast_to(arr, (n, *arr.shape))
    return arr if arr.shape[0] >= n else None


def isolate_operators(
    ref_dir: str | os.PathLike,
    other_dir: str | os.PathLike,
    model: Any = None,
    *,
    options: EngineOptions | None = None,
) -> dict[str, Any]:
    """Recompute every operator from OTHER's own dumped inputs and compare with OTHER's dumped outputs.

    An operator whose output differs from refquant's computation *given the same inputs* is wrong by
    itself (``"status": "local"``); one whose output follows from its inputs is not, even when its
    inputs already differ from REF's (``"inherited": true``). Inputs OTHER lacks are taken from REF
    (named in ``"inputs_from_ref"``), constants from the model. ``model``: the model REF was made from
    (default: the path in REF's manifest, checked against its SHA-256). ``options``: the arithmetic
    (default: REF manifest's ``arithmetic``, ``rounding`` and ``float_accumulation``).

    Returns ``{"model", "arithmetic", "samples", "operators": [...], "isolated": [...]}``; each
    operator entry has ``op_index``, ``opcode``, ``status`` (``local``, ``equal``, ``skipped``,
    ``error``), ``inherited``, and for compared ones ``mismatched``, ``total``, ``unit``, ``max_abs_diff``
    (``max_lsb`` for integer outputs) and ``first_mismatch``; ``isolated`` lists the ``local`` ones.
    """
    from .engine import Engine

    ref = load_dump(ref_dir)
    other = load_dump(other_dir)
    m, mpath = _dump_model(ref, model)
    if options is None:
        options = engine_options(
            rounding=str(ref.manifest.get("rounding", "double")),
            float_accumulation=str(ref.manifest.get("float_accumulation", "float64")),
            arithmetic=str(ref.manifest.get("arithmetic", "litert-ref")),
        )
    engine = Engine(m, 0, options)
    sg = m.main
    r_idx, o_idx, o_name = ref.by_index(), other.by_index(), other.by_name()
    counts = [c for c in (ref.samples, other.samples) if c is not None]
    n = min(counts) if counts else 1

    def find_other(i: int) -> DumpTensor | None:
        t = o_idx.get(i)
        return t if t is not None else o_name.get(sg.tensors[i].name)

    cache: dict[tuple[str, int], np.ndarray | None] = {}

    def values(which: str, i: int) -> np.ndarray | None:
        key = (which, i)
        if key not in cache:
            dump, t = (other, find_other(i)) if which == "other" else (ref, r_idx.get(i))
            cache[key] = None if t is None else _sample_arrays(dump, t, n)
        return cache[key]

    entries: list[dict[str, Any]] = []
    for op in sg.operators:
        e: dict[str, Any] = {"op_index": op.index, "opcode": op.opcode, "inherited": False}
        entries.append(e)
        ins: list[np.ndarray | None] = []
        from_ref: list[int] = []
        for i in op.inputs:
            if i < 0:
                ins.append(None)
            elif sg.tensors[i].is_constant:
                ins.append(np.broadcast_to(sg.tensors[i].data, (n, *sg.tensors[i].shape)))
            else:
                v = values("other", i)
                if v is None:
                    v = values("ref", i)
                    from_ref.append(i)
                else:
                    rv = values("ref", i)
                    if rv is not None and rv.shape == v.shape and not np.array_equal(rv, v, equal_nan=True):
                        e["inherited"] = True
                ins.append(v)
        outs = [values("other", o) for o in op.outputs]
        if from_ref:
            e["inputs_from_ref"] = from_ref
        if any(v is None for v, i in zip(ins, op.inputs) if i >= 0) or all(v is None for v in outs):
            e.update(status="skipped", reason="inputs or outputs missing from both dumps")
            continue
        try:
            got = [engine.eval_op(op.index, [None if a is None else np.asarray(a[s]) for a in ins]) for s in range(n)]
        except RefquantError as exc:
            e.update(status="error", reason=str(exc))
            continue
        mismatched = total = 0
        worst = 0.0
        unit = "LSB"
        first = None
        for j, o in enumerate(op.outputs):
            if outs[j] is None:
                continue
            want = np.stack([g[j] for g in got])
            have = np.asarray(outs[j][:n])
            if have.shape != want.shape:
                e.update(
                    status="error",
                    reason=f"OTHER's tensor {o} has shape {list(have.shape[1:])}, expected {list(want.shape[1:])}",
                )
                break
            d, unit = differences(want, have)
            bad = d > 0
            total += int(d.size)
            mismatched += int(np.count_nonzero(bad))
            worst = max(worst, float(d.max(initial=0.0)))
            if first is None and bad.any():
                pos = tuple(int(p) for p in np.unravel_index(int(np.argmax(bad.reshape(-1))), bad.shape))
                first = {
                    "tensor_index": o,
                    "sample": pos[0],
                    "element": list(pos[1:]),
                    "expected": _py(want[pos]),
                    "actual": _py(have[pos]),
                    "difference": _count(float(d[pos])),
                }
        if e.get("status") == "error":
            continue
        e.update(
            status="local" if mismatched else "equal",
            mismatched=mismatched,
            total=total,
            unit=unit,
            max_abs_diff=_count(worst),
        )
        if unit == "LSB":
            e["max_lsb"] = _count(worst)
        if first is not None:
            e["first_mismatch"] = first
    return {
        "ref": str(ref.root),
        "other": str(other.root),
        "model": mpath,
        "arithmetic": options.describe(),
        "samples": n,
        "operators": entries,
        "isolated": [e for e in entries if e["status"] == "local"],
    }


def format_isolated(doc: Mapping[str, Any]) -> str:
    """The human-readable report of :func:`isolate_operators`."""
    ops = doc["operators"]
    lines = [
        f"every operator recomputed from OTHER's own inputs ({doc['samples']} sample(s), "
        f"rounding {doc['arithmetic']['rounding']}):"
    ]
    counts: dict[str, int] = {}
    for e in ops:
        counts[e["status"]] = counts.get(e["status"], 0) + 1
    lines.append("  " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    if not doc["isolated"]:
        lines.append("no operator is wrong given its inputs")
    else:
        lines.append(f"{len(doc['isolated'])} operator(s) wrong given their own inputs:")
        for e in doc["isolated"]:
            fm = e["first_mismatch"]
            lines.append(
                f"  operator {e['op_index']} ({e['opcode']}): {e['mismatched']}/{e['total']} elements differ, "
                f"max {_fmt_num(e['max_abs_diff'])} {e['unit']}; first: tensor {fm['tensor_index']} sample "
                f"{fm['sample']} element {fm['element']}: refquant {fm['expected']}, OTHER {fm['actual']}"
                + ("; its inputs already differ from REF" if e["inherited"] else "")
            )
    for e in ops:
        if e["status"] in ("error", "skipped"):
            lines.append(f"  operator {e['op_index']} ({e['opcode']}) {e['status']}: {e['reason']}")
    return terminal("\n".join(lines), keep_newlines=True)
