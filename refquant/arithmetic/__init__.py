"""Arithmetic profiles: which runtime's integer arithmetic refquant reproduces, operator by operator.

A profile names a runtime people ship (LiteRT's reference kernels, its default XNNPACK interpreter, its
optimized kernels, tflite-micro) and decides, per operator at prepare time, what that runtime runs:
who runs it (the XNNPACK delegate or a builtin kernel), the accumulator, and the rescaling variant
(every variant exists once, in :mod:`refquant.requantize`). Kernels read the decision from
``ctx.arithmetic`` (an :class:`OpArithmetic`) and apply the named variant; they never test a profile
name themselves, so adding a profile means writing its table here.

The decisions and the formulas were measured against each runtime on this project's reference machine;
docs/runtime_arithmetic.md has the evidence and docs/arithmetic_profiles.md the table per op.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError

__all__ = ["Profile", "PROFILES", "DEFAULT_PROFILE", "OpArithmetic", "get_profile", "profile_names"]


@dataclass(frozen=True)
class Profile:
    """A runtime whose arithmetic refquant reproduces."""

    #: The name used by ``arithmetic=`` and ``--arithmetic``.
    name: str
    #: The runtime and version reproduced, as precisely as it is known.
    runtime: str
    #: How the tests run that runtime from Python (the oracle).
    oracle: str
    #: One paragraph: what differs from the reference kernels, in short.
    summary: str


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "litert-ref",
            "ai-edge-litert 2.3.0, OpResolverType.BUILTIN_REF (x86-64)",
            "Interpreter(..., experimental_op_resolver_type=OpResolverType.BUILTIN_REF, "
            "experimental_preserve_all_tensors=True)",
            "LiteRT's reference kernels: MultiplyByQuantizedMultiplier with double rounding, FULLY_CONNECTED "
            "rounded once in float64, tables built in float32 with the C library's functions.",
        ),
        Profile(
            "litert-xnnpack",
            "ai-edge-litert 2.3.0, default Interpreter(num_threads=1) with its default XNNPACK delegate (x86-64)",
            "Interpreter(model, num_threads=1) (no experimental_preserve_all_tensors: it disables the delegate)",
            "The XNNPACK delegate for the int8/uint8 nodes it takes (float32 requantization with round-half-to-even "
            "for CONV/DEPTHWISE/FULLY_CONNECTED/TRANSPOSE_CONV/MUL, 20-bit multipliers for ADD/SUB, 8-bit "
            "multipliers for LEAKY_RELU and requantizing QUANTIZE, float MEAN/SUM, Q11 bilinear resize), LiteRT's "
            "optimized kernels (litert-optimized) for every other node.",
        ),
        Profile(
            "litert-optimized",
            "ai-edge-litert 2.3.0, OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES, num_threads=1 (x86-64: the "
            "NEON code paths compiled through NEON_2_SSE)",
            "Interpreter(..., experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES, "
            "num_threads=1)",
            "LiteRT's optimized kernels: SIMD blocks requantize with NEON semantics (ties up at both stages), scalar "
            "tails as the reference kernels, so some results depend on the channel or element index.",
        ),
        Profile(
            "tflm",
            "tflite-micro reference kernels (the tflite-micro Python wheel, 0.dev20261023182759)",
            "tflite_micro.runtime.Interpreter.from_bytes(model)",
            "tflite-micro's reference kernels: as LiteRT's reference kernels except FULLY_CONNECTED (double-rounding "
            "MultiplyByQuantizedMultiplier), SUM int8 (the correct sum), RELU6 (a raw clamp in the input's "
            "quantization) and per-channel DEQUANTIZE (first scale only).",
        ),
    )
}
DEFAULT_PROFILE = "litert-ref"


def profile_names() -> tuple[str, ...]:
    """The names of the built-in profiles, the default first."""
    return tuple(PROFILES)


def get_profile(name: str) -> Profile:
    """The profile called ``name`` (:class:`InputError` naming the known ones otherwise)."""
    if not isinstance(name, str) or name not in PROFILES:
        raise InputError(f"arithmetic must be one of {list(PROFILES)}, got {name!r}")
    return PROFILES[name]


@dataclass(frozen=True)
class OpArithmetic:
    """What one operator computes under a profile: the decision a kernel's prepare reads.

    ``rescale`` names the rescaling variant (a function of :mod:`refquant.requantize`, or a formula named
    in the table for ops that rescale another way); ``blocks`` is the SIMD block (output channels or flat
    elements) for kernels whose blocks and scalar tail round differently (0: no split).
    """

    #: The profile that made the decision.
    profile: str
    #: Who runs the operator: "builtin reference kernel", "builtin optimized kernel", "XNNPACK delegate",
    #: "tflite-micro reference kernel".
    executor: str
    #: The rescaling variant (see the per-op table), "" where the op does not rescale.
    rescale: str = ""
    #: SIMD block size of a block/tail split (0: none).
    blocks: int = 0
    #: The accumulator: "int32", "int64", "float32", "" where there is none.
    accumulator: str = ""
    #: Why this decision (the partitioning rule that applied, a measured detail).
    note: str = ""
