"""`irqmon probes`: the probe packs, what each needs, and with --elf what each finds."""

from __future__ import annotations

import argparse

from rich.table import Table

from irqmon.cortexm.elf import ElfImage
from irqmon.output.terminal import console as plain_console
from irqmon.output.terminal import plain
from irqmon.probes import CapturePlan, available_packs, is_useful, resolve_pack
from irqmon.schema import Kind
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
    plans = {name: resolve_pack(pack, elf, target) for name, pack in packs.items()}
    for name, plan in plans.items():
        found = [f.symbol for f in plan.functions] + [w.symbol for w in plan.watches]
        if plan.masks:
            found.append(f"{len(plan.masks)} mask instruction sites")
        if plan.task:
            found.append("current task")
        table.add_row(plain(name), str(plan.breakpoints_needed), str(plan.watchpoints_needed), plain(", ".join(found)) or "-")
    useful = {name: plan for name, plan in plans.items() if is_useful(plan)}
    breakpoints = sum(p.breakpoints_needed for p in useful.values())
    watchpoints = sum(p.watchpoints_needed for p in useful.values())
    table.add_section()
    table.add_row("all that find something", str(breakpoints), str(watchpoints), "the default plan")
    console.print(table)
    if breakpoints <= target.fpb_comparators and watchpoints <= target.dwt_comparators:
        console.print(f"The default plan fits {plain(target.name)}.")
        return 0
    fitting = packs_that_fit(useful, target.fpb_comparators, target.dwt_comparators)
    left_out = [name for name in useful if name not in fitting]
    console.print(
        f"The default plan needs {breakpoints} breakpoints and {watchpoints} watchpoints: more than {plain(target.name)} has.\n"
        "irqmon attach arms it in comparator sets, in turns (--rotate; each site sees part of the capture).\n"
        f"A set that fits at once, most telling packs first: --probes {','.join(fitting) or '(none)'}"
        + (f"\n(left out: {', '.join(left_out)}; capture them in another run)" if left_out else "")
    )  # fmt: skip
    return 0


# What a pack's events are worth to the rules, most first: heap and mutex calls (the bugs that
# crash), locks, ISR-side RTOS calls, shared registers, critical sections, the rest.
KIND_ORDER = [Kind.HEAP, Kind.MUTEX, Kind.LOCK, Kind.RTOS_FROMISR, Kind.SHARED_REGISTER, Kind.CRITICAL_SECTION,
              Kind.BLOCKING, Kind.RTOS_API, Kind.NON_REENTRANT, Kind.WATCH]  # fmt: skip


def packs_that_fit(plans: dict[str, CapturePlan], breakpoints: int, watchpoints: int) -> list[str]:
    """Packs chosen greedily, the most telling first (by the best kind of event each gives),
    while their comparators fit."""

    def rank(name: str) -> tuple[int, int]:
        plan = plans[name]
        kinds = {f.kind for f in plan.functions} | {w.kind for w in plan.watches}
        kinds |= {Kind.CRITICAL_SECTION} if plan.masks else set()
        best = min((KIND_ORDER.index(Kind(k)) for k in kinds if k in KIND_ORDER), default=len(KIND_ORDER))
        return best, plan.breakpoints_needed + plan.watchpoints_needed

    chosen: list[str] = []
    free_bp, free_wp = breakpoints, watchpoints
    for name in sorted(plans, key=rank):
        plan = plans[name]
        if plan.breakpoints_needed <= free_bp and plan.watchpoints_needed <= free_wp:
            chosen.append(name)
            free_bp -= plan.breakpoints_needed
            free_wp -= plan.watchpoints_needed
    return chosen
