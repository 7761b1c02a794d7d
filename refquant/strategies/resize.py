"""RESIZE_BILINEAR and RESIZE_NEAREST_NEIGHBOR: the builder of :func:`~refquant.strategies.op_models`."""

from __future__ import annotations

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from ..testing.harness import Case
from .builder import Net, OpConfig, draw_any_values, raw_quant
from .registry import register


@register("RESIZE_BILINEAR", dtypes=("int8", "uint8", "int16", "float32"), min_rank=4)
@register("RESIZE_NEAREST_NEIGHBOR", dtypes=("int8", "uint8", "int16", "float32", "int32"), min_rank=4)
def _b_resize(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    b = draw(st.integers(1, cfg.max_batch))
    h, w, c = draw(st.integers(1, cfg.max_side)), draw(st.integers(1, cfg.max_side)), draw(st.integers(1, 3))
    oh, ow = draw(st.integers(1, 2 * cfg.max_side)), draw(st.integers(1, 2 * cfg.max_side))
    flag = draw(st.sampled_from(["none", "half_pixel_centers", "align_corners"]))
    opts = {"align_corners": flag == "align_corners", "half_pixel_centers": flag == "half_pixel_centers"}
    q = raw_quant(draw, dtype)
    net = Net()
    xi = net.input("x", draw_any_values(draw, dtype, (b, h, w, c)), q)
    si = net.const("size", np.array([oh, ow], np.int32))
    y = net.tensor("y", (b, oh, ow, c), dtype, q)
    net.op(opcode, [xi, si], [y], **opts)
    case = net.case([y], f"{opcode} {dtype}")
    if opcode == "RESIZE_BILINEAR":
        assume(_refquant_prepares(case))  # a few upsamplings read past the input in LiteRT: refquant refuses them
    return case


def _refquant_prepares(case: Case) -> bool:
    from ..errors import UnsupportedOpError
    from ..interpreter import Interpreter

    try:
        Interpreter(model_content=case.model).allocate_tensors()
    except UnsupportedOpError:
        return False
    return True
