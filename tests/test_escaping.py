"""Model-controlled text cannot become C code, shell syntax or terminal control, and a dump cannot point outside itself.

Every test builds its own hostile files: a tensor named with a comment terminator and a constructor, escape
sequences and bidirectional controls in names, manifests whose values carry shell syntax or whose files
leave the dump directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from refquant.cli import main
from refquant.diff import diff_dumps, trace_command
from refquant.errors import InputError
from refquant.escape import c_comment, shell_word, terminal
from refquant.golden import dumps_manifest, export_golden
from refquant.testing import op_model, tensor
from refquant.tracer import format_trace, trace_element

EVIL_C = "x */ __attribute__((constructor)) static void evil(void) { *(volatile int *)0 = 1; } /* ??/"
EVIL_TERM = "y\x1b[2J\x1b]0;pwned\x07\u202egnp.exe\x00"


def hostile_model() -> bytes:
    x = tensor((1, 4), "int8", scale=0.05, zero_point=3, name=EVIL_C)
    y = tensor((1, 4), "int8", scale=0.1, zero_point=-2, name=EVIL_TERM)
    return op_model("RELU", [x], [y])


@pytest.fixture
def dumped(tmp_path):
    model = tmp_path / "m.tflite"
    model.write_bytes(hostile_model())
    np.savez(tmp_path / "d.npz", input_0=np.arange(-40, 40, 10, dtype=np.int8).reshape(2, 1, 4))
    export_golden(model, tmp_path / "d.npz", tmp_path / "ref", formats=("npy", "bin", "c"), accumulators=True)
    return model, tmp_path / "d.npz", tmp_path / "ref"


def test_c_comment_cannot_close_or_splice():
    s = c_comment("a */ b /* c ??/ d \x00 \u202e e")
    assert "*/" not in s and "/*" not in s and "??" not in s
    assert all(32 <= ord(ch) < 127 for ch in s)


@pytest.mark.parametrize("text", ["\x1b[31m", "a\u202eb", "\x00", "\x9b", "\r", "\u2066"])
def test_terminal_text_has_no_control_characters(text):
    out = terminal(text)
    assert all(ch.isprintable() for ch in out), repr(out)


def test_shell_word_is_one_word():
    import shlex

    for s in ["$(touch pwned)", "a b", "`x`", "'; rm -rf /'", "double"]:
        assert shlex.split(shell_word(s)) == [s]


def test_golden_c_headers_hold_model_names_only_in_comments(dumped, tmp_path):
    _, _, ref = dumped
    headers = sorted((ref / "c").glob("*.h"))
    assert headers
    for h in headers:
        for line in h.read_text().splitlines():
            if line.startswith("/*"):
                assert line.endswith("*/") and "*/" not in line[2:-2], line
            assert all(ch == "\t" or 32 <= ord(ch) < 127 for ch in line), repr(line)
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler")
    main_c = tmp_path / "main.c"
    main_c.write_text(
        "".join(f'#include "{h}"\n' for h in headers) + "int evil = 0;\nint main(void) { return evil; }\n"
    )
    exe = tmp_path / "bench"
    r = subprocess.run(
        [cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-Wno-unused-const-variable", "-trigraphs", "-o", exe, main_c],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert subprocess.run([exe], capture_output=True).returncode == 0  # no constructor ran


def test_diff_and_trace_print_no_control_characters(dumped, tmp_path, capsys):
    model, data, ref = dumped
    shutil.copytree(ref, tmp_path / "other")
    entry = next(t for t in json.loads((ref / "manifest.json").read_text())["tensors"] if t["name"] == EVIL_TERM)
    arr = np.load(tmp_path / "other" / entry["file"])
    arr[1, 0, 2] += 1
    np.save(tmp_path / "other" / entry["file"], arr)
    assert main(["diff", str(ref), str(tmp_path / "other"), "--verbose", "--isolate"]) == 1
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out and "\x07" not in out and "\x00" not in out
    assert "\\x1b" in out  # shown, escaped
    tr = trace_element(model, data, 1, "0,2", sample=1)
    text = format_trace(tr)
    assert "\x1b" not in text and "\u202e" not in text


def test_suggested_trace_command_quotes_manifest_values():
    import shlex

    doc = {
        "first_divergence": {"tensor_index": 3, "element": [0, 1], "sample": 0},
        "model": "m; touch pwned.tflite",
        "input": "$(touch pwned)",
        "arithmetic": "`reboot`",
        "rounding": "$(rm -rf ~)",
        "float_accumulation": "a b",
    }
    cmd = trace_command(doc)
    words = shlex.split(cmd)
    assert words[:3] == ["refquant", "trace", "m; touch pwned.tflite"]
    assert "$(touch pwned)" in words and "$(rm -rf ~)" in words and "`reboot`" in words and "a b" in words


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink"])
def test_dump_files_must_stay_inside_the_dump(dumped, tmp_path, kind, capsys):
    _, _, ref = dumped
    other = tmp_path / "other"
    shutil.copytree(ref, other)
    secret = tmp_path / "secret.npy"
    np.save(secret, np.zeros((2, 1, 4), np.int8))
    man = json.loads((other / "manifest.json").read_text())
    t = man["tensors"][-1]
    if kind == "dotdot":
        t["file"] = "../secret.npy"
    elif kind == "absolute":
        t["file"] = str(secret)
    else:
        os.symlink(secret, other / "tensors" / "link.npy")
        t["file"] = "tensors/link.npy"
    t.pop("files", None)
    (other / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(InputError, match="inside the dump|outside the dump"):
        diff_dumps(ref, other)
    assert main(["diff", str(ref), str(other)]) == 2
    assert "refquant: error:" in capsys.readouterr().err


def test_manifests_are_strict_json():
    text = dumps_manifest({"scale": [float("nan"), float("inf"), 0.5], "x": {"y": float("-inf")}})

    def refuse(token: str) -> float:
        raise AssertionError(f"non-standard JSON token {token}")

    assert json.loads(text, parse_constant=refuse) == {"scale": ["nan", "inf", 0.5], "x": {"y": "-inf"}}


def test_golden_manifest_of_the_hostile_model_is_strict_json(dumped):
    _, _, ref = dumped
    json.loads((Path(ref) / "manifest.json").read_text(), parse_constant=lambda t: 1 / 0)


def test_cli_errors_print_no_control_characters(tmp_path, capsys):
    x = tensor((1, 4), "int8", scale=0.05, zero_point=3, name="x")
    y = tensor((1, 4), "int8", scale=0.1, zero_point=-2, name=EVIL_TERM)
    model = tmp_path / "m.tflite"
    model.write_bytes(op_model("RELU", [x], [y]))
    np.savez(tmp_path / "d.npz", x=np.zeros((1, 1, 4), np.int8))
    assert main(["trace", str(model), "--input", str(tmp_path / "d.npz"), "--tensor", EVIL_TERM, "--element", "9"]) == 2
    err = capsys.readouterr().err
    assert "refquant: error:" in err and all(ch.isprintable() or ch == "\n" for ch in err), repr(err)
