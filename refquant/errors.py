"""The one small error hierarchy of refquant.

Every failure refquant reports on purpose is a :class:`RefquantError`. Messages name the place
(byte offset, or subgraph / operator / tensor) and what was expected, so a user can act on them
without a traceback.
"""

from __future__ import annotations

__all__ = [
    "RefquantError",
    "ModelFormatError",
    "UnsupportedOpError",
    "QuantParamError",
    "PrepareError",
    "InputError",
    "ResourceLimitError",
    "EvalError",
]


class RefquantError(Exception):
    """Base class of every error refquant raises deliberately."""


class ModelFormatError(RefquantError):
    """A .tflite file (or bytes) is malformed: truncated, out-of-bounds offsets, inconsistent graph."""


class UnsupportedOpError(RefquantError):
    """An operator (or an operator/dtype combination) that refquant does not implement."""


class QuantParamError(RefquantError):
    """Quantization parameters that are missing, out of range or unusable by a kernel."""


class PrepareError(RefquantError):
    """An operator failed its prepare-time checks (shapes, dtypes, options)."""


class InputError(RefquantError):
    """A user-supplied input (array, file, CLI argument) has the wrong name, shape, dtype or value."""


class ResourceLimitError(RefquantError):
    """An allocation would exceed the configured memory bound (checked from shapes before allocating)."""


class EvalError(RefquantError):
    """An operator failed while running (bad indices in the data, or a refquant kernel bug it names)."""
