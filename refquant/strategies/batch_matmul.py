"""The BATCH_MATMUL builder of :func:`~refquant.strategies.op_models`."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from ..testing.harness import Case
from .base import draw_floats, draw_values, f32, ratio, scales
from .builder import Net, OpConfig, Quant, activation_quant, draw_zero_point
from .registry import register


@register("BATCH_MATMUL", dtypes=("int8", "int16", "float32", "int32"), min_rank=2)
def _b_bmm(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    rank_l = draw(st.integers(2, max(2, min(cfg.max_rank, 5))))
    rank_r = draw(st.integers(2, max(2, min(cfg.max_rank, 5))))
    rank = max(rank_l, rank_r)
    batch = [draw(st.integers(1, min(3, cfg.max_side))) for _ in range(rank - 2)]
    lb, rb = [], []
    for d in batch:
        mode = draw(st.sampled_from(["same", "lhs1", "rhs1"]))
        lb.append(1 if mode == "lhs1" else d)
        rb.append(1 if mode == "rhs1" else d)
    lb, rb = lb[rank - rank_l :], rb[rank - rank_r :]
    m, k, n = (
        draw(st.integers(1, cfg.max_side)),
        draw(st.integers(1, 4 * cfg.max_side)),
        draw(st.integers(1, cfg.max_side)),
    )
    adj_x, adj_y = draw(st.booleans()), draw(st.booleans())
    l_shape = (*lb, *((k, m) if adj_x else (m, k)))
    r_shape = (*rb, *((n, k) if adj_y else (k, n)))
    out_shape = (*np.broadcast_shapes(tuple(lb), tuple(rb)), m, n)
    net = Net()
    if dtype == "float32":
        l_dt = r_dt = out_dt = "float32"
        q_l = q_r = q_o = None
    elif dtype == "int32":
        l_dt, r_dt, out_dt = "int8", "int8", "int32"
        q_l, q_r, q_o = activation_quant(draw, "int8"), activation_quant(draw, "int8", 1e-3, 0.1), None
    else:
        l_dt = dtype
        r_dt = "int8" if dtype == "int16" and draw(st.booleans()) else dtype
        out_dt = dtype
        q_l = activation_quant(draw, l_dt)
        assert q_l is not None
        s_r = draw(scales(1e-3, 0.1))
        q_r = Quant(s_r, 0 if dtype == "int16" else draw_zero_point(draw, r_dt))
        f = draw(ratio(0.5, 64.0 * k))
        q_o = Quant(f32(f32(q_l.s * s_r) * f), draw_zero_point(draw, out_dt))
    lhs = draw_values(draw, l_dt, l_shape) if l_dt != "float32" else draw_floats(draw, l_shape, -4.0, 4.0)
    rhs = draw_values(draw, r_dt, r_shape) if r_dt != "float32" else draw_floats(draw, r_shape, -2.0, 2.0)
    li = net.input("lhs", lhs, q_l)
    ri = net.const("rhs", rhs, r_dt, q_r) if draw(st.booleans()) else net.input("rhs", rhs, q_r)
    y = net.tensor("y", out_shape, out_dt, q_o)
    net.op(opcode, [li, ri], [y], adj_x=adj_x, adj_y=adj_y)
    title = f"{opcode} {l_dt} x {r_dt} -> {out_dt}"
    return net.case([y], title)
