"""``refquant golden``: dumps equal LiteRT BUILTIN_REF's intermediates; layout, formats, atomicity; input loading."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

import refquant
from refquant.cli import main
from refquant.engine import Engine
from refquant.errors import InputError, UnsupportedOpError
from refquant.golden import export_golden, to_jsonable, write_dump
from refquant.inputs import load_inputs, load_raw_inputs, sample
from refquant.quantization import quantize
from tests.golden_models import manifest, model_path, vectors_path
from tests.opcheck import assert_equal_arrays

MODELS = [
    m["name"] for m in manifest()["models"] if model_path(m["name"]).exists() and vectors_path(m["name"]).exists()
]
CONV = "op_conv_2d_s2same_relu6_int8"
TENSOR_KEYS = {"index", "name", "op_index", "opcode", "dtype", "shape", "scale", "zero_point", "file"}
FLOAT_RTOL, FLOAT_ATOL = 1e-4, 1e-6  # as tests/test_golden_models.py (float kernels sum in another order)


def vector_inputs(name: str) -> dict[str, np.ndarray]:
    vec = np.load(vectors_path(name))
    return {k: vec[k] for k in vec.files if k.startswith("input_")}


def conv_data(n: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
    x = vector_inputs(CONV)["input_0"]
    rng = np.random.default_rng(seed)
    return {"input_0": rng.integers(-128, 128, size=(n, *x.shape), dtype=np.int8)}  # (N, 1, 11, 11, 3)


# ---- golden export equals LiteRT BUILTIN_REF's intermediates -----------------------------------


@pytest.mark.parametrize("name", MODELS)
def test_golden_export_equals_litert_ref_intermediates(tmp_path, name):
    vec = np.load(vectors_path(name))
    try:
        man = export_golden(model_path(name), vector_inputs(name), tmp_path / "d", accumulators=True)
    except UnsupportedOpError as exc:
        pytest.skip(f"op not implemented yet: {exc}")
    assert man["samples"] == 1 and man["rounding"] == "double"
    checked = 0
    for t in man["tensors"]:
        assert TENSOR_KEYS <= set(t)
        arr = np.load(tmp_path / "d" / t["file"])
        assert arr.shape == (1, *t["shape"]) and str(arr.dtype) == t["dtype"]
        key = f"tensor_{t['index']}"
        if key not in vec.files:
            continue
        label = f"{name}: tensor {t['index']} {t['name']!r} (op {t['op_index']} {t['opcode']})"
        expected = vec[key]
        if expected.dtype.kind == "f":
            bound = FLOAT_RTOL * float(np.abs(expected).max(initial=0)) + FLOAT_ATOL
            assert arr[0].shape == expected.shape and float(np.abs(arr[0] - expected).max(initial=0)) <= bound, label
        else:
            assert_equal_arrays(label, expected, arr[0])
        checked += 1
    assert checked == len([t for t in man["tensors"] if f"tensor_{t['index']}" in vec.files]) > 0
    model = refquant.load_model(model_path(name))
    assert len(man["ops"]) == len(model.main.operators)
    for op, entry in zip(model.main.operators, man["ops"]):
        assert (entry["index"], entry["opcode"], entry["inputs"], entry["outputs"]) == (
            op.index,
            op.opcode,
            list(op.inputs),
            list(op.outputs),
        )
        json.dumps(entry["params"], allow_nan=False)  # strict JSON
        if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "BATCH_MATMUL", "TRANSPOSE_CONV"):
            assert entry["accumulators"], f"{name}: op {op.index} {op.opcode} dumped no accumulator"
            for acc in entry["accumulators"].values():
                a = np.load(tmp_path / "d" / acc["file"])
                assert a.shape == (1, *acc["shape"]) and a.dtype.kind in "if"


@pytest.mark.oracle
def test_several_samples_equal_litert_ref_per_sample(tmp_path, litert):
    data = conv_data(4, seed=3)
    man = export_golden(model_path(CONV), data, tmp_path / "d")
    assert man["samples"] == 4
    raw = model_path(CONV).read_bytes()
    for s in range(4):
        res = litert.run(raw, [data["input_0"][s]])
        assert res.status == "ok"
        for t in man["tensors"]:
            arr = np.load(tmp_path / "d" / t["file"])
            assert_equal_arrays(f"sample {s} tensor {t['index']}", res.tensors[t["index"]], arr[s])


# ---- manifest contents -------------------------------------------------------------------------


def test_manifest_fields_and_params(tmp_path):
    export_golden(model_path(CONV), conv_data(2), tmp_path / "d", accumulators=True, constants=True)
    man = json.loads((tmp_path / "d" / "manifest.json").read_text())
    assert set(man) >= {"model", "model_sha256", "refquant_version", "rounding", "samples", "tensors", "ops"}
    assert man["model_sha256"] == __import__("hashlib").sha256(model_path(CONV).read_bytes()).hexdigest()
    assert man["refquant_version"] == refquant.__version__ and man["samples"] == 2
    kinds = {t["index"]: t for t in man["tensors"]}
    assert kinds[0]["kind"] == "input" and kinds[0]["op_index"] == -1 and kinds[0]["opcode"] is None
    consts = [t for t in man["tensors"] if t["kind"] == "constant"]
    assert consts and all(not t["per_sample"] for t in consts)
    for t in consts:
        assert np.load(tmp_path / "d" / t["file"]).shape == tuple(t["shape"])  # constants: no sample axis
    out = man["tensors"][-1]
    assert out["op_index"] == 0 and out["opcode"] == "CONV_2D" and out["kind"] == "output"
    params = man["ops"][0]["params"]
    model = refquant.load_model(model_path(CONV))
    run = Engine(model).run([conv_data(2)["input_0"][0]])
    want = run.op_data[0].params()
    assert params["multiplier"] == want["multiplier"].tolist() and params["shift"] == want["shift"].tolist()
    assert params["output_offset"] == out["zero_point"][0]
    # graph order: inputs, constants, op outputs
    assert [t["op_index"] for t in man["tensors"]] == sorted(t["op_index"] for t in man["tensors"])


def test_large_parameter_arrays_go_to_files(tmp_path):
    name = "transformer_block_int16x8"
    if name not in MODELS:
        pytest.skip(f"{name} is not in golden/")
    man = export_golden(model_path(name), vector_inputs(name), tmp_path / "d", formats=("npy", "bin"))
    refs = [(op, key, v) for op in man["ops"] for key, v in op["params"].items() if isinstance(v, dict) and "file" in v]
    assert refs, "the int16 LUT ops' 513-entry tables should be stored as files"
    model = refquant.load_model(model_path(name))
    run = Engine(model).run([vector_inputs(name)["input_0"][0]])
    for op, key, ref in refs:
        arr = np.load(tmp_path / "d" / ref["file"])
        assert list(arr.shape) == ref["shape"] and str(arr.dtype) == ref["dtype"]
        np.testing.assert_array_equal(arr, np.asarray(run.op_data[op["index"]].params()[key]))
        raw = (tmp_path / "d" / ref["files"]["bin"]).read_bytes()
        np.testing.assert_array_equal(np.frombuffer(raw, arr.dtype.newbyteorder("<")), arr.reshape(-1))


def test_accumulator_matches_traced_accumulator(tmp_path):
    from refquant.tracer import trace_element

    data = conv_data(2, seed=5)
    man = export_golden(model_path(CONV), data, tmp_path / "d", accumulators=True)
    acc_entry = man["ops"][0]["accumulators"]["acc"]
    acc = np.load(tmp_path / "d" / acc_entry["file"])
    for s, element in [(0, (0, 0, 0, 0)), (1, (0, 5, 2, 7)), (1, (0, 3, 3, 1))]:
        tr = trace_element(model_path(CONV), data, 3, element, sample=s)
        assert {st.name: st.value for st in tr.steps}["acc"] == int(acc[(s, *element)])


def test_rounding_is_recorded_and_used(tmp_path):
    data = conv_data(2, seed=9)
    export_golden(model_path(CONV), data, tmp_path / "double")
    man = export_golden(model_path(CONV), data, tmp_path / "single", rounding="single")
    assert man["rounding"] == "single"
    model = refquant.load_model(model_path(CONV))
    out = man["tensors"][-1]["file"]
    it = refquant.Interpreter(model=model, rounding="single")
    it.allocate_tensors()
    it.set_tensor(0, data["input_0"][1])
    it.invoke()
    np.testing.assert_array_equal(np.load(tmp_path / "single" / out)[1], it.get_tensor(3))


def test_to_jsonable():
    doc = to_jsonable({"a": np.int8(-3), "b": np.float32(0.5), "c": np.arange(3, dtype=np.int32), "d": (1, np.inf)})
    assert doc == {"a": -3, "b": 0.5, "c": [0, 1, 2], "d": [1, "inf"]}
    json.dumps(doc, allow_nan=False)


# ---- formats -----------------------------------------------------------------------------------


def test_bin_files_are_little_endian_raw(tmp_path):
    man = export_golden(model_path(CONV), conv_data(2), tmp_path / "d", formats=("bin",), accumulators=True)
    assert man["formats"] == ["npy", "bin"]
    entries = list(man["tensors"]) + [a for op in man["ops"] for a in op["accumulators"].values()]
    for t in entries:
        arr = np.load(tmp_path / "d" / t["file"])
        raw = (tmp_path / "d" / t["files"]["bin"]).read_bytes()
        assert raw == arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        back = np.frombuffer(raw, np.dtype(t["dtype"]).newbyteorder("<")).reshape(-1, *t["shape"])
        np.testing.assert_array_equal(back, arr)


def _c_arrays(text: str) -> dict[str, list[str]]:
    return {
        m.group(2): [v.strip() for v in m.group(3).replace("\n", " ").split(",") if v.strip()]
        for m in re.finditer(r"static const (\w+) (\w+)\[\d+\] = \{(.*?)\};", text, flags=re.S)
    }


def test_c_headers_hold_the_values(tmp_path):
    name = "digits_float" if "digits_float" in MODELS else CONV
    data = vector_inputs(name) if name != CONV else conv_data(2)
    man = export_golden(model_path(name), data, tmp_path / "d", formats=("npy", "c"), constants=True)
    headers = sorted((tmp_path / "d" / "c").glob("*.h"))
    assert len(headers) >= len(man["tensors"])
    for t in man["tensors"]:
        text = (tmp_path / "d" / t["files"]["c"]).read_text()
        guard = re.search(r"#ifndef (\w+)", text).group(1)
        assert f"#define {guard}" in text and text.rstrip().endswith(f"#endif /* {guard} */")
        ((arr_name, values),) = _c_arrays(text).items()
        arr = np.load(tmp_path / "d" / t["file"]).reshape(-1)
        assert len(values) == arr.size
        if arr.dtype.kind == "f":
            parsed = np.array([float(v.rstrip("f")) for v in values], dtype=np.float64).astype(arr.dtype)
            np.testing.assert_array_equal(parsed, arr)
        else:
            np.testing.assert_array_equal(np.array([int(eval(v)) for v in values]), arr.astype(np.int64))


def test_c_headers_compile(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    man = export_golden(
        model_path(CONV), conv_data(2), tmp_path / "d", formats=("c",), constants=True, accumulators=True
    )
    cdir = tmp_path / "d" / "c"
    out_name = re.search(
        r"static const int8_t (\w+)\[", (tmp_path / "d" / man["tensors"][-1]["files"]["c"]).read_text()
    )
    assert out_name is not None
    includes = "".join(f'#include "{h.name}"\n' for h in sorted(cdir.glob("*.h")))
    prog = includes + (
        "#include <stdio.h>\nint main(void) {\n"
        f"  for (int i = 0; i < (int)(sizeof {out_name.group(1)} / sizeof {out_name.group(1)}[0]); ++i)"
        f' printf("%d\\n", {out_name.group(1)}[i]);\n  return 0;\n}}\n'
    )
    (cdir / "main.c").write_text(prog)
    exe = tmp_path / "main"
    subprocess.run([cc, "-std=c99", "-Wall", "-Werror", "-pedantic", "-o", str(exe), str(cdir / "main.c")], check=True)
    printed = np.array(subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split(), int)
    np.testing.assert_array_equal(printed, np.load(tmp_path / "d" / man["tensors"][-1]["file"]).reshape(-1))


# ---- atomic writes, refusing to overwrite --------------------------------------------------------


def test_existing_non_empty_dir_is_refused_unless_force(tmp_path, capsys):
    out = tmp_path / "d"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    argv = ["golden", str(model_path(CONV)), "--input", str(tmp_path / "x.npz"), "--out", str(out)]
    np.savez(tmp_path / "x.npz", **conv_data(2))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not empty" in err and "--force" in err
    assert (out / "keep.txt").exists()
    assert main([*argv, "--force"]) == 0
    assert not (out / "keep.txt").exists() and (out / "manifest.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "x.npz"]  # no temporary directories left


def test_empty_existing_dir_is_used(tmp_path):
    (tmp_path / "d").mkdir()
    export_golden(model_path(CONV), conv_data(1), tmp_path / "d")
    assert (tmp_path / "d" / "manifest.json").exists()


def test_failure_leaves_nothing_behind(tmp_path, monkeypatch):
    calls = {"n": 0}
    real_run = Engine.run

    def failing(self, inputs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise MemoryError("simulated failure in sample 1")
        return real_run(self, inputs)

    monkeypatch.setattr(Engine, "run", failing)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "old.txt").write_text("old dump")
    with pytest.raises(MemoryError):
        export_golden(model_path(CONV), conv_data(3), tmp_path / "d", force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["old.txt"]  # the old dump is untouched


def run_cli(argv: list[str]) -> int:
    """``refquant ARGV`` in-process; argparse usage errors exit via SystemExit."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--format", "npy,hex"], "unknown format"),
        (["--samples", "0"], "--samples"),
        (["--rounding", "triple"], "invalid choice"),
    ],
)
def test_cli_errors_exit_2(tmp_path, capsys, extra, message):
    np.savez(tmp_path / "x.npz", **conv_data(1))
    argv = ["golden", str(model_path(CONV)), "--input", str(tmp_path / "x.npz"), "--out", str(tmp_path / "d"), *extra]
    assert run_cli(argv) == 2
    err = capsys.readouterr().err
    assert message in err and not (tmp_path / "d").exists()


def test_cli_golden_writes_and_reports(tmp_path, capsys):
    np.savez(tmp_path / "x.npz", **conv_data(2))
    argv = ["golden", str(model_path(CONV)), "--input", str(tmp_path / "x.npz"), "--out", str(tmp_path / "d")]
    assert main([*argv, "--format", "npy,bin,c", "--accumulators", "--samples", "1"]) == 0
    out = capsys.readouterr().out
    assert "2 tensors x 1 sample(s)" in out  # the input and the output (constants only with --constants)
    man = json.loads((tmp_path / "d" / "manifest.json").read_text())
    assert man["samples"] == 1 and man["formats"] == ["npy", "bin", "c"] and "1 accumulators" in out


def test_write_dump_for_other_implementations(tmp_path):
    model = refquant.load_model(model_path(CONV))
    arrays = {3: np.zeros((2, 1, 6, 6, 8), np.int8), 0: np.ones((2, 1, 11, 11, 3), np.int8)}
    man = write_dump(tmp_path / "o", arrays, model=model, info={"runtime": "test"})
    assert man["runtime"] == "test" and man["samples"] == 2
    assert [(t["index"], t["opcode"]) for t in man["tensors"]] == [(0, None), (3, "CONV_2D")]
    with pytest.raises(InputError, match="same number of samples"):
        write_dump(tmp_path / "p", {0: np.zeros((2, 3)), 1: np.zeros((3, 3))})


# ---- input conventions (refquant.inputs) ---------------------------------------------------------


def test_inputs_keys_shapes_and_quantization(tmp_path):
    model = refquant.load_model(model_path("digits_int8_io"))
    t = model.main.tensors[model.main.inputs[0]]
    x = np.random.default_rng(0).random((3, 8, 8, 1), dtype=np.float32)
    scale, zp = t.quantization.scale[0], t.quantization.zero_point[0]
    want = quantize(x.reshape(3, 1, 8, 8, 1), scale, zp, np.int8)
    for key in (t.name, "input_0", *[n for s in model.signatures for n, i in s.inputs if i == t.index]):
        got = load_inputs(model, {key: x})[0]  # (N, *shape[1:]): the batch axis of 1 may be left out
        assert got.dtype == np.int8 and got.shape == (3, 1, 8, 8, 1)
        np.testing.assert_array_equal(got, want)
    q = want.copy()
    assert load_inputs(model, {"input_0": q})[0] is q  # already quantized: passed through unchanged
    np.savez(tmp_path / "x.npz", pixels=x, labels=np.arange(3))
    np.testing.assert_array_equal(load_inputs(model, f"{tmp_path / 'x.npz'}:pixels")[0], want)
    np.save(tmp_path / "x.npy", x)
    np.testing.assert_array_equal(load_inputs(model, tmp_path / "x.npy")[0], want)
    assert [a.shape[0] for a in sample(load_inputs(model, {"input_0": x}), 2)] == [2]
    assert load_raw_inputs(model, {"input_0": x})[0].quantized_here


@pytest.mark.parametrize(
    "data, message",
    [
        ({"input_0": np.zeros((2, 8, 8, 1), np.int32)}, "already-quantized int8"),
        ({"input_0": np.zeros((2, 8, 8, 2), np.float32)}, "must be (N, 1, 8, 8, 1) or (N, 8, 8, 1)"),
        ({"x": np.zeros((2, 8, 8, 1), np.float32)}, "names no model input"),
        ({}, "no array for model input 0"),
        ({"input_0": np.zeros((0, 8, 8, 1), np.float32)}, "0 samples"),
        ({"input_0": np.array(["a"])}, "expected numbers"),
    ],
)
def test_inputs_errors(data, message):
    model = refquant.load_model(model_path("digits_int8_io"))
    with pytest.raises(InputError, match=re.escape(message)):
        load_inputs(model, data)


def test_inputs_missing_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_inputs(refquant.load_model(model_path(CONV)), tmp_path / "nope.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="cannot read"):
        load_inputs(refquant.load_model(model_path(CONV)), tmp_path / "bad.npz")
