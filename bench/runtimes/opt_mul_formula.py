"""LiteRT optimized (no delegate) MUL int8/uint8: which requantization? Candidates as in opt_fc_formula.py,
applied to prod = (a - zp_a) * (b - zp_b) with (M, shift) = QuantizeMultiplier(f64(s_a)*f64(s_b)/f64(s_o))."""

import sys

import numpy as np
from binary_formula import build
from opt_fc_formula import cands
from rt import run

from refquant.quantization import quantize_multiplier


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    rng = np.random.default_rng(int(sys.argv[2]) if len(sys.argv) > 2 else 5)
    for dt in ("int8", "uint8"):
        info = np.iinfo(dt)
        miss = {}
        ex = []
        for _ in range(n):
            m, ins, (sa, za, sb, zb, so, zo) = build(rng, "MUL", dt)
            ref, _ = run(m, ins, "ref")
            opt, _ = run(m, ins, "opt")
            prod = (ins[0].astype(np.int64) - za) * (ins[1].astype(np.int64) - zb)
            eff = np.float64(np.float32(sa)) * np.float64(np.float32(sb)) / np.float64(np.float32(so))
            M, sh = quantize_multiplier(float(eff))
            cs = cands(prod, M, sh)
            small = np.abs(cs["mbqm_away"]) < 32000  # int16-representable requantized products
            miss["elements_in_int16_range"] = miss.get("elements_in_int16_range", 0) + int(small.sum())
            for k, v in cs.items():
                pred = np.clip(v + zo, info.min, info.max)
                miss[k] = miss.get(k, 0) + int((pred != opt[0]).sum())
                miss[k + "|int16range"] = miss.get(k + "|int16range", 0) + int(((pred != opt[0]) & small).sum())
            # int16-wrap model: sat16(v) + zo wraps in int16, then saturates to the output type
            v = np.clip(cs["mbqm_away"], -32768, 32767) + zo
            v = ((v + 32768) % 65536) - 32768
            pred = np.clip(v, info.min, info.max)
            miss["mbqm_sat16_wrapadd"] = miss.get("mbqm_sat16_wrapadd", 0) + int((pred != opt[0]).sum())
            d = opt[0] != ref[0]
            miss["(opt!=ref)"] = miss.get("(opt!=ref)", 0) + int(d.sum())
            if d.any() and len(ex) < 3:
                i = tuple(np.argwhere(d)[0])
                ex.append(
                    dict(
                        prod=int(prod[i]),
                        M=M,
                        shift=sh,
                        exact=float(prod[i] * eff),
                        zo=zo,
                        ref=int(ref[0][i]),
                        opt=int(opt[0][i]),
                    )
                )
        print(f"MUL {dt}: mismatches per candidate {miss}")
        for e in ex:
            print("   ", e)


if __name__ == "__main__":
    main()
