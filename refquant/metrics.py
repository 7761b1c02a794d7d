"""Error metrics between a quantized tensor (dequantized to real values) and its float reference.

Notation: ``q`` is the quantized tensor's real value (``scale * (x - zero_point)``), ``r`` the reference
(the float run, or the op run in float), ``e = q - r`` the error, sums over every element of every sample.

=====================  ==========================================================================
metric                 definition
=====================  ==========================================================================
``mse``                ``mean(e²)``
``max_abs_error``      ``max |e|``
``mean_error``         ``mean(e)`` (the bias: a systematic shift, e.g. from a zero-point error)
``sqnr_db``            ``10·log10(Σr² / Σe²)``; ``+inf`` when ``e`` is all zero, ``-inf`` when ``r`` is all
                       zero but ``e`` is not. Each extra bit of an ideal quantizer adds ~6.02 dB.
``cosine``             ``Σq·r / (‖q‖·‖r‖)``; 1 when both are all zero, 0 when only one is
``rmse_lsb``           ``sqrt(mse) / scale``: the error in units of the tensor's step (LSB). Rounding to
                       the nearest step alone gives ``1/√12 ≈ 0.289`` (:data:`ROUNDING_RMSE_LSB`); well
                       above ~0.5 means the op adds more than its output rounding (or inherits error)
``max_abs_error_lsb``  ``max |e| / scale``; 0.5 for pure rounding
``clipped_fraction``   fraction of reference values outside the tensor's representable range
                       ``[scale·(qmin - zp), scale·(qmax - zp)]`` by more than half a step: clipping
                       (saturation) rather than rounding
=====================  ==========================================================================

Per-channel quantization scales (an activation quantized along ``quantized_dimension``) make every
LSB figure per channel: ``rmse_lsb = sqrt(mean((e/scale_c)²))``, ``max_abs_error_lsb = max |e|/scale_c``.

Per channel (:class:`PerChannelMetrics`), along one axis: SQNR and RMSE-LSB of each channel.

Everything is accumulated in float64 by :class:`ErrorAccumulator`, one batch of samples at a time,
so a report over thousands of samples never holds more than one batch. JSON has no infinity:
:func:`json_number` writes ``±inf`` as ``±``:data:`SQNR_INF_DB` (999.0 dB, far above any real SQNR,
which float32 bounds at ~150 dB) and NaN as ``null``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "SQNR_INF_DB",
    "ROUNDING_RMSE_LSB",
    "HIST_EDGES_LSB",
    "ErrorMetrics",
    "PerChannelMetrics",
    "ErrorAccumulator",
    "error_metrics",
    "mse",
    "max_abs_error",
    "mean_error",
    "sqnr_db",
    "cosine",
    "rmse_lsb",
    "max_abs_error_lsb",
    "sqnr_from_sums",
    "cosine_from_sums",
    "json_number",
]

#: The JSON stand-in for an infinite SQNR (an exact tensor): ``+999.0`` (``-999.0`` for ``-inf``).
SQNR_INF_DB = 999.0
#: RMSE of rounding to the nearest step, in steps: ``1/sqrt(12)``.
ROUNDING_RMSE_LSB = 1.0 / math.sqrt(12.0)
#: Bin edges (in LSB) of the error histograms: 0.25-LSB bins over [-8, 8]; values outside go to the
#: two overflow bins, so a histogram has ``len(HIST_EDGES_LSB) + 1`` counts (first: < -8, last: >= 8).
HIST_EDGES_LSB: NDArray[np.float64] = np.linspace(-8.0, 8.0, 65)
_HIST_LO = float(HIST_EDGES_LSB[0])
_HIST_WIDTH = float(HIST_EDGES_LSB[1] - HIST_EDGES_LSB[0])
_HIST_BINS = len(HIST_EDGES_LSB) - 1


# ---------------------------------------------------------------------------------------------
# One-shot metrics (reference definitions; the accumulator gives the same numbers streaming)


def _pair(q: ArrayLike, r: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    qa = np.asarray(q, dtype=np.float64)
    ra = np.asarray(r, dtype=np.float64)
    if qa.shape != ra.shape:
        raise ValueError(f"quantized and reference shapes differ: {qa.shape} vs {ra.shape}")
    return qa, ra


def sqnr_from_sums(signal_power: float, noise_power: float) -> float:
    """``10·log10(signal/noise)`` with the exact-tensor conventions: ``+inf`` if noise is 0, ``-inf`` if signal is 0."""
    if math.isnan(signal_power) or math.isnan(noise_power):
        return math.nan
    if noise_power == 0.0:
        return math.inf
    if math.isinf(noise_power):
        return math.nan if math.isinf(signal_power) else -math.inf
    if signal_power == 0.0:
        return -math.inf
    if math.isinf(signal_power):
        return math.inf
    return 10.0 * math.log10(signal_power / noise_power)


def cosine_from_sums(qr: float, qq: float, rr: float) -> float:
    """``qr / sqrt(qq·rr)``: 1 when both vectors are zero, 0 when only one is."""
    if qq == 0.0 and rr == 0.0:
        return 1.0
    if qq == 0.0 or rr == 0.0:
        return 0.0
    return qr / math.sqrt(qq * rr)


def mse(q: ArrayLike, r: ArrayLike) -> float:
    """Mean squared error ``mean((q - r)²)``."""
    qa, ra = _pair(q, r)
    return float(np.mean((qa - ra) ** 2))


def max_abs_error(q: ArrayLike, r: ArrayLike) -> float:
    """``max |q - r|``."""
    qa, ra = _pair(q, r)
    return float(np.max(np.abs(qa - ra)))


def mean_error(q: ArrayLike, r: ArrayLike) -> float:
    """``mean(q - r)``: the bias of the quantized values."""
    qa, ra = _pair(q, r)
    return float(np.mean(qa - ra))


def sqnr_db(q: ArrayLike, r: ArrayLike) -> float:
    """Signal-to-quantization-noise ratio ``10·log10(Σr² / Σ(q - r)²)`` in dB (see :func:`sqnr_from_sums`)."""
    qa, ra = _pair(q, r)
    return sqnr_from_sums(float(np.sum(ra * ra)), float(np.sum((qa - ra) ** 2)))


def cosine(q: ArrayLike, r: ArrayLike) -> float:
    """Cosine similarity of the flattened tensors (see :func:`cosine_from_sums`)."""
    qa, ra = _pair(q, r)
    return cosine_from_sums(float(np.sum(qa * ra)), float(np.sum(qa * qa)), float(np.sum(ra * ra)))


def rmse_lsb(q: ArrayLike, r: ArrayLike, scale: float) -> float:
    """Root-mean-square error in units of ``scale`` (1/√12 ≈ 0.289 for rounding alone)."""
    return math.sqrt(mse(q, r)) / float(scale)


def max_abs_error_lsb(q: ArrayLike, r: ArrayLike, scale: float) -> float:
    """``max |q - r| / scale``."""
    return max_abs_error(q, r) / float(scale)


# ---------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class PerChannelMetrics:
    """SQNR (dB) and RMSE in LSB of each channel along ``axis`` (an axis of the tensor's own shape)."""

    axis: int
    sqnr_db: NDArray[np.float64]
    rmse_lsb: NDArray[np.float64] | None
    mse: NDArray[np.float64]

    def to_dict(self) -> dict:
        """``{"axis", "sqnr_db": [...], "rmse_lsb": [...] or null}`` with JSON-safe numbers."""
        return {
            "axis": self.axis,
            "sqnr_db": [json_number(v) for v in self.sqnr_db],
            "rmse_lsb": None if self.rmse_lsb is None else [json_number(v) for v in self.rmse_lsb],
        }


@dataclass(frozen=True)
class ErrorMetrics:
    """Error of one tensor over every sample (definitions in the module docstring).

    LSB figures are None for a tensor without a scale. ``histogram`` counts ``e/scale`` in the bins
    of :data:`HIST_EDGES_LSB` (plus the two overflow bins), or is None without a scale.
    """

    count: int
    mse: float
    max_abs_error: float
    mean_error: float
    sqnr_db: float
    cosine: float
    rmse_lsb: float | None = None
    max_abs_error_lsb: float | None = None
    clipped_fraction: float | None = None
    per_channel: PerChannelMetrics | None = None
    histogram: NDArray[np.int64] | None = field(default=None, repr=False)

    #: Keys written by :meth:`to_dict`, in order (the JSON metric set).
    KEYS = ("mse", "max_abs_error", "mean_error", "sqnr_db", "cosine", "rmse_lsb", "max_abs_error_lsb")

    def to_dict(self, per_channel: bool = True) -> dict:
        """The metrics as JSON-safe numbers (``±inf`` -> ``±SQNR_INF_DB``, NaN -> None)."""
        d: dict = {k: json_number(getattr(self, k)) for k in self.KEYS}
        d["clipped_fraction"] = json_number(self.clipped_fraction)
        d["abs_error_lsb_counts"] = self.abs_error_lsb_counts()
        if per_channel:
            d["per_channel"] = None if self.per_channel is None else self.per_channel.to_dict()
        return d

    def abs_error_lsb_counts(self) -> list[int] | None:
        """Elements whose error rounds to 0, 1, 2 and >= 3 LSB (``|e|/scale`` in [0, .5), [.5, 1.5), ...)."""
        if self.histogram is None:
            return None
        h = self.histogram
        centre = _HIST_BINS // 2 + 1  # index of the bin [0, 0.25) in h (h[0] is the underflow bin)
        per = int(round(0.5 / _HIST_WIDTH))  # bins per half LSB

        def band(lo_half: int, hi_half: int) -> int:  # |e| in [lo_half/2, hi_half/2) LSB, both signs
            pos = h[centre + lo_half * per : centre + hi_half * per].sum()
            neg = h[centre - hi_half * per : centre - lo_half * per].sum()
            return int(pos + neg)

        zero = int(h[centre - per : centre + per].sum())
        return [zero, band(1, 3), band(3, 5), int(h.sum()) - zero - band(1, 3) - band(3, 5)]

    @property
    def worst_channel_sqnr_db(self) -> float | None:
        """The lowest per-channel SQNR, or None without per-channel figures."""
        if self.per_channel is None or self.per_channel.sqnr_db.size == 0:
            return None
        return float(np.min(self.per_channel.sqnr_db))


def json_number(v: float | None) -> float | None:
    """A value JSON can hold: ``±inf`` -> ``±SQNR_INF_DB``, NaN -> None, others as float."""
    if v is None:
        return None
    f = float(v)
    if math.isnan(f):
        return None
    if math.isinf(f):
        return SQNR_INF_DB if f > 0 else -SQNR_INF_DB
    return f


# ---------------------------------------------------------------------------------------------
# Streaming accumulation


class ErrorAccumulator:
    """Accumulates the error metrics of one tensor over batches of samples.

    ``scale``: the tensor's step (a float), or a 1-D array of per-channel steps along ``axis``, or None
    (no LSB figures). ``axis``: the per-channel axis, counted in the arrays given to :meth:`update`
    (None: no per-channel figures); ``channel_axis_label`` is the axis reported (the tensor's own,
    when the arrays carry an extra leading sample axis). ``qrange``: the representable real range
    ``(lo, hi)`` for ``clipped_fraction`` (per-tensor scales only; None to skip).

    Implementation: every sum is kept per channel (``einsum`` over a ``(elements, channels)`` view, in
    float64) and the tensor totals are sums of the channel sums, so each batch costs a handful of
    passes over the data.
    """

    def __init__(
        self,
        scale: float | ArrayLike | None = None,
        axis: int | None = None,
        qrange: tuple[float, float] | None = None,
        *,
        channel_axis_label: int | None = None,
    ) -> None:
        self.axis = axis
        self.channel_axis_label = axis if channel_axis_label is None else channel_axis_label
        self.qrange = qrange
        self._scale: float | None = None
        self._ch_scale: NDArray[np.float64] | None = None
        if scale is not None:
            s = np.asarray(scale, dtype=np.float64).reshape(-1)
            if s.size == 1:
                self._scale = float(s[0])
            else:
                if axis is None:
                    raise ValueError("per-channel scales need an axis")
                self._ch_scale = s
        self.n = 0
        self.ch_n = 0
        self.max_abs = 0.0
        self.max_abs_lsb = 0.0
        self.clipped = 0
        self.nan = False
        # per-channel sums (one channel when there is no axis): e, e², r², q², q·r
        self.sums: NDArray[np.float64] | None = None
        self.hist: NDArray[np.int64] | None = None
        if self._scale is not None or self._ch_scale is not None:
            self.hist = np.zeros(_HIST_BINS + 2, np.int64)

    @property
    def has_lsb(self) -> bool:
        """True when LSB figures are computed (a scale was given)."""
        return self.hist is not None

    def update(self, q: np.ndarray, r: np.ndarray) -> None:
        """Add one batch: ``q`` the quantized tensor's real values, ``r`` the reference, same shape."""
        if q.shape != r.shape:
            raise ValueError(f"quantized and reference shapes differ: {q.shape} vs {r.shape}")
        if q.size == 0:
            return
        axis = self.axis
        if axis is not None:
            if axis != q.ndim - 1:
                q = np.moveaxis(q, axis, -1)
                r = np.moveaxis(r, axis, -1)
            channels = q.shape[-1]
        else:
            channels = 1
        Q = np.asarray(q, dtype=np.float64).reshape(-1, channels)
        R = np.asarray(r, dtype=np.float64).reshape(-1, channels)
        E = Q - R
        if channels == 1:
            e, rr, qq = E.ravel(), R.ravel(), Q.ravel()
            sums = np.array([[e.sum(), e @ e, rr @ rr, qq @ qq, qq @ rr]])
        else:
            sums = np.stack(
                [
                    E.sum(axis=0),
                    np.einsum("ij,ij->j", E, E),
                    np.einsum("ij,ij->j", R, R),
                    np.einsum("ij,ij->j", Q, Q),
                    np.einsum("ij,ij->j", Q, R),
                ],
                axis=1,
            )
        self.sums = sums if self.sums is None else self.sums + sums
        self.n += E.size
        self.ch_n += E.shape[0]
        if not np.isfinite(sums[:, 1]).all():
            self.nan = self.nan or bool(np.isnan(sums[:, 1]).any())
            E = np.nan_to_num(E, nan=0.0)
        if E.size:
            self.max_abs = max(self.max_abs, float(E.max()), -float(E.min()))

        if self.hist is not None:
            if self._ch_scale is not None:
                if self._ch_scale.size != channels:
                    raise ValueError(f"{self._ch_scale.size} channel scales for {channels} channels")
                t = E * (1.0 / self._ch_scale)
                self.max_abs_lsb = max(self.max_abs_lsb, float(t.max()), -float(t.min()))
            else:
                assert self._scale is not None
                t = E * (1.0 / self._scale)
            # bin k+1 holds [lo + k·w, lo + (k+1)·w); 0 and the last are the overflow bins
            t *= 1.0 / _HIST_WIDTH
            t += 1.0 - _HIST_LO / _HIST_WIDTH
            np.clip(t, 0.0, _HIST_BINS + 1.5, out=t)
            self.hist += np.bincount(t.astype(np.intp).ravel(), minlength=_HIST_BINS + 2)
            if self.qrange is not None and self._scale is not None:
                half = 0.5 * self._scale
                lo, hi = self.qrange
                self.clipped += int(np.count_nonzero(R < lo - half)) + int(np.count_nonzero(R > hi + half))

    def result(self) -> ErrorMetrics:
        """The metrics over everything added so far."""
        n = self.n
        if n == 0 or self.sums is None:
            nan = math.nan
            return ErrorMetrics(0, nan, nan, nan, nan, nan)
        tot = self.sums.sum(axis=0)
        sum_e, sum_e2, sum_r2, sum_q2, sum_qr = (float(v) for v in tot)
        bad = self.nan
        mse_v = sum_e2 / n
        rmse_l = max_l = clipped = None
        if self.has_lsb:
            if self._ch_scale is not None:
                rmse_l = math.sqrt(float(np.sum(self.sums[:, 1] / self._ch_scale**2)) / n)
                max_l = self.max_abs_lsb
            else:
                assert self._scale is not None
                rmse_l = math.sqrt(mse_v) / self._scale
                max_l = self.max_abs / self._scale
            if self.qrange is not None and self._scale is not None:
                clipped = self.clipped / n
        per_channel = None
        if self.axis is not None:
            ch_sqnr = np.array([sqnr_from_sums(float(s), float(e)) for s, e in zip(self.sums[:, 2], self.sums[:, 1])])
            ch_mse = self.sums[:, 1] / max(self.ch_n, 1)
            ch_rmse_lsb = None
            if self._ch_scale is not None:
                ch_rmse_lsb = np.sqrt(ch_mse) / self._ch_scale
            elif self._scale is not None:
                ch_rmse_lsb = np.sqrt(ch_mse) / self._scale
            per_channel = PerChannelMetrics(self.channel_axis_label, ch_sqnr, ch_rmse_lsb, ch_mse)
        nan = math.nan
        return ErrorMetrics(
            count=n,
            mse=mse_v,
            max_abs_error=nan if bad else self.max_abs,
            mean_error=sum_e / n,
            sqnr_db=nan if bad else sqnr_from_sums(sum_r2, sum_e2),
            cosine=nan if bad else cosine_from_sums(sum_qr, sum_q2, sum_r2),
            rmse_lsb=rmse_l,
            max_abs_error_lsb=nan if bad and max_l is not None else max_l,
            clipped_fraction=clipped,
            per_channel=per_channel,
            histogram=None if self.hist is None else self.hist.copy(),
        )


def error_metrics(
    q: ArrayLike,
    r: ArrayLike,
    scale: float | ArrayLike | None = None,
    axis: int | None = None,
    qrange: tuple[float, float] | None = None,
) -> ErrorMetrics:
    """All metrics of ``q`` against ``r`` in one call (an :class:`ErrorAccumulator` fed once)."""
    qa, ra = _pair(q, r)
    acc = ErrorAccumulator(scale, axis, qrange)
    acc.update(qa, ra)
    return acc.result()
