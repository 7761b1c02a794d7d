"""``refquant compare``: the quantization error report."""

from __future__ import annotations

import argparse

from ..arithmetic import profile_names
from ..compare import compare
from ..errors import InputError
from ..report import render_text, write_outputs
from .common import add_engine_args, check_out_path, engine_options_from

HELP = "quantization error report: per layer, per channel, accumulated and local"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of this subcommand."""
    p.add_argument("model", metavar="QUANT_MODEL", help="the quantized .tflite model")
    p.add_argument(
        "--float",
        dest="float_model",
        metavar="FLOAT_MODEL",
        help="float .tflite model to compare against (tensors matched by name, else graph structure); "
        "default: the float shadow of QUANT_MODEL (same graph, dequantized weights)",
    )
    p.add_argument(
        "--input",
        required=True,
        metavar="DATA.npz",
        help="real-valued (float) inputs: an .npz of arrays keyed by input name (tensor or signature name) or "
        "input_0, input_1, ..., each of shape (N, *input_shape), or (N, *input_shape[1:]) when the model's batch "
        "dimension is 1; DATA.npz:KEY[,KEY...] takes the named arrays in model-input order; a .npy is the one "
        "input of a one-input model. Integer arrays of an integer input's own dtype count as already quantized",
    )
    p.add_argument(
        "--labels",
        metavar="LABELS.npy",
        help="N integer class labels (.npy, or DATA.npz:KEY): report the top-1 accuracy of both models",
    )
    p.add_argument("--json", metavar="R.json", help="write the full report as JSON")
    p.add_argument("--html", metavar="R.html", help="write a self-contained HTML report (plots need matplotlib)")
    add_engine_args(p)
    p.add_argument(
        "--against",
        choices=profile_names(),
        metavar="PROFILE",
        help="also run the quantized model under this arithmetic profile and report, layer by layer, where the two "
        f"runtimes' tensors differ ({', '.join(profile_names())})",
    )
    p.add_argument("--limit", type=int, metavar="N", help="use only the first N samples")
    p.add_argument("--worst", type=int, default=3, metavar="K", help="flag the K layers adding the most error (3)")
    p.add_argument("--no-progress", action="store_true", help="no progress counter on stderr")


def run(args: argparse.Namespace) -> int:
    """Run the subcommand; return its exit status."""
    check_out_path(args.json, "--json")
    check_out_path(args.html, "--html")
    if args.worst < 0:
        raise InputError(f"--worst must be >= 0, got {args.worst}")
    report = compare(
        args.model,
        args.float_model,
        inputs=args.input,
        labels=args.labels,
        options=engine_options_from(args),
        progress=not args.no_progress,
        limit=args.limit,
        against=args.against,
    )
    write_outputs(report, json_path=args.json, html_path=args.html, worst=args.worst)
    print(render_text(report, worst=args.worst))
    return 0
