"""`irqmon convert IN OUT`: convert a trace between CSV and Parquet (by OUT's extension)."""

from __future__ import annotations

import argparse
from pathlib import Path

from irqmon.errors import UsageError
from irqmon.output.paths import check_output_file


EXAMPLES = """examples:
  irqmon convert trace.csv trace.parquet
  irqmon convert trace.parquet trace.csv
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert", help="convert a trace between CSV and Parquet", description=__doc__, epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("source", type=Path, help="trace to read (CSV or Parquet)")
    parser.add_argument("target", type=Path, help="file to write: .parquet or .csv")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from irqmon.tracefile import load_trace, write_csv, write_parquet

    suffix = args.target.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise UsageError(f"{args.target}: say .parquet or .csv as the extension")
    check_output_file(args.target, "output")
    trace = load_trace(args.source)
    try:
        (write_parquet if suffix == ".parquet" else write_csv)(trace, args.target)
    except OSError as exc:
        raise UsageError(f"{args.target}: cannot write: {exc.strerror or exc}") from None
    return 0
