"""Activations and unary math (RELU family, LEAKY_RELU, PRELU, LOGISTIC, TANH, HARD_SWISH, GELU, EXP,
LOG, SQRT, RSQRT, ABS, NEG, SQUARE): the builders of :func:`~refquant.strategies.op_models`."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from ..testing.harness import Case
from .base import QUANTIZED_DTYPES, draw_floats, draw_values, f32, ratio
from .builder import Net, OpConfig, Quant, activation_quant, draw_shape, draw_zero_point, unary_model
from .registry import register

#: Per op: (input scale range int8/uint8, input scale range int16, output rule).
_UNARY_SCALES: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "RELU": ((1e-3, 1.0), (1e-4, 1e-1)),
    "RELU6": ((1e-3, 1.0), (1e-4, 1e-1)),
    "RELU_N1_TO_1": ((1e-3, 1.0), (1e-4, 1e-1)),
    "RELU_0_TO_1": ((1e-3, 1.0), (1e-4, 1e-1)),
    "LEAKY_RELU": ((1e-3, 1.0), (1e-4, 1e-1)),
    "GELU": ((1e-3, 0.3), (1e-5, 1e-2)),
    "EXP": ((1e-3, 1.0), (1e-6, 1e-2)),
    "LOG": ((1e-3, 1.0), (1e-6, 1e-2)),
    "SQRT": ((1e-3, 1.0), (1e-6, 1e-1)),
    "RSQRT": ((1e-3, 1.0), (1e-6, 1e-1)),
    "ABS": ((1e-3, 1.0), (1e-4, 1e-1)),
    "HARD_SWISH": ((1e-3, 1.0), (1e-4, 1e-1)),
}


@register("RELU", "RELU6", dtypes=("int8", "uint8", "int16", "float32"))
@register("RELU_N1_TO_1", "RELU_0_TO_1", dtypes=("int8", "uint8", "float32"))
@register("LEAKY_RELU", dtypes=("int8", "uint8", "int16", "float32"))
@register("ABS", dtypes=("int8", "int16", "int32", "float32"))
@register("EXP", "LOG", "SQRT", "RSQRT", dtypes=("int8", "int16", "float32"))
@register("GELU", dtypes=("int8", "uint8", "int16", "float32"))
@register("HARD_SWISH", dtypes=("int8", "uint8", "float32"))
def _b_unary(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    shape = draw_shape(draw, cfg)
    opts: dict[str, Any] = {}
    if opcode == "LEAKY_RELU":
        opts["alpha"] = f32(draw(st.floats(-3.0, 3.0, width=32)))
    if opcode == "GELU":
        opts["approximate"] = draw(st.booleans())
    q_in = q_out = None
    if dtype in QUANTIZED_DTYPES:
        lo, hi = _UNARY_SCALES[opcode][1 if dtype == "int16" else 0]
        q_in = activation_quant(draw, dtype, lo, hi)
        assert q_in is not None
        if opcode == "HARD_SWISH":
            # Prepare fails unless the output multiplier (s_in / 128) / s_out is below 1.
            s_out = f32(q_in.s * draw(ratio(1 / 32, 4.0)))
            q_out = Quant(s_out, draw_zero_point(draw, dtype))
        elif opcode in ("EXP", "LOG", "GELU", "SQRT", "RSQRT"):
            q_out = activation_quant(draw, dtype, lo, hi)
        else:
            q_out = Quant(f32(q_in.s * draw(ratio(1 / 16, 16.0))), draw_zero_point(draw, dtype))
    lo_v: float | None = None
    if opcode in ("SQRT", "RSQRT"):
        if dtype in QUANTIZED_DTYPES:
            assert q_in is not None
            lo_v = q_in.z  # values below the zero point are run-time errors in LiteRT
        elif dtype == "float32":
            lo_v = 0.0
    if opcode == "LOG" and dtype == "float32":
        lo_v = 1e-3
    if dtype == "float32":
        x = draw_floats(draw, shape, 0.0 if lo_v is not None else -8.0, 8.0)
        if opcode == "LOG":
            x = np.maximum(x, np.float32(1e-3)).astype(np.float32)
    else:
        x = draw_values(draw, dtype, shape, lo=lo_v)
    return unary_model(draw, opcode, dtype, x, q_in, q_out, **opts)


#: LOGISTIC and TANH: the (scale, zero point) LiteRT fixes for the output, per (op, dtype).
FIXED_OUTPUT_QUANT = {
    ("LOGISTIC", "int8"): (1 / 256, -128),
    ("LOGISTIC", "uint8"): (1 / 256, 0),
    ("LOGISTIC", "int16"): (1 / 32768, 0),
    ("TANH", "int8"): (1 / 128, 0),
    ("TANH", "uint8"): (1 / 128, 128),
    ("TANH", "int16"): (1 / 32768, 0),
}


@register("LOGISTIC", "TANH", dtypes=("int8", "uint8", "int16", "float32"))
def _b_sigmoid_tanh(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    shape = draw_shape(draw, cfg)
    q_in = q_out = None
    if dtype == "int16":
        if draw(st.booleans()):
            q_in = Quant(2.0 ** -draw(st.integers(10, 13)), 0)  # power-of-two input scale: the POT path
        else:
            q_in = activation_quant(draw, dtype, 1e-5, 1e-2)
    elif dtype in QUANTIZED_DTYPES:
        q_in = activation_quant(draw, dtype, 1e-3, 1.0)
    if dtype in QUANTIZED_DTYPES:
        q_out = Quant(*FIXED_OUTPUT_QUANT[(opcode, dtype)])
    x = draw_floats(draw, shape) if dtype == "float32" else draw_values(draw, dtype, shape)
    return unary_model(draw, opcode, dtype, x, q_in, q_out)


@register("NEG", dtypes=("int8", "int16", "int32", "int64", "float32"))
@register("SQUARE", dtypes=("float32",))
def _b_raw_unary(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    shape = draw_shape(draw, cfg)
    q = activation_quant(draw, dtype)  # NEG negates raw values: the same parameters in and out
    x = draw_floats(draw, shape) if dtype == "float32" else draw_values(draw, dtype, shape)
    return unary_model(draw, opcode, dtype, x, q, q)


@register("PRELU", dtypes=("int8", "uint8", "int16", "float32"))
def _b_prelu(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    shape = draw_shape(draw, cfg, 0, 5)
    r = draw(st.integers(0, len(shape)))
    a_shape = tuple(d if draw(st.booleans()) else 1 for d in shape[len(shape) - r :])
    a_dt = "int8" if dtype == "int16" else dtype
    q_in = activation_quant(draw, dtype)
    q_out = activation_quant(draw, dtype)
    q_a = activation_quant(draw, a_dt, 1e-3, 0.3)
    if dtype == "float32":
        x = draw_floats(draw, shape)
        a = draw_floats(draw, a_shape, -2.0, 2.0)
    else:
        x = draw_values(draw, dtype, shape)
        a = draw_values(draw, a_dt, a_shape)
    net = Net()
    xi = net.input("x", x, q_in)
    ai = net.const("alpha", a, a_dt, q_a)
    y = net.tensor("y", shape, dtype, q_out)
    net.op(opcode, [xi, ai], [y])
    return net.case([y], f"{opcode} {dtype}")
