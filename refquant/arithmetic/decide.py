"""The per-operator decisions of each profile: one table per runtime.

:func:`decide` is called once per operator at prepare time (through ``OpContext.arithmetic``). It
returns an :class:`~refquant.arithmetic.OpArithmetic`, or raises :class:`UnsupportedOpError` naming the
runtime and the operator where refquant does not reproduce that runtime (yet, or because the runtime
itself fails on the model).

Rescaling variant names used in the tables (the kernels implement each through
:mod:`refquant.requantize`):

``reference``
    the kernel's LiteRT reference arithmetic (what refquant computed before profiles existed).
``neon_mbqm``
    MultiplyByQuantizedMultiplier as LiteRT's NEON code computes it (``vqrdmulh`` then ``vrshl``: ties
    up at both stages) -- on x86 through NEON_2_SSE. With ``blocks`` > 0 only the first
    ``blocks * floor(n / blocks)`` output channels (or flat elements) use it and the rest use the
    reference double rounding.
``fp32_rne``
    XNNPACK's float requantization: ``rne(f32(acc) * f32(f32(s_in * s_w) / s_out)) + zp_out``, fused
    activation bounds rounded half to even too.
``mbqm_double``
    MultiplyByQuantizedMultiplier with double rounding where LiteRT's reference kernel does something
    else (tflite-micro's FULLY_CONNECTED).
``xnn_add20``, ``xnn_mul8``, ``xnn_float_reduce``, ``xnn_q11``, ``float_round_away``,
``mbqm_int16_wrap``, ``neon_add``, ``rne_reciprocal``, ``two_products``, ``legacy_mean``, ``correct_sum``,
``raw_clamp``, ``first_scale``
    op-specific variants, described where each table uses them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import UnsupportedOpError
from . import OpArithmetic, get_profile
from .xnnpack import xnnpack_takes

if TYPE_CHECKING:
    from ..ops.base import OpContext

__all__ = ["decide", "REFERENCE", "OPTIMIZED", "XNNPACK", "TFLM"]

REF_KERNEL = "builtin reference kernel"
OPT_KERNEL = "builtin optimized kernel"
XNN = "XNNPACK delegate"
TFLM_KERNEL = "tflite-micro reference kernel"

_Q8 = ("int8", "uint8")


def _dtype(ctx: OpContext) -> str:
    """The dtype an operator's arithmetic is keyed by: its first input's (the output's for none); for
    TRANSPOSE_CONV its activations' (input 2: input 0 is the int32 output shape)."""
    if ctx.op.opcode == "TRANSPOSE_CONV" and len(ctx.inputs) > 2 and ctx.inputs[2] is not None:
        return ctx.inputs[2].dtype
    for t in ctx.inputs:
        if t is not None:
            return t.dtype
    return ctx.outputs[0].dtype if ctx.outputs else ""


def _is_hybrid(ctx: OpContext) -> bool:
    """Float activations with integer weights (dynamic-range quantization)."""
    return (
        len(ctx.inputs) > 1
        and _dtype(ctx) == "float32"
        and any(t is not None and t.dtype in ("int8", "int4", "int2", "uint8") for t in ctx.inputs[1:2])
    )


def _not_reproduced(runtime: str, ctx: OpContext, why: str) -> UnsupportedOpError:
    return ctx.error(f"arithmetic {runtime}: not reproduced by refquant: {why}", cls=UnsupportedOpError)  # type: ignore[return-value]


Rule = Callable[["OpContext"], OpArithmetic]


# ---------------------------------------------------------------------------------------------
# litert-ref: every operator as LiteRT's reference kernels compute it


def _reference(ctx: OpContext) -> OpArithmetic:
    return OpArithmetic("litert-ref", REF_KERNEL, "reference")


REFERENCE: dict[str, Rule] = {}


# ---------------------------------------------------------------------------------------------
# litert-optimized: LiteRT's optimized builtin kernels, NEON paths through NEON_2_SSE on x86


def _opt(rescale: str = "reference", blocks: int = 0, note: str = "") -> OpArithmetic:
    return OpArithmetic("litert-optimized", OPT_KERNEL, rescale, blocks, note=note)


def _opt_gemm(ctx: OpContext) -> OpArithmetic:
    """CONV_2D / FULLY_CONNECTED: the gemm output stage is NEON on every output channel; TRANSPOSE_CONV:
    NEON on blocks of 8 output channels (int8) or of 16 flat output elements (uint8), the rest as reference."""
    dt = _dtype(ctx)
    if _is_hybrid(ctx):
        if ctx.op.opcode == "CONV_2D" and _per_channel_filter(ctx):
            raise _not_reproduced("litert-optimized", ctx, "hybrid per-channel CONV_2D (optimized hybrid kernel)")
        return _opt(note="hybrid: the kernels refquant reproduces for litert-ref run here too")
    if dt in _Q8 and ctx.op.opcode == "CONV_2D" and _grouped(ctx):
        return _opt(note="grouped convolution: LiteRT runs its reference kernel (measured)")
    if dt in _Q8:
        if ctx.op.opcode == "FULLY_CONNECTED":
            why = _fc_unmeasured(ctx)
            if why:
                raise _not_reproduced("litert-optimized", ctx, why)
        if ctx.op.opcode == "TRANSPOSE_CONV" and dt == "int8":
            return _opt("neon_mbqm", 8, "NEON requantization on blocks of 8 output channels, the rest as reference")
        if ctx.op.opcode == "TRANSPOSE_CONV":
            return _opt(
                "neon_mbqm", 16, "NEON requantization on blocks of 16 flat output elements, the tail as reference"
            )
        return _opt("neon_mbqm", note="ruy / optimized gemm output stage: NEON requantization on every channel")
    if dt == "int16" and ctx.op.opcode == "FULLY_CONNECTED":
        raise _not_reproduced("litert-optimized", ctx, "int16x8 FULLY_CONNECTED rounds differently (formula open)")
    return _opt()


def _fc_unmeasured(ctx: OpContext) -> str:
    """Why a quantized FULLY_CONNECTED's non-reference arithmetic is not reproduced ("" when it is)."""
    w, y = ctx.inputs[1], ctx.outputs[0]
    if w is not None and w.dtype not in _Q8:
        return f"FULLY_CONNECTED with {w.dtype} weights (a different kernel, not measured)"
    if y.dtype != _dtype(ctx):
        return f"{_dtype(ctx)} -> {y.dtype} FULLY_CONNECTED (not measured)"
    return ""


def _grouped(ctx: OpContext) -> bool:
    """A CONV_2D whose filter has fewer input channels than the input (groups > 1)."""
    x, w = ctx.inputs[0], ctx.inputs[1] if len(ctx.inputs) > 1 else None
    return x is not None and w is not None and len(x.shape) == 4 and len(w.shape) == 4 and x.shape[3] != w.shape[3]


def _per_channel_filter(ctx: OpContext) -> bool:
    w = ctx.inputs[1] if len(ctx.inputs) > 1 else None
    return w is not None and w.quant is not None and w.quant.scale.size > 1


def _opt_depthwise(ctx: OpContext) -> OpArithmetic:
    """DEPTHWISE_CONV_2D: int8 NEON requantization on blocks of 8 output channels; uint8 as reference."""
    dt = _dtype(ctx)
    if dt in _Q8 and (len(ctx.inputs) < 3 or ctx.inputs[2] is None):
        raise ctx.error(
            "arithmetic litert-optimized: LiteRT's optimized depthwise kernel crashes (segfault) on a quantized "
            "DEPTHWISE_CONV_2D without a bias tensor",
            cls=UnsupportedOpError,
        )
    if dt == "int8":
        return _opt("neon_mbqm", 8, "NEON requantization on blocks of 8 output channels, the rest as reference")
    if _is_hybrid(ctx) and _per_channel_filter(ctx):
        raise _not_reproduced("litert-optimized", ctx, "hybrid per-channel DEPTHWISE_CONV_2D")
    return _opt()


def _opt_add(ctx: OpContext) -> OpArithmetic:
    """ADD int8/uint8: NEON blocks (16 int8 / 8 uint8 elements of the innermost run) scale the inputs with one
    rounding and wrap the int16 output stage; the scalar tail is the reference kernel. SUB: = reference (measured)."""
    dt = _dtype(ctx)
    if dt in _Q8:
        return _opt(
            "neon_add",
            16 if dt == "int8" else 8,
            "NEON blocks: inputs rounded once (vqrdmulh), int16 output stage wraps; the tail as reference",
        )
    return _opt()


def _opt_mul(ctx: OpContext) -> OpArithmetic:
    if _dtype(ctx) in _Q8:
        return _opt("mbqm_int16_wrap", note="MBQM, saturate to int16, add the zero point in int16 with wrap-around")
    return _opt()


def _opt_quantize(ctx: OpContext) -> OpArithmetic:
    src, dst = _dtype(ctx), ctx.outputs[0].dtype
    y = ctx.outputs[0]
    if src == "float32" and y.quant is not None and y.quant.scale.size == 1:
        return _opt("rne_reciprocal", 8, "blocks of 8: rne(f32(x * f32(1/f64(s)))); tail: round_away(f64(x)/f64(s))")
    if src in _Q8 and dst in _Q8:  # int8<->uint8 too (measured: the same NEON loop)
        return _opt("neon_mbqm", 16, "NEON requantization on blocks of 16 flat elements, the tail as reference")
    return _opt()


def _opt_dequantize(ctx: OpContext) -> OpArithmetic:
    x = ctx.inputs[0]
    if _dtype(ctx) in _Q8 and x is not None and x.quant is not None and x.quant.scale.size == 1:
        return _opt("two_products", 8, "blocks of 8: f32(q*s) - f32(zp*s); tail as reference f32(q - zp)*s")
    return _opt(note="per-channel: the reference kernel")


def _opt_mean(ctx: OpContext) -> OpArithmetic:
    x = ctx.inputs[0]
    if x is not None and x.dtype in _Q8 and len(x.shape) == 4 and ctx.option("keep_dims", False):
        axes = ctx.inputs[1]
        if axes is not None and axes.value is not None:
            import numpy as np

            got = sorted({int(a) % 4 for a in np.asarray(axes.value).reshape(-1)})
            if got == [1, 2]:
                return _opt(
                    "legacy_mean",
                    16 if x.dtype == "int8" else 0,
                    "optimized global average pooling: float32 multiplier, NEON requantization on blocks of 16 channels",
                )
    return _opt()


def _opt_sum(ctx: OpContext) -> OpArithmetic:
    if _dtype(ctx) in _Q8 + ("int16",):
        return _opt("float_round_away", note="the true sum, rescaled in float32 and rounded half away from zero")
    return _opt()


def _opt_open(what: str) -> Rule:
    def rule(ctx: OpContext) -> OpArithmetic:
        if _dtype(ctx) == "int16":
            raise _not_reproduced(
                "litert-optimized", ctx, f"the optimized int16 {what} rounds differently (formula open)"
            )
        return _opt()

    return rule


def _opt_resize(ctx: OpContext) -> OpArithmetic:
    if ctx.op.opcode == "RESIZE_BILINEAR" and _dtype(ctx) == "uint8":
        raise _not_reproduced("litert-optimized", ctx, "uint8 RESIZE_BILINEAR (optimized kernel, formula open)")
    return _opt()


OPTIMIZED: dict[str, Rule] = {
    "CONV_2D": _opt_gemm,
    "FULLY_CONNECTED": _opt_gemm,
    "TRANSPOSE_CONV": _opt_gemm,
    "DEPTHWISE_CONV_2D": _opt_depthwise,
    "ADD": _opt_add,
    "MUL": _opt_mul,
    "QUANTIZE": _opt_quantize,
    "DEQUANTIZE": _opt_dequantize,
    "MEAN": _opt_mean,
    "SUM": _opt_sum,
    "LOGISTIC": _opt_open("LOGISTIC"),
    "TANH": _opt_open("TANH"),
    "RESIZE_BILINEAR": _opt_resize,
}


# ---------------------------------------------------------------------------------------------
# litert-xnnpack: the XNNPACK delegate where it takes the node, litert-optimized elsewhere


def _xnn(rescale: str, note: str = "") -> OpArithmetic:
    return OpArithmetic("litert-xnnpack", XNN, rescale, note=note)


def _xnn_fc(ctx: OpContext) -> OpArithmetic:
    why = _fc_unmeasured(ctx)
    if why:
        raise _not_reproduced("litert-xnnpack", ctx, why)
    return _xnn("fp32_rne", _XNN_GEMM)


_XNN_GEMM = "float32 scale f32(f32(s_in * s_w) / s_out), round half to even; activation bounds ties to even"

XNNPACK: dict[str, Rule] = {
    "CONV_2D": lambda ctx: _xnn("fp32_rne", _XNN_GEMM),
    "DEPTHWISE_CONV_2D": lambda ctx: _xnn("fp32_rne", _XNN_GEMM),
    "FULLY_CONNECTED": _xnn_fc,
    "TRANSPOSE_CONV": lambda ctx: _xnn("fp32_rne", _XNN_GEMM),
    "MUL": lambda ctx: _xnn("fp32_rne", "rne(f32(f32((a-za)*(b-zb)) * f32(f32(sa*sb)/so))), bounds ties to even"),
    "ADD": lambda ctx: _xnn("xnn_add20", "20-bit multipliers, one arithmetic shift (ties up), bounds ties to even"),
    "SUB": lambda ctx: _xnn("xnn_add20", "20-bit multipliers, one arithmetic shift (ties up), bounds ties to even"),
    "LEAKY_RELU": lambda ctx: _xnn("xnn_mul8", "8-bit multipliers lrintf(256 * ratio), >> 8 with ties up"),
    "QUANTIZE": lambda ctx: _xnn(
        "rne_reciprocal" if _dtype(ctx) == "float32" else "xnn_mul8",
        "rne(f32(x * f32(1/s))) + zp" if _dtype(ctx) == "float32" else "8-bit multiplier lrintf(256 * s_in/s_out)",
    ),
    "DEQUANTIZE": lambda ctx: _xnn_dequantize(ctx),
    "MEAN": lambda ctx: _xnn("xnn_float_reduce", "int32 sum, float32 scale and zero point, round half to even"),
    "SUM": lambda ctx: _xnn("xnn_float_reduce", "int32 sum, float32 scale and zero point, round half to even"),
    "RESIZE_BILINEAR": lambda ctx: _xnn("xnn_q11", "Q11 fixed-point weights on the raw values"),
    "LOGISTIC": lambda ctx: _xnn("reference", "a 256-entry table equal to the reference kernel's"),
    "TANH": lambda ctx: _xnn("reference", "a 256-entry table equal to the reference kernel's"),
}


def _xnn_dequantize(ctx: OpContext) -> OpArithmetic:
    """DEQUANTIZE: XNNPACK's qs8-f32-vcvt equals the reference; a constant input gives the optimized kernel's values."""
    x = ctx.inputs[0]
    tensors = ctx.model.subgraphs[ctx.subgraph_index].tensors
    if x is not None and 0 <= x.index < len(tensors) and tensors[x.index].is_constant:
        inner = _opt_dequantize(ctx)
        return OpArithmetic(
            "litert-xnnpack",
            inner.executor,
            inner.rescale,
            inner.blocks,
            note="constant input: measured equal to the optimized kernel (" + inner.note + ")",
        )
    return _xnn("reference", "f32(q - zp) * s, as the reference kernel (measured equal)")


def _xnnpack(ctx: OpContext) -> OpArithmetic:
    taken, why = xnnpack_takes(ctx)
    if taken and _is_hybrid(ctx):
        raise _not_reproduced(
            "litert-xnnpack", ctx, "the XNNPACK delegate takes this dynamic-range (hybrid) node: its own algorithm"
        )
    if taken and _dtype(ctx) == "float32" and ctx.op.opcode != "QUANTIZE":
        return _xnn("reference", "float32: XNNPACK's float kernels (compared within the float tolerance)")
    if taken:
        rule = XNNPACK.get(ctx.op.opcode)
        if rule is None:  # a value-preserving op (CONCATENATION, RESHAPE, MAX_POOL_2D, ...): the same values
            return _xnn("reference", why)
        return rule(ctx)
    try:
        inner = OPTIMIZED.get(ctx.op.opcode, lambda c: _opt())(ctx)
    except UnsupportedOpError as exc:  # name the profile the user asked for
        text = str(exc).split("arithmetic litert-optimized: ", 1)[-1]
        raise ctx.error(
            f"arithmetic litert-xnnpack: the XNNPACK delegate does not take this node ({why}), and LiteRT's "
            f"optimized kernel that runs it instead is {text}",
            cls=UnsupportedOpError,
        ) from None
    return OpArithmetic("litert-xnnpack", inner.executor, inner.rescale, inner.blocks, inner.accumulator, why)


# ---------------------------------------------------------------------------------------------
# tflm: tflite-micro's reference kernels


def _tflm(rescale: str = "reference", note: str = "") -> OpArithmetic:
    return OpArithmetic("tflm", TFLM_KERNEL, rescale, note=note)


def _tflm_fc(ctx: OpContext) -> OpArithmetic:
    if _dtype(ctx) == "int8":
        why = _fc_unmeasured(ctx)
        if why:
            raise _not_reproduced("tflm", ctx, why)
        return _tflm("mbqm_double", "MultiplyByQuantizedMultiplier with double rounding (LiteRT's REF rounds once)")
    return _tflm_common(ctx)


def _tflm_sum(ctx: OpContext) -> OpArithmetic:
    if _dtype(ctx) in ("int8", "int16"):
        return _tflm("correct_sum", "the true sum with MultiplyByQuantizedMultiplier (no byte reinterpretation)")
    return _tflm_common(ctx)


def _tflm_relu6(ctx: OpContext) -> OpArithmetic:
    if _dtype(ctx) in ("int8", "int16"):
        return _tflm("raw_clamp", "no requantization: clamp to [zp_in, zp_in + round(6 / s_in)] of the input")
    return _tflm_common(ctx)


def _tflm_dequantize(ctx: OpContext) -> OpArithmetic:
    x = ctx.inputs[0]
    if x is not None and x.quant is not None and x.quant.scale.size > 1:
        return _tflm("first_scale", "per-channel parameters are ignored: scale[0] and zero_point[0] for every element")
    return _tflm_common(ctx)


def _tflm_quantize(ctx: OpContext) -> OpArithmetic:
    """tflite-micro's QUANTIZE refuses float32 -> uint8, uint8 -> uint8 / int16 and per-channel outputs (measured)."""
    src, dst = _dtype(ctx), ctx.outputs[0].dtype
    if dst == "uint8" and src in ("float32", "uint8") or (src, dst) == ("uint8", "int16"):
        raise _not_reproduced("tflm", ctx, f"tflite-micro's QUANTIZE does not support {src} -> {dst}")
    y = ctx.outputs[0]
    if y.quant is not None and y.quant.scale.size > 1:
        raise _not_reproduced("tflm", ctx, "tflite-micro fails to allocate a per-channel QUANTIZE")
    return _tflm_common(ctx)


def _tflm_common(ctx: OpContext) -> OpArithmetic:
    dt = _dtype(ctx)
    if dt == "uint8" and ctx.op.opcode not in ("QUANTIZE", "DEQUANTIZE", "RESHAPE", "CAST"):
        raise _not_reproduced("tflm", ctx, "tflite-micro does not run uint8 kernels for this operator")
    return _tflm()


def _tflm_open(what: str) -> Rule:
    def rule(ctx: OpContext) -> OpArithmetic:
        if _dtype(ctx) == "int16":
            raise _not_reproduced("tflm", ctx, f"tflite-micro's int16 {what} differs (formula open)")
        return _tflm_common(ctx)

    return rule


TFLM: dict[str, Rule] = {
    "FULLY_CONNECTED": _tflm_fc,
    "SUM": _tflm_sum,
    "RELU6": _tflm_relu6,
    "DEQUANTIZE": _tflm_dequantize,
    "QUANTIZE": _tflm_quantize,
    "RSQRT": _tflm_open("RSQRT"),
    "TRANSPOSE_CONV": _tflm_open("TRANSPOSE_CONV"),
}

_TABLES: dict[str, tuple[dict[str, Rule], Rule]] = {
    "litert-ref": (REFERENCE, _reference),
    "litert-optimized": (OPTIMIZED, lambda ctx: _opt()),
    "litert-xnnpack": ({}, _xnnpack),
    "tflm": (TFLM, _tflm_common),
}


def decide(profile: str, ctx: OpContext) -> OpArithmetic:
    """What operator ``ctx.op`` computes under ``profile`` (UnsupportedOpError where refquant does not reproduce it)."""
    get_profile(profile)
    table, default = _TABLES[profile]
    return table.get(ctx.op.opcode, default)(ctx)
