"""Exhaustive unary probes (all 256 int8/uint8 inputs, random quantization) for LOGISTIC, TANH, LEAKY_RELU,
QUANTIZE (requantize int8->int8 / uint8->uint8), and QUANTIZE float32->int8 / DEQUANTIZE int8->float32 with
tie-valued floats; compares REF, default (XNNPACK) and optimized, and checks the XNNPACK formulas:

  LUT ops (LOGISTIC, TANH; src/operators/unary-elementwise-nc.c init_lut_op_with_config + src/reference/):
      x = f32(f32(q - zp_in) * s_in);  y = f32(f64 function of x);  out = sat(nearbyint(f32(y * f32(1/s_out)) + zp_out))
  LEAKY_RELU (qs8-vlrelu): pm = lrintf(256*f32(s_in/s_out)), nm = lrintf(256*f32(pm_scale*alpha));
      out = sat(((q - zp_in) * (q<zp_in ? nm : pm) + (zp_out<<8) + 128) >> 8)
  QUANTIZE int8->int8 (qs8-vcvt): m = lrintf(256*f32(s_in/s_out)); out = sat((zp_out<<8) + 128 + (q - zp_in)*m >> 8)
  QUANTIZE f32->int8 (f32-qs8-vcvt): out = sat(rint(f32(x * f32(1/s)) ) + zp)
  DEQUANTIZE (qs8-f32-vcvt): out = f32(q - zp) * s
"""

import sys

import numpy as np
from rt import delegated, run

from refquant.tflite.builder import ModelBuilder

f32 = np.float32


def one(op, dt_in, dt_out, qin, qout, xin, **opts):
    b = ModelBuilder()
    x = b.add_input("x", xin.shape, dt_in, **qin)
    y = b.add_tensor("y", xin.shape, dt_out, **qout)
    b.add_operator(op, [x], [y], **opts)
    b.mark_output(y)
    m = b.build()
    res = {}
    for w in ("ref", "xnn", "opt"):
        try:
            o, it = run(m, [xin], w)
            res[w] = o[0]
            if w == "xnn":
                res["deleg"] = "DELEGATE" in delegated(it)
        except Exception as e:  # noqa: BLE001
            res[w] = "ERR " + str(e)[:80]
    return res


def sat(v, dt):
    i = np.iinfo(dt)
    return np.clip(v, i.min, i.max)


def lut_pred(fn, q, s_in, zp_in, s_out, zp_out, dt):
    x = (q.astype(f32) - f32(zp_in)) * f32(s_in)
    y = fn(x.astype(np.float64)).astype(f32)
    v = y * (f32(1) / f32(s_out)) + f32(zp_out)
    return sat(np.rint(v.astype(f32)).astype(np.int64), dt)


def sigmoid64(x):
    e = np.exp(x)
    return np.where(x > 100, 1.0, np.where(x < -100, 0.0, e / (1 + e)))


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    rng = np.random.default_rng(11)
    stats = {}

    def rec(key, r, pred=None, cast=None):
        s = stats.setdefault(key, dict(models=0, deleg=0, elems=0, xnn_ref=0, opt_ref=0, xnn_formula=0, ex=None))
        s["models"] += 1
        if isinstance(r["xnn"], str) or isinstance(r["ref"], str) or isinstance(r["opt"], str):
            s.setdefault("errors", set()).add(str([r[k] for k in ("ref", "xnn", "opt") if isinstance(r[k], str)])[:120])
            return
        s["deleg"] += r["deleg"]
        s["elems"] += r["ref"].size
        d = r["xnn"] != r["ref"]
        s["xnn_ref"] += int(d.sum())
        s["opt_ref"] += int((r["opt"] != r["ref"]).sum())
        if pred is not None and r["deleg"]:
            s["xnn_formula"] += int((pred != r["xnn"]).sum())
        if (d.any() or (r["opt"] != r["ref"]).any()) and s["ex"] is None:
            i = int(np.argwhere((d | (r["opt"] != r["ref"])).ravel())[0][0])
            s["ex"] = dict(
                idx=i,
                ref=r["ref"].ravel()[i].item(),
                xnn=r["xnn"].ravel()[i].item(),
                opt=r["opt"].ravel()[i].item(),
                **(cast or {}),
            )

    for _ in range(n):
        for dt in ("int8", "uint8"):
            info = np.iinfo(dt)
            q = np.arange(info.min, info.max + 1).astype(dt).reshape(1, 256)
            s_in = float(f32(rng.uniform(0.01, 0.1)))
            zp_in = int(rng.integers(info.min, info.max + 1))
            # LOGISTIC / TANH: output scale fixed by TFLite (1/256 and 1/128)
            zpo = -128 if dt == "int8" else 0
            r = one("LOGISTIC", dt, dt, dict(scale=s_in, zero_point=zp_in), dict(scale=1 / 256, zero_point=zpo), q)
            rec(
                ("LOGISTIC", dt), r, lut_pred(sigmoid64, q, s_in, zp_in, 1 / 256, zpo, dt), dict(s_in=s_in, zp_in=zp_in)
            )
            zpo = 0 if dt == "int8" else 128
            r = one("TANH", dt, dt, dict(scale=s_in, zero_point=zp_in), dict(scale=1 / 128, zero_point=zpo), q)
            rec(("TANH", dt), r, lut_pred(np.tanh, q, s_in, zp_in, 1 / 128, zpo, dt), dict(s_in=s_in, zp_in=zp_in))
            # LEAKY_RELU
            s_out = float(f32(s_in * rng.uniform(0.3, 3)))
            zp_out = int(rng.integers(info.min, info.max + 1))
            alpha = float(f32(rng.uniform(0.05, 0.5)))
            r = one(
                "LEAKY_RELU",
                dt,
                dt,
                dict(scale=s_in, zero_point=zp_in),
                dict(scale=s_out, zero_point=zp_out),
                q,
                alpha=alpha,
            )
            ps = f32(s_in) / f32(s_out)
            pm = int(np.rint(f32(256) * ps))
            nm = int(np.rint(f32(256) * f32(ps * f32(alpha))))
            d = q.astype(np.int64) - zp_in
            pred = sat((d * np.where(d < 0, nm, pm) + (zp_out << 8) + 128) >> 8, dt)
            rec(("LEAKY_RELU", dt), r, pred, dict(s_in=s_in, zp_in=zp_in, s_out=s_out, zp_out=zp_out, alpha=alpha))
            # QUANTIZE requantize (same type)
            r = one("QUANTIZE", dt, dt, dict(scale=s_in, zero_point=zp_in), dict(scale=s_out, zero_point=zp_out), q)
            m = int(np.rint(f32(256) * (f32(s_in) / f32(s_out))))
            pred = sat(((zp_out << 8) + 128 + d * m) >> 8, dt)
            rec(("QUANTIZE requant", dt), r, pred, dict(s_in=s_in, zp_in=zp_in, s_out=s_out, zp_out=zp_out))
            # QUANTIZE float -> q with exact ties and random values
            xs = np.concatenate([(np.arange(-140, 140) + 0.5) * s_in, rng.uniform(-15, 15, 232) * s_in * 10])
            xs = xs.astype(f32).reshape(1, -1)
            r = one("QUANTIZE", "float32", dt, {}, dict(scale=s_in, zero_point=zp_in), xs)
            pred = sat(np.rint(xs * (f32(1) / f32(s_in))).astype(np.int64) + zp_in, dt)
            rec(("QUANTIZE f32->q", dt), r, pred, dict(s=s_in, zp=zp_in))
            # DEQUANTIZE
            r = one("DEQUANTIZE", dt, "float32", dict(scale=s_in, zero_point=zp_in), {}, q)
            pred = (q.astype(np.int32) - zp_in).astype(f32) * f32(s_in)
            rec(("DEQUANTIZE", dt), r, pred, dict(s=s_in, zp=zp_in))
    for k, s in stats.items():
        print(k, s)


if __name__ == "__main__":
    main()
