"""Compile ``schema/tflite.fbs`` into the declarative tables of ``refquant/tflite/_schema.py``.

refquant reads and writes .tflite files with a small table-driven decoder/encoder instead of
flatc-generated classes: the generated Python of flatc verifies nothing, and a table-driven reader
checks every offset in one place. This module is the schema compiler; run

    python -m refquant.tflite.schemagen            # rewrite _schema.py
    python -m refquant.tflite.schemagen --check    # exit 1 if _schema.py is stale

It understands the subset of the flatbuffers IDL that the TFLite schema uses (no structs, no
nested namespaces, no ``id:`` attributes).
"""

from __future__ import annotations

import argparse
import pprint
import re
import sys
from pathlib import Path

SCALAR_SIZES = {
    "bool": 1,
    "byte": 1,
    "ubyte": 1,
    "int8": 1,
    "uint8": 1,
    "short": 2,
    "ushort": 2,
    "int16": 2,
    "uint16": 2,
    "int": 4,
    "uint": 4,
    "int32": 4,
    "uint32": 4,
    "float": 4,
    "float32": 4,
    "long": 8,
    "ulong": 8,
    "int64": 8,
    "uint64": 8,
    "double": 8,
    "float64": 8,
}
# Canonical scalar names used in the generated tables (struct format characters follow).
CANONICAL = {
    "int8": "byte",
    "uint8": "ubyte",
    "int16": "short",
    "uint16": "ushort",
    "int32": "int",
    "uint32": "uint",
    "int64": "long",
    "uint64": "ulong",
    "float32": "float",
    "float64": "double",
}

_TOKEN = re.compile(r'"[^"]*"|[A-Za-z_][A-Za-z0-9_.]*|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|[{}()\[\]:;,=]')


class SchemaSyntaxError(ValueError):
    """The schema file does not follow the accepted IDL subset."""


def _tokens(text: str) -> list[str]:
    text = re.sub(r"//[^\n]*", "", text)
    return _TOKEN.findall(text)


def parse_schema(text: str) -> dict:
    """Parse IDL text into ``{"enums", "unions", "tables", "root_type", "file_identifier"}``."""
    toks = _tokens(text)
    pos = 0

    def peek() -> str:
        return toks[pos] if pos < len(toks) else ""

    def take(expected: str | None = None) -> str:
        nonlocal pos
        if pos >= len(toks):
            raise SchemaSyntaxError(f"unexpected end of schema, expected {expected!r}")
        tok = toks[pos]
        if expected is not None and tok != expected:
            raise SchemaSyntaxError(f"expected {expected!r}, found {tok!r} (token {pos})")
        pos += 1
        return tok

    def attributes() -> list[str]:
        attrs = []
        if peek() == "(":
            take("(")
            while peek() != ")":
                attrs.append(take())
            take(")")
        return attrs

    enums: dict[str, tuple[str, dict[str, int]]] = {}
    unions: dict[str, list[str]] = {}
    tables: dict[str, list[dict]] = {}
    root_type = ""
    file_identifier = ""
    while pos < len(toks):
        kw = take()
        if kw in ("namespace", "file_extension", "attribute"):
            take()
            take(";")
        elif kw == "file_identifier":
            file_identifier = take().strip('"')
            take(";")
        elif kw == "root_type":
            root_type = take()
            take(";")
        elif kw == "enum":
            name = take()
            take(":")
            base = CANONICAL.get(take(), toks[pos - 1])
            attributes()
            take("{")
            members: dict[str, int] = {}
            value = -1
            while peek() != "}":
                member = take()
                if peek() == "=":
                    take("=")
                    value = int(take())
                else:
                    value += 1
                attributes()
                members[member] = value
                if peek() == ",":
                    take(",")
            take("}")
            enums[name] = (base, members)
        elif kw == "union":
            name = take()
            attributes()
            take("{")
            members_u: list[str] = []
            while peek() != "}":
                members_u.append(take())
                attributes()
                if peek() == ",":
                    take(",")
            take("}")
            unions[name] = members_u
        elif kw in ("table", "struct"):
            if kw == "struct":
                raise SchemaSyntaxError("structs are not supported by refquant's schema compiler")
            name = take()
            attributes()
            take("{")
            fields: list[dict] = []
            while peek() != "}":
                fname = take()
                take(":")
                is_vector = False
                if peek() == "[":
                    take("[")
                    ftype = take()
                    take("]")
                    is_vector = True
                else:
                    ftype = take()
                ftype = CANONICAL.get(ftype, ftype)
                default = None
                if peek() == "=":
                    take("=")
                    default = take()
                attrs = attributes()
                take(";")
                fields.append(
                    {
                        "name": fname,
                        "type": ftype,
                        "vector": is_vector,
                        "default": default,
                        "deprecated": "deprecated" in attrs,
                    }
                )
            take("}")
            tables[name] = fields
        else:
            raise SchemaSyntaxError(f"unexpected token {kw!r}")
    return {
        "enums": enums,
        "unions": unions,
        "tables": tables,
        "root_type": root_type,
        "file_identifier": file_identifier,
    }


def _default_value(field: dict, enums: dict) -> object:
    ftype, default = field["type"], field["default"]
    if ftype in enums:
        members = enums[ftype][1]
        if default is None:
            return 0
        return members[default] if default in members else int(default)
    if ftype == "bool":
        return default == "true"
    if ftype in ("float", "double"):
        return float(default) if default is not None else 0.0
    return int(default) if default is not None else 0


def compile_schema(parsed: dict) -> dict:
    """Resolve field ids, kinds and defaults into the tables ``_schema.py`` holds.

    Each table maps to a tuple of fields ``(name, slot, kind, type, default)`` where ``kind`` is one
    of ``scalar``, ``enum``, ``string``, ``table``, ``union`` (``slot`` is the value slot; the type
    byte is ``slot - 1``), ``vector_scalar``, ``vector_enum``, ``vector_string``, ``vector_table``.
    Deprecated fields keep their slot but are not listed.
    """
    enums, unions, tables = parsed["enums"], parsed["unions"], parsed["tables"]
    out_tables: dict[str, tuple] = {}
    for tname, fields in tables.items():
        slot = 0
        compiled = []
        for field in fields:
            ftype = field["type"]
            if ftype in unions:
                kind = "union"
                slot += 1  # the <name>_type byte takes one slot before the value
            elif field["vector"]:
                if ftype in SCALAR_SIZES:
                    kind = "vector_scalar"
                elif ftype in enums:
                    kind = "vector_enum"
                elif ftype == "string":
                    kind = "vector_string"
                elif ftype in tables:
                    kind = "vector_table"
                else:
                    raise SchemaSyntaxError(f"{tname}.{field['name']}: unknown vector type {ftype}")
            elif ftype in SCALAR_SIZES:
                kind = "scalar"
            elif ftype in enums:
                kind = "enum"
            elif ftype == "string":
                kind = "string"
            elif ftype in tables:
                kind = "table"
            else:
                raise SchemaSyntaxError(f"{tname}.{field['name']}: unknown type {ftype}")
            default = _default_value(field, enums) if kind in ("scalar", "enum") else None
            if not field["deprecated"]:
                compiled.append((field["name"], slot, kind, ftype, default))
            slot += 1
        out_tables[tname] = tuple(compiled)
    return {
        "FILE_IDENTIFIER": parsed["file_identifier"],
        "ROOT_TYPE": parsed["root_type"],
        "ENUMS": {name: (base, members) for name, (base, members) in enums.items()},
        "UNIONS": {name: tuple(members) for name, members in unions.items()},
        "TABLES": out_tables,
    }


HEADER = '''"""Declarative TFLite schema tables, generated from schema/tflite.fbs. Do not edit.

Regenerate with ``python -m refquant.tflite.schemagen``; ``tests/tflite/test_schema.py`` checks
that this file is current.
"""

# fmt: off
'''


def render(compiled: dict) -> str:
    """Render compiled tables as the Python source of ``_schema.py``."""
    parts = [HEADER]
    for key in ("FILE_IDENTIFIER", "ROOT_TYPE", "ENUMS", "UNIONS", "TABLES"):
        parts.append(f"{key} = {pprint.pformat(compiled[key], width=110, sort_dicts=False)}\n")
    return "\n".join(parts)


ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = ROOT / "schema" / "tflite.fbs"
OUTPUT_PATH = Path(__file__).resolve().parent / "_schema.py"


def generate(schema_path: Path = SCHEMA_PATH) -> str:
    """Return the text ``_schema.py`` should have for the given schema file."""
    return render(compile_schema(parse_schema(schema_path.read_text(encoding="utf-8"))))


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: regenerate or check ``_schema.py``."""
    ap = argparse.ArgumentParser(prog="python -m refquant.tflite.schemagen", description=__doc__)
    ap.add_argument("--check", action="store_true", help="exit 1 if _schema.py is not current")
    args = ap.parse_args(argv)
    text = generate()
    if args.check:
        current = OUTPUT_PATH.read_text(encoding="utf-8") if OUTPUT_PATH.exists() else ""
        if current != text:
            print("refquant/tflite/_schema.py is stale: run python -m refquant.tflite.schemagen", file=sys.stderr)
            return 1
        return 0
    tmp = OUTPUT_PATH.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(OUTPUT_PATH)
    return 0


if __name__ == "__main__":
    sys.exit(main())
