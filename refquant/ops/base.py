"""What every op module builds on: the prepare context, the prepared-op data and shared checks.

An op module provides ``prepare(ctx: OpContext) -> OpData``. ``prepare`` does every float
computation (multipliers, shifts, activation ranges, lookup tables) and every check, and raises a
:class:`refquant.RefquantError` naming the operator and tensor when something is wrong. The
returned :class:`OpData` is frozen; its ``eval`` gets NumPy arrays and does integer arithmetic only
(or float arithmetic for float graphs) and never looks back at the model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Any, ClassVar

import numpy as np

from ..arithmetic import OpArithmetic
from ..errors import PrepareError, QuantParamError, RefquantError, UnsupportedOpError
from ..model import Model, Operator, QuantParams, numpy_dtype
from ..options import EngineOptions

__all__ = [
    "TensorInfo",
    "OpContext",
    "OpData",
    "OpDef",
    "Step",
    "QUANT_DTYPES",
    "broadcast_shape",
    "DeferredPrepare",
]

#: Activation dtypes of quantized graphs.
QUANT_DTYPES = ("int8", "uint8", "int16")


class DeferredPrepare(PrepareError):
    """Raised by ``prepare`` when the output shape depends on the *value* of an input that is known only
    at run time (a RESHAPE target computed from data, a PAD whose paddings are not constant).

    The graph catches it at allocate time and prepares the operator (and everything downstream of
    it) again just before it runs, when every input value is known; anywhere else it surfaces as an
    ordinary :class:`PrepareError` naming the operator and tensor.
    """


@dataclass(frozen=True)
class TensorInfo:
    """What prepare knows about one tensor: its current shape, type, quantization and (if known) value.

    ``value`` is set for constants and for tensors whose value refquant could compute at prepare
    time (shape arithmetic on constants); ``shape`` is the shape after any resize.
    """

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    quant: QuantParams | None = None
    value: np.ndarray | None = None

    @property
    def np_dtype(self) -> np.dtype:
        """NumPy dtype holding the values."""
        return numpy_dtype(self.dtype)

    @property
    def is_quantized(self) -> bool:
        """True when the tensor has scales."""
        return self.quant is not None and self.quant.scale.size > 0

    @property
    def scale(self) -> float:
        """First (per-tensor) scale as a Python float (float32 value)."""
        if self.quant is None:
            raise QuantParamError(f"tensor {self.index} {self.name!r} has no quantization parameters")
        return float(self.quant.scale[0])

    @property
    def zero_point(self) -> int:
        """First zero point (0 when the tensor is not quantized)."""
        if self.quant is None or self.quant.zero_point.size == 0:
            return 0
        return int(self.quant.zero_point[0])

    @property
    def size(self) -> int:
        """Number of elements."""
        n = 1
        for d in self.shape:
            n *= d
        return n

    def describe(self) -> str:
        """``tensor 3 'conv/out' int8[1,8,8,4]`` for messages."""
        return f"tensor {self.index} {self.name!r} {self.dtype}{list(self.shape)}"


@dataclass(frozen=True)
class OpContext:
    """Everything ``prepare`` may look at for one operator."""

    model: Model
    subgraph_index: int
    op: Operator
    inputs: tuple[TensorInfo | None, ...]
    outputs: tuple[TensorInfo, ...]
    #: The engine options of the run: arithmetic variants and the memory bound (one object for every op).
    engine_options: EngineOptions = field(default_factory=EngineOptions)

    @cached_property
    def arithmetic(self) -> OpArithmetic:
        """What this operator computes under the engine's arithmetic profile (:mod:`refquant.arithmetic`).

        Raises :class:`UnsupportedOpError` naming the runtime where refquant does not reproduce it.
        A kernel that implements a variant other than ``"reference"`` stores this object in its
        OpData's ``arithmetic`` field; the graph refuses an operator whose data does not.
        """
        from ..arithmetic.decide import decide

        return decide(self.engine_options.arithmetic, self)

    @property
    def rounding(self) -> str:
        """Requantization rounding, ``"double"`` or ``"single"`` (``engine_options.rounding``)."""
        return self.engine_options.rounding

    @property
    def float_accumulation(self) -> str:
        """How float32 matrix products sum, ``"float64"`` or ``"sequential"`` (``engine_options.float_accumulation``)."""
        return self.engine_options.float_accumulation

    @property
    def options(self) -> Any:
        """The operator's builtin options (a read-only mapping)."""
        return self.op.options

    def option(self, name: str, default: Any = None) -> Any:
        """One builtin option, or ``default`` when the operator has no options table."""
        return self.op.options.get(name, default)

    def where(self) -> str:
        """``subgraph 0, operator 3 (CONV_2D)``: the place to name in messages."""
        return f"subgraph {self.subgraph_index}, operator {self.op.index} ({self.op.opcode})"

    def error(
        self, msg: str, tensor: TensorInfo | None = None, cls: type[RefquantError] = PrepareError
    ) -> RefquantError:
        """An error of class ``cls`` whose message names this operator (and ``tensor``)."""
        place = self.where() + (f", {tensor.describe()}" if tensor is not None else "")
        return cls(f"{place}: {msg}")

    def unsupported(self, what: str) -> RefquantError:
        """An UnsupportedOpError for a type combination or option refquant does not implement."""
        return self.error(f"not supported: {what}", cls=UnsupportedOpError)

    def input(self, i: int) -> TensorInfo:
        """Input ``i``, which must be present."""
        if i >= len(self.inputs) or self.inputs[i] is None:
            raise self.error(f"input {i} is required but missing (operator has {len(self.inputs)} inputs)")
        t = self.inputs[i]
        assert t is not None
        return t

    def optional_input(self, i: int) -> TensorInfo | None:
        """Input ``i`` or None when omitted (index -1) or absent."""
        return self.inputs[i] if i < len(self.inputs) else None

    def input_value(self, i: int) -> np.ndarray:
        """The value of input ``i`` at prepare time; raises :class:`DeferredPrepare` when it is known only at run time."""
        t = self.input(i)
        if t.value is None:
            raise self.error(
                "the output shape depends on this input's value, which is only known at run time", t, DeferredPrepare
            )
        return t.value

    def output(self, i: int = 0) -> TensorInfo:
        """Output ``i``."""
        if i >= len(self.outputs):
            raise self.error(f"output {i} is required but the operator has {len(self.outputs)} outputs")
        return self.outputs[i]

    def check_counts(self, n_in: int | Sequence[int], n_out: int | Sequence[int] = 1) -> None:
        """Check the number of inputs and outputs (an int, or the allowed values)."""
        ins = (n_in,) if isinstance(n_in, int) else tuple(n_in)
        outs = (n_out,) if isinstance(n_out, int) else tuple(n_out)
        if len(self.inputs) not in ins:
            raise self.error(f"has {len(self.inputs)} inputs; expected {' or '.join(map(str, ins))}")
        if len(self.outputs) not in outs:
            raise self.error(f"has {len(self.outputs)} outputs; expected {' or '.join(map(str, outs))}")

    def check_dtype(self, t: TensorInfo, allowed: Sequence[str], role: str = "") -> None:
        """Raise UnsupportedOpError unless ``t.dtype`` is one of ``allowed``."""
        if t.dtype not in allowed:
            raise self.error(
                f"{role + ' ' if role else ''}type {t.dtype} is not supported; expected one of {list(allowed)}",
                t,
                UnsupportedOpError,
            )

    def check_same_dtype(self, *ts: TensorInfo) -> None:
        """All given tensors have one dtype."""
        if len({t.dtype for t in ts}) > 1:
            raise self.error(
                "tensor types differ: " + ", ".join(t.describe() for t in ts) + "; expected one type",
                cls=UnsupportedOpError,
            )

    def require_quant(self, t: TensorInfo, per_tensor: bool = False) -> QuantParams:
        """The tensor's quantization, checked: finite positive scales, zero points in range."""
        q = t.quant
        if q is None or q.scale.size == 0:
            raise self.error("quantized tensor has no quantization parameters", t, QuantParamError)
        if per_tensor and q.scale.size != 1:
            raise self.error(f"expected per-tensor quantization, found {q.scale.size} scales", t, QuantParamError)
        bad = ~np.isfinite(q.scale) | (q.scale <= 0)
        if bad.any():
            k = int(np.argmax(bad))
            raise self.error(f"scale[{k}] = {float(q.scale[k])!r}; expected a finite scale > 0", t, QuantParamError)
        if t.dtype in QUANT_DTYPES:
            info = np.iinfo(numpy_dtype(t.dtype))
            out = (q.zero_point < info.min) | (q.zero_point > info.max)
            if out.any():
                k = int(np.argmax(out))
                raise self.error(
                    f"zero_point[{k}] = {int(q.zero_point[k])} is outside the {t.dtype} range [{info.min}, {info.max}]",
                    t,
                    QuantParamError,
                )
        return q

    def per_tensor_quant(self, t: TensorInfo) -> tuple[np.float32, int]:
        """The checked per-tensor ``(scale as float32, zero point)`` of a quantized tensor."""
        q = self.require_quant(t, per_tensor=True)
        return np.float32(q.scale[0]), int(q.zero_point[0])

    def require_zero_points(self, *ts: TensorInfo, value: int = 0, why: str = "") -> None:
        """Each tensor's zero points all equal ``value`` (e.g. 0 for int16 activations)."""
        for t in ts:
            if t.quant is not None and (t.quant.zero_point != value).any():
                raise self.error(
                    f"zero point {int(t.quant.zero_point[0])}; expected {value}{' (' + why + ')' if why else ''}",
                    t,
                    QuantParamError,
                )

    def fail_quant(self, msg: str, tensor: TensorInfo | None = None) -> RefquantError:
        """A QuantParamError naming the operator (and tensor)."""
        return self.error(msg, tensor, QuantParamError)


@dataclass(frozen=True)
class Step:
    """One arithmetic step of a traced output element: a name, its value and a one-line explanation."""

    name: str
    value: Any
    detail: str = ""


@dataclass(frozen=True)
class OpData:
    """Prepared, frozen state of one operator. Subclasses implement :meth:`eval`.

    ``output_shapes`` holds the shape of every output as computed by prepare. Subclasses add the
    fixed-point constants ``eval`` needs; every such field is documented where it is declared.
    """

    output_shapes: tuple[tuple[int, ...], ...]
    output_dtypes: tuple[str, ...] = field(default=())
    #: The profile decision this data implements (set by kernels that implement a non-reference variant).
    arithmetic: OpArithmetic | None = field(default=None, kw_only=True)

    #: Names of fields that are not fixed-point parameters (kept out of :meth:`params`).
    _not_params: ClassVar[frozenset[str]] = frozenset({"output_shapes", "output_dtypes", "arithmetic"})
    #: False for foldable ops whose outputs depend on input *shapes* only (SHAPE): the graph then folds
    #: them even when the input values are unknown, passing None for those inputs to :meth:`eval`.
    fold_needs_values: ClassVar[bool] = True

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """Compute the outputs from the input arrays (integer-only for quantized graphs)."""
        raise NotImplementedError

    #: Bytes of temporaries eval holds per element of its largest input or output, when it declares no better
    #: estimate (:meth:`scratch_bytes`): two int64/float64 arrays, what a typical elementwise kernel keeps.
    scratch_per_element: ClassVar[int] = 16

    def scratch_bytes(self, input_shapes: list[tuple[int, ...]]) -> int:
        """Bytes of temporary memory eval needs beyond its outputs (counted by the memory bound).

        By default ``scratch_per_element`` bytes per element of the largest input or output; kernels that
        materialise more (a padded input, an im2col matrix, several wide copies) override this.
        """
        sizes = [_elements(s) for s in (*input_shapes, *self.output_shapes)]
        return self.scratch_per_element * max(sizes, default=0)

    def accumulators(self, inputs: list[np.ndarray | None]) -> dict[str, np.ndarray]:
        """Raw accumulators before requantization, for ops that have them (conv/FC/matmul family)."""
        return {}

    def params(self) -> dict[str, Any]:
        """The fixed-point parameters this op uses (multipliers, shifts, offsets, ranges, tables)."""
        out = {}
        for f in fields(self):
            if f.name in self._not_params or f.name.startswith("_"):
                continue
            v = getattr(self, f.name)
            if isinstance(v, (int, float, str, bool, np.ndarray, np.integer, np.floating, tuple)) or v is None:
                out[f.name] = v
        return out

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """The arithmetic steps that produced one output element (ops that support tracing override)."""
        raise UnsupportedOpError(f"{type(self).__name__} does not support element tracing yet")


@dataclass(frozen=True)
class OpDef:
    """A registry entry: an opcode, its prepare function and the dtypes it supports (for docs)."""

    opcode: str
    prepare: Callable[[OpContext], OpData]
    dtypes: tuple[str, ...]
    #: Whether evaluating the op at prepare time on known inputs is cheap and safe (shape arithmetic).
    foldable: bool = False
    note: str = ""


def broadcast_shape(ctx: OpContext, *shapes: tuple[int, ...], max_rank: int = 6) -> tuple[int, ...]:
    """NumPy broadcasting of shapes, with a refquant error naming the operator when incompatible."""
    rank = max(len(s) for s in shapes)
    if rank > max_rank:
        raise ctx.error(f"broadcast rank {rank} exceeds the {max_rank} the kernel supports", cls=UnsupportedOpError)
    out = []
    for axis in range(rank):
        dims = {s[axis - rank + len(s)] for s in shapes if axis - rank + len(s) >= 0}
        dims.discard(1)
        if len(dims) > 1:
            raise ctx.error(f"shapes {[list(s) for s in shapes]} do not broadcast (axis {axis})")
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def _elements(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n
