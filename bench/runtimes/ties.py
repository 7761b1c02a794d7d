"""Exact-tie probes: power-of-two scale ratios so that acc * scale lands on k + 0.5 exactly.

FC / CONV 1x1 / DEPTHWISE 1x1 with s_in = 2^-4, s_w = 2^-4 and s_out = 2^-4 / eff, for eff in {0.5, 0.25, 2^-3};
input values cover -128..127, weights 1 (so acc = x - zp_in + bias). Prints for each runtime the outputs
(minus zp_out) next to the exact value acc*eff, and names the tie rule each runtime follows.
"""

import sys

import numpy as np
from rt import delegated, run

from refquant.tflite.builder import ModelBuilder


def model(op, dt, eff, zp_out=0, c=1):
    n = 256
    zp_out = 128 if dt == "uint8" else zp_out
    b = ModelBuilder()
    s_in = s_w = 2.0**-4
    s_out = s_in * s_w / eff
    if op == "FULLY_CONNECTED":
        xs, ws, ys = (n, 1), (c, 1), (n, c)
    elif op == "CONV_2D":
        xs, ws, ys = (1, 16, 16, 1), (c, 1, 1, 1), (1, 16, 16, c)
    else:
        xs, ws, ys = (1, 16, 16, c), (1, 1, 1, c), (1, 16, 16, c)
    wv = np.ones(ws, np.int8) if dt == "int8" else np.full(ws, 129, np.uint8)
    zp_w = 0 if dt == "int8" else 128
    zp_in = 0 if dt == "int8" else 128
    x = b.add_input("x", xs, dt, scale=s_in, zero_point=zp_in)
    w = b.add_constant("w", wv, scale=[s_w], zero_point=[zp_w], quantized_dimension=0)
    bq = b.add_constant("b", np.zeros(c, np.int32), scale=[s_in * s_w], zero_point=[0])
    y = b.add_tensor("y", ys, dt, scale=s_out, zero_point=zp_out)
    kw = {} if op == "FULLY_CONNECTED" else dict(padding="VALID", stride_w=1, stride_h=1)
    if op == "DEPTHWISE_CONV_2D":
        kw["depth_multiplier"] = 1
    b.add_operator(op, [x, w, bq], [y], **kw)
    b.mark_output(y)
    info = np.iinfo(dt)
    base = np.arange(info.min, info.max + 1)
    xin = np.broadcast_to(base.reshape(-1, 1), (256, xs[-1])).astype(dt).reshape(xs)
    # every output element's accumulator is x - zp_in of its position
    acc = np.broadcast_to((base - zp_in).reshape(-1, 1), (256, c)).ravel().astype(np.int64)
    return b.build(), xin, acc


def rule_name(acc, eff, out):
    exact = acc * eff
    tie = np.abs(exact - np.floor(exact) - 0.5) < 1e-12
    names = {
        "half-away": np.where(exact >= 0, np.floor(exact + 0.5), np.ceil(exact - 0.5)),
        "half-up": np.floor(exact + 0.5),
        "half-even": np.round(exact),
    }
    ok = [k for k, v in names.items() if np.array_equal(v[tie], out[tie])]
    return ok, int(tie.sum())


def main():
    for op in ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D"):
        for dt in ("int8", "uint8"):
            for eff, c in ((0.5, 1), (0.25, 1), (0.125, 1), (0.5, 16), (0.25, 16), (0.25, 3), (0.25, 8), (0.25, 32)):
                m, xin, acc = model(op, dt, eff, c=c)
                line = []
                for w in ("ref", "xnn", "opt"):
                    out, it = run(m, [xin], w)
                    raw = out[0].astype(np.int64).ravel()
                    info = np.iinfo(dt)
                    ok_range = (raw > info.min) & (raw < info.max)
                    o = raw - (128 if dt == "uint8" else 0)
                    names, nt = rule_name(acc[ok_range], eff, o[ok_range])
                    tag = w + ("(deleg)" if w == "xnn" and "DELEGATE" in delegated(it) else "")
                    line.append(f"{tag}={'/'.join(names) or '??'}")
                print(f"{op:18s} {dt:5s} C={c:2d} eff={eff:<6} ties={nt:3d}  " + "  ".join(line))
    # concrete example row
    m, xin, acc = model("FULLY_CONNECTED", "int8", 0.5)
    outs = {w: run(m, [xin], w)[0][0].ravel() for w in ("ref", "xnn", "opt")}
    for a in (-5, -3, -1, 1, 3, 5):
        i = int(np.where(acc == a)[0][0])
        print(
            f"FC int8 eff=0.5 acc={a:3d} exact={a * 0.5:5}: ref={outs['ref'][i]} xnn={outs['xnn'][i]} opt={outs['opt'][i]}"
        )


def per_channel_rules(op, dt, eff, c):
    """Which tie rule each output channel follows (the optimized kernels split channels into SIMD blocks)."""
    m, xin, acc = model(op, dt, eff, c=c)
    res = {}
    for w in ("ref", "xnn", "opt"):
        raw = run(m, [xin], w)[0][0].astype(np.int64).reshape(-1, c)
        a = acc.reshape(-1, c)
        rules = []
        info = np.iinfo(dt)
        for ch in range(c):
            ok = (raw[:, ch] > info.min) & (raw[:, ch] < info.max)
            o = raw[:, ch] - (128 if dt == "uint8" else 0)
            names, _ = rule_name(a[ok, ch], eff, o[ok])
            rules.append(
                "E" if "half-even" in names else "U" if names == ["half-up"] else "A" if names == ["half-away"] else "?"
            )
        res[w] = "".join(rules)
    return res


if __name__ == "__main__":
    if len(sys.argv) > 1:
        op, dt = sys.argv[1], sys.argv[2]
        for c in (1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 24, 33):
            print(op, dt, f"C={c:2d}", "per-channel tie rule (A=away U=up E=even):", per_channel_rules(op, dt, 0.25, c))
    else:
        main()
