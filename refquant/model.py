"""The immutable in-memory model: what refquant knows about a .tflite file after reading it.

Everything here is frozen. Arrays held by these objects (quantization parameters, constant tensor
data) are read-only NumPy arrays; constant data is a zero-copy view of the file's bytes except for
packed sub-byte types (int4, uint4, int2), which are unpacked to int8/uint8 on read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from types import MappingProxyType

import numpy as np

__all__ = [
    "TENSOR_TYPES",
    "QuantParams",
    "Tensor",
    "Operator",
    "SubGraph",
    "SignatureDef",
    "Metadata",
    "Model",
    "numpy_dtype",
]

#: TensorType enum value -> dtype name refquant uses (NumPy names where NumPy has the type).
TENSOR_TYPES: dict[int, str] = {
    0: "float32",
    1: "float16",
    2: "int32",
    3: "uint8",
    4: "int64",
    5: "string",
    6: "bool",
    7: "int16",
    8: "complex64",
    9: "int8",
    10: "float64",
    11: "complex128",
    12: "uint64",
    13: "resource",
    14: "variant",
    15: "uint32",
    16: "uint16",
    17: "int4",
    18: "bfloat16",
    19: "int2",
    20: "uint4",
    21: "float8_e4m3fn",
    22: "float8_e5m2",
}
TENSOR_TYPE_CODES: dict[str, int] = {v: k for k, v in TENSOR_TYPES.items()}

#: Sub-byte types: (bits, storage dtype of the unpacked values).
PACKED_TYPES: dict[str, tuple[int, str]] = {"int4": (4, "int8"), "uint4": (4, "uint8"), "int2": (2, "int8")}


def numpy_dtype(dtype: str) -> np.dtype:
    """The NumPy dtype that holds values of a refquant dtype name (int4 -> int8, ...)."""
    if dtype in PACKED_TYPES:
        return np.dtype(PACKED_TYPES[dtype][1])
    try:
        return np.dtype(dtype)
    except TypeError:
        return np.dtype(object)


def _readonly(a: np.ndarray) -> np.ndarray:
    if a.flags.writeable:
        a = a.view()
        a.flags.writeable = False
    return a


def _canon(obj: object) -> object:
    """A hashable canonical form used for equality of model objects."""
    if is_dataclass(obj):
        return (type(obj).__name__,) + tuple((f.name, _canon(getattr(obj, f.name))) for f in fields(obj))
    if isinstance(obj, np.ndarray):
        return ("ndarray", obj.dtype.str, obj.shape, obj.tobytes())
    if isinstance(obj, Mapping):
        return ("map",) + tuple(sorted((k, _canon(v)) for k, v in obj.items()))
    if isinstance(obj, (list, tuple)):
        return ("seq",) + tuple(_canon(v) for v in obj)
    if isinstance(obj, (bytes, memoryview)):
        return bytes(obj)
    return obj


class _Comparable:
    """Equality by value (arrays compared by dtype, shape and bytes)."""

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return _canon(self) == _canon(other)

    def __hash__(self) -> int:
        return hash(_canon(self))


@dataclass(frozen=True, eq=False)
class QuantParams(_Comparable):
    """Affine quantization of a tensor: real = scale * (q - zero_point).

    ``scale`` (float32) and ``zero_point`` (int64) have one entry per tensor or one per channel
    along ``quantized_dimension``.
    """

    scale: np.ndarray
    zero_point: np.ndarray
    quantized_dimension: int = 0
    min: np.ndarray | None = None
    max: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", _readonly(np.asarray(self.scale, dtype=np.float32).reshape(-1)))
        object.__setattr__(self, "zero_point", _readonly(np.asarray(self.zero_point, dtype=np.int64).reshape(-1)))
        for name in ("min", "max"):
            v = getattr(self, name)
            if v is not None:
                object.__setattr__(self, name, _readonly(np.asarray(v, dtype=np.float32).reshape(-1)))

    @property
    def per_channel(self) -> bool:
        """True when there is more than one scale."""
        return self.scale.size > 1


@dataclass(frozen=True, eq=False)
class Tensor(_Comparable):
    """One tensor of a subgraph. ``data`` is set for tensors whose buffer holds constant bytes."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    buffer: int = 0
    quantization: QuantParams | None = None
    shape_signature: tuple[int, ...] | None = None
    is_variable: bool = False
    has_rank: bool = False
    sparse: bool = False
    data: np.ndarray | None = None

    @property
    def is_constant(self) -> bool:
        """True when the tensor has constant data in the model."""
        return self.data is not None

    @property
    def np_dtype(self) -> np.dtype:
        """The NumPy dtype holding this tensor's values."""
        return numpy_dtype(self.dtype)


@dataclass(frozen=True, eq=False)
class Operator(_Comparable):
    """One operator. ``options`` maps option field names to values (enums as member names)."""

    index: int
    opcode: str
    builtin_code: int
    version: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    intermediates: tuple[int, ...] = ()
    options: Mapping[str, object] = field(default_factory=dict)
    options_type: str | None = None
    custom_code: str | None = None
    custom_options: bytes | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))


@dataclass(frozen=True, eq=False)
class SubGraph(_Comparable):
    """A subgraph: tensors, operators in execution order, graph inputs and outputs."""

    name: str
    tensors: tuple[Tensor, ...]
    operators: tuple[Operator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class SignatureDef(_Comparable):
    """A named entry point: signature key, subgraph and name -> tensor index maps."""

    key: str
    subgraph_index: int
    inputs: tuple[tuple[str, int], ...]
    outputs: tuple[tuple[str, int], ...]


@dataclass(frozen=True, eq=False)
class Metadata(_Comparable):
    """A named metadata entry with its bytes."""

    name: str
    data: bytes


@dataclass(frozen=True, eq=False)
class Model(_Comparable):
    """A whole .tflite model, immutable."""

    subgraphs: tuple[SubGraph, ...]
    version: int = 3
    description: str = ""
    signatures: tuple[SignatureDef, ...] = ()
    metadata: tuple[Metadata, ...] = ()

    @property
    def main(self) -> SubGraph:
        """Subgraph 0, the one inference starts in."""
        return self.subgraphs[0]
