"""The `irqmon` command line: one subcommand per module in `irqmon.commands`."""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import traceback
import warnings
from pathlib import Path

from irqmon import __version__, commands
from irqmon.errors import CaptureError, UsageError
from irqmon.output.terminal import plain

# Exit statuses: 0 no error findings, 1 error findings or a capture cut off, 2 bad input,
# 3 an unexpected error in irqmon itself (a bug: CI must not read it as findings).
INTERNAL_ERROR = 3
DEBUG_VARIABLE = "IRQMON_DEBUG"


def command_names() -> list[str]:
    """The subcommands, one per public module of `irqmon.commands` (listed without importing them;
    a module named `_…` holds what several commands share)."""
    return sorted(info.name for info in pkgutil.iter_modules(commands.__path__) if not info.name.startswith("_"))


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with `only`, just that subcommand's module is imported and
    registered (start-up then skips the other commands' imports: backends, capture, rich)."""
    parser = argparse.ArgumentParser(
        prog="irqmon", description="Find interrupt-safety bugs in Cortex-M firmware from a runtime trace."
    )
    parser.add_argument("--version", action="version", version=f"irqmon {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in [only] if only else command_names():
        importlib.import_module(f"{commands.__name__}.{name}").register(sub)
    return parser


def _one_line_warning(message: Warning | str, category: type[Warning], *rest: object, **options: object) -> None:
    print(f"irqmon: warning: {plain(message)}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # The top-level parser has no option taking a value: a first word naming a command is that command.
    parser = build_parser(argv[0] if argv and argv[0] in command_names() else None)
    args = parser.parse_args(argv)
    warnings.showwarning = _one_line_warning
    try:
        return int(args.run(args) or 0)
    except UsageError as exc:
        print(f"irqmon: {plain(exc)}", file=sys.stderr)
        return 2
    except CaptureError as exc:
        print(f"irqmon: {plain(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("irqmon: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `irqmon analyze T | head`: the reader left, nothing more to say
        sys.stderr.close()
        return 0
    except Exception as exc:  # a bug in irqmon: one line and its own status, the traceback on request
        if os.environ.get(DEBUG_VARIABLE):
            traceback.print_exc()
        where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        place = f" at {Path(where.filename).name}:{where.lineno}" if where else ""
        print(f"irqmon: internal error: {type(exc).__name__}: {plain(exc)}{place} "
              f"(please report it; {DEBUG_VARIABLE}=1 shows the traceback)", file=sys.stderr)  # fmt: skip
        return INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
