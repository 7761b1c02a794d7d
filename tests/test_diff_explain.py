"""``refquant diff --isolate --explain`` and layout hints, on real runtime dumps and planted faults."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import refquant
from refquant.cli import main
from refquant.diff import diff_dumps, format_diff, format_isolated, isolate_operators, layout_hint
from refquant.engine import Engine
from refquant.golden import export_golden, write_dump
from tests.golden_models import model_path, vectors_path

DIGITS = "digits_int8_ptq"
MOBILENET = "mobilenetv2_035_96_int8_ptq"


def run_cli(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code)


def _inputs(name: str, n: int) -> np.ndarray:
    """``n`` samples (stacked on the batch axis): the golden vector and rolled, scaled copies of it."""
    x = np.load(vectors_path(name))["input_0"]
    out = [x]
    for s in range(1, n):
        y = np.roll(x, s * 3, axis=tuple(range(1, x.ndim)))
        out.append((y.astype(np.float64) * (1 - 0.1 * s)).astype(x.dtype))
    return np.concatenate(out)


def _ref_dump(tmp_path: Path, name: str, n: int, **kw) -> tuple[Path, np.ndarray]:
    x = _inputs(name, n)
    np.savez(tmp_path / "data.npz", input_0=x)
    export_golden(model_path(name), tmp_path / "data.npz", tmp_path / "ref", **kw)
    return tmp_path / "ref", x


def _simulated(model: refquant.Model, x: np.ndarray, broken: int, element: int) -> dict[int, np.ndarray]:
    """A device that runs every operator right, except one wrong element of operator ``broken``'s output;
    everything after it is computed, correctly, from the wrong value."""
    eng = Engine(model)
    sg = model.main
    values = {i: t.data for i, t in enumerate(sg.tensors) if t.data is not None}
    values[sg.inputs[0]] = x
    for op in sg.operators:
        outs = eng.eval_op(op.index, [values[i] if i >= 0 else None for i in op.inputs])
        if op.index == broken:
            out = np.array(outs[0])
            flat = out.reshape(-1)
            flat[element] = flat[element] + 1 if flat[element] < np.iinfo(out.dtype).max else flat[element] - 1
            outs = [out, *outs[1:]]
        values.update(zip(op.outputs, outs))
    return values


def test_reference_dump_against_itself_flags_nothing(tmp_path, capsys):
    ref, _ = _ref_dump(tmp_path, DIGITS, 2)
    doc = isolate_operators(ref, ref, explain=True)
    assert doc["isolated"] == [] and doc["explained"]
    assert all(e["status"] == "equal" for e in doc["operators"])
    assert run_cli(["diff", str(ref), str(ref), "--explain"]) == 0
    assert "no operator is wrong given its inputs" in capsys.readouterr().out


@pytest.mark.parametrize("broken,element", [(0, 5), (2, 0), (3, 7)])
def test_planted_corruption_is_unexplained_at_exactly_its_operator(tmp_path, capsys, broken, element):
    ref, x = _ref_dump(tmp_path, DIGITS, 2)
    model = refquant.load_model(model_path(DIGITS))
    runs = [_simulated(model, x[s : s + 1], broken, element) for s in range(2)]
    act = [t.index for t in model.main.tensors if not t.is_constant]
    write_dump(tmp_path / "dev", {i: np.stack([r[i] for r in runs]) for i in act}, model=model)
    doc = isolate_operators(ref, tmp_path / "dev", explain=True)
    assert [e["op_index"] for e in doc["isolated"]] == [broken]
    e = doc["isolated"][0]
    assert e["explanation"] == "unexplained" and e["mismatched"] == 2 and e["max_lsb"] == 1
    ex = e["explain"]
    assert ex["matches"] == [] and ex["envelope_lsb"] == 1
    names = {t["name"] for t in ex["tried"]}
    assert {"litert-ref", "litert-optimized", "litert-xnnpack", "tflm", "litert-ref single rounding"} <= names
    assert {"exact, round half to even", "exact, round toward zero"} <= names
    assert all(t["status"] in ("differs", "refused") for t in ex["tried"])
    assert run_cli(["diff", str(ref), str(tmp_path / "dev"), "--explain"]) == 1
    text = capsys.readouterr().out
    assert f"operator {broken} ({model.main.operators[broken].opcode})" in text and "UNEXPLAINED" in text
    assert run_cli(["diff", str(ref), str(tmp_path / "dev"), "--explain", "--json"]) == 1
    got = json.loads(capsys.readouterr().out)
    assert [(i["op_index"], i["explanation"]) for i in got["isolated"]] == [(broken, "unexplained")]


def test_single_rounding_dump_is_explained(tmp_path):
    ref, _ = _ref_dump(tmp_path, DIGITS, 3)
    export_golden(model_path(DIGITS), tmp_path / "data.npz", tmp_path / "single", rounding="single")
    doc = isolate_operators(ref, tmp_path / "single", explain=True)
    assert doc["isolated"], "single rounding agreed with double rounding on every op: pick other inputs"
    for e in doc["isolated"]:
        assert "litert-ref single rounding" in e["explain"]["matches"], (e["op_index"], e["explain"]["closest"])


@pytest.mark.oracle
@pytest.mark.parametrize("name", [MOBILENET, DIGITS])
def test_litert_optimized_dump_is_isolated_and_explained(tmp_path, litert, name):
    """A real BUILTIN_WITHOUT_DEFAULT_DELEGATES dump with every intermediate: exactly the operators whose inputs
    agree with REF and whose outputs do not are local, and each local operator is explained by litert-optimized."""
    n = 3
    ref, x = _ref_dump(tmp_path, name, n)
    raw = model_path(name).read_bytes()
    model = refquant.load_model(model_path(name))
    opt = [litert.run(raw, [x[s : s + 1]], resolver="BUILTIN_WITHOUT_DEFAULT_DELEGATES") for s in range(n)]
    lref = [litert.run(raw, [x[s : s + 1]], resolver="BUILTIN_REF") for s in range(n)]
    assert all(r.status == "ok" for r in opt + lref)
    act = [t.index for t in model.main.tensors if not t.is_constant]
    write_dump(tmp_path / "opt", {i: np.stack([r.tensors[i] for r in opt]) for i in act}, model=model)

    doc = isolate_operators(ref, tmp_path / "opt", explain=True)
    local = {e["op_index"] for e in doc["isolated"]}
    assert local, f"{name}: the optimized kernels agreed with REF everywhere; the test needs another model"
    sg = model.main

    def same(i: int) -> bool:
        return all(np.array_equal(a.tensors[i], b.tensors[i]) for a, b in zip(opt, lref))

    for op in sg.operators:
        ins_equal = all(same(i) for i in op.inputs if i >= 0 and not sg.tensors[i].is_constant)
        outs_equal = all(same(o) for o in op.outputs)
        if ins_equal and not outs_equal:
            assert op.index in local, f"operator {op.index} ({op.opcode}) differs on equal inputs but is not flagged"
        if ins_equal and outs_equal:
            assert op.index not in local, f"operator {op.index} ({op.opcode}) is flagged but agrees"
    for e in doc["isolated"]:
        assert "litert-optimized" in e["explain"]["matches"], (e["op_index"], e["opcode"], e["explain"]["closest"])
    text = format_isolated(doc)
    assert "explained by" in text and "UNEXPLAINED" not in text


# ---- layout and mapping hints -------------------------------------------------------------------


def test_nchw_dump_is_recognised(tmp_path, capsys):
    ref, _ = _ref_dump(tmp_path, DIGITS, 2)
    man = json.loads((ref / "manifest.json").read_text())
    other = tmp_path / "nchw"
    other.mkdir()
    entries = []
    rank4 = []
    for t in man["tensors"]:
        if not t["per_sample"]:
            continue
        arr = np.load(ref / t["file"])
        if arr.ndim == 5 and arr.shape[-1] > 1 and arr.shape[2] * arr.shape[3] > 1:
            arr = np.ascontiguousarray(arr.transpose(0, 1, 4, 2, 3))  # NCHW buffers, declared NHWC
            rank4.append(t["index"])
        fname = f"t{t['index']}.bin"
        arr.tofile(other / fname)
        entries.append({"index": t["index"], "file": fname, "dtype": t["dtype"], "shape": t["shape"]})
    assert rank4
    (other / "manifest.json").write_text(json.dumps({"samples": 2, "tensors": entries}))
    doc = diff_dumps(ref, other)
    rows = {r["tensor_index"]: r for r in doc["tensors"]}
    for i in rank4:
        hint = rows[i]["layout_hint"]
        assert hint["kind"] == "transpose" and hint["layout"] == "NCHW" and hint["mismatched_after"] == 0, hint
    assert doc["first_divergence"]["layout_hint"]["layout"] == "NCHW"
    assert run_cli(["diff", str(ref), str(other)]) == 1
    assert "layout: OTHER holds the tensor as NCHW where REF holds NHWC" in capsys.readouterr().out


def test_layout_hints_on_arrays():
    rng = np.random.default_rng(3)
    ref = rng.integers(-128, 128, size=(1, 6, 5, 4)).astype(np.int8)
    assert layout_hint(ref, ref.copy()) is None
    h = layout_hint(ref, np.ascontiguousarray(ref.transpose(0, 3, 1, 2)).reshape(ref.shape))
    assert h["layout"] == "NCHW" and h["mismatched_after"] == 0
    h = layout_hint(ref, ref.transpose(0, 2, 1, 3))  # other shape, same element count: a re-ordering
    assert h["kind"] == "transpose" and h["layout"] == "NWHC"
    w = rng.integers(-127, 128, size=(8, 3, 3, 4)).astype(np.int8)  # OHWI filter stored HWIO
    h = layout_hint(w, np.ascontiguousarray(w.transpose(1, 2, 3, 0)).reshape(w.shape), constant=True)
    assert h["layout"] == "HWIO"
    perm = np.array([1, 0, 3, 2])
    h = layout_hint(ref, ref[..., perm])
    assert h["kind"] == "channel_permutation" and h["permutation"] == perm.tolist()
    noisy = ref[..., perm].astype(np.int16)
    noisy[0, 0, 0, 0] += 1  # a rounding difference on top of the permutation: still named, 1 left
    h = layout_hint(ref.astype(np.int16), noisy)
    assert h["kind"] == "channel_permutation" and h["mismatched_after"] == 1
    u = (ref.astype(np.int16) + 128).astype(np.uint8)
    h = layout_hint(ref.astype(np.int16), u.astype(np.int16))
    assert h["kind"] == "offset" and h["offset"] == 128 and "signed/unsigned" in h["description"]
    h = layout_hint(ref.astype(np.int16), ref.astype(np.int16) - 5, zero_point=(5,))
    assert h["offset"] == -5 and "zero point 5" in h["description"]
    scrambled = rng.permutation(ref.reshape(-1)).reshape(ref.shape)
    assert layout_hint(ref, scrambled) is None


def test_float_rows_in_real_units_in_text(tmp_path):
    ref = np.linspace(-4, 4, 12, dtype=np.float32).reshape(1, 3, 4)
    oth = ref.copy()
    oth[0, 1, 2] += 0.01
    write_dump(tmp_path / "a", {0: ref})
    write_dump(tmp_path / "b", {0: oth})
    doc = diff_dumps(tmp_path / "a", tmp_path / "b")
    row = doc["tensors"][0]
    assert row["unit"] == "real" and row["max_abs_diff"] == pytest.approx(0.01, rel=1e-3)
    assert row["max_rel_range"] == pytest.approx(0.01 / 8, rel=1e-3) and row["max_ulp"] > 1000
    text = format_diff(doc)
    assert "0.01 (0.00125 of range)" in text and "ULP" in text
    assert diff_dumps(tmp_path / "a", tmp_path / "b", float_tolerance=0.002)["equal"]


def test_isolate_reads_wider_integer_dumps(tmp_path):
    """A simulator that stores int8 tensors as int32 is isolated like one that stores int8; a value that does not
    fit int8 is a difference where it is an output and an error where an operator reads it."""
    ref, x = _ref_dump(tmp_path, DIGITS, 2)
    model = refquant.load_model(model_path(DIGITS))
    man = json.loads((ref / "manifest.json").read_text())
    wide = {t["index"]: np.load(ref / t["file"]) for t in man["tensors"] if t["per_sample"]}
    wide = {i: a.astype(np.int32) if a.dtype == np.int8 else a for i, a in wide.items()}
    write_dump(tmp_path / "wide", wide, model=model)
    doc = isolate_operators(ref, tmp_path / "wide", explain=True)
    assert doc["isolated"] == [] and all(e["status"] == "equal" for e in doc["operators"])
    out3 = model.main.operators[3].outputs[0]
    wide[out3] = wide[out3].copy()
    wide[out3].reshape(-1)[0] = 300
    write_dump(tmp_path / "wide2", wide, model=model, force=True)
    doc = isolate_operators(ref, tmp_path / "wide2")
    assert [e["op_index"] for e in doc["isolated"]] == [3] and doc["isolated"][0]["max_lsb"] == 300 - int(
        np.load(ref / next(t["file"] for t in man["tensors"] if t["index"] == out3)).reshape(-1)[0]
    )
    readers = [e for e in doc["operators"] if out3 in model.main.operators[e["op_index"]].inputs]
    assert readers and all(e["status"] == "error" and "int32" in e["reason"] for e in readers)


@pytest.mark.parametrize("bad", ["-1", "nan", "inf", "x"])
def test_bad_float_tolerance_exits_2(tmp_path, capsys, bad):
    ref, _ = _ref_dump(tmp_path, DIGITS, 1)
    assert run_cli(["diff", str(ref), str(ref), "--explain", "--float-tolerance", bad]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err and "float" in err
    with pytest.raises(refquant.errors.InputError):
        isolate_operators(ref, ref, float_tolerance=float("nan") if bad == "x" else float(bad))
