"""Matrix products shared by FULLY_CONNECTED, BATCH_MATMUL and the conv family, and the hybrid row quantizers.

* exact integer products (:func:`exact_matmul`, with :func:`float64_matmul_is_exact` deciding whether float64
  BLAS is exact);
* float32 products with the sums of ``refquant.graph.FLOAT_ACCUMULATIONS`` (:func:`float_matmul`,
  :func:`sequential_matmul_f32` for LiteRT's float32 loop bit for bit) and the trace wording of each
  (:data:`FLOAT_SUM_STEPS`);
* the per-row input quantizers of the hybrid kernels (:func:`symmetric_quantize_rows`,
  :func:`asymmetric_quantize_rows`), as the ai-edge-litert x86 wheel's tensor_utils run them.
"""

from __future__ import annotations

import numpy as np

from ..fixedpoint import round_half_away_from_zero

__all__ = [
    "FAST_PATHS",
    "FLOAT_SUM_STEPS",
    "float64_matmul_is_exact",
    "exact_matmul",
    "sequential_matmul_f32",
    "float_matmul",
    "symmetric_quantize_rows",
    "asymmetric_quantize_rows",
]

#: Use the blocked sequential float32 product by default (tests compare it with the loop form).
FAST_PATHS = True
#: Largest integer every partial sum of a float64 dot product must stay below to be exact.
_F64_EXACT = 2**53
#: Products per block of the blocked sequential float32 matmul (256 KiB, stays in the L2 cache).
_SEQ_BLOCK = 1 << 16


def float64_matmul_is_exact(max_abs_a: int, max_abs_b: int, depth: int) -> bool:
    """True when a float64 (BLAS) dot product of ``depth`` integer terms is exact.

    Each product is at most ``max_abs_a * max_abs_b`` in magnitude, so every partial sum, in any order
    BLAS chooses, is bounded by ``depth * max_abs_a * max_abs_b``; below 2^53 every float64 step is exact.
    """
    return depth * max_abs_a * max_abs_b < _F64_EXACT


def exact_matmul(a: np.ndarray, b: np.ndarray, use_float64: bool) -> np.ndarray:
    """Exact integer ``a @ b`` (NumPy matmul broadcasting) as an int64 array.

    ``a`` and ``b`` hold integers (any integer or float64 dtype). With ``use_float64`` the product goes
    through float64 BLAS; the caller guarantees exactness with :func:`float64_matmul_is_exact`. Otherwise
    int64 matmul is used (exact, wrapping modulo 2^64 like a C int64 accumulator).
    """
    if use_float64:
        return np.matmul(a.astype(np.float64, copy=False), b.astype(np.float64, copy=False)).astype(np.int64)
    return np.matmul(a.astype(np.int64, copy=False), b.astype(np.int64, copy=False))


def sequential_matmul_f32(a: np.ndarray, b: np.ndarray, blocked: bool | None = None) -> np.ndarray:
    """float32 ``a @ b`` summed term by term in ``k`` order, as the reference float kernels do.

    ``total = 0.0f; for k: total += a[..., i, k] * b[..., k, j]`` with the product rounded to float32
    before the add (no FMA, no pairwise summation). The readable form (``blocked=False``) loops over the
    depth ``k`` with whole (..., M, N) arrays. The blocked form (default: :data:`FAST_PATHS`) makes, per
    cache-sized block, all products ``P[i, k, j]`` (C order) in one multiply and sums them with
    ``np.add.reduce(P, axis=1, initial=0)``. NumPy sums pairwise only along the innermost (contiguous) loop
    of a reduction; here the innermost axis is ``j`` (at least 2 long, else the loop form is used), so each
    step adds ``P[:, k, :]`` to the running (i, j) sums for k = 0, 1, ... in order: the same float32 adds
    as the loop, starting from +0.0 as C does. (``np.add.accumulate`` is sequential by definition but
    walks each (i, j) separately, several times slower.) The tests check both forms bit for bit on random
    data with signed zeros, inf and NaN, for every block shape.
    """
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1])
    if blocked is None:
        blocked = FAST_PATHS
    k_depth = a.shape[-1]
    if not blocked or k_depth == 0 or 0 in shape or shape[-1] < 2:
        total = np.zeros(shape, dtype=np.float32)
        prod = np.empty(shape, dtype=np.float32)
        for k in range(k_depth):
            np.multiply(a[..., :, k : k + 1], b[..., k : k + 1, :], out=prod)
            np.add(total, prod, out=total)
        return total
    out = np.empty(shape, dtype=np.float32)
    ab = np.broadcast_to(a, shape[:-2] + a.shape[-2:])
    bb = np.broadcast_to(b, shape[:-2] + b.shape[-2:])
    m, n = shape[-2], shape[-1]
    nb = max(2, min(n, _SEQ_BLOCK // k_depth))  # >= 2: the innermost loop must run over j, not k
    mb = max(1, min(m, _SEQ_BLOCK // (k_depth * nb)))
    pbuf = np.empty((mb, k_depth, nb), np.float32)
    zero = np.float32(0)
    for idx in np.ndindex(*shape[:-2]):
        a2, o2 = ab[idx], out[idx]
        b2 = np.ascontiguousarray(bb[idx])  # (K, N): contiguous rows for the products
        for n0 in range(0, n, nb):
            n1 = min(n, n0 + nb)
            for m0 in range(0, m, mb):
                m1 = min(m, m0 + mb)
                if n1 - n0 < 2:  # a last block of one column: back off by one so j stays innermost
                    n0 = n1 - 2
                p = pbuf[: m1 - m0, :, : n1 - n0]
                np.multiply(a2[m0:m1, :, None], b2[None, :, n0:n1], out=p)
                np.add.reduce(p, axis=1, out=o2[m0:m1, n0:n1], initial=zero)
    return out


#: Trace wording of a float sum per accumulation mode.
FLOAT_SUM_STEPS = {
    "sequential": "float32 running sum of the float32 products, in depth order",
    "float64": "sum of the (exact) products in float64, rounded once to float32",
}
#: Float64 elements of ``b`` converted at a time by :func:`float_matmul` (1 MiB).
_F64_CHUNK = 1 << 17


def float_matmul(a: np.ndarray, b: np.ndarray, accumulation: str = "float64") -> np.ndarray:
    """float32 ``a @ b`` (batched like ``np.matmul``) with the sums of ``refquant.graph.FLOAT_ACCUMULATIONS``.

    ``"sequential"``: :func:`sequential_matmul_f32`, LiteRT's float32 loop bit for bit. ``"float64"``:
    float64 BLAS on the float32 operands, each sum rounded once to float32. A product of two float32 is
    exact in float64 (24 + 24 significant bits), so this differs from the exact sum by float64 rounding
    (``K * 2^-53 * sum|a*b|`` at most) and the final rounding, while the float32 loop may differ from it by
    up to ``K * 2^-24 * sum|a*b|``: the two agree within LiteRT's own rounding error. A 2-D ``b`` of more
    than :data:`_F64_CHUNK` elements is converted in chunks of columns.
    """
    if accumulation == "sequential":
        return sequential_matmul_f32(a, b)
    a64 = np.asarray(a, dtype=np.float32).astype(np.float64)
    b = np.asarray(b, dtype=np.float32)
    if b.ndim != 2 or b.size <= _F64_CHUNK or a64.ndim != 2:
        return np.matmul(a64, b.astype(np.float64)).astype(np.float32)
    k, n = b.shape
    out = np.empty((a64.shape[0], n), np.float32)
    step = max(1, _F64_CHUNK // max(1, k))
    for j0 in range(0, n, step):
        j1 = min(n, j0 + step)
        out[:, j0:j1] = a64 @ b[:, j0:j1].astype(np.float64)
    return out


def _round_half_up_trunc(prod: np.ndarray) -> np.ndarray:
    """NEON ``RoundToNearest`` as NEON_2_SSE runs it on x86: ``trunc(f32(p + (p < 0 ? -0.5f : 0.5f)))``.

    Not C ``round``: the float32 add itself rounds, so e.g. 0.49999997 becomes 1.
    """
    half = np.where(prod < 0, np.float32(-0.5), np.float32(0.5))
    return np.trunc((prod + half).astype(np.float32))


def symmetric_quantize_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LiteRT ``tensor_utils::SymmetricQuantizeFloats`` per row, as the ai-edge-litert x86 wheel runs it.

    The wheel is built with SSE4.1, so its tensor_utils use ``NeonSymmetricQuantizeFloats`` through
    NEON_2_SSE: ``range = max(|min|, |max|)``, ``scale = f32(range / 127)``, ``inv = f32(127 / range)``;
    the first ``D & ~7`` columns round ``f32(x * inv)`` with :func:`_round_half_up_trunc`, the remaining
    columns with C ``roundf``; values are clamped to [-127, 127]. An all-zero row gives q = 0, scale 1.

    ``x``: float32 [B, D]. Returns (q int64 [B, D], scale float32 [B], offset int64 [B] (zeros)).
    """
    b, d = x.shape
    if d == 0:
        return np.zeros((b, 0), np.int64), np.ones(b, np.float32), np.zeros(b, np.int64)
    rng = np.maximum(np.abs(x.min(axis=1)), np.abs(x.max(axis=1))).astype(np.float32)
    zero = rng == 0
    safe = np.where(zero, np.float32(1), rng).astype(np.float32)
    scale = np.where(zero, np.float32(1), safe / np.float32(127)).astype(np.float32)
    inv = (np.float32(127) / safe).astype(np.float32)
    prod = (x * inv[:, None]).astype(np.float32)
    vec_cols = np.arange(d)[None, :] < (d & ~7)
    q = np.where(vec_cols, _round_half_up_trunc(prod), round_half_away_from_zero(prod))
    q = np.clip(np.nan_to_num(q), -127, 127).astype(np.int64)
    q[zero] = 0
    return q, scale, np.zeros(b, np.int64)


def asymmetric_quantize_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LiteRT ``tensor_utils::AsymmetricQuantizeFloats`` per row (``NeonAsymmetricQuantizeFloats`` on x86).

    ``rmin = min(0, min)``, ``rmax = max(0, max)``; ``scale = f64(f32(rmax - rmin)) / 255`` (double);
    the zero point is the double ``-128 - rmin/scale`` or ``127 - rmax/scale`` (whichever has the smaller
    error term), clamped or C-rounded to an int8; the stored scale is ``f32(scale)`` and
    ``inv = f32(1.0 / f64(f32 scale))``. Vector columns: ``_round_half_up_trunc(f32(x*inv)) + zp``; tail
    columns: ``int(f32(zp + roundf(f32(x*inv))))``; clamp to [-128, 127]. ``rmin == rmax`` gives zeros,
    scale 1 and zero point 0.

    ``x``: float32 [B, D]. Returns (q int64 [B, D], scale float32 [B], zero point int64 [B]).
    """
    b, d = x.shape
    if d == 0:
        return np.zeros((b, 0), np.int64), np.ones(b, np.float32), np.zeros(b, np.int64)
    rmin = np.minimum(np.float32(0), x.min(axis=1)).astype(np.float32)
    rmax = np.maximum(np.float32(0), x.max(axis=1)).astype(np.float32)
    flat = rmin == rmax
    sd = (rmax - rmin).astype(np.float32).astype(np.float64) / 255.0
    sd_safe = np.where(flat, 1.0, sd)
    lo_ratio = rmin.astype(np.float64) / sd_safe
    hi_ratio = rmax.astype(np.float64) / sd_safe
    zp_d = np.where(128.0 + np.abs(lo_ratio) < 127.0 + np.abs(hi_ratio), -128.0 - lo_ratio, 127.0 - hi_ratio)
    zp = np.where(zp_d <= -128.0, -128, np.where(zp_d >= 127.0, 127, round_half_away_from_zero(zp_d)))
    zp = np.where(flat, 0, zp).astype(np.int64)
    scale = np.where(flat, np.float32(1), sd.astype(np.float32)).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(scale == 0, 0.0, 1.0 / scale.astype(np.float64)).astype(np.float32)
    prod = (x * inv[:, None]).astype(np.float32)
    vec_cols = np.arange(d)[None, :] < (d & ~7)
    vec = _round_half_up_trunc(prod) + zp[:, None]
    tail = (zp[:, None].astype(np.float32) + round_half_away_from_zero(prod)).astype(np.float32)
    q = np.clip(np.nan_to_num(np.where(vec_cols, vec, tail)), -128, 127).astype(np.int64)
    q[flat] = 0
    return q, scale, zp
