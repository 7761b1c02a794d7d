"""refquant.report: JSON shape and strictness, the terminal table, the HTML page, atomic writes."""

from __future__ import annotations

import base64
import json
import math
import os

import numpy as np
import pytest

import refquant.report as R
from refquant.metrics import SQNR_INF_DB, error_metrics
from refquant.report import Report, TensorMatch, TensorReport, atomic_write, render_html, render_text, write_outputs

TENSOR_KEYS = {
    "index",
    "name",
    "op_index",
    "opcode",
    "scale",
    "zero_point",
    "mse",
    "max_abs_error",
    "mean_error",
    "sqnr_db",
    "cosine",
    "rmse_lsb",
    "max_abs_error_lsb",
    "local",
    "per_channel",
}
METRIC_KEYS = {"mse", "max_abs_error", "mean_error", "sqnr_db", "cosine", "rmse_lsb", "max_abs_error_lsb"}


def _report() -> Report:
    rng = np.random.default_rng(0)
    r = rng.standard_normal((20, 3))
    rows = []
    for k, (noise, opcode) in enumerate([(0.01, "QUANTIZE"), (0.2, "CONV_2D"), (0.0, "MAX_POOL_2D"), (0.05, "ADD")]):
        q = r + noise * rng.standard_normal(r.shape)
        acc = error_metrics(q, r, scale=0.05, axis=1, qrange=(-2.0, 2.0))
        loc = error_metrics(r + noise / 2 * rng.standard_normal(r.shape) if noise else r, r, scale=0.05, axis=1)
        rows.append(
            TensorReport(
                index=10 + k,
                name=f"model/layer{k}/out;model/layer{k}/BiasAdd",
                op_index=k,
                opcode=opcode,
                dtype="int8",
                shape=(1, 3),
                scale=0.05,
                zero_point=0,
                accumulated=acc,
                local=loc,
                reference=TensorMatch(10 + k, f"float{k}", "name"),
            )
        )
    unmatched = TensorReport(20, "lonely", 4, "ADD", "int8", (1, 3), 0.05, 0, None, rows[0].local, None)
    rows.append(unmatched)
    return Report(
        model="m_int8.tflite",
        float_model="m_float.tflite",
        samples=20,
        rounding="double",
        reference="float_model",
        tensors=rows,
        outputs=[rows[3]],
        top1_agreement=0.95,
        accuracy={"float": 0.9, "quant": 0.85},
        unmatched=[unmatched],
        notes=["a note"],
        elapsed_s=1.25,
    )


def _strict(text: str) -> dict:
    def bad(name: str) -> None:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=bad)


def test_json_shape_as_in_the_issue():
    doc = _strict(_report().to_json())
    assert set(doc) >= {"model", "float_model", "samples", "tensors", "outputs", "top1_agreement", "accuracy"}
    assert (doc["model"], doc["float_model"], doc["samples"]) == ("m_int8.tflite", "m_float.tflite", 20)
    t = doc["tensors"][0]
    assert set(t) >= TENSOR_KEYS
    assert set(t["local"]) >= METRIC_KEYS
    assert set(t["per_channel"]) == {"axis", "sqnr_db", "rmse_lsb"} and len(t["per_channel"]["sqnr_db"]) == 3
    assert set(doc["outputs"][0]) >= {"name"} | METRIC_KEYS
    assert doc["accuracy"] == {"float": 0.9, "quant": 0.85} and doc["top1_agreement"] == 0.95


def test_infinite_sqnr_is_the_documented_sentinel():
    doc = _strict(_report().to_json())
    pool = doc["tensors"][2]
    assert pool["opcode"] == "MAX_POOL_2D" and pool["sqnr_db"] == SQNR_INF_DB == doc["sqnr_inf_db"] == 999.0
    assert pool["per_channel"]["sqnr_db"] == [999.0, 999.0, 999.0]
    assert "Infinity" not in _report().to_json() and "NaN" not in _report().to_json()


def test_unmatched_tensor_has_null_accumulated_metrics():
    doc = _strict(_report().to_json())
    lonely = doc["tensors"][-1]
    assert all(lonely[k] is None for k in METRIC_KEYS) and lonely["reference"] is None
    assert lonely["local"]["mse"] is not None
    assert doc["unmatched"] == [{"index": 20, "name": "lonely", "op_index": 4, "opcode": "ADD"}]


def test_no_accuracy_without_labels_is_null():
    rep = _report()
    rep.accuracy = None
    assert _strict(rep.to_json())["accuracy"] is None


def test_text_table_in_graph_order_with_worst_flagged_and_summary():
    text = render_text(_report(), worst=2)
    lines = text.splitlines()
    body = [ln for ln in lines if ln[:4].strip().isdigit()]
    assert [int(ln[:4]) for ln in body] == [0, 1, 2, 3, 4]
    assert "model/layer1/out" in body[1] and "BiasAdd" not in body[1]  # fused names shortened
    assert "<< worst #1" in body[1]  # CONV_2D has the largest local error
    assert "<< worst #2" in body[3]
    assert " inf " in body[2]  # exact local error
    assert any(ln.startswith("unmatched") and "'lonely'" in ln for ln in lines)
    assert "note: a note" in text
    summary = lines[-1]
    assert summary.startswith("summary: 20 samples") and "top-1 agreement 95.00%" in summary
    assert "accuracy float 90.00% / quant 85.00%" in summary and "op 1 CONV_2D" in summary


def test_worst_ignores_exact_tensors():
    rep = _report()
    assert [t.opcode for t in rep.worst(4)] == ["CONV_2D", "ADD", "QUANTIZE", "ADD"]
    assert all(math.isfinite(t.local.sqnr_db) for t in rep.worst(10))


def test_html_without_matplotlib_has_tables_only(monkeypatch):
    monkeypatch.setattr(R, "_plots_available", lambda: False)
    html = render_html(_report())
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert "<img" not in html and "refquant[plot]" in html
    assert "Per layer" in html and "End to end" in html and "lonely" in html
    assert "<script" not in html and "http://" not in html and "https://" not in html


def test_html_escapes_names():
    rep = _report()
    rep.tensors[0].name = "<b>evil</b>"
    assert "<b>evil</b>" not in render_html(rep, plots=False)


def test_html_with_matplotlib_embeds_png_plots():
    pytest.importorskip("matplotlib")
    html = render_html(_report())
    imgs = html.count('src="data:image/png;base64,')
    assert imgs == 4  # SQNR per layer, RMSE per layer, per-channel spread, histograms
    start = html.index("data:image/png;base64,") + len("data:image/png;base64,")
    png = base64.b64decode(html[start : html.index('"', start)])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert "http://" not in html.replace("http://www.w3.org", "")  # no network references (SVG namespaces aside)


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    p = tmp_path / "r.json"
    p.write_text("old")
    atomic_write(p, "new")
    assert p.read_text() == "new" and os.listdir(tmp_path) == ["r.json"]
    with pytest.raises(FileNotFoundError):
        atomic_write(tmp_path / "missing" / "r.json", "x")
    assert os.listdir(tmp_path) == ["r.json"]


def test_write_outputs_renders_everything_before_writing(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("render failed")

    monkeypatch.setattr(R, "render_html", boom)
    with pytest.raises(RuntimeError):
        write_outputs(_report(), json_path=tmp_path / "r.json", html_path=tmp_path / "r.html")
    assert os.listdir(tmp_path) == []


def test_write_outputs(tmp_path, monkeypatch):
    monkeypatch.setattr(R, "_plots_available", lambda: False)
    write_outputs(_report(), json_path=tmp_path / "r.json", html_path=tmp_path / "r.html")
    assert sorted(os.listdir(tmp_path)) == ["r.html", "r.json"]
    _strict((tmp_path / "r.json").read_text())
