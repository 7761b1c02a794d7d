"""One subgraph prepared for one set of graph-input shapes: the building block of the engine seam.

:class:`PreparedGraph` walks the operators once in order, calling each op's ``prepare`` with the
current input shapes and the values known at prepare time (constants, and shape arithmetic folded
from them). Every check happens there, so a static graph that prepares runs without further checks.
Operators whose output shape depends on a value known only at run time (a RESHAPE fed by a computed
or graph-input shape, a TRANSPOSE_CONV whose output_shape is a graph input), and everything
downstream of them, are prepared just before they run, with the same checks.

The public operator-level methods are the seam every command uses (through
:class:`refquant.engine.Engine`): :meth:`PreparedGraph.op_data` gives operator ``k``'s prepared data
for any given input values (reusing the data prepared up front when it applies, preparing afresh
when it does not), :meth:`PreparedGraph.eval_op` runs operator ``k`` on them, and
:meth:`PreparedGraph.run` runs the whole subgraph. Preparing for given values never changes the
prepared graph.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from .errors import EvalError, InputError, PrepareError, RefquantError, ResourceLimitError, UnsupportedOpError
from .limits import spend, work_budget
from .model import Model, SubGraph, numpy_dtype
from .ops import REGISTRY
from .ops.base import DeferredPrepare, OpContext, OpData, TensorInfo
from .ops.versions import BUILTIN_REF_VERSIONS
from .options import DEFAULT_MEMORY_LIMIT, FLOAT_ACCUMULATIONS, ROUNDINGS, EngineOptions

__all__ = ["PreparedGraph", "Trace", "DEFAULT_MEMORY_LIMIT", "ROUNDINGS", "FLOAT_ACCUMULATIONS"]

_KERNEL_ERRORS = (ValueError, IndexError, TypeError, OverflowError, ZeroDivisionError, MemoryError)


def _nbytes(shape: tuple[int, ...], dtype: str) -> int:
    n = numpy_dtype(dtype).itemsize
    for d in shape:
        n *= d
    return n


@dataclass(frozen=True)
class Trace:
    """Every tensor value of one run of subgraph ``subgraph_index``, with the data each operator ran with.

    ``values`` maps tensor index -> array (constants included); ``op_data[k]`` is operator ``k``'s
    prepared state (multipliers, shifts, tables) as it was used in this run, including operators
    prepared at run time; ``options`` are the engine options of the run.
    """

    model: Model
    subgraph_index: int
    values: Mapping[int, np.ndarray]
    op_data: tuple[OpData, ...]
    options: EngineOptions

    @property
    def rounding(self) -> str:
        """The requantization rounding of the run (``options.rounding``)."""
        return self.options.rounding

    @property
    def subgraph(self) -> SubGraph:
        """The subgraph that ran."""
        return self.model.subgraphs[self.subgraph_index]

    def tensor(self, key: int | str) -> np.ndarray:
        """A tensor's value by index or name."""
        return self.values[self.index_of(key)]

    def index_of(self, key: int | str) -> int:
        """Tensor index for an index or a tensor name (InputError when unknown)."""
        sg = self.subgraph
        if isinstance(key, (int, np.integer)):
            if not 0 <= int(key) < len(sg.tensors):
                raise InputError(f"tensor index {key} is out of range (0..{len(sg.tensors) - 1})")
            return int(key)
        for t in sg.tensors:
            if t.name == key:
                return t.index
        raise InputError(f"no tensor named {key!r} in subgraph {self.subgraph_index}")

    def producer(self, index: int) -> int:
        """Index of the operator that produced tensor ``index`` (-1 for inputs and constants)."""
        for op in self.subgraph.operators:
            if index in op.outputs:
                return op.index
        return -1

    def op_inputs(self, k: int) -> list[np.ndarray | None]:
        """Operator ``k``'s input arrays in this run (None for omitted optional inputs)."""
        return [self.values[i] if i >= 0 else None for i in self.subgraph.operators[k].inputs]


class PreparedGraph:
    """One subgraph with every operator prepared for the given graph-input shapes.

    ``options`` (:class:`refquant.options.EngineOptions`) select the arithmetic variants and the
    memory bound; ``input_shapes`` maps graph-input tensor index -> shape (default: the model's).
    ``prepare_ahead=False`` prepares no operator up front: each is prepared when :meth:`op_data` or
    :meth:`eval_op` first sees its inputs, so one operator can run under options that another operator
    of the same graph does not support (``refquant diff --explain`` tries every profile this way).
    """

    def __init__(
        self,
        model: Model,
        subgraph_index: int = 0,
        options: EngineOptions | None = None,
        input_shapes: Mapping[int, Sequence[int]] | None = None,
        *,
        prepare_ahead: bool = True,
    ) -> None:
        self.model = model
        self.subgraph_index = subgraph_index
        self.options = options if options is not None else EngineOptions()
        if not 0 <= subgraph_index < len(model.subgraphs):
            raise InputError(f"subgraph {subgraph_index} does not exist ({len(model.subgraphs)} subgraphs)")
        self.subgraph: SubGraph = model.subgraphs[subgraph_index]
        given = {int(i): tuple(int(d) for d in s) for i, s in (input_shapes or {}).items()}
        unknown = sorted(set(given) - set(self.subgraph.inputs))
        if unknown:
            raise InputError(f"tensor(s) {unknown} are not inputs of subgraph {subgraph_index}")
        self.input_shapes = MappingProxyType(
            {i: given.get(i, tuple(self.subgraph.tensors[i].shape)) for i in self.subgraph.inputs}
        )
        self._infos: dict[int, TensorInfo] = {}
        self._op_data: list[OpData | None] = [None] * len(self.subgraph.operators)
        self._prepare(prepare_ahead)

    # -- what prepare knows ------------------------------------------------------------------
    @property
    def rounding(self) -> str:
        """The requantization rounding (``options.rounding``)."""
        return self.options.rounding

    @property
    def shapes(self) -> Mapping[int, tuple[int, ...]]:
        """Tensor index -> shape, for every tensor whose shape is known before the run (read-only)."""
        return MappingProxyType({i: info.shape for i, info in self._infos.items()})

    def shape_of(self, index: int) -> tuple[int, ...] | None:
        """The shape of tensor ``index`` as prepared, or None when it is known only at run time."""
        info = self._infos.get(index)
        return None if info is None else info.shape

    def static_value(self, index: int) -> np.ndarray | None:
        """The value of tensor ``index`` when known before the run (a constant or folded shape arithmetic)."""
        info = self._infos.get(index)
        return None if info is None else info.value

    def prepared(self, k: int) -> OpData | None:
        """Operator ``k``'s data prepared up front, or None when it is prepared at run time."""
        return self._op_data[k]

    def op_context(self, k: int, options: EngineOptions | None = None) -> OpContext:
        """The :class:`OpContext` operator ``k``'s prepare sees, under ``options`` (default: the graph's).

        Tensor infos come from this preparation (shapes, constants and folded values); for an operator
        prepared only at run time, tensors without a prepared info get the model's shape and no value.
        Used to ask another profile's decision about the same operator
        (``decide(profile, graph.op_context(k, EngineOptions(arithmetic=profile)))``) without running it.
        """
        op = self.subgraph.operators[k]

        def info(i: int) -> TensorInfo:
            return self._infos.get(i) or self._info(i, self.subgraph.tensors[i].shape)

        ins = tuple(info(i) if i >= 0 else None for i in op.inputs)
        outs = tuple(info(o) for o in op.outputs)
        return OpContext(self.model, self.subgraph_index, op, ins, outs, options or self.options)

    # -- prepare -----------------------------------------------------------------------------
    def _info(self, index: int, shape: tuple[int, ...], value: np.ndarray | None = None) -> TensorInfo:
        t = self.subgraph.tensors[index]
        return TensorInfo(index, t.name, tuple(shape), t.dtype, t.quantization, value)

    def _where(self, k: int) -> str:
        return f"subgraph {self.subgraph_index}, operator {k} ({self.subgraph.operators[k].opcode})"

    def _prepare(self, operators: bool = True) -> None:
        sg = self.subgraph
        for t in sg.tensors:
            if t.is_constant:
                if t.sparse:
                    raise UnsupportedOpError(
                        f"subgraph {self.subgraph_index}, tensor {t.index} {t.name!r}: sparse tensors are not supported"
                    )
                self._infos[t.index] = self._info(t.index, t.shape, t.data)
        for i in sg.inputs:
            self._infos[i] = self._info(i, self.input_shapes[i])
        for t in sg.tensors:
            if t.is_variable and t.index not in self._infos:
                self._infos[t.index] = self._info(t.index, t.shape)
        total = sum(_nbytes(i.shape, i.dtype) for i in self._infos.values() if i.value is None)
        for op in sg.operators if operators else ():
            if any(i >= 0 and i not in self._infos for i in op.inputs):
                continue  # shape known only at run time: prepared just before it runs
            ins = tuple(self._infos[i] if i >= 0 else None for i in op.inputs)
            try:
                data = self._prepare_op(op.index, ins)
            except DeferredPrepare:
                continue  # an input value decides the output shape: prepared just before it runs
            self._op_data[op.index] = data
            for k, o in enumerate(op.outputs):
                total += _nbytes(data.output_shapes[k], sg.tensors[o].dtype)
            scratch = data.scratch_bytes([self._infos[i].shape if i >= 0 else () for i in op.inputs])
            if total + scratch > self.options.memory_limit:  # checked before folding allocates anything
                raise ResourceLimitError(
                    f"{self._where(op.index)}: the run would hold {total} bytes of tensors and {scratch} bytes of "
                    f"scratch, above the limit of {self.options.memory_limit} bytes"
                )
            values = self._fold(op.index, data, ins)
            for j, o in enumerate(op.outputs):
                self._infos[o] = self._info(o, data.output_shapes[j], None if values is None else values[j])

    def _fold(self, k: int, data: OpData, ins: tuple[TensorInfo | None, ...]) -> list[np.ndarray] | None:
        """Evaluate a cheap shape-arithmetic operator at prepare time when its inputs are known."""
        opdef = REGISTRY[self.subgraph.operators[k].opcode]
        if not opdef.foldable or (data.fold_needs_values and any(i is not None and i.value is None for i in ins)):
            return None
        with np.errstate(all="ignore"):
            values = data.eval([None if i is None else i.value for i in ins])
        for v in values:
            v.flags.writeable = False
        return values

    def _prepare_op(self, k: int, ins: tuple[TensorInfo | None, ...]) -> OpData:
        """Run operator ``k``'s prepare on the given input infos (no state of the graph changes)."""
        op = self.subgraph.operators[k]
        opdef = REGISTRY.get(op.opcode)
        where = self._where(k)
        if opdef is None:
            raise UnsupportedOpError(
                f"{where}: operator {op.opcode} is not supported by refquant; supported: {', '.join(sorted(REGISTRY))}"
            )
        bounds = BUILTIN_REF_VERSIONS.get(op.opcode)
        if bounds is not None and not bounds[0] <= op.version <= bounds[1]:
            raise UnsupportedOpError(
                f"{where}: version {op.version}; LiteRT 2.3.0's reference resolver registers {op.opcode} versions "
                f"{bounds[0]}..{bounds[1]} only (it rejects the model)"
            )
        outs = tuple(self._info(o, self.subgraph.tensors[o].shape) for o in op.outputs)
        ctx = OpContext(self.model, self.subgraph_index, op, ins, outs, self.options)
        try:
            decision = ctx.arithmetic
            data = opdef.prepare(ctx)
        except RefquantError:
            raise
        except (ValueError, TypeError, IndexError, KeyError, OverflowError, ZeroDivisionError) as exc:
            raise PrepareError(f"{where}: invalid operator ({type(exc).__name__}: {exc})") from exc
        if decision.rescale != "reference" and data.arithmetic != decision:
            raise UnsupportedOpError(
                f"{where}: arithmetic {decision.profile}: the {decision.executor}'s {decision.rescale!r} rescaling is "
                "not implemented by refquant's kernel for this operator yet"
            )
        if len(data.output_shapes) != len(op.outputs):
            raise PrepareError(f"{where}: prepared {len(data.output_shapes)} outputs, model lists {len(op.outputs)}")
        for sh in data.output_shapes:
            if any(d < 0 for d in sh):
                raise PrepareError(f"{where}: computed a negative output dimension {list(sh)}")
        return data

    # -- the operator seam -------------------------------------------------------------------
    def _check_inputs(self, k: int, inputs: Sequence[np.ndarray | None]) -> list[np.ndarray | None]:
        op = self.subgraph.operators[k]
        if len(inputs) != len(op.inputs):
            raise InputError(f"{self._where(k)}: got {len(inputs)} input arrays; the operator has {len(op.inputs)}")
        arrays: list[np.ndarray | None] = []
        for pos, (i, a) in enumerate(zip(op.inputs, inputs)):
            if i < 0:
                arrays.append(None)
                continue
            if a is None:
                raise InputError(f"{self._where(k)}: input {pos} (tensor {i}) has no value")
            a = np.asarray(a)
            t = self.subgraph.tensors[i]
            if a.dtype != t.np_dtype:
                raise InputError(
                    f"{self._where(k)}: input {pos}, tensor {i} {t.name!r}: got {a.dtype}, expected {t.np_dtype}"
                )
            arrays.append(a)
        return arrays

    def _fits(self, k: int, arrays: Sequence[np.ndarray | None]) -> bool:
        """Whether the data prepared up front holds for these input arrays (same shapes and known values)."""
        for i, a in zip(self.subgraph.operators[k].inputs, arrays):
            if i < 0 or a is None:
                continue
            info = self._infos[i]
            if tuple(a.shape) != info.shape:
                return False
            if info.value is not None and a is not info.value:
                if not np.array_equal(a, info.value, equal_nan=a.dtype.kind in "fc"):
                    return False
        return True

    def _prepare_for(self, k: int, arrays: Sequence[np.ndarray | None], all_values: bool) -> OpData:
        """Prepare operator ``k`` afresh for the given arrays.

        Values are passed for inputs known before the run (constants, folded shape arithmetic) and,
        with ``all_values`` or when the operator needs one to know its output shape, for every input.
        """
        op = self.subgraph.operators[k]

        def infos(every: bool) -> tuple[TensorInfo | None, ...]:
            out: list[TensorInfo | None] = []
            for i, a in zip(op.inputs, arrays):
                if i < 0 or a is None:
                    out.append(None)
                    continue
                known = every or self.static_value(i) is not None  # constants and folded tensors
                out.append(self._info(i, tuple(a.shape), a if known else None))
            return tuple(out)

        if all_values:
            return self._prepare_op(k, infos(True))
        try:
            return self._prepare_op(k, infos(False))
        except DeferredPrepare:
            return self._prepare_op(k, infos(True))

    def op_data(self, k: int, inputs: Sequence[np.ndarray | None]) -> OpData:
        """Operator ``k``'s prepared data for these input arrays (one per operator input, None where omitted).

        The data prepared up front is returned when it holds for the arrays (same shapes, same values
        of constants and folded tensors); otherwise the operator is prepared afresh from the arrays,
        with every check, and the graph is left as it was. Works for operators prepared at run time
        (shapes from data) and for inputs from anywhere: a live run, another run's dump, a device dump.
        """
        return self._op_data_for(k, self._check_inputs(k, inputs))

    def _op_data_for(self, k: int, arrays: list[np.ndarray | None]) -> OpData:
        data = self._op_data[k]
        if data is not None and self._fits(k, arrays):
            return data
        return self._prepare_for(k, arrays, all_values=data is None)

    def eval_op(self, k: int, inputs: Sequence[np.ndarray | None], data: OpData | None = None) -> list[np.ndarray]:
        """Run operator ``k`` on these input arrays; return its outputs (prepared with :meth:`op_data`).

        ``data``: the operator's prepared data when the caller already has it (from :meth:`op_data`).
        Kernel failures become :class:`EvalError` naming the operator.
        """
        arrays = self._check_inputs(k, inputs)
        if data is None:
            data = self._op_data_for(k, arrays)
        with np.errstate(all="ignore"), work_budget(self.options.max_steps):
            spend(self._where(k))
            return self._eval(k, data, arrays)

    def _eval(self, k: int, data: OpData, arrays: list[np.ndarray | None]) -> list[np.ndarray]:
        op = self.subgraph.operators[k]
        try:
            outs = data.eval(arrays)
        except RefquantError:
            raise
        except _KERNEL_ERRORS as exc:
            raise EvalError(f"{self._where(k)}: failed at run time ({type(exc).__name__}: {exc})") from exc
        for j, o in enumerate(op.outputs):
            arr = outs[j]
            want = self.subgraph.tensors[o].np_dtype
            if arr.dtype != want or tuple(arr.shape) != tuple(data.output_shapes[j]):
                raise EvalError(
                    f"{self._where(k)}: produced {arr.dtype}{list(arr.shape)} for tensor {o}, expected "
                    f"{want}{list(data.output_shapes[j])} (a refquant kernel bug; please report it)"
                )
        return list(outs)

    # -- run ---------------------------------------------------------------------------------
    def run(self, feeds: Mapping[int, Any]) -> Trace:
        """Run the subgraph on graph-input arrays (tensor index -> array); return every tensor of the run.

        Each array must have its input's dtype and the shape this graph was prepared for.
        """
        sg = self.subgraph
        missing = [i for i in sg.inputs if i not in feeds]
        if missing:
            raise InputError(f"subgraph {self.subgraph_index}: no value for input tensor(s) {missing}")
        values: dict[int, np.ndarray] = {}
        for t in sg.tensors:
            if t.is_constant:
                values[t.index] = t.data  # type: ignore[assignment]
        for i in sg.inputs:
            a = np.asarray(feeds[i])
            t = sg.tensors[i]
            if a.dtype != t.np_dtype or tuple(a.shape) != self.input_shapes[i]:
                raise InputError(
                    f"subgraph {self.subgraph_index}, input tensor {i} {t.name!r}: got {a.dtype}{list(a.shape)}, "
                    f"expected {t.np_dtype}{list(self.input_shapes[i])}"
                )
            values[i] = a
        used: list[OpData] = []
        total = sum(int(v.nbytes) for i, v in values.items() if not sg.tensors[i].is_constant)
        limit = self.options.memory_limit
        with np.errstate(all="ignore"), work_budget(self.options.max_steps):
            for op in sg.operators:
                spend(self._where(op.index))
                arrays = [values[i] if i >= 0 else None for i in op.inputs]
                data = self._op_data[op.index]
                if data is None:  # prepared now, from this run's values; not kept for the next run
                    data = self._prepare_for(op.index, arrays, all_values=True)
                    total += sum(_nbytes(sh, sg.tensors[o].dtype) for sh, o in zip(data.output_shapes, op.outputs))
                    scratch = data.scratch_bytes([values[i].shape if i >= 0 else () for i in op.inputs])
                    if total + scratch > limit:
                        raise ResourceLimitError(
                            f"{self._where(op.index)}: the run would hold {total} bytes of tensors, above the limit "
                            f"of {limit} bytes"
                        )
                used.append(data)
                for o, arr in zip(op.outputs, self._eval(op.index, data, arrays)):
                    values[o] = arr
        return Trace(self.model, self.subgraph_index, values, tuple(used), self.options)
