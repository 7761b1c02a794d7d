"""Data movement that copies values (RESHAPE, SQUEEZE, EXPAND_DIMS, SHAPE, TRANSPOSE, PACK, UNPACK, SPLIT,
SPLIT_V, CONCATENATION, TILE, BROADCAST_TO, FILL, ZEROS_LIKE, CAST, SPACE_TO_DEPTH, DEPTH_TO_SPACE): the
builders of :func:`~refquant.strategies.op_models`. Quantization passes through unchanged."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from ..testing.harness import Case
from .base import draw_floats, draw_values
from .builder import ALL_DTYPES, Net, OpConfig, draw_any_values, draw_shape, raw_quant
from .registry import register


def _factor(n: int, rank: int, draw: st.DrawFn) -> list[int]:
    """A shape of ``rank`` dims with product ``n`` (n >= 1)."""
    dims = [1] * rank
    if rank == 0:
        return dims
    m, p = n, 2
    while m > 1:
        while m % p == 0:
            dims[draw(st.integers(0, rank - 1))] *= p
            m //= p
        p += 1
    return dims


@register("RESHAPE", dtypes=ALL_DTYPES)
def _b_reshape(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    shape = draw_shape(draw, cfg)
    size = int(np.prod(shape, dtype=np.int64))
    rank = draw(st.integers(0 if size == 1 else 1, max(1, cfg.max_rank)))
    target = _factor(size, rank, draw)
    if rank and draw(st.booleans()):
        target[draw(st.integers(0, rank - 1))] = -1
    q = raw_quant(draw, dtype)
    net = Net()
    xi = net.input("x", draw_any_values(draw, dtype, shape), q)
    out_shape = [d if d >= 0 else size // max(1, int(np.prod([t for t in target if t >= 0]))) for d in target]
    y = net.tensor("y", out_shape, dtype, q)
    if draw(st.booleans()):
        net.op(opcode, [xi, net.const("shape", np.array(target, np.int32))], [y])
    else:
        net.op(opcode, [xi], [y], new_shape=target if target else [0])
    return net.case([y], f"{opcode} {dtype}")


@register("SQUEEZE", dtypes=ALL_DTYPES)
def _b_squeeze(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    shape = tuple(d if draw(st.booleans()) else 1 for d in draw_shape(draw, cfg))
    ones = [k for k, d in enumerate(shape) if d == 1]
    dims = [k - len(shape) if draw(st.booleans()) else k for k in ones if draw(st.booleans())]
    q = raw_quant(draw, dtype)
    drop = {k % len(shape) for k in dims} if dims else set(ones)
    out_shape = [d for k, d in enumerate(shape) if k not in drop]
    net = Net()
    xi = net.input("x", draw_any_values(draw, dtype, shape), q)
    y = net.tensor("y", out_shape, dtype, q)
    net.op(opcode, [xi], [y], squeeze_dims=dims)
    return net.case([y], f"{opcode} {dtype}")


@register("EXPAND_DIMS", dtypes=ALL_DTYPES)
def _b_expand_dims(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    shape = draw_shape(draw, cfg, 0, max(0, cfg.max_rank - 1))
    axis = draw(st.integers(-len(shape) - 1, len(shape)))
    q = raw_quant(draw, dtype)
    pos = axis if axis >= 0 else axis + len(shape) + 1
    net = Net()
    xi = net.input("x", draw_any_values(draw, dtype, shape), q)
    ai = net.const("axis", np.array([axis], draw(st.sampled_from(["int32", "int64"]))))
    y = net.tensor("y", (*shape[:pos], 1, *shape[pos:]), dtype, q)
    net.op(opcode, [xi, ai], [y])
    return net.case([y], f"{opcode} {dtype}")


@register(
    "SHAPE",
    dtypes=ALL_DTYPES,
    constraints=("output_dtype",),
    min_rank=1,
    output_dtypes={d: ("int32", "int64") for d in ALL_DTYPES},
)
def _b_shape(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    shape = draw_shape(draw, cfg, 1)  # a scalar's shape is an empty tensor, which LiteRT's Python API cannot return
    out_dt = cfg.output_dtype or draw(st.sampled_from(["int32", "int64"]))
    net = Net()
    xi = net.input("x", draw_any_values(draw, dtype, shape), raw_quant(draw, dtype))
    y = net.tensor("y", (len(shape),), out_dt)
    net.op(opcode, [xi], [y], out_type=out_dt.upper())
    return net.case([y], f"{opcode} {dtype} -> {out_dt}")


@register("TRANSPOSE", dtypes=ALL_DTYPES, min_rank=1)
def _b_transpose(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    shape = draw_shape(draw, cfg, 1)
    perm = list(draw(st.permutations(range(len(shape)))))
    perm = [p - len(shape) if draw(st.integers(0, 4)) == 4 else p for p in perm]
    q = raw_quant(draw, dtype)
    net = Net()
    xi = net.input("x", draw_any_values(draw, dtype, shape), q)
    pi = net.const("perm", np.array(perm, np.int32))
    y = net.tensor("y", [shape[p] for p in perm], dtype, q)
    net.op(opcode, [xi, pi], [y])
    return net.case([y], f"{opcode} {dtype}")


@register("PACK", dtypes=("int8", "uint8", "int16", "float32", "int32", "int64"))
def _b_pack(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    shape = draw_shape(draw, cfg, 0, max(0, cfg.max_rank - 1))
    n = draw(st.integers(1, 3))
    axis = draw(st.integers(-len(shape) - 1, len(shape)))
    pos = axis if axis >= 0 else axis + len(shape) + 1
    q = raw_quant(draw, dtype)
    net = Net()
    ins = []
    for k in range(n):
        v = draw_any_values(draw, dtype, shape)
        ins.append(net.const(f"c{k}", v, dtype, q) if draw(st.integers(0, 3)) == 3 else net.input(f"x{k}", v, q))
    y = net.tensor("y", (*shape[:pos], n, *shape[pos:]), dtype, q)
    net.op(opcode, ins, [y], values_count=n, axis=axis)
    return net.case([y], f"{opcode} {dtype}")


@register("UNPACK", dtypes=("int8", "uint8", "int16", "float32", "int32", "bool"), min_rank=1)
def _b_unpack(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    shape = draw_shape(draw, cfg, 1)
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    n = shape[axis]
    q = raw_quant(draw, dtype)
    out_shape = [d for k, d in enumerate(shape) if k != axis % len(shape)]
    net = Net()
    xi = net.input("x", draw_any_values(draw, dtype, shape), q)
    ys = [net.tensor(f"y{k}", out_shape, dtype, q) for k in range(n)]
    net.op(opcode, [xi], ys, num=n, axis=axis)
    return net.case(ys, f"{opcode} {dtype}")


@register("SPLIT", "SPLIT_V", dtypes=("int8", "uint8", "int16", "float32", "int32", "int64"), min_rank=1)
def _b_split(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    shape = list(draw_shape(draw, cfg, 1))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    num = draw(st.integers(1, 3))
    if opcode == "SPLIT":
        shape[axis] *= num
        sizes = [shape[axis] // num] * num
    else:
        sizes = [draw(st.integers(0, cfg.max_side)) for _ in range(num)]
        shape[axis] = sum(sizes)
    q = raw_quant(draw, dtype)
    net = Net()
    x = draw_any_values(draw, dtype, tuple(shape))
    outs = []
    for k, s in enumerate(sizes):
        o_shape = list(shape)
        o_shape[axis] = s
        outs.append(net.tensor(f"y{k}", o_shape, dtype, q))
    if opcode == "SPLIT":
        ai = net.const("axis", np.array(axis, draw(st.sampled_from(["int32", "int64"]))))
        xi = net.input("x", x, q)
        net.op(opcode, [ai, xi], outs, num_splits=num)
    else:
        spec = list(sizes)
        if draw(st.booleans()):
            spec[draw(st.integers(0, num - 1))] = -1
        xi = net.input("x", x, q)
        si = net.const("size_splits", np.array(spec, draw(st.sampled_from(["int32", "int64"]))))
        ai = net.const("axis", np.array([axis], np.int32))
        net.op(opcode, [xi, si, ai], outs, num_splits=num)
    return net.case(outs, f"{opcode} {dtype}")


@register("CONCATENATION", dtypes=ALL_DTYPES, min_rank=1)
def _b_concat(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    shape = list(draw_shape(draw, cfg, 1))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    n = draw(st.integers(1, 3))
    q_out = raw_quant(draw, dtype)
    net = Net()
    ins = []
    total = 0
    for k in range(n):
        s = list(shape)
        s[axis] = draw(st.integers(1, cfg.max_side))
        total += s[axis]
        if dtype == "int8":
            q = q_out  # int8 requires every input's parameters to equal the output's
        elif dtype in ("int16", "uint8"):
            q = q_out if draw(st.booleans()) else raw_quant(draw, dtype)  # int16: raw copy; uint8: rescaled
        else:
            q = None
        v = draw_any_values(draw, dtype, tuple(s))
        ins.append(net.const(f"c{k}", v, dtype, q) if draw(st.integers(0, 4)) == 4 else net.input(f"x{k}", v, q))
    out_shape = list(shape)
    out_shape[axis] = total
    y = net.tensor("y", out_shape, dtype, q_out)
    net.op(opcode, ins, [y], axis=axis)
    return net.case([y], f"{opcode} {dtype}")


@register("TILE", dtypes=ALL_DTYPES)
def _b_tile(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    shape = draw_shape(draw, cfg)
    mult = [draw(st.integers(1, 3)) for _ in shape]
    q = raw_quant(draw, dtype)
    net = Net()
    xi = net.input("x", draw_any_values(draw, dtype, shape), q)
    mi = net.const("multiples", np.array(mult, draw(st.sampled_from(["int32", "int64"]))).reshape(-1))
    y = net.tensor("y", [d * m for d, m in zip(shape, mult)], dtype, q)
    net.op(opcode, [xi, mi], [y])
    return net.case([y], f"{opcode} {dtype}")


@register("BROADCAST_TO", dtypes=ALL_DTYPES)
def _b_broadcast_to(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    target = draw_shape(draw, cfg)
    k = draw(st.integers(0, len(target)))
    in_shape = tuple(1 if draw(st.booleans()) else d for d in target[len(target) - k :])
    q = raw_quant(draw, dtype)
    net = Net()
    xi = net.input("x", draw_any_values(draw, dtype, in_shape), q)
    ti = net.const("shape", np.array(target, draw(st.sampled_from(["int32", "int64"]))).reshape(-1))
    y = net.tensor("y", target, dtype, q)
    net.b.add_operator(opcode, [xi, ti], [y], version=2)
    return net.case([y], f"{opcode} {dtype}")


@register("FILL", dtypes=ALL_DTYPES)
def _b_fill(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    dims = draw_shape(draw, cfg)
    q = raw_quant(draw, dtype)
    net = Net()
    di = net.const("dims", np.array(dims, draw(st.sampled_from(["int32", "int64"]))).reshape(-1))
    v = draw_any_values(draw, dtype, ())
    vi = net.const("value", v, dtype, q) if draw(st.booleans()) else net.input("value", v, q)
    y = net.tensor("y", dims, dtype, q)
    net.op(opcode, [di, vi], [y])
    return net.case([y], f"{opcode} {dtype}")


@register("ZEROS_LIKE", dtypes=("float32", "int32", "int64"))
def _b_zeros_like(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    shape = draw_shape(draw, cfg)
    net = Net()
    xi = net.input("x", draw_any_values(draw, dtype, shape))
    y = net.tensor("y", shape, dtype)
    net.b.add_operator(opcode, [xi], [y], options_type="ZerosLikeOptions")
    return net.case([y], f"{opcode} {dtype}")


_CAST_TYPES = ("int8", "uint8", "int16", "int32", "int64", "float32", "bool")


@register(
    "CAST",
    dtypes=ALL_DTYPES,
    constraints=("output_dtype",),
    output_dtypes={d: _CAST_TYPES for d in ALL_DTYPES},
)
def _b_cast(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    shape = draw_shape(draw, cfg)
    out_dt = cfg.output_dtype or draw(st.sampled_from(_CAST_TYPES))
    if dtype == "float32":
        x = draw_floats(draw, shape, -300.0, 300.0) if draw(st.booleans()) else draw_floats(draw, shape)
    else:
        x = draw_values(draw, dtype, shape)
    net = Net()
    xi = net.input("x", x)
    y = net.tensor("y", shape, out_dt)
    net.op(opcode, [xi], [y])
    return net.case([y], f"{opcode} {dtype} -> {out_dt}")


@register("SPACE_TO_DEPTH", "DEPTH_TO_SPACE", dtypes=("int8", "uint8", "float32", "int32", "int64"), min_rank=4)
def _b_space_depth(draw: st.DrawFn, opcode: str, dtype: str, cfg: OpConfig) -> Case:
    bs = draw(st.integers(1, 3))
    b = draw(st.integers(1, cfg.max_batch))
    h, w, c = (draw(st.integers(1, max(1, min(3, cfg.max_side)))) for _ in range(3))
    if opcode == "SPACE_TO_DEPTH":
        in_shape, out_shape = (b, h * bs, w * bs, c), (b, h, w, c * bs * bs)
    else:
        in_shape, out_shape = (b, h, w, c * bs * bs), (b, h * bs, w * bs, c)
    q = raw_quant(draw, dtype)
    net = Net()
    xi = net.input("x", draw_any_values(draw, dtype, in_shape), q)
    y = net.tensor("y", out_shape, dtype, q)
    net.op(opcode, [xi], [y], block_size=bs)
    return net.case([y], f"{opcode} {dtype}")
