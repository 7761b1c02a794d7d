"""Small test models from tensor descriptions: one operator, a short chain, or a few subgraphs.

Describe each tensor once, with :func:`tensor` (a graph input or an intermediate / output) or
:func:`const` (a constant holding data), then put them in operators with :func:`operator`::

    from refquant.testing import const, op_model, operator, tensor

    x = tensor((1, 4), "int8", scale=0.05, zero_point=3)
    w = const(np.ones((3, 4), np.int8), scale=0.02)
    y = tensor((1, 3), "int8", scale=0.1)
    data = op_model("FULLY_CONNECTED", [x, w, None], [y])     # None: an omitted optional input

A chain is a list of operators sharing tensor objects::

    mid = tensor((1, 3), "int8", scale=0.1)
    data = model_bytes([operator("FULLY_CONNECTED", [x, w, None], [mid]), operator("RELU", [mid], [y])])

Rules, so that a description maps to one model:

* The same :class:`TensorSpec` object used in two operators is one tensor; two equal descriptions
  are two tensors.
* Tensors are numbered in the order their descriptions were created (as
  :class:`~refquant.tflite.builder.ModelBuilder` numbers them in the order they are added).
* Graph inputs default to the non-constant tensors no operator produces; graph outputs to the
  tensors an operator produces and no operator reads; both in tensor order. Pass ``inputs=`` /
  ``outputs=`` to :func:`graph` to choose them (an input no operator reads, for instance).
* A tensor without a name is named ``t<index>``.

:func:`build_model` gives the :class:`~refquant.model.Model`; :func:`model_bytes` and
:func:`op_model` give ``.tflite`` bytes. All go through :class:`~refquant.tflite.builder.ModelBuilder`.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..model import Model
from ..tflite.builder import ModelBuilder
from ..tflite.writer import write_model

__all__ = [
    "TensorSpec",
    "OpSpec",
    "GraphSpec",
    "tensor",
    "const",
    "operator",
    "graph",
    "build_model",
    "model_bytes",
    "op_model",
]

_serial = itertools.count()


@dataclass(eq=False)
class TensorSpec:
    """One tensor of a test model: shape, dtype, optional quantization, and data when it is a constant."""

    shape: tuple[int, ...]
    dtype: str
    scale: float | Sequence[float] | np.ndarray | None = None
    zero_point: int | Sequence[int] | np.ndarray | None = None
    quantized_dimension: int = 0
    data: np.ndarray | None = None
    name: str | None = None
    shape_signature: tuple[int, ...] | None = None
    is_variable: bool = False
    serial: int = field(default_factory=lambda: next(_serial), init=False, repr=False)

    @property
    def is_constant(self) -> bool:
        """True when the tensor holds data (a constant buffer)."""
        return self.data is not None


@dataclass(eq=False)
class OpSpec:
    """One operator: opcode, input tensors (``None`` for an omitted optional input), outputs, options."""

    opcode: str
    inputs: Sequence[TensorSpec | None]
    outputs: Sequence[TensorSpec]
    options: dict = field(default_factory=dict)
    version: int = 1
    options_type: str | None = None


@dataclass(eq=False)
class GraphSpec:
    """A subgraph: its operators, and graph inputs/outputs (``None``: the defaults of the module rules)."""

    ops: Sequence[OpSpec]
    inputs: Sequence[TensorSpec] | None = None
    outputs: Sequence[TensorSpec] | None = None
    name: str = ""


def tensor(
    shape: Sequence[int],
    dtype: str,
    *,
    scale: float | Sequence[float] | np.ndarray | None = None,
    zero_point: int | Sequence[int] | np.ndarray | None = None,
    quantized_dimension: int = 0,
    name: str | None = None,
    shape_signature: Sequence[int] | None = None,
    is_variable: bool = False,
) -> TensorSpec:
    """A graph input, intermediate or output tensor; give ``scale`` (and ``zero_point``) to quantize it."""
    return TensorSpec(
        tuple(int(d) for d in shape),
        dtype,
        scale,
        zero_point,
        quantized_dimension,
        None,
        name,
        tuple(shape_signature) if shape_signature is not None else None,
        is_variable,
    )


def const(
    data: np.ndarray | Sequence | int | float,
    dtype: str | None = None,
    *,
    scale: float | Sequence[float] | np.ndarray | None = None,
    zero_point: int | Sequence[int] | np.ndarray | None = None,
    quantized_dimension: int = 0,
    name: str | None = None,
) -> TensorSpec:
    """A constant tensor holding ``data`` (its shape; dtype from the array unless given)."""
    arr = np.asarray(data)
    dtype = dtype or arr.dtype.name
    return TensorSpec(arr.shape, dtype, scale, zero_point, quantized_dimension, arr, name)


def operator(
    opcode: str,
    inputs: Sequence[TensorSpec | None],
    outputs: Sequence[TensorSpec],
    *,
    version: int = 1,
    options_type: str | None = None,
    **options: object,
) -> OpSpec:
    """An operator; builtin options as keyword arguments (enums by name), as ``ModelBuilder.add_operator``."""
    return OpSpec(opcode, list(inputs), list(outputs), dict(options), version, options_type)


def graph(
    ops: Sequence[OpSpec],
    *,
    inputs: Sequence[TensorSpec] | None = None,
    outputs: Sequence[TensorSpec] | None = None,
    name: str = "",
) -> GraphSpec:
    """A subgraph of operators, with graph inputs / outputs when the defaults are not wanted."""
    return GraphSpec(list(ops), inputs, outputs, name)


def _as_graph(g: GraphSpec | Sequence[OpSpec] | OpSpec) -> GraphSpec:
    if isinstance(g, GraphSpec):
        return g
    if isinstance(g, OpSpec):
        return GraphSpec([g])
    return GraphSpec(list(g))


def _add_graph(b: ModelBuilder, g: GraphSpec) -> tuple[dict[int, int], tuple[int, ...]]:
    """Add ``g``'s tensors and operators to ``b``'s current subgraph.

    Returns TensorSpec id -> tensor index, and the graph inputs' indices (set by :func:`build_model`).
    """
    seen: dict[int, TensorSpec] = {}
    for spec in [*(g.inputs or ()), *(g.outputs or ())]:
        seen[id(spec)] = spec
    produced: set[int] = set()
    consumed: set[int] = set()
    for o in g.ops:
        for t in o.inputs:
            if t is not None:
                seen[id(t)] = t
                consumed.add(id(t))
        for t in o.outputs:
            seen[id(t)] = t
            produced.add(id(t))
    ordered = sorted(seen.values(), key=lambda t: t.serial)
    index: dict[int, int] = {}
    for t in ordered:
        name = t.name if t.name is not None else f"t{len(index)}"
        quant: dict[str, object] = {}
        if t.scale is not None:
            quant = {"scale": t.scale, "zero_point": t.zero_point, "quantized_dimension": t.quantized_dimension}
        if t.is_constant:
            index[id(t)] = b.add_constant(name, t.data, t.dtype, **quant)
        else:
            index[id(t)] = b.add_tensor(
                name, t.shape, t.dtype, shape_signature=t.shape_signature, is_variable=t.is_variable, **quant
            )
    for o in g.ops:
        b.add_operator(
            o.opcode,
            [-1 if t is None else index[id(t)] for t in o.inputs],
            [index[id(t)] for t in o.outputs],
            version=o.version,
            options_type=o.options_type,
            **o.options,
        )
    if g.inputs is None:
        inputs = [t for t in ordered if not t.is_constant and id(t) not in produced]
    else:
        inputs = list(g.inputs)
    if g.outputs is None:
        outputs = [t for t in ordered if id(t) in produced and id(t) not in consumed]
    else:
        outputs = list(g.outputs)
    b.mark_output(*(index[id(t)] for t in outputs))
    return index, tuple(index[id(t)] for t in inputs)


def build_model(
    main: GraphSpec | Sequence[OpSpec] | OpSpec,
    *subgraphs: GraphSpec,
    signatures: Sequence[tuple[str, dict[str, TensorSpec], dict[str, TensorSpec]]] = (),
    description: str = "refquant builder",
) -> Model:
    """The Model of ``main`` (subgraph 0, named "main") and ``subgraphs`` (1, 2, ... as IF / WHILE index them).

    ``signatures``: ``(key, {name: input tensor}, {name: output tensor})`` of subgraph 0.
    """
    b = ModelBuilder(description)
    index, main_inputs = _add_graph(b, _as_graph(main))
    graph_inputs = [main_inputs]
    for g in subgraphs:
        b.new_subgraph(g.name)
        graph_inputs.append(_add_graph(b, g)[1])
    for key, ins, outs in signatures:
        b.add_signature(key, {k: index[id(t)] for k, t in ins.items()}, {k: index[id(t)] for k, t in outs.items()})
    model = b.model()
    sgs = tuple(dataclasses.replace(sg, inputs=ins) for sg, ins in zip(model.subgraphs, graph_inputs))
    return dataclasses.replace(model, subgraphs=sgs)


def model_bytes(
    main: GraphSpec | Sequence[OpSpec] | OpSpec,
    *subgraphs: GraphSpec,
    signatures: Sequence[tuple[str, dict[str, TensorSpec], dict[str, TensorSpec]]] = (),
    description: str = "refquant builder",
) -> bytes:
    """:func:`build_model` as ``.tflite`` bytes."""
    return write_model(build_model(main, *subgraphs, signatures=signatures, description=description))


def op_model(
    opcode: str,
    inputs: Sequence[TensorSpec | None],
    outputs: Sequence[TensorSpec],
    *,
    version: int = 1,
    options_type: str | None = None,
    **options: object,
) -> bytes:
    """A one-operator model as ``.tflite`` bytes (``None`` in ``inputs``: an omitted optional input)."""
    return model_bytes(operator(opcode, inputs, outputs, version=version, options_type=options_type, **options))
