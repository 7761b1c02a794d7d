"""LiteRT optimized (no delegate) FULLY_CONNECTED / CONV_2D / DEPTHWISE int8|uint8: find its requantization.

Candidates (M, shift) = QuantizeMultiplier(f64(s_in)*f64(s_w)/f64(s_out)) (TFLite's double-precision multiplier):
  mbqm_away : TFLite MultiplyByQuantizedMultiplier (SRDHM, then RoundingDivideByPOT ties away from zero)
  srdhm_up  : SRDHM (ties away) then right shift with ties toward +inf  ((x + 2^(e-1)) >> e)
  up_up     : (x*M + 2^30) >> 31 then ties-up shift
  single_up : (x*M*2^left + 2^(30+right)) >> (31+right)          (ruy reference ApplyMultiplier, one rounding)
Usage: python opt_fc_formula.py N OP DTYPE PER_CHANNEL
"""

import sys

import numpy as np
from fc_requant import accumulators, build
from rt import run

from refquant.quantization import quantize_multiplier


def _div(v):  # C++ integer division by 2^31 (truncation toward zero)
    q = np.abs(v) >> 31
    return np.where(v < 0, -q, q)


def cands(acc, m, sh):
    acc = acc.astype(np.int64)
    left = max(sh, 0)
    right = max(-sh, 0)
    x = acc * (1 << left)
    ab = x * m
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    h = _div(ab + nudge)
    out = {}
    if right:
        mask = (1 << right) - 1
        rem = h & mask
        thr = (mask >> 1) + (h < 0)
        out["mbqm_away"] = (h >> right) + (rem > thr)
        out["srdhm_up"] = (h + (1 << (right - 1))) >> right
        hu = (ab + (1 << 30)) >> 31
        out["up_up"] = (hu + (1 << (right - 1))) >> right
    else:
        out["mbqm_away"] = h
        out["srdhm_up"] = h
        out["up_up"] = (ab + (1 << 30)) >> 31
    out["single_up"] = (ab + (1 << (30 + right))) >> (31 + right)
    return out


def main():
    n, op, dt, pc = int(sys.argv[1]), sys.argv[2], sys.argv[3], bool(int(sys.argv[4]))
    rng = np.random.default_rng(7)
    info = np.iinfo(dt)
    miss = {}
    tot = 0
    for _ in range(n):
        model, xin, p = build(rng, op, dt, pc)
        ref, _ = run(model, [xin], "ref")
        opt, _ = run(model, [xin], "opt")
        acc = accumulators(op, xin, p)
        sw = np.asarray(p["s_w"], np.float64)
        res = {}
        for c in range(acc.shape[-1]):
            s = sw[c if pc else 0]
            eff = np.float64(np.float32(p["s_in"])) * s / np.float64(np.float32(p["s_out"]))
            m, sh = quantize_multiplier(float(eff))
            for k, v in cands(acc[..., c], m, sh).items():
                res.setdefault(k, np.zeros_like(acc))[..., c] = v
        tot += acc.size
        for k, v in res.items():
            pred = np.clip(v + p["zp_out"], info.min, info.max)
            miss[k] = miss.get(k, 0) + int((pred != opt[0]).sum())
        miss["(opt!=ref)"] = miss.get("(opt!=ref)", 0) + int((opt[0] != ref[0]).sum())
    print(f"{op} {dt} per_channel={pc} elements={tot} mismatches per candidate: {miss}")


if __name__ == "__main__":
    main()
