"""Where do the optimized kernels switch between NEON_MBQM (ties UP) and scalar MBQM (ties AWAY)?
Per-channel (or per-element) tie rule for: DEPTHWISE 3x3 kernels (centre weight 1), stride 1/2, depth_multiplier
1/2; QUANTIZE int8->int8 requantize over tensor sizes; MEAN uint8 axes {1,2}. A=away U=up E=even ?=undetermined.
"""

import numpy as np
from rt import run
from ties import rule_name

from refquant.tflite.builder import ModelBuilder


def tag(a, eff, o):
    names, nt = rule_name(a, eff, o)
    if nt == 0:
        return "-"
    return "E" if "half-even" in names else "U" if names == ["half-up"] else "A" if names == ["half-away"] else "?"


def dw(c, k=3, stride=1, dm=1, eff=0.25):
    b = ModelBuilder()
    s = 2.0**-4
    cout = c * dm
    x = b.add_input("x", (1, 16, 16, c), "int8", scale=s, zero_point=0)
    w = np.zeros((1, k, k, cout), np.int8)
    w[0, k // 2, k // 2, :] = 1
    wq = b.add_constant("w", w, scale=[s], zero_point=[0], quantized_dimension=3)
    bq = b.add_constant("b", np.zeros(cout, np.int32), scale=[s * s], zero_point=[0])
    oh = 16 // stride
    y = b.add_tensor("y", (1, oh, oh, cout), "int8", scale=s * s / eff, zero_point=0)
    b.add_operator(
        "DEPTHWISE_CONV_2D", [x, wq, bq], [y], padding="SAME", stride_w=stride, stride_h=stride, depth_multiplier=dm
    )
    b.mark_output(y)
    base = (np.arange(256) - 128).reshape(16, 16)
    xin = np.broadcast_to(base[None, :, :, None], (1, 16, 16, c)).astype(np.int8)
    m = b.build()
    # centre tap of output (i, j) is input (i*stride + pad_offset...); SAME with odd k: centre = i*stride
    pad = max((oh - 1) * stride + k - 16, 0) // 2
    idx = np.arange(oh) * stride - pad + k // 2
    acc = np.repeat(base[idx][:, idx][..., None], cout, axis=-1).astype(np.int64)
    res = {}
    for wname in ("ref", "opt"):
        o = run(m, [xin], wname)[0][0][0].astype(np.int64)
        res[wname] = "".join(tag(acc[..., ch].ravel(), eff, o[..., ch].ravel()) for ch in range(cout))
    return res


def requant(n):
    """QUANTIZE int8->int8 with ratio 0.25; inputs -6 (exact -1.5: UP -> -1, AWAY/EVEN -> -2) and -10
    (exact -2.5: AWAY -> -3, UP/EVEN -> -2). Per element: U (up), A (away), E (even)."""
    b = ModelBuilder()
    x = b.add_input("x", (n,), "int8", scale=0.25, zero_point=0)
    y = b.add_tensor("y", (n,), "int8", scale=1.0, zero_point=0)
    b.add_operator("QUANTIZE", [x], [y])
    b.mark_output(y)
    m = b.build()
    out = {}
    for wname in ("ref", "opt"):
        o6 = run(m, [np.full(n, -6, np.int8)], wname)[0][0].astype(np.int64)
        o10 = run(m, [np.full(n, -10, np.int8)], wname)[0][0].astype(np.int64)
        out[wname] = "".join(
            "U" if (a == -1 and b == -2) else "A" if (a == -2 and b == -3) else "E" if (a == -2 and b == -2) else "?"
            for a, b in zip(o6, o10)
        )
    return out


def mean_u8(c):
    b = ModelBuilder()
    x = b.add_input("x", (1, 1, 2, c), "uint8", scale=1.0, zero_point=0)
    ax = b.add_constant("axes", np.array([1, 2], np.int32))
    y = b.add_tensor("y", (1, 1, 1, c), "uint8", scale=1.0, zero_point=0)
    b.add_operator("MEAN", [x, ax], [y], keep_dims=True)
    b.mark_output(y)
    m = b.build()
    xin = np.zeros((1, 1, 2, c), np.uint8)
    xin[0, 0, 0, :] = 3 + 2 * (np.arange(c) % 50)
    xin[0, 0, 1, :] = 0  # mean = odd/2 -> tie
    S = xin.astype(np.int64).sum(axis=(1, 2)).ravel()
    out = {}
    for wname in ("ref", "opt"):
        o = run(m, [xin], wname)[0][0].ravel().astype(np.int64)
        out[wname] = "".join(tag(S[i : i + 1], 0.5, o[i : i + 1]) for i in range(c))
    return out


if __name__ == "__main__":
    for c in (4, 8, 12, 16, 20):
        print(f"DW 3x3 stride1 dm1 C={c:2d}", dw(c))
    for c in (8, 12):
        print(f"DW 3x3 stride2 dm1 C={c:2d}", dw(c, stride=2))
        print(f"DW 3x3 stride1 dm2 C={c:2d}", dw(c, dm=2))
        print(f"DW 5x5 stride1 dm1 C={c:2d}", dw(c, k=5))
    for n in (7, 8, 15, 16, 17, 20, 33):
        print(f"QUANTIZE int8->int8 n={n:2d}", requant(n))
    for c in (8, 17, 33):
        print(f"MEAN uint8 axes12 C={c:2d} (ties)", mean_u8(c))
