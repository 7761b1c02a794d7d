#!/usr/bin/env python
"""Profile refquant invokes with pyinstrument (``pip install pyinstrument``), and time every operator.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/profile.py mobilenetv2_100_224_int8_ptq
    python bench/profile.py mobilenetv2_100_224_float --batch 8 --invokes 3 --ops

Prints pyinstrument's call tree of ``--invokes`` invokes (after one warm-up) and, with ``--ops``, the time per
operator type and the slowest operators (each op's ``eval`` wrapped with a timer).
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import MODELS_DIR, _limit_threads, ensure_models, make_input  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="file stem in golden/big/models, e.g. mobilenetv2_100_224_int8_ptq")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--invokes", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads")
    ap.add_argument("--ops", action="store_true", help="also time every operator")
    args = ap.parse_args()
    _limit_threads(args.threads)
    ensure_models([args.model])
    import refquant

    it = refquant.Interpreter(model_path=str(MODELS_DIR / f"{args.model}.tflite"))
    d = it.get_input_details()[0]
    shape = [args.batch] + [int(v) for v in d["shape"][1:]]
    if args.batch != 1:
        it.resize_tensor_input(d["index"], shape)
    it.allocate_tensors()
    it.set_tensor(d["index"], make_input(args.model, shape, d["dtype"]))
    it.invoke()
    try:
        from pyinstrument import Profiler
    except ImportError:
        print("pyinstrument is not installed (pip install pyinstrument); skipping the call tree")
    else:
        prof = Profiler(interval=0.0002)
        prof.start()
        for _ in range(args.invokes):
            it.invoke()
        prof.stop()
        print(prof.output_text(unicode=False, color=False))
    if args.ops:
        graph = it._graph
        assert graph is not None
        per_type: collections.Counter = collections.Counter()
        per_op: collections.Counter = collections.Counter()
        for k, data in enumerate(graph.op_data):
            if data is None:
                continue
            key = f"{graph.subgraph.operators[k].opcode} ({type(data).__name__})"

            def timed(inputs, _f=data.eval, _key=key, _k=k):
                t0 = time.perf_counter()
                out = _f(inputs)
                dt = time.perf_counter() - t0
                per_type[_key] += dt
                per_op[_k] += dt
                return out

            object.__setattr__(data, "eval", timed)  # instance attribute on the frozen dataclass
        for _ in range(args.invokes):
            it.invoke()
        n = args.invokes
        print(f"{'operator type':<50} {'ms per invoke':>14}")
        for key, v in per_type.most_common():
            print(f"{key:<50} {v * 1000 / n:14.2f}")
        print("\nslowest operators:")
        for k, v in per_op.most_common(10):
            op = graph.subgraph.operators[k]
            shapes = [list(graph.infos[i].shape) for i in op.inputs if i >= 0][:2]
            print(f"  {k:4d} {op.opcode:<20} {str(shapes):<45} {v * 1000 / n:8.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
