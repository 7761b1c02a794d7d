"""Optimized (no delegate) QUANTIZE / DEQUANTIZE: candidate formulas checked against LiteRT, exhaustive inputs.

DEQUANTIZE candidates:  a) f32(q - zp) * s   b) f32(q)*s - f32(zp)*s (two products)   c) fma(q, s, -zp*s)
QUANTIZE f32->q candidates: a) rint(x * f32(1/s)) + zp   b) round_half_away(x / s) + zp   c) rint(x / s) + zp
QUANTIZE q->q (requantize) candidates: MBQM variants on (q - zp_in) with QuantizeMultiplier(s_in/s_out)
"""

import sys

import numpy as np
from opt_fc_formula import cands
from unary_formula import one, sat

from refquant.quantization import quantize_multiplier

f32 = np.float32


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    rng = np.random.default_rng(13)
    miss = {}

    def add(k, v):
        miss[k] = miss.get(k, 0) + int(v)

    for _ in range(n):
        for dt in ("int8", "uint8"):
            info = np.iinfo(dt)
            q = np.arange(info.min, info.max + 1).astype(dt).reshape(1, 256)
            s = f32(rng.uniform(0.01, 0.1))
            zp = int(rng.integers(info.min, info.max + 1))
            r = one("DEQUANTIZE", dt, "float32", dict(scale=float(s), zero_point=zp), {}, q)
            qf = q.astype(f32)
            a = (q.astype(np.int32) - zp).astype(f32) * s
            b = (qf * s - (f32(zp) * s)).astype(f32)
            c = (qf.astype(np.float64) * np.float64(s) - np.float64(f32(f32(zp) * s))).astype(f32)
            for k, v in (("deq_a", a), ("deq_b", b), ("deq_c_fma", c)):
                add(f"DEQUANTIZE {dt} {k}", (v != r["opt"]).sum())
            add(f"DEQUANTIZE {dt} ref_is_a", (a != r["ref"]).sum())
            xs = np.concatenate([(np.arange(-140, 140) + 0.5) * s, rng.uniform(-150, 150, 232) * s]).astype(f32)
            xs = xs.reshape(1, -1)
            r = one("QUANTIZE", "float32", dt, {}, dict(scale=float(s), zero_point=zp), xs)
            inv = f32(1) / s
            ca = sat(np.rint((xs * inv).astype(f32)).astype(np.int64) + zp, dt)
            t = xs.astype(np.float64) / np.float64(s)
            cb = sat((np.sign(t) * np.floor(np.abs(t) + 0.5)).astype(np.int64) + zp, dt)
            cc = sat(np.rint((xs / s).astype(f32)).astype(np.int64) + zp, dt)
            for k, v in (("a_rint_mul_inv", ca), ("b_away_div", cb), ("c_rint_div", cc)):
                add(f"QUANTIZE f32->{dt} opt {k}", (v != r["opt"]).sum())
                add(f"QUANTIZE f32->{dt} ref {k}", (v != r["ref"]).sum())
            s_out = f32(s * rng.uniform(0.3, 3))
            zpo = int(rng.integers(info.min, info.max + 1))
            r = one(
                "QUANTIZE", dt, dt, dict(scale=float(s), zero_point=zp), dict(scale=float(s_out), zero_point=zpo), q
            )
            M, sh = quantize_multiplier(float(np.float64(s) / np.float64(s_out)))
            for k, v in cands(q.astype(np.int64) - zp, M, sh).items():
                add(f"QUANTIZE {dt}->{dt} opt {k}", (sat(v + zpo, dt) != r["opt"]).sum())
                add(f"QUANTIZE {dt}->{dt} ref {k}", (sat(v + zpo, dt) != r["ref"]).sum())
    for k, v in sorted(miss.items()):
        print(f"{k}: {v}")


if __name__ == "__main__":
    main()
