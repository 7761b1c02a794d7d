"""What several subcommands share: the engine arguments and output-path checks."""

from __future__ import annotations

import argparse
import os

from ..arithmetic import DEFAULT_PROFILE, profile_names
from ..errors import InputError
from ..options import FLOAT_ACCUMULATIONS, ROUNDINGS, EngineOptions

__all__ = ["add_engine_args", "engine_options_from", "check_out_path"]


def add_engine_args(p: argparse.ArgumentParser) -> None:
    """``--arithmetic``, ``--rounding`` and ``--float-accumulation``: the arithmetic every running command takes."""
    p.add_argument(
        "--arithmetic",
        choices=profile_names(),
        default=DEFAULT_PROFILE,
        help="which runtime's integer arithmetic to reproduce: litert-ref (LiteRT's reference kernels, default), "
        "litert-xnnpack (the default interpreter), litert-optimized (no delegate), tflm (tflite-micro)",
    )
    p.add_argument(
        "--rounding",
        choices=ROUNDINGS,
        default="double",
        help="requantization rounding: double (LiteRT default) or single (TFLITE_SINGLE_ROUNDING)",
    )
    p.add_argument(
        "--float-accumulation",
        choices=FLOAT_ACCUMULATIONS,
        default="float64",
        help="float32 conv/FC/matmul sums: float64 (default, BLAS) or sequential (LiteRT REF's float32 loop, bit-exact)",
    )


def engine_options_from(args: argparse.Namespace) -> EngineOptions:
    """The :class:`EngineOptions` the parsed engine arguments select."""
    return EngineOptions(rounding=args.rounding, float_accumulation=args.float_accumulation, arithmetic=args.arithmetic)


def check_out_path(path: str | None, flag: str) -> None:
    """Refuse an output path whose directory is missing or unwritable, or that is a directory."""
    if path is None:
        return
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        raise InputError(f"{flag} {path!r}: directory {d!r} does not exist")
    if os.path.isdir(path):
        raise InputError(f"{flag} {path!r} is a directory")
    if not os.access(d, os.W_OK):
        raise InputError(f"{flag} {path!r}: directory {d!r} is not writable")
