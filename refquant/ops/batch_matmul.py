"""BATCH_MATMUL: LiteRT's reference batched matrix multiply (``batch_matmul.cc``, ``reference/batch_matmul.h``).

docs/litert_semantics.md §3.4::

    lhs' = adj_x ? swap_last_two(lhs) : lhs          # [..., M, K]
    rhs' = adj_y ? swap_last_two(rhs) : rhs          # [..., K, N]
    acc[..., i, j] = sum_k (lhs'[..., i, k] - zp_l) * (rhs'[..., k, j] - zp_r)   # batch dims broadcast
    out = clamp(MBQM(acc, M, shift) + zp_out, type range)                         # no fused activation

* int8 x int8 -> int8: int32 accumulator (wraps), int32 MultiplyByQuantizedMultiplier (the ``rounding``
  option applies), ``(M, shift) = QuantizeMultiplier(f64(f32(s_l * s_r)) / f64(s_out))``.
* int8 x int8 -> int32: the raw wrapped int32 sum of ``lhs * rhs``, zero points not subtracted.
* int16 x int16 / int16 x int8 -> int16: int64 accumulator and MBQM64; every zero point must be 0.
* float32: float32 sum in ``k`` order (product, then add), no bias, no activation
  (``float_accumulation="sequential"``); by default the sums run in float64 and are rounded once.

Batch dimensions (operand ranks 2..5) broadcast NumPy-style. The kernel reads the legacy per-tensor
``params.scale`` / ``params.zero_point``, which are 0 for per-channel tensors; refquant rejects
per-channel operands instead of reproducing the constant zp_out output that results.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fixedpoint import wrap_int32_i64
from ..quantization import dtype_range, quantize_multiplier
from ..requantize import multiply_by_quantized_multiplier, multiply_by_quantized_multiplier_int64
from .base import OpContext, OpData, Step
from .matmul import FLOAT_SUM_STEPS, exact_matmul, float64_matmul_is_exact, float_matmul

__all__ = ["BatchMatMulData", "prepare_batch_matmul"]


@dataclass(frozen=True)
class BatchMatMulData(OpData):
    """Prepared BATCH_MATMUL (LiteRT ``reference_ops::BatchMatMul`` via ``Register_BATCH_MATMUL_REF``)."""

    #: "int8" (-> int8), "int8_int32" (raw int32 sums), "int16" (int16 x int16/int8 -> int16) or "float32".
    kind: str = "int8"
    #: Transpose the last two dims of the LHS / RHS first.
    adj_x: bool = False
    adj_y: bool = False
    #: -zp_l and -zp_r (per-tensor zero points; 0 for int16 and for the raw int32 output).
    lhs_offset: int = 0
    rhs_offset: int = 0
    #: zp_out, added after requantization.
    output_offset: int = 0
    #: QuantizeMultiplier(f64(f32(s_l * s_r)) / f64(s_out)): Q0.31 mantissa and exponent.
    multiplier: int = 0
    shift: int = 0
    #: Output clamp: the full output type range (BATCH_MATMUL has no fused activation).
    act_min: int = -128
    act_max: int = 127
    #: Whether the float64 BLAS product is provably exact (else int64 matmul).
    float64_exact: bool = True
    #: MBQM rounding variant for the int8 path ("double" or "single").
    rounding: str = "double"
    #: float32 sums: ``"float64"`` or ``"sequential"`` (:func:`refquant.ops.fully_connected.float_matmul`).
    accumulation: str = "float64"

    def _operands(self, inputs: list[np.ndarray | None]) -> tuple[np.ndarray, np.ndarray]:
        lhs, rhs = np.asarray(inputs[0]), np.asarray(inputs[1])
        if self.adj_x:
            lhs = np.swapaxes(lhs, -1, -2)
        if self.adj_y:
            rhs = np.swapaxes(rhs, -1, -2)
        return lhs, rhs

    def accumulators(self, inputs: list[np.ndarray | None]) -> dict[str, np.ndarray]:
        """``{"acc": [..., M, N]}``: int32 (int8), int64 (int16) or float32 sums before requantization."""
        lhs, rhs = self._operands(inputs)
        if self.kind == "float32":
            return {"acc": float_matmul(lhs, rhs, self.accumulation)}
        a = lhs.astype(np.int64) + self.lhs_offset
        b = rhs.astype(np.int64) + self.rhs_offset
        acc = exact_matmul(a, b, self.float64_exact)
        if self.kind == "int16":
            return {"acc": acc}
        return {"acc": wrap_int32_i64(acc).astype(np.int32)}

    def _requantize(self, acc: np.ndarray) -> np.ndarray:
        if self.kind == "int16":
            v = multiply_by_quantized_multiplier_int64(acc, self.multiplier, self.shift).astype(np.int64)
        else:
            v = multiply_by_quantized_multiplier(acc, self.multiplier, self.shift, self.rounding).astype(np.int64)
        return np.clip(wrap_int32_i64(v + self.output_offset), self.act_min, self.act_max)

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """Batched integer (or float32) matrix product, then requantization for int8/int16 outputs."""
        acc = self.accumulators(inputs)["acc"]
        out_dtype = np.dtype(self.output_dtypes[0])
        if self.kind in ("float32", "int8_int32"):
            return [acc.astype(out_dtype).reshape(self.output_shapes[0])]
        return [self._requantize(acc).astype(out_dtype).reshape(self.output_shapes[0])]

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """Steps for one output element: LHS row, RHS column, offsets, acc, MBQM, zp, clamp."""
        shape = self.output_shapes[0]
        if len(element) != len(shape) or any(not 0 <= e < s for e, s in zip(element, shape)):
            raise IndexError(f"element {list(element)} is outside the output shape {list(shape)}")
        lhs, rhs = self._operands(inputs)
        i, j = element[-2], element[-1]
        batch = element[:-2]
        lrow = lhs[_batch_index(lhs.shape[:-2], batch) + (i, slice(None))]
        rcol = rhs[_batch_index(rhs.shape[:-2], batch) + (slice(None), j)]
        out_dtype = np.dtype(self.output_dtypes[0])
        where = f"batch {list(batch)}" if batch else "the matrix"
        steps = [
            Step("lhs_row", lrow.copy(), f"row {i} of the LHS{' (adj_x)' if self.adj_x else ''} in {where}"),
            Step("rhs_col", rcol.copy(), f"column {j} of the RHS{' (adj_y)' if self.adj_y else ''} in {where}"),
        ]
        if self.kind == "float32":
            acc = float_matmul(lrow[None, :], rcol[:, None], self.accumulation)[0, 0]
            steps.append(Step("value", out_dtype.type(acc), FLOAT_SUM_STEPS[self.accumulation]))
            return steps
        steps += [
            Step("lhs_offset", self.lhs_offset, "-zp_lhs"),
            Step("rhs_offset", self.rhs_offset, "-zp_rhs"),
        ]
        dot = int(np.dot(lrow.astype(np.int64) + self.lhs_offset, rcol.astype(np.int64) + self.rhs_offset))
        if self.kind == "int16":
            steps.append(Step("acc", dot, "int64 sum_k (lhs + lhs_offset) * (rhs + rhs_offset)"))
            v = int(multiply_by_quantized_multiplier_int64(np.int64(dot), self.multiplier, self.shift))
            steps.append(
                Step("mbqm64", v, f"MultiplyByQuantizedMultiplier(int64, M={self.multiplier}, shift={self.shift})")
            )
        else:
            acc = int(wrap_int32_i64(np.int64(dot)))
            steps.append(Step("acc", acc, "int32 sum_k (lhs + lhs_offset) * (rhs + rhs_offset), wraps"))
            if self.kind == "int8_int32":
                steps.append(Step("value", out_dtype.type(acc), "raw int32 accumulator"))
                return steps
            v = int(multiply_by_quantized_multiplier(np.int32(acc), self.multiplier, self.shift, self.rounding))
            steps.append(
                Step(
                    "mbqm",
                    v,
                    f"MultiplyByQuantizedMultiplier(M={self.multiplier}, shift={self.shift}, {self.rounding} rounding)",
                )
            )
        z = int(wrap_int32_i64(np.int64(v + self.output_offset)))
        steps.append(Step("plus_zp", z, f"+ zp_out {self.output_offset}"))
        final = min(max(z, self.act_min), self.act_max)
        steps.append(Step("value", out_dtype.type(final), f"clamp to [{self.act_min}, {self.act_max}]"))
        return steps


def _batch_index(operand_batch: tuple[int, ...], out_batch: tuple[int, ...]) -> tuple[int, ...]:
    """Index into an operand's (right-aligned, broadcast) batch dims for an output batch index."""
    tail = out_batch[len(out_batch) - len(operand_batch) :] if operand_batch else ()
    return tuple(0 if d == 1 else e for d, e in zip(operand_batch, tail))


def prepare_batch_matmul(ctx: OpContext) -> OpData:
    """Prepare BATCH_MATMUL as LiteRT's ``Register_BATCH_MATMUL_REF`` does (batch_matmul.cc Prepare).

    Checks counts, types (float32, int8, int16, int16 x int8; hybrid float x int8 is not implemented),
    ranks 2..5, batch broadcasting, matching depths, int16 zero points; computes the output shape and
    the multiplier.
    """
    ctx.check_counts(2, 1)
    lhs, rhs, out = ctx.input(0), ctx.input(1), ctx.output(0)
    adj_x = bool(ctx.option("adj_x", False))
    adj_y = bool(ctx.option("adj_y", False))
    ctx.check_dtype(lhs, ("float32", "int8", "int16"), "LHS")
    ctx.check_dtype(rhs, ("float32", "int8", "int16"), "RHS")
    if lhs.dtype == "float32" and rhs.dtype == "int8":
        raise ctx.unsupported(
            "hybrid BATCH_MATMUL (float32 LHS, int8 RHS): LiteRT quantizes the LHS on the fly through its "
            "SSE/NEON tensor_utils, which refquant does not reproduce"
        )
    if not (lhs.dtype == rhs.dtype or (lhs.dtype == "int16" and rhs.dtype == "int8")):
        raise ctx.error(f"LHS {lhs.dtype} and RHS {rhs.dtype}: expected equal types or int16 x int8")
    for t, role in ((lhs, "LHS"), (rhs, "RHS")):
        if not 2 <= len(t.shape) <= 5:
            raise ctx.error(f"{role} has rank {len(t.shape)}; BATCH_MATMUL supports ranks 2 to 5", t)
    rank = max(len(lhs.shape), len(rhs.shape))
    ls = (1,) * (rank - len(lhs.shape)) + lhs.shape
    rs = (1,) * (rank - len(rhs.shape)) + rhs.shape
    batch = []
    for a, b in zip(ls[:-2], rs[:-2]):
        if a != b and a != 1 and b != 1:
            raise ctx.error(f"batch dimensions of {list(lhs.shape)} and {list(rhs.shape)} do not broadcast")
        batch.append(b if a == 1 else a)
    k_l = ls[-2] if adj_x else ls[-1]
    k_r = rs[-1] if adj_y else rs[-2]
    if k_l != k_r:
        raise ctx.error(f"LHS depth {k_l} != RHS depth {k_r} (adj_x={adj_x}, adj_y={adj_y})")
    rows = ls[-1] if adj_x else ls[-2]
    cols = rs[-2] if adj_y else rs[-1]
    out_shape = tuple(batch) + (rows, cols)
    common = dict(output_shapes=(out_shape,), output_dtypes=(out.dtype,), adj_x=adj_x, adj_y=adj_y)

    if lhs.dtype == "float32":
        ctx.check_dtype(out, ("float32",), "output")
        return BatchMatMulData(kind="float32", accumulation=ctx.float_accumulation, **common)  # type: ignore[arg-type]

    if lhs.dtype == "int8":
        ctx.check_dtype(out, ("int8", "int32"), "output")
        if out.dtype == "int32":
            return BatchMatMulData(  # type: ignore[arg-type]
                kind="int8_int32", float64_exact=float64_matmul_is_exact(128, 128, k_l), **common
            )
    else:
        ctx.check_dtype(out, ("int16",), "output")
    ql, qr, qo = ctx.require_quant(lhs), ctx.require_quant(rhs), ctx.require_quant(out)
    for t, q in ((lhs, ql), (rhs, qr), (out, qo)):
        if q.scale.size != 1:
            # The kernel reads the legacy params.scale / zero_point, which LiteRT leaves at 0 for per-channel
            # tensors (subgraph.cc GetLegacyQuantization): the multiplier would be 0 and every output zp_out.
            raise ctx.fail_quant(
                f"per-channel quantization ({q.scale.size} scales) is not supported by BATCH_MATMUL; LiteRT "
                "would use scale 0 and write zp_out to every output",
                t,
            )
    if lhs.dtype == "int16":
        for t, q in ((lhs, ql), (rhs, qr), (out, qo)):
            if int(q.zero_point[0]) != 0:
                raise ctx.fail_quant(f"zero point {int(q.zero_point[0])}; int16 BATCH_MATMUL needs 0", t)
    # kernel_util.cc GetQuantizedConvolutionMultipler: the scale product is a float32 product.
    real = float(np.float32(np.float32(ql.scale[0]) * np.float32(qr.scale[0]))) / float(qo.scale[0])
    multiplier, shift = quantize_multiplier(real, ctx.rounding)  # type: ignore[arg-type]
    lo, hi = dtype_range(out.dtype)
    lhs_offset, rhs_offset = -int(ql.zero_point[0]), -int(qr.zero_point[0])
    if lhs.dtype == "int16":
        if shift > 14:
            raise ctx.fail_quant(
                f"effective multiplier {real!r} is too large for the int64 requantization "
                "(shift > 14 is undefined in LiteRT's MultiplyByQuantizedMultiplier(int64))"
            )
        exact = float64_matmul_is_exact(2**15, 2**15, k_l)
    else:
        exact = float64_matmul_is_exact(255, 255, k_l)
    return BatchMatMulData(  # type: ignore[arg-type]
        kind="int16" if lhs.dtype == "int16" else "int8",
        lhs_offset=lhs_offset,
        rhs_offset=rhs_offset,
        output_offset=int(qo.zero_point[0]),
        multiplier=multiplier,
        shift=shift,
        act_min=lo,
        act_max=hi,
        float64_exact=exact,
        rounding=ctx.rounding,
        **common,
    )
