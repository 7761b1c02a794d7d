"""``refquant trace``: every op family's trace ends at the run's value (property test); CLI text/JSON; errors."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import refquant
from refquant.cli import main
from refquant.engine import Engine, Trace
from refquant.errors import InputError
from refquant.inputs import RawInput, convert_input, load_raw_inputs
from refquant.ops.base import OpData
from refquant.quantization import quantize
from refquant.testing import const, op_model, tensor
from refquant.tracer import COPY_OPS, format_trace, parse_element, trace_element, trace_in_run
from tests.golden_models import manifest, model_path, vectors_path

CONV = "op_conv_2d_s2same_relu6_int8"
NAMES = [m["name"] for m in manifest()["models"] if model_path(m["name"]).exists() and vectors_path(m["name"]).exists()]


# ---- one-operator models for the op families the golden models do not contain ----------------------


def _unary(opcode: str, dtype: str = "int8", in_q=(0.05, 3), out_q=(0.05, 0), **opts) -> bytes:
    x = tensor((1, 4, 4, 3), dtype, scale=in_q[0], zero_point=in_q[1], name="x")
    y = tensor((1, 4, 4, 3), dtype, scale=out_q[0], zero_point=out_q[1], name="y")
    return op_model(opcode, [x], [y], **opts)


def _binary(opcode: str, dtype: str = "int8", qa=(0.05, 3), qb=(0.03, -2), qo=(0.07, 1)) -> bytes:
    a = tensor((1, 4, 4, 3), dtype, scale=qa[0], zero_point=qa[1], name="a")
    c = tensor((1, 1, 4, 3), dtype, scale=qb[0], zero_point=qb[1], name="c")  # broadcast along H
    y = tensor((1, 4, 4, 3), dtype, scale=qo[0], zero_point=qo[1], name="y")
    return op_model(opcode, [a, c], [y])


def _reduce(opcode: str, dtype: str = "int8") -> bytes:
    zp = 2 if dtype == "int8" else 0
    x = tensor((1, 4, 4, 3), dtype, scale=0.05, zero_point=zp, name="x")
    axis = const(np.array([1, 2], np.int32), name="axis")
    y = tensor((1, 1, 1, 3), dtype, scale=0.04, zero_point=-zp, name="y")
    return op_model(opcode, [x, axis], [y], keep_dims=True)


def _resize() -> bytes:
    x = tensor((1, 4, 4, 3), "int8", scale=0.05, zero_point=2, name="x")
    size = const(np.array([7, 6], np.int32), name="size")
    y = tensor((1, 7, 6, 3), "int8", scale=0.05, zero_point=2, name="y")
    return op_model("RESIZE_BILINEAR", [x, size], [y], half_pixel_centers=True)


def _prelu() -> bytes:
    x = tensor((1, 4, 4, 3), "int8", scale=0.05, zero_point=2, name="x")
    alpha = const(np.array([10, -20, 64], np.int8).reshape(1, 1, 3), scale=0.01, zero_point=0, name="alpha")
    y = tensor((1, 4, 4, 3), "int8", scale=0.04, zero_point=-3, name="y")
    return op_model("PRELU", [x, alpha], [y])


BUILT: dict[str, Callable[[], bytes]] = {
    "LOGISTIC_int8": lambda: _unary("LOGISTIC", out_q=(1 / 256, -128)),
    "TANH_int8": lambda: _unary("TANH", out_q=(1 / 128, 0)),
    "LOGISTIC_int16": lambda: _unary("LOGISTIC", "int16", in_q=(1 / 2048, 0), out_q=(1 / 32768, 0)),
    "TANH_int16": lambda: _unary("TANH", "int16", in_q=(1 / 2048, 0), out_q=(1 / 32768, 0)),
    "LEAKY_RELU": lambda: _unary("LEAKY_RELU", out_q=(0.04, -5), alpha=0.2),
    "RELU": lambda: _unary("RELU", out_q=(0.03, -128)),
    "RELU6": lambda: _unary("RELU6", out_q=(0.03, -128)),
    "ABS": lambda: _unary("ABS", out_q=(0.03, -128)),
    "EXP": lambda: _unary("EXP", in_q=(0.02, 3), out_q=(0.05, -128)),
    "LOG": lambda: _unary("LOG", in_q=(0.05, -128), out_q=(0.05, 10)),
    "DIV": lambda: _binary("DIV"),
    "MAXIMUM": lambda: _binary("MAXIMUM", qa=(0.05, 3), qb=(0.05, 3), qo=(0.05, 3)),
    "ADD_int16": lambda: _binary("ADD", "int16", qa=(0.001, 0), qb=(0.002, 0), qo=(0.003, 0)),
    "MUL_int16": lambda: _binary("MUL", "int16", qa=(0.001, 0), qb=(0.002, 0), qo=(0.003, 0)),
    "SUM": lambda: _reduce("SUM"),
    "MEAN_int16": lambda: _reduce("MEAN", "int16"),
    "RESIZE_BILINEAR": _resize,
    "PRELU": _prelu,
}

#: (model, rounding): every golden model as LiteRT runs it, the single-operator golden models in single
#: rounding too, and the one-operator models above ("built:NAME", random inputs).
CASES = (
    [(n, "double") for n in NAMES]
    + [(n, "single") for n in NAMES if n.startswith("op_")]
    + [(f"built:{k}", "double") for k in BUILT]
)


def run_cli(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code)


def vector_data(name: str) -> dict[str, np.ndarray]:
    vec = np.load(vectors_path(name))
    return {k: vec[k] for k in vec.files if k.startswith("input_")}


@dataclass
class Case:
    run: Trace
    raws: list[RawInput]


def _random_inputs(model: refquant.Model) -> list[np.ndarray]:
    rng = np.random.default_rng(20240601)
    out = []
    for i in model.main.inputs:
        t = model.main.tensors[i]
        info = np.iinfo(t.np_dtype)
        out.append(rng.integers(info.min, info.max + 1, size=(1, *t.shape)).astype(t.np_dtype))
    return out


@functools.cache
def case(name: str, rounding: str) -> Case | None:
    """The model run on its stored (golden) or random (built) input; None when an op is not implemented yet."""
    if name.startswith("built:"):
        model = refquant.load_model(BUILT[name.removeprefix("built:")]())
        raws = load_raw_inputs(model, _random_inputs(model))
    else:
        model = refquant.load_model(model_path(name))
        raws = load_raw_inputs(model, vector_data(name))
    try:
        run = Engine(model, rounding=rounding).run([convert_input(r)[0] for r in raws])
    except refquant.UnsupportedOpError:
        return None
    return Case(run, raws)


def traceable(opcode: str, data: OpData) -> bool:
    return type(data).trace is not OpData.trace or opcode in COPY_OPS


@functools.cache
def sites() -> dict[tuple[str, str], list[tuple[tuple[str, str], int]]]:
    """(opcode, OpData class) -> [((model, rounding), output tensor)] over all golden models."""
    out: dict[tuple[str, str], list] = {}
    for key in CASES:
        c = case(*key)
        if c is None:
            continue
        for op in c.run.subgraph.operators:
            data = c.run.op_data[op.index]
            for o in op.outputs:
                if o in c.run.values and np.size(c.run.values[o]):
                    out.setdefault((op.opcode, type(data).__name__), []).append((key, o))
    return out


def _families() -> list[tuple[str, str]]:
    return sorted(sites())


@pytest.mark.parametrize("family", _families(), ids=lambda f: f"{f[0]}-{f[1]}")
def test_trace_of_random_elements_ends_at_the_run_value(family):
    opcode, cls = family
    places = sites()[family]
    c0 = case(*places[0][0])
    op0 = next(op for op in c0.run.subgraph.operators if places[0][1] in op.outputs)
    assert traceable(opcode, c0.run.op_data[op0.index]), f"{opcode}: {cls} does not implement OpData.trace()"

    @given(st.data())
    def check(data):
        key, tensor = data.draw(st.sampled_from(places), label="site")
        c = case(*key)
        shape = np.shape(c.run.values[tensor])
        element = data.draw(st.tuples(*[st.integers(0, d - 1) for d in shape]), label="element")
        tr = trace_in_run(c.run, tensor, element, raw_inputs=c.raws)
        assert tr.steps, "no steps"
        assert tr.matches_run, f"{key}: tensor {tensor} {list(element)}:\n{format_trace(tr)}"
        assert all(isinstance(s.name, str) and s.name for s in tr.steps)

    check()


def test_every_issue_family_is_traced():
    """The op families the issue names all have traces (conv/FC/matmul, add/sub/mul, pools, mean, softmax, LUT, quantize)."""
    traced = {op for (op, cls), places in sites().items() if places and _has_trace(op, places[0])}
    wanted = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "BATCH_MATMUL", "ADD", "SUB", "MUL"}
    wanted |= {"AVERAGE_POOL_2D", "MAX_POOL_2D", "MEAN", "SOFTMAX", "QUANTIZE", "HARD_SWISH", "GELU", "RSQRT"}
    wanted |= {"LOGISTIC", "TANH", "LEAKY_RELU", "RELU", "DIV", "SUM", "RESIZE_BILINEAR", "PRELU"}
    present = {op for op, _ in sites()}
    assert (wanted & present) - traced == set()


def _has_trace(opcode: str, place: tuple[tuple[str, str], int]) -> bool:
    c = case(*place[0])
    op = next(op for op in c.run.subgraph.operators if place[1] in op.outputs)
    return traceable(opcode, c.run.op_data[op.index])


# ---- graph inputs and constants --------------------------------------------------------------------


def test_quantized_graph_input_shows_the_quantize_arithmetic():
    name = "digits_int8_io"
    model = refquant.load_model(model_path(name))
    t = model.main.tensors[model.main.inputs[0]]
    x = np.random.default_rng(2).random((2, 8, 8, 1), dtype=np.float32)
    x[1, 3, 4, 0] = 0.5 * float(t.quantization.scale[0])  # half a step: a tie, rounded away from zero
    tr = trace_element(model, {"input_0": x}, t.index, "3,4,0", sample=1)
    assert tr.kind == "input" and tr.matches_run and tr.element == (0, 3, 4, 0)
    names = [s.name for s in tr.steps]
    assert names == ["real input", "x / scale", "round", "+ zero point", "clamp"]
    assert tr.steps[1].value == np.float32(0.5) and tr.steps[2].value == 1
    want = quantize(x[1, 3, 4, 0], t.quantization.scale[0], t.quantization.zero_point[0], np.int8)
    assert tr.value == want


def test_already_quantized_input_and_constant():
    tr = trace_element(model_path(CONV), vector_data(CONV), 0, (0, 1, 2, 0))
    assert tr.kind == "input" and len(tr.steps) == 1 and "already quantized" in tr.steps[0].detail
    model = refquant.load_model(model_path(CONV))
    w = next(t for t in model.main.tensors if t.is_constant and t.dtype == "int8")
    tr = trace_element(model, vector_data(CONV), w.name, (1, 0, 2, 1))
    assert tr.kind == "constant" and tr.value == w.data[1, 0, 2, 1] and "real value" in tr.steps[0].detail
    assert "a constant of the model" in format_trace(tr)


# ---- command line ----------------------------------------------------------------------------------


@pytest.fixture()
def conv_npz(tmp_path):
    np.savez(tmp_path / "x.npz", **vector_data(CONV))
    return tmp_path / "x.npz"


def test_cli_text(conv_npz, capsys):
    argv = ["trace", str(model_path(CONV)), "--input", str(conv_npz), "--tensor", "3", "--element", "0,2,3,4"]
    assert run_cli(argv) == 0
    text = capsys.readouterr().out
    assert "produced by operator 0 (CONV_2D)" in text and "SRDHM" in text and "RDBPOT" in text
    assert "equals the value the run produced" in text


def test_cli_json_schema_and_names(conv_npz, capsys):
    model = refquant.load_model(model_path(CONV))
    name = model.main.tensors[3].name
    argv = ["trace", str(model_path(CONV)), "--input", str(conv_npz), "--tensor", name, "--element", "[0, 5, 5, 7]"]
    assert run_cli([*argv, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) >= {"tensor_index", "element", "value", "steps"}
    assert doc["tensor_index"] == 3 and doc["element"] == [0, 5, 5, 7] and doc["matches_run"]
    assert all(set(s) == {"name", "value", "detail"} for s in doc["steps"])
    assert doc["steps"][-1]["value"] == doc["value"]
    json.dumps(doc, allow_nan=False)


def test_cli_single_rounding(conv_npz, capsys):
    argv = ["trace", str(model_path(CONV)), "--input", str(conv_npz), "--tensor", "3", "--element", "0,1,1,1"]
    assert run_cli([*argv, "--rounding", "single", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["matches_run"] and any("single rounding" in s["detail"] for s in doc["steps"])


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--tensor", "3", "--element", "0,6,0,0"], "is not an index into shape [1, 6, 6, 8]"),
        (["--tensor", "3", "--element", "a,b"], "not a list of integers"),
        (["--tensor", "no such tensor", "--element", "0"], "no tensor named"),
        (["--tensor", "99", "--element", "0"], "out of range"),
        (["--tensor", "3", "--element", "0,0,0,0", "--sample", "1"], "sample 1 does not exist"),
        (["--tensor", "3"], "is not an index into shape"),
    ],
)
def test_cli_errors_exit_2(conv_npz, capsys, extra, message):
    assert run_cli(["trace", str(model_path(CONV)), "--input", str(conv_npz), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_parse_element():
    assert parse_element("0,3,4,7", (1, 8, 8, 8)) == (0, 3, 4, 7)
    assert parse_element("3, 4, 7", (1, 8, 8, 8)) == (0, 3, 4, 7)  # batch index of a batch of 1 may be omitted
    assert parse_element("", ()) == ()
    with pytest.raises(InputError):
        parse_element("-1,0", (2, 2))
