"""tflite-micro (PyPI wheel) FC / CONV / DEPTHWISE int8 requantization: tie rule and candidate formulas
(same random models as fc_requant.py; candidates from opt_fc_formula.py). Run with the tflite-micro venv (README.md)."""

import sys

import numpy as np
from fc_requant import accumulators, build
from opt_fc_formula import cands
from rt import run
from tflm_rt import run_tflm
from ties import model, rule_name

from refquant.quantization import quantize_multiplier


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    for op in ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D"):
        for eff in (0.5, 0.25, 0.125):
            m, xin, acc = model(op, "int8", eff, c=4)
            o = run_tflm(m, [xin])[0].astype(np.int64).ravel()
            r = run(m, [xin], "ref")[0][0].astype(np.int64).ravel()
            ok = (o > -128) & (o < 127)
            print(
                f"ties {op} int8 eff={eff}: tflm={rule_name(acc[ok], eff, o[ok])[0]} ref={rule_name(acc[ok], eff, r[ok])[0]}"
            )
    rng = np.random.default_rng(23)
    for op in ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D"):
        for pc in (False, True):
            miss = {}
            for _ in range(n):
                mdl, xin, p = build(rng, op, "int8", pc)
                t = run_tflm(mdl, [xin])[0]
                r = run(mdl, [xin], "ref")[0][0]
                acc = accumulators(op, xin, p)
                res = {}
                for c in range(acc.shape[-1]):
                    sw = p["s_w"][c if pc else 0]
                    eff = np.float64(np.float32(p["s_in"])) * np.float64(sw) / np.float64(np.float32(p["s_out"]))
                    if op == "FULLY_CONNECTED" and not pc:
                        # GetQuantizedConvolutionMultipler: float product s_in*s_w, then double division
                        eff = np.float64(np.float32(np.float32(p["s_in"]) * np.float32(sw))) / np.float64(
                            np.float32(p["s_out"])
                        )
                    M, sh = quantize_multiplier(float(eff))
                    for k, v in cands(acc[..., c], M, sh).items():
                        res.setdefault(k, np.zeros_like(acc))[..., c] = v
                for k, v in res.items():
                    miss[k] = miss.get(k, 0) + int((np.clip(v + p["zp_out"], -128, 127) != t).sum())
                miss["(tflm!=ref)"] = miss.get("(tflm!=ref)", 0) + int((t != r).sum())
                miss["elements"] = miss.get("elements", 0) + t.size
            print(f"random {op} int8 per_channel={pc}: {miss}")


if __name__ == "__main__":
    main()
