"""Write a :class:`refquant.model.Model` as .tflite bytes (table-driven, the mirror of the reader)."""

from __future__ import annotations

import flatbuffers
import numpy as np

from ..errors import ModelFormatError
from ..model import PACKED_TYPES, TENSOR_TYPE_CODES, Model, Operator, Tensor
from . import _schema
from .flatbuf import SCALAR_DTYPES, scalar_base
from .reader import BUILTIN_CODES

__all__ = ["write_model", "encode_options", "OPTIONS_TABLE"]

_SLOT = {
    "bool": "PrependBoolSlot",
    "byte": "PrependInt8Slot",
    "ubyte": "PrependUint8Slot",
    "short": "PrependInt16Slot",
    "ushort": "PrependUint16Slot",
    "int": "PrependInt32Slot",
    "uint": "PrependUint32Slot",
    "long": "PrependInt64Slot",
    "ulong": "PrependUint64Slot",
    "float": "PrependFloat32Slot",
    "double": "PrependFloat64Slot",
}

#: Options table an opcode uses when a model built in Python gives options without naming the table.
OPTIONS_TABLE: dict[str, str] = {
    "ADD": "AddOptions",
    "SUB": "SubOptions",
    "MUL": "MulOptions",
    "DIV": "DivOptions",
    "CONV_2D": "Conv2DOptions",
    "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
    "TRANSPOSE_CONV": "TransposeConvOptions",
    "FULLY_CONNECTED": "FullyConnectedOptions",
    "BATCH_MATMUL": "BatchMatMulOptions",
    "AVERAGE_POOL_2D": "Pool2DOptions",
    "MAX_POOL_2D": "Pool2DOptions",
    "L2_POOL_2D": "Pool2DOptions",
    "SOFTMAX": "SoftmaxOptions",
    "LOG_SOFTMAX": "LogSoftmaxOptions",
    "CONCATENATION": "ConcatenationOptions",
    "RESHAPE": "ReshapeOptions",
    "SQUEEZE": "SqueezeOptions",
    "EXPAND_DIMS": "ExpandDimsOptions",
    "TRANSPOSE": "TransposeOptions",
    "STRIDED_SLICE": "StridedSliceOptions",
    "SLICE": "SliceOptions",
    "GATHER": "GatherOptions",
    "SHAPE": "ShapeOptions",
    "PACK": "PackOptions",
    "UNPACK": "UnpackOptions",
    "SPLIT": "SplitOptions",
    "SPLIT_V": "SplitVOptions",
    "PAD": "PadOptions",
    "PADV2": "PadV2Options",
    "MEAN": "ReducerOptions",
    "SUM": "ReducerOptions",
    "REDUCE_MAX": "ReducerOptions",
    "REDUCE_MIN": "ReducerOptions",
    "REDUCE_PROD": "ReducerOptions",
    "RESIZE_BILINEAR": "ResizeBilinearOptions",
    "RESIZE_NEAREST_NEIGHBOR": "ResizeNearestNeighborOptions",
    "SPACE_TO_DEPTH": "SpaceToDepthOptions",
    "DEPTH_TO_SPACE": "DepthToSpaceOptions",
    "LEAKY_RELU": "LeakyReluOptions",
    "ARG_MAX": "ArgMaxOptions",
    "ARG_MIN": "ArgMinOptions",
    "MAXIMUM": "MaximumMinimumOptions",
    "MINIMUM": "MaximumMinimumOptions",
    "SQUARED_DIFFERENCE": "SquaredDifferenceOptions",
    "HARD_SWISH": "HardSwishOptions",
    "QUANTIZE": "QuantizeOptions",
    "DEQUANTIZE": "DequantizeOptions",
    "GELU": "GeluOptions",
    "CAST": "CastOptions",
    "TILE": "TileOptions",
    "BROADCAST_TO": "BroadcastToOptions",
    "WHILE": "WhileOptions",
    "IF": "IfOptions",
    "CALL_ONCE": "CallOnceOptions",
    "FILL": "FillOptions",
    "SELECT_V2": "SelectV2Options",
    "CUMSUM": "CumsumOptions",
    "L2_NORMALIZATION": "L2NormOptions",
    "REDUCE_ANY": "ReducerOptions",
    "REDUCE_ALL": "ReducerOptions",
}


def encode_options(table: str, options: dict) -> dict:
    """Inverse of :func:`refquant.tflite.reader.decode_options`: names back to enum values."""
    fields = {f[0]: f for f in _schema.TABLES[table]}
    unknown = set(options) - set(fields)
    if unknown:
        raise ModelFormatError(f"{table} has no field(s) {sorted(unknown)}; fields are {sorted(fields)}")
    out = {}
    for name, value in options.items():
        _, _, kind, ftype, _ = fields[name]
        if kind == "enum" and isinstance(value, str):
            members = _schema.ENUMS[ftype][1]
            if value not in members:
                raise ModelFormatError(f"{table}.{name}: {value!r} is not one of {sorted(members)}")
            value = members[value]
        out[name] = value
    return out


class _Encoder:
    def __init__(self, size_hint: int) -> None:
        self.b = flatbuffers.Builder(max(1024, size_hint))

    def aligned_bytes(self, data: bytes | memoryview, alignment: int) -> int:
        b = self.b
        n = len(data)
        b.StartVector(1, n, alignment)
        b.head -= n
        b.Bytes[b.head : b.head + n] = bytes(data)
        return b.EndVector()

    def offsets_vector(self, offs: list[int]) -> int:
        b = self.b
        b.StartVector(4, len(offs), 4)
        for off in reversed(offs):
            b.PrependUOffsetTRelative(off)
        return b.EndVector()

    def table(self, name: str, d: dict) -> int:
        b = self.b
        fields = _schema.TABLES[name]
        offs: dict[str, object] = {}
        for fname, _slot, kind, ftype, _default in fields:
            v = d.get(fname)
            if v is None:
                continue
            if kind == "string":
                offs[fname] = b.CreateString(v)
            elif kind == "table":
                offs[fname] = self.table(ftype, v)
            elif kind == "union":
                member, vals = v
                offs[fname] = (_schema.UNIONS[ftype].index(member) + 1, self.table(member, vals))
            elif kind in ("vector_scalar", "vector_enum"):
                if name == "Buffer" and fname == "data":
                    offs[fname] = self.aligned_bytes(v, 16)
                else:
                    arr = np.ascontiguousarray(np.asarray(v, dtype=SCALAR_DTYPES[scalar_base(ftype)]).reshape(-1))
                    offs[fname] = b.CreateNumpyVector(arr)
            elif kind == "vector_string":
                offs[fname] = self.offsets_vector([b.CreateString(s) for s in v])
            elif kind == "vector_table":
                offs[fname] = self.offsets_vector([self.table(ftype, t) for t in v])
        nslots = max((f[1] for f in fields), default=-1) + 1
        b.StartObject(nslots)
        for fname, slot, kind, ftype, default in fields:
            if kind in ("scalar", "enum"):
                v = d.get(fname, default)
                if v is None:
                    continue
                getattr(b, _SLOT[scalar_base(ftype)])(slot, v, default)
            elif fname in offs:
                if kind == "union":
                    type_id, off = offs[fname]
                    b.PrependUint8Slot(slot - 1, type_id, 0)
                    b.PrependUOffsetTRelativeSlot(slot, off, 0)
                else:
                    b.PrependUOffsetTRelativeSlot(slot, offs[fname], 0)
        return b.EndObject()


def _pack(data: np.ndarray, dtype: str) -> bytes:
    bits, _ = PACKED_TYPES[dtype]
    per = 8 // bits
    vals = (data.reshape(-1).astype(np.int16) & ((1 << bits) - 1)).astype(np.uint8)
    pad = (-len(vals)) % per
    vals = np.concatenate([vals, np.zeros(pad, np.uint8)]).reshape(-1, per)
    out = np.zeros(len(vals), np.uint8)
    for k in range(per):
        out |= vals[:, k] << (bits * k)
    return out.tobytes()


def _tensor_bytes(t: Tensor) -> bytes:
    assert t.data is not None
    if t.dtype in PACKED_TYPES:
        return _pack(t.data, t.dtype)
    if t.dtype == "string":
        return t.data.tobytes()
    return np.ascontiguousarray(t.data, dtype=t.np_dtype.newbyteorder("<")).tobytes()


def _operator_dict(op: Operator, code_index: dict[tuple[int, str | None, int], int]) -> dict:
    d: dict = {
        "opcode_index": code_index[(op.builtin_code, op.custom_code, op.version)],
        "inputs": list(op.inputs),
        "outputs": list(op.outputs),
    }
    if op.intermediates:
        d["intermediates"] = list(op.intermediates)
    if op.custom_options is not None:
        d["custom_options"] = np.frombuffer(op.custom_options, dtype=np.uint8)
    table = op.options_type or (OPTIONS_TABLE.get(op.opcode) if op.options else None)
    if table is not None:
        key = "builtin_options" if table in _schema.UNIONS["BuiltinOptions"] else "builtin_options_2"
        d[key] = (table, encode_options(table, dict(op.options)))
    return d


def write_model(model: Model) -> bytes:
    """Serialize ``model`` to .tflite bytes (file identifier TFL3, buffers stored inline).

    Tensor buffer indices are kept as they are in the model, so ``load_model(write_model(m)) == m``.
    """
    buffers: dict[int, bytes] = {}
    codes: list[tuple[int, str | None, int]] = []
    code_index: dict[tuple[int, str | None, int], int] = {}
    sg_dicts = []
    for s, sg in enumerate(model.subgraphs):
        tensors = []
        for t in sg.tensors:
            if t.data is not None and t.buffer == 0:
                raise ModelFormatError(f"subgraph {s}, tensor {t.index} {t.name!r}: constant data needs buffer > 0")
            if t.data is not None:
                raw = _tensor_bytes(t)
                if t.buffer in buffers and buffers[t.buffer] != raw:
                    raise ModelFormatError(
                        f"subgraph {s}, tensor {t.index} {t.name!r}: buffer {t.buffer} is shared with "
                        "another tensor holding different data"
                    )
                buffers[t.buffer] = raw
            else:
                buffers.setdefault(t.buffer, b"")
            td: dict = {
                "shape": list(t.shape),
                "type": TENSOR_TYPE_CODES[t.dtype],
                "buffer": t.buffer,
                "name": t.name,
                "is_variable": t.is_variable,
                "has_rank": t.has_rank,
            }
            if t.shape_signature is not None:
                td["shape_signature"] = list(t.shape_signature)
            q = t.quantization
            if q is not None:
                qd: dict = {
                    "scale": q.scale,
                    "zero_point": q.zero_point,
                    "quantized_dimension": q.quantized_dimension,
                }
                if q.min is not None:
                    qd["min"] = q.min
                if q.max is not None:
                    qd["max"] = q.max
                td["quantization"] = qd
            tensors.append(td)
        ops = []
        for op in sg.operators:
            key = (op.builtin_code, op.custom_code, op.version)
            if key not in code_index:
                code_index[key] = len(codes)
                codes.append(key)
            ops.append(_operator_dict(op, code_index))
        sg_dicts.append(
            {
                "tensors": tensors,
                "inputs": list(sg.inputs),
                "outputs": list(sg.outputs),
                "operators": ops,
                "name": sg.name,
            }
        )
    nbuf = max(buffers, default=0) + 1
    buffer_list = [buffers.get(i, b"") for i in range(nbuf)]
    metadata = []
    for md in model.metadata:
        metadata.append({"name": md.name, "buffer": len(buffer_list)})
        buffer_list.append(md.data)
    root = {
        "version": model.version,
        "operator_codes": [
            {
                "deprecated_builtin_code": min(code, 127),
                "builtin_code": code,
                "version": version,
                "custom_code": custom,
            }
            for code, custom, version in codes
        ],
        "subgraphs": sg_dicts,
        "description": model.description,
        "buffers": [{"data": raw} if raw else {} for raw in buffer_list],
        "metadata": metadata or None,
        "signature_defs": [
            {
                "inputs": [{"name": n, "tensor_index": i} for n, i in sig.inputs],
                "outputs": [{"name": n, "tensor_index": i} for n, i in sig.outputs],
                "signature_key": sig.key,
                "subgraph_index": sig.subgraph_index,
            }
            for sig in model.signatures
        ]
        or None,
    }
    total = sum(len(r) for r in buffer_list)
    if total > (1 << 31) - (1 << 24):
        raise ModelFormatError(f"model holds {total} bytes of buffers; refquant writes models below 2 GB")
    enc = _Encoder(total + 65536)
    enc.b.Finish(enc.table("Model", root), file_identifier=_schema.FILE_IDENTIFIER.encode())
    return bytes(enc.b.Output())


def opcode_code(opcode: str) -> int:
    """BuiltinOperator value of an opcode name."""
    try:
        return BUILTIN_CODES[opcode]
    except KeyError:
        raise ModelFormatError(f"{opcode!r} is not a TFLite BuiltinOperator name") from None
