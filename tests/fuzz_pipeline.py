"""Fuzz the whole pipeline (load -> allocate_tensors -> set_tensor -> invoke) on mutated golden models.

Run locally for many cases (documented in the README)::

    python -m tests.fuzz_pipeline --cases 100000 [--models NAME ...] [--seed 0]

Every failure must be a ``refquant.RefquantError`` with a message; anything else, a run longer
than ``--timeout`` seconds, or an allocation above the memory bound is reported as a finding.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections import Counter

import numpy as np

import refquant
from tests.fuzzing import mutate
from tests.golden_models import model_names, model_path

#: Memory bound used while fuzzing (bytes of tensors per run): mutated batch sizes make valid but
#: arbitrarily large runs, which the bound turns into a ResourceLimitError instead of minutes of work.
FUZZ_MEMORY_LIMIT = 32 << 20  # golden runs hold < 8 MB; larger mutated shapes are valid but slow work


class Hang(Exception):
    """Raised by the alarm when one case runs too long."""


def _alarm(signum, frame):  # pragma: no cover - only fires on a hang
    raise Hang()


def random_inputs(it: refquant.Interpreter, rng: np.random.Generator) -> list[np.ndarray]:
    """Random arrays matching the interpreter's input details."""
    out = []
    for d in it.get_input_details():
        dt = np.dtype(d["dtype"])
        shape = tuple(int(s) for s in d["shape"])
        if dt.kind == "f":
            arr = rng.normal(0, 2, shape).astype(dt)
        elif dt.kind in "iu":
            info = np.iinfo(dt)
            arr = rng.integers(max(info.min, -(2**31)), min(info.max, 2**31 - 1), shape, endpoint=True).astype(dt)
        elif dt.kind == "b":
            arr = rng.integers(0, 2, shape).astype(bool)
        else:
            arr = np.zeros(shape, dt)
        out.append(arr)
    return out


def run_case(data: bytes, rng: np.random.Generator) -> str:
    """Run one (possibly malformed) model through the pipeline; returns the outcome class."""
    try:
        model = refquant.load_model(data)
        it = refquant.Interpreter(model=model, memory_limit=FUZZ_MEMORY_LIMIT)
        it.allocate_tensors()
        for d, x in zip(it.get_input_details(), random_inputs(it, rng)):
            it.set_tensor(d["index"], x)
        it.invoke()
    except refquant.RefquantError as exc:
        if not str(exc):
            raise AssertionError(f"{type(exc).__name__} without a message") from exc
        return type(exc).__name__
    return "ran"


def fuzz(names: list[str], cases: int, seed: int, timeout: float) -> tuple[Counter, list[str]]:
    """Run ``cases`` mutations spread over ``names``; return outcome counts and findings."""
    rng = np.random.default_rng(seed)
    datas = {n: model_path(n).read_bytes() for n in names}
    counts: Counter = Counter()
    findings: list[str] = []
    old = signal.signal(signal.SIGALRM, _alarm)
    try:
        for k in range(cases):
            name = names[k % len(names)]
            bad, desc = mutate(datas[name], rng)
            signal.setitimer(signal.ITIMER_REAL, timeout)
            try:
                counts[run_case(bad, rng)] += 1
            except Hang:
                findings.append(f"{name}: {desc}: hang (> {timeout} s)")
            except Exception as exc:  # noqa: BLE001 - a foreign exception is the finding
                findings.append(f"{name}: {desc}: {type(exc).__name__}: {exc}")
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        signal.signal(signal.SIGALRM, old)
    return counts, findings


def small_models() -> list[str]:
    """Golden models small enough to fuzz quickly."""
    return [n for n in model_names() if model_path(n).stat().st_size < 400_000]


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: fuzz and print outcome counts and findings."""
    ap = argparse.ArgumentParser(prog="python -m tests.fuzz_pipeline", description=__doc__)
    ap.add_argument("--cases", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--models", nargs="*", default=None)
    args = ap.parse_args(argv)
    names = args.models or small_models()
    t0 = time.time()
    counts, findings = fuzz(names, args.cases, args.seed, args.timeout)
    print(f"{args.cases} cases over {len(names)} models in {time.time() - t0:.0f} s")
    for k, v in counts.most_common():
        print(f"  {k:24s} {v}")
    print(f"findings: {len(findings)}")
    for f in findings[:50]:
        print("  " + f)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
