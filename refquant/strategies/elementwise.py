"""Elementwise binary ops (ADD, SUB, MUL, DIV, SQUARED_DIFFERENCE, MAXIMUM, MINIMUM): the builders of
:func:`~refquant.strategies.op_models`."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from ..testing.harness import Case
from .base import INT_RANGES, QUANTIZED_DTYPES, draw_floats, draw_values, f32, ratio
from .builder import Net, OpConfig, Quant, activation_quant, broadcast_pair, draw_activation, draw_zero_point
from .registry import register


def _pot_ok(*ss: float) -> bool:
    from ..ops.lut import checked_log2

    return all(checked_log2(s)[0] for s in ss)


@register(
    "ADD", "SUB", "MUL", dtypes=("int8", "uint8", "int16", "int32", "int64", "float32"), constraints=("activation",)
)
@register("DIV", dtypes=("int8", "uint8", "int16", "int32", "float32"), constraints=("activation",))
@register("SQUARED_DIFFERENCE", dtypes=("int8", "int32", "float32"))
@register("MAXIMUM", "MINIMUM", dtypes=("int8", "uint8", "int16", "int32", "int64", "float32"))
def _b_binary(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    s1, s2 = broadcast_pair(draw, cfg)
    opts: dict[str, Any] = {}
    if opcode in ("ADD", "SUB", "MUL", "DIV"):
        opts["fused_activation_function"] = draw_activation(draw, cfg)
    q1 = q2 = qo = None
    if dtype in QUANTIZED_DTYPES:
        q1 = activation_quant(draw, dtype, 1e-3, 1.0)
        assert q1 is not None
        if opcode in ("MAXIMUM", "MINIMUM"):
            q2 = qo = q1  # compared raw: one set of parameters
        else:
            q2 = activation_quant(draw, dtype, 1e-3, 1.0)
            assert q2 is not None
            big = max(q1.s, q2.s)
            if opcode in ("ADD", "SUB"):
                so = f32(big * draw(ratio(1 / 16, 16.0)))
                if dtype == "int16":
                    pot = draw(st.booleans())
                    opts["pot_scale_int16"] = pot
                    if pot and _pot_ok(q1.s, q2.s, so):
                        so = f32(big)  # the POT path: one input unshifted, the other shifted right
                        if opcode == "ADD":
                            s2 = s1  # LiteRT's REF POT ADD has no broadcasting
            elif opcode == "MUL":
                so = f32(f32(q1.s * q2.s) * draw(ratio(0.25, 1024.0)))
            elif opcode == "DIV":
                so = f32(q1.s / q2.s * draw(ratio(0.25, 128.0)))
            else:  # SQUARED_DIFFERENCE: the output multiplier must stay below 1
                so = f32(big * big * draw(ratio(1 / 16, 2048.0)))
            qo = Quant(so, draw_zero_point(draw, dtype))
    if dtype == "float32":
        x1, x2 = draw_floats(draw, s1), draw_floats(draw, s2)
    else:
        x1, x2 = draw_values(draw, dtype, s1), draw_values(draw, dtype, s2)
    if opcode == "DIV":
        # A divisor equal to its zero point (0 for unquantized types) is a run-time error in LiteRT.
        z2 = q2.z if q2 is not None else 0
        if dtype == "float32":
            x2 = np.where(np.abs(x2) < 1e-3, np.float32(1.0), x2).astype(np.float32)
        else:
            hi = INT_RANGES[dtype][1]
            x2 = np.where(x2 == z2, z2 + 1 if z2 < hi else z2 - 1, x2).astype(dtype)
    net = Net()
    a = net.input("a", x1, q1)
    b = net.const("b", x2, dtype, q2) if draw(st.integers(0, 4)) == 4 else net.input("b", x2, q2)
    y = net.tensor("y", np.broadcast_shapes(s1, s2), dtype, qo)
    net.op(opcode, [a, b], [y], **opts)
    return net.case([y], f"{opcode} {dtype}")
