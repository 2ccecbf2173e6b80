"""A Cortex-M debug unit (halting debug, FPB, DWT, ITM, TPIU, ROM table) over QEMU's gdbstub.

QEMU runs the core but has no halting-debug registers: DHCSR, DCRSR/DCRDR, DEMCR, DFSR, the
FPB, DWT, ITM and TPIU read as zero there. `DebugUnit` answers those addresses itself and turns
them into GDB remote requests: a DHCSR write halts, steps or resumes, a DCRSR write reads or
writes a core register, the FPB comparators become `Z1` points and the DWT comparators `Z2/Z3/Z4`
watchpoints. Every other address is QEMU's memory, read with `m` and written with `M`.

Semantics follow the hardware, not QEMU, where the two differ:
- a DWT watchpoint halts *after* the access (QEMU stops before it: the unit steps past it);
- resuming at a pc with an FPB breakpoint on it stops again at once, as on silicon;
- a BKPT instruction the debugger writes (a software breakpoint) halts the core, as halting
  debug does: QEMU would take it as a fault, so the unit sets a QEMU breakpoint on it instead and
  a step there halts without executing it;
- a step of WFI or WFE retires it at once (the architecture allows a NOP): QEMU would sleep with
  the step's interrupts masked and never finish the step;
- a step retires an instruction (QEMU now and then reports a step that ran nothing, 1 to 4 in
  100 with a timer interrupt due: a step that left the pc in place is sent again, a few times,
  since a branch to itself leaves it there too);
- DFSR records why the core halted, DHCSR.S_RESET_ST and FUNCTIONn.MATCHED clear on read;
- PCSR samples the pc of the running core (QEMU is stopped for the sample, for about 0.5 ms).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from irqmon.cortexm.registers import (
    AIRCR,
    AIRCR_SYSRESETREQ,
    AIRCR_VECTKEY,
    AIRCR_VECTRESET,
    C_DEBUGEN,
    C_HALT,
    C_MASKINTS,
    C_STEP,
    COMPONENT_SIZE,
    DBGKEY,
    DCRDR,
    DCRSR,
    DCRSR_REGWNR,
    DEMCR,
    DEMCR_TRCENA,
    DEMCR_VC_CORERESET,
    DFSR,
    DFSR_BKPT,
    DFSR_DWTTRAP,
    DFSR_HALTED,
    DFSR_VCATCH,
    DHCSR,
    DWT_BASE,
    DWT_COMP0,
    DWT_COMPARATOR_STRIDE,
    DWT_CTRL,
    DWT_CTRL_NOCYCCNT,
    DWT_FUNCTION_MATCHED,
    DWT_FUNCTION_OFFSET,
    DWT_MASK_OFFSET,
    DWT_PCSR,
    FP_COMP0,
    FP_CTRL,
    FP_CTRL_ENABLE,
    FP_CTRL_KEY,
    FPB_BASE,
    ITM_BASE,
    PCSR_HALTED,
    ROM_TABLE_BASE,
    S_HALT,
    S_REGRDY,
    S_RESET_ST,
    S_RETIRE_ST,
    SCS_BASE,
    SCS_ID_BLOCK,
    TPIU_BASE,
)
from irqmon.cortexm.target_description import stub_registers
from irqmon.cortexm.thumb import Instruction, waits_for_event
from irqmon.rsp import PointKind, RspClient, RspDisconnected, RspError, StopReply

STEP_ATTEMPTS = 3
DWT_FUNCTION_TO_POINT = {5: PointKind.READ, 6: PointKind.WRITE, 7: PointKind.ACCESS}
TPIU_DEVID_SWO_NRZ = 0xCA0  # NRZ (UART) and Manchester SWO, as on a Cortex-M4 TPIU

# JEP106 Arm, and the component ID values pyOCD's discovery recognises (ROM table first).
ARM_JEP106_CONTINUATION, ARM_JEP106_IDENTITY = 4, 0x3B
ROM_CLASS, CORESIGHT_CLASS, GENERIC_CLASS = 0x1, 0x9, 0xE


@dataclass(frozen=True)
class Component:
    name: str
    base: int
    part: int
    component_class: int
    devtype: int = 0


COMPONENTS = (
    Component("SCS", SCS_BASE, 0x00C, GENERIC_CLASS),
    Component("DWT", DWT_BASE, 0x002, GENERIC_CLASS),
    Component("FPB", FPB_BASE, 0x003, GENERIC_CLASS),
    Component("ITM", ITM_BASE, 0x001, GENERIC_CLASS),
    Component("TPIU", TPIU_BASE, 0x9A1, CORESIGHT_CLASS, devtype=0x11),
)
ROM_TABLE = Component("ROM", ROM_TABLE_BASE, 0x4C4, ROM_CLASS)

# DCRSR register selectors (ARMv7-M ARM, C1.6.3) and the gdb names QEMU gives them.
SELECTOR_NAMES = {n: f"r{n}" for n in range(13)} | {
    13: "sp", 14: "lr", 15: "pc", 16: "xpsr", 17: "msp", 18: "psp", 0x21: "fpscr",
}  # fmt: skip
SELECTOR_SPECIAL = 20  # CONTROL[31:24] FAULTMASK[23:16] BASEPRI[15:8] PRIMASK[7:0]
SPECIAL_FIELDS = (("primask", 0), ("basepri", 8), ("faultmask", 16), ("control", 24))
SELECTOR_S0, SELECTOR_S31 = 0x40, 0x5F
QEMU_SSTEP_MASKED, QEMU_SSTEP_UNMASKED = 0x7, 0x1  # SSTEP_ENABLE | NOIRQ | NOTIMER
BKPT_MASK, BKPT_OPCODE = 0xFF00, 0xBE00  # BKPT #imm8 (Thumb)


class DebugUnitLost(Exception):
    """QEMU's gdbstub went away or stopped answering."""


def component_id_registers(component: Component) -> dict[int, int]:
    """PIDR0-7 and CIDR0-3 (offsets 0xFD0-0xFFC) for an Arm component."""
    part = component.part
    return {
        0xFD0: ARM_JEP106_CONTINUATION,
        0xFE0: part & 0xFF,
        0xFE4: (part >> 8) | (ARM_JEP106_IDENTITY & 0xF) << 4,
        0xFE8: (ARM_JEP106_IDENTITY >> 4) | 0x08,  # JEDEC-assigned designer
        0xFF0: 0x0D,
        0xFF4: component.component_class << 4,
        0xFF8: 0x05,
        0xFFC: 0xB1,
        0xFCC: component.devtype if component.component_class == CORESIGHT_CLASS else 1,
    }


@dataclass
class Comparators:
    """The comparator state software wrote, as the real unit would hold it."""

    fp_enabled: bool = False
    fp_comp: list[int] = field(default_factory=list)
    dwt_comp: list[int] = field(default_factory=list)
    dwt_mask: list[int] = field(default_factory=list)
    dwt_function: list[int] = field(default_factory=list)
    dwt_ctrl: int = 0


class DebugUnit:
    """Cortex-M halting debug on top of one RSP connection to QEMU."""

    def __init__(
        self,
        client: RspClient,
        breakpoints: int = 6,
        watchpoints: int = 4,
        fpb_revision: int = 1,
    ) -> None:
        self.client = client
        self.breakpoint_count = breakpoints
        self.watchpoint_count = watchpoints
        self.fpb_revision = fpb_revision
        self.numbers = {name: register.number for name, register in stub_registers(client.read_feature).items()}
        self.comparators = Comparators(
            fp_comp=[0] * breakpoints,
            dwt_comp=[0] * watchpoints,
            dwt_mask=[0] * watchpoints,
            dwt_function=[0] * watchpoints,
        )
        self.running = False
        self.control = C_DEBUGEN | C_HALT
        self.dfsr = DFSR_HALTED  # QEMU waits halted when a debugger attaches
        self.demcr = 0
        self.dcrdr = 0
        self.register_ready = True
        self.reset_seen = False
        self.retired = False
        self.sstep = QEMU_SSTEP_MASKED
        self.plain_registers: dict[int, int] = {}  # ITM, TPIU and any other store-only register
        self._registers: dict[str, int] = {}
        self._inserted_breakpoints: set[int] = set()
        self._inserted_watchpoints: set[tuple[PointKind, int, int]] = set()
        self._bkpt_sites: dict[int, int] = {}  # address -> BKPT instruction the debugger wrote there
        self._waits_for_event: dict[int, bool] = {}  # pc -> the instruction there is wfi/wfe
        self._id_registers = {
            component.base: component_id_registers(component) for component in (*COMPONENTS, ROM_TABLE)
        }
        self._rom_entries = [((component.base - ROM_TABLE_BASE) & 0xFFFFF000) | 0x3 for component in COMPONENTS]
        stop = client.halt_reason()
        if stop.exited:
            raise DebugUnitLost("QEMU's machine has already exited")

    # Address decoding ---------------------------------------------------------------------

    @staticmethod
    def emulates(address: int) -> bool:
        """Whether the word at `address` is answered here rather than by QEMU."""
        return (
            ITM_BASE <= address < FPB_BASE + COMPONENT_SIZE
            or address == DFSR
            or DHCSR <= address < DEMCR + 4
            or SCS_ID_BLOCK <= address < SCS_ID_BLOCK + 0x30
            or TPIU_BASE <= address < TPIU_BASE + COMPONENT_SIZE
            or ROM_TABLE_BASE <= address < ROM_TABLE_BASE + COMPONENT_SIZE
        )

    def read_word(self, address: int) -> int:
        if not self.emulates(address):
            return struct.unpack("<I", self.read_memory(address, 4))[0]
        if address == DHCSR:
            return self._read_dhcsr()
        if address == DFSR:
            return self.dfsr
        if address == DCRSR:
            return 0
        if address == DCRDR:
            return self.dcrdr
        if address == DEMCR:
            return self.demcr
        base, offset = address & ~0xFFF, address & 0xFFF
        if address == TPIU_BASE + 0xFC8:
            return TPIU_DEVID_SWO_NRZ
        if offset >= 0xFC8:
            return self._id_registers[base].get(offset, 0)
        if base == ROM_TABLE_BASE:
            index = offset // 4
            return self._rom_entries[index] if index < len(self._rom_entries) else 0
        if base == FPB_BASE:
            return self._read_fpb(address)
        if base == DWT_BASE:
            return self._read_dwt(address)
        return self.plain_registers.get(address, 0)

    def write_word(self, address: int, value: int) -> None:
        if address == AIRCR and (value & 0xFFFF0000) == AIRCR_VECTKEY and value & (AIRCR_SYSRESETREQ | AIRCR_VECTRESET):
            self.reset()
            return
        if not self.emulates(address):
            self.write_memory(address, struct.pack("<I", value))
            return
        if address == DHCSR:
            self._write_dhcsr(value)
        elif address == DFSR:
            self.dfsr &= ~value  # write one to clear
        elif address == DCRSR:
            self._transfer_register(value)
        elif address == DCRDR:
            self.dcrdr = value
        elif address == DEMCR:
            self.demcr = value
            self._sync_watchpoints()
        elif address & ~0xFFF == FPB_BASE:
            self._write_fpb(address, value)
        elif address & ~0xFFF == DWT_BASE:
            self._write_dwt(address, value)
        elif address & 0xFFF < 0xFC8:
            self.plain_registers[address] = value

    def read_memory(self, address: int, size: int) -> bytes:
        """Bytes from the target: emulated words from here, everything else from QEMU."""
        first, last = address & ~3, (address + size + 3) & ~3
        if not any(self.emulates(a) for a in range(first, last, 4)):
            with self._stopped():
                return self._client_call(self.client.read_memory, address, size)
        data = b"".join(struct.pack("<I", self.read_word(a)) for a in range(first, last, 4))
        return data[address - first : address - first + size]

    def write_memory(self, address: int, data: bytes) -> None:
        first, last = address & ~3, (address + len(data) + 3) & ~3
        touches_emulated = any(self.emulates(a) for a in range(first, last, 4)) or first <= AIRCR < last
        if not touches_emulated:
            with self._stopped():
                self._client_call(self.client.write_memory, address, data)
                self._registers.clear()
                self._waits_for_event.clear()
                self._note_breakpoint_instructions(address, data)
            return
        for word_address in range(first, last, 4):
            lo, hi = max(address, word_address), min(address + len(data), word_address + 4)
            if hi - lo == 4:
                word = int.from_bytes(data[lo - address : hi - address], "little")
            else:
                old = bytearray(struct.pack("<I", self.read_word(word_address)))
                old[lo - word_address : hi - word_address] = data[lo - address : hi - address]
                word = int.from_bytes(old, "little")
            self.write_word(word_address, word)

    # Running and halting ------------------------------------------------------------------

    def _client_call(self, function: Callable, *args: object) -> object:
        try:
            return function(*args)
        except RspDisconnected as exc:
            raise DebugUnitLost(str(exc)) from None

    @contextmanager
    def _stopped(self) -> Iterator[None]:
        """Stop a running core for a GDB request (QEMU is all-stop), then let it run again.

        If the core hit a debug event of its own meanwhile, it stays halted with that reason."""
        if not self.running:
            yield
            return
        stop = self._client_call(self.client.stop)
        assert isinstance(stop, StopReply)
        if not stop.is_interrupt:
            self._halted(stop)
            yield
            return
        try:
            yield
        finally:
            self._registers.clear()
            self._client_call(self.client.cont)

    def poll(self) -> None:
        """Notice a stop reply QEMU sent while the core was running."""
        if self.running:
            stop = self._client_call(self.client.wait_stop, 0.0)
            if stop is not None:
                assert isinstance(stop, StopReply)
                self._halted(stop)

    def _halted(self, stop: StopReply) -> None:
        if stop.exited:
            self.running = False
            raise DebugUnitLost(f"QEMU's machine exited ({stop.raw})")
        self.running = False
        self.control |= C_HALT
        self._registers.clear()
        self.register_ready = True
        if stop.watch is not None:
            self._complete_watched_access(stop)
        elif self._register("pc") in self._inserted_breakpoints or self._register("pc") in self._bkpt_sites:
            self.dfsr |= DFSR_BKPT
        else:
            self.dfsr |= DFSR_HALTED

    def _complete_watched_access(self, stop: StopReply) -> None:
        """QEMU stopped before the access: execute it, then halt as the DWT does."""
        self._step(past_watchpoints=True)
        assert stop.watch_address is not None
        for index, (kind, address, length) in enumerate(self._watch_ranges()):
            if kind is not None and address <= stop.watch_address < address + length:
                self.comparators.dwt_function[index] |= DWT_FUNCTION_MATCHED
        self.dfsr |= DFSR_DWTTRAP

    def _step(self, past_watchpoints: bool = False) -> StopReply:
        points = sorted(self._inserted_watchpoints) if past_watchpoints else []
        if points:
            self._client_call(self.client.pipeline, [f"z{k.value},{a:x},{n:x}" for k, a, n in points])
        stop = self._client_call(self.client.step)
        if points:
            self._client_call(self.client.pipeline, [f"Z{k.value},{a:x},{n:x}" for k, a, n in points])
        self._registers.clear()
        assert isinstance(stop, StopReply)
        return stop

    def _read_dhcsr(self) -> int:
        self.poll()
        value = self.control & 0xFFFF
        if not self.running:
            value |= S_HALT | (S_REGRDY if self.register_ready else 0)
        if self.running or self.retired:
            value |= S_RETIRE_ST
            self.retired = False
        if self.reset_seen:
            value |= S_RESET_ST
            self.reset_seen = False
        return value

    def _write_dhcsr(self, value: int) -> None:
        if value & 0xFFFF0000 != DBGKEY:
            return
        self.poll()
        self.control = value & 0xFFFF
        if not value & C_DEBUGEN:
            self.control &= ~(C_HALT | C_STEP)
        if self.running and value & C_HALT:
            self._halted(self._client_call(self.client.stop))  # type: ignore[arg-type]
        elif not self.running and value & C_STEP and not value & C_HALT:
            self._single_step(masked=bool(value & C_MASKINTS))
        elif not self.running and not value & (C_HALT | C_STEP):
            self.resume()

    def _single_step(self, masked: bool) -> None:
        wanted = QEMU_SSTEP_MASKED if masked else QEMU_SSTEP_UNMASKED
        if wanted != self.sstep:
            self._client_call(self.client.request, f"Qqemu.sstep={wanted:x}")
            self.sstep = wanted
        pc = self._register("pc")
        if pc in self._bkpt_sites:
            self.control |= C_HALT  # a BKPT halts the core before it executes
            self.dfsr |= DFSR_BKPT
            return
        if self._at_wait_for_event(pc):
            self._client_call(self.client.write_register, self.numbers["pc"], (pc + 2).to_bytes(4, "little"))
            self._registers.clear()
            self.retired = True
            self.control |= C_HALT
            self.dfsr |= DFSR_HALTED
            return
        for _ in range(STEP_ATTEMPTS):
            stop = self._step()
            if stop.exited or stop.watch is not None or self._register("pc") != pc:
                break
        self.retired = True
        self.control |= C_HALT
        if stop.exited:
            raise DebugUnitLost(f"QEMU's machine exited ({stop.raw})")
        if stop.watch is not None:
            self._complete_watched_access(stop)
        self.dfsr |= DFSR_HALTED

    def _at_wait_for_event(self, pc: int) -> bool:
        if pc not in self._waits_for_event:
            halfword = int.from_bytes(self.read_memory(pc, 2), "little")  # wfi and wfe are 16-bit
            self._waits_for_event[pc] = waits_for_event(Instruction(pc, 2, halfword, 0))
        return self._waits_for_event[pc]

    def resume(self) -> None:
        self._registers.clear()
        self.control &= ~C_HALT
        self.running = True
        self._client_call(self.client.cont)

    def reset(self) -> None:
        """A system reset: QEMU resets the machine; the core runs from the reset vector
        afterwards, or stays halted there with DEMCR.VC_CORERESET."""
        if self.running:
            self._client_call(self.client.stop)  # a reset discards why it stopped
            self.running = False
        self._client_call(self.client.monitor, "system_reset")
        self._registers.clear()
        self._waits_for_event.clear()
        self._rewrite_breakpoint_instructions()
        self.reset_seen = True
        if self.demcr & DEMCR_VC_CORERESET:
            self.dfsr |= DFSR_VCATCH
            self.control |= C_HALT
        else:
            self.resume()

    # Core registers -----------------------------------------------------------------------

    def _register(self, name: str) -> int:
        if not self._registers:
            self._fetch_registers()
        if name not in self._registers:
            number = self.numbers[name]
            raw = self._client_call(self.client.read_register, number)
            assert isinstance(raw, bytes)
            self._registers[name] = int.from_bytes(raw, "little")
        return self._registers[name]

    def _fetch_registers(self) -> None:
        """The core and special registers in one round trip."""
        names = [n for n in (*SELECTOR_NAMES.values(), *dict(SPECIAL_FIELDS)) if n in self.numbers]
        values = self._client_call(self.client.read_register_list, [self.numbers[n] for n in names])
        assert isinstance(values, list)
        self._registers.update((name, int.from_bytes(raw, "little")) for name, raw in zip(names, values))

    def _transfer_register(self, value: int) -> None:
        selector, write = value & 0x7F, bool(value & DCRSR_REGWNR)
        if self.running:
            self.register_ready = False
            return
        try:
            if write:
                self.register_ready = self._write_register(selector, self.dcrdr)
            else:
                self.dcrdr = self._read_register(selector)
                self.register_ready = True
        except RspDisconnected as exc:
            raise DebugUnitLost(str(exc)) from None
        except (KeyError, RspError):
            self.register_ready = False

    def _read_register(self, selector: int) -> int:
        if selector == SELECTOR_SPECIAL:
            return sum((self._register(name) & 0xFF) << shift for name, shift in SPECIAL_FIELDS)
        if SELECTOR_S0 <= selector <= SELECTOR_S31:
            index = selector - SELECTOR_S0
            return (self._register(f"d{index // 2}") >> (32 * (index % 2))) & 0xFFFFFFFF
        return self._register(SELECTOR_NAMES[selector])

    def _write_register(self, selector: int, value: int) -> bool:
        """Write through `P` and read back: QEMU acknowledges writes to msp/psp and the mask
        registers without doing them, and a write that did not happen must fail (S_REGRDY)."""
        if selector == SELECTOR_SPECIAL:
            writes = {name: (value >> shift) & 0xFF for name, shift in SPECIAL_FIELDS}
        elif SELECTOR_S0 <= selector <= SELECTOR_S31:
            index = selector - SELECTOR_S0
            name = f"d{index // 2}"
            shift = 32 * (index % 2)
            writes = {name: (self._register(name) & ~(0xFFFFFFFF << shift)) | (value << shift)}
        else:
            writes = {SELECTOR_NAMES[selector]: value}
        for name, new_value in writes.items():
            width = 8 if name.startswith("d") else 4
            self.client.write_register(self.numbers[name], new_value.to_bytes(width, "little"))
        self._registers.clear()
        return all(self._register(name) == new_value for name, new_value in writes.items())

    # FPB ----------------------------------------------------------------------------------

    def _read_fpb(self, address: int) -> int:
        if address == FP_CTRL:
            count = self.breakpoint_count
            literal = 2
            return (
                (self.fpb_revision - 1) << 28
                | (count & 0x70) << 8
                | literal << 8
                | (count & 0xF) << 4
                | int(self.comparators.fp_enabled)
            )
        index = (address - FP_COMP0) // 4
        if 0 <= index < self.breakpoint_count:
            return self.comparators.fp_comp[index]
        return 0

    def _write_fpb(self, address: int, value: int) -> None:
        if address == FP_CTRL:
            if value & FP_CTRL_KEY:
                self.comparators.fp_enabled = bool(value & FP_CTRL_ENABLE)
        elif address >= FP_COMP0 and (address - FP_COMP0) // 4 < self.breakpoint_count:
            self.comparators.fp_comp[(address - FP_COMP0) // 4] = value
        else:
            return
        self._sync_breakpoints()

    def _breakpoint_addresses(self) -> set[int]:
        if not self.comparators.fp_enabled:
            return set()
        addresses: set[int] = set()
        for comp in self.comparators.fp_comp:
            if not comp & 1:
                continue
            if self.fpb_revision == 2:
                addresses.add(comp & 0xFFFFFFFE)
                continue
            base, replace = comp & 0x1FFFFFFC, comp >> 30
            if replace & 1:
                addresses.add(base)
            if replace & 2:
                addresses.add(base + 2)
        return addresses

    def _sync_breakpoints(self) -> None:
        wanted = self._breakpoint_addresses()
        removed, added = self._inserted_breakpoints - wanted, wanted - self._inserted_breakpoints
        if not removed and not added:
            return
        packets = [f"z1,{a:x},2" for a in sorted(removed)] + [f"Z1,{a:x},2" for a in sorted(added)]
        with self._stopped():
            self._client_call(self.client.pipeline, packets)
        self._inserted_breakpoints = wanted

    # Software breakpoints (BKPT instructions) ----------------------------------------------

    def _note_breakpoint_instructions(self, address: int, data: bytes) -> None:
        """Follow the BKPT instructions a write puts in (or takes out of) memory: each is a QEMU
        breakpoint, so the core halts there as halting debug makes it."""
        sites = {site: bkpt for site, bkpt in self._bkpt_sites.items() if not address - 1 <= site < address + len(data)}
        if b"\xbe" in data:
            for site in range((address + 1) & ~1, address + len(data) - 1, 2):
                halfword = int.from_bytes(data[site - address : site - address + 2], "little")
                if halfword & BKPT_MASK == BKPT_OPCODE:
                    sites[site] = halfword
        removed, added = self._bkpt_sites.keys() - sites.keys(), sites.keys() - self._bkpt_sites.keys()
        packets = [f"z0,{a:x},2" for a in sorted(removed)] + [f"Z0,{a:x},2" for a in sorted(added)]
        if packets:
            self._client_call(self.client.pipeline, packets)
        self._bkpt_sites = sites

    def _rewrite_breakpoint_instructions(self) -> None:
        """A system reset reloads QEMU's memory images; a chip's memory keeps what the debugger
        wrote, its BKPTs included."""
        packets = [f"M{site:x},2:{bkpt.to_bytes(2, 'little').hex()}" for site, bkpt in self._bkpt_sites.items()]
        if packets:
            self._client_call(self.client.pipeline, packets)

    # DWT ----------------------------------------------------------------------------------

    def _read_dwt(self, address: int) -> int:
        if address == DWT_CTRL:
            return self.watchpoint_count << 28 | DWT_CTRL_NOCYCCNT | (self.comparators.dwt_ctrl & 0x1FFFFF)
        if address == DWT_PCSR:
            return self._sample_pc()
        index, register = divmod(address - DWT_COMP0, DWT_COMPARATOR_STRIDE)
        if address < DWT_COMP0 or index >= self.watchpoint_count:
            return 0  # CYCCNT and the profiling counters: not implemented (NOCYCCNT)
        if register == 0:
            return self.comparators.dwt_comp[index]
        if register == DWT_MASK_OFFSET:
            return self.comparators.dwt_mask[index]
        if register == DWT_FUNCTION_OFFSET:
            value = self.comparators.dwt_function[index]
            self.comparators.dwt_function[index] &= ~DWT_FUNCTION_MATCHED
            return value
        return 0

    def _write_dwt(self, address: int, value: int) -> None:
        if address == DWT_CTRL:
            self.comparators.dwt_ctrl = value & 0x1FFFFF
            return
        index, register = divmod(address - DWT_COMP0, DWT_COMPARATOR_STRIDE)
        if address < DWT_COMP0 or index >= self.watchpoint_count:
            return
        if register == 0:
            self.comparators.dwt_comp[index] = value
        elif register == DWT_MASK_OFFSET:
            self.comparators.dwt_mask[index] = value & 0x1F
        elif register == DWT_FUNCTION_OFFSET:
            matched = self.comparators.dwt_function[index] & DWT_FUNCTION_MATCHED
            self.comparators.dwt_function[index] = (value & ~DWT_FUNCTION_MATCHED) | matched
        self._sync_watchpoints()

    def _watch_ranges(self) -> list[tuple[PointKind | None, int, int]]:
        ranges: list[tuple[PointKind | None, int, int]] = []
        for comp, mask, function in zip(
            self.comparators.dwt_comp, self.comparators.dwt_mask, self.comparators.dwt_function
        ):
            kind = DWT_FUNCTION_TO_POINT.get(function & 0xF) if self.demcr & DEMCR_TRCENA else None
            length = 1 << mask
            ranges.append((kind, comp & ~(length - 1), length))
        return ranges

    def _sync_watchpoints(self) -> None:
        wanted = {(k, a, n) for k, a, n in self._watch_ranges() if k is not None}
        removed, added = self._inserted_watchpoints - wanted, wanted - self._inserted_watchpoints
        if not removed and not added:
            return
        packets = [f"z{k.value},{a:x},{n:x}" for k, a, n in sorted(removed)]
        packets += [f"Z{k.value},{a:x},{n:x}" for k, a, n in sorted(added)]
        with self._stopped():
            self._client_call(self.client.pipeline, packets)
        self._inserted_watchpoints = wanted  # type: ignore[assignment]

    def _sample_pc(self) -> int:
        self.poll()
        if not self.running:
            return PCSR_HALTED
        with self._stopped():
            if not self.running:
                return PCSR_HALTED  # the core hit a debug event of its own meanwhile
            return self._register("pc")
