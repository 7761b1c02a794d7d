"""QUANTIZE and DEQUANTIZE: the builders of :func:`~refquant.strategies.op_models`."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from ..testing.harness import Case
from .base import draw_floats, draw_ints, draw_values, f32, ratio, scales
from .builder import Net, OpConfig, Quant, activation_quant, draw_shape, draw_zero_point
from .registry import register

_REQUANT_OUT = {
    "float32": ("int8", "uint8", "int16"),
    "int8": ("int8", "uint8", "int16"),
    "uint8": ("int8", "uint8", "int16"),
    "int16": ("int8", "int16", "int32"),
    "int32": ("int8", "int16"),
}


@register(
    "QUANTIZE",
    dtypes=("int8", "uint8", "int16", "float32", "int32"),
    constraints=("output_dtype",),
    output_dtypes=_REQUANT_OUT,
)
def _b_quantize(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    shape = draw_shape(draw, cfg)
    out_dt = cfg.output_dtype or draw(st.sampled_from(_REQUANT_OUT[dtype]))
    net = Net()
    if dtype == "float32":
        per_channel = len(shape) > 0 and draw(st.integers(0, 3)) == 3
        if per_channel:
            axis = draw(st.integers(0, len(shape) - 1))
            n = shape[axis]
            s = tuple(draw(scales(1e-3, 1.0)) for _ in range(n))
            z = tuple(draw_zero_point(draw, out_dt) for _ in range(n))
            q_out = Quant(s, z, axis) if n > 1 else Quant(s[0], z[0])
        else:
            q_out = Quant(draw(scales(1e-3, 1.0)), draw_zero_point(draw, out_dt))
        # Real values around the representable range, often exact halves of a step (rounding ties).
        s_ref = float(np.max(q_out.scale))
        lim = s_ref * (200.0 if out_dt != "int16" else 40000.0)
        steps = draw_floats(draw, shape, -lim / s_ref, lim / s_ref, halves=True)
        x = (steps.astype(np.float64) * s_ref).astype(np.float32)
        xi = net.input("x", x)
    else:
        q_in = activation_quant(draw, dtype, 1e-3, 1.0) if dtype != "int32" else Quant(draw(scales(1e-6, 1e-3)), 0)
        assert q_in is not None
        sym = (dtype == "int16" and out_dt == "int16") or out_dt == "int32"
        s_out = f32(q_in.s * draw(ratio(1 / 16, 16.0)))
        if dtype == "int32":
            s_out = f32(q_in.s * draw(ratio(2.0**8, 2.0**16)))
        q_out = Quant(s_out, 0 if sym else draw_zero_point(draw, out_dt))
        if dtype == "int32":
            x = draw_ints(draw, "int32", shape, -(2**24), 2**24)
        else:
            x = draw_values(draw, dtype, shape)
        xi = net.input("x", x, q_in)
    y = net.tensor("y", shape, out_dt, q_out)
    net.op(opcode, [xi], [y])
    return net.case([y], f"{opcode} {dtype} -> {out_dt}")


@register("DEQUANTIZE", dtypes=("int8", "uint8", "int16", "float32"))
def _b_dequantize(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    shape = draw_shape(draw, cfg)
    net = Net()
    if dtype == "float32":  # float16 -> float32
        xi = net.input("x", draw_floats(draw, shape).astype(np.float16))
        title = f"{opcode} float16 -> float32"
    else:
        q: Quant | None = activation_quant(draw, dtype, 1e-4, 1.0)
        if dtype != "int16" and len(shape) > 0 and draw(st.integers(0, 3)) == 3:
            axis = draw(st.integers(0, len(shape) - 1))
            n = shape[axis]
            if n > 1:
                q = Quant(
                    tuple(draw(scales(1e-4, 1.0)) for _ in range(n)),
                    tuple(draw_zero_point(draw, dtype) for _ in range(n)),
                    axis,
                )
        xi = net.input("x", draw_values(draw, dtype, shape), q)
        title = f"{opcode} {dtype} -> float32"
    y = net.tensor("y", shape, "float32")
    net.op(opcode, [xi], [y])
    return net.case([y], title)
