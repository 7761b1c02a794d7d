"""Testing helpers: the LiteRT oracle runner (more arrives with the property-testing toolkit)."""

from __future__ import annotations

from .oracle import LiteRTWorker, OracleResult, litert_available, run_litert

__all__ = ["LiteRTWorker", "OracleResult", "litert_available", "run_litert"]
