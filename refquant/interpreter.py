"""``refquant.Interpreter``: the tf.lite.Interpreter / ai_edge_litert API over refquant's kernels.

Differences from LiteRT's interpreter, on purpose:

* every tensor of the last run can be read after ``invoke`` (as with LiteRT's
  ``experimental_preserve_all_tensors=True``), and the run is available as :attr:`trace`;
* ``rounding`` selects the requantization rounding: ``"double"`` (LiteRT's default build) or
  ``"single"`` (a ``TFLITE_SINGLE_ROUNDING`` build);
* ``arithmetic`` selects which runtime's integer arithmetic is reproduced (:mod:`refquant.arithmetic`):
  ``"litert-ref"`` (the default), ``"litert-xnnpack"``, ``"litert-optimized"`` or ``"tflm"``;
* ``float_accumulation`` selects how float32 CONV_2D, TRANSPOSE_CONV, FULLY_CONNECTED and BATCH_MATMUL
  sum their products: ``"float64"`` (the default: BLAS in float64, each sum rounded once to float32,
  closer to the exact sum than LiteRT) or ``"sequential"`` (LiteRT BUILTIN_REF's float32 loop, bit-exact
  with it, 4-6x slower);
* errors are :class:`refquant.RefquantError` subclasses naming the operator and tensor, raised by
  ``allocate_tensors`` wherever the shapes allow, never garbage from ``invoke``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .engine import Engine
from .errors import InputError, RefquantError
from .graph import PreparedGraph, Trace
from .model import Model, Tensor
from .options import DEFAULT_MAX_STEPS, DEFAULT_MEMORY_LIMIT, EngineOptions
from .tflite.reader import load_model

__all__ = ["Interpreter", "Trace", "SignatureRunner"]


def _details(t: Tensor, shape: tuple[int, ...]) -> dict[str, Any]:
    q = t.quantization
    if q is not None:
        scales = q.scale.astype(np.float32)
        zps = q.zero_point.astype(np.int32)
        quantization = (float(scales[0]), int(zps[0]))
        qdim = q.quantized_dimension
    else:
        scales, zps, quantization, qdim = np.zeros(0, np.float32), np.zeros(0, np.int32), (0.0, 0), 0
    return {
        "name": t.name,
        "index": t.index,
        "shape": np.array(shape, dtype=np.int32),
        "shape_signature": np.array(t.shape_signature if t.shape_signature is not None else shape, dtype=np.int32),
        "dtype": t.np_dtype.type,
        "quantization": quantization,
        "quantization_parameters": {"scales": scales, "zero_points": zps, "quantized_dimension": qdim},
        "sparsity_parameters": {},
    }


class Interpreter:
    """Run a .tflite model with refquant's reference kernels (API of ``tf.lite.Interpreter``)."""

    def __init__(
        self,
        model_path: str | os.PathLike | None = None,
        model_content: bytes | None = None,
        *,
        rounding: str = "double",
        model: Model | None = None,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
        float_accumulation: str = "float64",
        arithmetic: str = "litert-ref",
        max_steps: int = DEFAULT_MAX_STEPS,
    ) -> None:
        self.options = EngineOptions(rounding, float_accumulation, memory_limit, arithmetic, max_steps)
        given = [x is not None for x in (model_path, model_content, model)]
        if sum(given) != 1:
            raise InputError("give exactly one of model_path, model_content or model")
        if model is None:
            model = load_model(model_path if model_path is not None else model_content)  # type: ignore[arg-type]
        self.model: Model = model
        self._engine = Engine(model, 0, self.options)
        self._sg = model.subgraphs[0]
        self._input_shapes: dict[int, tuple[int, ...]] = {i: self._sg.tensors[i].shape for i in self._sg.inputs}
        self._graph: PreparedGraph | None = None
        self._inputs: dict[int, np.ndarray] = {}
        self._trace: Trace | None = None

    @property
    def rounding(self) -> str:
        """Requantization rounding of this interpreter (``options.rounding``)."""
        return self.options.rounding

    @property
    def float_accumulation(self) -> str:
        """Float32 matrix-product summation of this interpreter (``options.float_accumulation``)."""
        return self.options.float_accumulation

    @property
    def arithmetic(self) -> str:
        """The arithmetic profile of this interpreter (``options.arithmetic``)."""
        return self.options.arithmetic

    @property
    def memory_limit(self) -> int:
        """Bound on the bytes of one run's tensors (``options.memory_limit``)."""
        return self.options.memory_limit

    @property
    def engine(self) -> Engine:
        """The engine seam under this interpreter (prepare and run single operators on any values)."""
        return self._engine

    # -- setup -----------------------------------------------------------------------------------
    def allocate_tensors(self) -> None:
        """Prepare every operator for the current input shapes (all checks happen here)."""
        self._graph = self._engine.prepare(self._input_shapes)
        self._inputs = {i: v for i, v in self._inputs.items() if v.shape == self._input_shapes[i]}

    def resize_tensor_input(self, input_index: int, tensor_size: Sequence[int], strict: bool = False) -> None:
        """Change the shape of a graph input; call :meth:`allocate_tensors` afterwards."""
        if input_index not in self._input_shapes:
            raise InputError(f"tensor {input_index} is not an input of the model (inputs: {list(self._sg.inputs)})")
        shape = tuple(int(d) for d in tensor_size)
        if any(d < 0 for d in shape):
            raise InputError(f"resize of input {input_index}: negative dimension in {list(shape)}")
        t = self._sg.tensors[input_index]
        if strict:
            sig = t.shape_signature or t.shape
            if len(sig) != len(shape) or any(s != -1 and s != d for s, d in zip(sig, shape)):
                raise InputError(
                    f"strict resize of input {input_index} to {list(shape)} does not fit signature {list(sig)}"
                )
        self._input_shapes[input_index] = shape
        self._graph = None

    def _require_graph(self) -> PreparedGraph:
        if self._graph is None:
            raise RefquantError("call allocate_tensors() first")
        return self._graph

    # -- details ---------------------------------------------------------------------------------
    def _current_shape(self, index: int) -> tuple[int, ...]:
        if self._graph is not None:
            shape = self._graph.shape_of(index)
            if shape is not None:
                return shape
        if self._trace is not None and index in self._trace.values:
            return tuple(self._trace.values[index].shape)
        return self._input_shapes.get(index, self._sg.tensors[index].shape)

    def get_input_details(self) -> list[dict[str, Any]]:
        """Details of the graph inputs, in order (same keys as LiteRT)."""
        return [_details(self._sg.tensors[i], self._current_shape(i)) for i in self._sg.inputs]

    def get_output_details(self) -> list[dict[str, Any]]:
        """Details of the graph outputs, in order."""
        return [_details(self._sg.tensors[i], self._current_shape(i)) for i in self._sg.outputs]

    def get_tensor_details(self) -> list[dict[str, Any]]:
        """Details of every tensor of the main subgraph."""
        return [_details(t, self._current_shape(t.index)) for t in self._sg.tensors]

    # -- data ------------------------------------------------------------------------------------
    def set_tensor(self, tensor_index: int, value: Any) -> None:
        """Set a graph input. The dtype must equal the tensor's and the shape its current shape."""
        if tensor_index not in self._input_shapes:
            raise InputError(f"tensor {tensor_index} is not an input of the model (inputs: {list(self._sg.inputs)})")
        t = self._sg.tensors[tensor_index]
        arr = np.asarray(value)
        want = t.np_dtype
        if arr.dtype != want:
            raise InputError(f"input tensor {tensor_index} {t.name!r}: got {arr.dtype}, expected {want}")
        shape = self._input_shapes[tensor_index]
        if tuple(arr.shape) != shape:
            raise InputError(
                f"input tensor {tensor_index} {t.name!r}: got shape {list(arr.shape)}, expected {list(shape)} "
                "(use resize_tensor_input to change it)"
            )
        arr = np.array(arr, copy=True)
        arr.flags.writeable = False
        self._inputs[tensor_index] = arr

    def invoke(self) -> None:
        """Run the model on the inputs given with :meth:`set_tensor`."""
        graph = self._require_graph()
        missing = [i for i in self._sg.inputs if i not in self._inputs]
        if missing:
            names = ", ".join(f"{i} {self._sg.tensors[i].name!r}" for i in missing)
            raise InputError(f"input tensor(s) {names} not set; call set_tensor first")
        self._trace = graph.run(self._inputs)

    def get_tensor(self, tensor_index: int, subgraph_index: int = 0) -> np.ndarray:
        """A copy of a tensor's value from the last run (any tensor, not only outputs)."""
        if subgraph_index != 0:
            raise InputError("refquant's Interpreter exposes subgraph 0 only")
        if not 0 <= tensor_index < len(self._sg.tensors):
            raise InputError(f"tensor index {tensor_index} is out of range (0..{len(self._sg.tensors) - 1})")
        if self._trace is not None and tensor_index in self._trace.values:
            return np.array(self._trace.values[tensor_index])
        if tensor_index in self._inputs:
            return np.array(self._inputs[tensor_index])
        t = self._sg.tensors[tensor_index]
        if t.data is not None:
            return np.array(t.data)
        raise InputError(f"tensor {tensor_index} {t.name!r} has no value yet: call invoke() first")

    @property
    def trace(self) -> Trace:
        """The last run: every tensor value and every op's prepared data."""
        if self._trace is None:
            raise RefquantError("no run yet: call invoke() first")
        return self._trace

    def float_shadow(self) -> Interpreter:
        """An Interpreter on the float shadow of this model (see :mod:`refquant.shadow`), same input shapes."""
        from .shadow import float_shadow

        o = self.options
        other = Interpreter(
            model=float_shadow(self.model),
            rounding=o.rounding,
            memory_limit=o.memory_limit,
            float_accumulation=o.float_accumulation,
            arithmetic=o.arithmetic,
            max_steps=o.max_steps,
        )
        for i, shape in self._input_shapes.items():
            if shape != self._sg.tensors[i].shape:
                other.resize_tensor_input(i, shape)
        return other

    # -- signatures ------------------------------------------------------------------------------
    def get_signature_list(self) -> dict[str, dict[str, list[str]]]:
        """``{key: {"inputs": [names], "outputs": [names]}}`` as LiteRT returns it."""
        return {
            s.key: {"inputs": sorted(n for n, _ in s.inputs), "outputs": sorted(n for n, _ in s.outputs)}
            for s in self.model.signatures
        }

    def get_signature_runner(self, signature_key: str | None = None) -> SignatureRunner:
        """A callable running one signature with keyword inputs, returning a dict of outputs."""
        sigs = {s.key: s for s in self.model.signatures}
        if not sigs:
            raise InputError("the model has no signatures")
        if signature_key is None:
            if len(sigs) > 1:
                raise InputError(f"the model has several signatures {sorted(sigs)}; name one")
            signature_key = next(iter(sigs))
        if signature_key not in sigs:
            raise InputError(f"no signature {signature_key!r}; the model has {sorted(sigs)}")
        sig = sigs[signature_key]
        if sig.subgraph_index != 0:
            raise InputError(f"signature {signature_key!r} runs subgraph {sig.subgraph_index}; only 0 is supported")
        return SignatureRunner(self, sig.inputs, sig.outputs)


class SignatureRunner:
    """Runs one signature: ``runner(x=array) -> {"output_name": array}``."""

    def __init__(self, interp: Interpreter, inputs: tuple[tuple[str, int], ...], outputs: tuple[tuple[str, int], ...]):
        self._interp = interp
        self._inputs = dict(inputs)
        self._outputs = dict(outputs)

    def get_input_details(self) -> dict[str, dict[str, Any]]:
        """Input details keyed by signature name."""
        sg = self._interp._sg
        return {n: _details(sg.tensors[i], self._interp._current_shape(i)) for n, i in self._inputs.items()}

    def get_output_details(self) -> dict[str, dict[str, Any]]:
        """Output details keyed by signature name."""
        sg = self._interp._sg
        return {n: _details(sg.tensors[i], self._interp._current_shape(i)) for n, i in self._outputs.items()}

    def __call__(self, **kwargs: Any) -> dict[str, np.ndarray]:
        """Run with inputs by signature name."""
        unknown = set(kwargs) - set(self._inputs)
        missing = set(self._inputs) - set(kwargs)
        if unknown or missing:
            raise InputError(
                f"signature inputs are {sorted(self._inputs)}; unknown: {sorted(unknown)}, missing: {sorted(missing)}"
            )
        it = self._interp
        for name, arr in kwargs.items():
            idx = self._inputs[name]
            shape = tuple(np.shape(arr))
            if shape != it._input_shapes[idx]:
                it.resize_tensor_input(idx, shape)
        if it._graph is None:
            it.allocate_tensors()
        for name, arr in kwargs.items():
            it.set_tensor(self._inputs[name], np.asarray(arr))
        it.invoke()
        return {n: it.get_tensor(i) for n, i in self._outputs.items()}
