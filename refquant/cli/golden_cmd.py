"""``refquant golden``: write a golden dump."""

from __future__ import annotations

import argparse

from ..errors import InputError
from ..golden import export_golden
from .common import add_engine_args, engine_options_from

HELP = "dump every tensor of a run (and each op's fixed-point parameters) for N samples"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of this subcommand."""
    p.add_argument("model", help="path of a .tflite file")
    p.add_argument("--input", required=True, metavar="DATA.npz", help="input samples (N, *input_shape) per model input")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (refused when non-empty, see --force)")
    p.add_argument(
        "--format",
        default="npy",
        metavar="npy,bin,c",
        help="comma-separated file formats: npy (always), bin (little-endian raw), c (C headers)",
    )
    p.add_argument("--accumulators", action="store_true", help="also dump raw accumulators of conv/FC/matmul ops")
    p.add_argument("--constants", action="store_true", help="also dump constant tensors (weights, biases)")
    add_engine_args(p)
    p.add_argument("--samples", type=int, default=None, metavar="N", help="use the first N samples only")
    p.add_argument("--force", action="store_true", help="replace an existing non-empty output directory")


def run(args: argparse.Namespace) -> int:
    """Run the subcommand; return its exit status."""
    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    if args.samples is not None and args.samples < 1:
        raise InputError(f"--samples must be at least 1, got {args.samples}")
    manifest = export_golden(
        args.model,
        args.input,
        args.out,
        formats=formats,
        accumulators=args.accumulators,
        constants=args.constants,
        options=engine_options_from(args),
        force=args.force,
        samples=args.samples,
    )
    n_acc = sum(len(op.get("accumulators", {})) for op in manifest["ops"])
    print(
        f"wrote {args.out}: {len(manifest['tensors'])} tensors x {manifest['samples']} sample(s), "
        f"{len(manifest['ops'])} ops{f', {n_acc} accumulators' if args.accumulators else ''} "
        f"(formats {','.join(manifest['formats'])}, rounding {manifest['rounding']})"
    )
    return 0
