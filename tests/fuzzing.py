"""Seeded mutations of .tflite bytes for robustness tests (used by tests/tflite/test_fuzz_reader.py and tests/fuzz_pipeline.py).

Mutation kinds: bit flips, truncations, 4-byte words overwritten with boundary values, offsets
redirected to other places in the file, byte ranges duplicated over other ranges.
"""

from __future__ import annotations

import struct

import numpy as np

BOUNDARY_WORDS = (0, 1, 2, 3, 4, 7, 8, 16, 255, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFE, 0x10000)
KINDS = ("bitflip", "truncate", "word", "redirect", "duplicate", "multi")


def mutate(data: bytes, rng: np.random.Generator, kind: str | None = None) -> tuple[bytes, str]:
    """One mutation of ``data``; returns the mutated bytes and a description."""
    kind = kind or KINDS[int(rng.integers(len(KINDS)))]
    b = bytearray(data)
    n = len(b)
    if n < 8:
        return data, "unchanged (too short to mutate)"
    if kind == "bitflip":
        k = int(rng.integers(1, 9))
        where = rng.integers(0, n, k)
        for p in where:
            b[int(p)] ^= 1 << int(rng.integers(8))
        return bytes(b), f"bitflip x{k} at {where.tolist()[:3]}"
    if kind == "truncate":
        cut = int(rng.integers(0, n))
        return bytes(b[:cut]), f"truncate to {cut}"
    if kind == "word":
        p = int(rng.integers(0, max(n - 4, 1))) & ~3
        v = int(BOUNDARY_WORDS[int(rng.integers(len(BOUNDARY_WORDS)))])
        b[p : p + 4] = struct.pack("<I", v)
        return bytes(b), f"word {v:#x} at {p}"
    if kind == "redirect":
        p = int(rng.integers(0, max(n - 4, 1))) & ~3
        target = int(rng.integers(0, n))
        b[p : p + 4] = struct.pack("<I", (target - p) & 0xFFFFFFFF)
        return bytes(b), f"offset at {p} -> {target}"
    if kind == "duplicate":
        length = int(rng.integers(4, 64))
        src = int(rng.integers(0, max(n - length, 1)))
        dst = int(rng.integers(0, max(n - length, 1)))
        b[dst : dst + length] = b[src : src + length]
        return bytes(b), f"copy {length} bytes {src} -> {dst}"
    out = data
    descs = []
    for _ in range(int(rng.integers(2, 5))):
        out, d = mutate(out, rng, KINDS[int(rng.integers(len(KINDS) - 1))])
        descs.append(d)
    return out, "; ".join(descs)
