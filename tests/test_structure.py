"""The house rules of the code base, each checked so that it stays true.

* The command line is the edge: no library module imports ``refquant.cli``; argument parsing lives there
  (and in the two generator scripts named below).
* Modules share code through public names: no module of ``refquant`` imports a private ``_name`` from
  another (the generated flatbuffer tables ``tflite/_schema.py`` are the one private module, by design).
* Rooms stay walkable: no hand-written module is over 1,000 lines.
* The repository stands alone: no file refers to notes or paths outside it.
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "refquant"
#: Generated from schema/tflite.fbs by refquant/tflite/schemagen.py (a test keeps it current).
GENERATED = {PACKAGE / "tflite" / "_schema.py"}
#: Developer scripts with their own small argparse ``main`` (``python -m refquant.docs``, ``... .schemagen``).
ARGPARSE_SCRIPTS = {PACKAGE / "docs.py", PACKAGE / "tflite" / "schemagen.py"}
MAX_LINES = 1000


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p not in GENERATED)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(absolute module, imported names, line) for every import in ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((a.name, [], node.lineno) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((mod, [a.name for a in node.names], node.lineno))
    return out


def test_library_modules_do_not_import_the_cli():
    bad = []
    for path in modules():
        if module_name(path).startswith("refquant.cli") or module_name(path) == "refquant.__main__":
            continue
        for mod, names, line in imports(path):
            targets = [mod] + [f"{mod}.{n}" for n in names]
            if any(t == "refquant.cli" or t.startswith("refquant.cli.") for t in targets):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {mod}")
    assert bad == [], "the command line is the edge; library modules must not import it:\n" + "\n".join(bad)


def test_argument_parsing_lives_in_the_cli():
    bad = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in modules()
        if not module_name(path).startswith("refquant.cli") and path not in ARGPARSE_SCRIPTS
        for mod, _, line in imports(path)
        if mod == "argparse"
    ]
    assert bad == [], "argparse outside refquant/cli:\n" + "\n".join(bad)


def test_no_private_names_cross_module_boundaries():
    bad = []
    for path in modules():
        for mod, names, line in imports(path):
            if not mod.startswith("refquant") or mod == "__future__":
                continue
            for n in names:
                if n.startswith("_") and not n.startswith("__") and f"{mod}.{n}" != "refquant.tflite._schema":
                    bad.append(f"{path.relative_to(ROOT)}:{line} imports {n} from {mod}")
    assert bad == [], "shared code needs a public name (and a docstring):\n" + "\n".join(bad)


def test_op_modules_share_plumbing_only_through_public_names():
    """The issue's original case, kept explicit: op modules importing another op module's private names."""
    bad = []
    for path in sorted((PACKAGE / "ops").rglob("*.py")):
        for mod, names, line in imports(path):
            if mod.startswith("refquant.ops"):
                bad.extend(f"{path.relative_to(ROOT)}:{line} {n}" for n in names if n.startswith("_"))
    assert bad == []


def test_no_hand_written_module_is_over_the_limit():
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in modules()}
    over = {k: v for k, v in sizes.items() if v > MAX_LINES}
    assert over == {}, f"split these by what they hold (limit {MAX_LINES} lines): {over}"


def tracked_text_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    suffixes = {".py", ".md", ".toml", ".txt", ".fbs", ".cfg", ".ini", ".json", ".yml", ".yaml", ""}
    files = []
    for rel in out.splitlines():
        p = ROOT / rel
        if p.suffix in suffixes and p.is_file() and p.stat().st_size < 2_000_000:
            files.append(p)
    return files


EXTERNAL = re.compile(r"KERNEL" r"_NOTES|\.\./shared|shared/(DESIGN|USERS|KERNEL)|DESIGN\.md|USERS\.md")


def test_the_repository_refers_to_nothing_outside_it():
    this = Path(__file__).resolve()
    bad = []
    for p in tracked_text_files():
        if p.resolve() == this:
            continue
        try:
            text = p.read_text()
        except UnicodeDecodeError:
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if EXTERNAL.search(line):
                bad.append(f"{p.relative_to(ROOT)}:{n}: {line.strip()[:100]}")
    assert bad == [], "say it in the repository's own docs (docs/litert_semantics.md) instead:\n" + "\n".join(bad)
