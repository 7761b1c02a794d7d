"""Convolutions: :class:`ConvGeometry`, :func:`conv_geometries`, and the CONV_2D, DEPTHWISE_CONV_2D and
TRANSPOSE_CONV builders of :func:`~refquant.strategies.op_models`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

from ..testing.harness import Case
from .base import check_choice, check_int, draw_floats, draw_values, invalid, same_or_valid
from .builder import (
    WEIGHT_DTYPES,
    Net,
    OpConfig,
    Quant,
    activation_quant,
    draw_activation,
    draw_bias,
    draw_weights,
    draw_zero_point,
    geomean,
    output_scale,
    weight_quant,
)
from .registry import register


@dataclass(frozen=True)
class ConvGeometry:
    """A CONV_2D / DEPTHWISE_CONV_2D geometry that LiteRT accepts (NHWC activations).

    ``groups`` > 1 is a grouped CONV_2D (filter depth ``in_channels // groups``); for a depthwise
    geometry ``depth_multiplier`` = ``out_channels // in_channels`` and ``groups`` is 1.
    """

    batch: int
    in_h: int
    in_w: int
    in_channels: int
    out_channels: int
    kernel_h: int
    kernel_w: int
    stride_h: int
    stride_w: int
    dilation_h: int
    dilation_w: int
    padding: str
    groups: int = 1
    depthwise: bool = False

    @property
    def depth_multiplier(self) -> int:
        """Output channels per input channel (depthwise geometries)."""
        return self.out_channels // self.in_channels

    @property
    def out_h(self) -> int:
        """Output height (``padding.h``)."""
        return same_or_valid(self.padding, self.in_h, (self.kernel_h - 1) * self.dilation_h + 1, self.stride_h)[0]

    @property
    def out_w(self) -> int:
        """Output width (``padding.h``)."""
        return same_or_valid(self.padding, self.in_w, (self.kernel_w - 1) * self.dilation_w + 1, self.stride_w)[0]

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """``(batch, in_h, in_w, in_channels)``."""
        return (self.batch, self.in_h, self.in_w, self.in_channels)

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        """``(batch, out_h, out_w, out_channels)``."""
        return (self.batch, self.out_h, self.out_w, self.out_channels)

    @property
    def filter_shape(self) -> tuple[int, int, int, int]:
        """CONV_2D ``[O, KH, KW, I / groups]``; DEPTHWISE_CONV_2D ``[1, KH, KW, O]``."""
        if self.depthwise:
            return (1, self.kernel_h, self.kernel_w, self.out_channels)
        return (self.out_channels, self.kernel_h, self.kernel_w, self.in_channels // self.groups)

    @property
    def options(self) -> dict[str, Any]:
        """The builtin options of the operator (padding, strides, dilations; depth multiplier)."""
        o: dict[str, Any] = dict(
            padding=self.padding,
            stride_h=self.stride_h,
            stride_w=self.stride_w,
            dilation_h_factor=self.dilation_h,
            dilation_w_factor=self.dilation_w,
        )
        if self.depthwise:
            o["depth_multiplier"] = self.depth_multiplier
        return o


@st.composite
def _kernel_dim(
    draw: st.DrawFn, padding: str, max_side: int, max_kernel: int, max_dilation: int
) -> tuple[int, int, int]:
    """(input size, kernel size, dilation) along one axis; VALID inputs cover the dilated kernel."""
    k = draw(st.integers(1, min(max_kernel, max_side)))
    d_hi = 1 if k == 1 else max(1, min(max_dilation, (max_side - 1) // (k - 1)))
    d = draw(st.integers(1, d_hi))
    eff = (k - 1) * d + 1
    size = draw(st.integers(eff if padding == "VALID" else 1, max(max_side, eff)))
    return size, k, d


@st.composite
def _conv_geometry(
    draw: st.DrawFn,
    max_side: int,
    max_kernel: int,
    max_stride: int,
    max_dilation: int,
    max_channels: int,
    max_batch: int,
    max_groups: int,
    depthwise: bool,
    padding: str | None,
) -> ConvGeometry:
    batch = draw(st.integers(1, max_batch))
    pad = padding or draw(st.sampled_from(["SAME", "VALID"]))
    in_h, kh, dh = draw(_kernel_dim(pad, max_side, max_kernel, max_dilation))
    in_w, kw, dw = draw(_kernel_dim(pad, max_side, max_kernel, max_dilation))
    sh, sw = draw(st.integers(1, max_stride)), draw(st.integers(1, max_stride))
    if depthwise:
        c = draw(st.integers(1, max_channels))
        o = c * draw(st.integers(1, 3))
        groups = 1
    else:
        groups = draw(st.integers(1, max_groups))
        c = groups * draw(st.integers(1, max(1, max_channels // groups)))
        o = groups * draw(st.integers(1, max(1, max_channels // groups)))
    return ConvGeometry(batch, in_h, in_w, c, o, kh, kw, sh, sw, dh, dw, pad, groups, depthwise)


def conv_geometries(
    *,
    max_side: int = 8,
    max_kernel: int = 4,
    max_stride: int = 3,
    max_dilation: int = 3,
    max_channels: int = 4,
    max_batch: int = 2,
    max_groups: int = 1,
    depthwise: bool = False,
    padding: str | None = None,
) -> st.SearchStrategy[ConvGeometry]:
    """:class:`ConvGeometry` values valid by construction: with VALID padding the input covers the dilated
    kernel, every output has at least one pixel, grouped convolutions divide their channels.

    ``padding``: ``"SAME"``, ``"VALID"`` or ``None`` (either). ``depthwise``: filter ``[1, KH, KW, C*dm]``
    with a depth multiplier of 1 to 3. ``max_groups`` > 1 allows grouped CONV_2D. Shrinks towards a
    single pixel, one channel, a 1x1 kernel, stride and dilation 1, SAME padding.
    """
    ms = check_int("max_side", max_side, 1, 1024)
    mk = check_int("max_kernel", max_kernel, 1, 64)
    mst = check_int("max_stride", max_stride, 1, 64)
    md = check_int("max_dilation", max_dilation, 1, 64)
    mc = check_int("max_channels", max_channels, 1, 1024)
    mb = check_int("max_batch", max_batch, 1, 64)
    mg = check_int("max_groups", max_groups, 1, 64)
    if not isinstance(depthwise, bool):
        raise invalid(f"depthwise must be True or False, got {depthwise!r}")
    if depthwise and mg != 1:
        raise invalid("max_groups applies to CONV_2D geometries; depthwise geometries have no groups")
    if mg > mc:
        raise invalid(f"max_groups {mg} exceeds max_channels {mc}: every group needs a channel")
    if padding is not None:
        check_choice("padding", padding, ("SAME", "VALID"))
    return _conv_geometry(ms, mk, mst, md, mc, mb, mg, depthwise, padding)


@register(
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    dtypes=("int8", "uint8", "int16", "float32"),
    constraints=("per_channel", "activation"),
    min_rank=4,
)
def _b_conv(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    dw = opcode == "DEPTHWISE_CONV_2D"
    g = draw(_conv_geometry(cfg.max_side, 3, 3, 2, 4, cfg.max_batch, 1 if dw or dtype == "uint8" else 2, dw, None))
    act = draw_activation(draw, cfg)
    net = Net()
    q_in = activation_quant(draw, dtype, 1e-3, 1.0)
    axis = 3 if dw else 0
    q_w = weight_quant(draw, dtype, cfg, g.out_channels, axis)
    taps = g.kernel_h * g.kernel_w * (1 if dw else g.in_channels // g.groups)
    q_out = None
    if q_in is not None and q_w is not None:
        s_out = output_scale(draw, q_in.s, geomean(q_w.scale), taps)
        q_out = Quant(s_out, draw_zero_point(draw, dtype))
    int32_bias = dtype == "int16" and not dw and draw(st.integers(0, 3)) == 3
    with_bias = not dw or dtype == "int16" or draw(st.integers(0, 3)) > 0  # DEPTHWISE may omit its bias
    opts: dict[str, Any] = dict(g.options, fused_activation_function=act)
    if int32_bias:
        opts["quantized_bias_type"] = "INT32"
    # Arrays last, the input last of all: shrinking the input's shape then leaves the other draws in place.
    w = draw_weights(draw, dtype, g.filter_shape)
    bias = draw_bias(draw, dtype, g.out_channels, taps, q_in, q_w, int32_bias) if with_bias else None
    x = draw_values(draw, dtype, g.input_shape) if dtype != "float32" else draw_floats(draw, g.input_shape, -4.0, 4.0)
    xi = net.input("x", x, q_in)
    wi = net.const("w", w, WEIGHT_DTYPES[dtype], q_w)
    ins = [xi, wi] + ([net.const("bias", *bias)] if bias is not None else [])
    y = net.tensor("y", g.output_shape, dtype, q_out)
    net.op(opcode, ins, [y], **opts)
    return net.case([y], f"{opcode} {dtype}")


@st.composite
def _tconv_geometry(
    draw: st.DrawFn, cfg: OpConfig
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], dict[str, Any]]:
    bsz = draw(st.integers(1, cfg.max_batch))
    pad = draw(st.sampled_from(["SAME", "VALID"]))
    h, w = draw(st.integers(1, cfg.max_side)), draw(st.integers(1, cfg.max_side))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    c, o = draw(st.integers(1, 3)), draw(st.integers(1, 3))

    def out_size(i: int, k: int, s: int) -> int:
        lo, hi = ((i - 1) * s + 1, i * s) if pad == "SAME" else ((i - 1) * s + k, (i - 1) * s + k + s - 1)
        return draw(st.integers(lo, hi))

    oh, ow = out_size(h, kh, sh), out_size(w, kw, sw)
    return (bsz, h, w, c), (o, kh, kw, c), (bsz, oh, ow, o), dict(padding=pad, stride_h=sh, stride_w=sw)


@register(
    "TRANSPOSE_CONV",
    dtypes=("int8", "uint8", "int16", "float32"),
    constraints=("per_channel", "activation"),
    min_rank=4,
)
def _b_tconv(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    x_shape, w_shape, out_shape, opts = draw(_tconv_geometry(cfg))
    act = draw_activation(draw, cfg)
    net = Net()
    q_in = activation_quant(draw, dtype)
    q_w = weight_quant(draw, dtype, cfg, w_shape[0], 0)
    taps = w_shape[1] * w_shape[2] * w_shape[3]
    q_out = None
    if q_in is not None and q_w is not None:
        q_out = Quant(output_scale(draw, q_in.s, geomean(q_w.scale), taps), draw_zero_point(draw, dtype))
    int32_bias = dtype == "int16" and draw(st.integers(0, 3)) == 3
    with_bias = draw(st.integers(0, 3)) > 0
    opts = dict(opts, fused_activation_function=act)
    if int32_bias:
        opts["quantized_bias_type"] = "INT32"
    shp = net.const("output_shape", np.array(out_shape, np.int32))
    wi = net.const("w", draw_weights(draw, dtype, w_shape), WEIGHT_DTYPES[dtype], q_w)
    bias = draw_bias(draw, dtype, w_shape[0], taps, q_in, q_w, int32_bias) if with_bias else None
    x = draw_values(draw, dtype, x_shape) if dtype != "float32" else draw_floats(draw, x_shape, -4.0, 4.0)
    xi = net.input("x", x, q_in)
    ins = [shp, wi, xi] + ([net.const("bias", *bias)] if bias is not None else [])
    y = net.tensor("y", out_shape, dtype, q_out)
    net.op(opcode, ins, [y], **opts)
    return net.case([y], f"{opcode} {dtype}")
