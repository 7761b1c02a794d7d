"""Elementwise binary arithmetic: ADD, SUB, MUL, DIV, SQUARED_DIFFERENCE, MAXIMUM, MINIMUM.

Every kernel here matches LiteRT's ``BUILTIN_REF`` registration (ai-edge-litert 2.3.0) bit for bit
on integer tensors, including NumPy broadcasting (LiteRT broadcasts up to rank 8 and aborts above).
The quantized formulas (docs/litert_semantics.md §3.6, §3.7) and the behaviour found on the oracle:

* ADD/SUB int8, uint8 and int16 "general scale": both inputs are moved onto ``2 * max(s1, s2)``
  with a left shift of 20 (8-bit) or 15 (int16), summed and rescaled; all three multipliers go
  through ``QuantizeMultiplierSmallerThanOneExp``. An ADD whose output multiplier is >= 1 makes
  LiteRT abort; refquant raises :class:`QuantParamError`.
* SUB with an output multiplier > 1: LiteRT then feeds a positive exponent to ``RoundingDivideByPOT``
  (undefined behaviour). The result depends on how the compiler vectorized the loop: on x86 the
  non-broadcast loop gives ``sign(raw)`` in its vectorized body but ``raw >> (32 - shift)`` in its
  scalar tail, so the output of one element depends on the tensor's length. refquant does not emulate
  that and raises :class:`QuantParamError` (the output scale is then below ``max(s1, s2) / 2^19``,
  which no calibrated model has).
* ADD/SUB int16 with power-of-two scales (``pot_scale_int16``: schema default true, but false when
  the operator has no options table, since LiteRT zero-initializes its params; and all three scales
  passing the approximate ``CheckedLog2``): one input is rounding-shifted right, then a saturating
  add/sub. The REF ADD kernel calls its non-broadcast loop here and aborts when the flat sizes
  differ; refquant raises :class:`UnsupportedOpError` for those shapes. SUB broadcasts.
* MUL: ``MBQM((x1 - zp1) * (x2 - zp2), QM(f32(f32(s1*s2)/s_out)))``; int16 x int16 -> int8/uint8
  ignores the scales: ``RDBPOT16(SRDHM16(x1, x2), 8)``, clamped, plus the output zero point.
* DIV (int8, uint8, int16): a gemmlowp reciprocal of the divisor, ``MBQM(x1, 1/x2)`` with
  headroom, and a final ``RoundingDivideByPOT`` whose exponent often exceeds 31. The REF kernel is
  not vectorized, so x86's scalar shift semantics apply (shift count mod 32, mask from a 64-bit
  shift); refquant reproduces them (verified on all 65280 int8 pairs for several scale sets).
  A divisor equal to its zero point is a run-time error in LiteRT and in refquant.
* SQUARED_DIFFERENCE int8: like SUB with a left shift of 7, then the square, then rescaled.
* MAXIMUM/MINIMUM compare raw values (quantization parameters are ignored).
* int32/int64/float32: plain C arithmetic with the fused activation clamp; int32 and int64 wrap on
  overflow, int32 DIV truncates toward zero (a zero divisor is a run-time error; ``INT32_MIN / -1``
  gives ``INT32_MAX``, as the wheel does).

Each prepared op has an ``eval`` and a ``trace`` (the arithmetic steps of one output element).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError, QuantParamError, UnsupportedOpError
from ..fixedpoint import (
    INT32_MAX,
    count_leading_zeros32,
    one_over_one_plus_x_for_x_in_0_1,
    rounding_divide_by_pot,
    rounding_divide_by_pot_x86,
    saturating_rounding_doubling_high_mul,
    saturating_rounding_doubling_high_mul_int16,
    wrap_int32_i64,
)
from ..quantization import (
    calculate_activation_range_float,
    calculate_activation_range_quantized,
    quantize_multiplier,
    quantize_multiplier_smaller_than_one_exp,
)
from ..requantize import (
    mbqm_per_tensor_inplace,
    mbqm_single_rounding_any_shift,
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_smaller_than_one_exp,
)
from ..requantize.elementwise import mbqm_int16_wrap, neon_add_block
from .base import OpContext, OpData, Step, TensorInfo
from .elementwise_profiles import innermost_run, optimized_simd_mask, prepare_add_sub_xnnpack, prepare_mul_xnnpack
from .lut import checked_log2
from .staging import MAX_BROADCAST_RANK, Stage, Staged, binary_prepare, element_inputs, same_output_dtype

__all__ = [
    "prepare_add",
    "prepare_sub",
    "prepare_mul",
    "prepare_div",
    "prepare_squared_difference",
    "prepare_maximum",
    "prepare_minimum",
    "MAX_BROADCAST_RANK",
    "element_inputs",
]

#: Use the table / closed-form fast paths (tests switch this off to compare with the readable kernels).
FAST_PATHS = True

F32 = np.float32


# ---------------------------------------------------------------------------------------------
# Shared helpers


def _clrsb32(v: np.ndarray) -> np.ndarray:
    """``CountLeadingSignBits`` of int32 values (31 for 0 and -1), as int64."""
    u = np.where(v < 0, ~v, v)
    return count_leading_zeros32(u).astype(np.int64) - 1


def _same_flat_sizes(*shapes: tuple[int, ...]) -> bool:
    """LiteRT ``MatchingElementsSize``: every shape has the same number of elements (else it aborts)."""
    return len({int(np.prod(s)) for s in shapes}) == 1


def _qp(ctx: OpContext, t: TensorInfo) -> tuple[np.float32, int]:
    """Per-tensor (float32 scale, zero point) of a quantized tensor, checked."""
    q = ctx.require_quant(t, per_tensor=True)
    return F32(q.scale[0]), int(q.zero_point[0])


def _activation(ctx: OpContext) -> str:
    act = ctx.option("fused_activation_function", "NONE")
    if act not in ("NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH", "SIGN_BIT"):
        raise ctx.unsupported(f"fused activation {act!r}")
    return str(act)


def _quant_act_range(ctx: OpContext, o: TensorInfo, act: str) -> tuple[int, int]:
    s, zp = _qp(ctx, o)
    try:
        return calculate_activation_range_quantized(act, float(s), zp, o.dtype)
    except QuantParamError as exc:
        raise ctx.fail_quant(str(exc), o) from exc


def _int_act_range(act: str, dtype: str) -> tuple[int, int]:
    """LiteRT ``CalculateActivationRange<int32/int64>``."""
    info = np.iinfo(np.dtype(dtype))
    if act == "RELU":
        return 0, int(info.max)
    if act == "RELU6":
        return 0, 6
    if act == "RELU_N1_TO_1":
        return -1, 1
    return int(info.min), int(info.max)


def _qm(ctx: OpContext, d: float, what: str, tensor: TensorInfo | None = None) -> tuple[int, int]:
    try:
        return quantize_multiplier(d, ctx.rounding)  # type: ignore[arg-type]
    except QuantParamError as exc:
        raise ctx.fail_quant(f"{what}: {exc}", tensor) from exc


def _qm_stoe(ctx: OpContext, d: float, what: str, tensor: TensorInfo | None = None) -> tuple[int, int]:
    try:
        return quantize_multiplier_smaller_than_one_exp(d, ctx.rounding)  # type: ignore[arg-type]
    except QuantParamError as exc:
        raise ctx.fail_quant(
            f"{what} = {d!r} must be in (0, 1); LiteRT aborts (QuantizeMultiplierSmallerThanOneExp)", tensor
        ) from exc


def _twice_max_multipliers(
    ctx: OpContext, a: TensorInfo, b: TensorInfo, s1: np.float32, s2: np.float32, show_formula: bool
) -> tuple[np.float32, tuple[int, int], tuple[int, int]]:
    """Both inputs moved onto ``2 * max(s1, s2)``: the setup ADD/SUB and SQUARED_DIFFERENCE share.

    Returns ``twice_max`` (float32, as LiteRT computes it) and, per input, the
    ``QuantizeMultiplierSmallerThanOneExp`` pair of ``s_k / twice_max`` (divided in double, as LiteRT
    does). ``show_formula`` adds ``sk/(2*max(s1,s2))`` to the error messages (ADD/SUB word them so).
    """
    twice_max = F32(F32(2) * max(s1, s2))
    f1, f2 = (" s1/(2*max(s1,s2))", " s2/(2*max(s1,s2))") if show_formula else ("", "")
    m1 = _qm_stoe(ctx, float(s1) / float(twice_max), "input 1 multiplier" + f1, a)
    m2 = _qm_stoe(ctx, float(s2) / float(twice_max), "input 2 multiplier" + f2, b)
    return twice_max, m1, m2


# ---------------------------------------------------------------------------------------------
# ADD / SUB


@dataclass(frozen=True)
class AddSubQuantized(Staged, OpData):
    """Quantized ADD/SUB, general scales (LiteRT ``add.cc``/``sub.cc`` REF, ``AddElementwise``/``SubElementwise``)."""

    #: +1 for ADD, -1 for SUB.
    sign: int = 1
    #: Left shift applied to both offset inputs: 20 for 8-bit, 15 for int16.
    left_shift: int = 20
    #: -zero_point of input 1 and input 2.
    input1_offset: int = 0
    input2_offset: int = 0
    #: Q0.31 multiplier and (non-positive) exponent of s1 / (2*max(s1, s2)).
    input1_multiplier: int = 0
    input1_shift: int = 0
    #: Q0.31 multiplier and exponent of s2 / (2*max(s1, s2)).
    input2_multiplier: int = 0
    input2_shift: int = 0
    #: Q0.31 multiplier and exponent of 2*max(s1, s2) / (2^left_shift * s_out).
    output_multiplier: int = 0
    output_shift: int = 0
    #: Output zero point.
    output_offset: int = 0
    #: Fused-activation clamp (after adding the output zero point).
    act_min: int = 0
    act_max: int = 0
    #: MultiplyByQuantizedMultiplier rounding variant ("double" or "single").
    rounding: str = "double"
    #: 8-bit inputs: the output for every input pair, ``lut[u1 << 8 | u2]`` with ``u = x.view(uint8)``,
    #: computed once in prepare by :meth:`_stages` (so it is the readable kernel's result by construction).
    lut: np.ndarray | None = field(default=None, repr=False)
    #: litert-optimized ADD (``neon_add``): the NEON blocks' output for every pair (``block_lut``) and which output
    #: elements the SIMD loop computes (``simd_mask``); None when the blocks give the reference values.
    block_lut: np.ndarray | None = field(default=None, repr=False)
    #: Whether the NEON blocks fold the input shift into the left shift (int8 elementwise) or truncate it after
    #: ``vqrdmulh`` (uint8, and int8 with one input a scalar along the innermost run).
    fold_input_shift: bool = True
    simd_mask: np.ndarray | None = field(default=None, repr=False)

    _not_params = OpData._not_params | frozenset({"lut", "block_lut", "simd_mask"})

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """8-bit: one table lookup per element; int16: the closed-form MBQM in place (same integers as the
        readable :meth:`_stages`, which trace uses and :meth:`eval_reference` runs)."""
        if not FAST_PATHS:
            return self.eval_reference(inputs)
        x1, x2 = np.asarray(inputs[0]), np.asarray(inputs[1])
        shape = self.output_shapes[0]
        if self.lut is not None:
            idx = np.left_shift(x1.view(np.uint8), 8, dtype=np.uint16)
            idx = np.bitwise_or(idx, x2.view(np.uint8), dtype=np.uint16)
            out = np.take(self.lut, idx)
            if self.block_lut is not None and self.simd_mask is not None:
                out = np.where(self.simd_mask, np.take(self.block_lut, idx), out)
        elif x1.dtype == np.int16 and all(
            0 <= m < 2**31 and -31 <= e <= 0
            for m, e in (
                (self.input1_multiplier, self.input1_shift),
                (self.input2_multiplier, self.input2_shift),
                (self.output_multiplier, self.output_shift),
            )
        ):
            ls, rnd = self.left_shift, self.rounding
            a = x1.astype(np.int64)  # an array even for 0-d inputs, so that the in-place steps apply
            a += self.input1_offset
            a <<= ls  # |(x + offset) << 15| < 2^31
            mbqm_per_tensor_inplace(a, self.input1_multiplier, self.input1_shift, rnd)
            b = x2.astype(np.int64)
            b += self.input2_offset
            b <<= ls
            mbqm_per_tensor_inplace(b, self.input2_multiplier, self.input2_shift, rnd)
            raw = np.asarray(a + b if self.sign > 0 else a - b, dtype=np.int64)
            raw += 2**31  # wrap to int32 (as the C int32 sum does)
            raw &= 0xFFFFFFFF
            raw -= 2**31
            mbqm_per_tensor_inplace(raw, self.output_multiplier, self.output_shift, rnd)
            raw += self.output_offset
            np.clip(raw, self.act_min, self.act_max, out=raw)
            out = raw.astype(self.output_dtypes[0])
        else:
            return self.eval_reference(inputs)
        return [out if out.shape == shape else np.array(np.broadcast_to(out, shape))]

    def eval_reference(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """The readable kernel (:meth:`_stages`; the NEON blocks through :meth:`_block_stages`)."""
        out = Staged.eval(self, inputs)
        if self.simd_mask is not None:
            block = np.broadcast_to(np.asarray(self._block_stages(inputs)[-1][1]), self.output_shapes[0])
            out = [np.where(self.simd_mask, block, out[0]).astype(self.output_dtypes[0])]
        return out

    def _block_stages(self, inputs: list[np.ndarray | None]) -> list[Stage]:
        """LiteRT's optimized ADD in a NEON block (:func:`refquant.requantize.neon_add_block`)."""
        dt = self.output_dtypes[0]
        out = neon_add_block(
            np.asarray(inputs[0]),
            np.asarray(inputs[1]),
            offsets=(self.input1_offset, self.input2_offset),
            multipliers=(self.input1_multiplier, self.input2_multiplier),
            shifts=(self.input1_shift, self.input2_shift),
            output_multiplier=self.output_multiplier,
            output_shift=self.output_shift,
            output_offset=self.output_offset,
            lo=self.act_min,
            hi=self.act_max,
            dtype=dt,
            left_shift=self.left_shift,
            fold_input_shift=self.fold_input_shift,
        ).astype(dt)
        return [
            (
                "output",
                out,
                "LiteRT optimized NEON block: inputs scaled with vqrdmulh (ties up; int8 folds the input shift into "
                "the left shift, uint8 truncates it), sum, vqrdmulh and RoundingDivideByPOT by the output multiplier, "
                f"int16 narrowing and + {self.output_offset} wrapping, saturated, clamped to "
                f"[{self.act_min}, {self.act_max}]",
            )
        ]

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """The arithmetic steps of one output element (the NEON block's or the scalar kernel's)."""
        if self.simd_mask is None or not bool(self.simd_mask[tuple(element)]):
            return Staged.trace(self, inputs, output, element)
        if output != 0:
            raise InputError(f"the operator has one output; got output index {output}")
        picked = element_inputs(inputs, self.output_shapes[0], tuple(element))
        named = [(f"input {k}", v, "input value") for k, v in enumerate(picked) if v is not None]
        stages = named + self._block_stages(picked)
        return [Step(n, np.asarray(v).item() if np.ndim(v) == 0 else np.asarray(v), d) for n, v, d in stages]

    def _stages(self, inputs: list[np.ndarray | None]) -> list[Stage]:
        x1 = np.asarray(inputs[0]).astype(np.int64)
        x2 = np.asarray(inputs[1]).astype(np.int64)
        ls = self.left_shift
        v1 = (x1 + self.input1_offset) << ls  # |v| < 2^16 * 2^15 = 2^31: fits int32
        v2 = (x2 + self.input2_offset) << ls
        a = multiply_by_quantized_multiplier_smaller_than_one_exp(
            v1, self.input1_multiplier, self.input1_shift, self.rounding
        ).astype(np.int64)
        b = multiply_by_quantized_multiplier_smaller_than_one_exp(
            v2, self.input2_multiplier, self.input2_shift, self.rounding
        ).astype(np.int64)
        raw = wrap_int32_i64(a + self.sign * b)
        scaled = multiply_by_quantized_multiplier_smaller_than_one_exp(
            raw, self.output_multiplier, self.output_shift, self.rounding
        ).astype(np.int64)
        shifted = scaled + self.output_offset
        out = np.clip(shifted, self.act_min, self.act_max).astype(self.output_dtypes[0])
        op = "+" if self.sign > 0 else "-"
        return [
            ("shifted input 1", v1, f"(x1 + {self.input1_offset}) << {ls}"),
            ("shifted input 2", v2, f"(x2 + {self.input2_offset}) << {ls}"),
            ("scaled input 1", a, f"MBQM_SmallerThanOneExp(., {self.input1_multiplier}, {self.input1_shift})"),
            ("scaled input 2", b, f"MBQM_SmallerThanOneExp(., {self.input2_multiplier}, {self.input2_shift})"),
            ("raw", raw, f"scaled1 {op} scaled2"),
            ("rescaled", scaled, f"MBQM_SmallerThanOneExp(raw, {self.output_multiplier}, {self.output_shift})"),
            ("plus zero point", shifted, f"+ {self.output_offset}"),
            ("output", out, f"clamp to [{self.act_min}, {self.act_max}]"),
        ]


@dataclass(frozen=True)
class AddSubInt16Pot(Staged, OpData):
    """int16 ADD/SUB with power-of-two scales (LiteRT ``reference_ops::Add``/``Sub16``/``BroadcastSub16POTSlow``)."""

    #: +1 for ADD, -1 for SUB.
    sign: int = 1
    #: Right shift (>= 0) applied to input 1 / input 2 with RoundingDivideByPOT; one of them is 0.
    input1_right_shift: int = 0
    input2_right_shift: int = 0
    #: Fused-activation clamp.
    act_min: int = -32768
    act_max: int = 32767

    def _stages(self, inputs: list[np.ndarray | None]) -> list[Stage]:
        x1 = np.asarray(inputs[0]).astype(np.int16)
        x2 = np.asarray(inputs[1]).astype(np.int16)
        a = rounding_divide_by_pot(x1, self.input1_right_shift).astype(np.int64)
        b = rounding_divide_by_pot(x2, self.input2_right_shift).astype(np.int64)
        raw = a + self.sign * b
        sat = np.clip(raw, -32768, 32767)
        out = np.clip(sat, self.act_min, self.act_max).astype(np.int16)
        return [
            ("scaled input 1", a, f"RoundingDivideByPOT16(x1, {self.input1_right_shift})"),
            ("scaled input 2", b, f"RoundingDivideByPOT16(x2, {self.input2_right_shift})"),
            ("saturated", sat, ("saturating add" if self.sign > 0 else "saturating sub") + " in int16"),
            ("output", out, f"clamp to [{self.act_min}, {self.act_max}]"),
        ]


@dataclass(frozen=True)
class PlainArithmetic(Staged, OpData):
    """Unquantized int32/int64/float32 ADD, SUB, MUL, DIV, SQUARED_DIFFERENCE (C arithmetic + activation clamp)."""

    #: "add", "sub", "mul", "div" or "squared_difference".
    kind: str = "add"
    #: Activation clamp bounds (Python ints for integer types, float32 for float32).
    act_min: Any = None
    act_max: Any = None
    #: Message prefix for run-time errors (division by zero).
    _where: str = field(default="", repr=False)

    def _stages(self, inputs: list[np.ndarray | None]) -> list[Stage]:
        dtype = self.output_dtypes[0]
        a = np.asarray(inputs[0])
        b = np.asarray(inputs[1])
        if dtype == "float32":
            a = a.astype(F32)
            b = b.astype(F32)
            with np.errstate(all="ignore"):
                if self.kind == "add":
                    r = a + b
                elif self.kind == "sub":
                    r = a - b
                elif self.kind == "mul":
                    r = a * b
                elif self.kind == "div":
                    r = a / b
                else:
                    d = a - b
                    r = d * d
            if self.act_min is None:
                return [("output", np.asarray(r, dtype=F32), "float32")]
            out = np.minimum(np.maximum(r, F32(self.act_min)), F32(self.act_max)).astype(F32)
            return [("raw", r, self.kind), ("output", out, f"clamp to [{self.act_min}, {self.act_max}]")]
        wide = dtype == "int64"
        a = a.astype(np.int64)
        b = b.astype(np.int64)
        with np.errstate(over="ignore"):
            if self.kind == "add":
                r = a + b
            elif self.kind == "sub":
                r = a - b
            elif self.kind == "mul":
                r = a * b  # int32: |a*b| < 2^62, wrapped below; int64 wraps in NumPy as in C on x86
            elif self.kind == "div":
                if np.any(b == 0):
                    raise InputError(f"{self._where}: division by zero (LiteRT fails Eval: divisor element is 0)")
                q = np.abs(a) // np.abs(b)  # C truncation toward zero
                # INT32_MIN / -1 overflows: the wheel returns INT32_MAX (observed; no SIGFPE).
                r = np.where((a < 0) != (b < 0), -q, np.minimum(q, INT32_MAX))
            else:
                d = a - b if wide else wrap_int32_i64(a - b)
                r = d * d
        if not wide:
            r = wrap_int32_i64(r)
        steps: list[Stage] = [("raw", r, self.kind + (" (int64 wraps)" if wide else " (int32 wraps)"))]
        if self.act_min is not None:
            r = np.clip(r, self.act_min, self.act_max)
            steps.append(("clamped", r, f"clamp to [{self.act_min}, {self.act_max}]"))
        steps.append(("output", r.astype(dtype), dtype))
        return steps


def _prepare_plain(ctx: OpContext, kind: str, a: TensorInfo, o: TensorInfo, shape: tuple[int, ...]) -> OpData:
    same_output_dtype(ctx, a, o)
    has_act = kind != "squared_difference"
    lo: Any = None
    hi: Any = None
    if has_act:
        act = _activation(ctx)
        if a.dtype == "float32":
            flo, fhi = calculate_activation_range_float(act)
            lo, hi = float(flo), float(fhi)
        else:
            lo, hi = _int_act_range(act, a.dtype)
    return PlainArithmetic(
        output_shapes=(shape,), output_dtypes=(o.dtype,), kind=kind, act_min=lo, act_max=hi, _where=ctx.where()
    )


def _prepare_add_sub(ctx: OpContext, sign: int) -> OpData:
    a, b, o, shape = binary_prepare(ctx)
    name = "ADD" if sign > 0 else "SUB"
    allowed = ("int8", "uint8", "int16", "int32", "int64", "float32")
    ctx.check_dtype(a, allowed, "input")
    same_output_dtype(ctx, a, o)
    if a.dtype in ("int32", "int64", "float32"):
        return _prepare_plain(ctx, "add" if sign > 0 else "sub", a, o, shape)
    act = _activation(ctx)
    s1, zp1 = _qp(ctx, a)
    s2, zp2 = _qp(ctx, b)
    so, zpo = _qp(ctx, o)
    pot = False
    if a.dtype == "int16":
        ctx.require_zero_points(a, b, o, why=f"LiteRT {name} int16 requires symmetric quantization")
        # Without an options table LiteRT's params are zero-initialized: pot_scale_int16 is then false.
        if ctx.option("pot_scale_int16", False):
            checks = [checked_log2(float(s)) for s in (s1, s2, so)]
            pot = all(ok for ok, _ in checks)
    arith = ctx.arithmetic
    if arith.rescale == "xnn_add20":
        return prepare_add_sub_xnnpack(ctx, sign, a, o, shape, act, (s1, zp1), (s2, zp2), (so, zpo))
    act_min, act_max = _quant_act_range(ctx, o, act)
    if pot:
        l1, l2, lo_ = (lg for _, lg in checks)
        sh1, sh2 = l1 - lo_, l2 - lo_
        if not (sh1 == 0 or sh2 == 0) or sh1 > 0 or sh2 > 0:
            raise ctx.fail_quant(
                f"int16 power-of-two {name}: input scales 2^{l1}, 2^{l2} and output scale 2^{lo_} need one input "
                "scale equal to the output scale and the other not larger (LiteRT fails Prepare)"
            )
        if sign > 0 and not _same_flat_sizes(a.shape, b.shape, shape):
            raise ctx.error(
                f"int16 power-of-two ADD cannot broadcast shapes {list(a.shape)} and {list(b.shape)}: LiteRT's "
                "reference kernel uses its non-broadcast loop here and aborts (MatchingElementsSize)",
                cls=UnsupportedOpError,
            )
        return AddSubInt16Pot(
            output_shapes=(shape,),
            output_dtypes=(o.dtype,),
            sign=sign,
            input1_right_shift=-sh1,
            input2_right_shift=-sh2,
            act_min=act_min,
            act_max=act_max,
        )
    ls = 15 if a.dtype == "int16" else 20
    twice_max, (m1, e1), (m2, e2) = _twice_max_multipliers(ctx, a, b, s1, s2, show_formula=True)
    r_out = float(twice_max) / float(F32(F32(1 << ls) * so))
    if sign < 0 and r_out > 1.0:
        raise ctx.fail_quant(
            f"SUB output multiplier 2*max(s1,s2)/(2^{ls}*s_out) = {r_out!r} is above 1: LiteRT then calls "
            "RoundingDivideByPOT with a negative exponent (undefined behaviour; on x86 the result depends on "
            "the tensor length), so refquant refuses this output scale",
            o,
        )
    mo, eo = _qm_stoe(ctx, r_out, f"{name} output multiplier 2*max(s1,s2)/(2^{ls}*s_out)", o)
    data = AddSubQuantized(
        output_shapes=(shape,),
        output_dtypes=(o.dtype,),
        sign=sign,
        left_shift=ls,
        input1_offset=-zp1,
        input2_offset=-zp2,
        input1_multiplier=m1,
        input1_shift=e1,
        input2_multiplier=m2,
        input2_shift=e2,
        output_multiplier=mo,
        output_shift=eo,
        output_offset=zpo,
        act_min=act_min,
        act_max=act_max,
        rounding=ctx.rounding,
    )
    if a.dtype in ("int8", "uint8"):
        # All 65536 input pairs through the readable stages: the fast eval is then one lookup.
        vals = np.arange(256, dtype=np.uint8).view(np.dtype(a.dtype))
        lut = np.asarray(data._stages([vals[:, None], vals[None, :]])[-1][1]).reshape(-1)
        lut = lut.astype(np.dtype(o.dtype))
        lut.flags.writeable = False
        data = dataclasses.replace(data, lut=lut)
        if arith.rescale == "neon_add":
            # AddScalarBroadcast (one input constant along the innermost run): blocks of 8, input shift truncated.
            scalar_run = innermost_run(a.shape, b.shape, shape)[1]
            fold = a.dtype == "int8" and not scalar_run
            blocks = 8 if scalar_run else arith.blocks
            data = dataclasses.replace(data, arithmetic=arith, fold_input_shift=fold)
            block = np.asarray(data._block_stages([vals[:, None], vals[None, :]])[-1][1]).reshape(-1)
            if not np.array_equal(block, lut):  # else the NEON blocks give the reference values for every pair
                block = block.astype(np.dtype(o.dtype))
                block.flags.writeable = False
                mask = optimized_simd_mask(ctx, a.shape, b.shape, shape, blocks, name)
                mask.flags.writeable = False
                data = dataclasses.replace(data, block_lut=block, simd_mask=mask)
    return data


def prepare_add(ctx: OpContext) -> OpData:
    """ADD, matching LiteRT ``Register_ADD_REF`` (add.cc; reference/add.h, reference/integer_ops/add.h)."""
    return _prepare_add_sub(ctx, +1)


def prepare_sub(ctx: OpContext) -> OpData:
    """SUB, matching LiteRT ``Register_SUB_REF`` (sub.cc; reference/sub.h, Sub16 in reference_ops.h)."""
    return _prepare_add_sub(ctx, -1)


# ---------------------------------------------------------------------------------------------
# MUL


@dataclass(frozen=True)
class MulQuantized(Staged, OpData):
    """Quantized MUL with the same type in and out (LiteRT ``reference_integer_ops::MulElementwise``)."""

    #: -zero_point of input 1 and input 2.
    input1_offset: int = 0
    input2_offset: int = 0
    #: QuantizeMultiplier(f32(f32(s1*s2)/s_out)): Q0.31 multiplier and exponent.
    output_multiplier: int = 0
    output_shift: int = 0
    #: Output zero point.
    output_offset: int = 0
    #: Fused-activation clamp.
    act_min: int = 0
    act_max: int = 0
    #: MultiplyByQuantizedMultiplier rounding variant.
    rounding: str = "double"

    #: litert-optimized (``mbqm_int16_wrap``): which output elements LiteRT's SIMD blocks compute (their int16
    #: output stage wraps); None when that stage gives the reference values for every input pair.
    simd_mask: np.ndarray | None = field(default=None, repr=False)

    _not_params = OpData._not_params | frozenset({"simd_mask"})

    def _stages(self, inputs: list[np.ndarray | None], in_block: Any = None) -> list[Stage]:
        v1 = np.asarray(inputs[0]).astype(np.int64) + self.input1_offset
        v2 = np.asarray(inputs[1]).astype(np.int64) + self.input2_offset
        prod = wrap_int32_i64(v1 * v2)  # |prod| <= 2^30 for int16 (zero points 0), <= 255^2 for 8-bit
        scaled = multiply_by_quantized_multiplier(
            prod, self.output_multiplier, self.output_shift, self.rounding
        ).astype(np.int64)
        shifted = scaled + self.output_offset
        out = np.clip(shifted, self.act_min, self.act_max)
        steps: list[Stage] = [
            ("product", prod, f"(x1 + {self.input1_offset}) * (x2 + {self.input2_offset})"),
            ("rescaled", scaled, f"MBQM(product, {self.output_multiplier}, {self.output_shift})"),
        ]
        if in_block is None and self.simd_mask is not None and np.shape(out) == self.output_shapes[0]:
            in_block = self.simd_mask
        if in_block is not None:
            wrapped = mbqm_int16_wrap(scaled, self.output_offset, self.act_min, self.act_max)
            out = np.where(in_block, wrapped, out)
            where = "SIMD block" if np.ndim(in_block) == 0 and bool(in_block) else "scalar tail"
            if np.ndim(in_block) == 0 and bool(in_block):
                steps.append(
                    (
                        "output",
                        out.astype(self.output_dtypes[0]),
                        "LiteRT optimized SIMD block: saturate to int16, "
                        f"+ {self.output_offset} wrapping in int16, saturate, clamp to [{self.act_min}, {self.act_max}]",
                    )
                )
                return steps
            steps.append(("plus zero point", shifted, f"+ {self.output_offset} ({where})"))
            steps.append(("output", out.astype(self.output_dtypes[0]), f"clamp to [{self.act_min}, {self.act_max}]"))
            return steps
        steps.append(("plus zero point", shifted, f"+ {self.output_offset}"))
        steps.append(("output", out.astype(self.output_dtypes[0]), f"clamp to [{self.act_min}, {self.act_max}]"))
        return steps

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """The arithmetic steps of one output element (the SIMD block or scalar tail it falls in, if any)."""
        if self.simd_mask is None:
            return Staged.trace(self, inputs, output, element)
        if output != 0:
            raise InputError(f"the operator has one output; got output index {output}")
        picked = element_inputs(inputs, self.output_shapes[0], tuple(element))
        stages = self._stages(picked, in_block=np.asarray(self.simd_mask[tuple(element)]))
        named = [(f"input {k}", v, "input value") for k, v in enumerate(picked) if v is not None]
        return [Step(n, np.asarray(v).item() if np.ndim(v) == 0 else np.asarray(v), d) for n, v, d in named + stages]


@dataclass(frozen=True)
class MulInt16To8(Staged, OpData):
    """MUL int16 x int16 -> int8/uint8 (LiteRT ``reference_integer_ops::Mul`` / ``reference_ops::Mul`` Int16Int8/Uint8).

    The scales are not used: the product is the Q0.15 fixed-point product, divided by 2^8.
    """

    #: Output zero point.
    output_offset: int = 0
    #: Fused-activation clamp (the int16 result is clamped to [act_min - zp, act_max - zp]).
    act_min: int = 0
    act_max: int = 0

    def _stages(self, inputs: list[np.ndarray | None]) -> list[Stage]:
        x1 = np.asarray(inputs[0]).astype(np.int16)
        x2 = np.asarray(inputs[1]).astype(np.int16)
        prod = saturating_rounding_doubling_high_mul_int16(x1, x2)
        res = rounding_divide_by_pot(prod, 8).astype(np.int64)
        lo, hi = self.act_min - self.output_offset, self.act_max - self.output_offset
        clamped = np.maximum(np.minimum(res, hi), lo)
        out = (clamped + self.output_offset).astype(self.output_dtypes[0])
        return [
            ("Q0.15 product", prod.astype(np.int64), "SaturatingRoundingDoublingHighMul16(x1, x2)"),
            ("rescaled", res, "RoundingDivideByPOT16(product, 8)"),
            ("clamped", clamped, f"clamp to [{lo}, {hi}]"),
            ("output", out, f"+ {self.output_offset}"),
        ]


def prepare_mul(ctx: OpContext) -> OpData:
    """MUL, matching LiteRT ``Register_MUL_REF`` (mul.cc; reference/integer_ops/mul.h, reference/mul.h)."""
    a, b, o, shape = binary_prepare(ctx)
    ctx.check_dtype(a, ("int8", "uint8", "int16", "int32", "int64", "float32"), "input")
    if a.dtype == "int16" and o.dtype in ("int8", "uint8"):
        act = _activation(ctx)
        act_min, act_max = _quant_act_range(ctx, o, act)
        _, zpo = _qp(ctx, o)
        if not _same_flat_sizes(a.shape, b.shape, shape):
            raise ctx.error(
                f"MUL int16 -> {o.dtype} cannot broadcast shapes {list(a.shape)} and {list(b.shape)}: LiteRT's "
                "kernel has no broadcast loop for it and aborts (MatchingElementsSize)",
                cls=UnsupportedOpError,
            )
        return MulInt16To8(
            output_shapes=(shape,), output_dtypes=(o.dtype,), output_offset=zpo, act_min=act_min, act_max=act_max
        )
    same_output_dtype(ctx, a, o)
    if a.dtype in ("int32", "int64", "float32"):
        return _prepare_plain(ctx, "mul", a, o, shape)
    act = _activation(ctx)
    s1, zp1 = _qp(ctx, a)
    s2, zp2 = _qp(ctx, b)
    so, zpo = _qp(ctx, o)
    if a.dtype == "int16":
        ctx.require_zero_points(a, b, o, why="LiteRT MUL int16 requires symmetric quantization (fails Eval)")
    arith = ctx.arithmetic
    if arith.rescale == "fp32_rne":
        return prepare_mul_xnnpack(ctx, a, o, shape, act, (s1, zp1), (s2, zp2), (so, zpo))
    act_min, act_max = _quant_act_range(ctx, o, act)
    real = F32(F32(s1 * s2) / so)
    m, shift = _qm(ctx, float(real), "MUL multiplier f32(s1*s2/s_out)", o)
    if arith.rescale == "mbqm_int16_wrap":
        if a.dtype not in ("int8", "uint8"):
            raise ctx.unsupported(f"optimized MUL int16 wrap of {a.dtype}")
        data = MulQuantized(
            output_shapes=(shape,),
            output_dtypes=(o.dtype,),
            input1_offset=-zp1,
            input2_offset=-zp2,
            output_multiplier=m,
            output_shift=shift,
            output_offset=zpo,
            act_min=act_min,
            act_max=act_max,
            rounding=ctx.rounding,
            arithmetic=arith,
        )
        vals = np.arange(256, dtype=np.uint8).view(np.dtype(a.dtype))
        scaled = np.asarray(data._stages([vals[:, None], vals[None, :]])[1][1])
        ref = np.clip(scaled + zpo, act_min, act_max)
        if np.array_equal(ref, mbqm_int16_wrap(scaled, zpo, act_min, act_max)):
            return data  # the int16 stage never leaves int16: the SIMD blocks give the reference values
        block = 16 if a.dtype == "int8" else 8
        mask = optimized_simd_mask(ctx, a.shape, b.shape, shape, block)
        mask.flags.writeable = False
        return dataclasses.replace(data, simd_mask=mask)
    return MulQuantized(
        output_shapes=(shape,),
        output_dtypes=(o.dtype,),
        input1_offset=-zp1,
        input2_offset=-zp2,
        output_multiplier=m,
        output_shift=shift,
        output_offset=zpo,
        act_min=act_min,
        act_max=act_max,
        rounding=ctx.rounding,
    )


# ---------------------------------------------------------------------------------------------
# DIV


@dataclass(frozen=True)
class DivQuantized(Staged, OpData):
    """Quantized DIV (LiteRT ``reference_ops::DivElementwise`` / ``BroadcastDivSlowQuantized``)."""

    #: -zero_point of input 1 and input 2.
    input1_offset: int = 0
    input2_offset: int = 0
    #: QuantizeMultiplier(f32(s1 / f32(s2*s_out))): Q0.31 multiplier and exponent.
    output_multiplier: int = 0
    output_shift: int = 0
    #: Output zero point.
    output_offset: int = 0
    #: Fused-activation clamp.
    act_min: int = 0
    act_max: int = 0
    #: MultiplyByQuantizedMultiplier rounding variant.
    rounding: str = "double"
    #: Message prefix for run-time errors.
    _where: str = field(default="", repr=False)

    def _stages(self, inputs: list[np.ndarray | None]) -> list[Stage]:
        x1 = np.asarray(inputs[0]).astype(np.int64)
        x2 = np.asarray(inputs[1]).astype(np.int64)
        if np.any(x2 == -self.input2_offset):
            raise InputError(
                f"{self._where}: divisor element equals the divisor zero point {-self.input2_offset} "
                "(division by zero; LiteRT fails Eval)"
            )
        v1 = x1 + self.input1_offset
        v2 = x2 + self.input2_offset
        neg = v2 < 0
        v1, v2 = np.broadcast_arrays(np.where(neg, -v1, v1), np.abs(v2))
        clz = count_leading_zeros32(v2).astype(np.int64)
        recip_shift = 31 - clz
        shifted = ((v2 << clz) & 0xFFFFFFFF) - 2**31  # (uint32(v2) << clz) - 2^31, in [0, 2^31)
        inv = one_over_one_plus_x_for_x_in_0_1(shifted).astype(np.int64)
        headroom = _clrsb32(v1)
        total = self.output_shift - recip_shift - headroom
        if self.rounding == "single":
            quotient = mbqm_single_rounding_any_shift(v1, inv, headroom)
            scaled = mbqm_single_rounding_any_shift(quotient, self.output_multiplier, total)
        else:
            quotient = saturating_rounding_doubling_high_mul(v1 << headroom, inv).astype(np.int64)
            high = saturating_rounding_doubling_high_mul(quotient, self.output_multiplier).astype(np.int64)
            scaled = rounding_divide_by_pot_x86(high, -total)
        shifted_out = scaled + self.output_offset
        out = np.clip(shifted_out, self.act_min, self.act_max).astype(self.output_dtypes[0])
        return [
            ("numerator", v1, "x1 - zp1 (negated with the divisor when the divisor is negative)"),
            ("divisor", v2, "|x2 - zp2|"),
            ("reciprocal", inv, "GetReciprocal: one_over_one_plus_x of the normalized divisor (Q0.31)"),
            ("reciprocal shift", recip_shift, "31 - clz(divisor)"),
            ("headroom", headroom, "CountLeadingSignBits(numerator)"),
            ("unscaled quotient", quotient, "SRDHM(numerator << headroom, reciprocal)"),
            ("total shift", total, f"{self.output_shift} - reciprocal shift - headroom"),
            ("rescaled", scaled, f"MBQM_SmallerThanOneExp(quotient, {self.output_multiplier}, total shift)"),
            ("plus zero point", shifted_out, f"+ {self.output_offset}"),
            ("output", out, f"clamp to [{self.act_min}, {self.act_max}]"),
        ]


def prepare_div(ctx: OpContext) -> OpData:
    """DIV, matching LiteRT ``Register_DIV_REF`` (div.cc; reference/div.h)."""
    a, b, o, shape = binary_prepare(ctx)
    ctx.check_dtype(a, ("int8", "uint8", "int16", "int32", "float32"), "input")
    same_output_dtype(ctx, a, o)
    if a.dtype in ("int32", "float32"):
        return _prepare_plain(ctx, "div", a, o, shape)
    act = _activation(ctx)
    s1, zp1 = _qp(ctx, a)
    s2, zp2 = _qp(ctx, b)
    so, zpo = _qp(ctx, o)
    act_min, act_max = _quant_act_range(ctx, o, act)
    real = F32(s1 / F32(s2 * so))
    m, shift = _qm(ctx, float(real), "DIV multiplier f32(s1/(s2*s_out))", o)
    return DivQuantized(
        output_shapes=(shape,),
        output_dtypes=(o.dtype,),
        input1_offset=-zp1,
        input2_offset=-zp2,
        output_multiplier=m,
        output_shift=shift,
        output_offset=zpo,
        act_min=act_min,
        act_max=act_max,
        rounding=ctx.rounding,
        _where=ctx.where(),
    )


# ---------------------------------------------------------------------------------------------
# SQUARED_DIFFERENCE


@dataclass(frozen=True)
class SquaredDifferenceInt8(Staged, OpData):
    """SQUARED_DIFFERENCE int8 (LiteRT ``squared_difference.cc`` ``SquaredDifference(int8, int8, params)``)."""

    #: Left shift applied to both offset inputs (7).
    left_shift: int = 7
    #: -zero_point of input 1 and input 2.
    input1_offset: int = 0
    input2_offset: int = 0
    #: Q0.31 multipliers and exponents of s_i / (2*max(s1, s2)).
    input1_multiplier: int = 0
    input1_shift: int = 0
    input2_multiplier: int = 0
    input2_shift: int = 0
    #: Q0.31 multiplier and exponent of (2*max(s1, s2))^2 / (2^14 * s_out).
    output_multiplier: int = 0
    output_shift: int = 0
    #: Output zero point.
    output_offset: int = 0
    #: MultiplyByQuantizedMultiplier rounding variant.
    rounding: str = "double"

    def _stages(self, inputs: list[np.ndarray | None]) -> list[Stage]:
        ls = self.left_shift
        v1 = (np.asarray(inputs[0]).astype(np.int64) + self.input1_offset) << ls
        v2 = (np.asarray(inputs[1]).astype(np.int64) + self.input2_offset) << ls
        a = multiply_by_quantized_multiplier_smaller_than_one_exp(
            v1, self.input1_multiplier, self.input1_shift, self.rounding
        ).astype(np.int64)
        b = multiply_by_quantized_multiplier_smaller_than_one_exp(
            v2, self.input2_multiplier, self.input2_shift, self.rounding
        ).astype(np.int64)
        diff = a - b
        sq = wrap_int32_i64(diff * diff)  # |diff| <= 255 * 2^7, so the square is below 2^31
        scaled = multiply_by_quantized_multiplier_smaller_than_one_exp(
            sq, self.output_multiplier, self.output_shift, self.rounding
        ).astype(np.int64)
        shifted = scaled + self.output_offset
        out = np.clip(shifted, -128, 127).astype(np.int8)
        return [
            ("scaled input 1", a, f"MBQM_SmallerThanOneExp((x1 + {self.input1_offset}) << {ls}, ...)"),
            ("scaled input 2", b, f"MBQM_SmallerThanOneExp((x2 + {self.input2_offset}) << {ls}, ...)"),
            ("difference", diff, "scaled1 - scaled2"),
            ("square", sq, "difference * difference"),
            ("rescaled", scaled, f"MBQM_SmallerThanOneExp(square, {self.output_multiplier}, {self.output_shift})"),
            ("plus zero point", shifted, f"+ {self.output_offset}"),
            ("output", out, "clamp to [-128, 127]"),
        ]


def prepare_squared_difference(ctx: OpContext) -> OpData:
    """SQUARED_DIFFERENCE, matching LiteRT ``Register_SQUARED_DIFFERENCE`` (squared_difference.cc)."""
    a, b, o, shape = binary_prepare(ctx)
    ctx.check_dtype(a, ("int8", "int32", "float32"), "input")
    same_output_dtype(ctx, a, o)
    if a.dtype != "int8":
        return _prepare_plain(ctx, "squared_difference", a, o, shape)
    s1, zp1 = _qp(ctx, a)
    s2, zp2 = _qp(ctx, b)
    so, zpo = _qp(ctx, o)
    ls = 7
    twice_max, (m1, e1), (m2, e2) = _twice_max_multipliers(ctx, a, b, s1, s2, show_formula=False)
    r_out = (float(twice_max) * float(twice_max)) / float(F32(F32(1 << (2 * ls)) * so))
    mo, eo = _qm_stoe(ctx, r_out, "SQUARED_DIFFERENCE output multiplier (2*max(s1,s2))^2/(2^14*s_out)", o)
    return SquaredDifferenceInt8(
        output_shapes=(shape,),
        output_dtypes=(o.dtype,),
        left_shift=ls,
        input1_offset=-zp1,
        input2_offset=-zp2,
        input1_multiplier=m1,
        input1_shift=e1,
        input2_multiplier=m2,
        input2_shift=e2,
        output_multiplier=mo,
        output_shift=eo,
        output_offset=zpo,
        rounding=ctx.rounding,
    )


# ---------------------------------------------------------------------------------------------
# MAXIMUM / MINIMUM


@dataclass(frozen=True)
class MaximumMinimum(Staged, OpData):
    """MAXIMUM/MINIMUM on raw values (LiteRT ``maximum_minimum.cc``: ``a > b ? a : b`` / ``a < b ? a : b``).

    Quantization parameters are not used. With float NaN: MAXIMUM(NaN, x) = x, MAXIMUM(x, NaN) = NaN
    (the C comparison is false), likewise for MINIMUM.
    """

    #: True for MAXIMUM, False for MINIMUM.
    is_max: bool = True

    def _stages(self, inputs: list[np.ndarray | None]) -> list[Stage]:
        a = np.asarray(inputs[0])
        b = np.asarray(inputs[1])
        with np.errstate(invalid="ignore"):
            pick_a = (a > b) if self.is_max else (a < b)
        out = np.where(pick_a, a, b).astype(self.output_dtypes[0])
        return [("output", out, "a > b ? a : b" if self.is_max else "a < b ? a : b")]


def _prepare_max_min(ctx: OpContext, is_max: bool) -> OpData:
    a, b, o, shape = binary_prepare(ctx)
    ctx.check_dtype(a, ("int8", "uint8", "int16", "int32", "int64", "float32"), "input")
    same_output_dtype(ctx, a, o)
    return MaximumMinimum(output_shapes=(shape,), output_dtypes=(o.dtype,), is_max=is_max)


def prepare_maximum(ctx: OpContext) -> OpData:
    """MAXIMUM, matching LiteRT ``Register_MAXIMUM_REF`` (maximum_minimum.cc)."""
    return _prepare_max_min(ctx, True)


def prepare_minimum(ctx: OpContext) -> OpData:
    """MINIMUM, matching LiteRT ``Register_MINIMUM_REF`` (maximum_minimum.cc)."""
    return _prepare_max_min(ctx, False)
