"""`irqmon analyze TRACE`: run the rules over a trace and report the findings.

With several traces or a folder (`irqmon analyze TRACE_OR_DIR…`), each trace is analysed on its
own (in turn, or as Dask tasks with `--dask`) and the findings are merged by fingerprint."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING

from irqmon.commands._analysis_options import (
    add_analysis_options, add_batch_rows_option, config_from, function_sources, load_with_sources, selected_rules, source_elf,
)
from irqmon.commands._fleet import (
    add_fleet_options, every_trace_failed, fleet_of, function_sources_of, is_fleet, scheduler_address, trace_options,
)
from irqmon import schema
from irqmon.errors import UsageError
from irqmon.output.paths import check_output_file

if TYPE_CHECKING:  # the analysis stack (pandas) is imported when the command runs, not at start-up
    from irqmon.analysis import Finding
    from irqmon.fleet.merge import Fleet
    from irqmon.fleet.task import TraceOptions
    from irqmon.tracefile import Trace


FORMATS = ("table", "concise", "github", "json", "sarif")
SEVERITIES = ("error", "warning", "note")  # most severe first, as irqmon.analysis.findings.SEVERITIES


EXAMPLES = """examples:
  irqmon analyze trace.csv
  irqmon analyze trace.csv --format sarif -o irqmon.sarif --source-root .
  irqmon analyze trace.csv --format github --fail-on warning
  irqmon analyze nightly/ --format json -o fleet.json
  irqmon analyze nightly/ --dask tcp://127.0.0.1:8786
  irqmon analyze --explain malloc-in-isr
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "analyze", help="find interrupt-safety bugs in a trace", description=__doc__, epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("traces", nargs="*", type=Path, metavar="TRACE_OR_DIR",
                        help="trace file (CSV from `irqmon attach`, or Parquet); several, or a folder (every *.csv "
                             "and *.parquet under it): each analysed on its own, findings merged by fingerprint")  # fmt: skip
    parser.add_argument("--format", choices=FORMATS, default="table", metavar="|".join(FORMATS),
                        help="table (default): for people; concise: `path:line: rule-id title`; github: annotations "
                             "for GitHub Actions; json: docs/findings.md; sarif: for code scanning")  # fmt: skip
    parser.add_argument("--fail-on", choices=SEVERITIES, default="error",
                        help="exit 1 when a finding is at least this severe (default: error)")
    parser.add_argument("--exit-zero", action="store_true", help="exit 0 even with findings (bad input still exits 2)")
    parser.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                        help="colour in the table: auto (default: on a terminal, unless NO_COLOR is set), always, never")
    parser.add_argument("-o", "--output", type=Path, help="write the report here instead of stdout")
    parser.add_argument("--baseline", type=Path, help="an earlier JSON result: report only new findings")
    parser.add_argument("--source-root", type=Path, default=Path.cwd(), help="SARIF paths are relative to this (default: .)")
    add_batch_rows_option(parser)
    add_analysis_options(parser)
    add_fleet_options(parser)
    parser.add_argument("--list-rules", action="store_true", help="list the rules and exit")
    parser.add_argument("--explain", metavar="RULE", help="print a rule's documentation and exit")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from irqmon.analysis import all_rules, analyze, streams
    from irqmon.output import json_format

    rules = all_rules()
    if args.list_rules:
        for rule in rules.values():
            in_batches = " (judges a trace in batches)" if rule.stream else ""
            print(f"{rule.id:28} {rule.rule.severity:8} {rule.rule.summary}{in_batches}")
        return 0
    if args.explain:
        if args.explain not in rules:
            raise UsageError(f"unknown rule {args.explain!r} (irqmon analyze --list-rules shows them)")
        print(rules[args.explain].doc)
        return 0
    scheduler_address(args.dask)  # `--dask TRACE` is told apart from a missing trace
    if not args.traces:
        raise UsageError("analyze: a TRACE file is needed")
    selected = selected_rules(args)
    config = config_from(args)
    baseline = json_format.baseline_fingerprints(args.baseline) if args.baseline else None
    if args.output:
        check_output_file(args.output)
    if is_fleet(args):
        options = trace_options(args)
        fleet = fleet_of(args, options, baseline)
        write_fleet_report(fleet, args, {r: rules[r] for r in (selected or rules)}, options)
        if every_trace_failed(fleet):
            return 2
        return exit_status([m.severity for m in fleet.findings], args)
    args.trace = args.traces[0]
    if streams(selected):  # in memory that follows the batch size, not the trace's length
        from irqmon.analysis.batches import analyze_file
        from irqmon.tracefile import use_system_memory_pool

        use_system_memory_pool()
        trace, findings, _ = analyze_file(args.trace, config, selected, lambda metadata: source_elf(args, metadata), args.batch_rows)
    else:
        trace = load_with_sources(args)
        findings = analyze(trace, config, selected, release=True)  # the report needs no rows
    if baseline is not None:
        findings = [f for f in findings if f.fingerprint not in baseline]
    write_report(findings, trace, args, {r: rules[r] for r in (selected or rules)})
    return exit_status([f.severity for f in findings], args)


def exit_status(severities: list[str], args: argparse.Namespace) -> int:
    """1 when a finding is at least as severe as `--fail-on` (unless `--exit-zero`), else 0."""
    failing = SEVERITIES[: SEVERITIES.index(args.fail_on) + 1]
    return 1 if not args.exit_zero and any(severity in failing for severity in severities) else 0


def write_report(findings: list[Finding], trace: Trace, args: argparse.Namespace, rules: dict) -> None:
    out = _open_output(args)
    try:
        if args.format == "json":  # each formatter imported only when used (the table one needs rich)
            from irqmon.output import json_format

            out.write(json_format.render(findings, trace))
        elif args.format == "sarif":
            from irqmon.output import sarif

            fallback = trace.metadata.get(schema.META_ELF) or str(trace.path)
            out.write(sarif.render(findings, rules, args.source_root, fallback, function_sources(source_elf(args, trace.metadata))))
        elif args.format == "concise":
            from irqmon.output import lines

            out.write(lines.concise(findings, trace))
        elif args.format == "github":
            from irqmon.output import lines

            out.write(lines.github(findings, trace))
        else:
            from irqmon.output import table

            table.render(findings, trace, out, color=args.color)
    finally:
        if out is not sys.stdout:
            out.close()


def write_fleet_report(fleet: Fleet, args: argparse.Namespace, rules: dict, options: TraceOptions) -> None:
    """The merged findings of many traces in `--format`."""
    out = _open_output(args)
    try:
        if args.format == "json":
            from irqmon.output import json_format

            out.write(json_format.render_fleet(fleet))
        elif args.format == "sarif":
            from irqmon.output import sarif

            out.write(sarif.render_fleet(fleet, rules, args.source_root, function_sources_of(options)))
        elif args.format == "concise":
            from irqmon.output import lines

            out.write(lines.concise_fleet(fleet))
        elif args.format == "github":
            from irqmon.output import lines

            out.write(lines.github_fleet(fleet))
        else:
            from irqmon.output import table

            table.render_fleet(fleet, out, color=args.color)
    finally:
        if out is not sys.stdout:
            out.close()


def _open_output(args: argparse.Namespace) -> IO[str]:
    try:
        return open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    except OSError as exc:
        raise UsageError(f"{args.output}: cannot write: {exc.strerror or exc}") from None
