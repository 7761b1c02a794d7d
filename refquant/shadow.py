"""The float *shadow* of a quantized graph: the same operators, run in float32.

``float_shadow(model)`` returns a new Model in which every quantized tensor (int8, uint8, int16
activations and weights; int32/int64 biases with scales) is float32, constants are dequantized
(per channel along their quantized dimension), and QUANTIZE / DEQUANTIZE operators become
identities (the internal opcode ``REFQUANT_IDENTITY``, never written to a file). Tensor indices,
names and operator order are unchanged, so every tensor of the quantized run has a float
counterpart at the same index: that is what the comparison report reads.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .model import Model, Operator, SubGraph, Tensor

__all__ = ["float_shadow", "dequantize_tensor_data", "IDENTITY_OPCODE"]

#: Internal opcode of the shadow graph's identity operators.
IDENTITY_OPCODE = "REFQUANT_IDENTITY"

_QUANTIZABLE = ("int8", "uint8", "int16", "int32", "int64", "int4", "uint4", "int2")


def dequantize_tensor_data(t: Tensor) -> np.ndarray:
    """Real values of a quantized constant: scale * (q - zero_point), per channel where it applies."""
    assert t.data is not None and t.quantization is not None
    q = t.quantization
    data = t.data.astype(np.float64)
    scale = q.scale.astype(np.float64)
    zp = q.zero_point.astype(np.float64)
    if q.scale.size > 1 and data.ndim:
        shape = [1] * data.ndim
        shape[q.quantized_dimension] = -1
        scale = scale.reshape(shape)
        zp = zp.reshape(shape)
    else:
        scale, zp = scale.reshape(()), zp.reshape(())
    return np.asarray((data - zp) * scale, dtype=np.float32)  # 0-d constants stay arrays


def _shadow_tensor(t: Tensor) -> Tensor:
    if t.quantization is None or t.dtype not in _QUANTIZABLE:
        return t
    data = None
    if t.data is not None:
        data = dequantize_tensor_data(t)
        data.flags.writeable = False
    return dataclasses.replace(t, dtype="float32", quantization=None, data=data)


def _shadow_op(op: Operator, tensors: tuple[Tensor, ...]) -> Operator:
    if op.opcode in ("QUANTIZE", "DEQUANTIZE"):
        return dataclasses.replace(op, opcode=IDENTITY_OPCODE, builtin_code=-1, options={}, options_type=None)
    return op


def float_shadow(model: Model) -> Model:
    """The float shadow of ``model`` (a float model is returned unchanged in structure)."""
    subgraphs = []
    for sg in model.subgraphs:
        tensors = tuple(_shadow_tensor(t) for t in sg.tensors)
        ops = tuple(_shadow_op(op, tensors) for op in sg.operators)
        subgraphs.append(SubGraph(sg.name, tensors, ops, sg.inputs, sg.outputs))
    return dataclasses.replace(model, subgraphs=tuple(subgraphs))
