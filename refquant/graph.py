"""Prepare and run one subgraph: the engine under :class:`refquant.Interpreter`.

``PreparedGraph`` walks the operators once in order, calling each op's ``prepare`` with the
current input shapes (after any resize) and the values known at prepare time (constants, and
shape arithmetic folded from them). Every check happens there, so a static graph that prepares
runs without further checks. Operators whose input shapes are only known at run time (a RESHAPE
fed by a computed shape tensor) are prepared just before they run, with the same checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import EvalError, PrepareError, RefquantError, ResourceLimitError, UnsupportedOpError
from .model import Model, numpy_dtype
from .ops import REGISTRY
from .ops.base import DeferredPrepare, OpContext, OpData, TensorInfo
from .ops.versions import BUILTIN_REF_VERSIONS

__all__ = ["PreparedGraph", "DEFAULT_MEMORY_LIMIT", "ROUNDINGS", "FLOAT_ACCUMULATIONS"]

#: Default bound on the bytes of all tensors of one run (checked from shapes before allocating).
DEFAULT_MEMORY_LIMIT = 2 << 30
#: Rounding variants of MultiplyByQuantizedMultiplier (see README "Rounding").
ROUNDINGS = ("double", "single")
#: How float32 CONV_2D / TRANSPOSE_CONV / FULLY_CONNECTED / BATCH_MATMUL sum their products (README "Float
#: graphs"): ``"float64"`` (BLAS in float64, one rounding to float32 per sum; the default) or
#: ``"sequential"`` (LiteRT BUILTIN_REF's float32 loop, bit-exact with it).
FLOAT_ACCUMULATIONS = ("float64", "sequential")


def _nbytes(shape: tuple[int, ...], dtype: str) -> int:
    n = numpy_dtype(dtype).itemsize
    for d in shape:
        n *= d
    return n


@dataclass
class PreparedGraph:
    """One subgraph with every operator prepared for the given graph-input shapes."""

    model: Model
    subgraph_index: int
    rounding: str = "double"
    input_shapes: dict[int, tuple[int, ...]] = field(default_factory=dict)
    memory_limit: int = DEFAULT_MEMORY_LIMIT
    float_accumulation: str = "float64"

    def __post_init__(self) -> None:
        if self.rounding not in ROUNDINGS:
            raise RefquantError(f"rounding must be one of {list(ROUNDINGS)}, got {self.rounding!r}")
        if self.float_accumulation not in FLOAT_ACCUMULATIONS:
            raise RefquantError(
                f"float_accumulation must be one of {list(FLOAT_ACCUMULATIONS)}, got {self.float_accumulation!r}"
            )
        sg = self.model.subgraphs[self.subgraph_index]
        self.subgraph = sg
        self.infos: dict[int, TensorInfo] = {}
        self.op_data: list[OpData | None] = [None] * len(sg.operators)
        self.folded: dict[int, np.ndarray] = {}
        self.last_op_data: tuple[OpData | None, ...] = ()
        self._prepare()

    # -- prepare ---------------------------------------------------------------------------------
    def _info(self, index: int, shape: tuple[int, ...], value: np.ndarray | None = None) -> TensorInfo:
        t = self.subgraph.tensors[index]
        return TensorInfo(index, t.name, tuple(shape), t.dtype, t.quantization, value)

    def _prepare(self) -> None:
        sg = self.subgraph
        for t in sg.tensors:
            if t.is_constant:
                if t.sparse:
                    raise UnsupportedOpError(
                        f"subgraph {self.subgraph_index}, tensor {t.index} {t.name!r}: sparse tensors are not supported"
                    )
                self.infos[t.index] = self._info(t.index, t.shape, t.data)
        for i in sg.inputs:
            shape = self.input_shapes.get(i, sg.tensors[i].shape)
            self.infos[i] = self._info(i, shape)
        for t in sg.tensors:
            if t.is_variable and t.index not in self.infos:
                self.infos[t.index] = self._info(t.index, t.shape)
        total = sum(_nbytes(i.shape, i.dtype) for i in self.infos.values() if i.value is None)
        for op in sg.operators:
            if any(i >= 0 and i not in self.infos for i in op.inputs):
                continue  # shape known only at run time: prepared just before it runs
            try:
                data = self.prepare_op(op.index, {i: self.infos[i] for i in op.inputs if i >= 0})
            except DeferredPrepare:
                continue  # an input value decides the output shape: prepared just before it runs
            for k, o in enumerate(op.outputs):
                total += _nbytes(data.output_shapes[k], sg.tensors[o].dtype)
            scratch = data.scratch_bytes([self.infos[i].shape if i >= 0 else () for i in op.inputs])
            if total + scratch > self.memory_limit:
                raise ResourceLimitError(
                    f"subgraph {self.subgraph_index}, operator {op.index} ({op.opcode}): the run would hold "
                    f"{total} bytes of tensors and {scratch} bytes of scratch, above the limit of {self.memory_limit} bytes"
                )

    def prepare_op(self, k: int, infos: dict[int, TensorInfo]) -> OpData:
        """Prepare operator ``k`` given infos of its inputs; record output infos (and fold if cheap)."""
        op = self.subgraph.operators[k]
        opdef = REGISTRY.get(op.opcode)
        where = f"subgraph {self.subgraph_index}, operator {k} ({op.opcode})"
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
        ins = tuple(infos[i] if i >= 0 else None for i in op.inputs)
        outs = tuple(self._info(o, self.subgraph.tensors[o].shape) for o in op.outputs)
        ctx = OpContext(self.model, self.subgraph_index, op, ins, outs, self.rounding, self.float_accumulation)
        try:
            data = opdef.prepare(ctx)
        except RefquantError:
            raise
        except (ValueError, TypeError, IndexError, KeyError, OverflowError, ZeroDivisionError) as exc:
            raise PrepareError(f"{where}: invalid operator ({type(exc).__name__}: {exc})") from exc
        if len(data.output_shapes) != len(op.outputs):
            raise PrepareError(f"{where}: prepared {len(data.output_shapes)} outputs, model lists {len(op.outputs)}")
        for sh in data.output_shapes:
            if any(d < 0 for d in sh):
                raise PrepareError(f"{where}: computed a negative output dimension {list(sh)}")
        self.op_data[k] = data
        values = None
        if opdef.foldable and (not data.fold_needs_values or all(i is None or i.value is not None for i in ins)):
            arrays = [None if i is None else i.value for i in ins]
            with np.errstate(all="ignore"):
                values = data.eval(arrays)
        for j, o in enumerate(op.outputs):
            value = None
            if values is not None:
                value = values[j]
                value.flags.writeable = False
                self.folded[o] = value
            self.infos[o] = self._info(o, data.output_shapes[j], value)
        return data

    # -- run -------------------------------------------------------------------------------------
    def run(self, inputs: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
        """Run the subgraph on graph-input arrays; return every tensor value of the run.

        ``self.last_op_data`` holds the prepared data every operator ran with (including operators
        prepared at run time), for traces and golden export.
        """
        sg = self.subgraph
        values: dict[int, np.ndarray] = {}
        for t in sg.tensors:
            if t.is_constant:
                values[t.index] = t.data  # type: ignore[assignment]
        values.update(inputs)
        used: list[OpData | None] = list(self.op_data)
        total = sum(int(v.nbytes) for i, v in values.items() if not sg.tensors[i].is_constant)
        with np.errstate(all="ignore"):
            for op in sg.operators:
                where = f"subgraph {self.subgraph_index}, operator {op.index} ({op.opcode})"
                data = self.op_data[op.index]
                if data is None:
                    infos = {}
                    for i in op.inputs:
                        if i >= 0:
                            v = values[i]
                            infos[i] = self._info(i, v.shape, v)  # at run time every input value is known
                    data = self.prepare_op(op.index, infos)
                    self.op_data[op.index] = None  # keep run-time prepared ops fresh for the next run
                    used[op.index] = data
                    total += sum(_nbytes(sh, sg.tensors[o].dtype) for sh, o in zip(data.output_shapes, op.outputs))
                    scratch = data.scratch_bytes([values[i].shape if i >= 0 else () for i in op.inputs])
                    if total + scratch > self.memory_limit:
                        raise ResourceLimitError(
                            f"{where}: the run would hold {total} bytes of tensors, above the limit of "
                            f"{self.memory_limit} bytes"
                        )
                arrays = [values[i] if i >= 0 else None for i in op.inputs]
                try:
                    outs = data.eval(arrays)
                except RefquantError:
                    raise
                except (ValueError, IndexError, TypeError, OverflowError, ZeroDivisionError, MemoryError) as exc:
                    raise EvalError(f"{where}: failed at run time ({type(exc).__name__}: {exc})") from exc
                for j, o in enumerate(op.outputs):
                    arr = outs[j]
                    want = sg.tensors[o].np_dtype
                    if arr.dtype != want or tuple(arr.shape) != tuple(data.output_shapes[j]):
                        raise EvalError(
                            f"{where}: produced {arr.dtype}{list(arr.shape)} for tensor {o}, expected "
                            f"{want}{list(data.output_shapes[j])} (a refquant kernel bug; please report it)"
                        )
                    values[o] = arr
        self.last_op_data = tuple(used)
        return values
