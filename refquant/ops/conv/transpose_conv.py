"""TRANSPOSE_CONV: the quantized (int8, int16x8, uint8) and float32 kernels, and the op's prepare.

LiteRT 2.3.0 ``transpose_conv.cc`` with ``reference_integer_ops::TransposeConv`` (int8, int16x8) and
``reference_ops::TransposeConv`` (uint8 legacy and float32), bit for bit. A float32 input with int8 weights
is the hybrid kernel (:class:`~refquant.ops.conv.hybrid.TransposeConvHybridData`).

The kernels: one float64 BLAS product of the input with every tap, then a col2im scatter-add over the
KH*KW taps (exact integer sums for the quantized kernels, then the literal requantization of
:class:`~refquant.ops.conv.common.QuantConvBase`). Float32 with ``float_accumulation="sequential"`` adds
each output's float32 products in the C loop order instead.

The ``output_shape`` input decides the output shape. When its value is known only at run time (a graph
input, or computed from one), prepare raises :class:`~refquant.ops.base.DeferredPrepare` and the graph
prepares the operator just before it runs, from the actual value, as for RESHAPE.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...fixedpoint import INT16_MAX
from ..base import OpContext, OpData, Step
from ..matmul import FLOAT_SUM_STEPS
from .common import (
    QuantConvBase,
    TransposeFloatOutput,
    TransposeGeometry,
    bias_zero_point,
    check_depth,
    check_element,
    check_int16_bias,
    conv_output_size,
    float_range,
    padding_before,
    positive_option,
    profile_requant,
    quant_setup,
    require_positive_dims,
    require_rank,
)
from .hybrid import prepare_transpose_conv_hybrid

__all__ = ["prepare_transpose_conv", "TransposeConvQuantData", "TransposeConvFloatData"]


@dataclass(frozen=True, kw_only=True)
class TransposeConvQuantData(TransposeGeometry, QuantConvBase):
    """Prepared quantized TRANSPOSE_CONV (LiteRT ``reference_integer_ops::TransposeConv`` / uint8
    ``reference_ops::TransposeConv``).

    ``scratch[b, iy*s-p+ky, ix*s-p+kx, oc] += (x[b,iy,ix,ic] + input_offset) * (w[oc,ky,kx,ic] + filter_offset)``,
    computed as one float64 BLAS product (input x all taps, exact) and a col2im scatter over the taps.
    """

    def _bias(self, inputs: list[np.ndarray | None]) -> np.ndarray | None:
        return inputs[3] if len(inputs) > 3 else None

    def _raw_acc(self, inputs: list[np.ndarray | None]) -> np.ndarray:
        w, x = inputs[1], inputs[2]
        assert x is not None and w is not None
        out_shape = self.output_shapes[0]
        bsz, oh, ow, oc = out_shape
        if np.prod(out_shape) == 0:
            return np.zeros(out_shape, np.int64)
        _, h, wd, c = x.shape
        kh, kw = self.kernel_h, self.kernel_w
        xo = x.reshape(-1, c).astype(np.float64)
        if self.input_offset:
            xo += self.input_offset
        wf = w.astype(np.float64)
        if self.filter_offset:
            wf += self.filter_offset
        # Exact: products are integers below 2^23 and each output sums fewer than 2^30 of them.
        cols = (xo @ wf.reshape(oc * kh * kw, c).T).reshape(bsz, h, wd, oc, kh, kw)
        scratch = np.zeros(out_shape, np.float64)
        for ky in range(kh):
            for kx in range(kw):
                sl = self._tap_slices((oh, ow), (h, wd), ky, kx)
                if sl is None:
                    continue
                iy, ix, oy, ox = sl
                scratch[:, oy, ox, :] += cols[:, iy, ix, :, ky, kx]
        return scratch.astype(np.int64)

    def _element_terms(self, inputs: list[np.ndarray | None], element: tuple[int, ...]) -> tuple[list[Step], int]:
        w, x = inputs[1], inputs[2]
        assert x is not None and w is not None
        b, oy, ox, oc = element
        contrib = self._contributions((x.shape[1], x.shape[2]), oy, ox)
        xs = np.array([x[b, iy, ix, :] for iy, ix, _, _ in contrib], np.int64).reshape(len(contrib), x.shape[3])
        ws = np.array([w[oc, ky, kx, :] for _, _, ky, kx in contrib], np.int64).reshape(len(contrib), x.shape[3])
        steps = [
            Step("contributions", contrib, "(iy, ix, ky, kx) with iy*stride - pad + ky == oy (and likewise x)"),
            Step("inputs", xs, f"input[{b}, iy, ix, :] per contribution"),
            Step("taps", ws, f"filter[{oc}, ky, kx, :] per contribution"),
            Step("offsets", (self.input_offset, self.filter_offset), "(input offset = -zp_in, filter offset)"),
        ]
        total = int(((xs + self.input_offset) * (ws + self.filter_offset)).sum()) if len(contrib) else 0
        steps.append(Step("sum", total, "sum of (x + input offset) * (w + filter offset)"))
        return steps, total


@dataclass(frozen=True, kw_only=True)
class TransposeConvFloatData(TransposeGeometry, TransposeFloatOutput):
    """Prepared float32 TRANSPOSE_CONV (LiteRT ``reference_ops::TransposeConv``, float)."""

    #: Fused-activation clamp range (float32).
    act_min: float
    act_max: float
    #: ``"float64"`` (BLAS tap products and col2im in float64, rounded once) or ``"sequential"``.
    accumulation: str = "float64"

    def _total(self, inputs: list[np.ndarray | None]) -> np.ndarray:
        w, x = inputs[1], inputs[2]
        assert x is not None and w is not None
        out_shape = self.output_shapes[0]
        oh, ow = out_shape[1], out_shape[2]
        total = np.zeros(out_shape, np.float32)
        if total.size == 0:
            return total
        x = np.asarray(x, np.float32)
        w = np.asarray(w, np.float32)
        h, wd, c = x.shape[1], x.shape[2], x.shape[3]
        if self.accumulation == "float64":
            # Every (input, tap) product sum over channels in one BLAS product, then the col2im scatter.
            bsz, oc = out_shape[0], out_shape[3]
            kh, kw = self.kernel_h, self.kernel_w
            cols = x.reshape(-1, c).astype(np.float64) @ w.reshape(oc * kh * kw, c).T.astype(np.float64)
            cols = cols.reshape(bsz, h, wd, oc, kh, kw)
            acc = np.zeros(out_shape, np.float64)
            for ky in range(kh):
                for kx in range(kw):
                    sl = self._tap_slices((oh, ow), (h, wd), ky, kx)
                    if sl is not None:
                        iy, ix, oy, ox = sl
                        acc[:, oy, ox, :] += cols[:, iy, ix, :, ky, kx]
            return acc.astype(np.float32)
        # Each output adds its terms in the C loop order (iy, ix, ic ascending); for a fixed output, a
        # larger iy means a smaller ky, so the global order (ky desc, kx desc, ic asc) is the same order.
        for ky in reversed(range(self.kernel_h)):
            for kx in reversed(range(self.kernel_w)):
                sl = self._tap_slices((oh, ow), (h, wd), ky, kx)
                if sl is None:
                    continue
                iy, ix, oy, ox = sl
                xs = x[:, iy, ix, :]
                tv = total[:, oy, ox, :]
                buf = np.empty(tv.shape, np.float32)
                for ic in range(c):
                    np.multiply(xs[..., ic : ic + 1], w[:, ky, kx, ic], out=buf)
                    np.add(tv, buf, out=tv)
        return total

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """Contributions and the float32 running sum of one output element."""
        w, x = inputs[1], inputs[2]
        assert x is not None and w is not None
        b, oy, ox, oc = check_element(self, output, element)
        contrib = self._contributions((x.shape[1], x.shape[2]), oy, ox)
        total = np.float32(0)
        if self.accumulation == "float64":
            xs = np.array([x[b, iy, ix, :] for iy, ix, _, _ in contrib], np.float64).reshape(-1)
            ws = np.array([w[oc, ky, kx, :] for _, _, ky, kx in contrib], np.float64).reshape(-1)
            total = np.float32(np.dot(xs, ws))
        else:
            for iy, ix, ky, kx in contrib:
                for ic in range(x.shape[3]):
                    prod = np.float32(np.float32(x[b, iy, ix, ic]) * np.float32(w[oc, ky, kx, ic]))
                    total = np.float32(total + prod)
        bias = inputs[3] if len(inputs) > 3 else None
        acc = total
        if bias is not None:
            acc = np.float32(total + np.float32(np.asarray(bias, np.float32).reshape(-1)[oc]))
        value = np.float32(min(max(acc, np.float32(self.act_min)), np.float32(self.act_max)))
        return [
            Step("contributions", contrib, "(iy, ix, ky, kx) reaching this output, in kernel order"),
            Step("sum", total, FLOAT_SUM_STEPS[self.accumulation]),
            Step("acc", acc, "sum + bias (float32)" if bias is not None else "no bias tensor"),
            Step("clamp", value, f"clamp to [{self.act_min}, {self.act_max}] -> output value"),
        ]


def prepare_transpose_conv(ctx: OpContext) -> OpData:
    """TRANSPOSE_CONV, matching LiteRT ``transpose_conv.cc`` Prepare/Eval checks + the reference kernels."""
    ctx.check_counts((3, 4), 1)
    shape_t, filt, inp, out = ctx.input(0), ctx.input(1), ctx.input(2), ctx.output(0)
    bias = ctx.inputs[3] if len(ctx.inputs) == 4 else None
    if len(shape_t.shape) != 1:
        raise ctx.error(f"output_shape must be 1-D, got shape {list(shape_t.shape)}", shape_t)
    require_rank(ctx, inp, 4, "input")
    require_rank(ctx, filt, 4, "weights")
    stride_h = positive_option(ctx, "stride_h", INT16_MAX)
    stride_w = positive_option(ctx, "stride_w", INT16_MAX)
    require_positive_dims(ctx, inp, (1, 2, 3), "input")
    require_positive_dims(ctx, filt, (0, 1, 2), "weights")
    ctx.check_dtype(inp, ("float32", "uint8", "int8", "int16"), "input")
    want_w = {"float32": "float32", "uint8": "uint8", "int8": "int8", "int16": "int8"}[inp.dtype]
    if filt.dtype != want_w:
        if not (inp.dtype == "float32" and filt.dtype == "int8"):
            raise ctx.error(f"weights type {filt.dtype}; expected {want_w} for {inp.dtype} input", filt)
    if bias is not None:
        if inp.dtype in ("uint8", "int8"):
            if bias.dtype != "int32":
                raise ctx.error(f"bias type {bias.dtype}; expected int32", bias)
            if inp.dtype == "int8" and bias_zero_point(bias) != 0:
                raise ctx.fail_quant("bias zero point must be 0", bias)
        elif inp.dtype == "int16":
            if bias.dtype not in ("int32", "int64"):
                raise ctx.error(f"bias type {bias.dtype}; expected int32 or int64", bias)
            if bias_zero_point(bias) != 0:
                raise ctx.fail_quant("bias zero point must be 0", bias)
        elif bias.dtype != "float32":
            raise ctx.error(f"bias type {bias.dtype}; expected float32", bias)
        if bias.size != filt.shape[0]:
            raise ctx.error(f"bias has {bias.size} elements; expected {filt.shape[0]}", bias)
    acc_bits = 32
    if inp.dtype == "int16":
        ctx.require_quant(inp)
        ctx.require_quant(out)
        ctx.require_zero_points(inp, out, why="int16 transposed convolution is symmetric")
        acc_bits = check_int16_bias(ctx, bias)
    if out.dtype != inp.dtype:
        raise ctx.error(f"output type {out.dtype} differs from input type {inp.dtype}", out)
    if inp.shape[3] != filt.shape[3]:
        raise ctx.error(f"input channels {inp.shape[3]} differ from the weights' input channels {filt.shape[3]}", filt)
    if shape_t.dtype != "int32":
        raise ctx.error(f"output_shape type {shape_t.dtype}; expected int32", shape_t)
    # An output_shape known only at run time (a graph input): DeferredPrepare makes the graph prepare this op
    # just before it runs, from the actual value, where LiteRT resizes its dynamic output in Eval.
    oshape = tuple(int(v) for v in np.asarray(ctx.input_value(0)).reshape(-1))
    if len(oshape) != 4:
        raise ctx.error(f"output_shape {list(oshape)} must have 4 elements", shape_t)
    if oshape[0] != inp.shape[0]:
        raise ctx.error(f"output batch {oshape[0]} differs from the input batch {inp.shape[0]}", shape_t)
    if oshape[1] <= 0 or oshape[2] <= 0:
        raise ctx.error(f"output_shape {list(oshape)}: height and width must be > 0", shape_t)
    if oshape[3] != filt.shape[0]:
        raise ctx.error(
            f"output channels {oshape[3]} differ from the weights' output channels {filt.shape[0]}", shape_t
        )
    padding = ctx.option("padding", "SAME")
    kh, kw = filt.shape[1], filt.shape[2]
    cw = conv_output_size(ctx, padding, oshape[2], kw, stride_w, 1, "width")
    chh = conv_output_size(ctx, padding, oshape[1], kh, stride_h, 1, "height")
    if (chh, cw) != (inp.shape[1], inp.shape[2]):
        raise ctx.error(
            f"a {padding} convolution of the output {oshape[1]}x{oshape[2]} with kernel {kh}x{kw} and stride "
            f"{stride_h}x{stride_w} gives {chh}x{cw}, not the input's {inp.shape[1]}x{inp.shape[2]}",
            inp,
        )
    geom = dict(
        stride_h=stride_h,
        stride_w=stride_w,
        pad_h=padding_before(stride_h, 1, oshape[1], kh, chh),
        pad_w=padding_before(stride_w, 1, oshape[2], kw, cw),
        kernel_h=kh,
        kernel_w=kw,
    )
    if inp.dtype == "float32" and filt.dtype == "int8":
        return prepare_transpose_conv_hybrid(ctx, filt, oshape, geom)
    if inp.dtype == "float32":
        lo, hi = float_range(ctx)
        return TransposeConvFloatData(
            output_shapes=(oshape,),
            output_dtypes=("float32",),
            act_min=float(lo),
            act_max=float(hi),
            accumulation=ctx.float_accumulation,
            **geom,
        )
    check_depth(ctx, kh * kw * inp.shape[3])
    ctx.require_quant(filt)
    qs = quant_setup(ctx, inp, filt, bias, out, filt.shape[0], acc_bits)
    fields = dict(
        output_shapes=(oshape,),
        output_dtypes=(out.dtype,),
        input_offset=-inp.zero_point if inp.dtype != "int16" else 0,
        filter_offset=-filt.zero_point if inp.dtype == "uint8" else 0,
        output_offset=out.zero_point if inp.dtype != "int16" else 0,
        multiplier=qs.multiplier,
        shift=qs.shift,
        act_min=qs.act_min,
        act_max=qs.act_max,
        acc_bits=acc_bits,
        rounding=ctx.rounding,
        real_multiplier=qs.real,
        out_dtype=out.dtype,
        **geom,
    )
    # The optimized uint8 kernel requantizes its flat output buffer in SIMD blocks (int8: blocks of channels).
    flat = int(np.prod(oshape)) if inp.dtype == "uint8" else None
    fields.update(profile_requant(ctx, inp, filt, out, qs, filt.shape[0], flat))
    return TransposeConvQuantData(**fields)  # type: ignore[arg-type]
