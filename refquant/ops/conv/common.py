"""What CONV_2D, DEPTHWISE_CONV_2D and TRANSPOSE_CONV share: prepare checks, geometry, requantization.

* prepare: output size and padding (padding.h), options, ranks, the bias and filter-scale checks, the
  multipliers and activation range (:func:`quant_setup`) and the fast paths' constants (:func:`fast_setup`);
* :class:`QuantConvBase`: the accumulator, the fixed-point requantization and the per-element trace of the
  quantized kernels, and the fast paths' finishing steps (:mod:`refquant.requantize`);
* :class:`ConvGeometry` (CONV_2D, DEPTHWISE_CONV_2D and their hybrid forms): one output's window, the exact
  im2col sums, the depthwise tap sums and the tap blocks of the float kernels; :class:`TransposeGeometry`:
  the taps of a transposed convolution;
* the float32 ends: :func:`float_epilogue` (bias add and clamp per cached block) and
  :class:`TransposeFloatOutput`.

Integer arithmetic (docs/litert_semantics.md §3.0-§3.2, §3.5)::

    acc[b, oy, ox, oc] = sum over in-image taps of (w + filter_offset) * (x + input_offset)  + bias[oc]
    out = clamp(MBQM(acc, M[oc], shift[oc]) + output_offset, act_min, act_max)

with ``input_offset = -zp_in``; ``filter_offset = -zp_w`` for uint8 only (0 otherwise); ``M, shift`` from
``QuantizeMultiplier(f64(s_in) * f64(s_w[oc]) / f64(s_out))`` (uint8: ``f64(f32(s_in * s_w)) / f64(s_out)``,
the legacy per-tensor multiplier). The accumulator is int32 (wrapping) and requantized with the int32
``MultiplyByQuantizedMultiplier``, except for int16x8 with a 64-bit accumulator, which uses the int64
overload (MBQM64). The int32 MBQM follows ``ctx.rounding`` (a TFLITE_SINGLE_ROUNDING build), except
for uint8 DEPTHWISE_CONV_2D, whose ``DepthwiseConvRound<kAwayFromZero>`` is the double-rounding form in
both builds. Out-of-image taps are skipped by the kernels; because ``x + input_offset`` is 0 at
``x = zp_in``, padding the input with its zero point and summing every tap gives the same value.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ...errors import UnsupportedOpError
from ...fixedpoint import INT32_MAX, wrap_int, wrap_int32
from ...quantization import (
    calculate_activation_range_float,
    calculate_activation_range_quantized,
    quantize_multiplier,
    quantize_multiplier_array,
)
from ...requantize import (
    FoldedRequant,
    fp32_rne_requant,
    fp32_rne_steps,
    mbqm64_steps,
    mbqm_double_rounding,
    mbqm_steps,
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_int64,
    neon_mbqm,
    neon_mbqm_steps,
    prepare_folded_requant,
    requant_block,
    requant_sums,
    xnnpack_output_bound,
    xnnpack_requant_scale,
)
from ..base import OpContext, OpData, Step, TensorInfo

#: Fused activations the kernels accept. TANH and SIGN_BIT are accepted by LiteRT's conv kernels and
#: mean "no clamp" there (CalculateActivationRange[Quantized] falls through to the full range).
_ACTIVATIONS = ("NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH", "SIGN_BIT")
#: Largest reduction depth for which the float64 BLAS sums are provably exact (see check_depth).
_MAX_EXACT_DEPTH = 2**30
#: im2col block size, in float64 elements (64 MiB): bigger convolutions are computed in row blocks.
_IM2COL_BLOCK = 1 << 23
#: Use the exact float64 fast paths where prepare proved them exact (tests switch this off to compare).
FAST_PATHS = True


# ---------------------------------------------------------------------------------------------
# Shared prepare helpers


def _c_div(a: int, b: int) -> int:
    """C integer division (truncates toward zero) for b > 0."""
    q = abs(a) // b
    return q if a >= 0 else -q


def conv_output_size(ctx: OpContext, padding: Any, image: int, k: int, stride: int, dilation: int, axis: str) -> int:
    """``ComputeOutSizeChecked`` (padding.h): the output size, or a PrepareError where LiteRT fails."""
    if padding not in ("SAME", "VALID"):
        raise ctx.error(f"padding {padding!r} is not supported; expected SAME or VALID")
    eff = (k - 1) * dilation + 1
    if padding == "SAME":
        value = _c_div(image + stride - 1, stride)
    else:
        value = _c_div(image + stride - eff, stride)
    if value < 0:
        raise ctx.error(
            f"VALID padding: the effective filter {axis} {eff} (kernel {k}, dilation {dilation}) exceeds the "
            f"input {axis} {image}, giving a negative output size"
        )
    if value > INT32_MAX:
        raise ctx.error(f"output {axis} {value} does not fit int32")
    return value


def padding_before(stride: int, dilation: int, image: int, k: int, out: int) -> int:
    """``ComputePaddingWithOffsetChecked``: padding before (top/left); the odd extra pixel goes after."""
    eff = (k - 1) * dilation + 1
    total = max(0, (out - 1) * stride + eff - image)
    return total // 2


def conv_geometry(
    ctx: OpContext, inp: TensorInfo, filt: TensorInfo, o: int, stride_h: int, stride_w: int, dil_h: int, dil_w: int
) -> tuple[dict[str, int], tuple[int, int, int, int]]:
    """The ``ConvGeometry`` fields and output shape of CONV_2D / DEPTHWISE_CONV_2D (padding.h rules)."""
    padding = ctx.option("padding", "SAME")
    bsz, h, w = inp.shape[0], inp.shape[1], inp.shape[2]
    kh, kw = filt.shape[1], filt.shape[2]
    ow = conv_output_size(ctx, padding, w, kw, stride_w, dil_w, "width")
    oh = conv_output_size(ctx, padding, h, kh, stride_h, dil_h, "height")
    geom = dict(
        stride_h=stride_h,
        stride_w=stride_w,
        dilation_h=dil_h,
        dilation_w=dil_w,
        pad_h=padding_before(stride_h, dil_h, h, kh, oh),
        pad_w=padding_before(stride_w, dil_w, w, kw, ow),
        kernel_h=kh,
        kernel_w=kw,
    )
    return geom, (bsz, oh, ow, o)


def _activation(ctx: OpContext) -> str:
    act = ctx.option("fused_activation_function", "NONE")
    if act not in _ACTIVATIONS:
        raise ctx.unsupported(f"fused activation {act!r} (expected one of {', '.join(_ACTIVATIONS)})")
    return str(act)


def positive_option(ctx: OpContext, name: str, upper: int | None = None) -> int:
    """Integer option ``name``, which must be > 0 (and <= ``upper`` when given); else a PrepareError."""
    v = ctx.option(name, 0)
    if not isinstance(v, (int, np.integer)) or v <= 0 or (upper is not None and v > upper):
        bound = f" and <= {upper}" if upper is not None else ""
        raise ctx.error(f"option {name} = {v!r}; expected an integer > 0{bound}")
    return int(v)


def require_rank(ctx: OpContext, t: TensorInfo, rank: int, role: str) -> None:
    """PrepareError unless tensor ``t`` (the operator's ``role``, e.g. "input") has rank ``rank``."""
    if len(t.shape) != rank:
        raise ctx.error(f"{role} must have rank {rank}, got shape {list(t.shape)}", t)


def require_positive_dims(ctx: OpContext, t: TensorInfo, dims: tuple[int, ...], role: str) -> None:
    """PrepareError unless every dimension in ``dims`` of tensor ``t`` is > 0."""
    for d in dims:
        if t.shape[d] <= 0:
            raise ctx.error(f"{role} dimension {d} is {t.shape[d]}; expected > 0", t)


def check_depth(ctx: OpContext, depth: int) -> None:
    """Guard of the float64 BLAS exactness argument.

    Every product is below 2^23 in magnitude (int8: |x - zp| <= 255, |w| <= 128, product < 2^15; uint8:
    |x - zp|, |w - zp| <= 255, product < 2^16; int16x8: |x| <= 2^15, |w| <= 2^7, product <= 2^22), so a sum
    of fewer than 2^30 products stays below 2^52 and every partial sum is an exact float64 integer.
    """
    if depth >= _MAX_EXACT_DEPTH:
        raise ctx.unsupported(f"a reduction over {depth} products per output (refquant's exact float64 bound is 2^30)")


def bias_zero_point(t: TensorInfo) -> int:
    """The zero point of bias tensor ``t`` (the quantized kernels require 0)."""
    return t.zero_point


def _filter_scales(ctx: OpContext, inp: TensorInfo, filt: TensorInfo, channels: int) -> np.ndarray:
    """PopulateConvolutionQuantizationParams' scale checks; returns the float32 filter scale per channel."""
    q = ctx.require_quant(filt)
    n = q.scale.size
    if n not in (1, channels):
        raise ctx.fail_quant(f"filter has {n} scales; expected 1 or {channels} (one per output channel)", filt)
    if n > 1:
        if inp.dtype not in ("int8", "int16"):
            raise ctx.fail_quant(f"per-channel filter quantization needs an int8 or int16 input, not {inp.dtype}", filt)
        qd = q.quantized_dimension
        if not 0 <= qd < len(filt.shape) or filt.shape[qd] != channels:
            raise ctx.fail_quant(
                f"per-channel quantized_dimension {qd} has size "
                f"{filt.shape[qd] if 0 <= qd < len(filt.shape) else 'n/a'}; expected {channels} channels",
                filt,
            )
        return np.asarray(q.scale, np.float32)
    return np.full(channels, q.scale[0], np.float32)


@dataclass(frozen=True)
class QuantSetup:
    """Per-channel multipliers and shifts, activation range and real multipliers (from :func:`quant_setup`)."""

    multiplier: np.ndarray
    shift: np.ndarray
    act_min: int
    act_max: int
    real: np.ndarray


def quant_setup(
    ctx: OpContext,
    inp: TensorInfo,
    filt: TensorInfo,
    bias: TensorInfo | None,
    out: TensorInfo,
    channels: int,
    acc_bits: int,
) -> QuantSetup:
    """Multipliers, shifts and activation range, as PopulateConvolutionQuantizationParams computes them."""
    ctx.require_quant(inp)
    ctx.require_quant(out)
    scales = _filter_scales(ctx, inp, filt, channels)
    s_in = np.float32(inp.scale)
    s_out = np.float32(out.scale)
    if inp.dtype == "uint8":
        # Legacy per-tensor path (GetQuantizedConvolutionMultipler): the scale product is a float32
        # product, and a bias scale must be within 2% of an output step of s_in * s_w.
        s_w = np.float32(scales[0])
        if bias is not None:
            s_bias = float(bias.quant.scale[0]) if bias.quant is not None and bias.quant.scale.size else 0.0
            diff = abs(float(s_in) * float(s_w) - s_bias)
            if not diff / float(s_out) <= 0.02:
                raise ctx.fail_quant(
                    f"bias scale {s_bias!r} differs from input scale * filter scale = {float(s_in) * float(s_w)!r} "
                    f"by {diff / float(s_out):.4g} output steps; LiteRT requires at most 0.02",
                    bias,
                )
        real_t = float(np.float32(s_in * s_w)) / float(s_out)
        m, sh = quantize_multiplier(real_t, ctx.rounding)  # type: ignore[arg-type]
        real = np.full(channels, real_t)
        mult = np.full(channels, m, np.int32)
        shift = np.full(channels, sh, np.int32)
    else:
        real = float(s_in) * scales.astype(np.float64) / float(s_out)
        mult, shift = quantize_multiplier_array(real, ctx.rounding)  # type: ignore[arg-type]
    if acc_bits == 64 and (shift.min() < -31 or shift.max() > 14):
        k = int(np.argmax((shift < -31) | (shift > 14)))
        raise ctx.unsupported(
            f"effective multiplier {real[k]!r} of channel {k} (shift {int(shift[k])}) is outside the range "
            "of LiteRT's 64-bit MultiplyByQuantizedMultiplier (shift in [-31, 14])"
        )
    lo, hi = calculate_activation_range_quantized(_activation(ctx), out.scale, out.zero_point, out.np_dtype)
    return QuantSetup(np.asarray(mult, np.int32), np.asarray(shift, np.int32), lo, hi, np.asarray(real))


def profile_requant(
    ctx: OpContext,
    inp: TensorInfo,
    filt: TensorInfo,
    out: TensorInfo,
    qs: QuantSetup,
    channels: int,
    flat_size: int | None = None,
) -> dict[str, Any]:
    """The OpData fields of the arithmetic profile's rescaling (:mod:`refquant.arithmetic`), from ``ctx.arithmetic``.

    "reference": none beyond the decision. "neon_mbqm": ``neon_channels`` (every channel, or the first
    ``blocks * floor(channels / blocks)`` for a kernel whose SIMD loop covers blocks of ``blocks`` output
    channels and whose scalar tail runs the reference MBQM), or with ``flat_size`` (the output's element
    count, for a kernel whose SIMD loop runs over the flat output) ``neon_elements``, the first
    ``blocks * floor(flat_size / blocks)`` flat elements; the multipliers stay QuantizeMultiplier's
    (the optimized kernels' Prepare computes the same ones). "fp32_rne": XNNPACK's float32 scale per
    channel and its fused-activation bounds (:func:`refquant.requantize.xnnpack_output_bound`), which
    replace ``act_min`` / ``act_max``. The fast (folded MBQM) path is for the reference rounding only.
    """
    arith = ctx.arithmetic
    fields: dict[str, Any] = {"arithmetic": arith}
    if arith.rescale == "reference":
        return fields
    if inp.dtype not in ("int8", "uint8"):
        raise ctx.unsupported(f"rescaling {arith.rescale!r} for {inp.dtype} activations")
    fields["rescale"] = arith.rescale
    fields["fast"] = None
    if arith.rescale == "neon_mbqm":
        b = arith.blocks
        if flat_size is not None:
            fields["neon_elements"] = flat_size if not b else b * (flat_size // b)
        else:
            fields["neon_channels"] = channels if not b else b * (channels // b)
        return fields
    if arith.rescale == "fp32_rne":
        q = ctx.require_quant(filt)
        s_w = np.asarray(q.scale, np.float32)
        if s_w.size == 1:
            s_w = np.full(channels, s_w[0], np.float32)
        fields["xnn_scale"] = xnnpack_requant_scale(np.float32(inp.scale), s_w, np.float32(out.scale))
        info = np.iinfo(out.np_dtype)
        lo, hi = _xnnpack_activation(_activation(ctx))
        fields["act_min"] = xnnpack_output_bound(lo, out.scale, out.zero_point, int(info.min), int(info.max))
        fields["act_max"] = xnnpack_output_bound(hi, out.scale, out.zero_point, int(info.min), int(info.max))
        return fields
    raise ctx.unsupported(f"rescaling {arith.rescale!r} is not implemented by this kernel")


def _xnnpack_activation(act: str) -> tuple[float, float]:
    """The float output range the XNNPACK delegate gives a fused activation (ConvertActivationToOutputRange)."""
    inf = float("inf")
    return {"NONE": (-inf, inf), "RELU": (0.0, inf), "RELU_N1_TO_1": (-1.0, 1.0), "RELU6": (0.0, 6.0)}[act]


def fast_setup(
    ctx: OpContext,
    inp: TensorInfo,
    out: TensorInfo,
    qs: QuantSetup,
    acc_bits: int,
    rounding: str,
    weights: np.ndarray | None,
    bias: TensorInfo | None,
) -> FoldedRequant | None:
    """The fast path's per-channel constants (None: the literal kernel runs), from constant filter and bias."""
    if bias is not None and bias.value is None:
        return None
    input_offset = -inp.zero_point if inp.dtype != "int16" else 0
    filter_offset = -ctx.inputs[1].zero_point if inp.dtype == "uint8" else 0  # type: ignore[union-attr]
    return prepare_folded_requant(
        multiplier=qs.multiplier,
        shift=qs.shift,
        kind="mbqm64" if acc_bits == 64 else rounding,
        weights=weights,
        bias=None if bias is None else bias.value,
        input_offset=input_offset,
        filter_offset=filter_offset,
        x_max_abs={"int8": 128, "uint8": 255, "int16": 32768}[inp.dtype],
        output_offset=out.zero_point if inp.dtype != "int16" else 0,
        act_min=qs.act_min,
        act_max=qs.act_max,
        out_dtype=out.dtype,
    )


def check_int16_bias(ctx: OpContext, bias: TensorInfo | None) -> int:
    """int16x8 CONV/TRANSPOSE_CONV accumulator width from ``quantized_bias_type`` (docs/litert_semantics.md §2.3)."""
    qbt = ctx.option("quantized_bias_type", "FLOAT32")
    if qbt == "FLOAT32":
        if bias is not None and bias.dtype == "int32":
            raise ctx.unsupported(
                "int16 activations with an int32 bias need the option quantized_bias_type = INT32; without it "
                "LiteRT reads the int32 bias buffer as int64 and produces garbage"
            )
        return 64
    if qbt not in ("INT32", "INT64"):
        raise ctx.error(f"quantized_bias_type {qbt!r} is not valid for int16 activations; expected INT32 or INT64")
    if bias is not None and bias.dtype != qbt.lower():
        raise ctx.error(f"bias type {bias.dtype} does not match quantized_bias_type {qbt}", bias)
    return 32 if qbt == "INT32" else 64


def float_range(ctx: OpContext) -> tuple[np.float32, np.float32]:
    """float32 clamp range of the fused activation (NONE, TANH and SIGN_BIT: the full float range)."""
    return calculate_activation_range_float(_activation(ctx))


def _tap_range(out_size: int, in_size: int, stride: int, offset: int) -> tuple[int, int, int]:
    """Outputs ``o`` in ``[o0, o1)`` read input ``o * stride + offset`` inside ``[0, in_size)``: (o0, o1, i0)."""
    o0 = max(0, -(offset // stride))  # ceil(-offset / stride)
    o1 = min(out_size, (in_size - 1 - offset) // stride + 1)
    if o1 <= o0:
        return 0, 0, 0
    return o0, o1, o0 * stride + offset


def check_element(data: OpData, output: int, element: tuple[int, ...]) -> tuple[int, int, int, int]:
    """Validate a trace request: output 0 and an index inside the prepared output shape."""
    if output != 0:
        raise UnsupportedOpError(f"{type(data).__name__} has one output; got output {output}")
    el = tuple(int(e) for e in element)
    shape = data.output_shapes[0]
    if len(el) != len(shape) or any(not 0 <= e < d for e, d in zip(el, shape)):
        raise UnsupportedOpError(f"element {list(el)} is outside the output shape {list(shape)}")
    return el  # type: ignore[return-value]


def reshape_view(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``a`` reshaped without copying (raises if a view is impossible), so that writes reach ``a``."""
    v = a.view()
    v.shape = shape
    return v


def padded_input(x: np.ndarray, pad_h: int, pad_w: int, hp: int, wp: int, fill: int) -> np.ndarray:
    """``x`` (B, H, W, C) inside a (B, hp, wp, C) array of ``fill`` (its raw zero point), same dtype."""
    b, h, w, c = x.shape
    if pad_h == 0 and pad_w == 0 and hp <= h and wp <= w:
        return x
    xp = np.full((b, max(hp, pad_h + h), max(wp, pad_w + w), c), fill, x.dtype)
    xp[:, pad_h : pad_h + h, pad_w : pad_w + w, :] = x
    return xp


#: Every output channel: the default channel block of the per-block helpers.
ALL_CHANNELS = slice(None)


def float_epilogue(bias: np.ndarray | None, act_min: float, act_max: float) -> Any:
    """In-place ``min(max(block + bias, act_min), act_max)`` on a finished (..., O) block of float32 sums:
    the reference kernels' bias add and ActivationFunctionWithMinMax, applied while the block is cached.
    The function takes ``(block)``, or ``(block, channels)`` for a block of the channels ``channels``."""
    lo, hi = np.float32(act_min), np.float32(act_max)
    b = None if bias is None else np.asarray(bias, np.float32).reshape(-1)

    def finish(blk: np.ndarray, cs: slice = ALL_CHANNELS) -> None:
        if b is not None:
            np.add(blk, b[cs], out=blk)
        np.maximum(blk, lo, out=blk)
        np.minimum(blk, hi, out=blk)

    return finish


# ---------------------------------------------------------------------------------------------
# Requantization shared by the quantized kernels


@dataclass(frozen=True, kw_only=True)
class QuantConvBase(OpData):
    """Fixed-point requantization of an int32/int64 accumulator, shared by the three quantized kernels."""

    #: ``-zp_in`` added to every input value (0 for int16, whose zero point must be 0).
    input_offset: int
    #: ``-zp_w`` added to every filter value: uint8 only; int8/int16 kernels use 0.
    filter_offset: int
    #: ``zp_out`` added after requantization (int32 add, wraps).
    output_offset: int
    #: Q0.31 multiplier per output channel (int32, shape (O,)), from QuantizeMultiplier.
    multiplier: np.ndarray
    #: Power-of-two exponent per output channel (int32, shape (O,)): real = M * 2^(shift - 31).
    shift: np.ndarray
    #: Fused-activation clamp range in the output type.
    act_min: int
    act_max: int
    #: Accumulator width: 32 (int32, wrapping, int32 MBQM) or 64 (int64, MBQM64).
    acc_bits: int
    #: MBQM rounding variant of the int32 path ("double" or "single"); unused for acc_bits == 64.
    rounding: str
    #: Real multiplier per channel (float64), for traces and reports only.
    real_multiplier: np.ndarray
    #: Output dtype name.
    out_dtype: str
    #: Constants of the exact float64 fast path (:mod:`refquant.requantize`), or None when it does not
    #: apply (non-constant filter or bias, a bound that cannot be proven): :meth:`eval` then runs the
    #: literal kernel (:meth:`eval_reference`).
    fast: FoldedRequant | None = None
    #: The rescaling variant of the arithmetic profile (``arithmetic.rescale``): "reference" (MBQM of
    #: ``rounding``), "neon_mbqm" (:func:`refquant.requantize.neon_mbqm` on the first ``neon_channels``
    #: output channels, the reference MBQM on the rest) or "fp32_rne" (XNNPACK, ``xnn_scale``).
    rescale: str = "reference"
    #: Output channels [0, neon_channels) requantize with NEON semantics ("neon_mbqm" only).
    neon_channels: int = 0
    #: Instead of channels: flat output elements [0, neon_elements) requantize with NEON semantics (a kernel
    #: whose SIMD loop runs over the flat output buffer; -1: not flat).
    neon_elements: int = -1
    #: XNNPACK's float32 requantization scale per output channel ("fp32_rne" only).
    xnn_scale: np.ndarray | None = None

    _not_params: ClassVar[frozenset[str]] = OpData._not_params | frozenset(
        {"real_multiplier", "out_dtype", "fast", "rescale", "neon_channels", "neon_elements", "xnn_scale"}
    )

    # -- to implement
    def _raw_acc(self, inputs: list[np.ndarray | None]) -> np.ndarray:
        """The sum of products (no bias), of the output shape: exact int64, or (32-bit accumulators only)
        int32 holding the sum modulo 2^32 as the C int32 accumulator does."""
        raise NotImplementedError

    def _element_terms(self, inputs: list[np.ndarray | None], element: tuple[int, ...]) -> tuple[list[Step], int]:
        """Literal per-element path: the steps naming the inputs and taps, and the exact product sum."""
        raise NotImplementedError

    def _bias(self, inputs: list[np.ndarray | None]) -> np.ndarray | None:
        raise NotImplementedError

    # -- shared
    def accumulators(self, inputs: list[np.ndarray | None]) -> dict[str, np.ndarray]:
        """``{"acc": ...}``: the int32 (wrapped) or int64 accumulator including the bias, before requantization."""
        acc = self._raw_acc(inputs)
        bias = self._bias(inputs)
        if self.acc_bits == 32:
            # int32 adds wrap modulo 2^32 exactly as the C int32 accumulator does.
            acc = wrap_int32(acc)
            if bias is not None:
                acc = acc + wrap_int32(bias.reshape(-1))
            return {"acc": acc}
        acc = acc.astype(np.int64, copy=False)
        if bias is not None:
            acc = acc + bias.reshape(-1).astype(np.int64)
        return {"acc": acc}

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """Accumulate, requantize per channel, add the output zero point, clamp (fast path when prepared)."""
        if self.fast is not None and FAST_PATHS and self.rescale == "reference":
            return [self._eval_fast(inputs, self.fast.mode)]
        return self.eval_reference(inputs)

    def eval_reference(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """The readable kernel: the integer accumulator, then the literal fixed-point requantization."""
        return [self._requantize(self.accumulators(inputs)["acc"])]

    def _eval_fast(self, inputs: list[np.ndarray | None], mode: str) -> np.ndarray:
        """The blocked float64 kernel (``mode`` "folded" or "checked", see :mod:`refquant.requantize`)."""
        raise NotImplementedError

    def _finish_block(self, t: np.ndarray, out: np.ndarray, mode: str, cs: slice = ALL_CHANNELS) -> None:
        """Requantize one block ``t`` (..., channels ``cs``) into ``out``: :func:`refquant.requantize.requant_block`
        with :meth:`_requantize_exact` as the literal fallback."""
        assert self.fast is not None
        requant_block(t, out, self.fast, mode, self._requantize_exact, cs)

    def _finish_sums(self, s: np.ndarray, out: np.ndarray, mode: str, cs: slice = ALL_CHANNELS) -> None:
        """Requantize a block of exact bias-free float32 sums ``s`` (channels ``cs``) into ``out``
        (:func:`refquant.requantize.requant_sums`)."""
        assert self.fast is not None
        requant_sums(s, out, self.fast, mode, self._requantize_exact, cs)

    def _requantize_exact(self, acc: np.ndarray, cs: slice = ALL_CHANNELS) -> np.ndarray:
        """:meth:`_requantize` of exact integer accumulators (int64, bias included): a 32-bit accumulator
        first wraps to int32, as the C int32 accumulator does."""
        return self._requantize(wrap_int32(acc) if self.acc_bits == 32 else acc, cs)

    def _requantize(self, acc: np.ndarray, cs: slice = ALL_CHANNELS) -> np.ndarray:
        """The literal requantization of accumulators ``acc`` (..., channels ``cs``)."""
        if acc.size == 0:
            return np.zeros(acc.shape, np.dtype(self.out_dtype))
        m, sh = self.multiplier[cs], self.shift[cs]
        if self.rescale == "fp32_rne":
            assert self.xnn_scale is not None
            info = np.iinfo(np.dtype(self.out_dtype))
            v = fp32_rne_requant(
                acc, self.xnn_scale[cs], self.output_offset, self.act_min, self.act_max, int(info.min), int(info.max)
            )
            return v.astype(np.dtype(self.out_dtype))
        if self.rescale == "neon_mbqm":
            if self.neon_elements >= 0:
                neon = np.arange(acc.size).reshape(acc.shape) < self.neon_elements
            else:
                neon = np.arange(self.multiplier.size)[cs] < self.neon_channels
            v = np.where(neon, neon_mbqm(acc, m, sh), mbqm_double_rounding(acc, m, sh))
        elif self.acc_bits == 64:
            v = multiply_by_quantized_multiplier_int64(acc, m, sh)
        else:
            v = multiply_by_quantized_multiplier(acc, m, sh, self.rounding)  # type: ignore[arg-type]
        v = wrap_int32(v.astype(np.int64) + self.output_offset)
        return np.clip(v, self.act_min, self.act_max).astype(np.dtype(self.out_dtype))

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """The arithmetic of one output element, computed literally (per element, Python ints)."""
        element = check_element(self, output, element)
        oc = element[-1]
        steps, total = self._element_terms(inputs, element)
        bias_arr = self._bias(inputs)
        bias = int(bias_arr.reshape(-1)[oc]) if bias_arr is not None else 0
        steps.append(Step("bias", bias, f"bias[{oc}]" if bias_arr is not None else "no bias tensor"))
        acc = total + bias
        if self.acc_bits == 32:
            acc32 = wrap_int(acc, 32)
            steps.append(Step("acc", acc32, "int32 accumulator incl. bias" + (" (wrapped)" if acc32 != acc else "")))
            acc = acc32
        else:
            steps.append(Step("acc", acc, "int64 accumulator incl. bias"))
        if self.rescale == "fp32_rne":
            assert self.xnn_scale is not None
            sc = float(self.xnn_scale[oc])
            steps.append(Step("scale", np.float32(sc), "XNNPACK scale f32(f32(s_in * s_w) / s_out)"))
            info = np.iinfo(np.dtype(self.out_dtype))
            _, rq = fp32_rne_steps(
                acc, sc, self.output_offset, self.act_min, self.act_max, int(info.min), int(info.max)
            )
            steps.extend(Step(*st) for st in rq)
            return steps
        m = int(self.multiplier[oc])
        sh = int(self.shift[oc])
        steps.append(Step("multiplier", (m, sh), f"real {float(self.real_multiplier[oc]):.9g} ~= {m} * 2^({sh} - 31)"))
        if self.neon_elements >= 0:
            neon = int(np.ravel_multi_index(element, self.output_shapes[0])) < self.neon_elements
        else:
            neon = oc < self.neon_channels
        if self.rescale == "neon_mbqm" and neon:
            scaled, rq_steps = neon_mbqm_steps(acc, m, sh)
        elif self.rescale == "neon_mbqm":
            scaled, rq_steps = mbqm_steps(acc, m, sh, "double")
        elif self.acc_bits == 64:
            scaled, rq_steps = mbqm64_steps(acc, m, sh)
        else:
            scaled, rq_steps = mbqm_steps(acc, m, sh, self.rounding)
        steps.extend(Step(*st) for st in rq_steps)
        plus = wrap_int(scaled + self.output_offset, 32)
        steps.append(Step("+ zero point", plus, f"+ output offset {self.output_offset}"))
        value = min(max(plus, self.act_min), self.act_max)
        steps.append(Step("clamp", value, f"clamp to [{self.act_min}, {self.act_max}] -> output value"))
        return steps


# ---------------------------------------------------------------------------------------------
# Geometry: windows and taps of a convolution and of a transposed convolution


@dataclass(frozen=True, kw_only=True)
class ConvGeometry:
    """Shapes, strides, dilations and padding of a 2-D convolution (CONV_2D / DEPTHWISE_CONV_2D)."""

    stride_h: int
    stride_w: int
    dilation_h: int
    dilation_w: int
    #: Padding before (top / left); any odd extra padding is after (bottom / right).
    pad_h: int
    pad_w: int
    kernel_h: int
    kernel_w: int

    def _window(
        self, x: np.ndarray, b: int, oy: int, ox: int, channels: slice | int
    ) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
        """Raw input values of one output's window (KH, KW, ...), the in-image mask, and input positions."""
        h, w = x.shape[1], x.shape[2]
        ys = [oy * self.stride_h - self.pad_h + ky * self.dilation_h for ky in range(self.kernel_h)]
        xs = [ox * self.stride_w - self.pad_w + kx * self.dilation_w for kx in range(self.kernel_w)]
        sample = x[b, 0, 0, channels]
        vals = np.zeros((self.kernel_h, self.kernel_w) + np.shape(sample), x.dtype)
        mask = np.zeros((self.kernel_h, self.kernel_w), bool)
        for ky, iy in enumerate(ys):
            for kx, ix in enumerate(xs):
                if 0 <= iy < h and 0 <= ix < w:
                    vals[ky, kx] = x[b, iy, ix, channels]
                    mask[ky, kx] = True
        return vals, mask, [(iy, ix) for iy in ys for ix in xs]

    def _im2col_sums(
        self, x: np.ndarray, input_offset: int | np.ndarray, wf: np.ndarray, out_shape: tuple[int, ...], groups: int
    ) -> np.ndarray:
        """Exact integer sums ``sum over in-image taps of (x + input_offset) * wf`` (int64, output shape).

        ``x`` (B, H, W, C) holds integers, ``input_offset`` is a scalar or broadcasts against ``x`` (per batch:
        shape (B, 1, 1, 1)), ``wf`` (O, KH, KW, Ig) float64 integers. im2col over a zero-padded ``x +
        input_offset`` (a padded tap adds 0, as a skipped tap does) and one float64 BLAS product per block of
        output rows (per group for grouped convolutions); exact while every product is an integer below 2^23
        and fewer than 2^30 are summed (``check_depth``).
        """
        bsz, oh, ow, oc = out_shape
        acc = np.zeros(out_shape, np.int64)
        if acc.size == 0:
            return acc
        _, h, wd, c = x.shape
        kh, kw = self.kernel_h, self.kernel_w
        eff_h = (kh - 1) * self.dilation_h + 1
        eff_w = (kw - 1) * self.dilation_w + 1
        need_h = (oh - 1) * self.stride_h + eff_h
        need_w = (ow - 1) * self.stride_w + eff_w
        hp = max(self.pad_h + h, need_h)
        wp = max(self.pad_w + wd, need_w)
        # (x - zp_in) padded with 0 == x padded with zp_in: padded taps contribute nothing, as skipped taps do.
        xp = np.zeros((bsz, hp, wp, c), np.float64)
        xp[:, self.pad_h : self.pad_h + h, self.pad_w : self.pad_w + wd, :] = x
        if np.any(input_offset):
            xp[:, self.pad_h : self.pad_h + h, self.pad_w : self.pad_w + wd, :] += input_offset
        g = groups
        ig = c // g
        og = oc // g
        # (G, K, Og) with K ordered (ky, kx, ic) like the filter's trailing dims.
        wm = wf.reshape(g, og, kh * kw * ig).transpose(0, 2, 1)
        windows = sliding_window_view(xp, (eff_h, eff_w), axis=(1, 2))  # (B, Hp', Wp', C, eff_h, eff_w)
        # Block over (batch, output rows) so that one im2col block holds at most _IM2COL_BLOCK values.
        per_row = ow * kh * kw * c
        nb = max(1, min(bsz, _IM2COL_BLOCK // max(1, oh * per_row)))
        rows = oh if nb * oh * per_row <= _IM2COL_BLOCK else max(1, _IM2COL_BLOCK // per_row)
        for b0 in range(0, bsz, nb):
            b1 = min(bsz, b0 + nb)
            for y0 in range(0, oh, rows):
                y1 = min(oh, y0 + rows)
                win = windows[
                    b0:b1,
                    y0 * self.stride_h : (y1 - 1) * self.stride_h + 1 : self.stride_h,
                    0 : (ow - 1) * self.stride_w + 1 : self.stride_w,
                    :,
                    :: self.dilation_h,
                    :: self.dilation_w,
                ]  # (nb, n_rows, OW, C, KH, KW)
                n = (b1 - b0) * (y1 - y0) * ow
                # Exact: every product is an integer below 2^23 and fewer than 2^30 are summed (check_depth).
                if g == 1:
                    cols = win.transpose(0, 1, 2, 4, 5, 3).reshape(n, kh * kw * c)
                    blk = cols @ wm[0]
                else:
                    cols = win.reshape(b1 - b0, y1 - y0, ow, g, ig, kh, kw).transpose(3, 0, 1, 2, 5, 6, 4)
                    cols = cols.reshape(g, n, kh * kw * ig)
                    blk = np.matmul(cols, wm).transpose(1, 0, 2).reshape(n, oc)
                acc[b0:b1, y0:y1] = blk.reshape(b1 - b0, y1 - y0, ow, oc)
        return acc

    def _tap_sums(self, xo: np.ndarray, wo: np.ndarray, acc: np.ndarray) -> None:
        """Depthwise ``acc[b, oy, ox, c] += xo[b, iy, ix, c] * wo[ky, kx, c]`` over the in-image taps, in place.

        ``xo`` (B, H, W, O) is the offset input already repeated ``depth_multiplier`` times along channels,
        ``wo`` (KH, KW, O) the offset taps; ``acc`` (B, OH, OW, O) has their dtype (int32 wraps modulo 2^32
        exactly as the C int32 accumulator does). Out-of-image taps are skipped, as the reference loops skip them.
        """
        _, oh, ow, _ = acc.shape
        _, h, wd, _ = xo.shape
        for ky in range(self.kernel_h):
            y0, y1, iy0 = _tap_range(oh, h, self.stride_h, ky * self.dilation_h - self.pad_h)
            if y1 <= y0:
                continue
            for kx in range(self.kernel_w):
                x0, x1, ix0 = _tap_range(ow, wd, self.stride_w, kx * self.dilation_w - self.pad_w)
                if x1 <= x0:
                    continue
                xs = xo[
                    :,
                    iy0 : iy0 + (y1 - y0 - 1) * self.stride_h + 1 : self.stride_h,
                    ix0 : ix0 + (x1 - x0 - 1) * self.stride_w + 1 : self.stride_w,
                    :,
                ]
                acc[:, y0:y1, x0:x1] += xs * wo[ky, kx]

    def _tap_blocks(self, x: np.ndarray, oh: int, ow: int, r0: int, r1: int) -> Iterator[tuple]:
        """For each kernel tap reaching output rows [r0, r1): ``(ky, kx, ya, yb, x0, x1, xs)``.

        Outputs ``[ya, yb) x [x0, x1)`` read that tap in-image; ``xs`` is the strided input slice they read
        (B, yb - ya, x1 - x0, C). Taps that fall outside the image are skipped, as the reference loops skip them.
        """
        h, wd = x.shape[1], x.shape[2]
        for ky in range(self.kernel_h):
            y0, y1, iy0 = _tap_range(oh, h, self.stride_h, ky * self.dilation_h - self.pad_h)
            ya, yb = max(y0, r0), min(y1, r1)
            if yb <= ya:
                continue
            iya = iy0 + (ya - y0) * self.stride_h
            for kx in range(self.kernel_w):
                x0, x1, ix0 = _tap_range(ow, wd, self.stride_w, kx * self.dilation_w - self.pad_w)
                if x1 <= x0:
                    continue
                xs = x[
                    :,
                    iya : iya + (yb - ya - 1) * self.stride_h + 1 : self.stride_h,
                    ix0 : ix0 + (x1 - x0 - 1) * self.stride_w + 1 : self.stride_w,
                    :,
                ]
                yield ky, kx, ya, yb, x0, x1, xs


@dataclass(frozen=True, kw_only=True)
class TransposeGeometry:
    """Strides and padding of a transposed convolution: input (iy, ix) tap (ky, kx) -> output
    (iy * stride_h - pad_h + ky, ix * stride_w - pad_w + kx), in-range outputs only."""

    stride_h: int
    stride_w: int
    pad_h: int
    pad_w: int
    kernel_h: int
    kernel_w: int

    def _contributions(self, in_hw: tuple[int, int], oy: int, ox: int) -> list[tuple[int, int, int, int]]:
        """(iy, ix, ky, kx) reaching output (oy, ox), in the reference kernel's order (iy, ix ascending)."""
        h, w = in_hw
        out = []
        for iy in range(h):
            ky = oy - (iy * self.stride_h - self.pad_h)
            if not 0 <= ky < self.kernel_h:
                continue
            for ix in range(w):
                kx = ox - (ix * self.stride_w - self.pad_w)
                if 0 <= kx < self.kernel_w:
                    out.append((iy, ix, ky, kx))
        return out

    def _tap_slices(
        self, out_hw: tuple[int, int], in_hw: tuple[int, int], ky: int, kx: int
    ) -> tuple[slice, ...] | None:
        """(input rows, input cols, output rows, output cols) slices of tap (ky, kx), or None when empty."""
        oh, ow = out_hw
        h, w = in_hw
        res = []
        for size_in, size_out, s, p, k in (
            (h, oh, self.stride_h, self.pad_h, ky),
            (w, ow, self.stride_w, self.pad_w, kx),
        ):
            # o = i * s - p + k in [0, size_out)  <=>  i in [ceil((p - k) / s), floor((size_out - 1 + p - k) / s)]
            i0 = max(0, -((k - p) // s))
            i1 = min(size_in, (size_out - 1 + p - k) // s + 1) if size_out - 1 + p - k >= 0 else 0
            if i1 <= i0:
                return None
            o0 = i0 * s - p + k
            res.append((slice(i0, i1), slice(o0, o0 + (i1 - i0 - 1) * s + 1, s)))
        (iy, oy), (ix, ox) = res
        return iy, ix, oy, ox


# ---------------------------------------------------------------------------------------------
# The float32 end of TRANSPOSE_CONV (float and hybrid)


@dataclass(frozen=True, kw_only=True)
class TransposeFloatOutput(OpData):
    """The float32 end of TRANSPOSE_CONV (float and hybrid): ``_total`` + float32 bias (input 3), then the clamp."""

    act_min: float
    act_max: float

    def _total(self, inputs: list[np.ndarray | None]) -> np.ndarray:
        raise NotImplementedError

    def accumulators(self, inputs: list[np.ndarray | None]) -> dict[str, np.ndarray]:
        """``{"acc": ...}``: the float32 sum plus bias, before the activation clamp."""
        total = self._total(inputs)
        bias = inputs[3] if len(inputs) > 3 else None
        if bias is not None:
            total = np.add(total, np.asarray(bias, np.float32).reshape(-1), dtype=np.float32)
        return {"acc": total}

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """The float32 sums, + bias, clamp."""
        acc = self.accumulators(inputs)["acc"]
        lo, hi = np.float32(self.act_min), np.float32(self.act_max)
        return [np.minimum(np.maximum(acc, lo), hi).astype(np.float32)]
