"""`irqmon report TRACE -o DIR`: report.md, report.html and the figures for a pull request.

The report shows the findings `irqmon analyze` gives with the same options (or those of
`--findings RESULT.json`), drawn from the same analysis. With several traces or a folder, the
report of the fleet: the findings merged across traces, drawn per firmware build and per trace."""

from __future__ import annotations

import argparse
from pathlib import Path

from irqmon.commands._analysis_options import add_analysis_options, add_batch_rows_option, add_view_options
from irqmon.commands._fleet import add_fleet_options, every_trace_failed, fleet_of, is_fleet, scheduler_address, trace_options
from irqmon.errors import UsageError
from irqmon.output.paths import check_output_dir
from irqmon.output.terminal import plain


EXAMPLES = """examples:
  irqmon report trace.csv -o report/
  irqmon report trace.csv --layout pr --findings result.json -o report/
  irqmon report nightly/ -o fleet-report/
  irqmon report trace.csv --source-url 'https://github.com/OWNER/REPO/blob/COMMIT/{path}#L{line}' -o report/
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="plotted report (markdown, HTML, PNG) of a trace", description=__doc__, epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("traces", nargs="+", type=Path, metavar="TRACE_OR_DIR",
                        help="trace file (CSV from `irqmon attach`, or Parquet); several, or a folder (every *.csv "
                             "and *.parquet under it): the report of them all, findings merged")  # fmt: skip
    parser.add_argument("--layout", metavar="pr|full|FILE.toml", help="panels to draw for one trace (default: full)")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="DIR", help="directory for report.md, report.html and the PNGs")
    parser.add_argument("--source-url", metavar="TEMPLATE",
                        help="make source lines links: a URL with {path} (the file, relative to the repository) and "
                             "optionally {line}, e.g. https://github.com/OWNER/REPO/blob/COMMIT/{path}#L{line}")  # fmt: skip
    add_view_options(parser)
    add_analysis_options(parser)
    add_batch_rows_option(parser)
    add_fleet_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from irqmon.analysis import streams
    from irqmon.commands._analysis_options import analysis_for_view, selected_rules, window
    from irqmon.report import write_report
    from irqmon.report.layout import load_layout
    from irqmon.report.links import check_template

    scheduler_address(args.dask)  # `--dask TRACE` is told apart from a missing trace
    span = window(args)
    if args.source_url is not None:
        check_template(args.source_url)  # a bad template fails before the trace is read
    if is_fleet(args):
        return run_fleet(args)
    layout = args.layout or "full"
    load_layout(layout)  # a bad layout fails before the trace is read
    check_output_dir(args.output)
    args.trace = args.traces[0]
    try:
        if streams(selected_rules(args)):  # in memory that follows the batch size, not the trace's length
            report = _report_in_batches(args, layout, span)
        else:
            analysis, trace_path = analysis_for_view(args)
            report = write_report(analysis, trace_path, args.output, layout=layout, window=span, source_url=args.source_url)
    except OSError as exc:  # a disk that fills while the figures are written
        raise UsageError(f"{args.output}: cannot write the report: {exc.strerror or exc}") from None
    print(plain(report))
    return 0


def _report_in_batches(args: argparse.Namespace, layout: str, span: tuple[float | None, float | None]) -> Path:
    """The report of a trace read in batches: analysed first (unless `--findings`), then read
    again for its tables, its drawn window and the rows around each finding (on the facts the
    analysis learned: the trace's facts pass runs once)."""
    from irqmon.analysis.batches import analyze_file
    from irqmon.commands._analysis_options import config_from, selected_rules, source_elf
    from irqmon.output.json_format import read_findings
    from irqmon.report import write_report_in_batches
    from irqmon.tracefile import use_system_memory_pool

    use_system_memory_pool()
    config = config_from(args)
    elf_of = lambda metadata: source_elf(args, metadata)  # noqa: E731
    if args.findings:
        findings, facts = read_findings(args.findings), None  # the report's pass learns the facts itself
    else:
        _, findings, facts = analyze_file(args.trace, config, selected_rules(args), elf_of, args.batch_rows)
    return write_report_in_batches(args.trace, findings, config, elf_of, args.output, layout, span, args.source_url, args.batch_rows,
                                   facts=facts)  # fmt: skip


def run_fleet(args: argparse.Namespace) -> int:
    """The report of many traces; the options that draw one trace do not apply."""
    from irqmon.report import write_fleet_report

    for option, value in (("--layout", args.layout), ("--findings", args.findings), ("--from", args.start), ("--to", args.end)):
        if value is not None:
            raise UsageError(f"{option} applies to the report of one trace, not of several")
    check_output_dir(args.output)
    fleet = fleet_of(args, trace_options(args))
    if every_trace_failed(fleet):
        return 2
    try:
        report = write_fleet_report(fleet, args.output, source_url=args.source_url)
    except OSError as exc:
        raise UsageError(f"{args.output}: cannot write the report: {exc.strerror or exc}") from None
    print(plain(report))
    return 0
