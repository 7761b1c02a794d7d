"""Mutated golden models through load -> allocate -> set_tensor -> invoke: only RefquantErrors.

CI runs a bounded, seeded slice; ``python -m tests.fuzz_pipeline --cases 100000`` runs the big one.
"""

from __future__ import annotations

import os

from tests.fuzz_pipeline import fuzz, small_models

CASES = int(os.environ.get("REFQUANT_PIPELINE_FUZZ_CASES", "400"))


def test_pipeline_fuzz_slice():
    counts, findings = fuzz(small_models(), CASES, seed=1234, timeout=5.0)
    assert not findings, "\n".join(findings[:20])
    assert sum(counts.values()) == CASES
    assert counts["ran"] > 0 and counts["ModelFormatError"] > 0
