"""``refquant diff``: planted errors are found, other layouts are read, XNNPACK's first divergence is confirmed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import refquant
from refquant.cli import main
from refquant.diff import diff_dumps, differences, format_diff, trace_command
from refquant.errors import InputError
from refquant.golden import export_golden, write_dump
from tests.golden_models import GOLDEN, model_names, model_path, vectors_path

CONV = "op_conv_2d_s2same_relu6_int8"
DIGITS = "digits_int8_ptq"


def run_cli(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code)


@pytest.fixture(scope="module")
def ref_dump(tmp_path_factory) -> Path:
    """A refquant dump of the golden conv model on 3 samples (constants and accumulators included)."""
    root = tmp_path_factory.mktemp("ref")
    x = np.load(vectors_path(CONV))["input_0"]
    data = np.random.default_rng(1).integers(-128, 128, size=(3, *x.shape), dtype=np.int8)
    np.savez(root / "data.npz", input_0=data)
    export_golden(model_path(CONV), root / "data.npz", root / "dump", constants=True, accumulators=True)
    return root / "dump"


def copy_dump(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def manifest(d: Path) -> dict:
    return json.loads((d / "manifest.json").read_text())


def plant(d: Path, index: int, pos: tuple[int, ...], delta: int) -> None:
    entry = next(t for t in manifest(d)["tensors"] if t["index"] == index)
    arr = np.load(d / entry["file"])
    arr[pos] = arr[pos] + delta
    np.save(d / entry["file"], arr)


# ---- planted one-element errors ------------------------------------------------------------------


@pytest.mark.parametrize("pos", [(0, 0, 0, 0, 0), (2, 0, 5, 1, 6), (1, 0, 3, 4, 2)])
def test_planted_error_is_named(tmp_path, ref_dump, capsys, pos):
    other = copy_dump(ref_dump, tmp_path / "other")
    out = np.load(other / manifest(other)["tensors"][-1]["file"])
    delta = 1 if out[pos] < 127 else -1
    plant(other, 3, pos, delta)
    doc = diff_dumps(ref_dump, other)
    fd = doc["first_divergence"]
    assert not doc["equal"]
    assert (fd["tensor_index"], fd["op_index"], fd["opcode"]) == (3, 0, "CONV_2D")
    assert (fd["sample"], fd["element"]) == (pos[0], list(pos[1:]))
    assert fd["actual"] - fd["expected"] == delta and fd["difference"] == 1 and fd["unit"] == "LSB"
    row = next(r for r in doc["tensors"] if r["tensor_index"] == 3)
    assert row["mismatched"] == 1 and row["total"] == out.size and row["histogram"]["1"] == 1
    assert [r["status"] for r in doc["tensors"] if r["tensor_index"] != 3] == ["equal"] * 3

    assert run_cli(["diff", str(ref_dump), str(other)]) == 1
    text = capsys.readouterr().out
    assert "FIRST DIVERGENCE: operator 0 (CONV_2D), output tensor 3" in text
    assert f"sample {pos[0]}, element {list(pos[1:])}" in text and f"{delta:+} LSB" in text
    cmd = f"refquant trace {model_path(CONV)} --input {ref_dump.parent / 'data.npz'} --tensor 3 --element {','.join(map(str, pos[1:]))} --sample {pos[0]}"
    assert cmd in text

    assert run_cli(["diff", "--json", str(ref_dump), str(other)]) == 1
    j = json.loads(capsys.readouterr().out)
    assert j["first_divergence"] == fd
    assert set(fd) >= {"tensor_index", "name", "op_index", "opcode", "sample", "element", "expected", "actual"}


def test_the_printed_trace_command_explains_the_element(tmp_path, ref_dump, capsys):
    other = copy_dump(ref_dump, tmp_path / "other")
    plant(
        other,
        3,
        (1, 0, 2, 2, 3),
        -1 if np.load(other / manifest(other)["tensors"][-1]["file"])[1, 0, 2, 2, 3] > -128 else 1,
    )
    cmd = trace_command(diff_dumps(ref_dump, other))
    assert cmd is not None
    argv = cmd.split()[1:]
    assert run_cli([*argv, "--json"]) == 0
    tr = json.loads(capsys.readouterr().out)
    expected = np.load(ref_dump / manifest(ref_dump)["tensors"][-1]["file"])[1, 0, 2, 2, 3]
    assert tr["value"] == int(expected) and tr["matches_run"] and tr["element"] == [0, 2, 2, 3]


def test_first_divergence_is_earliest_in_graph_order(tmp_path, ref_dump):
    other = copy_dump(ref_dump, tmp_path / "other")
    plant(other, 3, (0, 0, 0, 0, 0), 1)
    plant(other, 0, (2, 0, 10, 10, 2), 1)  # a graph input: earlier in graph order than op 0's output
    fd = diff_dumps(ref_dump, other)["first_divergence"]
    assert (fd["tensor_index"], fd["op_index"], fd["sample"], fd["element"]) == (0, -1, 2, [0, 10, 10, 2])


def test_tolerance(tmp_path, ref_dump, capsys):
    other = copy_dump(ref_dump, tmp_path / "other")
    plant(
        other,
        3,
        (0, 0, 1, 1, 1),
        2 if np.load(other / manifest(other)["tensors"][-1]["file"])[0, 0, 1, 1, 1] < 126 else -2,
    )
    assert run_cli(["diff", str(ref_dump), str(other), "--tolerance", "1"]) == 1
    assert run_cli(["diff", str(ref_dump), str(other), "--tolerance", "2"]) == 0
    doc = diff_dumps(ref_dump, other, tolerance=2)
    row = next(r for r in doc["tensors"] if r["tensor_index"] == 3)
    assert row["status"] == "within_tolerance" and row["histogram"]["2"] == 1 and doc["equal"]
    capsys.readouterr()
    assert run_cli(["diff", str(ref_dump), str(other), "--tolerance", "-1"]) == 2


def test_missing_tensors_are_reported_not_fatal(tmp_path, ref_dump, capsys):
    other = copy_dump(ref_dump, tmp_path / "other")
    man = manifest(other)
    man["tensors"] = [t for t in man["tensors"] if t["kind"] != "constant"]
    (other / "manifest.json").write_text(json.dumps(man))
    doc = diff_dumps(ref_dump, other)
    assert doc["equal"] and {m["tensor_index"] for m in doc["missing"]} == {1, 2}
    assert run_cli(["diff", str(ref_dump), str(other)]) == 0
    assert "missing in OTHER (2)" in capsys.readouterr().out


# ---- dumps from other implementations ------------------------------------------------------------


def test_simulator_style_bin_dump_by_name(tmp_path, ref_dump):
    """A hand-written dump: raw little-endian .bin, entries by name only, int32 values, one tensor only."""
    sim = tmp_path / "sim"
    sim.mkdir()
    ref_man = manifest(ref_dump)
    out = ref_man["tensors"][-1]
    values = np.load(ref_dump / out["file"]).astype("<i4")
    values[1, 0, 4, 4, 5] += 3
    values.tofile(sim / "conv_out.bin")
    (sim / "manifest.json").write_text(
        json.dumps(
            {
                "samples": 3,
                "tensors": [{"name": out["name"], "file": "conv_out.bin", "dtype": "int32", "shape": out["shape"]}],
            }
        )
    )
    doc = diff_dumps(ref_dump, sim)
    fd = doc["first_divergence"]
    assert (fd["tensor_index"], fd["sample"], fd["element"], fd["difference"]) == (3, 1, [0, 4, 4, 5], 3)
    assert len(doc["missing"]) == 3
    row = next(r for r in doc["tensors"] if r["tensor_index"] == 3)
    assert row["histogram"] == {"0": values.size - 1, "1": 0, "2": 0, "3+": 1}


def test_layout_mismatch_is_a_shape_divergence(tmp_path, ref_dump, capsys):
    other = copy_dump(ref_dump, tmp_path / "other")
    entry = manifest(other)["tensors"][-1]
    arr = np.load(other / entry["file"])
    np.save(other / entry["file"], np.ascontiguousarray(arr.transpose(0, 1, 4, 2, 3)))  # NCHW
    doc = diff_dumps(ref_dump, other)
    fd = doc["first_divergence"]
    assert fd["reason"] == "shape" and fd["actual_shape"] == [1, 8, 6, 6] and fd["expected_shape"] == [1, 6, 6, 8]
    assert run_cli(["diff", str(ref_dump), str(other)]) == 1
    assert "OTHER has shape [1, 8, 6, 6], REF [1, 6, 6, 8]" in capsys.readouterr().out


def test_fewer_samples_in_other(tmp_path, ref_dump):
    other = copy_dump(ref_dump, tmp_path / "other")
    for t in manifest(other)["tensors"]:
        if t["per_sample"]:
            np.save(other / t["file"], np.load(other / t["file"])[:2])
    doc = diff_dumps(ref_dump, other)
    assert doc["equal"] and doc["samples"]["compared"] == 2


def test_float_differences_count_ulps(tmp_path):
    ref = np.array([[1.0, -2.0, 0.0, np.nan, 3.0]], np.float32)
    oth = ref.copy()
    oth[0, 0] = np.nextafter(np.float32(1.0), np.float32(2.0))
    oth[0, 1] = np.nextafter(np.nextafter(np.float32(-2.0), np.float32(0)), np.float32(0))
    oth[0, 2] = -0.0
    d, unit = differences(ref, oth)
    assert unit == "ULP" and d.tolist() == [[1.0, 2.0, 0.0, 0.0, 0.0]]
    oth[0, 4] = np.nan
    assert differences(ref, oth)[0][0, 4] == np.inf
    write_dump(tmp_path / "a", {0: ref})
    write_dump(tmp_path / "b", {0: oth})
    # float tensors are judged in real units against the REF tensor's range (5 here); ULP are extra detail
    row = diff_dumps(tmp_path / "a", tmp_path / "b", float_tolerance=1e-7)["tensors"][0]
    assert row["unit"] == "real" and row["range"] == 5.0 and row["mismatched"] == 1  # only NaN vs 3.0
    assert row["histogram_unit"] == "ULP" and row["histogram"] == {"0": 2, "1": 1, "2": 1, "3+": 1}
    assert row["max_ulp"] == "inf" and row["first_mismatch"]["element"] == [4]
    oth[0, 4] = 3.0
    write_dump(tmp_path / "c", {0: oth})
    row = diff_dumps(tmp_path / "a", tmp_path / "c", float_tolerance=1e-7)["tensors"][0]
    two_ulp = float(np.float32(2.0) - np.nextafter(np.nextafter(np.float32(-2.0), np.float32(0)), np.float32(0)) - 4)
    assert row["status"] == "within_tolerance" and row["max_abs_diff"] == pytest.approx(abs(two_ulp))
    assert row["max_ulp"] == 2 and row["max_rel_range"] == pytest.approx(abs(two_ulp) / 5)
    row = diff_dumps(tmp_path / "a", tmp_path / "c", float_tolerance=4e-8)["tensors"][0]
    assert row["status"] == "mismatch" and row["mismatched"] == 1 and row["first_mismatch"]["ulp"] == 2


@pytest.mark.parametrize(
    "problem", ["no_manifest", "bad_json", "no_tensors", "missing_file", "nothing_in_common", "not_a_dir"]
)
def test_bad_input_exits_2(tmp_path, ref_dump, capsys, problem):
    other = copy_dump(ref_dump, tmp_path / "other")
    if problem == "no_manifest":
        (other / "manifest.json").unlink()
    elif problem == "bad_json":
        (other / "manifest.json").write_text("{not json")
    elif problem == "no_tensors":
        (other / "manifest.json").write_text('{"samples": 1}')
    elif problem == "missing_file":
        (other / manifest(other)["tensors"][-1]["file"]).unlink()
    elif problem == "nothing_in_common":
        (other / "manifest.json").write_text(json.dumps({"tensors": [{"index": 99, "file": "x.npy"}]}))
    else:
        other = tmp_path / "nope"
    assert run_cli(["diff", str(ref_dump), str(other)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("refquant: error:") and err.count("\n") == 1
    with pytest.raises(InputError):
        diff_dumps(ref_dump, other)


def test_dumps_of_different_models_exit_2(tmp_path, ref_dump, capsys):
    other = copy_dump(ref_dump, tmp_path / "other")
    man = manifest(other)
    man["model_sha256"] = "0" * 64
    (other / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(InputError, match="different models"):
        diff_dumps(ref_dump, other)
    assert run_cli(["diff", str(ref_dump), str(other)]) == 2
    assert "the dumps come from different models" in capsys.readouterr().err
    man["input_sha256"] = "1" * 64  # different input data only: comparable, with a warning
    del man["model_sha256"]
    (other / "manifest.json").write_text(json.dumps(man))
    doc = diff_dumps(ref_dump, other)
    assert doc["equal"] and any("different input data" in w for w in doc["warnings"])
    assert run_cli(["diff", str(ref_dump), str(other)]) == 0
    assert "warning: the dumps come from different input data" in capsys.readouterr().out


def test_unknown_entries_in_text_and_json(tmp_path, ref_dump, capsys):
    other = copy_dump(ref_dump, tmp_path / "other")
    man = manifest(other)
    np.save(other / "ghost.npy", np.zeros((3, 2), np.int8))
    man["tensors"].append({"index": 999, "name": "ghost", "file": "ghost.npy"})
    (other / "manifest.json").write_text(json.dumps(man))
    doc = diff_dumps(ref_dump, other)
    assert doc["extra"] == [{"tensor_index": 999, "name": "ghost"}]
    assert any("1 tensor entry REF does not hold" in w for w in doc["warnings"])
    assert run_cli(["diff", str(ref_dump), str(other)]) == 0
    text = capsys.readouterr().out
    assert "in OTHER but not in REF (1): 999 'ghost'" in text and "warning: OTHER has 1 tensor entry" in text
    assert run_cli(["diff", str(ref_dump), str(other), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["extra"] == doc["extra"]


def test_identical_dumps(ref_dump, capsys):
    assert run_cli(["diff", str(ref_dump), str(ref_dump), "--verbose"]) == 0
    text = capsys.readouterr().out
    assert "no divergence" in text and "CONV_2D" in text
    assert "no divergence" in format_diff(diff_dumps(ref_dump, ref_dump))


# ---- LiteRT's default (XNNPACK) resolver, confirmed independently ---------------------------------


def _graph_order(model: refquant.Model) -> list[int]:
    """Graph inputs, then every op's outputs in op order (read from the model, not from refquant's dump)."""
    sg = model.main
    order = list(sg.inputs)
    for op in sg.operators:
        order += [o for o in op.outputs if o not in order]
    return order


@pytest.mark.oracle
def test_xnnpack_dump_first_divergence_confirmed(tmp_path, litert):
    name = DIGITS if DIGITS in model_names() else "op_depthwise_conv_2d_dm2_int8"
    raw = model_path(name).read_bytes()
    model = refquant.load_model(model_path(name))
    n = 8
    if name == DIGITS:
        x = np.load(GOLDEN / "data" / "digits_split.npz")["x"][:n].reshape(n, 1, 8, 8, 1)
    else:
        x0 = np.load(vectors_path(name))["input_0"]
        x = np.random.default_rng(0).integers(-128, 128, size=(n, *x0.shape), dtype=x0.dtype)
    np.savez(tmp_path / "data.npz", input_0=x)
    export_golden(model_path(name), tmp_path / "data.npz", tmp_path / "ref")

    xnn = [litert.run(raw, [x[s]], resolver="BUILTIN") for s in range(n)]
    ref = [litert.run(raw, [x[s]], resolver="BUILTIN_REF") for s in range(n)]
    assert all(r.status == "ok" for r in xnn + ref)
    activations = [t.index for t in model.main.tensors if not t.is_constant]
    write_dump(tmp_path / "xnn", {k: np.stack([r.tensors[k] for r in xnn]) for k in activations}, model=model)

    # independent check: LiteRT REF vs LiteRT XNNPACK, in graph order, first (sample, element) in C order
    expected = None
    for k in _graph_order(model):
        a = np.stack([r.tensors[k] for r in ref])
        b = np.stack([r.tensors[k] for r in xnn])
        bad = a != b
        if bad.any():
            pos = tuple(int(p) for p in np.argwhere(bad)[0])
            expected = (k, pos[0], list(pos[1:]), a[pos].item(), b[pos].item())
            break
    assert expected is not None, "XNNPACK agreed with BUILTIN_REF everywhere: the test needs another model"

    doc = diff_dumps(tmp_path / "ref", tmp_path / "xnn")
    fd = doc["first_divergence"]
    assert (fd["tensor_index"], fd["sample"], fd["element"], fd["expected"], fd["actual"]) == expected
    producer = next(op for op in model.main.operators if expected[0] in op.outputs)
    assert (fd["op_index"], fd["opcode"]) == (producer.index, producer.opcode)
    assert "FIRST DIVERGENCE: operator" in format_diff(doc)
