"""CONV_2D: the quantized (int8, int16x8, uint8) and float32 kernels, and the op's prepare.

LiteRT 2.3.0 ``conv.cc`` with ``reference_integer_ops::ConvPerChannel`` (int8, int16x8) and
``reference_ops::Conv`` (uint8 legacy and float32), bit for bit. A float32 input with an int8 filter is
the hybrid kernel (:class:`~refquant.ops.conv.hybrid.ConvHybridData`).

The readable kernel (``eval_reference``): im2col over a zero-point-padded input (``sliding_window_view``)
and one float64 BLAS matrix product per row block (per group for grouped convolutions), then the literal
requantization (:class:`~refquant.ops.conv.common.QuantConvBase`). The fast path (``eval``): blocks of
output rows, a float32 GEMM for the bias-free sums where they are provably exact in float32, else one
float64 GEMM with the scale folded into the filter (see :mod:`refquant.requantize`).

Float32: ``float_accumulation="float64"`` computes each sum in float64 BLAS (im2col) and rounds it once to
float32; ``"sequential"`` adds float32 products in LiteRT's (ky, kx, ic) order (see :mod:`refquant.ops.conv`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ...requantize import FoldedRequant
from ..base import OpContext, OpData, Step
from ..fastpath import rows_per_block
from ..matmul import FLOAT_SUM_STEPS
from . import common
from .common import (
    ALL_CHANNELS,
    ConvGeometry,
    QuantConvBase,
    bias_zero_point,
    check_depth,
    check_element,
    check_int16_bias,
    conv_geometry,
    fast_setup,
    float_epilogue,
    float_range,
    padded_input,
    positive_option,
    profile_requant,
    quant_setup,
    require_positive_dims,
    require_rank,
    reshape_view,
)
from .hybrid import prepare_conv_hybrid

__all__ = ["prepare_conv2d", "ConvQuantData", "ConvFloatData"]

#: Smallest reduction depth for which the float32 GEMM (plus two float64 passes) beats one float64 GEMM.
_F32_MIN_DEPTH = 32
#: Float64 weight elements converted at a time by the fast CONV_2D (1 MiB): larger filters are processed
#: in chunks of output channels so that the converted copy stays small.
_WEIGHT_BLOCK = 1 << 17


def _fast_weights(
    w2: np.ndarray, filter_offset: int, fr: FoldedRequant, mode: str, cs: slice = ALL_CHANNELS
) -> np.ndarray:
    """(O, K+1) float64 matrix of the fast GEMM for the channels ``cs`` of the (O, K) filter ``w2``: folded
    ``[(w + filter_offset) * scale | const]``, checked ``[w + filter_offset | b']``. Exact: an integer below
    2^9 times a 31-bit scale."""
    w2 = w2[cs]
    o, k = w2.shape
    wt = np.empty((o, k + 1))
    if mode == "folded" and not filter_offset:
        np.multiply(w2, fr.scale[cs, None], out=wt[:, :k])
    else:
        np.add(w2, filter_offset, out=wt[:, :k], dtype=np.float64)
        if mode == "folded":
            wt[:, :k] *= fr.scale[cs, None]
    wt[:, k] = fr.const[cs] if mode == "folded" else fr.folded_bias[cs]
    return wt


@dataclass(frozen=True, kw_only=True)
class ConvQuantData(ConvGeometry, QuantConvBase):
    """Prepared quantized CONV_2D (LiteRT ``reference_integer_ops::ConvPerChannel`` / uint8 ``reference_ops::Conv``).

    ``acc[b,oy,ox,oc] = sum_{ky,kx,ic} (w[oc,ky,kx,ic] + filter_offset) * (x[b,iy,ix,g*Ig+ic] + input_offset)``
    with ``g = oc // (O / groups)``, computed as im2col + float64 BLAS (exact, see ``check_depth``).
    """

    def scratch_bytes(self, input_shapes: list[tuple[int, ...]]) -> int:
        """Bytes of the zero-point-padded input the im2col path materialises (counted by the memory bound)."""
        b, h, w, c = input_shapes[0]
        _, oh, ow, _ = self.output_shapes[0]
        hp = max((oh - 1) * self.stride_h + (self.kernel_h - 1) * self.dilation_h + 1, self.pad_h + h)
        wp = max((ow - 1) * self.stride_w + (self.kernel_w - 1) * self.dilation_w + 1, self.pad_w + w)
        return b * hp * wp * c * 8

    #: Number of groups: input channels / filter input channels.
    groups: int

    def _bias(self, inputs: list[np.ndarray | None]) -> np.ndarray | None:
        return inputs[2] if len(inputs) > 2 else None

    def _raw_acc(self, inputs: list[np.ndarray | None]) -> np.ndarray:
        x, w = inputs[0], inputs[1]
        assert x is not None and w is not None
        wf = w.astype(np.float64) + self.filter_offset  # (O, KH, KW, Ig)
        return self._im2col_sums(x, self.input_offset, wf, self.output_shapes[0], self.groups)

    def _eval_fast(self, inputs: list[np.ndarray | None], mode: str) -> np.ndarray:
        """Blocked im2col + BLAS (the folded requantization: :mod:`refquant.requantize`).

        With ``fast.sums_fit_f32`` and a depth of at least ``_F32_MIN_DEPTH``, a float32 GEMM computes the
        bias-free sums exactly and ``t = S*scale + const`` follows in float64; otherwise one float64 GEMM
        with the scale folded into the filter and the constants in a bias row gives ``t`` directly.
        Blocks of output rows keep the temporaries in cache; large filters go in chunks of channels.
        """
        x, w = inputs[0], inputs[1]
        assert x is not None and w is not None and self.fast is not None
        out_shape = self.output_shapes[0]
        bsz, oh, ow, o = out_shape
        out = np.empty(out_shape, np.dtype(self.out_dtype))
        if out.size == 0:
            return out
        c = x.shape[3]
        kh, kw = self.kernel_h, self.kernel_w
        g = self.groups
        ig, og = c // g, o // g
        k = kh * kw * ig
        w2 = w.reshape(o, k)
        f32 = self.fast.sums_fit_f32 and k >= _F32_MIN_DEPTH
        extra = 0 if f32 else 1  # the bias row / ones column of the float64 GEMM
        pointwise = kh == kw == 1 and self.stride_h == self.stride_w == 1 and g == 1
        if pointwise:
            # 1x1 SAME/VALID padding is always 0: the input rows are the im2col matrix.
            n = bsz * oh * ow
            x2, o2 = x.reshape(n, c), out.reshape(n, o)
        else:
            eff_h = (kh - 1) * self.dilation_h + 1
            eff_w = (kw - 1) * self.dilation_w + 1
            hp = (oh - 1) * self.stride_h + eff_h
            wp = (ow - 1) * self.stride_w + eff_w
            xp = padded_input(x, self.pad_h, self.pad_w, hp, wp, -self.input_offset)
            windows = sliding_window_view(xp, (eff_h, eff_w), axis=(1, 2))  # (B, Hp', Wp', C, eff_h, eff_w)
        oc = max(1, _WEIGHT_BLOCK // (k + 1)) if g == 1 else o  # output channels per filter chunk
        per_output = max(k + extra, min(o, oc))  # float elements of the block buffers per output position
        rows = rows_per_block(per_output if pointwise else ow * per_output)
        if pointwise:
            blocks = [(n0, min(n, n0 + rows)) for n0 in range(0, n, rows)]
            nmax = min(rows, n)
        else:
            nb = max(1, min(bsz, rows // oh)) if rows >= oh else 1
            rows = oh if rows >= oh else rows
            blocks = [
                (b0, min(bsz, b0 + nb), y0, min(oh, y0 + rows)) for b0 in range(0, bsz, nb) for y0 in range(0, oh, rows)
            ]
            nmax = nb * rows * ow
        xb = np.empty((nmax, k + extra), np.float32 if f32 else np.float64)
        if extra:
            xb[:, k] = 1.0
        for c0 in range(0, o, oc):
            cs = slice(c0, min(o, c0 + oc))
            if f32:
                wt = np.add(w2[cs], self.filter_offset, dtype=np.float32)
            else:
                wt = _fast_weights(w2, self.filter_offset, self.fast, mode, cs)
            for blk in blocks:
                if pointwise:
                    n0, n1 = blk
                    m = n1 - n0
                    np.copyto(xb[:m, :k], x2[n0:n1])
                    dst = o2[n0:n1, cs]
                    t = self._gemm(xb[:m], wt)
                else:
                    b0, b1, y0, y1 = blk
                    m = (b1 - b0) * (y1 - y0) * ow
                    win = windows[
                        b0:b1,
                        y0 * self.stride_h : (y1 - 1) * self.stride_h + 1 : self.stride_h,
                        0 : (ow - 1) * self.stride_w + 1 : self.stride_w,
                        :,
                        :: self.dilation_h,
                        :: self.dilation_w,
                    ]  # (nb, rows, OW, C, KH, KW)
                    dst = out[b0:b1, y0:y1, :, cs]
                    if g == 1:
                        cols = reshape_view(xb[:m, :k], (b1 - b0, y1 - y0, ow, kh, kw, c))
                        np.copyto(cols, win.transpose(0, 1, 2, 4, 5, 3))
                        t = self._gemm(xb[:m], wt)
                    else:
                        t = np.empty((m, o), xb.dtype)
                        for gi in range(g):
                            cols = reshape_view(xb[:m, :k], (b1 - b0, y1 - y0, ow, kh, kw, ig))
                            np.copyto(cols, win[:, :, :, gi * ig : (gi + 1) * ig].transpose(0, 1, 2, 4, 5, 3))
                            t[:, gi * og : (gi + 1) * og] = xb[:m] @ wt[gi * og : (gi + 1) * og].T
                    t = t.reshape(dst.shape)
                if f32:
                    self._finish_sums(t, dst, mode, cs)
                else:
                    self._finish_block(t, dst, mode, cs)
        return out

    @staticmethod
    def _gemm(xb: np.ndarray, wt: np.ndarray) -> np.ndarray:
        """``xb @ wt.T`` through BLAS (its own function so that profiles show the BLAS time apart)."""
        return xb @ wt.T

    def _element_terms(self, inputs: list[np.ndarray | None], element: tuple[int, ...]) -> tuple[list[Step], int]:
        x, w = inputs[0], inputs[1]
        assert x is not None and w is not None
        b, oy, ox, oc = element
        og = self.output_shapes[0][3] // self.groups
        ig = w.shape[3]
        grp = oc // og
        vals, mask, pos = self._window(x, b, oy, ox, slice(grp * ig, (grp + 1) * ig))
        taps = w[oc].astype(np.int64)
        steps = [
            Step(
                "window", vals, f"input[{b}, iy, ix, {grp * ig}:{(grp + 1) * ig}] for the (ky, kx) taps (group {grp})"
            ),
            Step("positions", pos, "(iy, ix) of each (ky, kx) tap; out-of-image window entries show 0"),
            Step("in image", mask, "taps outside the image are skipped"),
            Step("taps", taps, f"filter[{oc}, ky, kx, ic]"),
            Step("offsets", (self.input_offset, self.filter_offset), "(input offset = -zp_in, filter offset)"),
        ]
        total = 0
        for ky in range(self.kernel_h):
            for kx in range(self.kernel_w):
                if mask[ky, kx]:
                    xv = vals[ky, kx].astype(np.int64) + self.input_offset
                    wv = taps[ky, kx] + self.filter_offset
                    total += int(np.dot(xv, wv))
        steps.append(Step("sum", total, "sum over in-image taps of (w + filter offset) * (x + input offset)"))
        return steps, total


@dataclass(frozen=True, kw_only=True)
class ConvFloatData(ConvGeometry, OpData):
    """Prepared float32 CONV_2D (LiteRT ``reference_ops::Conv``): sequential float32 sums in (ky, kx, ic) order."""

    #: Number of groups: input channels / filter input channels.
    groups: int
    #: Fused-activation clamp range (float32).
    act_min: float
    act_max: float
    #: ``"float64"`` (BLAS sums rounded once) or ``"sequential"`` (LiteRT's float32 loop), see the module doc.
    accumulation: str = "float64"
    #: The filter is a constant whose values prepare found finite (else eval checks them).
    filter_finite: bool = False

    def _uses_float64(self, w: np.ndarray) -> bool:
        return self.accumulation == "float64" and (self.filter_finite or bool(np.isfinite(w).all()))

    def _total64(self, inputs: list[np.ndarray | None], epilogue: Any = None) -> np.ndarray:
        """The sums in float64 BLAS, rounded once to float32 (``float_accumulation="float64"``).

        im2col over a zero-padded input, block of output rows by block (a block's columns and sums stay
        in the cache; a row longer than a block is split), filters above :data:`_WEIGHT_BLOCK` float64
        elements in chunks of output channels.
        ``epilogue(block, channels)`` finishes each block in place (bias add and clamp).
        """
        x, w = inputs[0], inputs[1]
        assert x is not None and w is not None
        x = np.asarray(x, np.float32)
        out_shape = self.output_shapes[0]
        bsz, oh, ow, o = out_shape
        out = np.empty(out_shape, np.float32)
        if out.size == 0:
            return out
        c = x.shape[3]
        kh, kw, g = self.kernel_h, self.kernel_w, self.groups
        ig, og = c // g, o // g
        k = kh * kw * ig
        w2 = np.asarray(w, np.float32).reshape(o, k)
        pointwise = kh == kw == 1 and self.stride_h == self.stride_w == 1 and g == 1
        oc = max(1, _WEIGHT_BLOCK // k) if g == 1 else o  # output channels per filter chunk
        per_output = max(k, min(o, oc))  # float64 elements of the block buffers per output position
        if pointwise:
            rows = rows_per_block(per_output)
            n = bsz * oh * ow
            x2, o2 = x.reshape(n, c), out.reshape(n, o)
            blocks: list[tuple[int, ...]] = [(n0, min(n, n0 + rows)) for n0 in range(0, n, rows)]
            nmax = min(rows, n)
        else:
            # Blocks of whole output rows, or of part of one row when a row alone is above the block size.
            xn = min(ow, rows_per_block(per_output))
            rows = rows_per_block(per_output * ow) if xn == ow else 1
            eff_h = (kh - 1) * self.dilation_h + 1
            eff_w = (kw - 1) * self.dilation_w + 1
            hp = (oh - 1) * self.stride_h + eff_h
            wp = (ow - 1) * self.stride_w + eff_w
            xp = padded_input(x, self.pad_h, self.pad_w, hp, wp, 0)
            windows = sliding_window_view(xp, (eff_h, eff_w), axis=(1, 2))  # (B, Hp', Wp', C, eff_h, eff_w)
            nb = max(1, min(bsz, rows // oh)) if rows >= oh else 1
            rows = min(rows, oh)
            blocks = [
                (b0, min(bsz, b0 + nb), y0, min(oh, y0 + rows), x0, min(ow, x0 + xn))
                for b0 in range(0, bsz, nb)
                for y0 in range(0, oh, rows)
                for x0 in range(0, ow, xn)
            ]
            nmax = nb * rows * xn
        xb = np.empty((nmax, k), np.float64)
        for c0 in range(0, o, oc):
            cs = slice(c0, min(o, c0 + oc))
            wt = w2[cs].astype(np.float64)
            for blk in blocks:
                if pointwise:
                    n0, n1 = blk
                    m = n1 - n0
                    np.copyto(xb[:m], x2[n0:n1])
                    dst = o2[n0:n1, cs]
                    dst[...] = xb[:m] @ wt.T
                else:
                    b0, b1, y0, y1, x0, x1 = blk
                    m = (b1 - b0) * (y1 - y0) * (x1 - x0)
                    win = windows[
                        b0:b1,
                        y0 * self.stride_h : (y1 - 1) * self.stride_h + 1 : self.stride_h,
                        x0 * self.stride_w : (x1 - 1) * self.stride_w + 1 : self.stride_w,
                        :,
                        :: self.dilation_h,
                        :: self.dilation_w,
                    ]  # (nb, rows, columns, C, KH, KW)
                    dst = out[b0:b1, y0:y1, x0:x1, cs]
                    cols = reshape_view(xb[:m], (b1 - b0, y1 - y0, x1 - x0, kh, kw, ig))
                    for gi in range(g):
                        np.copyto(cols, win[:, :, :, gi * ig : (gi + 1) * ig].transpose(0, 1, 2, 4, 5, 3))
                        gs = slice(gi * og, (gi + 1) * og) if g > 1 else ALL_CHANNELS
                        dst[..., gs] = (xb[:m] @ wt[gs].T).reshape(dst[..., gs].shape)
                if epilogue is not None:
                    epilogue(dst, cs)
        return out

    def _total(self, inputs: list[np.ndarray | None], blocked: bool | None = None, epilogue: Any = None) -> np.ndarray:
        """The float32 sums, each term added in (ky, kx, ic) order, out-of-image taps skipped.

        The loops run over taps and input channels; each step is one multiply and one add over all
        outputs that tap reaches. ``blocked`` (default: ``common.FAST_PATHS``) does the same steps block of
        output rows by block, so that the running sums stay in the cache, with the filter transposed once
        so that every step reads contiguous weights: the same operations on the same values.
        """
        x, w = inputs[0], inputs[1]
        assert x is not None and w is not None
        x = np.asarray(x, np.float32)
        w = np.asarray(w, np.float32)
        bsz, oh, ow, oc = self.output_shapes[0]
        g = self.groups
        og = oc // g
        ig = w.shape[3]
        total = np.zeros((bsz, oh, ow, g, og), np.float32)
        if total.size == 0:
            return total.reshape(bsz, oh, ow, oc)
        _, h, wd, _ = x.shape
        if blocked is None:
            blocked = common.FAST_PATHS
        rows = rows_per_block(bsz * ow * oc) if blocked else oh
        wt_all = np.ascontiguousarray(w.transpose(1, 2, 3, 0)).reshape(self.kernel_h, self.kernel_w, ig, g, og)
        buf_all = np.empty((bsz, min(rows, oh), ow, g, og), np.float32)
        for r0 in range(0, oh, rows):
            r1 = min(oh, r0 + rows)
            for ky, kx, ya, yb, x0, x1, xs in self._tap_blocks(x, oh, ow, r0, r1):
                xs = xs.reshape(bsz, yb - ya, x1 - x0, g, ig)
                tv = total[:, ya:yb, x0:x1]
                buf = buf_all[:, : yb - ya, : x1 - x0]
                wt = wt_all[ky, kx]
                for ic in range(ig):
                    np.multiply(xs[..., ic : ic + 1], wt[ic], out=buf)
                    np.add(tv, buf, out=tv)
            if epilogue is not None:
                epilogue(total[:, r0:r1].reshape(bsz, r1 - r0, ow, oc))
        return total.reshape(bsz, oh, ow, oc)

    def accumulators(self, inputs: list[np.ndarray | None]) -> dict[str, np.ndarray]:
        """``{"acc": ...}``: the float32 sum plus bias, before the activation clamp."""
        assert inputs[1] is not None
        total = self._total64(inputs) if self._uses_float64(inputs[1]) else self._total(inputs)
        bias = inputs[2] if len(inputs) > 2 else None
        if bias is not None:
            total = total + np.asarray(bias, np.float32).reshape(-1)
        return {"acc": total}

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """Float32 convolution (float64 or sequential sums), + bias, clamp (per cached block)."""
        bias = inputs[2] if len(inputs) > 2 else None
        assert inputs[1] is not None
        if self._uses_float64(inputs[1]):
            return [self._total64(inputs, epilogue=float_epilogue(bias, self.act_min, self.act_max))]
        if common.FAST_PATHS:
            return [self._total(inputs, epilogue=float_epilogue(bias, self.act_min, self.act_max))]
        acc = self.accumulators(inputs)["acc"]
        lo, hi = np.float32(self.act_min), np.float32(self.act_max)
        return [np.minimum(np.maximum(acc, lo), hi).astype(np.float32)]

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """Window, taps and the float32 running sum of one output element."""
        x, w = inputs[0], inputs[1]
        assert x is not None and w is not None
        b, oy, ox, oc = check_element(self, output, element)
        og = self.output_shapes[0][3] // self.groups
        ig = w.shape[3]
        grp = oc // og
        vals, mask, pos = self._window(np.asarray(x, np.float32), b, oy, ox, slice(grp * ig, (grp + 1) * ig))
        taps = np.asarray(w[oc], np.float32)
        total = np.float32(0)
        if self._uses_float64(w):
            total = np.float32(np.dot(vals[mask].astype(np.float64).ravel(), taps[mask].astype(np.float64).ravel()))
        else:
            for ky in range(self.kernel_h):
                for kx in range(self.kernel_w):
                    if mask[ky, kx]:
                        for ic in range(ig):
                            total = np.float32(total + np.float32(vals[ky, kx, ic] * taps[ky, kx, ic]))
        bias = inputs[2] if len(inputs) > 2 else None
        bv = np.float32(np.asarray(bias, np.float32).reshape(-1)[oc]) if bias is not None else np.float32(0)
        acc = np.float32(total + bv)
        value = np.float32(min(max(acc, np.float32(self.act_min)), np.float32(self.act_max)))
        return [
            Step("window", vals, f"input[{b}, iy, ix, group {grp} channels]"),
            Step("positions", pos, "(iy, ix) of each (ky, kx) tap; out-of-image window entries show 0"),
            Step("in image", mask, "taps outside the image are skipped"),
            Step("taps", taps, f"filter[{oc}]"),
            Step("sum", total, FLOAT_SUM_STEPS["float64" if self._uses_float64(w) else "sequential"]),
            Step("bias", bv, f"bias[{oc}]"),
            Step("acc", acc, "sum + bias (float32)"),
            Step("clamp", value, f"clamp to [{self.act_min}, {self.act_max}] -> output value"),
        ]


def prepare_conv2d(ctx: OpContext) -> OpData:
    """CONV_2D, matching LiteRT ``conv.cc`` Prepare + ``reference_integer_ops::ConvPerChannel`` / ``reference_ops::Conv``."""
    ctx.check_counts((2, 3), 1)
    inp, filt, out = ctx.input(0), ctx.input(1), ctx.output(0)
    require_rank(ctx, inp, 4, "input")
    require_rank(ctx, filt, 4, "filter")
    require_positive_dims(ctx, inp, (1, 2, 3), "input")
    require_positive_dims(ctx, filt, (0, 1, 2, 3), "filter")
    c_in, ig = inp.shape[3], filt.shape[3]
    if c_in % ig:
        raise ctx.error(f"input channels {c_in} are not a multiple of the filter's input channels {ig}", filt)
    groups = c_in // ig
    o = filt.shape[0]
    if o % groups:
        raise ctx.error(f"output channels {o} are not a multiple of the {groups} groups", filt)
    ctx.check_dtype(inp, ("float32", "uint8", "int8", "int16"), "input")
    if out.dtype != inp.dtype:
        raise ctx.error(f"output type {out.dtype} differs from input type {inp.dtype}", out)
    want_w = {"float32": "float32", "uint8": "uint8", "int8": "int8", "int16": "int8"}[inp.dtype]
    # float32 input with an int8 filter: the hybrid (dynamic-range quantized) kernels.
    hybrid = inp.dtype == "float32" and filt.dtype == "int8"
    if filt.dtype != want_w and not hybrid:
        if inp.dtype == "int8" and filt.dtype != "int4":
            # LiteRT's int8 Eval fails for any filter type other than int8/int4.
            raise ctx.error(f"filter type {filt.dtype} is not supported for int8 input; expected int8", filt)
        if inp.dtype == "float32" and filt.dtype == "uint8":
            raise ctx.unsupported(
                "hybrid CONV_2D with a uint8 filter (LiteRT reads its bytes as int8 and ignores the zero point; "
                "dynamic-range quantization writes int8 filters)"
            )
        also = " or an int8 filter (hybrid)" if inp.dtype == "float32" else ""
        raise ctx.unsupported(
            f"{inp.dtype} input with a {filt.dtype} filter (refquant supports a {want_w} filter{also}; "
            "int4 convolutions are not implemented)"
        )
    if inp.dtype in ("int8", "int16"):
        q = ctx.require_quant(filt)
        if (q.zero_point != 0).any():
            raise ctx.fail_quant("filter zero points must all be 0 for int8/int16 convolution", filt)
    stride_h = positive_option(ctx, "stride_h")
    stride_w = positive_option(ctx, "stride_w")
    dil_h = positive_option(ctx, "dilation_h_factor")
    dil_w = positive_option(ctx, "dilation_w_factor")
    bias = ctx.inputs[2] if len(ctx.inputs) == 3 else None
    if bias is None:
        raise ctx.error("CONV_2D requires a bias input (LiteRT's conv kernel rejects a conv without bias)")
    if inp.dtype in ("uint8", "int8"):
        if bias.dtype != "int32":
            raise ctx.error(f"bias type {bias.dtype}; expected int32", bias)
        if bias_zero_point(bias) != 0:
            raise ctx.fail_quant("bias zero point must be 0", bias)
    elif inp.dtype == "int16":
        if bias.dtype not in ("int32", "int64"):
            raise ctx.error(f"bias type {bias.dtype}; expected int32 or int64", bias)
        if bias_zero_point(bias) != 0:
            raise ctx.fail_quant("bias zero point must be 0", bias)
    elif bias.dtype != "float32":
        raise ctx.error(f"bias type {bias.dtype}; expected float32", bias)
    if bias.size != o:
        raise ctx.error(f"bias has {bias.size} elements; expected {o} (filter output channels)", bias)
    acc_bits = 32
    if inp.dtype == "int16":
        ctx.require_quant(inp)
        ctx.require_quant(out)
        ctx.require_zero_points(inp, out, why="int16 convolution is symmetric")
        acc_bits = check_int16_bias(ctx, bias)
    geom, out_shape = conv_geometry(ctx, inp, filt, o, stride_h, stride_w, dil_h, dil_w)
    if hybrid:
        return prepare_conv_hybrid(ctx, inp, filt, groups, geom, out_shape)
    if inp.dtype == "float32":
        lo, hi = float_range(ctx)
        return ConvFloatData(
            output_shapes=(out_shape,),
            output_dtypes=("float32",),
            groups=groups,
            act_min=float(lo),
            act_max=float(hi),
            accumulation=ctx.float_accumulation,
            filter_finite=filt.value is not None and bool(np.isfinite(filt.value).all()),
            **geom,
        )
    check_depth(ctx, geom["kernel_h"] * geom["kernel_w"] * ig)
    qs = quant_setup(ctx, inp, filt, bias, out, o, acc_bits)
    fast = fast_setup(
        ctx, inp, out, qs, acc_bits, ctx.rounding, filt.value.reshape(o, -1) if filt.value is not None else None, bias
    )
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
        rounding=ctx.rounding,
        real_multiplier=qs.real,
        out_dtype=out.dtype,
        fast=fast,
        groups=groups,
        **geom,
    )
    fields.update(profile_requant(ctx, inp, filt, out, qs, o))
    return ConvQuantData(**fields)  # type: ignore[arg-type]
