"""The golden models committed under golden/ (parametrization helpers for the tests)."""

from __future__ import annotations

import json
from pathlib import Path

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


def manifest() -> dict:
    """golden/manifest.json."""
    return json.loads((GOLDEN / "manifest.json").read_text())


def model_names() -> list[str]:
    """Names of every committed golden model."""
    return [m["name"] for m in manifest()["models"] if (GOLDEN / m["file"]).exists()]


def model_path(name: str) -> Path:
    """Path of one golden model's .tflite file."""
    return GOLDEN / "models" / f"{name}.tflite"


def vectors_path(name: str) -> Path:
    """Path of one golden model's vectors (.npz)."""
    return GOLDEN / "vectors" / f"{name}.npz"
