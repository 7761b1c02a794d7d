"""Generated README sections: the supported-op table comes from the op registry, not typed by hand.

``python -m refquant.docs`` rewrites the README between the ``<!-- ops-table -->`` markers;
``python -m refquant.docs --check`` exits 1 when the README is stale (a test runs it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .ops import REGISTRY

__all__ = ["ops_table", "update_readme", "README"]

README = Path(__file__).resolve().parents[1] / "README.md"
BEGIN, END = "<!-- ops-table:begin -->", "<!-- ops-table:end -->"
COLUMNS = ("int8", "int16", "uint8", "float32")


def ops_table() -> str:
    """A Markdown table: op x (int8, int16x8, uint8, float32, other types), from the registry."""
    lines = [
        "| op | int8 | int16x8 | uint8 | float32 | other types | note |",
        "|---|:-:|:-:|:-:|:-:|---|---|",
    ]
    for name in sorted(REGISTRY):
        if name.startswith("REFQUANT_"):
            continue
        d = REGISTRY[name]
        marks = ["✓" if c in d.dtypes else "" for c in COLUMNS]
        other = ", ".join(t for t in d.dtypes if t not in COLUMNS)
        lines.append(f"| {name} | " + " | ".join(marks) + f" | {other} | {d.note} |")
    return "\n".join(lines)


def update_readme(text: str) -> str:
    """README text with the generated table between the markers."""
    if BEGIN not in text or END not in text:
        raise ValueError(f"README lacks the markers {BEGIN} / {END}")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{ops_table()}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    """Rewrite (or ``--check``) the README's generated sections."""
    ap = argparse.ArgumentParser(prog="python -m refquant.docs")
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    text = README.read_text(encoding="utf-8")
    new = update_readme(text)
    if args.check:
        if new != text:
            print("README.md op table is stale: run python -m refquant.docs", file=sys.stderr)
            return 1
        return 0
    README.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
