"""`irqmon export --format perfetto TRACE -o trace.json`: the trace for the Perfetto UI."""

from __future__ import annotations

import argparse
from pathlib import Path

from irqmon.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("export", help="export a trace for other viewers (Perfetto)", description=__doc__)
    parser.add_argument("trace", type=Path, help="trace file (CSV from `irqmon attach`, or Parquet)")
    parser.add_argument("--format", choices=("perfetto",), default="perfetto", help="Chrome trace-event JSON for ui.perfetto.dev")
    parser.add_argument("-o", "--output", type=Path, required=True, help="file to write")
    from irqmon.report.inputs import add_common_options

    add_common_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from irqmon.tracefile import load_trace

    from irqmon.report.inputs import findings_for, window
    from irqmon.report.model import build_model
    from irqmon.report.perfetto import write_perfetto

    span = window(args)
    trace = load_trace(args.trace)
    model = build_model(trace)
    if span != (None, None):
        try:
            model = model.clipped(*span)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    try:
        write_perfetto(model, findings_for(trace, args.findings), trace.path.name, args.output)
    except OSError as exc:
        raise UsageError(f"{args.output}: cannot write: {exc.strerror or exc}") from None
    print(args.output)
    return 0
