"""TRANSPOSE_CONV int8 (VALID padding): the XNNPACK fp32 formula (as for CONV) vs the default interpreter, and
opt candidates. Usage: python tconv_formula.py N"""

import sys

import numpy as np
from fc_requant import xnn_formula
from opt_fc_formula import cands
from rt import delegated, run

from refquant.quantization import quantize_multiplier
from refquant.tflite.builder import ModelBuilder

f32 = np.float32


def main():
    rng = np.random.default_rng(47)
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    st = dict(models=0, deleg=0, elems=0, xnn_formula=0, xnn_ref=0, opt_ref=0)
    optmiss = {}
    for _ in range(n):
        pc = bool(rng.integers(0, 2))
        h, w_, cin, cout = 5, 5, int(rng.integers(1, 5)), 8
        k, s = int(rng.integers(1, 4)), int(rng.integers(1, 3))
        oh, ow = (h - 1) * s + k, (w_ - 1) * s + k
        s_in, s_out = float(f32(rng.uniform(0.01, 0.1))), float(f32(rng.uniform(0.02, 0.3)))
        zp_in, zp_out = int(rng.integers(-100, 100)), int(rng.integers(-100, 100))
        nsc = cout if pc else 1
        s_w = [float(f32(v)) for v in rng.uniform(0.002, 0.05, nsc)]
        W = rng.integers(-127, 128, (cout, k, k, cin)).astype(np.int8)
        bias = rng.integers(-2000, 2000, cout).astype(np.int32)
        b = ModelBuilder()
        osh = b.add_constant("oshape", np.array([1, oh, ow, cout], np.int32))
        wq = b.add_constant("w", W, scale=s_w, zero_point=[0] * nsc, quantized_dimension=0)
        x = b.add_input("x", (1, h, w_, cin), "int8", scale=s_in, zero_point=zp_in)
        bq = b.add_constant("b", bias, scale=[float(f32(s_in * v)) for v in s_w], zero_point=[0] * nsc)
        y = b.add_tensor("y", (1, oh, ow, cout), "int8", scale=s_out, zero_point=zp_out)
        b.add_operator("TRANSPOSE_CONV", [osh, wq, x, bq], [y], padding="VALID", stride_w=s, stride_h=s)
        b.mark_output(y)
        m = b.build()
        xin = rng.integers(-128, 128, (1, h, w_, cin)).astype(np.int8)
        ref = run(m, [xin], "ref")[0][0]
        xnn, it = run(m, [xin], "xnn")
        opt = run(m, [xin], "opt")[0][0]
        acc = np.zeros((1, oh, ow, cout), np.int64)
        xd = xin.astype(np.int64) - zp_in
        for i in range(h):
            for j in range(w_):
                for ky in range(k):
                    for kx in range(k):
                        acc[0, i * s + ky, j * s + kx, :] += W[:, ky, kx, :].astype(np.int64) @ xd[0, i, j, :]
        acc += bias
        st["models"] += 1
        st["elems"] += acc.size
        st["xnn_ref"] += int((xnn[0] != ref).sum())
        st["opt_ref"] += int((opt != ref).sum())
        if "DELEGATE" in delegated(it):
            st["deleg"] += 1
            st["xnn_formula"] += int((xnn_formula(acc, s_in, s_w, s_out, zp_out, -128, 127) != xnn[0]).sum())
        res = {}
        for c in range(cout):
            eff = np.float64(f32(s_in)) * np.float64(s_w[c if pc else 0]) / np.float64(f32(s_out))
            M, sh = quantize_multiplier(float(eff))
            for kk, v in cands(acc[..., c], M, sh).items():
                res.setdefault(kk, np.zeros_like(acc))[..., c] = v
        for kk, v in res.items():
            optmiss[kk] = optmiss.get(kk, 0) + int((np.clip(v + zp_out, -128, 127) != opt).sum())
    print("TRANSPOSE_CONV int8:", st)
    print("opt candidates mismatches:", optmiss)


if __name__ == "__main__":
    main()
