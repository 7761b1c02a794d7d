"""Optimized (no delegate) SUM (any axes) and MEAN (axes other than 4-D {1,2}+keep_dims) int8/uint8: the float
formula of optimized/reduce.h QuantizedMeanOrSum:
  scale = f32(s_in / s_out)
  SUM : out = sat(round_half_away(f32(f32(S) * scale + f32(f32(-zp_in * scale) * n))) + zp_out)
  MEAN: out = sat(round_half_away(f32(f32(f32(S) / f32(n)) * scale + f32(-zp_in * scale))) + zp_out)
(S = int32 sum of raw q). Usage: python opt_reduce_float.py N"""

import sys

import numpy as np
from rt import run

from refquant.tflite.builder import ModelBuilder

f32 = np.float32


def away(v):
    return np.where(v >= 0, np.floor(v + f32(0.5)), np.ceil(v - f32(0.5)))


def main():
    n_models = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    rng = np.random.default_rng(37)
    miss = {}
    for _ in range(n_models):
        for op in ("MEAN", "SUM"):
            for dt in ("int8", "uint8"):
                info = np.iinfo(dt)
                shape = tuple(int(v) for v in rng.integers(1, 7, 3))
                axes = sorted(set(int(a) for a in rng.choice(3, int(rng.integers(1, 3)), replace=False)))
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
                opt = run(m, [xin], "opt")[0][0].astype(np.int64)
                ref = run(m, [xin], "ref")[0][0].astype(np.int64)
                S = xin.astype(np.int64).sum(axis=tuple(axes), keepdims=True).astype(f32)
                n = int(np.prod([shape[a] for a in axes]))
                sc = f32(f32(s_in) / f32(s_out))
                with np.errstate(all="ignore"):
                    if op == "SUM":
                        bias = f32(f32(f32(-zp_in) * sc) * f32(n))
                        v = (S * sc).astype(f32) + bias
                    else:
                        bias = f32(f32(-zp_in) * sc)
                        v = ((S / f32(n)).astype(f32) * sc).astype(f32) + bias
                pred = np.clip(away(v.astype(f32)).astype(np.int64) + zp_out, info.min, info.max)
                k = f"{op} {dt}"
                miss[k + " elements"] = miss.get(k + " elements", 0) + opt.size
                miss[k + " float_formula_mismatch"] = miss.get(k + " float_formula_mismatch", 0) + int(
                    (pred != opt).sum()
                )
                miss[k + " opt!=ref"] = miss.get(k + " opt!=ref", 0) + int((opt != ref).sum())
    for k, v in sorted(miss.items()):
        print(k, v)


if __name__ == "__main__":
    main()
