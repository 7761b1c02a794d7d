"""docs/diff_json.md: its schema holds for its example and for the JSON of real ``refquant diff`` runs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import refquant
from refquant.cli import main
from refquant.engine import Engine
from refquant.golden import export_golden, write_dump
from tests.golden_models import model_path, vectors_path

DOC = Path(__file__).resolve().parent.parent / "docs" / "diff_json.md"
_TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


def _block(tag: str) -> Any:
    m = re.search(r"```json " + tag + r"\n(.*?)\n```", DOC.read_text(), re.S)
    assert m, f"docs/diff_json.md has no ```json {tag} block"
    return json.loads(m.group(1))


def _is(value: Any, t: str) -> bool:
    if t == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, _TYPES[t])


def validate(value: Any, schema: dict, root: dict, where: str = "$") -> list[str]:
    """The errors of ``value`` against the subset of JSON Schema the doc uses (type, enum, required,
    properties, items, $ref)."""
    if "$ref" in schema:
        return validate(value, root["$defs"][schema["$ref"].rsplit("/", 1)[-1]], root, where)
    errors = []
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is(value, t) for t in types):
            return [f"{where}: {value!r:.60} is not {types}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} not in {schema['enum']}")
    if isinstance(value, dict):
        errors += [f"{where}: missing {k!r}" for k in schema.get("required", ()) if k not in value]
        for k, sub in schema.get("properties", {}).items():
            if k in value:
                errors += validate(value[k], sub, root, f"{where}.{k}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors += validate(item, schema["items"], root, f"{where}[{i}]")
    return errors


def run_json(argv: list[str], capsys) -> tuple[int, dict]:
    code = main(argv)
    return code, json.loads(capsys.readouterr().out)


def test_the_validator_can_fail():
    schema = _block("schema")
    assert validate({"ref": 1}, schema, schema)
    good = _block("example")
    bad = json.loads(json.dumps(good))
    bad["isolated"][0]["status"] = "weird"
    assert any("weird" in e for e in validate(bad, schema, schema))


def test_doc_example_matches_the_schema():
    schema = _block("schema")
    assert validate(_block("example"), schema, schema) == []


@pytest.fixture(scope="module")
def dumps(tmp_path_factory) -> tuple[Path, Path, Path]:
    """REF, a device with one wrong CONV_2D element (later operators computed from it), and an NCHW dump."""
    root = tmp_path_factory.mktemp("schema")
    name = "digits_int8_ptq"
    x = np.load(vectors_path(name))["input_0"]
    x = np.concatenate([x, np.roll(x, 3, axis=1)])
    np.savez(root / "data.npz", input_0=x)
    export_golden(model_path(name), root / "data.npz", root / "ref")
    model = refquant.load_model(model_path(name))
    eng = Engine(model)
    sg = model.main
    runs = []
    for s in range(2):
        values = {i: t.data for i, t in enumerate(sg.tensors) if t.data is not None}
        values[sg.inputs[0]] = x[s : s + 1]
        for op in sg.operators:
            outs = eng.eval_op(op.index, [values[i] if i >= 0 else None for i in op.inputs])
            if op.index == 3:
                outs[0] = outs[0].copy()
                outs[0].reshape(-1)[7] += 1 if outs[0].reshape(-1)[7] < 127 else -1
            values.update(zip(op.outputs, outs))
        runs.append(values)
    act = [t.index for t in sg.tensors if not t.is_constant]
    write_dump(root / "dev", {i: np.stack([r[i] for r in runs]) for i in act}, model=model)
    nchw = {}
    for i in act:
        a = np.stack([r[i] for r in runs])
        if a.ndim == 5:
            a = np.ascontiguousarray(a.transpose(0, 1, 4, 2, 3)).reshape(a.shape)
        nchw[i] = a
    write_dump(root / "nchw", nchw, model=model)
    return root / "ref", root / "dev", root / "nchw"


@pytest.mark.parametrize("which", ["self", "dev", "nchw"])
def test_real_runs_match_the_schema(dumps, capsys, which):
    ref, dev, nchw = dumps
    other = {"self": ref, "dev": dev, "nchw": nchw}[which]
    schema = _block("schema")
    code, doc = run_json(["diff", str(ref), str(other), "--explain", "--json"], capsys)
    assert code == (0 if which == "self" else 1)
    assert validate(doc, schema, schema) == []
    if which == "dev":
        assert [(e["op_index"], e["explanation"]) for e in doc["isolated"]] == [(3, "unexplained")]
    if which == "nchw":
        hints = [r["layout_hint"]["layout"] for r in doc["tensors"] if "layout_hint" in r]
        assert hints and set(hints) == {"NCHW"}
    code, plain = run_json(["diff", str(ref), str(other), "--json"], capsys)
    assert validate(plain, schema, schema) == [] and "isolated" not in plain
