"""Convolutions: CONV_2D, DEPTHWISE_CONV_2D and TRANSPOSE_CONV (int8, int16x8, uint8, float32, hybrid).

Each kernel reproduces LiteRT 2.3.0's reference kernel (``BUILTIN_REF``) bit for bit:

* CONV_2D (:mod:`.conv2d`): ``conv.cc`` with ``reference_integer_ops::ConvPerChannel`` (int8, int16x8),
  ``reference_ops::Conv`` (uint8 legacy and float32);
* DEPTHWISE_CONV_2D (:mod:`.depthwise`): ``depthwise_conv.cc`` with
  ``reference_integer_ops::DepthwiseConvPerChannel`` (int8, int16x8), ``reference_ops::DepthwiseConv``
  (uint8 legacy, ``depthwiseconv_uint8.h``; float32, ``depthwiseconv_float.h``);
* TRANSPOSE_CONV (:mod:`.transpose_conv`): ``transpose_conv.cc`` with ``reference_integer_ops::TransposeConv``
  (int8, int16x8) and ``reference_ops::TransposeConv`` (uint8 legacy and float32);
* the hybrid (dynamic-range quantized) forms of the three, float32 input with an int8 filter
  (:mod:`.hybrid`);
* what they share (:mod:`.common`): output size and padding, the prepare checks, the integer arithmetic
  and fixed-point requantization of the quantized kernels, window and tap enumeration, the float32 ends.

The readable kernels (``eval_reference``; the integer sums are exact, so any summation order gives the C
result modulo 2^32):

* CONV_2D: im2col over a zero-point-padded input (``sliding_window_view``) and one float64 BLAS matrix
  product per row block (per group for grouped convolutions), then the literal requantization;
* DEPTHWISE_CONV_2D: a sum over the KH*KW kernel taps of shifted input slices times per-channel weights;
* TRANSPOSE_CONV: one float64 BLAS product of the input with every tap, then a col2im scatter-add over
  the KH*KW taps.

The fast paths of CONV_2D and DEPTHWISE_CONV_2D (``eval``; :mod:`refquant.requantize` has the closed
form and the exactness proof, :mod:`refquant.ops.fastpath` the block sizes): per-channel constants from
prepare, blocks of output rows that stay in the cache, float32 BLAS / multiply-adds for the bias-free sums
where ``max|x| * sum|w| <= 2^24`` (else float64 with the scale folded into the filter), and
``floor(acc*scale + const)`` evaluated exactly in float64. The tests compare every mode with
``eval_reference``; :data:`refquant.ops.conv.common.FAST_PATHS` switches them off.

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

Each prepared op also provides ``accumulators`` (the int32/int64 accumulators including the bias,
before requantization; for hybrid ops the int32 sums and the quantized input with its per-batch scale
and zero point) and ``trace`` (the arithmetic of one output element, computed by a separate, literal
per-element path that the tests compare with the fast path).
"""

from __future__ import annotations

from .conv2d import ConvFloatData, ConvQuantData, prepare_conv2d
from .depthwise import DepthwiseFloatData, DepthwiseQuantData, prepare_depthwise_conv2d
from .hybrid import ConvHybridData, DepthwiseHybridData, TransposeConvHybridData
from .transpose_conv import TransposeConvFloatData, TransposeConvQuantData, prepare_transpose_conv

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
