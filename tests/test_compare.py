"""refquant.compare: input handling, reference matching, local/accumulated error, the CLI, and the LiteRT oracle."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

import refquant
from refquant.cli import main
from refquant.compare import compare, load_inputs, load_labels, match_tensors
from refquant.errors import InputError
from refquant.metrics import error_metrics
from refquant.quantization import dequantize
from refquant.testing import build_model, const, model_bytes, operator, tensor
from tests.golden_models import GOLDEN, model_path

DIGITS = GOLDEN / "data" / "digits_split.npz"
N_DIGITS = 24  # samples used in tests (CI runtime)

# ---------------------------------------------------------------------------------------------
# Small synthetic models

W_REAL = np.array([[0.5, -0.25, 0.75, 0.1], [-0.6, 0.3, 0.2, -0.9], [0.05, 0.4, -0.35, 0.6]], np.float32)
B_REAL = np.array([0.1, -0.2, 0.05], np.float32)
S_IN, ZP_IN, S_W, S_OUT, ZP_OUT = 0.02, 3, 0.01, 0.015, -2


def _w_q() -> np.ndarray:
    return np.clip(np.floor(W_REAL / S_W + 0.5), -127, 127).astype(np.int8)


def _b_q() -> np.ndarray:
    return np.floor(B_REAL / np.float32(np.float32(S_IN) * np.float32(S_W)) + 0.5).astype(np.int32)


def quant_fc_model(float_io: bool = True, in_scale: float = S_IN, in_zp: int = ZP_IN, names: str = "") -> bytes:
    """x(float) -> QUANTIZE -> FULLY_CONNECTED(int8) -> DEQUANTIZE, or int8 in/out when not ``float_io``."""
    ops = []
    if float_io:
        x = tensor((1, 4), "float32", name="x")
        xq = tensor((1, 4), "int8", scale=in_scale, zero_point=in_zp, name="x_q")
        ops.append(operator("QUANTIZE", [x], [xq]))
    else:
        x = xq = tensor((1, 4), "int8", scale=in_scale, zero_point=in_zp, name="x")
    w = const(_w_q(), "int8", scale=S_W, zero_point=0, name="w")
    bias = const(_b_q(), "int32", scale=np.float32(in_scale) * np.float32(S_W), zero_point=0, name="b")
    y = tensor((1, 3), "int8", scale=S_OUT, zero_point=ZP_OUT, name=names + "fc/out")
    ops.append(operator("FULLY_CONNECTED", [xq, w, bias], [y]))
    out = y
    if float_io:
        out = tensor((1, 3), "float32", name="y")
        ops.append(operator("DEQUANTIZE", [y], [out]))
    return model_bytes(ops, signatures=[("serving_default", {"image": x}, {"output_0": out})])


def float_fc_model(names: str = "fc/out", out_name: str = "y", extra_add: bool = False, width: int = 4) -> bytes:
    """The float counterpart of :func:`quant_fc_model` (original real weights)."""
    x = tensor((1, width), "float32", name="x")
    w = const(W_REAL[:, :width], "float32", name="w")
    bias = const(B_REAL, "float32", name="b")
    y = tensor((1, 3), "float32", name=names if extra_add else out_name)
    ops = [operator("FULLY_CONNECTED", [x, w, bias], [y])]
    if extra_add:
        z = const(np.zeros((1, 3), np.float32), "float32", name="zero")
        y2 = tensor((1, 3), "float32", name=out_name)
        ops.append(operator("ADD", [y, z], [y2]))
    return model_bytes(ops)


def _x(n: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (n, 4)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Local and accumulated error on a one-op model, computed by hand


def _quant_values(model: bytes, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(dequantized QUANTIZE output, dequantized FC output) per sample, from refquant's interpreter."""
    it = refquant.Interpreter(model_content=model)
    it.allocate_tensors()
    xq, yq = [], []
    for s in range(x.shape[0]):
        it.set_tensor(it.get_input_details()[0]["index"], x[s : s + 1])
        it.invoke()
        xq.append(dequantize(it.trace.tensor("x_q"), S_IN, ZP_IN))
        yq.append(dequantize(it.trace.tensor("fc/out"), S_OUT, ZP_OUT))
    return np.concatenate(xq), np.concatenate(yq)


def test_local_and_accumulated_error_by_hand():
    model = quant_fc_model()
    x = _x()
    xq, yq = _quant_values(model, x)
    w = _w_q().astype(np.float64) * np.float32(S_W)
    b = _b_q().astype(np.float64) * np.float64(np.float32(np.float32(S_IN) * np.float32(S_W)))
    local_ref = xq.astype(np.float64) @ w.T + b  # the op in float on its dequantized quantized inputs
    shadow_ref = x.astype(np.float64) @ w.T + b  # the float shadow run: real inputs, dequantized weights
    rep = compare(model, inputs={"x": x}, progress=False)
    fc = next(t for t in rep.tensors if t.opcode == "FULLY_CONNECTED")
    want_local = error_metrics(yq, local_ref, scale=S_OUT)
    want_acc = error_metrics(yq, shadow_ref, scale=S_OUT)
    for key in ("mse", "max_abs_error", "mean_error", "sqnr_db", "cosine", "rmse_lsb", "max_abs_error_lsb"):
        # the float kernel computes in float32: differences of ~1e-7 relative to the signal
        assert getattr(fc.local, key) == pytest.approx(getattr(want_local, key), rel=1e-4, abs=1e-7), key
        assert getattr(fc.accumulated, key) == pytest.approx(getattr(want_acc, key), rel=1e-4, abs=1e-7), key
    # the QUANTIZE row: its local and accumulated error are both the input rounding
    qrow = rep.tensors[0]
    assert qrow.opcode == "QUANTIZE" and qrow.local.mse == pytest.approx(np.mean((xq - x) ** 2), rel=1e-6)
    assert qrow.accumulated.max_abs_error_lsb <= 0.5 + 1e-6
    # the DEQUANTIZE row adds nothing and inherits everything; its LSB is the int8 tensor's step
    drow = rep.tensors[-1]
    assert drow.opcode == "DEQUANTIZE" and drow.local.sqnr_db == math.inf
    assert drow.scale == pytest.approx(S_OUT) and drow.accumulated.rmse_lsb == pytest.approx(fc.accumulated.rmse_lsb)
    assert [t.op_index for t in rep.tensors] == [0, 1, 2]
    assert rep.outputs == [drow]


def test_float_model_reference_includes_weight_error():
    model = quant_fc_model()
    x = _x()
    _, yq = _quant_values(model, x)
    want = error_metrics(yq, x.astype(np.float64) @ W_REAL.T.astype(np.float64) + B_REAL, scale=S_OUT)
    rep = compare(model, float_fc_model(out_name="fc/out"), inputs=[x], progress=False)
    fc = next(t for t in rep.tensors if t.opcode == "FULLY_CONNECTED")
    assert fc.reference is not None and fc.reference.how == "name"
    assert rep.tensors[-1].reference.how == "structure"  # DEQUANTIZE output: the same float tensor
    assert fc.accumulated.sqnr_db == pytest.approx(want.sqnr_db, rel=1e-5)
    assert fc.accumulated.mse == pytest.approx(want.mse, rel=1e-5)
    assert rep.reference == "float_model" and rep.float_model == "<float model bytes>"


def test_float_accumulation_option_reaches_the_float_graphs_and_the_report():
    model, fmodel, x = quant_fc_model(), float_fc_model(out_name="fc/out"), _x()
    reps = {
        fa: compare(model, fmodel, inputs=[x], progress=False, float_accumulation=fa)
        for fa in ("float64", "sequential")
    }
    for fa, rep in reps.items():
        assert rep.float_accumulation == fa and rep.to_dict()["float_accumulation"] == fa
    a, b = (next(t for t in r.tensors if t.opcode == "FULLY_CONNECTED") for r in reps.values())
    # The float reference sums 4 products: the two modes differ by float32 rounding at most.
    assert a.accumulated.sqnr_db == pytest.approx(b.accumulated.sqnr_db, rel=1e-4)
    with pytest.raises(InputError, match="float_accumulation"):
        compare(model, inputs=[x], progress=False, float_accumulation="float32")


def test_integer_input_model_quantizes_inputs_ties_away_from_zero():
    model = quant_fc_model(float_io=False, in_scale=0.5, in_zp=0)
    x = np.array([[0.25, -0.25, 0.75, 1.25]], np.float32)  # x / 0.5 = 0.5, -0.5, 1.5, 2.5: all ties
    rep = compare(model, inputs=[x], progress=False)
    row = rep.tensors[0]
    assert (row.op_index, row.opcode) == (-1, "INPUT")
    # ties away from zero give q = [1, -1, 2, 3]: errors +.25, -.25, +.25, +.25 (ties to even would give 0 mean)
    assert row.accumulated.mean_error == pytest.approx(0.125)
    assert row.accumulated.max_abs_error == pytest.approx(0.25)


def test_batched_equals_per_sample():
    model = quant_fc_model()
    x = _x(40)
    a = compare(model, inputs=[x], progress=False)
    b = compare(model, inputs=[x], progress=False, batch_size=1)
    assert a.batched and not b.batched
    for ta, tb in zip(a.tensors, b.tensors):
        for m1, m2 in ((ta.accumulated, tb.accumulated), (ta.local, tb.local)):
            assert m1.mse == pytest.approx(m2.mse, rel=1e-9)
            assert m1.sqnr_db == pytest.approx(m2.sqnr_db, rel=1e-9)
            np.testing.assert_array_equal(m1.histogram, m2.histogram)


def test_batch_mixing_graph_runs_per_sample():
    """A RESHAPE to a constant [1, -1] would fold the batch into one row: detected, run per sample."""
    x = tensor((1, 2, 2), "float32", name="x")
    xq = tensor((1, 2, 2), "int8", scale=0.02, zero_point=0, name="x_q")
    shape = const(np.array([1, -1], np.int32), "int32", name="shape")
    r = tensor((1, 4), "int8", scale=0.02, zero_point=0, name="flat")
    y = tensor((1, 4), "float32", name="y")
    model = model_bytes(
        [
            operator("QUANTIZE", [x], [xq]),
            operator("RESHAPE", [xq, shape], [r]),
            operator("DEQUANTIZE", [r], [y]),
        ]
    )
    xs = np.random.default_rng(3).uniform(-1, 1, (5, 2, 2)).astype(np.float32)
    rep = compare(model, inputs=[xs], progress=False)
    assert not rep.batched and rep.notes
    assert rep.tensors[-1].accumulated.count == 5 * 4


def test_progress_callback_and_limit():
    seen = []
    rep = compare(quant_fc_model(), inputs=[_x(30)], progress=lambda d, n: seen.append((d, n)), limit=20, batch_size=8)
    assert rep.samples == 20
    assert seen[-1] == (20, 20) and [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_progress_on_stderr_for_long_runs(capsys, monkeypatch):
    import importlib

    C = importlib.import_module("refquant.compare")  # the module; `refquant.compare` is the function

    monkeypatch.setattr(C._Progress, "__init__", _fast_progress_init(C._Progress.__init__))
    compare(quant_fc_model(), inputs=[_x(12)], batch_size=4)
    err = capsys.readouterr().err
    assert "12/12 samples" in err and "samples/s" in err


def _fast_progress_init(orig):
    def init(self, total, enabled, delay=1.5):
        orig(self, total, enabled, delay=0.0)
        self.last = -1e9

    return init


# ---------------------------------------------------------------------------------------------
# Inputs and labels


@pytest.mark.parametrize(
    "data",
    [
        {"x": np.zeros((3, 4))},
        {"input_0": np.zeros((3, 1, 4))},
        {"image": np.zeros((3, 4), np.float64)},  # the signature's input name
        [np.zeros((3, 4), np.float32)],
    ],
)
def test_inputs_accepted(data):
    model = refquant.load_model(quant_fc_model())
    (x,), (fed,) = load_inputs(data, model)
    assert x.shape == fed.shape == (3, 1, 4) and x.dtype == np.float32


def test_integer_data_for_an_integer_input_is_already_quantized():
    model = refquant.load_model(quant_fc_model(float_io=False, in_scale=0.5, in_zp=1))
    (x,), (fed,) = load_inputs([np.array([[3, -2, 0, 1]], np.int8)], model)
    np.testing.assert_array_equal(fed, [[[3, -2, 0, 1]]])
    np.testing.assert_array_equal(x, [[[1.0, -1.5, -0.5, 0.0]]])  # real values: 0.5 * (q - 1)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"wrong": np.zeros((3, 4))}, "'wrong' that names no model input"),
        ({}, "no array for model input 0"),
        ({"x": np.zeros((3, 4)), "input_0": np.zeros((3, 4))}, "given twice"),
        ({"x": np.zeros((3, 5))}, "must be (N, 1, 4) or (N, 4)"),
        ({"x": np.zeros((4,))}, "has shape [4]"),
        ({"x": np.array([[0, 1, np.nan, 2]])}, "1 non-finite value(s), the first in sample 0 at (0, 2)"),
        ({"x": np.array([[0, 1, np.inf, 2]])}, "non-finite"),
        ({"x": np.zeros((0, 4))}, "0 samples"),
        ({"x": np.array([["a", "b", "c", "d"]])}, "expected numbers"),
        ({"x": np.zeros((3, 4), np.int64)}, "give a float array"),
        ([np.zeros((3, 4)), np.zeros((3, 4))], "got 2 input arrays"),
        (None, "no inputs"),
    ],
)
def test_bad_inputs(data, message):
    model = refquant.load_model(quant_fc_model())
    with pytest.raises(InputError) as exc:
        load_inputs(data, model)
    assert message in str(exc.value)


def test_inputs_npz_path_and_key_selector(tmp_path):
    model = refquant.load_model(quant_fc_model())
    p = tmp_path / "d.npz"
    np.savez(p, pixels=np.ones((2, 4)), labels=np.array([0, 1]))
    (x,), _ = load_inputs(f"{p}:pixels", model)
    assert x.shape == (2, 1, 4)
    with pytest.raises(InputError, match="no array 'nope'"):
        load_inputs(f"{p}:nope", model)
    with pytest.raises(InputError, match="names no model input"):
        load_inputs(str(p), model)
    with pytest.raises(InputError, match="does not exist"):
        load_inputs(str(tmp_path / "missing.npz"), model)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(InputError, match="cannot read input data"):
        load_inputs(str(bad), model)


def test_mismatched_sample_counts():
    x1, x2, y = (
        tensor((1, 2), "float32", name="a"),
        tensor((1, 2), "float32", name="b"),
        tensor((1, 2), "float32", name="y"),
    )
    with pytest.raises(InputError, match="different numbers of samples"):
        load_inputs({"a": np.zeros((3, 2)), "b": np.zeros((2, 2))}, build_model(operator("ADD", [x1, x2], [y])))


@pytest.mark.parametrize(
    "labels, message",
    [
        (np.zeros(4, np.int64), "have 4 entries; the input data has 3 samples"),
        (np.zeros((3, 2), np.int64), "expected (3,)"),
        (np.array([0.0, 1.5, 2.0]), "must be integers"),
        (np.array(["a", "b", "c"]), "expected integer class indices"),
    ],
)
def test_bad_labels(labels, message):
    with pytest.raises(InputError) as exc:
        load_labels(labels, 3)
    assert message in str(exc.value)


def test_labels_accepted(tmp_path):
    np.testing.assert_array_equal(load_labels(np.array([[1], [2], [0]]), 3), [1, 2, 0])
    np.testing.assert_array_equal(load_labels(np.array([1.0, 2.0]), 2), [1, 2])
    p = tmp_path / "l.npy"
    np.save(p, np.array([2, 1]))
    np.testing.assert_array_equal(load_labels(str(p), 2), [2, 1])
    assert load_labels(None, 5) is None


def test_labels_out_of_range():
    with pytest.raises(InputError, match=r"class indices in \[0, 2\]"):
        compare(quant_fc_model(), inputs=[_x(3)], labels=np.array([0, 1, 3]), progress=False)


def test_accuracy_and_top1_on_synthetic_model():
    model = quant_fc_model()
    x = _x(50, seed=4)
    rep = compare(model, float_fc_model(), inputs=[x], labels=np.zeros(50, np.int64), progress=False)
    _, yq = _quant_values(model, x)
    yf = x @ W_REAL.T + B_REAL
    assert rep.top1_agreement == pytest.approx(np.mean(yq.argmax(1) == yf.argmax(1)))
    assert rep.accuracy == {
        "float": pytest.approx(np.mean(yf.argmax(1) == 0)),
        "quant": pytest.approx(np.mean(yq.argmax(1) == 0)),
    }


def test_bad_rounding_and_missing_model(tmp_path):
    with pytest.raises(InputError, match="rounding"):
        compare(quant_fc_model(), inputs=[_x(2)], rounding="banker")
    with pytest.raises(InputError, match="no such file"):
        compare(str(tmp_path / "none.tflite"), inputs=[_x(2)])


# ---------------------------------------------------------------------------------------------
# Matching a float model


def test_match_by_structure_when_names_differ():
    q = refquant.load_model(quant_fc_model(names="quant_"))
    f = refquant.load_model(float_fc_model(out_name="float_out"))
    m = match_tensors(q, f)
    qsg = q.main
    fc_out = qsg.operators[1].outputs[0]
    assert m[fc_out].how == "structure" and m[fc_out].name == "float_out"
    assert m[qsg.operators[0].outputs[0]].index == f.main.inputs[0]  # QUANTIZE output -> float input
    assert m[qsg.outputs[0]].index == f.main.outputs[0]  # DEQUANTIZE output -> same float tensor


def test_name_match_needs_the_same_producing_op():
    # float: FC -> ADD(0) -> 'y'. The quantized 'y' is made (through DEQUANTIZE) by FC, the float 'y' by ADD:
    # names agree but the ops do not, so structure decides: the quantized output pairs with the float FC's.
    q = quant_fc_model(names="q_")
    f = float_fc_model(names="f_fc", out_name="y", extra_add=True)
    rep = compare(q, f, inputs=[_x(4)], progress=False)
    assert [t.reference.how for t in rep.tensors] == ["structure", "structure", "structure"]
    assert [t.reference.name for t in rep.tensors] == ["x", "f_fc", "f_fc"]
    assert rep.unmatched == []


def _two_branch(quantized: bool) -> bytes:
    """x -> FC_a, FC_b (both on x) -> ADD 'sum' (-> DEQUANTIZE 'y'): the two FCs cannot be told apart."""
    x = tensor((1, 4), "float32", name="x")
    ops = []
    if quantized:
        xq = tensor((1, 4), "int8", scale=S_IN, zero_point=ZP_IN, name="x_q")
        ops.append(operator("QUANTIZE", [x], [xq]))
    outs = []
    for k, w_real in enumerate((W_REAL, -W_REAL)):
        name = f"{'q' if quantized else 'f'}_fc{k}"
        if quantized:
            w = const(np.clip(np.floor(w_real / S_W + 0.5), -127, 127).astype(np.int8), "int8", scale=S_W, name=f"w{k}")
            y = tensor((1, 3), "int8", scale=S_OUT, zero_point=0, name=name)
            ops.append(operator("FULLY_CONNECTED", [xq, w, None], [y]))
        else:
            w = const(w_real, "float32", name=f"w{k}")
            y = tensor((1, 3), "float32", name=name)
            ops.append(operator("FULLY_CONNECTED", [x, w, None], [y]))
        outs.append(y)
    if quantized:
        s = tensor((1, 3), "int8", scale=S_OUT, zero_point=0, name="sum")
        out = tensor((1, 3), "float32", name="y")
        ops += [operator("ADD", outs, [s]), operator("DEQUANTIZE", [s], [out])]
    else:
        ops.append(operator("ADD", outs, [tensor((1, 3), "float32", name="sum")]))
    return model_bytes(ops)


def test_ambiguous_tensors_are_listed_not_guessed():
    rep = compare(_two_branch(True), _two_branch(False), inputs=[_x(4)], progress=False)
    how = {t.name: (t.reference.how if t.reference else None) for t in rep.tensors}
    assert how == {"x_q": "structure", "q_fc0": None, "q_fc1": None, "sum": "name", "y": "structure"}
    assert [t.name for t in rep.unmatched] == ["q_fc0", "q_fc1"]
    fc0 = rep.tensors[1]
    assert fc0.accumulated is None and fc0.local is not None  # local error needs no reference
    assert "unmatched" in rep.table()
    d = json.loads(rep.to_json())
    assert [u["name"] for u in d["unmatched"]] == ["q_fc0", "q_fc1"] and d["tensors"][1]["sqnr_db"] is None


def test_float_model_with_other_input_shape_does_not_correspond():
    with pytest.raises(InputError, match="do not correspond"):
        compare(quant_fc_model(), float_fc_model(width=3), inputs=[_x(4)], progress=False)


def test_quantized_float_model_rejected():
    with pytest.raises(InputError, match="expected a float model"):
        compare(quant_fc_model(), quant_fc_model(float_io=False), inputs=[_x(4)], progress=False)


# ---------------------------------------------------------------------------------------------
# Golden models


def _digits(n: int = N_DIGITS) -> tuple[np.ndarray, np.ndarray]:
    d = np.load(DIGITS)
    return d["x"][:n], d["y"][:n]


def test_golden_digits_ptq_vs_float():
    x, y = _digits()
    rep = compare(model_path("digits_int8_ptq"), model_path("digits_float"), inputs={"input_0": x}, labels=y)
    assert rep.samples == N_DIGITS and rep.batched and not rep.unmatched
    assert [t.op_index for t in rep.tensors] == list(range(12))
    assert rep.outputs[0].opcode == "DEQUANTIZE" and rep.outputs[0] is rep.tensors[-1]
    assert 0.9 <= rep.top1_agreement <= 1.0 and rep.accuracy is not None
    for t in rep.tensors:
        assert t.accumulated.count == t.local.count > 0
        assert t.local.rmse_lsb is not None
    json.loads(rep.to_json())


def test_golden_qat_matches_float_by_structure():
    q, f = refquant.load_model(str(model_path("digits_int8_qat"))), refquant.load_model(str(model_path("digits_float")))
    m = match_tensors(q, f)
    qsg, fsg = q.main, f.main
    for op in qsg.operators:
        assert op.outputs[0] in m, f"op {op.index} {op.opcode} unmatched"
        fop = next((o for o in fsg.operators if m[op.outputs[0]].index in o.outputs), None)
        if op.opcode not in ("QUANTIZE", "DEQUANTIZE"):
            assert fop is not None and fop.opcode == op.opcode


def test_golden_int8_io_has_input_row():
    x, _ = _digits(8)
    rep = compare(model_path("digits_int8_io"), inputs=[x], progress=False)
    assert rep.tensors[0].opcode == "INPUT" and rep.tensors[0].accumulated.max_abs_error_lsb <= 0.5 + 1e-6
    assert rep.outputs[0].dtype == "int8"


def test_single_rounding_runs():
    x, _ = _digits(8)
    rep = compare(model_path("digits_int8_ptq"), inputs=[x], rounding="single", progress=False)
    assert rep.rounding == "single" and rep.outputs[0].accumulated.sqnr_db > 20


# ---------------------------------------------------------------------------------------------
# The CLI


def _write_digits(tmp_path, n=N_DIGITS, key="serving_default_image:0"):
    x, y = _digits(n)
    np.savez(tmp_path / "in.npz", **{key: x})
    np.save(tmp_path / "labels.npy", y)
    return str(tmp_path / "in.npz"), str(tmp_path / "labels.npy")


def test_cli_compare_writes_json_and_html(tmp_path, capsys):
    data, labels = _write_digits(tmp_path)
    rj, rh = tmp_path / "r.json", tmp_path / "r.html"
    argv = ["compare", str(model_path("digits_int8_ptq")), "--float", str(model_path("digits_float"))]
    argv += ["--input", data, "--labels", labels, "--json", str(rj), "--html", str(rh), "--no-progress"]
    assert main(argv + ["--float-accumulation", "sequential"]) == 0
    out = capsys.readouterr().out
    assert "summary:" in out and "FULLY_CONNECTED" in out and "<< worst #1" in out
    assert "double rounding, float sums: sequential" in out
    doc = json.loads(rj.read_text())
    assert doc["float_accumulation"] == "sequential" and "float sums: sequential" in rh.read_text()
    assert doc["samples"] == N_DIGITS and doc["float_model"] == str(model_path("digits_float"))
    assert set(doc) >= {"model", "float_model", "samples", "tensors", "outputs", "top1_agreement", "accuracy"}
    assert set(doc["accuracy"]) == {"float", "quant"}
    html = rh.read_text()
    assert html.startswith("<!DOCTYPE html>") and "Per layer" in html
    assert "http://" not in html and "https://" not in html and "<script" not in html
    assert sorted(os.listdir(tmp_path)) == ["in.npz", "labels.npy", "r.html", "r.json"]


def _cli_error(tmp_path, capsys, argv):
    rc = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    return rc, err


@pytest.mark.parametrize(
    "case, message",
    [
        ("misnamed", "names no model input"),
        ("shape", "must be (N, 1, 8, 8, 1) or (N, 8, 8, 1)"),
        ("nonfinite", "non-finite"),
        ("labels", "labels have 5 entries"),
        ("float", "do not correspond"),
        ("outdir", "does not exist"),
        ("missing", "does not exist"),
    ],
)
def test_cli_bad_input_exit_2_one_line_nothing_written(tmp_path, capsys, case, message):
    data, labels = _write_digits(tmp_path, n=6)
    float_model = str(model_path("digits_float"))
    json_out = str(tmp_path / "r.json")
    if case == "misnamed":
        np.savez(tmp_path / "in.npz", image_typo=np.zeros((6, 8, 8, 1), np.float32))
    elif case == "shape":
        np.savez(tmp_path / "in.npz", input_0=np.zeros((6, 8, 8), np.float32))
    elif case == "nonfinite":
        x = np.zeros((6, 8, 8, 1), np.float32)
        x[2, 3, 4, 0] = np.nan
        np.savez(tmp_path / "in.npz", input_0=x)
    elif case == "labels":
        np.save(tmp_path / "labels.npy", np.zeros(5, np.int64))
    elif case == "float":
        float_model = str(model_path("mobilenetv2_035_96_float"))
    elif case == "outdir":
        json_out = str(tmp_path / "no" / "such" / "dir" / "r.json")
    elif case == "missing":
        data = str(tmp_path / "absent.npz")
    before = sorted(os.listdir(tmp_path))
    argv = ["compare", str(model_path("digits_int8_ptq")), "--float", float_model, "--input", data]
    argv += ["--labels", labels, "--json", json_out, "--html", str(tmp_path / "r.html"), "--no-progress"]
    rc, err = _cli_error(tmp_path, capsys, argv)
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("refquant: error:") and message in err[0], err
    assert sorted(os.listdir(tmp_path)) == before


def test_cli_help_mentions_batch_one_shape(capsys):
    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    assert "input_shape[1:]" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# The oracle: per-layer numbers from LiteRT BUILTIN_REF intermediates


def _independent(qs: list[np.ndarray], rs: list[np.ndarray], scale: float | None) -> dict[str, float]:
    """Plain NumPy metrics over all samples (no refquant code)."""
    q = np.concatenate([a.astype(np.float64).ravel() for a in qs])
    r = np.concatenate([a.astype(np.float64).ravel() for a in rs])
    e = q - r
    out = {
        "mse": float(np.mean(e * e)),
        "max_abs_error": float(np.max(np.abs(e))),
        "mean_error": float(np.mean(e)),
        "sqnr_db": float(10 * np.log10(np.sum(r * r) / np.sum(e * e))) if np.any(e) else math.inf,
        "cosine": float(np.dot(q, r) / np.sqrt(np.dot(q, q) * np.dot(r, r)))
        if np.any(q) and np.any(r)
        else float(not np.any(q) and not np.any(r)),
    }
    if scale is not None:
        out["rmse_lsb"] = math.sqrt(out["mse"]) / scale
        out["max_abs_error_lsb"] = out["max_abs_error"] / scale
    return out


def _litert_runs(litert, path, xs):
    data = open(path, "rb").read()
    runs = []
    for s in range(xs.shape[0]):
        res = litert.run(data, [xs[s : s + 1]])
        assert res.status == "ok", res.message
        runs.append(res)
    return runs


def _real(model: refquant.Model, index: int, value: np.ndarray) -> np.ndarray:
    t = model.main.tensors[index]
    if t.quantization is None or t.dtype == "float32":
        return value.astype(np.float64)
    return (value.astype(np.float64) - float(t.quantization.zero_point[0])) * float(t.quantization.scale[0])


@pytest.mark.oracle
@pytest.mark.parametrize(
    "quant, flt, n",
    [
        ("digits_int8_ptq", "digits_float", N_DIGITS),
        ("digits_int16x8", "digits_float", N_DIGITS),
        ("digits_int8_qat", "digits_float", 12),
        ("digits_dynamic_range", "digits_float", 12),
        ("mobilenetv2_035_96_int8_ptq", "mobilenetv2_035_96_float", 3),
    ],
)
def test_per_layer_metrics_agree_with_litert_intermediates(litert, quant, flt, n):
    if quant.startswith("digits"):
        x, y = _digits(n)
    else:
        x = np.random.default_rng(5).uniform(-1, 1, (n, 96, 96, 3)).astype(np.float32)
        y = None
    rep = compare(model_path(quant), model_path(flt), inputs=[x], labels=y, progress=False)
    qruns, fruns = _litert_runs(litert, model_path(quant), x), _litert_runs(litert, model_path(flt), x)
    qmodel = refquant.load_model(str(model_path(quant)))
    checked = 0
    for t in rep.tensors:
        assert t.reference is not None
        qs = [_real(qmodel, t.index, r.tensors[t.index]) for r in qruns]
        rs = [r.tensors[t.reference.index] for r in fruns]
        scale = t.scale if isinstance(t.scale, float) else None
        want = _independent(qs, rs, scale)
        got = t.accumulated
        where = f"tensor {t.index} {t.short_name} ({t.opcode})"
        assert got.mse == pytest.approx(want["mse"], rel=1e-3, abs=1e-12), where
        assert got.max_abs_error == pytest.approx(want["max_abs_error"], rel=1e-3, abs=1e-9), where
        assert got.mean_error == pytest.approx(want["mean_error"], rel=1e-2, abs=1e-7), where
        assert got.sqnr_db == pytest.approx(want["sqnr_db"], abs=0.01), where
        assert got.cosine == pytest.approx(want["cosine"], abs=1e-6), where
        if scale is not None:
            assert got.rmse_lsb == pytest.approx(want["rmse_lsb"], rel=1e-3), where
            assert got.max_abs_error_lsb == pytest.approx(want["max_abs_error_lsb"], rel=1e-3, abs=1e-6), where
        if got.per_channel is not None:  # per channel along the last axis
            axis = got.per_channel.axis
            for c in range(0, len(got.per_channel.sqnr_db), max(1, len(got.per_channel.sqnr_db) // 4)):
                qc = [np.take(a, c, axis=axis) for a in qs]
                rc = [np.take(a, c, axis=axis) for a in rs]
                w = _independent(qc, rc, scale)
                if math.isfinite(w["sqnr_db"]) and math.isfinite(got.per_channel.sqnr_db[c]):
                    assert got.per_channel.sqnr_db[c] == pytest.approx(w["sqnr_db"], abs=0.02), f"{where} ch {c}"
        checked += 1
    assert checked == len(rep.tensors) > 0
    # end to end: top-1 agreement and accuracy from LiteRT's outputs
    qtop = np.array([np.argmax(r.outputs[0]) for r in qruns])
    ftop = np.array([np.argmax(r.outputs[0]) for r in fruns])
    assert rep.top1_agreement == np.mean(qtop == ftop)
    if y is not None:
        assert rep.accuracy == {"float": np.mean(ftop == y), "quant": np.mean(qtop == y)}


def test_weights_computed_from_constants_are_not_rows():
    """A DEQUANTIZE of constant int8 weights (a hybrid model) is weight data, not a layer: not reported."""
    x = tensor((1, 4), "float32", name="x")
    wq = const(np.array([[10, -20, 30, 5]] * 3, np.int8), "int8", scale=0.01, zero_point=0, name="w_q")
    w = tensor((3, 4), "float32", name="w")
    y = tensor((1, 3), "float32", name="y")
    model = model_bytes([operator("DEQUANTIZE", [wq], [w]), operator("FULLY_CONNECTED", [x, w, None], [y])])
    rep = compare(model, inputs=[_x(5)], progress=False)
    assert [t.name for t in rep.tensors] == ["y"]
    assert rep.tensors[0].local.sqnr_db == math.inf and rep.tensors[0].scale is None
