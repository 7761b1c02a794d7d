"""Which single-op models does the XNNPACK delegate take (DELEGATE node after allocate)? One line per probe:
probe name, delegated?, error if the default interpreter failed, and differing elements xnn vs ref / opt vs ref."""

import numpy as np
from rt import delegated, run

from refquant.tflite.builder import ModelBuilder

rng = np.random.default_rng(0)


def conv(
    op="CONV_2D",
    dt="int8",
    wzp=0,
    pc=False,
    bias=True,
    qdim=None,
    act="NONE",
    k=3,
    x_dt=None,
    dil=1,
    bias_dt="int32",
    wdt=None,
):
    b = ModelBuilder()
    c = 4
    x_dt = x_dt or dt
    wdt = wdt or ("uint8" if dt == "uint8" else "int8")
    qx = {} if x_dt == "float32" else dict(scale=0.05, zero_point=3 if dt != "uint8" else 128)
    x = b.add_input("x", (1, 6, 6, c), x_dt, **qx)
    if op == "CONV_2D":
        ws = (c, k, k, c)
    elif op == "DEPTHWISE_CONV_2D":
        ws = (1, k, k, c)
    else:
        ws = (c, 6 * 6 * c)
    n = c if pc else 1
    qd = qdim if qdim is not None else (3 if op == "DEPTHWISE_CONV_2D" else 0)
    info = np.iinfo(wdt)
    wv = rng.integers(max(info.min, -127), info.max + 1, ws).astype(wdt)
    w = b.add_constant("w", wv, scale=list(rng.uniform(0.01, 0.03, n)), zero_point=[wzp] * n, quantized_dimension=qd)
    ins = [x, w]
    if bias:
        if bias_dt == "float32":
            ins.append(b.add_constant("b", rng.uniform(-1, 1, c).astype(np.float32)))
        else:
            ins.append(
                b.add_constant("b", rng.integers(-100, 100, c).astype(np.int32), scale=[0.0005] * n, zero_point=[0] * n)
            )
    else:
        ins.append(-1)
    ys = (1, 6 * 6 * c) if op == "FULLY_CONNECTED" else (1, 6, 6, c)
    if op == "FULLY_CONNECTED":
        ys = (1, c)
    y = b.add_tensor("y", ys, x_dt, **({} if x_dt == "float32" else dict(scale=0.1, zero_point=qx["zero_point"])))
    kw = dict(fused_activation_function=act)
    if op != "FULLY_CONNECTED":
        kw.update(padding="SAME", stride_w=1, stride_h=1, dilation_w_factor=dil, dilation_h_factor=dil)
    if op == "DEPTHWISE_CONV_2D":
        kw["depth_multiplier"] = 1
    b.add_operator(op, ins, [y], **kw)
    b.mark_output(y)
    if x_dt == "float32":
        xin = rng.uniform(-2, 2, (1, 6, 6, c)).astype(np.float32)
    else:
        xi = np.iinfo(x_dt)
        xin = rng.integers(xi.min, xi.max + 1, (1, 6, 6, c)).astype(x_dt)
    if op == "FULLY_CONNECTED":
        xin = xin.reshape(1, 6, 6, c)
    return b.build(), [xin]


def simple(op, dt, qa, qo, shape=(1, 4, 4, 4), n_in=1, **opts):
    b = ModelBuilder()
    xs = [b.add_input(f"x{i}", shape, dt, **(qa[i] if isinstance(qa, list) else qa)) for i in range(n_in)]
    oshape = shape
    if op == "CONCATENATION":
        oshape = shape[:-1] + (shape[-1] * n_in,)
    if op in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        oshape = (1, 2, 2, 4)
    y = b.add_tensor("y", oshape, dt, **qo)
    b.add_operator(op, xs, [y], **opts)
    b.mark_output(y)
    info = np.iinfo(dt)
    return b.build(), [rng.integers(info.min, info.max + 1, shape).astype(dt) for _ in range(n_in)]


def probe(name, mi):
    m, ins = mi
    line = f"{name:55s}"
    try:
        ref, _ = run(m, ins, "ref")
    except Exception as e:  # noqa: BLE001
        print(line, "REF rejects:", str(e)[:100])
        return
    try:
        xnn, it = run(m, ins, "xnn")
        line += f" delegated={'DELEGATE' in delegated(it)!s:5s} xnn!=ref:{int((xnn[0] != ref[0]).sum())}"
    except Exception as e:  # noqa: BLE001
        line += " default interpreter FAILS: " + str(e)[:90]
    try:
        opt, _ = run(m, ins, "opt")
        line += f" opt!=ref:{int((opt[0] != ref[0]).sum())}"
    except Exception as e:  # noqa: BLE001
        line += " opt fails " + str(e)[:60]
    print(line)


def main():
    q = dict(scale=0.05, zero_point=3)
    probe("CONV int8 per-tensor", conv())
    probe("CONV int8 per-channel", conv(pc=True))
    probe("CONV int8 weight zp=5 (per-tensor)", conv(wzp=5))
    probe("CONV int8 no bias", conv(bias=False))
    probe("CONV int8 RELU6", conv(act="RELU6"))
    probe("CONV int8 dilation 2", conv(dil=2))
    probe("CONV int8 per-channel qdim=3 (wrong axis)", conv(pc=True, qdim=3))
    probe("CONV uint8", conv(dt="uint8", wzp=128))
    probe("CONV int16x8", conv(dt="int16", x_dt="int16", bias_dt="int32"))
    probe("CONV hybrid (float in, int8 per-channel w)", conv(x_dt="float32", pc=True, bias_dt="float32"))
    probe("CONV hybrid (float in, int8 per-tensor w)", conv(x_dt="float32", bias_dt="float32"))
    probe("DW int8 per-channel", conv(op="DEPTHWISE_CONV_2D", pc=True))
    probe("DW int8 per-tensor", conv(op="DEPTHWISE_CONV_2D"))
    probe("DW int8 no bias", conv(op="DEPTHWISE_CONV_2D", bias=False))
    probe("DW uint8 (weight qdim 3, 1 scale)", conv(op="DEPTHWISE_CONV_2D", dt="uint8", wzp=128))
    probe("DW uint8 (weight qdim 0)", conv(op="DEPTHWISE_CONV_2D", dt="uint8", wzp=128, qdim=0))
    probe("FC int8 per-tensor", conv(op="FULLY_CONNECTED"))
    probe("FC int8 per-channel", conv(op="FULLY_CONNECTED", pc=True))
    probe("FC int8 no bias", conv(op="FULLY_CONNECTED", bias=False))
    probe("FC int8 weight zp=5", conv(op="FULLY_CONNECTED", wzp=5))
    probe("FC hybrid (float in, int8 per-tensor w)", conv(op="FULLY_CONNECTED", x_dt="float32", bias_dt="float32"))
    probe(
        "FC hybrid (float in, int8 per-channel w)",
        conv(op="FULLY_CONNECTED", x_dt="float32", pc=True, bias_dt="float32"),
    )
    probe("FC int16x8", conv(op="FULLY_CONNECTED", dt="int16", x_dt="int16"))
    probe("ADD int8 same scales", simple("ADD", "int8", q, q, n_in=2))
    probe(
        "ADD int8 ratio 1/2000 (below 1/1024)",
        simple("ADD", "int8", [dict(scale=0.0001, zero_point=0), q], dict(scale=0.2, zero_point=0), n_in=2),
    )
    probe(
        "ADD int8 ratio 300 (above 256)",
        simple("ADD", "int8", [dict(scale=30.0, zero_point=0), q], dict(scale=0.1, zero_point=0), n_in=2),
    )
    probe(
        "MUL int8 product ratio 1e-6",
        simple(
            "MUL",
            "int8",
            [dict(scale=0.001, zero_point=0), dict(scale=0.001, zero_point=0)],
            dict(scale=1.0, zero_point=0),
            n_in=2,
        ),
    )
    probe(
        "MAX_POOL int8 same quant",
        simple("MAX_POOL_2D", "int8", q, q, padding="VALID", stride_w=2, stride_h=2, filter_width=2, filter_height=2),
    )
    probe(
        "MAX_POOL int8 different out scale",
        simple(
            "MAX_POOL_2D",
            "int8",
            q,
            dict(scale=0.07, zero_point=3),
            padding="VALID",
            stride_w=2,
            stride_h=2,
            filter_width=2,
            filter_height=2,
        ),
    )
    probe(
        "MAX_POOL int8 1x1 filter stride 1",
        simple(
            "MAX_POOL_2D",
            "int8",
            q,
            q,
            shape=(1, 2, 2, 4),
            padding="VALID",
            stride_w=1,
            stride_h=1,
            filter_width=1,
            filter_height=1,
        ),
    )
    probe(
        "AVERAGE_POOL int8",
        simple(
            "AVERAGE_POOL_2D", "int8", q, q, padding="VALID", stride_w=2, stride_h=2, filter_width=2, filter_height=2
        ),
    )
    probe("CONCAT int8 same quant", simple("CONCATENATION", "int8", [q, q], q, n_in=2, axis=3))
    probe(
        "CONCAT int8 different input scales",
        simple("CONCATENATION", "int8", [q, dict(scale=0.07, zero_point=3)], q, n_in=2, axis=3),
    )
    probe("LOGISTIC int8", simple("LOGISTIC", "int8", q, dict(scale=1 / 256, zero_point=-128)))
    probe("TANH int8", simple("TANH", "int8", q, dict(scale=1 / 128, zero_point=0)))
    probe("HARD_SWISH int8", simple("HARD_SWISH", "int8", q, dict(scale=0.03, zero_point=-10)))
    probe("RELU int8", simple("RELU", "int8", q, q))
    probe("SOFTMAX int8", simple("SOFTMAX", "int8", q, dict(scale=1 / 256, zero_point=-128), beta=1.0))
    probe("LEAKY_RELU int8 ratio ok", simple("LEAKY_RELU", "int8", q, q, alpha=0.2))
    probe("LEAKY_RELU int8 alpha*ratio < 1/256", simple("LEAKY_RELU", "int8", q, q, alpha=0.003))
    probe("QUANTIZE int8->int8 ratio ok", simple("QUANTIZE", "int8", q, dict(scale=0.04, zero_point=-2)))
    probe(
        "QUANTIZE int8->int8 ratio 200 (>128)",
        simple("QUANTIZE", "int8", dict(scale=8.0, zero_point=0), dict(scale=0.04, zero_point=-2)),
    )


if __name__ == "__main__":
    main()
