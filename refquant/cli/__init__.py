"""The ``refquant`` command line: the edge of the program.

Argument parsing, printing and exit statuses live here and nowhere else; each subcommand is a small
module of this package (``inspect``, ``compare``, ``golden``, ``trace``, ``diff``) that turns parsed
arguments into one call of the library and prints what it returns. No library module imports this
package.

Errors a user can cause (bad paths, malformed models or data, bad arguments) print one line on
stderr and exit with status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import RefquantError
from ..escape import terminal

__all__ = ["main", "build_parser", "COMMANDS"]

#: Subcommand name -> module of this package; each module has ``HELP``, ``add_arguments(parser)``
#: and ``run(args) -> exit status``. Imported lazily, so ``refquant inspect`` stays light.
COMMANDS: dict[str, str] = {
    "inspect": "inspect_cmd",
    "compare": "compare_cmd",
    "golden": "golden_cmd",
    "diff": "diff_cmd",
    "trace": "trace_cmd",
}


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        """Print ``refquant: error: ...`` with the usage line and exit 2."""
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser with every subcommand."""
    parser = _Parser(prog="refquant", description="Reference quantization engine for TFLite/LiteRT models.")
    parser.add_argument("--version", action="version", version=f"refquant {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, module in COMMANDS.items():
        mod = importlib.import_module(f"{__name__}.{module}")
        sp = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
        mod.add_arguments(sp)
        sp.set_defaults(_run=mod.run)
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
        print(f"refquant: error: {terminal(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("refquant: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except (OSError, ValueError, MemoryError) as exc:
        if debug:
            raise
        print(f"refquant: error: {type(exc).__name__}: {terminal(str(exc))}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
