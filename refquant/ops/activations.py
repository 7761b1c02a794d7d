"""Activations and elementwise unary math: RELU family, LEAKY_RELU, PRELU, LOGISTIC, TANH, HARD_SWISH,
GELU, EXP, LOG, SQRT, RSQRT, ABS, NEG, SQUARE.

Each kernel matches LiteRT's ``BUILTIN_REF`` registration (ai-edge-litert 2.3.0): bit-exact on
integer tensors. How each quantized kernel works (docs/litert_semantics.md §3.13, §3.14 and the sources named in
each docstring):

* RELU, RELU6, RELU_N1_TO_1, RELU_0_TO_1: ``clamp(zp_out + MBQM(q - zp_in, QM(f32(s_in/s_out))))``
  with bounds ``zp_out + int(roundf(f32(bound / s_out)))``. RELU_N1_TO_1 and RELU_0_TO_1 have no
  int16 kernel (LiteRT fails Eval).
* LEAKY_RELU: identity and alpha multipliers in float32; a negative alpha multiplies by ``|M|`` and
  negates (the wheel has that fix). PRELU: ``MBQM(q - zp, M1)`` or ``MBQM((q - zp)(a - zp_a), M2)``;
  the int16 kernel reads an int8 alpha tensor.
* Tables: LOGISTIC, TANH, GELU, EXP, LOG (int8/uint8) use a 256-entry table built in float32 with the
  C library's ``expf``/``tanhf``/``erfcf``/``logf`` (see :mod:`refquant.ops.lut`); int16 GELU, EXP,
  LOG and RSQRT use LiteRT's 513-entry interpolated table. LOGISTIC and TANH int16 use the fixed
  ``sigmoid_table_uint16`` interpolation (power-of-two or general input scale).
* SQRT (int8/int16) is computed in float by LiteRT: ``int(sqrtf(s_in*(q - zp)) / s_out) + zp``
  (truncation, not rounding); refquant tabulates it over every input value at prepare time.
  RSQRT int8 uses gemmlowp's fixed-point inverse square root, also tabulated over the 256 inputs.
  Inputs below the input zero point are run-time errors for both, as in LiteRT.
* HARD_SWISH: LiteRT's int16 fixed-point recipe (docs/litert_semantics.md §3.13).
* ABS: ``|q - zp_in|`` rescaled with MBQM when the scales differ; NEG negates raw values.
* Float32 kernels follow the C++ (clamps keep NaN where the C++ comparison does). Transcendentals
  (LOGISTIC, TANH, GELU, EXP, LOG) are computed in float64 and rounded to float32, which may differ
  from glibc's float functions in the last place.

ELU is not registered in LiteRT's ``BUILTIN_REF`` resolver, so refquant does not implement it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import QuantParamError, UnsupportedOpError
from ..fixedpoint import (
    inv_sqrt_quantized_multiplier_exp,
    round_half_away_from_zero,
    rounding_divide_by_pot,
    saturating_doubling_high_mul_int16,
    saturating_rounding_doubling_high_mul_int16,
    wrap_int16_i64,
    wrap_int32_i64,
)
from ..quantization import quantize_multiplier
from ..requantize import multiply_by_quantized_multiplier
from . import lut as L
from .base import OpContext, OpData, TensorInfo, broadcast_shape
from .elementwise_profiles import prepare_leaky_relu_xnnpack
from .staging import MAX_BROADCAST_RANK, Stage, Staged
from .tables import Table8, Table16, table8, table16

__all__ = [
    "prepare_relu",
    "prepare_relu6",
    "prepare_relu_n1_to_1",
    "prepare_relu_0_to_1",
    "prepare_leaky_relu",
    "prepare_prelu",
    "prepare_logistic",
    "prepare_tanh",
    "prepare_hard_swish",
    "prepare_gelu",
    "prepare_exp",
    "prepare_log",
    "prepare_sqrt",
    "prepare_rsqrt",
    "prepare_abs",
    "prepare_neg",
    "prepare_square",
]

F32 = np.float32
_RANGE = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767)}


# ---------------------------------------------------------------------------------------------
# Shared helpers


def _unary(ctx: OpContext, allowed: tuple[str, ...]) -> tuple[TensorInfo, TensorInfo]:
    """One input, one output, same type (LiteRT TF_LITE_ENSURE_TYPES_EQ / output type := input type)."""
    ctx.check_counts(1, 1)
    x, o = ctx.input(0), ctx.output(0)
    ctx.check_dtype(x, allowed, "input")
    if o.dtype != x.dtype:
        raise ctx.error(f"output type {o.dtype} differs from the input type {x.dtype}", o, UnsupportedOpError)
    return x, o


def _qp(ctx: OpContext, t: TensorInfo) -> tuple[np.float32, int]:
    q = ctx.require_quant(t, per_tensor=True)
    return F32(q.scale[0]), int(q.zero_point[0])


def _qm(ctx: OpContext, d: float, what: str, tensor: TensorInfo | None = None) -> tuple[int, int]:
    try:
        return quantize_multiplier(d, ctx.rounding)  # type: ignore[arg-type]
    except QuantParamError as exc:
        raise ctx.fail_quant(f"{what}: {exc}", tensor) from exc


def _bound(bound: float, scale: np.float32, zp: int) -> int:
    """``zp + static_cast<int32>(roundf(bound / scale))`` with x86 conversion and int32 wrap."""
    with np.errstate(all="ignore"):
        r = round_half_away_from_zero(F32(F32(bound) / scale))
    q = int(L.float_to_int32(r))
    return int(wrap_int32_i64(np.int64(zp + q)))


# ---------------------------------------------------------------------------------------------
# Float kernels


@dataclass(frozen=True)
class FloatUnary(Staged, OpData):
    """A float32 elementwise function, following the LiteRT reference float kernel named by ``kind``."""

    #: Which function: relu, relu6, relu_n1_to_1, relu_0_to_1, leaky_relu, logistic, tanh, hard_swish,
    #: gelu, gelu_approximate, exp, log, sqrt, rsqrt, abs, neg, square.
    kind: str = "relu"
    #: LEAKY_RELU alpha (float32).
    alpha: float = 0.0

    def _stages(self, inputs: list[np.ndarray | None]) -> list[Stage]:
        x = np.asarray(inputs[0]).astype(F32)
        with np.errstate(all="ignore"):
            y = _FLOAT_FUNCS[self.kind](x, F32(self.alpha))
        return [("output", np.asarray(y, dtype=F32), f"float32 {self.kind}")]


def _clamp_c(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``x > hi ? hi : x < lo ? lo : x`` (NaN passes through)."""
    return np.where(x > F32(hi), F32(hi), np.where(x < F32(lo), F32(lo), x))


def _f64(fn: Any) -> Any:
    return lambda x: fn(x.astype(np.float64)).astype(F32)


#: A float64 result closer than this many float32 ULPs to a float32 rounding midpoint is recomputed with the
#: C library's float function (glibc's ``expf`` is within 0.502 ULP: it only differs from the correctly
#: rounded result within 0.002 ULP of a midpoint; the float64 value is off by far less than 2^-20 ULP).
_MIDPOINT_BAND = 1.0 / 256


def _glibc_f32(np_fn: Any, name: str, x: np.ndarray) -> np.ndarray:
    """glibc's float32 ``name`` (e.g. ``expf``) of every element of ``x``, fast.

    The float64 NumPy function rounded to float32 is glibc's result except where the exact value lies
    within ``_MIDPOINT_BAND`` ULP of a rounding midpoint (or the result is 0, subnormal or not finite);
    only those elements go through ctypes.
    """
    shape = np.shape(x)
    x = np.asarray(x, F32).reshape(-1)
    with np.errstate(invalid="ignore", over="ignore"):
        y64 = np_fn(x.astype(np.float64))
        y32 = y64.astype(F32)
        ulp = np.spacing(np.abs(y32)).astype(np.float64)
        frac = np.abs(y64 - y32.astype(np.float64)) / ulp  # in [0, 0.5] ULP when y32 is the nearest
        odd = ~np.isfinite(y32) | (np.abs(y32) < np.finfo(F32).tiny) | ~np.isfinite(frac)
        ambiguous = odd | (np.abs(frac - 0.5) < _MIDPOINT_BAND)
    if ambiguous.any():
        y32 = y32.copy()
        y32[ambiguous] = L.vectorize_f32(getattr(L, name))(x[ambiguous])
    return y32.reshape(shape)


def _erfc64(x: np.ndarray) -> np.ndarray:
    """erfc in float64 with relative error below 1.2e-7 (Numerical Recipes' Chebyshev fit), vectorized."""
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = (
        -z * z
        - 1.26551223
        + t
        * (
            1.00002368
            + t
            * (
                0.37409196
                + t
                * (
                    0.09678418
                    + t
                    * (
                        -0.18628806
                        + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))
                    )
                )
            )
        )
    )
    r = t * np.exp(poly)
    return np.where(x >= 0, r, 2.0 - r)


def _logistic_f32(x: np.ndarray, _a: Any) -> np.ndarray:
    # reference_ops::Logistic: x > 16.619047164916992 -> 1; x < -9 -> expf(x); else 1.f / (1.f + expf(-x)),
    # each operation rounded to float32, expf as glibc computes it.
    # expf only where its branch is taken (elsewhere it would over- or underflow and go through ctypes).
    x = np.asarray(x, F32)
    out = np.ones(x.shape, F32)  # x > cutoff_upper
    low = x < F32(-9)
    mid = ~low & ~(x > F32(16.619047164916992))  # NaN lands here: 1 / (1 + expf(NaN)) = NaN
    out[low] = _glibc_f32(np.exp, "expf", x[low])
    e_neg = _glibc_f32(np.exp, "expf", -x[mid])
    out[mid] = (F32(1) / (F32(1) + e_neg).astype(F32)).astype(F32)
    return out


def _hard_swish_f32(x: np.ndarray, _a: Any) -> np.ndarray:
    # in * std::min(6, std::max(0, in + 3)) / 6, float32
    t = (x + F32(3)).astype(F32)
    t = np.where(F32(0) < t, t, F32(0))
    t = np.where(t < F32(6), t, F32(6))
    return ((x * t).astype(F32) / F32(6)).astype(F32)


def _gelu_f32(x: np.ndarray, _a: Any) -> np.ndarray:
    x64 = x.astype(np.float64)
    return (0.5 * x64 * _erfc64(-x64 / math.sqrt(2.0))).astype(F32)


def _gelu_approx_f32(x: np.ndarray, _a: Any) -> np.ndarray:
    x64 = x.astype(np.float64)
    return (0.5 * x64 * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x64 + 0.044715 * x64**3)))).astype(F32)


_FLOAT_FUNCS: dict[str, Any] = {
    # optimized_ops::Relu is Eigen cwiseMax(0): NaN -> 0 is not guaranteed; NumPy keeps NaN.
    "relu": lambda x, a: np.where(x < F32(0), F32(0), x),
    "relu6": lambda x, a: _clamp_c(x, 0.0, 6.0),
    "relu_n1_to_1": lambda x, a: _clamp_c(x, -1.0, 1.0),
    "relu_0_to_1": lambda x, a: _clamp_c(x, 0.0, 1.0),
    "leaky_relu": lambda x, a: np.where(x > F32(0), x, (x * a).astype(F32)),
    "logistic": _logistic_f32,
    # glibc's tanhf is not always the correctly rounded value (about 8% of inputs differ): called per element.
    "tanh": lambda x, a: L.vectorize_f32(L.tanhf)(x),
    "hard_swish": _hard_swish_f32,
    "gelu": _gelu_f32,
    "gelu_approximate": _gelu_approx_f32,
    "exp": lambda x, a: _glibc_f32(np.exp, "expf", x),
    "log": lambda x, a: _f64(np.log)(x),
    "sqrt": lambda x, a: np.sqrt(x),
    "rsqrt": lambda x, a: (F32(1) / np.sqrt(x)).astype(F32),
    "abs": lambda x, a: np.abs(x),
    "neg": lambda x, a: -x,
    "square": lambda x, a: (x * x).astype(F32),
}


def _float(ctx: OpContext, x: TensorInfo, kind: str, alpha: float = 0.0) -> OpData:
    return FloatUnary(output_shapes=(x.shape,), output_dtypes=("float32",), kind=kind, alpha=alpha)


# ---------------------------------------------------------------------------------------------
# RELU family


@dataclass(frozen=True)
class ReluQuantized(Staged, OpData):
    """Quantized RELU/RELU6/RELU_N1_TO_1/RELU_0_TO_1 (LiteRT ``activations.cc`` QuantizedReluX, ``reference_ops::ReluX``)."""

    #: Input zero point (subtracted).
    input_offset: int = 0
    #: QuantizeMultiplier(f32(s_in / s_out)).
    output_multiplier: int = 0
    output_shift: int = 0
    #: Output zero point.
    output_offset: int = 0
    #: Clamp: max(qmin, zp + roundf(lo/s_out)) and min(qmax, zp + roundf(hi/s_out)) (qmax for RELU).
    act_min: int = 0
    act_max: int = 0
    #: MultiplyByQuantizedMultiplier rounding variant.
    rounding: str = "double"

    def _stages(self, inputs: list[np.ndarray | None]) -> list[Stage]:
        v = np.asarray(inputs[0]).astype(np.int64) - self.input_offset
        scaled = multiply_by_quantized_multiplier(v, self.output_multiplier, self.output_shift, self.rounding).astype(
            np.int64
        )
        shifted = wrap_int32_i64(scaled + self.output_offset)
        out = np.minimum(np.maximum(shifted, self.act_min), self.act_max)
        return [
            ("offset input", v, f"x - {self.input_offset}"),
            ("rescaled", scaled, f"MBQM(., {self.output_multiplier}, {self.output_shift})"),
            ("plus zero point", shifted, f"+ {self.output_offset}"),
            ("output", out.astype(self.output_dtypes[0]), f"clamp to [{self.act_min}, {self.act_max}]"),
        ]


def _prepare_relu_x(ctx: OpContext, kind: str, lo: float, hi: float | None, int16_ok: bool) -> OpData:
    allowed = ("float32", "int8", "uint8") + (("int16",) if int16_ok else ())
    x, o = _unary(ctx, allowed)
    if x.dtype == "float32":
        return _float(ctx, x, kind)
    s_in, zp_in = _qp(ctx, x)
    s_out, zp_out = _qp(ctx, o)
    m, shift = _qm(ctx, float(F32(s_in / s_out)), "RELU multiplier f32(s_in/s_out)", o)
    if x.dtype == "int16":
        ctx.require_zero_points(x, o, why="LiteRT int16 RELU requires symmetric quantization")
    qmin, qmax = _RANGE[x.dtype]
    act_min = max(qmin, _bound(lo, s_out, zp_out))
    act_max = qmax if hi is None else min(qmax, _bound(hi, s_out, zp_out))
    return ReluQuantized(
        output_shapes=(x.shape,),
        output_dtypes=(o.dtype,),
        input_offset=zp_in,
        output_multiplier=m,
        output_shift=shift,
        output_offset=zp_out,
        act_min=act_min,
        act_max=act_max,
        rounding=ctx.rounding,
    )


def prepare_relu(ctx: OpContext) -> OpData:
    """RELU, matching LiteRT ``Register_RELU`` (activations.cc ReluPrepare/ReluEval)."""
    return _prepare_relu_x(ctx, "relu", 0.0, None, True)


@dataclass(frozen=True)
class Relu6RawClamp(Staged, OpData):
    """RELU6 int8/int16 in tflite-micro (``Relu6Prepare`` / ``Relu6Quantized``; the ``tflm`` profile's ``raw_clamp``).

    No requantization: the raw input value is clamped to ``[zero, six]`` of the *input* quantization,
    ``zero = zp_in``, ``six = clamp(f32(roundf(f32(6 / s_in)) + zp_in), type range)``
    (``FloatToQuantizedType``); ``out = q > six ? six : (q < zero ? zero : q)``. The output's scale and zero
    point are ignored.
    """

    #: The lower and upper bound, in the input's quantization.
    zero: int = 0
    six: int = 0

    def _stages(self, inputs: list[np.ndarray | None]) -> list[Stage]:
        q = np.asarray(inputs[0])
        out = np.where(q > self.six, self.six, np.where(q < self.zero, self.zero, q)).astype(q.dtype)
        return [("output", out, f"raw input clamped to [{self.zero}, {self.six}] (tflite-micro: no requantization)")]


def _tflm_relu6_six(scale: np.float32, zp: int, dtype: str) -> int:
    """tflite-micro ``FloatToQuantizedType<T>(6.0f, scale, zp)``: ``roundf(6 / scale) + zp`` in float, clamped."""
    lo, hi = _RANGE[dtype]
    with np.errstate(all="ignore"):
        r = F32(round_half_away_from_zero(F32(F32(6.0) / scale)) + F32(zp))
    # int32_t result = <float>: the value is clamped to the type right after, so clamp the float first.
    return int(min(max(float(r), lo), hi))


def prepare_relu6(ctx: OpContext) -> OpData:
    """RELU6, matching LiteRT ``Register_RELU6`` (activations.cc Relu6Eval); tflite-micro's raw clamp under ``tflm``."""
    arith = ctx.arithmetic
    if arith.rescale == "raw_clamp":
        x, o = _unary(ctx, ("float32", "int8", "int16"))
        if x.dtype != "float32":
            s_in, zp_in = _qp(ctx, x)
            six = _tflm_relu6_six(s_in, zp_in, x.dtype)
            return Relu6RawClamp(
                output_shapes=(x.shape,), output_dtypes=(o.dtype,), zero=zp_in, six=six, arithmetic=arith
            )
    return _prepare_relu_x(ctx, "relu6", 0.0, 6.0, True)


def prepare_relu_n1_to_1(ctx: OpContext) -> OpData:
    """RELU_N1_TO_1, matching LiteRT ``Register_RELU_N1_TO_1`` (activations.cc Relu1Eval; no int16)."""
    return _prepare_relu_x(ctx, "relu_n1_to_1", -1.0, 1.0, False)


def prepare_relu_0_to_1(ctx: OpContext) -> OpData:
    """RELU_0_TO_1, matching LiteRT ``Register_RELU_0_TO_1`` (activations.cc Relu0to1Eval; no int16)."""
    return _prepare_relu_x(ctx, "relu_0_to_1", 0.0, 1.0, False)


# ---------------------------------------------------------------------------------------------
# LEAKY_RELU and PRELU


@dataclass(frozen=True)
class LeakyReluQuantized(Staged, OpData):
    """Quantized LEAKY_RELU (LiteRT ``reference_ops::QuantizeLeakyRelu``)."""

    #: Input zero point (subtracted).
    input_offset: int = 0
    #: Output zero point.
    output_offset: int = 0
    #: QuantizeMultiplier(f32(s_in/s_out)) for inputs >= zero point.
    identity_multiplier: int = 0
    identity_shift: int = 0
    #: |QuantizeMultiplier(f32(f32(s_in*alpha)/s_out))| for inputs below the zero point.
    alpha_multiplier: int = 0
    alpha_shift: int = 0
    #: True when alpha < 0: the alpha product is negated after the multiply.
    alpha_negative: bool = False
    #: MultiplyByQuantizedMultiplier rounding variant.
    rounding: str = "double"

    def _stages(self, inputs: list[np.ndarray | None]) -> list[Stage]:
        v = np.asarray(inputs[0]).astype(np.int64) - self.input_offset
        ident = multiply_by_quantized_multiplier(
            v, self.identity_multiplier, self.identity_shift, self.rounding
        ).astype(np.int64)
        alpha = multiply_by_quantized_multiplier(v, self.alpha_multiplier, self.alpha_shift, self.rounding).astype(
            np.int64
        )
        if self.alpha_negative:
            alpha = wrap_int32_i64(-alpha)
        scaled = np.where(v >= 0, ident, alpha)
        shifted = wrap_int32_i64(scaled + self.output_offset)
        lo, hi = _RANGE[self.output_dtypes[0]]
        out = np.clip(shifted, lo, hi).astype(self.output_dtypes[0])
        return [
            ("offset input", v, f"x - {self.input_offset}"),
            ("rescaled", scaled, "MBQM with the identity multiplier if >= 0, else with the alpha multiplier"),
            ("plus zero point", shifted, f"+ {self.output_offset}"),
            ("output", out, f"clamp to [{lo}, {hi}]"),
        ]


def prepare_leaky_relu(ctx: OpContext) -> OpData:
    """LEAKY_RELU, matching LiteRT ``Register_LEAKY_RELU_REF`` (activations.cc, reference/leaky_relu.h)."""
    x, o = _unary(ctx, ("float32", "int8", "uint8", "int16"))
    alpha = F32(ctx.option("alpha", 0.0))
    if x.dtype == "float32":
        return _float(ctx, x, "leaky_relu", float(alpha))
    s_in, zp_in = _qp(ctx, x)
    s_out, zp_out = _qp(ctx, o)
    if x.dtype == "int16":
        ctx.require_zero_points(x, o, why="LiteRT int16 LEAKY_RELU requires symmetric quantization")
    arith = ctx.arithmetic
    if arith.rescale == "xnn_mul8":
        return prepare_leaky_relu_xnnpack(ctx, x, o, (s_in, zp_in), (s_out, zp_out), alpha)
    ma, sa = _qm(ctx, float(F32(F32(s_in * alpha) / s_out)), "alpha multiplier f32(s_in*alpha/s_out)", o)
    mi, si = _qm(ctx, float(F32(s_in / s_out)), "identity multiplier f32(s_in/s_out)", o)
    return LeakyReluQuantized(
        output_shapes=(x.shape,),
        output_dtypes=(o.dtype,),
        input_offset=zp_in,
        output_offset=zp_out,
        identity_multiplier=mi,
        identity_shift=si,
        alpha_multiplier=int(wrap_int32_i64(np.int64(abs(ma)))),
        alpha_shift=sa,
        alpha_negative=ma < 0,
        rounding=ctx.rounding,
    )


@dataclass(frozen=True)
class PreluQuantized(Staged, OpData):
    """Quantized PRELU (LiteRT ``reference_ops::Prelu`` / ``BroadcastPrelu4DSlow``)."""

    #: Input and alpha zero points (subtracted).
    input_offset: int = 0
    alpha_offset: int = 0
    #: Output zero point.
    output_offset: int = 0
    #: QuantizeMultiplier(f32(s_in/s_out)) for inputs >= zero point.
    output_multiplier_1: int = 0
    output_shift_1: int = 0
    #: QuantizeMultiplier(f32(f32(s_in*s_alpha)/s_out)) for (x - zp)(alpha - zp_alpha) otherwise.
    output_multiplier_2: int = 0
    output_shift_2: int = 0
    #: MultiplyByQuantizedMultiplier rounding variant.
    rounding: str = "double"

    def _stages(self, inputs: list[np.ndarray | None]) -> list[Stage]:
        v = np.asarray(inputs[0]).astype(np.int64) - self.input_offset
        a = np.asarray(inputs[1]).astype(np.int64) - self.alpha_offset
        pos = multiply_by_quantized_multiplier(v, self.output_multiplier_1, self.output_shift_1, self.rounding).astype(
            np.int64
        )
        prod = wrap_int32_i64(v * a)
        neg = multiply_by_quantized_multiplier(
            prod, self.output_multiplier_2, self.output_shift_2, self.rounding
        ).astype(np.int64)
        scaled = np.where(v >= 0, pos, neg)
        shifted = wrap_int32_i64(scaled + self.output_offset)
        lo, hi = _RANGE[self.output_dtypes[0]]
        out = np.clip(shifted, lo, hi).astype(self.output_dtypes[0])
        return [
            ("offset input", v, f"x - {self.input_offset}"),
            ("offset alpha", a, f"alpha - {self.alpha_offset}"),
            ("rescaled", scaled, "x >= 0: MBQM(x, M1) ; else MBQM(x * alpha, M2)"),
            ("plus zero point", shifted, f"+ {self.output_offset}"),
            ("output", out, f"clamp to [{lo}, {hi}]"),
        ]


@dataclass(frozen=True)
class PreluFloat(Staged, OpData):
    """Float PRELU: ``x >= 0 ? x : x * alpha`` (LiteRT ``ApplyPrelu<float>``), alpha broadcast."""

    def _stages(self, inputs: list[np.ndarray | None]) -> list[Stage]:
        x = np.asarray(inputs[0]).astype(F32)
        a = np.asarray(inputs[1]).astype(F32)
        with np.errstate(all="ignore"):
            out = np.where(x >= F32(0), x, (x * a).astype(F32)).astype(F32)
        return [("output", out, "x >= 0 ? x : x * alpha")]


def prepare_prelu(ctx: OpContext) -> OpData:
    """PRELU, matching LiteRT ``Register_PRELU_REF`` (activations.cc PreluPrepare/PreluEval, reference/prelu.h)."""
    ctx.check_counts(2, 1)
    x, alpha, o = ctx.input(0), ctx.input(1), ctx.output(0)
    ctx.check_dtype(x, ("float32", "int8", "uint8", "int16"), "input")
    if o.dtype != x.dtype:
        raise ctx.error(f"output type {o.dtype} differs from the input type {x.dtype}", o, UnsupportedOpError)
    want = "int8" if x.dtype == "int16" else x.dtype
    if alpha.dtype != want:
        raise ctx.error(
            f"alpha type {alpha.dtype}: LiteRT's {x.dtype} PRELU kernel reads alpha as {want}",
            alpha,
            UnsupportedOpError,
        )
    if x.shape != alpha.shape:
        shape = broadcast_shape(ctx, x.shape, alpha.shape, max_rank=MAX_BROADCAST_RANK)
        if shape != x.shape:
            raise ctx.error(
                f"alpha shape {list(alpha.shape)} broadcasts the input {list(x.shape)} to {list(shape)}; "
                "LiteRT requires the output shape to equal the input shape"
            )
    if x.dtype == "float32":
        return PreluFloat(output_shapes=(x.shape,), output_dtypes=("float32",))
    s_in, zp_in = _qp(ctx, x)
    s_a, zp_a = _qp(ctx, alpha)
    s_out, zp_out = _qp(ctx, o)
    m1, e1 = _qm(ctx, float(F32(s_in / s_out)), "PRELU multiplier f32(s_in/s_out)", o)
    m2, e2 = _qm(ctx, float(F32(F32(s_in * s_a) / s_out)), "PRELU multiplier f32(s_in*s_alpha/s_out)", o)
    return PreluQuantized(
        output_shapes=(x.shape,),
        output_dtypes=(o.dtype,),
        input_offset=zp_in,
        alpha_offset=zp_a,
        output_offset=zp_out,
        output_multiplier_1=m1,
        output_shift_1=e1,
        output_multiplier_2=m2,
        output_shift_2=e2,
        rounding=ctx.rounding,
    )


def _logistic_t(v: np.float32) -> np.float32:
    return F32(F32(1.0) / F32(F32(1.0) + L.expf(F32(-v))))


_SQRT_2_OVER_PI_F32 = F32((2.0 / math.sqrt(math.pi)) * math.sqrt(0.5))  # M_2_SQRTPI * M_SQRT1_2
_NEG_SQRT1_2_F32 = F32(-math.sqrt(0.5))


def _gelu_t(v: np.float32) -> np.float32:
    # 0.5f * in * erfcf(in * (float)-M_SQRT1_2)
    return F32(F32(F32(0.5) * v) * L.erfcf(F32(v * _NEG_SQRT1_2_F32)))


def _gelu_approx_t(v: np.float32) -> np.float32:
    # 0.5f * in * (1.f + tanhf(kSqrt2dPi * (in + 0.044715f * in * in * in)))
    cube = F32(F32(F32(F32(0.044715) * v) * v) * v)
    inner = F32(_SQRT_2_OVER_PI_F32 * F32(v + cube))
    return F32(F32(F32(0.5) * v) * F32(F32(1.0) + L.tanhf(inner)))


# ---------------------------------------------------------------------------------------------
# LOGISTIC and TANH


@dataclass(frozen=True)
class SigmoidTanhInt16(Staged, OpData):
    """int16 LOGISTIC/TANH (LiteRT ``reference_integer_ops::Logistic``/``Tanh`` for int16).

    The input is rescaled to Q?.? with ``(x * input_multiplier + round) >> input_left_shift`` (int32
    arithmetic, wrapping) and looked up with linear interpolation in ``sigmoid_table_uint16``.
    """

    #: True for TANH, False for LOGISTIC.
    is_tanh: bool = False
    #: Integer multiplier of the input rescale (3 << shift for power-of-two input scales).
    input_multiplier: int = 3
    #: Right shift of the input rescale (rounding: adds 2^(shift-1) first).
    input_left_shift: int = 0

    def _stages(self, inputs: list[np.ndarray | None]) -> list[Stage]:
        x = np.asarray(inputs[0]).astype(np.int64)
        ls = self.input_left_shift
        rnd = (1 << (ls - 1)) if ls > 0 else 0
        d = wrap_int32_i64(x * self.input_multiplier + rnd) >> ls
        a = np.abs(d)  # abs(int32) -> uint32; |d| <= 2^31 (INT32_MIN maps to 2^31)
        table = L.sigmoid_table_uint16().astype(np.int64)
        if self.is_tanh:
            uh = a >> 8
            ut = a & 0xFF
            shift_in, sat = 8, 0xFFFF << 8
        else:
            uh = a >> 9
            ut = a & 0x1FF
            shift_in, sat = 9, 0x7FFF << 10
        i = np.minimum(uh, 254)
        ua, ub = table[i], table[i + 1]
        interp = np.where(uh >= 255, sat, (ua << shift_in) + ut * (ub - ua))
        if self.is_tanh:
            r = np.where(d >= 0, interp - (1 << 23) + (1 << 7), -interp + (1 << 23) + (1 << 7) - 1)
            out = wrap_int16_i64(r >> 8)
        else:
            r = np.where(d >= 0, interp + (1 << 9), (1 << 25) - interp + (1 << 9) - 1) & 0xFFFFFFFF
            out = wrap_int16_i64(r >> 10)
        return [
            ("rescaled input", d, f"(x * {self.input_multiplier} + {rnd}) >> {ls}"),
            ("table index", uh, f"|rescaled| >> {shift_in}"),
            ("interpolated", interp, "sigmoid_table_uint16 linear interpolation (saturated at the end)"),
            ("output", out.astype(np.int16), "sign fix-up and >> " + ("8" if self.is_tanh else "10")),
        ]


def _int16_sigmoid_tanh(ctx: OpContext, x: TensorInfo, o: TensorInfo, is_tanh: bool) -> OpData:
    s_in, _ = _qp(ctx, x)
    s_out, _ = _qp(ctx, o)
    name = "TANH" if is_tanh else "LOGISTIC"
    ctx.require_zero_points(x, o, why=f"LiteRT int16 {name} requires symmetric quantization")
    if not is_tanh and s_out != F32(1.0 / 32768):
        raise ctx.fail_quant(f"int16 LOGISTIC needs output scale 1/32768 exactly, got {float(s_out)!r}", o)
    ok_out, log_out = L.checked_log2(float(s_out))
    if not ok_out or log_out != -15:
        raise ctx.fail_quant(
            f"int16 {name} needs an output scale of 2^-15 (LiteRT CheckedLog2), got {float(s_out)!r}", o
        )
    ok, log_in = L.checked_log2(float(s_in))
    shift = 12 + log_in
    pot = ok and (shift in (0, 1) if is_tanh else shift == 0)
    if pot:
        mult, shift = 3 << shift, 0
    else:
        m = float(s_in) * 4096.0 * 3.0
        shift = 0
        while m <= 32767.0 / 2.0 and shift <= 30:
            shift += 1
            m *= 2.0
        mult = int(L.float_to_int32(m))
    return SigmoidTanhInt16(
        output_shapes=(x.shape,),
        output_dtypes=(o.dtype,),
        is_tanh=is_tanh,
        input_multiplier=mult,
        input_left_shift=shift,
    )


def prepare_logistic(ctx: OpContext) -> OpData:
    """LOGISTIC, matching LiteRT ``Register_LOGISTIC_REF`` (activations.cc SigmoidPrepare/SigmoidEval)."""
    x, o = _unary(ctx, ("float32", "int8", "uint8", "int16"))
    if x.dtype == "float32":
        return _float(ctx, x, "logistic")
    if x.dtype == "int16":
        return _int16_sigmoid_tanh(ctx, x, o, False)
    s_out, _ = _qp(ctx, o)
    if s_out != F32(1.0 / 256):
        raise ctx.fail_quant(f"{x.dtype} LOGISTIC needs output scale 1/256 exactly, got {float(s_out)!r}", o)
    return table8(ctx, x, o, _logistic_t, "LUT: 1/(1+expf(-x)) in float32")


def prepare_tanh(ctx: OpContext) -> OpData:
    """TANH, matching LiteRT ``Register_TANH_REF`` (activations.cc TanhPrepare/TanhEval)."""
    x, o = _unary(ctx, ("float32", "int8", "uint8", "int16"))
    if x.dtype == "float32":
        return _float(ctx, x, "tanh")
    if x.dtype == "int16":
        return _int16_sigmoid_tanh(ctx, x, o, True)
    return table8(ctx, x, o, L.tanhf, "LUT: tanhf(x) in float32")


# ---------------------------------------------------------------------------------------------
# HARD_SWISH


@dataclass(frozen=True)
class HardSwishQuantized(Staged, OpData):
    """Quantized HARD_SWISH (LiteRT ``reference_ops::HardSwish<T>(HardSwishParams, ...)``), int16 fixed point."""

    #: Input and output zero points.
    input_zero_point: int = 0
    output_zero_point: int = 0
    #: Int16 multiplier (Q0.15) and exponent (<= 0) of f32(s_in/128)/s_out.
    output_multiplier_fixedpoint_int16: int = 0
    output_multiplier_exponent: int = 0
    #: Int16 multiplier and exponent of f32(s_in/128)/f32(3/32768) (rescales [-3, 3] to [-1, 1]).
    reluish_multiplier_fixedpoint_int16: int = 0
    reluish_multiplier_exponent: int = 0

    def _stages(self, inputs: list[np.ndarray | None]) -> list[Stage]:
        v = wrap_int16_i64(np.asarray(inputs[0]).astype(np.int64) - self.input_zero_point)
        hires = wrap_int16_i64(v * 128).astype(np.int16)
        pre = saturating_rounding_doubling_high_mul_int16(hires, np.int16(self.output_multiplier_fixedpoint_int16))
        e = self.reluish_multiplier_exponent
        r = hires.astype(np.int64)
        if e > 0:
            r = np.clip(r * (1 << (e - 1)), -32768, 32767)
        r = saturating_rounding_doubling_high_mul_int16(
            r.astype(np.int16), np.int16(self.reluish_multiplier_fixedpoint_int16)
        )
        if e > 0:
            r = np.clip(r.astype(np.int64) * 2, -32768, 32767).astype(np.int16)
        if e < 0:
            r = rounding_divide_by_pot(r, -e)
        reluish = ((r.astype(np.int64) + (1 << 15)) >> 1).astype(np.int16)
        prod = saturating_doubling_high_mul_int16(reluish, pre)
        shifted = rounding_divide_by_pot(prod, -self.output_multiplier_exponent).astype(np.int64)
        with_zp = wrap_int16_i64(shifted + self.output_zero_point)
        lo, hi = _RANGE[self.output_dtypes[0]]
        out = np.clip(with_zp, lo, hi).astype(self.output_dtypes[0])
        return [
            ("hires input", hires.astype(np.int64), f"int16((x - {self.input_zero_point}) * 128)"),
            ("preshift output", pre.astype(np.int64), "SRDHM16(hires, output multiplier)"),
            ("reluish", reluish.astype(np.int64), "rescale to [-1, 1] (saturating), then (r + 32768) >> 1"),
            ("product", prod.astype(np.int64), "SaturatingDoublingHighMul16(reluish, preshift) (truncating)"),
            ("shifted", shifted, f"RoundingDivideByPOT16(., {-self.output_multiplier_exponent})"),
            ("plus zero point", with_zp, f"int16(. + {self.output_zero_point})"),
            ("output", out, f"clamp to [{lo}, {hi}]"),
        ]


def _down_scale_int16(m: int) -> int:
    """LiteRT ``DownScaleInt32ToInt16Multiplier``: round a Q0.31 multiplier to Q0.15."""
    return 32767 if m >= 2**31 - 1 - (1 << 15) else (m + (1 << 15)) >> 16


def prepare_hard_swish(ctx: OpContext) -> OpData:
    """HARD_SWISH, matching LiteRT ``Register_HARD_SWISH_REF`` (activations.cc, reference/hard_swish.h)."""
    x, o = _unary(ctx, ("float32", "int8", "uint8"))
    if x.dtype == "float32":
        return _float(ctx, x, "hard_swish")
    s_in, zp_in = _qp(ctx, x)
    s_out, zp_out = _qp(ctx, o)
    hires = F32(F32(F32(1.0) / F32(128.0)) * s_in)
    reluish_scale = F32(F32(3.0) / F32(32768.0))
    mo, eo = _qm(ctx, float(F32(hires / s_out)), "HARD_SWISH output multiplier", o)
    if eo > 0:
        raise ctx.fail_quant(
            f"HARD_SWISH output multiplier f32(s_in/128)/s_out = {float(F32(hires / s_out))!r} is 1 or more "
            "(exponent > 0): LiteRT fails Prepare",
            o,
        )
    mr, er = _qm(ctx, float(F32(hires / reluish_scale)), "HARD_SWISH reluish multiplier", x)
    if er > 31:
        raise ctx.fail_quant(
            f"input scale {float(s_in)!r} is so large that LiteRT's saturating left shift by {er - 1} is undefined", x
        )
    return HardSwishQuantized(
        output_shapes=(x.shape,),
        output_dtypes=(o.dtype,),
        input_zero_point=zp_in,
        output_zero_point=zp_out,
        output_multiplier_fixedpoint_int16=_down_scale_int16(mo),
        output_multiplier_exponent=eo,
        reluish_multiplier_fixedpoint_int16=_down_scale_int16(mr),
        reluish_multiplier_exponent=er,
    )


# ---------------------------------------------------------------------------------------------
# GELU, EXP, LOG


def prepare_gelu(ctx: OpContext) -> OpData:
    """GELU, matching LiteRT ``Register_GELU`` (activations.cc GeluPrepare/GeluEval, reference/gelu.h)."""
    x, o = _unary(ctx, ("float32", "int8", "uint8", "int16"))
    approximate = bool(ctx.option("approximate", False))
    if x.dtype == "float32":
        return _float(ctx, x, "gelu_approximate" if approximate else "gelu")
    fn = _gelu_approx_t if approximate else _gelu_t
    recipe = "0.5x(1+tanhf(sqrt(2/pi)(x+0.044715x^3)))" if approximate else "0.5x*erfcf(-x/sqrt(2))"
    if x.dtype == "int16":
        return table16(ctx, x, o, fn, "interpolated LUT: " + recipe)
    return table8(ctx, x, o, fn, "LUT: " + recipe)


def prepare_exp(ctx: OpContext) -> OpData:
    """EXP, matching LiteRT ``Register_EXP_REF`` (exp.cc)."""
    x, o = _unary(ctx, ("float32", "int8", "int16"))
    if x.dtype == "float32":
        return _float(ctx, x, "exp")
    if x.dtype == "int16":
        ctx.require_zero_points(x, o, why="LiteRT int16 EXP requires symmetric quantization")
        return table16(ctx, x, o, L.expf, "interpolated LUT: expf(x)")
    return table8(ctx, x, o, L.expf, "LUT: expf(x)")


def prepare_log(ctx: OpContext) -> OpData:
    """LOG, matching LiteRT ``Register_LOG`` (elementwise.cc LogLUTPrepare/LogEval)."""
    x, o = _unary(ctx, ("float32", "int8", "int16"))
    if x.dtype == "float32":
        return _float(ctx, x, "log")
    s_out, zp_out = _qp(ctx, o)
    if x.dtype == "int16":
        ctx.require_zero_points(x, o, why="LiteRT int16 LOG requires symmetric quantization")
    qmin = -128 if x.dtype == "int8" else -32768
    output_min = F32(F32(qmin - zp_out) * s_out)

    def fn(v: np.float32) -> np.float32:
        return output_min if v <= F32(0) else L.logf(v)

    recipe = f"logf(x), {float(output_min)!r} for x <= 0"
    if x.dtype == "int16":
        return table16(ctx, x, o, fn, "interpolated LUT: " + recipe)
    return table8(ctx, x, o, fn, "LUT: " + recipe)


# ---------------------------------------------------------------------------------------------
# SQRT and RSQRT


def _sqrt_table(s_in: np.float32, zp_in: int, s_out: np.float32, zp_out: int, dtype: str) -> np.ndarray:
    """LiteRT SqrtEvalQuantized over every input value: ``int(sqrtf(s_in*(q-zp)) / s_out) + zp_out``."""
    qmin, qmax = _RANGE[dtype]
    q = np.arange(qmin, qmax + 1, dtype=np.int64)
    with np.errstate(all="ignore"):
        deq = (s_in * (q - zp_in).astype(F32)).astype(F32)
        root = np.sqrt(np.where(deq >= F32(0), deq, F32(0))).astype(F32)
        ratio = (root / s_out).astype(F32)
    out = wrap_int32_i64(L.float_to_int32(ratio) + zp_out)
    return np.clip(out, qmin, qmax).astype(dtype)


def prepare_sqrt(ctx: OpContext) -> OpData:
    """SQRT, matching LiteRT ``Register_SQRT`` (elementwise.cc SqrtEvalQuantized)."""
    x, o = _unary(ctx, ("float32", "int8", "int16"))
    if x.dtype == "float32":
        return _float(ctx, x, "sqrt")
    s_in, zp_in = _qp(ctx, x)
    s_out, zp_out = _qp(ctx, o)
    if x.dtype == "int16":
        ctx.require_zero_points(x, o, why="LiteRT int16 SQRT requires symmetric quantization")
    qmin, qmax = _RANGE[x.dtype]
    q = np.arange(qmin, qmax + 1, dtype=np.int64)
    with np.errstate(all="ignore"):
        valid = (s_in * (q - zp_in).astype(F32)).astype(F32) >= F32(0)
    first_valid = int(q[valid][0]) if valid.any() else qmax + 1
    table = _sqrt_table(s_in, zp_in, s_out, zp_out, x.dtype)
    table.flags.writeable = False
    recipe = "int(sqrtf(s_in*(x-zp_in)) / s_out) + zp_out (float32, truncation)"
    cls = Table8 if x.dtype == "int8" else Table16
    return cls(
        output_shapes=(x.shape,),
        output_dtypes=(o.dtype,),
        table=table,
        recipe=recipe,
        min_valid_input=first_valid,
        _where=ctx.where(),
    )


def _rsqrt_int8_table(zp_in: int, m: int, shift: int, zp_out: int, rounding: str) -> np.ndarray:
    """LiteRT RsqrtEvalQuantizedInt8 over every int8 input (entries below the zero point unused)."""
    q = np.arange(-128, 128, dtype=np.int64)
    value = q - zp_in
    inv, inv_shift = inv_sqrt_quantized_multiplier_exp(np.maximum(value, 0))
    k_shift = 20
    data = multiply_by_quantized_multiplier(1, inv, inv_shift + k_shift, rounding).astype(np.int64)
    out = multiply_by_quantized_multiplier(data, m, shift - k_shift, rounding).astype(np.int64) + zp_out
    out = np.clip(out, -128, 127)
    return np.where(value == 0, 127, out).astype(np.int8)


def prepare_rsqrt(ctx: OpContext) -> OpData:
    """RSQRT, matching LiteRT ``Register_RSQRT`` (elementwise.cc RsqrtEvalQuantizedInt8/Int16)."""
    x, o = _unary(ctx, ("float32", "int8", "int16"))
    if x.dtype == "float32":
        return _float(ctx, x, "rsqrt")
    s_in, zp_in = _qp(ctx, x)
    s_out, zp_out = _qp(ctx, o)
    if x.dtype == "int16":
        ctx.require_zero_points(x, o, why="LiteRT int16 RSQRT requires symmetric quantization")
        big = F32(F32(32767) * s_out)

        def fn(v: np.float32) -> np.float32:
            return big if v <= F32(0) else F32(F32(1.0) / L.sqrtf(v))

        return table16(
            ctx, x, o, fn, "interpolated LUT: 1/sqrtf(x), 32767*s_out for x <= 0", min_valid_input=0, _where=ctx.where()
        )
    real = 1.0 / float(F32(L.sqrtf(s_in) * s_out))
    m, shift = _qm(ctx, real, "RSQRT multiplier 1/(sqrtf(s_in)*s_out)", o)
    table = _rsqrt_int8_table(zp_in, m, shift, zp_out, ctx.rounding)
    table.flags.writeable = False
    return Table8(
        output_shapes=(x.shape,),
        output_dtypes=(o.dtype,),
        table=table,
        recipe=f"fixed-point 1/sqrt(x - {zp_in}) (GetInvSqrtQuantizedMultiplierExp), MBQM({m}, {shift})",
        min_valid_input=zp_in,
        _where=ctx.where(),
    )


# ---------------------------------------------------------------------------------------------
# ABS, NEG, SQUARE


@dataclass(frozen=True)
class AbsQuantized(Staged, OpData):
    """Quantized ABS (LiteRT ``elementwise.cc`` AbsEvalQuantized)."""

    #: Input zero point (subtracted before the absolute value).
    input_offset: int = 0
    #: Output zero point.
    output_offset: int = 0
    #: True when the input and output scales differ (then MBQM with the multiplier below).
    needs_rescale: bool = False
    #: QuantizeMultiplier(f32(s_in/s_out)).
    multiplier: int = 0
    shift: int = 0
    #: MultiplyByQuantizedMultiplier rounding variant.
    rounding: str = "double"

    def _stages(self, inputs: list[np.ndarray | None]) -> list[Stage]:
        value = np.abs(np.asarray(inputs[0]).astype(np.int64) - self.input_offset)
        if self.needs_rescale:
            scaled = multiply_by_quantized_multiplier(value, self.multiplier, self.shift, self.rounding).astype(
                np.int64
            )
        else:
            scaled = value
        shifted = wrap_int32_i64(scaled + self.output_offset)
        lo, hi = _RANGE[self.output_dtypes[0]]
        out = np.clip(shifted, lo, hi).astype(self.output_dtypes[0])
        return [
            ("absolute value", value, f"|x - {self.input_offset}|"),
            ("rescaled", scaled, f"MBQM(., {self.multiplier}, {self.shift})" if self.needs_rescale else "same scale"),
            ("plus zero point", shifted, f"+ {self.output_offset}"),
            ("output", out, f"clamp to [{lo}, {hi}]"),
        ]


@dataclass(frozen=True)
class IntUnary(Staged, OpData):
    """Raw integer ABS or NEG (C semantics: ``abs(INT_MIN)`` and ``-INT_MIN`` wrap)."""

    #: "abs" or "neg".
    kind: str = "neg"

    def _stages(self, inputs: list[np.ndarray | None]) -> list[Stage]:
        x = np.asarray(inputs[0]).astype(self.output_dtypes[0])
        with np.errstate(over="ignore"):
            out = np.abs(x) if self.kind == "abs" else np.negative(x)  # fixed-width: wraps like x86
        return [("output", out, f"{self.kind} (wrapping)")]


def prepare_abs(ctx: OpContext) -> OpData:
    """ABS, matching LiteRT ``Register_ABS`` (elementwise.cc AbsEval)."""
    x, o = _unary(ctx, ("float32", "int8", "int16", "int32"))
    if x.dtype == "float32":
        return _float(ctx, x, "abs")
    if x.dtype == "int32" or (x.dtype == "int16" and not x.is_quantized):
        return IntUnary(output_shapes=(x.shape,), output_dtypes=(o.dtype,), kind="abs")
    s_in, zp_in = _qp(ctx, x)
    s_out, zp_out = _qp(ctx, o)
    if x.dtype == "int16":
        ctx.require_zero_points(x, o, why="LiteRT int16 ABS requires symmetric quantization")
    needs = bool(s_in != s_out)
    m, shift = _qm(ctx, float(F32(s_in / s_out)), "ABS multiplier f32(s_in/s_out)", o) if needs else (0, 0)
    return AbsQuantized(
        output_shapes=(x.shape,),
        output_dtypes=(o.dtype,),
        input_offset=zp_in,
        output_offset=zp_out,
        needs_rescale=needs,
        multiplier=m,
        shift=shift,
        rounding=ctx.rounding,
    )


def prepare_neg(ctx: OpContext) -> OpData:
    """NEG, matching LiteRT ``Register_NEG`` (neg.cc: raw negation, quantization ignored)."""
    x, o = _unary(ctx, ("float32", "int8", "int16", "int32", "int64"))
    if x.dtype == "float32":
        return _float(ctx, x, "neg")
    return IntUnary(output_shapes=(x.shape,), output_dtypes=(o.dtype,), kind="neg")


def prepare_square(ctx: OpContext) -> OpData:
    """SQUARE, matching LiteRT ``Register_SQUARE`` (elementwise.cc: float32 only)."""
    x, _ = _unary(ctx, ("float32",))
    return _float(ctx, x, "square")
