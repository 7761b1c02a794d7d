"""Bounds-checked, table-driven flatbuffer decoding for the TFLite schema.

The Python flatbuffers runtime trusts every offset it reads; this decoder checks each one against
the buffer before using it and raises :class:`refquant.ModelFormatError` naming the byte offset
and the schema path (``Model.subgraphs[0].tensors[7].shape``) of the field that was wrong.

Decoded tables are plain dicts: scalar and enum fields are Python numbers (defaults filled in),
strings are ``str``, vectors of scalars are read-only NumPy views into the file, sub-tables are
dicts, absent optional fields are ``None``. A union field ``x`` decodes to ``(member_name, dict)``
or ``None``.
"""

from __future__ import annotations

import struct

import numpy as np

from ..errors import ModelFormatError
from . import _schema

_FMT = {
    "bool": "<?",
    "byte": "<b",
    "ubyte": "<B",
    "short": "<h",
    "ushort": "<H",
    "int": "<i",
    "uint": "<I",
    "long": "<q",
    "ulong": "<Q",
    "float": "<f",
    "double": "<d",
}
#: Schema scalar type name -> little-endian NumPy dtype (vectors are read and written with these).
SCALAR_DTYPES = {
    "bool": np.dtype("?"),
    "byte": np.dtype("<i1"),
    "ubyte": np.dtype("<u1"),
    "short": np.dtype("<i2"),
    "ushort": np.dtype("<u2"),
    "int": np.dtype("<i4"),
    "uint": np.dtype("<u4"),
    "long": np.dtype("<i8"),
    "ulong": np.dtype("<u8"),
    "float": np.dtype("<f4"),
    "double": np.dtype("<f8"),
}
_SIZE = {k: struct.calcsize(v) for k, v in _FMT.items()}

#: Most table references one file may make the decoder follow (a guard against files whose vectors point
#: many times at the same table: one 20 MB file referenced one tensor table 4.9M times). Real models
#: follow tens of thousands at most; a table referenced again is decoded once and shared.
MAX_OBJECTS = 500_000


def scalar_base(type_name: str) -> str:
    """The underlying scalar type of a scalar or enum type name."""
    if type_name in _FMT:
        return type_name
    return _schema.ENUMS[type_name][0]


class Decoder:
    """Decode one flatbuffer (the bytes of a .tflite file) against the TFLite schema tables."""

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self.data = bytes(data) if not isinstance(data, bytes) else data
        self.size = len(self.data)
        self.objects = 0
        self._decoded: dict[tuple[int, str], dict] = {}

    # -- primitive reads -------------------------------------------------------------------------
    def fail(self, pos: int, path: str, msg: str) -> ModelFormatError:
        """Build the error for a bad field at byte ``pos``."""
        return ModelFormatError(f"byte offset {pos}: {path}: {msg} (file size {self.size})")

    def read(self, fmt_name: str, pos: int, path: str) -> object:
        """Read one scalar of schema type ``fmt_name`` at ``pos``, checking bounds."""
        n = _SIZE[fmt_name]
        if pos < 0 or pos + n > self.size:
            raise self.fail(pos, path, f"{n}-byte {fmt_name} lies outside the file")
        return struct.unpack_from(_FMT[fmt_name], self.data, pos)[0]

    def follow(self, pos: int, path: str) -> int:
        """Follow the uoffset stored at ``pos``; return the absolute target position."""
        off = self.read("uint", pos, path)
        target = pos + off
        if off == 0 or target >= self.size:
            raise self.fail(pos, path, f"offset {off} points outside the file")
        return target

    # -- structure -------------------------------------------------------------------------------
    def root(self) -> dict:
        """Decode the root ``Model`` table, checking the file identifier first."""
        if self.size < 8:
            raise ModelFormatError(f"file is {self.size} bytes long; a .tflite file has at least 8")
        ident = self.data[4:8]
        if ident != _schema.FILE_IDENTIFIER.encode():
            raise ModelFormatError(
                f"byte offset 4: file identifier is {ident!r}, expected {_schema.FILE_IDENTIFIER!r} "
                "(not a TFLite flatbuffer)"
            )
        return self.table(self.follow(0, "root"), _schema.ROOT_TYPE, "Model")

    def _vtable(self, pos: int, path: str) -> tuple[int, int, int]:
        soff = self.read("int", pos, path)
        vt = pos - soff
        vt_len = self.read("ushort", vt, path + " (vtable)")
        obj_len = self.read("ushort", vt + 2, path + " (vtable)")
        if vt_len < 4 or vt_len % 2 or vt + vt_len > self.size:
            raise self.fail(vt, path, f"vtable length {vt_len} is invalid")
        if obj_len < 4 or pos + obj_len > self.size:
            raise self.fail(pos, path, f"table length {obj_len} runs past the end of the file")
        return vt, vt_len, obj_len

    def _field_pos(self, pos: int, vt: int, vt_len: int, obj_len: int, slot: int, size: int, path: str) -> int:
        entry = 4 + 2 * slot
        if entry + 2 > vt_len:
            return 0
        off = self.read("ushort", vt + entry, path)
        if off == 0:
            return 0
        if off + size > obj_len:
            raise self.fail(pos + off, path, f"field of {size} bytes lies outside its table ({obj_len} bytes)")
        return pos + off

    def table(self, pos: int, name: str, path: str) -> dict:
        """Decode table ``name`` at absolute position ``pos`` (decoded once per position; callers do not mutate it)."""
        self.objects += 1
        if self.objects > MAX_OBJECTS:
            raise self.fail(pos, path, f"more than {MAX_OBJECTS} table references: refusing to decode further")
        done = self._decoded.get((pos, name))
        if done is not None:
            return done
        out = self._decode_table(pos, name, path)
        self._decoded[(pos, name)] = out
        return out

    def _decode_table(self, pos: int, name: str, path: str) -> dict:
        vt, vt_len, obj_len = self._vtable(pos, path)
        out: dict = {}
        for fname, slot, kind, ftype, default in _schema.TABLES[name]:
            fpath = f"{path}.{fname}"
            if kind in ("scalar", "enum"):
                base = scalar_base(ftype)
                fp = self._field_pos(pos, vt, vt_len, obj_len, slot, _SIZE[base], fpath)
                out[fname] = self.read(base, fp, fpath) if fp else default
            elif kind == "union":
                tp = self._field_pos(pos, vt, vt_len, obj_len, slot - 1, 1, fpath + "_type")
                type_id = self.read("ubyte", tp, fpath + "_type") if tp else 0
                vp = self._field_pos(pos, vt, vt_len, obj_len, slot, 4, fpath)
                members = _schema.UNIONS[ftype]
                if type_id == 0 or not vp:
                    out[fname] = None
                elif type_id > len(members):
                    raise self.fail(tp, fpath + "_type", f"union type {type_id} is not a member of {ftype}")
                else:
                    member = members[type_id - 1]
                    out[fname] = (member, self.table(self.follow(vp, fpath), member, fpath))
            else:
                fp = self._field_pos(pos, vt, vt_len, obj_len, slot, 4, fpath)
                if not fp:
                    out[fname] = None
                    continue
                target = self.follow(fp, fpath)
                if kind == "string":
                    out[fname] = self.string(target, fpath)
                elif kind == "table":
                    out[fname] = self.table(target, ftype, fpath)
                elif kind in ("vector_scalar", "vector_enum"):
                    out[fname] = self.scalar_vector(target, scalar_base(ftype), fpath)
                elif kind == "vector_string":
                    out[fname] = tuple(
                        self.string(self.follow(p, f"{fpath}[{i}]"), f"{fpath}[{i}]")
                        for i, p in enumerate(self._offset_vector(target, fpath))
                    )
                elif kind == "vector_table":
                    out[fname] = tuple(
                        self.table(self.follow(p, f"{fpath}[{i}]"), ftype, f"{fpath}[{i}]")
                        for i, p in enumerate(self._offset_vector(target, fpath))
                    )
                else:  # pragma: no cover - schemagen emits only the kinds above
                    raise AssertionError(kind)
        return out

    def _vector_header(self, pos: int, elem_size: int, path: str) -> tuple[int, int]:
        n = self.read("uint", pos, path + " (length)")
        start = pos + 4
        if n * elem_size > self.size - start:
            raise self.fail(pos, path, f"vector of {n} x {elem_size}-byte elements runs past the end of the file")
        return start, n

    def _offset_vector(self, pos: int, path: str) -> range:
        start, n = self._vector_header(pos, 4, path)
        return range(start, start + 4 * n, 4)

    def scalar_vector(self, pos: int, base: str, path: str) -> np.ndarray:
        """A read-only NumPy view of a vector of scalars (no copy)."""
        start, n = self._vector_header(pos, _SIZE[base], path)
        arr = np.frombuffer(self.data, dtype=SCALAR_DTYPES[base], count=n, offset=start)
        if base == "bool":
            arr = arr.view(np.uint8).astype(bool)  # any non-zero byte is true; copy is tiny
        return arr

    def string(self, pos: int, path: str) -> str:
        """Decode a UTF-8 string."""
        start, n = self._vector_header(pos, 1, path)
        raw = self.data[start : start + n]
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.fail(start + exc.start, path, "string is not valid UTF-8") from None

    def raw(self, start: int, length: int, path: str) -> memoryview:
        """Bytes ``[start, start+length)`` of the file, checked."""
        if start < 0 or length < 0 or start + length > self.size:
            raise self.fail(start, path, f"{length} bytes at offset {start} lie outside the file")
        return memoryview(self.data)[start : start + length]


def decode_model_tables(data: bytes | bytearray | memoryview) -> tuple[dict, Decoder]:
    """Decode the whole model into nested dicts; returns the root dict and the decoder."""
    dec = Decoder(data)
    return dec.root(), dec
