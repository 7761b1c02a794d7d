"""``refquant trace``: every arithmetic step of one output element."""

from __future__ import annotations

import argparse
import json
import sys

from ..tracer import format_trace, trace_element
from .common import add_engine_args, engine_options_from

HELP = "show every arithmetic step that produced one element of a tensor"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of this subcommand."""
    p.add_argument("model", help="path of a .tflite file")
    p.add_argument("--input", required=True, metavar="DATA.npz", help="input samples (N, *input_shape) per model input")
    p.add_argument("--tensor", required=True, metavar="INDEX|NAME", help="tensor index or exact tensor name")
    p.add_argument("--element", default=None, metavar="i,j,k,l", help="index into the tensor's shape (no sample axis)")
    p.add_argument("--sample", type=int, default=0, metavar="S", help="sample of DATA to run (default 0)")
    add_engine_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def run(args: argparse.Namespace) -> int:
    """Run the subcommand; return its exit status."""
    element = args.element
    if element is None:
        element = ""
    tr = trace_element(
        args.model,
        args.input,
        args.tensor,
        element,
        sample=args.sample,
        options=engine_options_from(args),
    )
    if args.json:
        json.dump(tr.to_json(), sys.stdout)
        sys.stdout.write("\n")
    else:
        print(format_trace(tr))
    return 0 if tr.matches_run else 1
