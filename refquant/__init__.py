"""refquant: a pure-NumPy reference quantization engine for TensorFlow Lite (LiteRT) models.

Reads .tflite flatbuffers itself, runs quantized graphs (int8, int16x8, uint8) with integer kernels
bit-exact with LiteRT's reference kernels (BUILTIN_REF), runs the same graph in float, and reports
where quantization error comes from.
"""

from __future__ import annotations

from .errors import (
    EvalError,
    InputError,
    ModelFormatError,
    PrepareError,
    QuantParamError,
    RefquantError,
    ResourceLimitError,
    UnsupportedOpError,
)
from .interpreter import Interpreter, SignatureRunner, Trace
from .model import Model, Operator, QuantParams, SubGraph, Tensor
from .tflite.builder import ModelBuilder
from .tflite.reader import load_model
from .tflite.writer import write_model

__version__ = "0.1.0"

# Bound after the submodule is imported, so `refquant.compare` is the function (the module stays
# importable as `refquant.compare` through sys.modules).
from .compare import Report, compare  # noqa: E402

__all__ = [
    "Interpreter",
    "compare",
    "Report",
    "SignatureRunner",
    "Trace",
    "Model",
    "Operator",
    "QuantParams",
    "SubGraph",
    "Tensor",
    "ModelBuilder",
    "load_model",
    "write_model",
    "RefquantError",
    "ModelFormatError",
    "UnsupportedOpError",
    "QuantParamError",
    "PrepareError",
    "InputError",
    "ResourceLimitError",
    "EvalError",
    "__version__",
]
