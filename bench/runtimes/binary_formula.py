"""ADD / SUB / MUL int8+uint8: XNNPACK formula check (and REF / optimized differences).

XNNPACK ADD/SUB (src/microparams-init.c xnn_init_qs8_add_minmax_scalar_params + qs8-vadd kernels):
    ra = f32(s_a)/f32(s_o), rb = +-f32(s_b)/f32(s_o)  (SUB: rb negative)
    shift = 20 - floor_log2(max(|ra|,|rb|));  ma = lrintf(|ra| * 2^shift) (sign of ra), mb likewise
    bias = 2^(shift-1) - ma*zp_a - mb*zp_b
    out = clamp(((bias + a*ma + b*mb) >> shift) + zp_o, lo, hi)           (arithmetic shift: ties toward +inf)
XNNPACK MUL (xnn_init_qs8_mul_minmax_scalar_params + qs8-vmul fp32 kernels):
    scale = f32(f32(s_a*s_b)/s_o);  out = clamp(rint(f32((a-zp_a)*(b-zp_b)) * scale) + zp_o, lo, hi)
Activation bounds (XNNPACK): lo/hi = lrintf(clamp(act_min/s_o + zp_o)) (xnn_qs8_quantize, float32, ties to even).
Usage: python binary_formula.py N
"""

import sys

import numpy as np
from rt import delegated, run

from refquant.tflite.builder import ModelBuilder

f32 = np.float32


def xnn_add(a, b, sa, za, sb, zb, so, zo, lo, hi, sub=False):
    ra = f32(sa) / f32(so)
    rb = f32(sb) / f32(so)
    if sub:
        rb = -rb
    mx = max(abs(ra), abs(rb))
    e = int(np.array(mx, f32).view(np.uint32) >> 23) - 127
    shift = 20 - e
    ma = int(np.rint(f32(abs(ra)) * f32(2.0**shift))) * (1 if ra >= 0 else -1)
    mb = int(np.rint(f32(abs(rb)) * f32(2.0**shift))) * (1 if rb >= 0 else -1)
    bias = (1 << (shift - 1)) - ma * za - mb * zb
    acc = bias + a.astype(np.int64) * ma + b.astype(np.int64) * mb
    return np.clip((acc >> shift) + zo, lo, hi)


def xnn_mul(a, b, sa, za, sb, zb, so, zo, lo, hi):
    scale = f32(f32(f32(sa) * f32(sb)) / f32(so))
    acc = (a.astype(np.int64) - za) * (b.astype(np.int64) - zb)
    v = acc.astype(f32) * scale
    return np.clip(np.rint(v).astype(np.int64) + zo, lo, hi)


def build(rng, op, dt):
    info = np.iinfo(dt)
    sa, sb = (float(f32(rng.uniform(0.002, 0.2))) for _ in range(2))
    so = float(f32(rng.uniform(0.005, 0.4)))
    za, zb, zo = (int(rng.integers(info.min + 10, info.max - 10)) for _ in range(3))
    shape = (1, 16, 16, 4)
    b = ModelBuilder()
    x = b.add_input("a", shape, dt, scale=sa, zero_point=za)
    y = b.add_input("b", shape, dt, scale=sb, zero_point=zb)
    o = b.add_tensor("o", shape, dt, scale=so, zero_point=zo)
    b.add_operator(op, [x, y], [o])
    b.mark_output(o)
    A = rng.integers(info.min, info.max + 1, shape).astype(dt)
    B = rng.integers(info.min, info.max + 1, shape).astype(dt)
    return b.build(), [A, B], (sa, za, sb, zb, so, zo)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    rng = np.random.default_rng(3)
    for op in ("ADD", "SUB", "MUL"):
        for dt in ("int8", "uint8"):
            info = np.iinfo(dt)
            tot = bad = xr = orf = nd = 0
            ex = None
            for _ in range(n):
                m, ins, (sa, za, sb, zb, so, zo) = build(rng, op, dt)
                try:
                    ref, _ = run(m, ins, "ref")
                    xnn, it = run(m, ins, "xnn")
                    opt, _ = run(m, ins, "opt")
                except Exception as e:  # noqa: BLE001
                    print("error", e)
                    continue
                if "DELEGATE" not in delegated(it):
                    nd += 1
                    continue
                if op == "MUL":
                    pred = xnn_mul(ins[0], ins[1], sa, za, sb, zb, so, zo, info.min, info.max)
                else:
                    pred = xnn_add(ins[0], ins[1], sa, za, sb, zb, so, zo, info.min, info.max, sub=op == "SUB")
                tot += pred.size
                bad += int((pred != xnn[0]).sum())
                d = xnn[0] != ref[0]
                xr += int(d.sum())
                orf += int((opt[0] != ref[0]).sum())
                if d.any() and ex is None:
                    i = tuple(np.argwhere(d)[0])
                    ex = dict(
                        a=int(ins[0][i]),
                        b=int(ins[1][i]),
                        sa=sa,
                        za=za,
                        sb=sb,
                        zb=zb,
                        so=so,
                        zo=zo,
                        ref=int(ref[0][i]),
                        xnn=int(xnn[0][i]),
                        opt=int(opt[0][i]),
                    )
            print(
                f"{op} {dt}: models={n} not_delegated={nd} elements={tot} xnn_formula_mismatch={bad} "
                f"xnn_vs_ref={xr} opt_vs_ref={orf}\n   example xnn!=ref: {ex}"
            )


if __name__ == "__main__":
    main()
