"""STRIDED_SLICE, SLICE, GATHER, GATHER_ND and REVERSE_V2: the builders of
:func:`~refquant.strategies.op_models`. Quantization passes through unchanged."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from ..testing.harness import Case
from .base import draw_ints
from .builder import ALL_DTYPES, Net, OpConfig, draw_any_values, draw_shape, raw_quant
from .registry import register


@register("STRIDED_SLICE", dtypes=ALL_DTYPES, min_rank=1)
def _b_strided_slice(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    shape = draw_shape(draw, cfg, 1)
    begin, end, strides = [], [], []
    begin_mask = end_mask = shrink = 0
    out_shape = []
    for k, d in enumerate(shape):
        if draw(st.integers(0, 4)) == 4:  # shrink this axis to one index (in range, stride 1)
            i = draw(st.integers(-d, d - 1))
            begin.append(i)
            end.append(i + 1 if i != -1 else 0)
            strides.append(1)
            shrink |= 1 << k
            if i == -1:
                end_mask |= 1 << k
            continue
        s = draw(st.sampled_from([1, 2, -1, 3, -2]))
        b = draw(st.integers(-d, d - 1))
        e = draw(st.integers(-d - 1, d))
        bm, em = draw(st.booleans()), draw(st.booleans())
        begin.append(b)
        end.append(e)
        strides.append(s)
        begin_mask |= (1 << k) if bm else 0
        end_mask |= (1 << k) if em else 0
        out_shape.append(len(range(d)[slice(None if bm else b, None if em else e, s)]))
    q = raw_quant(draw, dtype)
    net = Net()
    xi = net.input("x", draw_any_values(draw, dtype, shape), q)
    bi = net.const("begin", np.array(begin, np.int32))
    ei = net.const("end", np.array(end, np.int32))
    si = net.const("strides", np.array(strides, np.int32))
    y = net.tensor("y", out_shape, dtype, q)
    net.op(opcode, [xi, bi, ei, si], [y], begin_mask=begin_mask, end_mask=end_mask, shrink_axis_mask=shrink)
    return net.case([y], f"{opcode} {dtype}")


@register("SLICE", dtypes=ALL_DTYPES, min_rank=1)
def _b_slice(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    shape = draw_shape(draw, cfg, 1)
    begin, size, out_shape = [], [], []
    for d in shape:
        b = draw(st.integers(0, d - 1))
        n = draw(st.integers(1, d - b))
        if draw(st.integers(0, 3)) == 3:
            n = -1
        begin.append(b)
        size.append(n)
        out_shape.append(d - b if n == -1 else n)
    idx_dt = draw(st.sampled_from(["int32", "int64"]))
    q = raw_quant(draw, dtype)
    net = Net()
    xi = net.input("x", draw_any_values(draw, dtype, shape), q)
    bi = net.const("begin", np.array(begin, idx_dt))
    zi = net.const("size", np.array(size, idx_dt))
    y = net.tensor("y", out_shape, dtype, q)
    net.op(opcode, [xi, bi, zi], [y])
    return net.case([y], f"{opcode} {dtype}")


@register("GATHER", dtypes=ALL_DTYPES, min_rank=1)
def _b_gather(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    shape = draw_shape(draw, cfg, 1)
    rank = len(shape)
    axis = draw(st.integers(0, rank - 1))
    bd = draw(st.integers(0, axis)) if draw(st.integers(0, 3)) == 3 else 0
    idx_shape = (*shape[:bd], *draw_shape(draw, cfg, 0, 2))
    idx = draw_ints(draw, "int32", idx_shape, 0, shape[axis] - 1)
    idx_dt = draw(st.sampled_from(["int32", "int64", "int16"]))
    q = raw_quant(draw, dtype)
    net = Net()
    xi = net.input("x", draw_any_values(draw, dtype, shape), q)
    ii = net.const("indices", idx, idx_dt) if draw(st.booleans()) else net.input("indices", idx.astype(idx_dt))
    out_shape = (*shape[:axis], *idx_shape[bd:], *shape[axis + 1 :])
    opt_axis = axis - rank if draw(st.integers(0, 3)) == 3 else axis
    y = net.tensor("y", out_shape, dtype, q)
    net.op(opcode, [xi, ii], [y], axis=opt_axis, batch_dims=bd)
    return net.case([y], f"{opcode} {dtype}")


@register("GATHER_ND", dtypes=ALL_DTYPES, min_rank=1)
def _b_gather_nd(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    shape = draw_shape(draw, cfg, 1)
    nd = draw(st.integers(1, len(shape)))
    lead = tuple(draw(st.integers(1, max(1, cfg.max_side))) for _ in range(draw(st.integers(0, 2))))
    n = int(np.prod(lead, dtype=np.int64)) if lead else 1
    coords = np.array(
        [[draw(st.integers(0, shape[j] - 1)) for j in range(nd)] for _ in range(n)], dtype=np.int64
    ).reshape(lead + (nd,))
    idx_dt = draw(st.sampled_from(["int32", "int64", "int16"]))
    q = raw_quant(draw, dtype)
    net = Net()
    pi = net.input("params", draw_any_values(draw, dtype, shape), q)
    ii = net.const("indices", coords, idx_dt) if draw(st.booleans()) else net.input("indices", coords.astype(idx_dt))
    y = net.tensor("y", lead + shape[nd:], dtype, q)
    net.op(opcode, [pi, ii], [y])
    return net.case([y], f"{opcode} {dtype}")


@register("REVERSE_V2", dtypes=ALL_DTYPES, min_rank=1)
def _b_reverse(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    shape = draw_shape(draw, cfg, 1)
    rank = len(shape)
    first = draw(st.integers(0, rank - 1))
    last = draw(st.integers(first, rank - 1))
    axes = [a - rank if draw(st.booleans()) else a for a in draw(st.permutations(range(first, last + 1)))]
    q = raw_quant(draw, dtype)
    net = Net()
    xi = net.input("x", draw_any_values(draw, dtype, shape), q)
    ai = net.const("axis", np.array(axes, np.int32))
    y = net.tensor("y", shape, dtype, q)
    net.op(opcode, [xi, ai], [y])
    return net.case([y], f"{opcode} {dtype}")
