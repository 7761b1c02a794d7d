"""DEQUANTIZE int8/uint8 -> float in the optimized kernel: which flat elements follow f32(q)*s - f32(zp)*s
('B', the NEON block formula) and which follow f32(q - zp)*s ('R', ref), for sizes around the block."""

import numpy as np
from rt import run

from refquant.tflite.builder import ModelBuilder

f32 = np.float32


def main():
    rng = np.random.default_rng(53)
    for dt in ("int8", "uint8"):
        info = np.iinfo(dt)
        for n in (7, 8, 9, 15, 16, 17, 33):
            # pick a scale / zp / value where the two formulas differ, then replicate it n times
            for _ in range(10000):
                s = f32(rng.uniform(0.01, 0.1))
                zp = int(rng.integers(info.min, info.max + 1))
                q = int(rng.integers(info.min, info.max + 1))
                blk = f32(f32(q) * s) - f32(f32(zp) * s)
                ref = f32(q - zp) * s
                if blk != ref:
                    break
            b = ModelBuilder()
            x = b.add_input("x", (n,), dt, scale=float(s), zero_point=zp)
            y = b.add_tensor("y", (n,), "float32")
            b.add_operator("DEQUANTIZE", [x], [y])
            b.mark_output(y)
            o = run(b.build(), [np.full(n, q, dt)], "opt")[0][0]
            print(dt, f"n={n:2d}", "".join("B" if v == blk else "R" if v == ref else "?" for v in o))


if __name__ == "__main__":
    main()
