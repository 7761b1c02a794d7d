"""The building blocks of :mod:`refquant.strategies`: argument validation, quantization parameters, values.

Public strategies: :func:`scales`, :func:`zero_points`, :func:`quant_params`, :func:`quantized_arrays`,
:func:`quantized_multipliers`. Helpers every op family's builders use: the ``check_*`` validators and
:func:`invalid` (each raises :class:`InvalidArgument` at the call, before any drawing), :func:`log_uniform`
and :func:`ratio` (float32 factors that shrink to powers of two), :func:`same_or_valid` (SAME / VALID
output sizes), and :func:`draw_ints`, :func:`draw_floats`, :func:`draw_values` (arrays that shrink
element by element and keep their draws in place when a shape shrinks).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument as _HypothesisInvalidArgument

from ..errors import RefquantError
from ..model import QuantParams

# ---------------------------------------------------------------------------------------------
# Errors and constants


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


#: (min, max) of each integer dtype.
INT_RANGES = {
    "int8": (-128, 127),
    "uint8": (0, 255),
    "int16": (-32768, 32767),
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
}


# ---------------------------------------------------------------------------------------------
# Argument validation


def invalid(message: str) -> InvalidArgument:
    """The :class:`InvalidArgument` to raise for ``message`` (it names the argument, the value and what is allowed)."""
    return InvalidArgument(message)


def check_int(name: str, value: Any, lo: int, hi: int | None = None) -> int:
    """``value`` as an int; raises :class:`InvalidArgument` unless it is an integer (not a bool) in ``[lo, hi]``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise invalid(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    value = int(value)
    if value < lo or (hi is not None and value > hi):
        bound = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise invalid(f"{name} must be {bound}, got {value}")
    return value


def check_float(name: str, value: Any, *, positive: bool = True) -> float:
    """``value`` as a float; raises :class:`InvalidArgument` unless it is a finite number (``> 0`` if ``positive``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise invalid(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    v = float(value)
    if not math.isfinite(v) or (positive and v <= 0):
        raise invalid(f"{name} must be a finite number{' > 0' if positive else ''}, got {value!r}")
    return v


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> Any:
    """``value``; raises :class:`InvalidArgument` unless it is one of ``choices``."""
    if not isinstance(value, str) and not isinstance(value, bool) and value is not None:
        raise invalid(f"{name} must be one of {list(choices)}, got {value!r} ({type(value).__name__})")
    if value not in choices:
        raise invalid(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def check_opt_bool(name: str, value: Any) -> bool | None:
    """``value``; raises :class:`InvalidArgument` unless it is True, False or None."""
    if value is not None and not isinstance(value, bool):
        raise invalid(f"{name} must be True, False or None, got {value!r}")
    return value


# ---------------------------------------------------------------------------------------------
# Scales, zero points, quantization parameters, multipliers


def f32(v: float) -> float:
    """``v`` rounded to float32 (as a Python float): the value a .tflite file stores."""
    return float(np.float32(v))


def nice_values(lo: float, hi: float, centre: float = 1.0) -> list[float]:
    """Powers of two in [lo, hi], the one nearest ``centre`` first (the shrink target)."""
    if hi < lo:
        return []
    k_lo, k_hi = math.ceil(math.log2(lo) - 1e-12), math.floor(math.log2(hi) + 1e-12)
    vals = [2.0**k for k in range(k_lo, k_hi + 1) if lo <= 2.0**k <= hi]
    c = math.log2(centre)
    return sorted(vals, key=lambda v: (abs(math.log2(v) - c), v))[:12]


def _f32_inside(lo: float, hi: float) -> tuple[float, float]:
    """The smallest and largest float32 values inside [lo, hi]."""
    lo32, hi32 = np.float32(lo), np.float32(hi)
    if float(lo32) < lo:
        lo32 = np.nextafter(lo32, np.float32(np.inf))
    if float(hi32) > hi:
        hi32 = np.nextafter(hi32, np.float32(-np.inf))
    return float(lo32), float(hi32)


@st.composite
def log_uniform(draw: st.DrawFn, lo: float, hi: float, nice: tuple[float, ...]) -> float:
    """A float32 value in [lo, hi]: a power of two (one draw in four; shrinks to ``nice[0]``) or log-uniform."""
    if nice and draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from(nice))
    lo32, hi32 = _f32_inside(lo, hi)
    if lo32 >= hi32:  # a single value (or none in float32: take the nearest)
        return lo32 if lo32 == hi32 else f32(lo)
    e = draw(st.floats(math.log10(lo), math.log10(hi)))
    return min(max(f32(10.0**e), lo32), hi32)


def ratio(lo: float, hi: float, centre: float = 1.0) -> st.SearchStrategy[float]:
    """A positive factor in [lo, hi], log-uniform or a power of two (shrinks to the one nearest ``centre``)."""
    return log_uniform(lo, hi, tuple(nice_values(lo, hi, centre)))


def scales(min_value: float = 1e-4, max_value: float = 1.0) -> st.SearchStrategy[float]:
    """Quantization scales: positive float32 values in ``[min_value, max_value]``, over several decades.

    One draw in four is a power of two (these make requantization ties frequent); the others are
    log-uniform. Shrinks towards 1.0 when it is in range, else the power of two nearest 1.
    Values are exactly representable in float32 (a .tflite file stores float32 scales).
    """
    lo = check_float("min_value", min_value)
    hi = check_float("max_value", max_value)
    if lo > hi:
        raise invalid(f"min_value {lo!r} must not exceed max_value {hi!r}")
    if lo < 1e-30 or hi > 1e30:
        raise invalid(f"scales must lie in [1e-30, 1e30] (float32 with room to multiply); got [{lo!r}, {hi!r}]")
    return log_uniform(lo, hi, tuple(nice_values(lo, hi)))


def zero_points(dtype: str = "int8", *, symmetric: bool = False) -> st.SearchStrategy[int]:
    """Zero points for ``dtype``: the full type range (shrinking to 0), or the symmetric one.

    ``symmetric=True`` gives 0 (128 for uint8). int16 is always symmetric (LiteRT requires zero
    point 0 for int16 activations).
    """
    check_choice("dtype", dtype, QUANTIZED_DTYPES)
    if not isinstance(symmetric, bool):
        raise invalid(f"symmetric must be True or False, got {symmetric!r}")
    if dtype == "int16" or (symmetric and dtype == "int8"):
        return st.just(0)
    if symmetric:
        return st.just(128)
    lo, hi = INT_RANGES[dtype]
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
    check_choice("dtype", dtype, QUANTIZED_DTYPES)
    if channels is not None:
        check_int("channels", channels, 1, 4096)
    check_int("axis", axis, 0, 7)
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
    check_choice("dtype", dtype, tuple(INT_RANGES))
    tlo, thi = INT_RANGES[dtype]
    lo = tlo if min_value is None else check_int("min_value", min_value, tlo, thi)
    hi = thi if max_value is None else check_int("max_value", max_value, tlo, thi)
    if lo > hi:
        raise invalid(f"min_value {lo} must not exceed max_value {hi}")
    if isinstance(shape, st.SearchStrategy):
        shapes = shape
    else:
        if isinstance(shape, (int, np.integer)):
            shape = (int(shape),)
        if not isinstance(shape, Sequence):
            raise invalid(f"shape must be a tuple of ints or a strategy, got {shape!r}")
        dims = tuple(check_int(f"shape[{i}]", d, 0, 1 << 20) for i, d in enumerate(shape))
        if int(np.prod(dims, dtype=np.int64)) > 1 << 22:
            raise invalid(f"shape {list(dims)} has more than 2**22 elements")
        shapes = st.just(dims)

    @st.composite
    def build(draw: st.DrawFn) -> np.ndarray:
        return draw_ints(draw, dtype, tuple(draw(shapes)), lo, hi)

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
    lo = check_int("min_shift", min_shift, -31, 30)
    hi = check_int("max_shift", max_shift, -31, 30)
    if lo > hi:
        raise invalid(f"min_shift {lo} must not exceed max_shift {hi}")
    return _multiplier(lo, hi)


# ---------------------------------------------------------------------------------------------
# Geometry


def same_or_valid(padding: str, size: int, k_eff: int, stride: int) -> tuple[int, int]:
    """(output size, padding before) per LiteRT ``padding.h``."""
    if padding == "SAME":
        out = (size + stride - 1) // stride
    else:
        out = (size + stride - k_eff) // stride
    total = max(0, (out - 1) * stride + k_eff - size)
    return out, total // 2


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


def draw_ints(draw: st.DrawFn, dtype: str, shape: tuple[int, ...], lo: int, hi: int) -> np.ndarray:
    """Integer values in [lo, hi] (see :func:`_array`); dense backgrounds are uniform with the bounds sprinkled in."""
    shape = tuple(int(d) for d in shape)
    n = int(np.prod(shape, dtype=np.int64)) if shape else 1
    r_lo, r_hi = (max(lo, -(2**62)), min(hi, 2**62)) if hi - lo >= 2**63 - 1 else (lo, hi)

    def dense(rng: np.random.Generator, size: int) -> np.ndarray:
        v = rng.integers(r_lo, r_hi, size=size, endpoint=True, dtype=np.int64)
        edge = rng.random(size)
        return np.where(edge < 0.03, lo, np.where(edge > 0.97, hi, v))

    return _array(draw, n, st.integers(lo, hi), dense, min(max(0, lo), hi), np.dtype(dtype)).reshape(shape)


def draw_floats(
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


def draw_values(
    draw: st.DrawFn, dtype: str, shape: tuple[int, ...], lo: float | None = None, hi: float | None = None
) -> np.ndarray:
    """Values of any dtype: integers over the type range (or [lo, hi]), floats in [-8, 8], booleans."""
    shape = tuple(int(d) for d in shape)
    if dtype == "bool":
        return draw_ints(draw, "uint8", shape, 0, 1).astype(bool)
    if dtype in ("float32", "float16"):
        v = draw_floats(draw, shape, -8.0 if lo is None else lo, 8.0 if hi is None else hi)
        return v.astype(dtype)
    tlo, thi = INT_RANGES[dtype]
    if dtype in ("int32", "int64") and lo is None:
        # Mostly moderate values (readable, no wrapping); sometimes the full range (wrapping arithmetic).
        if draw(st.integers(0, 3)) < 3:
            tlo, thi = -1000, 1000
    return draw_ints(draw, dtype, shape, int(tlo if lo is None else lo), int(thi if hi is None else hi))
