"""`irqmon probes`: the probe packs, what each needs, and with --elf what each finds."""

from __future__ import annotations

import argparse

from rich.table import Table

from irqmon.cortexm.elf import ElfImage
from irqmon.output.terminal import console as plain_console
from irqmon.output.terminal import plain
from irqmon.probes import available_packs, resolve_pack
from irqmon.targets import load_target


EXAMPLES = """examples:
  irqmon probes
  irqmon probes --elf fw.elf --target stm32f746
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "probes", help="list probe packs (and what they find in an ELF)", description=__doc__, epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--elf", help="show what each pack finds in this firmware")
    parser.add_argument("--target", default="stm32f405", help="target profile for --elf (default stm32f405)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    console = plain_console()
    packs = available_packs()
    if not args.elf:
        table = Table("pack", "what it watches", "file")
        for pack in packs.values():
            table.add_row(plain(pack.name), plain(pack.description), plain(pack.path.name))
        console.print(table)
        return 0
    elf = ElfImage(args.elf)
    target = load_target(args.target)
    table = Table("pack", "breakpoints", "watchpoints", "finds", title=f"{plain(elf.path.name)} on {plain(target.name)} "
                  f"({target.fpb_comparators} FPB, {target.dwt_comparators} DWT comparators)")  # fmt: skip
    for pack in packs.values():
        plan = resolve_pack(pack, elf, target)
        found = [f.symbol for f in plan.functions] + [w.symbol for w in plan.watches]
        if plan.masks:
            found.append(f"{len(plan.masks)} mask instruction sites")
        if plan.task:
            found.append("current task")
        table.add_row(plain(pack.name), str(plan.breakpoints_needed), str(plan.watchpoints_needed), plain(", ".join(found)) or "-")
    console.print(table)
    return 0
