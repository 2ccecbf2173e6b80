"""What the report and export commands share: the trace window and the findings to show."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from irqmon.errors import UsageError

if TYPE_CHECKING:  # pandas comes in when a command runs, not when the parser is built
    from irqmon.analysis import Finding
    from irqmon.tracefile import Trace


def add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--findings", type=Path, metavar="RESULT.json",
                        help="findings from `irqmon analyze --format json` (default: analyze the trace now)")  # fmt: skip
    parser.add_argument("--from", dest="start", type=float, metavar="SECONDS", help="start of the time window")
    parser.add_argument("--to", dest="end", type=float, metavar="SECONDS", help="end of the time window")


def window(args: argparse.Namespace) -> tuple[float | None, float | None]:
    if args.start is not None and args.end is not None and args.end <= args.start:
        raise UsageError(f"--to {args.end:g} must be after --from {args.start:g}")
    return args.start, args.end


def findings_for(trace: Trace, result: Path | None) -> list[Finding]:
    """The findings of an earlier JSON result, or those of analyzing `trace` with the defaults."""
    from irqmon.analysis import Finding, analyze
    from irqmon.output.json_format import RESULT_SCHEMA

    if result is None:
        return analyze(trace)
    try:
        data = json.loads(result.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{result}: cannot read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{result}: not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") != RESULT_SCHEMA or not isinstance(data.get("findings"), list):
        raise UsageError(f"{result}: not an irqmon JSON result (from `irqmon analyze --format json`)")
    try:
        return [Finding.from_dict(item) for item in data["findings"]]
    except TypeError as exc:
        raise UsageError(f"{result}: a finding lacks a field ({exc})") from None
