"""The per-op registry of :func:`op_models`: one builder per (op, dtypes), registered by the op family modules.

Each family module (``conv``, ``elementwise``, ``shape_ops``, ...) decorates its builders with
:func:`register`; :func:`op_models` validates its arguments against the registered :class:`OpSpec` and
draws from the builder. :func:`supported_op_dtypes` lists what is registered for refquant's ops.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from hypothesis import strategies as st

from ..testing.harness import Case
from .base import ACTIVATIONS, check_choice, check_int, check_opt_bool, invalid
from .builder import OpConfig

#: A builder: ``build(draw, opcode, dtype, config)`` returns one drawn :class:`~refquant.testing.Case`.
Builder = Callable[[st.DrawFn, str, str, OpConfig], Case]


@dataclass(frozen=True)
class OpSpec:
    """A registered builder: the dtypes it draws, the constraints it accepts, its minimum rank, its output dtypes."""

    build: Builder
    dtypes: tuple[str, ...]
    constraints: frozenset[str]
    min_rank: int
    output_dtypes: dict[str, tuple[str, ...]]


#: Every registered builder, by opcode (filled when the op family modules are imported).
OPS: dict[str, OpSpec] = {}


_COMMON = frozenset({"max_side", "max_rank", "max_batch"})


def register(
    *opcodes: str,
    dtypes: tuple[str, ...],
    constraints: tuple[str, ...] = (),
    min_rank: int = 0,
    output_dtypes: dict[str, tuple[str, ...]] | None = None,
) -> Callable[[Builder], Builder]:
    """Decorator: register the builder for each of ``opcodes`` with ``dtypes``, extra ``constraints``, ``min_rank``
    and, per input dtype, the ``output_dtypes`` its ``output_dtype`` constraint allows."""

    def deco(fn: Builder) -> Builder:
        for opcode in opcodes:
            OPS[opcode] = OpSpec(fn, dtypes, _COMMON | frozenset(constraints), min_rank, output_dtypes or {})
        return fn

    return deco


def supported_op_dtypes() -> dict[str, tuple[str, ...]]:
    """``{opcode: dtypes}``: every (op, dtype) :func:`op_models` can draw, for refquant's registered ops.

    refquant's internal ``REFQUANT_IDENTITY`` (float shadow graphs only; not a TFLite builtin) is
    left out.
    """
    from ..ops import REGISTRY

    return {op: spec.dtypes for op, spec in sorted(OPS.items()) if op in REGISTRY}


def op_models(opcode: str, dtype: str = "int8", **constraints: Any) -> st.SearchStrategy[Case]:
    """One-operator models of ``opcode`` with ``dtype`` activations, as :class:`refquant.testing.Case` objects.

    ``dtype``: ``"int8"``, ``"uint8"``, ``"int16"`` (int16 activations; int8 weights where the op has
    weights), ``"float32"``, and for ops that have them ``"int32"``, ``"int64"``, ``"bool"``;
    :func:`supported_op_dtypes` lists the pairs. The dtype is the type of the op's main input (for
    QUANTIZE from float32 it is ``"float32"``; for CAST, ARG_MAX, ARG_MIN, SHAPE and the comparisons the
    input's type; for BATCH_MATMUL ``"int32"`` is int8 x int8 -> int32; for DEQUANTIZE ``"float32"`` is
    float16 -> float32; for IF and WHILE the type of the data their subgraphs carry).

    Constraints (keyword arguments; each is checked against the op):

    * ``max_side`` (int, default 4): the largest size of any activation dimension (spatial sizes of
      conv and pool inputs, dims of elementwise operands).
    * ``max_rank`` (int, default 4): the largest rank of ops whose inputs have a free rank; must be at
      least the op's minimum rank (4 for NHWC ops).
    * ``max_batch`` (int, default 2): the largest batch of NHWC ops.
    * ``per_channel`` (bool or None; CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV, FULLY_CONNECTED with
      int8 or int16): per-channel weight scales (True), one scale (False), or either (None, default).
    * ``activation`` (``"NONE"``, ``"RELU"``, ``"RELU6"``, ``"RELU_N1_TO_1"`` or None; ops with a fused
      activation): the fused activation; None draws one.
    * ``output_dtype`` (QUANTIZE, CAST, ARG_MAX, ARG_MIN, SHAPE, SOFTMAX): the output type; None draws one.

    Every model is one LiteRT's reference kernels accept and run (parameter ranges per op follow
    docs/litert_semantics.md and the op tests), and one refquant runs. Raises :class:`InvalidArgument` at the call
    for an unknown op, an unsupported dtype, or a constraint that is unknown, inapplicable or out of range.
    """
    if not isinstance(opcode, str):
        raise invalid(f"opcode must be a string such as 'CONV_2D', got {opcode!r}")
    supported = supported_op_dtypes()
    if opcode not in supported:
        from ..ops import REGISTRY

        why = (
            " (refquant's internal shadow-graph operator, not a TFLite builtin)"
            if opcode in REGISTRY
            else "; refquant does not support it"
        )
        close = [o for o in supported if opcode.upper() in o or o in opcode.upper()][:5]
        hint = f"; did you mean {close}?" if close else ""
        raise invalid(f"op_models has no models of {opcode!r}{why}{hint}")
    spec = OPS[opcode]
    if not isinstance(dtype, str) or dtype not in spec.dtypes:
        raise invalid(f"{opcode} models exist for dtype {list(spec.dtypes)}; got {dtype!r}")
    cfg = _make_cfg(opcode, dtype, spec, constraints)
    build = spec.build

    @st.composite
    def draw_case(draw: st.DrawFn) -> Case:
        return build(draw, opcode, dtype, cfg)

    return draw_case()


def _make_cfg(opcode: str, dtype: str, spec: OpSpec, constraints: dict[str, Any]) -> OpConfig:
    unknown = set(constraints) - {"max_side", "max_rank", "max_batch", "per_channel", "activation", "output_dtype"}
    if unknown:
        raise invalid(
            f"unknown constraint(s) {sorted(unknown)}; op_models accepts max_side, max_rank, max_batch, "
            "per_channel, activation, output_dtype"
        )
    inapplicable = set(constraints) - spec.constraints
    if inapplicable:
        raise invalid(
            f"constraint(s) {sorted(inapplicable)} do not apply to {opcode}; it accepts {sorted(spec.constraints)}"
        )
    cfg = OpConfig()
    if "max_side" in constraints:
        cfg = replace(cfg, max_side=check_int("max_side", constraints["max_side"], 1, 64))
    if "max_rank" in constraints:
        r = check_int("max_rank", constraints["max_rank"], 0, 6)
        if r < spec.min_rank:
            raise invalid(f"max_rank {r} is below the rank {opcode} needs ({spec.min_rank})")
        cfg = replace(cfg, max_rank=r)
    else:
        cfg = replace(cfg, max_rank=max(cfg.max_rank, spec.min_rank))
    if "max_batch" in constraints:
        cfg = replace(cfg, max_batch=check_int("max_batch", constraints["max_batch"], 1, 16))
    if "per_channel" in constraints:
        pc = check_opt_bool("per_channel", constraints["per_channel"])
        if pc and dtype in ("uint8", "float32"):
            raise invalid(f"per_channel=True needs int8 or int16 weights; {opcode} {dtype} has per-tensor weights only")
        cfg = replace(cfg, per_channel=pc)
    if "activation" in constraints:
        act = constraints["activation"]
        if act is not None:
            check_choice("activation", act, ACTIVATIONS)
        cfg = replace(cfg, activation=act)
    if "output_dtype" in constraints:
        od = constraints["output_dtype"]
        if od is not None:
            allowed = spec.output_dtypes.get(dtype, ())
            if od not in allowed:
                raise invalid(
                    f"output_dtype for {opcode} with {dtype} input must be one of {list(allowed)}; got {od!r}"
                )
        cfg = replace(cfg, output_dtype=od)
    return cfg
