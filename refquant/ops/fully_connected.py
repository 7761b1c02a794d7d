"""FULLY_CONNECTED: LiteRT's reference fully-connected kernels (``fully_connected.cc``, kReference).

Quantized paths (KERNEL_NOTES 3.3). Every quantized REF kernel except int16 x int16 requantizes in
float64 with C ``round`` (one rounding, ties away from zero), not with MultiplyByQuantizedMultiplier::

    acc = sum_d (w[u,d] + filter_offset) * (x[b,d] + input_offset) + bias[u]      (int32 or int64)
    eff = f64(s_in) * f64(s_w[u]) / f64(s_out)
    v   = int32(round(f64(acc) * eff))          # out of int32 range / NaN -> INT32_MIN (x86 cvttsd2si)
    out = clamp(wrap32(v + zp_out), act_min, act_max)

int16 input x int16 filter accumulates in int64 and uses MBQM64 with QuantizeMultiplier's (M, shift).
The uint8 -> int16 legacy kernel clamps to ``[act_min - zp_out, act_max - zp_out]`` before adding zp_out.
float32 (``float_accumulation="sequential"``) accumulates sequentially in float32 in ``d`` order (a product
then an add, no FMA), adds the bias and clamps with the fused activation (KERNEL_NOTES 4), bit for bit;
the default ``"float64"`` sums in float64 BLAS and rounds once (:func:`float_matmul`). Hybrid FC (float32 input, int8/int4/int2 weights)
quantizes each input row on the fly exactly as the x86 wheel's tensor_utils do (see
:class:`FullyConnectedHybridData`).

Shared helpers for matrix products (:func:`exact_matmul`, :func:`sequential_matmul_f32`,
:func:`float_matmul`) are also used by BATCH_MATMUL.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import UnsupportedOpError
from ..fixedpoint import INT32_MIN, multiply_by_quantized_multiplier_int64, round_half_away_from_zero
from ..quantization import (
    calculate_activation_range_float,
    calculate_activation_range_quantized,
    quantize_multiplier_array,
)
from .base import OpContext, OpData, Step, TensorInfo
from .fastpath import exact_matmul_blocked

__all__ = [
    "FullyConnectedQuantData",
    "FullyConnectedHybridData",
    "symmetric_quantize_rows",
    "asymmetric_quantize_rows",
    "FullyConnectedFloatData",
    "prepare_fully_connected",
    "exact_matmul",
    "sequential_matmul_f32",
    "float_matmul",
    "FLOAT_SUM_STEPS",
    "float64_matmul_is_exact",
    "requantize_float64",
]

#: Fused activations the FC kernel accepts for non-hybrid inputs (fully_connected.cc Prepare).
FC_ACTIVATIONS = ("NONE", "RELU", "RELU_N1_TO_1", "RELU6")
#: Largest integer every partial sum of a float64 dot product must stay below to be exact.
_F64_EXACT = 2**53
#: Use the blocked exact float32/float64 products (tests switch this off to compare with the readable path).
FAST_PATHS = True
#: Products per block of the blocked sequential float32 matmul (256 KiB, stays in the L2 cache).
_SEQ_BLOCK = 1 << 16


def _type_range(dtype: np.dtype) -> tuple[int, int]:
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


# ---------------------------------------------------------------------------------------------
# Shared arithmetic helpers


def float64_matmul_is_exact(max_abs_a: int, max_abs_b: int, depth: int) -> bool:
    """True when a float64 (BLAS) dot product of ``depth`` integer terms is exact.

    Each product is at most ``max_abs_a * max_abs_b`` in magnitude, so every partial sum, in any order
    BLAS chooses, is bounded by ``depth * max_abs_a * max_abs_b``; below 2^53 every float64 step is exact.
    """
    return depth * max_abs_a * max_abs_b < _F64_EXACT


def exact_matmul(a: np.ndarray, b: np.ndarray, use_float64: bool) -> np.ndarray:
    """Exact integer ``a @ b`` (NumPy matmul broadcasting) as an int64 array.

    ``a`` and ``b`` hold integers (any integer or float64 dtype). With ``use_float64`` the product goes
    through float64 BLAS; the caller guarantees exactness with :func:`float64_matmul_is_exact`. Otherwise
    int64 matmul is used (exact, wrapping modulo 2^64 like a C int64 accumulator).
    """
    if use_float64:
        return np.matmul(a.astype(np.float64, copy=False), b.astype(np.float64, copy=False)).astype(np.int64)
    return np.matmul(a.astype(np.int64, copy=False), b.astype(np.int64, copy=False))


def sequential_matmul_f32(a: np.ndarray, b: np.ndarray, blocked: bool | None = None) -> np.ndarray:
    """float32 ``a @ b`` summed term by term in ``k`` order, as the reference float kernels do.

    ``total = 0.0f; for k: total += a[..., i, k] * b[..., k, j]`` with the product rounded to float32
    before the add (no FMA, no pairwise summation). The readable form (``blocked=False``) loops over the
    depth ``k`` with whole (..., M, N) arrays. The blocked form (default: :data:`FAST_PATHS`) makes, per
    cache-sized block, all products ``P[i, k, j]`` (C order) in one multiply and sums them with
    ``np.add.reduce(P, axis=1, initial=0)``. NumPy sums pairwise only along the innermost (contiguous) loop
    of a reduction; here the innermost axis is ``j`` (at least 2 long, else the loop form is used), so each
    step adds ``P[:, k, :]`` to the running (i, j) sums for k = 0, 1, ... in order: the same float32 adds
    as the loop, starting from +0.0 as C does. (``np.add.accumulate`` is sequential by definition but
    walks each (i, j) separately, several times slower.) The tests check both forms bit for bit on random
    data with signed zeros, inf and NaN, for every block shape.
    """
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1])
    if blocked is None:
        blocked = FAST_PATHS
    k_depth = a.shape[-1]
    if not blocked or k_depth == 0 or 0 in shape or shape[-1] < 2:
        total = np.zeros(shape, dtype=np.float32)
        prod = np.empty(shape, dtype=np.float32)
        for k in range(k_depth):
            np.multiply(a[..., :, k : k + 1], b[..., k : k + 1, :], out=prod)
            np.add(total, prod, out=total)
        return total
    out = np.empty(shape, dtype=np.float32)
    ab = np.broadcast_to(a, shape[:-2] + a.shape[-2:])
    bb = np.broadcast_to(b, shape[:-2] + b.shape[-2:])
    m, n = shape[-2], shape[-1]
    nb = max(2, min(n, _SEQ_BLOCK // k_depth))  # >= 2: the innermost loop must run over j, not k
    mb = max(1, min(m, _SEQ_BLOCK // (k_depth * nb)))
    pbuf = np.empty((mb, k_depth, nb), np.float32)
    zero = np.float32(0)
    for idx in np.ndindex(*shape[:-2]):
        a2, o2 = ab[idx], out[idx]
        b2 = np.ascontiguousarray(bb[idx])  # (K, N): contiguous rows for the products
        for n0 in range(0, n, nb):
            n1 = min(n, n0 + nb)
            for m0 in range(0, m, mb):
                m1 = min(m, m0 + mb)
                if n1 - n0 < 2:  # a last block of one column: back off by one so j stays innermost
                    n0 = n1 - 2
                p = pbuf[: m1 - m0, :, : n1 - n0]
                np.multiply(a2[m0:m1, :, None], b2[None, :, n0:n1], out=p)
                np.add.reduce(p, axis=1, out=o2[m0:m1, n0:n1], initial=zero)
    return out


def wrap_int32_i64(v: np.ndarray) -> np.ndarray:
    """int64 values reduced modulo 2^32 into the int32 range (a C int32 that overflowed on x86), as int64."""
    return ((v + 2**31) & 0xFFFFFFFF) - 2**31


def requantize_float64(acc: np.ndarray, effective_scale: np.ndarray) -> np.ndarray:
    """``static_cast<int32_t>(round(double(acc) * eff))`` as int64 values in the int32 range.

    ``round`` is C round (ties away from zero). A result outside ``[-2^31, 2^31)``, or NaN, becomes
    INT32_MIN, which is what the x86 conversion (cvttsd2si) produces.
    """
    with np.errstate(invalid="ignore", over="ignore"):
        v = round_half_away_from_zero(acc.astype(np.float64) * effective_scale)
        ok = (v >= -(2.0**31)) & (v < 2.0**31)
    out = np.where(ok, v, 0.0).astype(np.int64)
    return np.where(ok, out, INT32_MIN)


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
        if self.kind == "int16x16":
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


#: Trace wording of a float sum per accumulation mode.
FLOAT_SUM_STEPS = {
    "sequential": "float32 running sum of the float32 products, in depth order",
    "float64": "sum of the (exact) products in float64, rounded once to float32",
}
#: Float64 elements of ``b`` converted at a time by :func:`float_matmul` (1 MiB).
_F64_CHUNK = 1 << 17


def float_matmul(a: np.ndarray, b: np.ndarray, accumulation: str = "float64") -> np.ndarray:
    """float32 ``a @ b`` (batched like ``np.matmul``) with the sums of ``refquant.graph.FLOAT_ACCUMULATIONS``.

    ``"sequential"``: :func:`sequential_matmul_f32`, LiteRT's float32 loop bit for bit. ``"float64"``:
    float64 BLAS on the float32 operands, each sum rounded once to float32. A product of two float32 is
    exact in float64 (24 + 24 significant bits), so this differs from the exact sum by float64 rounding
    (``K * 2^-53 * sum|a*b|`` at most) and the final rounding, while the float32 loop may differ from it by
    up to ``K * 2^-24 * sum|a*b|``: the two agree within LiteRT's own rounding error. A 2-D ``b`` of more
    than :data:`_F64_CHUNK` elements is converted in chunks of columns.
    """
    if accumulation == "sequential":
        return sequential_matmul_f32(a, b)
    a64 = np.asarray(a, dtype=np.float32).astype(np.float64)
    b = np.asarray(b, dtype=np.float32)
    if b.ndim != 2 or b.size <= _F64_CHUNK or a64.ndim != 2:
        return np.matmul(a64, b.astype(np.float64)).astype(np.float32)
    k, n = b.shape
    out = np.empty((a64.shape[0], n), np.float32)
    step = max(1, _F64_CHUNK // max(1, k))
    for j0 in range(0, n, step):
        j1 = min(n, j0 + step)
        out[:, j0:j1] = a64 @ b[:, j0:j1].astype(np.float64)
    return out


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


def _round_half_up_trunc(prod: np.ndarray) -> np.ndarray:
    """NEON ``RoundToNearest`` as NEON_2_SSE runs it on x86: ``trunc(f32(p + (p < 0 ? -0.5f : 0.5f)))``.

    Not C ``round``: the float32 add itself rounds, so e.g. 0.49999997 becomes 1.
    """
    half = np.where(prod < 0, np.float32(-0.5), np.float32(0.5))
    return np.trunc((prod + half).astype(np.float32))


def symmetric_quantize_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LiteRT ``tensor_utils::SymmetricQuantizeFloats`` per row, as the ai-edge-litert x86 wheel runs it.

    The wheel is built with SSE4.1, so its tensor_utils use ``NeonSymmetricQuantizeFloats`` through
    NEON_2_SSE: ``range = max(|min|, |max|)``, ``scale = f32(range / 127)``, ``inv = f32(127 / range)``;
    the first ``D & ~7`` columns round ``f32(x * inv)`` with :func:`_round_half_up_trunc`, the remaining
    columns with C ``roundf``; values are clamped to [-127, 127]. An all-zero row gives q = 0, scale 1.

    ``x``: float32 [B, D]. Returns (q int64 [B, D], scale float32 [B], offset int64 [B] (zeros)).
    """
    b, d = x.shape
    if d == 0:
        return np.zeros((b, 0), np.int64), np.ones(b, np.float32), np.zeros(b, np.int64)
    rng = np.maximum(np.abs(x.min(axis=1)), np.abs(x.max(axis=1))).astype(np.float32)
    zero = rng == 0
    safe = np.where(zero, np.float32(1), rng).astype(np.float32)
    scale = np.where(zero, np.float32(1), safe / np.float32(127)).astype(np.float32)
    inv = (np.float32(127) / safe).astype(np.float32)
    prod = (x * inv[:, None]).astype(np.float32)
    vec_cols = np.arange(d)[None, :] < (d & ~7)
    q = np.where(vec_cols, _round_half_up_trunc(prod), round_half_away_from_zero(prod))
    q = np.clip(np.nan_to_num(q), -127, 127).astype(np.int64)
    q[zero] = 0
    return q, scale, np.zeros(b, np.int64)


def asymmetric_quantize_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LiteRT ``tensor_utils::AsymmetricQuantizeFloats`` per row (``NeonAsymmetricQuantizeFloats`` on x86).

    ``rmin = min(0, min)``, ``rmax = max(0, max)``; ``scale = f64(f32(rmax - rmin)) / 255`` (double);
    the zero point is the double ``-128 - rmin/scale`` or ``127 - rmax/scale`` (whichever has the smaller
    error term), clamped or C-rounded to an int8; the stored scale is ``f32(scale)`` and
    ``inv = f32(1.0 / f64(f32 scale))``. Vector columns: ``_round_half_up_trunc(f32(x*inv)) + zp``; tail
    columns: ``int(f32(zp + roundf(f32(x*inv))))``; clamp to [-128, 127]. ``rmin == rmax`` gives zeros,
    scale 1 and zero point 0.

    ``x``: float32 [B, D]. Returns (q int64 [B, D], scale float32 [B], zero point int64 [B]).
    """
    b, d = x.shape
    if d == 0:
        return np.zeros((b, 0), np.int64), np.ones(b, np.float32), np.zeros(b, np.int64)
    rmin = np.minimum(np.float32(0), x.min(axis=1)).astype(np.float32)
    rmax = np.maximum(np.float32(0), x.max(axis=1)).astype(np.float32)
    flat = rmin == rmax
    sd = (rmax - rmin).astype(np.float32).astype(np.float64) / 255.0
    sd_safe = np.where(flat, 1.0, sd)
    lo_ratio = rmin.astype(np.float64) / sd_safe
    hi_ratio = rmax.astype(np.float64) / sd_safe
    zp_d = np.where(128.0 + np.abs(lo_ratio) < 127.0 + np.abs(hi_ratio), -128.0 - lo_ratio, 127.0 - hi_ratio)
    zp = np.where(zp_d <= -128.0, -128, np.where(zp_d >= 127.0, 127, round_half_away_from_zero(zp_d)))
    zp = np.where(flat, 0, zp).astype(np.int64)
    scale = np.where(flat, np.float32(1), sd.astype(np.float32)).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(scale == 0, 0.0, 1.0 / scale.astype(np.float64)).astype(np.float32)
    prod = (x * inv[:, None]).astype(np.float32)
    vec_cols = np.arange(d)[None, :] < (d & ~7)
    vec = _round_half_up_trunc(prod) + zp[:, None]
    tail = (zp[:, None].astype(np.float32) + round_half_away_from_zero(prod)).astype(np.float32)
    q = np.clip(np.nan_to_num(np.where(vec_cols, vec, tail)), -128, 127).astype(np.int64)
    q[flat] = 0
    return q, scale, zp


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
    )


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
