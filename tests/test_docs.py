"""Generated documentation is current."""

import pytest

from refquant.docs import main


def test_readme_ops_table_is_current():
    assert main(["--check"]) == 0, "run: python -m refquant.docs"


def _readme_python_blocks() -> list:
    """The README's ```python blocks, one pytest param each; those that import ai_edge_litert are ``oracle``."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    return [
        pytest.param(k, code, id=f"block{k}", marks=[pytest.mark.oracle] if "ai_edge_litert" in code else [])
        for k, code in enumerate(blocks)
    ]


def test_readme_has_python_blocks():
    assert len(_readme_python_blocks()) >= 2


@pytest.mark.parametrize(("k", "code"), _readme_python_blocks())
def test_readme_python_blocks_run(monkeypatch, k, code):
    """Every ```python block of the README runs (from the project root, where its paths point)."""
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    exec(compile(code, f"README.md python block {k}", "exec"), {"__name__": "readme"})
