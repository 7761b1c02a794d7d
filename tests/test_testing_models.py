"""refquant.testing.models: tensor descriptions -> the same models ModelBuilder writes."""

from __future__ import annotations

import numpy as np
import pytest

import refquant
from refquant.testing import build_model, const, graph, model_bytes, op_model, operator, tensor
from refquant.tflite.builder import ModelBuilder


def test_one_operator_model_is_byte_identical_to_model_builder():
    w = np.arange(12, dtype=np.int8).reshape(3, 4)
    b = ModelBuilder()
    x = b.add_input("x", (1, 4), "int8", scale=0.05, zero_point=3)
    wt = b.add_constant("w", w, scale=[0.01, 0.02, 0.03], zero_point=0, quantized_dimension=0)
    y = b.add_tensor("y", (1, 3), "int8", scale=0.1, zero_point=-2)
    b.add_operator("FULLY_CONNECTED", [x, wt, -1], [y], keep_num_dims=True)
    b.mark_output(y)
    mine = op_model(
        "FULLY_CONNECTED",
        [
            tensor((1, 4), "int8", scale=0.05, zero_point=3, name="x"),
            const(w, scale=[0.01, 0.02, 0.03], zero_point=0, name="w"),
            None,
        ],
        [tensor((1, 3), "int8", scale=0.1, zero_point=-2, name="y")],
        keep_num_dims=True,
    )
    assert mine == b.build()


def test_chain_numbers_tensors_in_creation_order_and_finds_graph_inputs_and_outputs():
    x = tensor((2, 3), "int8", scale=0.5, zero_point=1, name="x")
    m = tensor((2,), "int32", name="m")
    t = tensor((1,), "int8", scale=0.5, zero_point=1, name="t")
    r = tensor((1,), "int32", name="r")
    y = tensor((1,), "int8", scale=0.5, zero_point=1, name="y")
    model = build_model([operator("TILE", [x, m], [t]), operator("RESHAPE", [t, r], [y])])
    sg = model.subgraphs[0]
    assert [t.name for t in sg.tensors] == ["x", "m", "t", "r", "y"]
    assert sg.inputs == (0, 1, 3) and sg.outputs == (4,)
    assert [op.inputs for op in sg.operators] == [(0, 1), (2, 3)]
    b = ModelBuilder()
    xi = b.add_input("x", (2, 3), "int8", scale=0.5, zero_point=1)
    mi = b.add_input("m", (2,), "int32")
    ti = b.add_tensor("t", (1,), "int8", scale=0.5, zero_point=1)
    b.add_operator("TILE", [xi, mi], [ti])
    ri = b.add_input("r", (1,), "int32")
    yi = b.add_tensor("y", (1,), "int8", scale=0.5, zero_point=1)
    b.add_operator("RESHAPE", [ti, ri], [yi])
    b.mark_output(yi)
    assert model_bytes([operator("TILE", [x, m], [t]), operator("RESHAPE", [t, r], [y])]) == b.build()


def test_equal_descriptions_are_distinct_tensors_and_unnamed_ones_get_their_index():
    a, c = tensor((4,), "float32"), tensor((4,), "float32")
    sg = build_model(operator("ADD", [a, c], [tensor((4,), "float32")])).subgraphs[0]
    assert len(sg.tensors) == 3 and sg.inputs == (0, 1)
    assert [t.name for t in sg.tensors] == ["t0", "t1", "t2"]


def test_explicit_inputs_outputs_subgraphs_and_signatures():
    n, x = tensor((1,), "int32", name="n"), tensor((3,), "float32", name="x")
    n_out, x_out = tensor((1,), "int32", name="n_out"), tensor((3,), "float32", name="x_out")
    main = operator("WHILE", [n, x], [n_out, x_out], cond_subgraph_index=1, body_subgraph_index=2)
    cn, cx, flag = tensor((1,), "int32"), tensor((3,), "float32"), tensor((1,), "bool")
    cond = graph([operator("CAST", [cn], [flag])], inputs=[cn, cx], name="cond")  # cx: read by no operator
    bn, bx = tensor((1,), "int32"), tensor((3,), "float32")
    one = const(np.array([1], np.int32))
    n2, x2 = tensor((1,), "int32"), tensor((3,), "float32")
    body = graph([operator("SUB", [bn, one], [n2]), operator("ADD", [bx, bx], [x2])], outputs=[n2, x2], name="body")
    model = build_model(main, cond, body, signatures=[("run", {"n": n, "x": x}, {"x": x_out})])
    assert [sg.name for sg in model.subgraphs] == ["main", "cond", "body"]
    assert model.subgraphs[0].outputs == (2, 3)
    assert model.subgraphs[1].inputs == (0, 1)
    assert model.subgraphs[2].inputs == (0, 1) and model.subgraphs[2].tensors[2].data is not None
    assert model.signatures[0].inputs == (("n", 0), ("x", 1)) and model.signatures[0].outputs == (("x", 3),)
    it = refquant.Interpreter(model_content=model_bytes(main, cond, body))
    it.allocate_tensors()
    it.set_tensor(0, np.array([3], np.int32))
    it.set_tensor(1, np.array([1.0, -2.0, 0.5], np.float32))
    it.invoke()
    np.testing.assert_array_equal(it.get_tensor(3), np.array([8.0, -16.0, 4.0], np.float32))


def test_explicit_inputs_keep_their_order():
    a, c = tensor((4,), "float32"), tensor((4,), "float32")
    sg = build_model(graph([operator("ADD", [a, c], [tensor((4,), "float32")])], inputs=[c, a])).subgraphs[0]
    assert sg.inputs == (1, 0)


def test_options_are_checked_by_the_builder():
    with pytest.raises(refquant.ModelFormatError, match="no field"):
        op_model("ADD", [tensor((1,), "float32")] * 2, [tensor((1,), "float32")], beta=1.0)
