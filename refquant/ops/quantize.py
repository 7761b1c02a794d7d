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
from ..requantize import multiply_by_quantized_multiplier
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

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """``clamp(int32(roundf(x / scale)) + zp)``; out-of-range or NaN quotients give qmin.

        Per-tensor fast path (same values as :func:`refquant.quantization.quantize`, which
        :meth:`eval_reference` runs): when every ``|x / scale| < 2^31 - 2^16`` (no NaN, no out-of-range
        conversion, no wrap of ``+ zp``), ``roundf`` is ``copysign(floor(|q|) + (frac >= 0.5), q)`` (exact),
        and ``+ zp`` and the clamp are done in float32 (exact: a sum that rounds is far outside the range).
        """
        x = inputs[0]
        assert x is not None
        dt = numpy_dtype(self.output_dtypes[0])
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
        """The readable kernel, :func:`refquant.quantization.quantize`."""
        x = inputs[0]
        assert x is not None
        dt = numpy_dtype(self.output_dtypes[0])
        return [quantize(x, self.scale, self.zero_point, dt, self.axis)]

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """Division, roundf, int32 conversion, zero point and clamp for one element."""
        x = inputs[0]
        assert x is not None
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

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """``clamp(MBQM(q - zp_in, M, shift) + zp_out)`` (or ``q ^ 0x80``)."""
        x = inputs[0]
        assert x is not None
        dt = numpy_dtype(self.output_dtypes[0])
        if self.xor_128:
            return [(np.asarray(x).view(np.uint8) ^ np.uint8(0x80)).view(dt)]
        d = wrap_int32_i64(np.asarray(x).astype(np.int64) - self.zp_in)
        v = multiply_by_quantized_multiplier(d, self.multiplier, self.shift, self.rounding).astype(np.int64)
        lo, hi = dtype_range(dt)
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
        m = int(multiply_by_quantized_multiplier(np.int64(d), self.multiplier, self.shift, self.rounding))
        total = int(wrap_int32_i64(np.int64(m) + self.zp_out))
        return [
            Step("input", q, "raw input"),
            Step("q - zp_in", d, f"input zero point {self.zp_in}"),
            Step(
                "MBQM",
                m,
                f"MultiplyByQuantizedMultiplier(x, M={self.multiplier}, shift={self.shift}), {self.rounding} rounding "
                f"(~ x * {self.multiplier * 2.0 ** (self.shift - 31):.9g})",
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
    return RequantizeData(
        (x.shape,),
        (out.dtype,),
        multiplier=multiplier,
        shift=shift,
        zp_in=zp_in,
        zp_out=zp_out,
        xor_128=xor,
        rounding=ctx.rounding,
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

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """``scale * (q - zp)`` rounded once to float32 (or the float16 value widened)."""
        x = inputs[0]
        assert x is not None
        if self.scale is None:
            return [np.asarray(x).astype(np.float32)]
        return [dequantize(x, self.scale, self.zero_point, self.axis)]

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
    return DequantizeData((x.shape,), ("float32",), scale=scale, zero_point=zp, axis=axis)
