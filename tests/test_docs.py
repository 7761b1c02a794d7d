"""Generated documentation is current."""

from refquant.docs import main


def test_readme_ops_table_is_current():
    assert main(["--check"]) == 0, "run: python -m refquant.docs"


def test_readme_python_blocks_run(monkeypatch):
    """Every ```python block of the README runs (from the project root, where its paths point)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root)
    blocks = re.findall(r"```python\n(.*?)```", (root / "README.md").read_text(encoding="utf-8"), re.S)
    assert blocks
    for k, code in enumerate(blocks):
        exec(compile(code, f"README.md python block {k}", "exec"), {"__name__": "readme"})
