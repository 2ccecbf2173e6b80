"""`irqmon convert IN OUT`: convert a trace between CSV and Parquet (by OUT's extension), a batch
of rows at a time (any size, in bounded memory)."""

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
    from irqmon.tracefile import convert

    if args.target.suffix.lower() not in (".parquet", ".csv"):
        raise UsageError(f"{args.target}: say .parquet or .csv as the extension")
    check_output_file(args.target, "output")
    try:
        convert(args.source, args.target)  # a batch at a time: any size in bounded memory
    except OSError as exc:
        raise UsageError(f"{args.target}: cannot write: {exc.strerror or exc}") from None
    return 0
