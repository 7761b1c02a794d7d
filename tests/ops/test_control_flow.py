"""IF and WHILE run other subgraphs; bit-exact with LiteRT, and runaway or recursive graphs are refused."""

from __future__ import annotations

import numpy as np
import pytest

import refquant
from refquant.errors import EvalError, PrepareError
from refquant.ops import control_flow
from refquant.tflite.builder import ModelBuilder
from tests.opcheck import check_against_litert, run_refquant


def _if_model() -> bytes:
    b = ModelBuilder()
    c = b.add_input("cond", (1,), "bool")
    x = b.add_input("x", (2, 3), "float32")
    y = b.add_tensor("y", (2, 3), "float32")
    b.add_operator("IF", [c, x], [y], options_type="IfOptions", then_subgraph_index=1, else_subgraph_index=2)
    b.mark_output(y)
    for op in ("ADD", "MUL"):
        b.new_subgraph(op.lower())
        xi = b.add_input("x", (2, 3), "float32")
        yo = b.add_tensor("y", (2, 3), "float32")
        b.add_operator(op, [xi, xi], [yo])
        b.mark_output(yo)
    return b.build()


def _while_model(bound: bool = True) -> bytes:
    """acc += x while n != 0; n -= 1 (the condition is CAST(n) to bool)."""
    b = ModelBuilder()
    n = b.add_input("n", (1,), "int32")
    x = b.add_input("x", (3,), "float32")
    n_out = b.add_tensor("n_out", (1,), "int32")
    x_out = b.add_tensor("x_out", (3,), "float32")
    b.add_operator(
        "WHILE", [n, x], [n_out, x_out], options_type="WhileOptions", cond_subgraph_index=1, body_subgraph_index=2
    )
    b.mark_output(n_out, x_out)
    b.new_subgraph("cond")
    cn = b.add_input("n", (1,), "int32")
    b.add_input("x", (3,), "float32")
    flag = b.add_tensor("flag", (1,), "bool")
    b.add_operator("CAST", [cn], [flag])
    b.mark_output(flag)
    b.new_subgraph("body")
    bn = b.add_input("n", (1,), "int32")
    bx = b.add_input("x", (3,), "float32")
    one = b.add_constant("one", np.array([1], np.int32))
    n2 = b.add_tensor("n2", (1,), "int32")
    x2 = b.add_tensor("x2", (3,), "float32")
    b.add_operator("SUB", [bn, one], [n2])
    b.add_operator("ADD", [bx, bx], [x2])
    b.mark_output(n2, x2)
    return b.build()


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
    b = ModelBuilder()
    c = b.add_input("cond", (1,), "bool")
    y = b.add_tensor("y", (1,), "bool")
    b.add_operator("IF", [c, c, c], [y], options_type="IfOptions", then_subgraph_index=1, else_subgraph_index=1)
    b.mark_output(y)
    b.new_subgraph("again")
    c1 = b.add_input("cond", (1,), "bool")
    c2 = b.add_input("x", (1,), "bool")
    y1 = b.add_tensor("y", (1,), "bool")
    b.add_operator("IF", [c1, c1, c2], [y1], options_type="IfOptions", then_subgraph_index=1, else_subgraph_index=1)
    b.mark_output(y1)
    it = refquant.Interpreter(model_content=b.build())
    with pytest.raises(PrepareError, match="calls itself"):
        it.allocate_tensors()
