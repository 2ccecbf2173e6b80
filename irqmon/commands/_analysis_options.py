"""Options that decide the findings, shared by `analyze`, `report` and `export` so that a
report shows what `analyze` finds with the same options."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

from irqmon.elf_sources import recorded_elf, with_elf_sources
from irqmon.errors import UsageError

if TYPE_CHECKING:  # the analysis stack (pandas) is imported when a command runs, not at start-up
    from irqmon.analysis import Analysis, AnalysisConfig
    from irqmon.tracefile import Trace

STORM_KEYS = {"entries": "storm_min_entries", "rate": "storm_rate", "share": "storm_share", "gap": "storm_gap", "window": "storm_window", "tick": "storm_tick_margin"}


def add_analysis_options(parser: argparse.ArgumentParser) -> None:
    """The trace's source lines, the rules to run and their thresholds."""
    parser.add_argument("--elf", type=Path,
                        help="firmware image for source lines (default: the trace's `elf` when its build id matches)")
    parser.add_argument("--no-elf", action="store_true", help="use only the trace's source column")
    parser.add_argument("--rules", help="comma-separated rule ids to run (default: all)")
    parser.add_argument("--max-syscall-priority", type=_integer, metavar="N",
                        help="raw BASEPRI ceiling of RTOS calls (configMAX_SYSCALL_INTERRUPT_PRIORITY, e.g. 0x50)")  # fmt: skip
    parser.add_argument("--storm-threshold", metavar="KEY=VALUE,…",
                        help="interrupt-storm thresholds: entries (back-to-back), rate (/s), share (0-1), gap (s), window (s), tick (times a periodic tick's rate)")  # fmt: skip
    parser.add_argument("--lock-window", type=float, metavar="SECONDS", help="report locks held longer than this")


def add_view_options(parser: argparse.ArgumentParser) -> None:
    """For `report` and `export`: findings from an earlier result, and a time window."""
    parser.add_argument("--findings", type=Path, metavar="RESULT.json",
                        help="show the findings of `irqmon analyze --format json` (default: analyze the trace now)")  # fmt: skip
    parser.add_argument("--from", dest="start", type=float, metavar="SECONDS", help="start of the time window")
    parser.add_argument("--to", dest="end", type=float, metavar="SECONDS", help="end of the time window")


def add_batch_rows_option(parser: argparse.ArgumentParser) -> None:
    """`--batch-rows`: for `analyze` and `report`, a trace read in batches of this many rows."""
    parser.add_argument("--batch-rows", type=_positive, default=None, metavar="N",
                        help="rows read at a time when every selected rule can judge a trace in batches "
                             "(`irqmon analyze --list-rules` marks them; default 1048576): memory follows it, "
                             "not the trace's length")  # fmt: skip


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} rows: at least 1")
    return value


def selected_rules(args: argparse.Namespace) -> list[str] | None:
    return [r.strip() for r in args.rules.split(",") if r.strip()] if args.rules else None


def _integer(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def config_from(args: argparse.Namespace) -> AnalysisConfig:
    from irqmon.analysis import AnalysisConfig

    config = AnalysisConfig(max_syscall_priority=args.max_syscall_priority, lock_window=args.lock_window)
    if not args.storm_threshold:
        return config
    types = {f.name: f.type for f in fields(AnalysisConfig)}
    changes: dict[str, float | int] = {}
    for item in args.storm_threshold.split(","):
        key, sep, value = item.partition("=")
        name = STORM_KEYS.get(key.strip())
        if not sep or name is None:
            raise UsageError(f"--storm-threshold: {item!r} is not one of {', '.join(k + '=…' for k in STORM_KEYS)}")
        try:
            number = int(value) if types[name] == "int" else float(value)
        except ValueError:
            raise UsageError(f"--storm-threshold: {key}={value!r} is not a number") from None
        if number <= 0:
            raise UsageError(f"--storm-threshold: {key} must be positive")
        changes[name] = number
    return replace(config, **changes)






def load_with_sources(args: argparse.Namespace) -> Trace:
    """The trace of `args.trace` with source lines from `--elf`, or from its recorded ELF."""
    from irqmon.tracefile import load_trace, use_system_memory_pool

    use_system_memory_pool()
    trace = load_trace(args.trace)
    elf = source_elf(args, trace.metadata)
    return with_elf_sources(trace, elf) if elf else trace




def source_elf(args: argparse.Namespace, metadata: Mapping[str, str]) -> Path | None:
    """The ELF that source lines come from: `--elf`, else the trace's recorded one (its
    `metadata` names it), unless `--no-elf`."""
    return args.elf or (None if args.no_elf else recorded_elf(metadata))


def function_sources(elf: Path | None) -> Callable[[str], str | None]:
    """`file:line` of a function's first instruction by its name, from `elf` (None: no lines)."""
    if elf is None:
        return lambda name: None
    from irqmon.cortexm.elf import ElfImage

    image = ElfImage(elf)
    try:
        lines = {s.name: image.source_line(s.address) for s in image.symbols.values() if s.is_function}
    finally:
        image.close()
    return lines.get


def window(args: argparse.Namespace) -> tuple[float | None, float | None]:
    if args.start is not None and args.end is not None and args.end <= args.start:
        raise UsageError(f"--to {args.end:g} must be after --from {args.start:g}")
    return args.start, args.end


def analysis_for_view(args: argparse.Namespace) -> tuple[Analysis, Path]:
    """For `report` and `export`: the trace analysed with the options given (as `analyze` would),
    its findings replaced by `--findings` when given; and the trace's path."""
    from irqmon.analysis import Analysis, analysis_of
    from irqmon.output.json_format import read_findings

    config = config_from(args)  # bad options fail before the trace is read
    rules = selected_rules(args)
    recorded = read_findings(args.findings) if args.findings else None
    trace = load_with_sources(args)
    analysis = analysis_of(trace, config, rules, release=True)
    if recorded is not None:
        analysis = Analysis(analysis.context, recorded)
    return analysis, trace.path
