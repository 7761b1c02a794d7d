"""FULLY_CONNECTED: LiteRT's reference fully-connected kernels (``fully_connected.cc``, kReference).

Quantized paths (docs/litert_semantics.md §3.3). Every quantized REF kernel except int16 x int16 requantizes in
float64 with C ``round`` (one rounding, ties away from zero), not with MultiplyByQuantizedMultiplier::

    acc = sum_d (w[u,d] + filter_offset) * (x[b,d] + input_offset) + bias[u]      (int32 or int64)
    eff = f64(s_in) * f64(s_w[u]) / f64(s_out)
    v   = int32(round(f64(acc) * eff))          # out of int32 range / NaN -> INT32_MIN (x86 cvttsd2si)
    out = clamp(wrap32(v + zp_out), act_min, act_max)

int16 input x int16 filter accumulates in int64 and uses MBQM64 with QuantizeMultiplier's (M, shift).
The uint8 -> int16 legacy kernel clamps to ``[act_min - zp_out, act_max - zp_out]`` before adding zp_out.
float32 (``float_accumulation="sequential"``) accumulates sequentially in float32 in ``d`` order (a product
then an add, no FMA), adds the bias and clamps with the fused activation (docs/litert_semantics.md §4), bit for bit;
the default ``"float64"`` sums in float64 BLAS and rounds once (:func:`float_matmul`). Hybrid FC (float32 input, int8/int4/int2 weights)
quantizes each input row on the fly exactly as the x86 wheel's tensor_utils do (see
:class:`FullyConnectedHybridData`).

The matrix products and the hybrid row quantizers it shares with BATCH_MATMUL and the conv family live
in :mod:`refquant.ops.matmul`; the requantizations in :mod:`refquant.requantize`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import UnsupportedOpError
from ..fixedpoint import wrap_int32_i64
from ..quantization import (
    calculate_activation_range_float,
    calculate_activation_range_quantized,
    quantize_multiplier_array,
)
from ..requantize import (
    fp32_rne_requant,
    fp32_rne_steps,
    mbqm_double_rounding,
    mbqm_steps,
    multiply_by_quantized_multiplier_int64,
    neon_mbqm,
    neon_mbqm_steps,
    requantize_float64,
    xnnpack_output_bound,
    xnnpack_requant_scale,
)
from .base import OpContext, OpData, Step, TensorInfo
from .fastpath import exact_matmul_blocked
from .matmul import (
    FLOAT_SUM_STEPS,
    asymmetric_quantize_rows,
    exact_matmul,
    float64_matmul_is_exact,
    float_matmul,
    symmetric_quantize_rows,
)

__all__ = [
    "FullyConnectedQuantData",
    "FullyConnectedHybridData",
    "FullyConnectedFloatData",
    "prepare_fully_connected",
]

#: Fused activations the FC kernel accepts for non-hybrid inputs (fully_connected.cc Prepare).
FC_ACTIVATIONS = ("NONE", "RELU", "RELU_N1_TO_1", "RELU6")
#: Use the blocked exact float32/float64 products (tests switch this off to compare with the readable path).
FAST_PATHS = True


def _type_range(dtype: np.dtype) -> tuple[int, int]:
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def _clamp_f32(x: np.ndarray, lo: np.float32, hi: np.float32) -> np.ndarray:
    """``std::min(std::max(x, lo), hi)``: NaN passes through unchanged."""
    x = np.where(x < lo, lo, x)
    return np.where(hi < x, hi, x).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Prepared data


@dataclass(frozen=True)
class FullyConnectedQuantData(OpData):
    """Prepared quantized FULLY_CONNECTED (LiteRT ``reference_integer_ops::FullyConnected[PerChannel]``,
    ``reference_ops::FullyConnected`` for uint8, and the int16 x int16 kernels of fully_connected.cc)."""

    #: "int8" (int8 x int8 -> int8), "uint8" (uint8 x uint8 -> uint8), "uint8_int16" (uint8 -> int16),
    #: "int16x8" (int16 x int8 -> int16) or "int16x16" (int16 x int16 -> int16).
    kind: str = "int8"
    #: Rows of the input matrix: prod(input shape) // depth (no divisibility check, leftovers ignored).
    batches: int = 0
    #: Accumulation depth D (filter dim 1).
    depth: int = 0
    #: Output units U (filter dim 0).
    units: int = 0
    #: -zp_in, added to every input value.
    input_offset: int = 0
    #: -zp_w (per-tensor; 0 for per-channel filters, whose zero points the kernel ignores).
    filter_offset: int = 0
    #: zp_out, added after requantization.
    output_offset: int = 0
    #: "int32" (wrapping) or "int64": the C type of the accumulator.
    acc_dtype: str = "int32"
    #: float64 [U]: f64(s_in) * f64(s_w[u]) / f64(s_out), the float requant scale (not int16x16).
    effective_scale: np.ndarray | None = None
    #: int32 [U]: QuantizeMultiplier mantissas for the int16x16 MBQM64 requant (else None).
    multiplier: np.ndarray | None = None
    #: int32 [U]: QuantizeMultiplier exponents for the int16x16 MBQM64 requant (else None).
    shift: np.ndarray | None = None
    #: Fused-activation clamp in output units.
    act_min: int = -128
    act_max: int = 127
    #: uint8 -> int16 kernel: clamp to [act_min - zp_out, act_max - zp_out] before adding zp_out.
    clamp_before_offset: bool = False
    #: Whether the float64 BLAS product is provably exact (else int64 matmul).
    float64_exact: bool = True
    #: Filter dim 1 is 0: LiteRT writes zeros (not zp_out) to the whole output.
    zero_depth: bool = False
    #: The arithmetic profile's rescaling (int8/uint8 kinds): "reference" (float64 round), "neon_mbqm"
    #: (LiteRT's optimized kernels), "mbqm_double" (tflite-micro) with ``multiplier`` / ``shift``, or
    #: "fp32_rne" (XNNPACK) with ``xnn_scale``.
    rescale: str = "reference"
    #: float32 [U] or [1]: XNNPACK's requantization scale ("fp32_rne" only).
    xnn_scale: np.ndarray | None = None

    def _operands(self, inputs: list[np.ndarray | None]) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(inputs[0]).reshape(-1)[: self.batches * self.depth].reshape(self.batches, self.depth)
        w = np.asarray(inputs[1]).reshape(self.units, self.depth)
        return x.astype(np.int64) + self.input_offset, w.astype(np.int64) + self.filter_offset

    def accumulators(self, inputs: list[np.ndarray | None]) -> dict[str, np.ndarray]:
        """``{"acc": [batches, U]}``: int32 or int64 accumulators including the bias, before requant."""
        if self.zero_depth:
            return {"acc": np.zeros((self.batches, self.units), self.acc_dtype)}
        x, w = self._operands(inputs)
        acc = exact_matmul(x, w.T, self.float64_exact)
        bias = inputs[2] if len(inputs) > 2 else None
        if bias is not None:
            acc = acc + np.asarray(bias).reshape(-1).astype(np.int64)
        if self.acc_dtype == "int32":
            return {"acc": wrap_int32_i64(acc).astype(np.int32)}
        return {"acc": acc}

    def _requantize(self, acc: np.ndarray) -> np.ndarray:
        if self.rescale == "fp32_rne":
            assert self.xnn_scale is not None
            lo, hi = _type_range(np.dtype(self.output_dtypes[0]))
            return fp32_rne_requant(acc, self.xnn_scale, self.output_offset, self.act_min, self.act_max, lo, hi)
        if self.rescale in ("neon_mbqm", "mbqm_double"):
            assert self.multiplier is not None and self.shift is not None
            rq = neon_mbqm if self.rescale == "neon_mbqm" else mbqm_double_rounding
            v = rq(acc, self.multiplier, self.shift).astype(np.int64)
            return np.clip(wrap_int32_i64(v + self.output_offset), self.act_min, self.act_max)
        if self.kind == "int16x16":
            assert self.multiplier is not None and self.shift is not None
            v = multiply_by_quantized_multiplier_int64(acc, self.multiplier, self.shift).astype(np.int64)
        else:
            assert self.effective_scale is not None
            v = requantize_float64(acc, self.effective_scale)
        if self.clamp_before_offset:
            v = np.clip(v, self.act_min - self.output_offset, self.act_max - self.output_offset)
            return v + self.output_offset
        return np.clip(wrap_int32_i64(v + self.output_offset), self.act_min, self.act_max)

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """Integer FC: exact accumulators, float64 (or MBQM64) requant, zero point, clamp.

        The accumulators come from :func:`~refquant.ops.fastpath.exact_matmul_blocked` (float32 BLAS in
        provably exact K chunks, the filter converted block by block) when its bound holds; the result is
        the same integers as :meth:`accumulators` (the readable path, :meth:`eval_reference`).
        """
        out_dtype = np.dtype(self.output_dtypes[0])
        if self.zero_depth:
            return [np.zeros(self.output_shapes[0], out_dtype)]
        if not FAST_PATHS:
            return self.eval_reference(inputs)
        x = np.asarray(inputs[0]).reshape(-1)[: self.batches * self.depth].reshape(self.batches, self.depth)
        w = np.asarray(inputs[1]).reshape(self.units, self.depth)
        x_bound = max(abs(int(v) + self.input_offset) for v in _type_range(x.dtype))
        w_bound = max(abs(int(v) + self.filter_offset) for v in _type_range(w.dtype))
        prod = exact_matmul_blocked(x, w, self.input_offset, self.filter_offset, x_bound, w_bound)
        if prod is None:
            return self.eval_reference(inputs)
        acc = prod.astype(np.int64)
        bias = inputs[2] if len(inputs) > 2 else None
        if bias is not None:
            acc += np.asarray(bias).reshape(-1).astype(np.int64)
        if self.acc_dtype == "int32":
            acc = wrap_int32_i64(acc)
        out = self._requantize(acc)
        return [out.astype(out_dtype).reshape(self.output_shapes[0])]

    def eval_reference(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """The readable kernel: :meth:`accumulators` (exact int64 or float64 matmul), then the requant."""
        out_dtype = np.dtype(self.output_dtypes[0])
        if self.zero_depth:
            return [np.zeros(self.output_shapes[0], out_dtype)]
        acc = self.accumulators(inputs)["acc"]
        out = self._requantize(acc.astype(np.int64))
        return [out.astype(out_dtype).reshape(self.output_shapes[0])]

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """Steps for one output element: operand rows, offsets, acc, bias, requant, zp, clamp."""
        b, u = _fc_element(self.output_shapes[0], element)
        out_dtype = np.dtype(self.output_dtypes[0])
        if self.zero_depth:
            return [Step("value", out_dtype.type(0), "filter depth is 0: LiteRT writes zeros")]
        x, w = self._operands(inputs)
        xr = np.asarray(inputs[0]).reshape(-1)[b * self.depth : (b + 1) * self.depth]
        wr = np.asarray(inputs[1]).reshape(self.units, self.depth)[u]
        dot = int(np.dot(x[b], w[u]))
        steps = [
            Step("input_row", xr.copy(), f"input row {b} of [{self.batches}, {self.depth}]"),
            Step("input_offset", self.input_offset, "-zp_in"),
            Step("filter_row", wr.copy(), f"filter row {u}"),
            Step("filter_offset", self.filter_offset, "-zp_w (0 for per-channel filters)"),
            Step("dot", dot, "sum_d (w + filter_offset) * (x + input_offset), exact"),
        ]
        bias = inputs[2] if len(inputs) > 2 else None
        acc = dot
        if bias is not None:
            bv = int(np.asarray(bias).reshape(-1)[u])
            acc = dot + bv
            steps.append(Step("bias", bv, f"bias[{u}]"))
        if self.acc_dtype == "int32":
            acc = int(wrap_int32_i64(np.int64(acc)))
        steps.append(Step("acc", acc, f"{self.acc_dtype} accumulator (wraps like C)"))
        a = np.array([acc], np.int64)
        if self.rescale == "fp32_rne":
            assert self.xnn_scale is not None
            lo, hi = _type_range(out_dtype)
            sc = float(self.xnn_scale[u % self.xnn_scale.size])
            steps.append(Step("scale", np.float32(sc), "XNNPACK scale f32(f32(s_in * s_w) / s_out)"))
            final, rq = fp32_rne_steps(acc, sc, self.output_offset, self.act_min, self.act_max, lo, hi)
            steps.extend(Step(*st) for st in rq[:-1])
            steps.append(Step("value", out_dtype.type(final), rq[-1][2]))
            return steps
        if self.rescale in ("neon_mbqm", "mbqm_double"):
            assert self.multiplier is not None and self.shift is not None
            m, s = int(self.multiplier[u % self.multiplier.size]), int(self.shift[u % self.shift.size])
            steps.append(Step("multiplier", (m, s), f"QuantizeMultiplier: real ~= {m} * 2^({s} - 31)"))
            if self.rescale == "neon_mbqm":
                v, rq = neon_mbqm_steps(acc, m, s)
            else:
                v, rq = mbqm_steps(acc, m, s, "double")
            steps.extend(Step(*st) for st in rq)
        elif self.kind == "int16x16":
            assert self.multiplier is not None and self.shift is not None
            m, s = int(self.multiplier[u % self.multiplier.size]), int(self.shift[u % self.shift.size])
            v = int(multiply_by_quantized_multiplier_int64(a, m, s)[0])
            steps.append(Step("mbqm64", v, f"MultiplyByQuantizedMultiplier(int64 acc, M={m}, shift={s})"))
        else:
            assert self.effective_scale is not None
            eff = float(self.effective_scale[u % self.effective_scale.size])
            steps.append(Step("effective_scale", eff, "f64(s_in) * f64(s_w) / f64(s_out)"))
            steps.append(Step("scaled", float(acc) * eff, "f64(acc) * effective_scale"))
            v = int(requantize_float64(a, np.float64(eff))[0])
            steps.append(Step("rounded", v, "int32(round(scaled)): ties away from 0; out of range -> INT32_MIN"))
        if self.clamp_before_offset:
            c = min(max(v, self.act_min - self.output_offset), self.act_max - self.output_offset)
            steps.append(
                Step(
                    "clamped",
                    c,
                    f"clamp to [{self.act_min - self.output_offset}, "
                    f"{self.act_max - self.output_offset}] (before zp_out)",
                )
            )
            final = c + self.output_offset
            steps.append(Step("value", out_dtype.type(final), f"+ zp_out {self.output_offset}"))
            return steps
        z = int(wrap_int32_i64(np.int64(v + self.output_offset)))
        steps.append(Step("plus_zp", z, f"+ zp_out {self.output_offset} (int32, wraps)"))
        final = min(max(z, self.act_min), self.act_max)
        steps.append(Step("value", out_dtype.type(final), f"clamp to [{self.act_min}, {self.act_max}]"))
        return steps


@dataclass(frozen=True)
class FullyConnectedFloatData(OpData):
    """Prepared float32 FULLY_CONNECTED (LiteRT ``reference_ops::FullyConnected`` for float)."""

    #: Rows of the input matrix: prod(input shape) // depth.
    batches: int = 0
    #: Accumulation depth D (filter dim 1).
    depth: int = 0
    #: Output units U (filter dim 0).
    units: int = 0
    #: Fused-activation clamp (NONE clamps to +-FLT_MAX).
    act_min: float = float(-np.finfo(np.float32).max)
    act_max: float = float(np.finfo(np.float32).max)
    #: Filter dim 1 is 0: LiteRT writes zeros to the whole output.
    zero_depth: bool = False
    #: The constant filter transposed to a contiguous float32 [D, U] (computed once in prepare, so that the
    #: sequential products read contiguous rows), or None when the filter is not constant.
    filter_t: np.ndarray | None = field(default=None, repr=False)
    #: ``"float64"`` or ``"sequential"`` sums (:func:`float_matmul`).
    accumulation: str = "float64"

    _not_params = OpData._not_params | frozenset({"filter_t"})

    def _operands(self, inputs: list[np.ndarray | None]) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(inputs[0], np.float32).reshape(-1)[: self.batches * self.depth]
        return x.reshape(self.batches, self.depth), np.asarray(inputs[1], np.float32).reshape(self.units, self.depth)

    def accumulators(self, inputs: list[np.ndarray | None]) -> dict[str, np.ndarray]:
        """``{"acc": [batches, U]}``: the float32 sums before bias and activation."""
        if self.zero_depth:
            return {"acc": np.zeros((self.batches, self.units), np.float32)}
        x, w = self._operands(inputs)
        if self.filter_t is not None and FAST_PATHS:
            return {"acc": float_matmul(x, self.filter_t, self.accumulation)}
        return {"acc": float_matmul(x, w.T, self.accumulation)}

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """Float32 dot products (float64 or sequential sums), + bias (0.0f when absent), then the clamp."""
        if self.zero_depth:
            return [np.zeros(self.output_shapes[0], np.float32)]
        acc = self.accumulators(inputs)["acc"]
        bias = inputs[2] if len(inputs) > 2 and inputs[2] is not None else np.zeros(self.units, np.float32)
        total = (acc + np.asarray(bias, np.float32).reshape(-1)).astype(np.float32)
        out = _clamp_f32(total, np.float32(self.act_min), np.float32(self.act_max))
        return [out.reshape(self.output_shapes[0])]

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """Steps for one output element: operand rows, float32 sum, bias, clamp."""
        b, u = _fc_element(self.output_shapes[0], element)
        if self.zero_depth:
            return [Step("value", np.float32(0), "filter depth is 0: LiteRT writes zeros")]
        x, w = self._operands(inputs)
        acc = float_matmul(x[b : b + 1], w[u : u + 1].T, self.accumulation)[0, 0]
        bias = inputs[2] if len(inputs) > 2 else None
        bv = np.float32(0) if bias is None else np.asarray(bias, np.float32).reshape(-1)[u]
        total = np.float32(acc + bv)
        out = _clamp_f32(np.array([total]), np.float32(self.act_min), np.float32(self.act_max))[0]
        return [
            Step("input_row", x[b].copy(), f"input row {b} of [{self.batches}, {self.depth}]"),
            Step("filter_row", w[u].copy(), f"filter row {u}"),
            Step("acc", acc, FLOAT_SUM_STEPS[self.accumulation]),
            Step("bias", bv, f"bias[{u}] (0.0f without bias)"),
            Step("sum", total, "acc + bias in float32"),
            Step("value", out, f"clamp to [{self.act_min}, {self.act_max}]"),
        ]


def _hybrid_activation(x: np.ndarray, act: str) -> np.ndarray:
    """``tensor_utils::ApplyActivationToVector`` (float): std::max/std::min forms, NONE does not clamp."""
    zero, one, six = np.float32(0), np.float32(1), np.float32(6)
    if act == "RELU":  # std::max(0.0f, v): NaN -> 0
        return np.where(zero < x, x, zero).astype(np.float32)
    if act == "RELU6":  # std::max(0.0f, std::min(v, 6.0f)): NaN -> 0
        m = np.where(six < x, six, x)
        return np.where(zero < m, m, zero).astype(np.float32)
    if act == "RELU_N1_TO_1":  # std::max(-1.0f, std::min(v, 1.0f)): NaN -> -1
        m = np.where(one < x, one, x)
        return np.where(-one < m, m, -one).astype(np.float32)
    if act == "TANH":  # Eigen's vectorized tanh: refquant uses float32 tanh (may differ in the last ulps)
        return np.tanh(x).astype(np.float32)
    if act == "SIGN_BIT":
        return np.signbit(x).astype(np.float32)
    return x


@dataclass(frozen=True)
class FullyConnectedHybridData(OpData):
    """Prepared hybrid FULLY_CONNECTED: float32 input, int8/int4/int2 weights (fully_connected.cc
    ``EvalHybridDense``), as the ai-edge-litert x86 wheel computes it.

    Each input row is quantized on the fly (symmetric, or asymmetric with ``asymmetric_quantize_inputs``;
    see :func:`symmetric_quantize_rows`), then::

        acc[b,u]  = sum_d q[b,d] * w[u,d] - zp[b] * sum_d w[u,d]          (int32)
        scale[b,u]= f32(s_w[u] * f32(s_x[b]))    per-channel;   f32(s_x[b] * s_w) per-tensor
        out[b,u]  = activation(f32(bias[u] + f32(f32(acc) * scale)))       (no FMA; bias 0.0f if absent)

    An all-zero input tensor skips the product: ``out = activation(bias)``. Filter zero points are ignored.
    """

    #: Rows of the input matrix: prod(input shape) // depth.
    batches: int = 0
    #: Accumulation depth D (filter dim 1).
    depth: int = 0
    #: Output units U (filter dim 0).
    units: int = 0
    #: Quantize input rows asymmetrically (the ``asymmetric_quantize_inputs`` option).
    asymmetric: bool = False
    #: float32 filter scales: [U] per-channel or [1] per-tensor.
    filter_scales: np.ndarray | None = None
    #: Fused activation applied to the float result (any schema activation; NONE does not clamp).
    activation: str = "NONE"
    #: Filter dim 1 is 0: LiteRT writes zeros to the whole output.
    zero_depth: bool = False

    def _quantized(self, inputs: list[np.ndarray | None]) -> tuple[np.ndarray, ...]:
        x = np.asarray(inputs[0], np.float32).reshape(-1)[: self.batches * self.depth]
        x = x.reshape(self.batches, self.depth)
        q, sx, zp = (asymmetric_quantize_rows if self.asymmetric else symmetric_quantize_rows)(x)
        w = np.asarray(inputs[1]).reshape(self.units, self.depth).astype(np.int64)
        # Exact in float64: |q| <= 128, |w| <= 128, D < 2^39 (float64_matmul_is_exact bound).
        dot = exact_matmul(q, w.T, float64_matmul_is_exact(128, 128, self.depth))
        acc = wrap_int32_i64(dot - wrap_int32_i64(zp[:, None] * w.sum(axis=1)[None, :]))
        assert self.filter_scales is not None
        if self.filter_scales.size == 1:
            row_scale = np.broadcast_to((sx * self.filter_scales[0]).astype(np.float32)[:, None], acc.shape)
        else:
            row_scale = (self.filter_scales[None, :] * sx[:, None]).astype(np.float32)
        return x, q, sx, zp, acc, row_scale

    def accumulators(self, inputs: list[np.ndarray | None]) -> dict[str, np.ndarray]:
        """``{"acc": int32 [B, U], "input_q": int8 [B, D], "input_scale": f32 [B], "input_zero_point": [B]}``."""
        if self.zero_depth:
            return {"acc": np.zeros((self.batches, self.units), np.int32)}
        _, q, sx, zp, acc, _ = self._quantized(inputs)
        return {
            "acc": acc.astype(np.int32),
            "input_q": q.astype(np.int8),
            "input_scale": sx,
            "input_zero_point": zp.astype(np.int32),
        }

    def _bias(self, inputs: list[np.ndarray | None]) -> np.ndarray:
        bias = inputs[2] if len(inputs) > 2 else None
        return np.zeros(self.units, np.float32) if bias is None else np.asarray(bias, np.float32).reshape(-1)

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """Quantize rows, integer dot products, float rescale onto the bias, activation."""
        shape = self.output_shapes[0]
        if self.zero_depth:
            return [np.zeros(shape, np.float32)]
        out = np.broadcast_to(self._bias(inputs), (self.batches, self.units)).astype(np.float32)
        if np.any(np.asarray(inputs[0]) != 0):
            *_, acc, row_scale = self._quantized(inputs)
            out = (out + (acc.astype(np.float32) * row_scale).astype(np.float32)).astype(np.float32)
        return [_hybrid_activation(out, self.activation).reshape(shape)]

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """Steps for one output element: input row, its quantization, dot product, rescale, bias, activation."""
        b, u = _fc_element(self.output_shapes[0], element)
        if self.zero_depth:
            return [Step("value", np.float32(0), "filter depth is 0: LiteRT writes zeros")]
        bias = self._bias(inputs)[u]
        if not np.any(np.asarray(inputs[0]) != 0):
            v = _hybrid_activation(np.array([bias], np.float32), self.activation)[0]
            return [Step("bias", bias, "all-zero input: the product is skipped"), Step("value", v, self.activation)]
        x, q, sx, zp, acc, row_scale = self._quantized(inputs)
        w = np.asarray(inputs[1]).reshape(self.units, self.depth)[u]
        prod = np.float32(np.float32(acc[b, u]) * row_scale[b, u])
        total = np.float32(bias + prod)
        mode = "asymmetric" if self.asymmetric else "symmetric"
        return [
            Step("input_row", x[b].copy(), f"input row {b} of [{self.batches}, {self.depth}]"),
            Step("input_scale", sx[b], f"{mode} on-the-fly quantization scale of the row"),
            Step("input_zero_point", int(zp[b]), "0 for symmetric quantization"),
            Step("input_q", q[b].astype(np.int8), "quantized row"),
            Step("filter_row", w.copy(), f"filter row {u} (zero point ignored)"),
            Step("acc", int(acc[b, u]), "int32 sum_d q*w - zp * sum_d w"),
            Step("row_scale", row_scale[b, u], "f32(filter scale * input scale)"),
            Step("scaled", prod, "f32(f32(acc) * row_scale)"),
            Step("bias", bias, f"bias[{u}] (0.0f without bias)"),
            Step("sum", total, "bias + scaled in float32"),
            Step("value", _hybrid_activation(np.array([total]), self.activation)[0], f"activation {self.activation}"),
        ]


def _fc_element(shape: tuple[int, ...], element: tuple[int, ...]) -> tuple[int, int]:
    """(batch row, unit) of an output element index."""
    if len(element) != len(shape) or any(not 0 <= e < s for e, s in zip(element, shape)):
        raise IndexError(f"element {list(element)} is outside the output shape {list(shape)}")
    flat = int(np.ravel_multi_index(element, shape))
    return flat // shape[-1], flat % shape[-1]


# ---------------------------------------------------------------------------------------------
# Prepare


def _output_shape(ctx: OpContext, x: TensorInfo, depth: int, units: int, keep: bool) -> tuple[tuple[int, ...], int]:
    """(output shape, batches) exactly as fully_connected.cc computes them."""
    if keep and len(x.shape) == 0:
        raise ctx.error("keep_num_dims needs an input of rank >= 1", x)
    if depth == 0:
        if keep:
            return x.shape[:-1] + (units,), 0
        batches = int(np.prod(x.shape[:-1], dtype=np.int64)) if x.shape else 1
        return (batches, units), batches
    batches = x.size // depth
    if keep:
        if x.shape[-1] != depth:
            raise ctx.error(f"keep_num_dims: the input's last dimension {x.shape[-1]} != filter depth {depth}", x)
        return x.shape[:-1] + (units,), batches
    return (batches, units), batches


def _bias_scale(bias: TensorInfo) -> float:
    """The bias tensor's legacy ``params.scale``.

    LiteRT (subgraph.cc GetLegacyQuantization) sets it only for per-tensor quantization: a tensor without
    quantization or with several scales has ``params.scale == 0``.
    """
    if bias.quant is None or bias.quant.scale.size != 1:
        return 0.0
    return float(bias.quant.scale[0])


def _check_quant_types(
    ctx: OpContext, x: TensorInfo, w: TensorInfo, y: TensorInfo, bias: TensorInfo | None
) -> tuple[str, str]:
    """The kernel kind for the quantized type combination and the bias dtype it reads."""
    wt = "int8" if w.dtype in ("int8", "int4", "int2") else w.dtype
    combo = (x.dtype, wt, y.dtype)
    kinds = {
        ("int8", "int8", "int8"): "int8",
        ("uint8", "uint8", "uint8"): "uint8",
        ("uint8", "uint8", "int16"): "uint8_int16",
        ("int16", "int8", "int16"): "int16x8",
        ("int16", "int16", "int16"): "int16x16",
    }
    if combo not in kinds:
        raise ctx.unsupported(
            f"FULLY_CONNECTED with input {x.dtype}, filter {w.dtype}, output {y.dtype}; refquant implements "
            "int8 x int8(int4) -> int8, uint8 x uint8 -> uint8/int16, int16 x int8(int4) -> int16, "
            "int16 x int16 -> int16, float32, (LiteRT either rejects the others or reinterprets the buffers)"
        )
    kind = kinds[combo]
    if w.dtype in ("int4", "int2") and (w.quant is not None and (w.quant.zero_point != 0).any()):
        raise ctx.fail_quant(f"{w.dtype} filters need zero points 0 (LiteRT rejects others)", w)
    qbt = str(ctx.option("quantized_bias_type", "FLOAT32"))
    if kind in ("int16x8", "int16x16"):
        if qbt not in ("FLOAT32", "INT32", "INT64"):
            raise ctx.error(f"quantized_bias_type {qbt} is not supported; expected INT32 or INT64 (or unset)")
        if qbt != "FLOAT32" and bias is not None and bias.dtype != qbt.lower():
            raise ctx.error(f"bias type {bias.dtype} does not match quantized_bias_type {qbt}", bias)
        if kind == "int16x8":
            bias_dtype = "int32" if qbt == "INT32" else "int64"
        else:
            bias_dtype = "int64" if qbt == "INT64" else "int32"
    else:
        bias_dtype = "int32"
    if bias is not None and bias.dtype != bias_dtype:
        if bias.dtype in ("int32", "int64"):
            raise ctx.unsupported(
                f"a {bias.dtype} bias where the {kind} kernel reads the bias buffer as {bias_dtype} "
                f"(quantized_bias_type={qbt}); LiteRT would compute with reinterpreted bias bytes"
            )
        raise ctx.error(f"bias type {bias.dtype} is not supported; expected {bias_dtype}", bias, UnsupportedOpError)
    if kind == "uint8_int16" and bias is None:
        raise ctx.error("the uint8 -> int16 kernel needs a bias (LiteRT dereferences it unconditionally)")
    return kind, bias_dtype


def prepare_fully_connected(ctx: OpContext) -> OpData:
    """Prepare FULLY_CONNECTED as LiteRT's ``Register_FULLY_CONNECTED_REF`` does (fully_connected.cc).

    Checks everything the kernel's Prepare checks (input/output counts, types, activation, 2-D filter,
    bias size, per-channel ``quantized_dimension == 0``, the per-tensor 2% bias-scale check, int16 zero
    points and ``quantized_bias_type``), and rejects what refquant does not implement (shuffled weights,
    sparse filters, type combinations where LiteRT reinterprets buffers). Float input with int8/int4/int2
    weights is the hybrid kernel (:class:`FullyConnectedHybridData`).
    """
    fmt = str(ctx.option("weights_format", "DEFAULT"))
    if fmt != "DEFAULT":
        raise ctx.unsupported(f"FULLY_CONNECTED weights_format {fmt} (shuffled uint8 weights)")
    ctx.check_counts((2, 3), 1)
    x, w, y = ctx.input(0), ctx.input(1), ctx.output(0)
    bias = ctx.optional_input(2)
    act = str(ctx.option("fused_activation_function", "NONE"))
    hybrid = x.dtype == "float32" and w.dtype in ("int8", "uint8", "int4", "int2")
    if hybrid and w.dtype == "uint8":
        raise ctx.unsupported("hybrid FULLY_CONNECTED with uint8 weights (LiteRT reads them as int8)")
    if not hybrid and act not in FC_ACTIVATIONS:
        raise ctx.error(f"fused activation {act} is not supported; expected one of {list(FC_ACTIVATIONS)}")
    if len(w.shape) != 2:
        raise ctx.error(f"filter must be 2-D [units, depth], got rank {len(w.shape)}", w)
    units, depth = w.shape
    keep = bool(ctx.option("keep_num_dims", False))
    out_shape, batches = _output_shape(ctx, x, depth, units, keep)
    if bias is not None and depth != 0 and bias.size != units:
        raise ctx.error(f"bias has {bias.size} elements; expected {units} (filter dim 0)", bias)

    if hybrid:
        return _prepare_hybrid(ctx, x, w, y, bias, act, out_shape, batches)
    if w.dtype == "float32" or x.dtype == "float32":
        for t, role in ((x, "input"), (w, "filter"), (y, "output")):
            ctx.check_dtype(t, ("float32",), role)
        if bias is not None:
            ctx.check_dtype(bias, ("float32",), "bias")
        lo, hi = calculate_activation_range_float(act)
        filter_t = None
        if w.value is not None and depth != 0:
            filter_t = np.ascontiguousarray(np.asarray(w.value, np.float32).reshape(units, depth).T)
            filter_t.flags.writeable = False
        return FullyConnectedFloatData(
            output_shapes=(out_shape,),
            output_dtypes=("float32",),
            batches=batches,
            depth=depth,
            units=units,
            act_min=float(lo),
            act_max=float(hi),
            zero_depth=depth == 0,
            filter_t=filter_t,
            accumulation=ctx.float_accumulation,
        )

    for t, role in ((x, "input"), (y, "output")):
        ctx.check_dtype(t, ("int8", "uint8", "int16"), role)
    ctx.check_dtype(w, ("int8", "uint8", "int16", "int4", "int2"), "filter")
    kind, _ = _check_quant_types(ctx, x, w, y, bias)
    qx = ctx.require_quant(x, per_tensor=True)
    qw = ctx.require_quant(w)
    ctx.require_quant(y, per_tensor=True)
    s_in, s_out = np.float64(x.scale), np.float64(y.scale)
    per_channel = qw.scale.size > 1
    if per_channel:
        if x.dtype not in ("int8", "int16"):
            raise ctx.error(f"per-channel filters need an int8 or int16 input, got {x.dtype}", w)
        if qw.quantized_dimension != 0:
            raise ctx.fail_quant(
                f"per-channel filter quantized along dimension {qw.quantized_dimension}; FULLY_CONNECTED needs 0", w
            )
        if qw.scale.size != units:
            raise ctx.fail_quant(f"{qw.scale.size} filter scales for {units} output units", w)
        w_scales = qw.scale.astype(np.float64)
        filter_offset = 0
    else:
        w_scales = np.array([qw.scale[0]], np.float64)
        filter_offset = -int(qw.zero_point[0])
        if bias is not None:
            # kernel_util.cc GetQuantizedConvolutionMultipler: the bias scale must match s_in*s_w within 2% of s_out.
            diff = abs(s_in * w_scales[0] - np.float64(_bias_scale(bias)))
            if not diff / s_out <= 0.02:
                raise ctx.fail_quant(
                    f"bias scale {_bias_scale(bias)!r} differs from input_scale * filter_scale = "
                    f"{float(s_in * w_scales[0])!r} by {float(diff / s_out):.4g} output scales; LiteRT allows 0.02",
                    bias,
                )
    lo, hi = calculate_activation_range_quantized(act, y.scale, y.zero_point, y.dtype)
    if kind in ("int16x8", "int16x16"):
        ctx.require_zero_points(x, y, why="int16 FULLY_CONNECTED")
    qbt = str(ctx.option("quantized_bias_type", "FLOAT32"))
    acc_dtype = "int64" if kind == "int16x16" or (kind == "int16x8" and qbt != "INT32") else "int32"

    multiplier = shift = eff = None
    if kind == "int16x16":
        if per_channel:
            real = s_in * w_scales / s_out
        else:  # float product, as in GetQuantizedConvolutionMultipler
            real = np.array([np.float64(np.float32(np.float32(x.scale) * np.float32(qw.scale[0]))) / s_out])
        multiplier, shift = quantize_multiplier_array(real, ctx.rounding)  # type: ignore[arg-type]
        if (shift > 14).any():
            raise ctx.fail_quant(
                f"effective multiplier {float(real.max())!r} is too large for the int64 requantization "
                "(shift > 14 is undefined in LiteRT's MultiplyByQuantizedMultiplier(int64))"
            )
    else:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            eff = s_in * w_scales / s_out

    profile = _profile_requant(ctx, kind, x, w, y, w_scales, per_channel, act)
    if "multiplier" in profile:
        multiplier, shift = profile.pop("multiplier"), profile.pop("shift")
    lo, hi = profile.pop("act_min", lo), profile.pop("act_max", hi)

    in_max = {"int8": 255, "uint8": 255, "int16": 2**15}[x.dtype]
    w_max = {"int8": 255, "uint8": 255, "int16": 2**16}[w.dtype if w.dtype in ("uint8", "int16") else "int8"]
    return FullyConnectedQuantData(
        output_shapes=(out_shape,),
        output_dtypes=(y.dtype,),
        kind=kind,
        batches=batches,
        depth=depth,
        units=units,
        input_offset=-int(qx.zero_point[0]),
        filter_offset=filter_offset,
        output_offset=int(y.zero_point),
        acc_dtype=acc_dtype,
        effective_scale=eff,
        multiplier=multiplier,
        shift=shift,
        act_min=lo,
        act_max=hi,
        clamp_before_offset=kind == "uint8_int16",
        float64_exact=float64_matmul_is_exact(in_max, w_max, depth),
        zero_depth=depth == 0,
        **profile,
    )


def _profile_requant(
    ctx: OpContext,
    kind: str,
    x: TensorInfo,
    w: TensorInfo,
    y: TensorInfo,
    w_scales: np.ndarray,
    per_channel: bool,
    act: str,
) -> dict:
    """The OpData fields of the arithmetic profile's rescaling (:mod:`refquant.arithmetic`), from ``ctx.arithmetic``.

    "neon_mbqm" (LiteRT's optimized kernels) and "mbqm_double" (tflite-micro): QuantizeMultiplier of
    ``f64(f32(s_in * s_w)) / f64(s_out)`` per tensor (``GetQuantizedConvolutionMultipler``'s float product)
    and of ``f64(s_in) * f64(s_w[u]) / f64(s_out)`` per channel. "fp32_rne" (XNNPACK): the float32 scale
    ``f32(f32(s_in * s_w[u]) / s_out)`` and XNNPACK's fused-activation bounds (ties to even).
    """
    arith = ctx.arithmetic
    fields: dict = {"arithmetic": arith}
    if arith.rescale == "reference":
        return fields
    if kind not in ("int8", "uint8") or w.dtype not in ("int8", "uint8"):
        raise ctx.unsupported(f"rescaling {arith.rescale!r} for a {kind} FULLY_CONNECTED with {w.dtype} weights")
    fields["rescale"] = arith.rescale
    s_in, s_out = np.float32(x.scale), np.float32(y.scale)
    if arith.rescale in ("neon_mbqm", "mbqm_double"):
        if per_channel:
            real = np.float64(s_in) * w_scales / np.float64(s_out)
        else:
            real = np.array([np.float64(np.float32(s_in * np.float32(w_scales[0]))) / np.float64(s_out)])
        m, sh = quantize_multiplier_array(real, "double")
        fields["multiplier"], fields["shift"] = np.asarray(m, np.int32), np.asarray(sh, np.int32)
        return fields
    if arith.rescale == "fp32_rne":
        fields["xnn_scale"] = xnnpack_requant_scale(s_in, w_scales.astype(np.float32), s_out)
        qmin, qmax = _type_range(y.np_dtype)
        inf = float("inf")
        a_lo, a_hi = {"NONE": (-inf, inf), "RELU": (0.0, inf), "RELU_N1_TO_1": (-1.0, 1.0), "RELU6": (0.0, 6.0)}[act]
        fields["act_min"] = xnnpack_output_bound(a_lo, y.scale, y.zero_point, qmin, qmax)
        fields["act_max"] = xnnpack_output_bound(a_hi, y.scale, y.zero_point, qmin, qmax)
        return fields
    raise ctx.unsupported(f"rescaling {arith.rescale!r} is not implemented by the FULLY_CONNECTED kernel")


def _prepare_hybrid(
    ctx: OpContext,
    x: TensorInfo,
    w: TensorInfo,
    y: TensorInfo,
    bias: TensorInfo | None,
    act: str,
    out_shape: tuple[int, ...],
    batches: int,
) -> OpData:
    """Hybrid FC: float32 input and output, float32 (optional) bias, int8/int4/int2 weights."""
    ctx.check_dtype(y, ("float32",), "output")
    if bias is not None:
        ctx.check_dtype(bias, ("float32",), "bias")
    qw = ctx.require_quant(w)
    units, depth = w.shape
    if w.dtype in ("int4", "int2") and (qw.zero_point != 0).any():
        raise ctx.fail_quant(f"{w.dtype} filters need zero points 0 (LiteRT rejects others)", w)
    if qw.scale.size > 1 and (qw.quantized_dimension != 0 or qw.scale.size != units):
        raise ctx.unsupported(
            f"hybrid FULLY_CONNECTED with filter scales along dimension {qw.quantized_dimension} (LiteRT indexes "
            "them by output unit)"
        )
    if w.dtype == "int8" and w.value is not None and (np.asarray(w.value)[:, : depth & ~15] == -128).any():
        # x86 LiteRT's SSE int8 dot product moves the input's sign onto the weight with _mm_sign_epi8, where
        # -(-128) wraps to -128: such sums come out wrong in the first depth & ~15 columns (verified against
        # the wheel); refquant models that quirk for hybrid CONV_2D but not for FULLY_CONNECTED.
        raise ctx.unsupported(
            "hybrid FULLY_CONNECTED with a filter value -128 in the first depth & ~15 columns (LiteRT's x86 SSE "
            "dot product gets those sums wrong; converters quantize hybrid weights to [-127, 127])"
        )
    return FullyConnectedHybridData(
        output_shapes=(out_shape,),
        output_dtypes=("float32",),
        batches=batches,
        depth=depth,
        units=units,
        asymmetric=bool(ctx.option("asymmetric_quantize_inputs", False)),
        filter_scales=np.array(qw.scale, np.float32),
        activation=act,
        zero_depth=depth == 0,
    )
