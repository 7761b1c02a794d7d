"""tflite-micro SUM / MEAN int8 (random axes): candidates
  SUM : sat(R(S - n*zp_in, M, s) + zp_out), (M, s) = QM(s_in/s_out)        R in {MBQM, NEON_MBQM, single_up}
Run with the tflite-micro venv (README.md)."""

import numpy as np
from opt_fc_formula import cands
from tflm_rt import run_tflm

from refquant.quantization import quantize_multiplier
from refquant.tflite.builder import ModelBuilder

f32 = np.float32


def main():
    rng = np.random.default_rng(43)
    miss = {}
    for _ in range(60):
        shape = tuple(int(v) for v in rng.integers(1, 7, 3))
        axes = sorted(set(int(a) for a in rng.choice(3, int(rng.integers(1, 3)), replace=False)))
        s_in = float(f32(rng.uniform(0.01, 0.1)))
        s_out = float(f32(s_in * rng.uniform(4, 16)))
        zp_in, zp_out = (int(rng.integers(-128, 128)) for _ in range(2))
        b = ModelBuilder()
        x = b.add_input("x", shape, "int8", scale=s_in, zero_point=zp_in)
        ax = b.add_constant("axes", np.array(axes, np.int32))
        oshape = tuple(1 if i in axes else d for i, d in enumerate(shape))
        y = b.add_tensor("y", oshape, "int8", scale=s_out, zero_point=zp_out)
        b.add_operator("SUM", [x, ax], [y], keep_dims=True)
        b.mark_output(y)
        xin = rng.integers(-128, 128, shape).astype(np.int8)
        try:
            t = run_tflm(b.build(), [xin])[0].astype(np.int64)
        except Exception:  # noqa: BLE001
            miss["errors"] = miss.get("errors", 0) + 1
            continue
        S = xin.astype(np.int64).sum(axis=tuple(axes), keepdims=True)
        n = int(np.prod([shape[a] for a in axes]))
        M, sh = quantize_multiplier(float(np.float64(f32(s_in)) / np.float64(f32(s_out))))
        for k, v in cands(S - n * zp_in, M, sh).items():
            miss[k] = miss.get(k, 0) + int((np.clip(v + zp_out, -128, 127) != t.reshape(v.shape)).sum())
        miss["elements"] = miss.get("elements", 0) + t.size
    print("TFLM SUM int8 mismatches per candidate:", miss)


if __name__ == "__main__":
    main()
