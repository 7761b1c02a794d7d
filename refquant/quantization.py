"""Real-multiplier encoding, fused-activation ranges, and float <-> integer (de)quantization.

These reproduce the LiteRT helpers that run at Prepare time (``quantization_util.cc``,
``kernel_util.cc``) and the QUANTIZE / DEQUANTIZE reference kernels (``reference/quantize.h``,
``reference/dequantize.h``); docs/litert_semantics.md §1.1, §2.2 and §3.15 give the equations.

Where LiteRT would ``TFLITE_CHECK``-abort the process or fail Prepare, these functions raise
:class:`refquant.errors.QuantParamError` with a self-contained message (the value found and what was
expected); callers add operator/tensor context. Programming errors (a bad ``rounding`` or ``dtype``
argument) raise ``ValueError``.

Every float width is deliberate: scales are float32 in a .tflite file, so per-tensor scales passed
as Python floats are first rounded to float32, exactly as the interpreter would have stored them.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from refquant.errors import QuantParamError
from refquant.fixedpoint import INT32_MAX, INT32_MIN, round_half_away_from_zero, wrap_int, wrap_int32_i64
from refquant.requantize import Rounding, check_rounding

__all__ = [
    "ACTIVATIONS",
    "dtype_range",
    "quantize_multiplier",
    "quantize_multiplier_array",
    "quantize_multiplier_smaller_than_one_exp",
    "quantize_multiplier_greater_than_one",
    "calculate_activation_range_quantized",
    "calculate_activation_range_float",
    "quantize",
    "dequantize",
]

#: Fused-activation names (TFLite ``ActivationFunctionType``) accepted by the range helpers.
ACTIVATIONS: tuple[str, ...] = ("NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH", "SIGN_BIT")

_TWO_POW_31 = 2**31
_FLT_MAX = np.finfo(np.float32).max


def dtype_range(dtype: DTypeLike) -> tuple[int, int]:
    """The ``(min, max)`` of an integer dtype as Python ints, e.g. ``int8 -> (-128, 127)``.

    Raises ``ValueError`` for a non-integer dtype.
    """
    dt = np.dtype(dtype)
    if not np.issubdtype(dt, np.integer) or dt == np.bool_:
        raise ValueError(f"expected an integer dtype, got {dt}")
    info = np.iinfo(dt)
    return int(info.min), int(info.max)


# ---------------------------------------------------------------------------------------------
# QuantizeMultiplier


def _round_away_double(v: float) -> int:
    """C ``round`` of a double, exactly (floor and the fractional part are exact in binary)."""
    mag = abs(v)
    whole = math.floor(mag)
    r = whole + (1 if mag - whole >= 0.5 else 0)
    return r if v >= 0 else -r


def quantize_multiplier(d: float, rounding: Rounding = "double") -> tuple[int, int]:
    """LiteRT ``QuantizeMultiplier(double d)``: encode a real multiplier as ``(M, shift)``.

    Real meaning: ``d ~= M * 2^(shift - 31)`` with ``2^30 <= |M| < 2^31`` (M is Q0.31 in [0.5, 1)).
    Algorithm (docs/litert_semantics.md §1.1): ``q, shift = frexp(d)``; ``M = round_half_away(q * 2^31)`` (exact in
    double); ``M == 2^31`` becomes ``(2^30, shift + 1)``; ``shift < -31`` flushes to ``(0, 0)``;
    ``d == 0`` gives ``(0, 0)``. A negative ``d`` gives a negative ``M`` (possibly ``-2^31``). With
    ``rounding="single"`` a ``shift > 30`` saturates to ``(2^31 - 1, 30)``.

    ``d``: a finite real (Python float, NumPy float scalar or 0-d array; float32 values are widened
    exactly). Returns Python ints ``(M, shift)``; ``M`` fits int32. Raises ``QuantParamError`` for inf
    or NaN (undefined in LiteRT). For arrays use :func:`quantize_multiplier_array`.
    """
    check_rounding(rounding)
    arr = np.asarray(d)
    if arr.ndim != 0:
        hint = "use quantize_multiplier_array"
        raise TypeError(f"quantize_multiplier takes a scalar, got an array of shape {arr.shape}; {hint}")
    dv = float(arr)
    if not math.isfinite(dv):
        raise QuantParamError(f"real multiplier {dv!r} is not finite; expected a finite number")
    if dv == 0.0:
        return 0, 0
    q, shift = math.frexp(dv)
    q_fixed = _round_away_double(q * _TWO_POW_31)  # |q| < 1 and q * 2^31 is exact: |q_fixed| <= 2^31
    if q_fixed == _TWO_POW_31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if rounding == "single" and shift > 30:
        return INT32_MAX, 30
    return int(q_fixed), int(shift)


def quantize_multiplier_array(
    d: ArrayLike, rounding: Rounding = "double"
) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
    """Vectorized :func:`quantize_multiplier`, e.g. for per-channel CONV multipliers.

    ``d``: array of finite reals (converted to float64; float32 widens exactly). Returns
    ``(multiplier, shift)`` int32 arrays of ``d``'s shape, elementwise identical to
    :func:`quantize_multiplier`. Raises ``QuantParamError`` naming the first non-finite element.
    """
    check_rounding(rounding)
    dv = np.asarray(d, dtype=np.float64)
    bad = ~np.isfinite(dv)
    if np.any(bad):
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        value = float(dv[idx])
        raise QuantParamError(f"real multiplier at index {idx} is {value!r}; expected a finite number")
    q, shift = np.frexp(dv)
    shift = shift.astype(np.int64)
    q_fixed = round_half_away_from_zero(q * float(_TWO_POW_31)).astype(np.int64)  # exact, |.| <= 2^31
    top = q_fixed == _TWO_POW_31
    q_fixed = np.where(top, _TWO_POW_31 // 2, q_fixed)
    shift = np.where(top, shift + 1, shift)
    flush = (shift < -31) | (dv == 0.0)
    q_fixed = np.where(flush, 0, q_fixed)
    shift = np.where(flush, 0, shift)
    if rounding == "single":
        sat = shift > 30
        q_fixed = np.where(sat, INT32_MAX, q_fixed)
        shift = np.where(sat, 30, shift)
    return np.asarray(q_fixed.astype(np.int32)), np.asarray(shift.astype(np.int32))


def quantize_multiplier_smaller_than_one_exp(d: float, rounding: Rounding = "double") -> tuple[int, int]:
    """LiteRT ``QuantizeMultiplierSmallerThanOneExp``: :func:`quantize_multiplier` for ``0 < d < 1``.

    Returns Python ints ``(M, shift)`` with ``shift <= 0``. Raises ``QuantParamError`` where LiteRT
    CHECK-aborts: ``d`` not in ``(0, 1)``, or ``d`` so close to 1 that ``M`` rounds up to 1.0 and the
    shift becomes positive.
    """
    dv = float(np.asarray(d))
    if not (0.0 < dv < 1.0):
        expected = "QuantizeMultiplierSmallerThanOneExp requires 0 < multiplier < 1"
        raise QuantParamError(f"real multiplier {dv!r} is not in (0, 1); {expected}")
    m, shift = quantize_multiplier(dv, rounding)
    if shift > 0:
        raise QuantParamError(
            f"real multiplier {dv!r} rounds to 1.0 (M={m}, shift={shift}); "
            "QuantizeMultiplierSmallerThanOneExp requires shift <= 0"
        )
    return m, shift


def quantize_multiplier_greater_than_one(d: float, rounding: Rounding = "double") -> tuple[int, int]:
    """LiteRT ``QuantizeMultiplierGreaterThanOne``: :func:`quantize_multiplier` for ``d > 1``.

    Returns Python ints ``(M, shift)`` with ``shift >= 1``. Raises ``QuantParamError`` where LiteRT
    CHECK-aborts (``d <= 1``, NaN) or is undefined (``d = inf``).
    """
    dv = float(np.asarray(d))
    if not dv > 1.0:
        expected = "QuantizeMultiplierGreaterThanOne requires multiplier > 1"
        raise QuantParamError(f"real multiplier {dv!r} is not greater than 1; {expected}")
    return quantize_multiplier(dv, rounding)


# ---------------------------------------------------------------------------------------------
# Fused activation ranges


def _check_activation(activation: str) -> str:
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown fused activation {activation!r}; expected one of {', '.join(ACTIVATIONS)}")
    return activation


def _quantize_bound(f: float, scale: np.float32, zero_point: int) -> int:
    """kernel_util.cc ``Quantize``: ``zp + int32(roundf(f32(f) / f32(scale)))`` with its overflow check."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        tmp = round_half_away_from_zero(np.float32(f) / scale)  # float32 division, then roundf
    t = float(tmp)
    # LiteRT: TF_LITE_ENSURE(tmp >= float(INT32_MIN) && tmp <= float(INT32_MAX)); float(INT32_MAX) is 2^31.
    if not (float(INT32_MIN) <= t <= float(_TWO_POW_31)):
        raise QuantParamError(
            f"activation bound {f} / output scale {float(scale)!r} = {t!r} does not fit int32 "
            "(LiteRT CalculateActivationRangeQuantized fails Prepare); expected a finite, nonzero scale"
        )
    # static_cast<int32_t>(2^31f) is INT32_MIN on x86 (cvttss2si); zero_point + q wraps like C int32.
    q = INT32_MIN if t == float(_TWO_POW_31) else int(t)
    return wrap_int(zero_point + q, 32)


def calculate_activation_range_quantized(
    activation: str, scale: float, zero_point: int, dtype: DTypeLike
) -> tuple[int, int]:
    """LiteRT ``CalculateActivationRangeQuantized``: the integer clamp ``[lo, hi]`` of a fused activation.

    With ``[qmin, qmax]`` the range of ``dtype`` (int8, uint8 or int16) and
    ``Q(f) = zero_point + int(roundf(f32(f) / f32(scale)))`` (float32 division, ties away from zero):

    * ``RELU``: ``[max(qmin, Q(0)), qmax]``
    * ``RELU6``: ``[max(qmin, Q(0)), min(qmax, Q(6))]``
    * ``RELU_N1_TO_1``: ``[max(qmin, Q(-1)), min(qmax, Q(1))]``
    * ``NONE``, ``TANH``, ``SIGN_BIT``: ``[qmin, qmax]``

    ``scale`` is the output tensor's float32 scale (a Python float is rounded to float32 first).
    Returns Python ints. They are not clipped to each other or to the dtype: ``lo > qmax`` is possible
    (large zero point), and ``Q(6) == 2^31`` exactly converts to ``INT32_MIN`` (x86) so ``hi`` can be far
    below ``qmin``. LiteRT applies ``min(hi, max(lo, v))`` and then ``static_cast`` to the output type
    (keeping the low bits), so kernels must do the same to stay bit-exact in these corners. Raises ``QuantParamError`` when ``f / scale`` is NaN or outside int32
    (for example a zero scale), where LiteRT fails Prepare; ``ValueError`` for an unknown activation
    name or an unsupported dtype.
    """
    _check_activation(activation)
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int16)):
        raise ValueError(f"quantized activation range needs an int8, uint8 or int16 output, got {dt}")
    qmin, qmax = dtype_range(dt)
    s = np.float32(scale)
    zp = int(zero_point)
    if activation == "RELU":
        return max(qmin, _quantize_bound(0.0, s, zp)), qmax
    if activation == "RELU6":
        return max(qmin, _quantize_bound(0.0, s, zp)), min(qmax, _quantize_bound(6.0, s, zp))
    if activation == "RELU_N1_TO_1":
        return max(qmin, _quantize_bound(-1.0, s, zp)), min(qmax, _quantize_bound(1.0, s, zp))
    return qmin, qmax


def calculate_activation_range_float(activation: str) -> tuple[np.float32, np.float32]:
    """LiteRT ``CalculateActivationRange<float>``: the float clamp ``[lo, hi]`` of a fused activation.

    ``NONE``/``TANH``/``SIGN_BIT``: ``[-FLT_MAX, FLT_MAX]`` (so a fused NONE clamps ±inf to ±FLT_MAX);
    ``RELU``: ``[0, FLT_MAX]``; ``RELU6``: ``[0, 6]``; ``RELU_N1_TO_1``: ``[-1, 1]``. Returns float32
    scalars. Raises ``ValueError`` for an unknown activation name.
    """
    _check_activation(activation)
    if activation == "RELU":
        return np.float32(0.0), _FLT_MAX
    if activation == "RELU6":
        return np.float32(0.0), np.float32(6.0)
    if activation == "RELU_N1_TO_1":
        return np.float32(-1.0), np.float32(1.0)
    return -_FLT_MAX, _FLT_MAX


# ---------------------------------------------------------------------------------------------
# QUANTIZE / DEQUANTIZE


def _channel_params(
    shape: tuple[int, ...], scale: ArrayLike, zero_point: ArrayLike, axis: int | None
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Scale (float32) and zero point (int64) arrays shaped to broadcast against a tensor of ``shape``."""
    s = np.asarray(scale, dtype=np.float32)
    z = np.asarray(zero_point)
    if z.dtype.kind not in "iu":
        raise QuantParamError(f"zero point must be integer, got {z!r}")
    z = z.astype(np.int64)
    if axis is None:
        if s.size != 1 or z.size != 1:
            raise QuantParamError(
                f"per-tensor quantization takes one scale and one zero point, got {s.size} and {z.size}; "
                "pass axis= for per-channel parameters"
            )
        return s.reshape(()), z.reshape(())
    ndim = len(shape)
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of range for a tensor of rank {ndim}")
    ax = axis % ndim
    channels = shape[ax]
    s = s.reshape(-1)
    z = z.reshape(-1)
    if s.size == 1:
        s = np.broadcast_to(s, (channels,))
    if z.size == 1:  # LiteRT broadcasts zero_point[0] when only one is given
        z = np.broadcast_to(z, (s.size,))
    if s.size != channels or z.size != channels:
        raise QuantParamError(
            f"per-channel quantization along axis {axis} needs {channels} scales and zero points "
            f"(dimension {ax} of shape {shape}), got {s.size} scales and {z.size} zero points"
        )
    bshape = [1] * ndim
    bshape[ax] = channels
    return s.reshape(bshape), z.reshape(bshape)


def quantize(
    x: ArrayLike,
    scale: ArrayLike,
    zero_point: ArrayLike,
    dtype: DTypeLike,
    axis: int | None = None,
) -> NDArray[np.integer]:
    """LiteRT QUANTIZE float -> integer (``reference_ops::AffineQuantize`` / ``PerChannelQuantize``).

    Real meaning: ``q = clamp(round(x / scale) + zero_point)``, exactly as the C++ evaluates it::

        q = clamp(int32(roundf(f32(x) / f32(scale))) + zero_point, dtype range)

    * the division is float32 (not a multiplication by ``1/scale``); ``roundf`` rounds ties away from 0;
    * an out-of-range ``int32(...)`` conversion (``|x/scale| >= 2^31``, ±inf, NaN, zero scale) yields
      ``INT32_MIN`` as on x86 (``cvttss2si``), so the output is ``qmin`` for ``zero_point >= 0``;
    * ``+ zero_point`` is an int32 add that wraps on overflow, as on x86: with a negative zero point,
      ``INT32_MIN + zero_point`` wraps to a large positive value and the output is ``qmax`` (e.g. NaN
      with int8 ``zero_point = -128`` gives 127; checked against the oracle).

    ``x`` is converted to float32 (the QUANTIZE input tensor type). ``scale``/``zero_point``: scalars
    for per-tensor quantization; with ``axis`` given, 1-D arrays of length ``x.shape[axis]`` (a single
    zero point is broadcast, as LiteRT does). ``dtype``: the integer output type (int8, uint8, int16, ...,
    at most 32 bits). Returns an array of ``dtype`` and ``x``'s shape. Raises ``QuantParamError`` for
    mismatched parameter lengths.
    """
    lo, hi = dtype_range(dtype)
    if np.dtype(dtype).itemsize > 4:
        raise ValueError(f"quantize output dtype must be at most 32 bits, got {np.dtype(dtype)}")
    xf = np.asarray(x, dtype=np.float32)
    s, z = _channel_params(xf.shape, scale, zero_point, axis)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        r = round_half_away_from_zero(xf / s)  # float32 / float32 -> float32, then roundf
        in_range = (r >= np.float32(INT32_MIN)) & (r < np.float32(_TWO_POW_31))  # NaN -> False
    q32 = np.where(in_range, r, np.float32(0)).astype(np.int64)
    q32 = np.where(in_range, q32, INT32_MIN)
    unclamped = wrap_int32_i64(q32 + z)  # int32 add, wrapping
    return np.asarray(np.clip(unclamped, lo, hi).astype(np.dtype(dtype)))


def dequantize(
    q: ArrayLike,
    scale: ArrayLike,
    zero_point: ArrayLike,
    axis: int | None = None,
) -> NDArray[np.float32]:
    """LiteRT DEQUANTIZE integer -> float32 (``reference_ops::Dequantize`` / ``PerChannelDequantize``).

    Real meaning: ``scale * (q - zero_point)``, rounded once to float32:

    * per-tensor: ``f32(f64(scale) * f64(q - zp))`` (the scale is the tensor's float32 scale, widened);
    * per-channel (``axis`` given): ``f32(scale[c]) * f32(q - zp[c])`` in float32.

    For int8/uint8/int16 inputs both forms give the same value (the product is exact before the one
    rounding). ``q - zp`` is an int32 subtraction (wraps on overflow, as in C). ``q``: integer array.
    Returns a float32 array of ``q``'s shape. Raises ``QuantParamError`` for mismatched parameter lengths.
    """
    qa = np.asarray(q)
    if qa.dtype.kind not in "iu":
        raise TypeError(f"dequantize expects an integer array, got dtype {qa.dtype}")
    s, z = _channel_params(qa.shape, scale, zero_point, axis)
    diff = wrap_int32_i64(qa.astype(np.int64) - z)  # int32 subtraction
    if axis is None:
        return np.asarray((s.astype(np.float64) * diff.astype(np.float64)).astype(np.float32))
    return np.asarray(s * diff.astype(np.int32).astype(np.float32), dtype=np.float32)
