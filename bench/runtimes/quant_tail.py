"""QUANTIZE float32->int8 in the optimized kernel: tie rule per flat element for tensor sizes around the NEON
block, inputs -2.5*s and -1.5*s (s = 0.25, so x*(1/s) is exact): E (even: -2,-2), U (up: -2,-1), A (away: -3,-2)."""

import numpy as np
from rt import run

from refquant.tflite.builder import ModelBuilder


def main():
    for n in (3, 4, 7, 8, 9, 15, 16, 17, 20, 33):
        b = ModelBuilder()
        x = b.add_input("x", (n,), "float32")
        y = b.add_tensor("y", (n,), "int8", scale=0.25, zero_point=0)
        b.add_operator("QUANTIZE", [x], [y])
        b.mark_output(y)
        m = b.build()
        out = {}
        for w in ("ref", "opt", "xnn"):
            a = run(m, [np.full(n, -0.625, np.float32)], w)[0][0].astype(int)  # -2.5
            c = run(m, [np.full(n, -0.375, np.float32)], w)[0][0].astype(int)  # -1.5
            out[w] = "".join(
                "E" if (p, q) == (-2, -2) else "U" if (p, q) == (-2, -1) else "A" if (p, q) == (-3, -2) else "?"
                for p, q in zip(a, c)
            )
        print(f"QUANTIZE f32->int8 n={n:2d}", out)


if __name__ == "__main__":
    main()
