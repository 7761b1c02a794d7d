"""``refquant inspect``: summarise a model."""

from __future__ import annotations

import argparse
import json
import sys

HELP = "summarise a model: subgraphs, operators, quantization, weights"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``refquant inspect``."""
    p.add_argument("model", help="path of a .tflite file")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def run(args: argparse.Namespace) -> int:
    """Print the model summary (text or JSON); exit status 0."""
    from ..inspect import format_summary, model_summary
    from ..tflite.reader import load_model

    model = load_model(args.model)
    if args.json:
        json.dump(model_summary(model), sys.stdout)
        sys.stdout.write("\n")
    else:
        print(format_summary(model, args.model))
    return 0
