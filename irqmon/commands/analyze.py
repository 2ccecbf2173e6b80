"""`irqmon analyze TRACE`: run the rules over a trace and report the findings."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from irqmon.commands._analysis_options import (
    add_analysis_options, config_from, function_sources, load_with_sources, selected_rules, source_elf,
)
from irqmon import schema
from irqmon.errors import UsageError
from irqmon.output.paths import check_output_file

if TYPE_CHECKING:  # the analysis stack (pandas) is imported when the command runs, not at start-up
    from irqmon.analysis import Finding
    from irqmon.tracefile import Trace


FORMATS = ("table", "concise", "github", "json", "sarif")
SEVERITIES = ("error", "warning", "note")  # most severe first, as irqmon.analysis.findings.SEVERITIES


EXAMPLES = """examples:
  irqmon analyze trace.csv
  irqmon analyze trace.csv --format sarif -o irqmon.sarif --source-root .
  irqmon analyze trace.csv --format github --fail-on warning
  irqmon analyze --explain malloc-in-isr
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "analyze", help="find interrupt-safety bugs in a trace", description=__doc__, epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("trace", nargs="?", type=Path, help="trace file (CSV from `irqmon attach`, or Parquet)")
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
    add_analysis_options(parser)
    parser.add_argument("--list-rules", action="store_true", help="list the rules and exit")
    parser.add_argument("--explain", metavar="RULE", help="print a rule's documentation and exit")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from irqmon.analysis import all_rules, analyze
    from irqmon.output import json_format

    rules = all_rules()
    if args.list_rules:
        for rule in rules.values():
            print(f"{rule.id:28} {rule.rule.severity:8} {rule.rule.summary}")
        return 0
    if args.explain:
        if args.explain not in rules:
            raise UsageError(f"unknown rule {args.explain!r} (irqmon analyze --list-rules shows them)")
        print(rules[args.explain].doc)
        return 0
    if args.trace is None:
        raise UsageError("analyze: a TRACE file is needed")
    selected = selected_rules(args)
    config = config_from(args)
    baseline = json_format.baseline_fingerprints(args.baseline) if args.baseline else None
    if args.output:
        check_output_file(args.output)
    trace = load_with_sources(args)
    findings = analyze(trace, config, selected, release=True)  # the report needs no rows
    if baseline is not None:
        findings = [f for f in findings if f.fingerprint not in baseline]
    write_report(findings, trace, args, {r: rules[r] for r in (selected or rules)})
    failing = SEVERITIES[: SEVERITIES.index(args.fail_on) + 1]
    return 1 if not args.exit_zero and any(f.severity in failing for f in findings) else 0


def write_report(findings: list[Finding], trace: Trace, args: argparse.Namespace, rules: dict) -> None:
    try:
        out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    except OSError as exc:
        raise UsageError(f"{args.output}: cannot write: {exc.strerror or exc}") from None
    try:
        if args.format == "json":  # each formatter imported only when used (the table one needs rich)
            from irqmon.output import json_format

            out.write(json_format.render(findings, trace))
        elif args.format == "sarif":
            from irqmon.output import sarif

            fallback = trace.metadata.get(schema.META_ELF) or str(trace.path)
            out.write(sarif.render(findings, rules, args.source_root, fallback, function_sources(source_elf(args, trace))))
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
