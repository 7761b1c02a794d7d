"""The engine seam: the one public way to prepare and run a model's operators from any input values.

Every command goes through :class:`Engine`: the :class:`refquant.Interpreter`, ``compare`` (its
quantized, float-shadow and float graphs, and the per-operator local-error pass), ``golden`` (each
operator's parameters and accumulators), ``trace`` (one element of one operator) and ``diff``.

::

    engine = Engine(model, rounding="double")
    run = engine.run([x])                      # a Trace: every tensor, every op's prepared data
    data = engine.op_data(k, run.op_inputs(k))  # operator k's OpData for these inputs
    outs = engine.eval_op(k, arrays)           # operator k on any arrays: a dump, a device's values

``arrays`` are operator ``k``'s inputs in order (None where an optional input is omitted), from any
source. When they fit the graph as prepared (same shapes, same constants) the data prepared up front
is used; otherwise the operator is prepared afresh from them with every check, so operators whose
shapes come from data (RESHAPE, TRANSPOSE_CONV's output_shape, TILE, BROADCAST_TO, FILL, ...) work
the same in every command. Preparing never changes the engine's prepared graphs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .errors import InputError
from .graph import PreparedGraph, Trace
from .model import Model, SubGraph
from .ops.base import OpData
from .options import EngineOptions, engine_options

__all__ = ["Engine", "Trace", "EngineOptions"]


class Engine:
    """Prepares and runs subgraph ``subgraph_index`` of ``model`` under one set of :class:`EngineOptions`.

    ``options`` and the keywords ``arithmetic``, ``rounding``, ``float_accumulation``, ``memory_limit`` and ``max_steps`` are merged
    (keywords win) and checked once. The subgraph is prepared for the model's input shapes on first
    use, and again whenever a run brings other input shapes (the last preparation is kept).
    """

    def __init__(
        self,
        model: Model,
        subgraph_index: int = 0,
        options: EngineOptions | None = None,
        *,
        rounding: str | None = None,
        float_accumulation: str | None = None,
        memory_limit: int | None = None,
        arithmetic: str | None = None,
        max_steps: int | None = None,
    ) -> None:
        if not isinstance(model, Model):
            raise InputError(f"Engine needs a refquant Model, got {type(model).__name__}")
        self.model = model
        self.subgraph_index = subgraph_index
        self.options = engine_options(
            options,
            rounding=rounding,
            float_accumulation=float_accumulation,
            memory_limit=memory_limit,
            arithmetic=arithmetic,
            max_steps=max_steps,
        )
        if not 0 <= subgraph_index < len(model.subgraphs):
            raise InputError(f"subgraph {subgraph_index} does not exist ({len(model.subgraphs)} subgraphs)")
        self.subgraph: SubGraph = model.subgraphs[subgraph_index]
        self._graph: PreparedGraph | None = None

    def prepare(self, input_shapes: Mapping[int, Sequence[int]] | None = None) -> PreparedGraph:
        """The subgraph prepared for these graph-input shapes (tensor index -> shape; default: the model's).

        Every check of every operator whose shapes are known happens here. The result is kept and
        reused while the shapes stay the same.
        """
        shapes = {i: tuple(self.subgraph.tensors[i].shape) for i in self.subgraph.inputs}
        for i, s in (input_shapes or {}).items():
            shapes[int(i)] = tuple(int(d) for d in s)
        if self._graph is None or dict(self._graph.input_shapes) != shapes:
            self._graph = PreparedGraph(self.model, self.subgraph_index, self.options, shapes)
        return self._graph

    @property
    def graph(self) -> PreparedGraph:
        """The last prepared graph (prepared for the model's input shapes when nothing was run yet)."""
        return self._graph if self._graph is not None else self.prepare()

    def feeds(self, inputs: Sequence[Any] | Mapping[int, Any]) -> dict[int, np.ndarray]:
        """Graph-input arrays keyed by tensor index, from a sequence in input order or a mapping (not yet checked)."""
        sg = self.subgraph
        if isinstance(inputs, Mapping):
            feeds = {int(i): np.asarray(a) for i, a in inputs.items()}
            unknown = sorted(set(feeds) - set(sg.inputs))
            if unknown:
                raise InputError(f"tensor(s) {unknown} are not inputs of the model (inputs: {list(sg.inputs)})")
        else:
            arrays = list(inputs)
            if len(arrays) != len(sg.inputs):
                raise InputError(f"got {len(arrays)} inputs; the model has {len(sg.inputs)}")
            feeds = {i: np.asarray(a) for i, a in zip(sg.inputs, arrays)}
        return feeds  # dtypes and shapes are checked by PreparedGraph.run

    def run(self, inputs: Sequence[Any] | Mapping[int, Any]) -> Trace:
        """Run on graph inputs (a sequence in input order, or tensor index -> array), each with its own shape."""
        feeds = self.feeds(inputs)
        missing = [i for i in self.subgraph.inputs if i not in feeds]
        if missing:
            raise InputError(f"no value for input tensor(s) {missing}")
        graph = self.prepare({i: a.shape for i, a in feeds.items()})
        return graph.run(feeds)

    def op_data(self, k: int, inputs: Sequence[np.ndarray | None]) -> OpData:
        """Operator ``k``'s prepared data for its input arrays (see :meth:`PreparedGraph.op_data`)."""
        return self.graph.op_data(self._op(k), inputs)

    def eval_op(self, k: int, inputs: Sequence[np.ndarray | None]) -> list[np.ndarray]:
        """Run operator ``k`` on its input arrays from any source; return its outputs."""
        return self.graph.eval_op(self._op(k), inputs)

    def _op(self, k: int) -> int:
        n = len(self.subgraph.operators)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= int(k) < n:
            raise InputError(f"operator {k!r} does not exist; subgraph {self.subgraph_index} has {n} operators")
        return int(k)

    def producers(self) -> dict[int, int]:
        """Tensor index -> index of the operator that outputs it."""
        return {o: op.index for op in self.subgraph.operators for o in op.outputs if o >= 0}
