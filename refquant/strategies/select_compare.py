"""SELECT, SELECT_V2 and the comparisons (EQUAL, NOT_EQUAL, LESS, LESS_EQUAL, GREATER, GREATER_EQUAL):
the builders of :func:`~refquant.strategies.op_models`."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from ..testing.harness import Case
from .base import QUANTIZED_DTYPES, draw_values
from .builder import ALL_DTYPES, Net, OpConfig, activation_quant, broadcast_pair, draw_any_values, draw_shape, raw_quant
from .registry import register


def _broadcast_to(draw: st.DrawFn, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A shape that broadcasts to ``shape``: itself, or a suffix with some dims 1."""
    if not draw(st.booleans()):
        return shape
    k = draw(st.integers(0, len(shape)))
    return tuple(1 if draw(st.booleans()) else d for d in shape[len(shape) - k :])


@register("SELECT", dtypes=ALL_DTYPES, min_rank=1)
@register("SELECT_V2", dtypes=ALL_DTYPES)
def _b_select(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    v2 = opcode == "SELECT_V2"
    shape = draw_shape(draw, cfg, 0 if v2 else 1)
    if v2:
        sc, sx, sy = _broadcast_to(draw, shape), _broadcast_to(draw, shape), _broadcast_to(draw, shape)
        out_shape = np.broadcast_shapes(sc, sx, sy)
    else:
        sc = draw(st.sampled_from([shape, (), (shape[0],)]))  # SELECT: a full, scalar or outer-dim condition
        sx = sy = out_shape = shape
    q = raw_quant(draw, dtype)  # raw copies: one set of parameters
    net = Net()
    ci = net.input("condition", draw_values(draw, "bool", sc))
    xi = net.input("x", draw_any_values(draw, dtype, sx), q)
    yi = net.input("y", draw_any_values(draw, dtype, sy), q)
    o = net.tensor("out", out_shape, dtype, q)
    net.op(opcode, [ci, xi, yi], [o])
    return net.case([o], f"{opcode} {dtype}")


@register("EQUAL", "NOT_EQUAL", dtypes=ALL_DTYPES)
@register(
    "LESS", "LESS_EQUAL", "GREATER", "GREATER_EQUAL", dtypes=("int8", "uint8", "int16", "float32", "int32", "int64")
)
def _b_compare(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    sa, sb = broadcast_pair(draw, cfg)
    qa = qb = None
    if dtype in QUANTIZED_DTYPES:
        # Quantized comparisons rescale with QuantizeMultiplierSmallerThanOneExp(scale): scales below 1.
        qa = activation_quant(draw, dtype, 1e-4, 0.5)
        qb = qa if draw(st.booleans()) else activation_quant(draw, dtype, 1e-4, 0.5)
    a = draw_any_values(draw, dtype, sa)
    b = draw_any_values(draw, dtype, sb)
    if dtype != "bool" and draw(st.booleans()) and a.size and b.size:
        b = np.resize(a.reshape(-1), b.size).reshape(sb)  # many equal pairs
    net = Net()
    ai = net.input("a", a, qa)
    bi = net.input("b", b, qb)
    o = net.tensor("out", np.broadcast_shapes(sa, sb), "bool")
    net.op(opcode, [ai, bi], [o])
    return net.case([o], f"{opcode} {dtype}")
