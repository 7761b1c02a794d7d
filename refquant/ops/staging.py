"""Plumbing shared by the operators computed in named stages (elementwise, activations, math, logical).

:class:`Staged` runs a list of named stages for both ``eval`` and ``trace``; :func:`binary_prepare` and
:func:`same_output_dtype` are the prepare checks of the binary elementwise ops; :func:`element_inputs`
picks the input values that broadcasting maps onto one output element.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError, UnsupportedOpError
from .base import OpContext, Step, TensorInfo, broadcast_shape

__all__ = [
    "MAX_BROADCAST_RANK",
    "Stage",
    "Staged",
    "binary_prepare",
    "element_inputs",
    "same_output_dtype",
]

#: LiteRT's BroadcastBinaryOpSimple handles up to 8 dimensions (TFLITE_CHECK: abort above).
MAX_BROADCAST_RANK = 8

#: One named stage: ``(name, array, explanation)``.
Stage = tuple[str, np.ndarray, str]


def element_inputs(
    inputs: list[np.ndarray | None], out_shape: tuple[int, ...], element: tuple[int, ...]
) -> list[np.ndarray | None]:
    """The input values (as 0-d arrays) that numpy broadcasting maps onto output ``element``."""
    if len(element) != len(out_shape) or any(not 0 <= e < d for e, d in zip(element, out_shape)):
        raise InputError(f"element {list(element)} is outside the output shape {list(out_shape)}")
    picked: list[np.ndarray | None] = []
    for arr in inputs:
        if arr is None:
            picked.append(None)
            continue
        a = np.asarray(arr)
        r = a.ndim
        idx = tuple(0 if a.shape[k] == 1 else element[len(out_shape) - r + k] for k in range(r))
        picked.append(np.asarray(a[idx]))
    return picked


def _steps(stages: list[Stage]) -> list[Step]:
    out = []
    for name, value, detail in stages:
        v = np.asarray(value)
        out.append(Step(name, v.item() if v.ndim == 0 else v, detail))
    return out


class Staged:
    """Mixin for operators computed as a list of named stages (elementwise, activations, math, logical ops).

    A subclass implements ``_stages(inputs)``, returning ``(name, array, explanation)`` tuples in order;
    :meth:`eval` returns the last stage broadcast to the output shape, and :meth:`trace` runs the same
    stages on the input values that broadcasting maps onto one output element and shows them all, so
    the trace cannot drift from the kernel.
    """

    output_shapes: tuple[tuple[int, ...], ...]

    def _stages(self, inputs: list[np.ndarray | None]) -> list[Stage]:  # pragma: no cover - abstract
        raise NotImplementedError

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """Compute the output (the last stage)."""
        out = np.asarray(self._stages(inputs)[-1][1])
        shape = self.output_shapes[0]
        return [out if out.shape == shape else np.array(np.broadcast_to(out, shape))]

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """The arithmetic steps that produced output ``element``."""
        if output != 0:
            raise InputError(f"the operator has one output; got output index {output}")
        picked = element_inputs(inputs, self.output_shapes[0], tuple(element))
        stages = self._stages(picked)
        named = [(f"input {k}", v, "input value") for k, v in enumerate(picked) if v is not None]
        return _steps(named + stages)


def binary_prepare(ctx: OpContext) -> tuple[TensorInfo, TensorInfo, TensorInfo, tuple[int, ...]]:
    """Prepare checks shared by binary elementwise ops: two inputs and one output, equal input types.

    Returns ``(input 0, input 1, output, broadcast output shape)``; the shape follows NumPy broadcasting
    up to :data:`MAX_BROADCAST_RANK` dimensions (LiteRT aborts above). Raises ``UnsupportedOpError``
    for differing input types.
    """
    ctx.check_counts(2, 1)
    a, b, o = ctx.input(0), ctx.input(1), ctx.output(0)
    if a.dtype != b.dtype:
        raise ctx.error(
            f"input types differ ({a.dtype} and {b.dtype}); LiteRT requires equal types", cls=UnsupportedOpError
        )
    if a.shape == b.shape:
        shape = a.shape
    else:
        shape = broadcast_shape(ctx, a.shape, b.shape, max_rank=MAX_BROADCAST_RANK)
    return a, b, o, shape


def same_output_dtype(ctx: OpContext, a: TensorInfo, o: TensorInfo) -> None:
    """Raise ``UnsupportedOpError`` unless output ``o`` has input ``a``'s type (LiteRT sets it so)."""
    if o.dtype != a.dtype:
        raise ctx.error(
            f"output type {o.dtype} differs from the input type {a.dtype} (LiteRT sets the output type "
            "to the input type)",
            o,
            UnsupportedOpError,
        )
