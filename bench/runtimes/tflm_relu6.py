"""tflite-micro RELU6 / RELU int8 with different in/out quantization: candidate 'no requantization':
out = min(max(q, zp_in), six) with six = zp_in + round(6 / s_in) (saturated): raw input bytes, output quantization ignored, vs LiteRT REF.
Run with the tflite-micro venv (README.md)."""

import numpy as np
from rt import run
from tflm_rt import run_tflm

from refquant.tflite.builder import ModelBuilder


def main():
    rng = np.random.default_rng(41)
    miss = {}
    for _ in range(40):
        for op in ("RELU6", "RELU"):
            s_in, s_out = (float(np.float32(rng.uniform(0.01, 0.1))) for _ in range(2))
            zp_in, zp_out = (int(rng.integers(-100, 100)) for _ in range(2))
            b = ModelBuilder()
            x = b.add_input("x", (256,), "int8", scale=s_in, zero_point=zp_in)
            y = b.add_tensor("y", (256,), "int8", scale=s_out, zero_point=zp_out)
            b.add_operator(op, [x], [y])
            b.mark_output(y)
            m = b.build()
            q = np.arange(-128, 128).astype(np.int8)
            t = run_tflm(m, [q])[0].astype(np.int64)
            r = run(m, [q], "ref")[0][0].astype(np.int64)
            # tflite-micro activations_common.cc Relu6Prepare: six = FloatToQuantizedType(6.0f, INPUT scale, INPUT zp)
            hi = 127 if op == "RELU" else min(127, zp_in + int(np.floor(6 / np.float32(s_in) + 0.5)))
            cand = np.minimum(np.maximum(q.astype(np.int64), zp_in), hi)
            miss[op + " tflm!=ref"] = miss.get(op + " tflm!=ref", 0) + int((t != r).sum())
            miss[op + " tflm!=no-requant candidate"] = miss.get(op + " tflm!=no-requant candidate", 0) + int(
                (t != cand).sum()
            )
            miss[op + " elements"] = miss.get(op + " elements", 0) + 256
    print(miss)


if __name__ == "__main__":
    main()
