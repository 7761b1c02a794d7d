"""LOGICAL_AND, LOGICAL_OR (LiteRT ``logical.cc``) and LOGICAL_NOT (``elementwise.cc``): bool only.

AND/OR take two bool tensors of any shapes that broadcast NumPy-style (up to 8 dims, like every
``BroadcastBinaryOpSimple`` kernel) and write ``x && y`` / ``x || y``; NOT takes one bool tensor.
REDUCE_ANY and REDUCE_ALL live with the other reductions in :mod:`refquant.ops.reduce`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import OpContext, OpData
from .movement import require_output_dtype
from .staging import Stage, Staged, binary_prepare

__all__ = ["LogicalData", "prepare_logical_and", "prepare_logical_or", "prepare_logical_not"]


@dataclass(frozen=True)
class LogicalData(Staged, OpData):
    """LOGICAL_AND / LOGICAL_OR (``reference_ops::BinaryFunction`` / ``BroadcastBinaryFunction4DSlow``) or NOT."""

    #: "and", "or" or "not".
    kind: str = "and"

    def _stages(self, inputs: list[np.ndarray | None]) -> list[Stage]:
        x = np.asarray(inputs[0]).astype(bool)
        if self.kind == "not":
            return [("output", ~x, "!x")]
        y = np.asarray(inputs[1]).astype(bool)
        if self.kind == "and":
            return [("output", x & y, "x && y")]
        return [("output", x | y, "x || y")]


def _prepare_binary(ctx: OpContext, kind: str) -> LogicalData:
    a, b, o, shape = binary_prepare(ctx)
    ctx.check_dtype(a, ("bool",), "input")
    require_output_dtype(ctx, o, "bool")
    return LogicalData((shape,), ("bool",), kind=kind)


def prepare_logical_and(ctx: OpContext) -> OpData:
    """LOGICAL_AND (LiteRT ``Register_LOGICAL_AND``): two bool inputs, broadcast."""
    return _prepare_binary(ctx, "and")


def prepare_logical_or(ctx: OpContext) -> OpData:
    """LOGICAL_OR (LiteRT ``Register_LOGICAL_OR``): two bool inputs, broadcast."""
    return _prepare_binary(ctx, "or")


def prepare_logical_not(ctx: OpContext) -> OpData:
    """LOGICAL_NOT (LiteRT ``Register_LOGICAL_NOT``, elementwise.cc): one bool input."""
    ctx.check_counts(1, 1)
    x = ctx.input(0)
    ctx.check_dtype(x, ("bool",), "input")
    require_output_dtype(ctx, ctx.output(0), "bool")
    return LogicalData((x.shape,), ("bool",), kind="not")
