"""`irqmon targets`: the target profiles irqmon knows."""

from __future__ import annotations

import argparse

from rich.table import Table

from irqmon.output.terminal import console, plain
from irqmon.targets import available_targets, load_target


EXAMPLES = """examples:
  irqmon targets
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "targets", help="list target profiles", description=__doc__, epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    table = Table("target", "description", "IRQs", "prio bits", "FPB", "DWT", "QEMU", "pyOCD", "OpenOCD")
    for name in available_targets():
        t = load_target(name)
        table.add_row(
            plain(t.name), plain(t.description), str(len(t.irqs)), str(t.priority_bits), str(t.fpb_comparators),
            str(t.dwt_comparators), t.qemu_machine or "-", t.pyocd_target or "-", t.openocd_config or "-",
        )  # fmt: skip
    console().print(table)
    return 0
