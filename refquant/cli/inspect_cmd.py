"""``refquant inspect``: summarise a model, or show which arithmetic each operator runs per profile."""

from __future__ import annotations

import argparse
import json
import sys

from ..arithmetic import profile_names
from .common import add_limit_args

HELP = "summarise a model: subgraphs, operators, quantization, weights (--arithmetic: the arithmetic per profile)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``refquant inspect``."""
    p.add_argument("model", help="path of a .tflite file")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument(
        "--arithmetic",
        nargs="*",
        choices=profile_names(),
        metavar="PROFILE",
        default=None,
        help="per operator, what each profile runs (who runs it, accumulator, rescaling formula, SIMD blocks) and "
        f"where the profiles differ; PROFILE: {', '.join(profile_names())} (default: all)",
    )
    p.add_argument(
        "--rounding",
        choices=("double", "single"),
        default="double",
        help="with --arithmetic: the reference kernels' requantization rounding (double, LiteRT's default)",
    )
    add_limit_args(p)


def run(args: argparse.Namespace) -> int:
    """Print the model summary or the arithmetic table (text or JSON); exit status 0."""
    from ..inspect import arithmetic_table, format_arithmetic, format_summary, model_summary
    from ..tflite.reader import load_model

    model = load_model(args.model)
    if args.arithmetic is not None:
        table = arithmetic_table(model, args.arithmetic, rounding=args.rounding, memory_limit=args.memory_limit)
        if args.json:
            json.dump(table, sys.stdout)
            sys.stdout.write("\n")
        else:
            print(format_arithmetic(table, args.model))
        return 0
    if args.json:
        json.dump(model_summary(model), sys.stdout)
        sys.stdout.write("\n")
    else:
        print(format_summary(model, args.model))
    return 0
