"""``refquant diff --explain``: which known arithmetic reproduces an operator's values exactly.

For an operator whose output differs from refquant's given the same inputs, the same inputs are run
through every candidate below and compared with OTHER's output element for element:

1. **the arithmetic profiles**: ``litert-ref``, ``litert-optimized``, ``litert-xnnpack``, ``tflm``,
   and ``litert-ref`` built with ``TFLITE_SINGLE_ROUNDING`` (one rounding in every requantization);
2. **rescaling variants** of a quantized output, from its *exact value*: the operator run in float64 on
   the dequantized inputs (refquant's float shadow), divided by the output scale, plus the zero point.
   That value rounded half away from zero, half to even, half up, toward zero and down; and, for the
   convolution family and FULLY_CONNECTED, the effective scale ``s_in * s_w / s_out`` encoded with an
   8-, 15- or 16-bit multiplier before rounding half up or half away from zero. The exact value comes
   from float arithmetic, so values within 1/1000 of an LSB of a half or a whole are taken as exactly
   there.

The first candidate that reproduces every element is the explanation (all that do are listed). When
none does, the verdict is ``"unexplained"`` with two bounds in the manner of a conformance suite: the
smallest ``k`` such that every OTHER element lies within ``k`` LSB of the span of all candidates and the
exact value, and the largest distance of an OTHER element from the exact value. ``tried`` names every
candidate with its mismatch count, or why it could not run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..arithmetic import PROFILES
from ..errors import RefquantError
from ..graph import PreparedGraph
from ..model import Model, Tensor
from ..options import EngineOptions
from ..shadow import float_shadow
from .tensors import count_value, real_differences, tensor_range

__all__ = ["explain_operator", "Candidates", "GEMM_OPCODES", "MULTIPLIER_BITS"]

#: Operators whose rescale is ``acc * s_in * s_w / s_out`` (multiplier-width variants apply).
GEMM_OPCODES = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "CONV_3D")
#: Multiplier widths tried for the GEMM family.
MULTIPLIER_BITS = (8, 15, 16)
#: Distance (in LSB) within which an exact value counts as lying on a half or a whole.
_SNAP = 1e-3

_ROUNDINGS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "half away from zero": lambda p: np.sign(p) * np.floor(np.abs(p) + 0.5),
    "half to even": np.rint,
    "half up": lambda p: np.floor(p + 0.5),
    "toward zero": np.trunc,
    "down": np.floor,
}


class Candidates:
    """The engines ``explain_operator`` runs, built once per model and reused for every operator."""

    def __init__(self, model: Model, subgraph_index: int, base: EngineOptions) -> None:
        """Candidates for ``model``'s subgraph; ``base`` supplies the float accumulation and memory bound."""
        self.model = model
        self.subgraph_index = subgraph_index
        self.base = base
        self._graphs: dict[str, PreparedGraph | str] = {}
        self._shadow: PreparedGraph | str | None = None

    def profiles(self) -> list[tuple[str, str, EngineOptions]]:
        """(name, description, options) of every profile candidate."""
        out = []
        for name, prof in PROFILES.items():
            out.append((name, prof.runtime, self._options(name, "double")))
        out.append(
            (
                "litert-ref single rounding",
                "LiteRT's reference kernels built with TFLITE_SINGLE_ROUNDING (one rounding per requantization)",
                self._options("litert-ref", "single"),
            )
        )
        return out

    def _options(self, arithmetic: str, rounding: str) -> EngineOptions:
        return EngineOptions(
            rounding=rounding,  # type: ignore[arg-type]
            float_accumulation=self.base.float_accumulation,
            memory_limit=self.base.memory_limit,
            arithmetic=arithmetic,
            max_steps=self.base.max_steps,
        )

    def graph(self, name: str, options: EngineOptions) -> PreparedGraph | str:
        """The graph for one candidate, or the reason it cannot be built."""
        if name not in self._graphs:
            try:
                self._graphs[name] = PreparedGraph(self.model, self.subgraph_index, options, prepare_ahead=False)
            except RefquantError as exc:
                self._graphs[name] = str(exc)
        return self._graphs[name]

    def shadow(self) -> PreparedGraph | str:
        """The float shadow graph (float64 accumulation) that gives exact values."""
        if self._shadow is None:
            try:
                opts = EngineOptions(
                    float_accumulation="float64", memory_limit=self.base.memory_limit, max_steps=self.base.max_steps
                )
                self._shadow = PreparedGraph(float_shadow(self.model), self.subgraph_index, opts, prepare_ahead=False)
            except RefquantError as exc:
                self._shadow = str(exc)
        return self._shadow


def _run(graph: PreparedGraph, k: int, inputs: Sequence[np.ndarray | None], n: int) -> list[np.ndarray]:
    per = [graph.eval_op(k, [None if a is None else np.asarray(a[s]) for a in inputs]) for s in range(n)]
    return [np.stack([p[j] for p in per]) for j in range(len(per[0]))]


def _dequantized(t: Tensor, shadow_t: Tensor, a: np.ndarray) -> np.ndarray:
    """An input array as the float shadow expects it (real values for quantized tensors, else as is)."""
    if shadow_t.dtype == t.dtype or t.quantization is None:
        return a
    q = t.quantization
    scale = q.scale.astype(np.float64)
    zp = q.zero_point.astype(np.float64)
    if scale.size > 1:
        shape = [1] * a.ndim
        shape[q.quantized_dimension + (a.ndim - len(t.shape))] = -1
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    else:
        scale, zp = scale.reshape(()), zp.reshape(())
    return ((a.astype(np.float64) - zp) * scale).astype(np.float32)


def _exact_value(cands: Candidates, k: int, inputs: Sequence[np.ndarray | None], n: int) -> np.ndarray | str:
    """The operator's single quantized output as an exact (unrounded) value, or why there is none."""
    sg = cands.model.subgraphs[cands.subgraph_index]
    op = sg.operators[k]
    out = sg.tensors[op.outputs[0]]
    q = out.quantization
    if len(op.outputs) != 1 or q is None or out.dtype not in ("int8", "uint8", "int16"):
        return "the output is not one quantized tensor"
    shadow = cands.shadow()
    if isinstance(shadow, str):
        return shadow
    ssg = shadow.subgraph
    fin = []
    for i, a in zip(op.inputs, inputs):
        if i < 0 or a is None:
            fin.append(None)
        elif ssg.tensors[i].is_constant:
            fin.append(np.broadcast_to(ssg.tensors[i].data, (n, *ssg.tensors[i].shape)))
        else:
            fin.append(_dequantized(sg.tensors[i], ssg.tensors[i], np.asarray(a)))
    try:
        y = _run(shadow, k, fin, n)[0].astype(np.float64)
    except RefquantError as exc:
        return f"the float operator cannot run ({exc})"
    scale = q.scale.astype(np.float64)
    zp = q.zero_point.astype(np.float64)
    if scale.size > 1:
        shape = [1] * y.ndim
        shape[q.quantized_dimension + 1] = -1
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    else:
        scale, zp = scale.reshape(()), zp.reshape(())
    p = y / scale + zp
    halves = np.rint(2 * p)
    return np.where(np.abs(2 * p - halves) < 2 * _SNAP, halves / 2, p)


def _clamp(v: np.ndarray, dtype: np.dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.clip(np.nan_to_num(v, nan=0.0, posinf=info.max, neginf=info.min), info.min, info.max).astype(dtype)


def _multiplier_ratio(model: Model, sg_index: int, k: int, bits: int, rank: int) -> np.ndarray | None:
    """Per output channel, (effective scale encoded with ``bits`` bits) / (effective scale), or None."""
    sg = model.subgraphs[sg_index]
    op = sg.operators[k]
    if op.opcode not in GEMM_OPCODES or len(op.inputs) < 2:
        return None
    x, w, y = (sg.tensors[op.inputs[0]], sg.tensors[op.inputs[1]], sg.tensors[op.outputs[0]])
    if x.quantization is None or w.quantization is None or y.quantization is None:
        return None
    s_w = w.quantization.scale.astype(np.float64)
    eff = float(x.quantization.scale[0]) * s_w / float(y.quantization.scale[0])
    mant, _ = np.frexp(eff)
    enc = np.sign(mant) * np.floor(np.abs(mant) * 2.0**bits + 0.5) / 2.0**bits
    ratio = np.where(mant != 0, enc / np.where(mant != 0, mant, 1.0), 1.0)
    if ratio.size == 1:
        return ratio.reshape(())
    return ratio.reshape([1] * rank + [-1])


def explain_operator(
    cands: Candidates,
    k: int,
    inputs: Sequence[np.ndarray | None],
    other: Sequence[np.ndarray | None],
    n: int,
    float_tolerance: float = 0.0,
) -> dict[str, Any]:
    """Which candidate arithmetic reproduces OTHER's outputs of operator ``k`` from these inputs.

    ``inputs``: one ``(n, *shape)`` array per operator input (None where omitted); ``other``: OTHER's
    ``(n, *shape)`` output arrays (None where OTHER lacks one). Returns ``{"explanation", "matches",
    "tried", ...}`` as described in the module docstring.
    """
    sg = cands.model.subgraphs[cands.subgraph_index]
    op = sg.operators[k]
    tried: list[dict[str, Any]] = []
    values: list[np.ndarray] = []
    matches: list[str] = []
    floats = any(o is not None and np.asarray(o).dtype.kind == "f" for o in other)

    def judge(name: str, description: str, got: list[np.ndarray]) -> None:
        mismatched = worst = 0
        for g, o in zip(got, other):
            if o is None:
                continue
            o = np.asarray(o)
            if g.shape != o.shape:
                tried.append({"name": name, "description": description, "status": "shape differs"})
                return
            if o.dtype.kind == "f":
                bad = real_differences(g, o) / tensor_range(g) > float_tolerance
            else:
                d = np.abs(o.astype(np.int64) - g.astype(np.int64))
                bad = d > 0
                worst = max(worst, int(d.max(initial=0)))
                if len(got) == 1:
                    values.append(g.astype(np.float64))
            mismatched += int(np.count_nonzero(bad))
        entry: dict[str, Any] = {"name": name, "description": description, "mismatched": mismatched}
        if not floats:
            entry["max_lsb"] = worst
        entry["status"] = "match" if mismatched == 0 else "differs"
        tried.append(entry)
        if mismatched == 0:
            matches.append(name)

    for name, description, opts in cands.profiles():
        graph = cands.graph(name, opts)
        if isinstance(graph, str):
            tried.append({"name": name, "description": description, "status": "refused", "reason": graph})
            continue
        try:
            judge(name, description, _run(graph, k, inputs, n))
        except RefquantError as exc:
            tried.append({"name": name, "description": description, "status": "refused", "reason": str(exc)})

    exact: np.ndarray | str = "float output" if floats else _exact_value(cands, k, inputs, n)
    result: dict[str, Any] = {}
    if isinstance(exact, np.ndarray):
        out_dtype = sg.tensors[op.outputs[0]].np_dtype
        for rule, fn in _ROUNDINGS.items():
            judge(f"exact, round {rule}", f"the exact value rounded {rule}", [_clamp(fn(exact), out_dtype)])
        zp = sg.tensors[op.outputs[0]].quantization.zero_point.astype(np.float64)  # type: ignore[union-attr]
        zp = zp.reshape(()) if zp.size == 1 else zp.reshape([1] * (exact.ndim - 1) + [-1])
        for bits in MULTIPLIER_BITS:
            ratio = _multiplier_ratio(cands.model, cands.subgraph_index, k, bits, exact.ndim - 1)
            if ratio is None:
                break
            scaled = zp + (exact - zp) * ratio
            for rule in ("half up", "half away from zero"):
                judge(
                    f"{bits}-bit multiplier, round {rule}",
                    f"the effective scale encoded with a {bits}-bit multiplier, rounded {rule}",
                    [_clamp(_ROUNDINGS[rule](scaled), out_dtype)],
                )
        o = other[0]
        if o is not None:
            o = np.asarray(o).astype(np.float64)
            lo = np.minimum.reduce([exact, *values]) if values else exact
            hi = np.maximum.reduce([exact, *values]) if values else exact
            outside = np.maximum(np.maximum(lo - o, o - hi), 0.0)
            result["envelope_lsb"] = count_value(float(np.ceil(outside.max(initial=0.0))))
            result["exact_max_lsb"] = round(float(np.abs(o - exact).max(initial=0.0)), 3)
    else:
        result["exact_value"] = exact
    ran = [t for t in tried if "mismatched" in t]
    if ran:
        best = min(ran, key=lambda t: t["mismatched"])
        result["closest"] = {"name": best["name"], "mismatched": best["mismatched"]}
    return {"explanation": matches[0] if matches else "unexplained", "matches": matches, "tried": tried, **result}
