"""Elementwise math on raw values: FLOOR, SIN, COS, SIGN, FLOOR_DIV, FLOOR_MOD, POW, ADD_N, CUMSUM, ONE_HOT.

None of these kernels rescales quantized values: LiteRT 2.3.0's ``BUILTIN_REF`` registrations
(``floor.cc`` ``Register_FLOOR_REF``, ``elementwise.cc`` ``Register_SIN``/``Register_COS``,
``sign.cc``, ``floor_div.cc``, ``floor_mod.cc``, ``pow.cc``, ``add_n.cc``, ``cumsum.cc``; the REF
resolver has no separate reference kernel for the last six) compute on the stored values and ignore
quantization parameters. What each does, as found in the sources and checked on the oracle:

* FLOOR (float32): ``std::floor``; -0.0, NaN and infinities pass through.
* SIN, COS (float32): ``std::sin``/``std::cos`` of a float, i.e. glibc's ``sinf``/``cosf``, called
  here through ctypes (a float64 evaluation rounded to float32 differs in the last place on ~1% of
  inputs), so the results are bit-exact.
* SIGN (float32, int32): ``x > 0 ? 1 : x < 0 ? -1 : 0``, NaN passes through, -0.0 gives +0.0. Other
  types pass Prepare and fail Eval in LiteRT; refquant rejects them at prepare.
* FLOOR_DIV (int8, int16, int32, float32): ``T(floor(double(a) / double(b)))``. Integers: the exact
  floor quotient, wrapped to the type (``INT32_MIN // -1`` is ``INT32_MIN``, ``-128 // -1`` is
  ``-128``, as x86's conversion gives). Any zero in the divisor tensor (float: 0.0 or -0.0) fails the
  invocation, even where broadcasting never reads it; a NaN divisor does not.
* FLOOR_MOD (int8, int16, int32, int64, float32): the C remainder, plus the divisor when the signs
  differ. Integer zero divisors fail the invocation; float zero divisors give NaN. ``INT32_MIN % -1``
  (and the int64 analogue) kills LiteRT's process with SIGFPE; refquant raises :class:`InputError`.
* POW (float32, int32): three code paths, chosen by shapes (``pow.cc``):

  - equal shapes: ``std::pow`` per element (``powf`` for float; for int32 ``pow`` in double,
    converted to int32: results outside int32 become ``INT32_MIN``);
  - different shapes and a one-element exponent ``e`` with ``|e - int(roundf(e))| < 1e-5`` and
    ``int(roundf(e)) >= 1``: ``optimized_ops::IntegerExponentPow``, repeated squaring with the
    optimized MUL kernel, whose activation clamp to ``[-FLT_MAX, FLT_MAX]`` turns overflow into
    ``FLT_MAX`` (NaN passes); int32 products wrap. So ``x ** 2.000001`` is computed as ``x * x``,
    ``1e20 ** 2`` is ``FLT_MAX`` (not inf) and int32 overflow wraps instead of giving ``INT32_MIN``;
  - otherwise: ``std::pow`` per broadcast element, as in the first path.

  A negative int32 exponent anywhere fails the invocation.
* ADD_N (float32, int32; at least 2 inputs of one shape and type): ``optimized_ops::AddN``. With one
  thread (the oracle's setting) it sums the inputs in order, ``acc = x0; acc = clamp(acc + xi)`` with
  the optimized ADD's clamp to ``[-FLT_MAX, FLT_MAX]`` after every add (NaN passes); int32 wraps.
  With ``num_threads > 1`` LiteRT splits the inputs into partial sums, which changes float rounding.
* CUMSUM (float32, int32, int64; int32 axis with one element): Eigen's scan, ``acc = 0; acc += x``
  along the axis in order (``reverse``: from the end); ``exclusive`` writes ``acc`` before adding.
  The leading ``0 + x`` turns -0.0 into +0.0; int32/int64 wrap. An axis outside ``[-rank, rank)``
  fails the invocation.
* ONE_HOT (``one_hot.cc``; output float32, int32, int64, int8, uint8, bool = the type of ``on_value``;
  int32 or int64 indices; one-element depth, on_value and off_value): ``out(i, j, k) =
  int(indices(i, k)) == j ? on : off`` with the new axis of size ``depth`` at ``axis`` (-1: last).
  int64 indices are truncated to int (low 32 bits) before the comparison, so out-of-range indices give
  an all-``off`` row. Raw values, no requantization (the converter leaves it float in int8 models).
  int16 passes LiteRT's Prepare and fails its Eval; refquant rejects it at prepare. refquant needs a
  constant depth (the converter's case); a computed depth is rejected (UnsupportedOpError).

Broadcasting (FLOOR_DIV, FLOOR_MOD, POW) is NumPy's, up to 8 dims. Every op here has ``eval`` and
``trace``.

CEIL, ROUND and ELU have no kernel in LiteRT 2.3.0's ``BUILTIN_REF`` resolver (``register_ref.cc``; the
wheel rejects the model), so refquant does not register them either (``tests/ops/test_math_ops.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError, UnsupportedOpError
from ..fixedpoint import round_half_away_from_zero, wrap_int32
from . import lut as L
from .base import OpContext, OpData, Step, TensorInfo
from .movement import require_output_dtype
from .staging import Stage, Staged, binary_prepare, same_output_dtype

__all__ = [
    "FloatUnaryMath",
    "SignData",
    "FloorDivModData",
    "PowData",
    "AddNData",
    "CumsumData",
    "prepare_floor",
    "prepare_sin",
    "prepare_cos",
    "prepare_sign",
    "prepare_floor_div",
    "prepare_floor_mod",
    "prepare_pow",
    "prepare_add_n",
    "prepare_cumsum",
    "OneHotData",
    "prepare_one_hot",
]

F32 = np.float32
_FLT_MAX = F32(np.finfo(np.float32).max)
_INT_RANGES = {"int8": 8, "int16": 16, "int32": 32, "int64": 64}


def _clamp_keep_nan(x: np.ndarray) -> np.ndarray:
    """The optimized float kernels' activation clamp to ``[-FLT_MAX, FLT_MAX]``: infinities saturate, NaN passes."""
    return np.where(np.isnan(x), x, np.clip(x, -_FLT_MAX, _FLT_MAX)).astype(F32)


# ---------------------------------------------------------------------------------------------
# FLOOR, SIN, COS, SIGN


@dataclass(frozen=True)
class FloatUnaryMath(Staged, OpData):
    """FLOOR / SIN / COS on float32 (``reference_ops::Floor``, ``std::sin``, ``std::cos`` = glibc ``sinf``/``cosf``)."""

    #: "floor", "sin" or "cos".
    kind: str = "floor"

    def _stages(self, inputs: list[np.ndarray | None]) -> list[Stage]:
        x = np.asarray(inputs[0], dtype=F32)
        if self.kind == "floor":
            return [("output", np.floor(x), "std::floor")]
        return [("output", L.libm_f32(self.kind + "f", x), f"glibc {self.kind}f")]


@dataclass(frozen=True)
class SignData(Staged, OpData):
    """SIGN (``sign.cc``): ``x > 0 ? 1 : (x < 0 ? -1 : 0)``; float NaN passes through."""

    def _stages(self, inputs: list[np.ndarray | None]) -> list[Stage]:
        x = np.asarray(inputs[0])
        one = np.ones((), x.dtype)
        s = np.where(x > 0, one, np.where(x < 0, -one, np.zeros((), x.dtype)))
        if x.dtype.kind == "f":
            s = np.where(np.isnan(x), x, s)
        return [("output", s.astype(x.dtype), "x > 0 ? 1 : x < 0 ? -1 : 0 (NaN stays NaN)")]


def _unary_same(ctx: OpContext, allowed: tuple[str, ...]) -> TensorInfo:
    ctx.check_counts(1, 1)
    x, o = ctx.input(0), ctx.output(0)
    ctx.check_dtype(x, allowed, "input")
    same_output_dtype(ctx, x, o)
    return x


def prepare_floor(ctx: OpContext) -> OpData:
    """FLOOR (LiteRT ``Register_FLOOR_REF``): float32 (LiteRT also takes float16/bfloat16, which refquant does not)."""
    x = _unary_same(ctx, ("float32",))
    return FloatUnaryMath((x.shape,), ("float32",), kind="floor")


def prepare_sin(ctx: OpContext) -> OpData:
    """SIN (LiteRT ``Register_SIN``, elementwise.cc): float32 via glibc ``sinf``."""
    x = _unary_same(ctx, ("float32",))
    return FloatUnaryMath((x.shape,), ("float32",), kind="sin")


def prepare_cos(ctx: OpContext) -> OpData:
    """COS (LiteRT ``Register_COS``, elementwise.cc): float32 via glibc ``cosf``."""
    x = _unary_same(ctx, ("float32",))
    return FloatUnaryMath((x.shape,), ("float32",), kind="cos")


def prepare_sign(ctx: OpContext) -> OpData:
    """SIGN (LiteRT ``Register_SIGN``): float32 and int32 (LiteRT fails Eval for other types)."""
    ctx.check_counts(1, 1)
    x, o = ctx.input(0), ctx.output(0)
    if o.dtype != x.dtype:
        raise ctx.error(f"output type {o.dtype} differs from the input type {x.dtype}", o, UnsupportedOpError)
    ctx.check_dtype(x, ("float32", "int32"), "input")
    return SignData((x.shape,), (x.dtype,))


# ---------------------------------------------------------------------------------------------
# FLOOR_DIV, FLOOR_MOD


@dataclass(frozen=True)
class FloorDivModData(Staged, OpData):
    """FLOOR_DIV (``reference_ops::FloorDiv``) or FLOOR_MOD (``reference_ops::FloorMod``), broadcast."""

    #: "div" or "mod".
    kind: str = "div"
    #: Where the op is, for run-time errors.
    _where: str = ""

    def _check(self, a: np.ndarray, b: np.ndarray) -> None:
        integer = b.dtype.kind == "i"
        if (integer or self.kind == "div") and b.size and bool((b == 0).any()):
            raise InputError(
                f"{self._where}: the divisor tensor contains 0; LiteRT fails the invocation (Division by 0)"
            )
        if self.kind == "mod" and b.dtype in (np.int32, np.int64):
            lo = np.iinfo(b.dtype).min
            if bool(((a == lo) & (b == -1)).any()):
                raise InputError(
                    f"{self._where}: {lo} mod -1 overflows the C remainder; LiteRT's process dies (SIGFPE)"
                )

    def _stages(self, inputs: list[np.ndarray | None]) -> list[Stage]:
        a, b = np.asarray(inputs[0]), np.asarray(inputs[1])
        self._check(a, b)
        dt = a.dtype
        with np.errstate(all="ignore"):
            if self.kind == "div":
                if dt.kind == "f":
                    q = np.floor(a.astype(np.float64) / b.astype(np.float64))
                    return [
                        ("double quotient", q, "floor(double(a) / double(b))"),
                        ("output", q.astype(F32), "rounded to float32"),
                    ]
                q = np.floor_divide(a.astype(np.int64), b.astype(np.int64))
                return [("floor quotient", q, "floor(a / b), exact"), ("output", q.astype(dt), f"wrapped to {dt}")]
            if dt.kind == "f":
                r = np.fmod(a, b).astype(F32)
            else:
                r = np.fmod(a.astype(np.int64), b.astype(np.int64))
            fix = (r != 0) & ((b < 0) != (r < 0))
            out = np.where(fix, r + b, r).astype(dt)
        return [
            ("remainder", r, "C remainder (fmodf for float)"),
            ("output", out, "remainder + b where the signs of b and the remainder differ"),
        ]


def _prepare_div_mod(ctx: OpContext, kind: str, allowed: tuple[str, ...]) -> FloorDivModData:
    a, b, o, shape = binary_prepare(ctx)
    ctx.check_dtype(a, allowed, "input")
    same_output_dtype(ctx, a, o)
    return FloorDivModData((shape,), (a.dtype,), kind=kind, _where=ctx.where())


def prepare_floor_div(ctx: OpContext) -> OpData:
    """FLOOR_DIV (LiteRT ``Register_FLOOR_DIV``): int8, int16, int32 (raw values), float32."""
    return _prepare_div_mod(ctx, "div", ("float32", "int32", "int16", "int8"))


def prepare_floor_mod(ctx: OpContext) -> OpData:
    """FLOOR_MOD (LiteRT ``Register_FLOOR_MOD``): int8, int16, int32, int64 (raw values), float32."""
    return _prepare_div_mod(ctx, "mod", ("float32", "int32", "int64", "int16", "int8"))


# ---------------------------------------------------------------------------------------------
# POW


def _integer_exponent(e: float | int, dtype: str) -> int | None:
    """``BroadcastPow4D``'s test: the exponent as an int when ``|e - int(roundf(e))| < 1e-5f`` and it is >= 1."""
    if dtype == "int32":
        return int(e) if int(e) >= 1 else None
    ef = F32(e)
    r = L.float_to_int32(round_half_away_from_zero(np.asarray(ef)))
    k = int(r)
    with np.errstate(all="ignore"):
        diff = np.abs(F32(ef - F32(k)))
    return k if bool(diff < F32(1e-5)) and k >= 1 else None


def _repeated_squaring(base: np.ndarray, k: int) -> np.ndarray:
    """``optimized_ops::IntegerExponentPow``: ``p(1) = x``; ``p(k) = p(k/2)^2 (* x if k odd)``, each MUL clamped/wrapped."""
    if k == 1:
        return base.copy()
    half = _repeated_squaring(base, k // 2)
    with np.errstate(all="ignore"):
        if base.dtype == np.float32:
            out = _clamp_keep_nan((half * half).astype(F32))
            if k % 2:
                out = _clamp_keep_nan((base * out).astype(F32))
        else:
            wide = half.astype(np.int64)
            out = wrap_int32(wide * wide)
            if k % 2:
                out = wrap_int32(base.astype(np.int64) * out.astype(np.int64))
    return out


@dataclass(frozen=True)
class PowData(Staged, OpData):
    """POW (``pow.cc``): ``std::pow`` per element, or repeated squaring for a scalar integer exponent (module docstring)."""

    #: True when the shapes differ (LiteRT's ``requires_broadcast``) and the exponent has one element:
    #: the repeated-squaring path applies when the exponent's value is a whole number >= 1.
    scalar_exponent: bool = False
    #: Where the op is, for run-time errors.
    _where: str = ""

    def _stages(self, inputs: list[np.ndarray | None]) -> list[Stage]:
        x, e = np.asarray(inputs[0]), np.asarray(inputs[1])
        integer = x.dtype == np.int32
        if integer and e.size and bool((e < 0).any()):
            raise InputError(f"{self._where}: negative int32 exponent; LiteRT fails the invocation")
        if self.scalar_exponent:
            k = _integer_exponent(e.reshape(-1)[0].item(), x.dtype.name)
            if k is not None:
                out = _repeated_squaring(x, k)
                why = "repeated squaring, each product clamped to +-FLT_MAX" if not integer else "wrapping"
                return [("integer exponent", np.asarray(k), "int(roundf(e))"), ("output", out, why)]
        if integer:
            with np.errstate(all="ignore"):
                p = np.power(x.astype(np.float64), e.astype(np.float64))
            return [
                ("double pow", p, "pow(double(x), double(e))"),
                ("output", wrap_int32(L.float_to_int32(p)), "int32 conversion"),
            ]
        return [("output", L.libm_f32("powf", x, e), "glibc powf")]


def prepare_pow(ctx: OpContext) -> OpData:
    """POW (LiteRT ``Register_POW``): float32 and int32, NumPy broadcasting."""
    a, b, o, shape = binary_prepare(ctx)
    ctx.check_dtype(a, ("float32", "int32"), "input")
    same_output_dtype(ctx, a, o)
    scalar = a.shape != b.shape and b.size == 1
    return PowData((shape,), (a.dtype,), scalar_exponent=scalar, _where=ctx.where())


# ---------------------------------------------------------------------------------------------
# ADD_N


@dataclass(frozen=True)
class AddNData(OpData):
    """ADD_N (``optimized_ops::AddN`` with one thread): the inputs summed in order, each add clamped (float) or wrapped."""

    def _sum(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        xs = [np.asarray(v) for v in inputs]
        acc = xs[0].copy()
        partial = [acc]
        with np.errstate(all="ignore"):
            for x in xs[1:]:
                if acc.dtype == np.float32:
                    acc = _clamp_keep_nan((acc + x).astype(F32))
                else:
                    acc = wrap_int32(acc.astype(np.int64) + x.astype(np.int64))
                partial.append(acc)
        return partial

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """The running sum after the last input."""
        return [self._sum(inputs)[-1].reshape(self.output_shapes[0])]

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """Each input's value and the running sum after it."""
        idx = tuple(element)
        steps = []
        partial = self._sum(inputs)
        for k, (x, acc) in enumerate(zip(inputs, partial)):
            steps.append(Step(f"input {k}", np.asarray(x)[idx].item(), "input value"))
            if k:
                steps.append(Step(f"sum after input {k}", acc[idx].item(), "acc + x (float: clamped to +-FLT_MAX)"))
        return steps + [Step("output", partial[-1][idx].item(), "the running sum after the last input")]


def prepare_add_n(ctx: OpContext) -> OpData:
    """ADD_N (LiteRT ``Register_ADD_N``): >= 2 inputs of one shape and type, float32 or int32."""
    n = len(ctx.inputs)
    if n < 2:
        raise ctx.error(f"has {n} inputs; ADD_N needs at least 2")
    ctx.check_counts(n, 1)
    first = ctx.input(0)
    for i in range(1, n):
        t = ctx.input(i)
        if t.shape != first.shape:
            raise ctx.error(f"input shapes differ: {list(t.shape)} vs {list(first.shape)}; ADD_N requires one shape", t)
        if t.dtype != first.dtype:
            raise ctx.error(f"input types differ: {t.dtype} vs {first.dtype}", t, UnsupportedOpError)
    ctx.check_dtype(first, ("float32", "int32"), "input")
    require_output_dtype(ctx, ctx.output(0), first.dtype)
    return AddNData((first.shape,), (first.dtype,))


# ---------------------------------------------------------------------------------------------
# CUMSUM


@dataclass(frozen=True)
class CumsumData(OpData):
    """CUMSUM (``optimized_ops::CumSum``, Eigen scan): sequential running sums along ``axis``."""

    #: Whether the output excludes the current element (``acc`` before the add).
    exclusive: bool = False
    #: Whether the sums run from the end of the axis.
    reverse: bool = False
    #: The axis when known at prepare time (a constant); None: read from input 1 at run time.
    axis: int | None = None
    #: Where the op is, for run-time errors.
    _where: str = ""

    def _axis(self, inputs: list[np.ndarray | None]) -> int:
        if self.axis is not None:
            return self.axis
        rank = len(self.output_shapes[0])
        a = int(np.asarray(inputs[1]).reshape(-1)[0])
        if not -rank <= a < rank:
            raise InputError(f"{self._where}: axis {a} is outside [-{rank}, {rank}); LiteRT fails the invocation")
        return a % rank

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """Running sums with LiteRT's order of operations."""
        x = np.asarray(inputs[0])
        axis = self._axis(inputs)
        if x.size == 0:
            return [x.copy()]
        v = np.moveaxis(x, axis, -1)
        if self.reverse:
            v = v[..., ::-1]
        if x.dtype == np.float32:
            zero = np.zeros(v.shape[:-1] + (1,), F32)
            with np.errstate(all="ignore"):
                run = np.cumsum(np.concatenate([zero, v], axis=-1), axis=-1, dtype=F32)  # strictly sequential adds
        else:
            wide = np.concatenate([np.zeros(v.shape[:-1] + (1,), np.int64), v.astype(np.int64)], axis=-1)
            run = np.cumsum(wide, axis=-1)  # modular int64 sums, wrapped below
        out = run[..., :-1] if self.exclusive else run[..., 1:]
        if self.reverse:
            out = out[..., ::-1]
        out = np.moveaxis(out, -1, axis)
        return [np.ascontiguousarray(out).astype(x.dtype) if x.dtype != np.float32 else np.ascontiguousarray(out)]

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """The summed values along the axis (in summation order) and the result."""
        x = np.asarray(inputs[0])
        axis = self._axis(inputs)
        idx = list(element)
        pos = idx[axis]
        n = x.shape[axis]
        order = list(range(n - 1, -1, -1)) if self.reverse else list(range(n))
        upto = order[: order.index(pos) + (0 if self.exclusive else 1)]
        vals = [x[tuple(idx[:axis] + [j] + idx[axis + 1 :])].item() for j in upto]
        out = np.asarray(self.eval(inputs)[0])[tuple(element)].item()
        return [
            Step("summed values", vals, f"axis {axis} positions {upto}, added in this order to 0"),
            Step("output", out, "sequential sum (float32 rounding after every add; integers wrap)"),
        ]


def prepare_cumsum(ctx: OpContext) -> OpData:
    """CUMSUM (LiteRT ``Register_CUMSUM``): float32, int32, int64; an int32 axis tensor with one element."""
    ctx.check_counts(2, 1)
    x, a, o = ctx.input(0), ctx.input(1), ctx.output(0)
    ctx.check_dtype(x, ("float32", "int32", "int64"), "input")
    if a.dtype != "int32":
        raise ctx.error(f"axis type {a.dtype}; expected int32", a, UnsupportedOpError)
    if a.size != 1:
        raise ctx.error(f"axis has {a.size} elements; expected 1", a)
    if len(x.shape) < 1:
        raise ctx.error("input must have rank >= 1", x)
    require_output_dtype(ctx, o, x.dtype)
    rank = len(x.shape)
    axis = None
    if a.value is not None:
        v = int(np.asarray(a.value).reshape(-1)[0])
        if not -rank <= v < rank:
            raise ctx.error(f"axis {v} is outside [-{rank}, {rank})", a)
        axis = v % rank
    return CumsumData(
        (x.shape,),
        (x.dtype,),
        exclusive=bool(ctx.option("exclusive", False)),
        reverse=bool(ctx.option("reverse", False)),
        axis=axis,
        _where=ctx.where(),
    )


# ---------------------------------------------------------------------------------------------
# ONE_HOT


@dataclass(frozen=True)
class OneHotData(OpData):
    """ONE_HOT (``one_hot.cc`` ``OneHotComputeImpl``): ``on`` where ``int(index) == j``, else ``off``."""

    #: Position of the new axis in the output (``-1`` resolved to the indices' rank).
    axis: int = 0
    #: Size of the new axis (the constant ``depth`` input).
    depth: int = 0

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """Compare every (truncated-to-int32) index with ``0 .. depth-1`` along the new axis."""
        idx = np.asarray(inputs[0])
        on = np.asarray(inputs[2]).reshape(-1)[0]
        off = np.asarray(inputs[3]).reshape(-1)[0]
        dt = np.dtype(self.output_dtypes[0])
        if idx.dtype == np.int64:
            idx = idx.astype(np.int32)  # static_cast<int>: the low 32 bits
        hit = np.expand_dims(idx.astype(np.int64), self.axis) == np.arange(self.depth, dtype=np.int64).reshape(
            (-1,) + (1,) * (idx.ndim - self.axis)
        )
        out = np.where(hit, on, off).astype(dt)
        return [np.ascontiguousarray(out.reshape(self.output_shapes[0]))]

    def trace(self, inputs: list[np.ndarray | None], output: int, element: tuple[int, ...]) -> list[Step]:
        """The index compared and the value chosen."""
        idx = np.asarray(inputs[0])
        e = list(element)
        j = e.pop(self.axis)
        raw = idx[tuple(e)].item()
        as_int = int(np.asarray(raw).astype(np.int64).astype(np.int32)) if idx.dtype == np.int64 else int(raw)
        out = np.asarray(self.eval(inputs)[0])[tuple(element)].item()
        return [
            Step("index", raw, f"indices{tuple(e)}, compared as int {as_int}"),
            Step("output", out, f"{'on_value' if as_int == j else 'off_value'} (position {j} on axis {self.axis})"),
        ]


def prepare_one_hot(ctx: OpContext) -> OpData:
    """ONE_HOT (LiteRT ``Register_ONE_HOT``): int32/int64 indices; the output has on_value's type."""
    ctx.check_counts(4, 1)
    ind, depth, on, off, o = ctx.input(0), ctx.input(1), ctx.input(2), ctx.input(3), ctx.output(0)
    ctx.check_dtype(on, ("float32", "int32", "int64", "int8", "uint8", "bool"), "on_value")
    if ind.dtype not in ("int32", "int64"):
        raise ctx.error(f"indices type {ind.dtype}; expected int32 or int64", ind, UnsupportedOpError)
    if off.dtype != on.dtype:
        raise ctx.error(f"off_value type {off.dtype} differs from on_value type {on.dtype}", off, UnsupportedOpError)
    if depth.dtype != "int32":
        raise ctx.error(f"depth type {depth.dtype}; expected int32", depth, UnsupportedOpError)
    for t, role in ((depth, "depth"), (on, "on_value"), (off, "off_value")):
        if int(np.prod(t.shape, dtype=np.int64)) != 1:
            raise ctx.error(f"{role} has {int(np.prod(t.shape, dtype=np.int64))} elements; expected 1", t)
    rank = len(ind.shape)
    a = int(ctx.option("axis", -1))
    axis = rank if a == -1 else a
    if not 0 <= axis < rank + 1:
        raise ctx.error(f"axis {a} is outside [-1, {rank}]", o)
    if depth.value is None:
        raise ctx.error("depth is computed at run time; refquant supports a constant depth", depth, UnsupportedOpError)
    d = int(np.asarray(depth.value).reshape(-1)[0])
    if d < 0:
        raise ctx.error(f"depth {d} is negative", depth)
    require_output_dtype(ctx, o, on.dtype)
    shape = tuple(ind.shape[:axis]) + (d,) + tuple(ind.shape[axis:])
    return OneHotData((shape,), (on.dtype,), axis=axis, depth=d)
