"""QUANTIZE and DEQUANTIZE: LiteRT's reference kernels (``quantize.cc``, ``dequantize.cc``; docs/litert_semantics.md §3.15).

QUANTIZE float32 -> int8/uint8/int16 (reference_ops::AffineQuantize / PerChannelQuantize)::

    q = clamp(int32(roundf(f32(x) / f32(scale))) + zero_point, type range)

dividing by the scale (not multiplying by its reciprocal), ``roundf`` rounding ties away from zero, and
an out-of-range conversion (``|x/scale| >= 2^31``, inf, NaN) giving INT32_MIN, so the output is qmin.
Per-channel output quantization uses ``scale[c]``/``zero_point[c]`` along ``quantized_dimension``.

QUANTIZE integer -> integer (reference_ops::Requantize), with ``(M, shift) = QuantizeMultiplier(
f64(s_in) / f64(s_out))`` from the legacy per-tensor parameters::

    q_out = clamp(MultiplyByQuantizedMultiplier(q - zp_in, M, shift) + zp_out, type range)

and the int8 <-> uint8 fast path ``q ^ 0x80`` when the scales are equal (M = 2^30, shift = 1) and the
zero points differ by exactly 128 (same result, kept for fidelity).

DEQUANTIZE int8/uint8/int16 (and int4/uint4/int2 constants) -> float32: ``f32(f64(scale) * (q - zp))``
per tensor, ``f32(scale[c] * (q - zp[c]))`` per channel (equal values: one rounding of an exact
product); float16 -> float32 is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fixedpoint import INT32_MIN, round_half_away_from_zero, wrap_int32_i64
from ..model import numpy_dtype
from ..quantization import dequantize, dtype_range, quantize, quantize_multiplier
from ..requantize import multiply_by_quantized_multiplier, neon_mbqm
from ..requantize.elementwise import (
    block_mask,
    dequantize_two_products,
    opt_quantize_f32,
    xnn_mul8,
    xnn_mul8_multiplier,
    xnn_quantize_f32,
)
from .base import OpContext, OpData, Step, TensorInfo
from .movement import legacy_params

__all__ = ["QuantizeFloatData", "RequantizeData", "DequantizeData", "prepare_quantize", "prepare_dequantize"]

#: Use the per-tensor float -> integer fast path (tests switch this off to compare with the readable kernel).
FAST_PATHS = True


def _channel_params(ctx: OpContext, t: TensorInfo, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, int | None]:
    """(scales, zero points, axis) of ``t``: per-channel when it has more than one scale, else per-tensor."""
    q = ctx.require_quant(t)
    if q.scale.size == 1:
        return q.scale.reshape(()), q.zero_point[:1].reshape(()), None
    axis = q.quantized_dimension
    if not 0 <= axis < len(shape) or shape[axis] != q.scale.size:
        raise ctx.fail_quant(
            f"{q.scale.size} per-channel scales along dimension {axis} do not match the shape {list(shape)}", t
        )
    zp = q.zero_point if q.zero_point.size == q.scale.size else np.full(q.scale.size, q.zero_point[0], np.int64)
    return q.scale.copy(), zp.copy(), axis


@dataclass(frozen=True)
class QuantizeFloatData(OpData):
    """QUANTIZE float32 -> int8/uint8/int16 (reference_ops::AffineQuantize / PerChannelQuantize)."""

    #: float32 scale (0-d per tensor, 1-d per channel).
    scale: np.ndarray = None  # type: ignore[assignment]
    #: Zero point(s), matching ``scale``.
    zero_point: np.ndarray = None  # type: ignore[assignment]
    #: Channel dimension for per-channel output, else None.
    axis: int | None = None
    #: "reference", "xnnpack" (``rne_reciprocal`` of the XNNPACK delegate) or "optimized" (``rne_reciprocal``
    #: of LiteRT's optimized kernel: SIMD blocks of ``blocks`` flat elements, the tail in double).
    variant: str = "reference"
    #: SIMD block of the optimized variant (flat elements).
    blocks: int = 0

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """``clamp(int32(roundf(x / scale)) + zp)``; out-of-range or NaN quotients give qmin.

        Under a profile's variant: :func:`refquant.requantize.xnn_quantize_f32` or
        :func:`refquant.requantize.opt_quantize_f32`.

        Per-tensor fast path (same values as :func:`refquant.quantization.quantize`, which
        :meth:`eval_reference` runs): when every ``|x / scale| < 2^31 - 2^16`` (no NaN, no out-of-range
        conversion, no wrap of ``+ zp``), ``roundf`` is ``copysign(floor(|q|) + (frac >= 0.5), q)`` (exact),
        and ``+ zp`` and the clamp are done in float32 (exact: a sum that rounds is far outside the range).
        """
        x = inputs[0]
        assert x is not None
        dt = numpy_dtype(self.output_dtypes[0])
        if self.variant != "reference":
            return [self._variant(np.asarray(x)).astype(dt)]
        if self.axis is None and FAST_PATHS and np.asarray(x).size:
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                xf = np.asarray(x, np.float32)
                q = np.divide(xf.reshape(-1), np.float32(self.scale), dtype=np.float32)  # 1-D: in-place ops
                mag = np.abs(q)
                if mag.max() < np.float32(2**31 - 2**16):  # False for NaN
                    r = np.floor(mag)
                    np.subtract(mag, r, out=mag)  # the fraction, exact
                    r += mag >= np.float32(0.5)
                    np.copysign(r, q, out=r)
                    r += np.float32(int(self.zero_point))
                    lo, hi = dtype_range(dt)
                    np.clip(r, np.float32(lo), np.float32(hi), out=r)
                    return [r.astype(dt).reshape(xf.shape)]
        return self.eval_reference(inputs)

    def eval_reference(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """The readable kernel, :func:`refquant.quantization.quantize` (or the profile's variant)."""
        x = inputs[0]
        assert x is not None
        dt = numpy_dtype(self.output_dtypes[0])
        if self.variant != "reference":
            return [self._variant(np.asarray(x)).astype(dt)]
        return [quantize(x, self.scale, self.zero_point, dt, self.axis)]

    def _variant(self, x: np.ndarray) -> np.ndarray:
        if self.variant == "xnnpack":
            return xnn_quantize_f32(x, float(self.scale), int(self.zero_point), self.output_dtypes[0])
        return opt_quantize_f32(x, float(self.scale), int(self.zero_point), self.output_dtypes[0], self.blocks)

    def _variant_trace(self, x: np.ndarray, element: tuple[int, ...]) -> list[Step]:
        v = np.float32(x[element])
        s = np.float32(self.scale)
        zp = int(self.zero_point)
        flat = int(np.ravel_multi_index(element, x.shape)) if x.ndim else 0
        value = int(
            self._variant(x.reshape(-1)[flat : flat + 1] if self.variant == "xnnpack" else x).reshape(-1)[
                0 if self.variant == "xnnpack" else flat
            ]
        )
        steps = [Step("input", float(v), "float32 input value"), Step("scale", float(s), "output scale")]
        if self.variant == "xnnpack":
            inv = np.float32(np.float32(1.0) / s)
            with np.errstate(all="ignore"):
                prod = np.float32(v * inv)
            steps += [
                Step("1 / scale", float(inv), "float32 reciprocal (XNNPACK)"),
                Step("x * (1 / scale)", float(prod), "float32 product"),
                Step("output", value, f"round half to even, + {zp}, saturated (XNNPACK f32-qs8-vcvt)"),
            ]
            return steps
        if bool(block_mask(x.size, self.blocks)[flat]):
            inv = np.float32(1.0 / np.float64(s))
            with np.errstate(all="ignore"):
                prod = np.float32(v * inv)
            steps += [
                Step("1 / scale", float(inv), f"f32(1 / f64(scale)): flat element {flat} is in a SIMD block"),
                Step("x * (1 / scale)", float(prod), "float32 product"),
                Step("output", value, f"round half to even, + {zp} (int32), saturated (optimized SIMD block)"),
            ]
            return steps
        with np.errstate(all="ignore"):
            quot = np.float64(v) / np.float64(s)
        steps += [
            Step("x / scale", float(quot), f"double division: flat element {flat} is in the scalar tail"),
            Step("output", value, f"round half away from zero, + {zp}, saturated (optimized scalar tail)"),
        ]
        return steps

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """Division, roundf, int32 conversion, zero point and clamp for one element."""
        x = inputs[0]
        assert x is not None
        if self.variant != "reference":
            return self._variant_trace(np.asarray(x, np.float32), tuple(element))
        v = np.float32(np.asarray(x)[element])
        c = None if self.axis is None else element[self.axis]
        s = np.float32(self.scale if c is None else self.scale[c])
        zp = int(self.zero_point if c is None else self.zero_point[c])
        lo, hi = dtype_range(numpy_dtype(self.output_dtypes[0]))
        with np.errstate(all="ignore"):
            quot = np.float32(v / s)
            r = np.float32(round_half_away_from_zero(quot))
        in_range = bool(np.float32(INT32_MIN) <= r < np.float32(2**31))
        i32 = int(r) if in_range else INT32_MIN
        total = int(wrap_int32_i64(np.int64(i32) + zp))
        out = min(max(total, lo), hi)
        return [
            Step("input", float(v), "float32 input value"),
            Step("scale", float(s), "output scale" + ("" if c is None else f" of channel {c}")),
            Step("x / scale", float(quot), "float32 division (not a multiplication by 1/scale)"),
            Step("roundf", float(r), "round half away from zero"),
            Step(
                "int32",
                i32,
                "static_cast<int32_t>" + ("" if in_range else ": out of range or NaN gives INT32_MIN on x86"),
            ),
            Step("+ zero_point", total, f"zero point {zp} (int32 add)"),
            Step("output", out, f"clamped to [{lo}, {hi}]"),
        ]


@dataclass(frozen=True)
class RequantizeData(OpData):
    """QUANTIZE integer -> integer (reference_ops::Requantize)."""

    #: Quantized multiplier and shift of ``s_in / s_out`` (QuantizeMultiplier, double precision).
    multiplier: int = 0
    shift: int = 0
    #: Legacy input and output zero points.
    zp_in: int = 0
    zp_out: int = 0
    #: True for the int8 <-> uint8 ``q ^ 0x80`` fast path.
    xor_128: bool = False
    #: MultiplyByQuantizedMultiplier rounding variant ("double" or "single").
    rounding: str = "double"
    #: "reference"; "xnn_mul8" (XNNPACK: 8-bit multiplier ``mul8``); "neon_mbqm" (LiteRT optimized: NEON MBQM
    #: on SIMD blocks of ``blocks`` flat elements, MBQM on the tail).
    variant: str = "reference"
    #: XNNPACK's multiplier ``lrintf(256 * f32(s_in/s_out))`` (variant "xnn_mul8").
    mul8: int = 0
    #: SIMD block (flat elements) of variant "neon_mbqm".
    blocks: int = 0

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """``clamp(MBQM(q - zp_in, M, shift) + zp_out)`` (or ``q ^ 0x80``), or the profile's variant."""
        x = inputs[0]
        assert x is not None
        dt = numpy_dtype(self.output_dtypes[0])
        if self.xor_128:
            return [(np.asarray(x).view(np.uint8) ^ np.uint8(0x80)).view(dt)]
        d = wrap_int32_i64(np.asarray(x).astype(np.int64) - self.zp_in)
        lo, hi = dtype_range(dt)
        if self.variant == "xnn_mul8":
            return [xnn_mul8(d, self.mul8, self.zp_out, self.output_dtypes[0]).astype(dt)]
        v = multiply_by_quantized_multiplier(d, self.multiplier, self.shift, self.rounding).astype(np.int64)
        if self.variant == "neon_mbqm":
            mask = block_mask(d.size, self.blocks).reshape(d.shape)
            v = np.where(mask, neon_mbqm(d, self.multiplier, self.shift).astype(np.int64), v)
        return [np.asarray(np.clip(wrap_int32_i64(v + self.zp_out), lo, hi).astype(dt))]

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """Zero-point removal, fixed-point multiply, zero point and clamp for one element."""
        x = inputs[0]
        assert x is not None
        q = int(np.asarray(x)[element])
        dt = numpy_dtype(self.output_dtypes[0])
        lo, hi = dtype_range(dt)
        if self.xor_128:
            out = int(np.array([q], dtype=np.asarray(x).dtype).view(np.uint8)[0] ^ 0x80)
            out = int(np.array([out], np.uint8).view(dt)[0])
            return [
                Step("input", q, "raw input"),
                Step("output", out, "q ^ 0x80 (equal scales, zero points 128 apart)"),
            ]
        d = int(wrap_int32_i64(np.int64(q) - self.zp_in))
        if self.variant == "xnn_mul8":
            acc = (self.zp_out << 8) + 128 + d * self.mul8
            return [
                Step("input", q, "raw input"),
                Step("q - zp_in", d, f"input zero point {self.zp_in}"),
                Step("accumulator", acc, f"({self.zp_out} << 8) + 128 + d * {self.mul8} (XNNPACK 8-bit multiplier)"),
                Step("output", min(max(acc >> 8, lo), hi), f">> 8 (ties up), saturated to [{lo}, {hi}]"),
            ]
        flat = int(np.ravel_multi_index(tuple(element), np.shape(x))) if np.ndim(x) else 0
        in_block = self.variant == "neon_mbqm" and bool(block_mask(np.size(x), self.blocks)[flat])
        if in_block:
            m = int(neon_mbqm(np.int64(d), self.multiplier, self.shift))
            how = f"NEON MBQM (vqrdmulh, vrshl: ties up twice): flat element {flat} is in a SIMD block of {self.blocks}"
        else:
            m = int(multiply_by_quantized_multiplier(np.int64(d), self.multiplier, self.shift, self.rounding))
            how = f"MultiplyByQuantizedMultiplier, {self.rounding} rounding"
        total = int(wrap_int32_i64(np.int64(m) + self.zp_out))
        return [
            Step("input", q, "raw input"),
            Step("q - zp_in", d, f"input zero point {self.zp_in}"),
            Step(
                "MBQM",
                m,
                f"{how} (M={self.multiplier}, shift={self.shift}; ~ x * {self.multiplier * 2.0 ** (self.shift - 31):.9g})",
            ),
            Step("+ zp_out", total, f"output zero point {self.zp_out}"),
            Step("output", min(max(total, lo), hi), f"clamped to [{lo}, {hi}]"),
        ]


_REQUANT_OUT = {
    "int8": ("int8", "uint8", "int16"),
    "uint8": ("int8", "uint8", "int16"),
    "int16": ("int8", "int16", "int32"),
    "int32": ("int8", "int16"),
}


def prepare_quantize(ctx: OpContext) -> QuantizeFloatData | RequantizeData:
    """QUANTIZE (LiteRT ``quantize.cc``, REF).

    float32 -> int8/uint8/int16, per-tensor or per-channel output; int8/uint8 -> int8/uint8/int16,
    int16 -> int8/int16/int32, int32 -> int8/int16 (per-tensor, legacy parameters). int16 -> int16
    needs zero points 0. The output must be quantized; refquant also requires the input of an integer
    requantization to be quantized and every scale finite and positive. int4/uint4 outputs are not
    supported by refquant.
    """
    ctx.check_counts(1, 1)
    x = ctx.input(0)
    out = ctx.output(0)
    if not out.is_quantized:
        raise ctx.fail_quant("QUANTIZE output has no quantization parameters", out)
    if x.dtype == "float32":
        ctx.check_dtype(out, ("int8", "uint8", "int16"), "output")
        scale, zp, axis = _channel_params(ctx, out, x.shape)
        arith = ctx.arithmetic
        if arith.rescale == "rne_reciprocal":
            if axis is not None or (arith.blocks == 0 and out.dtype not in ("int8", "uint8")):
                raise ctx.unsupported(f"QUANTIZE {arith.rescale} of a per-channel or {out.dtype} output")
            variant = "optimized" if arith.blocks else "xnnpack"
            return QuantizeFloatData(
                (x.shape,),
                (out.dtype,),
                scale=scale,
                zero_point=zp,
                axis=axis,
                variant=variant,
                blocks=arith.blocks,
                arithmetic=arith,
            )
        return QuantizeFloatData((x.shape,), (out.dtype,), scale=scale, zero_point=zp, axis=axis)
    if x.dtype not in _REQUANT_OUT:
        raise ctx.unsupported(f"QUANTIZE from {x.dtype}; expected float32, int8, uint8, int16 or int32")
    ctx.check_dtype(out, _REQUANT_OUT[x.dtype], "output")
    ctx.require_quant(x)
    ctx.require_quant(out)
    s_in, zp_in = legacy_params(x)
    s_out, zp_out = legacy_params(out)
    if x.dtype == "int16" and out.dtype == "int16" and (zp_in != 0 or zp_out != 0):
        raise ctx.fail_quant(f"int16 -> int16 requantization needs zero points 0 (got {zp_in} and {zp_out})", x)
    multiplier, shift = quantize_multiplier(float(np.float64(s_in) / np.float64(s_out)), ctx.rounding)
    xor = (
        multiplier == 1 << 30
        and shift == 1
        and ((x.dtype, out.dtype, zp_in - zp_out) in (("int8", "uint8", -128), ("uint8", "int8", 128)))
    )
    arith = ctx.arithmetic
    extra: dict = {}
    if arith.rescale == "xnn_mul8":
        if x.dtype != out.dtype or x.dtype not in ("int8", "uint8"):
            raise ctx.unsupported(f"XNNPACK QUANTIZE {x.dtype} -> {out.dtype}")
        extra = dict(variant="xnn_mul8", mul8=xnn_mul8_multiplier(float(np.float32(s_in) / np.float32(s_out))))
        xor = False
    elif arith.rescale == "neon_mbqm":
        if x.dtype not in ("int8", "uint8") or out.dtype not in ("int8", "uint8"):
            raise ctx.unsupported(f"optimized NEON QUANTIZE {x.dtype} -> {out.dtype}")
        if ctx.rounding != "double":
            raise ctx.unsupported(
                "litert-optimized QUANTIZE with single rounding (the wheel is a double-rounding build)"
            )
        extra = dict(variant="neon_mbqm", blocks=arith.blocks)
    if extra:
        extra["arithmetic"] = arith
    return RequantizeData(
        (x.shape,),
        (out.dtype,),
        multiplier=multiplier,
        shift=shift,
        zp_in=zp_in,
        zp_out=zp_out,
        xor_128=xor,
        rounding=ctx.rounding,
        **extra,
    )


@dataclass(frozen=True)
class DequantizeData(OpData):
    """DEQUANTIZE (reference_ops::Dequantize / PerChannelDequantize; float16 -> float32 conversion)."""

    #: Scale(s): float32 (0-d per tensor, 1-d per channel); None for float16 input.
    scale: np.ndarray | None = None
    #: Zero point(s), matching ``scale``.
    zero_point: np.ndarray | None = None
    #: Channel dimension for per-channel input, else None.
    axis: int | None = None
    #: "reference"; "two_products" (LiteRT optimized: SIMD blocks of ``blocks`` flat elements compute
    #: ``f32(q*s) - f32(zp*s)``, the tail as reference).
    variant: str = "reference"
    #: SIMD block (flat elements) of variant "two_products".
    blocks: int = 0

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """``scale * (q - zp)`` rounded once to float32 (or the float16 value widened), or the profile's variant."""
        x = inputs[0]
        assert x is not None
        if self.scale is None:
            return [np.asarray(x).astype(np.float32)]
        ref = dequantize(x, self.scale, self.zero_point, self.axis)
        if self.variant == "two_products":
            q = np.asarray(x)
            mask = block_mask(q.size, self.blocks).reshape(q.shape)
            return [np.where(mask, dequantize_two_products(q, float(self.scale), int(self.zero_point)), ref)]
        return [ref]

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """Zero-point removal and scaling of one element."""
        x = inputs[0]
        assert x is not None
        if self.scale is None:
            v = np.asarray(x)[element]
            return [Step("input", float(v), "float16"), Step("output", float(np.float32(v)), "exact widening")]
        q = int(np.asarray(x)[element])
        c = None if self.axis is None else element[self.axis]
        s = np.float32(self.scale if c is None else self.scale[c])
        zp = int(self.zero_point if c is None else self.zero_point[c])
        y = float(np.float32(np.float64(s) * (q - zp)))
        flat = int(np.ravel_multi_index(tuple(element), np.shape(x))) if np.ndim(x) else 0
        if self.variant == "two_products" and bool(block_mask(np.size(x), self.blocks)[flat]):
            qs = np.float32(np.float32(q) * s)
            zs = np.float32(np.float32(zp) * s)
            return [
                Step("input", q, "raw input"),
                Step("q * scale", float(qs), f"float32 product: flat element {flat} is in a SIMD block"),
                Step("zp * scale", float(zs), f"float32 product of the zero point {zp}"),
                Step("output", float(dequantize_two_products(np.int64(q), float(s), zp)), "float32 difference"),
            ]
        return [
            Step("input", q, "raw input"),
            Step("q - zp", q - zp, f"zero point {zp}"),
            Step("output", y, f"f32({float(s)!r} * {q - zp}) rounded once to float32"),
        ]


def prepare_dequantize(ctx: OpContext) -> DequantizeData:
    """DEQUANTIZE (LiteRT ``dequantize.cc``, REF): to float32.

    int8, uint8, int16 (zero point 0; per-tensor only) and int4/uint4/int2 constants (per-tensor or
    per-channel), float16. refquant requires quantization parameters on integer inputs (LiteRT would
    output zeros without them).
    """
    ctx.check_counts(1, 1)
    x = ctx.input(0)
    out = ctx.output(0)
    ctx.check_dtype(x, ("int8", "uint8", "int16", "float16", "int4", "uint4", "int2"), "input")
    ctx.check_dtype(out, ("float32",), "output")
    if x.dtype == "float16":
        return DequantizeData((x.shape,), ("float32",))
    scale, zp, axis = _channel_params(ctx, x, x.shape)
    if x.dtype == "int16":
        if axis is not None:
            raise ctx.unsupported("per-channel int16 DEQUANTIZE (LiteRT supports per-channel int8/uint8 only)")
        if int(zp) != 0:
            raise ctx.fail_quant(f"int16 zero point {int(zp)}; LiteRT requires 0", x)
    arith = ctx.arithmetic
    if arith.rescale == "two_products":
        if axis is not None or x.dtype not in ("int8", "uint8"):
            raise ctx.unsupported(f"optimized DEQUANTIZE two_products of a per-channel or {x.dtype} input")
        return DequantizeData(
            (x.shape,),
            ("float32",),
            scale=scale,
            zero_point=zp,
            axis=axis,
            variant="two_products",
            blocks=arith.blocks,
            arithmetic=arith,
        )
    if arith.rescale == "first_scale":
        # tflite-micro reads the per-tensor fields only: element 0 of the scale and zero-point arrays.
        return DequantizeData(
            (x.shape,),
            ("float32",),
            scale=scale.reshape(-1)[:1].reshape(()),
            zero_point=zp.reshape(-1)[:1].reshape(()),
            axis=None,
            arithmetic=arith,
        )
    return DequantizeData((x.shape,), ("float32",), scale=scale, zero_point=zp, axis=axis)
