"""``refquant diff``: compare two golden dumps."""

from __future__ import annotations

import argparse
import json
import sys

from ..diff import diff_dumps, format_diff, format_isolated, isolate_operators
from ..errors import InputError
from ..options import engine_options
from .common import add_limit_args

HELP = "compare two golden dumps; name the first diverging op, every wrong op (--isolate) and why (--explain)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of this subcommand."""
    p.add_argument("ref", metavar="REF_DIR", help="a dump written by `refquant golden`")
    p.add_argument("other", metavar="OTHER_DIR", help="a dump in the same layout from another implementation")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument(
        "--tolerance",
        type=float,
        default=0,
        metavar="LSB",
        help="allowed |difference| of integer tensors, in LSB; default 0",
    )
    p.add_argument(
        "--float-tolerance",
        type=float,
        default=0,
        metavar="FRACTION",
        help="allowed |difference| of float tensors, as a fraction of the REF tensor's range; default 0",
    )
    p.add_argument("--verbose", action="store_true", help="list every tensor, equal ones too")
    p.add_argument(
        "--isolate",
        action="store_true",
        help="also recompute every operator from OTHER's own inputs and name those wrong given their inputs",
    )
    p.add_argument(
        "--explain",
        action="store_true",
        help="with --isolate (implied): for each wrong operator, which runtime profile or rescaling variant "
        "reproduces OTHER's values, or 'unexplained' with the envelope that holds them",
    )
    add_limit_args(p)
    p.add_argument(
        "--model",
        metavar="MODEL.tflite",
        help="with --isolate: the model REF was made from (default: the path in REF's manifest)",
    )


def run(args: argparse.Namespace) -> int:
    """Run the subcommand; return its exit status."""
    doc = diff_dumps(args.ref, args.other, args.tolerance, args.float_tolerance)
    iso = None
    if args.isolate or args.explain:
        iso = isolate_operators(
            args.ref,
            args.other,
            args.model,
            explain=args.explain,
            float_tolerance=args.float_tolerance,
            limits=engine_options(memory_limit=args.memory_limit, max_steps=args.max_steps),
        )
        doc["isolation"] = iso
        doc["isolated"] = iso["isolated"]
    elif args.model is not None:
        raise InputError("--model goes with --isolate or --explain")
    if args.json:
        json.dump(doc, sys.stdout)
        sys.stdout.write("\n")
    else:
        print(format_diff(doc, args.verbose))
        if iso is not None:
            print()
            print(format_isolated(iso))
    return 0 if doc["equal"] and not (iso and iso["isolated"]) else 1
