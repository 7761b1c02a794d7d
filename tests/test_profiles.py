"""Arithmetic profiles end to end: names checked, ``--arithmetic`` on every running command, the profile
recorded wherever results are written, ``inspect --arithmetic``, ``compare --against``, named refusals,
and the golden models under each profile against that profile's runtime (tests/golden_models.py).

The golden differential test runs refquant under each profile and the runtime the profile reproduces
(:func:`refquant.testing.oracle.run_profile`, in the worker of the ``litert`` fixture) on the golden
inputs: outputs must be EQUAL element for element (and every intermediate the runtime exposes, for
litert-ref and litert-optimized). Where refquant refuses the model under a profile
(:class:`UnsupportedOpError`, naming the runtime and the operator), the test is skipped with that text.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import refquant
from refquant.arithmetic import PROFILES, profile_names
from refquant.cli import main
from refquant.compare import compare
from refquant.errors import InputError, UnsupportedOpError
from refquant.golden import export_golden
from refquant.inspect import arithmetic_table, format_arithmetic
from refquant.testing import const, op_model, run_reference, tensor
from refquant.testing.oracle import tflm_available
from refquant.tflite.reader import load_model
from refquant.tracer import trace_element
from tests.golden_models import model_path, vectors_path
from tests.opcheck import assert_equal_arrays

CONV = "op_conv_2d_s2same_relu6_int8"
TRANSFORMER = "transformer_block_int8_ptq"


def _inputs(name: str) -> list[np.ndarray]:
    vec = np.load(vectors_path(name))
    keys = sorted((k for k in vec.files if k.startswith("input_")), key=lambda s: int(s.split("_")[1]))
    return [vec[k] for k in keys]


def _data(tmp_path, name: str) -> str:
    """The golden inputs as an .npz the commands read (already-quantized integer inputs)."""
    path = tmp_path / f"{name}.npz"
    np.savez(path, **{f"input_{k}": x for k, x in enumerate(_inputs(name))})
    return str(path)


def _fc_tie_model() -> bytes:
    """FULLY_CONNECTED int8 whose effective scale is 0.5: every odd accumulator is an exact tie.

    s_in = s_w = 2^-4, s_out = 2^-7; weight 1, bias 0, so the output is round(x / 2): LiteRT's reference
    kernel rounds once in float64 (ties away), the optimized kernels with NEON semantics (ties up).
    """
    return op_model(
        "FULLY_CONNECTED",
        [
            tensor((6, 1), "int8", scale=2**-4, zero_point=0, name="x"),
            const(np.ones((1, 1), np.int8), scale=2**-4, zero_point=0, name="w"),
            const(np.zeros((1,), np.int32), scale=2**-8, zero_point=0, name="b"),
        ],
        [tensor((6, 1), "int8", scale=2**-7, zero_point=0, name="y")],
    )


def _uint8_conv_model() -> bytes:
    return op_model(
        "CONV_2D",
        [
            tensor((1, 3, 3, 1), "uint8", scale=0.5, zero_point=128, name="x"),
            const(np.full((1, 1, 1, 1), 130, np.uint8), scale=0.25, zero_point=128, name="w"),
            const(np.zeros((1,), np.int32), scale=0.125, zero_point=0, name="b"),
        ],
        [tensor((1, 3, 3, 1), "uint8", scale=0.5, zero_point=128, name="y")],
        padding="VALID",
        stride_w=1,
        stride_h=1,
    )


# ---------------------------------------------------------------------------------------------
# Names


def test_profiles_are_the_four_runtimes():
    assert profile_names() == ("litert-ref", "litert-xnnpack", "litert-optimized", "tflm")
    for p in PROFILES.values():
        assert p.runtime and p.oracle and p.summary


@pytest.mark.parametrize(
    "call",
    [
        lambda m, d, tmp: refquant.Interpreter(model_path=m, arithmetic="litert-fast"),
        lambda m, d, tmp: compare(m, inputs=d, arithmetic="litert-fast", progress=False),
        lambda m, d, tmp: compare(m, inputs=d, against="litert-fast", progress=False),
        lambda m, d, tmp: export_golden(m, d, tmp / "g", arithmetic="litert-fast"),
        lambda m, d, tmp: trace_element(m, d, 3, "0,0,0,0", arithmetic="litert-fast"),
        lambda m, d, tmp: run_reference(open(m, "rb").read(), _inputs(CONV), arithmetic="litert-fast"),
        lambda m, d, tmp: arithmetic_table(load_model(m), ["litert-fast"]),
    ],
    ids=["Interpreter", "compare", "compare-against", "export_golden", "trace", "harness", "inspect"],
)
def test_unknown_profile_is_a_named_input_error(tmp_path, call):
    with pytest.raises(InputError, match=r"arithmetic must be one of \['litert-ref', 'litert-xnnpack'"):
        call(str(model_path(CONV)), _data(tmp_path, CONV), tmp_path)


@pytest.mark.parametrize(
    "argv",
    [
        ["inspect", "{m}", "--arithmetic", "litert-fast"],
        ["compare", "{m}", "--input", "{d}", "--arithmetic", "litert-fast"],
        ["compare", "{m}", "--input", "{d}", "--against", "litert-fast"],
        ["golden", "{m}", "--input", "{d}", "--out", "{o}", "--arithmetic", "litert-fast"],
        ["trace", "{m}", "--input", "{d}", "--tensor", "3", "--arithmetic", "litert-fast"],
    ],
    ids=lambda a: a[0] + ("-against" if "--against" in a else ""),
)
def test_cli_refuses_an_unknown_profile(tmp_path, capsys, argv):
    fill = {"m": str(model_path(CONV)), "d": _data(tmp_path, CONV), "o": str(tmp_path / "out")}
    with pytest.raises(SystemExit) as exc:
        main([a.format(**fill) for a in argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'litert-fast'" in err and "litert-xnnpack" in err


# ---------------------------------------------------------------------------------------------
# --arithmetic on every running command, recorded wherever results are written


def test_golden_records_the_profile_and_diff_isolate_reads_it(tmp_path, capsys):
    data = _data(tmp_path, CONV)
    out = tmp_path / "g"
    assert main(["golden", str(model_path(CONV)), "--input", data, "--out", str(out), "--arithmetic", "tflm"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["arithmetic"] == "tflm"
    capsys.readouterr()
    assert main(["diff", str(out), str(out), "--isolate", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["arithmetic"] == "tflm"
    assert doc["isolation"]["arithmetic"]["arithmetic"] == "tflm"


def test_trace_shows_the_profile(tmp_path, capsys):
    data = _data(tmp_path, CONV)
    argv = ["trace", str(model_path(CONV)), "--input", data, "--tensor", "3", "--element", "0,1,2,3"]
    assert main(argv + ["--arithmetic", "tflm", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["arithmetic"]["arithmetic"] == "tflm"
    assert main(argv + ["--arithmetic", "tflm"]) == 0
    assert "tflm" in capsys.readouterr().out


def test_compare_records_the_profile(tmp_path, capsys):
    data = _data(tmp_path, CONV)
    js, page = tmp_path / "r.json", tmp_path / "r.html"
    argv = ["compare", str(model_path(CONV)), "--input", data, "--arithmetic", "tflm", "--no-progress"]
    assert main(argv + ["--json", str(js), "--html", str(page)]) == 0
    assert "arithmetic tflm" in capsys.readouterr().out
    doc = json.loads(js.read_text())
    assert doc["arithmetic"] == "tflm" and doc["against"] is None and doc["profile_diff"] is None
    assert "arithmetic tflm" in page.read_text()


def test_harness_takes_the_profile():
    model = _fc_tie_model()
    x = np.array([[-5], [-3], [-1], [1], [3], [5]], np.int8)
    (ref,) = run_reference(model, [x], arithmetic="litert-ref")
    assert ref.ravel().tolist() == [-3, -2, -1, 1, 2, 3]  # one float64 rounding, ties away
    try:
        (opt,) = run_reference(model, [x], arithmetic="litert-optimized")
    except UnsupportedOpError as exc:
        assert "litert-optimized" in str(exc) and "FULLY_CONNECTED" in str(exc)
        pytest.skip(str(exc))
    assert opt.ravel().tolist() == [-2, -1, 0, 1, 2, 3]  # NEON_MBQM: ties up


# ---------------------------------------------------------------------------------------------
# Named refusals


def test_unsupported_combination_names_runtime_and_op():
    with pytest.raises(UnsupportedOpError) as exc:
        refquant.Interpreter(model_content=_uint8_conv_model(), arithmetic="tflm").allocate_tensors()
    text = str(exc.value)
    assert "arithmetic tflm" in text and "CONV_2D" in text and "uint8" in text
    # the same model runs under the reference profile
    assert run_reference(_uint8_conv_model(), [np.full((1, 3, 3, 1), 140, np.uint8)])[0].shape == (1, 3, 3, 1)


# ---------------------------------------------------------------------------------------------
# inspect --arithmetic


def test_inspect_arithmetic_json(capsys):
    assert main(["inspect", str(model_path(TRANSFORMER)), "--arithmetic", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in doc["profiles"]] == list(profile_names())
    fcs = [op for op in doc["operators"] if op["opcode"] == "FULLY_CONNECTED"]
    assert fcs
    for op in fcs:
        rows = op["profiles"]
        assert op["differs"]
        assert rows["litert-ref"]["rescale"] == "reference"
        assert rows["litert-ref"]["executor"] == "builtin reference kernel"
        assert "float64" in rows["litert-ref"]["formula"]
        assert rows["tflm"]["rescale"] == "mbqm_double"
        assert rows["tflm"]["executor"] == "tflite-micro reference kernel"
        assert rows["litert-optimized"]["rescale"] == "neon_mbqm"
        for r in rows.values():
            assert set(r) >= {"unsupported"} or set(r) >= {"executor", "accumulator", "rescale", "formula", "blocks"}
    same = [op for op in doc["operators"] if op["opcode"] == "RESHAPE"]
    assert same and not any(op["differs"] for op in same)


def test_inspect_arithmetic_text_and_subset(capsys):
    assert main(["inspect", str(model_path(TRANSFORMER)), "--arithmetic", "litert-ref", "tflm"]) == 0
    out = capsys.readouterr().out
    assert "litert-xnnpack" not in out and "tflm" in out
    assert any(line.startswith("* ") and "FULLY_CONNECTED" in line for line in out.splitlines())
    assert any(line.startswith("  ") and "RESHAPE" in line for line in out.splitlines())
    assert "operators differ between the profiles" in out


def test_inspect_arithmetic_shows_refusals_instead_of_failing():
    table = arithmetic_table(load_model(_uint8_conv_model()))
    row = table["operators"][0]["profiles"]["tflm"]
    assert "executor" not in row and "arithmetic tflm" in row["unsupported"]
    assert "refused:" in format_arithmetic(table)


def test_inspect_arithmetic_escapes_model_names():
    evil = "y\x1b[31m\u202e\x07"
    model = op_model(
        "RELU",
        [tensor((1, 4), "int8", scale=0.1, zero_point=0, name="x")],
        [tensor((1, 4), "int8", scale=0.1, name=evil)],
    )
    text = format_arithmetic(arithmetic_table(load_model(model)), name="m\x1b]0;t\x07")
    assert not any(not c.isprintable() and c != "\n" for c in text)
    assert "\\x1b" in text


# ---------------------------------------------------------------------------------------------
# compare --against


def test_compare_against_equal_profiles(tmp_path, capsys):
    data = _data(tmp_path, CONV)
    js, page = tmp_path / "r.json", tmp_path / "r.html"
    argv = ["compare", str(model_path(CONV)), "--input", data, "--against", "tflm", "--no-progress"]
    assert main(argv + ["--json", str(js), "--html", str(page)]) == 0
    out = capsys.readouterr().out
    assert "arithmetic litert-ref vs tflm" in out and "is equal" in out
    doc = json.loads(js.read_text())
    assert doc["arithmetic"] == "litert-ref" and doc["against"] == "tflm"
    (row,) = doc["profile_diff"]
    assert row["mismatched"] == 0 and row["first"] is None and row["elements"] == int(np.prod(row["shape"]))
    assert "Arithmetic litert-ref vs tflm" in page.read_text()


def test_compare_against_reports_where_runtimes_differ():
    """FULLY_CONNECTED at exact ties: LiteRT's reference kernel rounds away, the optimized kernels up."""
    x = np.array([[[-5], [-3], [-1], [1], [3], [5]]], np.float32) / 16
    try:
        report = compare(_fc_tie_model(), inputs=[x], against="litert-optimized", progress=False)
    except UnsupportedOpError as exc:
        assert "litert-optimized" in str(exc) and "FULLY_CONNECTED" in str(exc)
        pytest.skip(str(exc))
    (d,) = report.profile_diff
    assert (d.mismatched, d.elements, d.max_abs_diff, d.unit) == (3, 6, 1.0, "LSB")
    assert d.first == {"sample": 0, "element": [0, 0], "arithmetic": -3, "against": -2}
    assert "litert-ref vs litert-optimized" in report.table()


# ---------------------------------------------------------------------------------------------
# Golden models under each profile vs that profile's runtime

GOLDEN = [
    "digits_int8_ptq",
    "digits_int8_io",
    "digits_int8_qat",
    "digits_int16x8",
    "mobilenetv2_035_96_int8_ptq",
    "mobilenetv2_035_96_int16x8",
    "mobilenetv3s_050_96_int8_ptq",
    "transformer_block_int8_ptq",
    "transformer_block_int16x8",
    "op_conv_2d_s2same_relu6_int8",
    "op_conv_2d_dil2valid_int8",
    "op_depthwise_conv_2d_dm2_int8",
    "op_fully_connected_3d_int8",
    "op_transpose_conv_s2same_int8",
    "op_conv_2d_s2same_relu6_int16x8",
]
#: Profiles whose runtime exposes every tensor (compared too, not only the outputs).
EVERY_TENSOR = ("litert-ref", "litert-optimized")


@pytest.mark.parametrize("profile", profile_names())
@pytest.mark.parametrize("name", [n for n in GOLDEN if model_path(n).exists()])
def test_golden_model_equals_the_profiles_runtime(litert, name, profile):
    if profile == "tflm" and not tflm_available():
        pytest.skip("tflite-micro (the tflm oracle) is not installed: pip install -e '.[test]'")
    inputs = _inputs(name)
    model = model_path(name).read_bytes()
    try:
        it = refquant.Interpreter(model_content=model, arithmetic=profile)
        it.allocate_tensors()
        for d, x in zip(it.get_input_details(), inputs):
            it.set_tensor(d["index"], x)
        it.invoke()
    except UnsupportedOpError as exc:
        assert profile in str(exc) or "not supported" in str(exc)
        pytest.skip(f"refquant refuses {name} under {profile}: {exc}")
    res = litert.run(model, inputs, profile=profile)
    if res.status == "rejected":  # a gap of the decision table: refquant should refuse what the runtime refuses
        pytest.xfail(f"the {profile} runtime rejects {name} ({res.message.strip()}); refquant does not refuse it yet")
    assert res.status == "ok", f"the {profile} runtime {res.status} {name}: {res.message}"
    trace = it.trace
    sg = trace.model.main
    for k, idx in enumerate(sg.outputs):
        assert_equal_arrays(f"{name} under {profile}: output {k}", res.outputs[k], trace.values[idx])
    if profile in EVERY_TENSOR:
        checked = 0
        for idx, expected in res.tensors.items():
            t = sg.tensors[idx] if idx < len(sg.tensors) else None
            if t is None or t.is_constant or idx not in trace.values or expected.dtype.kind == "f":
                continue
            assert_equal_arrays(f"{name} under {profile}: tensor {idx} {t.name!r}", expected, trace.values[idx])
            checked += 1
        assert checked > 0
