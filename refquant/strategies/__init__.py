"""Hypothesis strategies for quantized kernels and small .tflite models, in the manner of ``hypothesis.extra.numpy``.

For hardware, compiler and firmware teams who test their quantized kernels with property-based tests,
and for refquant's own differential suite against LiteRT::

    from hypothesis import given
    import refquant.strategies as rqs
    from refquant.testing import assert_matches_reference

    @given(rqs.op_models("CONV_2D", "int8"))
    def test_conv(case):
        assert_matches_reference(my_backend, case)

Building blocks: :func:`scales`, :func:`zero_points`, :func:`quant_params` (per-tensor or per-channel,
symmetric or asymmetric, int8 / int16 / uint8, scales over several decades), :func:`quantized_arrays`,
:func:`quantized_multipliers`, :func:`conv_geometries` and :func:`pool_geometries` (valid by
construction). Whole models: :func:`op_models` draws a one-operator model of any op refquant supports
(see :func:`supported_op_dtypes`) and :func:`graph_models` small graphs of several operators (chains
and branches). Both produce :class:`refquant.testing.Case` objects (``.model`` bytes, ``.inputs`` in
model input order, ``.description``).

Guarantees:

* **LiteRT accepts the models.** Every parameter is drawn inside what LiteRT's reference kernels
  (``BUILTIN_REF``, ai-edge-litert 2.3) accept and run: never a model that makes LiteRT abort its
  process, and (measured by ``tests/test_strategies.py``) fewer than 5% that it rejects in Prepare.
  refquant runs every one of them.
* **Arguments are validated up front.** Every function checks its arguments when called, before any
  drawing, and raises :class:`InvalidArgument` (a :class:`refquant.RefquantError` and a
  ``hypothesis.errors.InvalidArgument``) naming the argument, the value and what is allowed.
* **Shrinking ends at small, readable cases:** shapes shrink towards one element, scales towards 1
  (then other powers of two), zero points towards 0, values towards 0, options towards their
  simplest setting (stride 1, no dilation, no activation).

dtype names the activation type of a model: ``"int8"``, ``"uint8"``, ``"int16"`` (int16 activations
with int8 weights: the 16x8 scheme), ``"float32"``, and for ops that have them ``"int32"``,
``"int64"`` and ``"bool"`` (unquantized integer / boolean tensors).
"""

from __future__ import annotations

# The op family modules register their builders with the registry when imported.
from . import (  # noqa: F401
    activations,
    batch_matmul,
    control_flow,
    elementwise,
    fully_connected,
    l2norm,
    logical,
    math_ops,
    pad_ops,
    quantize,
    reduce,
    resize,
    select_compare,
    shape_ops,
    slice_ops,
    softmax,
    space_batch,
)
from .base import (
    ACTIVATIONS,
    QUANTIZED_DTYPES,
    InvalidArgument,
    quant_params,
    quantized_arrays,
    quantized_multipliers,
    scales,
    zero_points,
)
from .conv import ConvGeometry, conv_geometries
from .graph import GRAPH_OPS, graph_models
from .pooling import PoolGeometry, pool_geometries
from .registry import op_models, supported_op_dtypes

__all__ = [
    "InvalidArgument",
    "QUANTIZED_DTYPES",
    "ACTIVATIONS",
    "ConvGeometry",
    "PoolGeometry",
    "scales",
    "zero_points",
    "quant_params",
    "quantized_arrays",
    "quantized_multipliers",
    "conv_geometries",
    "pool_geometries",
    "op_models",
    "graph_models",
    "supported_op_dtypes",
    "GRAPH_OPS",
]
