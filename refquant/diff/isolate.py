"""``refquant diff --isolate``: every operator recomputed from OTHER's own inputs.

A difference in one operator spreads to everything after it, so comparing tensors names only the
first wrong operator. Isolation runs each operator (through the engine seam) on the input values OTHER
itself dumped and compares the result with OTHER's output: an operator whose output does not follow
from its own inputs is wrong by itself (``local``), whatever happened before it. ``--explain`` then
asks which known arithmetic reproduces its values (:mod:`refquant.diff.explain`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import InputError, RefquantError
from ..escape import terminal
from ..model import Model
from ..options import EngineOptions, engine_options
from .dump import Dump, DumpTensor, load_dump
from .explain import Candidates, explain_operator
from .tensors import (
    check_tolerance,
    count_value,
    differences,
    format_number,
    json_value,
    real_differences,
    tensor_range,
)

__all__ = ["isolate_operators", "format_isolated"]


def _dump_model(ref: Dump, model: Any) -> tuple[Model, str]:
    """The model REF was made from: ``model`` (a path or Model) or the manifest's ``model`` path, checked by SHA-256."""
    from ..golden import sha256_file
    from ..tflite.reader import load_model

    if isinstance(model, Model):
        return model, "<model>"
    path = model if model is not None else ref.manifest.get("model")
    if not isinstance(path, (str, os.PathLike)) or not os.path.isfile(path):
        raise InputError(
            f"isolating operators needs the model: REF's manifest names {path!r}, which is not a file; give --model"
        )
    want = ref.manifest.get("model_sha256")
    if isinstance(want, str) and sha256_file(path) != want:
        raise InputError(f"model {os.fspath(path)!r} is not the model REF was made from (SHA-256 differs)")
    return load_model(path), os.fspath(path)


def _as_model_dtype(arr: np.ndarray, want: np.dtype) -> np.ndarray:
    """A dumped array in the model tensor's dtype: integers stored wider (int32 for int8) and floats stored
    as float64 are converted when no value changes. Otherwise the array stays as it is: compared as an output it
    shows its differences; fed to an operator it makes that operator's entry an ``error`` naming the dtype."""
    if arr.dtype == want:
        return arr
    if want.kind in "iu" and arr.dtype.kind in "iub":
        info = np.iinfo(want)
        if arr.size == 0 or (int(arr.min()) >= info.min and int(arr.max()) <= info.max):
            return arr.astype(want)
    elif want.kind == "f" and arr.dtype.kind == "f":
        conv = arr.astype(want)
        if np.array_equal(conv.astype(arr.dtype), arr, equal_nan=True):
            return conv
    elif want.kind == "b" and arr.dtype.kind in "iub" and (arr.size == 0 or set(np.unique(arr).tolist()) <= {0, 1}):
        return arr.astype(want)
    return arr


def _sample_arrays(dump: Dump, t: DumpTensor, n: int, want: np.dtype) -> np.ndarray | None:
    """``(n, *shape)`` values of a dumped tensor (constants repeated) in the model's dtype, or None when it has
    fewer samples."""
    arr = _as_model_dtype(np.asarray(dump.load(t)), want)
    if not t.per_sample:
        return np.broadcast_to(arr, (n, *arr.shape))
    return arr if arr.shape[0] >= n else None


def isolate_operators(
    ref_dir: str | os.PathLike,
    other_dir: str | os.PathLike,
    model: Any = None,
    *,
    options: EngineOptions | None = None,
    explain: bool = False,
    float_tolerance: float = 0.0,
    limits: EngineOptions | None = None,
) -> dict[str, Any]:
    """Recompute every operator from OTHER's own dumped inputs and compare with OTHER's dumped outputs.

    An operator whose output differs from refquant's computation *given the same inputs* is wrong by
    itself (``"status": "local"``); one whose output follows from its inputs is not, even when its
    inputs already differ from REF's (``"inherited": true``). Inputs OTHER lacks are taken from REF
    (named in ``"inputs_from_ref"``), constants from the model. ``model``: the model REF was made from
    (default: the path in REF's manifest, checked against its SHA-256). ``options``: the arithmetic
    (default: REF manifest's ``arithmetic``, ``rounding`` and ``float_accumulation``, with the memory and work
    bounds of ``limits``).

    Returns ``{"model", "arithmetic", "samples", "operators": [...], "isolated": [...]}``; each
    operator entry has ``op_index``, ``opcode``, ``status`` (``local``, ``equal``, ``skipped``,
    ``error``), ``inherited``, and for compared ones ``mismatched``, ``total``, ``unit``, ``max_abs_diff``
    (``max_lsb`` for integer outputs) and ``first_mismatch``; ``isolated`` lists the ``local`` ones.
    Float outputs count as equal within ``float_tolerance`` of their range. ``explain``: each ``local``
    operator also gets ``explanation`` (the profile or variant that reproduces OTHER's values, or
    ``"unexplained"``) and ``explain`` (every candidate tried; :func:`refquant.diff.explain.explain_operator`).
    Without ``explain`` the entries carry ``explanation: null``.
    """
    from ..engine import Engine

    float_tolerance = check_tolerance(float_tolerance, "float tolerance")
    ref = load_dump(ref_dir)
    other = load_dump(other_dir)
    m, mpath = _dump_model(ref, model)
    if options is None:
        options = engine_options(
            limits,
            rounding=str(ref.manifest.get("rounding", "double")),
            float_accumulation=str(ref.manifest.get("float_accumulation", "float64")),
            arithmetic=str(ref.manifest.get("arithmetic", "litert-ref")),
        )
    engine = Engine(m, 0, options)
    cands = Candidates(m, 0, options) if explain else None
    sg = m.main
    r_idx, o_idx, o_name = ref.by_index(), other.by_index(), other.by_name()
    counts = [c for c in (ref.samples, other.samples) if c is not None]
    n = min(counts) if counts else 1

    def find_other(i: int) -> DumpTensor | None:
        t = o_idx.get(i)
        return t if t is not None else o_name.get(sg.tensors[i].name)

    cache: dict[tuple[str, int], np.ndarray | None] = {}

    def values(which: str, i: int) -> np.ndarray | None:
        key = (which, i)
        if key not in cache:
            dump, t = (other, find_other(i)) if which == "other" else (ref, r_idx.get(i))
            cache[key] = None if t is None else _sample_arrays(dump, t, n, sg.tensors[i].np_dtype)
        return cache[key]

    entries: list[dict[str, Any]] = []
    for op in sg.operators:
        e: dict[str, Any] = {"op_index": op.index, "opcode": op.opcode, "inherited": False}
        entries.append(e)
        ins: list[np.ndarray | None] = []
        from_ref: list[int] = []
        for i in op.inputs:
            if i < 0:
                ins.append(None)
            elif sg.tensors[i].is_constant:
                ins.append(np.broadcast_to(sg.tensors[i].data, (n, *sg.tensors[i].shape)))
            else:
                v = values("other", i)
                if v is None:
                    v = values("ref", i)
                    from_ref.append(i)
                else:
                    rv = values("ref", i)
                    if rv is not None and rv.shape == v.shape and not np.array_equal(rv, v, equal_nan=True):
                        e["inherited"] = True
                ins.append(v)
        outs = [values("other", o) for o in op.outputs]
        if from_ref:
            e["inputs_from_ref"] = from_ref
        if any(v is None for v, i in zip(ins, op.inputs) if i >= 0) or all(v is None for v in outs):
            e.update(status="skipped", reason="inputs or outputs missing from both dumps")
            continue
        try:
            got = [engine.eval_op(op.index, [None if a is None else np.asarray(a[s]) for a in ins]) for s in range(n)]
        except RefquantError as exc:
            e.update(status="error", reason=str(exc))
            continue
        mismatched = total = 0
        worst = 0.0
        unit = "LSB"
        first = None
        for j, o in enumerate(op.outputs):
            if outs[j] is None:
                continue
            want = np.stack([g[j] for g in got])
            have = np.asarray(outs[j][:n])
            if have.shape != want.shape:
                e.update(
                    status="error",
                    reason=f"OTHER's tensor {o} has shape {list(have.shape[1:])}, expected {list(want.shape[1:])}",
                )
                break
            d, unit = differences(want, have)
            if unit == "ULP":
                unit = "real"
                d = real_differences(want, have)
                bad = d / tensor_range(want) > float_tolerance
            else:
                bad = d > 0
            total += int(d.size)
            mismatched += int(np.count_nonzero(bad))
            worst = max(worst, float(d.max(initial=0.0)))
            if first is None and bad.any():
                pos = tuple(int(p) for p in np.unravel_index(int(np.argmax(bad.reshape(-1))), bad.shape))
                first = {
                    "tensor_index": o,
                    "sample": pos[0],
                    "element": list(pos[1:]),
                    "expected": json_value(want[pos]),
                    "actual": json_value(have[pos]),
                    "difference": count_value(float(d[pos])),
                }
        if e.get("status") == "error":
            continue
        e.update(
            status="local" if mismatched else "equal",
            mismatched=mismatched,
            total=total,
            unit=unit,
            max_abs_diff=count_value(worst),
        )
        if unit == "LSB":
            e["max_lsb"] = count_value(worst)
        if first is not None:
            e["first_mismatch"] = first
        if mismatched:
            e["explanation"] = None
            if cands is not None:
                why = explain_operator(cands, op.index, ins, outs, n, float_tolerance)
                e["explanation"] = why.pop("explanation")
                e["explain"] = why
    isolated = [e for e in entries if e["status"] == "local"]
    common = _common_explanation(isolated) if explain else []
    return {
        "ref": str(ref.root),
        "other": str(other.root),
        "model": mpath,
        "explained": explain,
        "explained_by": common,
        "float_tolerance": float_tolerance,
        "arithmetic": options.describe(),
        "samples": n,
        "operators": entries,
        "isolated": isolated,
    }


def _common_explanation(isolated: list[dict[str, Any]]) -> list[str]:
    """The candidates that reproduce every local operator, in candidate order; each operator's explanation
    becomes the first of them (an operator several candidates reproduce is attributed to the one that
    explains the whole dump)."""
    if not isolated or any(e.get("explanation") in (None, "unexplained") for e in isolated):
        return []
    order = [t["name"] for t in isolated[0]["explain"]["tried"]]
    common = [c for c in order if all(c in e["explain"]["matches"] for e in isolated)]
    for e in isolated:
        if common:
            e["explanation"] = common[0]
    return common


def _explanation_lines(e: Mapping[str, Any]) -> list[str]:
    ex = e.get("explain")
    if ex is None:
        return []
    if e["explanation"] != "unexplained":
        also = [m for m in ex["matches"] if m != e["explanation"]]
        more = f" (also: {', '.join(also)})" if also else ""
        return [f"      explained by {e['explanation']}: it reproduces every element{more}"]
    out = ["      UNEXPLAINED: no candidate arithmetic reproduces OTHER's values"]
    if "envelope_lsb" in ex:
        out.append(
            f"      OTHER lies within {ex['envelope_lsb']} LSB of the span of the candidates, and at most "
            f"{format_number(ex['exact_max_lsb'])} LSB from the exact value"
        )
    if "closest" in ex:
        out.append(f"      closest: {ex['closest']['name']} ({ex['closest']['mismatched']} elements differ)")
    tried = ", ".join(t["name"] + ("" if "mismatched" in t else f" ({t['status']})") for t in ex["tried"])
    out.append(f"      tried: {tried}")
    return out


def format_isolated(doc: Mapping[str, Any]) -> str:
    """The human-readable report of :func:`isolate_operators` (the same facts as its JSON)."""
    ops = doc["operators"]
    ar = doc["arithmetic"]
    lines = [
        f"every operator recomputed from OTHER's own inputs ({doc['samples']} sample(s), arithmetic "
        f"{ar.get('arithmetic', 'litert-ref')}, rounding {ar['rounding']}):"
    ]
    counts: dict[str, int] = {}
    for e in ops:
        counts[e["status"]] = counts.get(e["status"], 0) + 1
    lines.append("  " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    if not doc["isolated"]:
        lines.append("no operator is wrong given its inputs")
    else:
        lines.append(f"{len(doc['isolated'])} operator(s) wrong given their own inputs:")
        if doc.get("explained"):
            bugs = sum(1 for e in doc["isolated"] if e["explanation"] == "unexplained")
            lines.append(
                f"  {len(doc['isolated']) - bugs} reproduced exactly by a known arithmetic (legal rounding variants), "
                f"{bugs} unexplained (no known arithmetic gives these values: look for a bug)"
            )
        if doc.get("explained_by"):
            lines.append(f"  every one of them is reproduced exactly by: {', '.join(doc['explained_by'])}")
        for e in doc["isolated"]:
            fm = e["first_mismatch"]
            worst = format_number(e["max_abs_diff"])
            lines.append(
                f"  operator {e['op_index']} ({e['opcode']}): {e['mismatched']}/{e['total']} elements differ, "
                f"max {worst} {e['unit']}; first: tensor {fm['tensor_index']} sample "
                f"{fm['sample']} element {fm['element']}: refquant {fm['expected']}, OTHER {fm['actual']}"
                + ("; its inputs already differ from REF" if e["inherited"] else "")
            )
            lines.extend(_explanation_lines(e))
    for e in ops:
        if e["status"] in ("error", "skipped"):
            lines.append(f"  operator {e['op_index']} ({e['opcode']}) {e['status']}: {e['reason']}")
    return terminal("\n".join(lines), keep_newlines=True)
