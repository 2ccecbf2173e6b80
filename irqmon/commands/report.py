"""`irqmon report TRACE -o DIR`: report.md, report.html and the figures for a pull request.

The report shows the findings `irqmon analyze` gives with the same options (or those of
`--findings RESULT.json`), drawn from the same analysis."""

from __future__ import annotations

import argparse
from pathlib import Path

from irqmon.commands._analysis_options import add_analysis_options, add_view_options
from irqmon.errors import UsageError
from irqmon.output.paths import check_output_dir
from irqmon.output.terminal import plain


EXAMPLES = """examples:
  irqmon report trace.csv -o report/
  irqmon report trace.csv --layout pr --findings result.json -o report/
  irqmon report trace.csv --source-url 'https://github.com/OWNER/REPO/blob/COMMIT/{path}#L{line}' -o report/
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="plotted report (markdown, HTML, PNG) of a trace", description=__doc__, epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("trace", type=Path, help="trace file (CSV from `irqmon attach`, or Parquet)")
    parser.add_argument("--layout", default="full", metavar="pr|full|FILE.toml", help="panels to draw (default: full)")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="DIR", help="directory for report.md, report.html and the PNGs")
    parser.add_argument("--source-url", metavar="TEMPLATE",
                        help="make source lines links: a URL with {path} (the file, relative to the repository) and "
                             "optionally {line}, e.g. https://github.com/OWNER/REPO/blob/COMMIT/{path}#L{line}")  # fmt: skip
    add_view_options(parser)
    add_analysis_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from irqmon.commands._analysis_options import analysis_for_view, window
    from irqmon.report import write_report
    from irqmon.report.layout import load_layout
    from irqmon.report.links import check_template

    span = window(args)
    if args.source_url is not None:
        check_template(args.source_url)  # a bad template fails before the trace is read
    load_layout(args.layout)  # a bad layout fails before the trace is read
    check_output_dir(args.output)
    analysis, trace_path = analysis_for_view(args)
    try:
        report = write_report(analysis, trace_path, args.output, layout=args.layout, window=span, source_url=args.source_url)
    except OSError as exc:  # a disk that fills while the figures are written
        raise UsageError(f"{args.output}: cannot write the report: {exc.strerror or exc}") from None
    print(plain(report))
    return 0
