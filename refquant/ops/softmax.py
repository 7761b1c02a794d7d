"""SOFTMAX and LOG_SOFTMAX: LiteRT ``activations.cc`` with the reference kernels.

Matches ``Register_SOFTMAX_REF`` and ``Register_LOG_SOFTMAX_REF``: ``reference_ops::Softmax`` (float32;
int8/uint8 input with int8/uint8/int16 output), ``reference_ops::SoftmaxInt16`` (int16 -> int16),
``reference_ops::LogSoftmax`` (float32, uint8) and ``reference_integer_ops::LogSoftmax`` (int8).
docs/litert_semantics.md §3.12 and §4. Every quantity below is per row of the last axis.

int8/uint8 SOFTMAX (gemmlowp fixed point, no lookup table)::

    real = min(f64(beta) * f64(s_in) * 2^26, 2^31 - 1)     (2^30 - 1 in a single-rounding build)
    (M, ls) = QuantizeMultiplierGreaterThanOne(real)       (LiteRT aborts when real <= 1)
    diff_min = -floor(31 * 2^26 / 2^ls)
    d_c = q_c - max(q);  taps with d_c < diff_min are skipped and output the type minimum
    e_c = exp_on_negative_values<Q5.26>(MBQM_GT1(d_c, M, ls))          Q0.31
    S   = sum_c RDBPOT(e_c, 12)                                         Q12.19, wrapping int32 adds
    h = clz(S);  r = one_over_one_plus_x_for_x_in_0_1((S << h) - 2^31)  Q0.31 reciprocal
    E = (12 - h) + 31 - bits(out)                                       LiteRT CHECKs 0 <= E <= 31
    out_c = clamp(RDBPOT(SRDHM(r, e_c), E) + type_min(out), out range)

Output parameters: int8 -> int8 requires zero point -128 and ``|s_out - 1/256| <= 0.001/256`` (float32
arithmetic), int16 -> int16 requires zero point 0 and ``|s_out - 1/32768| <= 0.001/32768``; uint8
output and int8/uint8 -> int16 output parameters are not checked and not used (the output is always
the Q0.8 / Q0.16 probability offset by the type minimum).

**Data-dependent abort.** For 8-bit outputs ``E <= 31`` needs ``S < 512`` (in real terms the sum of
``exp(beta * s_in * d_c)``). A row whose exponentials add up to 512 or more (for example 512 equal
values) makes LiteRT abort its process; refquant raises :class:`refquant.errors.EvalError` from
``invoke`` for that input. Rows shorter than 512 can never trigger it.

int16 -> int16 SOFTMAX: the difference ``d_c`` is rescaled with ``MBQM(d_c, QM(f64(f32(s_in * beta)) /
(10/65535)))`` so that [-10, 0] spans the int16 range, offset by 32767, looked up in a 513-entry
interpolated ``exp`` table; the int32 sum is normalised by its leading zeros and looked up in an
interpolated ``1/(1+x)`` table; ``out = (exp * recip + 2^(rs-1)) >> rs`` with ``rs = 31 - clz(sum)``,
clamped to [0, 32767]. Both tables are computed in double exactly as ``LUTPopulateInt16<double>``.

LOG_SOFTMAX int8/uint8: output scale must be exactly 16/256 and the zero point 127 (int8) / 255
(uint8); beta is fixed at 1. ``M, ls`` as above, a reverse multiplier ``QuantizeMultiplierSmallerThanOneExp(
2^(31-ls) / M)``; ``log(S)`` by ``log_x_for_x_greater_than_or_equal_to_1<5>`` on the Q12.19 sum; a
tap is kept when ``d_c > max(diff_min - 1, MBQM(log_sum + INT32_MIN, reverse multiplier))`` and gives
``clamp(RDBPOT(MBQM(d_c, M, ls) - log_sum, 22) + 127 (int8) / 255 (uint8))``, otherwise the minimum.

Float32 (``reference_ops::Softmax`` / ``LogSoftmax``): ``max`` ignores NaN (``std::max``),
``e_c = expf(f32(x_c - max) * beta)``, a sequential float32 sum, ``e_c / sum``; LOG_SOFTMAX gives
``x_c - max - logf(sum)``. ``expf`` and ``logf`` are glibc's (see :func:`glibc_expf`), so float
results are bit-exact with LiteRT on the same machine.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..errors import EvalError, QuantParamError, UnsupportedOpError
from ..fixedpoint import (
    INT32_MAX,
    INT32_MIN,
    count_leading_zeros32,
    exp_on_negative_values,
    one_over_one_plus_x_for_x_in_0_1,
    rounding_divide_by_pot,
    rounding_divide_by_pot_py,
    rounding_half_sum,
    saturating_rounding_doubling_high_mul,
    saturating_rounding_multiply_by_pot,
    wrap_int,
    wrap_int32_i64,
)
from ..quantization import (
    dtype_range,
    quantize_multiplier,
    quantize_multiplier_greater_than_one,
    quantize_multiplier_smaller_than_one_exp,
)
from ..requantize import (
    mbqm_steps,
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_greater_than_one,
)
from .base import OpContext, OpData, Step

__all__ = [
    "prepare_softmax",
    "prepare_log_softmax",
    "glibc_expf",
    "glibc_logf",
    "log_x_for_x_greater_than_or_equal_to_1",
    "softmax_int16_luts",
    "QuantizedSoftmaxData",
    "Int16SoftmaxData",
    "FloatSoftmaxData",
    "QuantizedLogSoftmaxData",
]

#: Integer bits of the exp() input (Q5.26) and of the sum of exponentials (Q12.19).
_SCALED_DIFF_INTEGER_BITS = 5
_ACCUMULATION_INTEGER_BITS = 12
#: Integer bits of the LOG_SOFTMAX output representation (scale 16/256: Q4.27 before the final shift).
_OUTPUT_INTEGER_BITS = 4


def _i64(v: np.ndarray) -> np.ndarray:
    return np.asarray(v, dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# glibc expf / logf


@functools.lru_cache(maxsize=1)
def _libm() -> tuple[object, object]:
    name = ctypes.util.find_library("m") or "libm.so.6"
    lib = ctypes.CDLL(name)
    expf, logf = lib.expf, lib.logf
    for f in (expf, logf):
        f.restype = ctypes.c_float
        f.argtypes = [ctypes.c_float]
    return expf, logf


def glibc_expf(x: np.ndarray) -> np.ndarray:
    """``expf`` of the C library LiteRT calls (glibc), elementwise, as float32, bit for bit.

    glibc's ``expf`` evaluates in double with a relative error below 1.69 * 2^-34 and then rounds to
    float once, so it returns the correctly rounded result except when ``exp(x)`` lies within
    0.0017 ulp of a float32 rounding boundary. refquant computes ``exp`` in float64 with NumPy and
    rounds; elements within 0.004 ulp of a boundary (about 0.8 % of them), infinities and NaNs are
    recomputed by calling glibc ``expf`` through ctypes. Input: float32 array; output: float32 array.
    """
    x = np.asarray(x, dtype=np.float32)
    with np.errstate(all="ignore"):
        y = np.exp(x.astype(np.float64))
        c = y.astype(np.float32)
        up = np.nextafter(c, np.float32(np.inf)).astype(np.float64)
        dn = np.nextafter(c, np.float32(-np.inf)).astype(np.float64)
        cd = c.astype(np.float64)
        d_hi = ((cd + up) / 2 - y) / (up - cd)
        d_lo = (y - (cd + dn) / 2) / (cd - dn)
        risky = ~(np.minimum(d_hi, d_lo) >= 0.004) & ~np.isnan(x)
    if risky.any():
        expf, _ = _libm()
        idx = np.flatnonzero(risky)
        flat = c.reshape(-1)
        xs = x.reshape(-1)
        for i in idx.tolist():  # only the few elements near a rounding boundary
            flat[i] = expf(float(xs[i]))  # type: ignore[operator]
    return c


def glibc_logf(x: np.ndarray) -> np.ndarray:
    """``logf`` of glibc, elementwise (one ctypes call per element: used once per softmax row)."""
    _, logf = _libm()
    x = np.asarray(x, dtype=np.float32)
    return np.array([logf(float(v)) for v in x.reshape(-1).tolist()], dtype=np.float32).reshape(x.shape)  # type: ignore[operator]


# ---------------------------------------------------------------------------------------------
# Fixed-point helpers beyond refquant.fixedpoint


def _srdhm(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    return _i64(saturating_rounding_doubling_high_mul(a, b))


def _sat_add(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    return np.clip(_i64(a) + b, INT32_MIN, INT32_MAX)


def log_x_for_x_greater_than_or_equal_to_1(x: np.ndarray, input_integer_bits: int = 12) -> np.ndarray:
    """LiteRT ``log_x_for_x_greater_than_or_equal_to_1<5>`` (common.h) on raw ``FixedPoint<int32, 12>`` values.

    Real meaning: ``ln(x / 2^(31 - input_integer_bits))`` for ``x >= 1.0``, returned in Q5.26. The input
    is normalised by its leading zeros twice (once pre-multiplied by sqrt(1/2)), the smaller mantissa
    ``r`` in [sqrt(1/2), 1) goes through a rational approximation around 2^-1/4 and the exponent part
    is multiplied by ln 2 in Q6.25; the sum is rescaled to Q5.26 with a saturating doubling.
    Input: int32 values > 0 (int64 array). Output: int64 array of int32 values.
    """
    log_2, sqrt_sqrt_half, sqrt_half, one_quarter = 1488522236, 1805811301, 1518500250, 536870912
    alpha_n, alpha_d, alpha_i, alpha_f = 117049297, 127690142, 1057819769, 638450708
    accum_bits = 6  # OutputIntegerBits + 1
    z_a = _i64(x)
    shifted_quarter = _i64(saturating_rounding_multiply_by_pot(one_quarter, -accum_bits))
    z_a_headroom_plus_1 = _i64(count_leading_zeros32(z_a))
    r_a_tmp = _i64(saturating_rounding_multiply_by_pot(z_a, z_a_headroom_plus_1 - 1))
    r_a_raw = _i64(saturating_rounding_multiply_by_pot(_srdhm(r_a_tmp, sqrt_half), 1))
    z_a_pow_2_adj = _sat_add(
        _i64(saturating_rounding_multiply_by_pot(input_integer_bits - z_a_headroom_plus_1, 31 - accum_bits)),
        shifted_quarter,
    )
    z_b = _srdhm(z_a, sqrt_half)
    z_b_headroom = _i64(count_leading_zeros32(z_b)) - 1
    r_b_raw = _i64(saturating_rounding_multiply_by_pot(z_a, z_b_headroom))
    z_b_pow_2_adj = np.clip(
        _i64(saturating_rounding_multiply_by_pot(input_integer_bits - z_b_headroom, 31 - accum_bits)) - shifted_quarter,
        INT32_MIN,
        INT32_MAX,
    )
    r = np.minimum(r_a_raw, r_b_raw)
    z_pow_2_adj = np.maximum(z_a_pow_2_adj, z_b_pow_2_adj)
    p = _i64(rounding_half_sum(r, sqrt_sqrt_half))
    q = wrap_int32_i64(r - sqrt_sqrt_half)
    q = wrap_int32_i64(q + q)
    common_sq = _srdhm(q, q)
    num = wrap_int32_i64(_srdhm(q, r) + _srdhm(_srdhm(q, common_sq), alpha_n))
    denom_minus_one_0 = wrap_int32_i64(
        _srdhm(p, wrap_int32_i64(wrap_int32_i64(alpha_i + q) + _srdhm(alpha_d, common_sq))) + _srdhm(alpha_f, q)
    )
    recip_denom = _i64(one_over_one_plus_x_for_x_in_0_1(denom_minus_one_0))
    num_scaled = _i64(rounding_divide_by_pot(num, accum_bits))  # Rescale<6> from Q0.31
    total = wrap_int32_i64(_srdhm(z_pow_2_adj, log_2) + _srdhm(num_scaled, recip_denom))
    return _i64(saturating_rounding_multiply_by_pot(total, 1))  # Rescale<5> from Q6.25


# ---------------------------------------------------------------------------------------------
# Per-element traces


def _mbqm_text(x: int, multiplier: int, shift: int, rounding: str) -> tuple[int, str]:
    """:func:`refquant.requantize.mbqm_steps` of one value: (result, its steps as one line)."""
    res, steps = mbqm_steps(x, multiplier, shift, rounding)
    return res, ", ".join(detail for _, _, detail in steps)


def _round_away(v: float) -> float:
    """C ``round`` on a double (ties away from zero)."""
    a = abs(v)
    w = math.floor(a)
    r = w + (1.0 if a - w >= 0.5 else 0.0)
    return math.copysign(r, v)


def _lut_populate_int16(
    input_scale: float,
    input_zero_point: int,
    output_scale: float,
    output_zero_point: int,
    f: Callable[[float], float],
) -> np.ndarray:
    """``detail::LUTPopulateInt16<double>``: 512 bias-corrected samples plus the end point, in double."""
    input_min = input_scale * (-32768 - input_zero_point)
    input_max = input_scale * (32767 - input_zero_point)
    output_min = output_scale * (-32768 - output_zero_point)
    output_max = output_scale * (32767 - output_zero_point)
    nb_steps = 512
    step = (input_max - input_min) / nb_steps
    half_step = step / 2
    inv = 65536.0 / (output_max - output_min)
    lut = np.zeros(513, np.int16)
    for i in range(nb_steps):
        val = f(input_min + i * step)
        val_midpoint = f(input_min + i * step + half_step)
        val_next = f(input_min + (i + 1) * step)
        sample_val = _round_away(val * inv)
        midpoint_interp_val = _round_away((val_next * inv + _round_away(val * inv)) / 2)
        midpoint_val = _round_away(val_midpoint * inv)
        bias = _round_away((midpoint_interp_val - midpoint_val) / 2)
        lut[i] = int(min(max(sample_val - bias, -32768.0), 32767.0))
    lut[nb_steps] = int(min(max(_round_away(f(input_max) * inv), -32768.0), 32767.0))
    return lut


@functools.lru_cache(maxsize=1)
def softmax_int16_luts() -> tuple[np.ndarray, np.ndarray]:
    """The int16 SOFTMAX tables (``SoftmaxPrepare``): ``exp`` on [-10, 0] and ``1/(1+x)`` on [0, 1]."""
    rng = 65535
    exp_lut = _lut_populate_int16(10.0 / rng, 32767, 2.0 / rng, 0, math.exp)
    recip_lut = _lut_populate_int16(1.0 / rng, -32768, 2.0 / rng, 0, lambda v: 1.0 / (1.0 + v))
    exp_lut.flags.writeable = False
    recip_lut.flags.writeable = False
    return exp_lut, recip_lut


def _lut_lookup_int16(value: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """``LUTLookup(int16, lut)``: 9-bit index, 7-bit linear interpolation rounded half up."""
    v = _i64(value)
    index = 256 + (v >> 7)
    offset = v & 0x7F
    table = lut.astype(np.int64)
    base = table[index]
    slope = (table[index + 1] - base).astype(np.int16).astype(np.int64)
    delta = (slope * offset + 64) >> 7
    return (base + delta).astype(np.int16).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# OpData


@dataclass(frozen=True)
class QuantizedSoftmaxData(OpData):
    """int8/uint8-input SOFTMAX (``reference_ops::Softmax<InputT, OutputT>``)."""

    #: Memory bound: the fixed-point exp pipeline keeps about eight int64 arrays of the input's size.
    scratch_per_element: ClassVar[int] = 64

    #: Q0.31 multiplier and left shift of beta * s_in * 2^26 (QuantizeMultiplierGreaterThanOne).
    input_multiplier: int = 0
    input_left_shift: int = 0
    #: Smallest d = q - max(q) that still contributes (taps below output the type minimum).
    diff_min: int = 0
    #: Output type name, its bit width and range; the output offset is the type minimum.
    output_dtype: str = "int8"
    output_bits: int = 8
    qmin: int = -128
    qmax: int = 127
    #: "double" or "single" MultiplyByQuantizedMultiplier rounding.
    rounding: str = "double"
    #: "subgraph s, operator k (OP)" for run-time error messages.
    _where: str = ""

    def _rows(self, x: np.ndarray) -> np.ndarray:
        depth = x.shape[-1] if x.ndim else 1
        return x.reshape(-1, depth).astype(np.int64)

    def _pipeline(self, x: np.ndarray) -> dict[str, np.ndarray]:
        rows = self._rows(x)
        mx = rows.max(axis=1, keepdims=True)
        d = rows - mx
        valid = d >= self.diff_min
        dv = np.where(valid, d, 0)
        rescaled = _i64(
            multiply_by_quantized_multiplier_greater_than_one(
                dv, self.input_multiplier, self.input_left_shift, self.rounding
            )
        )
        e = _i64(exp_on_negative_values(rescaled, _SCALED_DIFF_INTEGER_BITS))
        contrib = np.where(valid, _i64(rounding_divide_by_pot(e, _ACCUMULATION_INTEGER_BITS)), 0)
        s = wrap_int32_i64(contrib.sum(axis=1, keepdims=True))  # FixedPoint adds wrap like int32
        h = _i64(count_leading_zeros32(s))
        nbou = _ACCUMULATION_INTEGER_BITS - h
        u = s & 0xFFFFFFFF
        shifted_minus_one = wrap_int32_i64(((u << np.minimum(h, 31)) & 0xFFFFFFFF) - (1 << 31))
        r = _i64(one_over_one_plus_x_for_x_in_0_1(shifted_minus_one))
        exponent = nbou + 31 - self.output_bits
        return {
            "rows": rows,
            "max": mx,
            "d": d,
            "valid": valid,
            "rescaled": rescaled,
            "exp": e,
            "contrib": contrib,
            "sum": s,
            "clz": h,
            "nbou": nbou,
            "shifted_sum_minus_one": shifted_minus_one,
            "reciprocal": r,
            "exponent": exponent,
        }

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """Fixed-point softmax per row; raises EvalError where LiteRT would abort (see module docstring)."""
        x = inputs[0]
        assert x is not None
        shape = self.output_shapes[0]
        if x.size == 0:
            return [np.zeros(shape, self.output_dtype)]
        p = self._pipeline(x)
        exponent = p["exponent"]
        bad = (exponent < 0) | (exponent > 31) | (p["sum"] == 0)
        if bad.any():
            row = int(np.argmax(bad.reshape(-1)))
            raise EvalError(
                f"{self._where}: row {row}: the sum of exponentials is {int(p['sum'].reshape(-1)[row]) / 2**19:.6g} "
                f"(Q12.19 raw {int(p['sum'].reshape(-1)[row])}), which needs exponent "
                f"{int(exponent.reshape(-1)[row])} outside [0, 31] for a {self.output_bits}-bit output; "
                "LiteRT's reference SOFTMAX aborts its process here (TFLITE_CHECK)"
            )
        prod = _srdhm(p["reciprocal"], p["exp"])
        unsat = _i64(rounding_divide_by_pot(prod, np.broadcast_to(exponent, prod.shape)))
        out = np.clip(unsat + self.qmin, self.qmin, self.qmax)
        out = np.where(p["valid"], out, self.qmin)
        return [out.astype(self.output_dtype).reshape(shape)]

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """The Q5.26 exp, the Q12.19 sum, the reciprocal and the final shifts for one output element."""
        x = inputs[0]
        assert x is not None
        depth = x.shape[-1]
        flat = int(np.ravel_multi_index(tuple(int(e) for e in element), x.shape))
        row, c = divmod(flat, depth)
        p = self._pipeline(x.reshape(-1, depth)[row : row + 1])
        d = int(p["d"][0, c])
        steps = [
            Step("row_max", int(p["max"][0, 0]), f"max of the {depth} raw q values of the row"),
            Step("input_diff", d, "q - max"),
        ]
        if not p["valid"][0, c]:
            steps.append(Step("output", self.qmin, f"d < diff_min = {self.diff_min}: the type minimum"))
            return steps
        steps += [
            Step(
                "scaled_diff_q5_26",
                int(p["rescaled"][0, c]),
                f"MultiplyByQuantizedMultiplierGreaterThanOne(d, {self.input_multiplier}, {self.input_left_shift}) "
                f"= {int(p['rescaled'][0, c]) / 2**26:.6g} in Q5.26",
            ),
            Step(
                "exp_q0_31",
                int(p["exp"][0, c]),
                f"exp_on_negative_values = {int(p['exp'][0, c]) / 2**31:.6g} in Q0.31",
            ),
            Step(
                "sum_of_exps_q12_19",
                int(p["sum"][0, 0]),
                f"sum over the row of RDBPOT(exp, 12) = {int(p['sum'][0, 0]) / 2**19:.6g} (wrapping int32 adds)",
            ),
            Step(
                "reciprocal_q0_31",
                int(p["reciprocal"][0, 0]),
                f"clz(sum) = {int(p['clz'][0, 0])}, num_bits_over_unit = {int(p['nbou'][0, 0])}; "
                f"one_over_one_plus_x({int(p['shifted_sum_minus_one'][0, 0])}) = "
                f"{int(p['reciprocal'][0, 0]) / 2**31:.6g}",
            ),
        ]
        prod = int(_srdhm(p["reciprocal"][0, 0], p["exp"][0, c]))
        e = int(p["exponent"][0, 0])
        steps.append(Step("scaled_exp", prod, "SaturatingRoundingDoublingHighMul(reciprocal, exp)"))
        if not 0 <= e <= 31 or int(p["sum"][0, 0]) == 0:
            self.eval([x])  # LiteRT aborts for this input: raises the EvalError that explains why
        unsat = int(rounding_divide_by_pot(prod, e))
        steps.append(Step("unsat_output", unsat, f"RoundingDivideByPOT(scaled_exp, {e}) ({e} = nbou + 31 - bits)"))
        out = min(max(unsat + self.qmin, self.qmin), self.qmax)
        steps.append(Step("output", out, f"+ {self.qmin}, clamp to [{self.qmin}, {self.qmax}]"))
        return steps


@dataclass(frozen=True)
class Int16SoftmaxData(OpData):
    """int16 -> int16 SOFTMAX (``reference_ops::SoftmaxInt16``) with the two interpolated tables."""

    #: Memory bound: table lookups and interpolation keep about eight int64 arrays of the input's size.
    scratch_per_element: ClassVar[int] = 64

    #: QuantizeMultiplier(f32(s_in * beta) / (10/65535)): maps d to the exp table's [-65535, 0] range.
    input_multiplier: int = 0
    input_shift: int = 0
    #: "double" or "single" MultiplyByQuantizedMultiplier rounding.
    rounding: str = "double"
    #: "subgraph s, operator k (OP)" for run-time error messages.
    _where: str = ""

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """Table-driven int16 softmax."""
        x = inputs[0]
        assert x is not None
        shape = self.output_shapes[0]
        if x.size == 0:
            return [np.zeros(shape, np.int16)]
        exp_lut, recip_lut = softmax_int16_luts()
        rows = x.reshape(-1, x.shape[-1]).astype(np.int64)
        d = rows - rows.max(axis=1, keepdims=True)
        scaled = _i64(multiply_by_quantized_multiplier(d, self.input_multiplier, self.input_shift, self.rounding))
        sym = np.clip(scaled + 32767, -32768, 32767)
        e = _lut_lookup_int16(sym, exp_lut)
        s = wrap_int32_i64(e.sum(axis=1, keepdims=True))
        if (s <= 0).any():
            raise EvalError(
                f"{self._where}: the int32 sum of exponentials overflowed (row too long); LiteRT is undefined here"
            )
        hp1 = _i64(count_leading_zeros32(s))
        shifted_sum = wrap_int32_i64(((s << (hp1 - 1)) + (1 << 13)) >> 14)
        sym_sum = np.clip(shifted_sum - ((1 << 15) + (1 << 16)), -32768, 32767)
        recip = _lut_lookup_int16(sym_sum, recip_lut)
        right_shift = 31 - hp1
        res = wrap_int32_i64((e * recip + (np.int64(1) << (right_shift - 1))) >> right_shift)
        return [np.clip(res, 0, 32767).astype(np.int16).reshape(shape)]

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """The rescaled difference, the exp table, the int32 sum, the reciprocal table and the shift for one element."""
        x = inputs[0]
        assert x is not None
        exp_lut, recip_lut = softmax_int16_luts()
        depth = x.shape[-1]
        flat = int(np.ravel_multi_index(tuple(int(e) for e in element), x.shape))
        r, c = divmod(flat, depth)
        row = x.reshape(-1, depth)[r].astype(np.int64)
        mx = int(row.max())
        d = row - mx
        scaled = _i64(multiply_by_quantized_multiplier(d, self.input_multiplier, self.input_shift, self.rounding))
        sym = np.clip(scaled + 32767, -32768, 32767)
        e = _lut_lookup_int16(sym, exp_lut)
        s = int(wrap_int32_i64(np.asarray(sum(int(v) for v in e))))
        if s <= 0:
            self.eval([x])  # raises the EvalError LiteRT's undefined overflow maps to
        sym_c = int(sym[c])
        idx, off = 256 + (sym_c >> 7), sym_c & 0x7F
        steps = [
            Step("row_max", mx, f"max of the {depth} raw q values of the row"),
            Step("input_diff", int(d[c]), "q - max"),
            Step(
                "scaled_diff",
                int(scaled[c]),
                f"MultiplyByQuantizedMultiplier(d, {self.input_multiplier}, {self.input_shift}) "
                f"({self.rounding} rounding): [-10, 0] -> [-65535, 0]",
            ),
            Step("exp_lut_input", sym_c, "clamp(scaled_diff + 32767, -32768, 32767)"),
            Step(
                "exp_q0_15",
                int(e[c]),
                f"exp table [{idx}] = {int(exp_lut[idx])}, [{idx + 1}] = {int(exp_lut[idx + 1])}, "
                f"offset {off}/128 interpolated",
            ),
            Step("sum_of_exps", s, f"int32 sum of the {depth} table values of the row"),
        ]
        hp1 = int(count_leading_zeros32(s))
        shifted_sum = int(wrap_int32_i64(np.asarray(((s << (hp1 - 1)) + (1 << 13)) >> 14)))
        sym_sum = min(max(shifted_sum - ((1 << 15) + (1 << 16)), -32768), 32767)
        recip = int(_lut_lookup_int16(np.asarray([sym_sum]), recip_lut)[0])
        steps += [
            Step(
                "reciprocal_lut_input",
                sym_sum,
                f"clz(sum) = {hp1}: ((sum << {hp1 - 1}) + 2^13) >> 14 = {shifted_sum}, - (2^15 + 2^16), clamped",
            ),
            Step("reciprocal", recip, "1/(1+x) table, interpolated"),
        ]
        rs = 31 - hp1
        res = int(wrap_int32_i64(np.asarray((int(e[c]) * recip + (1 << (rs - 1))) >> rs)))
        steps.append(Step("unsat_output", res, f"(exp * reciprocal + 2^{rs - 1}) >> {rs} (31 - clz(sum))"))
        steps.append(Step("output", min(max(res, 0), 32767), "clamp to [0, 32767]"))
        return steps


@dataclass(frozen=True)
class FloatSoftmaxData(OpData):
    """float32 SOFTMAX / LOG_SOFTMAX (``reference_ops::Softmax`` / ``LogSoftmax``) with glibc expf/logf."""

    #: Memory bound: float64 copies, exponentials and sums of the input's size.
    scratch_per_element: ClassVar[int] = 32

    #: True for LOG_SOFTMAX.
    log: bool = False
    #: beta (float32; LOG_SOFTMAX has none).
    beta: float = 1.0

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """Float32 softmax with LiteRT's operation order."""
        x = inputs[0]
        assert x is not None
        shape = self.output_shapes[0]
        if x.size == 0:
            return [np.zeros(shape, np.float32)]
        rows = x.reshape(-1, x.shape[-1]).astype(np.float32)
        with np.errstate(all="ignore"):
            # std::max(max, v) from lowest(): NaN never replaces (comparison false).
            clean = np.where(np.isnan(rows), -np.finfo(np.float32).max, rows)
            mx = np.maximum(clean.max(axis=1, keepdims=True), -np.finfo(np.float32).max).astype(np.float32)
            diff = (rows - mx).astype(np.float32)
            if self.log:
                e = glibc_expf(diff)
                s = np.cumsum(e, axis=1, dtype=np.float32)[:, -1:]  # sequential float32 sum from 0
                out = (diff - glibc_logf(s)).astype(np.float32)
            else:
                e = glibc_expf((diff * np.float32(self.beta)).astype(np.float32))
                s = np.cumsum(e, axis=1, dtype=np.float32)[:, -1:]
                out = (e / s).astype(np.float32)
        return [out.reshape(shape)]

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """Row max, x - max, (* beta), glibc expf, the sequential float32 sum and the division (or - logf(sum))."""
        x = inputs[0]
        assert x is not None
        depth = x.shape[-1]
        flat = int(np.ravel_multi_index(tuple(int(e) for e in element), x.shape))
        r, c = divmod(flat, depth)
        row = x.reshape(-1, depth)[r].astype(np.float32)
        with np.errstate(all="ignore"):
            mx = -np.finfo(np.float32).max
            for v in row:
                mx = v if mx < v else mx  # std::max(max, v) from lowest(): NaN never replaces
            mx = np.float32(mx)
            diff = (row - mx).astype(np.float32)
            steps = [
                Step("row_max", mx.item(), f"std::max over the {depth} values of the row from -FLT_MAX"),
                Step("diff", diff[c].item(), "x - max (float32)"),
            ]
            arg = diff if self.log else (diff * np.float32(self.beta)).astype(np.float32)
            if not self.log:
                steps.append(Step("scaled_diff", arg[c].item(), f"(x - max) * beta ({self.beta!r}) in float32"))
            e = glibc_expf(arg)
            steps.append(Step("exp", e[c].item(), "glibc expf"))
            total = e[0]
            for v in e[1:]:
                total = np.float32(total + v)
            steps.append(Step("sum_of_exps", total.item(), f"sequential float32 sum of the {depth} expf values"))
            if self.log:
                lg = glibc_logf(np.asarray([total], np.float32))[0]
                steps.append(Step("log_sum", lg.item(), "glibc logf(sum)"))
                out = np.float32(diff[c] - lg)
                steps.append(Step("output", out.item(), "(x - max) - log_sum (float32)"))
            else:
                out = np.float32(e[c] / total)
                steps.append(Step("output", out.item(), "exp / sum (float32)"))
        return steps


@dataclass(frozen=True)
class QuantizedLogSoftmaxData(OpData):
    """int8/uint8 LOG_SOFTMAX (``reference_integer_ops::LogSoftmax`` / ``reference_ops::LogSoftmax``)."""

    #: Memory bound: the fixed-point exp/log pipeline keeps about eight int64 arrays of the input's size.
    scratch_per_element: ClassVar[int] = 64

    #: Q0.31 multiplier and left shift of s_in * 2^26 (beta is 1).
    input_multiplier: int = 0
    input_left_shift: int = 0
    #: QuantizeMultiplierSmallerThanOneExp(2^(31 - left_shift) / multiplier) and its right shift (>= 0).
    reverse_scaling_divisor: int = 0
    reverse_scaling_right_shift: int = 0
    #: Smallest d = q - max(q) that contributes to the sum.
    diff_min: int = 0
    #: Output offset: 127 (int8) or 255 (uint8); output range.
    output_offset: int = 127
    qmin: int = -128
    qmax: int = 127
    #: "double" or "single" MultiplyByQuantizedMultiplier rounding.
    rounding: str = "double"
    #: "subgraph s, operator k (OP)" for run-time error messages.
    _where: str = ""

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """Fixed-point log-softmax per row."""
        x = inputs[0]
        assert x is not None
        shape = self.output_shapes[0]
        if x.size == 0:
            return [np.zeros(shape, x.dtype)]
        rows = x.reshape(-1, x.shape[-1]).astype(np.int64)
        d = rows - rows.max(axis=1, keepdims=True)
        valid = d >= self.diff_min
        q5 = _i64(
            multiply_by_quantized_multiplier(
                np.where(valid, d, 0), self.input_multiplier, self.input_left_shift, self.rounding
            )
        )
        e = _i64(exp_on_negative_values(q5, _SCALED_DIFF_INTEGER_BITS))
        contrib = np.where(valid, _i64(rounding_divide_by_pot(e, _ACCUMULATION_INTEGER_BITS)), 0)
        s = wrap_int32_i64(contrib.sum(axis=1, keepdims=True))
        if (s <= 0).any():
            raise EvalError(
                f"{self._where}: the Q12.19 sum of exponentials overflowed int32 (row longer than 4096 equal values); "
                "LiteRT's reference kernel is undefined here"
            )
        log_sum = log_x_for_x_greater_than_or_equal_to_1(s, _ACCUMULATION_INTEGER_BITS)
        shifted_log = wrap_int32_i64(log_sum + INT32_MIN)
        adjusted = np.maximum(
            self.diff_min - 1,
            _i64(
                multiply_by_quantized_multiplier(
                    shifted_log, self.reverse_scaling_divisor, -self.reverse_scaling_right_shift, self.rounding
                )
            ),
        )
        keep = d > adjusted
        q5k = _i64(
            multiply_by_quantized_multiplier(
                np.where(keep, d, 0), self.input_multiplier, self.input_left_shift, self.rounding
            )
        )
        shift = 31 - _SCALED_DIFF_INTEGER_BITS - _OUTPUT_INTEGER_BITS
        out = _i64(rounding_divide_by_pot(wrap_int32_i64(q5k - log_sum), shift)) + self.output_offset
        out = np.where(keep, np.clip(out, self.qmin, self.qmax), self.qmin)
        return [out.astype(x.dtype).reshape(shape)]

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """Row max, every tap's Q12.19 exp term, the sum, its Q5.26 log, the cut-off and the final shift, in order."""
        x = inputs[0]
        assert x is not None
        depth = x.shape[-1]
        flat = int(np.ravel_multi_index(tuple(int(e) for e in element), x.shape))
        r, c = divmod(flat, depth)
        row = [int(v) for v in x.reshape(-1, depth)[r]]
        mx = self.qmin
        for v in row:
            mx = max(mx, v)  # std::max from the type minimum
        diffs = [v - mx for v in row]
        d = diffs[c]
        m, ls = self.input_multiplier, self.input_left_shift
        steps = [
            Step("row_max", mx, f"max of the {depth} raw q values of the row"),
            Step("input_diff", d, "q - max"),
        ]
        # First pass: the Q12.19 sum of the exponentials of the taps with d >= diff_min.
        kept = [j for j, dj in enumerate(diffs) if dj >= self.diff_min]
        scaled = [_mbqm_text(diffs[j], m, ls, self.rounding)[0] for j in kept]
        exps = [int(v) for v in exp_on_negative_values(np.asarray(scaled, np.int64), _SCALED_DIFF_INTEGER_BITS)]
        terms = [0] * depth
        for j, e in zip(kept, exps):
            terms[j] = rounding_divide_by_pot_py(e, _ACCUMULATION_INTEGER_BITS)  # Rescale<12>: Q0.31 -> Q12.19
        total = 0
        for j in kept:
            total = wrap_int(total + terms[j], 32)  # FixedPoint adds wrap like int32
        steps += [
            Step(
                "exp_terms_q12_19",
                terms,
                f"per tap: RDBPOT(exp_on_negative_values(MBQM(d, {m}, {ls})), 12) when d >= diff_min = "
                f"{self.diff_min}, else 0 (skipped)",
            ),
            Step("sum_of_exps_q12_19", total, f"wrapping int32 sum of the terms = {total / 2**19:.6g} in Q12.19"),
        ]
        if total <= 0:
            raise EvalError(
                f"{self._where}: row {r}: the Q12.19 sum of exponentials overflowed int32 (row longer than 4096 "
                "equal values); LiteRT's reference kernel is undefined here"
            )
        log_sum = int(
            log_x_for_x_greater_than_or_equal_to_1(np.asarray([total], np.int64), _ACCUMULATION_INTEGER_BITS)[0]
        )
        steps.append(
            Step(
                "log_sum_q5_26",
                log_sum,
                f"log_x_for_x_greater_than_or_equal_to_1<5>(sum) = {log_sum / 2**26:.6g} in Q5.26 "
                f"(ln {total / 2**19:.6g})",
            )
        )
        shifted_log = wrap_int(log_sum + INT32_MIN, 32)
        rev, rev_text = _mbqm_text(
            shifted_log, self.reverse_scaling_divisor, -self.reverse_scaling_right_shift, self.rounding
        )
        adjusted = max(self.diff_min - 1, rev)
        steps.append(
            Step(
                "adjusted_diff_min",
                adjusted,
                f"max(diff_min - 1 = {self.diff_min - 1}, MultiplyByQuantizedMultiplier(log_sum + INT32_MIN = "
                f"{shifted_log}, {self.reverse_scaling_divisor}, -{self.reverse_scaling_right_shift}): {rev_text})",
            )
        )
        if not d > adjusted:
            steps.append(Step("output", self.qmin, f"d = {d} <= adjusted_diff_min = {adjusted}: the type minimum"))
            return steps
        scaled_c, text = _mbqm_text(d, m, ls, self.rounding)
        steps.append(
            Step(
                "scaled_diff_q5_26",
                scaled_c,
                f"MultiplyByQuantizedMultiplier(d, {m}, {ls}): {text} = {scaled_c / 2**26:.6g} in Q5.26",
            )
        )
        diff_q5 = wrap_int(scaled_c - log_sum, 32)
        steps.append(Step("log_softmax_q5_26", diff_q5, f"scaled_diff - log_sum = {diff_q5 / 2**26:.6g} in Q5.26"))
        shift = 31 - _SCALED_DIFF_INTEGER_BITS - _OUTPUT_INTEGER_BITS
        rounded = rounding_divide_by_pot_py(diff_q5, shift)
        steps.append(
            Step("rounded", rounded, f"RoundingDivideByPOT(log_softmax, {shift}): Q5.26 -> units of 16/256 (ties away)")
        )
        unsat = rounded + self.output_offset
        out = min(max(unsat, self.qmin), self.qmax)
        steps.append(
            Step("output", out, f"+ zero point {self.output_offset} = {unsat}, clamp to [{self.qmin}, {self.qmax}]")
        )
        return steps


# ---------------------------------------------------------------------------------------------
# prepare


def _softmax_scaling(ctx: OpContext, beta: float, s_in: float) -> tuple[int, int, int]:
    """``PreprocessSoftmaxScaling`` + ``CalculateInputRadius``: (multiplier, left shift, diff_min)."""
    max_real = float((1 << 30) - 1) if ctx.rounding == "single" else float((1 << 31) - 1)
    real = min(float(beta) * float(s_in) * float(1 << (31 - _SCALED_DIFF_INTEGER_BITS)), max_real)
    if not real > 1.0:
        raise ctx.fail_quant(
            f"beta * input_scale * 2^26 = {real!r} must be > 1 (LiteRT's QuantizeMultiplierGreaterThanOne "
            "aborts the process otherwise)",
            ctx.input(0),
        )
    m, ls = quantize_multiplier_greater_than_one(real, ctx.rounding)
    radius = math.floor(
        1.0 * ((1 << _SCALED_DIFF_INTEGER_BITS) - 1) * (1 << (31 - _SCALED_DIFF_INTEGER_BITS)) / float(1 << ls)
    )
    return m, ls, -radius


def _near(a: float, b: float, eps: float) -> bool:
    """``TF_LITE_ENSURE_NEAR`` on float32 operands."""
    fa, fb = np.float32(a), np.float32(b)
    delta = fa - fb if fa > fb else fb - fa
    return not bool(delta > np.float32(eps))


def prepare_softmax(ctx: OpContext) -> OpData:
    """SOFTMAX (LiteRT ``Register_SOFTMAX_REF``): gemmlowp fixed point for int8/uint8, tables for int16."""
    ctx.check_counts(1, 1)
    x = ctx.input(0)
    y = ctx.output(0)
    if len(x.shape) < 1:
        raise ctx.error("input must have rank >= 1", x)
    combos = {
        ("float32", "float32"),
        ("int8", "int8"),
        ("int8", "int16"),
        ("uint8", "uint8"),
        ("uint8", "int16"),
        ("int16", "int16"),
    }
    if (x.dtype, y.dtype) not in combos:
        raise ctx.error(
            f"input/output types {x.dtype} -> {y.dtype} are not supported; expected one of "
            f"{sorted(f'{a}->{b}' for a, b in combos)}",
            cls=UnsupportedOpError,
        )
    beta = float(np.float32(ctx.option("beta", 1.0)))
    shape = tuple(x.shape)
    if x.dtype == "float32":
        return FloatSoftmaxData((shape,), (y.dtype,), log=False, beta=beta)
    qi = ctx.require_quant(x, per_tensor=True)
    qo = ctx.require_quant(y, per_tensor=True)
    s_out, zp_out = float(qo.scale[0]), int(qo.zero_point[0])
    if x.dtype == "int8" and y.dtype == "int8":
        if zp_out != -128:
            raise ctx.fail_quant(f"output zero point {zp_out}; int8 SOFTMAX requires -128", y)
        if not _near(s_out, 1.0 / 256, 0.001 / 256):
            raise ctx.fail_quant(f"output scale {s_out!r}; int8 SOFTMAX requires 1/256 (within 0.001/256)", y)
    if x.dtype == "int16":
        ctx.require_zero_points(x, y, value=0, why="int16 SOFTMAX requires symmetric quantization")
        if not _near(s_out, 1.0 / 32768, 0.001 / 32768):
            raise ctx.fail_quant(f"output scale {s_out!r}; int16 SOFTMAX requires 1/32768 (within 0.001/32768)", y)
        # input->params.scale * params->beta is a float product; the division is in double.
        real = float(np.float32(np.float32(qi.scale[0]) * np.float32(beta))) / (10.0 / 65535.0)
        m, sh = quantize_multiplier(real, ctx.rounding)
        return Int16SoftmaxData(
            (shape,), (y.dtype,), input_multiplier=m, input_shift=sh, rounding=ctx.rounding, _where=ctx.where()
        )
    m, ls, diff_min = _softmax_scaling(ctx, beta, float(qi.scale[0]))
    qmin, qmax = dtype_range(y.dtype)
    return QuantizedSoftmaxData(
        (shape,),
        (y.dtype,),
        input_multiplier=m,
        input_left_shift=ls,
        diff_min=diff_min,
        output_dtype=y.dtype,
        output_bits=8 * np.dtype(y.dtype).itemsize,
        qmin=qmin,
        qmax=qmax,
        rounding=ctx.rounding,
        _where=ctx.where(),
    )


def prepare_log_softmax(ctx: OpContext) -> OpData:
    """LOG_SOFTMAX (LiteRT ``Register_LOG_SOFTMAX_REF``): float32, or int8/uint8 with output (16/256, 127/255)."""
    ctx.check_counts(1, 1)
    x = ctx.input(0)
    y = ctx.output(0)
    ctx.check_dtype(x, ("float32", "int8", "uint8"), "input")
    ctx.check_same_dtype(x, y)
    if len(x.shape) < 1:
        raise ctx.error("input must have rank >= 1", x)
    shape = tuple(x.shape)
    if x.dtype == "float32":
        return FloatSoftmaxData((shape,), (y.dtype,), log=True)
    qi = ctx.require_quant(x, per_tensor=True)
    qo = ctx.require_quant(y, per_tensor=True)
    if float(qo.scale[0]) != 16.0 / 256:
        raise ctx.fail_quant(f"output scale {float(qo.scale[0])!r}; LOG_SOFTMAX requires exactly 16/256", y)
    offset = 127 if x.dtype == "int8" else 255
    if int(qo.zero_point[0]) != offset:
        raise ctx.fail_quant(f"output zero point {int(qo.zero_point[0])}; {x.dtype} LOG_SOFTMAX requires {offset}", y)
    m, ls, diff_min = _softmax_scaling(ctx, 1.0, float(qi.scale[0]))
    # PreprocessLogSoftmaxScalingExp: the reverse scaling, (1 << (31 - ls)) / double(M).
    real_rev = float(1 << (31 - ls)) / float(m)
    try:
        rev_m, rev_shift = quantize_multiplier_smaller_than_one_exp(real_rev, ctx.rounding)
    except QuantParamError as exc:  # LiteRT CHECK-aborts
        raise ctx.fail_quant(f"reverse scaling {real_rev!r}: {exc}", x) from exc
    qmin, qmax = dtype_range(x.dtype)
    return QuantizedLogSoftmaxData(
        (shape,),
        (y.dtype,),
        input_multiplier=m,
        input_left_shift=ls,
        reverse_scaling_divisor=rev_m,
        reverse_scaling_right_shift=-rev_shift,
        diff_min=diff_min,
        output_offset=offset,
        qmin=qmin,
        qmax=qmax,
        rounding=ctx.rounding,
        _where=ctx.where(),
    )
