"""What several subcommands share: the engine arguments and output-path checks."""

from __future__ import annotations

import argparse
import os

from ..arithmetic import DEFAULT_PROFILE, profile_names
from ..errors import InputError
from ..limits import DEFAULT_MAX_STEPS
from ..options import DEFAULT_MEMORY_LIMIT, FLOAT_ACCUMULATIONS, ROUNDINGS, EngineOptions

__all__ = ["add_engine_args", "add_limit_args", "engine_options_from", "check_out_path", "byte_size"]

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def byte_size(text: str) -> int:
    """``--memory-limit`` values: a byte count, optionally with K, M, G or T (powers of 1024), e.g. ``512M``."""
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = t[-1:] if t[-1:] in _UNITS else ""
    number = t[: len(t) - len(unit)]
    if not number.isdigit() or len(number) > 15 or int(number) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive byte count such as 512M or 2G")
    return int(number) * _UNITS[unit]


def _steps(text: str) -> int:
    if not text.isdigit() or len(text) > 15 or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def add_limit_args(p: argparse.ArgumentParser) -> None:
    """``--memory-limit`` and ``--max-steps``: the resource bounds of every command that runs operators."""
    p.add_argument(
        "--memory-limit",
        type=byte_size,
        default=DEFAULT_MEMORY_LIMIT,
        metavar="BYTES",
        help="bound on the tensors and declared kernel scratch one run holds (e.g. 512M; default 2G)",
    )
    p.add_argument(
        "--max-steps",
        type=_steps,
        default=DEFAULT_MAX_STEPS,
        metavar="N",
        help=f"bound on operator evaluations plus WHILE iterations in one run, nested subgraphs included "
        f"(default {DEFAULT_MAX_STEPS})",
    )


def add_engine_args(p: argparse.ArgumentParser) -> None:
    """``--arithmetic``, ``--rounding``, ``--float-accumulation`` and the limits: what every running command takes."""
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
    add_limit_args(p)


def engine_options_from(args: argparse.Namespace) -> EngineOptions:
    """The :class:`EngineOptions` the parsed engine arguments select."""
    return EngineOptions(
        rounding=args.rounding,
        float_accumulation=args.float_accumulation,
        arithmetic=args.arithmetic,
        memory_limit=args.memory_limit,
        max_steps=args.max_steps,
    )


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
