"""schema/tflite.fbs is current in _schema.py and agrees with the schema LiteRT ships."""

from __future__ import annotations

import inspect
import re

import pytest

from refquant.tflite import _schema, schemagen


def test_generated_tables_are_current():
    assert schemagen.generate() == schemagen.OUTPUT_PATH.read_text(encoding="utf-8"), (
        "run: python -m refquant.tflite.schemagen"
    )


def test_schema_basics():
    assert _schema.FILE_IDENTIFIER == "TFL3"
    assert _schema.ROOT_TYPE == "Model"
    ops = _schema.ENUMS["BuiltinOperator"][1]
    assert ops["ADD"] == 0 and ops["CONV_2D"] == 3 and ops["BATCH_MATMUL"] == 126 and ops["GELU"] == 150
    assert _schema.UNIONS["BuiltinOptions"][0] == "Conv2DOptions"


def _camel(name: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in name.split("_"))


@pytest.fixture(scope="module")
def generated():
    gen = pytest.importorskip("ai_edge_litert.schema_py_generated")
    return gen, inspect.getsource(gen)


def test_enum_values_match_litert(generated):
    gen, _ = generated
    checked = 0
    for name, (_base, members) in _schema.ENUMS.items():
        cls = getattr(gen, name, None)
        if cls is None:
            continue
        for member, value in members.items():
            assert getattr(cls, member) == value, f"{name}.{member}"
            checked += 1
    assert checked > 250


def test_union_members_match_litert(generated):
    gen, _ = generated
    for name, members in _schema.UNIONS.items():
        cls = getattr(gen, name)
        for i, member in enumerate(members, start=1):
            assert getattr(cls, member) == i, f"{name}.{member}"


def test_table_field_ids_match_litert(generated):
    _, src = generated
    classes = re.split(r"\nclass (\w+)\(object\):", src)
    bodies = dict(zip(classes[1::2], classes[2::2]))
    checked = 0
    for table, fields in _schema.TABLES.items():
        body = bodies.get(table)
        if body is None:
            continue
        slots = {
            m.group(1): (int(m.group(2)) - 4) // 2
            for m in re.finditer(r"def (\w+)\(self[^)]*\):\s+o = [^\n]*Offset\((\d+)\)", body)
        }
        for fname, slot, kind, _ftype, _default in fields:
            camel = _camel(fname)
            if kind == "union":
                assert slots[camel + "Type"] == slot - 1, f"{table}.{fname}_type"
            assert slots[camel] == slot, f"{table}.{fname}"
            checked += 1
    assert checked > 300
