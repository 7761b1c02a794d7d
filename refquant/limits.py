"""Budgets that hold for a whole run, nested subgraphs included: work (operator evaluations and loop
iterations) and control-flow nesting depth.

The memory bound is checked from shapes where tensors are prepared (:mod:`refquant.graph`); the work
budget is spent here. One budget is opened by the outermost run (a graph run, or one operator run through
the engine seam) and every run nested inside it, IF branches and WHILE bodies at any depth, spends from the
same budget, so two nested loops cannot multiply their bounds. Exhausting it ends the run with a
:class:`~refquant.errors.ResourceLimitError` naming the place.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from .errors import ResourceLimitError

__all__ = ["DEFAULT_MAX_STEPS", "MAX_NESTING", "work_budget", "spend"]

#: Default bound on operator evaluations plus WHILE iterations in one run, nested subgraphs included.
DEFAULT_MAX_STEPS = 2_000_000
#: Bound on the depth of IF/WHILE subgraphs nested inside one another.
MAX_NESTING = 32

_BUDGET: ContextVar[list[int] | None] = ContextVar("refquant_work_budget", default=None)


@contextmanager
def work_budget(max_steps: int) -> Iterator[None]:
    """Open a budget of ``max_steps`` for the code inside, unless one is already open (then that one holds)."""
    if _BUDGET.get() is not None:
        yield
        return
    token = _BUDGET.set([max_steps, max_steps])
    try:
        yield
    finally:
        _BUDGET.reset(token)


def spend(where: str, steps: int = 1) -> None:
    """Spend ``steps`` of the open budget (nothing happens when none is open); raise when it is exhausted."""
    budget = _BUDGET.get()
    if budget is None:
        return
    budget[0] -= steps
    if budget[0] < 0:
        raise ResourceLimitError(
            f"{where}: the run exceeded its work budget of {budget[1]} steps (operator evaluations and loop "
            "iterations, nested subgraphs included); raise it with max_steps / --max-steps"
        )
