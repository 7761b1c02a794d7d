"""The op registry: one line per supported operator.

Adding an op touches its module, one line here, its tests and a golden case
(``tests/ops/test_registry.py`` checks every registered op has tests).
"""

from __future__ import annotations

from collections.abc import Callable

from .base import OpContext, OpData, OpDef

__all__ = ["REGISTRY", "register", "supported_ops"]

REGISTRY: dict[str, OpDef] = {}

#: dtype columns of the README's support table.
Q8 = ("int8", "uint8", "int16", "float32")


def register(
    opcode: str,
    prepare: Callable[[OpContext], OpData],
    dtypes: tuple[str, ...] = Q8,
    *,
    foldable: bool = False,
    note: str = "",
) -> None:
    """Register ``prepare`` as the implementation of ``opcode``."""
    if opcode in REGISTRY:
        raise ValueError(f"{opcode} registered twice")
    REGISTRY[opcode] = OpDef(opcode, prepare, dtypes, foldable, note)


def supported_ops() -> list[str]:
    """Sorted names of every supported operator."""
    return sorted(REGISTRY)


# ---- registrations: one line per op, grouped by family (each family's module owns its section) ----
# Form of a section:  from . import conv  # noqa: E402
#                     register("CONV_2D", conv.prepare_conv2d, ("int8", "uint8", "int16", "float32"))
# isort: off
# [conv]
# [fully_connected]
from . import fully_connected  # noqa: E402

register("FULLY_CONNECTED", fully_connected.prepare_fully_connected, ("int8", "uint8", "int16", "float32"))
# [batch_matmul]
# [elementwise]
# [activations]
# [pooling_reduce]
# [softmax]
# [shape_ops]
# [quantize]
# [control_flow]
# [internal]
from . import identity  # noqa: E402

register("REFQUANT_IDENTITY", identity.prepare_identity, ("float32",))
