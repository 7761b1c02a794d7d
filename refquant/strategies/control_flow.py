"""IF and WHILE: the builders of :func:`~refquant.strategies.op_models`. The branches and the loop body are
one-op subgraphs."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from ..testing.harness import Case
from .base import draw_values
from .builder import Net, OpConfig, Quant, activation_quant, draw_any_values, draw_shape
from .registry import register


def _cf_body_ops(dtype: str) -> tuple[str, ...]:
    """One-op subgraph bodies that keep a tensor's type, shape and (for quantized types) parameters."""
    if dtype == "bool":
        return ("RESHAPE", "EQUAL")
    if dtype == "int32":
        return ("RESHAPE", "ADD", "MUL")
    return ("RESHAPE", "ADD", "MUL", "RELU")


def _cf_subgraph(
    net: Net, name: str, op: str, inputs: list[tuple[str, tuple[int, ...], str, Quant | None]], data: int
) -> None:
    """Add a subgraph whose inputs are ``inputs`` and whose output ``data`` is ``op`` of input ``data``
    (the other inputs pass through unchanged, WHILE state needs them)."""
    b = net.b
    b.new_subgraph(name)
    ids = [b.add_input(f"{name}_{n}", shape, dt, **(q.kwargs() if q else {})) for n, shape, dt, q in inputs]
    _, shape, dt, q = inputs[data]
    x = ids[data]
    y = b.add_tensor(f"{name}_out", shape, dt, **(q.kwargs() if q else {}))
    if op == "RESHAPE":
        b.add_operator("RESHAPE", [x, b.add_constant(f"{name}_shape", np.array(shape, np.int32).reshape(-1))], [y])
    elif op == "EQUAL":
        b.add_operator("EQUAL", [x, x], [y])
    elif op == "RELU":
        b.add_operator("RELU", [x], [y])
    else:  # ADD, MUL: same parameters in and out (multipliers below 1 for every quantized type)
        b.add_operator(op, [x, x], [y])
    b.mark_output(*[y if k == data else i for k, i in enumerate(ids)])


@register("IF", dtypes=("int8", "int16", "uint8", "float32", "int32", "bool"))
def _b_if(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    shape = draw_shape(draw, cfg)
    q = activation_quant(draw, dtype, 1e-3, 0.5)
    then_op = draw(st.sampled_from(_cf_body_ops(dtype)))
    else_op = draw(st.sampled_from(_cf_body_ops(dtype)))
    net = Net()
    ci = net.input("condition", draw_values(draw, "bool", (1,)))
    xi = net.input("x", draw_any_values(draw, dtype, shape), q)
    y = net.tensor("y", shape, dtype, q)
    net.b.add_operator(
        "IF", [ci, xi], [y], options_type="IfOptions", then_subgraph_index=1, else_subgraph_index=2
    )  # fmt: skip
    _cf_subgraph(net, "then", then_op, [("x", shape, dtype, q)], 0)
    _cf_subgraph(net, "else", else_op, [("x", shape, dtype, q)], 0)
    net.b.use_subgraph(0)
    return net.case([y], f"{opcode} {dtype}: then {then_op}, else {else_op}")


@register("WHILE", dtypes=("int8", "int16", "uint8", "float32", "int32", "bool"))
def _b_while(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    shape = draw_shape(draw, cfg)
    q = activation_quant(draw, dtype, 1e-3, 0.5)
    body_op = draw(st.sampled_from(_cf_body_ops(dtype)))
    n = draw(st.integers(0, 3))  # iterations: the loop counts n down to 0
    net = Net()
    ni = net.input("n", np.array([n], np.int32))
    xi = net.input("x", draw_any_values(draw, dtype, shape), q)
    n_out = net.tensor("n_out", (1,), "int32")
    x_out = net.tensor("x_out", shape, dtype, q)
    net.b.add_operator(
        "WHILE", [ni, xi], [n_out, x_out], options_type="WhileOptions", cond_subgraph_index=1, body_subgraph_index=2
    )
    b = net.b
    b.new_subgraph("cond")
    cn = b.add_input("cond_n", (1,), "int32")
    b.add_input("cond_x", shape, dtype, **(q.kwargs() if q else {}))
    flag = b.add_tensor("cond_flag", (1,), "bool")
    b.add_operator("CAST", [cn], [flag])  # n != 0
    b.mark_output(flag)
    b.new_subgraph("body")
    bn = b.add_input("body_n", (1,), "int32")
    bx = b.add_input("body_x", shape, dtype, **(q.kwargs() if q else {}))
    n2 = b.add_tensor("body_n2", (1,), "int32")
    b.add_operator("SUB", [bn, b.add_constant("body_one", np.array([1], np.int32))], [n2])
    x2 = b.add_tensor("body_x2", shape, dtype, **(q.kwargs() if q else {}))
    if body_op == "RESHAPE":
        b.add_operator("RESHAPE", [bx, b.add_constant("body_shape", np.array(shape, np.int32).reshape(-1))], [x2])
    elif body_op == "RELU":
        b.add_operator("RELU", [bx], [x2])
    else:
        b.add_operator(body_op, [bx, bx], [x2])
    b.mark_output(n2, x2)
    b.use_subgraph(0)
    return net.case([n_out, x_out], f"{opcode} {dtype}: {n} iteration(s) of {body_op}")
