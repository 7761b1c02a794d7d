"""Exact float BLAS accumulation and blocking for the fast paths of the conv family and FULLY_CONNECTED.

The readable kernels (``_raw_acc`` + ``_requantize`` in :mod:`refquant.ops.conv`, the latter on
:class:`~refquant.ops.conv.common.QuantConvBase`) compute the integer
accumulator and then the fixed-point requantization literally. The fast path produces the *same
integers* with far fewer NumPy passes: the requantization is folded into a float64 accumulation
(:func:`refquant.requantize.prepare_folded_requant` and the block functions beside it; the proof of
exactness is there), and this module provides the exact blocked float32/float64 products
(:func:`exact_matmul_blocked`) and the block sizes (:func:`rows_per_block`). No requantization lives here.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "rows_per_block",
    "exact_matmul_blocked",
    "BLOCK_ELEMENTS",
]

#: Target size of one output block of the blocked kernels, in elements (512 KiB as float64): big enough for
#: BLAS and few NumPy calls, small enough that the block and its temporaries stay in the L2 cache.
BLOCK_ELEMENTS = 1 << 16
#: float32 holds every integer up to 2^24 exactly.
_F32_EXACT = 2**24


def rows_per_block(row_elements: int, target: int | None = None) -> int:
    """How many rows of ``row_elements`` outputs make one block of about ``target`` elements (at least 1)."""
    target = BLOCK_ELEMENTS if target is None else target
    return max(1, target // max(1, row_elements))


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
