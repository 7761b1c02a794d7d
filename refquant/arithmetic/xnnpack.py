"""Which nodes LiteRT's default XNNPACK delegate takes (ai-edge-litert 2.3.0, x86-64).

The delegate's ``Visit*Node`` functions (``tflite/delegates/xnnpack/xnnpack_delegate.cc``) accept a node
when its tensor types, quantization and options are ones XNNPACK supports; every other node stays with
LiteRT's optimized builtin kernels. :func:`xnnpack_takes` reproduces that decision for the quantized
nodes whose arithmetic differs between the two; for value-preserving nodes the decision does not
change any value. Where the delegate accepts a node and then fails to prepare it (the interpreter then
fails outright, with no fallback), :func:`xnnpack_takes` raises.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import UnsupportedOpError

if TYPE_CHECKING:
    from ..ops.base import OpContext, TensorInfo

__all__ = ["xnnpack_takes", "ACTIVATIONS"]

#: Fused activations the delegate maps (``ConvertActivationToOutputRange``).
ACTIVATIONS = ("NONE", "RELU", "RELU_N1_TO_1", "RELU6")
#: ``XNN_MAX_TENSOR_DIMS``: ``CheckTensorShape`` refuses inputs of higher rank (and any dimension <= 0).
MAX_DIMS = 6
_Q8 = ("int8", "uint8")


def _per_tensor_q8(t: TensorInfo | None) -> bool:
    """An int8/uint8 tensor with one scale and one zero point, quantized dimension 0."""
    if t is None or t.dtype not in _Q8 or t.quant is None:
        return False
    q = t.quant
    return q.scale.size == 1 and q.zero_point.size == 1 and q.quantized_dimension == 0


def _float_or_q8(t: TensorInfo | None) -> bool:
    return t is not None and (t.dtype == "float32" or _per_tensor_q8(t))


def _scale(t: TensorInfo) -> np.float32:
    assert t.quant is not None
    return np.float32(t.quant.scale[0])


def _static(t: TensorInfo | None) -> bool:
    return t is not None and t.value is not None


def _filter_ok(ctx: OpContext, w: TensorInfo | None, axis: int) -> bool:
    """Static int8 filter, per-tensor or per-channel along ``axis``; uint8 per-tensor with quantized dimension 0."""
    if not _static(w) or w is None or w.quant is None:
        return False
    q = w.quant
    if w.dtype == "int8":
        if q.scale.size == 1:
            return True
        return q.quantized_dimension == axis and q.scale.size == w.shape[axis]
    if w.dtype == "uint8":
        return q.scale.size == 1 and q.quantized_dimension == 0
    return w.dtype == "float32"


def _bias_ok(b: TensorInfo) -> bool:
    """``CheckTensorFloat32OrFloat16OrQCInt32Type``: a float32 bias, or an int32 bias with affine quantization
    along dimension 0 (a quantization-less int32 bias is refused)."""
    if b.dtype == "float32":
        return True
    return b.dtype == "int32" and b.quant is not None and b.quant.quantized_dimension == 0 and len(b.shape) == 1


def _transpose_geometry(ctx: OpContext, w: TensorInfo) -> str:
    """``VisitTransposeConvNode`` / ``CalculateTransposeConvPaddings``: why the geometry is refused ("" if not)."""
    shape_t = ctx.inputs[0]
    if shape_t is None or shape_t.value is None:
        return "the output_shape tensor is not static"
    oshape = [int(v) for v in np.asarray(shape_t.value).reshape(-1)]
    kh, kw = w.shape[1], w.shape[2]
    sh, sw = int(ctx.option("stride_h", 1)), int(ctx.option("stride_w", 1))
    if ctx.option("padding", "SAME") == "VALID":
        if kh > oshape[1] or kw > oshape[2]:
            return "VALID padding with an output smaller than the kernel"
    elif kh < sh or kw < sw:
        return f"SAME padding with a kernel ({kh}x{kw}) smaller than the stride ({sh}x{sw})"
    return ""


def _conv_like(ctx: OpContext, filter_axis: int) -> tuple[bool, str]:
    """``VisitConv2DNode`` / ``VisitDepthwiseConv2DNode`` / ``VisitFullyConnectedNode`` / ``VisitTransposeConvNode``
    (quantized and float; the hybrid case is decided here too and refused by the profile)."""
    op = ctx.op.opcode
    x, w = ctx.inputs[0] if op != "TRANSPOSE_CONV" else ctx.inputs[2], ctx.inputs[1]
    bias_pos = 3 if op == "TRANSPOSE_CONV" else 2
    b = ctx.inputs[bias_pos] if len(ctx.inputs) > bias_pos else None
    y = ctx.outputs[0]
    if x is None or not _float_or_q8(x) or not _float_or_q8(y):
        return False, "activations are not float32 or per-tensor int8/uint8"
    if x.dtype != y.dtype:
        return False, "input and output types differ"
    if not _filter_ok(ctx, w, filter_axis):
        return False, "the filter is not static, or its quantization is not one XNNPACK takes"
    assert w is not None
    hybrid = x.dtype == "float32" and w.dtype == "int8"
    if x.dtype != w.dtype and not hybrid:
        return False, "input and filter types differ"
    if op == "FULLY_CONNECTED" and w.dtype == "int8" and not hybrid:
        assert w.quant is not None
        if int(w.quant.zero_point.reshape(-1)[0]) != 0:
            return False, "an int8 filter with a nonzero zero point"
    if op in ("CONV_2D", "DEPTHWISE_CONV_2D") and b is None:
        return False, "no bias tensor"
    if b is not None and not _static(b):
        return False, "the bias is not static"
    if b is not None and not _bias_ok(b):
        return False, "the bias is not float32 or an int32 tensor quantized along dimension 0"
    if ctx.option("fused_activation_function", "NONE") not in ACTIVATIONS:
        return False, "fused activation not supported by the delegate"
    if op == "TRANSPOSE_CONV":
        why = _transpose_geometry(ctx, w)
        if why:
            return False, why
    if x.dtype in _Q8:
        _check_requant_scale(ctx, x, w, y)
    return True, "taken by the XNNPACK delegate"


def _check_requant_scale(ctx: OpContext, x: TensorInfo, w: TensorInfo, y: TensorInfo) -> None:
    """XNNPACK refuses to create an operator whose requantization scale ``f32(f32(s_in*s_w)/s_out)`` is >= 256
    (``convolution-nhwc.c``, ``fully-connected-nc.c``, ``deconvolution-nhwc.c``): the delegate has taken the node
    by then, so the default interpreter fails."""
    assert w.quant is not None
    prod = np.multiply(_scale(x), np.asarray(w.quant.scale, np.float32), dtype=np.float32)
    scale = np.divide(prod, _scale(y), dtype=np.float32)
    if np.any(scale >= 256):
        raise ctx.error(
            f"arithmetic litert-xnnpack: requantization scale {float(scale.max())!r} >= 256: XNNPACK refuses to "
            "create the operator after the delegate took the node (not reproduced)",
            cls=UnsupportedOpError,
        )


def _shape_ok(ctx: OpContext) -> bool:
    """``CheckTensorShape`` of VisitBinaryNode / VisitUnaryNode on every input: rank <= 6, every dimension > 0."""
    return all(t is None or (len(t.shape) <= MAX_DIMS and all(d > 0 for d in t.shape)) for t in ctx.inputs)


def _binary_scales(ctx: OpContext, lo: float, hi: float, product: bool) -> tuple[bool, str]:
    """VisitBinaryNode for ADD/SUB (``CheckTensorsInputOutputScale``) and MUL (``...InputProductOutputScale``)."""
    a, b, y = ctx.inputs[0], ctx.inputs[1], ctx.outputs[0]
    if a is None or b is None:
        return False, "missing input"
    if not _shape_ok(ctx):
        return False, f"an input has more than {MAX_DIMS} dimensions or an empty dimension"
    if a.dtype == "float32" and b.dtype == "float32" and y.dtype == "float32":
        return True, "taken by the XNNPACK delegate"
    if not (_per_tensor_q8(a) and _per_tensor_q8(b) and _per_tensor_q8(y)) or len({a.dtype, b.dtype, y.dtype}) > 1:
        return False, "inputs and output are not per-tensor int8/uint8 of one type"
    if ctx.option("fused_activation_function", "NONE") not in ACTIVATIONS:
        return False, "fused activation not supported by the delegate"
    so = _scale(y)
    ratios = [np.float32(_scale(a) * _scale(b)) / so] if product else [_scale(a) / so, _scale(b) / so]
    for r in ratios:
        if not lo <= float(r) < hi:
            return False, f"scale ratio {float(r)!r} outside [{lo}, {hi})"
    return True, "taken by the XNNPACK delegate"


def _quantize(ctx: OpContext) -> tuple[bool, str]:
    """VisitUnaryNode, QUANTIZE: float -> per-tensor int8/uint8; int8 -> int8 / uint8 -> uint8 within the ratio."""
    x, y = ctx.inputs[0], ctx.outputs[0]
    if x is None:
        return False, "missing input"
    if not _shape_ok(ctx):
        return False, f"the input has more than {MAX_DIMS} dimensions or an empty dimension"
    if x.dtype == "float32" and _per_tensor_q8(y):
        return True, "taken by the XNNPACK delegate"
    if _per_tensor_q8(x) and _per_tensor_q8(y) and x.dtype == y.dtype:
        r = float(_scale(x) / _scale(y))
        if 1.0 / 256 <= r <= 128:
            return True, "taken by the XNNPACK delegate"
        return False, f"scale ratio {r!r} outside [1/256, 128]"
    return False, "types the delegate does not convert"


def _same_quant(a: TensorInfo, b: TensorInfo) -> bool:
    qa, qb = a.quant, b.quant
    if qa is None or qb is None:
        return qa is None and qb is None
    return bool(np.array_equal(qa.scale, qb.scale) and np.array_equal(qa.zero_point, qb.zero_point))


def _fails_in_prepare(ctx: OpContext) -> None:
    """Nodes the delegate takes and then fails on (the default interpreter fails, no fallback).

    MAX_POOL_2D and PAD with different input and output quantization; DEQUANTIZE of a constant whose result is a
    graph output ("failed to setup XNNPACK runtime", measured on one-operator models, per-tensor and per-channel).
    """
    if ctx.op.opcode == "DEQUANTIZE":
        x = ctx.inputs[0] if ctx.inputs else None
        graph_outputs = ctx.model.subgraphs[ctx.subgraph_index].outputs
        if _constant(ctx, x) and ctx.outputs and ctx.outputs[0].index in graph_outputs:
            raise ctx.error(
                "arithmetic litert-xnnpack: LiteRT's default interpreter fails on this node (a DEQUANTIZE of a "
                "constant whose result is a graph output: the XNNPACK delegate fails to set up its runtime)",
                cls=UnsupportedOpError,
            )
    if ctx.op.opcode in ("MAX_POOL_2D", "PAD", "PADV2"):
        x, y = ctx.inputs[0], ctx.outputs[0]
        if x is not None and _per_tensor_q8(x) and _per_tensor_q8(y) and not _same_quant(x, y):
            raise ctx.error(
                "arithmetic litert-xnnpack: LiteRT's default interpreter fails on this node (the XNNPACK delegate "
                "takes it, then refuses different input and output quantization in Prepare, with no fallback)",
                cls=UnsupportedOpError,
            )


def xnnpack_takes(ctx: OpContext) -> tuple[bool, str]:
    """(whether the XNNPACK delegate takes this node, why): the quantized nodes whose arithmetic it changes."""
    _fails_in_prepare(ctx)
    op = ctx.op.opcode
    x = ctx.inputs[0] if ctx.inputs else None
    if x is not None and x.dtype == "int16" or any(t.dtype == "int16" for t in ctx.outputs):
        return False, "int16 tensors are never delegated"
    if op == "CONV_2D" or op == "FULLY_CONNECTED":
        return _conv_like(ctx, 0)
    if op == "DEPTHWISE_CONV_2D":
        return _conv_like(ctx, 3)
    if op == "TRANSPOSE_CONV":
        return _conv_like(ctx, 0)
    if op in ("ADD", "SUB"):
        return _binary_scales(ctx, 1.0 / 1024, 256.0, product=False)
    if op == "MUL":
        return _binary_scales(ctx, 1.0 / 65536, 256.0, product=True)
    if op == "QUANTIZE":
        return _quantize(ctx)
    if op == "DEQUANTIZE":  # CheckTensorQInt8OrQUInt8Type on the input, float32 output, CheckTensorShape
        if not _shape_ok(ctx):
            return False, f"the input has more than {MAX_DIMS} dimensions or an empty dimension"
        return (x is not None and _per_tensor_q8(x), "taken by the XNNPACK delegate")
    if op == "RESIZE_BILINEAR":
        return _resize_bilinear(ctx)
    if op in ("LOGISTIC", "TANH"):
        return (x is not None and _per_tensor_q8(x), "taken by the XNNPACK delegate")
    if op == "LEAKY_RELU":
        return _leaky_relu(ctx)
    if op in ("MEAN", "SUM"):
        return _reduce(ctx)
    return False, "not an operator whose quantized arithmetic the delegate changes"


def _constant(ctx: OpContext, t: TensorInfo | None) -> bool:
    """A tensor with constant data in the model (``CheckTensorStaticAllocation``: kTfLiteMmapRo)."""
    if t is None or t.index < 0:
        return False
    tensors = ctx.model.subgraphs[ctx.subgraph_index].tensors
    return t.index < len(tensors) and tensors[t.index].is_constant


def _reduce(ctx: OpContext) -> tuple[bool, str]:
    """MEAN / SUM (``VisitReduceNode``).

    Taken when input and output are float32 or per-tensor int8/uint8, the axes tensor is a constant
    int32 tensor of rank <= 1 with 1 to 6 entries, and the reduction is not the "ill defined" one
    (a single axis 0 of a rank-0 input). Negative and repeated axes are fine (XNNPACK normalizes them
    and reduces each axis once). Any other axis of a rank-0 input is taken and then fails to reshape:
    the interpreter fails, so refquant refuses the node.
    """
    x, a, y = ctx.inputs[0], ctx.inputs[1] if len(ctx.inputs) > 1 else None, ctx.outputs[0]
    if x is None or not _float_or_q8(x) or not _float_or_q8(y):
        return False, "input or output is not float32 or per-tensor int8/uint8"
    if a is None or a.dtype != "int32" or len(a.shape) > 1 or not _constant(ctx, a) or a.value is None:
        return False, "the axes are not a constant int32 vector"
    axes = [int(v) for v in np.asarray(a.value).reshape(-1)]
    if not axes:
        return False, "empty reduction (no axes)"
    if len(axes) > 6:
        return False, f"{len(axes)} reduction axes (XNNPACK takes at most 6)"
    if len(x.shape) == 0:
        if axes == [0]:
            return False, "ill-defined reduction of a rank-0 input over axis 0"
        raise ctx.error(
            "arithmetic litert-xnnpack: LiteRT's default interpreter fails on this node (the XNNPACK delegate "
            "takes a reduction of a rank-0 input and then fails to reshape it, with no fallback)",
            cls=UnsupportedOpError,
        )
    return True, "taken by the XNNPACK delegate"


def _leaky_relu(ctx: OpContext) -> tuple[bool, str]:
    """VisitUnaryNode, LEAKY_RELU: alpha normal and nonzero, the positive and negative slopes within range."""
    x, y = ctx.inputs[0], ctx.outputs[0]
    if x is None or not (_per_tensor_q8(x) and _per_tensor_q8(y) and x.dtype == y.dtype):
        return False, "not per-tensor int8/uint8"
    if not _shape_ok(ctx):
        return False, f"the input has more than {MAX_DIMS} dimensions or an empty dimension"
    alpha = np.float32(ctx.option("alpha", 0.0))
    if not np.isfinite(alpha) or alpha == 0 or abs(float(alpha)) < np.finfo(np.float32).tiny:
        return False, "alpha is zero or not normal"
    ratio = np.float32(_scale(x) / _scale(y))
    neg = np.float32(ratio * alpha)
    if not (1.0 / 256 <= float(ratio) <= 128 and -127.99609375 <= float(neg) <= 128 and abs(float(neg)) >= 1.0 / 256):
        return False, "scale ratio or alpha outside what the delegate takes"
    return True, "taken by the XNNPACK delegate"


def _resize_bilinear(ctx: OpContext) -> tuple[bool, str]:
    """RESIZE_BILINEAR (``VisitResizeBilinearNode`` and XNNPACK's ``xnn_define_static_resize_bilinear_2d``).

    Taken when input and output are 4-D float32 or per-tensor int8/uint8 and the size is a constant
    int32 vector of two positive values below 2^24. With different input and output quantization the
    delegate takes the node and then fails in Prepare (``xnn_subgraph_check_quantization_parameter_matches``):
    the interpreter fails, so refquant refuses the node.
    """
    x, size, y = ctx.inputs[0], ctx.inputs[1] if len(ctx.inputs) > 1 else None, ctx.outputs[0]
    if x is None or not _float_or_q8(x) or not _float_or_q8(y) or len(x.shape) != 4 or len(y.shape) != 4:
        return False, "input or output is not a 4-D float32 or per-tensor int8/uint8 tensor"
    if size is None or size.dtype != "int32" or len(size.shape) != 1 or not _constant(ctx, size) or size.value is None:
        return False, "the size is not a constant int32 vector"
    dims = [int(v) for v in np.asarray(size.value).reshape(-1)]
    if len(dims) != 2 or min(dims) <= 0 or max(dims) >= 1 << 24:
        return False, f"output size {dims} is not two positive values below 2^24"
    if x.dtype != "float32" and (x.dtype != y.dtype or not _same_quant(x, y)):
        raise ctx.error(
            "arithmetic litert-xnnpack: LiteRT's default interpreter fails on this node (the XNNPACK delegate takes "
            "RESIZE_BILINEAR, then refuses different input and output quantization in Prepare, with no fallback)",
            cls=UnsupportedOpError,
        )
    return True, "taken by the XNNPACK delegate"
