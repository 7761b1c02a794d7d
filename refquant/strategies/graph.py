""":func:`graph_models`: small multi-op graphs (NHWC activations), chains and branches.

Each operator is drawn in the ranges the op builders use (weights, biases and output scales come from
:mod:`refquant.strategies.builder`), so every model is one LiteRT accepts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

from ..testing.harness import Case
from .activations import FIXED_OUTPUT_QUANT
from .base import ACTIVATIONS, check_choice, check_int, draw_floats, draw_values, f32, invalid, ratio
from .builder import (
    WEIGHT_DTYPES,
    Net,
    OpConfig,
    Quant,
    activation_quant,
    draw_bias,
    draw_weights,
    draw_zero_point,
    geomean,
    output_scale,
    weight_quant,
)
from .conv import ConvGeometry
from .pooling import PoolGeometry

#: Operators :func:`graph_models` can place, by activation dtype.
GRAPH_OPS: dict[str, tuple[str, ...]] = {
    "int8": (
        "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "AVERAGE_POOL_2D", "MAX_POOL_2D", "ADD", "SUB", "MUL",
        "RELU", "RELU6", "LOGISTIC", "TANH", "CONCATENATION", "PAD", "MEAN", "QUANTIZE",
    ),
    "uint8": (
        "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "AVERAGE_POOL_2D", "MAX_POOL_2D", "ADD", "SUB", "MUL",
        "RELU", "RELU6", "LOGISTIC", "TANH", "CONCATENATION", "PAD", "MEAN", "QUANTIZE",
    ),
    "int16": (
        "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "AVERAGE_POOL_2D", "MAX_POOL_2D", "ADD", "SUB", "MUL",
        "RELU", "RELU6", "LOGISTIC", "TANH", "CONCATENATION", "PAD", "MEAN", "QUANTIZE",
    ),
    "float32": (
        "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "AVERAGE_POOL_2D", "MAX_POOL_2D", "ADD", "SUB", "MUL",
        "RELU", "RELU6", "CONCATENATION", "PAD", "MEAN",
    ),
}  # fmt: skip


@dataclass(frozen=True)
class _T:
    """A tensor of the graph being built: index, shape, quantization."""

    index: int
    shape: tuple[int, int, int, int]
    q: Quant | None
    name: str


def _g_conv(draw: st.DrawFn, net: Net, dtype: str, t: _T, opcode: str, k: int) -> _T:
    b, h, w, c = t.shape
    dw = opcode == "DEPTHWISE_CONV_2D"
    kh, kw = draw(st.integers(1, min(3, h) if h else 1)), draw(st.integers(1, min(3, w) if w else 1))
    pad = draw(st.sampled_from(["SAME", "VALID"]))
    sh, sw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    o = c * draw(st.integers(1, 2)) if dw else draw(st.integers(1, 4))
    geo = ConvGeometry(b, h, w, c, o, kh, kw, sh, sw, 1, 1, pad, 1, dw)
    cfg = OpConfig()
    q_w = weight_quant(draw, dtype, cfg, o, 3 if dw else 0)
    taps = kh * kw * (1 if dw else c)
    q_out = None
    if t.q is not None and q_w is not None:
        q_out = Quant(output_scale(draw, t.q.s, geomean(q_w.scale), taps), draw_zero_point(draw, dtype))
    wi = net.const(f"w{k}", draw_weights(draw, dtype, geo.filter_shape), WEIGHT_DTYPES[dtype], q_w)
    bi = net.const(f"b{k}", *draw_bias(draw, dtype, o, taps, t.q, q_w))
    y = net.tensor(f"t{k}", geo.output_shape, dtype, q_out)
    net.op(opcode, [t.index, wi, bi], [y], **geo.options, fused_activation_function=draw(st.sampled_from(ACTIVATIONS)))
    return _T(y, geo.output_shape, q_out, f"t{k}")


def _g_fc(draw: st.DrawFn, net: Net, dtype: str, t: _T, k: int) -> _T:
    b, h, w, c = t.shape
    units = draw(st.integers(1, 4))
    q_w = weight_quant(draw, dtype, OpConfig(), units, 0)
    q_out = None
    if t.q is not None and q_w is not None:
        q_out = Quant(output_scale(draw, t.q.s, geomean(q_w.scale), c), draw_zero_point(draw, dtype))
    wi = net.const(f"w{k}", draw_weights(draw, dtype, (units, c)), WEIGHT_DTYPES[dtype], q_w)
    bi = net.const(f"b{k}", *draw_bias(draw, dtype, units, c, t.q, q_w))
    shape = (b, h, w, units)
    y = net.tensor(f"t{k}", shape, dtype, q_out)
    net.op(
        "FULLY_CONNECTED", [t.index, wi, bi], [y], keep_num_dims=True,
        fused_activation_function=draw(st.sampled_from(ACTIVATIONS)),
    )  # fmt: skip
    return _T(y, shape, q_out, f"t{k}")


def _g_pool(draw: st.DrawFn, net: Net, dtype: str, t: _T, opcode: str, k: int) -> _T:
    b, h, w, c = t.shape
    fh, fw = draw(st.integers(1, min(3, h))), draw(st.integers(1, min(3, w)))
    g = PoolGeometry(
        b, h, w, c, fh, fw, draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.sampled_from(["SAME", "VALID"]))
    )
    y = net.tensor(f"t{k}", g.output_shape, dtype, t.q)
    net.op(opcode, [t.index], [y], **g.options, fused_activation_function=draw(st.sampled_from(ACTIVATIONS)))
    return _T(y, g.output_shape, t.q, f"t{k}")


def _g_binary(draw: st.DrawFn, net: Net, dtype: str, a: _T, b: _T, opcode: str, k: int) -> _T:
    qo = None
    opts: dict[str, Any] = {"fused_activation_function": draw(st.sampled_from(ACTIVATIONS))}
    if a.q is not None and b.q is not None:
        if opcode == "MUL":
            so = f32(f32(a.q.s * b.q.s) * draw(ratio(1.0, 512.0)))
        else:
            so = f32(max(a.q.s, b.q.s) * draw(ratio(0.25, 4.0)))
            if dtype == "int16":
                opts["pot_scale_int16"] = False
        qo = Quant(so, draw_zero_point(draw, dtype))
    y = net.tensor(f"t{k}", a.shape, dtype, qo)
    net.op(opcode, [a.index, b.index], [y], **opts)
    return _T(y, a.shape, qo, f"t{k}")


def _g_unary(draw: st.DrawFn, net: Net, dtype: str, t: _T, opcode: str, k: int) -> _T:
    q = t.q
    if t.q is not None:
        if opcode in ("LOGISTIC", "TANH"):
            q = Quant(*FIXED_OUTPUT_QUANT[(opcode, dtype)])
        else:
            q = Quant(f32(t.q.s * draw(ratio(0.25, 4.0))), draw_zero_point(draw, dtype))
    y = net.tensor(f"t{k}", t.shape, dtype, q)
    net.op(opcode, [t.index], [y])
    return _T(y, t.shape, q, f"t{k}")


@st.composite
def _graph(draw: st.DrawFn, dtype: str, ops: tuple[str, ...], max_ops: int, max_side: int) -> Case:
    net = Net()
    shape = (1, draw(st.integers(1, max_side)), draw(st.integers(1, max_side)), draw(st.integers(1, 3)))
    live: list[_T] = []
    for k in range(draw(st.integers(1, 2))):
        q = activation_quant(draw, dtype, 1e-3, 1.0) if dtype != "int16" else activation_quant(draw, dtype, 1e-4, 1e-2)
        x = draw_floats(draw, shape, -4.0, 4.0) if dtype == "float32" else draw_values(draw, dtype, shape)
        live.append(_T(net.input(f"x{k}", x, q), shape, q, f"x{k}"))
    n_inputs = len(live)
    consumed: set[int] = set()
    names: list[str] = []
    for k in range(draw(st.integers(1, max_ops))):
        opcode = draw(st.sampled_from(ops))
        t = draw(st.sampled_from(live[::-1]))  # shrinks to the newest tensor: a chain
        if opcode in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            y = _g_conv(draw, net, dtype, t, opcode, k)
        elif opcode == "FULLY_CONNECTED":
            y = _g_fc(draw, net, dtype, t, k)
        elif opcode in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
            y = _g_pool(draw, net, dtype, t, opcode, k)
        elif opcode in ("ADD", "SUB", "MUL", "CONCATENATION"):
            same = (
                [u for u in live if u.shape[:3] == t.shape[:3]]
                if opcode == "CONCATENATION"
                else [u for u in live if u.shape == t.shape]
            )
            if opcode == "CONCATENATION" and dtype == "int8":
                same = [u for u in same if u.q == t.q]  # int8 CONCATENATION needs equal parameters
            u = draw(st.sampled_from(same[::-1]))
            if opcode == "CONCATENATION":
                shape_o = (*t.shape[:3], t.shape[3] + u.shape[3])
                yi = net.tensor(f"t{k}", shape_o, dtype, t.q)
                net.op("CONCATENATION", [t.index, u.index], [yi], axis=3)
                y = _T(yi, shape_o, t.q, f"t{k}")  # type: ignore[arg-type]
            else:
                y = _g_binary(draw, net, dtype, t, u, opcode, k)
            consumed.add(u.index)
        elif opcode == "PAD":
            pads = [
                [0, 0],
                [draw(st.integers(0, 1)), draw(st.integers(0, 1))],
                [draw(st.integers(0, 1)), draw(st.integers(0, 1))],
                [0, 0],
            ]
            shape_o = tuple(d + a + b for d, (a, b) in zip(t.shape, pads))
            yi = net.tensor(f"t{k}", shape_o, dtype, t.q)
            net.op("PAD", [t.index, net.const(f"pads{k}", np.array(pads, np.int32))], [yi])
            y = _T(yi, shape_o, t.q, f"t{k}")  # type: ignore[arg-type]
        elif opcode == "MEAN":
            q = t.q if t.q is None else Quant(f32(t.q.s * draw(ratio(0.5, 2.0))), draw_zero_point(draw, dtype))
            shape_o = (t.shape[0], 1, 1, t.shape[3])
            yi = net.tensor(f"t{k}", shape_o, dtype, q)
            net.op("MEAN", [t.index, net.const(f"axes{k}", np.array([1, 2], np.int32))], [yi], keep_dims=True)
            y = _T(yi, shape_o, q, f"t{k}")
        else:  # RELU, RELU6, LOGISTIC, TANH, QUANTIZE (requantization)
            y = _g_unary(draw, net, dtype, t, opcode, k)
        consumed.add(t.index)
        names.append(opcode)
        live.append(y)
    outs = [t.index for t in live[n_inputs:] if t.index not in consumed] or [live[-1].index]
    return net.case(outs, f"graph {dtype}: {' -> '.join(names)}")


def graph_models(
    dtype: str = "int8",
    *,
    ops: Sequence[str] | None = None,
    max_ops: int = 4,
    max_side: int = 4,
) -> st.SearchStrategy[Case]:
    """Small multi-operator models: chains and branches of supported ops on NHWC activations.

    One or two graph inputs of shape ``(1, H, W, C)``; each of 1 to ``max_ops`` operators (drawn from
    ``ops``, default every op of ``GRAPH_OPS[dtype]``) reads the newest tensor or an earlier one (a
    branch), binary ops (ADD, SUB, MUL, CONCATENATION) join two branches, and every tensor no op
    reads is a graph output. Quantization parameters are drawn per tensor in the ranges
    :func:`op_models` uses, so every operator is one LiteRT accepts. Shrinks towards one operator on
    a one-pixel input. Raises :class:`InvalidArgument` for an unknown dtype or op.
    """
    check_choice("dtype", dtype, tuple(GRAPH_OPS))
    n = check_int("max_ops", max_ops, 1, 32)
    side = check_int("max_side", max_side, 1, 32)
    if ops is None:
        chosen = GRAPH_OPS[dtype]
    else:
        if isinstance(ops, str) or not isinstance(ops, Sequence):
            raise invalid(f"ops must be a sequence of op names, got {ops!r}")
        bad = [o for o in ops if o not in GRAPH_OPS[dtype]]
        if bad or not ops:
            raise invalid(
                f"ops for {dtype} graphs must be a non-empty subset of {list(GRAPH_OPS[dtype])}; got {list(ops)}"
            )
        chosen = tuple(ops)
    return _graph(dtype, chosen, n, side)
