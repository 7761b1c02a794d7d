"""The engine seam: operator k prepared and run from any input values, in every command.

The model at the centre takes a RESHAPE target from a graph input, so RESHAPE and everything after it
can only be prepared when the run's values are known. Every command (Interpreter, compare, golden,
trace, diff) must run it, and operators must evaluate from a dump's values exactly as in the run.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import refquant
from refquant import ModelBuilder
from refquant.cli import main
from refquant.engine import Engine, EngineOptions
from refquant.errors import InputError, ResourceLimitError
from refquant.golden import export_golden
from refquant.tracer import trace_element


def runtime_shaped_model() -> bytes:
    """x int8 (1,2,6) -> RESHAPE to the graph input ``target`` -> LOGISTIC -> MUL with x reshaped again."""
    b = ModelBuilder()
    x = b.add_input("x", (1, 2, 6), "int8", scale=0.05, zero_point=3)
    target = b.add_input("target", (3,), "int32")
    r = b.add_tensor("reshaped", (1,), "int8", scale=0.05, zero_point=3)
    b.add_operator("RESHAPE", [x, target], [r])
    s = b.add_tensor("sigmoid", (1,), "int8", scale=1 / 256, zero_point=-128)
    b.add_operator("LOGISTIC", [r], [s])
    y = b.add_tensor("y", (1,), "int8", scale=0.02, zero_point=-5)
    b.add_operator("MUL", [s, r], [y])
    b.mark_output(y)
    return b.build()


def inputs(n: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {
        "x": rng.integers(-128, 128, size=(n, 1, 2, 6)).astype(np.int8),
        "target": np.tile(np.array([3, 2, 2], np.int32), (n, 1)),
    }


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "runtime_shaped.tflite"
    path.write_bytes(runtime_shaped_model())
    return path


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, **inputs())
    return path


def interpreter_outputs(model: bytes, x: np.ndarray, target: np.ndarray) -> dict[int, np.ndarray]:
    it = refquant.Interpreter(model_content=model)
    it.allocate_tensors()
    it.set_tensor(0, x)
    it.set_tensor(1, target)
    it.invoke()
    return dict(it.trace.values)


def test_operators_after_a_runtime_shape_are_prepared_at_run_time():
    g = Engine(refquant.load_model(runtime_shaped_model())).graph
    assert [g.prepared(k) for k in range(3)] == [None, None, None]
    assert g.shape_of(2) is None  # RESHAPE's output shape comes from the data


def test_engine_run_equals_interpreter():
    model = runtime_shaped_model()
    d = inputs(1)
    run = Engine(refquant.load_model(model)).run([d["x"][0], d["target"][0]])
    want = interpreter_outputs(model, d["x"][0], d["target"][0])
    assert run.values[4].shape == (3, 2, 2)
    for i, v in want.items():
        np.testing.assert_array_equal(run.values[i], v)
    assert len(run.op_data) == 3 and all(d is not None for d in run.op_data)


def test_eval_op_from_another_runs_values_reproduces_every_operator():
    """Operator by operator from a run's values (what a dump holds), the outputs equal the run's."""
    model = refquant.load_model(runtime_shaped_model())
    d = inputs(1)
    run = Engine(model).run([d["x"][0], d["target"][0]])
    fresh = Engine(model)  # a different engine: nothing of the run is cached in it
    for op in model.main.operators:
        arrays = [np.array(run.values[i]) for i in op.inputs]  # copies, as read back from files
        outs = fresh.eval_op(op.index, arrays)
        for o, v in zip(op.outputs, outs):
            np.testing.assert_array_equal(v, run.values[o])
        assert fresh.op_data(op.index, arrays).params().keys() == run.op_data[op.index].params().keys()


def fc_model(w: np.ndarray) -> refquant.Model:
    b = ModelBuilder()
    x = b.add_input("x", (2, 4), "int8", scale=0.1, zero_point=0)
    wt = b.add_constant("w", w, scale=0.05, zero_point=0)
    y = b.add_tensor("y", (2, 3), "int8", scale=0.2, zero_point=1)
    b.add_operator("FULLY_CONNECTED", [x, wt, -1], [y])
    b.mark_output(y)
    return refquant.load_model(b.build())


def test_op_data_reuses_the_prepared_data_only_when_it_fits():
    w = np.arange(-6, 6, dtype=np.int8).reshape(3, 4)
    eng = Engine(fc_model(w))
    g = eng.graph
    prepared = g.prepared(0)
    wv = g.static_value(1)
    xs = np.arange(8, dtype=np.int8).reshape(2, 4) * 9
    assert eng.op_data(0, [xs, wv, None]) is prepared
    assert eng.op_data(0, [xs, np.array(wv), None]) is prepared  # equal constant values still fit
    other_w = np.array(wv)
    other_w[0] = 100
    assert eng.op_data(0, [xs, other_w, None]) is not prepared
    want = Engine(fc_model(other_w)).run([xs]).values[2]
    np.testing.assert_array_equal(eng.eval_op(0, [xs, other_w, None])[0], want)
    bigger = eng.op_data(0, [np.ones((5, 4), np.int8), wv, None])
    assert bigger.output_shapes == ((5, 3),)
    assert g.prepared(0) is prepared and eng.graph is g  # preparing for given values changes nothing


@pytest.mark.parametrize(
    "k, arrays, message",
    [
        (7, [], "operator 7 does not exist"),
        (0, [np.zeros((2, 4), np.int8)], "got 1 input arrays"),
        (0, [np.zeros((2, 4), np.float32), None, None], "got float32, expected int8"),
        (0, [None, None, None], "input 0 (tensor 0) has no value"),
    ],
)
def test_eval_op_rejects_bad_arguments_by_name(k, arrays, message):
    eng = Engine(fc_model(np.ones((3, 4), np.int8)))
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        eng.eval_op(k, arrays)


def test_engine_options_are_checked_once():
    with pytest.raises(InputError, match="rounding must be one of"):
        EngineOptions(rounding="nearest")
    with pytest.raises(InputError, match="float_accumulation must be one of"):
        Engine(refquant.load_model(runtime_shaped_model()), float_accumulation="float16")
    with pytest.raises(InputError, match="memory_limit"):
        EngineOptions(memory_limit=0)


def test_control_flow_bodies_get_the_callers_memory_limit():
    """An IF branch is prepared under the engine's options: its tensors count against the caller's bound."""
    b = ModelBuilder()
    then_sg = b.new_subgraph("then")
    b.use_subgraph(then_sg)
    a = b.add_input("a", (256, 256), "float32")
    big = b.add_tensor("big", (256, 256), "float32")
    b.add_operator("ADD", [a, a], [big])
    b.mark_output(big)
    b.use_subgraph(0)
    cond = b.add_input("cond", (1,), "bool")
    x = b.add_input("x", (256, 256), "float32")
    y = b.add_tensor("y", (256, 256), "float32")
    b.add_operator("IF", [cond, x], [y], then_subgraph_index=then_sg, else_subgraph_index=then_sg)
    b.mark_output(y)
    model = refquant.load_model(b.build())
    assert Engine(model).graph.prepared(0) is not None  # fits the default bound
    with pytest.raises(ResourceLimitError, match="subgraph 1"):
        Engine(model, memory_limit=300_000).prepare()


# ---------------------------------------------------------------------------------------------
# Every command on the run-time-shaped model


def test_compare_runs_a_model_with_runtime_shapes(model_file, data_file):
    report = refquant.compare(model_file, inputs=data_file, progress=False)
    names = {t.name for t in report.tensors}
    assert {"reshaped", "sigmoid", "y"} <= names
    y = next(t for t in report.tensors if t.name == "y")
    assert tuple(y.shape) == (3, 2, 2)
    assert y.local is not None and y.local.count > 0


def test_compare_cli_runs_a_model_with_runtime_shapes(model_file, data_file, tmp_path, capsys):
    assert main(["compare", str(model_file), "--input", str(data_file), "--no-progress"]) == 0
    assert "DeferredPrepare" not in capsys.readouterr().out


def test_golden_trace_and_diff_run_a_model_with_runtime_shapes(model_file, data_file, tmp_path, capsys):
    man = export_golden(model_file, data_file, tmp_path / "a", accumulators=True)
    assert [op["opcode"] for op in man["ops"]] == ["RESHAPE", "LOGISTIC", "MUL"]
    out = next(t for t in man["tensors"] if t["name"] == "y")
    assert out["shape"] == [3, 2, 2]
    d = inputs()
    want = interpreter_outputs(runtime_shaped_model(), d["x"][1], d["target"][1])[out["index"]]
    np.testing.assert_array_equal(np.load(tmp_path / "a" / out["file"])[1], want)
    assert main(["golden", str(model_file), "--input", str(data_file), "--out", str(tmp_path / "b")]) == 0
    assert main(["diff", str(tmp_path / "a"), str(tmp_path / "b"), "--json"]) == 0
    capsys.readouterr()
    tr = trace_element(model_file, data_file, "y", "2,1,0", sample=1)
    assert tr.matches_run and tr.opcode == "MUL" and tr.arithmetic["rounding"] == "double"
    assert main(["trace", str(model_file), "--input", str(data_file), "--tensor", "y", "--element", "2,1,0"]) == 0
    assert "equals the value the run produced" in capsys.readouterr().out
    assert (
        main(["trace", str(model_file), "--input", str(data_file), "--tensor", "y", "--element", "0,0,0", "--json"])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["arithmetic"] == {
        "arithmetic": "litert-ref",
        "runtime": "ai-edge-litert 2.3.0, OpResolverType.BUILTIN_REF (x86-64)",
        "rounding": "double",
        "float_accumulation": "float64",
    }


# ---------------------------------------------------------------------------------------------
# Dumps: every operator recomputed from another implementation's own values (diff --isolate)


def _simulated_device(model: refquant.Model, x: np.ndarray, broken_op: int) -> dict[int, np.ndarray]:
    """Run ``model`` operator by operator through the seam, with one element of ``broken_op``'s output off by one."""
    eng = Engine(model)
    sg = model.main
    values: dict[int, np.ndarray] = {sg.inputs[0]: x}
    values.update({t.index: t.data for t in sg.tensors if t.is_constant})
    for op in sg.operators:
        outs = eng.eval_op(op.index, [values[i] if i >= 0 else None for i in op.inputs])
        if op.index == broken_op:
            out = np.array(outs[0])
            flat = out.reshape(-1)
            info = np.iinfo(out.dtype)
            flat[0] = flat[0] + 1 if flat[0] < info.max else flat[0] - 1
            outs = [out, *outs[1:]]
        values.update(zip(op.outputs, outs))
    return values


def test_isolate_names_exactly_the_broken_operator(tmp_path, capsys):
    from refquant.diff import isolate_operators
    from refquant.golden import write_dump
    from tests.golden_models import model_path, vectors_path

    name = "digits_int8_ptq"
    path = model_path(name)
    model = refquant.load_model(path)
    x = np.load(vectors_path(name))["input_0"]
    x = np.concatenate([x, x[:, ::-1] * 0.5])  # two samples of shape (1, 8, 8, 1), stacked on the batch axis
    np.savez(tmp_path / "data.npz", input_0=x)
    export_golden(path, tmp_path / "data.npz", tmp_path / "ref")
    broken = 2
    runs = [_simulated_device(model, x[s : s + 1], broken) for s in range(2)]
    act = [t.index for t in model.main.tensors if not t.is_constant]
    write_dump(tmp_path / "dev", {i: np.stack([r[i] for r in runs]) for i in act}, model=model)

    same = isolate_operators(tmp_path / "ref", tmp_path / "ref")
    assert same["isolated"] == [] and all(e["status"] == "equal" for e in same["operators"])
    doc = isolate_operators(tmp_path / "ref", tmp_path / "dev")
    assert [e["op_index"] for e in doc["isolated"]] == [broken]
    e = doc["isolated"][0]
    assert (
        e["mismatched"] == 2
        and e["max_lsb"] == 1
        and e["first_mismatch"]["element"]
        == [0] * (len(model.main.tensors[model.main.operators[broken].outputs[0]].shape))
    )
    consumers = [op.index for op in model.main.operators if model.main.operators[broken].outputs[0] in op.inputs]
    assert consumers and all(doc["operators"][k]["inherited"] for k in consumers)
    assert main(["diff", str(tmp_path / "ref"), str(tmp_path / "dev"), "--isolate"]) == 1
    out = capsys.readouterr().out
    assert f"operator {broken} ({model.main.operators[broken].opcode})" in out
    assert main(["diff", str(tmp_path / "ref"), str(tmp_path / "dev"), "--isolate", "--json"]) == 1
    assert [e["op_index"] for e in json.loads(capsys.readouterr().out)["isolated"]] == [broken]


def test_isolate_runs_a_model_with_runtime_shapes(model_file, data_file, tmp_path, capsys):
    export_golden(model_file, data_file, tmp_path / "a")
    assert main(["diff", str(tmp_path / "a"), str(tmp_path / "a"), "--isolate", "--model", str(model_file)]) == 0
    assert "no operator is wrong given its inputs" in capsys.readouterr().out


def test_isolate_refuses_a_different_model(model_file, data_file, tmp_path):
    from refquant.diff import isolate_operators
    from tests.golden_models import model_path

    export_golden(model_file, data_file, tmp_path / "a")
    with pytest.raises(InputError, match="not the model REF was made from"):
        isolate_operators(tmp_path / "a", tmp_path / "a", model_path("digits_int8_ptq"))


def runtime_transpose_conv_model() -> bytes:
    """int16x8 TRANSPOSE_CONV whose output_shape is a graph input (as in tflite-micro's seanet models)."""
    rng = np.random.default_rng(11)
    b = ModelBuilder()
    shape = b.add_input("output_shape", (4,), "int32")
    w = b.add_constant(
        "w", rng.integers(-127, 128, size=(2, 3, 3, 2)).astype(np.int8), scale=[0.02, 0.03], quantized_dimension=0
    )
    x = b.add_input("x", (1, 3, 3, 2), "int16", scale=0.01, zero_point=0)
    bias = b.add_constant("bias", np.array([1000, -2000], np.int64), scale=[0.0002, 0.0003], quantized_dimension=0)
    y = b.add_tensor("y", (1, 6, 6, 2), "int16", scale=0.02, zero_point=0)
    b.add_operator("TRANSPOSE_CONV", [shape, w, x, bias], [y], padding="SAME", stride_h=2, stride_w=2)
    b.mark_output(y)
    return b.build()


def test_every_command_runs_a_runtime_shaped_transpose_conv(tmp_path, capsys):
    model = tmp_path / "tconv.tflite"
    model.write_bytes(runtime_transpose_conv_model())
    rng = np.random.default_rng(2)
    data = tmp_path / "data.npz"
    np.savez(
        data,
        output_shape=np.tile(np.array([1, 6, 6, 2], np.int32), (2, 1)),
        x=rng.integers(-3000, 3000, size=(2, 1, 3, 3, 2)).astype(np.int16),
    )
    it = refquant.Interpreter(model_path=model)
    it.allocate_tensors()
    it.set_tensor(0, np.array([1, 6, 6, 2], np.int32))
    it.set_tensor(2, np.load(data)["x"][1])
    it.invoke()
    want = it.get_tensor(4)
    assert want.shape == (1, 6, 6, 2)
    report = refquant.compare(model, inputs=data, progress=False)
    assert next(t for t in report.tensors if t.name == "y").local.count == 2 * 72
    man = export_golden(model, data, tmp_path / "g", accumulators=True)
    y = next(t for t in man["tensors"] if t["name"] == "y")
    np.testing.assert_array_equal(np.load(tmp_path / "g" / y["file"])[1], want)
    assert man["ops"][0]["accumulators"]
    tr = trace_element(model, data, "y", "0,5,5,1", sample=1)
    assert tr.matches_run and tr.value == want[0, 5, 5, 1]
    assert main(["diff", str(tmp_path / "g"), str(tmp_path / "g"), "--isolate"]) == 0
    assert "no operator is wrong given its inputs" in capsys.readouterr().out
