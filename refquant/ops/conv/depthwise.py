"""DEPTHWISE_CONV_2D: the quantized (int8, int16x8, uint8) and float32 kernels, and the op's prepare.

LiteRT 2.3.0 ``depthwise_conv.cc`` with ``reference_integer_ops::DepthwiseConvPerChannel`` (int8, int16x8)
and ``reference_ops::DepthwiseConv`` (uint8 legacy, ``depthwiseconv_uint8.h``; float32,
``depthwiseconv_float.h``), bit for bit. A float32 input with an int8 filter is the hybrid kernel
(:class:`~refquant.ops.conv.hybrid.DepthwiseHybridData`).

The readable kernel (``eval_reference``): a sum over the KH*KW kernel taps of shifted input slices times
per-channel weights, then the literal requantization (:class:`~refquant.ops.conv.common.QuantConvBase`).
The fast path (``eval``): the same tap sums per cached block of output rows, in float32 where the bias-free
sums are provably exact, else in float64 with the scale folded into the taps (see :mod:`refquant.requantize`).
Float32 sums are sequential in (ky, kx) order in both ``float_accumulation`` modes (at most KH*KW terms).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...fixedpoint import INT16_MAX
from ...requantize import Rounding
from ..base import OpContext, OpData, Step
from ..fastpath import rows_per_block
from . import common
from .common import (
    ConvGeometry,
    QuantConvBase,
    bias_zero_point,
    check_element,
    conv_geometry,
    fast_setup,
    float_epilogue,
    float_range,
    positive_option,
    profile_requant,
    quant_setup,
    require_positive_dims,
    require_rank,
)
from .hybrid import prepare_depthwise_hybrid

__all__ = ["prepare_depthwise_conv2d", "DepthwiseQuantData", "DepthwiseFloatData", "depthwise_rounding"]

#: The int32 MBQM variant of uint8 DEPTHWISE_CONV_2D in both builds: ``DepthwiseConvRound<kAwayFromZero>``
#: (depthwiseconv_uint8.h) is the double-rounding MBQM even where ``TFLITE_SINGLE_ROUNDING`` is set.
UINT8_DEPTHWISE_ROUNDING: Rounding = "double"


def depthwise_rounding(input_dtype: str, rounding: str) -> str:
    """The MBQM rounding variant DEPTHWISE_CONV_2D requantizes with, for an ``input_dtype`` input in a build
    of ``rounding``: the build's variant, except uint8 (:data:`UINT8_DEPTHWISE_ROUNDING`), a per-op choice
    of LiteRT's that the ``rounding`` option does not change."""
    return UINT8_DEPTHWISE_ROUNDING if input_dtype == "uint8" else rounding


@dataclass(frozen=True, kw_only=True)
class DepthwiseQuantData(ConvGeometry, QuantConvBase):
    """Prepared quantized DEPTHWISE_CONV_2D (LiteRT ``reference_integer_ops::DepthwiseConvPerChannel``, uint8
    ``reference_ops::DepthwiseConv``).

    ``acc[b,oy,ox,oc] = sum_{ky,kx} (w[0,ky,kx,oc] + filter_offset) * (x[b,iy,ix,oc // dm] + input_offset)``,
    computed as a sum over the kernel taps of shifted input slices (in-image taps only).
    """

    #: Depth multiplier: output channels / input channels (from the shapes; the option is ignored).
    depth_multiplier: int

    def _bias(self, inputs: list[np.ndarray | None]) -> np.ndarray | None:
        return inputs[2] if len(inputs) > 2 else None

    def _raw_acc(self, inputs: list[np.ndarray | None]) -> np.ndarray:
        x, w = inputs[0], inputs[1]
        assert x is not None and w is not None
        out_shape = self.output_shapes[0]
        # int32 arithmetic where it is exact or wraps exactly like the C int32 accumulator (modulo 2^32):
        # always for 32-bit accumulators; for int16x8 (64-bit accumulator, products <= 2^22) while fewer
        # than 2^9 taps are summed. Otherwise int64.
        wide = self.acc_bits == 64 and self.kernel_h * self.kernel_w >= 2**8
        dt = np.int64 if wide else np.int32
        acc = np.zeros(out_shape, dt)
        if acc.size == 0:
            return acc.astype(np.int64)
        xo = x.astype(dt) + dt(self.input_offset)
        if self.depth_multiplier > 1:
            xo = np.repeat(xo, self.depth_multiplier, axis=3)
        wo = w[0].astype(dt) + dt(self.filter_offset)  # (KH, KW, O)
        self._tap_sums(xo, wo, acc)
        return acc.astype(np.int64) if self.acc_bits == 64 else acc

    def _eval_fast(self, inputs: list[np.ndarray | None], mode: str) -> np.ndarray:
        """Blocked sum of shifted slices in float32 (exact bias-free sums) or float64 (weights pre-scaled
        per channel); the folded requantization is :mod:`refquant.requantize`'s.

        Per block of output rows the zp-padded input is converted once, split into column phases for
        strided convolutions so every tap reads a contiguous (OW, C) slab, and each tap is a multiply by
        the (OW, O)-tiled tap weights and an add: long inner loops, no per-channel broadcast. A geometry
        whose padded rows dwarf the input (huge dilations, mostly padding) runs the readable kernel, which
        skips out-of-image taps instead of materialising them.
        """
        x, w = inputs[0], inputs[1]
        assert x is not None and w is not None and self.fast is not None
        fr = self.fast
        out_shape = self.output_shapes[0]
        bsz, oh, ow, o = out_shape
        out = np.empty(out_shape, np.dtype(self.out_dtype))
        if out.size == 0:
            return out
        _, h, wd, c = x.shape
        kh, kw = self.kernel_h, self.kernel_w
        sh, sw, dh, dw = self.stride_h, self.stride_w, self.dilation_h, self.dilation_w
        one_row = ((kh - 1) * dh + 1) * ((ow - 1) * sw + (kw - 1) * dw + 1)  # padded pixels read per output row
        if one_row > 4 * (h + 1) * (wd + 1) + (1 << 16):
            return self.eval_reference(inputs)[0]
        dm = self.depth_multiplier
        # float32 taps when the bias-free sums are provably exact in float32 (then t = S*scale + const in
        # float64 at the end); else float64 taps pre-scaled per channel, starting from the constants.
        f32 = fr.sums_fit_f32
        dt = np.float32 if f32 else np.float64
        taps = np.add(w[0], self.filter_offset, dtype=dt)  # (KH, KW, O)
        if mode == "folded" and not f32:
            taps *= fr.scale
        tiled = np.empty((kh, kw, ow, o), dt)
        tiled[...] = taps[:, :, None, :]
        zp = -self.input_offset
        wp = (ow - 1) * sw + (kw - 1) * dw + 1  # padded columns read
        rows = rows_per_block(bsz * ow * o)
        acc_buf = np.empty((bsz, min(rows, oh), ow, o), dt)
        tmp_buf = np.empty_like(acc_buf)
        for y0 in range(0, oh, rows):
            y1 = min(oh, y0 + rows)
            r = y1 - y0
            pr0 = y0 * sh  # first padded row read
            rin = (r - 1) * sh + (kh - 1) * dh + 1
            i0 = max(0, self.pad_h - pr0)
            i1 = min(rin, h + self.pad_h - pr0)
            phases = []
            for px in range(min(sw, wp)):
                nq = -(-(wp - px) // sw)
                ph = np.empty((bsz, rin, nq, c), dt)
                q0 = min(nq, max(0, -(-(self.pad_w - px) // sw)))
                q1 = max(q0, min(nq, -(-(wd + self.pad_w - px) // sw)))
                if i0 > 0 or i1 < rin or q0 > 0 or q1 < nq or i1 <= i0:
                    ph.fill(zp)
                if i1 > i0 and q1 > q0:
                    ix0 = px + sw * q0 - self.pad_w
                    iy0 = pr0 + i0 - self.pad_h
                    ph[:, i0:i1, q0:q1, :] = x[:, iy0 : iy0 + (i1 - i0), ix0 : ix0 + (q1 - q0 - 1) * sw + 1 : sw, :]
                if dm > 1:
                    ph = np.repeat(ph, dm, axis=3)
                phases.append(ph)
            acc = acc_buf[:, :r]
            tmp = tmp_buf[:, :r]
            first = not (mode == "folded" and not f32)
            if not first:
                acc[...] = fr.const
            for ky in range(kh):
                for kx in range(kw):
                    px, q = (kx * dw) % sw, (kx * dw) // sw
                    src = phases[px][:, ky * dh : ky * dh + (r - 1) * sh + 1 : sh, q : q + ow, :]
                    if first:
                        np.multiply(src, tiled[ky, kx], out=acc)
                        first = False
                    else:
                        np.multiply(src, tiled[ky, kx], out=tmp)
                        np.add(acc, tmp, out=acc)
            if f32:
                self._finish_sums(acc, out[:, y0:y1], mode)
            elif mode == "folded":
                self._finish_block(acc, out[:, y0:y1], mode)
            else:
                acc += fr.folded_bias
                self._finish_block(acc, out[:, y0:y1], mode)
        return out

    def _element_terms(self, inputs: list[np.ndarray | None], element: tuple[int, ...]) -> tuple[list[Step], int]:
        x, w = inputs[0], inputs[1]
        assert x is not None and w is not None
        b, oy, ox, oc = element
        ic = oc // self.depth_multiplier
        vals, mask, pos = self._window(x, b, oy, ox, ic)
        taps = w[0, :, :, oc].astype(np.int64)
        steps = [
            Step("window", vals, f"input[{b}, iy, ix, {ic}] for the (ky, kx) taps"),
            Step("positions", pos, "(iy, ix) of each (ky, kx) tap; out-of-image window entries show 0"),
            Step("in image", mask, "taps outside the image are skipped"),
            Step("taps", taps, f"filter[0, ky, kx, {oc}]"),
            Step("offsets", (self.input_offset, self.filter_offset), "(input offset = -zp_in, filter offset)"),
        ]
        total = 0
        for ky in range(self.kernel_h):
            for kx in range(self.kernel_w):
                if mask[ky, kx]:
                    total += (int(vals[ky, kx]) + self.input_offset) * (int(taps[ky, kx]) + self.filter_offset)
        steps.append(Step("sum", total, "sum over in-image taps of (w + filter offset) * (x + input offset)"))
        return steps, total


@dataclass(frozen=True, kw_only=True)
class DepthwiseFloatData(ConvGeometry, OpData):
    """Prepared float32 DEPTHWISE_CONV_2D (LiteRT ``reference_ops::DepthwiseConv``, float): (ky, kx) order."""

    #: Depth multiplier: output channels / input channels.
    depth_multiplier: int
    #: Fused-activation clamp range (float32).
    act_min: float
    act_max: float

    def _total(self, inputs: list[np.ndarray | None], blocked: bool | None = None, epilogue: Any = None) -> np.ndarray:
        """float32 sums over the in-image taps in (ky, kx) order; ``blocked`` (default ``common.FAST_PATHS``)
        runs the same multiply/add steps block of output rows by block (the sums stay in the cache), then
        ``epilogue`` on each finished block."""
        x, w = inputs[0], inputs[1]
        assert x is not None and w is not None
        out_shape = self.output_shapes[0]
        bsz, oh, ow, oc = out_shape
        total = np.zeros(out_shape, np.float32)
        if total.size == 0:
            return total
        x = np.asarray(x, np.float32)
        if self.depth_multiplier > 1:
            x = np.repeat(x, self.depth_multiplier, axis=3)
        w = np.asarray(w, np.float32)
        _, h, wd, _ = x.shape
        if blocked is None:
            blocked = common.FAST_PATHS
        rows = rows_per_block(bsz * ow * oc) if blocked else oh
        buf_all = np.empty((bsz, min(rows, oh), ow, oc), np.float32)
        for r0 in range(0, oh, rows):
            r1 = min(oh, r0 + rows)
            for ky, kx, ya, yb, x0, x1, xs in self._tap_blocks(x, oh, ow, r0, r1):
                tv = total[:, ya:yb, x0:x1]
                buf = buf_all[:, : yb - ya, : x1 - x0]
                np.multiply(xs, w[0, ky, kx], out=buf)
                np.add(tv, buf, out=tv)
            if epilogue is not None:
                epilogue(total[:, r0:r1])
        return total

    def accumulators(self, inputs: list[np.ndarray | None]) -> dict[str, np.ndarray]:
        """``{"acc": ...}``: the float32 sum plus bias, before the activation clamp."""
        total = self._total(inputs)
        bias = inputs[2] if len(inputs) > 2 else None
        if bias is not None:
            total = total + np.asarray(bias, np.float32).reshape(-1)
        else:
            total = total + np.float32(0.0)
        return {"acc": total}

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """Sequential float32 depthwise convolution, + bias (0.0f without one), clamp."""
        if common.FAST_PATHS:
            bias = inputs[2] if len(inputs) > 2 else None
            if bias is None:
                bias = np.zeros(self.output_shapes[0][3], np.float32)
            return [self._total(inputs, epilogue=float_epilogue(bias, self.act_min, self.act_max))]
        acc = self.accumulators(inputs)["acc"]
        lo, hi = np.float32(self.act_min), np.float32(self.act_max)
        return [np.minimum(np.maximum(acc, lo), hi).astype(np.float32)]

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """Window, taps and the float32 running sum of one output element."""
        x, w = inputs[0], inputs[1]
        assert x is not None and w is not None
        b, oy, ox, oc = check_element(self, output, element)
        ic = oc // self.depth_multiplier
        vals, mask, pos = self._window(np.asarray(x, np.float32), b, oy, ox, ic)
        taps = np.asarray(w[0, :, :, oc], np.float32)
        total = np.float32(0)
        for ky in range(self.kernel_h):
            for kx in range(self.kernel_w):
                if mask[ky, kx]:
                    total = np.float32(total + np.float32(vals[ky, kx] * taps[ky, kx]))
        bias = inputs[2] if len(inputs) > 2 else None
        bv = np.float32(np.asarray(bias, np.float32).reshape(-1)[oc]) if bias is not None else np.float32(0)
        acc = np.float32(total + bv)
        value = np.float32(min(max(acc, np.float32(self.act_min)), np.float32(self.act_max)))
        return [
            Step("window", vals, f"input[{b}, iy, ix, {ic}]"),
            Step("positions", pos, "(iy, ix) of each (ky, kx) tap; out-of-image window entries show 0"),
            Step("in image", mask, "taps outside the image are skipped"),
            Step("taps", taps, f"filter[0, ky, kx, {oc}]"),
            Step("sum", total, "float32 running sum in (ky, kx) order"),
            Step("bias", bv, f"bias[{oc}]" if bias is not None else "no bias tensor"),
            Step("acc", acc, "sum + bias (float32)"),
            Step("clamp", value, f"clamp to [{self.act_min}, {self.act_max}] -> output value"),
        ]


def prepare_depthwise_conv2d(ctx: OpContext) -> OpData:
    """DEPTHWISE_CONV_2D, matching LiteRT ``depthwise_conv.cc`` Prepare + the reference depthwise kernels."""
    ctx.check_counts((2, 3), 1)
    inp, filt, out = ctx.input(0), ctx.input(1), ctx.output(0)
    bias = None
    if len(ctx.inputs) == 3:
        bias = ctx.input(2)  # an omitted (-1) bias with three inputs is rejected, as in LiteRT
    require_rank(ctx, inp, 4, "input")
    require_rank(ctx, filt, 4, "filter")
    dil_h = positive_option(ctx, "dilation_h_factor", INT16_MAX)
    dil_w = positive_option(ctx, "dilation_w_factor", INT16_MAX)
    stride_w = positive_option(ctx, "stride_w", INT16_MAX)
    stride_h = positive_option(ctx, "stride_h", INT16_MAX)
    require_positive_dims(ctx, inp, (1, 2, 3), "input")
    require_positive_dims(ctx, filt, (1, 2, 3), "filter")
    ctx.check_dtype(inp, ("float32", "uint8", "int8", "int16"), "input")
    if out.dtype != inp.dtype:
        raise ctx.error(f"output type {out.dtype} differs from input type {inp.dtype}", out)
    want_w = {"float32": "float32", "uint8": "uint8", "int8": "int8", "int16": "int8"}[inp.dtype]
    # float32 input with an int8 filter: the hybrid (dynamic-range quantized) kernel.
    hybrid = inp.dtype == "float32" and filt.dtype == "int8"
    if filt.dtype != want_w and not hybrid:
        # LiteRT accepts an int4 filter, a float32 input with an int8 filter (hybrid) and any int16-input
        # filter type; every other mismatch fails its Prepare.
        accepted = filt.dtype == "int4" or inp.dtype == "int16"
        if not accepted:
            raise ctx.error(f"filter type {filt.dtype} differs from input type {inp.dtype}", filt)
        if inp.dtype == "float32":
            raise ctx.error(
                f"LiteRT's depthwise kernel fails at Eval for float32 input with a {filt.dtype} filter", filt
            )
        raise ctx.unsupported(
            f"{inp.dtype} input with a {filt.dtype} filter (refquant supports a {want_w} filter; "
            "int4 depthwise convolutions are not implemented)"
        )
    if inp.dtype == "int16":
        ctx.require_quant(inp)
        ctx.require_quant(out)
        ctx.require_zero_points(inp, out, why="int16 depthwise convolution is symmetric")
    if filt.shape[0] != 1:
        raise ctx.error(f"filter dimension 0 is {filt.shape[0]}; expected 1", filt)
    c_in, o = inp.shape[3], filt.shape[3]
    if o % c_in:
        raise ctx.error(f"filter channels {o} are not a multiple of the input channels {c_in}", filt)
    if bias is not None:
        want_b = {"uint8": "int32", "int8": "int32", "int16": "int64", "float32": "float32"}[inp.dtype]
        if bias.dtype != want_b:
            raise ctx.error(f"bias type {bias.dtype}; expected {want_b}", bias)
        if inp.dtype != "float32" and bias_zero_point(bias) != 0:
            raise ctx.fail_quant("bias zero point must be 0", bias)
        if len(bias.shape) != 1 or bias.shape[0] != o:
            raise ctx.error(f"bias shape {list(bias.shape)}; expected [{o}]", bias)
    geom, out_shape = conv_geometry(ctx, inp, filt, o, stride_h, stride_w, dil_h, dil_w)
    dm = o // c_in
    if hybrid:
        return prepare_depthwise_hybrid(ctx, inp, filt, dm, geom, out_shape)
    if inp.dtype == "float32":
        lo, hi = float_range(ctx)
        return DepthwiseFloatData(
            output_shapes=(out_shape,),
            output_dtypes=("float32",),
            depth_multiplier=dm,
            act_min=float(lo),
            act_max=float(hi),
            **geom,
        )
    acc_bits = 64 if inp.dtype == "int16" else 32
    qs = quant_setup(ctx, inp, filt, bias, out, o, acc_bits)
    rounding = depthwise_rounding(inp.dtype, ctx.rounding)
    wvals = None
    if filt.value is not None:
        wvals = filt.value.reshape(-1, o).T  # (O, KH*KW)
    fast = fast_setup(ctx, inp, out, qs, acc_bits, rounding, wvals, bias)
    fields = dict(
        output_shapes=(out_shape,),
        output_dtypes=(out.dtype,),
        input_offset=-inp.zero_point if inp.dtype != "int16" else 0,
        filter_offset=-filt.zero_point if inp.dtype == "uint8" else 0,
        output_offset=out.zero_point if inp.dtype != "int16" else 0,
        multiplier=qs.multiplier,
        shift=qs.shift,
        act_min=qs.act_min,
        act_max=qs.act_max,
        acc_bits=acc_bits,
        rounding=rounding,
        real_multiplier=qs.real,
        out_dtype=out.dtype,
        fast=fast,
        depth_multiplier=dm,
        **geom,
    )
    fields.update(profile_requant(ctx, inp, filt, out, qs, o))
    return DepthwiseQuantData(**fields)  # type: ignore[arg-type]
