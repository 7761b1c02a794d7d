"""The suite runs without ai-edge-litert: every use of the oracle goes through the ``oracle`` mechanism.

``tests/conftest.py`` marks tests that take the ``litert`` fixture ``oracle`` and skips ``oracle``
tests when ai-edge-litert is missing. A test that imports ai_edge_litert (or starts LiteRT itself)
outside that mechanism would fail, not skip, on a machine without LiteRT; these tests find such a
use from the source, so they fail on the machines that have LiteRT too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

#: Calls that start LiteRT in this process or in a worker.
LITERT_CALLS = {"run_litert", "LiteRTWorker"}
#: Exceptions whose handler makes an ai_edge_litert import a guarded probe.
IMPORT_GUARDS = {"ImportError", "ModuleNotFoundError", "Exception"}


def _is_oracle_mark(node: ast.expr) -> bool:
    """``pytest.mark.oracle`` (called or not)."""
    if isinstance(node, ast.Call):
        node = node.func
    return isinstance(node, ast.Attribute) and node.attr == "oracle"


def _module_marked_oracle(tree: ast.Module) -> bool:
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in stmt.targets):
            values = stmt.value.elts if isinstance(stmt.value, (ast.List, ast.Tuple)) else [stmt.value]
            if any(_is_oracle_mark(v) for v in values):
                return True
    return False


def _function_guarded(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A test marked oracle, a user of the ``litert`` fixture, or a function that checks for LiteRT first."""
    if any(_is_oracle_mark(d) for d in fn.decorator_list):
        return True
    if any(a.arg == "litert" for a in fn.args.args + fn.args.kwonlyargs):
        return True
    for node in ast.walk(fn):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in ("litert_available", "importorskip"):
                return True
    return False


def _try_guards(node: ast.Try) -> bool:
    for h in node.handlers:
        types = h.type.elts if isinstance(h.type, ast.Tuple) else [h.type]
        if h.type is None or any(isinstance(t, ast.Name) and t.id in IMPORT_GUARDS for t in types):
            return True
    return False


def unguarded_litert_uses(source: str, filename: str) -> list[str]:
    """``file:line`` of every ai_edge_litert import or LiteRT start outside the oracle mechanism."""
    tree = ast.parse(source, filename)
    if _module_marked_oracle(tree):
        return []
    bad: list[str] = []

    def visit(node: ast.AST, top_fn: ast.AST | None, in_guarded_try: bool) -> None:
        use = False
        if isinstance(node, ast.Import):
            use = any(a.name.split(".")[0] == "ai_edge_litert" for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            use = (node.module or "").split(".")[0] == "ai_edge_litert"
        elif isinstance(node, ast.Call):
            f = node.func
            use = (f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")) in LITERT_CALLS
        if use and not in_guarded_try and not (top_fn is not None and _function_guarded(top_fn)):
            bad.append(f"{filename}:{node.lineno}")
        for child in ast.iter_child_nodes(node):
            fn = top_fn
            if top_fn is None and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                fn = child
            guarded = in_guarded_try or (isinstance(node, ast.Try) and child in node.body and _try_guards(node))
            visit(child, fn, guarded)

    visit(tree, None, False)
    return bad


def test_no_test_uses_litert_outside_the_oracle_mechanism():
    bad = []
    for path in sorted(TESTS.rglob("*.py")):
        if path.resolve() == Path(__file__).resolve():
            continue
        bad += unguarded_litert_uses(path.read_text(encoding="utf-8"), str(path.relative_to(TESTS.parent)))
    assert not bad, (
        "these use ai_edge_litert outside the oracle mechanism (and would fail, not skip, without LiteRT): "
        f"{bad}; take the `litert` fixture or mark the test @pytest.mark.oracle"
    )


@pytest.mark.parametrize(
    ("source", "flagged"),
    [
        ("import ai_edge_litert\n", True),
        ("from ai_edge_litert.interpreter import Interpreter\n", True),
        ("def helper():\n    from ai_edge_litert import interpreter\n", True),
        ("def test_x():\n    from ai_edge_litert import interpreter\n", True),
        ("def test_x():\n    run_litert(b'', [])\n", True),
        ("@pytest.mark.oracle\ndef test_x():\n    from ai_edge_litert import interpreter\n", False),
        ("def test_x(litert):\n    LiteRTWorker()\n", False),
        ("def test_x():\n    pytest.importorskip('ai_edge_litert')\n    import ai_edge_litert\n", False),
        ("try:\n    import ai_edge_litert\nexcept ImportError:\n    pass\n", False),
        ("pytestmark = [pytest.mark.oracle]\nimport ai_edge_litert\n", False),
    ],
)
def test_guard_recognises(source, flagged):
    assert bool(unguarded_litert_uses(source, "t.py")) is flagged


def test_litert_fixture_users_are_marked_oracle(request):
    """The collection hook marks them, so without LiteRT they skip before any fixture runs."""
    users = [item for item in request.session.items if "litert" in getattr(item, "fixturenames", ())]
    unmarked = [item.nodeid for item in users if item.get_closest_marker("oracle") is None]
    assert not unmarked
