"""`irqmon report TRACE -o DIR`: report.md, report.html and the figures for a pull request."""

from __future__ import annotations

import argparse
from pathlib import Path



def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("report", help="plotted report (markdown, HTML, PNG) of a trace", description=__doc__)
    parser.add_argument("trace", type=Path, help="trace file (CSV from `irqmon attach`, or Parquet)")
    parser.add_argument("--elf", type=Path, help="firmware image: source lines from its line table")
    parser.add_argument("--layout", default="full", metavar="pr|full|FILE.toml", help="panels to draw (default: full)")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="DIR", help="directory for report.md, report.html and the PNGs")
    from irqmon.report.inputs import add_common_options

    add_common_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from irqmon.tracefile import load_trace

    from irqmon.commands.analyze import with_elf_sources
    from irqmon.report import write_report
    from irqmon.report.inputs import findings_for, window
    from irqmon.report.layout import load_layout

    span = window(args)
    load_layout(args.layout)  # a bad layout fails before the trace is read
    trace = load_trace(args.trace)
    if args.elf:
        trace = with_elf_sources(trace, args.elf)
    path = write_report(trace, findings_for(trace, args.findings), args.output, layout=args.layout, window=span)
    print(path)
    return 0
