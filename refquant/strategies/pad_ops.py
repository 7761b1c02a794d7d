"""PAD, PADV2 and MIRROR_PAD: the builders of :func:`~refquant.strategies.op_models`."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from ..testing.harness import Case
from .builder import ALL_DTYPES, Net, OpConfig, activation_quant, draw_any_values, draw_shape, raw_quant
from .registry import register


@register("PAD", "PADV2", dtypes=ALL_DTYPES)
def _b_pad(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    shape = draw_shape(draw, cfg, 0, 5)
    pads = [[draw(st.integers(0, 2)), draw(st.integers(0, 2))] for _ in shape]
    q_in = raw_quant(draw, dtype)
    q_out = (
        q_in
        if dtype != "uint8" and dtype != "int8" or draw(st.booleans())
        else activation_quant(draw, dtype, 1e-4, 1.0)
    )
    if dtype == "int16":
        q_out = q_in
    net = Net()
    xi = net.input("x", draw_any_values(draw, dtype, shape), q_in)
    pi = net.const("paddings", np.array(pads, draw(st.sampled_from(["int32", "int64"]))).reshape(len(shape), 2))
    ins = [xi, pi]
    if opcode == "PADV2":
        ins.append(net.const("constant_values", draw_any_values(draw, dtype, ()), dtype, q_out))
    y = net.tensor("y", [d + a + b for d, (a, b) in zip(shape, pads)], dtype, q_out)
    net.op(opcode, ins, [y])
    return net.case([y], f"{opcode} {dtype}")


@register("MIRROR_PAD", dtypes=ALL_DTYPES)
def _b_mirror_pad(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    shape = draw_shape(draw, cfg)
    mode = draw(st.sampled_from(["REFLECT", "SYMMETRIC"]))
    off = 1 if mode == "REFLECT" else 0
    pads = [[draw(st.integers(0, max(0, d - off))), draw(st.integers(0, max(0, d - off)))] for d in shape]
    q = raw_quant(draw, dtype)
    net = Net()
    xi = net.input("x", draw_any_values(draw, dtype, shape), q)
    pi = net.const("paddings", np.array(pads, draw(st.sampled_from(["int32", "int64"]))).reshape(len(shape), 2))
    y = net.tensor("y", [d + a + b for d, (a, b) in zip(shape, pads)], dtype, q)
    net.b.add_operator(opcode, [xi, pi], [y], options_type="MirrorPadOptions", mode=mode)
    return net.case([y], f"{opcode} {dtype}")
