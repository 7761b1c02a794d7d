"""Pools: :class:`PoolGeometry`, :func:`pool_geometries`, and the AVERAGE_POOL_2D, MAX_POOL_2D and
L2_POOL_2D builders of :func:`~refquant.strategies.op_models`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from ..testing.harness import Case
from .base import check_choice, check_int, draw_values, same_or_valid
from .builder import Net, OpConfig, activation_quant, draw_activation
from .registry import register


@dataclass(frozen=True)
class PoolGeometry:
    """An AVERAGE_POOL_2D / MAX_POOL_2D / L2_POOL_2D geometry that LiteRT accepts (NHWC)."""

    batch: int
    in_h: int
    in_w: int
    channels: int
    filter_h: int
    filter_w: int
    stride_h: int
    stride_w: int
    padding: str

    @property
    def out_h(self) -> int:
        """Output height."""
        return same_or_valid(self.padding, self.in_h, self.filter_h, self.stride_h)[0]

    @property
    def out_w(self) -> int:
        """Output width."""
        return same_or_valid(self.padding, self.in_w, self.filter_w, self.stride_w)[0]

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """``(batch, in_h, in_w, channels)``."""
        return (self.batch, self.in_h, self.in_w, self.channels)

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        """``(batch, out_h, out_w, channels)``."""
        return (self.batch, self.out_h, self.out_w, self.channels)

    @property
    def options(self) -> dict[str, Any]:
        """The Pool2DOptions fields (without the fused activation)."""
        return dict(
            padding=self.padding,
            stride_h=self.stride_h,
            stride_w=self.stride_w,
            filter_height=self.filter_h,
            filter_width=self.filter_w,
        )


@st.composite
def _pool_geometry(
    draw: st.DrawFn,
    max_side: int,
    max_filter: int,
    max_stride: int,
    max_channels: int,
    max_batch: int,
    padding: str | None,
) -> PoolGeometry:
    batch = draw(st.integers(1, max_batch))
    pad = padding or draw(st.sampled_from(["SAME", "VALID"]))
    fh = draw(st.integers(1, min(max_filter, max_side) if pad == "VALID" else max_filter))
    fw = draw(st.integers(1, min(max_filter, max_side) if pad == "VALID" else max_filter))
    in_h = draw(st.integers(fh if pad == "VALID" else 1, max(max_side, fh)))
    in_w = draw(st.integers(fw if pad == "VALID" else 1, max(max_side, fw)))
    c = draw(st.integers(1, max_channels))
    sh, sw = draw(st.integers(1, max_stride)), draw(st.integers(1, max_stride))
    return PoolGeometry(batch, in_h, in_w, c, fh, fw, sh, sw, pad)


def pool_geometries(
    *,
    max_side: int = 8,
    max_filter: int = 4,
    max_stride: int = 3,
    max_channels: int = 4,
    max_batch: int = 2,
    padding: str | None = None,
) -> st.SearchStrategy[PoolGeometry]:
    """:class:`PoolGeometry` values valid by construction (VALID windows fit; every window has an
    in-image tap). Shrinks towards one pixel, a 1x1 window, stride 1, SAME padding."""
    ms = check_int("max_side", max_side, 1, 1024)
    mf = check_int("max_filter", max_filter, 1, 64)
    mst = check_int("max_stride", max_stride, 1, 64)
    mc = check_int("max_channels", max_channels, 1, 1024)
    mb = check_int("max_batch", max_batch, 1, 64)
    if padding is not None:
        check_choice("padding", padding, ("SAME", "VALID"))
    return _pool_geometry(ms, mf, mst, mc, mb, padding)


@register(
    "AVERAGE_POOL_2D",
    "MAX_POOL_2D",
    dtypes=("int8", "uint8", "int16", "float32"),
    constraints=("activation",),
    min_rank=4,
)
@register("L2_POOL_2D", dtypes=("float32",), constraints=("activation",), min_rank=4)
def _b_pool(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    g = draw(_pool_geometry(cfg.max_side, 4, 3, 4, cfg.max_batch, None))
    act = draw_activation(draw, cfg)
    net = Net()
    q_in = activation_quant(draw, dtype, 1e-4, 1.0)
    q_out = q_in
    if q_in is not None and draw(st.integers(0, 3)) == 3:
        q_out = activation_quant(
            draw, dtype, 1e-4, 1.0
        )  # pools ignore the output params except for the activation clamp
    x = draw_values(draw, dtype, g.input_shape)
    xi = net.input("x", x, q_in)
    y = net.tensor("y", g.output_shape, dtype, q_out)
    net.op(opcode, [xi], [y], **g.options, fused_activation_function=act)
    return net.case([y], f"{opcode} {dtype}")
