"""pytest plugin: point refquant's differential harness at your backend in a few lines.

Enable it in your ``conftest.py`` (or with ``pytest -p refquant.testing.pytest_plugin``)::

    pytest_plugins = ["refquant.testing.pytest_plugin"]

and tell it what to test, either with a fixture in ``conftest.py``::

    @pytest.fixture(scope="session")
    def refquant_backend():
        return my_npu.run          # run(model_bytes, inputs) -> list of output arrays

or on the command line: ``pytest --refquant-backend=my_npu.runner:run``. Tests then use the
``assert_backend_matches`` fixture with cases from :mod:`refquant.strategies`::

    @given(case=op_models("CONV_2D", "int8"))
    def test_conv(assert_backend_matches, case):
        assert_backend_matches(case)

Options: ``--refquant-backend MODULE:FUNCTION``, ``--refquant-tolerance N`` (LSB / ULP accepted per
element, default 0), ``--refquant-rounding {double,single}``. The plugin also registers two Hypothesis
profiles, selected with ``pytest --hypothesis-profile=...``: ``refquant-ci`` (derandomized, 25 examples
per test, no example database: the same cases on every run) and ``refquant-dev`` (2000 examples per
test, for a local soak run).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, settings

from .harness import Backend, Case, assert_matches_reference

__all__ = ["register_profiles", "refquant_backend", "assert_backend_matches", "PROFILES"]

_SUPPRESS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

#: The Hypothesis profiles the plugin registers: name -> settings keyword arguments.
PROFILES: dict[str, dict[str, object]] = {
    "refquant-ci": dict(
        derandomize=True,
        max_examples=25,
        deadline=None,
        database=None,
        print_blob=True,
        suppress_health_check=_SUPPRESS,
    ),
    "refquant-dev": dict(max_examples=2000, deadline=None, print_blob=True, suppress_health_check=_SUPPRESS),
}


def register_profiles() -> None:
    """Register the ``refquant-ci`` and ``refquant-dev`` Hypothesis profiles (idempotent)."""
    for name, kwargs in PROFILES.items():
        settings.register_profile(name, **kwargs)  # type: ignore[arg-type]


register_profiles()  # at import: before Hypothesis' own plugin reads --hypothesis-profile


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--refquant-backend``, ``--refquant-tolerance``, ``--refquant-rounding`` and ``--refquant-float-accumulation``."""
    group = parser.getgroup("refquant", "refquant differential testing")
    group.addoption(
        "--refquant-backend",
        metavar="MODULE:FUNCTION",
        default=None,
        help="the backend under test: a function run(model_bytes, inputs) -> list of output arrays",
    )
    group.addoption(
        "--refquant-tolerance",
        type=float,
        default=0.0,
        metavar="N",
        help="accepted difference per element, in LSB (integer outputs) or ULP (float outputs); default 0",
    )
    group.addoption(
        "--refquant-rounding",
        choices=("double", "single"),
        default="double",
        help="refquant's requantization rounding: double (LiteRT's default build) or single",
    )
    group.addoption(
        "--refquant-float-accumulation",
        choices=("float64", "sequential"),
        default="float64",
        help="refquant's float32 conv/FC/matmul sums: float64 (default) or sequential (LiteRT REF's loop)",
    )


def _load_backend(spec: str) -> Backend:
    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise pytest.UsageError(f"--refquant-backend expects MODULE:FUNCTION, got {spec!r}")
    try:
        obj: object = importlib.import_module(module)
    except ImportError as exc:
        raise pytest.UsageError(f"--refquant-backend: cannot import {module!r}: {exc}") from exc
    for part in name.split("."):
        if not hasattr(obj, part):
            raise pytest.UsageError(f"--refquant-backend: {module!r} has no attribute {name!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise pytest.UsageError(f"--refquant-backend: {spec!r} is not callable")
    return obj  # type: ignore[return-value]


@pytest.fixture(scope="session")
def refquant_backend(pytestconfig: pytest.Config) -> Backend:
    """The backend under test, from ``--refquant-backend MODULE:FUNCTION``; override it in your conftest.py.

    Without the option (and without an override) the tests that use it are skipped.
    """
    spec = pytestconfig.getoption("--refquant-backend")
    if not spec:
        pytest.skip("no backend to test: pass --refquant-backend MODULE:FUNCTION or define a refquant_backend fixture")
    return _load_backend(spec)


@pytest.fixture(scope="session")
def assert_backend_matches(refquant_backend: Backend, pytestconfig: pytest.Config) -> Callable[..., None]:
    """``assert_backend_matches(case, tolerance=None)``: :func:`refquant.testing.assert_matches_reference`
    on the ``refquant_backend`` fixture, with the tolerance, rounding and float accumulation of the
    command-line options.

    Session-scoped, so it can be used in ``@given`` tests without Hypothesis' function-scoped-fixture check.
    """
    default_tol = float(pytestconfig.getoption("--refquant-tolerance"))
    rounding = str(pytestconfig.getoption("--refquant-rounding"))
    fa = str(pytestconfig.getoption("--refquant-float-accumulation"))

    def check(case: Case, tolerance: float | None = None, **kwargs: object) -> None:
        tol = default_tol if tolerance is None else tolerance
        kwargs.setdefault("float_accumulation", fa)
        assert_matches_reference(refquant_backend, case, tolerance=tol, rounding=rounding, **kwargs)  # type: ignore[arg-type]

    return check
