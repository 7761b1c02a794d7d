"""SPACE_TO_BATCH_ND and BATCH_TO_SPACE_ND: the builder of :func:`~refquant.strategies.op_models`."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from ..testing.harness import Case
from .builder import ALL_DTYPES, Net, OpConfig, draw_any_values, raw_quant
from .registry import register


@register("SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND", dtypes=ALL_DTYPES, min_rank=3)
def _b_space_batch(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    rank = draw(st.sampled_from([4, 3])) if cfg.max_rank >= 4 else 3
    spatial = rank - 2
    block = [draw(st.integers(1, 3)) for _ in range(spatial)]
    pairs, dims = [], []
    for b in block:
        if opcode == "SPACE_TO_BATCH_ND":
            total = b * draw(st.integers(1, max(1, cfg.max_side // b)))  # the padded size: a multiple of the block
            d = draw(st.integers(1, total))
            lo = draw(st.integers(0, total - d))
            dims.append(d)
            pairs.append([lo, total - d - lo])
        else:
            d = draw(st.integers(1, min(3, cfg.max_side)))
            lo = draw(st.integers(0, b * d - 1))
            dims.append(d)
            pairs.append([lo, draw(st.integers(0, b * d - 1 - lo))])  # at least one row and column remain
    batch = draw(st.integers(1, min(3, cfg.max_batch + 1)))
    channels = draw(st.integers(1, 3))
    vol = int(np.prod(block))
    if opcode == "SPACE_TO_BATCH_ND":
        in_shape = (batch, *dims, channels)
        out_shape = (batch * vol, *[(d + lo + hi) // b for d, (lo, hi), b in zip(dims, pairs, block)], channels)
    else:
        in_shape = (batch * vol, *dims, channels)
        out_shape = (batch, *[d * b - lo - hi for d, (lo, hi), b in zip(dims, pairs, block)], channels)
    q = raw_quant(draw, dtype)
    net = Net()
    xi = net.input("x", draw_any_values(draw, dtype, in_shape), q)
    bi = net.const("block_shape", np.array(block, np.int32))
    pi = net.const("crops" if opcode == "BATCH_TO_SPACE_ND" else "paddings", np.array(pairs, np.int32).reshape(-1, 2))
    y = net.tensor("y", out_shape, dtype, q)
    net.op(opcode, [xi, bi, pi], [y])
    return net.case([y], f"{opcode} {dtype}")
