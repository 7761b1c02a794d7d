"""Hostile input files end in a named refquant error, read nothing unbounded and never hang.

Each test crafts its file: a .npz whose one member inflates to gigabytes, a .npy header declaring 2^40
elements, a model path that is /dev/zero or a FIFO, dump manifests with malformed fields or nesting deep
enough to exhaust the parser, sparse raw files far larger than their data.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import zipfile

import numpy as np
import pytest

from refquant.cli import main
from refquant.diff import diff_dumps, load_dump
from refquant.errors import InputError
from refquant.golden import export_golden
from refquant.inputs import read_arrays
from refquant.testing import op_model, tensor
from refquant.tflite.reader import load_model


def npy_header(shape: tuple[int, ...], dtype: str = "<i1") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def test_npy_header_declaring_huge_array_is_refused_before_reading(tmp_path):
    p = tmp_path / "x.npy"
    p.write_bytes(npy_header((1 << 20, 1 << 20)) + b"\0" * 16)
    with pytest.raises(InputError, match="above the"):
        read_arrays(p)
    p.write_bytes(npy_header((1000,)) + b"\0" * 16)
    with pytest.raises(InputError, match="the file holds"):
        read_arrays(p)


def test_npz_bomb_is_refused_from_its_declared_size(tmp_path, monkeypatch):
    import refquant.inputs

    monkeypatch.setattr(refquant.inputs, "MAX_ARRAY_BYTES", 1 << 20)  # the bound, scaled down for the test
    p = tmp_path / "bomb.npz"
    with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("x.npy", npy_header((8 << 20,)) + b"\0" * (8 << 20))
        zf.writestr("small.npy", npy_header((4,)) + b"\1\2\3\4")
    assert p.stat().st_size < 64 << 10
    with pytest.raises(InputError, match="decompressed"):
        read_arrays(p)
    got = read_arrays(f"{p}:small")  # selecting another member reads only that one
    assert got["input_0"].tolist() == [1, 2, 3, 4]


def test_object_and_structured_npy_are_refused(tmp_path):
    p = tmp_path / "s.npy"
    np.save(p, np.zeros(3, dtype=[("a", "i4"), ("b", "f4")]))
    with pytest.raises(InputError, match="plain numeric"):
        read_arrays(p)


@pytest.mark.parametrize("kind", ["devzero", "fifo", "directory"])
def test_model_path_must_be_a_regular_file(tmp_path, kind, capsys):
    if kind == "devzero":
        path = "/dev/zero"
        if not os.path.exists(path):
            pytest.skip("no /dev/zero")
    elif kind == "fifo":
        path = str(tmp_path / "fifo")
        os.mkfifo(path)
    else:
        path = str(tmp_path)
    with pytest.raises(InputError, match="not a regular file"):
        load_model(path)
    assert main(["inspect", path]) == 2
    assert "not a regular file" in capsys.readouterr().err


def test_input_data_path_must_be_a_regular_file(tmp_path):
    os.mkfifo(tmp_path / "data.npz")
    with pytest.raises(InputError, match="not a (regular )?file"):
        read_arrays(tmp_path / "data.npz")


@pytest.fixture
def dump(tmp_path):
    x = tensor((1, 4), "int8", scale=0.05, zero_point=3, name="x")
    y = tensor((1, 4), "int8", scale=0.1, zero_point=-2, name="y")
    model = tmp_path / "m.tflite"
    model.write_bytes(op_model("RELU", [x], [y]))
    np.savez(tmp_path / "d.npz", x=np.arange(-40, 40, 10, dtype=np.int8).reshape(2, 1, 4))
    export_golden(model, tmp_path / "d.npz", tmp_path / "ref")
    return tmp_path / "ref"


BAD_FIELDS = [
    ("shape", None, None),
    ("shape", [None, 4], "shape"),
    ("shape", [1 << 40, 1 << 40], "elements"),
    ("shape", [-1, 4], "negative"),
    ("scale", 0.5, None),
    ("scale", ["x"], "scale"),
    ("zero_point", [None], "zero_point"),
    ("dtype", "complex128", "dtype"),
    ("dtype", ["int8"], "dtype"),
]


@pytest.mark.parametrize("field, value, error", BAD_FIELDS)
def test_malformed_manifest_fields_give_named_errors(dump, tmp_path, field, value, error, capsys):
    other = tmp_path / "other"
    shutil.copytree(dump, other)
    man = json.loads((other / "manifest.json").read_text())
    man["tensors"][-1][field] = value
    (other / "manifest.json").write_text(json.dumps(man))
    if error is None:
        diff_dumps(dump, other)  # accepted: still comparable
        return
    with pytest.raises(InputError, match=error):
        load_dump(other)
    assert main(["diff", str(dump), str(other)]) == 2
    assert "refquant: error:" in capsys.readouterr().err


def test_deeply_nested_manifest(dump, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "manifest.json").write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(InputError):
        load_dump(other)


def test_complex_and_structured_dump_arrays_are_refused(dump, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(dump, other)
    man = json.loads((other / "manifest.json").read_text())
    np.save(other / man["tensors"][-1]["file"], np.zeros((2, 1, 4), np.complex64))
    with pytest.raises(InputError, match="plain numeric"):
        diff_dumps(dump, other)


def test_sparse_raw_file_beyond_the_bound_is_not_read(dump, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(dump, other)
    man = json.loads((other / "manifest.json").read_text())
    t = man["tensors"][-1]
    big = other / "tensors" / "big.bin"
    with open(big, "wb") as f:
        f.truncate(5 << 30)  # sparse: no disk used
    t.update(file="tensors/big.bin", dtype="int8", shape=[1, 4])
    t.pop("files", None)
    (other / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(InputError, match="bytes, above"):
        diff_dumps(dump, other)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_data_is_refused_by_every_command(tmp_path, bad, capsys):
    x = tensor((1, 4), "int8", scale=0.05, zero_point=3, name="x")
    y = tensor((1, 4), "int8", scale=0.1, zero_point=-2, name="y")
    model = tmp_path / "m.tflite"
    model.write_bytes(op_model("RELU", [x], [y]))
    data = np.zeros((2, 1, 4), np.float32)
    data[1, 0, 2] = bad
    np.savez(tmp_path / "d.npz", x=data)
    for argv in (
        ["golden", str(model), "--input", str(tmp_path / "d.npz"), "--out", str(tmp_path / "g")],
        ["trace", str(model), "--input", str(tmp_path / "d.npz"), "--tensor", "y", "--element", "0,0"],
        ["compare", str(model), "--input", str(tmp_path / "d.npz"), "--no-progress"],
    ):
        assert main(argv) == 2, argv
        assert "non-finite value(s), the first in sample 1 at (0, 2)" in capsys.readouterr().err


def test_golden_force_refuses_to_delete_its_own_input(tmp_path):
    x = tensor((1, 4), "int8", scale=0.05, zero_point=3, name="x")
    y = tensor((1, 4), "int8", scale=0.1, zero_point=-2, name="y")
    out = tmp_path / "out"
    out.mkdir()
    model = out / "m.tflite"
    model.write_bytes(op_model("RELU", [x], [y]))
    np.savez(out / "d.npz", x=np.zeros((1, 1, 4), np.int8))
    with pytest.raises(InputError, match="would delete the input"):
        export_golden(model, out / "d.npz", out, force=True)
    assert model.exists() and (out / "d.npz").exists()


def test_golden_cleans_up_after_a_killed_run(tmp_path):
    x = tensor((1, 4), "int8", scale=0.05, zero_point=3, name="x")
    y = tensor((1, 4), "int8", scale=0.1, zero_point=-2, name="y")
    model = tmp_path / "m.tflite"
    model.write_bytes(op_model("RELU", [x], [y]))
    np.savez(tmp_path / "d.npz", x=np.zeros((1, 1, 4), np.int8))
    export_golden(model, tmp_path / "d.npz", tmp_path / "out")
    dead = 2**22 + 12345  # no such process
    (tmp_path / f".out.tmp-{dead}-abc").mkdir()  # a killed run's half-written dump
    os.rename(tmp_path / "out", tmp_path / f".out.old-{dead}-def")  # killed between the two renames of --force
    export_golden(model, tmp_path / "d.npz", tmp_path / "other")  # another target: leaves them alone
    assert (tmp_path / f".out.tmp-{dead}-abc").exists()
    export_golden(model, tmp_path / "d.npz", tmp_path / "out", force=True)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["d.npz", "m.tflite", "other", "out"]
    assert (tmp_path / "out" / "manifest.json").exists()
