"""Generated documentation is current."""

from refquant.docs import main


def test_readme_ops_table_is_current():
    assert main(["--check"]) == 0, "run: python -m refquant.docs"
