"""MEAN, SUM, REDUCE_MAX, REDUCE_MIN, REDUCE_PROD, REDUCE_ANY, REDUCE_ALL (LiteRT ``reduce.cc``).

Matches ``Register_MEAN_REF``, ``Register_SUM_REF``, ``Register_REDUCE_{MAX,MIN,PROD}_REF`` (kernel
type ``kReference``: ``reference_ops::QuantizedMeanOrSum``, ``Mean``, ``ReduceGeneric``,
``QuantizedReduceProd``; docs/litert_semantics.md §3.10 and §3.11).

Axes (``ResolveAxis``): negative axes count from the end, duplicates are dropped, an axis outside
``[-rank, rank)`` fails, a rank-0 input reduces nothing. ``keep_dims`` keeps the reduced axes as 1.
For each output element the reduced values are visited in row-major order of the input (the order
that matters for the float sums and the quantized product chain).

Quantized MEAN (int8, uint8, int16; docs/litert_semantics.md §3.10, literally)::

    (M, sh) = QuantizeMultiplier(f64(s_in) / f64(s_out));  n = product of the reduced dims
    k = min(floor(log2 n), 32, 31 + sh);  M' = (int64(M) << k) / n  (truncating);  sh' = sh - k
    out = clamp(MBQM(int32(S - zp_in * n), M', sh') + zp_out, type range)      S = int32 sum of raw q

Because ``M'`` is truncated this is not exactly ``round(mean)``. There is no fused activation. An
empty input gives zeros (LiteRT fills integer outputs with ``quiet_NaN<T>() == 0``, float with NaN).
The optimized kernel's special 4-D axes {1, 2} path is not part of the reference kernel.

Quantized SUM -- LiteRT ``BUILTIN_REF``'s int8 bug reproduced, int16 computed correctly
-------------------------------------------------------------------------------------------
The quantized sum is::

    (M, sh) = QuantizeMultiplier(f64(s_in) / f64(s_out))
    out = clamp(MBQM(int32(S - zp_in * n), M, sh) + zp_out, type range)

which is exactly what LiteRT's reference kernel computes for **uint8**.
For **int8 and int16**, LiteRT 2.3.0's ``reduce.cc`` ``QuantizedMeanOrSum<T, kReference>`` passes
``GetTensorData<uint8_t>`` for the input and the output regardless of ``T``. So LiteRT:

* int8: reads every input value as its low byte ``q & 0xFF`` (0..255), applies the formula above
  with the int8 zero points, clamps to **[0, 255]** and stores that byte, so results 128..255 read
  back as negative int8 values. Example: ``[[-1,-2,3,4],[5,-6,7,-8]]``, axis 1, unit scales, zero
  points 0: LiteRT gives ``[-1, -1]`` (= bytes 255, 255), the true sums are ``[4, -2]``.
* int16: sums the first ``N`` *bytes* of the input buffer as uint8 values (N = element count) and
  writes one byte per output element into the first bytes of the int16 output buffer; the rest of
  the output buffer is left uninitialized (differs from run to run).

The int8 result is wrong but deterministic, and converters emit int8 SUM (``tf.reduce_sum``, and
``tf.nn.l2_normalize`` over a non-last axis lowers to SUM): refquant reproduces it bit for bit, as the
oracle defines, and its ``trace`` shows the bytes LiteRT reads and the correct sum next to LiteRT's
value. The int16 output is undefined (uninitialized memory), so there refquant computes the correct sum
(within 1 of LiteRT's optimized int16 SUM, a test). ``tests/ops/test_reduce.py`` checks int8 SUM
against LiteRT, int16 SUM against an independent Python-integer computation, and that LiteRT's
int8/int16 output follows exactly the byte-reinterpretation pattern described here.

REDUCE_MAX / REDUCE_MIN on quantized types return the raw max/min (no requantization); LiteRT
requires the input and output scale and zero point to be equal (else ``invoke`` fails; refquant
raises QuantParamError). Float max/min follow ``(in > cur) ? in : cur`` from ``-FLT_MAX`` /
``FLT_MAX`` (NaN ignored, -inf never beats -FLT_MAX), except that when all axes are reduced LiteRT's
``ReduceAllDims`` starts from the first element (which may be NaN or -inf).

REDUCE_PROD quantized (int8, int16; ``QuantizedReduceProd``)::

    scaling = f64(s_in) / pow(f64(s_out), 1 / n);  (M, sh) = QuantizeMultiplier(scaling)
    p = q_0 - zp_in;  p = MBQM64(int64(p) * (q_i - zp_in), M, sh) for i = 1..n-1
    out = clamp(MBQM64(p, M, sh) + zp_out, type range)

Other runtimes (arithmetic profiles, :mod:`refquant.arithmetic`)
---------------------------------------------------------------
Quantized MEAN / SUM under the other profiles start from ``S``, the int32 sum of the raw q values,
and rescale it with one of the variants of :mod:`refquant.requantize` (``QuantizedMeanSumData.variant``):

* ``xnn_float_reduce`` (litert-xnnpack, int8/uint8 nodes the XNNPACK delegate takes: see
  :mod:`refquant.arithmetic.xnnpack`): ``sat(nearbyint(f32(f32(S) * sc) + zp'))`` with
  ``sc = f32(s_in / s_out) [* f32(1 / n)]`` and ``zp' = f32(zp_out) - f32(f32(n * zp_in) * sc)``. An empty
  MEAN gives 0, an empty SUM the output zero point.
* ``float_round_away`` (litert-optimized SUM int8/uint8/int16, and litert-xnnpack where the delegate does not
  take the node): ``sat(roundf(f32(f32(S) * sc) + f32(f32(-zp_in * sc) * n)) + zp_out)``; refused for an empty
  input (the kernel leaves the output uninitialized).
* ``legacy_mean`` (litert-optimized MEAN int8/uint8 of a 4-D input over axes {1, 2} with keep_dims):
  ``sat(R(S, M, shift) + bias)`` with the float32 multiplier ``QuantizeMultiplier(f32(s_in / f32(n * s_out)))``
  and ``bias = zp_out - trunc(f32(zp_in * s_in / s_out) +- 0.5)``; ``R`` is NEON's MBQM (ties up twice) for
  int8 channels in ``[0, 16 * floor(C / 16))`` and the reference MBQM for the rest. That split is the
  one of a single-threaded interpreter: with several threads LiteRT splits the channels between threads
  and each part has its own blocks and tail.
* ``correct_sum`` (tflm SUM int8/int16): the reference formula above on the true sum (no byte reading).

Every other MEAN under litert-optimized (and tflm's MEAN) is the reference kernel's.

ARG_MAX and ARG_MIN live in :mod:`refquant.ops.arg_min_max`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..errors import UnsupportedOpError
from ..fixedpoint import wrap_int, wrap_int32_i64
from ..quantization import dtype_range, quantize_multiplier
from ..requantize import (
    float_round_away_sum,
    legacy_mean_params,
    mbqm64_reduced_multiplier,
    mbqm64_steps,
    mbqm_double_rounding,
    mbqm_steps,
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_int64,
    neon_mbqm_mean,
    neon_mbqm_mean_steps,
    opt_sum_params,
    xnn_float_reduce,
    xnn_reduce_params,
)
from .base import OpContext, OpData, Step, TensorInfo

__all__ = [
    "prepare_mean",
    "prepare_sum",
    "prepare_reduce_max",
    "prepare_reduce_min",
    "prepare_reduce_prod",
    "prepare_reduce_any",
    "prepare_reduce_all",
    "BoolReduceData",
    "ReduceData",
    "QuantizedMeanSumData",
    "resolve_axes",
]

_QUANT = ("int8", "uint8", "int16")
_RAW_INT = ("int32", "int64")
_FLT_MAX = np.float32(np.finfo(np.float32).max)


def resolve_axes(rank: int, axis_values: np.ndarray) -> tuple[int, ...] | str:
    """LiteRT ``ResolveAxis``: normalized axes without duplicates (in first-seen order), or an error text."""
    if rank == 0:
        return ()
    out: list[int] = []
    for v in np.asarray(axis_values).reshape(-1).tolist():
        cur = int(v) + rank if int(v) < 0 else int(v)
        if not 0 <= cur < rank:
            return f"axis {int(v)} is out of range for an input of rank {rank} (valid: [{-rank}, {rank}))"
        if cur not in out:
            out.append(cur)
    return tuple(out)


def _reduced_shape(shape: tuple[int, ...], axes: tuple[int, ...], keep_dims: bool) -> tuple[int, ...]:
    if len(shape) == 0:
        return ()
    if keep_dims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


@dataclass(frozen=True)
class _AxesData(OpData):
    """Shared geometry of the reductions."""

    #: Reduced axes, ascending (iteration order of the reduced values is row-major in the input).
    axes: tuple[int, ...] = ()
    #: Number of reduced elements per output element (``num_elements_in_axis``).
    n: int = 1
    #: True when every input axis is reduced (LiteRT then uses ``ReduceAllDims`` for max/min/sum/prod).
    all_dims: bool = False

    def _rows(self, x: np.ndarray) -> np.ndarray:
        """(outputs, n) view/copy: kept axes first (row-major), the reduced axes last in input order."""
        keep = [i for i in range(x.ndim) if i not in self.axes]
        t = np.transpose(x, keep + list(self.axes))
        outs = 1
        for i in keep:
            outs *= x.shape[i]
        return t.reshape(outs, self.n)

    def _row_of(self, x: np.ndarray, element: tuple[int, ...]) -> np.ndarray:
        """The reduced values (in visiting order) that produce output ``element``."""
        out_shape = self.output_shapes[0]
        flat = int(np.ravel_multi_index(tuple(int(e) for e in element), out_shape)) if out_shape else 0
        return self._rows(x)[flat]


# ---------------------------------------------------------------------------------------------
# MEAN / SUM, quantized


@dataclass(frozen=True)
class QuantizedMeanSumData(_AxesData):
    """Quantized MEAN or SUM (``reference_ops::QuantizedMeanOrSum``; SUM int8/int16 see module docstring)."""

    #: "mean" or "sum".
    kind: str = "mean"
    #: Q0.31 output multiplier after folding 1/n in (MEAN: ``(M << k) / n``; SUM: ``M``).
    output_multiplier: int = 0
    #: Its power-of-two exponent (MEAN: ``sh - k``).
    output_shift: int = 0
    #: QuantizeMultiplier(s_in / s_out) before the 1/n folding, and the fold exponent k (MEAN only).
    base_multiplier: int = 0
    base_shift: int = 0
    fold_shift: int = 0
    #: Input and output zero points.
    input_zero_point: int = 0
    output_zero_point: int = 0
    #: Output type range (the only clamp; there is no fused activation).
    qmin: int = 0
    qmax: int = 0
    #: "double" or "single" MultiplyByQuantizedMultiplier rounding.
    rounding: str = "double"
    #: True when the input has no elements (the output is all zeros).
    empty_input: bool = False
    #: int8 SUM: LiteRT reads the input as uint8 bytes and clamps to [0, 255] bytes (module docstring).
    litert_bytes: bool = False
    #: The rescaling of the arithmetic profile (module docstring, "Other runtimes"): "reference",
    #: "xnn_float_reduce", "float_round_away" or "legacy_mean" ("correct_sum" is "reference" without
    #: the byte reading).
    variant: str = "reference"
    #: float32 scale and offset of the float variants (xnn: scale and zero point'; float_round_away:
    #: scale and bias).
    float_scale: float = 0.0
    float_offset: float = 0.0
    #: legacy_mean: the integer bias ``zp_out - trunc(f32(zp_in * s_in / s_out) +- 0.5)``, the SIMD
    #: block of channels that use NEON's MBQM (0: none) and the channel count (the last input axis).
    legacy_bias: int = 0
    blocks: int = 0
    channels: int = 1

    def _raw_sums(self, x: np.ndarray) -> np.ndarray:
        """int32 sums of the raw q values (the accumulators of every non-reference variant)."""
        return wrap_int32_i64(self._rows(x).astype(np.int64).sum(axis=1))

    def _neon_channels(self, flat: np.ndarray) -> np.ndarray:
        """legacy_mean: which output elements (flat indices) fall in a NEON block of channels."""
        if self.blocks <= 0:
            return np.zeros(flat.shape, bool)
        return (flat % self.channels) < self.blocks * (self.channels // self.blocks)

    def _variant_eval(self, x: np.ndarray) -> np.ndarray:
        """The output of a non-reference variant, flat (one value per output element)."""
        s = self._raw_sums(x)
        f = np.float32
        if self.variant == "xnn_float_reduce":
            return xnn_float_reduce(s, f(self.float_scale), f(self.float_offset), self.qmin, self.qmax)
        if self.variant == "float_round_away":
            return float_round_away_sum(
                s, f(self.float_scale), f(self.float_offset), self.output_zero_point, self.qmin, self.qmax
            )
        assert self.variant == "legacy_mean", self.variant
        neon = self._neon_channels(np.arange(s.size))
        r = mbqm_double_rounding(s, self.output_multiplier, self.output_shift).astype(np.int64)
        if neon.any():
            r = np.where(neon, neon_mbqm_mean(s, self.output_multiplier, self.output_shift), r)
        return np.clip(wrap_int32_i64(r + self.legacy_bias), self.qmin, self.qmax)

    def _sums(self, x: np.ndarray) -> np.ndarray:
        # int32 accumulator of raw q values: summed exactly in int64, then wrapped like C int32.
        s = wrap_int32_i64(self._rows(x).astype(np.int64).sum(axis=1))
        # static_cast<int32_t>(temp_sum - input_zero_point * num_elements_in_axis) (int64 product).
        return wrap_int32_i64(s - self.input_zero_point * self.n)

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """Integer-only mean/sum: int32 sum, one MultiplyByQuantizedMultiplier, + zero point, clamp."""
        x = inputs[0]
        assert x is not None
        shape = self.output_shapes[0]
        if self.empty_input and not (self.variant == "xnn_float_reduce" and self.kind == "sum"):
            return [np.zeros(shape, x.dtype)]
        if self.variant != "reference":
            return [self._variant_eval(x).astype(x.dtype).reshape(shape)]
        shifted = self._sums(x.view(np.uint8) if self.litert_bytes else x)
        y = multiply_by_quantized_multiplier(shifted, self.output_multiplier, self.output_shift, self.rounding)
        y = wrap_int32_i64(y.astype(np.int64) + self.output_zero_point)
        if self.litert_bytes:
            return [np.clip(y, 0, 255).astype(np.uint8).view(np.int8).reshape(shape)]
        return [np.clip(y, self.qmin, self.qmax).astype(x.dtype).reshape(shape)]

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """Steps of one output element: the reduced values, the sum, the zero-point term, the requantization."""
        x = inputs[0]
        assert x is not None
        if self.empty_input and not (self.variant == "xnn_float_reduce" and self.kind == "sum"):
            return [Step("output", 0, "empty input: LiteRT fills the output with 0")]
        if self.variant != "reference":
            return self._variant_trace(x, element)
        steps = []
        if self.litert_bytes:
            true_steps = replace(self, litert_bytes=False).trace(inputs, output, element)
            steps.append(Step("correct sum", true_steps[-1].value, "what the int8 formula gives (LiteRT does not)"))
            x = x.view(np.uint8)
        row = self._row_of(x, element)
        s = int(wrap_int32_i64(np.asarray(row.astype(np.int64).sum())))
        shifted = int(wrap_int32_i64(np.asarray(s - self.input_zero_point * self.n)))
        what = "LiteRT reads the int8 values as uint8 bytes (q & 0xFF)" if self.litert_bytes else "raw q values"
        steps += [
            Step("values", [int(v) for v in row], f"the {self.n} reduced {what}"),
            Step("acc", s, "int32 sum of the raw q values"),
            Step("shifted_sum", shifted, f"acc - zp_in * n = {s} - ({self.input_zero_point}) * {self.n}"),
        ]
        if self.kind == "mean":
            steps.append(
                Step(
                    "multiplier",
                    (self.output_multiplier, self.output_shift),
                    f"QuantizeMultiplier(s_in/s_out) = ({self.base_multiplier}, {self.base_shift}); "
                    f"k = {self.fold_shift}: M' = ({self.base_multiplier} << {self.fold_shift}) // {self.n} "
                    f"(truncated), shift' = {self.base_shift} - {self.fold_shift}",
                )
            )
        else:
            steps.append(
                Step("multiplier", (self.output_multiplier, self.output_shift), "QuantizeMultiplier(s_in/s_out)")
            )
        mb = int(multiply_by_quantized_multiplier(shifted, self.output_multiplier, self.output_shift, self.rounding))
        steps.append(
            Step("requantized", mb, f"MultiplyByQuantizedMultiplier({shifted}, M, shift) ({self.rounding} rounding)")
        )
        plus = int(wrap_int32_i64(np.asarray(mb + self.output_zero_point)))
        if self.litert_bytes:
            byte = min(max(plus, 0), 255)
            steps.append(Step("byte", byte, f"+ zp_out {self.output_zero_point}, clamp to [0, 255] (uint8 output)"))
            out = byte - 256 if byte > 127 else byte
            steps.append(Step("output", out, "that byte read as int8"))
            return steps
        out = min(max(plus, self.qmin), self.qmax)
        steps.append(Step("output", out, f"+ zp_out {self.output_zero_point}, clamp to [{self.qmin}, {self.qmax}]"))
        return steps

    def _variant_trace(self, x: np.ndarray, element: tuple[int, ...]) -> list[Step]:
        """Steps of one output element under a non-reference variant (ends at the kernel's value)."""
        f = np.float32
        row = self._row_of(x, element) if self.n else np.zeros(0, x.dtype)
        s = int(wrap_int32_i64(np.asarray(row.astype(np.int64).sum())))
        steps = [
            Step("values", [int(v) for v in row], f"the {self.n} reduced raw q values"),
            Step("acc", s, "int32 sum of the raw q values (the zero point is folded into the rescale)"),
        ]
        if self.variant in ("xnn_float_reduce", "float_round_away"):
            sc, off = f(self.float_scale), f(self.float_offset)
            prod = f(f(s) * sc)
            v = f(prod + off)
            if self.variant == "xnn_float_reduce":
                how = "f32(s_in/s_out)" + (f" * f32(1/{self.n})" if self.kind == "mean" else "")
                steps += [
                    Step("scale", float(sc), f"XNNPACK: {how} (float32)"),
                    Step(
                        "zero_point'",
                        float(off),
                        f"f32(zp_out) - f32(f32(n * zp_in) * scale) = {self.output_zero_point} - "
                        f"f32({self.n * self.input_zero_point} * scale)",
                    ),
                    Step("scaled", float(prod), "f32(f32(acc) * scale)"),
                    Step("biased", float(v), "+ zero_point' (float32)"),
                ]
                r = int(np.rint(np.float64(v)))
                steps.append(Step("rounded", r, "nearbyintf: round half to even"))
                out = min(max(r, self.qmin), self.qmax)
                steps.append(Step("output", out, f"saturate to [{self.qmin}, {self.qmax}]"))
                return steps
            steps += [
                Step("scale", float(sc), "LiteRT optimized SUM: f32(s_in/s_out)"),
                Step("bias", float(off), f"f32(f32(-zp_in * scale) * {self.n}), zp_in = {self.input_zero_point}"),
                Step("scaled", float(prod), "f32(f32(acc) * scale)"),
                Step("biased", float(v), "+ bias (float32)"),
            ]
            r = int(float_round_away_sum(np.asarray([s]), sc, off, 0, -(2**40), 2**40)[0])
            steps.append(Step("rounded", r, "roundf: round half away from zero"))
            out = min(max(r + self.output_zero_point, self.qmin), self.qmax)
            steps.append(Step("output", out, f"+ zp_out {self.output_zero_point}, clamp to [{self.qmin}, {self.qmax}]"))
            return steps
        out_shape = self.output_shapes[0]
        flat = int(np.ravel_multi_index(tuple(int(e) for e in element), out_shape)) if out_shape else 0
        c = flat % self.channels
        neon = bool(self._neon_channels(np.asarray([flat]))[0])
        steps.append(
            Step(
                "multiplier",
                (self.output_multiplier, self.output_shift),
                f"QuantizeMultiplier(f32(s_in / f32({self.n} * s_out))) (LiteRT's optimized 4-D MEAN)",
            )
        )
        if neon:
            r, sub = neon_mbqm_mean_steps(s, self.output_multiplier, self.output_shift)
            where = f"channel {c} lies in a NEON block of {self.blocks} channels: ties up at both stages"
        else:
            r, sub = mbqm_steps(s, self.output_multiplier, self.output_shift, "double")
            where = f"channel {c} is in the scalar tail: the reference MultiplyByQuantizedMultiplier"
        steps += [Step(name, value, f"{what} ({where})") for name, value, what in sub]
        plus = int(wrap_int32_i64(np.asarray(r + self.legacy_bias)))
        steps.append(
            Step("biased", plus, f"+ bias {self.legacy_bias} = zp_out - trunc(f32(zp_in * s_in / s_out) +- 0.5)")
        )
        steps.append(Step("output", min(max(plus, self.qmin), self.qmax), f"clamp to [{self.qmin}, {self.qmax}]"))
        return steps


# ---------------------------------------------------------------------------------------------
# Float / raw-integer reductions


@dataclass(frozen=True)
class ReduceData(_AxesData):
    """MEAN/SUM/MAX/MIN/PROD on float32 or raw integers (``reference_ops::Mean`` / ``ReduceGeneric``)."""

    #: "mean", "sum", "max", "min" or "prod".
    kind: str = "sum"
    #: True when the input has no elements.
    empty_input: bool = False

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """Reduce with LiteRT's order of operations (sequential float32 accumulation, wrapping integers)."""
        x = inputs[0]
        assert x is not None
        shape = self.output_shapes[0]
        fl = x.dtype == np.float32
        if self.empty_input or self.n == 0:
            if self.kind == "mean":
                return [np.full(shape, np.nan if fl else 0, x.dtype)]
            if self.kind == "sum":
                return [np.zeros(shape, x.dtype)]
            if self.kind == "prod":
                return [np.ones(shape, x.dtype)]
            lo, hi = (-_FLT_MAX, _FLT_MAX) if fl else dtype_range(x.dtype)
            return [np.full(shape, lo if self.kind == "max" else hi, x.dtype)]
        rows = self._rows(x)
        with np.errstate(all="ignore"):
            if self.kind in ("sum", "mean"):
                if fl:
                    first = rows[:, :1]
                    if not (self.all_dims and self.kind == "sum"):
                        first = first + np.float32(0.0)  # 0.f + x0: only turns -0.0 into +0.0
                    seq = np.concatenate([first, rows[:, 1:]], axis=1)
                    res = np.cumsum(seq, axis=1, dtype=np.float32)[:, -1]  # strictly sequential float32 adds
                    if self.kind == "mean":
                        res = res / np.float32(self.n)
                elif self.kind == "sum":
                    res = rows.astype(np.int64).sum(axis=1)  # modular: wraps like the C accumulation
                else:
                    # Mean<T, int64>: int64 sum (wraps), C truncating division, cast to T.
                    s = rows.astype(np.int64).sum(axis=1)
                    q = np.abs(s) // self.n
                    res = np.where(s < 0, -q, q)
            elif self.kind == "prod":
                if fl:
                    res = np.cumprod(rows, axis=1, dtype=np.float32)[:, -1]
                else:
                    res = np.prod(rows.astype(np.uint64), axis=1, dtype=np.uint64)  # modulo 2^64
            else:
                res = self._minmax(rows, fl)
        # For integers: two's-complement truncation, as the C stores into T.
        return [np.asarray(res).astype(x.dtype).reshape(shape)]

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """Steps of one output element: the reduced values, the running result in LiteRT's order, the mean's division."""
        x = inputs[0]
        assert x is not None
        fl = x.dtype == np.float32
        dt = x.dtype
        if self.empty_input or self.n == 0:
            if self.kind == "mean":
                v, why = (np.nan if fl else 0), "empty input: LiteRT fills a MEAN output with quiet_NaN<T>()"
            elif self.kind == "sum":
                v, why = 0, "empty input: the sum is 0"
            elif self.kind == "prod":
                v, why = 1, "empty input: the product is 1"
            else:
                lo, hi = (-_FLT_MAX, _FLT_MAX) if fl else dtype_range(x.dtype)
                v, why = (lo if self.kind == "max" else hi), "empty input: the start value of the reduction"
            return [Step("output", dt.type(v).item(), why)]
        row = self._row_of(x, element)
        steps = [Step("values", [v.item() for v in row], f"the {self.n} reduced values in row-major input order")]
        if not fl:
            return steps + self._trace_int(row)
        vals = [np.float32(v) for v in row]
        running: list[np.float32] = []
        with np.errstate(all="ignore"):
            if self.kind in ("sum", "mean"):
                if self.all_dims and self.kind == "sum":
                    cur, how = vals[0], "ReduceAllDims: starts from the first value"
                else:
                    cur, how = np.float32(np.float32(0.0) + vals[0]), "0.f + x0 (turns -0.0 into +0.0)"
                running.append(cur)
                for v in vals[1:]:
                    cur = np.float32(cur + v)
                    running.append(cur)
                steps.append(Step("running_sum", [r.item() for r in running], f"sequential float32 adds; {how}"))
                steps.append(Step("sum", cur.item(), "the float32 sum"))
                if self.kind == "mean":
                    res = np.float32(cur / np.float32(self.n))
                    steps.append(Step("output", res.item(), f"sum / {self.n}.f (float32 division)"))
                else:
                    steps.append(Step("output", cur.item(), "the sum"))
                return steps
            if self.kind == "prod":
                cur = vals[0]
                running.append(cur)
                for v in vals[1:]:
                    cur = np.float32(cur * v)
                    running.append(cur)
                steps.append(Step("running_product", [r.item() for r in running], "sequential float32 products"))
                steps.append(Step("output", cur.item(), "the float32 product"))
                return steps
            is_max = self.kind == "max"
            if self.all_dims:
                cur, how = vals[0], "ReduceAllDims: starts from the first value"
            else:
                cur, how = (-_FLT_MAX if is_max else _FLT_MAX), f"starts from {'-' if is_max else ''}FLT_MAX"
            for v in vals:
                if (v > cur) if is_max else (v < cur):
                    cur = v
                running.append(cur)
            op = ">" if is_max else "<"
            steps.append(
                Step(
                    f"running_{self.kind}",
                    [r.item() for r in running],
                    f"(x {op} cur) ? x : cur; {how}; NaN never wins",
                )
            )
            steps.append(Step("output", np.float32(cur).item(), f"the {self.kind}imum"))
        return steps

    def _trace_int(self, row: np.ndarray) -> list[Step]:
        """Raw-integer MEAN/SUM/PROD/MAX/MIN: Python integers, wrapped like the C types."""
        dt = row.dtype
        bits = 8 * dt.itemsize

        def wrap(v: int, b: int = bits) -> int:
            return ((v + (1 << (b - 1))) % (1 << b)) - (1 << (b - 1))

        vals = [int(v) for v in row]
        if self.kind in ("sum", "mean"):
            total = wrap(sum(vals), 64)
            steps = [Step("sum", total, "int64 sum of the values (wrapping)")]
            if self.kind == "sum":
                return steps + [Step("output", wrap(total), f"cast to {dt.name} (two's complement)")]
            q = abs(total) // self.n * (-1 if total < 0 else 1)
            steps.append(Step("quotient", q, f"sum / {self.n} (C truncating division)"))
            return steps + [Step("output", wrap(q), f"cast to {dt.name} (two's complement)")]
        if self.kind == "prod":
            p = 1
            for v in vals:
                p = p * v % (1 << 64)
            return [
                Step("product", p, "product of the values modulo 2^64"),
                Step("output", wrap(p), f"cast to {dt.name} (two's complement)"),
            ]
        m = max(vals) if self.kind == "max" else min(vals)
        return [Step("output", m, f"the {self.kind}imum of the values")]

    def _minmax(self, rows: np.ndarray, fl: bool) -> np.ndarray:
        is_max = self.kind == "max"
        if not fl:
            return rows.max(axis=1) if is_max else rows.min(axis=1)
        # Sequential (in > cur) ? in : cur ends at the FIRST occurrence of the extreme among the
        # values that can replace the start value (equal values, e.g. +0/-0, never replace).
        if self.all_dims:
            start = rows[:, 0]
        else:
            start = np.full(rows.shape[0], -_FLT_MAX if is_max else _FLT_MAX, np.float32)
        cand = (rows > start[:, None]) if is_max else (rows < start[:, None])
        fill = np.float32(-np.inf if is_max else np.inf)
        masked = np.where(cand, rows, fill)
        ext = masked.max(axis=1) if is_max else masked.min(axis=1)
        any_c = cand.any(axis=1)
        first = np.argmax(cand & (masked == ext[:, None]), axis=1)
        picked = rows[np.arange(rows.shape[0]), first]
        return np.where(any_c, picked, start).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# REDUCE_PROD, quantized


@dataclass(frozen=True)
class QuantizedProdData(_AxesData):
    """Quantized REDUCE_PROD (``reference_ops::QuantizedReduceProd``, int8/int16)."""

    #: QuantizeMultiplier(s_in / s_out^(1/n)): applied after every multiplication and once at the end.
    scaling_multiplier: int = 0
    scaling_shift: int = 0
    input_zero_point: int = 0
    output_zero_point: int = 0
    qmin: int = 0
    qmax: int = 0

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """The rescaled product chain with the int64 MultiplyByQuantizedMultiplier (MBQM64)."""
        x = inputs[0]
        assert x is not None
        rows = self._rows(x).astype(np.int64) - self.input_zero_point
        acc = rows[:, 0]
        for j in range(1, self.n):  # the chain is sequential: one vectorized step per reduced position
            acc = multiply_by_quantized_multiplier_int64(
                acc * rows[:, j], self.scaling_multiplier, self.scaling_shift
            ).astype(np.int64)
        y = multiply_by_quantized_multiplier_int64(acc, self.scaling_multiplier, self.scaling_shift).astype(np.int64)
        y = wrap_int32_i64(y + self.output_zero_point)
        return [np.clip(y, self.qmin, self.qmax).astype(x.dtype).reshape(self.output_shapes[0])]

    def _visit(self, x: np.ndarray, element: tuple[int, ...]) -> list[int]:
        """The raw q values reduced into output ``element``, walking the input in row-major order."""
        keep = [i for i in range(x.ndim) if i not in self.axes]
        el = [int(e) for e in element]
        # keep_dims leaves the output rank equal to the input rank (reduced axes of size 1).
        fixed = {i: el[i] for i in keep} if len(el) == x.ndim else dict(zip(keep, el))
        vals = []
        for red in np.ndindex(*[x.shape[i] for i in self.axes]):
            pos = [0] * x.ndim
            for i, v in fixed.items():
                pos[i] = v
            for i, v in zip(self.axes, red):
                pos[i] = v
            vals.append(int(x[tuple(pos)]))
        return vals

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """Steps of one output element: the reduced values, each rescaled product of the chain, the final MBQM64."""
        x = inputs[0]
        assert x is not None
        vals = self._visit(x, element)
        m, sh, zp = self.scaling_multiplier, self.scaling_shift, self.input_zero_point
        reduced = int(mbqm64_reduced_multiplier(m))
        ts = 15 - sh
        steps = [
            Step("values", vals, f"the {len(vals)} reduced raw q values in row-major input order"),
            Step(
                "multiplier",
                (m, sh),
                f"QuantizeMultiplier(s_in / s_out^(1/{self.n})); the int64 MultiplyByQuantizedMultiplier uses "
                f"Mr = {reduced} (M rounded to 15 bits) and a right shift of 15 - ({sh}) = {ts}",
            ),
        ]
        acc = wrap_int(vals[0] - zp, 32)
        steps.append(Step("first", acc, f"q_0 - zp_in = {vals[0]} - ({zp})"))
        if len(vals) > 1:
            products, running = [], []
            for v in vals[1:]:
                p = wrap_int(acc * (v - zp), 64)
                acc = mbqm64_steps(p, m, sh)[0]
                products.append(p)
                running.append(acc)
            steps += [
                Step("products", products, "int64 current * (q_i - zp_in) for i = 1..n-1"),
                Step(
                    "running_product",
                    running,
                    f"each product rescaled: MBQM64 = (product * {reduced} + 2^{ts - 1}) >> {ts}, as int32",
                ),
            ]
        steps.append(Step("acc", acc, "the int32 rescaled product (temp_prod)"))
        y = mbqm64_steps(acc, m, sh)[0]
        steps.append(Step("requantized", y, f"MBQM64(acc, M, shift) = ({acc} * {reduced} + 2^{ts - 1}) >> {ts} = {y}"))
        out = min(max(wrap_int(y + self.output_zero_point, 32), self.qmin), self.qmax)
        steps.append(Step("output", out, f"+ zp_out {self.output_zero_point}, clamp to [{self.qmin}, {self.qmax}]"))
        return steps


# ---------------------------------------------------------------------------------------------
# prepare


def _prepare_axes(ctx: OpContext) -> tuple[TensorInfo, TensorInfo, tuple[int, ...], tuple[int, ...], int, bool]:
    """Common checks: counts, int32 constant axis, resolved axes, output shape, n, all_dims."""
    ctx.check_counts(2, 1)
    x = ctx.input(0)
    a = ctx.input(1)
    y = ctx.output(0)
    if a.dtype != "int32":
        raise ctx.error(f"axis tensor type {a.dtype}; expected int32", a)
    # A non-constant axis decides the output shape: DeferredPrepare makes the graph prepare this op at run time.
    axes = resolve_axes(len(x.shape), ctx.input_value(1))
    if isinstance(axes, str):
        raise ctx.error(f"invalid axis: {axes}", a)
    if x.dtype != y.dtype:
        raise ctx.error(f"output type {y.dtype} differs from input type {x.dtype}", y, UnsupportedOpError)
    keep = bool(ctx.option("keep_dims", False))
    out_shape = _reduced_shape(tuple(x.shape), axes, keep)
    n = 1
    for i in axes:
        n *= x.shape[i]
    return x, y, tuple(sorted(axes)), out_shape, n, len(axes) == len(x.shape)


def _legacy_params(t: TensorInfo) -> tuple[float, int]:
    """``tensor->params`` (scale[0], zero_point[0]), or (0, 0) without quantization."""
    if t.quant is None or t.quant.scale.size == 0:
        return 0.0, 0
    return float(t.quant.scale[0]), int(t.quant.zero_point[0])


def _prepare_mean_sum(ctx: OpContext, kind: str) -> OpData:
    x, y, axes, out_shape, n, all_dims = _prepare_axes(ctx)
    ctx.check_dtype(x, ("int8", "uint8", "int16", "float32", "int32", "int64"), "input")
    empty = x.size == 0
    if x.dtype not in _QUANT:
        return ReduceData(
            (out_shape,),
            (y.dtype,),
            axes=axes,
            n=n,
            all_dims=all_dims,
            kind=kind,
            empty_input=empty,
            arithmetic=ctx.arithmetic,
        )
    qi = ctx.require_quant(x, per_tensor=True)
    qo = ctx.require_quant(y, per_tensor=True)
    if x.dtype == "int16":
        ctx.require_zero_points(x, y, value=0, why=f"int16 {kind.upper()} requires symmetric quantization")
    s_in, s_out = float(qi.scale[0]), float(qo.scale[0])
    # reduce.cc PrepareMeanOrSum: double(input scale) / double(output scale), QuantizeMultiplier.
    m, sh = quantize_multiplier(s_in / s_out, ctx.rounding)
    mult, shift, k = m, sh, 0
    if kind == "mean" and n > 0:
        # QuantizedMeanOrSum: fold 1/n into the multiplier with a truncating int64 division.
        k = min(n.bit_length() - 1, 32, 31 + sh)
        mult = (m << k) // n
        shift = sh - k
    qmin, qmax = dtype_range(x.dtype)
    zp_in, zp_out = int(qi.zero_point[0]), int(qo.zero_point[0])
    arith = ctx.arithmetic
    variant = arith.rescale or "reference"
    extra: dict[str, object] = {}
    if variant == "correct_sum":
        variant = "reference"  # the formula above on the true sum (no byte reinterpretation)
    elif variant == "xnn_float_reduce":
        sc, zpf = xnn_reduce_params(s_in, s_out, zp_in, zp_out, n, kind == "mean" and n > 0)
        extra = {"float_scale": float(sc), "float_offset": float(zpf)}
    elif variant == "float_round_away":
        if empty:
            raise ctx.unsupported(
                f"arithmetic {arith.profile}: LiteRT's optimized SUM of an empty input leaves the output uninitialized"
            )
        sc, bias = opt_sum_params(s_in, s_out, zp_in, n)
        extra = {"float_scale": float(sc), "float_offset": float(bias)}
    elif variant == "legacy_mean":
        real, bias = legacy_mean_params(s_in, s_out, zp_in, zp_out, n)
        mult, shift = quantize_multiplier(float(real))
        extra = {"legacy_bias": bias, "blocks": arith.blocks, "channels": max(int(x.shape[-1]), 1)}
    elif variant != "reference":
        raise ctx.unsupported(f"arithmetic {arith.profile}: rescaling {variant!r} is not a MEAN/SUM variant")
    return QuantizedMeanSumData(
        (out_shape,),
        (y.dtype,),
        axes=axes,
        n=n,
        all_dims=all_dims,
        kind=kind,
        output_multiplier=int(mult),
        output_shift=int(shift),
        base_multiplier=int(m),
        base_shift=int(sh),
        fold_shift=int(k),
        input_zero_point=zp_in,
        output_zero_point=zp_out,
        qmin=qmin,
        qmax=qmax,
        rounding=ctx.rounding,
        empty_input=empty,
        litert_bytes=kind == "sum" and x.dtype == "int8" and arith.rescale in ("", "reference"),
        variant=variant,
        arithmetic=arith,
        **extra,  # type: ignore[arg-type]
    )


def prepare_mean(ctx: OpContext) -> OpData:
    """MEAN (LiteRT ``Register_MEAN_REF``): quantized mean with the truncated ``(M << k) / n`` multiplier."""
    return _prepare_mean_sum(ctx, "mean")


def prepare_sum(ctx: OpContext) -> OpData:
    """SUM (LiteRT ``Register_SUM_REF``; int8 reproduces LiteRT's uint8 reading, int16 is the correct sum)."""
    return _prepare_mean_sum(ctx, "sum")


def _prepare_minmax(ctx: OpContext, kind: str) -> OpData:
    x, y, axes, out_shape, n, all_dims = _prepare_axes(ctx)
    ctx.check_dtype(x, ("int8", "uint8", "int16", "float32", "int32", "int64"), "input")
    if x.dtype in _QUANT:
        pi, po = _legacy_params(x), _legacy_params(y)
        if np.float32(pi[0]) != np.float32(po[0]) or pi[1] != po[1]:
            raise ctx.fail_quant(
                f"input (scale {pi[0]!r}, zero point {pi[1]}) and output (scale {po[0]!r}, zero point {po[1]}) "
                f"quantization differ; LiteRT's REDUCE_{kind.upper()} requires them to be equal",
                y,
            )
    return ReduceData((out_shape,), (y.dtype,), axes=axes, n=n, all_dims=all_dims, kind=kind, empty_input=x.size == 0)


def prepare_reduce_max(ctx: OpContext) -> OpData:
    """REDUCE_MAX (LiteRT ``Register_REDUCE_MAX_REF``): raw maximum; quantized params must match."""
    return _prepare_minmax(ctx, "max")


def prepare_reduce_min(ctx: OpContext) -> OpData:
    """REDUCE_MIN (LiteRT ``Register_REDUCE_MIN_REF``): raw minimum; quantized params must match."""
    return _prepare_minmax(ctx, "min")


def prepare_reduce_prod(ctx: OpContext) -> OpData:
    """REDUCE_PROD (LiteRT ``Register_REDUCE_PROD_REF``): float/raw-integer product, or the quantized chain."""
    x, y, axes, out_shape, n, all_dims = _prepare_axes(ctx)
    ctx.check_dtype(x, ("int8", "uint8", "int16", "float32", "int32", "int64"), "input")
    quantized = x.quant is not None and x.quant.scale.size > 0
    if not quantized or x.dtype in ("float32", "int32", "int64"):
        if quantized and x.dtype != "float32":
            raise ctx.error(f"quantized {x.dtype} REDUCE_PROD is not supported by LiteRT (int8/int16 only)", x)
        return ReduceData(
            (out_shape,), (y.dtype,), axes=axes, n=n, all_dims=all_dims, kind="prod", empty_input=x.size == 0
        )
    if x.dtype not in ("int8", "int16"):
        raise ctx.error(f"quantized {x.dtype} REDUCE_PROD is not supported by LiteRT (int8/int16 only)", x)
    qi = ctx.require_quant(x, per_tensor=True)
    qo = ctx.require_quant(y, per_tensor=True)
    if x.dtype == "int16":
        ctx.require_zero_points(x, y, value=0, why="int16 REDUCE_PROD requires symmetric quantization")
    if x.size == 0:
        raise ctx.error("quantized REDUCE_PROD of an empty input: LiteRT leaves the output uninitialized", x)
    out_size = 1
    for d in out_shape:
        out_size *= d
    reduced = x.size // out_size  # reduce.cc: input_size / output_size
    # GetQuantProdScaling in double: input_scale / pow(output_scale, 1.0 / reduced_axis_size).
    scaling = float(qi.scale[0]) / math.pow(float(qo.scale[0]), 1.0 / reduced)
    m, sh = quantize_multiplier(scaling, ctx.rounding)
    if not -31 <= sh <= 14:
        raise ctx.fail_quant(
            f"product scaling {scaling!r} has exponent {sh}; LiteRT's int64 MultiplyByQuantizedMultiplier is "
            "only defined for exponents in [-31, 14]",
            y,
        )
    qmin, qmax = dtype_range(x.dtype)
    return QuantizedProdData(
        (out_shape,),
        (y.dtype,),
        axes=axes,
        n=n,
        all_dims=all_dims,
        scaling_multiplier=int(m),
        scaling_shift=int(sh),
        input_zero_point=int(qi.zero_point[0]),
        output_zero_point=int(qo.zero_point[0]),
        qmin=qmin,
        qmax=qmax,
    )


# ---------------------------------------------------------------------------------------------
# REDUCE_ANY, REDUCE_ALL (bool)


@dataclass(frozen=True)
class BoolReduceData(_AxesData):
    """REDUCE_ANY / REDUCE_ALL (``Register_REDUCE_ANY_REF`` / ``_ALL_REF``): ``in || cur`` from false, ``in && cur`` from true.

    An empty reduction gives the start value (false for ANY, true for ALL).
    """

    #: "any" or "all".
    kind: str = "any"

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """The logical OR / AND of the reduced values."""
        x = np.asarray(inputs[0]).astype(bool)
        shape = self.output_shapes[0]
        if x.size == 0 or self.n == 0:
            return [np.full(shape, self.kind == "all", bool)]
        rows = self._rows(x)
        res = rows.any(axis=1) if self.kind == "any" else rows.all(axis=1)
        return [res.reshape(shape)]

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """The reduced values and their OR / AND."""
        x = np.asarray(inputs[0]).astype(bool)
        out = bool(np.asarray(self.eval(inputs)[0])[tuple(element)])
        if x.size == 0 or self.n == 0:
            return [Step("output", out, "empty reduction: the start value")]
        row = self._row_of(x, element)
        op = "OR" if self.kind == "any" else "AND"
        return [
            Step("values", [bool(v) for v in row], f"the {self.n} reduced values"),
            Step("output", out, f"logical {op}"),
        ]


def _prepare_bool_reduce(ctx: OpContext, kind: str) -> OpData:
    x, y, axes, out_shape, n, all_dims = _prepare_axes(ctx)
    ctx.check_dtype(x, ("bool",), "input")
    return BoolReduceData((out_shape,), ("bool",), axes=axes, n=n, all_dims=all_dims, kind=kind)


def prepare_reduce_any(ctx: OpContext) -> OpData:
    """REDUCE_ANY (LiteRT ``Register_REDUCE_ANY_REF``): bool input, int32 axes, ``keep_dims``."""
    return _prepare_bool_reduce(ctx, "any")


def prepare_reduce_all(ctx: OpContext) -> OpData:
    """REDUCE_ALL (LiteRT ``Register_REDUCE_ALL_REF``): bool input, int32 axes, ``keep_dims``."""
    return _prepare_bool_reduce(ctx, "all")
