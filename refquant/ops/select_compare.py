"""SELECT, SELECT_V2 and the comparisons (EQUAL ... GREATER_EQUAL): LiteRT's ``select.cc`` and ``comparisons.cc``.

SELECT/SELECT_V2 copy raw values of ``x`` or ``y`` by a bool condition (quantization passes through,
never compared). SELECT broadcasts only a scalar or a rank-1 condition over the outer dimension;
SELECT_V2 broadcasts all three inputs NumPy-style (up to 8 dims).

The comparisons produce bool. Float, int32, int64 (and bool for EQUAL/NOT_EQUAL) compare the raw
values. int8 and uint8 always, and int16 for EQUAL/NOT_EQUAL when quantized, compare *rescaled*
values (reference_ops::ComparisonWithScaling)::

    (M_i, shift_i) = QuantizeMultiplierSmallerThanOneExp(f64(scale_i))
    v_i = MultiplyByQuantizedMultiplierSmallerThanOneExp((q_i - zp_i) * 2^8, M_i, shift_i)
    out = v_1 OP v_2

which requires ``0 < scale < 1`` (LiteRT aborts for a zero scale; a scale >= 1 leads to an undefined
negative shift), so refquant rejects other scales. LESS/GREATER... on int16 compare raw values even
when quantized, as LiteRT does; NOT_EQUAL on *unquantized* int16 is rejected (LiteRT's kernel skips it
and leaves the output uninitialized).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import QuantParamError
from ..quantization import quantize_multiplier_smaller_than_one_exp
from ..requantize import multiply_by_quantized_multiplier_smaller_than_one_exp
from .base import OpContext, OpData, Step, broadcast_shape
from .movement import MovementData, legacy_params, require_output_dtype

__all__ = ["SelectData", "ComparisonData", "prepare_select", "prepare_select_v2", "prepare_comparison"]

_SELECT_TYPES = ("int8", "uint8", "int16", "int32", "int64", "float32", "bool")


# ---------------------------------------------------------------------------------------------
# SELECT, SELECT_V2


@dataclass(frozen=True)
class SelectData(MovementData):
    """SELECT / SELECT_V2 (reference_ops::Select, RankOneSelect, BroadcastSelect5DSlow): ``where(c, x, y)``."""

    #: Shape the condition is viewed as before broadcasting (a rank-1 SELECT condition spans dim 0).
    cond_shape: tuple[int, ...] = ()

    def moved_inputs(self, inputs: list[np.ndarray | None]) -> tuple[int, ...]:
        """``x`` and ``y`` are copied."""
        return (1, 2)

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """Elements of ``x`` where the condition holds, else of ``y``."""
        c, x, y = inputs
        assert c is not None and x is not None and y is not None
        out_shape = self.output_shapes[0]
        cond = np.asarray(c).reshape(self.cond_shape)
        return [np.where(cond, np.asarray(x), np.asarray(y)).reshape(out_shape)]


def _select_common(ctx: OpContext) -> tuple:
    ctx.check_counts(3, 1)
    c, x, y = ctx.input(0), ctx.input(1), ctx.input(2)
    out = ctx.output(0)
    ctx.check_dtype(c, ("bool",), "condition")
    ctx.check_dtype(x, _SELECT_TYPES, "x")
    if y.dtype != x.dtype:
        raise ctx.error(f"x type {x.dtype} and y type {y.dtype} differ", y)
    require_output_dtype(ctx, out, x.dtype)
    return c, x, y, out


def prepare_select(ctx: OpContext) -> SelectData:
    """SELECT (LiteRT ``select.cc`` v1): equal shapes, or a scalar / rank-1 (length dim 0) condition."""
    c, x, y, out = _select_common(ctx)
    if c.size == x.size == y.size == 1 and out.size == 1:
        return SelectData((out.shape,), (out.dtype,), cond_shape=c.shape)
    if c.shape == x.shape == y.shape:
        return SelectData((x.shape,), (out.dtype,), cond_shape=c.shape)
    if x.shape != y.shape:
        raise ctx.error(f"x {list(x.shape)} and y {list(y.shape)} must have one shape", y)
    if len(c.shape) == 0:
        return SelectData((x.shape,), (out.dtype,), cond_shape=(1,) * len(x.shape))
    if len(c.shape) == 1 and x.shape and c.shape[0] == x.shape[0]:
        return SelectData((x.shape,), (out.dtype,), cond_shape=(c.shape[0],) + (1,) * (len(x.shape) - 1))
    raise ctx.error(f"condition {list(c.shape)} must be a scalar or match dimension 0 of {list(x.shape)}", c)


def prepare_select_v2(ctx: OpContext) -> SelectData:
    """SELECT_V2 (LiteRT ``select.cc`` v2): NumPy broadcasting of condition, x and y (at most 8 dims)."""
    c, x, y, out = _select_common(ctx)
    if c.size == x.size == y.size == 1 and out.size == 1:
        return SelectData((out.shape,), (out.dtype,), cond_shape=c.shape)
    if c.shape == x.shape == y.shape:
        return SelectData((x.shape,), (out.dtype,), cond_shape=c.shape)
    shape = broadcast_shape(ctx, c.shape, x.shape, y.shape, max_rank=8)
    return SelectData((shape,), (out.dtype,), cond_shape=c.shape)


# ---------------------------------------------------------------------------------------------
# Comparisons

_OPS = {
    "EQUAL": np.equal,
    "NOT_EQUAL": np.not_equal,
    "LESS": np.less,
    "LESS_EQUAL": np.less_equal,
    "GREATER": np.greater,
    "GREATER_EQUAL": np.greater_equal,
}
_SYMBOL = {"EQUAL": "==", "NOT_EQUAL": "!=", "LESS": "<", "LESS_EQUAL": "<=", "GREATER": ">", "GREATER_EQUAL": ">="}


@dataclass(frozen=True)
class ComparisonData(OpData):
    """EQUAL / NOT_EQUAL / LESS / LESS_EQUAL / GREATER / GREATER_EQUAL (reference_ops::Comparison*).

    ``scaling`` is None for a raw comparison, else ``((zp1, M1, shift1), (zp2, M2, shift2))`` of the
    rescaled comparison (module docstring).
    """

    #: Operator name (EQUAL, LESS, ...).
    opcode: str = "EQUAL"
    #: Per-input (zero point, multiplier, shift) for the quantized comparison, or None.
    scaling: tuple[tuple[int, int, int], tuple[int, int, int]] | None = None
    #: Rounding variant of MultiplyByQuantizedMultiplierSmallerThanOneExp.
    rounding: str = "double"

    def _scaled(self, q: np.ndarray, k: int) -> np.ndarray:
        assert self.scaling is not None
        zp, m, shift = self.scaling[k]
        return multiply_by_quantized_multiplier_smaller_than_one_exp(
            (q.astype(np.int64) - zp) * 256, m, shift, self.rounding
        )

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """The bool comparison, broadcast."""
        a, b = inputs
        assert a is not None and b is not None
        if self.scaling is not None:
            a, b = self._scaled(np.asarray(a), 0), self._scaled(np.asarray(b), 1)
        return [np.asarray(_OPS[self.opcode](a, b)).reshape(self.output_shapes[0])]

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """The two operands (rescaled when quantized) and the comparison."""
        a, b = (np.broadcast_to(np.asarray(v), self.output_shapes[0])[tuple(element)] for v in inputs)  # type: ignore[arg-type]
        steps = [Step("x", a.item(), "first operand"), Step("y", b.item(), "second operand")]
        if self.scaling is not None:
            sa, sb = int(self._scaled(np.asarray(a), 0)), int(self._scaled(np.asarray(b), 1))
            for name, v, (zp, m, s) in (("x", sa, self.scaling[0]), ("y", sb, self.scaling[1])):
                steps.append(
                    Step(f"scaled {name}", v, f"MBQM_SmallerThanOneExp(({name} - {zp}) * 256, M={m}, shift={s})")
                )
            a, b = sa, sb
        out = bool(_OPS[self.opcode](a, b))
        return steps + [Step("output", out, f"{_SYMBOL[self.opcode]} on the compared values")]


def prepare_comparison(ctx: OpContext) -> ComparisonData:
    """EQUAL, NOT_EQUAL, LESS, LESS_EQUAL, GREATER, GREATER_EQUAL (LiteRT ``comparisons.cc``).

    Types: float32, int32, int64, int8, uint8, int16 (and bool for EQUAL/NOT_EQUAL); both inputs of one
    type; NumPy broadcasting up to 6 dims; a bool output.
    """
    ctx.check_counts(2, 1)
    a, b = ctx.input(0), ctx.input(1)
    out = ctx.output(0)
    opcode = ctx.op.opcode
    types = ["float32", "int32", "int64", "int8", "uint8", "int16"]
    if opcode in ("EQUAL", "NOT_EQUAL"):
        types.append("bool")
    ctx.check_dtype(a, types, "input")
    if b.dtype != a.dtype:
        raise ctx.error(f"input types {a.dtype} and {b.dtype} differ", b)
    require_output_dtype(ctx, out, "bool")
    if opcode == "NOT_EQUAL" and a.dtype == "int16" and not a.is_quantized:
        raise ctx.unsupported("NOT_EQUAL on unquantized int16 (LiteRT's kernel writes nothing: the output is garbage)")
    shape = a.shape if a.shape == b.shape else broadcast_shape(ctx, a.shape, b.shape)
    scaled = a.dtype in ("int8", "uint8") or (
        a.dtype == "int16" and opcode in ("EQUAL", "NOT_EQUAL") and a.is_quantized
    )
    scaling = None
    if scaled:
        params = []
        for t in (a, b):
            s, zp = legacy_params(t)
            if not 0.0 < s < 1.0:
                raise ctx.fail_quant(
                    f"scale {s!r}: the quantized comparison needs 0 < scale < 1 (LiteRT aborts on 0 and shifts by "
                    "a negative amount for scales >= 1)",
                    t,
                )
            try:
                m, shift = quantize_multiplier_smaller_than_one_exp(s, ctx.rounding)
            except QuantParamError as exc:  # LiteRT CHECK-aborts here
                raise ctx.fail_quant(str(exc), t) from exc
            params.append((zp, m, shift))
        scaling = (params[0], params[1])
    return ComparisonData((shape,), ("bool",), opcode=opcode, scaling=scaling, rounding=ctx.rounding)
