"""The command line: inspect output, JSON shape, and one-line errors with exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from refquant.cli import main
from tests.golden_models import model_names, model_path

NAME = "digits_int8_ptq" if "digits_int8_ptq" in model_names() else model_names()[0]


def test_inspect_text(capsys):
    assert main(["inspect", str(model_path(NAME))]) == 0
    out = capsys.readouterr().out
    assert "CONV_2D" in out and "subgraph 0" in out and "weights:" in out


def test_inspect_json_shape(capsys):
    assert main(["inspect", "--json", str(model_path(NAME))]) == 0
    doc = json.loads(capsys.readouterr().out)
    sg = doc["subgraphs"][0]
    assert isinstance(sg["name"], str) and sg["inputs"] and sg["outputs"]
    t = sg["tensors"][sg["inputs"][0]]
    assert set(t) >= {"index", "name", "shape", "dtype", "quantization", "buffer"}
    op = sg["operators"][0]
    assert set(op) >= {"index", "opcode", "version", "inputs", "outputs", "options"}
    q = next(x["quantization"] for x in sg["tensors"] if x["quantization"])
    assert set(q) == {"scale", "zero_point", "quantized_dimension"}


@pytest.mark.parametrize(
    "argv, content",
    [
        (["inspect", "/nonexistent/model.tflite"], None),
        (["inspect", "BAD"], b"not a model at all"),
        (["inspect", "BAD"], b""),
        (["inspect"], None),
        (["no-such-command"], None),
    ],
)
def test_errors_are_one_line_exit_2(tmp_path, argv, content):
    if content is not None:
        p = tmp_path / "bad.tflite"
        p.write_bytes(content)
        argv = [str(p) if a == "BAD" else a for a in argv]
    proc = subprocess.run([sys.executable, "-m", "refquant", *argv], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(("refquant: error:", "usage:", "refquant "))


def test_debug_shows_traceback(tmp_path):
    p = tmp_path / "bad.tflite"
    p.write_bytes(b"junk")
    proc = subprocess.run(
        [sys.executable, "-m", "refquant", "--debug", "inspect", str(p)], capture_output=True, text=True
    )
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_refquant_compare_is_the_function_after_cli_plugins_load():
    import refquant
    from refquant.cli import build_parser

    build_parser()  # imports refquant.compare as a plugin
    assert callable(refquant.compare) and refquant.compare.__name__ == "compare"
