"""Resource limits across a whole run: work budget, nesting depth, shared subgraphs, folding against the bound.

Each test builds its hostile model itself (issue reproductions: nested WHILE loops that multiplied their
per-loop bounds, IF chains sharing a branch that prepared exponentially, 150 nested IFs ending in a
RecursionError, constant folding that allocated before the memory bound was checked).
"""

from __future__ import annotations

import numpy as np
import pytest

import refquant
from refquant.cli import main
from refquant.errors import ResourceLimitError
from refquant.graph import PreparedGraph
from refquant.limits import MAX_NESTING
from refquant.testing import const, graph, model_bytes, operator, tensor


def run_cli(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code)


def _nested_while(inner: int, outer: int) -> bytes:
    """An outer WHILE counting ``outer`` down whose body runs an inner WHILE counting ``inner`` down."""
    one = np.array([1], np.int32)

    def counter_cond(name: str):
        n, flag = tensor((1,), "int32", name="n"), tensor((1,), "bool", name="flag")
        return graph([operator("CAST", [n], [flag])], inputs=[n], name=name)

    def counter_body(name: str):
        n, n2 = tensor((1,), "int32", name="n"), tensor((1,), "int32", name="n2")
        return graph([operator("SUB", [n, const(one, name="one")], [n2])], name=name)

    # subgraph 1: outer cond (n_outer, n_inner) -> n_outer != 0
    on, oi, flag = tensor((1,), "int32", name="n"), tensor((1,), "int32", name="m"), tensor((1,), "bool", name="f")
    outer_cond = graph([operator("CAST", [on], [flag])], inputs=[on, oi], name="outer_cond")
    # subgraph 2: outer body: n_outer - 1, and an inner loop over a fresh copy of m
    bn, bm = tensor((1,), "int32", name="n"), tensor((1,), "int32", name="m")
    bn2, bm2 = tensor((1,), "int32", name="n2"), tensor((1,), "int32", name="m2")
    outer_body = graph(
        [
            operator("SUB", [bn, const(one, name="one")], [bn2]),
            operator("WHILE", [bm], [bm2], options_type="WhileOptions", cond_subgraph_index=3, body_subgraph_index=4),
        ],
        inputs=[bn, bm],
        outputs=[bn2, bm],  # the loop state keeps m, so the inner loop runs in full every time
        name="outer_body",
    )
    n, m = tensor((1,), "int32", name="n"), tensor((1,), "int32", name="m")
    n_out, m_out = tensor((1,), "int32", name="n_out"), tensor((1,), "int32", name="m_out")
    main_op = operator(
        "WHILE", [n, m], [n_out, m_out], options_type="WhileOptions", cond_subgraph_index=1, body_subgraph_index=2
    )
    return model_bytes(main_op, outer_cond, outer_body, counter_cond("inner_cond"), counter_body("inner_body"))


def _run(content: bytes, feeds: list[np.ndarray], **kw) -> refquant.Interpreter:
    it = refquant.Interpreter(model_content=content, **kw)
    it.allocate_tensors()
    for k, x in enumerate(feeds):
        it.set_tensor(it.get_input_details()[k]["index"], x)
    it.invoke()
    return it


def test_nested_loops_share_one_work_budget():
    content = _nested_while(inner=30, outer=20)
    feeds = [np.array([20], np.int32), np.array([30], np.int32)]
    # 20 outer iterations x (31 inner iterations + 1 + 2 operators) ... about 1,400 steps in all
    it = _run(content, feeds, max_steps=5_000)
    assert it.get_tensor(it.get_output_details()[0]["index"]).tolist() == [0]
    with pytest.raises(ResourceLimitError, match="work budget of 500 steps"):
        _run(content, feeds, max_steps=500)
    # each loop alone stays far below its per-loop bound: only the shared budget stops the pair
    with pytest.raises(ResourceLimitError, match="nested subgraphs included"):
        _run(
            _nested_while(inner=1000, outer=1000),
            [np.array([-1], np.int32), np.array([-1], np.int32)],
            max_steps=20_000,
        )


def test_max_steps_on_the_command_line(tmp_path, capsys):
    path = tmp_path / "loops.tflite"
    path.write_bytes(_nested_while(inner=50, outer=50))
    np.savez(tmp_path / "x.npz", n=np.array([50], np.int32), m=np.array([50], np.int32))
    argv = ["golden", str(path), "--input", str(tmp_path / "x.npz"), "--out", str(tmp_path / "out")]
    assert run_cli([*argv, "--max-steps", "100"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("refquant: error:") and "work budget of 100 steps" in err
    assert run_cli([*argv, "--max-steps", "1M"]) == 2
    assert "not a positive whole number" in capsys.readouterr().err
    assert run_cli([*argv, "--max-steps", "100000", "--memory-limit", "8"]) == 2
    assert "above the limit of 8 bytes" in capsys.readouterr().err
    assert run_cli([*argv, "--memory-limit", "lots"]) == 2
    assert "not a positive byte count" in capsys.readouterr().err
    assert run_cli([*argv, "--max-steps", "100000", "--memory-limit", "64M"]) == 0


def _if_chain(depth: int, shared: bool = True) -> bytes:
    """Subgraph k holds one IF whose branches are both subgraph k+1 (or k+1 and a twin); the last one adds."""
    subgraphs = []
    for k in range(1, depth + 1):
        c, x, y = tensor((1,), "bool", name="c"), tensor((4,), "float32", name="x"), tensor((4,), "float32", name="y")
        if k < depth:
            op = operator(
                "IF", [c, c, x], [y], options_type="IfOptions", then_subgraph_index=k + 1, else_subgraph_index=k + 1
            )
            subgraphs.append(graph([op], inputs=[c, x], outputs=[y], name=f"level{k}"))
        else:
            subgraphs.append(graph([operator("ADD", [x, x], [y])], inputs=[c, x], outputs=[y], name="leaf"))
    c, x, y = tensor((1,), "bool", name="c"), tensor((4,), "float32", name="x"), tensor((4,), "float32", name="y")
    main_op = operator("IF", [c, c, x], [y], options_type="IfOptions", then_subgraph_index=1, else_subgraph_index=1)
    return model_bytes(main_op, *subgraphs)


def test_shared_branches_are_prepared_once(monkeypatch):
    made = []
    real_init = PreparedGraph.__init__

    def counting(self, *a, **kw):
        made.append(a[1] if len(a) > 1 else kw.get("subgraph_index"))
        real_init(self, *a, **kw)

    monkeypatch.setattr(PreparedGraph, "__init__", counting)
    depth = 14  # 2^14 preparations without sharing
    it = _run(_if_chain(depth), [np.array([True]), np.arange(4, dtype=np.float32)])
    assert it.get_tensor(it.get_output_details()[0]["index"]).tolist() == [0.0, 2.0, 4.0, 6.0]
    assert len(made) <= 2 * (depth + 1), len(made)


def test_deep_nesting_is_a_named_error(capsys, tmp_path):
    content = _if_chain(MAX_NESTING + 20)
    with pytest.raises(ResourceLimitError, match=f"more than {MAX_NESTING} deep"):
        refquant.Interpreter(model_content=content).allocate_tensors()
    path = tmp_path / "deep.tflite"
    path.write_bytes(_if_chain(150))
    assert main(["inspect", str(path), "--arithmetic"]) == 0  # inspect reports it as a note, not a traceback
    assert "deep" in capsys.readouterr().out
    np.savez(tmp_path / "x.npz", c=np.array([True]), x=np.zeros((1, 4), np.float32))
    assert run_cli(["golden", str(path), "--input", str(tmp_path / "x.npz"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "RecursionError" not in err and "deep" in err and err.count("\n") == 1
    ok = _if_chain(MAX_NESTING - 2)
    it = _run(ok, [np.array([False]), np.ones(4, np.float32)])
    assert it.get_tensor(it.get_output_details()[0]["index"]).tolist() == [2.0] * 4


def test_constant_folding_checks_the_bound_before_allocating(monkeypatch):
    table = const(np.arange(1000, dtype=np.int32), name="table")
    idx = const(np.zeros(1 << 20, np.int32), name="idx")  # 4 MiB of indices -> 4 MiB gathered
    x, out, y = tensor((1,), "int32", name="x"), tensor((1 << 20,), "int32", name="g"), tensor((1,), "int32", name="y")
    ops = [
        operator("GATHER", [table, idx], [out], options_type="GatherOptions", axis=0),
        operator("SLICE", [out, const(np.array([0], np.int32)), const(np.array([1], np.int32))], [y]),
    ]
    content = model_bytes(graph(ops, inputs=[x], outputs=[y]))

    def no_fold(*a, **kw):
        raise AssertionError("folded before the bound was checked")

    monkeypatch.setattr(PreparedGraph, "_fold", no_fold)
    with pytest.raises(ResourceLimitError, match="above the limit of 1048576 bytes"):
        refquant.Interpreter(model_content=content, memory_limit=1 << 20).allocate_tensors()


def _pool(opcode: str, dtype: str, filt: int, size: int = 1) -> bytes:
    q = {"scale": 0.1, "zero_point": 0} if dtype != "float32" else {}
    x = tensor((1, size, size, 1), dtype, name="x", **q)
    y = tensor((1, size, size, 1), dtype, name="y", **q)
    return model_bytes(
        operator(
            opcode,
            [x],
            [y],
            options_type="Pool2DOptions",
            padding="SAME",
            stride_w=1,
            stride_h=1,
            filter_width=filt,
            filter_height=filt,
        )
    )


@pytest.mark.parametrize(
    "opcode,dtype", [("MAX_POOL_2D", "int16"), ("AVERAGE_POOL_2D", "int8"), ("MAX_POOL_2D", "float32")]
)
def test_huge_pool_filter_is_refused_before_running(opcode, dtype):
    """A 30000x30000 filter over a 1x1 input padded the input to 900M elements (3.5 GB) and ran for minutes."""
    with pytest.raises(ResourceLimitError, match="scratch"):
        refquant.Interpreter(model_content=_pool(opcode, dtype, 30000)).allocate_tensors()


def test_float_pool_taps_spend_the_work_budget():
    content = _pool("AVERAGE_POOL_2D", "float32", 300, size=4)
    with pytest.raises(ResourceLimitError, match="work budget of 50000"):
        _run(content, [np.ones((1, 4, 4, 1), np.float32)], max_steps=50_000)
    it = _run(content, [np.ones((1, 4, 4, 1), np.float32)], max_steps=200_000)
    assert it.get_tensor(it.get_output_details()[0]["index"]).tolist() == np.ones((1, 4, 4, 1)).tolist()


def test_softmax_temporaries_count_against_the_bound():
    """Quantized SOFTMAX holds about eight int64 arrays of its input: 64 bytes per int8 element."""
    x = tensor((1, 4096), "int8", name="x", scale=0.1, zero_point=0)
    y = tensor((1, 4096), "int8", name="y", scale=1 / 256, zero_point=-128)
    content = model_bytes(operator("SOFTMAX", [x], [y], options_type="SoftmaxOptions", beta=1.0))
    with pytest.raises(ResourceLimitError, match="262144 bytes of scratch"):
        refquant.Interpreter(model_content=content, memory_limit=200_000).allocate_tensors()
    refquant.Interpreter(model_content=content, memory_limit=300_000).allocate_tensors()


def _shared_tensor_table(references: int) -> bytes:
    """A model whose one subgraph lists the same Tensor table ``references`` times (a few MB of offsets)."""
    import flatbuffers

    b = flatbuffers.Builder(0)
    name = b.CreateString("t")
    b.StartObject(4)  # Tensor: shape, type, buffer, name
    b.PrependUOffsetTRelativeSlot(3, name, 0)
    tensor_pos = b.EndObject()
    b.StartVector(4, references, 4)
    for _ in range(references):
        b.PrependUOffsetTRelative(tensor_pos)
    tensors = b.EndVector()
    b.StartObject(5)  # SubGraph: tensors, inputs, outputs, operators, name
    b.PrependUOffsetTRelativeSlot(0, tensors, 0)
    sg = b.EndObject()
    b.StartVector(4, 1, 4)
    b.PrependUOffsetTRelative(sg)
    sgs = b.EndVector()
    b.StartObject(1)  # Buffer 0: empty
    empty = b.EndObject()
    b.StartVector(4, 1, 4)
    b.PrependUOffsetTRelative(empty)
    bufs = b.EndVector()
    b.StartObject(5)  # Model: version, operator_codes, subgraphs, description, buffers
    b.PrependUint32Slot(0, 3, 0)
    b.PrependUOffsetTRelativeSlot(2, sgs, 0)
    b.PrependUOffsetTRelativeSlot(4, bufs, 0)
    model = b.EndObject()
    b.Finish(model, file_identifier=b"TFL3")
    return bytes(b.Output())


def test_a_table_referenced_many_times_is_refused_early():
    from refquant.errors import ModelFormatError
    from refquant.tflite.flatbuf import MAX_OBJECTS

    ok = refquant.load_model(_shared_tensor_table(1000))
    assert len(ok.main.tensors) == 1000 and ok.main.tensors[999].name == "t"
    with pytest.raises(ModelFormatError, match=f"more than {MAX_OBJECTS} table references"):
        refquant.load_model(_shared_tensor_table(MAX_OBJECTS + 10))
