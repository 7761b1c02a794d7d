"""Read .tflite bytes into an immutable :class:`refquant.model.Model`, checking everything."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import ModelFormatError
from ..model import (
    PACKED_TYPES,
    TENSOR_TYPES,
    Metadata,
    Model,
    Operator,
    QuantParams,
    SignatureDef,
    SubGraph,
    Tensor,
    numpy_dtype,
)
from . import _schema
from .flatbuf import Decoder, decode_model_tables

__all__ = ["load_model", "read_model", "decode_options", "default_options", "BUILTIN_OPERATORS", "BUILTIN_CODES"]

#: BuiltinOperator value -> name, and back.
BUILTIN_CODES: dict[str, int] = dict(_schema.ENUMS["BuiltinOperator"][1])
BUILTIN_OPERATORS: dict[int, str] = {v: k for k, v in BUILTIN_CODES.items()}

#: The largest rank refquant accepts (LiteRT's kernels stop at 6; a little slack for shape ops).
MAX_RANK = 16
#: Most elements one tensor shape may describe (2^40: far above any real model, far below overflow).
MAX_ELEMENTS = 1 << 40
#: Largest file read from a path (bytes); larger models need the bytes passed in directly.
MAX_FILE_BYTES = 1 << 34


def load_model(source: str | os.PathLike | bytes | bytearray | memoryview) -> Model:
    """Read a .tflite model from a path or from its bytes.

    Raises :class:`refquant.ModelFormatError` for anything malformed, naming the byte offset or the
    subgraph/operator/tensor and what was expected; :class:`refquant.InputError` for an unreadable
    path.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        return read_model(bytes(source))
    from ..errors import InputError

    path = Path(source)
    try:
        import stat

        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"model file {str(path)!r} is not a regular file")
        size = st.st_size
        if size > MAX_FILE_BYTES:
            raise InputError(f"{path}: {size} bytes is larger than refquant reads ({MAX_FILE_BYTES})")
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read model file {str(path)!r}: {exc.strerror or exc}") from None
    return read_model(data)


def decode_options(table: str, values: dict) -> dict:
    """Turn a decoded options table into plain Python: enums as member names, vectors as tuples."""
    out: dict = {}
    for fname, _slot, kind, ftype, default in _schema.TABLES[table]:
        v = values.get(fname, default)
        if kind == "enum":
            members = {val: name for name, val in _schema.ENUMS[ftype][1].items()}
            out[fname] = members.get(v, v)
        elif kind in ("vector_scalar", "vector_enum"):
            out[fname] = None if v is None else tuple(v.tolist())
        elif kind in ("table", "vector_table", "union"):
            out[fname] = v
        else:
            out[fname] = v
    return out


def default_options(table: str) -> dict:
    """Every field of an options table at its schema default."""
    return decode_options(table, {})


def _where(sg: int, what: str) -> str:
    return f"subgraph {sg}, {what}"


def _buffers(root: dict, dec: Decoder) -> list[memoryview]:
    bufs = []
    for i, b in enumerate(root.get("buffers") or ()):
        path = f"Model.buffers[{i}]"
        offset, size = b["offset"], b["size"]
        if offset > 1:
            # Data stored after the flatbuffer (ai-edge-quantizer, models > 2 GB): offset counts
            # from the start of the file.
            bufs.append(dec.raw(offset, size, path))
        elif b["data"] is not None:
            bufs.append(memoryview(b["data"]).cast("B"))
        else:
            bufs.append(memoryview(b""))
    return bufs


def _quant(q: dict | None, shape: tuple[int, ...], where: str) -> QuantParams | None:
    if q is None:
        return None
    scale, zp = q["scale"], q["zero_point"]
    if q.get("details") is not None:
        raise ModelFormatError(f"{where}: quantization details {q['details'][0]} are not supported")
    if scale is None or len(scale) == 0:
        if zp is not None and len(zp):
            raise ModelFormatError(f"{where}: {len(zp)} zero points but no scales")
        return None  # min/max only (e.g. a float tensor with recorded range)
    if zp is None:
        zp = np.zeros(len(scale), dtype=np.int64)
    if len(zp) != len(scale):
        raise ModelFormatError(f"{where}: {len(scale)} scales but {len(zp)} zero points; expected equal counts")
    qd = int(q["quantized_dimension"])
    if len(scale) > 1:
        if not 0 <= qd < max(len(shape), 1):
            raise ModelFormatError(f"{where}: quantized_dimension {qd} is outside the tensor's rank {len(shape)}")
        if shape and shape[qd] != len(scale):
            raise ModelFormatError(f"{where}: {len(scale)} per-channel scales but dimension {qd} has size {shape[qd]}")
    mn = q["min"] if q["min"] is not None and len(q["min"]) else None
    mx = q["max"] if q["max"] is not None and len(q["max"]) else None
    return QuantParams(scale, zp, qd, mn, mx)


def _unpack(raw: memoryview, dtype: str, count: int) -> np.ndarray:
    bits, storage = PACKED_TYPES[dtype]
    per = 8 // bits
    b = np.frombuffer(raw, dtype=np.uint8)
    parts = [(b >> (bits * k)) & ((1 << bits) - 1) for k in range(per)]
    vals = np.stack(parts, axis=-1).reshape(-1)[:count].astype(np.int16)
    if storage == "int8":
        vals = np.where(vals >= (1 << (bits - 1)), vals - (1 << bits), vals)
    return vals.astype(storage)


def _tensor(i: int, t: dict, bufs: list[memoryview], sg: int) -> Tensor:
    name = t["name"] or ""
    where = _where(sg, f"tensor {i} {name!r}")
    shape_arr = t["shape"]
    shape = tuple(int(v) for v in shape_arr) if shape_arr is not None else ()
    if len(shape) > MAX_RANK:
        raise ModelFormatError(f"{where}: rank {len(shape)} is larger than refquant accepts ({MAX_RANK})")
    if any(d < 0 for d in shape):
        raise ModelFormatError(f"{where}: shape {list(shape)} has a negative dimension")
    nonzero = 1
    for d in shape:
        nonzero *= max(d, 1)
    if nonzero > MAX_ELEMENTS:
        raise ModelFormatError(f"{where}: shape {list(shape)} has more than {MAX_ELEMENTS} elements")
    sig = t["shape_signature"]
    signature = tuple(int(v) for v in sig) if sig is not None else None
    if signature is not None and (
        len(signature) != len(shape) or any(s < -1 or (s != -1 and s != d) for s, d in zip(signature, shape))
    ):
        raise ModelFormatError(f"{where}: shape_signature {list(signature)} does not fit shape {list(shape)}")
    type_code = t["type"]
    if type_code not in TENSOR_TYPES:
        raise ModelFormatError(f"{where}: tensor type {type_code} is not a TFLite TensorType")
    dtype = TENSOR_TYPES[type_code]
    buf = t["buffer"]
    if buf >= len(bufs):
        raise ModelFormatError(f"{where}: buffer index {buf} is out of range (model has {len(bufs)} buffers)")
    sparse = t["sparsity"] is not None
    raw = bufs[buf]
    count = 1
    for d in shape:
        count *= d
    data = None
    if len(raw) and not sparse and dtype not in ("string", "resource", "variant"):
        if dtype in PACKED_TYPES:
            bits = PACKED_TYPES[dtype][0]
            need = (count * bits + 7) // 8
            if len(raw) != need:
                raise ModelFormatError(
                    f"{where}: buffer {buf} has {len(raw)} bytes; shape {list(shape)} of {dtype} needs {need}"
                )
            data = _unpack(raw, dtype, count).reshape(shape)
            data.flags.writeable = False
        else:
            npd = numpy_dtype(dtype)
            need = count * npd.itemsize
            if len(raw) != need:
                raise ModelFormatError(
                    f"{where}: buffer {buf} has {len(raw)} bytes; shape {list(shape)} of {dtype} needs {need}"
                )
            data = np.frombuffer(raw, dtype=npd.newbyteorder("<"), count=count).reshape(shape)
    elif len(raw) and dtype in ("string",):
        data = np.frombuffer(raw, dtype=np.uint8)
    elif buf > 0 and count == 0 and not sparse:
        data = np.zeros(shape, dtype=numpy_dtype(dtype))
        data.flags.writeable = False
    return Tensor(
        index=i,
        name=name,
        shape=shape,
        dtype=dtype,
        buffer=buf,
        quantization=_quant(t["quantization"], shape, where),
        shape_signature=signature,
        is_variable=bool(t["is_variable"]),
        has_rank=bool(t["has_rank"]),
        sparse=sparse,
        data=data,
    )


def _indices(arr: np.ndarray | None) -> tuple[int, ...]:
    return () if arr is None else tuple(int(v) for v in arr)


def _operator(k: int, o: dict, codes: list[tuple[str, int, int, str | None]], ntensors: int, sg: int) -> Operator:
    oc = o["opcode_index"]
    if oc >= len(codes):
        raise ModelFormatError(
            _where(sg, f"operator {k}: opcode_index {oc} is out of range (model has {len(codes)} operator codes)")
        )
    opcode, code, version, custom = codes[oc]
    where = _where(sg, f"operator {k} ({opcode})")
    inputs, outputs, inter = _indices(o["inputs"]), _indices(o["outputs"]), _indices(o["intermediates"])
    for role, idx, lo in (("input", inputs, -1), ("output", outputs, 0), ("intermediate", inter, 0)):
        for j, t in enumerate(idx):
            if not lo <= t < ntensors:
                raise ModelFormatError(
                    f"{where}: {role} {j} is tensor {t}; expected {lo}..{ntensors - 1} ({ntensors} tensors)"
                )
    options: dict = {}
    options_type = None
    for key in ("builtin_options", "builtin_options_2"):
        if o[key] is not None:
            options_type, values = o[key]
            options.update(decode_options(options_type, values))
    custom_options = bytes(o["custom_options"].tobytes()) if o["custom_options"] is not None else None
    return Operator(
        index=k,
        opcode=opcode,
        builtin_code=code,
        version=version,
        inputs=inputs,
        outputs=outputs,
        intermediates=inter,
        options=options,
        options_type=options_type,
        custom_code=custom,
        custom_options=custom_options,
    )


def _check_dataflow(sgi: int, sg: SubGraph) -> None:
    """Every operator input must be a graph input, constant, variable or an earlier output."""
    tensors = sg.tensors
    available = set(sg.inputs)
    available.update(t.index for t in tensors if t.is_constant or t.is_variable)
    producer: dict[int, int] = {}
    for op in sg.operators:
        for t in op.inputs:
            if t >= 0 and t not in available:
                later = next((o.index for o in sg.operators if t in o.outputs), None)
                why = (
                    f"which operator {later} produces later (operators out of order or a cycle)"
                    if later is not None
                    else "which is not a graph input, a constant, or any operator's output (dangling)"
                )
                raise ModelFormatError(
                    _where(sgi, f"operator {op.index} ({op.opcode}) reads tensor {t} {tensors[t].name!r} {why}")
                )
        for t in op.outputs:
            if t in producer or tensors[t].is_constant:
                first = f"operator {producer[t]}" if t in producer else "a constant buffer"
                raise ModelFormatError(
                    _where(
                        sgi,
                        f"operator {op.index} ({op.opcode}) writes tensor {t} {tensors[t].name!r}, "
                        f"already written by {first}",
                    )
                )
            producer[t] = op.index
            available.add(t)
    for t in sg.outputs:
        if t not in available:
            raise ModelFormatError(
                _where(sgi, f"output tensor {t} {tensors[t].name!r} is never produced by any operator")
            )


def read_model(data: bytes) -> Model:
    """Decode .tflite bytes into a Model (see :func:`load_model`)."""
    try:
        root, dec = decode_model_tables(data)
    except RecursionError:  # pragma: no cover - the schema is not recursive; defensive
        raise ModelFormatError("flatbuffer nesting too deep") from None
    bufs = _buffers(root, dec)
    codes = []
    for i, oc in enumerate(root["operator_codes"] or ()):
        code = max(int(oc["deprecated_builtin_code"]), int(oc["builtin_code"]))
        if code not in BUILTIN_OPERATORS:
            raise ModelFormatError(f"Model.operator_codes[{i}]: builtin code {code} is not a TFLite BuiltinOperator")
        codes.append((BUILTIN_OPERATORS[code], code, int(oc["version"]), oc["custom_code"]))
    raw_sgs = root["subgraphs"] or ()
    if not raw_sgs:
        raise ModelFormatError("Model.subgraphs: the model has no subgraph")
    subgraphs = []
    for s, sg in enumerate(raw_sgs):
        raw_tensors = sg["tensors"] or ()
        tensors = tuple(_tensor(i, t, bufs, s) for i, t in enumerate(raw_tensors))
        n = len(tensors)
        ops = tuple(_operator(k, o, codes, n, s) for k, o in enumerate(sg["operators"] or ()))
        gin, gout = _indices(sg["inputs"]), _indices(sg["outputs"])
        for role, idx in (("input", gin), ("output", gout)):
            for t in idx:
                if not 0 <= t < n:
                    raise ModelFormatError(_where(s, f"graph {role} tensor {t} is out of range ({n} tensors)"))
        subgraph = SubGraph(name=sg["name"] or "", tensors=tensors, operators=ops, inputs=gin, outputs=gout)
        _check_dataflow(s, subgraph)
        subgraphs.append(subgraph)
    sigs = []
    for i, sd in enumerate(root["signature_defs"] or ()):
        sgi = sd["subgraph_index"]
        if sgi >= len(subgraphs):
            raise ModelFormatError(f"signature {i}: subgraph_index {sgi} is out of range")
        ntens = len(subgraphs[sgi].tensors)
        maps = []
        for role in ("inputs", "outputs"):
            entries = []
            for tm in sd[role] or ():
                if tm["tensor_index"] >= ntens:
                    raise ModelFormatError(
                        f"signature {sd['signature_key']!r}: {role} {tm['name']!r} names tensor "
                        f"{tm['tensor_index']}, out of range ({ntens} tensors in subgraph {sgi})"
                    )
                entries.append((tm["name"] or "", int(tm["tensor_index"])))
            maps.append(tuple(entries))
        sigs.append(SignatureDef(sd["signature_key"] or "", int(sgi), maps[0], maps[1]))
    metas = []
    for i, md in enumerate(root["metadata"] or ()):
        if md["buffer"] >= len(bufs):
            raise ModelFormatError(f"Model.metadata[{i}] {md['name']!r}: buffer {md['buffer']} is out of range")
        metas.append(Metadata(md["name"] or "", bytes(bufs[md["buffer"]])))
    return Model(
        subgraphs=tuple(subgraphs),
        version=int(root["version"]),
        description=root["description"] or "",
        signatures=tuple(sigs),
        metadata=tuple(metas),
    )
