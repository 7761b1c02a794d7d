"""Shared fixtures: Hypothesis profiles and the LiteRT oracle worker."""

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


@pytest.fixture(scope="session")
def litert():
    """A LiteRT BUILTIN_REF worker process (skips the test when ai-edge-litert is missing)."""
    from refquant.testing import LiteRTWorker, litert_available

    if not litert_available():
        pytest.skip("ai-edge-litert (the oracle) is not installed")
    worker = LiteRTWorker()
    yield worker
    worker.close()
