"""Print the first few op_models cases of OP/DTYPE where a runtime errors or differs from REF.

Usage: python find_cases.py N OP DTYPE [what: err|xnn|opt|crash]
"""

import multiprocessing as mp
import sys
import warnings

import numpy as np
from rt import run
from sweep import W, cmp

warnings.filterwarnings("ignore")


def main():
    from hypothesis import HealthCheck, given, settings

    import refquant.strategies as rqs

    n, op, dt, what = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    w = W()
    shown = [0]

    @settings(max_examples=n, database=None, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(rqs.op_models(op, dt))
    def t(case):
        if shown[0] >= 3:
            return
        r = w.run(case.model, case.inputs)
        if r is None:
            hit = what == "crash"
        elif what == "err":
            hit = any(isinstance(r[k], str) for k in ("xnn", "opt"))
        elif what in ("xnn", "opt") and not isinstance(r["ref"], str) and not isinstance(r[what], str):
            c = cmp(r["ref"], r[what])
            hit = c not in (None, -1) and c[0] > 0
        else:
            hit = False
        if not hit:
            return
        shown[0] += 1
        print("=== CASE", case.description)
        if r is None:
            # which resolver aborts: each in a fresh process (exit code -11 is a segmentation fault)
            for k in ("ref", "xnn", "opt"):
                p = mp.get_context("fork").Process(target=run, args=(case.model, case.inputs, k))
                p.start()
                p.join(60)
                print("   resolver", k, "exitcode", p.exitcode)
        else:
            print("plan", r.get("plan"))
            for k in ("ref", "xnn", "opt"):
                v = r[k]
                print(k, v if isinstance(v, str) else [np.asarray(a).ravel()[:24].tolist() for a in v])
        print("inputs", [np.asarray(a).ravel()[:24].tolist() for a in case.inputs])

    t()


if __name__ == "__main__":
    main()
