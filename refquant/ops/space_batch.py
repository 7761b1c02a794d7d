"""SPACE_TO_BATCH_ND and BATCH_TO_SPACE_ND: LiteRT's reference kernels (raw copies).

``space_to_batch_nd.cc`` / ``reference_ops::SpaceToBatchND`` and ``batch_to_space_nd.cc`` /
``reference_ops::BatchToSpaceND``, for 4-D NHWC inputs and 3-D NHC inputs (treated as NH1C with a
single block dimension). SPACE_TO_BATCH_ND pads with the output zero point for 8-bit types (LiteRT
``memset``s the byte ``zp & 0xFF``), 0 for int16 (whose zero point must be 0) and 0 for 32/64-bit
types. Quantized uint8/int8/int16 tensors need equal input and output (scale, zero point).

refquant rejects block sizes below 1 and negative paddings, which LiteRT does not check
(TensorFlow forbids them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import OpContext
from .movement import (
    MovementData,
    contiguous,
    int_vector,
    legacy_params,
    require_output_dtype,
    require_same_params,
    require_zero_zp,
)

__all__ = ["SpaceToBatchData", "BatchToSpaceData", "prepare_space_to_batch_nd", "prepare_batch_to_space_nd"]

_TYPES = ("int8", "uint8", "int16", "int32", "int64", "float32", "bool")


def _common(ctx: OpContext, what: str) -> tuple[tuple[int, int, int, int], list[int], list[int]]:
    """Checks shared by both ops; returns the NHWC view of the input, block shape and the pairs matrix."""
    ctx.check_counts(3, 1)
    x = ctx.input(0)
    out = ctx.output(0)
    ctx.check_dtype(x, _TYPES, "input")
    require_output_dtype(ctx, out, x.dtype)
    rank = len(x.shape)
    if rank not in (3, 4):
        raise ctx.error(f"input rank {rank}; expected 3 or 4", x)
    if x.dtype in ("uint8", "int8", "int16"):
        require_same_params(ctx, x, out, "input")
    if x.dtype == "int16":
        require_zero_zp(ctx, x, out)
    spatial = rank - 2
    bs_t, pr_t = ctx.input(1), ctx.input(2)
    ctx.check_dtype(bs_t, ("int32",), "block_shape")
    ctx.check_dtype(pr_t, ("int32",), what)
    if bs_t.shape != (spatial,):
        raise ctx.error(f"block_shape has shape {list(bs_t.shape)}; expected [{spatial}]", bs_t)
    if pr_t.shape != (spatial, 2):
        raise ctx.error(f"{what} has shape {list(pr_t.shape)}; expected [{spatial}, 2]", pr_t)
    block = int_vector(ctx, 1, "block_shape", ("int32",))
    pairs = int_vector(ctx, 2, what, ("int32",))
    if any(b < 1 for b in block):
        raise ctx.error(f"block_shape {block} must be >= 1", bs_t)
    if any(p < 0 for p in pairs):
        raise ctx.error(f"{what} {pairs} must be >= 0", pr_t)
    if rank == 3:
        n, h, c = x.shape
        nhwc = (n, h, 1, c)
        block = block + [1]
        pairs = pairs + [0, 0]
    else:
        nhwc = x.shape  # type: ignore[assignment]
    return nhwc, block, pairs  # type: ignore[return-value]


@dataclass(frozen=True)
class SpaceToBatchData(MovementData):
    """SPACE_TO_BATCH_ND: pad H and W, cut them into blocks and move the block offsets into the batch.

    ``out[(sh*bw + sw)*N + b, oh, ow] = padded[b, oh*bh + sh, ow*bw + sw]``.
    """

    #: NHWC view of the input.
    nhwc: tuple[int, int, int, int] = (1, 1, 1, 1)
    #: (block height, block width).
    block: tuple[int, int] = (1, 1)
    #: ((top, bottom), (left, right)) padding.
    paddings: tuple[tuple[int, int], tuple[int, int]] = ((0, 0), (0, 0))
    #: The byte pattern LiteRT memsets into padded positions (8-bit zero point, else 0).
    pad_byte: int = 0

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """The rearranged tensor."""
        x = inputs[0]
        assert x is not None
        n, h, w, c = self.nhwc
        (pt, pb), (pl, pr) = self.paddings
        bh, bw = self.block
        xa = np.asarray(x).reshape(n, h, w, c)
        fill = np.frombuffer(bytes([self.pad_byte]) * xa.dtype.itemsize, dtype=xa.dtype)[0]
        padded = np.full((n, h + pt + pb, w + pl + pr, c), fill, dtype=xa.dtype)
        padded[:, pt : pt + h, pl : pl + w] = xa
        hp, wp = (h + pt + pb) // bh, (w + pl + pr) // bw
        y = padded.reshape(n, hp, bh, wp, bw, c).transpose(2, 4, 0, 1, 3, 5)
        return [contiguous(y).reshape(self.output_shapes[0])]


def prepare_space_to_batch_nd(ctx: OpContext) -> SpaceToBatchData:
    """SPACE_TO_BATCH_ND (LiteRT ``space_to_batch_nd.cc``, REF): int32 block_shape [S] and paddings [S, 2].

    Each padded spatial size must be a multiple of its block size.
    """
    (n, h, w, c), block, pairs = _common(ctx, "paddings")
    x = ctx.input(0)
    bh, bw = block
    pt, pb, pl, pr = pairs
    for size, b, k in ((h + pt + pb, bh, 0), (w + pl + pr, bw, 1)):
        if size % b:
            raise ctx.error(f"padded spatial dimension {k} of size {size} is not a multiple of block size {b}")
    if len(x.shape) == 3:
        shape: tuple[int, ...] = (n * bh, (h + pt + pb) // bh, c)
    else:
        shape = (n * bh * bw, (h + pt + pb) // bh, (w + pl + pr) // bw, c)
    pad_byte = legacy_params(ctx.output(0))[1] & 0xFF if x.dtype in ("uint8", "int8", "bool") else 0
    return SpaceToBatchData(
        (shape,),
        (x.dtype,),
        nhwc=(n, h, w, c),
        block=(bh, bw),
        paddings=((pt, pb), (pl, pr)),
        pad_byte=pad_byte,
    )


@dataclass(frozen=True)
class BatchToSpaceData(MovementData):
    """BATCH_TO_SPACE_ND: move batch blocks back into H and W, then crop.

    ``full[b, ih*bh + sh, iw*bw + sw] = in[(sh*bw + sw)*N' + b, ih, iw]``; the output is ``full`` cropped.
    """

    #: NHWC view of the input.
    nhwc: tuple[int, int, int, int] = (1, 1, 1, 1)
    #: (block height, block width).
    block: tuple[int, int] = (1, 1)
    #: (top, left) crop.
    crop: tuple[int, int] = (0, 0)

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """The rearranged, cropped tensor."""
        x = inputs[0]
        assert x is not None
        n, h, w, c = self.nhwc
        bh, bw = self.block
        nb = n // (bh * bw)
        full = np.asarray(x).reshape(bh, bw, nb, h, w, c).transpose(2, 3, 0, 4, 1, 5).reshape(nb, h * bh, w * bw, c)
        out = self.output_shapes[0]
        ho = out[1]
        wo = out[2] if len(out) == 4 else 1
        ct, cl = self.crop
        return [contiguous(full[:, ct : ct + ho, cl : cl + wo]).reshape(out)]


def prepare_batch_to_space_nd(ctx: OpContext) -> BatchToSpaceData:
    """BATCH_TO_SPACE_ND (LiteRT ``batch_to_space_nd.cc``, REF): int32 block_shape [S] and crops [S, 2] (>= 0).

    The batch must be a multiple of the block volume; cropped sizes must not be negative.
    """
    (n, h, w, c), block, pairs = _common(ctx, "crops")
    x = ctx.input(0)
    bh, bw = block
    ct, cb, cl, cr = pairs
    if n % (bh * bw):
        raise ctx.error(f"batch {n} is not a multiple of the block volume {bh * bw}", x)
    ho, wo = h * bh - ct - cb, w * bw - cl - cr
    if ho < 0 or wo < 0:
        raise ctx.error(f"crops {pairs} exceed the spatial size {h * bh}x{w * bw}", ctx.input(2))
    nb = n // (bh * bw)
    shape: tuple[int, ...] = (nb, ho, c) if len(x.shape) == 3 else (nb, ho, wo, c)
    return BatchToSpaceData((shape,), (x.dtype,), nhwc=(n, h, w, c), block=(bh, bw), crop=(ct, cl))
