"""RESIZE_BILINEAR int8/uint8: XNNPACK (s8/u8-ibilinear, Q11 weights from src/indirection.c
xnn_indirection_init_resize_bilinear2d_hwc_q11) formula vs LiteRT default; REF and optimized compared too.

  legacy/align_corners: in_y = min(f32(y * scale_h), H-1)     half-pixel: in_y = clamp(f32(f32(y*scale_h) + f32(0.5*scale_h - 0.5)), 0, H-1)
  scale_h = f32(H - adj) / f32(OH - adj) (adj = 1 if align_corners and OH != 1)
  top = int(in_y), bottom = min(top+1, H-1), ay = lrintf((in_y - top) * 2048)    (x likewise)
  t = (tl << 11) + (tr - tl)*ax;  b = (bl << 11) + (br - bl)*ax;  acc = (t << 11) + (b - t)*ay;  out = (acc + 2^21) >> 22
"""

import sys

import numpy as np
from rt import delegated, run

from refquant.tflite.builder import ModelBuilder

f32 = np.float32


def coords(n_in, n_out, align, half):
    adj = 1 if (align and n_out != 1) else 0
    sc = f32(f32(n_in - adj) / f32(n_out - adj))
    o = np.arange(n_out).astype(f32)
    if align or not half:
        v = np.minimum((o * sc).astype(f32), f32(n_in - 1))
    else:
        off = f32(f32(0.5) * sc - f32(0.5))
        v = (o * sc).astype(f32) + off
        v = np.minimum(np.maximum(v.astype(f32), f32(0)), f32(n_in - 1))
    lo = v.astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    a = np.rint((v - lo.astype(f32)).astype(f32) * f32(2048)).astype(np.int64)
    return lo, hi, a


def xnn_resize(x, oh, ow, align, half):
    _, h, w, _ = x.shape
    yl, yh, ay = coords(h, oh, align, half)
    xl, xh, ax = coords(w, ow, align, half)
    x = x.astype(np.int64)
    tl = x[:, yl][:, :, xl]
    tr = x[:, yl][:, :, xh]
    bl = x[:, yh][:, :, xl]
    br = x[:, yh][:, :, xh]
    axb = ax[None, None, :, None]
    ayb = ay[None, :, None, None]
    t = (tl << 11) + (tr - tl) * axb
    b = (bl << 11) + (br - bl) * axb
    acc = (t << 11) + (b - t) * ayb
    return (acc + (1 << 21)) >> 22


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    rng = np.random.default_rng(17)
    st = {}
    for _ in range(n):
        for dt in ("int8", "uint8"):
            info = np.iinfo(dt)
            h, w = (int(v) for v in rng.integers(1, 9, 2))
            oh, ow = (int(v) for v in rng.integers(1, 17, 2))
            align = bool(rng.integers(0, 2))
            half = (not align) and bool(rng.integers(0, 2))
            b = ModelBuilder()
            x = b.add_input("x", (1, h, w, 3), dt, scale=0.05, zero_point=3)
            sz = b.add_constant("size", np.array([oh, ow], np.int32))
            y = b.add_tensor("y", (1, oh, ow, 3), dt, scale=0.05, zero_point=3)
            b.add_operator("RESIZE_BILINEAR", [x, sz], [y], align_corners=align, half_pixel_centers=half)
            b.mark_output(y)
            m = b.build()
            xin = rng.integers(info.min, info.max + 1, (1, h, w, 3)).astype(dt)
            ref, _ = run(m, [xin], "ref")
            xnn, it = run(m, [xin], "xnn")
            opt, _ = run(m, [xin], "opt")
            mode = "align" if align else "half" if half else "legacy"
            s = st.setdefault((dt, mode), dict(models=0, deleg=0, elems=0, formula=0, xnn_ref=0, opt_ref=0))
            s["models"] += 1
            if "DELEGATE" in delegated(it):
                s["deleg"] += 1
                s["formula"] += int((xnn_resize(xin, oh, ow, align, half) != xnn[0]).sum())
            s["elems"] += xnn[0].size
            s["xnn_ref"] += int((xnn[0] != ref[0]).sum())
            s["opt_ref"] += int((opt[0] != ref[0]).sum())
    for k, v in st.items():
        print(k, v)


if __name__ == "__main__":
    main()
