"""person_detect-style DEPTHWISE_CONV_2D: per-channel filter (qdim 3) and a rank-1 int32 bias whose quantization
says quantized_dimension=3. Which runtimes accept it? Run with the tflite-micro venv (README.md)."""

import numpy as np
from rt import delegated, run
from tflm_rt import run_tflm

import refquant
from refquant.tflite.builder import ModelBuilder


def main():
    for op in ("DEPTHWISE_CONV_2D", "CONV_2D"):
        rng = np.random.default_rng(0)
        c = 8
        b = ModelBuilder()
        sw = list(rng.uniform(0.01, 0.03, c))
        x = b.add_input("x", (1, 6, 6, c), "int8", scale=0.05, zero_point=-3)
        if op == "DEPTHWISE_CONV_2D":
            w = b.add_constant(
                "w",
                rng.integers(-127, 128, (1, 3, 3, c)).astype(np.int8),
                scale=sw,
                zero_point=[0] * c,
                quantized_dimension=3,
            )
        else:
            w = b.add_constant(
                "w",
                rng.integers(-127, 128, (c, 3, 3, c)).astype(np.int8),
                scale=sw,
                zero_point=[0] * c,
                quantized_dimension=0,
            )
        bq = b.add_constant(
            "b",
            rng.integers(-500, 500, c).astype(np.int32),
            scale=[0.05 * s for s in sw],
            zero_point=[0] * c,
            quantized_dimension=3,
        )
        y = b.add_tensor("y", (1, 6, 6, c), "int8", scale=0.1, zero_point=1)
        kw = dict(padding="SAME", stride_w=1, stride_h=1)
        if op == "DEPTHWISE_CONV_2D":
            kw["depth_multiplier"] = 1
        b.add_operator(op, [x, w, bq], [y], **kw)
        b.mark_output(y)
        m = b.build()
        xin = rng.integers(-128, 128, (1, 6, 6, c)).astype(np.int8)
        out = {}
        for k in ("ref", "xnn", "opt"):
            try:
                o, it = run(m, [xin], k)
                out[k] = o[0]
                if k == "xnn":
                    print(op, "xnn plan", delegated(it))
            except Exception as e:  # noqa: BLE001
                out[k] = "ERR " + str(e)[:150]
        try:
            out["tflm"] = run_tflm(m, [xin])[0]
        except Exception as e:  # noqa: BLE001
            out["tflm"] = "ERR " + str(e)[:150]
        try:
            it = refquant.Interpreter(model_content=m)
            it.allocate_tensors()
            it.set_tensor(it.get_input_details()[0]["index"], xin)
            it.invoke()
            out["refquant"] = it.get_tensor(it.get_output_details()[0]["index"])
        except Exception as e:  # noqa: BLE001
            out["refquant"] = "ERR " + str(e)[:200]
        for k, v in out.items():
            print(
                op,
                k,
                v
                if isinstance(v, str)
                else f"ok, differs from ref in {int((v != out['ref']).sum()) if not isinstance(out['ref'], str) else '?'}",
            )

    # Same model with the bias quantized_dimension set to 0: does TFLM's result on the qdim-3 model equal REF on this?
    for op in ("DEPTHWISE_CONV_2D", "CONV_2D"):
        rng = np.random.default_rng(0)
        c = 8
        res = []
        for qd in (3, 0):
            rng = np.random.default_rng(0)
            b = ModelBuilder()
            sw = list(rng.uniform(0.01, 0.03, c))
            x = b.add_input("x", (1, 6, 6, c), "int8", scale=0.05, zero_point=-3)
            if op == "DEPTHWISE_CONV_2D":
                w = b.add_constant(
                    "w",
                    rng.integers(-127, 128, (1, 3, 3, c)).astype(np.int8),
                    scale=sw,
                    zero_point=[0] * c,
                    quantized_dimension=3,
                )
            else:
                w = b.add_constant(
                    "w",
                    rng.integers(-127, 128, (c, 3, 3, c)).astype(np.int8),
                    scale=sw,
                    zero_point=[0] * c,
                    quantized_dimension=0,
                )
            bq = b.add_constant(
                "b",
                rng.integers(-500, 500, c).astype(np.int32),
                scale=[0.05 * s for s in sw],
                zero_point=[0] * c,
                quantized_dimension=qd,
            )
            y = b.add_tensor("y", (1, 6, 6, c), "int8", scale=0.1, zero_point=1)
            kw = dict(padding="SAME", stride_w=1, stride_h=1)
            if op == "DEPTHWISE_CONV_2D":
                kw["depth_multiplier"] = 1
            b.add_operator(op, [x, w, bq], [y], **kw)
            b.mark_output(y)
            xin = rng.integers(-128, 128, (1, 6, 6, c)).astype(np.int8)
            res.append((b.build(), xin))
        t3 = run_tflm(res[0][0], [res[0][1]])[0]
        r0 = run(res[1][0], [res[1][1]], "ref")[0][0]
        print(op, "tflm(bias qdim 3) vs ref(bias qdim 0): differing elements", int((t3 != r0).sum()), "of", t3.size)


if __name__ == "__main__":
    main()
