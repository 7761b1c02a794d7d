"""The FULLY_CONNECTED builder of :func:`~refquant.strategies.op_models`."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from ..testing.harness import Case
from .base import draw_floats, draw_values
from .builder import (
    WEIGHT_DTYPES,
    Net,
    OpConfig,
    Quant,
    activation_quant,
    draw_activation,
    draw_bias,
    draw_shape,
    draw_weights,
    draw_zero_point,
    geomean,
    output_scale,
    weight_quant,
)
from .registry import register


@register(
    "FULLY_CONNECTED",
    dtypes=("int8", "uint8", "int16", "float32"),
    constraints=("per_channel", "activation"),
    min_rank=1,
)
def _b_fc(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    depth = draw(st.integers(1, 3 * cfg.max_side))
    units = draw(st.integers(1, 2 * cfg.max_side))
    keep = draw(st.booleans())
    if keep:
        lead = draw_shape(draw, cfg, 0, max(0, cfg.max_rank - 1))
        x_shape = (*lead, depth)
    else:
        x_shape = (draw(st.integers(1, cfg.max_side)), depth)
    act = draw_activation(draw, cfg)
    net = Net()
    q_in = activation_quant(draw, dtype)
    q_w = weight_quant(draw, dtype, cfg, units, 0)
    q_out = None
    if q_in is not None and q_w is not None:
        q_out = Quant(output_scale(draw, q_in.s, geomean(q_w.scale), depth), draw_zero_point(draw, dtype))
    opts: dict[str, Any] = dict(fused_activation_function=act, keep_num_dims=keep)
    int32_bias = dtype == "int16" and draw(st.integers(0, 3)) == 3
    with_bias = draw(st.integers(0, 3)) > 0
    if int32_bias:
        opts["quantized_bias_type"] = "INT32"
    w = draw_weights(draw, dtype, (units, depth))
    bias = draw_bias(draw, dtype, units, depth, q_in, q_w, int32_bias) if with_bias else None
    x = draw_values(draw, dtype, x_shape) if dtype != "float32" else draw_floats(draw, x_shape, -4.0, 4.0)
    xi = net.input("x", x, q_in)
    wi = net.const("w", w, WEIGHT_DTYPES[dtype], q_w)
    ins = [xi, wi] + ([net.const("bias", *bias)] if bias is not None else [])
    out_shape = (*x_shape[:-1], units) if keep else (x_shape[0], units)
    y = net.tensor("y", out_shape, dtype, q_out)
    net.op(opcode, ins, [y], **opts)
    return net.case([y], f"{opcode} {dtype}")
