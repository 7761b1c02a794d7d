"""MEAN / SUM int8+uint8 over random axes: XNNPACK formula (src/operators/reduce-nd.c: int32 sum of raw q, then the
reference int32->q convert with inv_scale' = f32(s_in/s_out) [* f32(1/n) for MEAN] and
zp' = f32(zp_out) - f32(n*zp_in) * inv_scale'):   out = sat(nearbyint(f32(f32(S) * inv_scale') + zp'))
Also compares REF and optimized. Usage: python mean_formula.py N"""

import sys

import numpy as np
from rt import delegated, run

from refquant.tflite.builder import ModelBuilder

f32 = np.float32


def pred(x, axes, s_in, zp_in, s_out, zp_out, mean, dt, fma=False):
    S = x.astype(np.int64).sum(axis=tuple(axes), keepdims=True)
    n = int(np.prod([x.shape[a] for a in axes]))
    sc = f32(f32(s_in) / f32(s_out))
    if mean:
        sc = f32(sc * f32(f32(1) / f32(n)))
    zp = f32(f32(zp_out) - f32(f32(n * zp_in) * sc))
    if fma:
        v = (S.astype(np.float64) * np.float64(sc) + np.float64(zp)).astype(f32)
    else:
        v = (S.astype(f32) * sc).astype(f32) + zp
    i = np.iinfo(dt)
    return np.clip(np.rint(v), i.min, i.max).astype(np.int64)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    rng = np.random.default_rng(29)
    st = {}
    for _ in range(n):
        for op in ("MEAN", "SUM"):
            for dt in ("int8", "uint8"):
                info = np.iinfo(dt)
                shape = tuple(int(v) for v in rng.integers(1, 9, 4))
                axes = sorted(set(int(a) for a in rng.choice(4, int(rng.integers(1, 4)), replace=False)))
                if rng.integers(0, 2):
                    axes = [1, 2]
                s_in = float(f32(rng.uniform(0.01, 0.1)))
                s_out = float(f32(s_in * rng.uniform(0.5, 2) * (1 if op == "MEAN" else 8)))
                zp_in, zp_out = (int(rng.integers(info.min, info.max + 1)) for _ in range(2))
                b = ModelBuilder()
                x = b.add_input("x", shape, dt, scale=s_in, zero_point=zp_in)
                ax = b.add_constant("axes", np.array(axes, np.int32))
                oshape = tuple(1 if i in axes else d for i, d in enumerate(shape))
                y = b.add_tensor("y", oshape, dt, scale=s_out, zero_point=zp_out)
                b.add_operator(op, [x, ax], [y], keep_dims=True)
                b.mark_output(y)
                m = b.build()
                xin = rng.integers(info.min, info.max + 1, shape).astype(dt)
                ref, _ = run(m, [xin], "ref")
                xnn, it = run(m, [xin], "xnn")
                opt, _ = run(m, [xin], "opt")
                k = (op, dt, "axes12" if axes == [1, 2] else "other")
                s = st.setdefault(k, dict(models=0, deleg=0, elems=0, formula=0, formula_fma=0, xnn_ref=0, opt_ref=0))
                s["models"] += 1
                s["elems"] += ref[0].size
                s["opt_ref"] += int((opt[0] != ref[0]).sum())
                if "DELEGATE" in delegated(it):
                    s["deleg"] += 1
                    s["xnn_ref"] += int((xnn[0] != ref[0]).sum())
                    s["formula"] += int((pred(xin, axes, s_in, zp_in, s_out, zp_out, op == "MEAN", dt) != xnn[0]).sum())
                    s["formula_fma"] += int(
                        (pred(xin, axes, s_in, zp_in, s_out, zp_out, op == "MEAN", dt, True) != xnn[0]).sum()
                    )
    for k, v in sorted(st.items()):
        print(k, v)


if __name__ == "__main__":
    main()
