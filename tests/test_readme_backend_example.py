"""The backend-testing example of docs/testing.md (the README's "Testing a backend" section) runs as written.

Every code block preceded by ``<!-- example: FILE -->`` is written to FILE in a fresh directory and the
directory is run with pytest. The first example must stay within 20 lines.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

DOC = Path(__file__).resolve().parents[1] / "docs" / "testing.md"
EXAMPLE = re.compile(r"<!-- example: (?P<name>[\w.]+) -->\s*```python\n(?P<code>.*?)```", re.S)


def _examples() -> dict[str, str]:
    return {m["name"]: m["code"] for m in EXAMPLE.finditer(DOC.read_text())}


def test_examples_are_present_and_short():
    examples = _examples()
    assert list(examples) == ["test_my_backend.py", "conftest.py", "test_with_plugin.py"]
    assert len(examples["test_my_backend.py"].rstrip("\n").splitlines()) <= 20
    for name, code in examples.items():
        compile(code, name, "exec")


@pytest.mark.oracle
def test_examples_run(pytester):
    pytest.importorskip("ai_edge_litert.interpreter")
    for name, code in _examples().items():
        pytester.makefile(Path(name).suffix, **{Path(name).stem: code})
    result = pytester.runpytest("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=2)
