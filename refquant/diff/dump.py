"""Golden dumps as ``refquant diff`` reads them: the manifest, its tensor entries, their arrays.

``REF_DIR`` is a dump written by ``refquant golden``; ``OTHER_DIR`` is a dump in the same layout from
any other implementation (a hardware simulator, an RTL testbench, another runtime). OTHER needs only
``manifest.json`` with ``samples`` and ``tensors: [{"index" or "name", "file", ...}]`` (``dtype`` and
``shape`` too for raw ``.bin`` files); tensors it lacks are reported as missing, not as errors
(docs/golden_format.md). Every manifest field is checked here, and every file a manifest names must
lie inside its dump: a dump cannot make refquant read anything else.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..escape import terminal
from ..inputs import MAX_ARRAY_BYTES, regular_file

__all__ = ["DumpTensor", "Dump", "load_dump", "DUMP_DTYPES"]


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
DUMP_DTYPES = ("int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "bool")
DUMP_DTYPES += ("float16", "float32", "float64")


def _dtype_field(v: Any, where: str) -> str | None:
    if v is None:
        return None
    if not isinstance(v, str) or v not in DUMP_DTYPES:
        raise InputError(f"{where}: dtype {terminal(repr(v))} is not one of {list(DUMP_DTYPES)}")
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
