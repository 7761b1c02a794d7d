"""Hybrid convolutions (dynamic-range quantization): float32 activations, int8 filters, all three ops.

Hybrid (dynamic-range quantized) CONV_2D and DEPTHWISE_CONV_2D: float32 input and output, int8 filter
(per-tensor or per-channel), float32 bias (:class:`ConvHybridData`, :class:`DepthwiseHybridData`). Each
batch element is quantized to int8 on the fly with FULLY_CONNECTED's reproductions of the x86 wheel's
tensor_utils (:func:`~refquant.ops.matmul.symmetric_quantize_rows` for the per-tensor CONV_2D
kernel, :func:`~refquant.ops.matmul.asymmetric_quantize_rows` for the per-channel ones and every
depthwise), the exact int32 sums are rescaled in float32 in LiteRT's order of operations, then the bias add
and the clamp: bit for bit with BUILTIN_REF (the class docstrings give each kernel's formula, including
the SSE dot product's -128 quirk). Where LiteRT produces undefined output refquant refuses (a per-tensor
depthwise filter scale with several output channels: LiteRT reads scales past the end of the array; a
uint8 filter, read as int8), and inputs with inf or NaN raise :class:`~refquant.errors.EvalError` (LiteRT's
quantization of non-finite values is not reproduced). int4 hybrid filters are not implemented.
Hybrid TRANSPOSE_CONV (:class:`TransposeConvHybridData`, the converter's dynamic-range Conv2DTranspose):
``reference_ops::HybridTransposeConv``, asymmetric per-batch input quantization and every scattered term
``(q - zp) * w * filter_scale * input_scale`` rounded to float32 and added in the scatter loop's order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import EvalError
from ...fixedpoint import wrap_int, wrap_int32
from ..base import OpContext, OpData, Step, TensorInfo
from ..matmul import asymmetric_quantize_rows, symmetric_quantize_rows
from .common import (
    ConvGeometry,
    TransposeFloatOutput,
    TransposeGeometry,
    check_depth,
    check_element,
    float_range,
)

__all__ = [
    "ConvHybridData",
    "DepthwiseHybridData",
    "TransposeConvHybridData",
    "prepare_conv_hybrid",
    "prepare_depthwise_hybrid",
    "prepare_transpose_conv_hybrid",
]


def _check_finite_input(where: str, x: np.ndarray) -> None:
    """EvalError for inf/NaN inputs: LiteRT's quantization of non-finite values is not reproduced."""
    if not np.isfinite(x).all():
        k = int(np.argmax(~np.isfinite(x).reshape(-1)))
        el = [int(i) for i in np.unravel_index(k, x.shape)]
        raise EvalError(
            f"{where}: input element {el} is {float(x.reshape(-1)[k])}; LiteRT quantizes a hybrid "
            "convolution's float32 input to int8 on the fly, and what its min/max search and float-to-int "
            "conversions make of inf and NaN is not reproduced (refquant needs finite inputs here)"
        )


@dataclass(frozen=True, kw_only=True)
class _HybridConvBase(ConvGeometry, OpData):
    """On-the-fly input quantization, float rescale, bias and clamp shared by the hybrid kernels."""

    #: ``AsymmetricQuantizeFloats`` per batch (the per-channel kernels) instead of ``SymmetricQuantizeFloats``
    #: (the per-tensor CONV_2D kernel). The ops have no ``asymmetric_quantize_inputs`` option: the kernel decides.
    asymmetric: bool
    #: float32 filter scale per output channel, shape (O,) (the per-tensor kernel: O copies of ``scale[0]``).
    filter_scales: np.ndarray
    #: Fused-activation clamp range (float32; NONE, TANH and SIGN_BIT: [-FLT_MAX, FLT_MAX]).
    act_min: float
    act_max: float
    #: Operator and input tensor, for the EvalError of non-finite inputs.
    _where: str = ""

    def _quantize(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each batch element quantized to int8 as the x86 wheel's tensor_utils do (FULLY_CONNECTED's helpers).

        Returns (q int64 (B, H, W, C), scale float32 (B,), zero point int64 (B,), 0 when symmetric).
        """
        x = np.asarray(x, np.float32)
        _check_finite_input(self._where, x)
        quantize_rows = asymmetric_quantize_rows if self.asymmetric else symmetric_quantize_rows
        q, sx, zp = quantize_rows(x.reshape(x.shape[0], -1))
        return q.reshape(x.shape), sx, zp

    def _raw_acc(self, q: np.ndarray, zp: np.ndarray, w: np.ndarray) -> np.ndarray:
        """The int32 accumulators (B, OH, OW, O) of the quantized input, as LiteRT's scratch holds them."""
        raise NotImplementedError

    def _scaled(self, acc: np.ndarray, sx: np.ndarray) -> np.ndarray:
        """float32 (B, OH, OW, O): the accumulators times the filter and input scales, in LiteRT's order."""
        raise NotImplementedError

    def _run(self, inputs: list[np.ndarray | None]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        x, w = inputs[0], inputs[1]
        assert x is not None and w is not None
        q, sx, zp = self._quantize(x)
        return q, sx, zp, self._raw_acc(q, zp, np.asarray(w))

    def _bias(self, inputs: list[np.ndarray | None]) -> np.ndarray | None:
        bias = inputs[2] if len(inputs) > 2 else None
        return None if bias is None else np.asarray(bias, np.float32).reshape(-1)

    def accumulators(self, inputs: list[np.ndarray | None]) -> dict[str, np.ndarray]:
        """``acc`` (int32, output shape, before any float step), the quantized input ``input_q`` (int8, input
        shape) and its per-batch ``input_scale`` (float32 [B], before the filter scale) and ``input_zero_point``
        (int32 [B], 0 for symmetric quantization)."""
        shape = self.output_shapes[0]
        if int(np.prod(shape)) == 0:
            return {"acc": np.zeros(shape, np.int32)}
        q, sx, zp, acc = self._run(inputs)
        return {
            "acc": acc,
            "input_q": q.astype(np.int8),
            "input_scale": sx,
            "input_zero_point": zp.astype(np.int32),
        }

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """Quantize each batch element, integer sums, float rescale, bias add, clamp."""
        shape = self.output_shapes[0]
        if int(np.prod(shape)) == 0:
            return [np.zeros(shape, np.float32)]
        _, sx, _, acc = self._run(inputs)
        out = self._scaled(acc, sx)
        bias = self._bias(inputs)
        if bias is not None:
            out = np.add(out, bias, dtype=np.float32)
        return [np.minimum(np.maximum(out, np.float32(self.act_min)), np.float32(self.act_max))]

    def _trace_head(
        self, inputs: list[np.ndarray | None], element: tuple[int, int, int, int], channels: slice | int
    ) -> tuple[list[Step], np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The quantization steps of one element's batch and its quantized input window."""
        x = inputs[0]
        assert x is not None
        q, sx, zp = self._quantize(x)
        b, oy, ox, _ = element
        vals, mask, pos = self._window(q, b, oy, ox, channels)
        mode = "asymmetric (AsymmetricQuantizeFloats)" if self.asymmetric else "symmetric (SymmetricQuantizeFloats)"
        steps = [
            Step("input scale", sx[b], f"{mode} int8 quantization of batch element {b}: its float32 scale"),
            Step(
                "input zero point",
                int(zp[b]),
                "subtracted from every q" if self.asymmetric else "0 (symmetric quantization)",
            ),
            Step("window", vals.astype(np.int8), f"quantized input[{b}, iy, ix, {_channels_text(channels)}] per tap"),
            Step("positions", pos, "(iy, ix) of each (ky, kx) tap; out-of-image window entries show 0"),
            Step("in image", mask, "taps outside the image are skipped"),
        ]
        return steps, vals, mask, sx, zp, q

    def _trace_tail(self, steps: list[Step], inputs: list[np.ndarray | None], oc: int, scaled: np.float32) -> None:
        """Bias add and clamp: the last step's value is the output element."""
        bias = self._bias(inputs)
        total = scaled
        if bias is not None:
            total = np.float32(scaled + bias[oc])
            steps.append(Step("bias", bias[oc], f"bias[{oc}]"))
            steps.append(Step("scaled + bias", total, "f32(scaled + bias)"))
        else:
            steps.append(Step("bias", None, "no bias tensor"))
        lo, hi = np.float32(self.act_min), np.float32(self.act_max)
        steps.append(Step("clamp", np.float32(min(max(total, lo), hi)), f"clamp to [{lo}, {hi}] -> output value"))


def _channels_text(channels: slice | int) -> str:
    return f"{channels.start}:{channels.stop}" if isinstance(channels, slice) else str(channels)


@dataclass(frozen=True, kw_only=True)
class ConvHybridData(_HybridConvBase):
    """Prepared hybrid CONV_2D: float32 input and output, int8 filter, float32 bias (``conv.cc`` EvalHybrid /
    EvalHybridPerChannel as the ai-edge-litert x86 wheel runs them under BUILTIN_REF).

    Per-tensor kernel (one distinct filter scale, no groups; ``optimized_ops::HybridConv`` even under
    kReference)::

        q, s_x[b]   = SymmetricQuantizeFloats(x[b])                      (zero point 0, |q| <= 127)
        acc         = int32 sum over in-image taps of q * w              (im2col, zero padding)
        sf[b]       = f32(s_x[b] * s_w)
        out         = clamp(f32(f32(0 + f32(f32(acc) * sf[b])) + bias[oc]))

    Per-channel kernel (filter scales that differ, or groups > 1; ``reference_ops::HybridConvPerChannel``)::

        q, s_x[b], zp[b] = AsymmetricQuantizeFloats(x[b])
        acc         = int32 sum over in-image taps of (q - zp[b]) * w    (skipped taps add nothing)
        out         = clamp(f32(f32(f32(f32(acc) * s_w[oc]) * s_x[b]) + bias[oc]))

    The per-tensor kernel's int8 dot product (``SseMatrixBatchVectorMultiplyAccumulateImpl``) runs when the
    output channels are not a multiple of 4 (else ruy's exact GEMM runs, on a CPU with AVX): its
    ``_mm_sign_epi8`` moves the input's sign onto the filter value, and ``-(-128)`` wraps to -128, so in the
    first ``K & ~15`` columns of each im2col row a filter value -128 times a negative ``q`` adds ``-128*|q|``
    instead of ``+128*|q|`` (``sign_quirk``; ``K = KH*KW*Ig``).
    """

    #: Number of groups: input channels / filter input channels (> 1 runs the per-channel kernel).
    groups: int
    #: The per-tensor kernel's SSE dot product runs (output channels not a multiple of 4): filter values -128
    #: in the first ``K & ~15`` columns meet the ``_mm_sign_epi8`` wrap described in the class docstring.
    sign_quirk: bool = False

    def scratch_bytes(self, input_shapes: list[tuple[int, ...]]) -> int:
        """The quantized input copies and the zero-padded float64 input of the im2col sums."""
        b, h, w, c = input_shapes[0]
        _, oh, ow, _ = self.output_shapes[0]
        hp = max((oh - 1) * self.stride_h + (self.kernel_h - 1) * self.dilation_h + 1, self.pad_h + h)
        wp = max((ow - 1) * self.stride_w + (self.kernel_w - 1) * self.dilation_w + 1, self.pad_w + w)
        return b * hp * wp * c * 8 * (2 if self.sign_quirk else 1) + b * h * w * c * 16

    def _raw_acc(self, q: np.ndarray, zp: np.ndarray, w: np.ndarray) -> np.ndarray:
        out_shape = self.output_shapes[0]
        wf = w.astype(np.float64)
        # Exact: |q - zp| <= 255 and |w| <= 128, fewer than 2^30 products per sum (check_depth).
        offset = -zp.reshape(-1, 1, 1, 1) if self.asymmetric else 0
        acc = self._im2col_sums(q, offset, wf, out_shape, self.groups)
        if self.sign_quirk:
            k = w[0].size
            quirk = (w.reshape(w.shape[0], k) == -128) & (np.arange(k) < (k & ~15))
            if quirk.any():
                # 256 * q where a negative q meets a -128 tap in the SSE-summed columns (see the class docstring).
                wq = quirk.reshape(w.shape).astype(np.float64)
                acc += 256 * self._im2col_sums(np.minimum(q, 0), 0, wq, out_shape, 1)
        return wrap_int32(acc)

    def _scaled(self, acc: np.ndarray, sx: np.ndarray) -> np.ndarray:
        accf = acc.astype(np.float32)
        if self.asymmetric:
            t = np.multiply(accf, self.filter_scales, dtype=np.float32)
            return np.multiply(t, sx.reshape(-1, 1, 1, 1), dtype=np.float32)
        sf = np.multiply(sx, self.filter_scales[0], dtype=np.float32)  # scaling_factors_ptr[b] *= scale
        t = np.multiply(accf, sf.reshape(-1, 1, 1, 1), dtype=np.float32)
        return np.add(np.float32(0), t, dtype=np.float32)  # the GEMM adds onto an output zero-filled with 0.0f

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """Quantization of the batch element, window, taps, int32 sum, the float steps and the clamp."""
        w = inputs[1]
        assert w is not None
        b, oy, ox, oc = el = check_element(self, output, element)
        ig = w.shape[3]
        grp = oc // (self.output_shapes[0][3] // self.groups)
        steps, vals, mask, sx, zp, _ = self._trace_head(inputs, el, slice(grp * ig, (grp + 1) * ig))
        taps = np.asarray(w[oc]).astype(np.int64)
        steps.append(Step("taps", taps, f"filter[{oc}, ky, kx, ic] (int8; the filter zero point is ignored)"))
        z = int(zp[b])
        total = 0
        quirk = 0
        k16 = taps.size & ~15
        for ky in range(self.kernel_h):
            for kx in range(self.kernel_w):
                if mask[ky, kx]:
                    for ic in range(ig):
                        qv, wv = int(vals[ky, kx, ic]), int(taps[ky, kx, ic])
                        total += (qv - z) * wv
                        if self.sign_quirk and wv == -128 and qv < 0 and (ky * self.kernel_w + kx) * ig + ic < k16:
                            quirk += 256 * qv
        what = "(q - input zero point) * w" if self.asymmetric else "q * w"
        steps.append(Step("sum", total, f"sum over in-image taps of {what}"))
        if self.sign_quirk:
            steps.append(Step("sign quirk", quirk, "SSE _mm_sign_epi8: +256*q per -128 tap meeting a negative q"))
        acc = wrap_int(total + quirk, 32)
        steps.append(Step("acc", acc, "int32 accumulator" + (" (wrapped)" if acc != total + quirk else "")))
        accf = np.float32(acc)
        if self.asymmetric:
            s_w = np.float32(self.filter_scales[oc])
            t = np.float32(accf * s_w)
            steps.append(Step("filter scale", s_w, f"per-channel filter scale[{oc}]"))
            steps.append(Step("scaled by filter", t, "f32(f32(acc) * filter scale)"))
            scaled = np.float32(t * sx[b])
            steps.append(Step("scaled", scaled, "f32(. * input scale)"))
        else:
            sf = np.float32(sx[b] * self.filter_scales[0])
            steps.append(Step("scaling factor", sf, "f32(input scale * filter scale)"))
            scaled = np.float32(np.float32(0) + np.float32(accf * sf))
            steps.append(Step("scaled", scaled, "0.0f + f32(f32(acc) * scaling factor)"))
        self._trace_tail(steps, inputs, oc, scaled)
        return steps


@dataclass(frozen=True, kw_only=True)
class DepthwiseHybridData(_HybridConvBase):
    """Prepared hybrid DEPTHWISE_CONV_2D: float32 input and output, int8 filter, optional float32 bias
    (``depthwise_conv.cc`` EvalHybridPerChannel, ``reference_integer_ops::DepthwiseConvHybridPerChannel``)::

        q, s_x[b], zp[b] = AsymmetricQuantizeFloats(x[b])                (always asymmetric)
        acc = int32 sum over in-image taps of (q[b, iy, ix, oc // dm] - zp[b]) * w[0, ky, kx, oc]
        out = clamp(f32(f32(f32(acc) * f32(s_w[oc] * s_x[b])) + bias[oc]))   (no bias: no add)
    """

    #: Depth multiplier: output channels / input channels (from the shapes; the option is ignored).
    depth_multiplier: int

    def scratch_bytes(self, input_shapes: list[tuple[int, ...]]) -> int:
        """The quantized input copies (int64 and the channel-repeated int32 offset values)."""
        b, h, w, c = input_shapes[0]
        return b * h * w * c * (16 + 4 * self.depth_multiplier)

    def _raw_acc(self, q: np.ndarray, zp: np.ndarray, w: np.ndarray) -> np.ndarray:
        # int32 like the C accumulator (wraps modulo 2^32): each product |q - zp| * |w| <= 255 * 128.
        xo = (q - zp.reshape(-1, 1, 1, 1)).astype(np.int32)
        if self.depth_multiplier > 1:
            xo = np.repeat(xo, self.depth_multiplier, axis=3)
        acc = np.zeros(self.output_shapes[0], np.int32)
        self._tap_sums(xo, w[0].astype(np.int32), acc)
        return acc

    def _scaled(self, acc: np.ndarray, sx: np.ndarray) -> np.ndarray:
        scale = np.multiply(self.filter_scales, sx.reshape(-1, 1), dtype=np.float32)  # (B, O)
        return np.multiply(acc.astype(np.float32), scale[:, None, None, :], dtype=np.float32)

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """Quantization of the batch element, window, taps, int32 sum, the float steps and the clamp."""
        w = inputs[1]
        assert w is not None
        b, oy, ox, oc = el = check_element(self, output, element)
        ic = oc // self.depth_multiplier
        steps, vals, mask, sx, zp, _ = self._trace_head(inputs, el, ic)
        taps = np.asarray(w[0, :, :, oc]).astype(np.int64)
        steps.append(Step("taps", taps, f"filter[0, ky, kx, {oc}] (int8; the filter zero point is ignored)"))
        z = int(zp[b])
        total = sum(
            (int(vals[ky, kx]) - z) * int(taps[ky, kx])
            for ky in range(self.kernel_h)
            for kx in range(self.kernel_w)
            if mask[ky, kx]
        )
        steps.append(Step("sum", total, "sum over in-image taps of (q - input zero point) * w"))
        acc = wrap_int(total, 32)
        steps.append(Step("acc", acc, "int32 accumulator" + (" (wrapped)" if acc != total else "")))
        scale = np.float32(self.filter_scales[oc] * sx[b])
        steps.append(Step("scale", scale, f"f32(filter scale[{oc}] * input scale)"))
        scaled = np.float32(np.float32(acc) * scale)
        steps.append(Step("scaled", scaled, "f32(f32(acc) * scale)"))
        self._trace_tail(steps, inputs, oc, scaled)
        return steps


def prepare_conv_hybrid(
    ctx: OpContext,
    inp: TensorInfo,
    filt: TensorInfo,
    groups: int,
    geom: dict[str, int],
    out_shape: tuple[int, int, int, int],
) -> OpData:
    """Hybrid CONV_2D: which kernel runs (``conv.cc`` Prepare/EvalImpl) and what LiteRT rejects."""
    check_depth(ctx, geom["kernel_h"] * geom["kernel_w"] * filt.shape[3])
    q = ctx.require_quant(filt)
    scales = np.asarray(q.scale, np.float32)
    o = filt.shape[0]
    # LiteRT runs EvalHybridPerChannel when the filter scales are not all equal, and for any grouped
    # convolution (the per-tensor kernel has no groups); both then need scales along dimension 0.
    per_channel = groups != 1 or bool((scales != scales[0]).any())
    if per_channel:
        why = f"grouped ({groups} groups)" if groups != 1 else "per-channel (scales that differ)"
        if q.quantized_dimension != 0:
            raise ctx.fail_quant(
                f"{why} hybrid convolution with filter scales along dimension {q.quantized_dimension}; LiteRT "
                "requires quantized_dimension 0 (output channels)",
                filt,
            )
        if scales.size != o:
            raise ctx.fail_quant(
                f"{why} hybrid convolution with {scales.size} filter scale(s) for {o} output channels; LiteRT "
                "requires one scale per output channel",
                filt,
            )
        filter_scales = scales
    else:
        filter_scales = np.full(o, scales[0], np.float32)
    lo, hi = float_range(ctx)
    return ConvHybridData(
        output_shapes=(out_shape,),
        output_dtypes=("float32",),
        asymmetric=per_channel,
        filter_scales=filter_scales,
        act_min=float(lo),
        act_max=float(hi),
        groups=groups,
        sign_quirk=not per_channel and o % 4 != 0,
        _where=f"{ctx.where()}, {inp.describe()}",
        **geom,
    )


def prepare_depthwise_hybrid(
    ctx: OpContext, inp: TensorInfo, filt: TensorInfo, dm: int, geom: dict[str, int], out_shape: tuple[int, ...]
) -> OpData:
    """Hybrid DEPTHWISE_CONV_2D: the filter scale checks of ``depthwise_conv.cc`` Prepare, and what refquant refuses."""
    q = ctx.require_quant(filt)
    scales = np.asarray(q.scale, np.float32)
    o = filt.shape[3]
    qd = q.quantized_dimension
    if scales.size != o:
        if scales.size == 1 and filt.shape[qd] != 1:
            raise ctx.fail_quant(
                f"1 filter scale but filter dimension {qd} (quantized_dimension) has size {filt.shape[qd]}; "
                "LiteRT's hybrid depthwise Prepare requires as many scales as that dimension",
                filt,
            )
        what = "past the end of the scale array (undefined output)" if scales.size < o else "a prefix of them"
        raise ctx.unsupported(
            f"hybrid DEPTHWISE_CONV_2D with {scales.size} filter scale(s) along dimension {qd} for {o} output "
            f"channels: LiteRT's kernel reads one scale per output channel, {what}"
        )
    lo, hi = float_range(ctx)
    return DepthwiseHybridData(
        output_shapes=(out_shape,),
        output_dtypes=("float32",),
        asymmetric=True,
        filter_scales=scales,
        act_min=float(lo),
        act_max=float(hi),
        depth_multiplier=dm,
        _where=f"{ctx.where()}, {inp.describe()}",
        **geom,
    )


@dataclass(frozen=True, kw_only=True)
class TransposeConvHybridData(TransposeGeometry, TransposeFloatOutput):
    """Prepared hybrid TRANSPOSE_CONV: float32 input and output, int8 weights, float32 bias
    (``transpose_conv.cc`` EvalHybrid, ``reference_ops::HybridTransposeConv``).

    Each batch element is quantized with ``AsymmetricQuantizeFloats``; every (input, tap, channel) term
    ``f32(f32(f32((q - zp) * w) * filter_scale[oc]) * input_scale)`` is added to the float32 output in the
    scatter loop's order (iy, ix, ic ascending per output element), then bias and clamp.
    """

    #: float32 filter scale per output channel, shape (O,) (per-tensor weights: O copies of ``scale[0]``).
    filter_scales: np.ndarray
    #: Fused-activation clamp range (float32).
    act_min: float
    act_max: float

    def _total(self, inputs: list[np.ndarray | None]) -> np.ndarray:
        w, x = inputs[1], inputs[2]
        assert x is not None and w is not None
        out_shape = self.output_shapes[0]
        total = np.zeros(out_shape, np.float32)
        if total.size == 0:
            return total
        x = np.asarray(x, np.float32)
        _check_finite_input("TRANSPOSE_CONV (hybrid)", x)
        q, sx, zp = asymmetric_quantize_rows(x.reshape(x.shape[0], -1))
        qc = (q.reshape(x.shape).astype(np.int64) - np.asarray(zp, np.int64).reshape(-1, 1, 1, 1)).astype(np.float32)
        w = np.asarray(w).astype(np.float32)
        sx = np.asarray(sx, np.float32).reshape(-1, 1, 1, 1)
        oh, ow = out_shape[1], out_shape[2]
        h, wd, c = x.shape[1], x.shape[2], x.shape[3]
        # Per output element the terms come in (iy, ix, ic) order: (ky desc, kx desc, ic asc) globally.
        for ky in reversed(range(self.kernel_h)):
            for kx in reversed(range(self.kernel_w)):
                sl = self._tap_slices((oh, ow), (h, wd), ky, kx)
                if sl is None:
                    continue
                iy, ix, oy, ox = sl
                xs = qc[:, iy, ix, :]
                tv = total[:, oy, ox, :]
                for ic in range(c):
                    term = np.multiply(xs[..., ic : ic + 1], w[:, ky, kx, ic], dtype=np.float32)
                    term = np.multiply(term, self.filter_scales, dtype=np.float32)
                    term = np.multiply(term, sx, dtype=np.float32)
                    np.add(tv, term, out=tv)
        return total

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """The accumulated float32 value and the clamped output of one element."""
        b, oy, ox, oc = check_element(self, output, element)
        acc = self.accumulators(inputs)["acc"]
        v = np.float32(acc[b, oy, ox, oc])
        lo, hi = np.float32(self.act_min), np.float32(self.act_max)
        return [
            Step("acc", v, "scattered f32 terms (q - zp) * w * filter_scale * input_scale, + bias"),
            Step("clamp", np.float32(min(max(v, lo), hi)), f"clamp to [{lo}, {hi}] -> output value"),
        ]


def _hybrid_transpose_scales(ctx: OpContext, filt: TensorInfo) -> np.ndarray:
    """transpose_conv.cc Prepare (hybrid): 1 scale (copied per channel) or one per output channel."""
    q = ctx.require_quant(filt)
    qd = q.quantized_dimension
    if not 0 <= qd < len(filt.shape):
        raise ctx.fail_quant(f"quantized_dimension {qd} out of range", filt)
    channels = filt.shape[qd]
    if q.scale.size == channels and channels != 1:
        if qd != 0 and channels != filt.shape[0]:
            raise ctx.fail_quant(
                f"per-channel scales along dimension {qd} ({channels}) but {filt.shape[0]} output channels: "
                "LiteRT's kernel would read scales past the end of the array",
                filt,
            )
        return np.asarray(q.scale, np.float32)
    if q.scale.size != 1:
        raise ctx.fail_quant(f"weights have {q.scale.size} scales; expected 1 or {channels}", filt)
    return np.full(filt.shape[0], q.scale[0], np.float32)


def prepare_transpose_conv_hybrid(
    ctx: OpContext, filt: TensorInfo, oshape: tuple[int, ...], geom: dict[str, int]
) -> OpData:
    """Hybrid TRANSPOSE_CONV (float32 input, int8 weights), once ``transpose_conv.cc`` Prepare's shape checks passed."""
    lo, hi = float_range(ctx)
    return TransposeConvHybridData(
        output_shapes=(oshape,),
        output_dtypes=("float32",),
        filter_scales=_hybrid_transpose_scales(ctx, filt),
        act_min=float(lo),
        act_max=float(hi),
        **geom,
    )
