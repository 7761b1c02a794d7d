"""Hostile parameters and inputs: every case where LiteRT aborts its process gets a named refquant error;
set_tensor names the tensor; the CLI never modifies its inputs."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import pytest

import refquant
from refquant.errors import EvalError, InputError, QuantParamError, RefquantError
from refquant.testing import const, op_model, tensor
from tests.golden_models import model_path


def _binary(op: str, dtype: str, s1: float, s2: float, so: float, zp: int = 0, **opts) -> bytes:
    x = tensor((1, 4), dtype, scale=s1, zero_point=zp, name="x")
    y = tensor((1, 4), dtype, scale=s2, zero_point=zp, name="y")
    o = tensor((1, 4), dtype if op not in ("LESS", "EQUAL") else "bool", scale=so, zero_point=zp, name="o")
    return op_model(op, [x, y], [o], **opts)


def _softmax(s_in: float, beta: float = 1.0) -> bytes:
    x = tensor((1, 600), "int8", scale=s_in, zero_point=0, name="x")
    o = tensor((1, 600), "int8", scale=1 / 256, zero_point=-128, name="o")
    return op_model("SOFTMAX", [x], [o], beta=beta)


def _inputs(model: bytes) -> list[np.ndarray]:
    it = refquant.load_model(model)
    return [np.zeros(it.main.tensors[i].shape, it.main.tensors[i].np_dtype) for i in it.main.inputs]


# (description, model, expected refquant error): each one aborts LiteRT's process (docs/litert_semantics.md §1.1, §5.3, §6).
ABORTING = [
    ("ADD output multiplier >= 1", lambda: _binary("ADD", "int8", 1.0, 1.0, 1e-7), QuantParamError),
    ("ADD input scale 0", lambda: _binary("ADD", "int8", 0.0, 1.0, 1.0), QuantParamError),
    (
        "SQUARED_DIFFERENCE multiplier >= 1",
        lambda: _binary("SQUARED_DIFFERENCE", "int8", 1.0, 1.0, 1e-7),
        QuantParamError,
    ),
    ("SOFTMAX beta*scale*2^26 <= 1", lambda: _softmax(1e-9), QuantParamError),
    ("LESS with input scale 1", lambda: _binary("LESS", "int8", 1.0, 1.0, 1.0), QuantParamError),
]


@pytest.mark.oracle
@pytest.mark.parametrize("desc, make, err", ABORTING, ids=[a[0] for a in ABORTING])
def test_litert_aborts_refquant_raises(litert, desc, make, err):
    model = make()
    res = litert.run(model, _inputs(model))
    assert res.status == "aborted", f"{desc}: LiteRT {res.status} ({res.message})"
    it = refquant.Interpreter(model_content=model)
    with pytest.raises(err) as info:
        it.allocate_tensors()
    assert "operator 0" in str(info.value)


@pytest.mark.oracle
def test_softmax_row_sum_abort_is_an_eval_error(litert):
    """LiteRT aborts SOFTMAX int8 when a row's exponentials add up to 512 or more (data-dependent)."""
    model = _softmax(1.0)
    res = litert.run(model, _inputs(model))
    assert res.status == "aborted"
    it = refquant.Interpreter(model_content=model)
    it.allocate_tensors()
    it.set_tensor(0, np.zeros((1, 600), np.int8))
    with pytest.raises(EvalError):
        it.invoke()


def test_set_tensor_names_the_tensor():
    it = refquant.Interpreter(model_path=model_path("digits_int8_io"))
    it.allocate_tensors()
    d = it.get_input_details()[0]
    with pytest.raises(InputError, match=f"input tensor {d['index']} .*expected int8"):
        it.set_tensor(d["index"], np.zeros(d["shape"], np.float32))
    with pytest.raises(InputError, match="expected \\[1, 8, 8, 1\\]"):
        it.set_tensor(d["index"], np.zeros((1, 8, 8), np.int8))
    with pytest.raises(InputError, match="not an input"):
        it.set_tensor(999, np.zeros(1, np.int8))
    with pytest.raises(InputError, match="not set"):
        it.invoke()


def test_memory_bound_is_checked_before_allocating():
    x = tensor((1, 4), "float32", name="x")
    big = tensor((4096, 4096, 4), "float32", name="big")
    shape = const(np.array([4096, 4096, 4], np.int32), name="shape")
    m = op_model("BROADCAST_TO", [x, shape], [big], version=2)
    it = refquant.Interpreter(model_content=m, memory_limit=64 << 20)
    with pytest.raises(refquant.ResourceLimitError, match="above the limit"):
        it.allocate_tensors()


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_cli_never_modifies_inputs(tmp_path):
    model = model_path("digits_int8_ptq")
    data = tmp_path / "in.npz"
    rng = np.random.default_rng(0)
    np.savez(data, input_0=rng.random((4, 1, 8, 8, 1)).astype(np.float32))
    before = (_sha(model), _sha(data))
    conv_out = refquant.load_model(model).main.operators[1].outputs[0]
    runs = [
        ["inspect", str(model)],
        ["compare", str(model), "--input", str(data), "--json", str(tmp_path / "r.json"), "--no-progress"],
        ["golden", str(model), "--input", str(data), "--out", str(tmp_path / "g")],
        ["trace", str(model), "--input", str(data), "--tensor", str(conv_out), "--element", "0,3,4,5"],
    ]
    for argv in runs:
        proc = subprocess.run([sys.executable, "-m", "refquant", *argv], capture_output=True, text=True)
        assert proc.returncode == 0, (argv, proc.stderr)
    assert (_sha(model), _sha(data)) == before


@pytest.mark.parametrize(
    "content",
    [b"not an npz", b"PK\x03\x04 truncated zip"],
)
def test_cli_malformed_npz_is_one_line_exit_2(tmp_path, content):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(content)
    proc = subprocess.run(
        [sys.executable, "-m", "refquant", "compare", str(model_path("digits_int8_ptq")), "--input", str(bad)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_every_refquant_error_is_a_subclass():
    for cls in (EvalError, InputError, QuantParamError, refquant.ModelFormatError, refquant.PrepareError):
        assert issubclass(cls, RefquantError)


def test_huge_dilation_counts_padding_scratch_against_the_bound():
    """A mutated dilation (50,593,792) once made the im2col path pad the input for ~18 s (fuzz finding)."""
    x = tensor((1, 11, 11, 3), "int8", scale=0.1, zero_point=0, name="x")
    w = const(np.ones((8, 3, 3, 3), np.int8), scale=0.01, zero_point=0, name="w")
    bias = const(np.zeros(8, np.int32), scale=0.001, zero_point=0, name="b")
    y = tensor((1, 6, 6, 8), "int8", scale=0.2, zero_point=0, name="y")
    m = op_model("CONV_2D", [x, w, bias], [y], padding="SAME", stride_w=2, stride_h=2, dilation_h_factor=50593792)
    it = refquant.Interpreter(model_content=m)
    with pytest.raises(refquant.ResourceLimitError, match="scratch"):
        it.allocate_tensors()
