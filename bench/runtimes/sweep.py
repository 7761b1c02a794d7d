"""Sweep refquant's op_models strategies through LiteRT REF / default (XNNPACK) / optimized (no delegate).

For each (op, dtype): draw N one-op models, run them in a worker process under the three resolvers,
record whether XNNPACK took the node (a DELEGATE node in _get_ops_details) and how many output
elements differ from BUILTIN_REF. Usage: python sweep.py N OP[:dtype,...] ...  (without :dtypes, every dtype op_models supports)
Writes JSON lines to stdout. Environment MAX_SIDE=k draws larger tensors (op_models max_side).
"""

import json
import multiprocessing as mp
import os
import sys
import warnings

import numpy as np

warnings.filterwarnings("ignore")


def _work(conn):
    from rt import delegated, run

    while True:
        msg = conn.recv()
        if msg is None:
            return
        model, inputs = msg
        out = {}
        for w in ("ref", "xnn", "opt"):
            try:
                o, it = run(model, inputs, w)
                out[w] = o
                if w == "xnn":
                    out["plan"] = delegated(it)
            except Exception as e:  # noqa: BLE001
                out[w] = "ERR " + str(e)[:200]
        conn.send(out)


class W:
    """A forked worker process running ``target`` (default: the three LiteRT resolvers); restarted after a crash."""

    def __init__(self, target=None):
        self.target = target or _work
        self.start()

    def start(self):
        a, b = mp.Pipe()
        self.p = mp.get_context("fork").Process(target=self.target, args=(b,), daemon=True)
        self.p.start()
        self.c = a

    def run(self, model, inputs):
        self.c.send((model, inputs))
        if self.c.poll(60):
            try:
                return self.c.recv()
            except EOFError:
                pass
        self.p.kill()
        self.start()
        return None


def cmp(a, b):
    if isinstance(a, str) or isinstance(b, str):
        return None
    n = 0
    mx = 0
    tot = 0
    for x, y in zip(a, b):
        if x.shape != y.shape:
            return -1
        if x.dtype.kind == "f":
            d = ~((x == y) | (np.isnan(x) & np.isnan(y)))
            diff = np.abs(x.astype(np.float64) - y.astype(np.float64))
        else:
            diff = np.abs(x.astype(np.int64) - y.astype(np.int64))
            d = diff != 0
        n += int(d.sum())
        tot += x.size
        if d.any():
            mx = max(mx, float(np.nanmax(np.where(d, diff, 0))))
    return n, tot, mx


def sweep_one(w, op, dt, n, max_side=None):
    """Draw ``n`` op_models cases of ``op``/``dt``, run them in worker ``w``; the per-(op, dtype) statistics."""
    from hypothesis import HealthCheck, given, settings

    import refquant.strategies as rqs

    stats = {
        "op": op,
        "dt": dt,
        "n": 0,
        "delegated": 0,
        "xnn_diff_cases": 0,
        "opt_diff_cases": 0,
        "xnn_bad_elems": 0,
        "opt_bad_elems": 0,
        "elems": 0,
        "xnn_maxdiff": 0,
        "opt_maxdiff": 0,
        "errors": [],
        "examples": [],
    }

    @settings(max_examples=n, database=None, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(rqs.op_models(op, dt, **({"max_side": max_side} if max_side else {})))
    def t(case):
        r = w.run(case.model, case.inputs)
        stats["n"] += 1
        if r is None:
            stats["errors"].append("crash/timeout")
            return
        if isinstance(r["ref"], str):
            stats["errors"].append("ref:" + r["ref"])
            return
        dl = "DELEGATE" in r.get("plan", [])
        stats["delegated"] += dl
        for k in ("xnn", "opt"):
            c = cmp(r["ref"], r[k])
            if c is None:
                stats["errors"].append(k + ":" + str(r[k])[:120])
                continue
            if c == -1:
                stats["errors"].append(k + ": shape")
                continue
            bad, tot, mx = c
            if k == "xnn":
                stats["elems"] += tot
            stats[k + "_bad_elems"] += bad
            stats[k + "_diff_cases"] += bad > 0
            stats[k + "_maxdiff"] = max(stats[k + "_maxdiff"], mx)
            if bad and len(stats["examples"]) < 2:
                stats["examples"].append((k, dl, case.description[:300]))

    t()
    stats["errors"] = sorted(set(stats["errors"]))[:5]
    return stats


def main():
    import refquant.strategies as rqs

    n = int(sys.argv[1])
    specs = sys.argv[2:]
    sup = rqs.supported_op_dtypes()
    jobs = []
    for s in specs:
        op, _, dts = s.partition(":")
        for dt in dts.split(",") if dts else sup[op]:
            jobs.append((op, dt))
    max_side = int(os.environ["MAX_SIDE"]) if os.environ.get("MAX_SIDE") else None
    w = W()
    for op, dt in jobs:
        print(json.dumps(sweep_one(w, op, dt, n, max_side)), flush=True)


if __name__ == "__main__":
    main()
