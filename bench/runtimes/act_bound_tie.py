"""Fused-activation bounds at an exact tie: CONV_2D int8 with RELU6 and s_out = 12 (6/12 = 0.5) and with
RELU_N1_TO_1 and s_out = 2 (-1/2 = -0.5). TFLite's CalculateActivationRangeQuantized rounds ties away
(act_max = 1, act_min = -1); XNNPACK's xnn_qs8_quantize uses lrintf (ties to even: 0 and 0)."""

import numpy as np
from rt import delegated, run

from refquant.tflite.builder import ModelBuilder


def main():
    for act, s_out in (("RELU6", 12.0), ("RELU_N1_TO_1", 2.0)):
        b = ModelBuilder()
        x = b.add_input("x", (1, 4, 4, 1), "int8", scale=1.0, zero_point=0)
        w = b.add_constant("w", np.ones((1, 1, 1, 1), np.int8), scale=[1.0], zero_point=[0], quantized_dimension=0)
        bq = b.add_constant("b", np.zeros(1, np.int32), scale=[1.0], zero_point=[0])
        y = b.add_tensor("y", (1, 4, 4, 1), "int8", scale=s_out, zero_point=0)
        b.add_operator(
            "CONV_2D", [x, w, bq], [y], padding="VALID", stride_w=1, stride_h=1, fused_activation_function=act
        )
        b.mark_output(y)
        m = b.build()
        xin = np.array([-100, -60, -30, -20, -12, -6, -2, 0, 2, 6, 12, 20, 30, 60, 100, 127], np.int8).reshape(
            1, 4, 4, 1
        )
        for wname in ("ref", "xnn", "opt"):
            o, it = run(m, [xin], wname)
            extra = f" delegated={'DELEGATE' in delegated(it)}" if wname == "xnn" else ""
            print(f"{act} s_out={s_out}: {wname:3s} min={o[0].min()} max={o[0].max()}{extra}")


if __name__ == "__main__":
    main()
