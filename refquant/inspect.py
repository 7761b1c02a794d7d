"""``refquant inspect``: a readable (or JSON) summary of a model's structure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from .model import Model, QuantParams, Tensor

__all__ = ["model_summary", "format_summary", "arithmetic_table", "format_arithmetic", "RESCALE_FORMULAS"]


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


# ---------------------------------------------------------------------------------------------
# ``refquant inspect --arithmetic``: which arithmetic each operator runs under each profile

_CONV = ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED", "BATCH_MATMUL")
_Q8 = ("int8", "uint8")

#: Rescaling variant -> the formula in words (variants named in :mod:`refquant.arithmetic.decide`).
RESCALE_FORMULAS: dict[str, str] = {
    "neon_mbqm": "MultiplyByQuantizedMultiplier as NEON computes it (vqrdmulh then vrshl): ties up at both stages",
    "fp32_rne": "XNNPACK float requantization: rne(f32(acc) * f32(f32(s_in*s_w)/s_out)) + zp_out, "
    "fused-activation bounds rounded half to even",
    "mbqm_double": "MultiplyByQuantizedMultiplier with double rounding (ties up, then away from zero)",
    "xnn_add20": "XNNPACK add: 20-bit multipliers lrintf(|s_x/s_out| * 2^shift), one arithmetic shift, ties up",
    "xnn_mul8": "XNNPACK 8-bit multiplier lrintf(256 * ratio), >> 8 with ties up",
    "xnn_float_reduce": "XNNPACK reduce: int32 sum of raw values, float32 scale and zero point, round half to even",
    "xnn_q11": "XNNPACK bilinear: Q11 fixed-point weights lrintf(frac * 2048) on the raw values, (acc + 2^21) >> 22",
    "float_round_away": "the true sum rescaled in float32: round_away(f32(S) * f32(s_in/s_out) + bias) + zp_out",
    "mbqm_int16_wrap": "MultiplyByQuantizedMultiplier, saturate to int16, add zp_out in int16 with wrap-around, "
    "saturate to the output type",
    "rne_reciprocal": "rne(f32(x * f32(1/s))) + zp (multiply by the reciprocal, round half to even)",
    "two_products": "f32(q * s) - f32(zp * s) (two float products, then subtract)",
    "legacy_mean": "optimized global average pooling: int32 sum of raw values, float32 multiplier "
    "QuantizeMultiplier(f32(s_in / f32(n * s_out))), bias zp_out - trunc(zp_in*s_in/s_out +- 0.5)",
    "correct_sum": "the true sum S - n*zp_in, MultiplyByQuantizedMultiplier(QuantizeMultiplier(s_in/s_out)) + zp_out",
    "raw_clamp": "no requantization: clamp to [zp_in, zp_in + round(6 / s_in)] in the input's quantization",
    "first_scale": "per-channel parameters ignored: scale[0] and zero_point[0] for every element",
}


def _reference_formula(opcode: str, dtype: str, rounding: str) -> str:
    """The LiteRT reference kernel's rescaling of ``opcode`` on ``dtype``, in words."""
    mbqm = (
        "MultiplyByQuantizedMultiplier, double rounding (ties up, then away from zero)"
        if rounding == "double"
        else "MultiplyByQuantizedMultiplier, single rounding (TFLITE_SINGLE_ROUNDING)"
    )
    if opcode == "QUANTIZE":
        return "round_away(x / s) + zp (float32 division)" if dtype == "float32" else f"requantize: {mbqm}"
    if opcode == "DEQUANTIZE":
        return "f32(q - zp) * s"
    if dtype in ("float32", "float16"):
        return "float arithmetic"
    if opcode == "FULLY_CONNECTED" and dtype in _Q8:
        return "one rounding of acc * (s_in*s_w/s_out) in float64, ties away from zero"
    if opcode in _CONV or opcode in ("MUL", "MEAN", "SUM", "LEAKY_RELU", "AVERAGE_POOL_2D"):
        return mbqm
    if opcode in ("ADD", "SUB"):
        return f"TFLite fixed point: inputs shifted left 20, three {mbqm.split(',')[0]}s"
    if opcode in ("LOGISTIC", "TANH") and dtype in _Q8:
        return "256-entry lookup table built in float from the reference function"
    return "as LiteRT's reference kernel"


def _accumulator(opcode: str, dtype: str, arith: Any) -> str:
    if arith.accumulator:
        return arith.accumulator
    if opcode in _CONV or opcode in ("MEAN", "SUM", "AVERAGE_POOL_2D"):
        if dtype in _Q8:
            return "int32, then float32" if arith.rescale in ("fp32_rne", "xnn_float_reduce") else "int32"
        if dtype == "int16":
            return "int64"
        if dtype == "float32":
            return "float32"
    return ""


def _op_dtype(ctx: Any) -> str:
    """The operator's data type: its first input's (TRANSPOSE_CONV: the activations', input 2)."""
    if ctx.op.opcode == "TRANSPOSE_CONV" and len(ctx.inputs) > 2 and ctx.inputs[2] is not None:
        return ctx.inputs[2].dtype
    for t in ctx.inputs:
        if t is not None:
            return t.dtype
    return ctx.outputs[0].dtype if ctx.outputs else ""


def _decision(ctx: Any, profile: str) -> dict:
    """One operator's row under one profile: the decision and whether refquant's kernel implements it."""
    from .arithmetic.decide import decide
    from .errors import RefquantError, UnsupportedOpError
    from .ops import REGISTRY

    try:
        a = decide(profile, ctx)
    except UnsupportedOpError as exc:
        return {"unsupported": str(exc)}
    dtype = _op_dtype(ctx)
    op = ctx.op.opcode
    formula = (
        _reference_formula(op, dtype, ctx.rounding)
        if a.rescale in ("reference", "")
        else RESCALE_FORMULAS.get(a.rescale, a.rescale)
    )
    if a.blocks:
        unit = "flat elements" if "flat" in a.note or op not in (*_CONV, "MEAN") else "output channels"
        formula += f", on SIMD blocks of {a.blocks} {unit}; the remainder as the scalar code (see the note)"
    row: dict[str, Any] = {
        "executor": a.executor,
        "accumulator": _accumulator(op, dtype, a),
        "rescale": a.rescale,
        "formula": formula,
        "blocks": a.blocks,
        "note": a.note,
    }
    if a.rescale != "reference" and op in REGISTRY:
        try:
            data = REGISTRY[op].prepare(ctx)
        except UnsupportedOpError as exc:
            row["unsupported"] = str(exc)
        except (RefquantError, ValueError, TypeError, IndexError, KeyError, ArithmeticError):
            pass  # prepared only at run time (values decide shapes), or invalid: the run says so
        else:
            if data.arithmetic != a:
                row["unsupported"] = (
                    f"arithmetic {profile}: the {a.executor}'s {a.rescale!r} rescaling is not implemented by "
                    "refquant's kernel for this operator yet"
                )
    return row


def arithmetic_table(
    model: Model, profiles: Sequence[str] | None = None, rounding: str = "double", memory_limit: int | None = None
) -> dict:
    """Per operator, which arithmetic each profile runs (the JSON of ``refquant inspect --arithmetic``).

    ``profiles``: names from :data:`refquant.arithmetic.PROFILES` (default: all, :class:`InputError` for
    an unknown one). Each operator of every subgraph gets, per profile, who runs it (``executor``),
    ``accumulator``, ``rescale`` (the variant name) with its ``formula`` in words, ``blocks`` (the SIMD
    block of a block/tail split, 0 for none) and ``note``; or ``unsupported``: the
    :class:`UnsupportedOpError` text where refquant does not reproduce that runtime on this operator
    (or its kernel does not implement the variant yet). ``differs`` is true when the profiles' rescaling
    is not the same for the operator (a refusal counts as a difference).

    Decisions are made from the operator's tensors as prepared under ``litert-ref`` (shapes, constants,
    folded values); in a subgraph refquant cannot prepare, from the model's own shapes and constants.
    ``memory_limit`` bounds that preparation (default: :data:`refquant.options.DEFAULT_MEMORY_LIMIT`).
    """
    from .arithmetic import PROFILES, get_profile
    from .engine import Engine
    from .errors import RefquantError
    from .ops.base import OpContext, TensorInfo
    from .options import EngineOptions

    names = list(PROFILES) if not profiles else list(dict.fromkeys(profiles))
    for n in names:
        get_profile(n)
    ops: list[dict] = []
    notes: list[str] = []
    for s, sg in enumerate(model.subgraphs):
        graph = None
        try:
            graph = Engine(model, s, rounding=rounding, memory_limit=memory_limit).prepare()
        except RefquantError as exc:
            notes.append(f"subgraph {s}: refquant does not prepare it ({exc}); decisions use the model's shapes")

        def info(i: int, sg: Any = sg) -> TensorInfo:
            t = sg.tensors[i]
            return TensorInfo(i, t.name, tuple(t.shape), t.dtype, t.quantization, t.data if t.is_constant else None)

        for op in sg.operators:
            per: dict[str, dict] = {}
            for n in names:
                opts = EngineOptions(rounding=rounding, arithmetic=n)
                if graph is not None:
                    ctx = graph.op_context(op.index, opts)
                else:
                    ins = tuple(info(i) if i >= 0 else None for i in op.inputs)
                    ctx = OpContext(model, s, op, ins, tuple(info(o) for o in op.outputs), opts)
                per[n] = _decision(ctx, n)
            kinds = {
                ("refused",) if "executor" not in r else (r["rescale"] or "reference", r["blocks"])
                for r in per.values()
            }
            out = op.outputs[0] if op.outputs else -1
            ops.append(
                {
                    "subgraph": s,
                    "index": op.index,
                    "opcode": op.opcode,
                    "dtype": _op_dtype(ctx),
                    "output": sg.tensors[out].name if out >= 0 else "",
                    "differs": len(kinds) > 1,
                    "profiles": per,
                }
            )
    return {
        "profiles": [{"name": n, "runtime": PROFILES[n].runtime} for n in names],
        "rounding": rounding,
        "operators": ops,
        "notes": notes,
    }


def _term(text: str) -> str:
    """``text`` safe for a terminal (:func:`refquant.escape.terminal`)."""
    from .escape import terminal

    return terminal(str(text))


def format_arithmetic(table: dict, name: str = "") -> str:
    """The text form of ``refquant inspect --arithmetic`` (model-controlled strings escaped)."""
    names = [p["name"] for p in table["profiles"]]
    width = max(len(n) for n in names)
    lines = [f"arithmetic of {_term(name) or 'the model'}: {', '.join(names)}"]
    for p in table["profiles"]:
        lines.append(f"  {p['name']:<{width}}  {_term(p['runtime'])}")
    lines.append("'*' marks operators whose rescaling differs between these profiles")
    for op in table["operators"]:
        mark = "*" if op["differs"] else " "
        lines.append("")
        lines.append(
            f"{mark} subgraph {op['subgraph']} op {op['index']} {op['opcode']} {op['dtype']} -> {_term(repr(op['output']))}"
        )
        for n in names:
            r = op["profiles"][n]
            if "unsupported" in r and "executor" not in r:
                lines.append(f"    {n:<{width}}  refused: {_term(r['unsupported'])}")
                continue
            acc = f"acc {r['accumulator']}; " if r["accumulator"] else ""
            lines.append(
                f"    {n:<{width}}  {r['executor']}: {acc}{r['rescale'] or 'reference'}: {_term(r['formula'])}"
            )
            if r["note"]:
                lines.append(f"    {'':<{width}}    note: {_term(r['note'])}")
            if "unsupported" in r:
                lines.append(f"    {'':<{width}}    refquant refuses: {_term(r['unsupported'])}")
    lines.append("")
    differ = sum(1 for op in table["operators"] if op["differs"])
    lines.append(f"{differ} of {len(table['operators'])} operators differ between the profiles")
    for n in names:
        refused = sum(1 for op in table["operators"] if "unsupported" in op["profiles"][n])
        if refused:
            lines.append(f"{n}: refquant refuses {refused} operator(s): the model does not run under this profile yet")
    for note in table["notes"]:
        lines.append(f"note: {_term(note)}")
    return "\n".join(lines)
