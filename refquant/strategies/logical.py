"""LOGICAL_AND, LOGICAL_OR and LOGICAL_NOT: the builder of :func:`~refquant.strategies.op_models`."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from ..testing.harness import Case
from .base import draw_values
from .builder import Net, OpConfig, broadcast_pair, draw_shape
from .registry import register


@register("LOGICAL_AND", "LOGICAL_OR", "LOGICAL_NOT", dtypes=("bool",))
def _b_logical(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    net = Net()
    if opcode == "LOGICAL_NOT":
        shape = draw_shape(draw, cfg)
        ins = [net.input("x", draw_values(draw, "bool", shape))]
    else:
        s1, s2 = broadcast_pair(draw, cfg)
        shape = tuple(np.broadcast_shapes(s1, s2))
        ins = [net.input("a", draw_values(draw, "bool", s1)), net.input("b", draw_values(draw, "bool", s2))]
    y = net.tensor("y", shape, "bool")
    net.op(opcode, ins, [y])
    return net.case([y], f"{opcode} bool")
