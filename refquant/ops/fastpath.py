"""Exact float64 requantization folded into the accumulation: the fast path of the conv family.

The readable kernels (``_raw_acc`` + ``_requantize`` in :mod:`refquant.ops.conv`, the latter on
:class:`~refquant.ops.conv.common.QuantConvBase`) compute the integer accumulator and then the fixed-point
requantization literally. This module holds what lets the fast
path produce the *same integers* with far fewer NumPy passes: everything per channel is computed once in
prepare (:func:`prepare_folded_requant`), and at run time each output needs one float64 sum (BLAS or a
sum of shifted slices) and a short tail (:func:`requant_tail`).

**Closed form of the requantization** (KERNEL_NOTES 1.3, 1.4 and 7). With ``acc`` the int accumulator
including the bias, every variant LiteRT uses is ``floor(v + c)`` of a scaled value ``v``:

* double rounding, ``r = max(-shift, 0)``, ``l = max(shift, 0)``, ``v = acc * M * 2^(l - 31 - r)``::

      MBQM(acc) = floor(v + 1/2 + d)        if y >= 0       d = 2^(-1-r) (0 when r == 0)
                  floor(v + 1/2 - d)        if y <  0       y = SRDHM(acc << l, M); for r >= 1, y < 0 <=> v < -d

  Derivation: SRDHM(x, M) = floor((p + 2^30) / 2^31) with p = x*M; RDBPOT(y, r) = floor((y + 2^(r-1) -
  [y < 0]) / 2^r); floor((floor(a/b) + c)/e) = floor((a + c*b)/(b*e)). The one input where this is wrong
  is SRDHM's saturation M = x = INT32_MIN, excluded in prepare (M == INT32_MIN never takes this path).
* single rounding (TFLITE_SINGLE_ROUNDING), ``ts = 31 - shift``: ``(acc*M + 2^(ts-1)) >> ts = floor(acc*M*2^-ts + 1/2)``.
* MBQM64 (int64 accumulators), ``Mr`` the 16-bit multiplier, ``ts = 15 - shift``: ``floor(acc*Mr*2^-ts + 1/2)``.

So ``out = clamp(floor(t) - zp_shift, act_min, act_max)`` with ``t = acc*scale[c] + const[c]`` where
``scale[c]`` is an integer times a power of two and ``const[c]`` holds the rounding terms, the output zero
point and ``zp_shift`` (128 for int8, 32768 for int16, 0 for uint8), which makes every clamped value
non-negative so that the float -> unsigned cast (truncation) *is* the floor; the shift is undone by an XOR
of the sign bit (``u ^ 0x80 == u - 128`` modulo 256, reinterpreted as int8). For y < 0 the double-rounding
form subtracts ``2 d = 2^-r`` where ``t < 1/2 + zp_out + zp_shift``; when ``act_min >= zp_out`` the two forms
can only differ on values the clamp maps to ``act_min`` anyway (both are ``<= zp_out``), so the
correction is skipped (every fused-ReLU layer).

**Why float64 is exact here.** Every term — ``x * (w * scale[c])``, the folded constant and each partial
sum in any order a BLAS kernel picks, FMA included — is an integer multiple of ``u = 2^-e`` (``e = 31 + r - l``,
``ts`` resp.). A float64 holds every multiple of ``u`` up to ``2^53 * u`` exactly, and every partial sum is
bounded by ``sum_k |x_k w_k| * |M| + const``; with ``|x| <= x_max`` the static bound per channel is
``B[c] = x_max * sum_k |w_kc| + |b'_c|``. :func:`prepare_folded_requant` computes ``acc_limit[c]``, the
largest ``|acc|`` for which every count stays within 2^53 (and for which the C int32 accumulator, the
left shift and the int32 result cannot wrap); the *folded* mode (scale folded into float64 weights,
constants into a bias row) is used when ``B[c] <= acc_limit[c]`` for every channel. Otherwise the
*checked* mode computes the exact integer accumulator in float64 first (exact below 2^53) and applies
the closed form only when the run's ``max |acc|`` is within the limit, falling back to the literal int64
requantization for that block.

The input zero point is folded into the bias: ``sum_k w_k (x_k - zp) + b = sum_k w_k x_k + (b - zp sum_k w_k)``
with padded taps holding the raw value ``zp`` (their terms cancel exactly, as skipped taps do).

**float32 for the sums where it is exact** (``FoldedRequant.sums_fit_f32``): the bias-free sums
``S = sum_k x_k w_k`` of raw integers have every partial sum (any order, FMA included) bounded by
``x_max * sum_k |w_k| <= 2^24``, below which float32 holds every integer; int8 MobileNets satisfy it in every
layer. A float32 GEMM (or float32 depthwise taps) then computes S exactly at twice the float64 speed, and
``t = S*scale + const`` follows in float64, exact by the bound above since ``|S| <= B[c]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "FoldedRequant",
    "prepare_folded_requant",
    "requant_tail",
    "rows_per_block",
    "exact_matmul_blocked",
    "BLOCK_ELEMENTS",
]

#: Target size of one output block of the blocked kernels, in elements (512 KiB as float64): big enough for
#: BLAS and few NumPy calls, small enough that the block and its temporaries stay in the L2 cache.
BLOCK_ELEMENTS = 1 << 16
_TWO53 = float(2**53)
#: float32 holds every integer up to 2^24 exactly.
_F32_EXACT = 2**24
_INT32_MIN = -(2**31)


def rows_per_block(row_elements: int, target: int | None = None) -> int:
    """How many rows of ``row_elements`` outputs make one block of about ``target`` elements (at least 1)."""
    target = BLOCK_ELEMENTS if target is None else target
    return max(1, target // max(1, row_elements))


@dataclass(frozen=True)
class FoldedRequant:
    """Per-channel constants of the float64 requantization ``floor(acc*scale + const)`` (see module doc).

    Computed once in prepare from the multipliers, shifts, bias, input/output zero points and the clamp.
    """

    #: "folded" (scale folded into float64 weights; the static bound proves exactness) or "checked"
    #: (exact integer accumulator first; closed form when the run's max |acc| <= ``checked_limit``).
    mode: str
    #: float64 (O,): M * 2^(l-31-r) (double), M * 2^-ts (single), Mr * 2^-ts (MBQM64). Exact.
    scale: np.ndarray
    #: float64 (O,): b'*scale + rounding terms + zp_out + zp_shift, with b' = bias - zp_in * sum_k w (+ filter
    #: offset): the bias row of the folded mode.
    const: np.ndarray
    #: float64 (O,): rounding terms + zp_out + zp_shift, added to acc*scale by the checked mode.
    rounding_const: np.ndarray
    #: int64 (O,): b', the bias with the input zero point folded in (the bias row of the checked mode).
    folded_bias: np.ndarray
    #: float64 (O,) or None: 2^-r subtracted where ``t < neg_threshold`` (double rounding, some r >= 1,
    #: and act_min < zp_out); None when the correction cannot change a clamped output.
    neg_fix: np.ndarray | None
    #: t below this <=> SRDHM's result y < 0 (1/2 + zp_out + zp_shift).
    neg_threshold: float
    #: Largest |acc| (over all channels) for which the checked mode's closed form is exact.
    checked_limit: float
    #: Clamp bounds in shifted units: act_min + zp_shift, act_max + zp_shift.
    lo: float
    hi: float
    #: 128 (int8), 32768 (int16) or 0 (uint8): added in ``const``, undone by XOR after the unsigned cast.
    zp_shift: int
    #: Output dtype name.
    out_dtype: str
    #: Whether the bias-free sums ``sum_k x_k (w_k + filter_offset)`` are exact in float32 (every partial sum
    #: is at most ``x_max * sum_k |w_k + filter_offset| <= 2^24``): then a float32 GEMM (twice as fast)
    #: computes them and ``t = S*scale + const`` follows in float64.
    sums_fit_f32: bool = False


def _mbqm64_reduced(m: np.ndarray) -> np.ndarray:
    """MBQM64's 16-bit multiplier: (M + 2^15) >> 16, or 0x7FFF when M >= 0x7FFF0000 (common.cc)."""
    m = m.astype(np.int64)
    return np.where(m < 0x7FFF0000, (m + (1 << 15)) >> 16, 0x7FFF)


def prepare_folded_requant(
    *,
    multiplier: np.ndarray,
    shift: np.ndarray,
    kind: str,
    weights: np.ndarray | None,
    bias: np.ndarray | None,
    input_offset: int,
    filter_offset: int,
    x_max_abs: int,
    output_offset: int,
    act_min: int,
    act_max: int,
    out_dtype: str,
) -> FoldedRequant | None:
    """Constants of the fast path, or None when it does not apply (the literal kernel then runs).

    ``kind``: "double", "single" (int32 accumulator, MBQM rounding variant) or "mbqm64". ``weights``:
    the constant filter as an integer array (O, K) (raw values; ``filter_offset`` is added), or None when
    the filter is not constant. ``bias``: constant bias (O,) or None (no bias). ``x_max_abs``: the largest
    ``|x|`` of the input type (padded taps hold ``-input_offset``, inside the type range).
    """
    if weights is None:
        return None
    o = weights.shape[0]
    m = np.asarray(multiplier, np.int64).reshape(-1)
    sh = np.asarray(shift, np.int64).reshape(-1)
    if m.size != o or sh.size != o:
        return None
    # Per-channel sums of w + filter_offset and of |w + filter_offset|, in row chunks of int32 (small
    # temporaries: prepare must not leave a big heap behind, see the peak-RSS target).
    wsum = np.empty(o, np.int64)
    wabs = np.empty(o, np.int64)
    rows = max(1, (1 << 16) // max(1, weights.shape[1]))
    for r0 in range(0, o, rows):
        wc = np.add(weights[r0 : r0 + rows], filter_offset, dtype=np.int32)
        wsum[r0 : r0 + rows] = wc.sum(axis=1, dtype=np.int64)
        np.abs(wc, out=wc)
        wabs[r0 : r0 + rows] = wc.sum(axis=1, dtype=np.int64)
    b = np.zeros(o, np.int64) if bias is None else np.asarray(bias).reshape(-1).astype(np.int64)
    if b.size != o:
        return None
    folded_bias = b + input_offset * wsum
    sums = float(x_max_abs) * wabs.astype(np.float64)
    static = sums + np.abs(folded_bias).astype(np.float64)

    zp_shift = {"int8": 128, "int16": 32768, "uint8": 0}.get(out_dtype)
    if zp_shift is None:
        return None
    zp_total = output_offset + zp_shift
    if kind == "double":
        if np.any(m == _INT32_MIN) or np.any(sh > 30):
            return None
        left = np.maximum(sh, 0)
        right = np.maximum(-sh, 0)
        e = 31 + right - left  # unit 2^-e; e >= 1 since left <= 30
        mq = m
        half_d = np.where(right > 0, np.ldexp(1.0, (-1 - right).astype(np.int32)), 0.0)
        rounding = 0.5 + half_d
        neg_fix = np.where(right > 0, np.ldexp(1.0, (-right).astype(np.int32)), 0.0)
        need_fix = bool(np.any(right > 0)) and act_min < output_offset
    elif kind in ("single", "mbqm64"):
        if kind == "single":
            if np.any(sh < -31) or np.any(sh > 30):
                return None
            mq = m
            e = 31 - sh
        else:
            mq = _mbqm64_reduced(m)
            e = 15 - sh
            if np.any(e < 1):
                return None
        left = np.zeros(o, np.int64)
        rounding = np.full(o, 0.5)
        neg_fix = np.zeros(o)
        need_fix = False
    else:
        raise ValueError(f"unknown requantization kind {kind!r}")
    if np.any(e > 62):
        return None
    unit = np.ldexp(1.0, e.astype(np.int32))  # 2^e: counts per unit value
    scale = np.ldexp(mq.astype(np.float64), (-e).astype(np.int32))  # exact: |mq| < 2^31
    # Counts (multiples of 2^-e) of everything added to acc*scale: the rounding terms, the output zero
    # point and shift, and the negative correction's margin.
    const_counts = rounding * unit + abs(zp_total) * unit + neg_fix * unit
    mabs = np.abs(mq).astype(np.float64)  # counts of acc * scale per unit of |acc|
    with np.errstate(divide="ignore", invalid="ignore"):
        limit = np.where(mabs > 0, np.floor((_TWO53 - const_counts) / np.where(mabs > 0, mabs, 1.0)), np.inf)
        # The C accumulator is int32 for "double"/"single": no wrap while |acc| < 2^31, and no wrap of the
        # left shift while |acc| * 2^l < 2^31; the scaled result must stay below 2^30 so that neither the
        # int32 result nor "+ zp_out" wraps.
        if kind != "mbqm64":
            limit = np.minimum(limit, np.floor((2.0**31 - 1) / np.ldexp(1.0, left.astype(np.int32))))
        result_cap = np.where(mabs > 0, np.floor(2.0**30 * unit / np.where(mabs > 0, mabs, 1.0)), np.inf)
    limit = np.minimum(limit, result_cap)
    if np.any(const_counts >= _TWO53) or np.any(limit < 1):
        return None
    const = folded_bias.astype(np.float64) * scale + rounding + zp_total
    mode = "folded" if np.all(static <= limit) else "checked"
    if mode == "checked" and not np.all(static < _TWO53 / 2):
        return None  # the unscaled float64 sum itself would not be provably exact
    return FoldedRequant(
        mode=mode,
        scale=scale,
        const=const,
        rounding_const=rounding + zp_total,
        folded_bias=folded_bias,
        neg_fix=neg_fix if need_fix else None,
        neg_threshold=0.5 + zp_total,
        checked_limit=float(limit.min()),
        lo=float(act_min + zp_shift),
        hi=float(act_max + zp_shift),
        zp_shift=zp_shift,
        out_dtype=out_dtype,
        sums_fit_f32=bool(np.all(sums <= _F32_EXACT)),
    )


def requant_tail(t: np.ndarray, out: np.ndarray, fr: FoldedRequant, cs: slice = slice(None)) -> None:
    """``out[...] = clamp(floor(t) - zp_shift, act_min, act_max)`` for a block ``t`` of shape (..., channels
    ``cs``) holding ``acc*scale + const`` exactly (float64; used as scratch). Three passes: (correction),
    clip, cast to the unsigned type (truncation == floor on non-negative values), XOR of the sign bit.
    """
    if fr.neg_fix is not None:
        corr = np.less(t, fr.neg_threshold)
        corr = np.multiply(corr, fr.neg_fix[cs])
        np.subtract(t, corr, out=t)
    np.clip(t, fr.lo, fr.hi, out=t)
    if fr.zp_shift == 0:
        np.copyto(out, t, casting="unsafe")
        return
    u = out.view(np.uint8 if fr.zp_shift == 128 else np.uint16)
    np.copyto(u, t, casting="unsafe")
    np.bitwise_xor(u, u.dtype.type(fr.zp_shift), out=u)


#: Below this many terms per float32 chunk, float64 (exact far longer) is used instead.
_MIN_F32_CHUNK = 256
#: Elements of the converted right-hand operand per block (bounds the conversion temporaries).
_CONVERT_BLOCK = 1 << 18


def exact_matmul_blocked(
    a: np.ndarray, b: np.ndarray, a_offset: int, b_offset: int, a_bound: int, b_bound: int
) -> np.ndarray | None:
    """Exact ``(a + a_offset) @ (b + b_offset).T`` for integer ``a`` (M, K) and ``b`` (N, K), as float64.

    ``a_bound`` / ``b_bound`` bound ``|a + a_offset|`` / ``|b + b_offset|``. Every product is at most
    ``p = a_bound * b_bound``, so every partial sum of ``c`` terms (in any order BLAS picks) is at most
    ``c * p``: float32 is exact while ``c * p <= 2^24``, so K is split into chunks of ``2^24 // p`` terms
    (int8 x int8 with offsets: p < 2^16, chunks of 256 or more) whose float32 results are added in float64;
    when the chunks would be shorter than 256 terms, float64 (exact while ``K * p < 2^53``) is used. ``b`` is
    converted in row blocks so that the temporaries stay small. Returns None when neither bound holds
    (the caller then uses int64 arithmetic).
    """
    m, k = a.shape
    n = b.shape[0]
    p = max(1, int(a_bound) * int(b_bound))
    if k == 0:
        return np.zeros((m, n))
    chunk = _F32_EXACT // p
    if chunk >= min(k, _MIN_F32_CHUNK):
        dt = np.float32
        chunk = min(chunk, k)
    elif k * p < 2**53:
        dt = np.float64
        chunk = k
    else:
        return None
    af = np.add(a, a_offset, dtype=dt) if a_offset else a.astype(dt)
    out = np.zeros((m, n))
    rows = max(1, _CONVERT_BLOCK // k)
    for n0 in range(0, n, rows):
        n1 = min(n, n0 + rows)
        bf = np.add(b[n0:n1], b_offset, dtype=dt) if b_offset else b[n0:n1].astype(dt)
        for k0 in range(0, k, chunk):
            k1 = min(k, k0 + chunk)
            part = af[:, k0:k1] @ bf[:, k0:k1].T
            if dt is np.float32 and chunk < k:
                out[:, n0:n1] += part
            else:
                out[:, n0:n1] = part
    return out


def mbqm_scalar_inplace(p: np.ndarray, multiplier: int, shift: int, rounding: str) -> np.ndarray:
    """``MultiplyByQuantizedMultiplier[SmallerThanOneExp](x, M, shift)`` for one per-tensor (M, shift) with
    ``0 <= M < 2^31`` and ``-31 <= shift <= 0``, in place on an int64 array ``p`` holding int32 values ``x``.

    KERNEL_NOTES 7: double rounding ``(x*M + 2^30 + 2^(30+r) - [x*M < 0]*2^31) >> (31 + r)`` with
    ``r = -shift`` (just ``(x*M + 2^30) >> 31`` for r = 0); single rounding ``(x*M + 2^(ts-1)) >> ts`` with
    ``ts = 31 - shift``. ``|x*M| < 2^62`` and the added terms are below 2^62, so nothing overflows; the
    result fits int32. Four or five passes over ``p``, no temporaries but the sign mask.
    """
    if not (0 <= multiplier < 2**31 and -31 <= shift <= 0):
        raise ValueError(f"mbqm_scalar_inplace needs 0 <= M < 2^31 and -31 <= shift <= 0, got ({multiplier}, {shift})")
    p *= multiplier
    if rounding == "single":
        ts = 31 - shift
        p += 1 << (ts - 1)
        p >>= ts
        return p
    r = -shift
    if r == 0:
        p += 1 << 30
        p >>= 31
        return p
    fix = p >> 63  # -1 where x*M < 0 (which may replace x*M < -2^30, see fixedpoint)
    fix &= 1 << 31
    p += (1 << 30) + (1 << (30 + r))
    p -= fix
    p >>= 31 + r
    return p
