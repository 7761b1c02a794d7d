"""Model assembly for the op builders of :func:`~refquant.strategies.op_models` and :func:`~refquant.strategies.graph_models`.

:class:`Quant` (one tensor's quantization), :class:`Net` (a model builder that remembers the graph-input
arrays and finishes a :class:`refquant.testing.Case` with a readable description), :class:`OpConfig` (the
validated constraints of one ``op_models`` call), and the drawing helpers several op families share:
activation quantization, shapes, broadcastable pairs, weights and biases, raw copies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

from ..model import Model, QuantParams
from ..testing.harness import Case
from ..tflite.builder import ModelBuilder
from .base import (
    ACTIVATIONS,
    QUANTIZED_DTYPES,
    draw_floats,
    draw_ints,
    draw_values,
    f32,
    log_uniform,
    nice_values,
    ratio,
    scales,
    zero_points,
)

# ---------------------------------------------------------------------------------------------
# Model assembly and descriptions


@dataclass(frozen=True)
class Quant:
    """Quantization of one tensor: per-tensor (float scale, int zp) or per-channel (tuples) along ``axis``."""

    scale: float | tuple[float, ...]
    zp: int | tuple[int, ...] = 0
    axis: int = 0

    def kwargs(self) -> dict[str, Any]:
        """The quantization keyword arguments of ``ModelBuilder.add_tensor`` and its siblings."""
        return {"scale": self.scale, "zero_point": self.zp, "quantized_dimension": self.axis}

    @property
    def s(self) -> float:
        """The first scale."""
        return float(self.scale[0] if isinstance(self.scale, tuple) else self.scale)

    @property
    def z(self) -> int:
        """The first zero point."""
        return int(self.zp[0] if isinstance(self.zp, tuple) else self.zp)


class Net:
    """A ModelBuilder that remembers the graph-input arrays (in order) and builds a :class:`Case`."""

    def __init__(self) -> None:
        self.b = ModelBuilder("refquant.strategies")
        self.feeds: list[np.ndarray] = []
        self.names: set[str] = set()

    def _name(self, name: str) -> str:
        base, k = name, 1
        while name in self.names:
            name = f"{base}{k}"
            k += 1
        self.names.add(name)
        return name

    def input(self, name: str, value: np.ndarray, q: Quant | None = None, dtype: str | None = None) -> int:
        """Add a graph input fed with ``value`` (the next entry of the case's inputs); returns its tensor index."""
        value = np.asarray(value)
        dt = dtype or value.dtype.name
        self.feeds.append(value)
        return self.b.add_input(self._name(name), value.shape, dt, **(q.kwargs() if q else {}))

    def const(self, name: str, value: Any, dtype: str | None = None, q: Quant | None = None) -> int:
        """Add a constant tensor holding ``value`` (cast to ``dtype``); returns its tensor index."""
        arr = np.asarray(value)
        dt = dtype or arr.dtype.name
        return self.b.add_constant(self._name(name), arr.astype(dt), dt, **(q.kwargs() if q else {}))

    def tensor(self, name: str, shape: Sequence[int], dtype: str, q: Quant | None = None) -> int:
        """Add an intermediate or output tensor; returns its index."""
        return self.b.add_tensor(self._name(name), tuple(shape), dtype, **(q.kwargs() if q else {}))

    def op(self, opcode: str, ins: Sequence[int], outs: Sequence[int], **options: Any) -> None:
        """Add an operator with its builtin ``options``."""
        self.b.add_operator(opcode, ins, outs, **options)

    def case(self, outputs: Sequence[int], title: str) -> Case:
        """Mark ``outputs``, build the model and return the :class:`Case`, described under ``title``."""
        self.b.mark_output(*outputs)
        model = self.b.model()
        data = self.b.build()
        return Case(data, list(self.feeds), _describe(model, title, self.feeds))


def _num(v: float) -> str:
    return f"{float(v):.7g}"


def _qtext(q: QuantParams | None) -> str:
    if q is None or q.scale.size == 0:
        return ""
    if q.scale.size == 1:
        return f"scale {_num(q.scale[0])}, zp {int(q.zero_point[0])}"
    zps = sorted(set(int(z) for z in q.zero_point))
    zp_text = f"zp {zps[0]}" if len(zps) == 1 else f"zps {[int(z) for z in q.zero_point]}"
    return f"scales {[float(_num(s)) for s in q.scale]} (axis {q.quantized_dimension}), {zp_text}"


def _nested(v: Any) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(_nested(x) for x in v) + "]"
    if isinstance(v, float):
        return _num(v)
    return str(v)


def _vtext(a: np.ndarray) -> str:
    a = np.asarray(a)
    if a.size <= 16:
        if a.dtype.kind == "f":
            return "= " + _nested(a.astype(np.float64).tolist())
        return "= " + _nested(a.tolist())
    if a.dtype == bool:
        return f"= {int(a.sum())} of {a.size} true"
    if a.dtype.kind == "f":
        return f"values {_num(a.min())} .. {_num(a.max())}"
    return f"values {a.min()} .. {a.max()}"


_DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {}


def _option_text(model: Model, op: Any) -> str:
    from ..tflite.reader import default_options

    table = op.options_type
    if table not in _DEFAULT_OPTIONS:
        try:
            _DEFAULT_OPTIONS[table] = default_options(table) if table else {}
        except Exception:  # noqa: BLE001 - descriptions never fail a draw
            _DEFAULT_OPTIONS[table] = {}
    defaults = _DEFAULT_OPTIONS[table]
    parts = []
    for k, v in (op.options or {}).items():
        if k in defaults and defaults[k] == v and k not in ("padding",):
            continue
        if isinstance(v, float):
            v = _num(v)
        parts.append(f"{k}={v}")
    return ", ".join(parts)


def _describe(model: Model, title: str, feeds: Sequence[np.ndarray]) -> str:
    """A readable summary: the title, each tensor (role, type, shape, quantization, small values), each op."""
    sg = model.main
    inputs = {t: k for k, t in enumerate(sg.inputs)}
    outputs = set(sg.outputs)
    lines = [title]
    for t in sg.tensors:
        if t.index in inputs:
            role, vals = "input", _vtext(feeds[inputs[t.index]])
        elif t.data is not None:
            role, vals = "const", _vtext(t.data)
        else:
            role, vals = ("output" if t.index in outputs else "tensor"), ""
        q = _qtext(t.quantization)
        shape = f"{t.dtype}{list(t.shape)}" if t.data is not None or t.index in inputs else t.dtype
        lines.append(f"  {t.index} {t.name} ({role}) {shape}" + (f", {q}" if q else "") + (f" {vals}" if vals else ""))
    for op in sg.operators:
        ins = ", ".join("-" if i < 0 else sg.tensors[i].name for i in op.inputs)
        outs = ", ".join(sg.tensors[i].name for i in op.outputs)
        opts = _option_text(model, op)
        lines.append(f"  {op.opcode}({ins}) -> {outs}" + (f"  [{opts}]" if opts else ""))
    for k, other in enumerate(model.subgraphs[1:], 1):
        ops = "; ".join(
            f"{op.opcode}({', '.join(other.tensors[i].name for i in op.inputs if i >= 0)})" for op in other.operators
        )
        lines.append(f"  subgraph {k} {other.name!r}: {ops}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Shared drawing helpers for the op builders


@dataclass(frozen=True)
class OpConfig:
    """The validated constraints of one op_models call."""

    max_side: int = 4
    max_rank: int = 4
    max_batch: int = 2
    per_channel: bool | None = None
    activation: str | None = None
    output_dtype: str | None = None


def draw_activation(draw: st.DrawFn, cfg: OpConfig) -> str:
    """The fused activation: the constrained one, else one of :data:`ACTIVATIONS` (shrinks to NONE)."""
    return cfg.activation if cfg.activation is not None else draw(st.sampled_from(ACTIVATIONS))


def draw_zero_point(draw: st.DrawFn, dtype: str) -> int:
    """A zero point from :func:`zero_points` for quantized dtypes; 0 otherwise."""
    return draw(zero_points(dtype)) if dtype in QUANTIZED_DTYPES else 0


def activation_quant(draw: st.DrawFn, dtype: str, lo: float = 1e-3, hi: float = 1.0) -> Quant | None:
    """Activation quantization (per tensor) for quantized dtypes; None otherwise."""
    if dtype not in QUANTIZED_DTYPES:
        return None
    s = draw(log_uniform(lo, hi, tuple(nice_values(lo, hi))))
    return Quant(s, draw_zero_point(draw, dtype))


def draw_shape(
    draw: st.DrawFn, cfg: OpConfig, min_rank: int = 0, max_rank: int | None = None, min_side: int = 1
) -> tuple[int, ...]:
    """A shape of rank ``min_rank`` .. ``max_rank`` (capped by the config), sides ``min_side`` .. ``cfg.max_side``."""
    top = cfg.max_rank if max_rank is None else min(cfg.max_rank, max_rank)
    rank = draw(st.integers(min(min_rank, top), top))
    return tuple(draw(st.integers(min_side, max(min_side, cfg.max_side))) for _ in range(rank))


def broadcast_pair(draw: st.DrawFn, cfg: OpConfig) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Two NumPy-broadcastable shapes (equal half of the time; otherwise trailing dims or 1s)."""
    full = draw_shape(draw, cfg)
    if not draw(st.booleans()):
        return full, full

    def one() -> tuple[int, ...]:
        r = draw(st.integers(0, len(full)))
        return tuple(d if draw(st.booleans()) else 1 for d in full[len(full) - r :])

    return one(), one()


def _bias_range(dtype: str, k: int) -> int:
    return min(2**12 * max(k, 1), 2**24) if dtype != "int16" else min(2**18 * max(k, 1), 2**30)


# ---------------------------------------------------------------------------------------------
# Weights and biases (convolutions, fully connected, graphs)


#: The weight type of convolutions and FULLY_CONNECTED, per activation dtype (16x8: int8 weights).
WEIGHT_DTYPES = {"int8": "int8", "int16": "int8", "uint8": "uint8", "float32": "float32"}


def draw_weights(draw: st.DrawFn, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    """Weights for ``dtype`` activations (type :data:`WEIGHT_DTYPES`): int8 in [-127, 127], uint8, or float32 in [-2, 2]."""
    w_dt = WEIGHT_DTYPES[dtype]
    if w_dt == "float32":
        return draw_floats(draw, shape, -2.0, 2.0)
    if w_dt == "uint8":
        return draw_ints(draw, "uint8", shape, 0, 255)
    return draw_ints(draw, "int8", shape, -127, 127)


def weight_quant(draw: st.DrawFn, dtype: str, cfg: OpConfig, channels: int, axis: int) -> Quant | None:
    """Weight quantization: per-channel (int8 weights, symmetric) or per-tensor."""
    if dtype == "float32":
        return None
    per_channel = cfg.per_channel if cfg.per_channel is not None else draw(st.booleans())
    if dtype == "uint8":
        return Quant(draw(scales(1e-3, 1.0)), draw(st.integers(0, 255)))
    if per_channel and channels > 1:
        s = tuple(draw(scales(1e-3, 1.0)) for _ in range(channels))
        return Quant(s, (0,) * channels, axis)
    return Quant(draw(scales(1e-3, 1.0)), 0)


def output_scale(draw: st.DrawFn, s_in: float, s_w: float, taps: int) -> float:
    """An output scale s_in * s_w * f: f = 1 shrinks to the exact product; typical accumulators fit the range."""
    f = draw(ratio(0.5, 64.0 * max(taps, 1)))
    return f32(s_in * s_w * f)


def geomean(s: float | tuple[float, ...]) -> float:
    """The geometric mean of one scale or of per-channel scales."""
    v = np.asarray(s, np.float64).reshape(-1)
    return float(np.exp(np.log(v).mean()))


def draw_bias(
    draw: st.DrawFn, dtype: str, n: int, taps: int, q_in: Quant | None, q_w: Quant | None, int32_bias: bool = False
) -> tuple[np.ndarray, str, Quant | None]:
    """(values, dtype, quantization) of a bias: int32 (int64 for int16 activations), scale s_in * s_w[c]."""
    if dtype == "float32":
        return draw_floats(draw, (n,), -2.0, 2.0), "float32", None
    assert q_in is not None and q_w is not None
    s_w = np.asarray(q_w.scale, np.float32).reshape(-1)
    b_scale = tuple(float(v) for v in (np.float32(q_in.s) * s_w).astype(np.float32))
    b_dt = "int64" if dtype == "int16" and not int32_bias else "int32"
    lim = _bias_range(dtype, taps) if not int32_bias else 2**20
    vals = draw_ints(draw, b_dt, (n,), -lim, lim)
    scale = b_scale if len(b_scale) > 1 else b_scale[0]
    return vals, b_dt, Quant(scale, (0,) * len(b_scale) if len(b_scale) > 1 else 0, 0)


# ---------------------------------------------------------------------------------------------
# One-input models and raw copies


def unary_model(
    draw: st.DrawFn, opcode: str, dtype: str, x: np.ndarray, q_in: Quant | None, q_out: Quant | None, **opts: Any
) -> Case:
    """A one-input, one-output model: ``opcode`` of ``x`` with the given quantization and builtin options."""
    net = Net()
    xi = net.input("x", x, q_in)
    y = net.tensor("y", x.shape, dtype, q_out)
    net.op(opcode, [xi], [y], **opts)
    return net.case([y], f"{opcode} {dtype}")


#: Every dtype a raw copy (data movement, selection) can carry.
ALL_DTYPES = ("int8", "uint8", "int16", "float32", "int32", "int64", "bool")


def raw_quant(draw: st.DrawFn, dtype: str) -> Quant | None:
    """Parameters for a raw copy: the same on input and output (LiteRT requires it for several ops)."""
    return activation_quant(draw, dtype, 1e-4, 1.0)


def draw_any_values(draw: st.DrawFn, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    """Values of any dtype: :func:`draw_floats` for float32 (in [-8, 8]), :func:`draw_values` otherwise."""
    return draw_floats(draw, shape) if dtype == "float32" else draw_values(draw, dtype, shape)
