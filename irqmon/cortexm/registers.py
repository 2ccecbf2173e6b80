"""ARMv7-M system and debug registers irqmon reads or emulates: addresses and bits (ARMv7-M
Architecture Reference Manual, B3.2 System Control Space, C1 Debug), and starting the cycle
counter."""

from __future__ import annotations

from collections.abc import Callable

# System control block and NVIC (B3.2, B3.4).
AIRCR = 0xE000ED0C
AIRCR_VECTKEY, AIRCR_VECTRESET, AIRCR_SYSRESETREQ = 0x05FA0000, 1 << 0, 1 << 2
SCB_SHPR = 0xE000ED18  # SHPR1..3: one priority byte per system exception from 4 (MemManage)
NVIC_IPR = 0xE000E400  # one priority byte per IRQ
# SysTick (B3.3): control and status (ENABLE, TICKINT, CLKSOURCE: the core clock when set), and
# the reload value: the timer counts LOAD + 1 clocks between two ticks.
SYST_CSR = 0xE000E010
SYST_CSR_ENABLE, SYST_CSR_CLKSOURCE = 1 << 0, 1 << 2
SYST_RVR = 0xE000E014
SCS_BASE = 0xE000E000
SCS_ID_BLOCK = 0xE000EFD0  # PIDR/CIDR of the SCS

# Halting debug (C1.6).
DFSR = 0xE000ED30
DFSR_HALTED, DFSR_BKPT, DFSR_DWTTRAP, DFSR_VCATCH, DFSR_EXTERNAL = 1 << 0, 1 << 1, 1 << 2, 1 << 3, 1 << 4
DHCSR = 0xE000EDF0
DBGKEY = 0xA05F0000
C_DEBUGEN, C_HALT, C_STEP, C_MASKINTS = 1 << 0, 1 << 1, 1 << 2, 1 << 3
S_REGRDY, S_HALT, S_RETIRE_ST, S_RESET_ST = 1 << 16, 1 << 17, 1 << 24, 1 << 25
DCRSR = 0xE000EDF4
DCRSR_REGWNR = 1 << 16
DCRDR = 0xE000EDF8
DEMCR = 0xE000EDFC
DEMCR_VC_CORERESET, DEMCR_TRCENA = 1 << 0, 1 << 24

# Debug components at their fixed ARMv7-M addresses (C1.2), each a 4 KiB block.
ITM_BASE, DWT_BASE, FPB_BASE = 0xE0000000, 0xE0001000, 0xE0002000
TPIU_BASE, ROM_TABLE_BASE = 0xE0040000, 0xE00FF000
COMPONENT_SIZE = 0x1000
PPB_END = 0xE0100000  # the private peripheral bus ends after the ROM table

# FPB (C1.11).
FP_CTRL = FPB_BASE
FP_CTRL_ENABLE, FP_CTRL_KEY = 1 << 0, 1 << 1
FP_COMP0 = FPB_BASE + 0x008

# DWT (C1.8): the cycle counter, PC sampling, exception trace, and comparators 16 bytes apart.
DWT_CTRL = DWT_BASE
DWT_CTRL_CYCCNTENA = 1 << 0
DWT_CTRL_POSTPRESET_SHIFT = 1
DWT_CTRL_CYCTAP = 1 << 9
DWT_CTRL_PCSAMPLENA = 1 << 12
DWT_CTRL_EXCTRCENA = 1 << 16
DWT_CTRL_NOCYCCNT = 1 << 25
DWT_CTRL_READ_ONLY = 0xFF000000  # NUMCOMP and the NOxxx feature bits
DWT_CYCCNT = DWT_BASE + 0x004
DWT_PCSR = DWT_BASE + 0x01C
PCSR_HALTED = 0xFFFFFFFF  # what PCSR reads while the core is halted
DWT_COMP0 = DWT_BASE + 0x020
DWT_COMPARATOR_STRIDE = 0x10
DWT_MASK_OFFSET, DWT_FUNCTION_OFFSET = 0x4, 0x8  # from each DWT_COMPn
DWT_FUNCTION_MATCHED = 1 << 24

# The most comparators the architecture can describe: FP_CTRL.NUM_CODE and DWT_CTRL.NUMCOMP.
ARCHITECTURE_MAX_BREAKPOINTS, ARCHITECTURE_MAX_WATCHPOINTS = 127, 15

ReadMemory = Callable[[int, int], bytes]
WriteMemory = Callable[[int, bytes], None]


def start_cycle_counter(read_memory: ReadMemory, write_memory: WriteMemory) -> bool:
    """DEMCR.TRCENA then DWT_CTRL.CYCCNTENA, keeping the other bits (C1.6.5, C1.8.7). False
    where the DWT has no cycle counter (DWT_CTRL.NOCYCCNT)."""

    def read_word(address: int) -> int:
        return int.from_bytes(read_memory(address, 4), "little")

    write_memory(DEMCR, (read_word(DEMCR) | DEMCR_TRCENA).to_bytes(4, "little"))
    control = read_word(DWT_CTRL)
    if control & DWT_CTRL_NOCYCCNT:
        return False
    write_memory(DWT_CTRL, (control | DWT_CTRL_CYCCNTENA).to_bytes(4, "little"))
    return True


def dwt_comparator_count(read_memory: ReadMemory) -> int:
    """DWT_CTRL.NUMCOMP (C1.8.7)."""
    return int.from_bytes(read_memory(DWT_CTRL, 4), "little") >> 28


def matched_watchpoint(read_memory: ReadMemory, count: int, watches: dict[int, int]) -> int | None:
    """Which watchpoint (id -> watched address) halted the core, for GDB servers whose stop reply
    does not say (pyOCD answers every debug event with a plain `T05`): the comparator whose
    FUNCTIONn.MATCHED is set (reading FUNCTIONn clears it) watches 2^MASKn bytes from COMPn.
    With no MATCHED bit to go by (the server read it first), the only watchpoint there is."""
    if count:
        block = read_memory(DWT_COMP0, count * DWT_COMPARATOR_STRIDE)
        for offset in range(0, len(block), DWT_COMPARATOR_STRIDE):
            comp, mask, function = (
                int.from_bytes(block[offset + at : offset + at + 4], "little")
                for at in (0, DWT_MASK_OFFSET, DWT_FUNCTION_OFFSET)
            )
            if function & DWT_FUNCTION_MATCHED and function & 0xF:  # FUNCTION 0: disabled
                length = 1 << (mask & 0x1F)
                base = comp & ~(length - 1)
                hit = next((point for point, address in watches.items() if base <= address < base + length), None)
                if hit is not None:
                    return hit
    return next(iter(watches)) if len(watches) == 1 else None
