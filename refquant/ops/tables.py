"""Lookup-table kernels: a unary op's output read from a table built at prepare time.

LiteRT evaluates several quantized unary ops through tables (``LUTPopulate`` / ``LUTLookup`` in
``kernels/internal/common.h``; see docs/litert_semantics.md §3.13 and §6.12): the table holds the output
for every possible input value, computed in float32 with the C library's functions at prepare time, so
eval is an integer gather. Three shapes of table are used:

* :class:`Table8`: 256 entries over every int8/uint8 input value (LOGISTIC, TANH, GELU, EXP, LOG, SQRT,
  RSQRT for 8-bit);
* :class:`Table16`: 65536 entries over every int16 input value (int16 SQRT, which LiteRT computes in
  float per element: tabulating it is exact);
* :class:`InterpolatedTable16`: LiteRT's 513-entry int16 table with 7-bit linear interpolation
  (``LUTLookup(int16_t)``: int16 GELU, EXP, LOG, RSQRT).

:func:`table8` and :func:`table16` build the first and last from a float32 function of the real input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from . import lut as L
from .base import OpContext, OpData, TensorInfo
from .staging import Stage, Staged

__all__ = ["Table8", "Table16", "InterpolatedTable16", "table8", "table16"]


@dataclass(frozen=True)
class _TableBase(Staged, OpData):
    """What every table kernel holds: the table, how it was built, and the domain check."""

    #: The table (layout per subclass).
    table: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    #: How the table was built (shown by trace).
    recipe: str = ""
    #: Inputs below this value are run-time errors (SQRT/RSQRT of negative values); None: no check.
    min_valid_input: int | None = None
    #: Message prefix for run-time errors.
    _where: str = field(default="", repr=False)

    def _check_domain(self, x: np.ndarray, below: str) -> None:
        if self.min_valid_input is not None and x.size and int(x.min()) < self.min_valid_input:
            raise InputError(
                f"{self._where}: input value {int(x.min())} is below {below + ' ' if below else ''}{self.min_valid_input}: "
                "the function is only defined for non-negative values (LiteRT fails Eval)"
            )


@dataclass(frozen=True)
class Table8(_TableBase):
    """A 256-entry lookup table over every int8/uint8 input value (LiteRT ``LUTLookup`` for 8-bit).

    ``table[i]`` is the output for input value ``qmin + i``.
    """

    def _stages(self, inputs: list[np.ndarray | None]) -> list[Stage]:
        x = np.asarray(inputs[0])
        self._check_domain(x, "the input zero point")
        qmin = -128 if self.table.dtype == np.int8 else 0
        idx = x.astype(np.intp) - qmin
        return [("table index", idx, f"x - ({qmin})"), ("output", self.table[idx], self.recipe)]


@dataclass(frozen=True)
class Table16(_TableBase):
    """A 65536-entry table over every int16 input value (int16 SQRT, computed in float by LiteRT).

    ``table[i]`` is the output for input value ``i - 32768``.
    """

    def _stages(self, inputs: list[np.ndarray | None]) -> list[Stage]:
        x = np.asarray(inputs[0])
        self._check_domain(x, "the input zero point")
        idx = x.astype(np.intp) + 32768
        return [("table index", idx, "x + 32768"), ("output", self.table[idx], self.recipe)]


@dataclass(frozen=True)
class InterpolatedTable16(_TableBase):
    """int16 lookup with a 513-entry table and 7-bit linear interpolation (LiteRT ``LUTLookup(int16_t)``).

    ``table`` holds the 513 int16 entries ``LUTPopulateInt16<float>`` builds.
    """

    def _stages(self, inputs: list[np.ndarray | None]) -> list[Stage]:
        x = np.asarray(inputs[0]).astype(np.int16)
        self._check_domain(x, "")
        v = x.astype(np.int64)
        return [
            ("table index", 256 + (v >> 7), "256 + (x >> 7)"),
            ("interpolation weight", v & 0x7F, "x & 127"),
            ("output", L.lut_lookup_int16(x, self.table), self.recipe + "; base + ((slope*weight + 64) >> 7)"),
        ]


def table8(ctx: OpContext, x: TensorInfo, o: TensorInfo, fn: Any, recipe: str) -> Table8:
    """A :class:`Table8` of ``fn`` (a float32 function of the real input) for the tensors' quantization."""
    s_in, zp_in = ctx.per_tensor_quant(x)
    s_out, zp_out = ctx.per_tensor_quant(o)
    if not np.isfinite(np.float32(np.float32(1.0) / s_out)):
        raise ctx.fail_quant(f"output scale {float(s_out)!r} has no finite float32 reciprocal", o)
    table = L.lut_populate_8bit(float(s_in), zp_in, float(s_out), zp_out, L.vectorize_f32(fn), x.dtype)
    table.flags.writeable = False
    return Table8(output_shapes=(x.shape,), output_dtypes=(o.dtype,), table=table, recipe=recipe)


def table16(ctx: OpContext, x: TensorInfo, o: TensorInfo, fn: Any, recipe: str, **kw: Any) -> InterpolatedTable16:
    """An :class:`InterpolatedTable16` of ``fn`` (a float32 function of the real input); ``kw``: more fields."""
    s_in, zp_in = ctx.per_tensor_quant(x)
    s_out, zp_out = ctx.per_tensor_quant(o)
    table = L.lut_populate_int16(float(s_in), zp_in, float(s_out), zp_out, L.vectorize_f32(fn))
    table.flags.writeable = False
    return InterpolatedTable16(output_shapes=(x.shape,), output_dtypes=(o.dtype,), table=table, recipe=recipe, **kw)
