"""Shared fixtures: Hypothesis profiles, the LiteRT oracle worker, and the ``oracle`` marker.

A test needs LiteRT (ai-edge-litert, the oracle) when it takes the ``litert`` fixture or is marked
``@pytest.mark.oracle``; collection marks the former ``oracle`` too, and without ai-edge-litert
every ``oracle`` test is skipped with one reason. ``tests/test_oracle_guard.py`` checks that no test
module imports ai_edge_litert outside that mechanism.
"""

from __future__ import annotations

import os
import sys

import pytest
from hypothesis import HealthCheck, settings

# Both `from tests.opcheck import ...` and `from opcheck import ...` work.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    print_blob=True,
)
settings.register_profile(
    "dev",
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    print_blob=True,
)
settings.register_profile(
    "default",
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "default"))


ORACLE_MISSING = "ai-edge-litert (the oracle) is not installed: pip install -e '.[test]'"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that takes the ``litert`` fixture ``oracle``; skip ``oracle`` tests without LiteRT."""
    for item in items:
        if "litert" in getattr(item, "fixturenames", ()) and item.get_closest_marker("oracle") is None:
            item.add_marker(pytest.mark.oracle)
    oracle_items = [item for item in items if item.get_closest_marker("oracle") is not None]
    if not oracle_items:
        return
    from refquant.testing import litert_available

    if not litert_available():
        for item in oracle_items:
            item.add_marker(pytest.mark.skip(reason=ORACLE_MISSING))


@pytest.fixture(scope="session")
def litert():
    """A LiteRT BUILTIN_REF worker process (skips the test when ai-edge-litert is missing)."""
    from refquant.testing import LiteRTWorker, litert_available

    if not litert_available():
        pytest.skip(ORACLE_MISSING)
    worker = LiteRTWorker()
    yield worker
    worker.close()
