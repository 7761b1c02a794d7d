"""Plumbing shared by the data-movement operators (shape, slice, pad, resize, select, quantize ops).

* :class:`MovementData`, the base of ops that only copy values, whose ``trace`` names the input element an
  output element was copied from (by running the op's own ``eval`` on element codes, :data:`CODE_SHIFT`);
* the prepare checks these kernels share: :func:`legacy_params` (LiteRT's per-tensor ``params``),
  :func:`require_same_params`, :func:`require_zero_zp`, :func:`require_output_dtype`, :func:`int_vector`;
* :func:`contiguous` and the dtype lists :data:`COPY_TYPES` and :data:`INDEX_TYPES`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .base import OpContext, OpData, Step, TensorInfo

__all__ = [
    "CODE_SHIFT",
    "COPY_TYPES",
    "INDEX_TYPES",
    "MovementData",
    "contiguous",
    "int_vector",
    "legacy_params",
    "require_output_dtype",
    "require_same_params",
    "require_zero_zp",
]

#: Types the raw-copy kernels (TRANSPOSE, TILE, BROADCAST_TO, FILL, slicing, ...) accept.
COPY_TYPES = ("int8", "uint8", "int16", "int32", "int64", "float32", "bool", "float16", "uint32", "uint16")
#: Types of index / shape / axis inputs.
INDEX_TYPES = ("int32", "int64")
#: Bit position of the input number in the element codes :class:`MovementData` traces with
#: (``(k + 1) << CODE_SHIFT | flat index`` for input ``k``).
CODE_SHIFT = 40


def legacy_params(t: TensorInfo) -> tuple[float, int]:
    """``TfLiteTensor.params`` of ``t``: ``(scale[0], zero_point[0])``, or ``(0.0, 0)`` when unquantized.

    LiteRT's shape kernels compare these with ``==`` (the scale as the stored float32 value).
    """
    q = t.quant
    if q is None or q.scale.size == 0:
        return 0.0, 0
    return float(q.scale[0]), int(q.zero_point[0]) if q.zero_point.size else 0


def contiguous(a: np.ndarray) -> np.ndarray:
    """``a`` as a C-contiguous array of the same shape (0-d arrays stay 0-d, unlike np.ascontiguousarray)."""
    a = np.asarray(a)
    return a if a.flags.c_contiguous else np.array(a, order="C")


def require_same_params(ctx: OpContext, t: TensorInfo, ref: TensorInfo, what: str) -> None:
    """Raise QuantParamError unless ``t`` and ``ref`` have equal legacy (scale, zero point)."""
    a, b = legacy_params(t), legacy_params(ref)
    if a != b:
        raise ctx.fail_quant(
            f"{what}: (scale, zero_point) {a} differs from {ref.describe()}'s {b}; LiteRT requires them equal "
            "(this kernel copies raw values and cannot rescale)",
            t,
        )


def require_zero_zp(ctx: OpContext, *ts: TensorInfo) -> None:
    """int16 tensors: the legacy zero point must be 0 (LiteRT's symmetric int16 rule)."""
    for t in ts:
        zp = legacy_params(t)[1]
        if zp != 0:
            raise ctx.fail_quant(f"int16 zero point {zp}; LiteRT requires 0 for int16 tensors of this op", t)


def require_output_dtype(ctx: OpContext, out: TensorInfo, dtype: str) -> None:
    """The output tensor's type must be ``dtype`` (LiteRT assigns or checks it)."""
    if out.dtype != dtype:
        raise ctx.unsupported(f"output type {out.dtype} (the kernel produces {dtype}); {out.describe()}")


def int_vector(ctx: OpContext, i: int, role: str, dtypes: Sequence[str] = INDEX_TYPES) -> list[int]:
    """Values of integer input ``i`` as Python ints (raises DeferredPrepare when known only at run time)."""
    t = ctx.input(i)
    ctx.check_dtype(t, dtypes, role)
    return [int(v) for v in np.asarray(ctx.input_value(i)).reshape(-1)]


class MovementData(OpData):
    """Base of ops that only copy values: :meth:`trace` names the input element an output element copies.

    It runs the op's own ``eval`` on arrays of element codes (``(k + 1) << 40 | flat index`` for input
    ``k``) instead of the data, so the answer comes from the same code path as the values. An output
    that decodes to no input element was written by the op itself (a pad value).
    """

    def moved_inputs(self, inputs: list[np.ndarray | None]) -> tuple[int, ...]:
        """Indices of the inputs whose values the op moves (default: input 0)."""
        return (0,)

    def source(
        self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]
    ) -> tuple[int, tuple[int, ...]] | None:
        """``(input index, element index)`` the output element was copied from, or None (a constant)."""
        probe: list[np.ndarray | None] = list(inputs)
        for k in self.moved_inputs(inputs):
            a = np.asarray(inputs[k])
            probe[k] = (np.arange(a.size, dtype=np.int64) + ((k + 1) << CODE_SHIFT)).reshape(a.shape)
        code = int(np.asarray(self.eval(probe)[output])[tuple(element)])
        k = (code >> CODE_SHIFT) - 1
        if k not in self.moved_inputs(inputs):
            return None
        shape = np.shape(inputs[k])
        flat = code & ((1 << CODE_SHIFT) - 1)
        return k, tuple(int(i) for i in np.unravel_index(flat, shape)) if shape else ()

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """Where the output element comes from and its (unchanged) value."""
        out = np.asarray(self.eval(list(inputs))[output])[tuple(element)]
        src = self.source(inputs, output, element)
        if src is None:
            return [Step("output", out.item(), "a value the operator writes itself (padding)")]
        k, idx = src
        return [
            Step("source", (k, idx), f"input {k} element {list(idx)}"),
            Step("output", out.item(), "the raw value, copied unchanged (quantization passes through)"),
        ]
