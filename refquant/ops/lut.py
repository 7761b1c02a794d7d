"""Float helpers of the lookup-table kernels: glibc float functions and LiteRT's table builders.

LiteRT's quantized LOGISTIC, TANH, EXP, LOG, GELU and RSQRT (int16) kernels tabulate a float
function once at Prepare and only look values up at Eval. To reproduce those tables bit for bit,
this module

* calls the C library's single-precision functions (``expf``, ``tanhf``, ``logf``, ``erfcf``,
  ``sqrtf``) through ctypes: NumPy's float32 transcendentals differ from glibc in the last place on
  a sizeable fraction of inputs, which flips table entries (docs/litert_semantics.md §6.12);
* evaluates every other expression in float32, one IEEE operation at a time, in the order the C++
  writes it (NumPy float32 scalars and arrays round each operation to float32; no FMA);
* converts float to int the way x86 does (``cvttss2si``): truncation toward zero, and
  ``INT32_MIN`` for NaN and anything outside the int32 range.

Everything here runs at prepare time on at most 65536 values.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..fixedpoint import INT32_MIN, round_half_away_from_zero, wrap_int16, wrap_int16_i64

__all__ = [
    "expf",
    "tanhf",
    "logf",
    "erfcf",
    "sqrtf",
    "libm_f32",
    "vectorize_f32",
    "checked_log2",
    "float_to_int32",
    "lut_populate_8bit",
    "lut_populate_int16",
    "lut_lookup_int16",
    "sigmoid_table_uint16",
]

F32 = np.float32
_LIBM: ctypes.CDLL | None = None


def _libm() -> ctypes.CDLL:
    global _LIBM
    if _LIBM is None:
        try:
            _LIBM = ctypes.CDLL("libm.so.6")
        except OSError:  # pragma: no cover - non-glibc platforms
            _LIBM = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
    return _LIBM


def _cfunc(name: str) -> Callable[[float], float]:
    fn = getattr(_libm(), name)
    fn.restype = ctypes.c_float
    fn.argtypes = [ctypes.c_float]
    return fn  # type: ignore[no-any-return]


_CACHE: dict[str, Callable[[float], float]] = {}


def _call(name: str, x: float) -> np.float32:
    fn = _CACHE.get(name)
    if fn is None:
        fn = _CACHE[name] = _cfunc(name)
    return F32(fn(float(F32(x))))


def expf(x: float) -> np.float32:
    """C ``expf`` (glibc) of a float32 value."""
    return _call("expf", x)


def tanhf(x: float) -> np.float32:
    """C ``tanhf`` (glibc) of a float32 value."""
    return _call("tanhf", x)


def logf(x: float) -> np.float32:
    """C ``logf`` (glibc) of a float32 value."""
    return _call("logf", x)


def erfcf(x: float) -> np.float32:
    """C ``erfcf`` (glibc) of a float32 value."""
    return _call("erfcf", x)


def sqrtf(x: float) -> np.float32:
    """C ``sqrtf`` of a float32 value (correctly rounded, equal to NumPy's float32 sqrt)."""
    return _call("sqrtf", x)


_CACHE2: dict[str, Callable[[float, float], float]] = {}


def libm_f32(name: str, *args: ArrayLike) -> NDArray[np.float32]:
    """The C library's single-precision ``name`` (``"sinf"``, ``"cosf"``: one argument; ``"powf"``: two)
    applied to every element of float32 arrays (broadcast against each other), one C call per element.

    Used where LiteRT's float kernels call ``std::sin``/``std::cos``/``std::pow`` on floats at run time:
    glibc's results differ from a float64 evaluation rounded to float32 in the last place on about 1%
    of inputs, so only the same functions reproduce LiteRT bit for bit. About 0.3 us per element.
    """
    arrays = np.broadcast_arrays(*[np.asarray(a, dtype=F32) for a in args])
    shape = arrays[0].shape if arrays else ()
    with np.errstate(all="ignore"):
        return _libm_apply(name, arrays, shape)


def _libm_apply(name: str, arrays: list[NDArray[np.float32]], shape: tuple[int, ...]) -> NDArray[np.float32]:
    if len(arrays) == 1:
        fn1 = _CACHE.get(name)
        if fn1 is None:
            fn1 = _CACHE[name] = _cfunc(name)
        out = np.frompyfunc(fn1, 1, 1)(arrays[0].astype(np.float64).ravel())
    elif len(arrays) == 2:
        fn2 = _CACHE2.get(name)
        if fn2 is None:
            f = getattr(_libm(), name)
            f.restype = ctypes.c_float
            f.argtypes = [ctypes.c_float, ctypes.c_float]
            fn2 = _CACHE2[name] = f
        out = np.frompyfunc(fn2, 2, 1)(arrays[0].astype(np.float64).ravel(), arrays[1].astype(np.float64).ravel())
    else:
        raise ValueError(f"libm_f32 takes one or two arrays, got {len(arrays)}")
    return np.asarray(out, dtype=np.float64).astype(F32).reshape(shape)


def vectorize_f32(fn: Callable[[np.float32], np.float32]) -> Callable[[NDArray[np.float32]], NDArray[np.float32]]:
    """Apply a scalar float32 function to every element of a (small, prepare-time) float32 array."""

    def apply(x: NDArray[np.float32]) -> NDArray[np.float32]:
        flat = np.asarray(x, dtype=F32).ravel()
        out = np.array([fn(F32(v)) for v in flat], dtype=F32)
        return out.reshape(np.shape(x))

    return apply


def checked_log2(x: float) -> tuple[bool, int]:
    """LiteRT ``CheckedLog2`` (quantization_util.cc): is ``x`` a power of two, and which one.

    Computed in float32 as LiteRT does: ``l = logf(x) * (1.0f / logf(2.0f))``; ``r = roundf(l)``;
    returns ``(|l - r| < 1e-3, int(r))``. The test is approximate: a scale within about 0.07% of a
    power of two counts as one.
    """
    xl = F32(logf(x) * F32(F32(1.0) / logf(2.0)))
    r = F32(round_half_away_from_zero(xl))
    frac = F32(xl - r)
    ok = bool(np.abs(frac) < F32(1e-3))
    return ok, int(float_to_int32(np.asarray(r)))


def float_to_int32(x: ArrayLike) -> NDArray[np.int64]:
    """C ``static_cast<int32_t>(float)`` on x86: truncate toward 0; NaN or out of int32 range -> ``INT32_MIN``.

    Returns int64 (holding int32 values) of ``x``'s shape.
    """
    a = np.asarray(x, dtype=np.float64)  # float32 -> float64 is exact
    with np.errstate(invalid="ignore"):
        ok = (a > -(2.0**31) - 1.0) & (a < 2.0**31)  # NaN compares False
        t = np.trunc(np.where(ok, a, 0.0)).astype(np.int64)
    return np.where(ok, t, INT32_MIN)


def lut_populate_8bit(
    input_scale: float,
    input_zero_point: int,
    output_scale: float,
    output_zero_point: int,
    transform: Callable[[NDArray[np.float32]], NDArray[np.float32]],
    dtype: str,
) -> NDArray[np.integer]:
    """LiteRT ``LUTPopulateInt8`` (common.h) for int8 or uint8 tensors.

    For every quantized input ``v`` (int8: -128..127, uint8: 0..255), in float32::

        x = input_scale * float(v - input_zero_point)
        y = transform(x)
        lut[v] = clamp(roundf(y * (1 / output_scale)) + float(output_zero_point), qmin, qmax)

    The clamp happens in float (the wheel's compiled code saturates instead of producing x86's
    INT32_MIN for out-of-range values: verified with EXP, LOG, TANH and GELU tables). NaN entries
    (only possible when ``1 / output_scale`` overflows) become 0; callers reject such scales.

    Note the multiplication by the reciprocal of the output scale (not a division) and the float
    addition of the zero point. ``transform`` maps a float32 array to a float32 array. Returns the
    256 entries in input order (index ``v - qmin``), of ``dtype``.
    """
    qmin, qmax = (-128, 127) if dtype == "int8" else (0, 255)
    v = np.arange(qmin, qmax + 1, dtype=np.int64)
    inverse_scale = F32(F32(1.0) / F32(output_scale))
    with np.errstate(all="ignore"):
        x = F32(input_scale) * (v - input_zero_point).astype(F32)
        y = np.asarray(transform(x.astype(F32)), dtype=F32)
        rescaled = round_half_away_from_zero((y * inverse_scale).astype(F32))
        shifted = (rescaled + F32(output_zero_point)).astype(F32)
    # The compiled kernel saturates here (observed: +inf and +1e10 give qmax, -1e10 gives qmin): the
    # conversion's result is clamped to [qmin, qmax] anyway, and the compiler clamps in float first.
    return np.clip(np.nan_to_num(shifted, nan=0.0, posinf=qmax, neginf=qmin), qmin, qmax).astype(dtype)


def lut_populate_int16(
    input_scale: float,
    input_zero_point: int,
    output_scale: float,
    output_zero_point: int,
    transform: Callable[[NDArray[np.float32]], NDArray[np.float32]],
) -> NDArray[np.int16]:
    """LiteRT ``LUTPopulateInt16<float>`` (common.h): the 513-entry interpolated int16 table.

    The input range ``[input_scale*(-32768 - zp), input_scale*(32767 - zp)]`` is cut into 512 steps;
    entry ``i`` is the output (scaled by ``65536 / (output_max - output_min)``) at the step's start,
    lowered by half the error that linear interpolation makes at the step's midpoint, both rounded
    with ``roundf``; entry 512 is the value at the input maximum. Everything is float32 in the C++
    evaluation order. NaN entries become 0 (x86 converts NaN to INT32_MIN, whose low 16 bits are 0).
    """
    s_in = F32(input_scale)
    s_out = F32(output_scale)
    input_min = F32(s_in * F32(-32768 - input_zero_point))
    input_max = F32(s_in * F32(32767 - input_zero_point))
    output_min = F32(s_out * F32(-32768 - output_zero_point))
    output_max = F32(s_out * F32(32767 - output_zero_point))
    nb_steps = 512
    with np.errstate(all="ignore"):
        step = F32(F32(input_max - input_min) / F32(nb_steps))
        half_step = F32(step / F32(2))
        scaling_inv = F32(F32(65536) / F32(output_max - output_min))
        i = np.arange(nb_steps, dtype=np.int64)
        start = (input_min + (i.astype(F32) * step).astype(F32)).astype(F32)
        mid = (start + half_step).astype(F32)
        nxt = (input_min + ((i + 1).astype(F32) * step).astype(F32)).astype(F32)
        val = np.asarray(transform(start), dtype=F32)
        val_mid = np.asarray(transform(mid), dtype=F32)
        val_next = np.asarray(transform(nxt), dtype=F32)
        sample = round_half_away_from_zero((val * scaling_inv).astype(F32))
        interp = round_half_away_from_zero(
            (((val_next * scaling_inv).astype(F32) + sample).astype(F32) / F32(2)).astype(F32)
        )
        mid_val = round_half_away_from_zero((val_mid * scaling_inv).astype(F32))
        err = (interp - mid_val).astype(F32)
        bias = round_half_away_from_zero((err / F32(2)).astype(F32))
        entries = (sample - bias).astype(F32)
        last = round_half_away_from_zero(
            (np.asarray(transform(np.array([input_max], dtype=F32)), dtype=F32) * scaling_inv).astype(F32)
        )
        table = np.concatenate([entries, last]).astype(F32)
        # std::min(std::max(v, -32768.f), 32767.f): NaN passes through both, then converts to int16 0.
        clamped = np.where(np.isnan(table), table, np.minimum(np.maximum(table, F32(-32768)), F32(32767)))
    as_int = float_to_int32(clamped)
    return wrap_int16(as_int)


def lut_lookup_int16(x: NDArray[np.int16], lut: NDArray[np.int16]) -> NDArray[np.int16]:
    """LiteRT ``LUTLookup(int16_t, const int16_t*)``: 9-bit index, 7-bit linear interpolation.

    ``index = 256 + (x >> 7)``, ``offset = x & 127``, ``slope = int16(lut[index+1] - lut[index])``,
    ``out = int16(lut[index] + ((slope * offset + 64) >> 7))`` (int16 conversions wrap).
    """
    v = np.asarray(x).astype(np.int64)
    index = 256 + (v >> 7)
    offset = v & 0x7F
    table = lut.astype(np.int64)
    base = table[index]
    slope = wrap_int16_i64(table[index + 1] - base)
    delta = (slope * offset + 64) >> 7
    return wrap_int16(base + delta)


_SIGMOID_TABLE: NDArray[np.uint16] | None = None


def sigmoid_table_uint16() -> NDArray[np.uint16]:
    """LiteRT's ``sigmoid_table_uint16`` (common.h): sigmoid(i/24) in unsigned Q0.16, i = 0..255.

    Computed from its definition rather than copied: with ``f(t) = 65536 / (1 + exp(-t/24))``, entry
    ``i < 255`` is ``round(f(i) - (midpoint interpolation error)/2)`` where the error is
    ``(f(i) + f(i+1))/2 - f(i + 1/2)`` (a minimax correction for the linear interpolation the kernels
    do between entries); the last entry is the saturated value 65535. Every value is at least 0.004
    away from a rounding tie, so float64 evaluation is exact. ``tests/ops/test_activations.py``
    checks the table against a digest of upstream's.
    """
    global _SIGMOID_TABLE
    if _SIGMOID_TABLE is None:
        i = np.arange(256, dtype=np.float64)

        def f(t: NDArray[np.float64]) -> NDArray[np.float64]:
            return 65536.0 / (1.0 + np.exp(-t / 24.0))

        corrected = f(i) - ((f(i) + f(i + 1.0)) / 2.0 - f(i + 0.5)) / 2.0
        table = np.floor(corrected + 0.5)  # no ties (see docstring), all positive
        table[255] = 65535.0
        _SIGMOID_TABLE = table.astype(np.uint16)
        _SIGMOID_TABLE.flags.writeable = False
    return _SIGMOID_TABLE
