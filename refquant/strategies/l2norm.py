"""L2_NORMALIZATION: the builder of :func:`~refquant.strategies.op_models`."""

from __future__ import annotations

from hypothesis import strategies as st

from ..testing.harness import Case
from .base import draw_floats, draw_values
from .builder import OpConfig, Quant, activation_quant, draw_shape, unary_model
from .registry import register


@register("L2_NORMALIZATION", dtypes=("int8", "uint8", "float32"), min_rank=1)
def _b_l2norm(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    shape = draw_shape(draw, cfg, 1)
    q_in = activation_quant(draw, dtype, 1e-3, 1.0)
    q_out = None if dtype == "float32" else Quant(1 / 128, 128 if dtype == "uint8" else 0)  # LiteRT's fixed output
    x = draw_floats(draw, shape) if dtype == "float32" else draw_values(draw, dtype, shape)
    return unary_model(draw, opcode, dtype, x, q_in, q_out)
