"""ARG_MAX and ARG_MIN (LiteRT ``arg_min_max.cc``; docs/litert_semantics.md §3.18).

ARG_MAX / ARG_MIN (``optimized_ops::ArgMinMax``; there is no separate reference registration):
index of the first maximum/minimum along the axis; float NaNs never win and an all-NaN slice gives 0
(LiteRT's NaN-aware comparators). One x86 quirk is reproduced: for float32 along the innermost axis
with 4 or more elements, LiteRT's SSE4.1 build runs the NEON kernel through NEON_2_SSE, whose
``vpmax_f32``/``vpmin_f32`` keep the first operand when a NaN is involved, so a lane that saw only
NaNs can hide the other lanes (``[1, 2, nan, 3]`` gives 1; ``[nan, 1, 2, 3]`` gives 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .base import OpContext, OpData, Step

__all__ = ["prepare_arg_max", "prepare_arg_min", "ArgMinMaxData"]


def _first_extreme_nan_aware(v: np.ndarray, is_max: bool) -> tuple[np.ndarray, np.ndarray]:
    """Closed form of the NaN-aware scan ``!isnan(c) && (isnan(cur) || c > cur)`` along the last axis.

    Starting from element 0, the scan ends at the first occurrence of the extreme among the non-NaN
    values (equal values, e.g. +0/-0, never replace); an all-NaN slice keeps element 0. Returns
    ``(value, index)``.
    """
    nan = np.isnan(v)
    clean = np.where(nan, np.float32(-np.inf if is_max else np.inf), v)
    ext = clean.max(axis=-1, keepdims=True) if is_max else clean.min(axis=-1, keepdims=True)
    hit = (clean == ext) & ~nan
    idx = np.where(hit.any(axis=-1), np.argmax(hit, axis=-1), 0)
    val = np.take_along_axis(v, idx[..., None], axis=-1)[..., 0]
    return val, idx


def _arg_float_last_axis(rows: np.ndarray, is_max: bool) -> np.ndarray:
    """``optimized_ops::ArgMaxVector<float>`` / ``ArgMinVector<float>`` as built for x86 (NEON_2_SSE).

    With SSE4.1 LiteRT defines USE_NEON and runs the NEON code through NEON_2_SSE.h. For a row of
    ``size >= 4``: four lanes keep a NaN-aware running extreme over ``rows[:, l::4]`` for the first
    ``4 * (size // 4)`` elements; the lanes are combined with two ``vpmax_f32`` / ``vpmin_f32``
    pairwise steps, which NEON_2_SSE implements as ``(a < b) ? b : a`` / ``(a > b) ? b : a`` (so a
    NaN in the first operand wins); the index is the smallest lane index whose value equals the
    combined value; the last ``size % 4`` elements continue the NaN-aware scalar scan; a NaN result
    gives index 0. Rows shorter than 4 use the scalar NaN-aware scan only.
    """
    r, size = rows.shape
    if size < 4:
        return _first_extreme_nan_aware(rows, is_max)[1]
    nch = size // 4
    lanes = rows[:, : 4 * nch].reshape(r, nch, 4).transpose(0, 2, 1)  # (r, lane, chunk)
    lane_val, lane_chunk = _first_extreme_nan_aware(lanes, is_max)
    lane_idx = lane_chunk * 4 + np.arange(4)[None, :]

    def pair(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.where(a < b, b, a) if is_max else np.where(a > b, b, a)

    with np.errstate(invalid="ignore"):
        cur_v = pair(pair(lane_val[:, 0], lane_val[:, 1]), pair(lane_val[:, 2], lane_val[:, 3]))
        cur_i = np.where(lane_val == cur_v[:, None], lane_idx, np.iinfo(np.int32).max).min(axis=1)
        for j in range(4 * nch, size):  # at most 3 leftover elements, NaN-aware scalar steps
            c = rows[:, j]
            better = (c > cur_v) if is_max else (c < cur_v)
            upd = ~np.isnan(c) & (np.isnan(cur_v) | better)
            cur_v = np.where(upd, c, cur_v)
            cur_i = np.where(upd, j, cur_i)
    return np.where(np.isnan(cur_v), 0, cur_i)


@dataclass(frozen=True)
class ArgMinMaxData(OpData):
    """ARG_MAX / ARG_MIN (``optimized_ops::ArgMinMax``; LiteRT has no separate reference registration)."""

    #: True for ARG_MAX.
    is_max: bool = True
    #: The normalized axis.
    axis: int = 0

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """Index of the extreme value along the axis, with LiteRT's tie and NaN behaviour."""
        x = inputs[0]
        assert x is not None
        shape = self.output_shapes[0]
        out_dt = np.dtype(self.output_dtypes[0])
        if any(d == 0 for d in shape):
            return [np.zeros(shape, out_dt)]
        v = np.moveaxis(x, self.axis, -1)
        if v.dtype == np.float32:
            if self.axis == x.ndim - 1 or all(d == 1 for d in x.shape[self.axis + 1 :]):
                # inner_size == 1: the vectorized last-axis kernel.
                idx = _arg_float_last_axis(v.reshape(-1, v.shape[-1]), self.is_max).reshape(v.shape[:-1])
            else:
                # reference_ops::ArgMinMax with the NaN-aware comparator.
                idx = _first_extreme_nan_aware(v, self.is_max)[1]
        else:
            # Integers and bool: strict comparison from element 0, so the first extreme wins.
            idx = np.argmax(v, axis=-1) if self.is_max else np.argmin(v, axis=-1)
        return [np.asarray(idx).astype(out_dt).reshape(shape)]

    def _better(self, cand: Any, cur: Any, nan_aware: bool) -> bool:
        """The kernel's replace test: ``cand > cur`` (ARG_MAX) or ``cand < cur``; NaN-aware for float32."""
        if nan_aware:
            return not math.isnan(cand) and (math.isnan(cur) or (cand > cur if self.is_max else cand < cur))
        return bool(cand > cur) if self.is_max else bool(cand < cur)

    def _scan(self, vals: list[Any], start: int, cur: Any, idx: int, nan_aware: bool) -> tuple[Any, int, list[int]]:
        """Scalar scan of ``vals[start:]`` from ``(cur, idx)``: (value, index, index after each element)."""
        running = []
        for i in range(start, len(vals)):
            if self._better(vals[i], cur, nan_aware):
                cur, idx = vals[i], i
            running.append(idx)
        return cur, idx, running

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """Steps of one output index: the values along the axis and the scan of the kernel LiteRT runs for them."""
        x = inputs[0]
        assert x is not None
        el = tuple(int(e) for e in element)
        line = x[el[: self.axis] + (slice(None),) + el[self.axis :]]
        vals = [v.item() for v in line]
        size = len(vals)
        op = "ArgMax" if self.is_max else "ArgMin"
        cmp = ">" if self.is_max else "<"
        steps = [Step("values", vals, f"the {size} values along axis {self.axis}")]
        inner_one = all(d == 1 for d in x.shape[self.axis + 1 :])
        if x.dtype == np.float32 and inner_one:
            return steps + self._trace_float_vector(vals)
        if x.dtype in (np.int8, np.uint8) and inner_one and self.is_max:
            return steps + self._trace_byte_argmax(vals)
        nan_aware = x.dtype == np.float32
        if inner_one and x.dtype in (np.int8, np.uint8):
            how = f"optimized_ops::{op}Vector<{x.dtype.name}_t> (innermost axis)"
        else:
            how = "reference_ops::ArgMinMax" + ("" if inner_one else " (the axis is not the innermost)")
        rule = f"!isnan(x) && (isnan(cur) || x {cmp} cur)" if nan_aware else f"x {cmp} cur"
        cur, idx, running = self._scan(vals, 1, vals[0], 0, nan_aware)
        steps.append(Step("running_index", [0, *running], f"{how}: from element 0, element i replaces when {rule}"))
        steps.append(Step("output", idx, f"index of the first {'max' if self.is_max else 'min'}imum ({cur!r})"))
        return steps

    def _trace_float_vector(self, vals: list[float]) -> list[Step]:
        """``optimized_ops::ArgMaxVector<float>`` / ``ArgMinVector<float>`` as the x86 build runs it (NEON_2_SSE)."""
        size = len(vals)
        cmp = ">" if self.is_max else "<"
        name = "vpmax_f32" if self.is_max else "vpmin_f32"
        steps: list[Step] = []
        cur, idx, start = vals[0], 0, 1
        if size >= 4:
            nch = size // 4
            lane_v, lane_i = vals[:4], [0, 1, 2, 3]
            for k in range(1, nch):
                for lane in range(4):
                    j = 4 * k + lane
                    if self._better(vals[j], lane_v[lane], True):
                        lane_v[lane], lane_i[lane] = vals[j], j
            steps += [
                Step(
                    "lane_values",
                    list(lane_v),
                    "4 lanes: lane l starts at element l"
                    + (
                        f" and takes element l + 4k (k = 1..{nch - 1}) when !isnan(x) && (isnan(lane) || x {cmp} lane)"
                        if nch > 1
                        else " (one chunk of 4)"
                    ),
                ),
                Step("lane_indices", list(lane_i), "the element index each lane holds"),
            ]

            def pair(a: float, b: float) -> float:
                # NEON_2_SSE: vpmax_f32 is (a < b) ? b : a, vpmin_f32 is (a > b) ? b : a (a NaN first operand wins).
                return (b if a < b else a) if self.is_max else (b if a > b else a)

            lo, hi = pair(lane_v[0], lane_v[1]), pair(lane_v[2], lane_v[3])
            cur = pair(lo, hi)
            steps.append(
                Step(
                    "combined_value",
                    cur,
                    f"NEON_2_SSE {name}: lanes (0, 1) -> {lo!r}, lanes (2, 3) -> {hi!r}, then the pair -> {cur!r} "
                    f"({'(a < b) ? b : a' if self.is_max else '(a > b) ? b : a'}: a NaN first operand wins)",
                )
            )
            matching = [lane_i[lane] for lane in range(4) if lane_v[lane] == cur]
            idx = min(matching) if matching else 2**31 - 1
            steps.append(
                Step(
                    "combined_index",
                    idx,
                    "smallest index of the lanes equal to it (vceqq; INT32_MAX when none is: a NaN)",
                )
            )
            start = 4 * nch
        if start < size:
            cur, idx, running = self._scan(vals, start, cur, idx, True)
            steps.append(
                Step(
                    "running_index",
                    running,
                    f"scalar loop over elements {start}..{size - 1}: replaces when !isnan(x) && (isnan(cur) || x {cmp} cur)",
                )
            )
        if math.isnan(cur):
            steps.append(Step("output", 0, "the result is NaN: index 0 (isnan(value) ? 0 : index)"))
        else:
            steps.append(Step("output", idx, f"index of the value {cur!r}"))
        return steps

    def _trace_byte_argmax(self, vals: list[int]) -> list[Step]:
        """``optimized_ops::ArgMaxVector<int8_t/uint8_t>`` (16-byte NEON chunks via NEON_2_SSE, then a scalar loop)."""
        size = len(vals)
        steps: list[Step] = []
        best, idx, i = vals[0], 0, 0
        if size >= 16:
            chunk_max = []
            while i <= size - 16:
                mc = max(vals[i : i + 16])  # vmaxvq
                chunk_max.append(mc)
                if mc > best:
                    best, idx = mc, i
                i += 16
            steps.append(
                Step(
                    "chunk_maxima",
                    chunk_max,
                    f"maximum of each 16-value chunk; a chunk whose maximum is > the running one (from x[0] = "
                    f"{vals[0]}) moves the index to its start ({idx})",
                )
            )
            # The search for the first element equal to the maximum, from the start of its chunk (for
            # size < 16 it stops at element 0 at once, so it is traced only here).
            chunk_start = idx
            for j in range(chunk_start, chunk_start + 16):
                if vals[j] == best:
                    idx = j
                    break
            steps.append(Step("chunk_index", idx, f"first element equal to {best} from index {chunk_start}"))
        if i < size:
            best, idx, running = self._scan(vals, i, best, idx, False)
            steps.append(Step("running_index", running, f"scalar loop over elements {i}..{size - 1}: x > cur"))
        steps.append(Step("output", idx, f"index of the first maximum ({best})"))
        return steps


def _prepare_arg(ctx: OpContext, is_max: bool) -> ArgMinMaxData:
    ctx.check_counts(2, 1)
    x = ctx.input(0)
    a = ctx.input(1)
    y = ctx.output(0)
    if a.size != 1:
        raise ctx.error(f"axis tensor must have exactly one element; got shape {list(a.shape)}", a)
    if a.dtype not in ("int32", "int64"):
        raise ctx.error(f"axis tensor type {a.dtype}; expected int32 or int64", a)
    out_type = str(ctx.option("output_type", "INT64"))
    if out_type not in ("INT32", "INT64"):
        raise ctx.error(f"output_type {out_type}; expected INT32 or INT64")
    if y.dtype != out_type.lower():
        raise ctx.error(f"output tensor type {y.dtype} differs from the output_type option {out_type}", y)
    ctx.check_dtype(x, ("float32", "uint8", "int8", "int32", "bool"), "input")
    rank = len(x.shape)
    if rank < 1:
        raise ctx.error("input must have rank >= 1", x)
    axis = int(np.asarray(ctx.input_value(1)).reshape(-1)[0])  # run-time prepare when not constant
    if axis < 0:
        axis += rank
    if not 0 <= axis < rank:
        raise ctx.error(f"axis {int(np.asarray(ctx.input_value(1)).reshape(-1)[0])} is out of range for rank {rank}", a)
    if x.shape[axis] <= 0:
        raise ctx.error(f"cannot compute {'ARG_MAX' if is_max else 'ARG_MIN'} over an empty axis {axis}", x)
    out_shape = tuple(d for i, d in enumerate(x.shape) if i != axis)
    return ArgMinMaxData((out_shape,), (y.dtype,), is_max=is_max, axis=axis)


def prepare_arg_max(ctx: OpContext) -> ArgMinMaxData:
    """ARG_MAX (LiteRT ``Register_ARG_MAX``): first index of the maximum; output int32 or int64."""
    return _prepare_arg(ctx, True)


def prepare_arg_min(ctx: OpContext) -> ArgMinMaxData:
    """ARG_MIN (LiteRT ``Register_ARG_MIN``): first index of the minimum; output int32 or int64."""
    return _prepare_arg(ctx, False)
