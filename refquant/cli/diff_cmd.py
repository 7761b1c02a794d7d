"""``refquant diff``: compare two golden dumps."""

from __future__ import annotations

import argparse
import json
import sys

from ..diff import diff_dumps, format_diff, format_isolated, isolate_operators
from ..errors import InputError

HELP = "compare two golden dumps; name the first diverging op and element"


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
        help="allowed |difference| in LSB (integer tensors) or ULP (float tensors); default 0",
    )
    p.add_argument("--verbose", action="store_true", help="list every tensor, equal ones too")
    p.add_argument(
        "--isolate",
        action="store_true",
        help="also recompute every operator from OTHER's own inputs and name those wrong given their inputs",
    )
    p.add_argument(
        "--model",
        metavar="MODEL.tflite",
        help="with --isolate: the model REF was made from (default: the path in REF's manifest)",
    )


def run(args: argparse.Namespace) -> int:
    """Run the subcommand; return its exit status."""
    doc = diff_dumps(args.ref, args.other, args.tolerance)
    iso = None
    if args.isolate:
        iso = isolate_operators(args.ref, args.other, args.model)
        doc["isolation"] = iso
        doc["isolated"] = iso["isolated"]
    elif args.model is not None:
        raise InputError("--model goes with --isolate")
    if args.json:
        json.dump(doc, sys.stdout)
        sys.stdout.write("\n")
    else:
        print(format_diff(doc, args.verbose))
        if iso is not None:
            print()
            print(format_isolated(iso))
    return 0 if doc["equal"] and not (iso and iso["isolated"]) else 1
