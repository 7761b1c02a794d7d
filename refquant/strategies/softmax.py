"""SOFTMAX and LOG_SOFTMAX: the builder of :func:`~refquant.strategies.op_models`."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from ..testing.harness import Case
from .base import QUANTIZED_DTYPES, draw_floats, draw_values, ratio
from .builder import Net, OpConfig, Quant, activation_quant, draw_shape
from .registry import register

_SOFTMAX_OUT = {
    ("int8", "int8"): (1 / 256, -128),
    ("int8", "int16"): (1 / 65536, -32768),
    ("uint8", "uint8"): (1 / 256, 0),
    ("int16", "int16"): (1 / 32768, 0),
}


@register(
    "SOFTMAX",
    dtypes=("int8", "uint8", "int16", "float32"),
    constraints=("output_dtype",),
    min_rank=1,
    output_dtypes={"int8": ("int8", "int16"), "uint8": ("uint8",), "int16": ("int16",), "float32": ("float32",)},
)
@register("LOG_SOFTMAX", dtypes=("int8", "uint8", "float32"), min_rank=1)
def _b_softmax(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    shape = draw_shape(draw, cfg, 1, None)
    out_dt = cfg.output_dtype or dtype
    if opcode == "SOFTMAX" and dtype == "int8" and cfg.output_dtype is None and draw(st.integers(0, 3)) == 3:
        out_dt = "int16"
    opts: dict[str, Any] = {}
    if opcode == "SOFTMAX":
        opts["beta"] = draw(ratio(0.1, 10.0))
    q_in = q_out = None
    if dtype in QUANTIZED_DTYPES:
        q_in = (
            activation_quant(draw, dtype, 1e-3, 1.0) if dtype != "int16" else activation_quant(draw, dtype, 1e-4, 1e-2)
        )
        if opcode == "SOFTMAX":
            q_out = Quant(*_SOFTMAX_OUT[(dtype, out_dt)])
        else:
            q_out = Quant(16 / 256, 127 if dtype == "int8" else 255)
    x = draw_floats(draw, shape) if dtype == "float32" else draw_values(draw, dtype, shape)
    net = Net()
    xi = net.input("x", x, q_in)
    y = net.tensor("y", shape, out_dt, q_out)
    net.op(opcode, [xi], [y], **opts)
    return net.case([y], f"{opcode} {dtype}" + (f" -> {out_dt}" if out_dt != dtype else ""))
