"""Convolutions: CONV_2D, DEPTHWISE_CONV_2D and TRANSPOSE_CONV (int8, int16x8, uint8, float32, hybrid).

Each kernel reproduces LiteRT 2.3.0's reference kernel (``BUILTIN_REF``) bit for bit:

* CONV_2D: ``conv.cc`` with ``reference_integer_ops::ConvPerChannel`` (int8, int16x8),
  ``reference_ops::Conv`` (uint8 legacy and float32);
* DEPTHWISE_CONV_2D: ``depthwise_conv.cc`` with ``reference_integer_ops::DepthwiseConvPerChannel``
  (int8, int16x8), ``reference_ops::DepthwiseConv`` (uint8 legacy, ``depthwiseconv_uint8.h``; float32,
  ``depthwiseconv_float.h``);
* TRANSPOSE_CONV: ``transpose_conv.cc`` with ``reference_integer_ops::TransposeConv`` (int8, int16x8)
  and ``reference_ops::TransposeConv`` (uint8 legacy and float32).

Integer arithmetic (KERNEL_NOTES 3.0-3.2, 3.5)::

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

The readable kernels (``eval_reference``; the integer sums are exact, so any summation order gives the C
result modulo 2^32):

* CONV_2D: im2col over a zero-point-padded input (``sliding_window_view``) and one float64 BLAS matrix
  product per row block (per group for grouped convolutions), then the literal requantization;
* DEPTHWISE_CONV_2D: a sum over the KH*KW kernel taps of shifted input slices times per-channel weights;
* TRANSPOSE_CONV: one float64 BLAS product of the input with every tap, then a col2im scatter-add over
  the KH*KW taps.

The fast paths of CONV_2D and DEPTHWISE_CONV_2D (``eval``; :mod:`refquant.ops.fastpath` has the closed
form and the exactness proof): per-channel constants from prepare, blocks of output rows that stay in the
cache, float32 BLAS / multiply-adds for the bias-free sums where ``max|x| * sum|w| <= 2^24`` (else float64
with the scale folded into the filter), and ``floor(acc*scale + const)`` evaluated exactly in float64. The
tests compare every mode with ``eval_reference``; :data:`FAST_PATHS` switches them off.

Float32 kernels, ``float_accumulation="sequential"``, accumulate in float32 in the C loop order (one
rounded product, then one rounded add per tap, no FMA, skipped taps not added), then add the bias and
clamp, so they match the reference float kernels bit for bit as well; the loops run over kernel taps and
channels, never over output elements, and the fast form runs the same steps per cached block of output
rows. With ``float_accumulation="float64"`` (the default) CONV_2D and TRANSPOSE_CONV compute each sum in
float64 BLAS (im2col, or the tap product and col2im) and round it once to float32 before the float32 bias
add and clamp: every product of two float32 is exact in float64, so the result differs from the exact sum
by float64 rounding plus one float32 rounding, while the sequential float32 sum may differ from it by up
to ``K * 2^-24 * sum|x*w|`` (K products). DEPTHWISE_CONV_2D sums at most KH*KW terms and keeps the
sequential form in both modes. A filter with inf or NaN values runs the sequential kernel, because the
float64 form's zero padding would turn a skipped out-of-image tap into ``0 * inf = NaN``.

Hybrid (dynamic-range quantized) CONV_2D and DEPTHWISE_CONV_2D: float32 input and output, int8 filter
(per-tensor or per-channel), float32 bias (:class:`ConvHybridData`, :class:`DepthwiseHybridData`). Each
batch element is quantized to int8 on the fly with FULLY_CONNECTED's reproductions of the x86 wheel's
tensor_utils (:func:`~refquant.ops.fully_connected.symmetric_quantize_rows` for the per-tensor CONV_2D
kernel, :func:`~refquant.ops.fully_connected.asymmetric_quantize_rows` for the per-channel ones and every
depthwise), the exact int32 sums are rescaled in float32 in LiteRT's order of operations, then the bias add
and the clamp: bit for bit with BUILTIN_REF (the class docstrings give each kernel's formula, including
the SSE dot product's -128 quirk). Where LiteRT produces undefined output refquant refuses (a per-tensor
depthwise filter scale with several output channels: LiteRT reads scales past the end of the array; a
uint8 filter, read as int8), and inputs with inf or NaN raise :class:`~refquant.errors.EvalError` (LiteRT's
quantization of non-finite values is not reproduced). int4 hybrid filters are not implemented.
Hybrid TRANSPOSE_CONV (:class:`TransposeConvHybridData`, the converter's dynamic-range Conv2DTranspose):
``reference_ops::HybridTransposeConv``, asymmetric per-batch input quantization and every scattered term
``(q - zp) * w * filter_scale * input_scale`` rounded to float32 and added in the scatter loop's order.

Each prepared op also provides ``accumulators`` (the int32/int64 accumulators including the bias,
before requantization; for hybrid ops the int32 sums and the quantized input with its per-batch scale
and zero point) and ``trace`` (the arithmetic of one output element, computed by a separate, literal
per-element path that the tests compare with the fast path).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import EvalError, UnsupportedOpError
from ..fixedpoint import (
    INT32_MAX,
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_int64,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)
from ..quantization import (
    calculate_activation_range_float,
    calculate_activation_range_quantized,
    quantize_multiplier,
    quantize_multiplier_array,
)
from .base import OpContext, OpData, Step, TensorInfo
from .fastpath import FoldedRequant, prepare_folded_requant, requant_tail, rows_per_block
from .fully_connected import FLOAT_SUM_STEPS, asymmetric_quantize_rows, symmetric_quantize_rows

__all__ = [
    "prepare_conv2d",
    "prepare_depthwise_conv2d",
    "prepare_transpose_conv",
    "ConvQuantData",
    "ConvFloatData",
    "DepthwiseQuantData",
    "DepthwiseFloatData",
    "TransposeConvQuantData",
    "TransposeConvFloatData",
    "TransposeConvHybridData",
    "ConvHybridData",
    "DepthwiseHybridData",
]

#: Fused activations the kernels accept. TANH and SIGN_BIT are accepted by LiteRT's conv kernels and
#: mean "no clamp" there (CalculateActivationRange[Quantized] falls through to the full range).
_ACTIVATIONS = ("NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH", "SIGN_BIT")
_INT16_MAX = 2**15 - 1
#: Largest reduction depth for which the float64 BLAS sums are provably exact (see _check_depth).
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


def _out_size(ctx: OpContext, padding: Any, image: int, k: int, stride: int, dilation: int, axis: str) -> int:
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


def _padding(stride: int, dilation: int, image: int, k: int, out: int) -> int:
    """``ComputePaddingWithOffsetChecked``: padding before (top/left); the odd extra pixel goes after."""
    eff = (k - 1) * dilation + 1
    total = max(0, (out - 1) * stride + eff - image)
    return total // 2


def _conv_geometry(
    ctx: OpContext, inp: TensorInfo, filt: TensorInfo, o: int, stride_h: int, stride_w: int, dil_h: int, dil_w: int
) -> tuple[dict[str, int], tuple[int, int, int, int]]:
    """The ``_ConvGeometry`` fields and output shape of CONV_2D / DEPTHWISE_CONV_2D (padding.h rules)."""
    padding = ctx.option("padding", "SAME")
    bsz, h, w = inp.shape[0], inp.shape[1], inp.shape[2]
    kh, kw = filt.shape[1], filt.shape[2]
    ow = _out_size(ctx, padding, w, kw, stride_w, dil_w, "width")
    oh = _out_size(ctx, padding, h, kh, stride_h, dil_h, "height")
    geom = dict(
        stride_h=stride_h,
        stride_w=stride_w,
        dilation_h=dil_h,
        dilation_w=dil_w,
        pad_h=_padding(stride_h, dil_h, h, kh, oh),
        pad_w=_padding(stride_w, dil_w, w, kw, ow),
        kernel_h=kh,
        kernel_w=kw,
    )
    return geom, (bsz, oh, ow, o)


def _activation(ctx: OpContext) -> str:
    act = ctx.option("fused_activation_function", "NONE")
    if act not in _ACTIVATIONS:
        raise ctx.unsupported(f"fused activation {act!r} (expected one of {', '.join(_ACTIVATIONS)})")
    return str(act)


def _positive_option(ctx: OpContext, name: str, upper: int | None = None) -> int:
    v = ctx.option(name, 0)
    if not isinstance(v, (int, np.integer)) or v <= 0 or (upper is not None and v > upper):
        bound = f" and <= {upper}" if upper is not None else ""
        raise ctx.error(f"option {name} = {v!r}; expected an integer > 0{bound}")
    return int(v)


def _require_rank(ctx: OpContext, t: TensorInfo, rank: int, role: str) -> None:
    if len(t.shape) != rank:
        raise ctx.error(f"{role} must have rank {rank}, got shape {list(t.shape)}", t)


def _require_positive_dims(ctx: OpContext, t: TensorInfo, dims: tuple[int, ...], role: str) -> None:
    for d in dims:
        if t.shape[d] <= 0:
            raise ctx.error(f"{role} dimension {d} is {t.shape[d]}; expected > 0", t)


def _check_depth(ctx: OpContext, depth: int) -> None:
    """Guard of the float64 BLAS exactness argument.

    Every product is below 2^23 in magnitude (int8: |x - zp| <= 255, |w| <= 128, product < 2^15; uint8:
    |x - zp|, |w - zp| <= 255, product < 2^16; int16x8: |x| <= 2^15, |w| <= 2^7, product <= 2^22), so a sum
    of fewer than 2^30 products stays below 2^52 and every partial sum is an exact float64 integer.
    """
    if depth >= _MAX_EXACT_DEPTH:
        raise ctx.unsupported(f"a reduction over {depth} products per output (refquant's exact float64 bound is 2^30)")


def _bias_zero_point(t: TensorInfo) -> int:
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
class _QuantSetup:
    multiplier: np.ndarray
    shift: np.ndarray
    act_min: int
    act_max: int
    real: np.ndarray


def _quant_setup(
    ctx: OpContext,
    inp: TensorInfo,
    filt: TensorInfo,
    bias: TensorInfo | None,
    out: TensorInfo,
    channels: int,
    acc_bits: int,
) -> _QuantSetup:
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
    return _QuantSetup(np.asarray(mult, np.int32), np.asarray(shift, np.int32), lo, hi, np.asarray(real))


def _fast_setup(
    ctx: OpContext,
    inp: TensorInfo,
    out: TensorInfo,
    qs: _QuantSetup,
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


def _check_int16_bias(ctx: OpContext, bias: TensorInfo | None) -> int:
    """int16x8 CONV/TRANSPOSE_CONV accumulator width from ``quantized_bias_type`` (KERNEL_NOTES 2.3)."""
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


def _float_range(ctx: OpContext) -> tuple[np.float32, np.float32]:
    return calculate_activation_range_float(_activation(ctx))


def _tap_range(out_size: int, in_size: int, stride: int, offset: int) -> tuple[int, int, int]:
    """Outputs ``o`` in ``[o0, o1)`` read input ``o * stride + offset`` inside ``[0, in_size)``: (o0, o1, i0)."""
    o0 = max(0, -(offset // stride))  # ceil(-offset / stride)
    o1 = min(out_size, (in_size - 1 - offset) // stride + 1)
    if o1 <= o0:
        return 0, 0, 0
    return o0, o1, o0 * stride + offset


def _wrap32(v: int) -> int:
    """A Python int reduced to int32 as an overflowing C int32 holds it on x86."""
    return ((v + 2**31) % 2**32) - 2**31


def _wrap32_i64(v: np.ndarray) -> np.ndarray:
    """int64 values wrapped to int32, as int32 (what a C int32 accumulator holds on x86)."""
    return v.astype(np.int32, casting="unsafe")


def _check_element(data: OpData, output: int, element: tuple[int, ...]) -> tuple[int, int, int, int]:
    """Validate a trace request: output 0 and an index inside the prepared output shape."""
    if output != 0:
        raise UnsupportedOpError(f"{type(data).__name__} has one output; got output {output}")
    el = tuple(int(e) for e in element)
    shape = data.output_shapes[0]
    if len(el) != len(shape) or any(not 0 <= e < d for e, d in zip(el, shape)):
        raise UnsupportedOpError(f"element {list(el)} is outside the output shape {list(shape)}")
    return el  # type: ignore[return-value]


def _reshape_view(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``a`` reshaped without copying (raises if a view is impossible), so that writes reach ``a``."""
    v = a.view()
    v.shape = shape
    return v


def _padded_input(x: np.ndarray, pad_h: int, pad_w: int, hp: int, wp: int, fill: int) -> np.ndarray:
    """``x`` (B, H, W, C) inside a (B, hp, wp, C) array of ``fill`` (its raw zero point), same dtype."""
    b, h, w, c = x.shape
    if pad_h == 0 and pad_w == 0 and hp <= h and wp <= w:
        return x
    xp = np.full((b, max(hp, pad_h + h), max(wp, pad_w + w), c), fill, x.dtype)
    xp[:, pad_h : pad_h + h, pad_w : pad_w + w, :] = x
    return xp


_ALL = slice(None)
#: Smallest reduction depth for which the float32 GEMM (plus two float64 passes) beats one float64 GEMM.
_F32_MIN_DEPTH = 32
#: Float64 weight elements converted at a time by the fast CONV_2D (1 MiB): larger filters are processed
#: in chunks of output channels so that the converted copy stays small.
_WEIGHT_BLOCK = 1 << 17


def _float_epilogue(bias: np.ndarray | None, act_min: float, act_max: float) -> Any:
    """In-place ``min(max(block + bias, act_min), act_max)`` on a finished (..., O) block of float32 sums:
    the reference kernels' bias add and ActivationFunctionWithMinMax, applied while the block is cached.
    The function takes ``(block)``, or ``(block, channels)`` for a block of the channels ``channels``."""
    lo, hi = np.float32(act_min), np.float32(act_max)
    b = None if bias is None else np.asarray(bias, np.float32).reshape(-1)

    def finish(blk: np.ndarray, cs: slice = _ALL) -> None:
        if b is not None:
            np.add(blk, b[cs], out=blk)
        np.maximum(blk, lo, out=blk)
        np.minimum(blk, hi, out=blk)

    return finish


def _fast_weights(w2: np.ndarray, filter_offset: int, fr: FoldedRequant, mode: str, cs: slice = _ALL) -> np.ndarray:
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


# ---------------------------------------------------------------------------------------------
# Requantization shared by the quantized kernels


@dataclass(frozen=True, kw_only=True)
class _QuantConvBase(OpData):
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
    #: Constants of the exact float64 fast path (:mod:`refquant.ops.fastpath`), or None when it does not
    #: apply (non-constant filter or bias, a bound that cannot be proven): :meth:`eval` then runs the
    #: literal kernel (:meth:`eval_reference`).
    fast: FoldedRequant | None = None

    _not_params: ClassVar[frozenset[str]] = OpData._not_params | frozenset({"real_multiplier", "out_dtype", "fast"})

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
            acc = acc.astype(np.int32, casting="unsafe", copy=False)
            if bias is not None:
                acc = acc + bias.reshape(-1).astype(np.int32, casting="unsafe")
            return {"acc": acc}
        acc = acc.astype(np.int64, copy=False)
        if bias is not None:
            acc = acc + bias.reshape(-1).astype(np.int64)
        return {"acc": acc}

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """Accumulate, requantize per channel, add the output zero point, clamp (fast path when prepared)."""
        if self.fast is not None and FAST_PATHS:
            return [self._eval_fast(inputs, self.fast.mode)]
        return self.eval_reference(inputs)

    def eval_reference(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """The readable kernel: the integer accumulator, then the literal fixed-point requantization."""
        return [self._requantize(self.accumulators(inputs)["acc"])]

    def _eval_fast(self, inputs: list[np.ndarray | None], mode: str) -> np.ndarray:
        """The blocked float64 kernel (``mode`` "folded" or "checked", see :mod:`refquant.ops.fastpath`)."""
        raise NotImplementedError

    def _finish_block(self, t: np.ndarray, out: np.ndarray, mode: str, cs: slice = _ALL) -> None:
        """Requantize one block ``t`` (..., channels ``cs``) into ``out``: folded ``t = acc*scale + const``
        already; checked ``t = acc`` (exact integers incl. the folded bias): the closed form when the block's
        ``max |acc|`` is within the proven bound, else the literal requantization."""
        fr = self.fast
        assert fr is not None
        if mode == "checked":
            if t.size and max(-float(t.min()), float(t.max())) > fr.checked_limit:
                acc = t.astype(np.int64)
                if self.acc_bits == 32:
                    acc = _wrap32_i64(acc)
                out[...] = self._requantize(acc, cs)
                return
            np.multiply(t, fr.scale[cs], out=t)
            np.add(t, fr.rounding_const[cs], out=t)
        requant_tail(t, out, fr, cs)

    def _finish_sums(self, s: np.ndarray, out: np.ndarray, mode: str, cs: slice = _ALL) -> None:
        """Requantize a block of exact bias-free float32 sums ``s`` (channels ``cs``) into ``out``."""
        fr = self.fast
        assert fr is not None
        t = np.empty(s.shape)
        if mode == "folded":
            np.multiply(s, fr.scale[cs], out=t)  # exact: |s| <= the static bound, see fastpath
            np.add(t, fr.const[cs], out=t)
            requant_tail(t, out, fr, cs)
        else:
            np.add(s, fr.folded_bias[cs], out=t, dtype=np.float64)
            self._finish_block(t, out, "checked", cs)

    def _requantize(self, acc: np.ndarray, cs: slice = _ALL) -> np.ndarray:
        """The literal requantization of accumulators ``acc`` (..., channels ``cs``)."""
        if acc.size == 0:
            return np.zeros(acc.shape, np.dtype(self.out_dtype))
        m, sh = self.multiplier[cs], self.shift[cs]
        if self.acc_bits == 64:
            v = multiply_by_quantized_multiplier_int64(acc, m, sh)
        else:
            v = multiply_by_quantized_multiplier(acc, m, sh, self.rounding)  # type: ignore[arg-type]
        v = _wrap32_i64(v.astype(np.int64) + self.output_offset)
        return np.clip(v, self.act_min, self.act_max).astype(np.dtype(self.out_dtype))

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """The arithmetic of one output element, computed literally (per element, Python ints)."""
        element = _check_element(self, output, element)
        oc = element[-1]
        steps, total = self._element_terms(inputs, element)
        bias_arr = self._bias(inputs)
        bias = int(bias_arr.reshape(-1)[oc]) if bias_arr is not None else 0
        steps.append(Step("bias", bias, f"bias[{oc}]" if bias_arr is not None else "no bias tensor"))
        acc = total + bias
        if self.acc_bits == 32:
            acc32 = _wrap32(acc)
            steps.append(Step("acc", acc32, "int32 accumulator incl. bias" + (" (wrapped)" if acc32 != acc else "")))
            acc = acc32
        else:
            steps.append(Step("acc", acc, "int64 accumulator incl. bias"))
        m = int(self.multiplier[oc])
        sh = int(self.shift[oc])
        steps.append(Step("multiplier", (m, sh), f"real {float(self.real_multiplier[oc]):.9g} ~= {m} * 2^({sh} - 31)"))
        if self.acc_bits == 64:
            mr = (m + (1 << 15)) >> 16 if m < 0x7FFF0000 else 0x7FFF
            ts = 15 - sh
            steps.append(Step("reduced multiplier", mr, "MBQM64: 16-bit multiplier (M + 2^15) >> 16"))
            scaled = _wrap32((acc * mr + (1 << (ts - 1))) >> ts)
            steps.append(Step("scaled", scaled, f"MBQM64: (acc * {mr} + 2^{ts - 1}) >> {ts}, ties toward +inf"))
        elif self.rounding == "single":
            ts = 31 - sh
            scaled = _wrap32((acc * m + (1 << (ts - 1))) >> ts)
            steps.append(Step("scaled", scaled, f"single rounding: (acc * M + 2^{ts - 1}) >> {ts}"))
        else:
            left, right = max(sh, 0), max(-sh, 0)
            x = acc
            if left:
                x = _wrap32(acc * (1 << (left & 31)))
                steps.append(Step("left shift", x, f"acc << {left} (int32, wraps)"))
            hi = int(saturating_rounding_doubling_high_mul(x, m))
            steps.append(Step("SRDHM", hi, "SaturatingRoundingDoublingHighMul(x, M): x*M / 2^31, ties up"))
            scaled = int(rounding_divide_by_pot(hi, right))
            steps.append(Step("RDBPOT", scaled, f"RoundingDivideByPOT(., {right}): ties away from zero"))
        plus = _wrap32(scaled + self.output_offset)
        steps.append(Step("+ zero point", plus, f"+ output offset {self.output_offset}"))
        value = min(max(plus, self.act_min), self.act_max)
        steps.append(Step("clamp", value, f"clamp to [{self.act_min}, {self.act_max}] -> output value"))
        return steps


# ---------------------------------------------------------------------------------------------
# CONV_2D


@dataclass(frozen=True, kw_only=True)
class _ConvGeometry:
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
        and fewer than 2^30 are summed (``_check_depth``).
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
                # Exact: every product is an integer below 2^23 and fewer than 2^30 are summed (_check_depth).
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
class ConvQuantData(_ConvGeometry, _QuantConvBase):
    """Prepared quantized CONV_2D (LiteRT ``reference_integer_ops::ConvPerChannel`` / uint8 ``reference_ops::Conv``).

    ``acc[b,oy,ox,oc] = sum_{ky,kx,ic} (w[oc,ky,kx,ic] + filter_offset) * (x[b,iy,ix,g*Ig+ic] + input_offset)``
    with ``g = oc // (O / groups)``, computed as im2col + float64 BLAS (exact, see ``_check_depth``).
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
        """Blocked im2col + BLAS (see :mod:`refquant.ops.fastpath`).

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
            xp = _padded_input(x, self.pad_h, self.pad_w, hp, wp, -self.input_offset)
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
                        cols = _reshape_view(xb[:m, :k], (b1 - b0, y1 - y0, ow, kh, kw, c))
                        np.copyto(cols, win.transpose(0, 1, 2, 4, 5, 3))
                        t = self._gemm(xb[:m], wt)
                    else:
                        t = np.empty((m, o), xb.dtype)
                        for gi in range(g):
                            cols = _reshape_view(xb[:m, :k], (b1 - b0, y1 - y0, ow, kh, kw, ig))
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
class ConvFloatData(_ConvGeometry, OpData):
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
            xp = _padded_input(x, self.pad_h, self.pad_w, hp, wp, 0)
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
                    cols = _reshape_view(xb[:m], (b1 - b0, y1 - y0, x1 - x0, kh, kw, ig))
                    for gi in range(g):
                        np.copyto(cols, win[:, :, :, gi * ig : (gi + 1) * ig].transpose(0, 1, 2, 4, 5, 3))
                        gs = slice(gi * og, (gi + 1) * og) if g > 1 else _ALL
                        dst[..., gs] = (xb[:m] @ wt[gs].T).reshape(dst[..., gs].shape)
                if epilogue is not None:
                    epilogue(dst, cs)
        return out

    def _total(self, inputs: list[np.ndarray | None], blocked: bool | None = None, epilogue: Any = None) -> np.ndarray:
        """The float32 sums, each term added in (ky, kx, ic) order, out-of-image taps skipped.

        The loops run over taps and input channels; each step is one multiply and one add over all
        outputs that tap reaches. ``blocked`` (default: :data:`FAST_PATHS`) does the same steps block of
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
            blocked = FAST_PATHS
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
            return [self._total64(inputs, epilogue=_float_epilogue(bias, self.act_min, self.act_max))]
        if FAST_PATHS:
            return [self._total(inputs, epilogue=_float_epilogue(bias, self.act_min, self.act_max))]
        acc = self.accumulators(inputs)["acc"]
        lo, hi = np.float32(self.act_min), np.float32(self.act_max)
        return [np.minimum(np.maximum(acc, lo), hi).astype(np.float32)]

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """Window, taps and the float32 running sum of one output element."""
        x, w = inputs[0], inputs[1]
        assert x is not None and w is not None
        b, oy, ox, oc = _check_element(self, output, element)
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
    _require_rank(ctx, inp, 4, "input")
    _require_rank(ctx, filt, 4, "filter")
    _require_positive_dims(ctx, inp, (1, 2, 3), "input")
    _require_positive_dims(ctx, filt, (0, 1, 2, 3), "filter")
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
    stride_h = _positive_option(ctx, "stride_h")
    stride_w = _positive_option(ctx, "stride_w")
    dil_h = _positive_option(ctx, "dilation_h_factor")
    dil_w = _positive_option(ctx, "dilation_w_factor")
    bias = ctx.inputs[2] if len(ctx.inputs) == 3 else None
    if bias is None:
        raise ctx.error("CONV_2D requires a bias input (LiteRT's conv kernel rejects a conv without bias)")
    if inp.dtype in ("uint8", "int8"):
        if bias.dtype != "int32":
            raise ctx.error(f"bias type {bias.dtype}; expected int32", bias)
        if _bias_zero_point(bias) != 0:
            raise ctx.fail_quant("bias zero point must be 0", bias)
    elif inp.dtype == "int16":
        if bias.dtype not in ("int32", "int64"):
            raise ctx.error(f"bias type {bias.dtype}; expected int32 or int64", bias)
        if _bias_zero_point(bias) != 0:
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
        acc_bits = _check_int16_bias(ctx, bias)
    geom, out_shape = _conv_geometry(ctx, inp, filt, o, stride_h, stride_w, dil_h, dil_w)
    if hybrid:
        return _prepare_conv_hybrid(ctx, inp, filt, groups, geom, out_shape)
    if inp.dtype == "float32":
        lo, hi = _float_range(ctx)
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
    _check_depth(ctx, geom["kernel_h"] * geom["kernel_w"] * ig)
    qs = _quant_setup(ctx, inp, filt, bias, out, o, acc_bits)
    fast = _fast_setup(
        ctx, inp, out, qs, acc_bits, ctx.rounding, filt.value.reshape(o, -1) if filt.value is not None else None, bias
    )
    return ConvQuantData(
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


# ---------------------------------------------------------------------------------------------
# DEPTHWISE_CONV_2D


@dataclass(frozen=True, kw_only=True)
class DepthwiseQuantData(_ConvGeometry, _QuantConvBase):
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
        per channel), see fastpath.

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
class DepthwiseFloatData(_ConvGeometry, OpData):
    """Prepared float32 DEPTHWISE_CONV_2D (LiteRT ``reference_ops::DepthwiseConv``, float): (ky, kx) order."""

    #: Depth multiplier: output channels / input channels.
    depth_multiplier: int
    #: Fused-activation clamp range (float32).
    act_min: float
    act_max: float

    def _total(self, inputs: list[np.ndarray | None], blocked: bool | None = None, epilogue: Any = None) -> np.ndarray:
        """float32 sums over the in-image taps in (ky, kx) order; ``blocked`` (default :data:`FAST_PATHS`)
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
            blocked = FAST_PATHS
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
        if FAST_PATHS:
            bias = inputs[2] if len(inputs) > 2 else None
            if bias is None:
                bias = np.zeros(self.output_shapes[0][3], np.float32)
            return [self._total(inputs, epilogue=_float_epilogue(bias, self.act_min, self.act_max))]
        acc = self.accumulators(inputs)["acc"]
        lo, hi = np.float32(self.act_min), np.float32(self.act_max)
        return [np.minimum(np.maximum(acc, lo), hi).astype(np.float32)]

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """Window, taps and the float32 running sum of one output element."""
        x, w = inputs[0], inputs[1]
        assert x is not None and w is not None
        b, oy, ox, oc = _check_element(self, output, element)
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
    _require_rank(ctx, inp, 4, "input")
    _require_rank(ctx, filt, 4, "filter")
    dil_h = _positive_option(ctx, "dilation_h_factor", _INT16_MAX)
    dil_w = _positive_option(ctx, "dilation_w_factor", _INT16_MAX)
    stride_w = _positive_option(ctx, "stride_w", _INT16_MAX)
    stride_h = _positive_option(ctx, "stride_h", _INT16_MAX)
    _require_positive_dims(ctx, inp, (1, 2, 3), "input")
    _require_positive_dims(ctx, filt, (1, 2, 3), "filter")
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
        if inp.dtype != "float32" and _bias_zero_point(bias) != 0:
            raise ctx.fail_quant("bias zero point must be 0", bias)
        if len(bias.shape) != 1 or bias.shape[0] != o:
            raise ctx.error(f"bias shape {list(bias.shape)}; expected [{o}]", bias)
    geom, out_shape = _conv_geometry(ctx, inp, filt, o, stride_h, stride_w, dil_h, dil_w)
    dm = o // c_in
    if hybrid:
        return _prepare_depthwise_hybrid(ctx, inp, filt, dm, geom, out_shape)
    if inp.dtype == "float32":
        lo, hi = _float_range(ctx)
        return DepthwiseFloatData(
            output_shapes=(out_shape,),
            output_dtypes=("float32",),
            depth_multiplier=dm,
            act_min=float(lo),
            act_max=float(hi),
            **geom,
        )
    acc_bits = 64 if inp.dtype == "int16" else 32
    qs = _quant_setup(ctx, inp, filt, bias, out, o, acc_bits)
    # uint8 uses DepthwiseConvRound<kAwayFromZero>, which is the double-rounding MBQM in both builds.
    rounding = "double" if inp.dtype == "uint8" else ctx.rounding
    wvals = None
    if filt.value is not None:
        wvals = filt.value.reshape(-1, o).T  # (O, KH*KW)
    fast = _fast_setup(ctx, inp, out, qs, acc_bits, rounding, wvals, bias)
    return DepthwiseQuantData(
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


# ---------------------------------------------------------------------------------------------
# Hybrid (dynamic-range quantized) CONV_2D and DEPTHWISE_CONV_2D: float32 input and output, int8 filter


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
class _HybridConvBase(_ConvGeometry, OpData):
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
        # Exact: |q - zp| <= 255 and |w| <= 128, fewer than 2^30 products per sum (_check_depth).
        offset = -zp.reshape(-1, 1, 1, 1) if self.asymmetric else 0
        acc = self._im2col_sums(q, offset, wf, out_shape, self.groups)
        if self.sign_quirk:
            k = w[0].size
            quirk = (w.reshape(w.shape[0], k) == -128) & (np.arange(k) < (k & ~15))
            if quirk.any():
                # 256 * q where a negative q meets a -128 tap in the SSE-summed columns (see the class docstring).
                wq = quirk.reshape(w.shape).astype(np.float64)
                acc += 256 * self._im2col_sums(np.minimum(q, 0), 0, wq, out_shape, 1)
        return _wrap32_i64(acc)

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
        b, oy, ox, oc = el = _check_element(self, output, element)
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
        acc = _wrap32(total + quirk)
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
        b, oy, ox, oc = el = _check_element(self, output, element)
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
        acc = _wrap32(total)
        steps.append(Step("acc", acc, "int32 accumulator" + (" (wrapped)" if acc != total else "")))
        scale = np.float32(self.filter_scales[oc] * sx[b])
        steps.append(Step("scale", scale, f"f32(filter scale[{oc}] * input scale)"))
        scaled = np.float32(np.float32(acc) * scale)
        steps.append(Step("scaled", scaled, "f32(f32(acc) * scale)"))
        self._trace_tail(steps, inputs, oc, scaled)
        return steps


def _prepare_conv_hybrid(
    ctx: OpContext,
    inp: TensorInfo,
    filt: TensorInfo,
    groups: int,
    geom: dict[str, int],
    out_shape: tuple[int, int, int, int],
) -> OpData:
    """Hybrid CONV_2D: which kernel runs (``conv.cc`` Prepare/EvalImpl) and what LiteRT rejects."""
    _check_depth(ctx, geom["kernel_h"] * geom["kernel_w"] * filt.shape[3])
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
    lo, hi = _float_range(ctx)
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


def _prepare_depthwise_hybrid(
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
    lo, hi = _float_range(ctx)
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


# ---------------------------------------------------------------------------------------------
# TRANSPOSE_CONV


@dataclass(frozen=True, kw_only=True)
class _TransposeGeometry:
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


@dataclass(frozen=True, kw_only=True)
class TransposeConvQuantData(_TransposeGeometry, _QuantConvBase):
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
class _TransposeFloatOutput(OpData):
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


@dataclass(frozen=True, kw_only=True)
class TransposeConvFloatData(_TransposeGeometry, _TransposeFloatOutput):
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
        b, oy, ox, oc = _check_element(self, output, element)
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


@dataclass(frozen=True, kw_only=True)
class TransposeConvHybridData(_TransposeGeometry, _TransposeFloatOutput):
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
        b, oy, ox, oc = _check_element(self, output, element)
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


def prepare_transpose_conv(ctx: OpContext) -> OpData:
    """TRANSPOSE_CONV, matching LiteRT ``transpose_conv.cc`` Prepare/Eval checks + the reference kernels."""
    ctx.check_counts((3, 4), 1)
    shape_t, filt, inp, out = ctx.input(0), ctx.input(1), ctx.input(2), ctx.output(0)
    bias = ctx.inputs[3] if len(ctx.inputs) == 4 else None
    if len(shape_t.shape) != 1:
        raise ctx.error(f"output_shape must be 1-D, got shape {list(shape_t.shape)}", shape_t)
    _require_rank(ctx, inp, 4, "input")
    _require_rank(ctx, filt, 4, "weights")
    stride_h = _positive_option(ctx, "stride_h", _INT16_MAX)
    stride_w = _positive_option(ctx, "stride_w", _INT16_MAX)
    _require_positive_dims(ctx, inp, (1, 2, 3), "input")
    _require_positive_dims(ctx, filt, (0, 1, 2), "weights")
    ctx.check_dtype(inp, ("float32", "uint8", "int8", "int16"), "input")
    want_w = {"float32": "float32", "uint8": "uint8", "int8": "int8", "int16": "int8"}[inp.dtype]
    if filt.dtype != want_w:
        if not (inp.dtype == "float32" and filt.dtype == "int8"):
            raise ctx.error(f"weights type {filt.dtype}; expected {want_w} for {inp.dtype} input", filt)
    if bias is not None:
        if inp.dtype in ("uint8", "int8"):
            if bias.dtype != "int32":
                raise ctx.error(f"bias type {bias.dtype}; expected int32", bias)
            if inp.dtype == "int8" and _bias_zero_point(bias) != 0:
                raise ctx.fail_quant("bias zero point must be 0", bias)
        elif inp.dtype == "int16":
            if bias.dtype not in ("int32", "int64"):
                raise ctx.error(f"bias type {bias.dtype}; expected int32 or int64", bias)
            if _bias_zero_point(bias) != 0:
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
        acc_bits = _check_int16_bias(ctx, bias)
    if out.dtype != inp.dtype:
        raise ctx.error(f"output type {out.dtype} differs from input type {inp.dtype}", out)
    if inp.shape[3] != filt.shape[3]:
        raise ctx.error(f"input channels {inp.shape[3]} differ from the weights' input channels {filt.shape[3]}", filt)
    if shape_t.dtype != "int32":
        raise ctx.error(f"output_shape type {shape_t.dtype}; expected int32", shape_t)
    if shape_t.value is None:
        raise ctx.unsupported("an output_shape tensor whose value is not known before the run (not constant)")
    oshape = tuple(int(v) for v in np.asarray(shape_t.value).reshape(-1))
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
    cw = _out_size(ctx, padding, oshape[2], kw, stride_w, 1, "width")
    chh = _out_size(ctx, padding, oshape[1], kh, stride_h, 1, "height")
    if (chh, cw) != (inp.shape[1], inp.shape[2]):
        raise ctx.error(
            f"a {padding} convolution of the output {oshape[1]}x{oshape[2]} with kernel {kh}x{kw} and stride "
            f"{stride_h}x{stride_w} gives {chh}x{cw}, not the input's {inp.shape[1]}x{inp.shape[2]}",
            inp,
        )
    geom = dict(
        stride_h=stride_h,
        stride_w=stride_w,
        pad_h=_padding(stride_h, 1, oshape[1], kh, chh),
        pad_w=_padding(stride_w, 1, oshape[2], kw, cw),
        kernel_h=kh,
        kernel_w=kw,
    )
    if inp.dtype == "float32" and filt.dtype == "int8":
        lo, hi = _float_range(ctx)
        return TransposeConvHybridData(
            output_shapes=(oshape,),
            output_dtypes=("float32",),
            filter_scales=_hybrid_transpose_scales(ctx, filt),
            act_min=float(lo),
            act_max=float(hi),
            **geom,
        )
    if inp.dtype == "float32":
        lo, hi = _float_range(ctx)
        return TransposeConvFloatData(
            output_shapes=(oshape,),
            output_dtypes=("float32",),
            act_min=float(lo),
            act_max=float(hi),
            accumulation=ctx.float_accumulation,
            **geom,
        )
    _check_depth(ctx, kh * kw * inp.shape[3])
    ctx.require_quant(filt)
    qs = _quant_setup(ctx, inp, filt, bias, out, filt.shape[0], acc_bits)
    return TransposeConvQuantData(
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
