"""Control flow: IF and WHILE run other subgraphs of the model (LiteRT ``kernels/if.cc``, ``while.cc``).

Each branch/body subgraph is prepared once, in prepare, for the shapes the operator feeds it, so
the checks of every operator inside happen at allocate time like any other. Shapes must be static
across WHILE iterations (the body's outputs must have its inputs' shapes); a body that changes
shapes is rejected with an UnsupportedOpError rather than re-prepared per iteration.

Hostile graphs are bounded (:mod:`refquant.limits`): nesting deeper than ``MAX_NESTING`` subgraphs is
refused, a subgraph reached along many paths is prepared once, and every WHILE iteration spends from the
run's one work budget.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import EvalError, PrepareError, ResourceLimitError
from ..limits import MAX_NESTING, spend
from .base import OpContext, OpData, Step

__all__ = ["prepare_if", "prepare_while", "MAX_WHILE_ITERATIONS"]

#: A WHILE loop running longer than this raises EvalError instead of hanging.
MAX_WHILE_ITERATIONS = 1_000_000
#: Subgraphs being prepared right now (outermost first): a subgraph calling itself is rejected.
_ACTIVE: ContextVar[tuple[int, ...]] = ContextVar("refquant_active_subgraphs", default=())
_PREPARED: ContextVar[dict[Any, Any] | None] = ContextVar("refquant_prepared_subgraphs", default=None)


def _subgraph(ctx: OpContext, key: str) -> int:
    index = ctx.option(key)
    if index is None or not 0 <= int(index) < len(ctx.model.subgraphs):
        raise ctx.error(f"{key} = {index} is not a subgraph of the model ({len(ctx.model.subgraphs)} subgraphs)")
    return int(index)


def _prepare_graph(ctx: OpContext, index: int, shapes: list[tuple[int, ...]], dtypes: list[str]) -> Any:
    from ..graph import PreparedGraph  # imported here: graph imports the op registry

    sg = ctx.model.subgraphs[index]
    if len(sg.inputs) != len(shapes):
        raise ctx.error(f"subgraph {index} has {len(sg.inputs)} inputs; the operator passes {len(shapes)}")
    for k, (i, dt) in enumerate(zip(sg.inputs, dtypes)):
        if sg.tensors[i].dtype != dt:
            raise ctx.error(f"subgraph {index} input {k} is {sg.tensors[i].dtype}; the operator passes {dt}")
    active = _ACTIVE.get() or (ctx.subgraph_index,)
    if index in active:
        raise ctx.error(f"subgraph {index} calls itself through control flow ({list(active)} -> {index})")
    if len(active) > MAX_NESTING:
        raise ctx.error(
            f"control flow nests subgraphs more than {MAX_NESTING} deep ({list(active[:4])} ... -> {index})",
            cls=ResourceLimitError,
        )
    # One subgraph reached along many paths (IF branches that share a subgraph, level after level) is
    # prepared once per input shapes in one top-level preparation, not once per path (exponential).
    cache = _PREPARED.get()
    key = (index, tuple(tuple(x) for x in shapes), ctx.engine_options)
    if cache is not None and key in cache:
        return cache[key]
    token = _ACTIVE.set(active + (index,))
    cache_token = _PREPARED.set({}) if cache is None else None
    try:
        # the caller's options, memory and work bounds included, hold inside the branch or body too
        graph = PreparedGraph(ctx.model, index, ctx.engine_options, {i: s for i, s in zip(sg.inputs, shapes)})
        _PREPARED.get()[key] = graph  # type: ignore[index]
        return graph
    finally:
        _ACTIVE.reset(token)
        if cache_token is not None:
            _PREPARED.reset(cache_token)


def _output_shapes(ctx: OpContext, graph: Any) -> tuple[tuple[int, ...], ...]:
    sg = graph.subgraph
    shapes = []
    for o in sg.outputs:
        shape = graph.shape_of(o)
        if shape is None:
            raise ctx.unsupported(f"subgraph {graph.subgraph_index} output {o} has a shape known only at run time")
        shapes.append(shape)
    return tuple(shapes)


@dataclass(frozen=True)
class IfData(OpData):
    """IF: runs ``then_graph`` when the boolean condition is true, else ``else_graph``."""

    then_graph: Any = None  #: PreparedGraph of the then branch
    else_graph: Any = None  #: PreparedGraph of the else branch

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """Run the chosen branch on inputs[1:]."""
        cond = inputs[0]
        assert cond is not None
        if cond.size != 1:
            raise EvalError(f"IF condition has {cond.size} elements; expected one")
        graph = self.then_graph if bool(cond.reshape(-1)[0]) else self.else_graph
        sg = graph.subgraph
        values = graph.run({i: x for i, x in zip(sg.inputs, inputs[1:])}).values
        return [np.array(values[o]) for o in sg.outputs]

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """IF computes nothing itself: the condition picks a branch whose output element is copied."""
        cond = inputs[0]
        assert cond is not None
        taken = bool(cond.reshape(-1)[0])
        graph = self.then_graph if taken else self.else_graph
        sg = graph.subgraph
        o = sg.outputs[output]
        v = graph.run({i: x for i, x in zip(sg.inputs, inputs[1:])}).values[o][element]
        return [
            Step("condition", taken, f"input 0 = {taken}: run the {'then' if taken else 'else'} branch"),
            Step(
                "branch output",
                v,
                f"subgraph {graph.subgraph_index} output {output} (tensor {o} {sg.tensors[o].name!r}) element "
                f"{list(element)}, copied; trace that subgraph's operators for its arithmetic",
            ),
        ]


def prepare_if(ctx: OpContext) -> IfData:
    """IF (LiteRT if.cc): both branches take inputs[1:] and must produce the same output types and shapes."""
    if len(ctx.inputs) < 1:
        raise ctx.error("IF needs a condition input")
    cond = ctx.input(0)
    if cond.dtype != "bool" or cond.size != 1:
        raise ctx.error("condition must be a bool tensor of one element", cond)
    args = [ctx.input(i) for i in range(1, len(ctx.inputs))]
    shapes, dtypes = [a.shape for a in args], [a.dtype for a in args]
    graphs = [
        _prepare_graph(ctx, _subgraph(ctx, key), shapes, dtypes)
        for key in ("then_subgraph_index", "else_subgraph_index")
    ]
    out = [_output_shapes(ctx, g) for g in graphs]
    if len(out[0]) != len(ctx.outputs) or out[0] != out[1]:
        raise ctx.unsupported(f"branches produce shapes {list(out[0])} and {list(out[1])}; refquant needs them equal")
    for k, o in enumerate(ctx.outputs):
        for g in graphs:
            t = g.subgraph.tensors[g.subgraph.outputs[k]]
            if t.dtype != o.dtype:
                raise ctx.error(f"branch subgraph {g.subgraph_index} output {k} is {t.dtype}; expected {o.dtype}", o)
    return IfData(out[0], tuple(o.dtype for o in ctx.outputs), then_graph=graphs[0], else_graph=graphs[1])


@dataclass(frozen=True)
class WhileData(OpData):
    """WHILE: ``while cond(*state): state = body(*state)``; the outputs are the final state."""

    cond_graph: Any = None  #: PreparedGraph of the condition subgraph (one bool output)
    body_graph: Any = None  #: PreparedGraph of the body subgraph (outputs = next state)
    max_iterations: int = MAX_WHILE_ITERATIONS  #: bound that turns a runaway loop into an EvalError

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """Iterate the body until the condition is false."""
        state = [np.asarray(x) for x in inputs]
        csg, bsg = self.cond_graph.subgraph, self.body_graph.subgraph
        for _ in range(self.max_iterations):
            spend(f"WHILE over subgraphs {self.cond_graph.subgraph_index}/{self.body_graph.subgraph_index}")
            cv = self.cond_graph.run({i: x for i, x in zip(csg.inputs, state)}).values[csg.outputs[0]]
            if not bool(np.asarray(cv).reshape(-1)[0]):
                return [np.array(x) for x in state]
            values = self.body_graph.run({i: x for i, x in zip(bsg.inputs, state)}).values
            state = [values[o] for o in bsg.outputs]
        raise EvalError(f"WHILE ran {self.max_iterations} iterations without its condition becoming false")

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """WHILE computes nothing itself: the body runs until the condition is false; the final state is copied."""
        state = [np.asarray(x) for x in inputs]
        csg, bsg = self.cond_graph.subgraph, self.body_graph.subgraph
        steps = [Step("initial state", state[output][element], f"input {output} element {list(element)}")]
        for n in range(self.max_iterations):
            cv = self.cond_graph.run({i: x for i, x in zip(csg.inputs, state)}).values[csg.outputs[0]]
            if not bool(np.asarray(cv).reshape(-1)[0]):
                steps.append(
                    Step(
                        "final state",
                        state[output][element],
                        f"condition subgraph {self.cond_graph.subgraph_index} false after {n} iteration(s) of body "
                        f"subgraph {self.body_graph.subgraph_index}; state {output} element {list(element)} is the output",
                    )
                )
                return steps
            values = self.body_graph.run({i: x for i, x in zip(bsg.inputs, state)}).values
            state = [values[o] for o in bsg.outputs]
        raise EvalError(f"WHILE ran {self.max_iterations} iterations without its condition becoming false")


def prepare_while(ctx: OpContext) -> WhileData:
    """WHILE (LiteRT while.cc) with loop-invariant shapes."""
    args = [ctx.input(i) for i in range(len(ctx.inputs))]
    if len(ctx.outputs) != len(args):
        raise ctx.error(f"has {len(args)} inputs but {len(ctx.outputs)} outputs; expected equal counts")
    shapes, dtypes = [a.shape for a in args], [a.dtype for a in args]
    cond = _prepare_graph(ctx, _subgraph(ctx, "cond_subgraph_index"), shapes, dtypes)
    body = _prepare_graph(ctx, _subgraph(ctx, "body_subgraph_index"), shapes, dtypes)
    csg = cond.subgraph
    if len(csg.outputs) != 1 or csg.tensors[csg.outputs[0]].dtype != "bool":
        raise ctx.error(f"condition subgraph {cond.subgraph_index} must have one bool output")
    body_shapes = _output_shapes(ctx, body)
    if list(body_shapes) != shapes:
        raise ctx.unsupported(
            f"body subgraph {body.subgraph_index} changes shapes {shapes} -> {list(body_shapes)} across iterations"
        )
    for k, (o, dt) in enumerate(zip(body.subgraph.outputs, dtypes)):
        if body.subgraph.tensors[o].dtype != dt:
            raise PrepareError(f"{ctx.where()}: body output {k} is {body.subgraph.tensors[o].dtype}; expected {dt}")
    return WhileData(
        tuple(shapes), tuple(dtypes), cond_graph=cond, body_graph=body, max_iterations=MAX_WHILE_ITERATIONS
    )
