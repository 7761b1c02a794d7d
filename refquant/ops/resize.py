"""RESIZE_BILINEAR and RESIZE_NEAREST_NEIGHBOR: LiteRT's reference resize kernels (docs/litert_semantics.md §3.17).

* RESIZE_BILINEAR int8/int16: reference_ops::ResizeBilinearInteger, all integer, 10-bit fixed-point
  source coordinates and a 20-bit product rounded half away from zero (or ``(v + 2^19) >> 20`` in a
  TFLITE_SINGLE_ROUNDING build, refquant's ``rounding="single"``). No clamp; output quantization
  parameters are ignored.
* RESIZE_BILINEAR float32 and **uint8**: reference_ops::ResizeBilinear, float32 arithmetic evaluated
  left to right without FMA (verified bit-exact against the wheel); uint8 adds 0.5 and truncates.
* RESIZE_NEAREST_NEIGHBOR: index selection in float32 (``floor`` or ``roundf``), then a raw copy.

Under the ``litert-xnnpack`` profile the XNNPACK delegate runs int8/uint8 RESIZE_BILINEAR with Q11
fixed-point weights on the raw values (:class:`ResizeBilinearQ11Data`, all three coordinate modes).

The ``size`` input is a 1-D int32 tensor of two elements (new height, width); when its value is only
known at run time the op is prepared just before it runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fixedpoint import round_half_away_from_zero
from ..requantize import resize_bilinear_rounding_shift, xnn_q11_round
from .base import OpContext, OpData, Step
from .movement import MovementData, contiguous, int_vector, require_output_dtype

__all__ = [
    "ResizeBilinearQ11Data",
    "ResizeBilinearIntegerData",
    "ResizeBilinearFloatData",
    "ResizeNearestData",
    "prepare_resize_bilinear",
    "prepare_resize_nearest_neighbor",
]

f32 = np.float32


def _size(ctx: OpContext) -> tuple[int, int]:
    """The (height, width) from the ``size`` input: int32, shape [2]."""
    s = ctx.input(1)
    ctx.check_dtype(s, ("int32",), "size")
    if len(s.shape) != 1 or s.shape[0] != 2:
        raise ctx.error(f"size has shape {list(s.shape)}; expected [2]", s)
    h, w = int_vector(ctx, 1, "size", ("int32",))
    return h, w


def _check_nhwc(ctx: OpContext) -> None:
    x = ctx.input(0)
    if len(x.shape) != 4:
        raise ctx.error(f"input rank {len(x.shape)}; expected 4 (NHWC)", x)


# ---------------------------------------------------------------------------------------------
# RESIZE_BILINEAR


def _scale_10(in_size: int, out_size: int, align: bool) -> int:
    """ResizeBilinearInteger's Q10 scale: ``round(1024 * in / out)`` in C integer arithmetic."""
    if align and out_size > 1:
        return (1024 * (in_size - 1) + (out_size - 1) // 2) // (out_size - 1)
    return (1024 * in_size + out_size // 2) // out_size


def _cdiv(a: np.ndarray, d: int) -> np.ndarray:
    """C integer division (truncation toward zero) of an int64 array by a positive ``d``."""
    return np.sign(a) * (np.abs(a) // d)


def _interp_integer(out_size: int, in_size: int, scale: int, half: bool) -> tuple[np.ndarray, ...]:
    """ComputeInterpolationValuesInteger for every output coordinate: (scaled Q10 value, lower, upper)."""
    v = np.arange(out_size, dtype=np.int64)
    sv = v * scale + (scale // 2 - 512 if half else 0)
    lo = np.maximum(_cdiv(sv, 1024), 0)
    hi = np.minimum(_cdiv(sv + 1023, 1024), in_size - 1)
    return sv, lo, hi


@dataclass(frozen=True)
class ResizeBilinearIntegerData(OpData):
    """RESIZE_BILINEAR int8/int16 (reference_ops::ResizeBilinearInteger).

    ``o20 = sum q[y_k, x_l] * wy_k * wx_l`` (int64) with ``wy_0 = 1024 - (sy - 1024*y0)``, ``wy_1 = sy - 1024*y0``
    (the Q10 distances, kept literally even outside [0, 1024] at the borders), then
    ``(o20 + (o20 > 0 ? 2^19 : -2^19)) / 2^20`` (C division) in the double-rounding build, or
    ``(o20 + 2^19) >> 20`` with single rounding.
    """

    #: Q10 source coordinates (scaled values) per output row / column.
    sy: np.ndarray = None  # type: ignore[assignment]
    sx: np.ndarray = None  # type: ignore[assignment]
    #: Lower and upper source rows / columns per output row / column.
    y0: np.ndarray = None  # type: ignore[assignment]
    y1: np.ndarray = None  # type: ignore[assignment]
    x0: np.ndarray = None  # type: ignore[assignment]
    x1: np.ndarray = None  # type: ignore[assignment]
    #: "double" (round half away) or "single" (round half up) final rounding.
    rounding: str = "double"

    def _terms(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        dy = (self.sy - 1024 * self.y0)[None, :, None, None]
        dx = (self.sx - 1024 * self.x0)[None, None, :, None]
        xi = x.astype(np.int64)
        rows0 = xi[:, self.y0]
        rows1 = xi[:, self.y1]
        ll = rows0[:, :, self.x0] * (1024 - dy) * (1024 - dx)
        lu = rows1[:, :, self.x0] * dy * (1024 - dx)
        rl = rows0[:, :, self.x1] * (1024 - dy) * dx
        ru = rows1[:, :, self.x1] * dy * dx
        return ll, lu, rl, ru

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """The interpolated image (integer arithmetic only)."""
        x = inputs[0]
        assert x is not None
        ll, lu, rl, ru = self._terms(np.asarray(x))
        o20 = ll + lu + rl + ru
        v = resize_bilinear_rounding_shift(o20, 20, self.rounding)
        return [v.astype(x.dtype)]  # static_cast<T>: the value already fits (convex-ish combination)

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """The four taps, their Q10 weights, the 20-bit sum and the rounding of one output element."""
        x = inputs[0]
        assert x is not None
        b, oy, ox, c = element
        y0, y1, x0, x1 = (int(a[i]) for a, i in ((self.y0, oy), (self.y1, oy), (self.x0, ox), (self.x1, ox)))
        dy = int(self.sy[oy]) - 1024 * y0
        dx = int(self.sx[ox]) - 1024 * x0
        taps = [
            (y0, x0, (1024 - dy) * (1024 - dx)),
            (y1, x0, dy * (1024 - dx)),
            (y0, x1, (1024 - dy) * dx),
            (y1, x1, dy * dx),
        ]
        steps = [Step("source", (int(self.sy[oy]), int(self.sx[ox])), "Q10 source coordinates (y, x)")]
        o20 = 0
        for ty, tx, w in taps:
            q = int(x[b, ty, tx, c])
            o20 += q * w
            steps.append(Step(f"tap[{ty},{tx}]", q * w, f"q={q} * weight {w} (Q20)"))
        steps.append(Step("o20", o20, "sum of the four products"))
        v = int(resize_bilinear_rounding_shift(o20, 20, self.rounding))
        if self.rounding == "single":
            how = "(o20 + 2^19) >> 20"
        else:
            how = "(o20 +- 2^19) / 2^20, C division (ties away from zero)"
        steps.append(Step("output", v, how))
        return steps


@dataclass(frozen=True)
class ResizeBilinearFloatData(OpData):
    """RESIZE_BILINEAR float32 and uint8 (reference_ops::ResizeBilinear, float32, no FMA).

    ``out = ((q00*(1-dy))*(1-dx) + (q10*dy)*(1-dx)) + (q01*(1-dy))*dx + (q11*dy)*dx [+ 0.5 for uint8]``,
    evaluated left to right in float32, then converted (truncation) to the output type.
    """

    #: Source coordinates (float32) and lower/upper rows and columns per output row / column.
    iy: np.ndarray = None  # type: ignore[assignment]
    ix: np.ndarray = None  # type: ignore[assignment]
    y0: np.ndarray = None  # type: ignore[assignment]
    y1: np.ndarray = None  # type: ignore[assignment]
    x0: np.ndarray = None  # type: ignore[assignment]
    x1: np.ndarray = None  # type: ignore[assignment]
    #: True for uint8 (adds the 0.5 rounding offset and truncates to uint8).
    integer: bool = False

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """The interpolated image (float32 arithmetic, sequential like the C++)."""
        x = inputs[0]
        assert x is not None
        xf = np.asarray(x).astype(f32)
        dy = (self.iy - self.y0.astype(f32))[None, :, None, None]
        dx = (self.ix - self.x0.astype(f32))[None, None, :, None]
        one = f32(1)
        rows0 = xf[:, self.y0]
        rows1 = xf[:, self.y1]
        acc = (rows0[:, :, self.x0] * (one - dy)) * (one - dx)
        acc = acc + (rows1[:, :, self.x0] * dy) * (one - dx)
        acc = acc + (rows0[:, :, self.x1] * (one - dy)) * dx
        acc = acc + (rows1[:, :, self.x1] * dy) * dx
        acc = acc + f32(0.5 if self.integer else 0.0)  # the C++ adds its rounding offset (0.0f for float)
        if not self.integer:
            return [acc.astype(f32)]
        return [np.trunc(acc).astype(np.int64).astype(np.uint8)]

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """The four taps and float32 weights, summed left to right, for one output element."""
        x = inputs[0]
        assert x is not None
        b, oy, ox, c = element
        y0, y1, x0, x1 = (int(a[i]) for a, i in ((self.y0, oy), (self.y1, oy), (self.x0, ox), (self.x1, ox)))
        dy = f32(self.iy[oy] - f32(y0))
        dx = f32(self.ix[ox] - f32(x0))
        one = f32(1)
        taps = [(y0, x0, one - dy, one - dx), (y1, x0, dy, one - dx), (y0, x1, one - dy, dx), (y1, x1, dy, dx)]
        steps = [Step("source", (float(self.iy[oy]), float(self.ix[ox])), "float32 source coordinates (y, x)")]
        acc = None
        for ty, tx, wy, wx in taps:
            term = f32(f32(f32(x[b, ty, tx, c]) * f32(wy)) * f32(wx))
            acc = term if acc is None else f32(acc + term)
            steps.append(Step(f"tap[{ty},{tx}]", float(term), f"q * {float(wy)!r} * {float(wx)!r} (float32)"))
        acc = f32(acc + f32(0.5 if self.integer else 0.0))
        out = self.eval([np.asarray(x)[b : b + 1]])[0][0, oy, ox, c]
        how = "+ 0.5, truncated to uint8" if self.integer else "the float32 sum"
        return steps + [Step("sum", float(acc), "left-to-right float32 sum"), Step("output", out.item(), how)]


def _interp_q11(out_size: int, in_size: int, align: bool, half: bool) -> tuple[np.ndarray, ...]:
    """XNNPACK's Q11 source coordinates (``xnn_indirection_init_resize_bilinear2d_hwc_q11``): (lower, upper, weight).

    ``scale = f32(in - adj) / f32(out - adj)`` (``adj`` = 1 for align_corners with ``out > 1``); legacy and
    align_corners: ``c = min(f32(o * scale), in - 1)``; half-pixel: ``c = clamp(f32(f32(o * scale) +
    f32(0.5 * scale - 0.5)), 0, in - 1)``; ``lower = int(c)``, ``upper = min(lower + 1, in - 1)``,
    ``weight = lrintf(f32(c - lower) * 2048)``.
    """
    adj = 1 if align and out_size > 1 else 0
    scale = f32(f32(in_size - adj) / f32(out_size - adj))
    v = (np.arange(out_size).astype(f32) * scale).astype(f32)
    if half and not align:
        v = (v + f32(f32(f32(0.5) * scale) - f32(0.5))).astype(f32)
        v = np.maximum(v, f32(0))
    v = np.minimum(v, f32(in_size - 1)).astype(f32)
    lo = v.astype(np.int64)
    hi = np.minimum(lo + 1, in_size - 1)
    w = np.rint(((v - lo.astype(f32)).astype(f32) * f32(2048)).astype(np.float64)).astype(np.int64)
    return lo, hi, w


@dataclass(frozen=True)
class ResizeBilinearQ11Data(OpData):
    """RESIZE_BILINEAR int8/uint8 in XNNPACK (``s8-ibilinear`` / ``u8-ibilinear``, litert-xnnpack ``xnn_q11``).

    The raw values are interpolated with Q11 weights (quantization parameters are not used):
    ``t = (tl << 11) + (tr - tl) * ax``, ``b = (bl << 11) + (br - bl) * ax``,
    ``acc = (t << 11) + (b - t) * ay``, ``out = (acc + 2^21) >> 22`` (ties up).
    """

    #: Lower and upper source rows / columns and their Q11 weights, per output row / column.
    y0: np.ndarray = None  # type: ignore[assignment]
    y1: np.ndarray = None  # type: ignore[assignment]
    ay: np.ndarray = None  # type: ignore[assignment]
    x0: np.ndarray = None  # type: ignore[assignment]
    x1: np.ndarray = None  # type: ignore[assignment]
    ax: np.ndarray = None  # type: ignore[assignment]

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """The interpolated image (XNNPACK's integer arithmetic)."""
        x = inputs[0]
        assert x is not None
        xi = np.asarray(x).astype(np.int64)
        top, bot = xi[:, self.y0], xi[:, self.y1]
        axb = self.ax[None, None, :, None]
        ayb = self.ay[None, :, None, None]
        tl, tr = top[:, :, self.x0], top[:, :, self.x1]
        bl, br = bot[:, :, self.x0], bot[:, :, self.x1]
        t = (tl << 11) + (tr - tl) * axb
        b = (bl << 11) + (br - bl) * axb
        acc = (t << 11) + (b - t) * ayb
        return [xnn_q11_round(acc).astype(x.dtype)]

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """The four taps, the Q11 weights, the two horizontal blends, the vertical blend and the rounding."""
        x = inputs[0]
        assert x is not None
        bt, oy, ox, c = (int(e) for e in element)
        y0, y1, ay = int(self.y0[oy]), int(self.y1[oy]), int(self.ay[oy])
        x0, x1, ax = int(self.x0[ox]), int(self.x1[ox]), int(self.ax[ox])
        tl, tr, bl, br = (int(x[bt, yy, xx, c]) for yy, xx in ((y0, x0), (y0, x1), (y1, x0), (y1, x1)))
        t = (tl << 11) + (tr - tl) * ax
        b = (bl << 11) + (br - bl) * ax
        acc = (t << 11) + (b - t) * ay
        out = int(xnn_q11_round(np.asarray(acc)))
        return [
            Step("source", ((y0, y1, ay), (x0, x1, ax)), "rows, columns and Q11 weights lrintf(frac * 2048) (y, x)"),
            Step("taps", (tl, tr, bl, br), "raw values top-left, top-right, bottom-left, bottom-right"),
            Step("top", t, f"(tl << 11) + (tr - tl) * {ax}"),
            Step("bottom", b, f"(bl << 11) + (br - bl) * {ax}"),
            Step("acc", acc, f"(top << 11) + (bottom - top) * {ay}"),
            Step("output", out, "(acc + 2^21) >> 22 (XNNPACK ibilinear: ties up)"),
        ]


def _interp_float(out_size: int, in_size: int, align: bool, half: bool) -> tuple[np.ndarray, ...]:
    """ComputeInterpolationValues (float32) for every output coordinate: (scaled value, lower, upper)."""
    scale = f32(in_size) / f32(out_size)
    if align and out_size > 1:
        scale = f32(in_size - 1) / f32(out_size - 1)
    v = np.arange(out_size, dtype=f32)
    if half:
        sv = (v + f32(0.5)) * scale - f32(0.5)
    else:
        sv = v * scale
    lo = np.maximum(np.floor(sv).astype(np.int64), 0)
    hi = np.minimum(np.ceil(sv).astype(np.int64), in_size - 1)
    return sv.astype(f32), lo, hi


def prepare_resize_bilinear(
    ctx: OpContext,
) -> ResizeBilinearQ11Data | ResizeBilinearIntegerData | ResizeBilinearFloatData:
    """RESIZE_BILINEAR (LiteRT ``resize_bilinear.cc``, REF): 4-D input, size > 0, not both flags.

    Types: int8, int16 (integer kernel), uint8 and float32 (float kernel). refquant also rejects the
    rare upsamplings where the rounded Q10 scale makes the integer kernel read past the last row or
    column (LiteRT reads outside the input there).
    """
    ctx.check_counts(2, 1)
    _check_nhwc(ctx)
    x = ctx.input(0)
    out = ctx.output(0)
    ctx.check_dtype(x, ("int8", "int16", "uint8", "float32"), "input")
    require_output_dtype(ctx, out, x.dtype)
    align = bool(ctx.option("align_corners", False))
    half = bool(ctx.option("half_pixel_centers", False))
    oh, ow = _size(ctx)
    if oh <= 0 or ow <= 0:
        raise ctx.error(f"size ({oh}, {ow}) must be positive", ctx.input(1))
    if align and half:
        raise ctx.error("half_pixel_centers and align_corners cannot both be true")
    b, h, w, c = x.shape
    shape = (b, oh, ow, c)
    arith = ctx.arithmetic
    if arith.rescale == "xnn_q11":
        y0, y1, ay = _interp_q11(oh, h, align, half)
        x0, x1, ax = _interp_q11(ow, w, align, half)
        return ResizeBilinearQ11Data((shape,), (out.dtype,), y0=y0, y1=y1, ay=ay, x0=x0, x1=x1, ax=ax, arithmetic=arith)
    if x.dtype in ("int8", "int16"):
        sy, y0, y1 = _interp_integer(oh, h, _scale_10(h, oh, align), half)
        sx, x0, x1 = _interp_integer(ow, w, _scale_10(w, ow, align), half)
        if (h and y0.max() > h - 1) or (w and x0.max() > w - 1):
            raise ctx.unsupported(
                f"resize {h}x{w} -> {oh}x{ow}: the integer kernel's rounded scale reads past the input "
                "(LiteRT reads out of bounds)"
            )
        return ResizeBilinearIntegerData(
            (shape,), (out.dtype,), sy=sy, sx=sx, y0=y0, y1=y1, x0=x0, x1=x1, rounding=ctx.rounding
        )
    iy, y0, y1 = _interp_float(oh, h, align, half)
    ix, x0, x1 = _interp_float(ow, w, align, half)
    if (h and y0.max() > h - 1) or (w and x0.max() > w - 1):
        raise ctx.unsupported(f"resize {h}x{w} -> {oh}x{ow} reads past the input")
    return ResizeBilinearFloatData(
        (shape,), (out.dtype,), iy=iy, ix=ix, y0=y0, y1=y1, x0=x0, x1=x1, integer=x.dtype == "uint8"
    )


# ---------------------------------------------------------------------------------------------
# RESIZE_NEAREST_NEIGHBOR


def _nearest(out_size: int, in_size: int, align: bool, half: bool) -> np.ndarray:
    """GetNearestNeighbor for every output coordinate (float32 scale, floor or roundf, clamped)."""
    if out_size == 0:
        return np.zeros(0, np.int64)
    if align and out_size > 1:
        scale = f32(in_size - 1) / f32(out_size - 1)
    else:
        scale = f32(in_size) / f32(out_size)
    t = (np.arange(out_size, dtype=f32) + f32(0.5 if half else 0.0)) * scale
    if align:
        idx = round_half_away_from_zero(t)  # TfLiteRound = roundf
    else:
        idx = np.floor(t)
    idx = np.minimum(idx.astype(np.int64), in_size - 1)
    if half:
        idx = np.maximum(idx, 0)
    return idx


@dataclass(frozen=True)
class ResizeNearestData(MovementData):
    """RESIZE_NEAREST_NEIGHBOR (reference_ops::ResizeNearestNeighbor): ``out[b, y, x] = in[b, ys[y], xs[x]]``."""

    #: Source row per output row and source column per output column.
    ys: np.ndarray = None  # type: ignore[assignment]
    xs: np.ndarray = None  # type: ignore[assignment]

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """The selected pixels (a raw copy)."""
        x = inputs[0]
        assert x is not None
        return [contiguous(np.asarray(x)[:, self.ys][:, :, self.xs])]


def prepare_resize_nearest_neighbor(ctx: OpContext) -> ResizeNearestData:
    """RESIZE_NEAREST_NEIGHBOR (LiteRT ``resize_nearest_neighbor.cc``, REF): 4-D input, int32 size [2].

    Types: int8, uint8, int16, int32, float32. Both ``align_corners`` and ``half_pixel_centers`` may be
    set (LiteRT accepts it). refquant rejects negative sizes.
    """
    ctx.check_counts(2, 1)
    _check_nhwc(ctx)
    x = ctx.input(0)
    out = ctx.output(0)
    ctx.check_dtype(x, ("int8", "uint8", "int16", "int32", "float32"), "input")
    require_output_dtype(ctx, out, x.dtype)
    oh, ow = _size(ctx)
    if oh < 0 or ow < 0:
        raise ctx.error(f"size ({oh}, {ow}) must not be negative", ctx.input(1))
    align = bool(ctx.option("align_corners", False))
    half = bool(ctx.option("half_pixel_centers", False))
    b, h, w, c = x.shape
    ys = _nearest(oh, h, align, half)
    xs = _nearest(ow, w, align, half)
    if (oh and b and (h == 0 or w == 0)) or (ys.size and ys.min() < 0) or (xs.size and xs.min() < 0):
        raise ctx.error(f"cannot resize an empty {h}x{w} image to {oh}x{ow}", x)
    return ResizeNearestData(((b, oh, ow, c),), (out.dtype,), ys=ys, xs=xs)
