"""L2_NORMALIZATION (LiteRT ``l2norm.cc``, ``Register_L2NORM_REF``): ``x / ||x||`` along the last axis.

Prepare (LiteRT): one input of rank >= 1, input type == output type in {float32, uint8, int8}, no
fused activation, and for the quantized types an output scale of exactly 1/128 with zero point 128
(uint8) or 0 (int8). The input's scale is never read: the output does not depend on it.

float32 (``reference_ops::L2Normalization``), per row of the last axis, in float32 one operation at a
time::

    s = 0; s += x_c * x_c (c = 0..depth-1);  n = max(sqrtf(s), 1e-6f);  y_c = x_c / n

quantized, with ``d_c = q_c - zp_in`` and the int32 (wrapping) sum ``S = sum d_c^2``,
``(M, shift) = GetInvSqrtQuantizedMultiplierExp(S, kReverseShift)`` (gemmlowp's fixed-point 1/sqrt; S
<= 1 gives ``(INT32_MAX, 0)``):

* uint8 (``reference_ops::L2Normalization``): ``clamp(128 + MBQM_SmallerThanOneExp(128 * d_c, M, shift), 0, 255)``
* int8 (``reference_integer_ops::L2Normalization``): ``clamp(MBQM(d_c, M, shift + 7), -128, 127)``

So the quantized output is ``d_c / sqrt(S)`` in units of 1/128 (int8 saturates +1.0 at 127/128).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UnsupportedOpError
from ..fixedpoint import inv_sqrt_quantized_multiplier_exp, wrap_int32_i64
from ..requantize import multiply_by_quantized_multiplier, multiply_by_quantized_multiplier_smaller_than_one_exp
from .base import OpContext, OpData, Step
from .movement import legacy_params

__all__ = ["L2NormData", "prepare_l2_normalization"]

F32 = np.float32
_EPSILON = F32(1e-6)


@dataclass(frozen=True)
class L2NormData(OpData):
    """L2_NORMALIZATION over the last axis (float32, uint8 or int8; see the module docstring)."""

    #: Input zero point (``input->params.zero_point``; 0 for float and unquantized tensors).
    input_offset: int = 0
    #: MultiplyByQuantizedMultiplier rounding variant.
    rounding: str = "double"

    def _rows(self, x: np.ndarray) -> np.ndarray:
        depth = x.shape[-1] if x.ndim else 1
        return x.reshape(-1, depth)

    def _float(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = np.zeros(rows.shape[0], F32)
        with np.errstate(all="ignore"):
            for c in range(rows.shape[1]):  # the C++ loop order: one float32 square and add per element
                col = rows[:, c]
                s = (s + (col * col).astype(F32)).astype(F32)
            norm = np.sqrt(s)
            norm = np.where(norm < _EPSILON, _EPSILON, norm).astype(F32)  # std::max(norm, eps): NaN stays
            out = (rows / norm[:, None]).astype(F32)
        return norm, out

    def _quant(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        d = rows.astype(np.int64) - self.input_offset
        acc = wrap_int32_i64((d * d).sum(axis=1))  # int32 accumulation (wraps only past ~33000 elements per row)
        m, shift = inv_sqrt_quantized_multiplier_exp(acc)
        if self.output_dtypes[0] == "uint8":
            scaled = multiply_by_quantized_multiplier_smaller_than_one_exp(
                128 * d,
                m[:, None],
                shift[:, None],
                self.rounding,
            ).astype(np.int64)
            out = np.clip(128 + scaled, 0, 255).astype(np.uint8)
        else:
            scaled = multiply_by_quantized_multiplier(d, m[:, None], shift[:, None] + 7, self.rounding).astype(np.int64)
            out = np.clip(scaled, -128, 127).astype(np.int8)
        return {"diff": d, "sum_of_squares": acc, "multiplier": m, "shift": shift, "scaled": scaled, "output": out}

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """The normalized rows."""
        x = np.asarray(inputs[0])
        shape = self.output_shapes[0]
        if x.size == 0:
            return [np.zeros(shape, x.dtype)]
        rows = self._rows(x)
        if x.dtype == np.float32:
            return [self._float(rows)[1].reshape(shape)]
        return [self._quant(rows)["output"].reshape(shape)]

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """One element: its row, the sum of squares, the (fixed-point) inverse norm and the result."""
        x = np.asarray(inputs[0])
        lead = tuple(element[:-1])
        c = int(element[-1]) if element else 0
        row = x[lead].reshape(1, -1) if x.ndim else x.reshape(1, 1)
        if x.dtype == np.float32:
            norm, out = self._float(row)
            return [
                Step("row", [float(v) for v in row[0]], f"the {row.shape[1]} values of the last axis"),
                Step("norm", float(norm[0]), "max(sqrtf(sum of float32 squares, in order), 1e-6f)"),
                Step("output", float(out[0, c]), "x / norm (float32)"),
            ]
        q = self._quant(row)
        first = (
            "MBQM_SmallerThanOneExp(128 * diff, M, shift), + 128, clamp to [0, 255]"
            if self.output_dtypes[0] == "uint8"
            else "MBQM(diff, M, shift + 7), clamp to [-128, 127]"
        )
        return [
            Step("diff", int(q["diff"][0, c]), f"x - {self.input_offset}"),
            Step("sum_of_squares", int(q["sum_of_squares"][0]), "int32 sum of (x - zp)^2 over the row"),
            Step("multiplier", int(q["multiplier"][0]), "GetInvSqrtQuantizedMultiplierExp: 1/sqrt(sum) as M * 2^shift"),
            Step("shift", int(q["shift"][0]), "its exponent (kReverseShift applied)"),
            Step("output", int(q["output"][0, c]), first),
        ]


def prepare_l2_normalization(ctx: OpContext) -> OpData:
    """L2_NORMALIZATION (LiteRT ``Register_L2NORM_REF``): float32, uint8, int8 (checks in the module docstring)."""
    ctx.check_counts(1, 1)
    x, o = ctx.input(0), ctx.output(0)
    if len(x.shape) < 1:
        raise ctx.error("input must have rank >= 1", x)
    ctx.check_dtype(o, ("float32", "uint8", "int8"), "output")
    if x.dtype != o.dtype:
        raise ctx.error(f"input type {x.dtype} differs from the output type {o.dtype}", x, UnsupportedOpError)
    if o.dtype != "float32":
        s, zp = legacy_params(o)
        want = 128 if o.dtype == "uint8" else 0
        if F32(s) != F32(1.0 / 128.0) or zp != want:
            raise ctx.fail_quant(
                f"output (scale {s!r}, zero point {zp}); LiteRT requires scale 1/128 and zero point {want}", o
            )
    act = ctx.option("fused_activation_function", "NONE")
    if act not in ("NONE", 0, None):
        raise ctx.unsupported(f"fused activation {act} (LiteRT's L2_NORMALIZATION accepts only NONE)")
    return L2NormData(
        (x.shape,),
        (o.dtype,),
        input_offset=legacy_params(x)[1] if x.dtype != "float32" else 0,
        rounding=ctx.rounding,
    )
