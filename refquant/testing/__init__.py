"""Testing helpers: the LiteRT oracle runner and the differential harness for backends under test.

* :class:`Case` (a model, its inputs and a description; drawn by :mod:`refquant.strategies`) and
  :func:`assert_matches_reference` (a backend's outputs against refquant's, numpy.testing style,
  with the ``refquant trace`` command of the first differing element);
* :func:`run_reference` (refquant's outputs for a model and inputs) and :func:`litert_backend`
  (LiteRT as a backend);
* :class:`LiteRTWorker` / :func:`run_litert`: LiteRT ``BUILTIN_REF`` in a worker process, safe
  against LiteRT aborting;
* :func:`op_model` / :func:`model_bytes` / :func:`build_model` over :func:`tensor`, :func:`const`,
  :func:`operator` and :func:`graph`: small test models (one operator, a chain, subgraphs) from tensor
  descriptions (:mod:`refquant.testing.models`);
* :mod:`refquant.testing.pytest_plugin`: fixtures and Hypothesis profiles for pytest.
"""

from __future__ import annotations

from .harness import Backend, Case, assert_matches_reference, litert_backend, run_reference
from .models import (
    GraphSpec,
    OpSpec,
    TensorSpec,
    build_model,
    const,
    graph,
    model_bytes,
    op_model,
    operator,
    tensor,
)
from .oracle import LiteRTWorker, OracleResult, litert_available, run_litert

__all__ = [
    "LiteRTWorker",
    "OracleResult",
    "litert_available",
    "run_litert",
    "Backend",
    "Case",
    "assert_matches_reference",
    "litert_backend",
    "run_reference",
    "GraphSpec",
    "OpSpec",
    "TensorSpec",
    "build_model",
    "const",
    "graph",
    "model_bytes",
    "op_model",
    "operator",
    "tensor",
]
