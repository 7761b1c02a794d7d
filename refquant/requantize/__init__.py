"""Every integer rescaling ("requantization") variant of LiteRT, each defined once.

A requantization maps an integer ``x`` standing for ``x * s_in`` to the integer nearest ``x * real``
for a real multiplier ``real``, as one specific C++ routine rounds it. LiteRT uses several such routines;
they differ in rounding (which ties go where, how many times it rounds) and in their int32 wrap corners,
so which one an operator calls is part of its bit-exact contract. This module holds each of them once,
named for what it reproduces; kernels and per-element traces both call these, so a variant is chosen in
one place (the next step adds per-op arithmetic profiles that pick among them).

=================================================  ===================================================
Variant                                            Reproduces
=================================================  ===================================================
:func:`multiply_by_quantized_multiplier`           ``MultiplyByQuantizedMultiplier(int32, int32, int)``
                                                   of the build selected by ``rounding`` (dispatch)
:func:`mbqm_double_rounding`                       its default (double rounding) build, vectorized
:func:`mbqm_double_rounding_reference`             the same, literally (SRDHM then RDBPOT)
:func:`mbqm_single_rounding`                       its ``TFLITE_SINGLE_ROUNDING=1`` build
:func:`mbqm_single_rounding_any_shift`             the single-rounding formula past its shift range
                                                   (DIV's intermediate shifts)
:func:`multiply_by_quantized_multiplier_smaller_than_one_exp`  ``MultiplyByQuantizedMultiplierSmallerThanOneExp``
:func:`multiply_by_quantized_multiplier_greater_than_one`      ``MultiplyByQuantizedMultiplierGreaterThanOne``
:func:`multiply_by_quantized_multiplier_int64`     ``MultiplyByQuantizedMultiplier(int64, int32, int)``
                                                   ("MBQM64", int64 accumulators)
:func:`requantize_float64`                         FULLY_CONNECTED's ``int32(round(double(acc) * scale))``
:func:`requantize_concatenation_uint8`             CONCATENATION's float32 rescale of uint8 inputs
:func:`mbqm_per_tensor_inplace`                    MBQM for one (M, shift <= 0), in place on int64
:func:`prepare_folded_requant` / :func:`requant_tail`  the conv family's per-channel MBQM folded into an
                                                   exact float64 accumulation; :func:`requant_block` /
                                                   :func:`requant_sums` run it on a block (with the
                                                   checked mode's bound test and literal fallback)
:func:`resize_bilinear_rounding_shift`             RESIZE_BILINEAR's integer rounding (both builds)
:func:`mbqm_steps` / :func:`mbqm64_steps`          step-by-step Python-int versions for traces
:func:`xnn_float_reduce`                           XNNPACK's float32 MEAN/SUM rescale (litert-xnnpack)
:func:`float_round_away_sum`                       LiteRT's optimized SUM, float32 ties away (litert-optimized)
:func:`legacy_mean_params`                         LiteRT's optimized 4-D MEAN over {1, 2}: float32
                                                   multiplier and bias (then :func:`neon_mbqm`)
:func:`xnn_q11_round`                              XNNPACK's bilinear resize rounding (litert-xnnpack)


:func:`neon_mbqm` / :func:`neon_mbqm_steps`        LiteRT's NEON MBQM (``vqrdmulh`` + ``vrshl``, ties up
                                                   twice): the optimized kernels' SIMD requantization
:func:`fp32_rne_requant` / :func:`fp32_rne_steps`  XNNPACK's fp32 GEMM/conv requantization (ties to
                                                   even), with :func:`xnnpack_requant_scale` and
                                                   :func:`xnnpack_output_bound`
=================================================  ===================================================

The elementwise variants of the non-reference runtimes (XNNPACK's ADD/SUB, MUL, LEAKY_RELU and QUANTIZE,
LiteRT's optimized ADD, MUL, QUANTIZE and DEQUANTIZE blocks) are in :mod:`refquant.requantize.elementwise`.

The rounding option (``"double"``, LiteRT's default build, or ``"single"``, a ``TFLITE_SINGLE_ROUNDING``
build) is validated by :func:`check_rounding` against :data:`ROUNDINGS`, the one list of valid values.

Conventions as in :mod:`refquant.fixedpoint`: inputs are Python ints or integer arrays in the documented
range (``ValueError`` outside it), outputs NumPy arrays of the documented dtype, int64 arithmetic whose
bounds are stated in comments, C integer semantics (``>>`` floors; a "wrap" is x86's two's-complement
wrap). The ``*_steps`` functions work on Python ints and return ``(result, steps)`` with each step a
``(name, value, explanation)`` tuple; tests check that they agree with the vectorized versions.
"""

from __future__ import annotations

from . import elementwise, profiles, reference
from .elementwise import *  # noqa: F403
from .profiles import *  # noqa: F403
from .reference import *  # noqa: F403

__all__ = [*reference.__all__, *profiles.__all__, *elementwise.__all__]
