"""Layout and mapping hints: is OTHER's tensor REF's tensor stored differently?

A device dump that differs from the reference everywhere is often right but stored another way: a
channels-first (NCHW) buffer read as NHWC, a weight tensor in another axis order, channels in another
order, or every value shifted by a zero point (an int8/uint8 mix-up). :func:`layout_hint` tries each
of these mappings on one sample and names the one that explains the difference: after the mapping, the
sum of absolute differences must drop to at most a tenth of what it was (so a mapping is named even
when rounding differences remain on top of it), and the hint says how many elements still differ.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

__all__ = ["layout_hint", "MAX_HINT_ELEMENTS"]

#: Tensors with more elements per sample than this get no transpose or channel hints (cost bound).
MAX_HINT_ELEMENTS = 1 << 22
#: Bound on channels x channels x elements-per-channel for the channel-permutation search.
_MAX_CHANNEL_WORK = 50_000_000
#: A mapping is named when it leaves at most this fraction of the original sum of |differences|.
_EXPLAINS = 0.1


def _cost(ref: np.ndarray, other: np.ndarray) -> tuple[float, int, float]:
    """(sum |d|, mismatches, max |d|) in float64; a NaN against a number counts as a large difference."""
    with np.errstate(invalid="ignore", over="ignore"):
        d = np.abs(other.astype(np.float64) - ref.astype(np.float64))
    both_nan = np.isnan(ref.astype(np.float64)) & np.isnan(other.astype(np.float64))
    d = np.where(both_nan, 0.0, np.where(np.isnan(d), 1e30, d))
    bad = int(np.count_nonzero(d))
    return float(d.sum()), bad, float(d.max(initial=0.0))


def _axis_letters(rank: int, constant: bool) -> str | None:
    if rank != 4:
        return None
    return "OHWI" if constant else "NHWC"


def _transposes(shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Axis orders (not the identity, no two giving the same element order) in which a buffer may be stored."""
    r = len(shape)
    if not 2 <= r <= 5:
        return []
    size = int(np.prod(shape, dtype=np.int64))
    seen = {np.arange(size).tobytes()}
    out = []
    for p in itertools.permutations(range(r)):
        if p == tuple(range(r)):
            continue
        order = np.arange(size).reshape([shape[i] for i in p]).transpose(np.argsort(p)).reshape(-1)
        key = order.tobytes()
        if key in seen:
            continue
        seen.add(key)
        out.append(p)
    return out


def _describe_transpose(p: tuple[int, ...], rank: int, constant: bool) -> tuple[str, str | None]:
    letters = _axis_letters(rank, constant)
    if letters is None:
        return f"OTHER stores the axes in the order {list(p)} of REF's axes", None
    stored = "".join(letters[i] for i in p)
    return f"OTHER holds the tensor as {stored} where REF holds {letters}", stored


def _stored_as(other: np.ndarray, shape: tuple[int, ...], p: tuple[int, ...]) -> np.ndarray:
    """OTHER's flat buffer read in axis order ``p`` and brought back to REF's order."""
    return other.reshape([shape[i] for i in p]).transpose(np.argsort(p))


def layout_hint(
    ref: np.ndarray,
    other: np.ndarray,
    *,
    zero_point: tuple[int, ...] = (),
    constant: bool = False,
) -> dict[str, Any] | None:
    """Name a storage or mapping difference that explains why ``other`` differs from ``ref`` (one sample each).

    ``ref`` has REF's shape; ``other`` either the same shape or any shape with the same element count
    (then only re-orderings are tried). ``zero_point``: REF's zero point(s), to name a zero-point shift.
    ``constant``: the tensor is a weight (axis letters OHWI instead of NHWC for rank 4). Returns None
    when no mapping explains the difference, else ``{"kind": "transpose" | "channel_permutation" |
    "offset", "description", "mismatched_after", "max_abs_diff_after", ...}``.
    """
    shape = tuple(int(d) for d in ref.shape)
    if ref.size == 0 or other.size != ref.size:
        return None
    same_shape = tuple(other.shape) == shape
    before = _cost(ref, other) if same_shape else (float("inf"), int(ref.size), float("inf"))
    best: tuple[float, dict[str, Any]] | None = None

    def consider(candidate: np.ndarray, hint: dict[str, Any]) -> None:
        nonlocal best
        total, bad, worst = _cost(ref, candidate)
        if bad >= before[1] or (same_shape and total > _EXPLAINS * before[0]):
            return
        if not same_shape and bad > ref.size // 10:
            return
        if best is None or total < best[0]:
            hint.update(mismatched_after=bad, total=int(ref.size), max_abs_diff_after=_number(worst))
            best = (total, hint)

    if ref.size <= MAX_HINT_ELEMENTS:
        flat = np.ascontiguousarray(other).reshape(-1)
        for p in _transposes(shape):
            text, stored = _describe_transpose(p, len(shape), constant)
            hint: dict[str, Any] = {"kind": "transpose", "axes": list(p), "description": text}
            if stored is not None:
                hint["layout"] = stored
            consider(_stored_as(flat, shape, p), hint)
    if same_shape and len(shape) >= 1:
        _channel_permutation(ref, other, consider)
        _offset(ref, other, zero_point, consider)
    return None if best is None else best[1]


def _channel_permutation(ref: np.ndarray, other: np.ndarray, consider: Any) -> None:
    """The innermost axis (channels) in another order: each OTHER channel matched to its nearest REF channel."""
    c = ref.shape[-1]
    if c < 2 or c * ref.size > _MAX_CHANNEL_WORK:
        return
    x = ref.reshape(-1, c).T.astype(np.float64)
    y = other.reshape(-1, c).T.astype(np.float64)
    if np.isnan(x).any() or np.isnan(y).any():
        return
    nearest = np.array([int(np.argmin(np.abs(x - y[k]).sum(axis=1))) for k in range(c)])
    if len(set(nearest.tolist())) != c or np.array_equal(nearest, np.arange(c)):
        return
    back = np.empty_like(other)
    back[..., nearest] = other
    moved = [(k, int(nearest[k])) for k in range(c) if nearest[k] != k]
    shown = ", ".join(f"{k}->{j}" for k, j in moved[:8]) + (" ..." if len(moved) > 8 else "")
    consider(
        back,
        {
            "kind": "channel_permutation",
            "permutation": nearest.tolist(),
            "description": f"OTHER's channels are REF's in another order (OTHER channel -> REF channel: {shown})",
        },
    )


def _offset(ref: np.ndarray, other: np.ndarray, zero_point: tuple[int, ...], consider: Any) -> None:
    """Every value (or 90% of them) shifted by one constant, or by the per-channel zero points."""
    if ref.dtype.kind not in "iu" or other.dtype.kind not in "iu":
        return
    d = other.astype(np.int64) - ref.astype(np.int64)
    values, counts = np.unique(d, return_counts=True)
    k = int(values[int(np.argmax(counts))])
    if k != 0 and counts.max() * 10 >= 9 * d.size:
        why = ""
        if abs(k) == 128 and -128 <= int(ref.min()) and int(ref.max()) <= 255:
            why = ": a signed/unsigned 8-bit mix-up (int8 read as uint8 or the reverse)"
        elif len(zero_point) == 1 and abs(k) == abs(zero_point[0]) and k != 0:
            why = f": the zero point {zero_point[0]} added or subtracted once too often"
        consider(
            (other.astype(np.int64) - k).astype(ref.dtype) if abs(k) < 1 << 31 else other,
            {"kind": "offset", "offset": k, "description": f"OTHER = REF {k:+d} on most elements{why}"},
        )
    if len(zero_point) > 1 and ref.ndim and ref.shape[-1] == len(zero_point):
        zp = np.asarray(zero_point, np.int64)
        for sign in (1, -1):
            if np.array_equal(d, np.broadcast_to(sign * zp, d.shape)):
                consider(
                    ref.copy(),
                    {
                        "kind": "offset",
                        "offset": [int(sign * z) for z in zp],
                        "description": "OTHER = REF shifted by the per-channel zero points "
                        + ("(added once too often)" if sign > 0 else "(subtracted once too often)"),
                    },
                )


def _number(v: float) -> int | float:
    return int(v) if float(v).is_integer() else float(v)
