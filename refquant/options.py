"""The engine options every command shares: which arithmetic runs, and the resource bound.

One frozen :class:`EngineOptions` travels from the API or the command line through the engine
(:mod:`refquant.engine`) into every operator's prepare context, so that a choice made once (the
arithmetic profile, the rounding of requantization, how float sums accumulate, the memory and work bounds) holds for every operator of
every subgraph, IF/WHILE bodies included. The values are checked here, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .arithmetic import DEFAULT_PROFILE, get_profile
from .errors import InputError
from .limits import DEFAULT_MAX_STEPS

__all__ = [
    "EngineOptions",
    "ROUNDINGS",
    "FLOAT_ACCUMULATIONS",
    "DEFAULT_MEMORY_LIMIT",
    "DEFAULT_MAX_STEPS",
    "engine_options",
]

#: Rounding variants of MultiplyByQuantizedMultiplier: ``"double"`` (LiteRT's default build) or
#: ``"single"`` (a ``TFLITE_SINGLE_ROUNDING`` build). See README "Rounding".
ROUNDINGS = ("double", "single")
#: How float32 CONV_2D / TRANSPOSE_CONV / FULLY_CONNECTED / BATCH_MATMUL sum their products (README
#: "Float graphs"): ``"float64"`` (BLAS in float64, one rounding to float32 per sum; the default) or
#: ``"sequential"`` (LiteRT BUILTIN_REF's float32 loop, bit-exact with it).
FLOAT_ACCUMULATIONS = ("float64", "sequential")
#: Default bound on the bytes of all tensors of one run (checked from shapes before allocating).
DEFAULT_MEMORY_LIMIT = 2 << 30


@dataclass(frozen=True)
class EngineOptions:
    """The arithmetic variants and limits of one engine; checked on construction (:class:`InputError`)."""

    #: Requantization rounding, one of :data:`ROUNDINGS`.
    rounding: str = "double"
    #: Float32 matrix-product summation, one of :data:`FLOAT_ACCUMULATIONS`.
    float_accumulation: str = "float64"
    #: Bound on the bytes of tensors (and declared kernel scratch) one run may hold.
    memory_limit: int = DEFAULT_MEMORY_LIMIT
    #: The arithmetic profile: which runtime's integer arithmetic to reproduce (:mod:`refquant.arithmetic`).
    arithmetic: str = DEFAULT_PROFILE
    #: Bound on operator evaluations plus WHILE iterations in one run, nested subgraphs included.
    max_steps: int = DEFAULT_MAX_STEPS

    def __post_init__(self) -> None:
        get_profile(self.arithmetic)
        if self.rounding not in ROUNDINGS:
            raise InputError(f"rounding must be one of {list(ROUNDINGS)}, got {self.rounding!r}")
        if self.float_accumulation not in FLOAT_ACCUMULATIONS:
            raise InputError(
                f"float_accumulation must be one of {list(FLOAT_ACCUMULATIONS)}, got {self.float_accumulation!r}"
            )
        if isinstance(self.memory_limit, bool) or not isinstance(self.memory_limit, int) or self.memory_limit < 1:
            raise InputError(f"memory_limit must be a positive number of bytes, got {self.memory_limit!r}")
        if isinstance(self.max_steps, bool) or not isinstance(self.max_steps, int) or self.max_steps < 1:
            raise InputError(f"max_steps must be a positive number of steps, got {self.max_steps!r}")

    def describe(self) -> dict[str, Any]:
        """The arithmetic choices as recorded in manifests and reports (the memory bound is not arithmetic)."""
        return {
            "arithmetic": self.arithmetic,
            "runtime": get_profile(self.arithmetic).runtime,
            "rounding": self.rounding,
            "float_accumulation": self.float_accumulation,
        }


def engine_options(
    options: EngineOptions | None = None,
    *,
    rounding: str | None = None,
    float_accumulation: str | None = None,
    memory_limit: int | None = None,
    arithmetic: str | None = None,
    max_steps: int | None = None,
) -> EngineOptions:
    """``options`` with any of the given fields replaced (defaults when ``options`` is None), checked.

    The public functions take both an ``options`` object and the individual keywords; this merges
    them in one place.
    """
    base = options if options is not None else EngineOptions()
    if not isinstance(base, EngineOptions):
        raise InputError(f"options must be an EngineOptions, got {type(base).__name__}")
    return EngineOptions(
        rounding=base.rounding if rounding is None else rounding,
        float_accumulation=base.float_accumulation if float_accumulation is None else float_accumulation,
        memory_limit=base.memory_limit if memory_limit is None else memory_limit,
        arithmetic=base.arithmetic if arithmetic is None else arithmetic,
        max_steps=base.max_steps if max_steps is None else max_steps,
    )
