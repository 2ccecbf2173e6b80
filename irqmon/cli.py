"""The `irqmon` command line: one subcommand per module in `irqmon.commands`."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from irqmon import __version__, commands
from irqmon.errors import CaptureError, UsageError


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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # The top-level parser has no option taking a value: a first word naming a command is that command.
    parser = build_parser(argv[0] if argv and argv[0] in command_names() else None)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except UsageError as exc:
        print(f"irqmon: {exc}", file=sys.stderr)
        return 2
    except CaptureError as exc:
        print(f"irqmon: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("irqmon: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
