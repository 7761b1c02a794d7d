"""REFQUANT_IDENTITY: the internal identity operator of float shadow graphs (see refquant.shadow)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import OpContext, OpData


@dataclass(frozen=True)
class IdentityData(OpData):
    """Copies its input (cast to the output dtype, which is float32 in shadow graphs)."""

    dtype: str = "float32"

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """The input as the output dtype."""
        x = inputs[0]
        assert x is not None
        return [np.asarray(x, dtype=self.dtype).copy()]


def prepare_identity(ctx: OpContext) -> IdentityData:
    """Shadow-graph stand-in for QUANTIZE / DEQUANTIZE: output = input, shape unchanged."""
    ctx.check_counts(1, 1)
    x = ctx.input(0)
    out = ctx.output(0)
    if x.dtype not in ("float32", "float16") or out.dtype != "float32":
        raise ctx.unsupported(f"identity from {x.dtype} to {out.dtype} (only float shadow graphs use it)")
    return IdentityData((x.shape,), ("float32",), dtype="float32")
