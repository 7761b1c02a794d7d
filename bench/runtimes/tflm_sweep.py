"""Sweep op_models through LiteRT BUILTIN_REF and tflite-micro (reference kernels); count differing elements.
Run with the tflite-micro venv (README.md).  Usage: tflm_sweep.py N OP[:dtypes] ...
"""

import json
import os
import sys
import warnings

from sweep import W, cmp

warnings.filterwarnings("ignore")


def _work(conn):
    from rt import run
    from tflm_rt import run_tflm

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    while True:
        msg = conn.recv()
        if msg is None:
            return
        model, inputs = msg
        out = {}
        try:
            out["ref"] = run(model, inputs, "ref")[0]
        except Exception as e:  # noqa: BLE001
            out["ref"] = "ERR " + str(e)[:200]
        try:
            out["tflm"] = run_tflm(model, inputs)
        except Exception as e:  # noqa: BLE001
            out["tflm"] = "ERR " + str(e)[:200]
        conn.send(out)


def sweep_one(w, op, dt, n):
    """Draw ``n`` op_models cases of ``op``/``dt``, run them in worker ``w``; REF vs TFLM statistics."""
    from hypothesis import HealthCheck, given, settings

    import refquant.strategies as rqs

    st = {
        "op": op,
        "dt": dt,
        "n": 0,
        "diff_cases": 0,
        "bad": 0,
        "elems": 0,
        "maxdiff": 0,
        "errors": [],
        "example": None,
    }

    @settings(max_examples=n, database=None, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(rqs.op_models(op, dt))
    def t(case):
        r = w.run(case.model, case.inputs)
        st["n"] += 1
        if r is None:
            st["errors"].append("tflm crash/timeout")
            return
        if isinstance(r["ref"], str):
            return
        if isinstance(r["tflm"], str):
            st["errors"].append(r["tflm"][:100])
            return
        c = cmp(r["ref"], r["tflm"][: len(r["ref"])])
        if c is None or c == -1:
            st["errors"].append("shape/type")
            return
        bad, tot, mx = c
        st["bad"] += bad
        st["elems"] += tot
        st["diff_cases"] += bad > 0
        st["maxdiff"] = max(st["maxdiff"], mx)
        if bad and st["example"] is None:
            st["example"] = case.description[:400]

    t()
    st["errors"] = sorted(set(st["errors"]))[:4]
    return st


def main():
    import refquant.strategies as rqs

    n = int(sys.argv[1])
    sup = rqs.supported_op_dtypes()
    w = W(_work)
    for s in sys.argv[2:]:
        op, _, dts = s.partition(":")
        for dt in dts.split(",") if dts else sup[op]:
            print(json.dumps(sweep_one(w, op, dt, n)), flush=True)


if __name__ == "__main__":
    main()
