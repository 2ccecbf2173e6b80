"""`irqmon export --format perfetto TRACE -o trace.json`: the trace for the Perfetto UI.

Its activations and findings are those of the analysis `irqmon analyze` runs with the same options."""

from __future__ import annotations

import argparse
from pathlib import Path

from irqmon.commands._analysis_options import add_analysis_options, add_view_options
from irqmon.errors import UsageError
from irqmon.output.paths import check_output_file
from irqmon.output.terminal import plain


EXAMPLES = """examples:
  irqmon export --format perfetto trace.csv -o trace.json   # then open it in ui.perfetto.dev
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export", help="export a trace for other viewers (Perfetto)", description=__doc__, epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("trace", type=Path, help="trace file (CSV from `irqmon attach`, or Parquet)")
    parser.add_argument("--format", choices=("perfetto",), default="perfetto", help="Chrome trace-event JSON for ui.perfetto.dev")
    parser.add_argument("-o", "--output", type=Path, required=True, help="file to write")
    add_view_options(parser)
    add_analysis_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from irqmon.commands._analysis_options import analysis_for_view, window
    from irqmon.report.model import build_model
    from irqmon.report.perfetto import write_perfetto

    span = window(args)
    check_output_file(args.output)
    analysis, trace_path = analysis_for_view(args)
    model = build_model(analysis.context)
    if span != (None, None):
        try:
            model = model.clipped(*span)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    try:
        write_perfetto(model, analysis.findings, trace_path.name, args.output)
    except OSError as exc:
        raise UsageError(f"{args.output}: cannot write: {exc.strerror or exc}") from None
    print(plain(args.output))
    return 0
