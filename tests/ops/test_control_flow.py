"""IF and WHILE run other subgraphs; bit-exact with LiteRT, and runaway or recursive graphs are refused."""

from __future__ import annotations

import numpy as np
import pytest

import refquant
from refquant.errors import EvalError, PrepareError
from refquant.ops import control_flow
from refquant.testing import const, graph, model_bytes, operator, tensor
from tests.opcheck import check_against_litert, run_refquant


def _if_model() -> bytes:
    c, x, y = (
        tensor((1,), "bool", name="cond"),
        tensor((2, 3), "float32", name="x"),
        tensor((2, 3), "float32", name="y"),
    )
    branches = []
    for op in ("ADD", "MUL"):
        xi, yo = tensor((2, 3), "float32", name="x"), tensor((2, 3), "float32", name="y")
        branches.append(graph([operator(op, [xi, xi], [yo])], name=op.lower()))
    main = operator("IF", [c, x], [y], options_type="IfOptions", then_subgraph_index=1, else_subgraph_index=2)
    return model_bytes(main, *branches)


def _while_model(bound: bool = True) -> bytes:
    """acc += x while n != 0; n -= 1 (the condition is CAST(n) to bool)."""
    n, x = tensor((1,), "int32", name="n"), tensor((3,), "float32", name="x")
    n_out, x_out = tensor((1,), "int32", name="n_out"), tensor((3,), "float32", name="x_out")
    main = operator(
        "WHILE", [n, x], [n_out, x_out], options_type="WhileOptions", cond_subgraph_index=1, body_subgraph_index=2
    )
    cn, cx, flag = tensor((1,), "int32", name="n"), tensor((3,), "float32", name="x"), tensor((1,), "bool", name="flag")
    cond = graph([operator("CAST", [cn], [flag])], inputs=[cn, cx], name="cond")  # x: an input CAST does not read
    bn, bx, one = (
        tensor((1,), "int32", name="n"),
        tensor((3,), "float32", name="x"),
        const(np.array([1], np.int32), name="one"),
    )
    n2, x2 = tensor((1,), "int32", name="n2"), tensor((3,), "float32", name="x2")
    body = graph([operator("SUB", [bn, one], [n2]), operator("ADD", [bx, bx], [x2])], name="body")
    return model_bytes(main, cond, body)


@pytest.mark.oracle
@pytest.mark.parametrize("cond", [True, False])
def test_if_matches_litert(litert, cond):
    x = np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5
    assert check_against_litert(litert, _if_model(), [np.array([cond]), x], intermediates=False) == "ok"


@pytest.mark.oracle
@pytest.mark.parametrize("n", [0, 1, 5])
def test_while_matches_litert(litert, n):
    x = np.array([0.5, -1.25, 3.0], np.float32)
    assert check_against_litert(litert, _while_model(), [np.array([n], np.int32), x], intermediates=False) == "ok"
    trace = run_refquant(_while_model(), [np.array([n], np.int32), x])
    np.testing.assert_array_equal(trace.values[trace.model.main.outputs[1]], x * 2.0**n)


def test_runaway_while_raises(monkeypatch):
    monkeypatch.setattr(control_flow, "MAX_WHILE_ITERATIONS", 50)
    it = refquant.Interpreter(model_content=_while_model())
    it.allocate_tensors()
    it.set_tensor(0, np.array([-1], np.int32))  # counts down forever
    it.set_tensor(1, np.zeros(3, np.float32))
    with pytest.raises(EvalError, match="50 iterations"):
        it.invoke()


def test_recursive_subgraphs_are_refused():
    branches = {"options_type": "IfOptions", "then_subgraph_index": 1, "else_subgraph_index": 1}
    c, y = tensor((1,), "bool", name="cond"), tensor((1,), "bool", name="y")
    c1, c2, y1 = tensor((1,), "bool", name="cond"), tensor((1,), "bool", name="x"), tensor((1,), "bool", name="y")
    again = graph([operator("IF", [c1, c1, c2], [y1], **branches)], name="again")
    it = refquant.Interpreter(model_content=model_bytes(operator("IF", [c, c, c], [y], **branches), again))
    with pytest.raises(PrepareError, match="calls itself"):
        it.allocate_tensors()
