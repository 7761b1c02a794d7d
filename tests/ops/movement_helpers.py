"""Shared helpers of the shape/data-movement and quantize op tests: one-op models and random tensors."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st

from refquant.testing import TensorSpec, const, graph, model_bytes, operator, tensor

#: Every dtype the data-movement kernels copy.
ALL_DTYPES = ("int8", "uint8", "int16", "float32", "int32", "int64", "bool")
QUANT = ("int8", "uint8", "int16")


@dataclass
class In:
    """One operator input: a graph input (``const=False``) or a constant, with optional quantization."""

    value: np.ndarray
    const: bool = False
    quant: dict | None = None
    dtype: str | None = None


@dataclass
class Out:
    """One operator output: declared shape (LiteRT resizes it), dtype, quantization, shape signature."""

    dtype: str
    shape: tuple[int, ...] = (1,)
    quant: dict | None = None
    signature: tuple[int, ...] | None = None
    extra: dict = field(default_factory=dict)


def one_op(opcode: str, ins: list[In | None], outs: list[Out], **options) -> tuple[bytes, list[np.ndarray]]:
    """A model with one operator; returns (model bytes, the graph-input arrays in order). ``None`` = omitted."""
    specs: list[TensorSpec | None] = []
    feeds = []
    for k, spec in enumerate(ins):
        if spec is None:
            specs.append(None)
            continue
        q = spec.quant or {}
        dt = spec.dtype or np.asarray(spec.value).dtype.name
        if spec.const:
            specs.append(const(np.asarray(spec.value), dt, name=f"c{k}", **q))
        else:
            specs.append(tensor(np.shape(spec.value), dt, name=f"x{k}", **q))
            feeds.append(np.asarray(spec.value))
    inputs = [t for t in specs if t is not None and not t.is_constant]
    if not feeds:  # LiteRT's Python API needs a graph input: add an unused one
        inputs.append(tensor((1,), "float32", name="unused"))
        feeds.append(np.zeros(1, np.float32))
    outputs = [
        tensor(o.shape, o.dtype, name=f"y{j}", shape_signature=o.signature, **(o.quant or {}))
        for j, o in enumerate(outs)
    ]
    return model_bytes(graph([operator(opcode, specs, outputs, **options)], inputs=inputs, outputs=outputs)), feeds


def rand_array(rng: np.random.Generator, dtype: str, shape) -> np.ndarray:
    """Random values spanning the dtype (float32: normal values with some exact zeros and halves)."""
    shape = tuple(shape)
    if dtype == "bool":
        return rng.integers(0, 2, size=shape).astype(bool)
    if dtype in ("float32", "float16"):
        v = rng.standard_normal(shape) * 10 ** rng.uniform(-2, 3)
        mask = rng.random(shape) < 0.1
        v = np.where(mask, np.round(v * 2) / 2, v)
        return v.astype(dtype)
    info = np.iinfo(np.dtype(dtype))
    lo, hi = max(int(info.min), -(2**40)), min(int(info.max), 2**40)
    return rng.integers(lo, hi, size=shape, endpoint=True).astype(dtype)


def quant_for(rng: np.random.Generator, dtype: str) -> dict | None:
    """Random per-tensor quantization for a quantized dtype (int16: zero point 0); None otherwise."""
    if dtype not in QUANT:
        return None
    scale = float(10 ** rng.uniform(-4, -1))
    if dtype == "int16":
        zp = 0
    elif dtype == "int8":
        zp = int(rng.integers(-128, 128))
    else:
        zp = int(rng.integers(0, 256))
    return {"scale": scale, "zero_point": zp}


def shapes(draw, min_rank: int = 0, max_rank: int = 4, max_dim: int = 5, min_dim: int = 1) -> tuple[int, ...]:
    """Draw a small shape."""
    rank = draw(st.integers(min_rank, max_rank))
    return tuple(draw(st.integers(min_dim, max_dim)) for _ in range(rank))


seeds = st.integers(0, 2**32 - 1)
