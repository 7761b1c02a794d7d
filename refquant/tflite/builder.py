"""Build .tflite models in Python: tensors with quant params, constants, operators, signatures.

Example::

    b = ModelBuilder()
    x = b.add_input("x", (1, 8, 8, 3), "int8", scale=0.05, zero_point=-3)
    w = b.add_constant("w", weights, scale=w_scales, zero_point=0, quantized_dimension=0)
    bias = b.add_constant("b", bias_int32, scale=0.05 * w_scales, zero_point=0)
    y = b.add_tensor("y", (1, 8, 8, 4), "int8", scale=0.1, zero_point=2)
    b.add_operator("CONV_2D", [x, w, bias], [y], padding="SAME", stride_w=1, stride_h=1)
    b.mark_output(y)
    data = b.build()            # .tflite bytes; b.model() gives the Model
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ModelFormatError
from ..model import TENSOR_TYPE_CODES, Model, Operator, QuantParams, SignatureDef, SubGraph, Tensor, numpy_dtype
from .reader import default_options
from .writer import OPTIONS_TABLE, opcode_code, write_model

__all__ = ["ModelBuilder"]


class ModelBuilder:
    """Accumulates one subgraph (plus optional extra subgraphs) and produces a Model or bytes."""

    def __init__(self, description: str = "refquant builder") -> None:
        self.description = description
        self._subgraphs: list[dict] = []
        self._signatures: list[SignatureDef] = []
        self._next_buffer = 1
        self.new_subgraph("main")

    # -- subgraphs -------------------------------------------------------------------------------
    def new_subgraph(self, name: str = "") -> int:
        """Start a new subgraph; later calls add to it. Returns its index."""
        self._subgraphs.append({"name": name, "tensors": [], "ops": [], "inputs": [], "outputs": []})
        self._cur = self._subgraphs[-1]
        return len(self._subgraphs) - 1

    def use_subgraph(self, index: int) -> None:
        """Make subgraph ``index`` the one later calls add to."""
        self._cur = self._subgraphs[index]

    # -- tensors ---------------------------------------------------------------------------------
    def add_tensor(
        self,
        name: str,
        shape: Sequence[int],
        dtype: str,
        *,
        scale: float | Sequence[float] | np.ndarray | None = None,
        zero_point: int | Sequence[int] | np.ndarray | None = None,
        quantized_dimension: int = 0,
        data: np.ndarray | None = None,
        shape_signature: Sequence[int] | None = None,
        is_variable: bool = False,
    ) -> int:
        """Add a tensor; returns its index. Give ``scale`` (and ``zero_point``) to quantize it."""
        if dtype not in TENSOR_TYPE_CODES:
            raise ModelFormatError(f"tensor {name!r}: unknown dtype {dtype!r}")
        shape = tuple(int(d) for d in shape)
        quant = None
        if scale is not None:
            s = np.atleast_1d(np.asarray(scale, dtype=np.float32))
            zp = np.zeros(s.shape, np.int64) if zero_point is None else np.atleast_1d(np.asarray(zero_point))
            if zp.size == 1 and s.size > 1:
                zp = np.full(s.shape, int(zp[0]), np.int64)
            quant = QuantParams(s, zp, quantized_dimension)
        buffer = 0
        if data is not None:
            data = np.array(data, dtype=numpy_dtype(dtype)).reshape(shape)
            data.flags.writeable = False
            buffer = self._next_buffer
            self._next_buffer += 1
        index = len(self._cur["tensors"])
        self._cur["tensors"].append(
            Tensor(
                index=index,
                name=name,
                shape=shape,
                dtype=dtype,
                buffer=buffer,
                quantization=quant,
                shape_signature=tuple(shape_signature) if shape_signature is not None else None,
                is_variable=is_variable,
                data=data,
            )
        )
        return index

    def add_constant(self, name: str, data: np.ndarray | Sequence, dtype: str | None = None, **quant: object) -> int:
        """Add a constant tensor holding ``data`` (dtype taken from the array unless given)."""
        arr = np.asarray(data)
        dtype = dtype or arr.dtype.name
        return self.add_tensor(name, arr.shape, dtype, data=arr, **quant)  # type: ignore[arg-type]

    def add_input(self, name: str, shape: Sequence[int], dtype: str, **quant: object) -> int:
        """Add a tensor and mark it as a graph input."""
        t = self.add_tensor(name, shape, dtype, **quant)  # type: ignore[arg-type]
        self._cur["inputs"].append(t)
        return t

    def mark_output(self, *tensors: int) -> None:
        """Mark tensors as graph outputs (in call order)."""
        self._cur["outputs"].extend(tensors)

    # -- operators -------------------------------------------------------------------------------
    def add_operator(
        self,
        opcode: str,
        inputs: Sequence[int],
        outputs: Sequence[int],
        *,
        version: int = 1,
        options_type: str | None = None,
        intermediates: Sequence[int] = (),
        **options: object,
    ) -> int:
        """Add an operator with builtin options given as keyword arguments (enums by name)."""
        code = opcode_code(opcode)
        table = options_type or OPTIONS_TABLE.get(opcode)
        if options and table is None:
            raise ModelFormatError(f"{opcode}: refquant does not know its options table; pass options_type=")
        full = default_options(table) if table is not None else {}
        unknown = set(options) - set(full)
        if unknown:
            raise ModelFormatError(f"{opcode}: {table} has no field(s) {sorted(unknown)}; fields: {sorted(full)}")
        full.update(options)
        index = len(self._cur["ops"])
        self._cur["ops"].append(
            Operator(
                index=index,
                opcode=opcode,
                builtin_code=code,
                version=version,
                inputs=tuple(int(i) for i in inputs),
                outputs=tuple(int(o) for o in outputs),
                intermediates=tuple(intermediates),
                options=full,
                options_type=table,
            )
        )
        return index

    def add_signature(self, key: str, inputs: dict[str, int], outputs: dict[str, int], subgraph_index: int = 0) -> None:
        """Add a SignatureDef mapping names to tensor indices."""
        self._signatures.append(SignatureDef(key, subgraph_index, tuple(inputs.items()), tuple(outputs.items())))

    # -- output ----------------------------------------------------------------------------------
    def model(self) -> Model:
        """The Model built so far (immutable)."""
        sgs = tuple(
            SubGraph(
                name=sg["name"],
                tensors=tuple(sg["tensors"]),
                operators=tuple(sg["ops"]),
                inputs=tuple(sg["inputs"]),
                outputs=tuple(sg["outputs"]),
            )
            for sg in self._subgraphs
        )
        return Model(subgraphs=sgs, description=self.description, signatures=tuple(self._signatures))

    def build(self) -> bytes:
        """The model as .tflite bytes."""
        return write_model(self.model())
