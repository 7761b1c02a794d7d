"""The comparison :class:`Report` and its renderings: terminal table, JSON and self-contained HTML.

JSON shape (``Report.to_dict``)::

    {"model": str, "float_model": str | null, "samples": int, "arithmetic": str, "rounding": "double" | "single",
     "float_accumulation": "float64" | "sequential",
     "reference": "float_model" | "float_shadow", "sqnr_inf_db": 999.0,
     "tensors": [{"index", "name", "op_index", "opcode", "dtype", "shape", "scale", "zero_point",
                  "mse", "max_abs_error", "mean_error", "sqnr_db", "cosine", "rmse_lsb", "max_abs_error_lsb",
                  "clipped_fraction", "abs_error_lsb_counts",
                  "per_channel": {"axis", "sqnr_db": [...], "rmse_lsb": [...]} | null,
                  "reference": {"index", "name", "match": "name" | "structure" | "shadow"} | null,
                  "local": {same metrics, clipped_fraction, abs_error_lsb_counts, per_channel}}],
     "outputs": [{"index", "name", same metrics, "per_channel"}],
     "top1_agreement": float | null, "accuracy": {"float": float, "quant": float} | null,
     "unmatched": [{"index", "name", "op_index", "opcode"}], "notes": [str],
     "against": str | null,
     "profile_diff": [{"index", "name", "op_index", "opcode", "dtype", "shape", "mismatched", "elements",
                       "max_abs_diff", "unit": "LSB" | "ULP",
                       "first": {"sample", "element", "arithmetic", "against"} | null}] | null}

* Metrics are plain JSON numbers. An infinite SQNR (an exact tensor) is written as ``999.0`` and
  ``-inf`` (all-zero reference, nonzero error) as ``-999.0``: :data:`refquant.metrics.SQNR_INF_DB`,
  repeated in the file as ``"sqnr_inf_db"``. JSON has no Infinity (RFC 8259), and strict parsers
  (``JSON.parse``, jq) reject it; no real SQNR comes near 999 dB. A NaN metric is ``null``.
* Accumulated metrics are ``null`` for a tensor without a counterpart in the float model
  (listed in ``"unmatched"``); ``local`` is always present.
* ``scale`` / ``zero_point`` are the step used for the LSB figures: the tensor's own (a list when
  per channel) or, for a float tensor made by DEQUANTIZE, that of the tensor it dequantizes; null
  for a float tensor. ``op_index`` is -1 (``opcode`` ``"INPUT"``) for a quantized graph input, whose
  error is that of quantizing the given real inputs.
* ``abs_error_lsb_counts``: elements whose ``|error| / scale`` rounds to 0, 1, 2 and >= 3.
* ``against`` / ``profile_diff`` (``compare(..., against=B)``): the quantized model also ran under
  profile B on the same samples; per op output, in graph order, how many elements of the two runs
  differ, by how much (in the tensor's integer steps, LSB, or ULP for float tensors) and the first
  differing element (sample index, element index, the value under ``arithmetic`` and under ``against``).
  Both are null without ``against``.

Files are written atomically (a temporary file in the same directory, then ``os.replace``), and
both outputs are rendered before either is written, so a failure leaves nothing half-written.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import re
import tempfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .escape import terminal
from .metrics import HIST_EDGES_LSB, ROUNDING_RMSE_LSB, SQNR_INF_DB, ErrorMetrics, json_number

__all__ = [
    "TensorMatch",
    "TensorReport",
    "ProfileDiff",
    "Report",
    "render_text",
    "render_json",
    "render_html",
    "write_outputs",
    "atomic_write",
]


@dataclass(frozen=True)
class TensorMatch:
    """The reference tensor of a quantized tensor: its index and name in the reference graph, and how
    it was found (``"name"``, ``"structure"``, or ``"shadow"`` for the float shadow's same index)."""

    index: int
    name: str
    how: str

    def to_dict(self) -> dict:
        """``{"index", "name", "match"}``."""
        return {"index": self.index, "name": self.name, "match": self.how}


@dataclass
class TensorReport:
    """Accumulated and local error of one tensor (an op output, or a quantized graph input)."""

    index: int
    name: str
    op_index: int
    opcode: str
    dtype: str
    shape: tuple[int, ...]
    scale: float | list[float] | None
    zero_point: int | list[int] | None
    accumulated: ErrorMetrics | None
    local: ErrorMetrics | None
    reference: TensorMatch | None = None

    def to_dict(self) -> dict:
        """The JSON object of this tensor (see the module docstring)."""
        d: dict[str, Any] = {
            "index": self.index,
            "name": self.name,
            "op_index": self.op_index,
            "opcode": self.opcode,
            "dtype": self.dtype,
            "shape": list(self.shape),
            "scale": self.scale,
            "zero_point": self.zero_point,
        }
        if self.accumulated is not None:
            d.update(self.accumulated.to_dict())
        else:
            d.update({k: None for k in ErrorMetrics.KEYS})
            d.update({"clipped_fraction": None, "abs_error_lsb_counts": None, "per_channel": None})
        d["reference"] = None if self.reference is None else self.reference.to_dict()
        d["local"] = None if self.local is None else self.local.to_dict()
        return d

    @property
    def short_name(self) -> str:
        """The first ``;``-separated part of the (often fused) tensor name."""
        return self.name.split(";")[0]


@dataclass
class ProfileDiff:
    """Where one tensor differs between the runs under two arithmetic profiles (``compare(..., against=B)``)."""

    index: int
    name: str
    op_index: int
    opcode: str
    dtype: str
    shape: tuple[int, ...]
    #: Elements that differ, over every sample, and elements compared.
    mismatched: int
    elements: int
    #: The largest |difference|: integer steps (LSB) for integer tensors, ULP for float tensors.
    max_abs_diff: float
    unit: str
    #: The first differing element: {"sample", "element", "arithmetic", "against"} (None when equal).
    first: dict | None = None

    @property
    def short_name(self) -> str:
        """The first ``;``-separated part of the tensor name."""
        return self.name.split(";")[0]

    def to_dict(self) -> dict:
        """The JSON object of this tensor (see the module docstring)."""
        return {
            "index": self.index,
            "name": self.name,
            "op_index": self.op_index,
            "opcode": self.opcode,
            "dtype": self.dtype,
            "shape": list(self.shape),
            "mismatched": self.mismatched,
            "elements": self.elements,
            "max_abs_diff": json_number(self.max_abs_diff),
            "unit": self.unit,
            "first": self.first,
        }


@dataclass
class Report:
    """The result of :func:`refquant.compare.compare`."""

    model: str
    float_model: str | None
    samples: int
    rounding: str
    reference: str
    tensors: list[TensorReport]
    outputs: list[TensorReport]
    top1_agreement: float | None
    accuracy: dict[str, float] | None
    unmatched: list[TensorReport] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    batched: bool = False
    #: How the float graphs summed conv/FC/matmul products ("float64" or "sequential").
    float_accumulation: str = "float64"
    #: The arithmetic profile the quantized graph ran under (:mod:`refquant.arithmetic`).
    arithmetic: str = "litert-ref"
    #: The second profile the quantized graph ran under (``compare(..., against=...)``), or None.
    against: str | None = None
    #: Per op output, where the runs under ``arithmetic`` and ``against`` differ (graph order); None without.
    profile_diff: list[ProfileDiff] | None = None

    def to_dict(self) -> dict:
        """The report as plain JSON-ready data (see the module docstring)."""
        return {
            "model": self.model,
            "float_model": self.float_model,
            "samples": self.samples,
            "arithmetic": self.arithmetic,
            "rounding": self.rounding,
            "float_accumulation": self.float_accumulation,
            "reference": self.reference,
            "sqnr_inf_db": SQNR_INF_DB,
            "tensors": [t.to_dict() for t in self.tensors],
            "outputs": [_output_dict(t) for t in self.outputs],
            "top1_agreement": json_number(self.top1_agreement),
            "accuracy": self.accuracy,
            "unmatched": [
                {"index": t.index, "name": t.name, "op_index": t.op_index, "opcode": t.opcode} for t in self.unmatched
            ],
            "notes": list(self.notes),
            "against": self.against,
            "profile_diff": None if self.profile_diff is None else [d.to_dict() for d in self.profile_diff],
        }

    def to_json(self, indent: int | None = 1) -> str:
        """The report as a JSON string (strict JSON: no Infinity or NaN)."""
        return render_json(self, indent)

    def to_html(self, worst: int = 3, plots: bool = True) -> str:
        """A self-contained HTML page (plots when matplotlib is installed and ``plots``)."""
        return render_html(self, worst=worst, plots=plots)

    def table(self, worst: int = 3) -> str:
        """The terminal table with its summary line."""
        return render_text(self, worst=worst)

    def worst(self, k: int = 3) -> list[TensorReport]:
        """The ``k`` tensors whose op adds the most error (lowest finite local SQNR), worst first."""
        cands = [
            t
            for t in self.tensors
            if t.local is not None and math.isfinite(t.local.sqnr_db) and t.opcode not in ("DEQUANTIZE",)
        ]
        return sorted(cands, key=lambda t: t.local.sqnr_db)[: max(0, k)]  # type: ignore[union-attr]

    def __str__(self) -> str:
        return render_text(self)


def _output_dict(t: TensorReport) -> dict:
    d: dict[str, Any] = {"index": t.index, "name": t.name, "scale": t.scale, "zero_point": t.zero_point}
    if t.accumulated is not None:
        d.update(t.accumulated.to_dict())
    else:
        d.update({k: None for k in ErrorMetrics.KEYS})
    return d


# ---------------------------------------------------------------------------------------------
# Text


def _fmt(v: float | None, spec: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return format(v, spec)


def _clip_name(name: str, width: int) -> str:
    if len(name) <= width:
        return name
    return "…" + name[-(width - 1) :]


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100.0 * v:.2f}%"


def _flags(t: TensorReport, rank: dict[int, int]) -> str:
    flags = []
    if t.index in rank:
        flags.append(f"<< worst #{rank[t.index]}")
    m = t.local
    if m is not None and m.clipped_fraction:
        pct = 100 * m.clipped_fraction
        flags.append(f"clips {pct:.2g}%" if pct >= 0.01 else "clips <0.01%")
    if t.local is not None and t.local.rmse_lsb is not None and t.local.rmse_lsb > 1.0:
        flags.append("local > 1 LSB")
    return "  ".join(flags)


def summary_line(report: Report, worst: int = 1) -> str:
    """One line: output SQNR, top-1 agreement, accuracy, the op adding the most error, time."""
    parts = [f"{report.samples} samples"]
    if report.outputs and report.outputs[0].accumulated is not None:
        m = report.outputs[0].accumulated
        parts.append(f"output SQNR {_fmt(m.sqnr_db, '.1f')} dB (cosine {_fmt(m.cosine, '.5f')})")
    if report.top1_agreement is not None:
        parts.append(f"top-1 agreement {_pct(report.top1_agreement)}")
    if report.accuracy is not None:
        parts.append(f"accuracy float {_pct(report.accuracy['float'])} / quant {_pct(report.accuracy['quant'])}")
    w = report.worst(1)
    if w:
        t = w[0]
        assert t.local is not None
        parts.append(
            f"most error added: op {t.op_index} {t.opcode} {t.short_name!r} ({_fmt(t.local.sqnr_db, '.1f')} dB)"
        )
    if report.against is not None and report.profile_diff is not None:
        k = sum(1 for d in report.profile_diff if d.mismatched)
        parts.append(f"{report.arithmetic} vs {report.against}: {k} op output(s) differ")
    if report.elapsed_s:
        parts.append(f"{report.elapsed_s:.1f} s")
    return "summary: " + " · ".join(parts)


def render_text(report: Report, worst: int = 3) -> str:
    """The compact per-layer table in graph order, worst layers flagged, and a summary line."""
    ref = (
        f"float model {os.path.basename(report.float_model)}"
        if report.float_model is not None
        else "its float shadow (same graph, dequantized weights)"
    )
    lines = [
        f"refquant compare: {os.path.basename(report.model)} vs {ref}; {report.samples} samples, "
        f"arithmetic {report.arithmetic}{f' (against {report.against})' if report.against else ''}, {report.rounding} rounding, float sums: {report.float_accumulation}",
        "acc = quantized run vs reference run; loc = the op in float on its dequantized quantized inputs vs its output;"
        f" LSB = tensor scale (rounding alone: RMSE {ROUNDING_RMSE_LSB:.3f} LSB)",
    ]
    rank = {t.index: k + 1 for k, t in enumerate(report.worst(worst))}
    head = (
        f"{'op':>4} {'opcode':<18} {'tensor':<30} {'dtype':<7} {'SQNR dB':>8} {'':>6} {'cosine':>8} "
        f"{'RMSE LSB':>8} {'':>6} {'max LSB':>7} {'min ch':>7}  flags"
    )
    sub = (
        f"{'':>4} {'':<18} {'':<30} {'':<7} {'acc':>8} {'loc':>6} {'acc':>8} {'acc':>8} {'loc':>6} {'acc':>7} "
        f"{'SQNR':>7}"
    )
    lines += [head, sub, "-" * len(head)]
    for t in report.tensors:
        a, loc = t.accumulated, t.local
        lines.append(
            f"{t.op_index if t.op_index >= 0 else 'in':>4} {t.opcode[:18]:<18} {_clip_name(t.short_name, 30):<30} "
            f"{t.dtype:<7} "
            f"{_fmt(a.sqnr_db if a else None, '.1f'):>8} {_fmt(loc.sqnr_db if loc else None, '.1f'):>6} "
            f"{_fmt(a.cosine if a else None, '.5f'):>8} "
            f"{_fmt(a.rmse_lsb if a else None, '.3f'):>8} {_fmt(loc.rmse_lsb if loc else None, '.3f'):>6} "
            f"{_fmt(a.max_abs_error_lsb if a else None, '.2f'):>7} "
            f"{_fmt(a.worst_channel_sqnr_db if a else None, '.1f'):>7}  {_flags(t, rank)}".rstrip()
        )
    if report.unmatched:
        names = ", ".join(f"{t.index} {t.short_name!r}" for t in report.unmatched[:10])
        more = f" and {len(report.unmatched) - 10} more" if len(report.unmatched) > 10 else ""
        lines.append(f"unmatched (no float counterpart, accumulated error not measured): {names}{more}")
    for note in report.notes:
        lines.append(f"note: {note}")
    lines += profile_diff_lines(report)
    lines.append(summary_line(report))
    return terminal("\n".join(lines), keep_newlines=True)


def _first_text(d: ProfileDiff) -> str:
    f = d.first
    if f is None:
        return ""
    return f"sample {f['sample']} element {f['element']}: {f['arithmetic']!r} vs {f['against']!r}"


def profile_diff_lines(report: Report) -> list[str]:
    """The text section of ``compare --against``: the layers where the two profiles' runs differ."""
    if report.against is None or report.profile_diff is None:
        return []
    diffs = [d for d in report.profile_diff if d.mismatched]
    head = f"arithmetic {report.arithmetic} vs {report.against}, on the quantized model's integer tensors:"
    if not diffs:
        return [
            head,
            f"  every one of {len(report.profile_diff)} op outputs is equal on these {report.samples} samples",
        ]
    first = diffs[0]
    lines = [
        head,
        f"  {len(diffs)} of {len(report.profile_diff)} op outputs differ; the first is op {first.op_index} "
        f"{first.opcode} {first.short_name!r}",
        f"  {'op':>4} {'opcode':<18} {'tensor':<30} {'dtype':<7} {'mismatched':>18} {'max diff':>9}  first difference",
    ]
    for d in diffs:
        pct = 100.0 * d.mismatched / max(d.elements, 1)
        lines.append(
            f"  {d.op_index:>4} {d.opcode[:18]:<18} {_clip_name(d.short_name, 30):<30} {d.dtype:<7} "
            f"{f'{d.mismatched}/{d.elements} ({pct:.2g}%)':>18} {f'{d.max_abs_diff:.0f} {d.unit}':>9}  {_first_text(d)}"
        )
    return lines


# ---------------------------------------------------------------------------------------------
# JSON


def render_json(report: Report, indent: int | None = 1) -> str:
    """The report as strict JSON text (raises ValueError if a non-finite number slipped through).

    With ``indent``, lists of numbers (shapes, per-channel figures) stay on one line.
    """
    text = json.dumps(report.to_dict(), indent=indent, allow_nan=False)
    if indent is not None:
        text = _NUMBER_LIST.sub(lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text)
    return text + "\n"


_NUMBER_LIST = re.compile(r"\[\s*((?:-?[0-9][0-9.eE+-]*|null)(?:\s*,\s*(?:-?[0-9][0-9.eE+-]*|null))*)\s*\]")


# ---------------------------------------------------------------------------------------------
# HTML

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1b1b1b;max-width:1400px}
h1{font-size:1.4em;margin-bottom:4px} h2{font-size:1.15em;margin-top:28px;border-bottom:1px solid #ddd}
.summary{background:#f4f6f8;border-left:4px solid #3b6ea5;padding:8px 12px;margin:12px 0}
table{border-collapse:collapse;font-size:12px;font-variant-numeric:tabular-nums}
th,td{border:1px solid #d6d6d6;padding:3px 6px;text-align:right;white-space:nowrap}
th{background:#eef1f4;position:sticky;top:0} td.l,th.l{text-align:left}
tr.worst td{background:#fde8e8} tr:hover td{background:#fff7d6}
.name{max-width:360px;overflow:hidden;text-overflow:ellipsis}
img{max-width:100%;border:1px solid #e2e2e2;margin:6px 0}
.muted{color:#666;font-size:12px}
"""


def _plots_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _sqnr_values(ms: list[ErrorMetrics | None]) -> tuple[np.ndarray, np.ndarray]:
    """(finite SQNRs with NaN elsewhere, mask of exact tensors: +inf SQNR)."""
    v = np.array([np.nan if m is None else m.sqnr_db for m in ms], dtype=float)
    exact = np.isposinf(v)
    return np.where(np.isfinite(v), v, np.nan), exact


def _figures(report: Report, worst: int) -> list[tuple[str, str]]:
    """(title, base64 PNG) of each plot."""
    from matplotlib.figure import Figure

    figs: list[tuple[str, str]] = []
    ts = report.tensors
    x = np.arange(len(ts))
    labels = [f"{t.op_index if t.op_index >= 0 else 'in'} {t.opcode}" for t in ts]
    width = max(8.0, min(17.0, 0.2 * len(ts) + 3))

    # 1. SQNR per layer, accumulated and local (exact tensors: triangles on the top edge)
    fig = Figure(layout="constrained", figsize=(width, 4.2))
    ax = fig.add_subplot()
    acc, acc_exact = _sqnr_values([t.accumulated for t in ts])
    loc, loc_exact = _sqnr_values([t.local for t in ts])
    ax.plot(x, acc, "o-", label="accumulated (vs reference run)", color="#3b6ea5")
    ax.plot(x, loc, "s--", label="local (op in float on quantized inputs)", color="#d9822b")
    finite = np.concatenate([acc[np.isfinite(acc)], loc[np.isfinite(loc)]])
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 60.0)
    pad = max(2.0, 0.08 * (hi - lo))
    top = hi + 2 * pad
    ax.set_ylim(lo - pad, top)
    if acc_exact.any() or loc_exact.any():
        ax.plot(x[acc_exact], np.full(acc_exact.sum(), top), "^", color="#3b6ea5", clip_on=False, ms=7)
        ax.plot(
            x[loc_exact], np.full(loc_exact.sum(), top), "^", color="#d9822b", clip_on=False, ms=7, label="exact (∞ dB)"
        )
    for t in report.worst(worst):
        k = ts.index(t)
        ax.annotate("worst", (k, loc[k]), textcoords="offset points", xytext=(0, -14), ha="center", fontsize=8)
    ax.set_xticks(x, labels, rotation=90, fontsize=7)
    ax.set_ylabel("SQNR (dB)")
    ax.set_title("SQNR per layer (higher is better)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    figs.append(("SQNR per layer, accumulated and local", _png(fig)))

    # 2. RMSE in LSB per layer
    fig = Figure(layout="constrained", figsize=(width, 3.6))
    ax = fig.add_subplot()
    ra = [t.accumulated.rmse_lsb if t.accumulated and t.accumulated.rmse_lsb is not None else np.nan for t in ts]
    rl = [t.local.rmse_lsb if t.local and t.local.rmse_lsb is not None else np.nan for t in ts]
    ax.bar(x - 0.2, ra, 0.4, label="accumulated", color="#3b6ea5")
    ax.bar(x + 0.2, rl, 0.4, label="local", color="#d9822b")
    ax.axhline(ROUNDING_RMSE_LSB, color="k", lw=0.8, ls=":", label="rounding alone (0.289)")
    ax.set_xticks(x, labels, rotation=90, fontsize=7)
    ax.set_ylabel("RMSE (LSB)")
    if np.nanmax(np.concatenate([np.asarray(ra, float), np.asarray(rl, float), [0.0]])) > 20:
        ax.set_yscale("log")
    ax.set_title("RMSE in units of the tensor's scale")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    figs.append(("RMSE in LSB per layer", _png(fig)))

    # 3. per-channel spread of the worst layers
    worst_ts = [t for t in report.worst(worst) if t.local is not None and t.local.per_channel is not None]
    if worst_ts:
        fig = Figure(layout="constrained", figsize=(max(6.0, 3.2 * len(worst_ts)), 3.8))
        ax = fig.add_subplot()
        data_l, data_a, pos_l, pos_a, ticks = [], [], [], [], []
        for k, t in enumerate(worst_ts):
            assert t.local is not None and t.local.per_channel is not None
            ch_l = t.local.per_channel.sqnr_db
            data_l.append(ch_l[np.isfinite(ch_l)])
            pos_l.append(3 * k + 1.2)
            n_exact = int(np.isposinf(ch_l).sum())
            if t.accumulated is not None and t.accumulated.per_channel is not None:
                ch_a = t.accumulated.per_channel.sqnr_db
                data_a.append(ch_a[np.isfinite(ch_a)])
                pos_a.append(3 * k + 0.4)
            note = f"\n({n_exact} of {ch_l.size} channels exact locally)" if n_exact else ""
            ticks.append((3 * k + 0.8, f"op {t.op_index} {t.opcode}\n{_clip_name(t.short_name, 28)}{note}"))
        if data_a:
            ax.boxplot(data_a, positions=pos_a, widths=0.6, patch_artist=True, boxprops={"facecolor": "#c9d8ea"})
        ax.boxplot(data_l, positions=pos_l, widths=0.6, patch_artist=True, boxprops={"facecolor": "#f3d2b3"})
        for p, d in zip(pos_a, data_a):
            ax.scatter(np.full(len(d), p) + np.linspace(-0.15, 0.15, len(d)), d, s=6, color="#3b6ea5", zorder=3)
        for p, d in zip(pos_l, data_l):
            ax.scatter(np.full(len(d), p) + np.linspace(-0.15, 0.15, len(d)), d, s=6, color="#d9822b", zorder=3)
        ax.set_xticks([p for p, _ in ticks], [s for _, s in ticks], fontsize=8)
        ax.set_ylabel("per-channel SQNR (dB)")
        ax.set_title("Per-channel SQNR of the worst layers (blue: accumulated, orange: local)")
        ax.grid(alpha=0.3, axis="y")
        figs.append(("Per-channel spread of the worst layers", _png(fig)))

    # 4. error histograms of the worst layers (in LSB)
    hist_ts = [t for t in report.worst(worst) if t.local is not None and t.local.histogram is not None]
    if hist_ts:
        fig = Figure(layout="constrained", figsize=(max(6.0, 4.0 * len(hist_ts)), 3.2))
        centres = 0.5 * (HIST_EDGES_LSB[1:] + HIST_EDGES_LSB[:-1])
        w = float(HIST_EDGES_LSB[1] - HIST_EDGES_LSB[0])
        for k, t in enumerate(hist_ts):
            ax = fig.add_subplot(1, len(hist_ts), k + 1)
            for m, colour, lab in ((t.accumulated, "#3b6ea5", "accumulated"), (t.local, "#d9822b", "local")):
                if m is None or m.histogram is None:
                    continue
                h = m.histogram.astype(float)
                total = h.sum() or 1.0
                ax.step(centres, h[1:-1] / total, where="mid", color=colour, label=lab)
                out = (h[0] + h[-1]) / total
                if out > 0:
                    lab2 = f"{100 * out:.2f}% beyond ±8 LSB ({lab})"
                    ax.text(0.02, 0.03 + 0.08 * (lab == "local"), lab2, transform=ax.transAxes, fontsize=7, va="bottom")
            used = np.nonzero(
                sum(m.histogram[1:-1] for m in (t.accumulated, t.local) if m and m.histogram is not None)
            )[0]
            reach = max(2.0, float(np.max(np.abs(centres[used]))) + w) if used.size else HIST_EDGES_LSB[-1]
            ax.set_xlim(-reach, reach)
            ax.set_xlabel("error (LSB)")
            ax.set_title(f"op {t.op_index} {t.opcode}", fontsize=9)
            ax.grid(alpha=0.3)
            if k == 0:
                ax.set_ylabel("fraction of elements")
                ax.legend(fontsize=7, loc="upper right")
        figs.append(("Error histograms of the worst layers", _png(fig)))
    return figs


def _td(v: Any, spec: str = ".4g", cls: str = "") -> str:
    text = _fmt(v, spec) if isinstance(v, (float, int)) or v is None else str(v)
    c = f' class="{cls}"' if cls else ""
    return f"<td{c}>{html.escape(text)}</td>"


def render_html(report: Report, worst: int = 3, plots: bool = True) -> str:
    """One self-contained HTML page: summary, plots (if matplotlib is installed), tables."""
    esc = html.escape
    rank = {t.index: k + 1 for k, t in enumerate(report.worst(worst))}
    ref = f"float model <code>{esc(report.float_model)}</code>" if report.float_model else "its float shadow"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>refquant compare: {esc(os.path.basename(report.model))}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Quantization error report: <code>{esc(report.model)}</code></h1>",
        f'<p class="muted">reference: {ref} · {report.samples} samples · arithmetic {esc(report.arithmetic)}'
        + (f" (against {esc(report.against)})" if report.against else "")
        + " · "
        f"{esc(report.rounding)} rounding · "
        f"float sums: {esc(report.float_accumulation)} · "
        f"accumulated = quantized run vs reference run; local = the op run in float on its dequantized quantized "
        f"inputs vs its output; LSB = the tensor's scale (rounding alone gives RMSE {ROUNDING_RMSE_LSB:.3f} LSB)</p>",
        f'<div class="summary">{esc(summary_line(report))}</div>',
    ]
    if plots and _plots_available():
        parts.append("<h2>Plots</h2>")
        for title, png in _figures(report, worst):
            parts.append(f'<figure><img alt="{esc(title)}" src="data:image/png;base64,{png}"></figure>')
    elif plots:
        parts.append('<p class="muted">Plots need matplotlib: <code>pip install refquant[plot]</code>.</p>')

    # per-layer table
    parts.append("<h2>Per layer</h2><table><thead><tr>")
    cols = [
        ("op", ""),
        ("opcode", "l"),
        ("tensor", "l"),
        ("dtype", "l"),
        ("scale", ""),
        ("zp", ""),
        ("SQNR dB acc", ""),
        ("SQNR dB local", ""),
        ("cosine acc", ""),
        ("MSE acc", ""),
        ("mean err acc", ""),
        ("max |err| acc", ""),
        ("RMSE LSB acc", ""),
        ("RMSE LSB local", ""),
        ("max LSB acc", ""),
        ("max LSB local", ""),
        ("clipped local", ""),
        ("min channel SQNR acc", ""),
        ("min channel SQNR local", ""),
        ("match", "l"),
        ("flags", "l"),
    ]
    parts += [f'<th class="{c}">{esc(h)}</th>' for h, c in cols]
    parts.append("</tr></thead><tbody>")
    for t in report.tensors:
        a, lo = t.accumulated, t.local
        scale = t.scale if not isinstance(t.scale, list) else f"{len(t.scale)} per channel"
        zp = t.zero_point if not isinstance(t.zero_point, list) else "per channel"
        row_cls = ' class="worst"' if t.index in rank else ""
        parts.append(
            f"<tr{row_cls}>"
            + _td(t.op_index if t.op_index >= 0 else "in")
            + _td(t.opcode, cls="l")
            + f'<td class="l name" title="{esc(t.name)}">{esc(t.index.__str__() + " " + t.short_name)}</td>'
            + _td(t.dtype, cls="l")
            + _td(scale)
            + _td(zp)
            + _td(a.sqnr_db if a else None, ".2f")
            + _td(lo.sqnr_db if lo else None, ".2f")
            + _td(a.cosine if a else None, ".6f")
            + _td(a.mse if a else None)
            + _td(a.mean_error if a else None)
            + _td(a.max_abs_error if a else None)
            + _td(a.rmse_lsb if a else None, ".3f")
            + _td(lo.rmse_lsb if lo else None, ".3f")
            + _td(a.max_abs_error_lsb if a else None, ".2f")
            + _td(lo.max_abs_error_lsb if lo else None, ".2f")
            + _td(_pct(lo.clipped_fraction) if lo and lo.clipped_fraction is not None else None)
            + _td(a.worst_channel_sqnr_db if a else None, ".1f")
            + _td(lo.worst_channel_sqnr_db if lo else None, ".1f")
            + _td(t.reference.how if t.reference else "unmatched", cls="l")
            + _td(_flags(t, rank), cls="l")
            + "</tr>"
        )
    parts.append("</tbody></table>")

    # outputs
    parts.append("<h2>End to end</h2><table><thead><tr>")
    parts += [f"<th>{h}</th>" for h in ("output", "SQNR dB", "cosine", "MSE", "max |err|", "mean err", "RMSE LSB")]
    parts.append("</tr></thead><tbody>")
    for t in report.outputs:
        a = t.accumulated
        parts.append(
            f'<tr><td class="l">{esc(t.name)}</td>'
            + _td(a.sqnr_db if a else None, ".2f")
            + _td(a.cosine if a else None, ".6f")
            + _td(a.mse if a else None)
            + _td(a.max_abs_error if a else None)
            + _td(a.mean_error if a else None)
            + _td(a.rmse_lsb if a else None, ".3f")
            + "</tr>"
        )
    parts.append("</tbody></table><p>")
    if report.top1_agreement is not None:
        parts.append(f"Top-1 agreement between float and quantized: <b>{_pct(report.top1_agreement)}</b>. ")
    if report.accuracy is not None:
        parts.append(
            f"Top-1 accuracy: float <b>{_pct(report.accuracy['float'])}</b>, "
            f"quantized <b>{_pct(report.accuracy['quant'])}</b>."
        )
    parts.append("</p>")

    # per-channel detail of the worst layers
    worst_ts = report.worst(worst)
    if worst_ts:
        parts.append("<h2>Worst layers, per channel</h2>")
        for t in worst_ts:
            lo, a = t.local, t.accumulated
            if lo is None or lo.per_channel is None:
                continue
            parts.append(
                f"<h3>op {t.op_index} {esc(t.opcode)} <code>{esc(t.short_name)}</code> "
                f"(axis {lo.per_channel.axis})</h3><table><thead><tr><th>channel</th>"
                "<th>SQNR dB acc</th><th>SQNR dB local</th><th>RMSE LSB acc</th><th>RMSE LSB local</th></tr></thead><tbody>"
            )
            pa = a.per_channel if a is not None else None
            for c in range(len(lo.per_channel.sqnr_db)):
                parts.append(
                    "<tr>"
                    + _td(c)
                    + _td(float(pa.sqnr_db[c]) if pa is not None else None, ".2f")
                    + _td(float(lo.per_channel.sqnr_db[c]), ".2f")
                    + _td(float(pa.rmse_lsb[c]) if pa is not None and pa.rmse_lsb is not None else None, ".3f")
                    + _td(float(lo.per_channel.rmse_lsb[c]) if lo.per_channel.rmse_lsb is not None else None, ".3f")
                    + "</tr>"
                )
            parts.append("</tbody></table>")
    if report.unmatched:
        parts.append(
            "<h2>Unmatched tensors</h2><p>No counterpart in the float model (accumulated error not measured):</p><ul>"
        )
        parts += [
            f"<li>{t.index} <code>{esc(t.name)}</code> (op {t.op_index} {esc(t.opcode)})</li>" for t in report.unmatched
        ]
        parts.append("</ul>")
    if report.against is not None and report.profile_diff is not None:
        diffs = [d for d in report.profile_diff if d.mismatched]
        parts.append(
            f"<h2>Arithmetic {esc(report.arithmetic)} vs {esc(report.against)}</h2><p>"
            f"{len(diffs)} of {len(report.profile_diff)} op outputs differ between the two profiles' runs.</p>"
        )
        if diffs:
            parts.append("<table><thead><tr>")
            parts += [
                f'<th class="{c}">{h}</th>'
                for h, c in (
                    ("op", ""),
                    ("opcode", "l"),
                    ("tensor", "l"),
                    ("dtype", "l"),
                    ("mismatched", ""),
                    ("elements", ""),
                    ("max diff", ""),
                    ("first difference", "l"),
                )
            ]
            parts.append("</tr></thead><tbody>")
            for d in diffs:
                parts.append(
                    "<tr>"
                    + _td(d.op_index)
                    + _td(d.opcode, cls="l")
                    + f'<td class="l name" title="{esc(d.name)}">{esc(str(d.index) + " " + d.short_name)}</td>'
                    + _td(d.dtype, cls="l")
                    + _td(str(d.mismatched))
                    + _td(str(d.elements))
                    + _td(f"{d.max_abs_diff:.0f} {d.unit}")
                    + _td(_first_text(d), cls="l")
                    + "</tr>"
                )
            parts.append("</tbody></table>")
    if report.notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{esc(n)}</li>" for n in report.notes) + "</ul>")
    parts.append('<p class="muted">Generated by refquant.</p></body></html>')
    return "\n".join(parts) + "\n"


# ---------------------------------------------------------------------------------------------
# Files


def atomic_write(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same directory and ``os.replace``."""
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".refquant-", suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_outputs(
    report: Report,
    json_path: str | os.PathLike[str] | None = None,
    html_path: str | os.PathLike[str] | None = None,
    worst: int = 3,
) -> None:
    """Render the requested outputs first, then write each atomically."""
    texts = []
    if json_path is not None:
        texts.append((json_path, render_json(report)))
    if html_path is not None:
        texts.append((html_path, render_html(report, worst=worst)))
    for p, text in texts:
        atomic_write(p, text)
