"""A call-stack unwinder for Cortex-M firmware: DWARF call frame information (`.debug_frame`)
plus the exception frames the core pushes on interrupt entry.

`Unwinder` parses the ELF once; `unwind()` is a pure function of the registers and memory the
callbacks return, so it serves any backend (pyOCD, a raw GDB remote stub). The frames and
their names follow gdb's `bt`: innermost first, an exception entry as '<exception>' at the
EXC_RETURN value, the interrupted code after it, a frame for each inlined function (from
`.debug_info`) at the same pc as the function it was inlined into, a frame for each function
that left by a tail call where DWARF call-site information proves it (as gdb's tail-call frames),
and the walk ends at `main`.
"""

from __future__ import annotations

import bisect
import struct
from collections import ChainMap
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass

from elftools.dwarf.callframe import FDE, CFARule, RegisterRule
from elftools.elf.elffile import ELFFile

from irqmon.cortexm.elf import ElfImage
from irqmon.cortexm.exceptions import EXC_RETURN_BASIC_FRAME, EXC_RETURN_PSP, is_exc_return
from irqmon.cortexm.frames import Frame
from irqmon.cortexm.thumb import prologue_effect
from irqmon.schema import EXCEPTION_FRAME, UNKNOWN_FUNCTION

OUTERMOST_FUNCTION = "main"  # gdb stops there unless told `set backtrace past-main`
RESET_LR = 0xFFFFFFFF
BASIC_FRAME_WORDS, FP_FRAME_WORDS = 8, 26
STACKED = ("r0", "r1", "r2", "r3", "r12", "lr", "pc", "xpsr")
XPSR_STACK_ALIGN = 1 << 9  # the core padded the stack by one word before stacking
DWARF_REGISTERS = {n: f"r{n}" for n in range(13)} | {13: "sp", 14: "lr", 15: "pc"}
UNWIND_REGISTERS = (*(f"r{n}" for n in range(13)), "sp", "lr", "pc", "msp", "psp")

PROLOGUE_SCAN_LIMIT = 64  # bytes of a function gdb-style prologue analysis looks at

class UnreadableMemory(Exception):
    """A `ReadMemory` cannot give these bytes: the walk ends there, as gdb's does."""


ReadRegister = Callable[[str], int]
Registers = MutableMapping[str, int]


class _StackedFrame(dict):
    """The registers the core stacked on exception entry, each read from the frame when first
    used (a walk depends on the stacked pc and xPSR, and on the others only where it uses them)."""

    def __init__(self, read_memory: ReadMemory, address: int) -> None:
        super().__init__()
        self._read, self._address = read_memory, address

    def __missing__(self, name: str) -> int:
        if name not in STACKED:
            raise KeyError(name)
        value = self[name] = struct.unpack("<I", self._read(self._address + 4 * STACKED.index(name), 4))[0]
        return value


class _RegistersOnDemand(dict):
    """The stopped core's registers, each read through the callback when first used: a walk
    asks only for the registers its frames depend on (which makes a walk's inputs known)."""

    def __init__(self, read_register: ReadRegister) -> None:
        super().__init__()
        self._read = read_register

    def __missing__(self, name: str) -> int:
        value = self[name] = self._read(name)
        return value
ReadMemory = Callable[[int, int], bytes]


@dataclass(frozen=True)
class FunctionSymbol:
    start: int
    end: int
    name: str


@dataclass(frozen=True)
class CallSite:
    """A call recorded in DWARF: the address after the call instruction and the callee."""

    return_pc: int
    caller: int  # entry address of the calling function
    callee: int  # entry address of the called function
    tail: bool


@dataclass(frozen=True)
class InlinedCode:
    """An address range where a function was inlined, `depth` inlined calls deep."""

    start: int
    end: int
    depth: int
    name: str


class Unwinder:
    """Symbols and CFI of one ELF, ready to unwind stacks of the firmware it holds."""

    def __init__(self, elf: ElfImage) -> None:
        elffile = elf.elffile
        self._symbols = self._read_functions(elffile)
        self._fdes = self._read_fdes(elffile)
        self._inlined, call_sites, subprograms = self._read_debug_info(elffile)
        # gdb names code by its DWARF subprogram (`__sinit` for `__sinit.part.0`), else by symbol.
        self._subprograms = sorted(subprograms, key=lambda f: f.start)
        self._subprogram_starts = [f.start for f in self._subprograms]
        self._symbol_starts = [f.start for f in self._symbols]
        self._fde_starts = [start for start, _, _ in self._fdes]
        self._decoded: dict[int, list[dict]] = {}
        self._call_targets = {site.return_pc: site.callee for site in call_sites}
        self._tail_calls: dict[str, list[CallSite]] = {}
        for site in call_sites:
            if site.tail:
                self._tail_calls.setdefault(site.caller, []).append(site)

    @staticmethod
    def _read_functions(elffile: ELFFile) -> list[FunctionSymbol]:
        table = elffile.get_section_by_name(".symtab")
        if table is None:
            return []
        functions: dict[int, FunctionSymbol] = {}
        for symbol in table.iter_symbols():
            if symbol["st_info"]["type"] != "STT_FUNC" or not symbol.name:
                continue
            start = symbol["st_value"] & ~1
            known = functions.get(start)
            # Of several names at one address gdb shows the last in name order (iprintf, printf).
            if known is None or symbol.name > known.name:
                functions[start] = FunctionSymbol(start, start + max(symbol["st_size"], 2), symbol.name)
        return sorted(functions.values(), key=lambda f: f.start)

    @staticmethod
    def _read_fdes(elffile: ELFFile) -> list[tuple[int, int, FDE]]:
        if not elffile.has_dwarf_info():
            return []
        dwarf = elffile.get_dwarf_info()
        entries = []
        if dwarf.has_CFI():
            entries += dwarf.CFI_entries()
        if dwarf.has_EH_CFI():
            entries += dwarf.EH_CFI_entries()
        fdes = [
            (entry.header["initial_location"], entry.header["initial_location"] + entry.header["address_range"], entry)
            for entry in entries
            if isinstance(entry, FDE)
        ]
        return sorted(fdes, key=lambda f: f[0])

    @staticmethod
    def _symbol_addresses(elffile: ELFFile) -> dict[str, int]:
        table = elffile.get_section_by_name(".symtab")
        if table is None:
            return {}
        return {
            symbol.name: symbol["st_value"] & ~1
            for symbol in table.iter_symbols()
            if symbol["st_info"]["type"] == "STT_FUNC" and symbol.name
        }

    def _read_debug_info(self, elffile: ELFFile) -> tuple[list[InlinedCode], list[CallSite], list[FunctionSymbol]]:
        if not elffile.has_dwarf_info():
            return [], [], []
        dwarf = elffile.get_dwarf_info()
        range_lists = dwarf.range_lists()
        inlined: list[InlinedCode] = []
        call_sites: list[CallSite] = []
        subprograms: list[FunctionSymbol] = []
        addresses = self._symbol_addresses(elffile)

        def ranges(die) -> list[tuple[int, int]]:
            attributes = die.attributes
            if "DW_AT_low_pc" in attributes and "DW_AT_high_pc" in attributes:
                low = attributes["DW_AT_low_pc"].value
                high = attributes["DW_AT_high_pc"]
                return [(low, high.value if high.form == "DW_FORM_addr" else low + high.value)]
            if "DW_AT_ranges" in attributes and range_lists is not None:
                base = die.cu.get_top_DIE().attributes.get("DW_AT_low_pc")
                base_address = base.value if base is not None else 0
                entries = range_lists.get_range_list_at_offset(attributes["DW_AT_ranges"].value, cu=die.cu)
                return [
                    (base_address + e.begin_offset, base_address + e.end_offset)
                    if not getattr(e, "is_absolute", False) else (e.begin_offset, e.end_offset)
                    for e in entries if hasattr(e, "begin_offset")
                ]  # fmt: skip
            return []

        def name_of(die) -> str | None:
            seen = 0
            while die is not None and seen < 4:
                if "DW_AT_name" in die.attributes:
                    return die.attributes["DW_AT_name"].value.decode()
                origin = die.attributes.get("DW_AT_abstract_origin") or die.attributes.get("DW_AT_specification")
                die = die.get_DIE_from_attribute(origin.name) if origin is not None else None
                seen += 1
            return None

        def entry_of(die) -> int | None:
            """Where a called function starts: its own code, or the symbol its declaration names
            (by linkage name first: a call to `__builtin_puts` is a call to `puts`)."""
            code = ranges(die)
            if code:
                return code[0][0]
            for attribute in ("DW_AT_linkage_name", "DW_AT_MIPS_linkage_name", "DW_AT_name"):
                if attribute in die.attributes:
                    name = die.attributes[attribute].value.decode()
                    if name in addresses:
                        return addresses[name]
            name = name_of(die)
            return addresses.get(name) if name else None

        def add_call_site(die, caller: int | None) -> None:
            attributes = die.attributes
            pc = attributes.get("DW_AT_call_return_pc") or attributes.get("DW_AT_low_pc")
            origin = attributes.get("DW_AT_call_origin") or attributes.get("DW_AT_abstract_origin")
            if pc is None or origin is None or caller is None:
                return
            callee = entry_of(die.get_DIE_from_attribute(origin.name))
            tail = "DW_AT_call_tail_call" in attributes or "DW_AT_GNU_tail_call" in attributes
            if callee is not None:
                call_sites.append(CallSite(pc.value, caller, callee, tail))

        def walk(die, depth: int, function: int | None) -> None:
            for child in die.iter_children():
                child_depth, child_function = depth, function
                if child.tag in ("DW_TAG_call_site", "DW_TAG_GNU_call_site"):
                    add_call_site(child, function)
                elif child.tag == "DW_TAG_subprogram":
                    name, code = name_of(child), ranges(child)
                    child_function = code[0][0] if code else None
                    if name:
                        subprograms.extend(FunctionSymbol(lo, hi, name) for lo, hi in code)
                elif child.tag == "DW_TAG_inlined_subroutine":
                    child_depth = depth + 1
                    name = name_of(child)
                    if name:
                        inlined.extend(InlinedCode(lo, hi, child_depth, name) for lo, hi in ranges(child))
                walk(child, child_depth, child_function)

        for unit in dwarf.iter_CUs():
            walk(unit.get_top_DIE(), 0, None)
        return inlined, call_sites, subprograms

    def tail_call_chain(self, return_pc: int, callee: int) -> list[CallSite]:
        """The functions between a call at `return_pc` and the function starting at `callee`
        that were left by tail calls,
        outermost first, each as its tail-call site. When DWARF allows several chains only the
        part they share at either end is returned, as gdb does."""
        target = self._call_targets.get(return_pc)
        if target is None or target == callee:
            return []
        chains: list[list[CallSite]] = []

        def search(function: int, path: list[CallSite]) -> None:
            if len(path) > 8 or len(chains) > 16:
                return
            for site in self._tail_calls.get(function, []):
                if site in path:
                    continue
                if site.callee == callee:
                    chains.append([*path, site])
                elif site.callee not in (s.caller for s in path):
                    search(site.callee, [*path, site])

        search(target, [])
        if not chains:
            return []
        if all(chain == chains[0] for chain in chains):
            return chains[0]
        prefix = []
        for sites in zip(*chains):
            if any(site != sites[0] for site in sites):
                break
            prefix.append(sites[0])
        suffix = []
        for sites in zip(*(reversed(chain) for chain in chains)):
            if any(site != sites[0] for site in sites) or sites[0] in prefix:
                break
            suffix.insert(0, sites[0])
        return prefix + suffix

    def functions_at(self, pc: int, hide_entered: bool = False) -> list[str]:
        """The functions at `pc` as gdb lists them: inlined ones innermost first, then the
        function they are inlined into. With `hide_entered`, an inlined call whose first
        instruction is `pc` does not count yet (gdb's view of a stop that no breakpoint made)."""
        inlined = sorted(
            (c for c in self._inlined if c.start <= pc < c.end and not (hide_entered and c.start == pc)),
            key=lambda c: -c.depth,
        )
        return [c.name for c in inlined] + [self.function_at(pc)]

    @staticmethod
    def _containing(functions: list[FunctionSymbol], starts: list[int], pc: int) -> FunctionSymbol | None:
        index = bisect.bisect_right(starts, pc) - 1
        if index >= 0 and pc < functions[index].end:
            return functions[index]
        return None

    def _function(self, pc: int) -> FunctionSymbol | None:
        return self._containing(self._subprograms, self._subprogram_starts, pc) or self._containing(
            self._symbols, self._symbol_starts, pc
        )

    def _function_start(self, pc: int) -> int | None:
        function = self._containing(self._symbols, self._symbol_starts, pc) or self._function(pc)
        return function.start if function is not None else None

    def function_at(self, pc: int) -> str:
        """The name of the function holding `pc`, or '??' as gdb prints it."""
        function = self._function(pc)
        return function.name if function is not None else UNKNOWN_FUNCTION

    def _cfi_row(self, pc: int) -> dict | None:
        index = bisect.bisect_right(self._fde_starts, pc) - 1
        if index < 0 or pc >= self._fdes[index][1]:
            return None
        start, _, fde = self._fdes[index]
        if start not in self._decoded:
            self._decoded[start] = fde.get_decoded().table
        rows = [row for row in self._decoded[start] if row["pc"] <= pc]
        return rows[-1] if rows else None

    def unwind(
        self, read_register: ReadRegister, read_memory: ReadMemory, depth: int, at_breakpoint: bool = True
    ) -> list[Frame]:
        """Up to `depth` frames of the stopped core, innermost first. `at_breakpoint`: the core
        stopped on a breakpoint at its pc (else, as gdb does, an inlined call that starts at the
        pc is not shown as entered)."""
        registers: Registers = _RegistersOnDemand(read_register)
        frames: list[Frame] = []
        pc = registers["pc"]
        lookup_pc = pc  # the address inside the function: pc, or a return address - 1
        while len(frames) < depth:
            names = self.functions_at(lookup_pc, hide_entered=not frames and not at_breakpoint)
            frames += [Frame(name, pc) for name in names]
            if names[-1] in (OUTERMOST_FUNCTION, UNKNOWN_FUNCTION) or len(frames) >= depth:
                break
            try:
                caller = self._caller_registers(registers, lookup_pc, read_memory)
                if caller is not None and is_exc_return(caller["pc"]):
                    interrupted = self._interrupted_registers(caller, caller["pc"], read_memory)
            except UnreadableMemory:
                break
            if caller is None:
                break
            return_address = caller["pc"]
            if is_exc_return(return_address):
                frames.append(Frame(EXCEPTION_FRAME, return_address))
                caller = interrupted
                lookup_pc = caller["pc"]
            else:
                if return_address | 1 == RESET_LR:
                    break  # lr as the core leaves reset: the reset handler has no caller
                if caller["sp"] <= registers["sp"] and self._function_start((return_address & ~1) - 1) == self._function_start(lookup_pc):
                    # No progress: the caller would be this frame again (same function, same stack),
                    # as gdb stops: a corrupt frame, or lr left pointing into a function without CFI
                    # after its own call (a naked PendSV handler after `bl vTaskSwitchContext`).
                    break
                callee = self._function(lookup_pc)
                chain = self.tail_call_chain(return_address & ~1, callee.start) if callee else []
                frames += [Frame(self.function_at(site.caller), site.return_pc) for site in reversed(chain)]
                lookup_pc = (return_address & ~1) - 1
            registers = caller
            pc = registers["pc"] & ~1
        return frames[:depth]

    def _caller_registers(self, registers: Registers, pc: int, read_memory: ReadMemory) -> Registers | None:
        """The registers of the caller (or of the EXC_RETURN) after the frame at `pc` returns."""
        row = self._cfi_row(pc)
        caller = ChainMap({}, registers)  # changed registers over the callee's, read on demand
        if row is None:
            return self._caller_by_prologue(registers, pc, read_memory)
        cfa_rule: CFARule = row["cfa"]
        if cfa_rule.reg is None:
            return None  # CFA by DWARF expression: not used by GCC for Arm
        cfa = registers[DWARF_REGISTERS[cfa_rule.reg]] + cfa_rule.offset
        return_address = registers["lr"]
        for number, rule in row.items():
            if not isinstance(number, int) or number not in DWARF_REGISTERS:
                continue
            value = self._apply_rule(rule, cfa, registers, read_memory)
            if value is None:
                continue
            if number == 14:
                return_address = value
            else:
                caller[DWARF_REGISTERS[number]] = value
        caller["lr"] = return_address
        caller["pc"] = return_address
        caller["sp"] = cfa
        return caller

    def _caller_by_prologue(self, registers: Registers, pc: int, read_memory: ReadMemory) -> Registers:
        """For code without CFI (library code, assembly): what its prologue pushed before `pc`;
        with no prologue executed the return address is still in lr."""
        caller = ChainMap({}, registers)
        start = self._function_start(pc)
        size, saved = 0, {}
        if start is not None and pc > start:
            code = read_memory(start, min(PROLOGUE_SCAN_LIMIT, pc + 1 - start + 3) & ~1)
            size, saved = prologue_effect(code, start, pc + 1)
        cfa = registers["sp"] + size
        for number, offset in saved.items():
            if number in DWARF_REGISTERS:
                caller[DWARF_REGISTERS[number]] = struct.unpack("<I", read_memory(cfa + offset, 4))[0]
        caller["pc"] = caller["lr"]
        caller["sp"] = cfa
        return caller

    @staticmethod
    def _apply_rule(rule: RegisterRule, cfa: int, registers: Mapping[str, int], read_memory: ReadMemory) -> int | None:
        if rule.type == RegisterRule.OFFSET:
            return struct.unpack("<I", read_memory(cfa + rule.arg, 4))[0]
        if rule.type == RegisterRule.VAL_OFFSET:
            return cfa + rule.arg
        if rule.type == RegisterRule.REGISTER and rule.arg in DWARF_REGISTERS:
            return registers[DWARF_REGISTERS[rule.arg]]
        return None  # SAME_VALUE, UNDEFINED, expressions: the register keeps its value

    @staticmethod
    def _interrupted_registers(
        handler_caller: Registers, exc_return: int, read_memory: ReadMemory
    ) -> Registers:
        """The registers of the code an exception interrupted, from the frame the core stacked.

        The frame is on the process stack if EXC_RETURN says so, else at the handler's CFA on
        the main stack; it is 8 words, or 26 with the floating-point context."""
        frame_address = handler_caller["psp"] if exc_return & EXC_RETURN_PSP else handler_caller["sp"]
        words = BASIC_FRAME_WORDS if exc_return & EXC_RETURN_BASIC_FRAME else FP_FRAME_WORDS
        stacked = _StackedFrame(read_memory, frame_address)
        interrupted = ChainMap(stacked, handler_caller)
        interrupted["pc"] = stacked["pc"] & ~1
        sp = frame_address + 4 * words + (4 if stacked["xpsr"] & XPSR_STACK_ALIGN else 0)
        interrupted["sp"] = sp
        interrupted["psp" if exc_return & EXC_RETURN_PSP else "msp"] = sp
        return interrupted
