"""``refquant inspect``: a readable (or JSON) summary of a model's structure."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from .model import Model, QuantParams, Tensor

__all__ = ["model_summary", "format_summary"]


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    return v


def _quant(q: QuantParams | None) -> dict | None:
    if q is None:
        return None
    return {
        "scale": [float(s) for s in q.scale],
        "zero_point": [int(z) for z in q.zero_point],
        "quantized_dimension": int(q.quantized_dimension),
    }


def _options(opts: Any) -> dict:
    out = {}
    for k, v in dict(opts).items():
        if isinstance(v, dict) or (isinstance(v, tuple) and v and isinstance(v[0], dict)):
            continue  # nested tables (none in the options refquant runs)
        out[k] = _jsonable(v)
    return out


def model_summary(model: Model) -> dict:
    """The JSON-able summary ``refquant inspect --json`` prints (see the README for its shape)."""
    sgs = []
    for s, sg in enumerate(model.subgraphs):
        tensors = [
            {
                "index": t.index,
                "name": t.name,
                "shape": list(t.shape),
                "shape_signature": list(t.shape_signature) if t.shape_signature is not None else None,
                "dtype": t.dtype,
                "quantization": _quant(t.quantization),
                "buffer": t.buffer,
                "constant": t.is_constant,
            }
            for t in sg.tensors
        ]
        ops = [
            {
                "index": op.index,
                "opcode": op.opcode,
                "version": op.version,
                "inputs": list(op.inputs),
                "outputs": list(op.outputs),
                "intermediates": list(op.intermediates),
                "options": _options(op.options),
                **({"custom_code": op.custom_code} if op.custom_code else {}),
            }
            for op in sg.operators
        ]
        sgs.append(
            {
                "index": s,
                "name": sg.name,
                "inputs": list(sg.inputs),
                "outputs": list(sg.outputs),
                "tensors": tensors,
                "operators": ops,
            }
        )
    weight_bytes: Counter[str] = Counter()
    for sg in model.subgraphs:
        for t in sg.tensors:
            if t.data is not None:
                weight_bytes[t.dtype] += _stored_bytes(t)
    histogram = Counter(op.opcode for sg in model.subgraphs for op in sg.operators)
    return {
        "version": model.version,
        "description": model.description,
        "subgraphs": sgs,
        "signatures": [
            {
                "key": sig.key,
                "subgraph_index": sig.subgraph_index,
                "inputs": dict(sig.inputs),
                "outputs": dict(sig.outputs),
            }
            for sig in model.signatures
        ],
        "metadata": [{"name": m.name, "bytes": len(m.data)} for m in model.metadata],
        "weight_bytes": dict(sorted(weight_bytes.items())),
        "op_histogram": dict(histogram.most_common()),
    }


def _stored_bytes(t: Tensor) -> int:
    assert t.data is not None
    if t.dtype in ("int4", "uint4"):
        return (t.data.size + 1) // 2
    if t.dtype == "int2":
        return (t.data.size + 3) // 4
    return int(t.data.nbytes)


def _qsummary(t: Tensor) -> str:
    q = t.quantization
    if q is None:
        return ""
    if q.scale.size == 1:
        return f"s={float(q.scale[0]):.4g} zp={int(q.zero_point[0])}"
    return (
        f"per-channel[{q.scale.size}] axis={q.quantized_dimension} s={float(q.scale.min()):.3g}..{float(q.scale.max()):.3g}"
        + (f" zp={int(q.zero_point[0])}" if (q.zero_point == q.zero_point[0]).all() else " zp=mixed")
    )


def _tdesc(t: Tensor) -> str:
    return f"{t.dtype}{list(t.shape)}"


def format_summary(model: Model, name: str = "") -> str:
    """The text form of ``refquant inspect``."""
    lines = []
    total = sum(_stored_bytes(t) for sg in model.subgraphs for t in sg.tensors if t.data is not None)
    lines.append(f"model {name}  (schema version {model.version}; {len(model.subgraphs)} subgraph(s))")
    if model.description:
        lines.append(f"description: {model.description}")
    for s, sg in enumerate(model.subgraphs):
        lines.append("")
        lines.append(f"subgraph {s} {sg.name!r}: {len(sg.tensors)} tensors, {len(sg.operators)} operators")
        for role, idx in (("input ", sg.inputs), ("output", sg.outputs)):
            for i in idx:
                t = sg.tensors[i]
                lines.append(f"  {role} {i:4d} {t.name!r} {_tdesc(t)} {_qsummary(t)}".rstrip())
        lines.append(f"  {'#':>4}  {'opcode':<24} {'inputs':<48} outputs")
        for op in sg.operators:
            ins = ", ".join("-" if i < 0 else _tdesc(sg.tensors[i]) for i in op.inputs)
            outs = ", ".join(_tdesc(sg.tensors[o]) for o in op.outputs)
            lines.append(f"  {op.index:4d}  {op.opcode:<24} {ins:<48} {outs}")
            for o in op.outputs:
                q = _qsummary(sg.tensors[o])
                if q:
                    lines.append(f"        -> {sg.tensors[o].name!r} {q}")
    lines.append("")
    summary = model_summary(model)
    lines.append(
        "weights: "
        + (", ".join(f"{dt} {n:,} B" for dt, n in summary["weight_bytes"].items()) or "none")
        + f" (total {total:,} B)"
    )
    lines.append("ops: " + ", ".join(f"{k} x{v}" for k, v in summary["op_histogram"].items()))
    if model.signatures:
        lines.append("signatures: " + ", ".join(f"{s.key} (subgraph {s.subgraph_index})" for s in model.signatures))
    return "\n".join(lines)
