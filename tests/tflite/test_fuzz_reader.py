"""Mutated golden models: the reader raises ModelFormatError or returns a Model, nothing else."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import refquant
from refquant.errors import ModelFormatError
from tests.fuzzing import KINDS, mutate
from tests.golden_models import model_names, model_path

SMALL = [n for n in model_names() if model_path(n).stat().st_size < 400_000]
#: Cases per model for the seeded sweep (CI slice; set REFQUANT_FUZZ_CASES=20000 locally).
CASES = int(os.environ.get("REFQUANT_FUZZ_CASES", "150"))


def _load(data: bytes) -> None:
    try:
        refquant.load_model(data)
    except ModelFormatError as exc:
        assert str(exc), "error without a message"


@pytest.mark.parametrize("name", SMALL)
def test_seeded_mutations(name):
    data = model_path(name).read_bytes()
    rng = np.random.default_rng(sum(map(ord, name)))
    for _ in range(CASES):
        bad, desc = mutate(data, rng)
        try:
            _load(bad)
        except Exception as exc:  # pragma: no cover - a failure names the mutation
            raise AssertionError(f"{name}: {desc}: {type(exc).__name__}: {exc}") from exc


@given(
    st.sampled_from(SMALL),
    st.sampled_from(KINDS),
    st.integers(0, 2**32 - 1),
)
def test_hypothesis_mutations(name, kind, seed):
    data = model_path(name).read_bytes()
    bad, _ = mutate(data, np.random.default_rng(seed), kind)
    _load(bad)


@given(st.binary(max_size=512))
def test_random_bytes(data):
    _load(data)


@given(st.binary(max_size=256))
def test_random_bytes_with_identifier(tail):
    _load(b"\x10\x00\x00\x00TFL3" + tail)
