"""What the recorder instruments, from a capture plan and the ELF: the sites file it reads.

- every probed function entry, mask instruction and the --until function (a site record); at
  an entry whose probe has an object marker, the record also carries the marker's member, read
  from the call's object as the call is made;
- every exception handler's first instruction (an IRQ entry when the core arrives there with
  that exception active);
- every instruction that loads pc from a register or memory (bx, pop/ldm with pc, ldr pc): an
  IRQ exit when it loads an EXC_RETURN value in handler mode;
- for functions whose return the plan wants: the instruction after each direct call of them
  (where gdb's return breakpoint would be), and their own returning instructions, for calls
  through a pointer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntFlag
from pathlib import Path

from irqmon.cortexm import thumb
from irqmon.cortexm.elf import ElfImage
from irqmon.backends.qemu_plugin.records import REGISTERS
from irqmon.probes import CapturePlan, FunctionProbe

ALWAYS = 14  # the condition field of an instruction outside an IT block (AL)


class SiteFlag(IntFlag):
    HIT = 1  # a site record at every execution
    HANDLER = 2  # an exception handler's first instruction
    EXIT = 4  # loads pc: an IRQ exit record when that is an EXC_RETURN in handler mode
    RETURN = 8  # a return of a function the plan wants returns of: a return record


class Target:
    NONE, REGISTER, MEMORY = 0, 1, 2


@dataclass(frozen=True)
class MarkerRead:
    """Bytes a site record carries: `size` bytes at `offset` from the object in `register`."""

    register: str
    offset: int
    size: int


def marker_read(probe: FunctionProbe) -> MarkerRead | None:
    """What the recorder reads at `probe`'s call for its object marker (None: no marker)."""
    if probe.object_marker is None or probe.object_arg is None:
        return None
    return MarkerRead(probe.args[probe.object_arg], probe.object_marker.offset, probe.object_marker.size)


@dataclass
class Site:
    address: int
    flags: SiteFlag = SiteFlag(0)
    load: thumb.PcLoad | None = None
    condition: int = ALWAYS
    marker: MarkerRead | None = None

    def line(self) -> str:
        kind = Target.NONE if self.load is None else Target.REGISTER if self.load.offset is None else Target.MEMORY
        base = self.load.base if self.load else 0
        offset = self.load.offset or 0 if self.load else 0
        line = f"S {self.address:x} {int(self.flags)} {kind} {base} {offset} {self.condition}"
        if self.marker is not None:
            line += f" {REGISTERS.index(self.marker.register)} {self.marker.offset} {self.marker.size}"
        return line


@dataclass
class SiteTable:
    sites: dict[int, Site] = field(default_factory=dict)
    return_addresses: set[int] = field(default_factory=set)  # after direct calls of returning probes

    def add(self, address: int, flag: SiteFlag, load: thumb.PcLoad | None = None, condition: int = ALWAYS) -> None:
        site = self.sites.setdefault(address, Site(address))
        site.flags |= flag
        if load is not None:
            site.load, site.condition = load, condition

    def write(self, path: Path, plan: CapturePlan) -> None:
        lines = [site.line() for site in sorted(self.sites.values(), key=lambda s: s.address)]
        lines += [f"W {w.address:x} {w.size}" for w in plan.watches]
        if plan.task is not None:
            lines.append(f"T {plan.task.pointer_address:x} {plan.task.name_offset} {plan.task.name_length}")
        path.write_text("\n".join(lines) + "\n")


def build_sites(elf: ElfImage, plan: CapturePlan, until: int | None) -> SiteTable:
    table = SiteTable()
    for probe in plan.functions:
        table.add(probe.address, SiteFlag.HIT)
        site = table.sites[probe.address]
        site.marker = site.marker or marker_read(probe)  # one marker a site: the first probe's
    for mask in plan.masks:
        table.add(mask.address, SiteFlag.HIT)
    if until is not None:
        table.add(until, SiteFlag.HIT)
    for handler in elf.exception_handlers:
        table.add(handler, SiteFlag.HANDLER)
    code = _function_code(elf)
    returning = _with_tail_callees(code, {p.address for p in plan.functions if p.returns})
    for start, instructions in code.items():
        conditions = thumb.it_conditions(instructions)
        for insn in instructions:
            load = thumb.pc_load(insn) if thumb.may_load_pc(insn) else None
            if load is not None:
                condition = conditions.get(insn.address, ALWAYS)
                table.add(insn.address, SiteFlag.EXIT, load, condition)
                if start in returning:
                    table.add(insn.address, SiteFlag.RETURN, load, condition)
            branch = thumb.branch_target(insn) if thumb.may_branch_directly(insn) else None
            if branch is not None and branch[1] and branch[0] in returning:
                table.return_addresses.add(insn.end)
    for address in table.return_addresses:
        table.add(address, SiteFlag.HIT)
    return table


def _function_code(elf: ElfImage) -> dict[int, list[thumb.Instruction]]:
    """Each function's instructions by its start address (aliases once)."""
    code: dict[int, list[thumb.Instruction]] = {}
    for symbol in elf.symbols.values():
        if symbol.is_function and symbol.size and symbol.address not in code:
            code[symbol.address] = list(elf.instructions(symbol.name))
    return code


def _with_tail_callees(code: dict[int, list[thumb.Instruction]], functions: set[int]) -> set[int]:
    """`functions` and every function they leave by a tail call (a `b` to another function's
    start), whose own returns then return to their callers."""
    found, todo = set(functions), list(functions)
    while todo:
        for insn in code.get(todo.pop(), []):
            branch = thumb.branch_target(insn) if thumb.may_branch_directly(insn) else None
            if branch is not None and not branch[1] and branch[0] in code and branch[0] not in found:
                found.add(branch[0])
                todo.append(branch[0])
    return found
