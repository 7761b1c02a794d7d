#!/usr/bin/env python
"""refquant vs LiteRT 2.3.0 on MobileNetV1/V2 224: speed, memory, load time and bit-exactness.

In one process, for each model and batch size, the engines run in alternation (refquant, LiteRT
BUILTIN_REF, LiteRT BUILTIN = default XNNPACK delegate, LiteRT BUILTIN_WITHOUT_DEFAULT_DELEGATES; LiteRT
with num_threads=1, refquant's BLAS limited to --threads, default 1), the order rotating every repeat,
and the table shows median invoke times and the ratio refquant / BUILTIN_REF measured in that same run.

Per configuration it also reports:

* load+prep: refquant ``Interpreter(model_path)`` + ``resize_tensor_input`` + ``allocate_tensors``
  (median of 3; imports excluded);
* peak RSS: in a fresh subprocess, VmHWM after one ``invoke`` (VmHWM reset just before it) minus VmRSS
  right after ``import refquant``, next to the budget 2 x (weights + all activations), where
  "weights" are the model's constant tensors and "activations" every tensor refquant keeps from the run;
* exact: refquant's outputs equal BUILTIN_REF's on the same input, and (for one run, with
  ``experimental_preserve_all_tensors=True``) every intermediate tensor too. Float models run twice:
  with refquant's default ``float_accumulation="float64"`` (BLAS sums, not bit-exact: the column shows
  the largest difference relative to the tensor's largest magnitude, and how many tensors are within the
  suite's float tolerance ``1e-4 * max|REF| + 1e-6``) and with ``"sequential"`` (LiteRT's float32 loop,
  bit-exact).

Missing models are generated with ``$TF_PYTHON golden/make_golden.py --big --only NAME``.

Usage (see bench/README.md; OPENBLAS_CORETYPE slows a current OpenBLAS, unset it for this command only)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/bench.py            # full table
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/bench.py --quick    # MobileNetV2, batch 1
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS_DIR = ROOT / "golden" / "big" / "models"
VECTORS_DIR = ROOT / "golden" / "big" / "vectors"
#: The Python of an environment with the ``golden`` extra (TensorFlow), for models not yet generated.
TF_PYTHON = os.environ.get("TF_PYTHON", sys.executable)

#: (label, model file stem, refquant float_accumulation) in table order.
MODELS = [
    ("MobileNetV1 int8", "mobilenetv1_100_224_int8_ptq", "float64"),
    ("MobileNetV2 int8", "mobilenetv2_100_224_int8_ptq", "float64"),
    ("MobileNetV2 int16x8", "mobilenetv2_100_224_int16x8", "float64"),
    ("MobileNetV1 float", "mobilenetv1_100_224_float", "float64"),
    ("MobileNetV2 float", "mobilenetv2_100_224_float", "float64"),
    ("MobileNetV1 float seq", "mobilenetv1_100_224_float", "sequential"),
    ("MobileNetV2 float seq", "mobilenetv2_100_224_float", "sequential"),
]
QUICK_MODELS = ["MobileNetV2 int8", "MobileNetV2 int16x8", "MobileNetV2 float", "MobileNetV2 float seq"]
#: Float tolerance of the float64 rows (tests/test_golden_models.py): |d| <= FLOAT_RTOL * max|REF| + FLOAT_ATOL.
FLOAT_RTOL, FLOAT_ATOL = 1e-4, 1e-6
ENGINES = ["refquant", "REF", "XNNPACK", "no-deleg"]


def _limit_threads(n: int) -> None:
    """Limit BLAS threads of this process (threadpoolctl when installed, else environment before numpy)."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(n))
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(n)


def blas_info() -> str:
    """Which BLAS (and which OpenBLAS kernel) NumPy runs here, via threadpoolctl when installed."""
    import numpy as np

    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return f"numpy {np.__version__}; BLAS kernel unknown (pip install threadpoolctl to report it)"
    parts = []
    for p in threadpool_info():
        if p.get("user_api") == "blas":
            parts.append(
                f"{p.get('internal_api')} {p.get('version')} kernel={p.get('architecture')} threads={p.get('num_threads')}"
            )
    return f"numpy {np.__version__}; " + ("; ".join(parts) or "no BLAS found by threadpoolctl")


def machine_info() -> dict[str, str]:
    """nproc, CPU model, Python/NumPy/BLAS/LiteRT versions and the OpenBLAS environment."""
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import ai_edge_litert

        litert = getattr(ai_edge_litert, "__version__", "?")
    except ImportError:
        litert = "not installed"
    if litert == "?":
        try:
            from importlib.metadata import version

            litert = version("ai-edge-litert")
        except Exception:  # noqa: BLE001
            pass
    env = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
    try:
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        load = "?"
    return {
        "date": datetime.date.today().isoformat(),
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "blas": blas_info(),
        "litert": litert,
        "openblas_env": ", ".join(f"{k}={v}" for k, v in env.items()) or "unset",
        "loadavg": load,
    }


# ---------------------------------------------------------------------------------------------
# Models and inputs


def ensure_models(stems: list[str]) -> None:
    """Generate the missing models with the golden script (TensorFlow venv), or exit with a clear message."""
    missing = [s for s in stems if not (MODELS_DIR / f"{s}.tflite").exists()]
    if not missing:
        return
    print(f"missing models: {', '.join(missing)}; generating them with golden/make_golden.py --big", flush=True)
    if not Path(TF_PYTHON).exists():
        sys.exit(
            f"cannot generate {missing}: {TF_PYTHON} (a Python with tensorflow, see golden/README.md) does not exist; "
            "create it or copy the models into golden/big/models/"
        )
    probe = subprocess.run([TF_PYTHON, "-c", "import tensorflow"], capture_output=True, text=True)
    if probe.returncode != 0:
        sys.exit(f"cannot generate {missing}: tensorflow is not importable in {TF_PYTHON}:\n{probe.stderr[-2000:]}")
    cmd = [TF_PYTHON, str(ROOT / "golden" / "make_golden.py"), "--big", "--only", *missing]
    res = subprocess.run(cmd, cwd=ROOT)
    if res.returncode != 0:
        sys.exit(f"golden/make_golden.py failed (exit {res.returncode}): {' '.join(cmd)}")
    still = [s for s in missing if not (MODELS_DIR / f"{s}.tflite").exists()]
    if still:
        sys.exit(f"golden/make_golden.py did not produce {still}")


def make_input(stem: str, shape: list[int], dtype):
    """The golden input image for batch element 0 (smooth noise in [-1, 1]) and rolled copies of it for the
    rest of the batch; uniform noise in [-1, 1] when there is no golden vector."""
    import numpy as np

    shape = [int(d) for d in shape]
    one = None
    vec = VECTORS_DIR / f"{stem}.npz"
    if vec.exists():
        with np.load(vec) as z:
            if "input_0" in z and list(z["input_0"].shape[1:]) == shape[1:]:
                one = z["input_0"][:1]
    if one is None:
        one = np.random.default_rng(0).uniform(-1, 1, [1] + shape[1:])
    items = [np.roll(one, (7 * b, 13 * b), axis=(1, 2)) for b in range(shape[0])]
    return np.concatenate(items).astype(dtype)


# ---------------------------------------------------------------------------------------------
# Engines


class Refquant:
    name = "refquant"

    def __init__(self, path: Path, batch: int, float_accumulation: str = "float64"):
        import refquant

        t0 = time.perf_counter()
        self.it = refquant.Interpreter(model_path=str(path), float_accumulation=float_accumulation)
        self.inp = self.it.get_input_details()[0]
        if batch != 1:
            shape = list(self.inp["shape"])
            shape[0] = batch
            self.it.resize_tensor_input(self.inp["index"], shape)
        self.it.allocate_tensors()
        self.load_s = time.perf_counter() - t0
        self.out = self.it.get_output_details()[0]["index"]

    def set(self, x) -> None:
        self.it.set_tensor(self.inp["index"], x)

    def invoke(self) -> None:
        self.it.invoke()

    def output(self):
        return self.it.get_tensor(self.out)


class LiteRT:
    def __init__(self, name: str, path: Path, batch: int, preserve: bool = False):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        resolver = {
            "REF": OpResolverType.BUILTIN_REF,
            "XNNPACK": OpResolverType.BUILTIN,
            "no-deleg": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        }[name]
        self.name = name
        self.it = Interpreter(
            model_path=str(path),
            experimental_op_resolver_type=resolver,
            num_threads=1,
            experimental_preserve_all_tensors=preserve,
        )
        self.inp = self.it.get_input_details()[0]
        if batch != 1:
            shape = list(self.inp["shape"])
            shape[0] = batch
            self.it.resize_tensor_input(self.inp["index"], shape)
        self.it.allocate_tensors()
        self.out = self.it.get_output_details()[0]["index"]

    def set(self, x) -> None:
        self.it.set_tensor(self.inp["index"], x)

    def invoke(self) -> None:
        self.it.invoke()

    def output(self):
        return self.it.get_tensor(self.out)


def _equal(a, b) -> bool:
    import numpy as np

    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind == "f":
        return bool(np.array_equal(a.view(np.uint8), b.view(np.uint8)) or np.array_equal(a, b, equal_nan=True))
    return bool(np.array_equal(a, b))


def _rel_err(a, b) -> float:
    """max |a - b| / max |b| over finite elements (0 for equal arrays)."""
    import numpy as np

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    fin = np.isfinite(b)
    scale = float(np.abs(b[fin]).max(initial=0.0)) or 1.0
    return float(np.abs(a[fin] - b[fin]).max(initial=0.0)) / scale


def _close(a, b) -> bool:
    import numpy as np

    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype or a.dtype.kind != "f":
        return _equal(a, b)
    if not np.array_equal(np.isfinite(a), np.isfinite(b)):
        return False
    fin = np.isfinite(b)
    scale = float(np.abs(b[fin]).max(initial=0.0))
    return float(np.abs(a[fin].astype(np.float64) - b[fin]).max(initial=0.0)) <= FLOAT_RTOL * scale + FLOAT_ATOL


def exactness(path: Path, batch: int, x, rq: Refquant) -> tuple[bool, str]:
    """(output ok, "k/n" intermediates ok) between refquant and BUILTIN_REF on input ``x``.

    "ok" is equality, except for float tensors under ``float_accumulation="float64"``: within the float
    tolerance, and the output column then also gives the largest relative difference.
    """
    ref = LiteRT("REF", path, batch, preserve=True)
    ref.set(x)
    ref.invoke()
    rq.set(x)
    rq.invoke()
    # Only float32 CONV_2D / TRANSPOSE_CONV / FULLY_CONNECTED / BATCH_MATMUL depend on the option.
    approx = any(getattr(d, "accumulation", None) == "float64" for d in rq.it.trace.op_data if d is not None)
    same = _close if approx else _equal
    out_ok = same(rq.output(), ref.output())
    trace = rq.it.trace
    sg = rq.it.model.subgraphs[0]
    n = ok = 0
    worst = 0.0
    for i, v in trace.values.items():
        if sg.tensors[i].is_constant:
            continue
        try:
            theirs = ref.it.get_tensor(i)
        except ValueError:
            continue
        n += 1
        ok += same(v, theirs)
        if approx and v.dtype.kind == "f":
            worst = max(worst, _rel_err(v, theirs))
    if approx:
        out_rel = _rel_err(rq.output(), ref.output())
        return out_ok, f"{ok}/{n} within tolerance (max rel. diff {worst:.1e}; output {out_rel:.1e})"
    return out_ok, f"{ok}/{n}"


def time_engines(engines: list, x, repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Median-ready invoke times per engine, alternating engines (order rotated each repeat)."""
    for e in engines:
        e.set(x)
        for _ in range(warmup):
            e.invoke()
    times: dict[str, list[float]] = {e.name: [] for e in engines}
    for r in range(repeats):
        order = engines[r % len(engines) :] + engines[: r % len(engines)]
        for e in order:
            t0 = time.perf_counter()
            e.invoke()
            times[e.name].append(time.perf_counter() - t0)
    return times


# ---------------------------------------------------------------------------------------------
# Memory (one subprocess per configuration)


def _status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024.0
    raise KeyError(key)


def memory_child(stem: str, batch: int, threads: int, float_accumulation: str = "float64") -> None:
    """Run in a fresh process: print JSON with the import baseline and the peak during one invoke."""
    _limit_threads(threads)
    import numpy as np

    import refquant

    baseline = _status_mb("VmRSS")
    path = MODELS_DIR / f"{stem}.tflite"
    rq = Refquant(path, batch, float_accumulation)
    x = make_input(stem, [batch] + [int(d) for d in rq.inp["shape"][1:]], rq.inp["dtype"])
    rq.set(x)
    prepared = _status_mb("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        reset = True
    except OSError:
        reset = False
    rq.invoke()
    peak = _status_mb("VmHWM")
    sg = rq.it.model.subgraphs[0]
    weights = sum(int(t.data.nbytes) for t in sg.tensors if t.is_constant and t.data is not None)
    acts = sum(int(v.nbytes) for i, v in rq.it.trace.values.items() if not sg.tensors[i].is_constant)
    print(
        json.dumps(
            {
                "baseline_mb": baseline,
                "prepared_mb": prepared - baseline,
                "peak_mb": peak - baseline,
                "weights_mb": weights / 2**20,
                "activations_mb": acts / 2**20,
                "hwm_reset": reset,
                "refquant": refquant.__version__ if hasattr(refquant, "__version__") else "?",
                "numpy": np.__version__,
            }
        )
    )


def measure_memory(stem: str, batch: int, threads: int, float_accumulation: str = "float64") -> dict | None:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_memory", stem, str(batch), float_accumulation]
    cmd += ["--threads", str(threads)]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if res.returncode != 0:
        print(f"memory measurement failed for {stem} batch {batch}:\n{res.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(res.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------
# Main


def run(args: argparse.Namespace) -> list[dict]:
    import numpy as np

    configs = list(MODELS)
    if args.models:
        configs = [c for c in configs if any(m in c[1] for m in args.models)]
    elif args.quick:
        configs = [c for c in configs if c[0] in QUICK_MODELS]
    ensure_models(sorted({stem for _, stem, _ in configs}))
    rows = []
    for label, stem, acc in configs:
        path = MODELS_DIR / f"{stem}.tflite"
        for batch in args.batches:
            loads = []
            rq = None
            try:
                for _ in range(3):
                    rq = Refquant(path, batch, acc)
                    loads.append(rq.load_s)
                LiteRT("REF", path, batch)
            except Exception as exc:  # noqa: BLE001 - e.g. a RESHAPE whose constant shape fixes batch 1
                note = f"{label} batch {batch}: not runnable ({type(exc).__name__}: {str(exc)[:160]})"
                print(note, flush=True)
                rows.append({"model": label, "stem": stem, "batch": batch, "skipped": note})
                continue
            assert rq is not None
            x = make_input(stem, [batch] + [int(d) for d in rq.inp["shape"][1:]], rq.inp["dtype"])
            engines = [rq] + [LiteRT(n, path, batch) for n in ("REF", "XNNPACK", "no-deleg")]
            repeats = args.repeats if args.repeats else (3 if args.quick else (7 if batch == 1 else 3))
            times = time_engines(engines, x, repeats)
            med = {k: float(np.median(v)) for k, v in times.items()}
            out_ok, inter = exactness(path, batch, x, rq) if not args.no_exact else (None, "-")
            mem = (
                measure_memory(stem, batch, args.threads, acc)
                if (not args.no_memory and batch in args.memory_batches)
                else None
            )
            row = {
                "model": label,
                "stem": stem,
                "float_accumulation": acc,
                "batch": batch,
                "repeats": repeats,
                "ms": {k: v * 1000 for k, v in med.items()},
                "ratio_ref": med["refquant"] / med["REF"],
                "load_prepare_s": float(np.median(loads)),
                "exact_output": out_ok,
                "exact_intermediates": inter,
                "memory": mem,
            }
            rows.append(row)
            print(format_row(row), flush=True)
            del engines, rq
    return rows


HEADER = (
    f"{'model':<22} {'b':>2} {'refquant':>9} {'REF':>9} {'ratio':>6} {'XNNPACK':>8} {'no-deleg':>8} "
    f"{'load+prep':>9} {'peak RSS / budget':>18} {'exact out / all':>16}"
)


def format_row(r: dict) -> str:
    ms = r["ms"]
    mem = r["memory"]
    mem_s = f"{mem['peak_mb']:.1f} / {2 * (mem['weights_mb'] + mem['activations_mb']):.1f} MB" if mem else "-"
    exact = "-" if r["exact_output"] is None else f"{'yes' if r['exact_output'] else 'NO'} / {r['exact_intermediates']}"
    return (
        f"{r['model']:<22} {r['batch']:>2} {ms['refquant']:>7.1f}ms {ms['REF']:>7.1f}ms {r['ratio_ref']:>5.2f}x "
        f"{ms['XNNPACK']:>6.1f}ms {ms['no-deleg']:>6.1f}ms {r['load_prepare_s']:>8.3f}s {mem_s:>18} {exact:>16}"
    )


def markdown(rows: list[dict], info: dict[str, str], threads: int) -> str:
    lines = [
        f"Run {info['date']} on {info['nproc']} x {info['cpu']} (load average at start {info['loadavg']}); "
        f"Python {info['python']}; {info['blas']}; OPENBLAS env: {info['openblas_env']}; "
        f"ai-edge-litert {info['litert']} with num_threads=1; refquant BLAS threads {threads}.",
        "",
        "| model | batch | refquant ms | REF ms | refquant/REF | XNNPACK ms | no-delegate ms | load+prepare s "
        "| peak RSS above import (budget) MB | output / intermediates equal to REF (float64 rows: within 1e-4) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        if "skipped" in r:
            lines.append(
                f"| {r['model']} | {r['batch']} | not runnable: the model's RESHAPE fixes batch 1 "
                "(LiteRT and refquant both refuse it) | | | | | | | |"
            )
            continue
        ms, mem = r["ms"], r["memory"]
        mem_s = f"{mem['peak_mb']:.1f} ({2 * (mem['weights_mb'] + mem['activations_mb']):.1f})" if mem else "-"
        exact = (
            "-" if r["exact_output"] is None else f"{'yes' if r['exact_output'] else 'NO'} / {r['exact_intermediates']}"
        )
        lines.append(
            f"| {r['model']} | {r['batch']} | {ms['refquant']:.1f} | {ms['REF']:.1f} | {r['ratio_ref']:.2f}x | "
            f"{ms['XNNPACK']:.1f} | {ms['no-deleg']:.1f} | {r['load_prepare_s']:.3f} | {mem_s} | {exact} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="MobileNetV2 int8/int16x8/float at batch 1, 3 repeats")
    ap.add_argument("--models", nargs="+", metavar="SUBSTR", help="only models whose file name contains one of these")
    ap.add_argument("--batches", nargs="+", type=int, default=None, help="batch sizes (default 1 8; --quick: 1)")
    ap.add_argument("--repeats", type=int, default=0, help="timed runs per engine (default 7 at batch 1, 3 above)")
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads for refquant (LiteRT uses 1)")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-RSS subprocesses")
    ap.add_argument("--memory-batches", nargs="+", type=int, default=[1, 8], help="batches to measure memory for")
    ap.add_argument("--no-exact", action="store_true", help="skip the bit-exactness check")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    ap.add_argument("--markdown", metavar="FILE", help="also write the results as a Markdown table")
    ap.add_argument("--_memory", nargs=3, metavar=("STEM", "BATCH", "ACC"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._memory:
        memory_child(args._memory[0], int(args._memory[1]), args.threads, args._memory[2])
        return 0
    if args.batches is None:
        args.batches = [1] if args.quick else [1, 8]
    _limit_threads(args.threads)
    info = machine_info()
    print(
        f"{info['date']}  {info['nproc']} x {info['cpu']}  load {info['loadavg']}\n{info['blas']}\n"
        f"OPENBLAS env: {info['openblas_env']}; LiteRT {info['litert']} (num_threads=1); refquant BLAS threads "
        f"{args.threads}\n"
    )
    print(HEADER, flush=True)
    rows = run(args)
    md = markdown(rows, info, args.threads)
    print("\n" + md)
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "rows": rows}, indent=1))
    if args.markdown:
        Path(args.markdown).write_text(md + "\n")
    bad = [r for r in rows if r.get("exact_output") is False]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
