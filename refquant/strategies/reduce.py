"""Reductions (MEAN, SUM, REDUCE_MAX, REDUCE_MIN, REDUCE_PROD, REDUCE_ANY, REDUCE_ALL) and ARG_MAX /
ARG_MIN: the builders of :func:`~refquant.strategies.op_models`."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from ..testing.harness import Case
from .base import QUANTIZED_DTYPES, draw_floats, draw_values, f32, ratio
from .builder import Net, OpConfig, Quant, activation_quant, draw_shape, draw_zero_point
from .registry import register


def _axes(draw: st.DrawFn, rank: int, allow_empty: bool = True) -> list[int]:
    if rank == 0:
        return [0] if not allow_empty or draw(st.booleans()) else []
    n = draw(st.integers(0 if allow_empty else 1, rank))
    return [a - rank if draw(st.integers(0, 3)) == 3 else a for a in draw(st.permutations(range(rank)))[:n]]


@register("MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", dtypes=("int8", "uint8", "int16", "float32", "int32", "int64"))
@register("REDUCE_PROD", dtypes=("int8", "int16", "float32", "int32", "int64"))
def _b_reduce(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    prod_q = opcode == "REDUCE_PROD" and dtype in QUANTIZED_DTYPES
    shape = draw_shape(draw, cfg, 1 if prod_q else 0, 3 if prod_q else None, 1)
    axes = _axes(draw, len(shape), allow_empty=not prod_q)
    if prod_q:
        # Keep the product chain short: at most 4 reduced values.
        shape = tuple(min(d, 2) if (k in axes or k - len(shape) in axes) else d for k, d in enumerate(shape))
    keep = draw(st.booleans())
    ra = sorted({a % len(shape) for a in axes}) if shape else []
    n = int(np.prod([shape[a] for a in ra], dtype=np.int64)) if ra else 1
    q_in = q_out = None
    if dtype in QUANTIZED_DTYPES:
        q_in = activation_quant(draw, dtype, 1e-3, 1.0)
        assert q_in is not None
        if opcode in ("REDUCE_MAX", "REDUCE_MIN"):
            q_out = q_in
        elif opcode == "MEAN":
            q_out = Quant(f32(q_in.s * draw(ratio(1 / 8, 8.0))), draw_zero_point(draw, dtype))
        elif opcode == "SUM":
            q_out = Quant(f32(q_in.s * draw(ratio(1 / 4, 4.0 * n))), draw_zero_point(draw, dtype))
        else:  # REDUCE_PROD: scaling s_in / s_out^(1/n) within LiteRT's int64 multiplier range
            typical = 64.0 if dtype == "int8" else 4096.0
            f = draw(ratio(1.0, typical))
            q_out = Quant(f32((q_in.s * f) ** n), draw_zero_point(draw, dtype))
    x = draw_floats(draw, shape) if dtype == "float32" else draw_values(draw, dtype, shape)
    out_shape = (
        tuple(1 if k in ra else d for k, d in enumerate(shape))
        if keep
        else tuple(d for k, d in enumerate(shape) if k not in ra)
    )
    net = Net()
    xi = net.input("x", x, q_in)
    ai = net.const("axis", np.array(axes, np.int32).reshape(-1))
    y = net.tensor("y", out_shape, dtype, q_out)
    net.op(opcode, [xi, ai], [y], keep_dims=keep)
    return net.case([y], f"{opcode} {dtype}")


@register(
    "ARG_MAX",
    "ARG_MIN",
    dtypes=("int8", "uint8", "float32", "int32", "bool"),
    constraints=("output_dtype",),
    min_rank=1,
    output_dtypes={d: ("int32", "int64") for d in ("int8", "uint8", "float32", "int32", "bool")},
)
def _b_arg(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    shape = draw_shape(draw, cfg, 1, None)
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    out_dt = cfg.output_dtype or draw(st.sampled_from(["int32", "int64"]))
    q = activation_quant(draw, dtype)
    x = draw_floats(draw, shape) if dtype == "float32" else draw_values(draw, dtype, shape)
    net = Net()
    xi = net.input("x", x, q)
    ai = net.const("axis", np.array([axis], draw(st.sampled_from(["int32", "int64"]))))
    out_shape = tuple(d for k, d in enumerate(shape) if k != axis % len(shape))
    y = net.tensor("y", out_shape, out_dt)
    net.op(opcode, [xi, ai], [y], output_type=out_dt.upper())
    return net.case([y], f"{opcode} {dtype} -> {out_dt}")


@register("REDUCE_ANY", "REDUCE_ALL", dtypes=("bool",))
def _b_reduce_bool(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    shape = draw_shape(draw, cfg)
    axes = _axes(draw, len(shape))
    keep = draw(st.booleans())
    ra = sorted({a % len(shape) for a in axes}) if shape else []
    out_shape = (
        tuple(1 if k in ra else d for k, d in enumerate(shape))
        if keep
        else tuple(d for k, d in enumerate(shape) if k not in ra)
    )
    x = draw_values(draw, "bool", shape)
    if x.size and draw(st.integers(0, 2)) == 0:
        x = np.full(shape, opcode == "REDUCE_ALL")  # uniform inputs: the other answer
    net = Net()
    xi = net.input("x", x)
    ai = net.const("axis", np.array(axes, np.int32).reshape(-1))
    y = net.tensor("y", out_shape, "bool")
    net.op(opcode, [xi, ai], [y], keep_dims=keep)
    return net.case([y], f"{opcode} bool")
