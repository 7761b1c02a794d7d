"""``refquant golden``: every tensor of a run, per sample, with the fixed-point parameters each op used.

A golden dump is a directory a hardware team can diff its simulator against (``refquant diff``):

* ``manifest.json``: the model (path and SHA-256), refquant's version, the rounding variant, the number
  of samples, one entry per dumped tensor (``index``, ``name``, producer ``op_index``/``opcode``,
  ``dtype``, ``shape`` without the sample axis, ``scale``, ``zero_point``, ``file``) and one entry per
  operator (``index``, ``opcode``, ``inputs``, ``outputs``, ``params``: what ``OpData.params()`` returns,
  made JSON-able, large arrays in their own ``.npy`` files; with ``--accumulators`` also the files of
  the raw accumulators of conv/FC/matmul-family ops).
* ``tensors/tNNNN_<name>.npy``: shape ``(N, *shape)`` (constants, on request, have no sample axis:
  they are the same for every sample). ``--format bin`` adds little-endian raw ``.bin`` files of the
  same stem, ``--format c`` adds C headers (``c/``) for firmware test benches.

The layout is documented in docs/golden_format.md. The directory is written into a temporary
directory beside ``DIR`` and renamed into place, so a reader never sees half a dump.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .engine import Engine, Trace
from .errors import InputError, RefquantError
from .escape import c_comment
from .inputs import convert_input, load_raw_inputs, sample
from .model import Model, SubGraph
from .options import EngineOptions, engine_options

__all__ = [
    "FORMAT",
    "FORMATS",
    "to_jsonable",
    "dumps_manifest",
    "sha256_file",
    "export_golden",
    "write_dump",
    "graph_order",
    "c_identifier",
    "write_c_header",
]

#: Value of ``manifest["format"]``.
FORMAT = "refquant golden v1"
#: File formats ``--format`` accepts (``npy`` is always written).
FORMATS = ("npy", "bin", "c")
#: Parameter arrays with more elements than this go to their own ``.npy`` file.
INLINE_LIMIT = 512
_C_TYPES = {
    "int8": "int8_t",
    "uint8": "uint8_t",
    "int16": "int16_t",
    "uint16": "uint16_t",
    "int32": "int32_t",
    "uint32": "uint32_t",
    "int64": "int64_t",
    "uint64": "uint64_t",
    "bool": "uint8_t",
    "float32": "float",
    "float64": "double",
    "float16": "uint16_t",  # raw IEEE half bits
}


# ---------------------------------------------------------------------------------------------
# Running: every tensor of one sample, with the prepared op data


def graph_order(sg: SubGraph, values: Mapping[int, np.ndarray], constants: bool) -> list[int]:
    """Tensor indices in graph order: graph inputs, constants (when asked), then each op's outputs in op order."""
    order: list[int] = []
    seen: set[int] = set()

    def add(i: int) -> None:
        if i >= 0 and i not in seen and i in values:
            seen.add(i)
            order.append(i)

    for i in sg.inputs:
        add(i)
    if constants:
        for t in sg.tensors:
            if t.is_constant:
                add(t.index)
    for op in sg.operators:
        for o in op.outputs:
            if not sg.tensors[o].is_constant or constants:
                add(o)
    return order


# ---------------------------------------------------------------------------------------------
# JSON and file helpers


def _json_float(v: float) -> float | str:
    return v if math.isfinite(v) else ("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf"))


def to_jsonable(value: Any, array_sink: Any = None) -> Any:
    """``value`` as plain JSON types: arrays become (nested) lists, NumPy scalars Python numbers.

    Non-finite floats become the strings ``"inf"``, ``"-inf"``, ``"nan"`` (strict JSON has no such
    numbers). ``array_sink(array) -> dict``, when given, is called for arrays of more than
    ``INLINE_LIMIT`` elements and its result (a file reference) replaces the list.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return _json_float(float(value))
    if isinstance(value, np.ndarray):
        if array_sink is not None and value.size > INLINE_LIMIT:
            return array_sink(value)
        if value.dtype.kind == "f":
            return to_jsonable(value.astype(np.float64).tolist())
        if value.dtype.kind in "iub":
            return value.tolist()
        return [to_jsonable(v, array_sink) for v in value.tolist()]
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v, array_sink) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v, array_sink) for v in value]
    return repr(value)


def dumps_manifest(doc: Mapping[str, Any]) -> str:
    """Strict JSON text of a manifest (non-finite floats as strings), indented, lists of numbers on one line."""
    text = json.dumps(to_jsonable(doc), indent=1, allow_nan=False)
    return re.sub(r"\[\s*([^\[\]{}\"]*?)\s*\]", lambda m: "[" + re.sub(r",\s+", ", ", m.group(1)) + "]", text) + "\n"


def _slug(name: str, limit: int = 48) -> str:
    s = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")
    return s[:limit].rstrip("_") or "t"


def c_identifier(stem: str) -> str:
    """A C identifier for a file stem: lower case, ``[a-z0-9_]``, never starting with a digit."""
    s = re.sub(r"[^a-z0-9_]", "_", stem.lower())
    return s if s and not s[0].isdigit() else "t_" + s


def _c_literal(v: Any, dtype: str) -> str:
    if dtype in ("float32", "float64"):
        f = float(v)
        if math.isnan(f):
            return "NAN"
        if math.isinf(f):
            return "INFINITY" if f > 0 else "-INFINITY"
        text = str(np.float32(f)) if dtype == "float32" else repr(f)
        if not any(c in text for c in ".e"):
            text += ".0"
        return text + ("f" if dtype == "float32" else "")
    i = int(v)
    if dtype == "int64":
        return "(-INT64_MAX - 1)" if i == -(2**63) else f"INT64_C({i})"
    if dtype == "uint64":
        return f"UINT64_C({i})"
    if dtype == "int32" and i == -(2**31):
        return "(-2147483647 - 1)"
    if dtype == "uint32":
        return f"{i}u"
    return str(i)


def _c_values(arr: np.ndarray, dtype: str, per_line: int = 16) -> str:
    """The elements of ``arr`` as C initializer text, ``per_line`` values per line."""
    flat = arr.reshape(-1)
    if dtype == "float16":
        flat, dtype = flat.view(np.uint16), "uint16"
    elif dtype == "bool":
        flat, dtype = flat.astype(np.uint8), "uint8"
    if dtype in ("float32", "float64"):
        # repr of the exact double value: parses back (as float or double) to the same value.
        suffix = "f" if dtype == "float32" else ""
        items = [r + suffix for r in map(repr, flat.astype(np.float64).tolist())]
        for k in np.flatnonzero(~np.isfinite(flat)).tolist():
            items[k] = _c_literal(flat[k], dtype)
    elif dtype in ("int64", "uint64", "uint32"):
        items = [_c_literal(v, dtype) for v in flat.tolist()]
    else:
        items = list(map(str, flat.tolist()))
        if dtype == "int32":
            for k in np.flatnonzero(flat == np.iinfo(np.int32).min).tolist():
                items[k] = "(-2147483647 - 1)"
    lines = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
    return "    " + ",\n    ".join(lines)


#: What a string ``#define`` value may hold: numbers, signs, braces, commas, NAN and INFINITY.
_C_EXPRESSION = re.compile(r"(?:[-+0-9.eE, {}()]|NAN|INFINITY)*")


def write_c_header(
    path: Path, ident: str, arrays: Mapping[str, np.ndarray], comment: str, defines: Mapping[str, Any]
) -> None:
    """Write a guarded C header holding ``arrays`` as ``static const`` C arrays named ``<ident>_<key>``.

    Array element types follow the NumPy dtype (``int8_t``, ..., ``float``, ``double``; float16 as raw
    ``uint16_t`` bits, bool as ``uint8_t``); arrays are flat, in C (row-major) order. ``defines`` become
    ``#define <IDENT>_<KEY> value`` lines. An empty key names the array ``<ident>`` itself.
    """
    ident = c_identifier(ident)
    guard = f"REFQUANT_{ident.upper()}_H"
    # model-controlled text (tensor names) only ever inside comments, escaped for C
    out = [f"/* {c_comment(line)} */" for line in comment.splitlines()]
    out += [f"#ifndef {guard}", f"#define {guard}", "", "#include <stdint.h>"]
    if any(a.dtype.kind == "f" for a in arrays.values()):
        out.append("#include <math.h> /* INFINITY, NAN */")
    out.append("")
    for key, value in defines.items():
        key = c_identifier(key)
        if isinstance(value, str):
            if not _C_EXPRESSION.fullmatch(value):
                raise RefquantError(f"C header {path.name}: #define {key} value {value!r} is not a numeric C literal")
            v = value
        elif isinstance(value, float):
            v = _c_literal(value, "float64")
        else:
            v = str(int(value)) if -(2**31) < int(value) < 2**31 else _c_literal(value, "int64")
        if v.startswith("-"):
            v = f"({v})"
        out.append(f"#define {ident.upper()}_{key.upper()} {v}")
    if defines:
        out.append("")
    for key, arr in arrays.items():
        dtype = str(arr.dtype)
        ctype = _C_TYPES.get(dtype)
        name = f"{ident}_{c_identifier(key)}" if key else ident
        if ctype is None:
            out.append(f"/* {name}: dtype {dtype} has no C representation here; see the .npy file */")
            continue
        n = max(arr.size, 1)
        body = _c_values(arr, dtype) if arr.size else "    0 /* empty */"
        out.append(f"static const {ctype} {name}[{n}] = {{\n{body}\n}};")
        out.append("")
    out.append(f"#endif /* {guard} */")
    path.write_text("\n".join(out) + "\n")


def _write_bin(path: Path, arr: np.ndarray) -> None:
    a = np.ascontiguousarray(arr)
    if a.dtype.byteorder == ">" or (a.dtype.byteorder == "=" and sys.byteorder == "big"):
        a = a.astype(a.dtype.newbyteorder("<"))
    path.write_bytes(a.tobytes())


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# The export


def _quant_fields(sg: SubGraph, index: int) -> dict[str, Any]:
    q = sg.tensors[index].quantization
    if q is None or q.scale.size == 0:
        return {"scale": [], "zero_point": [], "quantized_dimension": None}
    return {
        "scale": [float(s) for s in q.scale],
        "zero_point": [int(z) for z in q.zero_point],
        "quantized_dimension": int(q.quantized_dimension) if q.scale.size > 1 else None,
    }


def _inside(path: Path, directory: Path) -> bool:
    real, top = os.path.realpath(path), os.path.realpath(directory)
    return os.path.commonpath([real, top]) == top


def _prepare_target(out: Path, force: bool, keep: Sequence[str | os.PathLike] = ()) -> None:
    """Check that ``out`` can be (re)written; ``keep``: input files that must not live inside it."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise InputError(f"output {str(out)!r} exists and is not a directory")
    for f in keep:
        if out.exists() and _inside(Path(f), out):
            raise InputError(
                f"output directory {str(out)!r} holds the input {os.fspath(f)!r}; replacing it would delete the input"
            )
    _clean_stale(out)
    if out.is_dir() and any(out.iterdir()) and not force:
        raise InputError(f"output directory {str(out)!r} exists and is not empty; use --force to replace it")
    if not out.parent.is_dir():
        raise InputError(f"the parent directory of {str(out)!r} does not exist")


def _work_dir(out: Path, kind: str) -> Path:
    """A fresh hidden directory beside ``out`` whose name carries this process's id (see :func:`_clean_stale`)."""
    return Path(tempfile.mkdtemp(prefix=f".{out.name}.{kind}-{os.getpid()}-", dir=out.parent))


def _clean_stale(out: Path) -> None:
    """Remove the work directories of killed runs writing ``out``; restore a dump a kill left renamed away.

    Work directories are named ``.NAME.tmp-PID-*`` / ``.NAME.old-PID-*``; one whose process is gone is
    stale. When ``out`` is missing and a stale ``.old`` copy exists, the run died between its two renames:
    the copy is the previous dump and goes back under its name.
    """
    if not out.parent.is_dir():
        return
    for p in sorted(out.parent.glob(f".{out.name}.*-*-*")):
        parts = p.name[len(out.name) + 2 :].split("-")
        if len(parts) < 3 or parts[0] not in ("tmp", "old") or not parts[1].isdigit() or not p.is_dir():
            continue
        if int(parts[1]) != os.getpid() and _alive(int(parts[1])):
            continue
        if parts[0] == "old" and not out.exists():
            os.rename(p, out)
        else:
            shutil.rmtree(p, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _install(tmp: Path, out: Path) -> None:
    """Move the finished dump ``tmp`` to ``out`` (replacing an existing directory) with renames only."""
    old: Path | None = None
    if out.exists():
        old = _work_dir(out, "old")
        os.rmdir(old)
        os.rename(out, old)
    try:
        os.rename(tmp, out)
    except OSError:
        if old is not None:
            os.rename(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _tensor_kind(sg: SubGraph, i: int) -> str:
    if i in sg.inputs:
        return "input"
    if sg.tensors[i].is_constant:
        return "constant"
    return "output" if i in sg.outputs else "intermediate"


def _c_param_arrays(params: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any], list[str]]:
    """Split ``OpData.params()`` into C arrays, ``#define`` scalars and comment lines (for everything else)."""
    arrays: dict[str, np.ndarray] = {}
    defines: dict[str, Any] = {}
    notes: list[str] = []
    for key, value in params.items():
        name = c_identifier(_slug(key))
        if isinstance(value, (bool, np.bool_)):
            defines[name] = int(bool(value))
        elif isinstance(value, (int, np.integer)):
            defines[name] = int(value)
        elif isinstance(value, (float, np.floating)):
            f = float(value)
            defines[name] = (
                repr(f) if math.isfinite(f) else ("NAN" if math.isnan(f) else ("INFINITY" if f > 0 else "-INFINITY"))
            )
        elif value is None:
            continue
        else:
            try:
                arr = np.asarray(value)
            except (ValueError, TypeError):
                arr = np.asarray([], dtype=object)
            if arr.dtype.kind in "biuf" and arr.size:
                arrays[name] = arr
            else:
                notes.append(f"{key} = {to_jsonable(value)!r}")
    return arrays, defines, notes


class _Exporter:
    """Writes one dump into a temporary directory ``root``."""

    def __init__(self, root: Path, model: Model, engine: Engine, n: int, formats: Sequence[str]) -> None:
        self.root = root
        self.model = model
        self.sg = model.main
        self.engine = engine
        self.n = n
        self.formats = tuple(formats)
        self.width = max(4, len(str(len(self.sg.tensors) - 1)))
        self.opw = max(4, len(str(len(self.sg.operators) - 1)))
        self.maps: dict[int, np.ndarray] = {}  # per-sample tensors: (N, *shape) memmaps
        self.files: dict[int, str] = {}  # tensor index -> relative .npy path
        self.accs: dict[tuple[int, str], tuple[str, np.ndarray]] = {}  # (op, name) -> (path, memmap)
        for sub in ("tensors", "params"):
            (root / sub).mkdir()
        if "c" in self.formats:
            (root / "c").mkdir()

    # -- files
    def _memmap(self, rel: str, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        (self.root / rel).parent.mkdir(exist_ok=True)
        return np.lib.format.open_memmap(self.root / rel, mode="w+", dtype=dtype, shape=shape)

    def extras(self, rel_npy: str, arr: np.ndarray, comment: str, per_sample: bool) -> dict[str, str]:
        """Write the ``bin``/``c`` companions of an ``.npy`` file; return ``{format: relative path}``.

        ``per_sample``: ``arr`` has the sample axis first (else it is one array, e.g. a constant).
        """
        files = {"npy": rel_npy}
        stem = Path(rel_npy).stem
        if "bin" in self.formats:
            rel = str(Path(rel_npy).with_suffix(".bin"))
            _write_bin(self.root / rel, arr)
            files["bin"] = rel
        if "c" in self.formats:
            rel = f"c/{stem}.h"
            shape = arr.shape[1:] if per_sample else arr.shape
            defines: dict[str, Any] = {
                "samples": arr.shape[0] if per_sample else 1,
                "rank": len(shape),
                "size": int(np.prod(shape, dtype=np.int64)),
            }
            defines["shape"] = "{" + ", ".join(str(d) for d in shape) + "}"
            write_c_header(self.root / rel, c_identifier(stem), {"": arr}, comment, defines)
            files["c"] = rel
        return files

    def param_array(self, stem: str, arr: np.ndarray) -> dict[str, Any]:
        """Store one large parameter array in ``params/``; return its manifest reference."""
        rel = f"params/{stem}.npy"
        np.save(self.root / rel, arr)
        ref: dict[str, Any] = {"file": rel, "dtype": str(arr.dtype), "shape": list(arr.shape)}
        if "bin" in self.formats:
            _write_bin(self.root / f"params/{stem}.bin", arr)
            ref["files"] = {"npy": rel, "bin": f"params/{stem}.bin"}
        return ref

    # -- per sample
    def add_sample(self, s: int, run: Trace, constants: bool, accumulators: bool) -> None:
        """Store sample ``s``'s tensors (creating the files on the first sample) and accumulators."""
        sg = self.sg
        if s == 0:
            for i in graph_order(sg, run.values, constants):
                t = sg.tensors[i]
                rel = f"tensors/t{i:0{self.width}d}_{_slug(t.name)}.npy"
                self.files[i] = rel
                v = np.asarray(run.values[i])
                if t.is_constant:
                    np.save(self.root / rel, v)
                else:
                    self.maps[i] = self._memmap(rel, v.dtype, (self.n, *v.shape))
        for i, mm in self.maps.items():
            v = np.asarray(run.values[i])
            if v.shape != mm.shape[1:] or v.dtype != mm.dtype:
                raise RefquantError(
                    f"tensor {i} {sg.tensors[i].name!r} is {v.dtype}{list(v.shape)} in sample {s} but "
                    f"{mm.dtype}{list(mm.shape[1:])} in sample 0; a dump needs one shape per tensor"
                )
            mm[s] = v
        if accumulators:
            for op in sg.operators:
                for name, acc in run.op_data[op.index].accumulators(run.op_inputs(op.index)).items():
                    acc = np.asarray(acc)
                    key = (op.index, name)
                    if key not in self.accs:
                        rel = f"acc/op{op.index:0{self.opw}d}_{_slug(op.opcode.lower())}_{_slug(name)}.npy"
                        self.accs[key] = (rel, self._memmap(rel, acc.dtype, (self.n, *acc.shape)))
                    self.accs[key][1][s] = acc

    # -- manifest
    def tensor_entries(self, first: Trace) -> list[dict[str, Any]]:
        """Manifest entries of the dumped tensors (and their ``bin``/``c`` companions)."""
        sg = self.sg
        producer = self.engine.producers()
        entries = []
        for i, rel in self.files.items():
            t = sg.tensors[i]
            per_sample = i in self.maps
            arr = self.maps[i] if per_sample else np.asarray(first.values[i])
            k = producer.get(i, -1)
            kind = _tensor_kind(sg, i)
            quant = _quant_fields(sg, i)
            shape = list(arr.shape[1:] if per_sample else arr.shape)
            opcode = sg.operators[k].opcode if k >= 0 else None
            comment = (
                f"refquant golden: tensor {i} '{t.name}' ({kind}{f', output of op {k} {opcode}' if k >= 0 else ''})\n"
                f"{arr.dtype} shape {shape} {f'x {self.n} samples (sample axis first)' if per_sample else '(no sample axis)'}; "
                f"scale {quant['scale']} zero_point {quant['zero_point']}; C (row-major) order"
            )
            entries.append(
                {
                    "index": i,
                    "name": t.name,
                    "kind": kind,
                    "op_index": k,
                    "opcode": opcode,
                    "dtype": str(arr.dtype),
                    "shape": shape,
                    **quant,
                    "per_sample": per_sample,
                    "file": rel,
                    "files": self.extras(rel, np.asarray(arr), comment, per_sample),
                }
            )
        return entries

    def op_entries(self, first: Trace, accumulators: bool) -> list[dict[str, Any]]:
        """Manifest entries of the operators: params (from sample 0), options, accumulator files."""
        entries = []
        for op in self.sg.operators:
            data = first.op_data[op.index]
            stem = f"op{op.index:0{self.opw}d}_{_slug(op.opcode.lower())}"
            raw = data.params()
            params = {}
            for key, value in raw.items():
                count = [0]

                def sink(arr: np.ndarray, key: str = key, count: list[int] = count, stem: str = stem) -> dict[str, Any]:
                    count[0] += 1
                    return self.param_array(f"{stem}_{_slug(key)}{f'_{count[0]}' if count[0] > 1 else ''}", arr)

                params[key] = to_jsonable(value, sink)
            entry: dict[str, Any] = {
                "index": op.index,
                "opcode": op.opcode,
                "inputs": [int(i) for i in op.inputs],
                "outputs": [int(o) for o in op.outputs],
                "params": params,
                "options": to_jsonable(dict(op.options)),
            }
            if accumulators:
                accs = {}
                for (k, name), (rel, mm) in self.accs.items():
                    if k == op.index:
                        comment = (
                            f"refquant golden: accumulator '{name}' of op {k} {op.opcode} (before requantization)\n"
                            f"{mm.dtype} shape {list(mm.shape[1:])} x {self.n} samples (sample axis first); C order"
                        )
                        accs[name] = {
                            "dtype": str(mm.dtype),
                            "shape": list(mm.shape[1:]),
                            "file": rel,
                            "files": self.extras(rel, np.asarray(mm), comment, True),
                        }
                entry["accumulators"] = accs
            if "c" in self.formats:
                arrays, defines, notes = _c_param_arrays(raw)
                comment = "\n".join([f"refquant golden: fixed-point parameters of op {op.index} {op.opcode}", *notes])
                write_c_header(self.root / "c" / f"{stem}_params.h", c_identifier(stem), arrays, comment, defines)
                entry.setdefault("files", {})["c"] = f"c/{stem}_params.h"
            entries.append(entry)
        return entries

    def close(self) -> None:
        """Flush and drop the memory maps (before the directory is renamed)."""
        for mm in [*self.maps.values(), *(m for _, m in self.accs.values())]:
            mm.flush()
        self.maps.clear()
        self.accs.clear()


def export_golden(
    model_path: str | os.PathLike,
    data: str | os.PathLike | Mapping[str, Any] | Sequence[Any],
    out_dir: str | os.PathLike,
    *,
    formats: Sequence[str] = ("npy",),
    accumulators: bool = False,
    constants: bool = False,
    rounding: str | None = None,
    force: bool = False,
    samples: int | None = None,
    float_accumulation: str | None = None,
    options: EngineOptions | None = None,
    arithmetic: str | None = None,
) -> dict[str, Any]:
    """Run ``model_path`` on every sample of ``data`` and write a golden dump to ``out_dir``; return the manifest.

    ``data``: as :func:`refquant.inputs.load_raw_inputs` takes it (a .npz path or a dict of arrays).
    ``formats``: any of ``npy`` (always written), ``bin``, ``c``. ``accumulators``: also dump the raw
    accumulators of ops that have them. ``constants``: also dump constant tensors (weights, biases).
    ``samples``: use the first ``samples`` samples only. ``options`` (:class:`refquant.options.EngineOptions`),
    ``rounding`` / ``float_accumulation``: the arithmetic variants of :class:`refquant.Interpreter`
    (keywords override ``options``); ``arithmetic``: the runtime profile (:mod:`refquant.arithmetic`),
    recorded in the manifest. The directory appears complete or not at all;
    an existing non-empty ``out_dir`` is an :class:`InputError` unless ``force``.
    """
    from . import __version__
    from .tflite.reader import load_model

    opts = engine_options(options, rounding=rounding, float_accumulation=float_accumulation, arithmetic=arithmetic)
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise InputError(f"unknown format {bad[0]!r}; choose from {', '.join(FORMATS)}")
    fmts = tuple(f for f in FORMATS if f in formats or f == "npy")
    out = Path(out_dir)
    data_file = None
    if isinstance(data, (str, os.PathLike)):
        data_file = os.fspath(data)
        if not os.path.isfile(data_file):  # FILE.npz:KEY selector
            data_file = data_file.rpartition(":")[0]
    _prepare_target(out, force, keep=[model_path] + ([data_file] if data_file else []))
    model_file = Path(model_path)
    if not model_file.is_file():
        raise InputError(f"model {str(model_path)!r} does not exist or is not a file")
    model = load_model(model_file)
    raws = load_raw_inputs(model, data)
    inputs = [convert_input(r) for r in raws]
    if samples is not None:
        inputs = sample(inputs, samples)
    n = int(inputs[0].shape[0]) if inputs else 1
    engine = Engine(model, 0, opts)

    tmp = _work_dir(out, "tmp")
    try:
        ex = _Exporter(tmp, model, engine, n, fmts)
        first: Trace | None = None
        for s in range(n):
            run = engine.run([a[s] for a in inputs])
            first = first or run
            ex.add_sample(s, run, constants, accumulators)
        assert first is not None
        tensors = ex.tensor_entries(first)
        ops = ex.op_entries(first, accumulators)
        ex.close()
        manifest = {
            "format": FORMAT,
            "model": os.path.abspath(os.fspath(model_path)),
            "model_sha256": sha256_file(model_file),
            "refquant_version": __version__,
            **opts.describe(),
            "samples": n,
            "input": os.path.abspath(os.fspath(data)) if data_file is not None else None,
            "input_sha256": sha256_file(data_file) if data_file is not None else None,
            "input_keys": [r.key for r in raws],
            "formats": list(fmts),
            "byte_order": "little",
            "layout": "each tensor in its own shape from the model (NHWC for images), C order; sample axis first",
            "tensors": tensors,
            "ops": ops,
        }
        (tmp / "manifest.json").write_text(dumps_manifest(manifest))
        _install(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def write_dump(
    out_dir: str | os.PathLike,
    tensors: Mapping[int, np.ndarray],
    *,
    model: Model | str | os.PathLike | None = None,
    force: bool = False,
    info: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write arrays from any implementation in the golden-dump layout, for ``refquant diff``.

    ``tensors`` maps a tensor index to its values for N samples, shape ``(N, *shape)`` (every array
    the same N). With ``model`` (a :class:`Model` or .tflite path) the manifest also gets each
    tensor's name, producer op and quantization. ``info`` adds top-level manifest fields (e.g. which
    runtime made the dump). Atomic like :func:`export_golden`; returns the manifest.
    """
    out = Path(out_dir)
    _prepare_target(out, force)
    m: Model | None = None
    if model is not None:
        from .tflite.reader import load_model

        m = model if isinstance(model, Model) else load_model(model)
    counts = {int(np.shape(a)[0]) if np.ndim(a) else 0 for a in tensors.values()}
    if len(counts) != 1 or 0 in counts:
        raise InputError(f"every array needs the same number of samples N >= 1 on axis 0; found {sorted(counts)}")
    n = counts.pop()
    width = max(4, len(str(max(tensors, default=0))))
    tmp = _work_dir(out, "tmp")
    try:
        (tmp / "tensors").mkdir()
        entries = []
        producer = {o: op for op in m.main.operators for o in op.outputs} if m is not None else {}
        for i in sorted(tensors):
            arr = np.asarray(tensors[i])
            name = m.main.tensors[i].name if m is not None and 0 <= i < len(m.main.tensors) else None
            rel = f"tensors/t{int(i):0{width}d}{'_' + _slug(name) if name else ''}.npy"
            np.save(tmp / rel, arr)
            entry: dict[str, Any] = {
                "index": int(i),
                "name": name,
                "dtype": str(arr.dtype),
                "shape": list(arr.shape[1:]),
            }
            if m is not None and 0 <= i < len(m.main.tensors):
                op = producer.get(i)
                entry.update(
                    kind=_tensor_kind(m.main, i),
                    op_index=op.index if op is not None else -1,
                    opcode=op.opcode if op is not None else None,
                    **_quant_fields(m.main, i),
                )
            entry.update(per_sample=True, file=rel)
            entries.append(entry)
        manifest = {"format": FORMAT, **dict(info or {}), "samples": n, "byte_order": "little", "tensors": entries}
        (tmp / "manifest.json").write_text(dumps_manifest(manifest))
        _install(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest
