"""FULLY_CONNECTED / CONV_2D / DEPTHWISE_CONV_2D int8 + uint8: XNNPACK fp32 requantization vs REF fixed point.

Builds one-op models with random scales/zero points (and many output elements), runs LiteRT REF, default
(XNNPACK) and optimized (no delegate); checks the candidate formula for XNNPACK:

    scale_c = f32( f32(s_in * s_w[c]) / s_out )           (float32 arithmetic, left to right)
    y = clamp( rint_half_even( f32( f32(acc) * scale_c ) ) + zp_out, act_min, act_max )

and the REF formula (MultiplyByQuantizedMultiplier, double rounding) via the accumulators.
Usage: python fc_requant.py [n_models] [op] [dtype] [per_channel 0/1]
"""

import sys

import numpy as np
from rt import delegated, run

from refquant.tflite.builder import ModelBuilder

f32 = np.float32


def xnn_formula(acc, s_in, s_w, s_out, zp_out, qmin, qmax):
    scale = (f32(s_in) * np.asarray(s_w, f32)).astype(f32) / f32(s_out)
    scale = scale.astype(f32)
    v = acc.astype(f32) * scale
    v = np.minimum(v.astype(f32), f32(qmax - zp_out))
    r = np.rint(v).astype(np.int64) + zp_out
    return np.clip(r, qmin, qmax)


def tie_fraction(acc, s_in, s_w, s_out):
    real = acc.astype(np.float64) * (np.float64(s_in) * np.asarray(s_w, np.float64) / np.float64(s_out))
    fr = np.abs(real - np.floor(real) - 0.5)
    return fr


def build(rng, op, dt, per_channel):
    info = np.iinfo(dt)
    s_in = float(f32(rng.uniform(0.005, 0.1)))
    s_out = float(f32(rng.uniform(0.01, 0.5)))
    zp_in = int(rng.integers(info.min + 20, info.max - 20))
    zp_out = int(rng.integers(info.min + 20, info.max - 20))
    b = ModelBuilder()
    if op == "FULLY_CONNECTED":
        n, k, m = 16, int(rng.integers(1, 40)), 16
        xs, ws, ys = (n, k), (m, k), (n, m)
        cout = m
    elif op == "CONV_2D":
        k = int(rng.integers(1, 4))
        cin, cout = int(rng.integers(1, 8)), 8
        xs, ws, ys = (1, 8, 8, cin), (cout, k, k, cin), (1, 8, 8, cout)
    else:  # DEPTHWISE_CONV_2D
        k = int(rng.integers(1, 4))
        cout = 8
        xs, ws, ys = (1, 8, 8, cout), (1, k, k, cout), (1, 8, 8, cout)
    if dt == "int8":
        w = rng.integers(-127, 128, ws).astype(np.int8)
        zp_w = 0
    else:
        w = rng.integers(0, 256, ws).astype(np.uint8)
        zp_w = int(rng.integers(100, 156))
    nsc = cout if per_channel else 1
    s_w = [float(f32(v)) for v in rng.uniform(0.002, 0.05, nsc)]
    qdim = 3 if op == "DEPTHWISE_CONV_2D" else 0
    x = b.add_input("x", xs, dt, scale=s_in, zero_point=zp_in)
    wq = b.add_constant("w", w, scale=s_w, zero_point=[zp_w] * nsc, quantized_dimension=qdim)
    bias = rng.integers(-2000, 2000, cout).astype(np.int32)
    bq = b.add_constant("b", bias, scale=[float(f32(s_in * s)) for s in s_w], zero_point=[0] * nsc)
    y = b.add_tensor("y", ys, dt, scale=s_out, zero_point=zp_out)
    if op == "FULLY_CONNECTED":
        b.add_operator(op, [x, wq, bq], [y])
    elif op == "CONV_2D":
        b.add_operator(op, [x, wq, bq], [y], padding="SAME", stride_w=1, stride_h=1)
    else:
        b.add_operator(op, [x, wq, bq], [y], padding="SAME", stride_w=1, stride_h=1, depth_multiplier=1)
    b.mark_output(y)
    xin = rng.integers(info.min, info.max + 1, xs).astype(dt)
    return (
        b.build(),
        xin,
        dict(s_in=s_in, s_w=s_w, s_out=s_out, zp_in=zp_in, zp_out=zp_out, zp_w=zp_w, w=w, bias=bias, k=k),
    )


def accumulators(op, xin, p):
    x = xin.astype(np.int64) - p["zp_in"]
    w = p["w"].astype(np.int64) - p["zp_w"]
    if op == "FULLY_CONNECTED":
        return x @ w.T + p["bias"]
    kk = w.shape[1]
    pad_lo = (kk - 1) // 2
    xp = np.zeros((1, 8 + kk - 1, 8 + kk - 1, x.shape[3]), np.int64)
    xp[:, pad_lo : pad_lo + 8, pad_lo : pad_lo + 8, :] = x  # padded with real zero (x - zp == 0)
    acc = np.zeros((1, 8, 8, w.shape[0] if op == "CONV_2D" else w.shape[3]), np.int64)
    for i in range(kk):
        for j in range(kk):
            patch = xp[:, i : i + 8, j : j + 8, :]
            if op == "CONV_2D":
                acc += patch @ w[:, i, j, :].T
            else:
                acc += patch * w[0, i, j, :]
    return acc + p["bias"]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    op = sys.argv[2] if len(sys.argv) > 2 else "FULLY_CONNECTED"
    dt = sys.argv[3] if len(sys.argv) > 3 else "int8"
    pc = bool(int(sys.argv[4])) if len(sys.argv) > 4 else False
    rng = np.random.default_rng(1)
    info = np.iinfo(dt)
    tot = bad_formula = xnn_vs_ref = opt_vs_ref = notdel = 0
    example = None
    opt_examples = []
    for _ in range(n):
        model, xin, p = build(rng, op, dt, pc)
        ref, _ = run(model, [xin], "ref")
        xnn, it = run(model, [xin], "xnn")
        opt, _ = run(model, [xin], "opt")
        if "DELEGATE" not in delegated(it):
            notdel += 1
            continue
        acc = accumulators(op, xin, p)
        pred = xnn_formula(acc, p["s_in"], p["s_w"], p["s_out"], p["zp_out"], info.min, info.max)
        tot += pred.size
        bad_formula += int((pred != xnn[0]).sum())
        d = xnn[0] != ref[0]
        xnn_vs_ref += int(d.sum())
        opt_vs_ref += int((opt[0] != ref[0]).sum())
        od = opt[0] != ref[0]
        if od.any() and opt_examples is not None and len(opt_examples) < 6:
            for i in map(tuple, np.argwhere(od)[:2]):
                c = i[-1]
                sw = p["s_w"][c if pc else 0]
                opt_examples.append(
                    dict(
                        acc=int(acc[i]),
                        s_in=p["s_in"],
                        s_w=sw,
                        s_out=p["s_out"],
                        zp_out=p["zp_out"],
                        real=float(acc[i] * np.float64(p["s_in"]) * sw / p["s_out"]),
                        ref=int(ref[0][i]),
                        xnn=int(xnn[0][i]),
                        opt=int(opt[0][i]),
                    )
                )
        if d.any() and example is None:
            i = tuple(np.argwhere(d)[0])
            c = i[-1]
            sw = p["s_w"][c if pc else 0]
            example = dict(
                acc=int(acc[i]),
                s_in=p["s_in"],
                s_w=sw,
                s_out=p["s_out"],
                zp_out=p["zp_out"],
                real=float(acc[i] * np.float64(p["s_in"]) * sw / p["s_out"]),
                f32_scaled=float(f32(acc[i]) * f32(f32(f32(p["s_in"]) * f32(sw)) / f32(p["s_out"]))),
                ref=int(ref[0][i]),
                xnn=int(xnn[0][i]),
                opt=int(opt[0][i]),
            )
    print(
        f"{op} {dt} per_channel={pc}: models={n} not_delegated={notdel} elements={tot} "
        f"formula_mismatch={bad_formula} xnn_vs_ref={xnn_vs_ref} opt_vs_ref={opt_vs_ref}"
    )
    print("example:", example)
    for e in opt_examples:
        print("opt example:", e)


if __name__ == "__main__":
    main()
