"""The ``refquant`` command line. Each subcommand lives in a small ``_cmd_*`` function.

Errors a user can cause (bad paths, malformed models or data, bad arguments) print one line on
stderr and exit with status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from . import __version__
from .errors import RefquantError

__all__ = ["main", "build_parser", "SUBCOMMANDS", "add_engine_args"]

#: name -> (help, add_arguments(parser), run(args) -> exit status). Other modules add entries.
SUBCOMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {}


def subcommand(
    name: str, help: str, add_arguments: Callable[[argparse.ArgumentParser], None]
) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    """Register a subcommand (decorator)."""

    def deco(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        SUBCOMMANDS[name] = (help, add_arguments, fn)
        return fn

    return deco


def add_engine_args(p: argparse.ArgumentParser) -> None:
    """``--rounding`` and ``--float-accumulation``: the two arithmetic variants every running command takes."""
    from .graph import FLOAT_ACCUMULATIONS, ROUNDINGS

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


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        """Print ``refquant: error: ...`` with the usage line and exit 2."""
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _inspect_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="path of a .tflite file")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")


@subcommand("inspect", "summarise a model: subgraphs, operators, quantization, weights", _inspect_args)
def _cmd_inspect(args: argparse.Namespace) -> int:
    from .inspect import format_summary, model_summary
    from .tflite.reader import load_model

    model = load_model(args.model)
    if args.json:
        json.dump(model_summary(model), sys.stdout)
        sys.stdout.write("\n")
    else:
        print(format_summary(model, args.model))
    return 0


def _load_plugins() -> None:
    """Import modules that register further subcommands (kept lazy so `inspect` stays light)."""
    import importlib

    for mod in ("refquant.compare", "refquant.golden", "refquant.diff", "refquant.tracer"):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:
                raise


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser with every registered subcommand."""
    _load_plugins()
    parser = _Parser(prog="refquant", description="Reference quantization engine for TFLite/LiteRT models.")
    parser.add_argument("--version", action="version", version=f"refquant {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, (help_text, add_arguments, fn) in SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
        add_arguments(sp)
        sp.set_defaults(_run=fn)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``refquant`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False)
    try:
        return int(args._run(args))
    except RefquantError as exc:
        if debug:
            raise
        print(f"refquant: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("refquant: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except (OSError, ValueError, MemoryError) as exc:
        if debug:
            raise
        print(f"refquant: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
