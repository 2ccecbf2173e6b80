"""The `irqmon` command line: one subcommand per module in `irqmon.commands`."""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import pkgutil
import re
import sys
import traceback
import warnings
from pathlib import Path
from typing import NoReturn

from irqmon import __version__, commands
from irqmon.errors import CaptureError, UsageError
from irqmon.output.terminal import plain

# Exit statuses: 0 no error findings, 1 error findings or a capture cut off, 2 bad input,
# 3 an unexpected error in irqmon itself (a bug: CI must not read it as findings).
INTERNAL_ERROR = 3
DEBUG_VARIABLE = "IRQMON_DEBUG"
EPILOG = """examples:
  irqmon attach --target stm32f405 --qemu fw.elf -o trace.csv
  irqmon analyze trace.csv
  irqmon report trace.csv -o report/

`irqmon COMMAND --help` describes each command."""


def command_names() -> list[str]:
    """The subcommands, one per public module of `irqmon.commands` (listed without importing them;
    a module named `_…` holds what several commands share)."""
    return sorted(info.name for info in pkgutil.iter_modules(commands.__path__) if not info.name.startswith("_"))


class Parser(argparse.ArgumentParser):
    """argparse, with a suggestion for a mistyped command, choice or option (as git and cargo do)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}{self._suggestion(message)}\n(see {self.prog} --help)\n")

    def _suggestion(self, message: str) -> str:
        choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if choice:
            known = re.findall(r"'([^']*)'", choice[2])
            return _did_you_mean(choice[1], known)
        unknown = re.match(r"unrecognized arguments: (.*)", message)
        if unknown:
            options = _options(self)
            for word in unknown[1].split():
                if word.startswith("-"):
                    return _did_you_mean(word.split("=", 1)[0], options)
        return ""


def _options(parser: argparse.ArgumentParser) -> list[str]:
    """Every option of `parser` and of its subcommands' parsers."""
    options = []
    for action in parser._actions:
        options += action.option_strings
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                options += _options(sub)
    return options


def _did_you_mean(word: str, known: list[str]) -> str:
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with `only`, just that subcommand's module is imported and
    registered (start-up then skips the other commands' imports: backends, capture, rich)."""
    parser = Parser(
        prog="irqmon", description="Find interrupt-safety bugs in Cortex-M firmware from a runtime trace.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
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
