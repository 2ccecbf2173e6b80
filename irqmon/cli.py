"""The `irqmon` command line: one subcommand per module in `irqmon.commands`."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from irqmon import __version__, commands
from irqmon.errors import CaptureError, UsageError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="irqmon", description="Find interrupt-safety bugs in Cortex-M firmware from a runtime trace."
    )
    parser.add_argument("--version", action="version", version=f"irqmon {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser




def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
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
