"""Hypothesis strategies for quantized kernels and small .tflite models, in the manner of ``hypothesis.extra.numpy``.

For hardware, compiler and firmware teams who test their quantized kernels with property-based tests,
and for refquant's own differential suite against LiteRT::

    from hypothesis import given
    import refquant.strategies as rqs
    from refquant.testing import assert_matches_reference

    @given(rqs.op_models("CONV_2D", "int8"))
    def test_conv(case):
        assert_matches_reference(my_backend, case)

Building blocks: :func:`scales`, :func:`zero_points`, :func:`quant_params` (per-tensor or per-channel,
symmetric or asymmetric, int8 / int16 / uint8, scales over several decades), :func:`quantized_arrays`,
:func:`quantized_multipliers`, :func:`conv_geometries` and :func:`pool_geometries` (valid by
construction). Whole models: :func:`op_models` draws a one-operator model of any op refquant supports
(see :func:`supported_op_dtypes`) and :func:`graph_models` small graphs of several operators (chains
and branches). Both produce :class:`refquant.testing.Case` objects (``.model`` bytes, ``.inputs`` in
model input order, ``.description``).

Guarantees:

* **LiteRT accepts the models.** Every parameter is drawn inside what LiteRT's reference kernels
  (``BUILTIN_REF``, ai-edge-litert 2.3) accept and run: never a model that makes LiteRT abort its
  process, and (measured by ``tests/test_strategies.py``) fewer than 5% that it rejects in Prepare.
  refquant runs every one of them.
* **Arguments are validated up front.** Every function checks its arguments when called, before any
  drawing, and raises :class:`InvalidArgument` (a :class:`refquant.RefquantError` and a
  ``hypothesis.errors.InvalidArgument``) naming the argument, the value and what is allowed.
* **Shrinking ends at small, readable cases:** shapes shrink towards one element, scales towards 1
  (then other powers of two), zero points towards 0, values towards 0, options towards their
  simplest setting (stride 1, no dilation, no activation).

dtype names the activation type of a model: ``"int8"``, ``"uint8"``, ``"int16"`` (int16 activations
with int8 weights: the 16x8 scheme), ``"float32"``, and for ops that have them ``"int32"``,
``"int64"`` and ``"bool"`` (unquantized integer / boolean tensors).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument as _HypothesisInvalidArgument

from .errors import RefquantError
from .model import Model, QuantParams
from .testing.harness import Case
from .tflite.builder import ModelBuilder

__all__ = [
    "InvalidArgument",
    "QUANTIZED_DTYPES",
    "ACTIVATIONS",
    "ConvGeometry",
    "PoolGeometry",
    "scales",
    "zero_points",
    "quant_params",
    "quantized_arrays",
    "quantized_multipliers",
    "conv_geometries",
    "pool_geometries",
    "op_models",
    "graph_models",
    "supported_op_dtypes",
    "GRAPH_OPS",
]


class InvalidArgument(RefquantError, _HypothesisInvalidArgument):
    """An argument of a :mod:`refquant.strategies` function is invalid.

    Raised when the strategy is built (at the call), never later while drawing. It is both a
    :class:`refquant.RefquantError` and a ``hypothesis.errors.InvalidArgument``, so either
    ``except`` clause catches it.
    """


#: Quantized activation types.
QUANTIZED_DTYPES: tuple[str, ...] = ("int8", "uint8", "int16")
#: Fused activations the strategies draw (LiteRT's ``ActivationFunctionType`` names).
ACTIVATIONS: tuple[str, ...] = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")

_INT_RANGES = {
    "int8": (-128, 127),
    "uint8": (0, 255),
    "int16": (-32768, 32767),
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
}
_F32 = np.float32


# ---------------------------------------------------------------------------------------------
# Argument validation


def _fail(message: str) -> InvalidArgument:
    return InvalidArgument(message)


def _check_int(name: str, value: Any, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise _fail(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    value = int(value)
    if value < lo or (hi is not None and value > hi):
        bound = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise _fail(f"{name} must be {bound}, got {value}")
    return value


def _check_float(name: str, value: Any, *, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise _fail(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    v = float(value)
    if not math.isfinite(v) or (positive and v <= 0):
        raise _fail(f"{name} must be a finite number{' > 0' if positive else ''}, got {value!r}")
    return v


def _check_choice(name: str, value: Any, choices: Sequence[Any]) -> Any:
    if not isinstance(value, str) and not isinstance(value, bool) and value is not None:
        raise _fail(f"{name} must be one of {list(choices)}, got {value!r} ({type(value).__name__})")
    if value not in choices:
        raise _fail(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def _check_opt_bool(name: str, value: Any) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise _fail(f"{name} must be True, False or None, got {value!r}")
    return value


# ---------------------------------------------------------------------------------------------
# Scales, zero points, quantization parameters, multipliers


def _f32(v: float) -> float:
    return float(_F32(v))


def _nice_values(lo: float, hi: float, centre: float = 1.0) -> list[float]:
    """Powers of two in [lo, hi], the one nearest ``centre`` first (the shrink target)."""
    if hi < lo:
        return []
    k_lo, k_hi = math.ceil(math.log2(lo) - 1e-12), math.floor(math.log2(hi) + 1e-12)
    vals = [2.0**k for k in range(k_lo, k_hi + 1) if lo <= 2.0**k <= hi]
    c = math.log2(centre)
    return sorted(vals, key=lambda v: (abs(math.log2(v) - c), v))[:12]


def _f32_inside(lo: float, hi: float) -> tuple[float, float]:
    """The smallest and largest float32 values inside [lo, hi]."""
    lo32, hi32 = _F32(lo), _F32(hi)
    if float(lo32) < lo:
        lo32 = np.nextafter(lo32, _F32(np.inf))
    if float(hi32) > hi:
        hi32 = np.nextafter(hi32, _F32(-np.inf))
    return float(lo32), float(hi32)


@st.composite
def _log_uniform(draw: st.DrawFn, lo: float, hi: float, nice: tuple[float, ...]) -> float:
    """A float32 value in [lo, hi]: a power of two (one draw in four; shrinks to ``nice[0]``) or log-uniform."""
    if nice and draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from(nice))
    lo32, hi32 = _f32_inside(lo, hi)
    if lo32 >= hi32:  # a single value (or none in float32: take the nearest)
        return lo32 if lo32 == hi32 else _f32(lo)
    e = draw(st.floats(math.log10(lo), math.log10(hi)))
    return min(max(_f32(10.0**e), lo32), hi32)


def _ratio(lo: float, hi: float, centre: float = 1.0) -> st.SearchStrategy[float]:
    """Internal: a positive factor in [lo, hi], log-uniform or a power of two (shrinks to the one nearest ``centre``)."""
    return _log_uniform(lo, hi, tuple(_nice_values(lo, hi, centre)))


def scales(min_value: float = 1e-4, max_value: float = 1.0) -> st.SearchStrategy[float]:
    """Quantization scales: positive float32 values in ``[min_value, max_value]``, over several decades.

    One draw in four is a power of two (these make requantization ties frequent); the others are
    log-uniform. Shrinks towards 1.0 when it is in range, else the power of two nearest 1.
    Values are exactly representable in float32 (a .tflite file stores float32 scales).
    """
    lo = _check_float("min_value", min_value)
    hi = _check_float("max_value", max_value)
    if lo > hi:
        raise _fail(f"min_value {lo!r} must not exceed max_value {hi!r}")
    if lo < 1e-30 or hi > 1e30:
        raise _fail(f"scales must lie in [1e-30, 1e30] (float32 with room to multiply); got [{lo!r}, {hi!r}]")
    return _log_uniform(lo, hi, tuple(_nice_values(lo, hi)))


def zero_points(dtype: str = "int8", *, symmetric: bool = False) -> st.SearchStrategy[int]:
    """Zero points for ``dtype``: the full type range (shrinking to 0), or the symmetric one.

    ``symmetric=True`` gives 0 (128 for uint8). int16 is always symmetric (LiteRT requires zero
    point 0 for int16 activations).
    """
    _check_choice("dtype", dtype, QUANTIZED_DTYPES)
    if not isinstance(symmetric, bool):
        raise _fail(f"symmetric must be True or False, got {symmetric!r}")
    if dtype == "int16" or (symmetric and dtype == "int8"):
        return st.just(0)
    if symmetric:
        return st.just(128)
    lo, hi = _INT_RANGES[dtype]
    return st.integers(lo, hi)


def quant_params(
    dtype: str = "int8",
    *,
    channels: int | None = None,
    axis: int = 0,
    symmetric: bool = False,
    min_scale: float = 1e-4,
    max_scale: float = 1.0,
) -> st.SearchStrategy[QuantParams]:
    """:class:`refquant.QuantParams` for a tensor of ``dtype``: per-tensor, or per-channel when ``channels`` is given.

    ``channels``: number of per-channel scales along ``axis`` (``None``: one per-tensor scale).
    ``symmetric``: zero points 0 (128 for uint8); int16 is always symmetric. Scales come from
    :func:`scales` (``min_scale`` .. ``max_scale``); each channel draws its own.
    """
    _check_choice("dtype", dtype, QUANTIZED_DTYPES)
    if channels is not None:
        _check_int("channels", channels, 1, 4096)
    _check_int("axis", axis, 0, 7)
    sc = scales(min_scale, max_scale)
    zps = zero_points(dtype, symmetric=symmetric)
    n = 1 if channels is None else int(channels)

    @st.composite
    def build(draw: st.DrawFn) -> QuantParams:
        s = [draw(sc) for _ in range(n)]
        z = [draw(zps) for _ in range(n)]
        return QuantParams(np.array(s, np.float32), np.array(z, np.int64), axis if channels is not None else 0)

    return build()


def quantized_arrays(
    dtype: str,
    shape: Sequence[int] | st.SearchStrategy[tuple[int, ...]],
    *,
    min_value: int | None = None,
    max_value: int | None = None,
) -> st.SearchStrategy[np.ndarray]:
    """Integer arrays of ``dtype`` (int8, uint8, int16, int32, int64) and ``shape`` (a tuple or a strategy).

    Values span the whole type range (or ``[min_value, max_value]``). Arrays of up to 64 elements draw
    every element (they shrink element by element towards 0, or the bound nearest 0); larger ones are
    filled from a drawn seed.
    """
    _check_choice("dtype", dtype, tuple(_INT_RANGES))
    tlo, thi = _INT_RANGES[dtype]
    lo = tlo if min_value is None else _check_int("min_value", min_value, tlo, thi)
    hi = thi if max_value is None else _check_int("max_value", max_value, tlo, thi)
    if lo > hi:
        raise _fail(f"min_value {lo} must not exceed max_value {hi}")
    if isinstance(shape, st.SearchStrategy):
        shapes = shape
    else:
        if isinstance(shape, (int, np.integer)):
            shape = (int(shape),)
        if not isinstance(shape, Sequence):
            raise _fail(f"shape must be a tuple of ints or a strategy, got {shape!r}")
        dims = tuple(_check_int(f"shape[{i}]", d, 0, 1 << 20) for i, d in enumerate(shape))
        if int(np.prod(dims, dtype=np.int64)) > 1 << 22:
            raise _fail(f"shape {list(dims)} has more than 2**22 elements")
        shapes = st.just(dims)

    @st.composite
    def build(draw: st.DrawFn) -> np.ndarray:
        return _ints(draw, dtype, tuple(draw(shapes)), lo, hi)

    return build()


@st.composite
def _multiplier(draw: st.DrawFn, min_shift: int, max_shift: int) -> tuple[int, int]:
    shift_lo, shift_hi = min_shift, max_shift
    target = min(max(0, shift_lo), shift_hi)
    edges = sorted({shift_lo, shift_hi, target}, key=lambda s: (abs(s - target), s))
    if draw(st.integers(0, 3)) == 0:
        shift = draw(st.sampled_from(edges))
    else:
        shift = target + draw(st.integers(shift_lo - target, shift_hi - target))
    m_edges = [1 << 30, (1 << 31) - 1, (1 << 30) + 1, (1 << 31) - 2]
    m = draw(st.sampled_from(m_edges)) if draw(st.integers(0, 3)) == 0 else draw(st.integers(1 << 30, (1 << 31) - 1))
    return m, shift


def quantized_multipliers(*, min_shift: int = -31, max_shift: int = 30) -> st.SearchStrategy[tuple[int, int]]:
    """``(multiplier, shift)`` pairs as ``QuantizeMultiplier`` produces them: ``M`` in ``[2^30, 2^31)``.

    The real multiplier is ``M * 2^(shift - 31)``. Edge cases come often: ``M`` at 2^30, 2^30 + 1,
    2^31 - 2 and 2^31 - 1, shifts at both bounds. Shrinks towards ``(2^30, 0)`` (exactly 0.5).
    """
    lo = _check_int("min_shift", min_shift, -31, 30)
    hi = _check_int("max_shift", max_shift, -31, 30)
    if lo > hi:
        raise _fail(f"min_shift {lo} must not exceed max_shift {hi}")
    return _multiplier(lo, hi)


# ---------------------------------------------------------------------------------------------
# Geometries


def _same_or_valid(padding: str, size: int, k_eff: int, stride: int) -> tuple[int, int]:
    """(output size, padding before) per LiteRT ``padding.h``."""
    if padding == "SAME":
        out = (size + stride - 1) // stride
    else:
        out = (size + stride - k_eff) // stride
    total = max(0, (out - 1) * stride + k_eff - size)
    return out, total // 2


@dataclass(frozen=True)
class ConvGeometry:
    """A CONV_2D / DEPTHWISE_CONV_2D geometry that LiteRT accepts (NHWC activations).

    ``groups`` > 1 is a grouped CONV_2D (filter depth ``in_channels // groups``); for a depthwise
    geometry ``depth_multiplier`` = ``out_channels // in_channels`` and ``groups`` is 1.
    """

    batch: int
    in_h: int
    in_w: int
    in_channels: int
    out_channels: int
    kernel_h: int
    kernel_w: int
    stride_h: int
    stride_w: int
    dilation_h: int
    dilation_w: int
    padding: str
    groups: int = 1
    depthwise: bool = False

    @property
    def depth_multiplier(self) -> int:
        """Output channels per input channel (depthwise geometries)."""
        return self.out_channels // self.in_channels

    @property
    def out_h(self) -> int:
        """Output height (``padding.h``)."""
        return _same_or_valid(self.padding, self.in_h, (self.kernel_h - 1) * self.dilation_h + 1, self.stride_h)[0]

    @property
    def out_w(self) -> int:
        """Output width (``padding.h``)."""
        return _same_or_valid(self.padding, self.in_w, (self.kernel_w - 1) * self.dilation_w + 1, self.stride_w)[0]

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """``(batch, in_h, in_w, in_channels)``."""
        return (self.batch, self.in_h, self.in_w, self.in_channels)

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        """``(batch, out_h, out_w, out_channels)``."""
        return (self.batch, self.out_h, self.out_w, self.out_channels)

    @property
    def filter_shape(self) -> tuple[int, int, int, int]:
        """CONV_2D ``[O, KH, KW, I / groups]``; DEPTHWISE_CONV_2D ``[1, KH, KW, O]``."""
        if self.depthwise:
            return (1, self.kernel_h, self.kernel_w, self.out_channels)
        return (self.out_channels, self.kernel_h, self.kernel_w, self.in_channels // self.groups)

    @property
    def options(self) -> dict[str, Any]:
        """The builtin options of the operator (padding, strides, dilations; depth multiplier)."""
        o: dict[str, Any] = dict(
            padding=self.padding,
            stride_h=self.stride_h,
            stride_w=self.stride_w,
            dilation_h_factor=self.dilation_h,
            dilation_w_factor=self.dilation_w,
        )
        if self.depthwise:
            o["depth_multiplier"] = self.depth_multiplier
        return o


@dataclass(frozen=True)
class PoolGeometry:
    """An AVERAGE_POOL_2D / MAX_POOL_2D / L2_POOL_2D geometry that LiteRT accepts (NHWC)."""

    batch: int
    in_h: int
    in_w: int
    channels: int
    filter_h: int
    filter_w: int
    stride_h: int
    stride_w: int
    padding: str

    @property
    def out_h(self) -> int:
        """Output height."""
        return _same_or_valid(self.padding, self.in_h, self.filter_h, self.stride_h)[0]

    @property
    def out_w(self) -> int:
        """Output width."""
        return _same_or_valid(self.padding, self.in_w, self.filter_w, self.stride_w)[0]

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """``(batch, in_h, in_w, channels)``."""
        return (self.batch, self.in_h, self.in_w, self.channels)

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        """``(batch, out_h, out_w, channels)``."""
        return (self.batch, self.out_h, self.out_w, self.channels)

    @property
    def options(self) -> dict[str, Any]:
        """The Pool2DOptions fields (without the fused activation)."""
        return dict(
            padding=self.padding,
            stride_h=self.stride_h,
            stride_w=self.stride_w,
            filter_height=self.filter_h,
            filter_width=self.filter_w,
        )


@st.composite
def _kernel_dim(
    draw: st.DrawFn, padding: str, max_side: int, max_kernel: int, max_dilation: int
) -> tuple[int, int, int]:
    """(input size, kernel size, dilation) along one axis; VALID inputs cover the dilated kernel."""
    k = draw(st.integers(1, min(max_kernel, max_side)))
    d_hi = 1 if k == 1 else max(1, min(max_dilation, (max_side - 1) // (k - 1)))
    d = draw(st.integers(1, d_hi))
    eff = (k - 1) * d + 1
    size = draw(st.integers(eff if padding == "VALID" else 1, max(max_side, eff)))
    return size, k, d


@st.composite
def _conv_geometry(
    draw: st.DrawFn,
    max_side: int,
    max_kernel: int,
    max_stride: int,
    max_dilation: int,
    max_channels: int,
    max_batch: int,
    max_groups: int,
    depthwise: bool,
    padding: str | None,
) -> ConvGeometry:
    batch = draw(st.integers(1, max_batch))
    pad = padding or draw(st.sampled_from(["SAME", "VALID"]))
    in_h, kh, dh = draw(_kernel_dim(pad, max_side, max_kernel, max_dilation))
    in_w, kw, dw = draw(_kernel_dim(pad, max_side, max_kernel, max_dilation))
    sh, sw = draw(st.integers(1, max_stride)), draw(st.integers(1, max_stride))
    if depthwise:
        c = draw(st.integers(1, max_channels))
        o = c * draw(st.integers(1, 3))
        groups = 1
    else:
        groups = draw(st.integers(1, max_groups))
        c = groups * draw(st.integers(1, max(1, max_channels // groups)))
        o = groups * draw(st.integers(1, max(1, max_channels // groups)))
    return ConvGeometry(batch, in_h, in_w, c, o, kh, kw, sh, sw, dh, dw, pad, groups, depthwise)


def conv_geometries(
    *,
    max_side: int = 8,
    max_kernel: int = 4,
    max_stride: int = 3,
    max_dilation: int = 3,
    max_channels: int = 4,
    max_batch: int = 2,
    max_groups: int = 1,
    depthwise: bool = False,
    padding: str | None = None,
) -> st.SearchStrategy[ConvGeometry]:
    """:class:`ConvGeometry` values valid by construction: with VALID padding the input covers the dilated
    kernel, every output has at least one pixel, grouped convolutions divide their channels.

    ``padding``: ``"SAME"``, ``"VALID"`` or ``None`` (either). ``depthwise``: filter ``[1, KH, KW, C*dm]``
    with a depth multiplier of 1 to 3. ``max_groups`` > 1 allows grouped CONV_2D. Shrinks towards a
    single pixel, one channel, a 1x1 kernel, stride and dilation 1, SAME padding.
    """
    ms = _check_int("max_side", max_side, 1, 1024)
    mk = _check_int("max_kernel", max_kernel, 1, 64)
    mst = _check_int("max_stride", max_stride, 1, 64)
    md = _check_int("max_dilation", max_dilation, 1, 64)
    mc = _check_int("max_channels", max_channels, 1, 1024)
    mb = _check_int("max_batch", max_batch, 1, 64)
    mg = _check_int("max_groups", max_groups, 1, 64)
    if not isinstance(depthwise, bool):
        raise _fail(f"depthwise must be True or False, got {depthwise!r}")
    if depthwise and mg != 1:
        raise _fail("max_groups applies to CONV_2D geometries; depthwise geometries have no groups")
    if mg > mc:
        raise _fail(f"max_groups {mg} exceeds max_channels {mc}: every group needs a channel")
    if padding is not None:
        _check_choice("padding", padding, ("SAME", "VALID"))
    return _conv_geometry(ms, mk, mst, md, mc, mb, mg, depthwise, padding)


@st.composite
def _pool_geometry(
    draw: st.DrawFn,
    max_side: int,
    max_filter: int,
    max_stride: int,
    max_channels: int,
    max_batch: int,
    padding: str | None,
) -> PoolGeometry:
    batch = draw(st.integers(1, max_batch))
    pad = padding or draw(st.sampled_from(["SAME", "VALID"]))
    fh = draw(st.integers(1, min(max_filter, max_side) if pad == "VALID" else max_filter))
    fw = draw(st.integers(1, min(max_filter, max_side) if pad == "VALID" else max_filter))
    in_h = draw(st.integers(fh if pad == "VALID" else 1, max(max_side, fh)))
    in_w = draw(st.integers(fw if pad == "VALID" else 1, max(max_side, fw)))
    c = draw(st.integers(1, max_channels))
    sh, sw = draw(st.integers(1, max_stride)), draw(st.integers(1, max_stride))
    return PoolGeometry(batch, in_h, in_w, c, fh, fw, sh, sw, pad)


def pool_geometries(
    *,
    max_side: int = 8,
    max_filter: int = 4,
    max_stride: int = 3,
    max_channels: int = 4,
    max_batch: int = 2,
    padding: str | None = None,
) -> st.SearchStrategy[PoolGeometry]:
    """:class:`PoolGeometry` values valid by construction (VALID windows fit; every window has an
    in-image tap). Shrinks towards one pixel, a 1x1 window, stride 1, SAME padding."""
    ms = _check_int("max_side", max_side, 1, 1024)
    mf = _check_int("max_filter", max_filter, 1, 64)
    mst = _check_int("max_stride", max_stride, 1, 64)
    mc = _check_int("max_channels", max_channels, 1, 1024)
    mb = _check_int("max_batch", max_batch, 1, 64)
    if padding is not None:
        _check_choice("padding", padding, ("SAME", "VALID"))
    return _pool_geometry(ms, mf, mst, mc, mb, padding)


# ---------------------------------------------------------------------------------------------
# Values


#: The first elements of every array are drawn one by one (they shrink individually and keep their
#: place when a shape shrinks); the rest is a background plus a few drawn elements (see :func:`_array`).
_EXPLICIT = 16
#: Positions of the tail's drawn elements come from this fixed range, taken modulo the tail's size, so
#: shrinking a shape never changes how later draws are read.
_POSITIONS = st.integers(0, 2**16 - 1)


def _array(
    draw: st.DrawFn,
    n: int,
    element: st.SearchStrategy[Any],
    dense: Callable[[np.random.Generator, int], np.ndarray],
    zero: Any,
    dt: Any,
) -> np.ndarray:
    """A flat array of ``n`` values.

    The first 16 are drawn one by one from ``element``. The others are a background (zeros, one drawn
    constant, or ``dense(rng, size)`` from a drawn seed: uniform values) with up to six drawn elements
    at drawn positions. The background choices are drawn for every array, used or not, so the number
    of draws changes only in the explicit head when a shape shrinks. Everything shrinks towards
    ``zero``.
    """
    k = min(n, _EXPLICIT)
    head = [draw(element) for _ in range(k)]
    mode = draw(st.integers(0, 5))  # 0: zeros (the shrink target), 1: one constant, 2..5: dense random
    background: Any = zero
    if mode == 1:
        background = draw(element)
    elif mode >= 2:
        background = draw(st.integers(0, 2**32 - 1))
    extra = draw(st.lists(st.tuples(_POSITIONS, element), max_size=6))
    flat = np.full(n, zero, dtype=dt)
    if n > k:
        if mode == 1:
            flat[k:] = background
        elif mode >= 2:
            flat[k:] = dense(np.random.default_rng(background), n - k).astype(dt)
        for pos, v in reversed(extra):  # reversed: the first element drawn for a position wins
            flat[k + pos % (n - k)] = v
    flat[:k] = np.array(head, dtype=dt)
    return flat


def _ints(draw: st.DrawFn, dtype: str, shape: tuple[int, ...], lo: int, hi: int) -> np.ndarray:
    """Integer values in [lo, hi] (see :func:`_array`); dense backgrounds are uniform with the bounds sprinkled in."""
    shape = tuple(int(d) for d in shape)
    n = int(np.prod(shape, dtype=np.int64)) if shape else 1
    r_lo, r_hi = (max(lo, -(2**62)), min(hi, 2**62)) if hi - lo >= 2**63 - 1 else (lo, hi)

    def dense(rng: np.random.Generator, size: int) -> np.ndarray:
        v = rng.integers(r_lo, r_hi, size=size, endpoint=True, dtype=np.int64)
        edge = rng.random(size)
        return np.where(edge < 0.03, lo, np.where(edge > 0.97, hi, v))

    return _array(draw, n, st.integers(lo, hi), dense, min(max(0, lo), hi), np.dtype(dtype)).reshape(shape)


def _floats(
    draw: st.DrawFn, shape: tuple[int, ...], lo: float = -8.0, hi: float = 8.0, halves: bool = False
) -> np.ndarray:
    """float32 values in [lo, hi] (see :func:`_array`); ``halves``: multiples of 1/2 often (rounding ties)."""
    shape = tuple(int(d) for d in shape)
    n = int(np.prod(shape, dtype=np.int64)) if shape else 1
    element: st.SearchStrategy[float] = st.floats(lo, hi, width=32, allow_subnormal=False)
    if halves:
        element = st.integers(math.ceil(lo * 2), math.floor(hi * 2)).map(lambda k: k / 2) | element

    def dense(rng: np.random.Generator, size: int) -> np.ndarray:
        v = rng.uniform(lo, hi, size=size)
        if halves:
            v = np.where(rng.random(size) < 0.3, np.round(v * 2) / 2, v)
        return np.clip(v, lo, hi)

    return _array(draw, n, element, dense, min(max(0.0, lo), hi), np.float32).reshape(shape)


def _values(
    draw: st.DrawFn, dtype: str, shape: tuple[int, ...], lo: float | None = None, hi: float | None = None
) -> np.ndarray:
    """Values of any dtype: integers over the type range (or [lo, hi]), floats in [-8, 8], booleans."""
    shape = tuple(int(d) for d in shape)
    if dtype == "bool":
        return _ints(draw, "uint8", shape, 0, 1).astype(bool)
    if dtype in ("float32", "float16"):
        v = _floats(draw, shape, -8.0 if lo is None else lo, 8.0 if hi is None else hi)
        return v.astype(dtype)
    tlo, thi = _INT_RANGES[dtype]
    if dtype in ("int32", "int64") and lo is None:
        # Mostly moderate values (readable, no wrapping); sometimes the full range (wrapping arithmetic).
        if draw(st.integers(0, 3)) < 3:
            tlo, thi = -1000, 1000
    return _ints(draw, dtype, shape, int(tlo if lo is None else lo), int(thi if hi is None else hi))


# ---------------------------------------------------------------------------------------------
# Model assembly and descriptions


@dataclass(frozen=True)
class _Q:
    """Quantization of one tensor: per-tensor (float scale, int zp) or per-channel (tuples) along ``axis``."""

    scale: float | tuple[float, ...]
    zp: int | tuple[int, ...] = 0
    axis: int = 0

    def kwargs(self) -> dict[str, Any]:
        return {"scale": self.scale, "zero_point": self.zp, "quantized_dimension": self.axis}

    @property
    def s(self) -> float:
        """The first scale."""
        return float(self.scale[0] if isinstance(self.scale, tuple) else self.scale)

    @property
    def z(self) -> int:
        """The first zero point."""
        return int(self.zp[0] if isinstance(self.zp, tuple) else self.zp)


class _Net:
    """A ModelBuilder that remembers the graph-input arrays (in order) and builds a :class:`Case`."""

    def __init__(self) -> None:
        self.b = ModelBuilder("refquant.strategies")
        self.feeds: list[np.ndarray] = []
        self.names: set[str] = set()

    def _name(self, name: str) -> str:
        base, k = name, 1
        while name in self.names:
            name = f"{base}{k}"
            k += 1
        self.names.add(name)
        return name

    def input(self, name: str, value: np.ndarray, q: _Q | None = None, dtype: str | None = None) -> int:
        value = np.asarray(value)
        dt = dtype or value.dtype.name
        self.feeds.append(value)
        return self.b.add_input(self._name(name), value.shape, dt, **(q.kwargs() if q else {}))

    def const(self, name: str, value: Any, dtype: str | None = None, q: _Q | None = None) -> int:
        arr = np.asarray(value)
        dt = dtype or arr.dtype.name
        return self.b.add_constant(self._name(name), arr.astype(dt), dt, **(q.kwargs() if q else {}))

    def tensor(self, name: str, shape: Sequence[int], dtype: str, q: _Q | None = None) -> int:
        return self.b.add_tensor(self._name(name), tuple(shape), dtype, **(q.kwargs() if q else {}))

    def op(self, opcode: str, ins: Sequence[int], outs: Sequence[int], **options: Any) -> None:
        self.b.add_operator(opcode, ins, outs, **options)

    def case(self, outputs: Sequence[int], title: str) -> Case:
        self.b.mark_output(*outputs)
        model = self.b.model()
        data = self.b.build()
        return Case(data, list(self.feeds), _describe(model, title, self.feeds))


def _num(v: float) -> str:
    return f"{float(v):.7g}"


def _qtext(q: QuantParams | None) -> str:
    if q is None or q.scale.size == 0:
        return ""
    if q.scale.size == 1:
        return f"scale {_num(q.scale[0])}, zp {int(q.zero_point[0])}"
    zps = sorted(set(int(z) for z in q.zero_point))
    zp_text = f"zp {zps[0]}" if len(zps) == 1 else f"zps {[int(z) for z in q.zero_point]}"
    return f"scales {[float(_num(s)) for s in q.scale]} (axis {q.quantized_dimension}), {zp_text}"


def _nested(v: Any) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(_nested(x) for x in v) + "]"
    if isinstance(v, float):
        return _num(v)
    return str(v)


def _vtext(a: np.ndarray) -> str:
    a = np.asarray(a)
    if a.size <= 16:
        if a.dtype.kind == "f":
            return "= " + _nested(a.astype(np.float64).tolist())
        return "= " + _nested(a.tolist())
    if a.dtype == bool:
        return f"= {int(a.sum())} of {a.size} true"
    if a.dtype.kind == "f":
        return f"values {_num(a.min())} .. {_num(a.max())}"
    return f"values {a.min()} .. {a.max()}"


_DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {}


def _option_text(model: Model, op: Any) -> str:
    from .tflite.reader import default_options

    table = op.options_type
    if table not in _DEFAULT_OPTIONS:
        try:
            _DEFAULT_OPTIONS[table] = default_options(table) if table else {}
        except Exception:  # noqa: BLE001 - descriptions never fail a draw
            _DEFAULT_OPTIONS[table] = {}
    defaults = _DEFAULT_OPTIONS[table]
    parts = []
    for k, v in (op.options or {}).items():
        if k in defaults and defaults[k] == v and k not in ("padding",):
            continue
        if isinstance(v, float):
            v = _num(v)
        parts.append(f"{k}={v}")
    return ", ".join(parts)


def _describe(model: Model, title: str, feeds: Sequence[np.ndarray]) -> str:
    """A readable summary: the title, each tensor (role, type, shape, quantization, small values), each op."""
    sg = model.main
    inputs = {t: k for k, t in enumerate(sg.inputs)}
    outputs = set(sg.outputs)
    lines = [title]
    for t in sg.tensors:
        if t.index in inputs:
            role, vals = "input", _vtext(feeds[inputs[t.index]])
        elif t.data is not None:
            role, vals = "const", _vtext(t.data)
        else:
            role, vals = ("output" if t.index in outputs else "tensor"), ""
        q = _qtext(t.quantization)
        shape = f"{t.dtype}{list(t.shape)}" if t.data is not None or t.index in inputs else t.dtype
        lines.append(f"  {t.index} {t.name} ({role}) {shape}" + (f", {q}" if q else "") + (f" {vals}" if vals else ""))
    for op in sg.operators:
        ins = ", ".join("-" if i < 0 else sg.tensors[i].name for i in op.inputs)
        outs = ", ".join(sg.tensors[i].name for i in op.outputs)
        opts = _option_text(model, op)
        lines.append(f"  {op.opcode}({ins}) -> {outs}" + (f"  [{opts}]" if opts else ""))
    for k, other in enumerate(model.subgraphs[1:], 1):
        ops = "; ".join(
            f"{op.opcode}({', '.join(other.tensors[i].name for i in op.inputs if i >= 0)})" for op in other.operators
        )
        lines.append(f"  subgraph {k} {other.name!r}: {ops}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# op_models: configuration, registry


@dataclass(frozen=True)
class _Cfg:
    """The validated constraints of one op_models call."""

    max_side: int = 4
    max_rank: int = 4
    max_batch: int = 2
    per_channel: bool | None = None
    activation: str | None = None
    output_dtype: str | None = None


_Builder = Callable[[st.DrawFn, str, str, _Cfg], Case]


@dataclass(frozen=True)
class _OpSpec:
    build: _Builder
    dtypes: tuple[str, ...]
    constraints: frozenset[str]
    min_rank: int
    output_dtypes: dict[str, tuple[str, ...]]


_OPS: dict[str, _OpSpec] = {}
_COMMON = frozenset({"max_side", "max_rank", "max_batch"})


def _op(
    *opcodes: str,
    dtypes: tuple[str, ...],
    constraints: tuple[str, ...] = (),
    min_rank: int = 0,
    output_dtypes: dict[str, tuple[str, ...]] | None = None,
) -> Callable[[_Builder], _Builder]:
    def deco(fn: _Builder) -> _Builder:
        for opcode in opcodes:
            _OPS[opcode] = _OpSpec(fn, dtypes, _COMMON | frozenset(constraints), min_rank, output_dtypes or {})
        return fn

    return deco


def supported_op_dtypes() -> dict[str, tuple[str, ...]]:
    """``{opcode: dtypes}``: every (op, dtype) :func:`op_models` can draw, for refquant's registered ops.

    refquant's internal ``REFQUANT_IDENTITY`` (float shadow graphs only; not a TFLite builtin) is
    left out.
    """
    from .ops import REGISTRY

    return {op: spec.dtypes for op, spec in sorted(_OPS.items()) if op in REGISTRY}


def op_models(opcode: str, dtype: str = "int8", **constraints: Any) -> st.SearchStrategy[Case]:
    """One-operator models of ``opcode`` with ``dtype`` activations, as :class:`refquant.testing.Case` objects.

    ``dtype``: ``"int8"``, ``"uint8"``, ``"int16"`` (int16 activations; int8 weights where the op has
    weights), ``"float32"``, and for ops that have them ``"int32"``, ``"int64"``, ``"bool"``;
    :func:`supported_op_dtypes` lists the pairs. The dtype is the type of the op's main input (for
    QUANTIZE from float32 it is ``"float32"``; for CAST, ARG_MAX, ARG_MIN, SHAPE and the comparisons the
    input's type; for BATCH_MATMUL ``"int32"`` is int8 x int8 -> int32; for DEQUANTIZE ``"float32"`` is
    float16 -> float32; for IF and WHILE the type of the data their subgraphs carry).

    Constraints (keyword arguments; each is checked against the op):

    * ``max_side`` (int, default 4): the largest size of any activation dimension (spatial sizes of
      conv and pool inputs, dims of elementwise operands).
    * ``max_rank`` (int, default 4): the largest rank of ops whose inputs have a free rank; must be at
      least the op's minimum rank (4 for NHWC ops).
    * ``max_batch`` (int, default 2): the largest batch of NHWC ops.
    * ``per_channel`` (bool or None; CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV, FULLY_CONNECTED with
      int8 or int16): per-channel weight scales (True), one scale (False), or either (None, default).
    * ``activation`` (``"NONE"``, ``"RELU"``, ``"RELU6"``, ``"RELU_N1_TO_1"`` or None; ops with a fused
      activation): the fused activation; None draws one.
    * ``output_dtype`` (QUANTIZE, CAST, ARG_MAX, ARG_MIN, SHAPE, SOFTMAX): the output type; None draws one.

    Every model is one LiteRT's reference kernels accept and run (parameter ranges per op follow
    KERNEL_NOTES and the op tests), and one refquant runs. Raises :class:`InvalidArgument` at the call
    for an unknown op, an unsupported dtype, or a constraint that is unknown, inapplicable or out of range.
    """
    if not isinstance(opcode, str):
        raise _fail(f"opcode must be a string such as 'CONV_2D', got {opcode!r}")
    supported = supported_op_dtypes()
    if opcode not in supported:
        from .ops import REGISTRY

        why = (
            " (refquant's internal shadow-graph operator, not a TFLite builtin)"
            if opcode in REGISTRY
            else "; refquant does not support it"
        )
        close = [o for o in supported if opcode.upper() in o or o in opcode.upper()][:5]
        hint = f"; did you mean {close}?" if close else ""
        raise _fail(f"op_models has no models of {opcode!r}{why}{hint}")
    spec = _OPS[opcode]
    if not isinstance(dtype, str) or dtype not in spec.dtypes:
        raise _fail(f"{opcode} models exist for dtype {list(spec.dtypes)}; got {dtype!r}")
    cfg = _make_cfg(opcode, dtype, spec, constraints)
    build = spec.build

    @st.composite
    def draw_case(draw: st.DrawFn) -> Case:
        return build(draw, opcode, dtype, cfg)

    return draw_case()


def _make_cfg(opcode: str, dtype: str, spec: _OpSpec, constraints: dict[str, Any]) -> _Cfg:
    unknown = set(constraints) - {"max_side", "max_rank", "max_batch", "per_channel", "activation", "output_dtype"}
    if unknown:
        raise _fail(
            f"unknown constraint(s) {sorted(unknown)}; op_models accepts max_side, max_rank, max_batch, "
            "per_channel, activation, output_dtype"
        )
    inapplicable = set(constraints) - spec.constraints
    if inapplicable:
        raise _fail(
            f"constraint(s) {sorted(inapplicable)} do not apply to {opcode}; it accepts {sorted(spec.constraints)}"
        )
    cfg = _Cfg()
    if "max_side" in constraints:
        cfg = replace(cfg, max_side=_check_int("max_side", constraints["max_side"], 1, 64))
    if "max_rank" in constraints:
        r = _check_int("max_rank", constraints["max_rank"], 0, 6)
        if r < spec.min_rank:
            raise _fail(f"max_rank {r} is below the rank {opcode} needs ({spec.min_rank})")
        cfg = replace(cfg, max_rank=r)
    else:
        cfg = replace(cfg, max_rank=max(cfg.max_rank, spec.min_rank))
    if "max_batch" in constraints:
        cfg = replace(cfg, max_batch=_check_int("max_batch", constraints["max_batch"], 1, 16))
    if "per_channel" in constraints:
        pc = _check_opt_bool("per_channel", constraints["per_channel"])
        if pc and dtype in ("uint8", "float32"):
            raise _fail(f"per_channel=True needs int8 or int16 weights; {opcode} {dtype} has per-tensor weights only")
        cfg = replace(cfg, per_channel=pc)
    if "activation" in constraints:
        act = constraints["activation"]
        if act is not None:
            _check_choice("activation", act, ACTIVATIONS)
        cfg = replace(cfg, activation=act)
    if "output_dtype" in constraints:
        od = constraints["output_dtype"]
        if od is not None:
            allowed = spec.output_dtypes.get(dtype, ())
            if od not in allowed:
                raise _fail(f"output_dtype for {opcode} with {dtype} input must be one of {list(allowed)}; got {od!r}")
        cfg = replace(cfg, output_dtype=od)
    return cfg


# ---------------------------------------------------------------------------------------------
# Shared drawing helpers for the op builders


def _act(draw: st.DrawFn, cfg: _Cfg) -> str:
    return cfg.activation if cfg.activation is not None else draw(st.sampled_from(ACTIVATIONS))


def _zp(draw: st.DrawFn, dtype: str) -> int:
    return draw(zero_points(dtype)) if dtype in QUANTIZED_DTYPES else 0


def _aq(draw: st.DrawFn, dtype: str, lo: float = 1e-3, hi: float = 1.0) -> _Q | None:
    """Activation quantization (per tensor) for quantized dtypes; None otherwise."""
    if dtype not in QUANTIZED_DTYPES:
        return None
    s = draw(_log_uniform(lo, hi, tuple(_nice_values(lo, hi))))
    return _Q(s, _zp(draw, dtype))


def _shape(
    draw: st.DrawFn, cfg: _Cfg, min_rank: int = 0, max_rank: int | None = None, min_side: int = 1
) -> tuple[int, ...]:
    top = cfg.max_rank if max_rank is None else min(cfg.max_rank, max_rank)
    rank = draw(st.integers(min(min_rank, top), top))
    return tuple(draw(st.integers(min_side, max(min_side, cfg.max_side))) for _ in range(rank))


def _broadcast_pair(draw: st.DrawFn, cfg: _Cfg) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Two NumPy-broadcastable shapes (equal half of the time; otherwise trailing dims or 1s)."""
    full = _shape(draw, cfg)
    if not draw(st.booleans()):
        return full, full

    def one() -> tuple[int, ...]:
        r = draw(st.integers(0, len(full)))
        return tuple(d if draw(st.booleans()) else 1 for d in full[len(full) - r :])

    return one(), one()


def _bias_range(dtype: str, k: int) -> int:
    return min(2**12 * max(k, 1), 2**24) if dtype != "int16" else min(2**18 * max(k, 1), 2**30)


# ---------------------------------------------------------------------------------------------
# Convolutions and fully connected


_W_DT = {"int8": "int8", "int16": "int8", "uint8": "uint8", "float32": "float32"}


def _weights(draw: st.DrawFn, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    w_dt = _W_DT[dtype]
    if w_dt == "float32":
        return _floats(draw, shape, -2.0, 2.0)
    if w_dt == "uint8":
        return _ints(draw, "uint8", shape, 0, 255)
    return _ints(draw, "int8", shape, -127, 127)


def _weight_q(draw: st.DrawFn, dtype: str, cfg: _Cfg, channels: int, axis: int) -> _Q | None:
    """Weight quantization: per-channel (int8 weights, symmetric) or per-tensor."""
    if dtype == "float32":
        return None
    per_channel = cfg.per_channel if cfg.per_channel is not None else draw(st.booleans())
    if dtype == "uint8":
        return _Q(draw(scales(1e-3, 1.0)), draw(st.integers(0, 255)))
    if per_channel and channels > 1:
        s = tuple(draw(scales(1e-3, 1.0)) for _ in range(channels))
        return _Q(s, (0,) * channels, axis)
    return _Q(draw(scales(1e-3, 1.0)), 0)


def _out_scale(draw: st.DrawFn, s_in: float, s_w: float, taps: int) -> float:
    """An output scale s_in * s_w * f: f = 1 shrinks to the exact product; typical accumulators fit the range."""
    f = draw(_ratio(0.5, 64.0 * max(taps, 1)))
    return _f32(s_in * s_w * f)


def _geomean(s: float | tuple[float, ...]) -> float:
    v = np.asarray(s, np.float64).reshape(-1)
    return float(np.exp(np.log(v).mean()))


def _conv_bias(
    draw: st.DrawFn, dtype: str, n: int, taps: int, q_in: _Q | None, q_w: _Q | None, int32_bias: bool = False
) -> tuple[np.ndarray, str, _Q | None]:
    """(values, dtype, quantization) of a bias: int32 (int64 for int16 activations), scale s_in * s_w[c]."""
    if dtype == "float32":
        return _floats(draw, (n,), -2.0, 2.0), "float32", None
    assert q_in is not None and q_w is not None
    s_w = np.asarray(q_w.scale, np.float32).reshape(-1)
    b_scale = tuple(float(v) for v in (_F32(q_in.s) * s_w).astype(np.float32))
    b_dt = "int64" if dtype == "int16" and not int32_bias else "int32"
    lim = _bias_range(dtype, taps) if not int32_bias else 2**20
    vals = _ints(draw, b_dt, (n,), -lim, lim)
    scale = b_scale if len(b_scale) > 1 else b_scale[0]
    return vals, b_dt, _Q(scale, (0,) * len(b_scale) if len(b_scale) > 1 else 0, 0)


@_op(
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    dtypes=("int8", "uint8", "int16", "float32"),
    constraints=("per_channel", "activation"),
    min_rank=4,
)
def _b_conv(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    dw = opcode == "DEPTHWISE_CONV_2D"
    g = draw(_conv_geometry(cfg.max_side, 3, 3, 2, 4, cfg.max_batch, 1 if dw or dtype == "uint8" else 2, dw, None))
    act = _act(draw, cfg)
    net = _Net()
    q_in = _aq(draw, dtype, 1e-3, 1.0)
    axis = 3 if dw else 0
    q_w = _weight_q(draw, dtype, cfg, g.out_channels, axis)
    taps = g.kernel_h * g.kernel_w * (1 if dw else g.in_channels // g.groups)
    q_out = None
    if q_in is not None and q_w is not None:
        s_out = _out_scale(draw, q_in.s, _geomean(q_w.scale), taps)
        q_out = _Q(s_out, _zp(draw, dtype))
    int32_bias = dtype == "int16" and not dw and draw(st.integers(0, 3)) == 3
    with_bias = not dw or dtype == "int16" or draw(st.integers(0, 3)) > 0  # DEPTHWISE may omit its bias
    opts: dict[str, Any] = dict(g.options, fused_activation_function=act)
    if int32_bias:
        opts["quantized_bias_type"] = "INT32"
    # Arrays last, the input last of all: shrinking the input's shape then leaves the other draws in place.
    w = _weights(draw, dtype, g.filter_shape)
    bias = _conv_bias(draw, dtype, g.out_channels, taps, q_in, q_w, int32_bias) if with_bias else None
    x = _values(draw, dtype, g.input_shape) if dtype != "float32" else _floats(draw, g.input_shape, -4.0, 4.0)
    xi = net.input("x", x, q_in)
    wi = net.const("w", w, _W_DT[dtype], q_w)
    ins = [xi, wi] + ([net.const("bias", *bias)] if bias is not None else [])
    y = net.tensor("y", g.output_shape, dtype, q_out)
    net.op(opcode, ins, [y], **opts)
    return net.case([y], f"{opcode} {dtype}")


@st.composite
def _tconv_geometry(
    draw: st.DrawFn, cfg: _Cfg
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], dict[str, Any]]:
    bsz = draw(st.integers(1, cfg.max_batch))
    pad = draw(st.sampled_from(["SAME", "VALID"]))
    h, w = draw(st.integers(1, cfg.max_side)), draw(st.integers(1, cfg.max_side))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    c, o = draw(st.integers(1, 3)), draw(st.integers(1, 3))

    def out_size(i: int, k: int, s: int) -> int:
        lo, hi = ((i - 1) * s + 1, i * s) if pad == "SAME" else ((i - 1) * s + k, (i - 1) * s + k + s - 1)
        return draw(st.integers(lo, hi))

    oh, ow = out_size(h, kh, sh), out_size(w, kw, sw)
    return (bsz, h, w, c), (o, kh, kw, c), (bsz, oh, ow, o), dict(padding=pad, stride_h=sh, stride_w=sw)


@_op(
    "TRANSPOSE_CONV",
    dtypes=("int8", "uint8", "int16", "float32"),
    constraints=("per_channel", "activation"),
    min_rank=4,
)
def _b_tconv(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    x_shape, w_shape, out_shape, opts = draw(_tconv_geometry(cfg))
    act = _act(draw, cfg)
    net = _Net()
    q_in = _aq(draw, dtype)
    q_w = _weight_q(draw, dtype, cfg, w_shape[0], 0)
    taps = w_shape[1] * w_shape[2] * w_shape[3]
    q_out = None
    if q_in is not None and q_w is not None:
        q_out = _Q(_out_scale(draw, q_in.s, _geomean(q_w.scale), taps), _zp(draw, dtype))
    int32_bias = dtype == "int16" and draw(st.integers(0, 3)) == 3
    with_bias = draw(st.integers(0, 3)) > 0
    opts = dict(opts, fused_activation_function=act)
    if int32_bias:
        opts["quantized_bias_type"] = "INT32"
    shp = net.const("output_shape", np.array(out_shape, np.int32))
    wi = net.const("w", _weights(draw, dtype, w_shape), _W_DT[dtype], q_w)
    bias = _conv_bias(draw, dtype, w_shape[0], taps, q_in, q_w, int32_bias) if with_bias else None
    x = _values(draw, dtype, x_shape) if dtype != "float32" else _floats(draw, x_shape, -4.0, 4.0)
    xi = net.input("x", x, q_in)
    ins = [shp, wi, xi] + ([net.const("bias", *bias)] if bias is not None else [])
    y = net.tensor("y", out_shape, dtype, q_out)
    net.op(opcode, ins, [y], **opts)
    return net.case([y], f"{opcode} {dtype}")


@_op(
    "FULLY_CONNECTED",
    dtypes=("int8", "uint8", "int16", "float32"),
    constraints=("per_channel", "activation"),
    min_rank=1,
)
def _b_fc(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    depth = draw(st.integers(1, 3 * cfg.max_side))
    units = draw(st.integers(1, 2 * cfg.max_side))
    keep = draw(st.booleans())
    if keep:
        lead = _shape(draw, cfg, 0, max(0, cfg.max_rank - 1))
        x_shape = (*lead, depth)
    else:
        x_shape = (draw(st.integers(1, cfg.max_side)), depth)
    act = _act(draw, cfg)
    net = _Net()
    q_in = _aq(draw, dtype)
    q_w = _weight_q(draw, dtype, cfg, units, 0)
    q_out = None
    if q_in is not None and q_w is not None:
        q_out = _Q(_out_scale(draw, q_in.s, _geomean(q_w.scale), depth), _zp(draw, dtype))
    opts: dict[str, Any] = dict(fused_activation_function=act, keep_num_dims=keep)
    int32_bias = dtype == "int16" and draw(st.integers(0, 3)) == 3
    with_bias = draw(st.integers(0, 3)) > 0
    if int32_bias:
        opts["quantized_bias_type"] = "INT32"
    w = _weights(draw, dtype, (units, depth))
    bias = _conv_bias(draw, dtype, units, depth, q_in, q_w, int32_bias) if with_bias else None
    x = _values(draw, dtype, x_shape) if dtype != "float32" else _floats(draw, x_shape, -4.0, 4.0)
    xi = net.input("x", x, q_in)
    wi = net.const("w", w, _W_DT[dtype], q_w)
    ins = [xi, wi] + ([net.const("bias", *bias)] if bias is not None else [])
    out_shape = (*x_shape[:-1], units) if keep else (x_shape[0], units)
    y = net.tensor("y", out_shape, dtype, q_out)
    net.op(opcode, ins, [y], **opts)
    return net.case([y], f"{opcode} {dtype}")


@_op("BATCH_MATMUL", dtypes=("int8", "int16", "float32", "int32"), min_rank=2)
def _b_bmm(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    rank_l = draw(st.integers(2, max(2, min(cfg.max_rank, 5))))
    rank_r = draw(st.integers(2, max(2, min(cfg.max_rank, 5))))
    rank = max(rank_l, rank_r)
    batch = [draw(st.integers(1, min(3, cfg.max_side))) for _ in range(rank - 2)]
    lb, rb = [], []
    for d in batch:
        mode = draw(st.sampled_from(["same", "lhs1", "rhs1"]))
        lb.append(1 if mode == "lhs1" else d)
        rb.append(1 if mode == "rhs1" else d)
    lb, rb = lb[rank - rank_l :], rb[rank - rank_r :]
    m, k, n = (
        draw(st.integers(1, cfg.max_side)),
        draw(st.integers(1, 4 * cfg.max_side)),
        draw(st.integers(1, cfg.max_side)),
    )
    adj_x, adj_y = draw(st.booleans()), draw(st.booleans())
    l_shape = (*lb, *((k, m) if adj_x else (m, k)))
    r_shape = (*rb, *((n, k) if adj_y else (k, n)))
    out_shape = (*np.broadcast_shapes(tuple(lb), tuple(rb)), m, n)
    net = _Net()
    if dtype == "float32":
        l_dt = r_dt = out_dt = "float32"
        q_l = q_r = q_o = None
    elif dtype == "int32":
        l_dt, r_dt, out_dt = "int8", "int8", "int32"
        q_l, q_r, q_o = _aq(draw, "int8"), _aq(draw, "int8", 1e-3, 0.1), None
    else:
        l_dt = dtype
        r_dt = "int8" if dtype == "int16" and draw(st.booleans()) else dtype
        out_dt = dtype
        q_l = _aq(draw, l_dt)
        assert q_l is not None
        s_r = draw(scales(1e-3, 0.1))
        q_r = _Q(s_r, 0 if dtype == "int16" else _zp(draw, r_dt))
        f = draw(_ratio(0.5, 64.0 * k))
        q_o = _Q(_f32(_f32(q_l.s * s_r) * f), _zp(draw, out_dt))
    lhs = _values(draw, l_dt, l_shape) if l_dt != "float32" else _floats(draw, l_shape, -4.0, 4.0)
    rhs = _values(draw, r_dt, r_shape) if r_dt != "float32" else _floats(draw, r_shape, -2.0, 2.0)
    li = net.input("lhs", lhs, q_l)
    ri = net.const("rhs", rhs, r_dt, q_r) if draw(st.booleans()) else net.input("rhs", rhs, q_r)
    y = net.tensor("y", out_shape, out_dt, q_o)
    net.op(opcode, [li, ri], [y], adj_x=adj_x, adj_y=adj_y)
    title = f"{opcode} {l_dt} x {r_dt} -> {out_dt}"
    return net.case([y], title)


# ---------------------------------------------------------------------------------------------
# Pools


@_op(
    "AVERAGE_POOL_2D",
    "MAX_POOL_2D",
    dtypes=("int8", "uint8", "int16", "float32"),
    constraints=("activation",),
    min_rank=4,
)
@_op("L2_POOL_2D", dtypes=("float32",), constraints=("activation",), min_rank=4)
def _b_pool(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    g = draw(_pool_geometry(cfg.max_side, 4, 3, 4, cfg.max_batch, None))
    act = _act(draw, cfg)
    net = _Net()
    q_in = _aq(draw, dtype, 1e-4, 1.0)
    q_out = q_in
    if q_in is not None and draw(st.integers(0, 3)) == 3:
        q_out = _aq(draw, dtype, 1e-4, 1.0)  # pools ignore the output params except for the activation clamp
    x = _values(draw, dtype, g.input_shape)
    xi = net.input("x", x, q_in)
    y = net.tensor("y", g.output_shape, dtype, q_out)
    net.op(opcode, [xi], [y], **g.options, fused_activation_function=act)
    return net.case([y], f"{opcode} {dtype}")


# ---------------------------------------------------------------------------------------------
# Activations and unary math


#: Per op: (input scale range int8/uint8, input scale range int16, output rule).
_UNARY_SCALES: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "RELU": ((1e-3, 1.0), (1e-4, 1e-1)),
    "RELU6": ((1e-3, 1.0), (1e-4, 1e-1)),
    "RELU_N1_TO_1": ((1e-3, 1.0), (1e-4, 1e-1)),
    "RELU_0_TO_1": ((1e-3, 1.0), (1e-4, 1e-1)),
    "LEAKY_RELU": ((1e-3, 1.0), (1e-4, 1e-1)),
    "GELU": ((1e-3, 0.3), (1e-5, 1e-2)),
    "EXP": ((1e-3, 1.0), (1e-6, 1e-2)),
    "LOG": ((1e-3, 1.0), (1e-6, 1e-2)),
    "SQRT": ((1e-3, 1.0), (1e-6, 1e-1)),
    "RSQRT": ((1e-3, 1.0), (1e-6, 1e-1)),
    "ABS": ((1e-3, 1.0), (1e-4, 1e-1)),
    "HARD_SWISH": ((1e-3, 1.0), (1e-4, 1e-1)),
}


def _unary_model(
    draw: st.DrawFn, opcode: str, dtype: str, x: np.ndarray, q_in: _Q | None, q_out: _Q | None, **opts: Any
) -> Case:
    net = _Net()
    xi = net.input("x", x, q_in)
    y = net.tensor("y", x.shape, dtype, q_out)
    net.op(opcode, [xi], [y], **opts)
    return net.case([y], f"{opcode} {dtype}")


@_op("RELU", "RELU6", dtypes=("int8", "uint8", "int16", "float32"))
@_op("RELU_N1_TO_1", "RELU_0_TO_1", dtypes=("int8", "uint8", "float32"))
@_op("LEAKY_RELU", dtypes=("int8", "uint8", "int16", "float32"))
@_op("ABS", dtypes=("int8", "int16", "int32", "float32"))
@_op("EXP", "LOG", "SQRT", "RSQRT", dtypes=("int8", "int16", "float32"))
@_op("GELU", dtypes=("int8", "uint8", "int16", "float32"))
@_op("HARD_SWISH", dtypes=("int8", "uint8", "float32"))
def _b_unary(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    shape = _shape(draw, cfg)
    opts: dict[str, Any] = {}
    if opcode == "LEAKY_RELU":
        opts["alpha"] = _f32(draw(st.floats(-3.0, 3.0, width=32)))
    if opcode == "GELU":
        opts["approximate"] = draw(st.booleans())
    q_in = q_out = None
    if dtype in QUANTIZED_DTYPES:
        lo, hi = _UNARY_SCALES[opcode][1 if dtype == "int16" else 0]
        q_in = _aq(draw, dtype, lo, hi)
        assert q_in is not None
        if opcode == "HARD_SWISH":
            # Prepare fails unless the output multiplier (s_in / 128) / s_out is below 1.
            s_out = _f32(q_in.s * draw(_ratio(1 / 32, 4.0)))
            q_out = _Q(s_out, _zp(draw, dtype))
        elif opcode in ("EXP", "LOG", "GELU", "SQRT", "RSQRT"):
            q_out = _aq(draw, dtype, lo, hi)
        else:
            q_out = _Q(_f32(q_in.s * draw(_ratio(1 / 16, 16.0))), _zp(draw, dtype))
    lo_v: float | None = None
    if opcode in ("SQRT", "RSQRT"):
        if dtype in QUANTIZED_DTYPES:
            assert q_in is not None
            lo_v = q_in.z  # values below the zero point are run-time errors in LiteRT
        elif dtype == "float32":
            lo_v = 0.0
    if opcode == "LOG" and dtype == "float32":
        lo_v = 1e-3
    if dtype == "float32":
        x = _floats(draw, shape, 0.0 if lo_v is not None else -8.0, 8.0)
        if opcode == "LOG":
            x = np.maximum(x, _F32(1e-3)).astype(np.float32)
    else:
        x = _values(draw, dtype, shape, lo=lo_v)
    return _unary_model(draw, opcode, dtype, x, q_in, q_out, **opts)


_FIXED_OUT = {
    ("LOGISTIC", "int8"): (1 / 256, -128),
    ("LOGISTIC", "uint8"): (1 / 256, 0),
    ("LOGISTIC", "int16"): (1 / 32768, 0),
    ("TANH", "int8"): (1 / 128, 0),
    ("TANH", "uint8"): (1 / 128, 128),
    ("TANH", "int16"): (1 / 32768, 0),
}


@_op("LOGISTIC", "TANH", dtypes=("int8", "uint8", "int16", "float32"))
def _b_sigmoid_tanh(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    shape = _shape(draw, cfg)
    q_in = q_out = None
    if dtype == "int16":
        if draw(st.booleans()):
            q_in = _Q(2.0 ** -draw(st.integers(10, 13)), 0)  # power-of-two input scale: the POT path
        else:
            q_in = _aq(draw, dtype, 1e-5, 1e-2)
    elif dtype in QUANTIZED_DTYPES:
        q_in = _aq(draw, dtype, 1e-3, 1.0)
    if dtype in QUANTIZED_DTYPES:
        q_out = _Q(*_FIXED_OUT[(opcode, dtype)])
    x = _floats(draw, shape) if dtype == "float32" else _values(draw, dtype, shape)
    return _unary_model(draw, opcode, dtype, x, q_in, q_out)


@_op("NEG", dtypes=("int8", "int16", "int32", "int64", "float32"))
@_op("SQUARE", dtypes=("float32",))
def _b_raw_unary(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    shape = _shape(draw, cfg)
    q = _aq(draw, dtype)  # NEG negates raw values: the same parameters in and out
    x = _floats(draw, shape) if dtype == "float32" else _values(draw, dtype, shape)
    return _unary_model(draw, opcode, dtype, x, q, q)


@_op("PRELU", dtypes=("int8", "uint8", "int16", "float32"))
def _b_prelu(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    shape = _shape(draw, cfg, 0, 5)
    r = draw(st.integers(0, len(shape)))
    a_shape = tuple(d if draw(st.booleans()) else 1 for d in shape[len(shape) - r :])
    a_dt = "int8" if dtype == "int16" else dtype
    q_in = _aq(draw, dtype)
    q_out = _aq(draw, dtype)
    q_a = _aq(draw, a_dt, 1e-3, 0.3)
    if dtype == "float32":
        x = _floats(draw, shape)
        a = _floats(draw, a_shape, -2.0, 2.0)
    else:
        x = _values(draw, dtype, shape)
        a = _values(draw, a_dt, a_shape)
    net = _Net()
    xi = net.input("x", x, q_in)
    ai = net.const("alpha", a, a_dt, q_a)
    y = net.tensor("y", shape, dtype, q_out)
    net.op(opcode, [xi, ai], [y])
    return net.case([y], f"{opcode} {dtype}")


# ---------------------------------------------------------------------------------------------
# Elementwise binary


def _pot_ok(*ss: float) -> bool:
    from .ops.lut import checked_log2

    return all(checked_log2(s)[0] for s in ss)


@_op("ADD", "SUB", "MUL", dtypes=("int8", "uint8", "int16", "int32", "int64", "float32"), constraints=("activation",))
@_op("DIV", dtypes=("int8", "uint8", "int16", "int32", "float32"), constraints=("activation",))
@_op("SQUARED_DIFFERENCE", dtypes=("int8", "int32", "float32"))
@_op("MAXIMUM", "MINIMUM", dtypes=("int8", "uint8", "int16", "int32", "int64", "float32"))
def _b_binary(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    s1, s2 = _broadcast_pair(draw, cfg)
    opts: dict[str, Any] = {}
    if opcode in ("ADD", "SUB", "MUL", "DIV"):
        opts["fused_activation_function"] = _act(draw, cfg)
    q1 = q2 = qo = None
    if dtype in QUANTIZED_DTYPES:
        q1 = _aq(draw, dtype, 1e-3, 1.0)
        assert q1 is not None
        if opcode in ("MAXIMUM", "MINIMUM"):
            q2 = qo = q1  # compared raw: one set of parameters
        else:
            q2 = _aq(draw, dtype, 1e-3, 1.0)
            assert q2 is not None
            big = max(q1.s, q2.s)
            if opcode in ("ADD", "SUB"):
                so = _f32(big * draw(_ratio(1 / 16, 16.0)))
                if dtype == "int16":
                    pot = draw(st.booleans())
                    opts["pot_scale_int16"] = pot
                    if pot and _pot_ok(q1.s, q2.s, so):
                        so = _f32(big)  # the POT path: one input unshifted, the other shifted right
                        if opcode == "ADD":
                            s2 = s1  # LiteRT's REF POT ADD has no broadcasting
            elif opcode == "MUL":
                so = _f32(_f32(q1.s * q2.s) * draw(_ratio(0.25, 1024.0)))
            elif opcode == "DIV":
                so = _f32(q1.s / q2.s * draw(_ratio(0.25, 128.0)))
            else:  # SQUARED_DIFFERENCE: the output multiplier must stay below 1
                so = _f32(big * big * draw(_ratio(1 / 16, 2048.0)))
            qo = _Q(so, _zp(draw, dtype))
    if dtype == "float32":
        x1, x2 = _floats(draw, s1), _floats(draw, s2)
    else:
        x1, x2 = _values(draw, dtype, s1), _values(draw, dtype, s2)
    if opcode == "DIV":
        # A divisor equal to its zero point (0 for unquantized types) is a run-time error in LiteRT.
        z2 = q2.z if q2 is not None else 0
        if dtype == "float32":
            x2 = np.where(np.abs(x2) < 1e-3, np.float32(1.0), x2).astype(np.float32)
        else:
            hi = _INT_RANGES[dtype][1]
            x2 = np.where(x2 == z2, z2 + 1 if z2 < hi else z2 - 1, x2).astype(dtype)
    net = _Net()
    a = net.input("a", x1, q1)
    b = net.const("b", x2, dtype, q2) if draw(st.integers(0, 4)) == 4 else net.input("b", x2, q2)
    y = net.tensor("y", np.broadcast_shapes(s1, s2), dtype, qo)
    net.op(opcode, [a, b], [y], **opts)
    return net.case([y], f"{opcode} {dtype}")


# ---------------------------------------------------------------------------------------------
# Reductions, ARG_MAX/ARG_MIN, SOFTMAX


def _axes(draw: st.DrawFn, rank: int, allow_empty: bool = True) -> list[int]:
    if rank == 0:
        return [0] if not allow_empty or draw(st.booleans()) else []
    n = draw(st.integers(0 if allow_empty else 1, rank))
    return [a - rank if draw(st.integers(0, 3)) == 3 else a for a in draw(st.permutations(range(rank)))[:n]]


@_op("MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", dtypes=("int8", "uint8", "int16", "float32", "int32", "int64"))
@_op("REDUCE_PROD", dtypes=("int8", "int16", "float32", "int32", "int64"))
def _b_reduce(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    prod_q = opcode == "REDUCE_PROD" and dtype in QUANTIZED_DTYPES
    shape = _shape(draw, cfg, 1 if prod_q else 0, 3 if prod_q else None, 1)
    axes = _axes(draw, len(shape), allow_empty=not prod_q)
    if prod_q:
        # Keep the product chain short: at most 4 reduced values.
        shape = tuple(min(d, 2) if (k in axes or k - len(shape) in axes) else d for k, d in enumerate(shape))
    keep = draw(st.booleans())
    ra = sorted({a % len(shape) for a in axes}) if shape else []
    n = int(np.prod([shape[a] for a in ra], dtype=np.int64)) if ra else 1
    q_in = q_out = None
    if dtype in QUANTIZED_DTYPES:
        q_in = _aq(draw, dtype, 1e-3, 1.0)
        assert q_in is not None
        if opcode in ("REDUCE_MAX", "REDUCE_MIN"):
            q_out = q_in
        elif opcode == "MEAN":
            q_out = _Q(_f32(q_in.s * draw(_ratio(1 / 8, 8.0))), _zp(draw, dtype))
        elif opcode == "SUM":
            q_out = _Q(_f32(q_in.s * draw(_ratio(1 / 4, 4.0 * n))), _zp(draw, dtype))
        else:  # REDUCE_PROD: scaling s_in / s_out^(1/n) within LiteRT's int64 multiplier range
            typical = 64.0 if dtype == "int8" else 4096.0
            f = draw(_ratio(1.0, typical))
            q_out = _Q(_f32((q_in.s * f) ** n), _zp(draw, dtype))
    x = _floats(draw, shape) if dtype == "float32" else _values(draw, dtype, shape)
    out_shape = (
        tuple(1 if k in ra else d for k, d in enumerate(shape))
        if keep
        else tuple(d for k, d in enumerate(shape) if k not in ra)
    )
    net = _Net()
    xi = net.input("x", x, q_in)
    ai = net.const("axis", np.array(axes, np.int32).reshape(-1))
    y = net.tensor("y", out_shape, dtype, q_out)
    net.op(opcode, [xi, ai], [y], keep_dims=keep)
    return net.case([y], f"{opcode} {dtype}")


@_op(
    "ARG_MAX",
    "ARG_MIN",
    dtypes=("int8", "uint8", "float32", "int32", "bool"),
    constraints=("output_dtype",),
    min_rank=1,
    output_dtypes={d: ("int32", "int64") for d in ("int8", "uint8", "float32", "int32", "bool")},
)
def _b_arg(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    shape = _shape(draw, cfg, 1, None)
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    out_dt = cfg.output_dtype or draw(st.sampled_from(["int32", "int64"]))
    q = _aq(draw, dtype)
    x = _floats(draw, shape) if dtype == "float32" else _values(draw, dtype, shape)
    net = _Net()
    xi = net.input("x", x, q)
    ai = net.const("axis", np.array([axis], draw(st.sampled_from(["int32", "int64"]))))
    out_shape = tuple(d for k, d in enumerate(shape) if k != axis % len(shape))
    y = net.tensor("y", out_shape, out_dt)
    net.op(opcode, [xi, ai], [y], output_type=out_dt.upper())
    return net.case([y], f"{opcode} {dtype} -> {out_dt}")


_SOFTMAX_OUT = {
    ("int8", "int8"): (1 / 256, -128),
    ("int8", "int16"): (1 / 65536, -32768),
    ("uint8", "uint8"): (1 / 256, 0),
    ("int16", "int16"): (1 / 32768, 0),
}


@_op(
    "SOFTMAX",
    dtypes=("int8", "uint8", "int16", "float32"),
    constraints=("output_dtype",),
    min_rank=1,
    output_dtypes={"int8": ("int8", "int16"), "uint8": ("uint8",), "int16": ("int16",), "float32": ("float32",)},
)
@_op("LOG_SOFTMAX", dtypes=("int8", "uint8", "float32"), min_rank=1)
def _b_softmax(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    shape = _shape(draw, cfg, 1, None)
    out_dt = cfg.output_dtype or dtype
    if opcode == "SOFTMAX" and dtype == "int8" and cfg.output_dtype is None and draw(st.integers(0, 3)) == 3:
        out_dt = "int16"
    opts: dict[str, Any] = {}
    if opcode == "SOFTMAX":
        opts["beta"] = draw(_ratio(0.1, 10.0))
    q_in = q_out = None
    if dtype in QUANTIZED_DTYPES:
        q_in = _aq(draw, dtype, 1e-3, 1.0) if dtype != "int16" else _aq(draw, dtype, 1e-4, 1e-2)
        if opcode == "SOFTMAX":
            q_out = _Q(*_SOFTMAX_OUT[(dtype, out_dt)])
        else:
            q_out = _Q(16 / 256, 127 if dtype == "int8" else 255)
    x = _floats(draw, shape) if dtype == "float32" else _values(draw, dtype, shape)
    net = _Net()
    xi = net.input("x", x, q_in)
    y = net.tensor("y", shape, out_dt, q_out)
    net.op(opcode, [xi], [y], **opts)
    return net.case([y], f"{opcode} {dtype}" + (f" -> {out_dt}" if out_dt != dtype else ""))


# ---------------------------------------------------------------------------------------------
# Data movement: raw copies of values (quantization passes through)

_ALL = ("int8", "uint8", "int16", "float32", "int32", "int64", "bool")


def _raw_q(draw: st.DrawFn, dtype: str) -> _Q | None:
    """Parameters for a raw copy: the same on input and output (LiteRT requires it for several ops)."""
    return _aq(draw, dtype, 1e-4, 1.0)


def _vals_any(draw: st.DrawFn, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    return _floats(draw, shape) if dtype == "float32" else _values(draw, dtype, shape)


def _factor(n: int, rank: int, draw: st.DrawFn) -> list[int]:
    """A shape of ``rank`` dims with product ``n`` (n >= 1)."""
    dims = [1] * rank
    if rank == 0:
        return dims
    m, p = n, 2
    while m > 1:
        while m % p == 0:
            dims[draw(st.integers(0, rank - 1))] *= p
            m //= p
        p += 1
    return dims


@_op("RESHAPE", dtypes=_ALL)
def _b_reshape(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    shape = _shape(draw, cfg)
    size = int(np.prod(shape, dtype=np.int64))
    rank = draw(st.integers(0 if size == 1 else 1, max(1, cfg.max_rank)))
    target = _factor(size, rank, draw)
    if rank and draw(st.booleans()):
        target[draw(st.integers(0, rank - 1))] = -1
    q = _raw_q(draw, dtype)
    net = _Net()
    xi = net.input("x", _vals_any(draw, dtype, shape), q)
    out_shape = [d if d >= 0 else size // max(1, int(np.prod([t for t in target if t >= 0]))) for d in target]
    y = net.tensor("y", out_shape, dtype, q)
    if draw(st.booleans()):
        net.op(opcode, [xi, net.const("shape", np.array(target, np.int32))], [y])
    else:
        net.op(opcode, [xi], [y], new_shape=target if target else [0])
    return net.case([y], f"{opcode} {dtype}")


@_op("SQUEEZE", dtypes=_ALL)
def _b_squeeze(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    shape = tuple(d if draw(st.booleans()) else 1 for d in _shape(draw, cfg))
    ones = [k for k, d in enumerate(shape) if d == 1]
    dims = [k - len(shape) if draw(st.booleans()) else k for k in ones if draw(st.booleans())]
    q = _raw_q(draw, dtype)
    drop = {k % len(shape) for k in dims} if dims else set(ones)
    out_shape = [d for k, d in enumerate(shape) if k not in drop]
    net = _Net()
    xi = net.input("x", _vals_any(draw, dtype, shape), q)
    y = net.tensor("y", out_shape, dtype, q)
    net.op(opcode, [xi], [y], squeeze_dims=dims)
    return net.case([y], f"{opcode} {dtype}")


@_op("EXPAND_DIMS", dtypes=_ALL)
def _b_expand_dims(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    shape = _shape(draw, cfg, 0, max(0, cfg.max_rank - 1))
    axis = draw(st.integers(-len(shape) - 1, len(shape)))
    q = _raw_q(draw, dtype)
    pos = axis if axis >= 0 else axis + len(shape) + 1
    net = _Net()
    xi = net.input("x", _vals_any(draw, dtype, shape), q)
    ai = net.const("axis", np.array([axis], draw(st.sampled_from(["int32", "int64"]))))
    y = net.tensor("y", (*shape[:pos], 1, *shape[pos:]), dtype, q)
    net.op(opcode, [xi, ai], [y])
    return net.case([y], f"{opcode} {dtype}")


@_op(
    "SHAPE",
    dtypes=_ALL,
    constraints=("output_dtype",),
    min_rank=1,
    output_dtypes={d: ("int32", "int64") for d in _ALL},
)
def _b_shape(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    shape = _shape(draw, cfg, 1)  # a scalar's shape is an empty tensor, which LiteRT's Python API cannot return
    out_dt = cfg.output_dtype or draw(st.sampled_from(["int32", "int64"]))
    net = _Net()
    xi = net.input("x", _vals_any(draw, dtype, shape), _raw_q(draw, dtype))
    y = net.tensor("y", (len(shape),), out_dt)
    net.op(opcode, [xi], [y], out_type=out_dt.upper())
    return net.case([y], f"{opcode} {dtype} -> {out_dt}")


@_op("TRANSPOSE", dtypes=_ALL, min_rank=1)
def _b_transpose(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    shape = _shape(draw, cfg, 1)
    perm = list(draw(st.permutations(range(len(shape)))))
    perm = [p - len(shape) if draw(st.integers(0, 4)) == 4 else p for p in perm]
    q = _raw_q(draw, dtype)
    net = _Net()
    xi = net.input("x", _vals_any(draw, dtype, shape), q)
    pi = net.const("perm", np.array(perm, np.int32))
    y = net.tensor("y", [shape[p] for p in perm], dtype, q)
    net.op(opcode, [xi, pi], [y])
    return net.case([y], f"{opcode} {dtype}")


@_op("PACK", dtypes=("int8", "uint8", "int16", "float32", "int32", "int64"))
def _b_pack(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    shape = _shape(draw, cfg, 0, max(0, cfg.max_rank - 1))
    n = draw(st.integers(1, 3))
    axis = draw(st.integers(-len(shape) - 1, len(shape)))
    pos = axis if axis >= 0 else axis + len(shape) + 1
    q = _raw_q(draw, dtype)
    net = _Net()
    ins = []
    for k in range(n):
        v = _vals_any(draw, dtype, shape)
        ins.append(net.const(f"c{k}", v, dtype, q) if draw(st.integers(0, 3)) == 3 else net.input(f"x{k}", v, q))
    y = net.tensor("y", (*shape[:pos], n, *shape[pos:]), dtype, q)
    net.op(opcode, ins, [y], values_count=n, axis=axis)
    return net.case([y], f"{opcode} {dtype}")


@_op("UNPACK", dtypes=("int8", "uint8", "int16", "float32", "int32", "bool"), min_rank=1)
def _b_unpack(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    shape = _shape(draw, cfg, 1)
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    n = shape[axis]
    q = _raw_q(draw, dtype)
    out_shape = [d for k, d in enumerate(shape) if k != axis % len(shape)]
    net = _Net()
    xi = net.input("x", _vals_any(draw, dtype, shape), q)
    ys = [net.tensor(f"y{k}", out_shape, dtype, q) for k in range(n)]
    net.op(opcode, [xi], ys, num=n, axis=axis)
    return net.case(ys, f"{opcode} {dtype}")


@_op("SPLIT", "SPLIT_V", dtypes=("int8", "uint8", "int16", "float32", "int32", "int64"), min_rank=1)
def _b_split(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    shape = list(_shape(draw, cfg, 1))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    num = draw(st.integers(1, 3))
    if opcode == "SPLIT":
        shape[axis] *= num
        sizes = [shape[axis] // num] * num
    else:
        sizes = [draw(st.integers(0, cfg.max_side)) for _ in range(num)]
        shape[axis] = sum(sizes)
    q = _raw_q(draw, dtype)
    net = _Net()
    x = _vals_any(draw, dtype, tuple(shape))
    outs = []
    for k, s in enumerate(sizes):
        o_shape = list(shape)
        o_shape[axis] = s
        outs.append(net.tensor(f"y{k}", o_shape, dtype, q))
    if opcode == "SPLIT":
        ai = net.const("axis", np.array(axis, draw(st.sampled_from(["int32", "int64"]))))
        xi = net.input("x", x, q)
        net.op(opcode, [ai, xi], outs, num_splits=num)
    else:
        spec = list(sizes)
        if draw(st.booleans()):
            spec[draw(st.integers(0, num - 1))] = -1
        xi = net.input("x", x, q)
        si = net.const("size_splits", np.array(spec, draw(st.sampled_from(["int32", "int64"]))))
        ai = net.const("axis", np.array([axis], np.int32))
        net.op(opcode, [xi, si, ai], outs, num_splits=num)
    return net.case(outs, f"{opcode} {dtype}")


@_op("CONCATENATION", dtypes=_ALL, min_rank=1)
def _b_concat(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    shape = list(_shape(draw, cfg, 1))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    n = draw(st.integers(1, 3))
    q_out = _raw_q(draw, dtype)
    net = _Net()
    ins = []
    total = 0
    for k in range(n):
        s = list(shape)
        s[axis] = draw(st.integers(1, cfg.max_side))
        total += s[axis]
        if dtype == "int8":
            q = q_out  # int8 requires every input's parameters to equal the output's
        elif dtype in ("int16", "uint8"):
            q = q_out if draw(st.booleans()) else _raw_q(draw, dtype)  # int16: raw copy; uint8: rescaled
        else:
            q = None
        v = _vals_any(draw, dtype, tuple(s))
        ins.append(net.const(f"c{k}", v, dtype, q) if draw(st.integers(0, 4)) == 4 else net.input(f"x{k}", v, q))
    out_shape = list(shape)
    out_shape[axis] = total
    y = net.tensor("y", out_shape, dtype, q_out)
    net.op(opcode, ins, [y], axis=axis)
    return net.case([y], f"{opcode} {dtype}")


@_op("TILE", dtypes=_ALL)
def _b_tile(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    shape = _shape(draw, cfg)
    mult = [draw(st.integers(1, 3)) for _ in shape]
    q = _raw_q(draw, dtype)
    net = _Net()
    xi = net.input("x", _vals_any(draw, dtype, shape), q)
    mi = net.const("multiples", np.array(mult, draw(st.sampled_from(["int32", "int64"]))).reshape(-1))
    y = net.tensor("y", [d * m for d, m in zip(shape, mult)], dtype, q)
    net.op(opcode, [xi, mi], [y])
    return net.case([y], f"{opcode} {dtype}")


@_op("BROADCAST_TO", dtypes=_ALL)
def _b_broadcast_to(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    target = _shape(draw, cfg)
    k = draw(st.integers(0, len(target)))
    in_shape = tuple(1 if draw(st.booleans()) else d for d in target[len(target) - k :])
    q = _raw_q(draw, dtype)
    net = _Net()
    xi = net.input("x", _vals_any(draw, dtype, in_shape), q)
    ti = net.const("shape", np.array(target, draw(st.sampled_from(["int32", "int64"]))).reshape(-1))
    y = net.tensor("y", target, dtype, q)
    net.b.add_operator(opcode, [xi, ti], [y], version=2)
    return net.case([y], f"{opcode} {dtype}")


@_op("FILL", dtypes=_ALL)
def _b_fill(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    dims = _shape(draw, cfg)
    q = _raw_q(draw, dtype)
    net = _Net()
    di = net.const("dims", np.array(dims, draw(st.sampled_from(["int32", "int64"]))).reshape(-1))
    v = _vals_any(draw, dtype, ())
    vi = net.const("value", v, dtype, q) if draw(st.booleans()) else net.input("value", v, q)
    y = net.tensor("y", dims, dtype, q)
    net.op(opcode, [di, vi], [y])
    return net.case([y], f"{opcode} {dtype}")


@_op("ZEROS_LIKE", dtypes=("float32", "int32", "int64"))
def _b_zeros_like(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    shape = _shape(draw, cfg)
    net = _Net()
    xi = net.input("x", _vals_any(draw, dtype, shape))
    y = net.tensor("y", shape, dtype)
    net.b.add_operator(opcode, [xi], [y], options_type="ZerosLikeOptions")
    return net.case([y], f"{opcode} {dtype}")


_CAST_TYPES = ("int8", "uint8", "int16", "int32", "int64", "float32", "bool")


@_op(
    "CAST",
    dtypes=_ALL,
    constraints=("output_dtype",),
    output_dtypes={d: _CAST_TYPES for d in _ALL},
)
def _b_cast(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    shape = _shape(draw, cfg)
    out_dt = cfg.output_dtype or draw(st.sampled_from(_CAST_TYPES))
    if dtype == "float32":
        x = _floats(draw, shape, -300.0, 300.0) if draw(st.booleans()) else _floats(draw, shape)
    else:
        x = _values(draw, dtype, shape)
    net = _Net()
    xi = net.input("x", x)
    y = net.tensor("y", shape, out_dt)
    net.op(opcode, [xi], [y])
    return net.case([y], f"{opcode} {dtype} -> {out_dt}")


@_op("SPACE_TO_DEPTH", "DEPTH_TO_SPACE", dtypes=("int8", "uint8", "float32", "int32", "int64"), min_rank=4)
def _b_space_depth(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    bs = draw(st.integers(1, 3))
    b = draw(st.integers(1, cfg.max_batch))
    h, w, c = (draw(st.integers(1, max(1, min(3, cfg.max_side)))) for _ in range(3))
    if opcode == "SPACE_TO_DEPTH":
        in_shape, out_shape = (b, h * bs, w * bs, c), (b, h, w, c * bs * bs)
    else:
        in_shape, out_shape = (b, h, w, c * bs * bs), (b, h * bs, w * bs, c)
    q = _raw_q(draw, dtype)
    net = _Net()
    xi = net.input("x", _vals_any(draw, dtype, in_shape), q)
    y = net.tensor("y", out_shape, dtype, q)
    net.op(opcode, [xi], [y], block_size=bs)
    return net.case([y], f"{opcode} {dtype}")


@_op("STRIDED_SLICE", dtypes=_ALL, min_rank=1)
def _b_strided_slice(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    shape = _shape(draw, cfg, 1)
    begin, end, strides = [], [], []
    begin_mask = end_mask = shrink = 0
    out_shape = []
    for k, d in enumerate(shape):
        if draw(st.integers(0, 4)) == 4:  # shrink this axis to one index (in range, stride 1)
            i = draw(st.integers(-d, d - 1))
            begin.append(i)
            end.append(i + 1 if i != -1 else 0)
            strides.append(1)
            shrink |= 1 << k
            if i == -1:
                end_mask |= 1 << k
            continue
        s = draw(st.sampled_from([1, 2, -1, 3, -2]))
        b = draw(st.integers(-d, d - 1))
        e = draw(st.integers(-d - 1, d))
        bm, em = draw(st.booleans()), draw(st.booleans())
        begin.append(b)
        end.append(e)
        strides.append(s)
        begin_mask |= (1 << k) if bm else 0
        end_mask |= (1 << k) if em else 0
        out_shape.append(len(range(d)[slice(None if bm else b, None if em else e, s)]))
    q = _raw_q(draw, dtype)
    net = _Net()
    xi = net.input("x", _vals_any(draw, dtype, shape), q)
    bi = net.const("begin", np.array(begin, np.int32))
    ei = net.const("end", np.array(end, np.int32))
    si = net.const("strides", np.array(strides, np.int32))
    y = net.tensor("y", out_shape, dtype, q)
    net.op(opcode, [xi, bi, ei, si], [y], begin_mask=begin_mask, end_mask=end_mask, shrink_axis_mask=shrink)
    return net.case([y], f"{opcode} {dtype}")


@_op("SLICE", dtypes=_ALL, min_rank=1)
def _b_slice(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    shape = _shape(draw, cfg, 1)
    begin, size, out_shape = [], [], []
    for d in shape:
        b = draw(st.integers(0, d - 1))
        n = draw(st.integers(1, d - b))
        if draw(st.integers(0, 3)) == 3:
            n = -1
        begin.append(b)
        size.append(n)
        out_shape.append(d - b if n == -1 else n)
    idx_dt = draw(st.sampled_from(["int32", "int64"]))
    q = _raw_q(draw, dtype)
    net = _Net()
    xi = net.input("x", _vals_any(draw, dtype, shape), q)
    bi = net.const("begin", np.array(begin, idx_dt))
    zi = net.const("size", np.array(size, idx_dt))
    y = net.tensor("y", out_shape, dtype, q)
    net.op(opcode, [xi, bi, zi], [y])
    return net.case([y], f"{opcode} {dtype}")


@_op("GATHER", dtypes=_ALL, min_rank=1)
def _b_gather(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    shape = _shape(draw, cfg, 1)
    rank = len(shape)
    axis = draw(st.integers(0, rank - 1))
    bd = draw(st.integers(0, axis)) if draw(st.integers(0, 3)) == 3 else 0
    idx_shape = (*shape[:bd], *_shape(draw, cfg, 0, 2))
    idx = _ints(draw, "int32", idx_shape, 0, shape[axis] - 1)
    idx_dt = draw(st.sampled_from(["int32", "int64", "int16"]))
    q = _raw_q(draw, dtype)
    net = _Net()
    xi = net.input("x", _vals_any(draw, dtype, shape), q)
    ii = net.const("indices", idx, idx_dt) if draw(st.booleans()) else net.input("indices", idx.astype(idx_dt))
    out_shape = (*shape[:axis], *idx_shape[bd:], *shape[axis + 1 :])
    opt_axis = axis - rank if draw(st.integers(0, 3)) == 3 else axis
    y = net.tensor("y", out_shape, dtype, q)
    net.op(opcode, [xi, ii], [y], axis=opt_axis, batch_dims=bd)
    return net.case([y], f"{opcode} {dtype}")


@_op("PAD", "PADV2", dtypes=_ALL)
def _b_pad(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    shape = _shape(draw, cfg, 0, 5)
    pads = [[draw(st.integers(0, 2)), draw(st.integers(0, 2))] for _ in shape]
    q_in = _raw_q(draw, dtype)
    q_out = q_in if dtype != "uint8" and dtype != "int8" or draw(st.booleans()) else _aq(draw, dtype, 1e-4, 1.0)
    if dtype == "int16":
        q_out = q_in
    net = _Net()
    xi = net.input("x", _vals_any(draw, dtype, shape), q_in)
    pi = net.const("paddings", np.array(pads, draw(st.sampled_from(["int32", "int64"]))).reshape(len(shape), 2))
    ins = [xi, pi]
    if opcode == "PADV2":
        ins.append(net.const("constant_values", _vals_any(draw, dtype, ()), dtype, q_out))
    y = net.tensor("y", [d + a + b for d, (a, b) in zip(shape, pads)], dtype, q_out)
    net.op(opcode, ins, [y])
    return net.case([y], f"{opcode} {dtype}")


@_op("MIRROR_PAD", dtypes=_ALL)
def _b_mirror_pad(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    shape = _shape(draw, cfg)
    mode = draw(st.sampled_from(["REFLECT", "SYMMETRIC"]))
    off = 1 if mode == "REFLECT" else 0
    pads = [[draw(st.integers(0, max(0, d - off))), draw(st.integers(0, max(0, d - off)))] for d in shape]
    q = _raw_q(draw, dtype)
    net = _Net()
    xi = net.input("x", _vals_any(draw, dtype, shape), q)
    pi = net.const("paddings", np.array(pads, draw(st.sampled_from(["int32", "int64"]))).reshape(len(shape), 2))
    y = net.tensor("y", [d + a + b for d, (a, b) in zip(shape, pads)], dtype, q)
    net.b.add_operator(opcode, [xi, pi], [y], options_type="MirrorPadOptions", mode=mode)
    return net.case([y], f"{opcode} {dtype}")


@_op("RESIZE_BILINEAR", dtypes=("int8", "uint8", "int16", "float32"), min_rank=4)
@_op("RESIZE_NEAREST_NEIGHBOR", dtypes=("int8", "uint8", "int16", "float32", "int32"), min_rank=4)
def _b_resize(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    b = draw(st.integers(1, cfg.max_batch))
    h, w, c = draw(st.integers(1, cfg.max_side)), draw(st.integers(1, cfg.max_side)), draw(st.integers(1, 3))
    oh, ow = draw(st.integers(1, 2 * cfg.max_side)), draw(st.integers(1, 2 * cfg.max_side))
    flag = draw(st.sampled_from(["none", "half_pixel_centers", "align_corners"]))
    opts = {"align_corners": flag == "align_corners", "half_pixel_centers": flag == "half_pixel_centers"}
    q = _raw_q(draw, dtype)
    net = _Net()
    xi = net.input("x", _vals_any(draw, dtype, (b, h, w, c)), q)
    si = net.const("size", np.array([oh, ow], np.int32))
    y = net.tensor("y", (b, oh, ow, c), dtype, q)
    net.op(opcode, [xi, si], [y], **opts)
    case = net.case([y], f"{opcode} {dtype}")
    if opcode == "RESIZE_BILINEAR":
        assume(_refquant_prepares(case))  # a few upsamplings read past the input in LiteRT: refquant refuses them
    return case


def _refquant_prepares(case: Case) -> bool:
    from .errors import UnsupportedOpError
    from .interpreter import Interpreter

    try:
        Interpreter(model_content=case.model).allocate_tensors()
    except UnsupportedOpError:
        return False
    return True


@_op("SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND", dtypes=_ALL, min_rank=3)
def _b_space_batch(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    rank = draw(st.sampled_from([4, 3])) if cfg.max_rank >= 4 else 3
    spatial = rank - 2
    block = [draw(st.integers(1, 3)) for _ in range(spatial)]
    pairs, dims = [], []
    for b in block:
        if opcode == "SPACE_TO_BATCH_ND":
            total = b * draw(st.integers(1, max(1, cfg.max_side // b)))  # the padded size: a multiple of the block
            d = draw(st.integers(1, total))
            lo = draw(st.integers(0, total - d))
            dims.append(d)
            pairs.append([lo, total - d - lo])
        else:
            d = draw(st.integers(1, min(3, cfg.max_side)))
            lo = draw(st.integers(0, b * d - 1))
            dims.append(d)
            pairs.append([lo, draw(st.integers(0, b * d - 1 - lo))])  # at least one row and column remain
    batch = draw(st.integers(1, min(3, cfg.max_batch + 1)))
    channels = draw(st.integers(1, 3))
    vol = int(np.prod(block))
    if opcode == "SPACE_TO_BATCH_ND":
        in_shape = (batch, *dims, channels)
        out_shape = (batch * vol, *[(d + lo + hi) // b for d, (lo, hi), b in zip(dims, pairs, block)], channels)
    else:
        in_shape = (batch * vol, *dims, channels)
        out_shape = (batch, *[d * b - lo - hi for d, (lo, hi), b in zip(dims, pairs, block)], channels)
    q = _raw_q(draw, dtype)
    net = _Net()
    xi = net.input("x", _vals_any(draw, dtype, in_shape), q)
    bi = net.const("block_shape", np.array(block, np.int32))
    pi = net.const("crops" if opcode == "BATCH_TO_SPACE_ND" else "paddings", np.array(pairs, np.int32).reshape(-1, 2))
    y = net.tensor("y", out_shape, dtype, q)
    net.op(opcode, [xi, bi, pi], [y])
    return net.case([y], f"{opcode} {dtype}")


def _broadcast_to(draw: st.DrawFn, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A shape that broadcasts to ``shape``: itself, or a suffix with some dims 1."""
    if not draw(st.booleans()):
        return shape
    k = draw(st.integers(0, len(shape)))
    return tuple(1 if draw(st.booleans()) else d for d in shape[len(shape) - k :])


@_op("SELECT", dtypes=_ALL, min_rank=1)
@_op("SELECT_V2", dtypes=_ALL)
def _b_select(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    v2 = opcode == "SELECT_V2"
    shape = _shape(draw, cfg, 0 if v2 else 1)
    if v2:
        sc, sx, sy = _broadcast_to(draw, shape), _broadcast_to(draw, shape), _broadcast_to(draw, shape)
        out_shape = np.broadcast_shapes(sc, sx, sy)
    else:
        sc = draw(st.sampled_from([shape, (), (shape[0],)]))  # SELECT: a full, scalar or outer-dim condition
        sx = sy = out_shape = shape
    q = _raw_q(draw, dtype)  # raw copies: one set of parameters
    net = _Net()
    ci = net.input("condition", _values(draw, "bool", sc))
    xi = net.input("x", _vals_any(draw, dtype, sx), q)
    yi = net.input("y", _vals_any(draw, dtype, sy), q)
    o = net.tensor("out", out_shape, dtype, q)
    net.op(opcode, [ci, xi, yi], [o])
    return net.case([o], f"{opcode} {dtype}")


@_op("EQUAL", "NOT_EQUAL", dtypes=_ALL)
@_op("LESS", "LESS_EQUAL", "GREATER", "GREATER_EQUAL", dtypes=("int8", "uint8", "int16", "float32", "int32", "int64"))
def _b_compare(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    sa, sb = _broadcast_pair(draw, cfg)
    qa = qb = None
    if dtype in QUANTIZED_DTYPES:
        # Quantized comparisons rescale with QuantizeMultiplierSmallerThanOneExp(scale): scales below 1.
        qa = _aq(draw, dtype, 1e-4, 0.5)
        qb = qa if draw(st.booleans()) else _aq(draw, dtype, 1e-4, 0.5)
    a = _vals_any(draw, dtype, sa)
    b = _vals_any(draw, dtype, sb)
    if dtype != "bool" and draw(st.booleans()) and a.size and b.size:
        b = np.resize(a.reshape(-1), b.size).reshape(sb)  # many equal pairs
    net = _Net()
    ai = net.input("a", a, qa)
    bi = net.input("b", b, qb)
    o = net.tensor("out", np.broadcast_shapes(sa, sb), "bool")
    net.op(opcode, [ai, bi], [o])
    return net.case([o], f"{opcode} {dtype}")


# ---------------------------------------------------------------------------------------------
# IF and WHILE: the branches and the loop body are one-op subgraphs


def _cf_body_ops(dtype: str) -> tuple[str, ...]:
    """One-op subgraph bodies that keep a tensor's type, shape and (for quantized types) parameters."""
    if dtype == "bool":
        return ("RESHAPE", "EQUAL")
    if dtype == "int32":
        return ("RESHAPE", "ADD", "MUL")
    return ("RESHAPE", "ADD", "MUL", "RELU")


def _cf_subgraph(
    net: _Net, name: str, op: str, inputs: list[tuple[str, tuple[int, ...], str, _Q | None]], data: int
) -> None:
    """Add a subgraph whose inputs are ``inputs`` and whose output ``data`` is ``op`` of input ``data``
    (the other inputs pass through unchanged, WHILE state needs them)."""
    b = net.b
    b.new_subgraph(name)
    ids = [b.add_input(f"{name}_{n}", shape, dt, **(q.kwargs() if q else {})) for n, shape, dt, q in inputs]
    _, shape, dt, q = inputs[data]
    x = ids[data]
    y = b.add_tensor(f"{name}_out", shape, dt, **(q.kwargs() if q else {}))
    if op == "RESHAPE":
        b.add_operator("RESHAPE", [x, b.add_constant(f"{name}_shape", np.array(shape, np.int32).reshape(-1))], [y])
    elif op == "EQUAL":
        b.add_operator("EQUAL", [x, x], [y])
    elif op == "RELU":
        b.add_operator("RELU", [x], [y])
    else:  # ADD, MUL: same parameters in and out (multipliers below 1 for every quantized type)
        b.add_operator(op, [x, x], [y])
    b.mark_output(*[y if k == data else i for k, i in enumerate(ids)])


@_op("IF", dtypes=("int8", "int16", "uint8", "float32", "int32", "bool"))
def _b_if(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    shape = _shape(draw, cfg)
    q = _aq(draw, dtype, 1e-3, 0.5)
    then_op = draw(st.sampled_from(_cf_body_ops(dtype)))
    else_op = draw(st.sampled_from(_cf_body_ops(dtype)))
    net = _Net()
    ci = net.input("condition", _values(draw, "bool", (1,)))
    xi = net.input("x", _vals_any(draw, dtype, shape), q)
    y = net.tensor("y", shape, dtype, q)
    net.b.add_operator(
        "IF", [ci, xi], [y], options_type="IfOptions", then_subgraph_index=1, else_subgraph_index=2
    )  # fmt: skip
    _cf_subgraph(net, "then", then_op, [("x", shape, dtype, q)], 0)
    _cf_subgraph(net, "else", else_op, [("x", shape, dtype, q)], 0)
    net.b.use_subgraph(0)
    return net.case([y], f"{opcode} {dtype}: then {then_op}, else {else_op}")


@_op("WHILE", dtypes=("int8", "int16", "uint8", "float32", "int32", "bool"))
def _b_while(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    shape = _shape(draw, cfg)
    q = _aq(draw, dtype, 1e-3, 0.5)
    body_op = draw(st.sampled_from(_cf_body_ops(dtype)))
    n = draw(st.integers(0, 3))  # iterations: the loop counts n down to 0
    net = _Net()
    ni = net.input("n", np.array([n], np.int32))
    xi = net.input("x", _vals_any(draw, dtype, shape), q)
    n_out = net.tensor("n_out", (1,), "int32")
    x_out = net.tensor("x_out", shape, dtype, q)
    net.b.add_operator(
        "WHILE", [ni, xi], [n_out, x_out], options_type="WhileOptions", cond_subgraph_index=1, body_subgraph_index=2
    )
    b = net.b
    b.new_subgraph("cond")
    cn = b.add_input("cond_n", (1,), "int32")
    b.add_input("cond_x", shape, dtype, **(q.kwargs() if q else {}))
    flag = b.add_tensor("cond_flag", (1,), "bool")
    b.add_operator("CAST", [cn], [flag])  # n != 0
    b.mark_output(flag)
    b.new_subgraph("body")
    bn = b.add_input("body_n", (1,), "int32")
    bx = b.add_input("body_x", shape, dtype, **(q.kwargs() if q else {}))
    n2 = b.add_tensor("body_n2", (1,), "int32")
    b.add_operator("SUB", [bn, b.add_constant("body_one", np.array([1], np.int32))], [n2])
    x2 = b.add_tensor("body_x2", shape, dtype, **(q.kwargs() if q else {}))
    if body_op == "RESHAPE":
        b.add_operator("RESHAPE", [bx, b.add_constant("body_shape", np.array(shape, np.int32).reshape(-1))], [x2])
    elif body_op == "RELU":
        b.add_operator("RELU", [bx], [x2])
    else:
        b.add_operator(body_op, [bx, bx], [x2])
    b.mark_output(n2, x2)
    b.use_subgraph(0)
    return net.case([n_out, x_out], f"{opcode} {dtype}: {n} iteration(s) of {body_op}")


# ---------------------------------------------------------------------------------------------
# QUANTIZE, DEQUANTIZE

_REQUANT_OUT = {
    "float32": ("int8", "uint8", "int16"),
    "int8": ("int8", "uint8", "int16"),
    "uint8": ("int8", "uint8", "int16"),
    "int16": ("int8", "int16", "int32"),
    "int32": ("int8", "int16"),
}


@_op(
    "QUANTIZE",
    dtypes=("int8", "uint8", "int16", "float32", "int32"),
    constraints=("output_dtype",),
    output_dtypes=_REQUANT_OUT,
)
def _b_quantize(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    shape = _shape(draw, cfg)
    out_dt = cfg.output_dtype or draw(st.sampled_from(_REQUANT_OUT[dtype]))
    net = _Net()
    if dtype == "float32":
        per_channel = len(shape) > 0 and draw(st.integers(0, 3)) == 3
        if per_channel:
            axis = draw(st.integers(0, len(shape) - 1))
            n = shape[axis]
            s = tuple(draw(scales(1e-3, 1.0)) for _ in range(n))
            z = tuple(_zp(draw, out_dt) for _ in range(n))
            q_out = _Q(s, z, axis) if n > 1 else _Q(s[0], z[0])
        else:
            q_out = _Q(draw(scales(1e-3, 1.0)), _zp(draw, out_dt))
        # Real values around the representable range, often exact halves of a step (rounding ties).
        s_ref = float(np.max(q_out.scale))
        lim = s_ref * (200.0 if out_dt != "int16" else 40000.0)
        steps = _floats(draw, shape, -lim / s_ref, lim / s_ref, halves=True)
        x = (steps.astype(np.float64) * s_ref).astype(np.float32)
        xi = net.input("x", x)
    else:
        q_in = _aq(draw, dtype, 1e-3, 1.0) if dtype != "int32" else _Q(draw(scales(1e-6, 1e-3)), 0)
        assert q_in is not None
        sym = (dtype == "int16" and out_dt == "int16") or out_dt == "int32"
        s_out = _f32(q_in.s * draw(_ratio(1 / 16, 16.0)))
        if dtype == "int32":
            s_out = _f32(q_in.s * draw(_ratio(2.0**8, 2.0**16)))
        q_out = _Q(s_out, 0 if sym else _zp(draw, out_dt))
        if dtype == "int32":
            x = _ints(draw, "int32", shape, -(2**24), 2**24)
        else:
            x = _values(draw, dtype, shape)
        xi = net.input("x", x, q_in)
    y = net.tensor("y", shape, out_dt, q_out)
    net.op(opcode, [xi], [y])
    return net.case([y], f"{opcode} {dtype} -> {out_dt}")


@_op("DEQUANTIZE", dtypes=("int8", "uint8", "int16", "float32"))
def _b_dequantize(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    shape = _shape(draw, cfg)
    net = _Net()
    if dtype == "float32":  # float16 -> float32
        xi = net.input("x", _floats(draw, shape).astype(np.float16))
        title = f"{opcode} float16 -> float32"
    else:
        q: _Q | None = _aq(draw, dtype, 1e-4, 1.0)
        if dtype != "int16" and len(shape) > 0 and draw(st.integers(0, 3)) == 3:
            axis = draw(st.integers(0, len(shape) - 1))
            n = shape[axis]
            if n > 1:
                q = _Q(
                    tuple(draw(scales(1e-4, 1.0)) for _ in range(n)), tuple(_zp(draw, dtype) for _ in range(n)), axis
                )
        xi = net.input("x", _values(draw, dtype, shape), q)
        title = f"{opcode} {dtype} -> float32"
    y = net.tensor("y", shape, "float32")
    net.op(opcode, [xi], [y])
    return net.case([y], title)


# ---------------------------------------------------------------------------------------------
# L2_NORMALIZATION, GATHER_ND, REVERSE_V2, raw math (FLOOR ... CUMSUM), logical ops, REDUCE_ANY/ALL


@_op("L2_NORMALIZATION", dtypes=("int8", "uint8", "float32"), min_rank=1)
def _b_l2norm(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    shape = _shape(draw, cfg, 1)
    q_in = _aq(draw, dtype, 1e-3, 1.0)
    q_out = None if dtype == "float32" else _Q(1 / 128, 128 if dtype == "uint8" else 0)  # LiteRT's fixed output
    x = _floats(draw, shape) if dtype == "float32" else _values(draw, dtype, shape)
    return _unary_model(draw, opcode, dtype, x, q_in, q_out)


@_op("GATHER_ND", dtypes=_ALL, min_rank=1)
def _b_gather_nd(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    shape = _shape(draw, cfg, 1)
    nd = draw(st.integers(1, len(shape)))
    lead = tuple(draw(st.integers(1, max(1, cfg.max_side))) for _ in range(draw(st.integers(0, 2))))
    n = int(np.prod(lead, dtype=np.int64)) if lead else 1
    coords = np.array(
        [[draw(st.integers(0, shape[j] - 1)) for j in range(nd)] for _ in range(n)], dtype=np.int64
    ).reshape(lead + (nd,))
    idx_dt = draw(st.sampled_from(["int32", "int64", "int16"]))
    q = _raw_q(draw, dtype)
    net = _Net()
    pi = net.input("params", _vals_any(draw, dtype, shape), q)
    ii = net.const("indices", coords, idx_dt) if draw(st.booleans()) else net.input("indices", coords.astype(idx_dt))
    y = net.tensor("y", lead + shape[nd:], dtype, q)
    net.op(opcode, [pi, ii], [y])
    return net.case([y], f"{opcode} {dtype}")


@_op("REVERSE_V2", dtypes=_ALL, min_rank=1)
def _b_reverse(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    shape = _shape(draw, cfg, 1)
    rank = len(shape)
    first = draw(st.integers(0, rank - 1))
    last = draw(st.integers(first, rank - 1))
    axes = [a - rank if draw(st.booleans()) else a for a in draw(st.permutations(range(first, last + 1)))]
    q = _raw_q(draw, dtype)
    net = _Net()
    xi = net.input("x", _vals_any(draw, dtype, shape), q)
    ai = net.const("axis", np.array(axes, np.int32))
    y = net.tensor("y", shape, dtype, q)
    net.op(opcode, [xi, ai], [y])
    return net.case([y], f"{opcode} {dtype}")


@_op("FLOOR", "SIN", "COS", dtypes=("float32",))
@_op("SIGN", dtypes=("float32", "int32"))
def _b_math_unary(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    shape = _shape(draw, cfg)
    if dtype == "float32":
        wide = opcode in ("SIN", "COS") and draw(st.booleans())
        x = _floats(draw, shape, -1000.0, 1000.0) if wide else _floats(draw, shape, halves=True)
    else:
        x = _values(draw, dtype, shape)
    return _unary_model(draw, opcode, dtype, x, None, None)


@_op("FLOOR_DIV", dtypes=("int8", "int16", "int32", "float32"))
@_op("FLOOR_MOD", dtypes=("int8", "int16", "int32", "int64", "float32"))
@_op("POW", dtypes=("int32", "float32"))
def _b_math_binary(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    s1, s2 = _broadcast_pair(draw, cfg)
    if opcode == "POW" and s1 != s2 and draw(st.booleans()):
        s2 = tuple(1 for _ in range(draw(st.integers(0, len(s1)))))  # a one-element exponent: LiteRT's fast path
    if opcode == "POW":
        if dtype == "int32":
            x1, x2 = _values(draw, dtype, s1, -20, 20), _values(draw, dtype, s2, 0, 8)
        else:
            x1 = _floats(draw, s1, -4.0, 4.0, halves=True)
            x2 = _floats(draw, s2, -3.0, 5.0, halves=True)
    elif dtype == "float32":
        x1, x2 = _floats(draw, s1, halves=True), _floats(draw, s2, halves=True)
    else:
        x1, x2 = _values(draw, dtype, s1), _values(draw, dtype, s2)
    if opcode in ("FLOOR_DIV", "FLOOR_MOD"):
        # A zero divisor anywhere fails LiteRT's invocation (float FLOOR_MOD excepted; avoided anyway).
        x2 = np.where(x2 == 0, np.ones((), x2.dtype), x2).astype(x2.dtype)
        if opcode == "FLOOR_MOD" and dtype in ("int32", "int64"):
            lo = np.iinfo(np.dtype(dtype)).min  # MIN % -1 kills LiteRT (SIGFPE)
            x1 = np.where(x1 == lo, np.zeros((), x1.dtype), x1).astype(x1.dtype)
    net = _Net()
    a = net.input("a", x1)
    b = net.const("b", x2, dtype) if draw(st.integers(0, 4)) == 4 else net.input("b", x2)
    y = net.tensor("y", np.broadcast_shapes(s1, s2), dtype)
    net.op(opcode, [a, b], [y])
    return net.case([y], f"{opcode} {dtype}")


@_op("ADD_N", dtypes=("float32", "int32"))
def _b_add_n(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    shape = _shape(draw, cfg)
    net = _Net()
    ins = [
        net.input(f"x{k}", _floats(draw, shape) if dtype == "float32" else _values(draw, dtype, shape))
        for k in range(draw(st.integers(2, 4)))
    ]
    y = net.tensor("y", shape, dtype)
    net.op(opcode, ins, [y])
    return net.case([y], f"{opcode} {dtype}")


@_op("CUMSUM", dtypes=("float32", "int32", "int64"), min_rank=1)
def _b_cumsum(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    shape = _shape(draw, cfg, 1)
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    x = _floats(draw, shape) if dtype == "float32" else _values(draw, dtype, shape)
    net = _Net()
    xi = net.input("x", x)
    a = np.array(axis, np.int32).reshape(draw(st.sampled_from([(), (1,)])))
    ai = net.const("axis", a) if draw(st.integers(0, 3)) else net.input("axis", a)
    y = net.tensor("y", shape, dtype)
    net.op(opcode, [xi, ai], [y], exclusive=draw(st.booleans()), reverse=draw(st.booleans()))
    return net.case([y], f"{opcode} {dtype}")


@_op("ONE_HOT", dtypes=("int8", "uint8", "float32", "int32", "int64", "bool"))
def _b_one_hot(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    shape = _shape(draw, cfg, 0, max(cfg.max_rank - 1, 0))
    depth = draw(st.integers(0, 5))
    idt = draw(st.sampled_from(["int32", "int64"]))
    net = _Net()
    xi = net.input("indices", _ints(draw, idt, shape, -1, depth))
    axis = draw(st.integers(-1, len(shape)))
    di = net.const("depth", np.array(depth, np.int32))
    on, off = _values(draw, dtype, (2,))
    oi = (
        net.const("on_value", np.array(on, dtype))
        if draw(st.booleans())
        else net.input("on_value", np.array(on, dtype))
    )
    fi = net.const("off_value", np.array(off, dtype))
    pos = len(shape) if axis == -1 else axis
    y = net.tensor("y", shape[:pos] + (depth,) + shape[pos:], dtype)
    net.op(opcode, [xi, di, oi, fi], [y], axis=axis, options_type="OneHotOptions")
    return net.case([y], f"{opcode} {dtype}")


@_op("LOGICAL_AND", "LOGICAL_OR", "LOGICAL_NOT", dtypes=("bool",))
def _b_logical(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    net = _Net()
    if opcode == "LOGICAL_NOT":
        shape = _shape(draw, cfg)
        ins = [net.input("x", _values(draw, "bool", shape))]
    else:
        s1, s2 = _broadcast_pair(draw, cfg)
        shape = tuple(np.broadcast_shapes(s1, s2))
        ins = [net.input("a", _values(draw, "bool", s1)), net.input("b", _values(draw, "bool", s2))]
    y = net.tensor("y", shape, "bool")
    net.op(opcode, ins, [y])
    return net.case([y], f"{opcode} bool")


@_op("REDUCE_ANY", "REDUCE_ALL", dtypes=("bool",))
def _b_reduce_bool(draw: st.DrawFn, opcode: str, dtype: str, cfg: _Cfg) -> Case:
    shape = _shape(draw, cfg)
    axes = _axes(draw, len(shape))
    keep = draw(st.booleans())
    ra = sorted({a % len(shape) for a in axes}) if shape else []
    out_shape = (
        tuple(1 if k in ra else d for k, d in enumerate(shape))
        if keep
        else tuple(d for k, d in enumerate(shape) if k not in ra)
    )
    x = _values(draw, "bool", shape)
    if x.size and draw(st.integers(0, 2)) == 0:
        x = np.full(shape, opcode == "REDUCE_ALL")  # uniform inputs: the other answer
    net = _Net()
    xi = net.input("x", x)
    ai = net.const("axis", np.array(axes, np.int32).reshape(-1))
    y = net.tensor("y", out_shape, "bool")
    net.op(opcode, [xi, ai], [y], keep_dims=keep)
    return net.case([y], f"{opcode} bool")


# ---------------------------------------------------------------------------------------------
# graph_models: small multi-op graphs (NHWC activations), chains and branches

#: Operators :func:`graph_models` can place, by activation dtype.
GRAPH_OPS: dict[str, tuple[str, ...]] = {
    "int8": (
        "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "AVERAGE_POOL_2D", "MAX_POOL_2D", "ADD", "SUB", "MUL",
        "RELU", "RELU6", "LOGISTIC", "TANH", "CONCATENATION", "PAD", "MEAN", "QUANTIZE",
    ),
    "uint8": (
        "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "AVERAGE_POOL_2D", "MAX_POOL_2D", "ADD", "SUB", "MUL",
        "RELU", "RELU6", "LOGISTIC", "TANH", "CONCATENATION", "PAD", "MEAN", "QUANTIZE",
    ),
    "int16": (
        "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "AVERAGE_POOL_2D", "MAX_POOL_2D", "ADD", "SUB", "MUL",
        "RELU", "RELU6", "LOGISTIC", "TANH", "CONCATENATION", "PAD", "MEAN", "QUANTIZE",
    ),
    "float32": (
        "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "AVERAGE_POOL_2D", "MAX_POOL_2D", "ADD", "SUB", "MUL",
        "RELU", "RELU6", "CONCATENATION", "PAD", "MEAN",
    ),
}  # fmt: skip


@dataclass(frozen=True)
class _T:
    """A tensor of the graph being built: index, shape, quantization."""

    index: int
    shape: tuple[int, int, int, int]
    q: _Q | None
    name: str


def _g_conv(draw: st.DrawFn, net: _Net, dtype: str, t: _T, opcode: str, k: int) -> _T:
    b, h, w, c = t.shape
    dw = opcode == "DEPTHWISE_CONV_2D"
    kh, kw = draw(st.integers(1, min(3, h) if h else 1)), draw(st.integers(1, min(3, w) if w else 1))
    pad = draw(st.sampled_from(["SAME", "VALID"]))
    sh, sw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    o = c * draw(st.integers(1, 2)) if dw else draw(st.integers(1, 4))
    geo = ConvGeometry(b, h, w, c, o, kh, kw, sh, sw, 1, 1, pad, 1, dw)
    cfg = _Cfg()
    q_w = _weight_q(draw, dtype, cfg, o, 3 if dw else 0)
    taps = kh * kw * (1 if dw else c)
    q_out = None
    if t.q is not None and q_w is not None:
        q_out = _Q(_out_scale(draw, t.q.s, _geomean(q_w.scale), taps), _zp(draw, dtype))
    wi = net.const(f"w{k}", _weights(draw, dtype, geo.filter_shape), _W_DT[dtype], q_w)
    bi = net.const(f"b{k}", *_conv_bias(draw, dtype, o, taps, t.q, q_w))
    y = net.tensor(f"t{k}", geo.output_shape, dtype, q_out)
    net.op(opcode, [t.index, wi, bi], [y], **geo.options, fused_activation_function=draw(st.sampled_from(ACTIVATIONS)))
    return _T(y, geo.output_shape, q_out, f"t{k}")


def _g_fc(draw: st.DrawFn, net: _Net, dtype: str, t: _T, k: int) -> _T:
    b, h, w, c = t.shape
    units = draw(st.integers(1, 4))
    q_w = _weight_q(draw, dtype, _Cfg(), units, 0)
    q_out = None
    if t.q is not None and q_w is not None:
        q_out = _Q(_out_scale(draw, t.q.s, _geomean(q_w.scale), c), _zp(draw, dtype))
    wi = net.const(f"w{k}", _weights(draw, dtype, (units, c)), _W_DT[dtype], q_w)
    bi = net.const(f"b{k}", *_conv_bias(draw, dtype, units, c, t.q, q_w))
    shape = (b, h, w, units)
    y = net.tensor(f"t{k}", shape, dtype, q_out)
    net.op(
        "FULLY_CONNECTED", [t.index, wi, bi], [y], keep_num_dims=True,
        fused_activation_function=draw(st.sampled_from(ACTIVATIONS)),
    )  # fmt: skip
    return _T(y, shape, q_out, f"t{k}")


def _g_pool(draw: st.DrawFn, net: _Net, dtype: str, t: _T, opcode: str, k: int) -> _T:
    b, h, w, c = t.shape
    fh, fw = draw(st.integers(1, min(3, h))), draw(st.integers(1, min(3, w)))
    g = PoolGeometry(
        b, h, w, c, fh, fw, draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.sampled_from(["SAME", "VALID"]))
    )
    y = net.tensor(f"t{k}", g.output_shape, dtype, t.q)
    net.op(opcode, [t.index], [y], **g.options, fused_activation_function=draw(st.sampled_from(ACTIVATIONS)))
    return _T(y, g.output_shape, t.q, f"t{k}")


def _g_binary(draw: st.DrawFn, net: _Net, dtype: str, a: _T, b: _T, opcode: str, k: int) -> _T:
    qo = None
    opts: dict[str, Any] = {"fused_activation_function": draw(st.sampled_from(ACTIVATIONS))}
    if a.q is not None and b.q is not None:
        if opcode == "MUL":
            so = _f32(_f32(a.q.s * b.q.s) * draw(_ratio(1.0, 512.0)))
        else:
            so = _f32(max(a.q.s, b.q.s) * draw(_ratio(0.25, 4.0)))
            if dtype == "int16":
                opts["pot_scale_int16"] = False
        qo = _Q(so, _zp(draw, dtype))
    y = net.tensor(f"t{k}", a.shape, dtype, qo)
    net.op(opcode, [a.index, b.index], [y], **opts)
    return _T(y, a.shape, qo, f"t{k}")


def _g_unary(draw: st.DrawFn, net: _Net, dtype: str, t: _T, opcode: str, k: int) -> _T:
    q = t.q
    if t.q is not None:
        if opcode in ("LOGISTIC", "TANH"):
            q = _Q(*_FIXED_OUT[(opcode, dtype)])
        else:
            q = _Q(_f32(t.q.s * draw(_ratio(0.25, 4.0))), _zp(draw, dtype))
    y = net.tensor(f"t{k}", t.shape, dtype, q)
    net.op(opcode, [t.index], [y])
    return _T(y, t.shape, q, f"t{k}")


@st.composite
def _graph(draw: st.DrawFn, dtype: str, ops: tuple[str, ...], max_ops: int, max_side: int) -> Case:
    net = _Net()
    shape = (1, draw(st.integers(1, max_side)), draw(st.integers(1, max_side)), draw(st.integers(1, 3)))
    live: list[_T] = []
    for k in range(draw(st.integers(1, 2))):
        q = _aq(draw, dtype, 1e-3, 1.0) if dtype != "int16" else _aq(draw, dtype, 1e-4, 1e-2)
        x = _floats(draw, shape, -4.0, 4.0) if dtype == "float32" else _values(draw, dtype, shape)
        live.append(_T(net.input(f"x{k}", x, q), shape, q, f"x{k}"))
    n_inputs = len(live)
    consumed: set[int] = set()
    names: list[str] = []
    for k in range(draw(st.integers(1, max_ops))):
        opcode = draw(st.sampled_from(ops))
        t = draw(st.sampled_from(live[::-1]))  # shrinks to the newest tensor: a chain
        if opcode in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            y = _g_conv(draw, net, dtype, t, opcode, k)
        elif opcode == "FULLY_CONNECTED":
            y = _g_fc(draw, net, dtype, t, k)
        elif opcode in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
            y = _g_pool(draw, net, dtype, t, opcode, k)
        elif opcode in ("ADD", "SUB", "MUL", "CONCATENATION"):
            same = (
                [u for u in live if u.shape[:3] == t.shape[:3]]
                if opcode == "CONCATENATION"
                else [u for u in live if u.shape == t.shape]
            )
            if opcode == "CONCATENATION" and dtype == "int8":
                same = [u for u in same if u.q == t.q]  # int8 CONCATENATION needs equal parameters
            u = draw(st.sampled_from(same[::-1]))
            if opcode == "CONCATENATION":
                shape_o = (*t.shape[:3], t.shape[3] + u.shape[3])
                yi = net.tensor(f"t{k}", shape_o, dtype, t.q)
                net.op("CONCATENATION", [t.index, u.index], [yi], axis=3)
                y = _T(yi, shape_o, t.q, f"t{k}")  # type: ignore[arg-type]
            else:
                y = _g_binary(draw, net, dtype, t, u, opcode, k)
            consumed.add(u.index)
        elif opcode == "PAD":
            pads = [
                [0, 0],
                [draw(st.integers(0, 1)), draw(st.integers(0, 1))],
                [draw(st.integers(0, 1)), draw(st.integers(0, 1))],
                [0, 0],
            ]
            shape_o = tuple(d + a + b for d, (a, b) in zip(t.shape, pads))
            yi = net.tensor(f"t{k}", shape_o, dtype, t.q)
            net.op("PAD", [t.index, net.const(f"pads{k}", np.array(pads, np.int32))], [yi])
            y = _T(yi, shape_o, t.q, f"t{k}")  # type: ignore[arg-type]
        elif opcode == "MEAN":
            q = t.q if t.q is None else _Q(_f32(t.q.s * draw(_ratio(0.5, 2.0))), _zp(draw, dtype))
            shape_o = (t.shape[0], 1, 1, t.shape[3])
            yi = net.tensor(f"t{k}", shape_o, dtype, q)
            net.op("MEAN", [t.index, net.const(f"axes{k}", np.array([1, 2], np.int32))], [yi], keep_dims=True)
            y = _T(yi, shape_o, q, f"t{k}")
        else:  # RELU, RELU6, LOGISTIC, TANH, QUANTIZE (requantization)
            y = _g_unary(draw, net, dtype, t, opcode, k)
        consumed.add(t.index)
        names.append(opcode)
        live.append(y)
    outs = [t.index for t in live[n_inputs:] if t.index not in consumed] or [live[-1].index]
    return net.case(outs, f"graph {dtype}: {' -> '.join(names)}")


def graph_models(
    dtype: str = "int8",
    *,
    ops: Sequence[str] | None = None,
    max_ops: int = 4,
    max_side: int = 4,
) -> st.SearchStrategy[Case]:
    """Small multi-operator models: chains and branches of supported ops on NHWC activations.

    One or two graph inputs of shape ``(1, H, W, C)``; each of 1 to ``max_ops`` operators (drawn from
    ``ops``, default every op of ``GRAPH_OPS[dtype]``) reads the newest tensor or an earlier one (a
    branch), binary ops (ADD, SUB, MUL, CONCATENATION) join two branches, and every tensor no op
    reads is a graph output. Quantization parameters are drawn per tensor in the ranges
    :func:`op_models` uses, so every operator is one LiteRT accepts. Shrinks towards one operator on
    a one-pixel input. Raises :class:`InvalidArgument` for an unknown dtype or op.
    """
    _check_choice("dtype", dtype, tuple(GRAPH_OPS))
    n = _check_int("max_ops", max_ops, 1, 32)
    side = _check_int("max_side", max_side, 1, 32)
    if ops is None:
        chosen = GRAPH_OPS[dtype]
    else:
        if isinstance(ops, str) or not isinstance(ops, Sequence):
            raise _fail(f"ops must be a sequence of op names, got {ops!r}")
        bad = [o for o in ops if o not in GRAPH_OPS[dtype]]
        if bad or not ops:
            raise _fail(
                f"ops for {dtype} graphs must be a non-empty subset of {list(GRAPH_OPS[dtype])}; got {list(ops)}"
            )
        chosen = tuple(ops)
    return _graph(dtype, chosen, n, side)
