"""AVERAGE_POOL_2D, MAX_POOL_2D and L2_POOL_2D: LiteRT ``pooling.cc`` with the reference kernels.

Matches ``Register_AVERAGE_POOL_REF`` / ``Register_MAX_POOL_REF`` / ``Register_L2_POOL_REF``, i.e.
``reference_integer_ops::AveragePool`` / ``MaxPool`` (int8, int16), ``reference_ops::AveragePool`` /
``MaxPool`` (uint8, float32) and ``reference_ops::L2Pool`` (float32 only). docs/litert_semantics.md §3.0, §3.8, §3.9, §4.

Integer semantics (every quantized type)

* The kernels work on the **raw** quantized values: no zero point is subtracted and the output
  quantization is ignored, except that the fused activation clamp is computed from the **output**
  scale and zero point (``CalculateActivationRangeQuantized``). Input/output parameter mismatches are
  only debug checks in LiteRT, so refquant accepts them too.
* Average: ``S = sum of q over the in-image taps`` (int32), ``n = number of in-image taps`` (padding
  is excluded, not counted as zero), ``avg = S > 0 ? (S + n/2)/n : (S - n/2)/n`` with C truncating
  division (round half away from zero), then the activation clamp.
* Max: the maximum of the in-image taps, starting from the type's lowest value, then the clamp.

Float semantics: average is a sequential float32 sum over the in-image taps in (y, x) order divided
by the float tap count; max starts from ``-FLT_MAX`` and ignores NaN taps (``std::max``); L2 is
``sqrt(sum(x*x) / n)`` with a sequential float32 sum. Then the float activation clamp, which keeps NaN.

Output size (``padding.h``): SAME ``ceil(in/stride)``, VALID ``(in + stride - k) / stride`` with C
truncation; a VALID window larger than the image, a filter size <= 0 or an unknown padding give an
empty output, as in LiteRT. The top/left padding is ``total // 2``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..fixedpoint import wrap_int32_i64
from ..limits import spend
from ..quantization import calculate_activation_range_float, calculate_activation_range_quantized, dtype_range
from .base import OpContext, OpData, Step

__all__ = ["prepare_average_pool_2d", "prepare_max_pool_2d", "prepare_l2_pool_2d", "PoolData", "pool_output_size"]

_FLT_MAX = np.float32(np.finfo(np.float32).max)


def _out_size(padding: str, image: int, filt: int, stride: int) -> int | None:
    """``ComputeOutSizeChecked`` (dilation 1): the output size, or None where LiteRT's check fails."""
    if padding not in ("SAME", "VALID") or image < 0 or filt <= 0 or stride <= 0:
        return None
    if padding == "SAME":
        value = (image + stride - 1) // stride
    else:
        num = image + stride - filt
        value = abs(num) // stride * (1 if num >= 0 else -1)  # C truncating division
    return value if value >= 0 else None


def pool_output_size(
    padding: str, in_h: int, in_w: int, filter_h: int, filter_w: int, stride_h: int, stride_w: int
) -> tuple[int, int, int, int]:
    """LiteRT ``ComputePaddingHeightWidth`` for pools: ``(out_h, out_w, pad_h, pad_w)``.

    Like LiteRT, a failed size computation (unknown padding, filter <= 0, VALID window too large by
    a stride or more) leaves that size at 0 (the width is computed first; if it fails the height
    stays 0 too) and the paddings at 0, which makes the output empty.
    """
    out_w = _out_size(padding, in_w, filter_w, stride_w)
    if out_w is None:
        return 0, 0, 0, 0
    out_h = _out_size(padding, in_h, filter_h, stride_h)
    if out_h is None:
        return 0, out_w, 0, 0
    pad_h = max(0, (out_h - 1) * stride_h + filter_h - in_h) // 2
    pad_w = max(0, (out_w - 1) * stride_w + filter_w - in_w) // 2
    return out_h, out_w, pad_h, pad_w


def _tap_counts(out: int, stride: int, pad: int, filt: int, size: int) -> np.ndarray:
    """Per output position, the number of in-image taps along one axis (the kernel's start/end clamp)."""
    origin = np.arange(out, dtype=np.int64) * stride - pad
    start = np.maximum(0, -origin)
    end = np.minimum(filt, size - origin)
    return np.maximum(end - start, 0)


@dataclass(frozen=True)
class PoolData(OpData):
    """Prepared pooling operator: geometry, tap counts and the activation clamp."""

    #: "average", "max" or "l2".
    pool: str = "average"
    #: True for the float32 kernels (float clamp, float accumulation).
    is_float: bool = False
    #: Input dtype name (the output has the same type).
    dtype: str = "int8"
    #: Filter height and width (taps per window before clipping to the image).
    filter_h: int = 1
    filter_w: int = 1
    #: Strides.
    stride_h: int = 1
    stride_w: int = 1
    #: Top and left padding (``total // 2``); bottom/right padding is implied by the output size.
    pad_h: int = 0
    pad_w: int = 0
    #: Integer activation clamp (quantized) from the OUTPUT params; float bounds for float32.
    act_min: int | float = 0
    act_max: int | float = 0
    #: n[oy, ox]: number of in-image taps of each window (the average's divisor), int64 (out_h, out_w).
    counts: np.ndarray | None = None

    # -- geometry ---------------------------------------------------------------------------------
    def scratch_bytes(self, input_shapes: list[tuple[int, ...]]) -> int:
        """Bytes of the padded input (in int64 for sums) and of the wide accumulators eval materialises."""
        n, h, w, c = input_shapes[0]
        _, oh, ow, _ = self.output_shapes[0]
        hp = self.pad_h + max(h, (oh - 1) * self.stride_h + self.filter_h - self.pad_h)
        wp = self.pad_w + max(w, (ow - 1) * self.stride_w + self.filter_w - self.pad_w)
        return n * hp * wp * c * 8 + 32 * n * oh * ow * c

    def _windows(self, x: np.ndarray, fill: float | int) -> np.ndarray:
        """View (N, OH, OW, C, FH, FW) of the windows of ``x`` padded with ``fill`` (padded taps marked)."""
        n, h, w, c = x.shape
        _, oh, ow, _ = self.output_shapes[0]
        bottom = max(0, (oh - 1) * self.stride_h + self.filter_h - self.pad_h - h)
        right = max(0, (ow - 1) * self.stride_w + self.filter_w - self.pad_w - w)
        padded = np.pad(
            x, ((0, 0), (self.pad_h, bottom), (self.pad_w, right), (0, 0)), mode="constant", constant_values=fill
        )
        win = sliding_window_view(padded, (self.filter_h, self.filter_w), axis=(1, 2))
        return win[:, :: self.stride_h, :: self.stride_w][:, :oh, :ow]

    # -- eval -------------------------------------------------------------------------------------
    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """Pool the NHWC input (integer-only arithmetic for quantized types)."""
        x = inputs[0]
        assert x is not None
        out_shape = self.output_shapes[0]
        out_dtype = x.dtype
        if any(d == 0 for d in out_shape):
            return [np.zeros(out_shape, out_dtype)]
        if self.is_float:
            spend(f"{self.pool} pool over {self.filter_h}x{self.filter_w} taps", self.filter_h * self.filter_w)
            return [self._eval_float(x)]
        if self.pool == "max":
            lowest = dtype_range(x.dtype)[0]
            acc = self._windows(x, lowest).max(axis=(4, 5)).astype(np.int64)
        else:
            # int32 accumulator: |S| <= FH*FW*2^15 for int16; computed in int64 and wrapped like C int32.
            s = self._windows(x.astype(np.int64), 0).sum(axis=(4, 5))
            s = wrap_int32_i64(s)
            n = self.counts[None, :, :, None]  # type: ignore[index]
            half = n // 2
            # C: acc > 0 ? (acc + n/2) / n : (acc - n/2) / n, '/' truncating toward zero.
            num = np.where(s > 0, s + half, s - half)
            acc = np.where(num >= 0, num // n, -((-num) // n))
        acc = np.clip(acc, self.act_min, self.act_max)
        return [acc.astype(out_dtype)]

    def _eval_float(self, x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float32, copy=False)
        if self.pool == "max":
            # std::max(max, v) = (max < v) ? v : max, starting at lowest(): NaN taps never win and -inf
            # taps never beat -FLT_MAX. Padded taps are -inf, so they are skipped the same way.
            win = self._windows(x, -np.inf)
            res = np.full(self.output_shapes[0], -_FLT_MAX, np.float32)
            for ky in range(self.filter_h):
                for kx in range(self.filter_w):
                    v = win[..., ky, kx]
                    res = np.where(res < v, v, res)
        else:
            # Sequential float32 sum from +0.0 in (y, x) order. Padded taps add +0.0, which changes
            # nothing: the running total is never -0.0 (0 + -0 = +0), and x + 0 == x otherwise.
            win = self._windows(x, 0.0)
            total = np.zeros(self.output_shapes[0], np.float32)
            with np.errstate(all="ignore"):
                for ky in range(self.filter_h):
                    for kx in range(self.filter_w):
                        v = win[..., ky, kx]
                        total = total + (v * v if self.pool == "l2" else v)
                n = self.counts.astype(np.float32)[None, :, :, None]  # type: ignore[union-attr]
                res = total / n
                if self.pool == "l2":
                    res = np.sqrt(res)
        res = res.astype(np.float32)
        lo, hi = np.float32(self.act_min), np.float32(self.act_max)
        # ActivationFunctionWithMinMax: min(max(x, lo), hi) with std::max/min (NaN and -0.0 kept).
        res = np.where(res < lo, lo, res)
        res = np.where(hi < res, hi, res)
        return res.astype(np.float32)

    # -- trace ------------------------------------------------------------------------------------
    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """Steps for one output element: the in-image taps, the sum/max, the rounding division, the clamp."""
        x = inputs[0]
        assert x is not None
        b, oy, ox, c = (int(v) for v in element)
        y0 = oy * self.stride_h - self.pad_h
        x0 = ox * self.stride_w - self.pad_w
        h, w = x.shape[1], x.shape[2]
        taps = []
        for ky in range(max(0, -y0), min(self.filter_h, h - y0)):
            for kx in range(max(0, -x0), min(self.filter_w, w - x0)):
                taps.append(((y0 + ky, x0 + kx), x[b, y0 + ky, x0 + kx, c]))
        steps = [
            Step(
                "window",
                [v.item() for _, v in taps],
                f"{len(taps)} in-image taps at (y, x) = {[p for p, _ in taps]} of channel {c} (padding skipped)",
            )
        ]
        if self.is_float:
            return steps + self._trace_float([v for _, v in taps], (oy, ox))
        if self.pool == "max":
            m = max([dtype_range(x.dtype)[0]] + [int(v) for _, v in taps])
            steps.append(Step("max", m, "maximum of the raw q values (start: the type's lowest value)"))
            val = m
        else:
            s = sum(int(v) for _, v in taps)
            s = wrap_int32_i64(s)  # int32 accumulator
            n = len(taps)
            steps.append(Step("acc", s, "sum of the raw q values (int32; zero point not subtracted)"))
            steps.append(Step("n", n, "number of in-image taps (the divisor)"))
            num = s + n // 2 if s > 0 else s - n // 2
            val = abs(num) // n * (1 if num >= 0 else -1)
            steps.append(Step("avg", val, f"({num}) / {n} truncated: acc/n rounded half away from zero"))
        out = min(max(val, int(self.act_min)), int(self.act_max))
        steps.append(
            Step("output", out, f"clamp to the activation range [{self.act_min}, {self.act_max}] (output params)")
        )
        return steps

    def _trace_float(self, taps: list, pos: tuple[int, int]) -> list[Step]:
        """Float steps: the sequential float32 sum (or max), the division (and sqrt), the float clamp."""
        vals = [np.float32(v) for v in taps]
        steps: list[Step] = []
        with np.errstate(all="ignore"):
            if self.pool == "max":
                res = -_FLT_MAX
                for v in vals:
                    res = v if res < v else res  # std::max(max, v): NaN never wins
                steps.append(Step("max", np.float32(res).item(), "max of the taps from -FLT_MAX (NaN ignored)"))
            else:
                total = np.float32(0.0)
                for v in vals:
                    total = np.float32(total + (np.float32(v * v) if self.pool == "l2" else v))
                what = "sum of x*x" if self.pool == "l2" else "sum"
                steps.append(Step("acc", total.item(), f"sequential float32 {what} over the taps from +0.0"))
                n = np.float32(self.counts[pos])  # type: ignore[index]
                res = np.float32(total / n)
                steps.append(Step("avg", res.item(), f"acc / {n.item()} (float32)"))
                if self.pool == "l2":
                    res = np.float32(np.sqrt(res))
                    steps.append(Step("sqrt", res.item(), "sqrtf"))
            lo, hi = np.float32(self.act_min), np.float32(self.act_max)
            res = lo if res < lo else res
            res = hi if hi < res else res
        what = {"average": "sequential float32 sum / n", "max": "max from -FLT_MAX", "l2": "sqrt(sum(x*x) / n)"}
        steps.append(
            Step(self.pool, np.float32(res).item(), what[self.pool] + f", clamped to [{self.act_min}, {self.act_max}]")
        )
        return steps


def _prepare_pool(ctx: OpContext, pool: str) -> PoolData:
    ctx.check_counts(1, 1)
    x = ctx.input(0)
    y = ctx.output(0)
    allowed = ("float32",) if pool == "l2" else ("int8", "uint8", "int16", "float32")
    ctx.check_dtype(x, allowed, "input")
    ctx.check_same_dtype(x, y)
    if len(x.shape) != 4:
        raise ctx.error(f"input must be 4-D NHWC; got rank {len(x.shape)}", x)
    stride_h = int(ctx.option("stride_h", 0))
    stride_w = int(ctx.option("stride_w", 0))
    if stride_h <= 0 or stride_w <= 0:
        raise ctx.error(f"strides must be positive; got stride_h={stride_h}, stride_w={stride_w}")
    filter_h = int(ctx.option("filter_height", 0))
    filter_w = int(ctx.option("filter_width", 0))
    padding = str(ctx.option("padding", "SAME"))
    activation = str(ctx.option("fused_activation_function", "NONE"))
    n, h, w, c = x.shape
    out_h, out_w, pad_h, pad_w = pool_output_size(padding, h, w, filter_h, filter_w, stride_h, stride_w)
    counts = np.outer(
        _tap_counts(out_h, stride_h, pad_h, filter_h, h), _tap_counts(out_w, stride_w, pad_w, filter_w, w)
    ).astype(np.int64)
    out_shape = (n, out_h, out_w, c)
    if pool == "average" and n * c > 0 and counts.size and (counts == 0).any():
        oy, ox = (int(v) for v in np.argwhere(counts == 0)[0])
        raise ctx.error(f"window at output (y={oy}, x={ox}) has no in-image tap; LiteRT's AveragePool fails")
    is_float = x.dtype == "float32"
    if is_float:
        lo, hi = calculate_activation_range_float(activation)
        act = (float(lo), float(hi))
    else:
        ctx.require_quant(x, per_tensor=True)
        qo = ctx.require_quant(y, per_tensor=True)
        try:
            act = calculate_activation_range_quantized(activation, float(qo.scale[0]), int(qo.zero_point[0]), y.dtype)
        except ValueError as exc:
            raise ctx.unsupported(f"fused activation {activation}") from exc
    return PoolData(
        output_shapes=(out_shape,),
        output_dtypes=(y.dtype,),
        pool=pool,
        is_float=is_float,
        dtype=x.dtype,
        filter_h=filter_h,
        filter_w=filter_w,
        stride_h=stride_h,
        stride_w=stride_w,
        pad_h=pad_h,
        pad_w=pad_w,
        act_min=act[0],
        act_max=act[1],
        counts=counts,
    )


def prepare_average_pool_2d(ctx: OpContext) -> PoolData:
    """AVERAGE_POOL_2D (LiteRT ``Register_AVERAGE_POOL_REF``): raw-q average over in-image taps."""
    return _prepare_pool(ctx, "average")


def prepare_max_pool_2d(ctx: OpContext) -> PoolData:
    """MAX_POOL_2D (LiteRT ``Register_MAX_POOL_REF``): raw-q maximum over in-image taps."""
    return _prepare_pool(ctx, "max")


def prepare_l2_pool_2d(ctx: OpContext) -> PoolData:
    """L2_POOL_2D (LiteRT ``Register_L2_POOL_REF``, float32 only): ``sqrt(mean(x^2))`` over in-image taps."""
    return _prepare_pool(ctx, "l2")
