"""Optimized (no delegate) MEAN (4-D, axes {1,2}, keep_dims) and SUM int8/uint8: candidate formulas.

MEAN axes {1,2} candidates (S = int32 sum of raw q over H*W, n = H*W):
  legacy:  bias = zp_out - trunc(f32(zp_in*s_in/s_out) +- 0.5);  (M, sh) = QM(f32(s_in / f32(n * s_out)))
           out = sat(MBQM_variant(S, M, sh) + bias)
SUM candidates: out = sat(MBQM_variant(S - n*zp_in, M, sh) + zp_out), (M, sh) = QM(s_in/s_out)
"""

import sys

import numpy as np
from opt_fc_formula import cands
from rt import run

from refquant.quantization import quantize_multiplier
from refquant.tflite.builder import ModelBuilder

f32 = np.float32


def main():
    n_models = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    rng = np.random.default_rng(31)
    miss = {}
    for _ in range(n_models):
        for op in ("MEAN", "SUM"):
            for dt in ("int8", "uint8"):
                info = np.iinfo(dt)
                shape = (
                    int(rng.integers(1, 3)),
                    int(rng.integers(1, 9)),
                    int(rng.integers(1, 9)),
                    int(rng.integers(1, 20)),
                )
                axes = [1, 2]
                s_in = float(f32(rng.uniform(0.01, 0.1)))
                s_out = float(f32(s_in * rng.uniform(0.5, 2) * (1 if op == "MEAN" else 8)))
                zp_in, zp_out = (int(rng.integers(info.min, info.max + 1)) for _ in range(2))
                b = ModelBuilder()
                x = b.add_input("x", shape, dt, scale=s_in, zero_point=zp_in)
                ax = b.add_constant("axes", np.array(axes, np.int32))
                y = b.add_tensor("y", (shape[0], 1, 1, shape[3]), dt, scale=s_out, zero_point=zp_out)
                b.add_operator(op, [x, ax], [y], keep_dims=True)
                b.mark_output(y)
                m = b.build()
                xin = rng.integers(info.min, info.max + 1, shape).astype(dt)
                opt = run(m, [xin], "opt")[0][0].astype(np.int64)
                S = xin.astype(np.int64).sum(axis=(1, 2), keepdims=True)
                n = shape[1] * shape[2]
                if op == "MEAN":
                    # optimized/integer_ops/mean.h (int8) and optimized_ops::Mean (uint8), all in float32:
                    temp = f32(f32(f32(zp_in) * f32(s_in)) / f32(s_out))
                    temp = f32(temp + f32(0.5)) if temp > 0 else f32(temp - f32(0.5))
                    bias = zp_out - int(temp)  # static_cast<int32_t>: truncation
                    real = f32(f32(s_in) / f32(f32(n) * f32(s_out)))
                    M, sh = quantize_multiplier(float(real))
                    base = S
                else:
                    bias = zp_out
                    M, sh = quantize_multiplier(float(np.float64(f32(s_in)) / np.float64(f32(s_out))))
                    base = S - n * zp_in
                cs = cands(base, M, sh)
                if op == "MEAN" and dt == "int8":
                    # channels [0, 16*floor(C/16)) take the NEON (neon_2_sse) path, the rest the scalar MBQM
                    c16 = (shape[3] // 16) * 16
                    mix = cs["mbqm_away"].copy()
                    mix[..., :c16] = cs["srdhm_up"][..., :c16]
                    cs["blocks16_up_rest_away"] = mix
                for k, v in cs.items():
                    key = f"{op} {dt} {k}"
                    miss[key] = miss.get(key, 0) + int((np.clip(v + bias, info.min, info.max) != opt).sum())
                miss[f"{op} {dt} elements"] = miss.get(f"{op} {dt} elements", 0) + opt.size
    for k, v in sorted(miss.items()):
        print(k, v)


if __name__ == "__main__":
    main()
