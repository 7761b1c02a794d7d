"""docs/tutorial.md: its python code blocks run, in order, in one namespace, and assert what the text says.

Blocks whose first line is ``# needs: ai-edge-litert`` measure LiteRT itself; they run in the oracle
test only. The other blocks must not depend on them (the refquant-only test runs without them).
"""

from __future__ import annotations

import re
import tempfile
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "docs" / "tutorial.md"
MARK = "# needs: ai-edge-litert"


def blocks() -> list[tuple[int, str]]:
    """(line number, code) of every ```python block of the tutorial."""
    text = TUTORIAL.read_text()
    out = []
    for m in re.finditer(r"^```python\n(.*?)^```", text, flags=re.S | re.M):
        out.append((text.count("\n", 0, m.start()) + 2, m.group(1)))
    return out


def run_blocks(with_litert: bool) -> int:
    ns: dict = {"__name__": "tutorial"}
    ran = 0
    for line, code in blocks():
        if code.startswith(MARK) and not with_litert:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                exec(compile(code, f"{TUTORIAL}:{line}", "exec"), ns)
        except Exception as exc:
            raise AssertionError(f"tutorial block at docs/tutorial.md line {line} failed: {exc!r}") from exc
        ran += 1
    return ran


def test_tutorial_has_numbered_equations_and_blocks():
    text = TUTORIAL.read_text()
    numbers = [int(n) for n in re.findall(r"^\s+\((\d+)\)\s", text, flags=re.M)]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 13
    assert any(code.startswith(MARK) for _, code in blocks())
    assert sum(not code.startswith(MARK) for _, code in blocks()) >= 5


def test_tutorial_code_runs_without_litert(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert run_blocks(with_litert=False) >= 5


@pytest.mark.oracle
def test_tutorial_code_runs_with_litert(monkeypatch, capsys, tmp_path):
    pytest.importorskip("ai_edge_litert.interpreter")
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert run_blocks(with_litert=True) == len(blocks())
