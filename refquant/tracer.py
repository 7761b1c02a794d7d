"""``refquant trace``: every arithmetic step that produced one element of one tensor.

The model runs on one sample; the operator that produced the tensor replays the arithmetic of the
chosen element with Python integers (``OpData.trace``): input window and filter taps (or operands),
offsets, the accumulator, bias, multiplier and shift, each rounding step with its intermediate value,
the output zero point, the activation clamp and the final value. The tracer then checks that the
last step's value is the value the run produced and says so (docs/tutorial.md explains each step;
its equation numbers are the ones the op code cites).

Graph inputs are traced through LiteRT's QUANTIZE arithmetic when real-valued data was quantized
for them; constants are reported as what they are: values stored in the model.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .engine import Engine, Trace
from .errors import InputError, UnsupportedOpError
from .escape import terminal
from .golden import to_jsonable
from .inputs import RawInput, convert_input, load_raw_inputs
from .model import Model, SubGraph
from .ops.base import OpData, Step
from .options import EngineOptions, engine_options
from .quantization import dtype_range

__all__ = [
    "COPY_OPS",
    "ElementTrace",
    "trace_element",
    "trace_in_run",
    "parse_element",
    "resolve_tensor",
    "format_trace",
    "same_value",
]


@dataclass
class ElementTrace:
    """The steps that produced ``element`` of tensor ``tensor_index`` in sample ``sample``.

    ``kind``: ``"op"`` (an operator's output), ``"input"`` (a graph input) or ``"constant"``.
    ``value`` is the run's value of the element; ``matches_run`` whether the last step reproduces it.
    """

    tensor_index: int
    name: str
    kind: str
    op_index: int
    opcode: str | None
    sample: int
    element: tuple[int, ...]
    value: Any
    steps: list[Step] = field(default_factory=list)
    matches_run: bool = True
    dtype: str = ""
    shape: tuple[int, ...] = ()
    #: The arithmetic the run used (:meth:`refquant.options.EngineOptions.describe`).
    arithmetic: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """``{"tensor_index", "element", "value", "steps": [{"name", "value", "detail"}], ...}``."""
        return {
            "tensor_index": self.tensor_index,
            "name": self.name,
            "kind": self.kind,
            "op_index": self.op_index,
            "opcode": self.opcode,
            "sample": self.sample,
            "element": list(self.element),
            "dtype": self.dtype,
            "shape": list(self.shape),
            "value": to_jsonable(self.value),
            "matches_run": self.matches_run,
            "arithmetic": dict(self.arithmetic),
            "steps": [{"name": s.name, "value": to_jsonable(s.value), "detail": s.detail} for s in self.steps],
        }


def parse_element(text: str | Sequence[int], shape: Sequence[int]) -> tuple[int, ...]:
    """``"0,3,4,7"`` (or ``[0, 3, 4, 7]``) -> an index into ``shape``, checked.

    With a leading batch dimension of 1 the batch index may be left out (``"3,4,7"``).
    """
    shape = tuple(int(d) for d in shape)
    if isinstance(text, str):
        parts = [p for p in re.split(r"[\s,()\[\]]+", text.strip()) if p]
        try:
            idx = tuple(int(p) for p in parts)
        except ValueError:
            raise InputError(f"element {text!r} is not a list of integers like 0,3,4,7") from None
    else:
        idx = tuple(int(i) for i in text)
    if len(idx) == len(shape) - 1 and shape and shape[0] == 1:
        idx = (0, *idx)
    if len(idx) != len(shape) or any(not 0 <= i < d for i, d in zip(idx, shape)):
        raise InputError(f"element {list(idx)} is not an index into shape {list(shape)} (0-based, one per dimension)")
    return idx


def resolve_tensor(sg: SubGraph, key: int | str) -> int:
    """Tensor index for an index (int or digits) or a tensor name."""
    if isinstance(key, str) and not re.fullmatch(r"\d+", key.strip()):
        for t in sg.tensors:
            if t.name == key:
                return t.index
        close = [t.name for t in sg.tensors if key.lower() in t.name.lower()][:5]
        hint = f"; similar names: {close}" if close else ""
        raise InputError(f"no tensor named {key!r}{hint}")
    i = int(key)
    if not 0 <= i < len(sg.tensors):
        raise InputError(f"tensor index {i} is out of range (0..{len(sg.tensors) - 1})")
    return i


def same_value(a: Any, b: Any) -> bool:
    """Whether a trace's final value equals the run's value (NaN equals NaN; ints compare exactly)."""
    x, y = np.asarray(a), np.asarray(b)
    if x.shape != y.shape:
        return False
    if x.dtype.kind == "f" or y.dtype.kind == "f":
        xf, yf = x.astype(np.float64), y.astype(np.float64)
        return bool(np.all((xf == yf) | (np.isnan(xf) & np.isnan(yf))))
    if x.dtype.kind in "iub" and y.dtype.kind in "iub":
        return bool(np.all(x.astype(object) == y.astype(object)))
    return bool(np.all(x == y))


def _input_steps(
    raw: RawInput | None, t_quant: Any, value: Any, sample: int, element: tuple[int, ...], dtype: str
) -> list[Step]:
    """QUANTIZE arithmetic of one graph-input element when refquant quantized real data for it."""
    if raw is None:
        return [Step("input", value, "graph input")]
    src = f"DATA[{raw.key!r}] sample {sample} element {list(element)}"
    if not raw.quantized_here:
        what = "already quantized" if raw.array.dtype.kind in "iu" else "real value"
        return [Step("input", value, f"graph input, {what}: {src}")]
    x = np.float32(raw.array[(sample, *element)])
    q = t_quant
    c = element[q.quantized_dimension] if q.scale.size > 1 else 0
    scale, zp = np.float32(q.scale[c]), int(q.zero_point[c])
    lo, hi = dtype_range(np.dtype(dtype))
    with np.errstate(all="ignore"):
        ratio = np.float32(x / scale)
    steps = [
        Step("real input", x, f"{src} (float32)"),
        Step("x / scale", ratio, f"float32 division by the scale {scale!r} (QUANTIZE divides; tutorial eq. (2))"),
    ]
    if not np.isfinite(ratio) or not -(2.0**31) <= float(np.floor(abs(ratio)) * np.sign(ratio)) < 2.0**31:
        r = -(2**31)
        steps.append(Step("round", r, "not representable as int32: the C cast gives INT32_MIN"))
    else:
        mag = abs(float(ratio))
        r = int(np.floor(mag)) + (1 if mag - np.floor(mag) >= 0.5 else 0)
        r = r if ratio >= 0 else -r
        steps.append(Step("round", r, "roundf: nearest integer, ties away from zero (not numpy's ties-to-even)"))
    z = ((r + zp + 2**31) % 2**32) - 2**31
    steps.append(Step("+ zero point", z, f"+ zero point {zp} (int32)"))
    steps.append(Step("clamp", np.dtype(dtype).type(min(max(z, lo), hi)), f"clamp to the {dtype} range [{lo}, {hi}]"))
    return steps


#: Operators that copy input 0's values unchanged (only positions change); without a ``trace()`` of
#: their own the tracer follows an element to its source by evaluating the op on element ids.
COPY_OPS = ("RESHAPE", "SQUEEZE", "EXPAND_DIMS", "TRANSPOSE")


def _copy_trace(
    data: OpData, arrays: list[np.ndarray | None], out_pos: int, element: tuple[int, ...], opcode: str
) -> list[Step]:
    """Trace a pure copy: run the op on the ids 0..n-1 of input 0 to find which element was copied."""
    x = arrays[0]
    assert x is not None
    ids = np.arange(np.size(x), dtype=np.int64).reshape(np.shape(x))
    src_flat = int(np.asarray(data.eval([ids, *arrays[1:]])[out_pos])[element])
    src = tuple(int(i) for i in np.unravel_index(src_flat, np.shape(x)))
    v = np.asarray(x)[src]
    return [Step("copy", v, f"{opcode} moves values without arithmetic: input 0 element {list(src)}")]


def trace_in_run(
    run: Trace,
    tensor: int,
    element: tuple[int, ...],
    *,
    sample: int = 0,
    raw_inputs: Sequence[RawInput] | None = None,
) -> ElementTrace:
    """Trace ``element`` of ``tensor`` in ``run`` (``raw_inputs``: the data given for the graph inputs)."""
    sg = run.subgraph
    t = sg.tensors[tensor]
    if tensor not in run.values:
        raise InputError(f"tensor {tensor} {t.name!r} has no value in the run (not produced by any operator)")
    arr = np.asarray(run.values[tensor])
    value = arr[element]
    base = dict(
        tensor_index=tensor,
        name=t.name,
        sample=sample,
        element=element,
        value=value,
        dtype=str(arr.dtype),
        shape=tuple(arr.shape),
        arithmetic=run.options.describe(),
    )
    if tensor in sg.inputs:
        raw = None
        if raw_inputs is not None:
            raw = raw_inputs[list(sg.inputs).index(tensor)]
        steps = _input_steps(raw, t.quantization, value, sample, element, str(arr.dtype))
        return ElementTrace(
            kind="input", op_index=-1, opcode=None, steps=steps, matches_run=same_value(steps[-1].value, value), **base
        )
    k = run.producer(tensor)
    if k < 0:
        detail = f"constant stored in the model (buffer {t.buffer}), not computed"
        q = t.quantization
        if q is not None and q.scale.size:
            c = element[q.quantized_dimension] if q.scale.size > 1 and element else 0
            real = float(q.scale[c]) * (int(value) - int(q.zero_point[c]))
            detail += f"; real value = scale * (q - zero_point) = {float(q.scale[c])!r} * ({int(value)} - {int(q.zero_point[c])}) = {real:.9g}"
        return ElementTrace(kind="constant", op_index=-1, opcode=None, steps=[Step("constant", value, detail)], **base)
    op = sg.operators[k]
    data: OpData = run.op_data[k]
    arrays = run.op_inputs(k)
    out_pos = list(op.outputs).index(tensor)
    try:
        if type(data).trace is OpData.trace and op.opcode in COPY_OPS:
            steps = _copy_trace(data, arrays, out_pos, element, op.opcode)
        else:
            steps = data.trace(arrays, out_pos, element)
    except UnsupportedOpError as exc:
        raise UnsupportedOpError(f"operator {k} ({op.opcode}) cannot trace an element yet: {exc}") from exc
    if not steps:
        raise UnsupportedOpError(f"operator {k} ({op.opcode}) returned no trace steps")
    return ElementTrace(
        kind="op",
        op_index=k,
        opcode=op.opcode,
        steps=list(steps),
        matches_run=same_value(steps[-1].value, value),
        **base,
    )


def trace_element(
    model: Model | str | os.PathLike,
    data: str | os.PathLike | Mapping[str, Any] | Sequence[Any],
    tensor: int | str,
    element: str | Sequence[int],
    *,
    sample: int = 0,
    rounding: str | None = None,
    float_accumulation: str | None = None,
    options: EngineOptions | None = None,
    arithmetic: str | None = None,
) -> ElementTrace:
    """Run ``model`` on sample ``sample`` of ``data`` and trace ``element`` of ``tensor`` (index or name).

    ``data`` follows the input conventions of :mod:`refquant.inputs`; ``options``, ``rounding`` and
    ``float_accumulation`` select the arithmetic as for :class:`refquant.Interpreter` (``arithmetic``: the
    runtime profile). Raises :class:`InputError` for a
    bad tensor, element or sample, :class:`UnsupportedOpError` when the producing op cannot trace.
    """
    opts = engine_options(options, rounding=rounding, float_accumulation=float_accumulation, arithmetic=arithmetic)
    if not isinstance(model, Model):
        from .tflite.reader import load_model

        if not os.path.isfile(os.fspath(model)):
            raise InputError(f"model {os.fspath(model)!r} does not exist or is not a file")
        model = load_model(model)
    raws = load_raw_inputs(model, data)
    n = raws[0].array.shape[0] if raws else 1
    if not 0 <= sample < n:
        raise InputError(f"sample {sample} does not exist; the data holds {n} sample(s) (0..{n - 1})")
    sg = model.main
    index = resolve_tensor(sg, tensor)
    run = Engine(model, 0, opts).run([convert_input(r)[sample] for r in raws])
    if index not in run.values:
        raise InputError(f"tensor {index} {sg.tensors[index].name!r} has no value in the run")
    shape = np.shape(run.values[index])
    return trace_in_run(run, index, parse_element(element, shape), sample=sample, raw_inputs=raws)


# ---------------------------------------------------------------------------------------------
# Text view


def _value_text(v: Any) -> tuple[str, list[str]]:
    """(short form for the step line, extra lines for arrays)."""
    if isinstance(v, np.ndarray) and v.ndim > 0:
        body = np.array2string(v, threshold=256, max_line_width=110, separator=" ")
        return f"<{v.dtype}{list(v.shape)}>", body.splitlines()
    if isinstance(v, (list, tuple)) and any(isinstance(x, (list, tuple, np.ndarray)) for x in v):
        return f"<{len(v)} items>", [str(to_jsonable(v))]
    if isinstance(v, (list, tuple)) and len(v) > 12:
        return f"<{len(v)} values>", [str(to_jsonable(list(v)))]
    j = to_jsonable(v)
    if isinstance(v, (np.floating, float)) and not isinstance(v, bool):
        return (repr(float(v)) if not isinstance(v, np.float32) else str(v)), []
    return str(j), []


def format_trace(tr: ElementTrace, rounding: str | None = None) -> str:
    """The human-readable listing of an :class:`ElementTrace` (``rounding`` defaults to the run's)."""
    if rounding is None:
        rounding = tr.arithmetic.get("rounding", "double")
    lines = [
        f"tensor {tr.tensor_index} {tr.name!r} {tr.dtype}{list(tr.shape)}, element {list(tr.element)}, sample {tr.sample}"
    ]
    if tr.kind == "op":
        profile = tr.arithmetic.get("arithmetic", "litert-ref")
        lines.append(f"produced by operator {tr.op_index} ({tr.opcode}); arithmetic {profile}; rounding {rounding}")
    elif tr.kind == "input":
        lines.append("a graph input: no operator computed it")
    else:
        lines.append("a constant of the model: no operator computed it")
    lines.append("")
    width = max([len(s.name) for s in tr.steps] + [4])
    for k, s in enumerate(tr.steps, 1):
        short, extra = _value_text(s.value)
        lines.append(f"{k:>3}. {s.name:<{width}}  {short:>14}   {s.detail}".rstrip())
        lines.extend(("       " + e).rstrip() for e in extra)
    lines.append("")
    if tr.kind == "constant":
        lines.append(f"value {tr.value!s}: read from the model")
    elif tr.matches_run:
        lines.append(f"result {tr.steps[-1].value!s} equals the value the run produced ({tr.value!s})")
    else:
        lines.append(
            f"MISMATCH: the steps end at {tr.steps[-1].value!s} but the run produced {tr.value!s} "
            "(a refquant bug: please report it with this command line)"
        )
    return terminal("\n".join(lines), keep_newlines=True)
