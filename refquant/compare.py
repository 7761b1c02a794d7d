"""``refquant compare``: where quantization costs accuracy, layer by layer and channel by channel.

:func:`compare` runs a quantized model with refquant's integer kernels and a float reference on the
same real-valued inputs, and measures, for every op output (see :mod:`refquant.metrics`):

* **accumulated** error: the quantized run (dequantized) against the reference run;
* **local** error: the same op run in float (the float shadow graph's prepared op) on the
  dequantized *quantized* inputs, against the op's dequantized quantized output. It is the error
  this op adds by itself (its integer arithmetic, output rounding and clipping), with weights as
  quantized; the accumulated error also holds what the op inherits from the layers before it.

Reference: the float model given as ``float_model`` (tensors matched to the quantized model's by
name, else by graph structure; see :func:`match_tensors`) or, without one, the float *shadow* of the
quantized graph (:mod:`refquant.shadow`: same ops, dequantized constants), whose accumulated error
is the activation quantization alone (weights as quantized).

Inputs are real values (float), ``(N, *input_shape)`` per model input, or ``(N, *input_shape[1:])``
when the model's batch dimension is 1 (key and shape rules shared with the other commands:
:mod:`refquant.inputs`). Models with integer inputs get them quantized as LiteRT's QUANTIZE does
(``round_half_away(x / scale) + zero_point``, clamped); the reference gets the real values. Integer
data of an integer input's own dtype is taken as already quantized (reference: its dequantized values).

End to end: top-1 (argmax over the last axis of the first output, per sample and position)
agreement between the reference and the quantized model, and with ``labels`` the top-1 accuracy of
each. The reference's "float" accuracy is the float model's, or the float shadow's without one.

Speed: samples are run in batches (the graphs are prepared with the batch dimension resized) when
the model's batch dimension is 1 and a check run shows a batched run gives exactly the per-sample
values; otherwise one sample at a time. The local pass reuses the prepared shadow ops.
"""

from __future__ import annotations

import os
import sys
import time
import zipfile
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .arithmetic import get_profile
from .engine import Engine
from .errors import InputError, RefquantError
from .graph import PreparedGraph
from .inputs import convert_input, load_raw_inputs
from .metrics import ErrorAccumulator
from .model import Model, SubGraph, Tensor
from .options import EngineOptions, engine_options
from .quantization import dequantize, dtype_range
from .report import ProfileDiff, Report, TensorMatch, TensorReport
from .shadow import float_shadow
from .tflite.reader import load_model

__all__ = ["compare", "match_tensors", "load_inputs", "load_labels", "TensorMatch", "Report"]

_PASS_OPS = ("QUANTIZE", "DEQUANTIZE")
_QUANT_INT = ("int8", "uint8", "int16", "int32", "int64")
_FLOATS = ("float32", "float16", "float64")
#: Working-set target per batch (bytes): bounds the batch size for big models.
_BATCH_BYTES = 192 << 20
_MAX_BATCH = 256
#: Profiles whose kernels split flat elements into SIMD blocks and a scalar tail: a batched run would
#: move the tail, so compare runs them one sample at a time.
_SIZE_DEPENDENT = ("litert-optimized", "litert-xnnpack")

# ---------------------------------------------------------------------------------------------
# Loading


def _load(model: Any, what: str) -> tuple[Model, str]:
    if isinstance(model, Model):
        return model, f"<{what}>"
    if isinstance(model, (bytes, bytearray, memoryview)):
        return load_model(bytes(model)), f"<{what} bytes>"
    path = os.fspath(model)
    if not os.path.isfile(path):
        raise InputError(f"{what} {path!r}: no such file")
    return load_model(path), path


def _is_quantized(t: Tensor) -> bool:
    q = t.quantization
    return t.dtype in _QUANT_INT and q is not None and q.scale.size > 0


def _static_tensors(sg: SubGraph) -> set[int]:
    """Constants and outputs of ops fed only by constants (weights, folded shape arithmetic)."""
    static = {t.index for t in sg.tensors if t.is_constant}
    for op in sg.operators:
        ins = [i for i in op.inputs if i >= 0]
        if ins and all(i in static for i in ins):
            static.update(op.outputs)
    return static


def _split_selector(spec: str, what: str) -> tuple[str, list[str] | None]:
    """``FILE.npz`` or ``FILE.npz:KEY[,KEY...]`` -> (path, selected keys or None)."""
    if os.path.isfile(spec):
        return spec, None
    head, sep, tail = spec.rpartition(":")
    if sep and head and os.path.isfile(head) and tail:
        return head, tail.split(",")
    raise InputError(f"{what} {spec!r}: no such file")


def load_inputs(inputs: Any, model: Model) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``(real, feed)``: per model input, the real values and what the model takes, each ``(N, *input_shape)``.

    Keys, shapes and conversion follow :mod:`refquant.inputs` (shared with ``golden`` and ``trace``):
    ``inputs`` is an ``.npz``/``.npy`` path (``FILE.npz:KEY[,KEY...]`` picks arrays), a mapping keyed by
    input tensor name, signature input name or ``input_<i>``, or a sequence in model-input order; each
    array is ``(N, *input_shape)`` or, when the batch dimension is 1, ``(N, *input_shape[1:])``. Real
    (float) data for an integer input is quantized as LiteRT's QUANTIZE does; integer data of the input's
    own dtype is taken as already quantized (its real values are its dequantized values). Real values
    must be finite. Raises :class:`InputError` naming the array for anything that does not fit.
    """
    if inputs is None:
        raise InputError("no inputs given")
    real: list[np.ndarray] = []
    feed: list[np.ndarray] = []
    for raw in load_raw_inputs(model, inputs):
        arr, t = raw.array, raw.tensor
        fed = convert_input(raw)
        if arr.dtype.kind == "f":  # finite: load_raw_inputs checked it
            values = arr.astype(np.float32)
        elif _is_quantized(t):
            q = t.quantization
            assert q is not None
            if q.scale.size == 1:
                values = dequantize(fed, q.scale[0], q.zero_point[0])
            else:
                values = dequantize(fed, q.scale, q.zero_point, axis=q.quantized_dimension + 1)
        else:
            values = fed
        real.append(values)
        feed.append(fed)
    return real, feed


def load_labels(labels: Any, n: int) -> np.ndarray | None:
    """Labels as an int64 array of ``n`` entries (an array, or a path: ``.npy``, a one-array ``.npz``, ``FILE.npz:KEY``).

    Raises :class:`InputError` for a wrong length or shape, or non-integer values.
    """
    if labels is None:
        return None
    if isinstance(labels, (str, os.PathLike)):
        path, sel = _split_selector(os.fspath(labels), "labels")
        try:
            loaded = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise InputError(f"labels {path!r} is not a readable .npy file ({exc})") from exc
        if hasattr(loaded, "files"):
            with loaded:
                if sel is not None:
                    if len(sel) != 1 or sel[0] not in loaded.files:
                        raise InputError(f"labels {path!r} has no array {':'.join(sel)!r}; it has {loaded.files}")
                    loaded = loaded[sel[0]]
                elif len(loaded.files) != 1:
                    raise InputError(
                        f"labels {path!r} is an .npz with {len(loaded.files)} arrays; select one as {path}:NAME"
                    )
                else:
                    loaded = loaded[loaded.files[0]]
        elif sel is not None:
            raise InputError(f"labels {path!r} is a .npy file; an array can be selected only from an .npz")
        labels = loaded
    a = np.asarray(labels)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1:
        raise InputError(f"labels have shape {tuple(a.shape)}; expected ({n},): one integer label per sample")
    if a.shape[0] != n:
        raise InputError(f"labels have {a.shape[0]} entries; the input data has {n} samples")
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or np.any(a != np.floor(a)):
            raise InputError("labels must be integers (class indices); found non-integer values")
    elif a.dtype.kind not in "iu":
        raise InputError(f"labels have dtype {a.dtype}; expected integer class indices")
    return a.astype(np.int64)


# ---------------------------------------------------------------------------------------------
# Matching a float model's tensors to the quantized model's


def _producers(sg: SubGraph) -> dict[int, int]:
    return {o: op.index for op in sg.operators for o in op.outputs}


def match_tensors(
    quant: Model,
    float_: Model,
    quant_shapes: Mapping[int, tuple[int, ...]] | None = None,
    float_shapes: Mapping[int, tuple[int, ...]] | None = None,
) -> dict[int, TensorMatch]:
    """Map the quantized model's activation tensors to the float model's.

    Graph inputs pair by position. For every other tensor, in graph order: a float tensor of the same
    name, same shape and the same producing opcode (looking through QUANTIZE/DEQUANTIZE) is taken
    (``how="name"``); otherwise graph structure decides (``how="structure"``): QUANTIZE/DEQUANTIZE are
    pass-throughs (their output is the float counterpart of their input), and another op matches the
    one float op with the same opcode whose activation (non-constant) inputs are, in order, the
    counterparts of its own. Ambiguous or shape-mismatched candidates stay unmatched: nothing is guessed.
    Returns ``{quant tensor index: TensorMatch}``; tensors missing from it are unmatched.
    """
    qsg, fsg = quant.main, float_.main
    qs: Mapping[int, tuple[int, ...]] = quant_shapes or {}
    fs: Mapping[int, tuple[int, ...]] = float_shapes or {}

    def qshape(i: int) -> tuple[int, ...]:
        return tuple(qs.get(i, qsg.tensors[i].shape))

    def fshape(i: int) -> tuple[int, ...]:
        return tuple(fs.get(i, fsg.tensors[i].shape))

    qstatic, fstatic = _static_tensors(qsg), _static_tensors(fsg)
    qprod, fprod = _producers(qsg), _producers(fsg)

    def canon(t: int) -> int:  # float tensor -> its value's origin through pass-through ops
        seen = 0
        while t in fprod and seen < len(fsg.operators):
            op = fsg.operators[fprod[t]]
            if op.opcode not in _PASS_OPS or op.inputs[0] in fstatic:
                break
            t, seen = op.inputs[0], seen + 1
        return t

    def origin_opcode(sg: SubGraph, prod: dict[int, int], t: int) -> str:
        for _ in range(len(sg.operators) + 1):
            if t not in prod:
                return "INPUT"
            op = sg.operators[prod[t]]
            if op.opcode not in _PASS_OPS:
                return op.opcode
            t = op.inputs[0]
        return "INPUT"

    by_key: dict[tuple, list[int]] = defaultdict(list)
    for op in fsg.operators:
        if op.opcode in _PASS_OPS or all(o in fstatic for o in op.outputs):
            continue
        acts = tuple(canon(i) for i in op.inputs if i >= 0 and i not in fstatic)
        by_key[(op.opcode, acts)].append(op.index)
    name_count: dict[str, int] = defaultdict(int)
    for t in fsg.tensors:
        name_count[t.name] += 1
    fnames = {t.name: t.index for t in fsg.tensors if name_count[t.name] == 1 and t.index not in fstatic}

    mapping: dict[int, TensorMatch] = {}
    for qi, fi in zip(qsg.inputs, fsg.inputs):
        if qshape(qi) == fshape(fi):
            how = "name" if qsg.tensors[qi].name == fsg.tensors[fi].name else "structure"
            mapping[qi] = TensorMatch(fi, fsg.tensors[fi].name, how)
    used: set[int] = set()
    for op in qsg.operators:
        if all(o in qstatic for o in op.outputs):
            continue
        struct: dict[int, int] = {}
        if op.opcode in _PASS_OPS:
            src = op.inputs[0]
            if src in mapping:
                struct[op.outputs[0]] = canon(mapping[src].index)
        else:
            acts = [i for i in op.inputs if i >= 0 and i not in qstatic]
            if all(a in mapping for a in acts):
                key = (op.opcode, tuple(canon(mapping[a].index) for a in acts))
                cands = [
                    c for c in by_key.get(key, []) if c not in used and len(fsg.operators[c].outputs) == len(op.outputs)
                ]
                if len(cands) > 1:  # same op twice on the same inputs: only names can tell them apart
                    qn = [qsg.tensors[o].name for o in op.outputs]
                    cands = [c for c in cands if [fsg.tensors[o].name for o in fsg.operators[c].outputs] == qn]
                if len(cands) == 1:
                    struct = dict(zip(op.outputs, fsg.operators[cands[0]].outputs))
        for o in op.outputs:
            name = qsg.tensors[o].name
            fi = fnames.get(name)
            if (
                fi is not None
                and qshape(o) == fshape(fi)
                and origin_opcode(qsg, qprod, o) == origin_opcode(fsg, fprod, fi)
            ):
                mapping[o] = TensorMatch(fi, fsg.tensors[fi].name, "name")
                if fi in fprod and fsg.operators[fprod[fi]].opcode not in _PASS_OPS:
                    used.add(fprod[fi])
                continue
            s = struct.get(o)
            if s is not None and qshape(o) == fshape(s):
                mapping[o] = TensorMatch(s, fsg.tensors[s].name, "structure")
                if s in fprod and op.opcode not in _PASS_OPS:
                    used.add(fprod[s])
    return mapping


# ---------------------------------------------------------------------------------------------
# The per-tensor rows


@dataclass
class _Row:
    """One reported tensor and its two accumulators."""

    index: int
    op_index: int
    opcode: str
    dtype: str
    shape: tuple[int, ...]
    scale: float | list[float] | None
    zero_point: int | list[int] | None
    axis: int | None  # per-channel axis in the tensor's own shape
    ref: TensorMatch | None
    lsb: float | np.ndarray | None  # step(s) for the LSB figures
    qrange: tuple[float, float] | None  # representable real range (per-tensor scales)
    acc: ErrorAccumulator | None = None
    loc: ErrorAccumulator | None = None

    def start(self, batched: bool) -> None:
        """Fresh accumulators; arrays carry samples folded into the batch axis, or stacked in front."""
        arr_axis = None if self.axis is None else (self.axis if batched else self.axis + 1)
        self.acc = ErrorAccumulator(self.lsb, arr_axis, self.qrange, channel_axis_label=self.axis)
        self.loc = ErrorAccumulator(self.lsb, arr_axis, self.qrange, channel_axis_label=self.axis)


def _lsb_params(
    sg: SubGraph, t: Tensor, prod: dict[int, int]
) -> tuple[Any, Any, np.ndarray | None, tuple[float, float] | None, int | None]:
    """(scale, zero_point, scales array, representable range, quantized dim) for a row's LSB figures.

    A float tensor made by DEQUANTIZE takes the step of the tensor it dequantizes.
    """
    src = t
    if not _is_quantized(t) and t.index in prod:
        op = sg.operators[prod[t.index]]
        if op.opcode == "DEQUANTIZE" and op.inputs and op.inputs[0] >= 0 and _is_quantized(sg.tensors[op.inputs[0]]):
            src = sg.tensors[op.inputs[0]]
    if not _is_quantized(src):
        return None, None, None, None, None
    q = src.quantization
    assert q is not None
    scales = q.scale.astype(np.float64)
    zps = q.zero_point
    if scales.size == 1:
        lo, hi = dtype_range(src.np_dtype)
        s, z = float(scales[0]), int(zps[0])
        return s, z, scales, (s * (lo - z), s * (hi - z)), None
    return [float(x) for x in scales], [int(x) for x in zps], scales, None, q.quantized_dimension


def _channel_axis(shape: tuple[int, ...], qdim: int | None) -> int | None:
    """The per-channel axis: the quantized dimension, else the last axis; never a batch axis of size 1."""
    if qdim is not None:
        axis = qdim
    elif shape:
        axis = len(shape) - 1
    else:
        return None
    if axis == 0 and shape[0] == 1:
        return None
    return axis


# ---------------------------------------------------------------------------------------------
# Running


class _Progress:
    """A sample counter with rate on stderr, shown once a run has taken more than ``delay`` seconds."""

    def __init__(self, total: int, enabled: bool | Callable[[int, int], None], delay: float = 1.5) -> None:
        self.total = total
        self.callback = enabled if callable(enabled) else None
        self.enabled = bool(enabled) and self.callback is None
        self.delay = delay
        self.start = time.perf_counter()
        self.shown = False
        self.last = 0.0
        self.tty = hasattr(sys.stderr, "isatty") and sys.stderr.isatty()

    def update(self, done: int) -> None:
        """Report ``done`` samples of ``total``."""
        if self.callback is not None:
            self.callback(done, self.total)
            return
        if not self.enabled:
            return
        now = time.perf_counter()
        elapsed = now - self.start
        if elapsed < self.delay or (now - self.last < (0.2 if self.tty else 5.0) and done < self.total):
            return
        self.last = now
        rate = done / elapsed if elapsed > 0 else 0.0
        msg = f"refquant compare: {done}/{self.total} samples ({rate:.1f} samples/s)"
        sys.stderr.write(("\r" + msg) if self.tty else (msg + "\n"))
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        """End the progress line."""
        if self.shown and self.tty:
            sys.stderr.write("\n")
            sys.stderr.flush()


class _Runner:
    """Prepared quantized / shadow / float graphs for one batch size, and one batch's run."""

    def __init__(self, ctx: _Context, batch: int | None) -> None:
        self.ctx = ctx
        self.batch = batch
        qshapes = ctx.input_shapes(ctx.qsg, batch)
        self.q: PreparedGraph = Engine(ctx.qmodel, 0, ctx.options).prepare(qshapes)
        self.s: PreparedGraph = Engine(ctx.smodel, 0, ctx.options).prepare(qshapes)
        self.b: PreparedGraph | None = None
        if ctx.against is not None:
            self.b = Engine(ctx.qmodel, 0, ctx.against).prepare(qshapes)
        #: The last run's raw quantized values under both profiles (``against`` only).
        self.last_pair: tuple[Mapping[int, np.ndarray], Mapping[int, np.ndarray]] | None = None
        self.f: PreparedGraph | None = None
        if ctx.fmodel is not None:
            fshapes = ctx.input_shapes(ctx.fmodel.main, batch)
            self.f = Engine(ctx.fmodel, 0, ctx.options).prepare(fshapes)

    def run(
        self, xs: list[np.ndarray], qs: list[np.ndarray]
    ) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray], dict[int, np.ndarray]]:
        """Real inputs ``(m, *input_shape)`` -> (dequantized quantized, reference, local) per row tensor.

        Per-sample runners (``batch`` None) take ``m == 1``; batched ones fold the samples into the
        batch dimension (the model's is 1).
        """
        ctx = self.ctx
        qsg = ctx.qsg
        if self.batch is None:
            xs, qs = [x[0] for x in xs], [x[0] for x in qs]
        else:
            xs = [x.reshape((x.shape[0] * x.shape[1],) + x.shape[2:]) for x in xs]
            qs = [x.reshape((x.shape[0] * x.shape[1],) + x.shape[2:]) for x in qs]
        qfeeds: dict[int, np.ndarray] = {}
        sfeeds: dict[int, np.ndarray] = {}
        for k, i in enumerate(qsg.inputs):
            qfeeds[i] = qs[k]
            sfeeds[i] = ctx.feed(ctx.smodel.main.tensors[i], xs[k])
        qvals = self.q.run(qfeeds).values
        if self.b is not None:
            self.last_pair = (qvals, self.b.run(qfeeds).values)
        deq: dict[int, np.ndarray] = {}

        def real(i: int) -> np.ndarray:
            v = deq.get(i)
            if v is None:
                t = qsg.tensors[i]
                raw = qvals[i]
                if _is_quantized(t):
                    q = t.quantization
                    assert q is not None
                    if q.scale.size > 1:
                        v = dequantize(raw, q.scale, q.zero_point, axis=q.quantized_dimension)
                    else:
                        v = dequantize(raw, q.scale[0], q.zero_point[0])
                else:
                    v = raw
                deq[i] = v
            return v

        # reference
        if self.f is not None:
            ffeeds = {i: ctx.feed(ctx.fmodel.main.tensors[i], xs[k]) for k, i in enumerate(ctx.fsg_inputs)}
            fvals = self.f.run(ffeeds).values
            ref = {r.index: fvals[r.ref.index] for r in ctx.rows if r.ref is not None}
        else:
            svals = self.s.run(sfeeds).values
            ref = {r.index: svals[r.index] for r in ctx.rows}
        # local: each op in float on the dequantized quantized inputs
        local: dict[int, np.ndarray] = {}
        sstatic = ctx.shadow_static
        with np.errstate(all="ignore"):
            for k in ctx.local_ops:
                op = qsg.operators[k]
                arrays: list[np.ndarray | None] = []
                for i in op.inputs:
                    if i < 0:
                        arrays.append(None)
                    elif i in ctx.qstatic:  # weights: the shadow's dequantized constant or folded value
                        v = self.s.static_value(i)
                        if v is None:
                            v = sstatic.get(i)
                        arrays.append(real(i) if v is None else v)
                    else:
                        arrays.append(real(i))
                outs = self.s.eval_op(k, arrays)
                for j, o in enumerate(op.outputs):
                    local[o] = outs[j]
        for r in ctx.rows:
            if r.op_index < 0:  # a quantized graph input: its quantization is the 'op'
                local[r.index] = sfeeds[r.index]
        return {r.index: real(r.index) for r in ctx.rows}, ref, local


class _Context:
    """Everything fixed for one comparison: models, rows, feeds."""

    def __init__(
        self, qmodel: Model, fmodel: Model | None, options: EngineOptions, against: EngineOptions | None = None
    ) -> None:
        self.against = against
        self.qmodel = qmodel
        self.qsg = qmodel.main
        self.smodel = float_shadow(qmodel)
        self.fmodel = fmodel
        self.fsg_inputs = list(fmodel.main.inputs) if fmodel is not None else []
        self.options = options
        self.qstatic = _static_tensors(self.qsg)
        self.shadow_static = {t.index: t.data for t in self.smodel.main.tensors if t.data is not None}
        self.rows: list[_Row] = []
        self.local_ops: list[int] = []

    @staticmethod
    def input_shapes(sg: SubGraph, batch: int | None) -> dict[int, tuple[int, ...]]:
        if batch is None:
            return {i: tuple(sg.tensors[i].shape) for i in sg.inputs}
        return {i: (batch,) + tuple(sg.tensors[i].shape[1:]) for i in sg.inputs}

    @staticmethod
    def feed(t: Tensor, x: np.ndarray) -> np.ndarray:
        """Real values ``x`` for a float-graph input (float, or unquantized integers such as ids)."""
        return x if x.dtype == t.np_dtype else x.astype(t.np_dtype)


def _float_ulps(a: np.ndarray) -> np.ndarray:
    """float32 values mapped to int64 so that adjacent floats differ by 1 (+0 and -0 both map to 0)."""
    bits = np.asarray(a, dtype=np.float32).view(np.int32).astype(np.int64)
    return np.where(bits < 0, -(bits & 0x7FFFFFFF), bits)


class _ProfileDiffer:
    """Per row tensor: where the runs under the two profiles differ, over every sample."""

    def __init__(self, rows: list[_Row]) -> None:
        self.rows = [r for r in rows if r.op_index >= 0]
        self.mismatched = {r.index: 0 for r in self.rows}
        self.elements = {r.index: 0 for r in self.rows}
        self.worst = {r.index: 0.0 for r in self.rows}
        self.first: dict[int, dict | None] = {r.index: None for r in self.rows}

    def update(
        self, pair: tuple[Mapping[int, np.ndarray], Mapping[int, np.ndarray]], start: int, batched: bool
    ) -> None:
        """Add one run: batched arrays carry the samples ``start, start+1, ...`` in their batch axis (the
        model's is 1); a per-sample run is sample ``start``."""
        qa, qb = pair
        for r in self.rows:
            a, b = np.asarray(qa[r.index]), np.asarray(qb[r.index])
            self.elements[r.index] += a.size
            if a.dtype.kind == "f":
                ua, ub = _float_ulps(a), _float_ulps(b)
                na, nb = np.isnan(a), np.isnan(b)
                diff = np.where(na | nb, np.where(na & nb, 0.0, np.inf), np.abs(ua - ub).astype(np.float64))
            else:
                diff = np.abs(a.astype(np.int64) - b.astype(np.int64)).astype(np.float64)
            bad = diff != 0
            k = int(bad.sum())
            if not k:
                continue
            self.mismatched[r.index] += k
            self.worst[r.index] = max(self.worst[r.index], float(diff.max()))
            if self.first[r.index] is None:
                idx = tuple(int(i) for i in np.argwhere(bad)[0])
                sample, element = (start + idx[0], (0,) + idx[1:]) if batched else (start, idx)
                self.first[r.index] = {
                    "sample": sample,
                    "element": list(element),
                    "arithmetic": a[idx].item(),
                    "against": b[idx].item(),
                }

    def result(self, sg: SubGraph) -> list[ProfileDiff]:
        """One :class:`ProfileDiff` per op output, in graph order."""
        return [
            ProfileDiff(
                index=r.index,
                name=sg.tensors[r.index].name,
                op_index=r.op_index,
                opcode=r.opcode,
                dtype=r.dtype,
                shape=r.shape,
                mismatched=self.mismatched[r.index],
                elements=self.elements[r.index],
                max_abs_diff=self.worst[r.index],
                unit="ULP" if r.dtype in _FLOATS else "LSB",
                first=self.first[r.index],
            )
            for r in self.rows
        ]


def _same_values(a: dict[int, np.ndarray], b: dict[int, np.ndarray], n: int) -> bool:
    """Whether batched values ``a`` (first sample) equal single-sample values ``b`` for every row."""
    if a.keys() != b.keys():
        return False
    for key in b:
        x, y = a[key], b[key]
        if x.ndim == 0 or y.ndim == 0 or x.shape[0] != n or tuple(x.shape[1:]) != tuple(y.shape[1:]) or y.shape[0] != 1:
            return False
        if not np.array_equal(x[:1], y, equal_nan=True):
            return False
    return True


def compare(
    quant_model: Any,
    float_model: Any = None,
    inputs: Any = None,
    labels: Any = None,
    rounding: str | None = None,
    progress: bool | Callable[[int, int], None] = True,
    *,
    limit: int | None = None,
    batch_size: int | None = None,
    memory_limit: int | None = None,
    float_accumulation: str | None = None,
    options: EngineOptions | None = None,
    arithmetic: str | None = None,
    against: str | None = None,
) -> Report:
    """Compare a quantized model against its float reference over every sample of ``inputs``.

    ``quant_model``, ``float_model``: a path, ``.tflite`` bytes or a :class:`refquant.Model`;
    without ``float_model`` the reference is the quantized graph's float shadow.
    ``inputs``: see :func:`load_inputs` (an ``.npz``/``.npy`` path, a mapping or a sequence of arrays).
    ``labels``: N integer class labels (array or ``.npy`` path) for top-1 accuracy of both models.
    ``rounding``: ``"double"`` (LiteRT's default build) or ``"single"`` (``TFLITE_SINGLE_ROUNDING``).
    ``float_accumulation``: how the float graphs' conv/FC/matmul sums run (``"float64"``, the default,
    or LiteRT's ``"sequential"`` float32 loop; see :class:`refquant.Interpreter`). ``options``: an
    :class:`refquant.options.EngineOptions` holding these (and ``memory_limit``); keywords override it.
    ``arithmetic``: the profile the quantized graph runs under (``"litert-ref"`` by default; see
    :mod:`refquant.arithmetic`). ``against``: a second profile; the quantized graph also runs under
    it on the same samples, and the report's ``profile_diff`` says, op output by op output, where the
    two runtimes' tensors differ (mismatched elements, largest difference in LSB, first element).
    ``progress``: True prints a sample counter with rate on stderr once the run takes over ~1.5 s;
    False is silent; a callable gets ``(done, total)`` after every batch.
    ``limit``: use only the first ``limit`` samples. ``batch_size``: samples per batched run (default:
    chosen from the model's size; 1 forces per-sample runs).

    Returns a :class:`refquant.report.Report`. Raises :class:`InputError` for bad inputs or labels
    and for a float model that does not correspond to the quantized one; other
    :class:`refquant.RefquantError` subclasses for models refquant cannot run.
    """
    t0 = time.perf_counter()
    opts = engine_options(
        options,
        rounding=rounding,
        float_accumulation=float_accumulation,
        memory_limit=memory_limit,
        arithmetic=arithmetic,
    )
    against_opts = None
    if against is not None:
        get_profile(against)
        against_opts = engine_options(opts, arithmetic=against)
    qmodel, qname = _load(quant_model, "quantized model")
    fmodel, fname = (None, None) if float_model is None else _load(float_model, "float model")
    xs, qs = load_inputs(inputs, qmodel)
    if limit is not None:
        if limit < 1:
            raise InputError(f"limit must be at least 1, got {limit}")
        xs, qs = [x[:limit] for x in xs], [x[:limit] for x in qs]
    n = int(xs[0].shape[0])
    ys = load_labels(labels, n)
    notes: list[str] = []

    ctx = _Context(qmodel, fmodel, opts, against_opts)
    qsg = ctx.qsg
    probe = _Runner(ctx, None)  # batch-1 (model's own shapes): all checks happen here
    qshapes = dict(probe.q.shapes)
    if any(o >= 0 and o not in qshapes for op in qsg.operators for o in op.outputs):
        # operators prepared at run time (shapes from data): their output shapes come from sample 0's run
        first_run = probe.q.run({i: qs[k][0] for k, i in enumerate(qsg.inputs)})
        qshapes.update({i: tuple(v.shape) for i, v in first_run.values.items() if i not in qshapes})

    # reference matching
    matches: dict[int, TensorMatch] = {}
    if fmodel is not None:
        matches = _check_float_model(qmodel, fmodel, qshapes, probe)
    # rows: graph inputs that are quantized, then every op output that is not static
    prod = _producers(qsg)
    batch_one = all(len(qsg.tensors[i].shape) >= 1 and qsg.tensors[i].shape[0] == 1 for i in qsg.inputs)
    if fmodel is not None:
        batch_one = batch_one and all(
            len(fmodel.main.tensors[i].shape) >= 1 and fmodel.main.tensors[i].shape[0] == 1 for i in fmodel.main.inputs
        )
    candidates: list[tuple[int, int, str]] = [(i, -1, "INPUT") for i in qsg.inputs if _is_quantized(qsg.tensors[i])]
    for op in qsg.operators:
        if all(o in ctx.qstatic for o in op.outputs):
            continue
        ctx.local_ops.append(op.index)
        candidates.extend((o, op.index, op.opcode) for o in op.outputs)
    skipped = 0
    for idx, op_index, opcode in candidates:
        t = qsg.tensors[idx]
        if t.dtype not in _FLOATS and not _is_quantized(t):
            skipped += 1
            continue
        shape = tuple(qshapes.get(idx, t.shape))
        scale, zp, scales, qrange, qdim = _lsb_params(qsg, t, prod)
        if fmodel is None:
            ref: TensorMatch | None = TensorMatch(idx, t.name, "shadow")
        else:
            ref = matches.get(idx)
        lsb = None if scales is None else (scales if scales.size > 1 else float(scales[0]))
        axis = _channel_axis(shape, qdim)
        ctx.rows.append(_Row(idx, op_index, opcode, t.dtype, shape, scale, zp, axis, ref, lsb, qrange))
    if skipped:
        notes.append(f"{skipped} integer tensor(s) without quantization (indices, shapes) are not compared")
    unmatched = [r for r in ctx.rows if r.ref is None]

    # outputs for top-1
    out_index = qsg.outputs[0] if qsg.outputs else None
    out_row = next((r for r in ctx.rows if r.index == out_index), None)
    qtop: list[np.ndarray] = []
    ftop: list[np.ndarray] = []
    if ys is not None:  # check the labels against the output before the long run
        if out_row is None or out_row.ref is None:
            raise InputError("labels given, but the model's first output has no float counterpart to score")
        oshape = out_row.shape
        positions = int(np.prod(oshape[1:-1] if batch_one else oshape[:-1])) if len(oshape) > 1 else 1
        if positions != 1:
            raise InputError(
                f"labels need one prediction per sample; output {qsg.tensors[out_row.index].name!r} of shape "
                f"{tuple(oshape)} gives {positions}"
            )
        ncls = oshape[-1] if oshape else 1
        if ys.min() < 0 or ys.max() >= ncls:
            raise InputError(f"labels must be class indices in [0, {ncls - 1}]; found {ys.min()}..{ys.max()}")

    def accumulate(qd: dict[int, np.ndarray], rf: dict[int, np.ndarray], lc: dict[int, np.ndarray]) -> None:
        for r in ctx.rows:
            qv = qd[r.index]
            if r.ref is not None:
                rv = rf[r.index]
                if rv.shape != qv.shape:
                    raise RefquantError(
                        f"tensor {r.index} {qsg.tensors[r.index].name!r}: reference shape {rv.shape} differs from "
                        f"the quantized run's {qv.shape}"
                    )
                r.acc.update(qv, rv)  # type: ignore[union-attr]
            r.loc.update(qv, lc[r.index])  # type: ignore[union-attr]
        if out_row is not None and out_row.ref is not None:
            m = qd[out_row.index].shape[0]
            last = qd[out_row.index].shape[-1] if qd[out_row.index].ndim > 1 else 1
            qtop.append(np.argmax(qd[out_row.index].reshape(m, -1, last), axis=-1))
            ftop.append(np.argmax(rf[out_row.index].reshape(m, -1, last), axis=-1))

    # batch size
    per_sample = sum(int(np.prod(shape)) * 4 for i, shape in qshapes.items() if probe.q.static_value(i) is None)
    if batch_size is None:
        batch = max(1, min(_MAX_BATCH, n, _BATCH_BYTES // max(1, 16 * per_sample)))
    else:
        if batch_size < 1:
            raise InputError(f"batch_size must be at least 1, got {batch_size}")
        batch = min(batch_size, n)
    batched = batch_one and batch > 1
    blocky = [p for p in (opts.arithmetic, against) if p in _SIZE_DEPENDENT]
    if batched and blocky:
        batched = False
        notes.append(
            f"ran one sample at a time: under {blocky[0]} some results depend on a tensor's element count "
            "(SIMD blocks and scalar tails), so samples are not folded into the batch axis"
        )
    runners: dict[int, _Runner] = {}
    if batched:
        try:
            runners[batch] = _Runner(ctx, batch)
            first = runners[batch].run([x[:batch] for x in xs], [x[:batch] for x in qs])
            single = probe.run([x[:1] for x in xs], [x[:1] for x in qs])
            if not all(_same_values(a, b, batch) for a, b in zip(first, single)):
                batched = False
                notes.append("ran one sample at a time: a batched run differed from a per-sample run")
        except RefquantError as exc:
            batched = False
            notes.append(f"ran one sample at a time: the graph does not run batched ({exc})")
    for r in ctx.rows:
        r.start(batched)
    differ = _ProfileDiffer(ctx.rows) if against_opts is not None else None
    bar = _Progress(n, progress)
    done = 0
    if batched:
        accumulate(*first)
        if differ is not None:
            differ.update(runners[batch].last_pair, 0, True)  # type: ignore[arg-type]
        done = batch
        bar.update(done)
        while done < n:
            m = min(batch, n - done)
            if m not in runners:
                runners[m] = _Runner(ctx, m)
            accumulate(*runners[m].run([x[done : done + m] for x in xs], [x[done : done + m] for x in qs]))
            if differ is not None:
                differ.update(runners[m].last_pair, done, True)  # type: ignore[arg-type]
            done += m
            bar.update(done)
    else:
        chunk = max(1, min(_MAX_BATCH, n))

        def one(s: int) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray], dict[int, np.ndarray]]:
            res = probe.run([x[s : s + 1] for x in xs], [x[s : s + 1] for x in qs])
            if differ is not None:
                differ.update(probe.last_pair, s, False)  # type: ignore[arg-type]
            return res

        while done < n:
            m = min(chunk, n - done)
            parts = [one(s) for s in range(done, done + m)]
            merged = tuple({k: np.stack([p[j][k] for p in parts]) for k in parts[0][j]} for j in range(3))
            accumulate(*merged)  # type: ignore[arg-type]
            done += m
            bar.update(done)
    bar.close()

    # end to end
    top1 = None
    accuracy = None
    if qtop:
        qa, fa = np.concatenate(qtop), np.concatenate(ftop)
        top1 = float(np.mean(qa == fa))
        if ys is not None:
            accuracy = {"float": float(np.mean(fa[:, 0] == ys)), "quant": float(np.mean(qa[:, 0] == ys))}

    reports = [
        TensorReport(
            index=r.index,
            name=qsg.tensors[r.index].name,
            op_index=r.op_index,
            opcode=r.opcode,
            dtype=r.dtype,
            shape=r.shape,
            scale=r.scale,
            zero_point=r.zero_point,
            accumulated=r.acc.result() if r.acc is not None and r.ref is not None else None,
            local=r.loc.result() if r.loc is not None else None,
            reference=r.ref,
        )
        for r in ctx.rows
    ]
    by_index = {t.index: t for t in reports}
    outputs = [by_index[o] for o in qsg.outputs if o in by_index]
    return Report(
        model=qname,
        float_model=fname,
        samples=n,
        rounding=opts.rounding,
        float_accumulation=opts.float_accumulation,
        arithmetic=opts.arithmetic,
        against=against,
        profile_diff=None if differ is None else differ.result(qsg),
        reference="float_model" if fmodel is not None else "float_shadow",
        tensors=reports,
        outputs=outputs,
        top1_agreement=top1,
        accuracy=accuracy,
        unmatched=[by_index[r.index] for r in unmatched],
        notes=notes,
        elapsed_s=time.perf_counter() - t0,
        batched=batched,
    )


def _check_float_model(
    qmodel: Model, fmodel: Model, qshapes: Mapping[int, tuple[int, ...]], probe: _Runner
) -> dict[int, TensorMatch]:
    """Match the float model to the quantized one; InputError when it does not correspond."""
    qsg, fsg = qmodel.main, fmodel.main
    if len(fsg.inputs) != len(qsg.inputs):
        raise InputError(
            f"the float model has {len(fsg.inputs)} input(s), the quantized model {len(qsg.inputs)}: they do not correspond"
        )
    for k, (qi, fi) in enumerate(zip(qsg.inputs, fsg.inputs)):
        qt, ft = qsg.tensors[qi], fsg.tensors[fi]
        if tuple(qt.shape) != tuple(ft.shape):
            raise InputError(
                f"float model input {k} {ft.name!r} has shape {tuple(ft.shape)}; the quantized model's "
                f"{qt.name!r} has {tuple(qt.shape)}: the models do not correspond"
            )
        if ft.dtype not in _FLOATS and _is_quantized(ft):
            raise InputError(f"float model input {k} {ft.name!r} is {ft.dtype}, quantized: expected a float model")
    assert probe.f is not None
    fshapes = dict(probe.f.shapes)
    matches = match_tensors(qmodel, fmodel, qshapes, fshapes)
    for m in matches.values():
        ft = fsg.tensors[m.index]
        if _is_quantized(ft) and ft.dtype != "int32":
            raise InputError(
                f"float model tensor {m.index} {ft.name!r} is quantized ({ft.dtype}): expected a float model"
            )
    for k, o in enumerate(qsg.outputs):
        if o not in matches:
            raise InputError(
                f"the float model does not correspond: quantized model output {k} {qsg.tensors[o].name!r} "
                "has no counterpart (by name or graph structure)"
            )
    static = _static_tensors(qsg)
    acts = [o for op in qsg.operators for o in op.outputs if o not in static]
    found = sum(1 for o in acts if o in matches)
    if acts and found < 0.5 * len(acts):
        raise InputError(
            f"the float model does not correspond: only {found} of {len(acts)} activation tensors of the quantized "
            "model have a counterpart (by name or graph structure); without --float the reference is the quantized "
            "graph's own float shadow"
        )
    return matches
