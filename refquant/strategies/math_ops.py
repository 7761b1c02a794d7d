"""Unquantized math (FLOOR, SIN, COS, SIGN, FLOOR_DIV, FLOOR_MOD, POW, ADD_N, CUMSUM, ONE_HOT): the
builders of :func:`~refquant.strategies.op_models`."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from ..testing.harness import Case
from .base import draw_floats, draw_ints, draw_values
from .builder import Net, OpConfig, broadcast_pair, draw_shape, unary_model
from .registry import register


@register("FLOOR", "SIN", "COS", dtypes=("float32",))
@register("SIGN", dtypes=("float32", "int32"))
def _b_math_unary(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    shape = draw_shape(draw, cfg)
    if dtype == "float32":
        wide = opcode in ("SIN", "COS") and draw(st.booleans())
        x = draw_floats(draw, shape, -1000.0, 1000.0) if wide else draw_floats(draw, shape, halves=True)
    else:
        x = draw_values(draw, dtype, shape)
    return unary_model(draw, opcode, dtype, x, None, None)


@register("FLOOR_DIV", dtypes=("int8", "int16", "int32", "float32"))
@register("FLOOR_MOD", dtypes=("int8", "int16", "int32", "int64", "float32"))
@register("POW", dtypes=("int32", "float32"))
def _b_math_binary(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    s1, s2 = broadcast_pair(draw, cfg)
    if opcode == "POW" and s1 != s2 and draw(st.booleans()):
        s2 = tuple(1 for _ in range(draw(st.integers(0, len(s1)))))  # a one-element exponent: LiteRT's fast path
    if opcode == "POW":
        if dtype == "int32":
            x1, x2 = draw_values(draw, dtype, s1, -20, 20), draw_values(draw, dtype, s2, 0, 8)
        else:
            x1 = draw_floats(draw, s1, -4.0, 4.0, halves=True)
            x2 = draw_floats(draw, s2, -3.0, 5.0, halves=True)
    elif dtype == "float32":
        x1, x2 = draw_floats(draw, s1, halves=True), draw_floats(draw, s2, halves=True)
    else:
        x1, x2 = draw_values(draw, dtype, s1), draw_values(draw, dtype, s2)
    if opcode in ("FLOOR_DIV", "FLOOR_MOD"):
        # A zero divisor anywhere fails LiteRT's invocation (float FLOOR_MOD excepted; avoided anyway).
        x2 = np.where(x2 == 0, np.ones((), x2.dtype), x2).astype(x2.dtype)
        if opcode == "FLOOR_MOD" and dtype in ("int32", "int64"):
            lo = np.iinfo(np.dtype(dtype)).min  # MIN % -1 kills LiteRT (SIGFPE)
            x1 = np.where(x1 == lo, np.zeros((), x1.dtype), x1).astype(x1.dtype)
    net = Net()
    a = net.input("a", x1)
    b = net.const("b", x2, dtype) if draw(st.integers(0, 4)) == 4 else net.input("b", x2)
    y = net.tensor("y", np.broadcast_shapes(s1, s2), dtype)
    net.op(opcode, [a, b], [y])
    return net.case([y], f"{opcode} {dtype}")


@register("ADD_N", dtypes=("float32", "int32"))
def _b_add_n(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    shape = draw_shape(draw, cfg)
    net = Net()
    ins = [
        net.input(f"x{k}", draw_floats(draw, shape) if dtype == "float32" else draw_values(draw, dtype, shape))
        for k in range(draw(st.integers(2, 4)))
    ]
    y = net.tensor("y", shape, dtype)
    net.op(opcode, ins, [y])
    return net.case([y], f"{opcode} {dtype}")


@register("CUMSUM", dtypes=("float32", "int32", "int64"), min_rank=1)
def _b_cumsum(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    shape = draw_shape(draw, cfg, 1)
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    x = draw_floats(draw, shape) if dtype == "float32" else draw_values(draw, dtype, shape)
    net = Net()
    xi = net.input("x", x)
    a = np.array(axis, np.int32).reshape(draw(st.sampled_from([(), (1,)])))
    ai = net.const("axis", a) if draw(st.integers(0, 3)) else net.input("axis", a)
    y = net.tensor("y", shape, dtype)
    net.op(opcode, [xi, ai], [y], exclusive=draw(st.booleans()), reverse=draw(st.booleans()))
    return net.case([y], f"{opcode} {dtype}")


@register("ONE_HOT", dtypes=("int8", "uint8", "float32", "int32", "int64", "bool"))
def _b_one_hot(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    shape = draw_shape(draw, cfg, 0, max(cfg.max_rank - 1, 0))
    depth = draw(st.integers(0, 5))
    idt = draw(st.sampled_from(["int32", "int64"]))
    net = Net()
    xi = net.input("indices", draw_ints(draw, idt, shape, -1, depth))
    axis = draw(st.integers(-1, len(shape)))
    di = net.const("depth", np.array(depth, np.int32))
    on, off = draw_values(draw, dtype, (2,))
    oi = (
        net.const("on_value", np.array(on, dtype))
        if draw(st.booleans())
        else net.input("on_value", np.array(on, dtype))
    )
    fi = net.const("off_value", np.array(off, dtype))
    pos = len(shape) if axis == -1 else axis
    y = net.tensor("y", shape[:pos] + (depth,) + shape[pos:], dtype)
    net.op(opcode, [xi, di, oi, fi], [y], axis=axis, options_type="OneHotOptions")
    return net.case([y], f"{opcode} {dtype}")
