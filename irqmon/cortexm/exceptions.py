"""Exception numbers, names and priorities (ARMv7-M B1.5), and the EXC_RETURN values that mark
an exception entry on the stack."""

from __future__ import annotations

FIRST_IRQ = 16  # exception number of IRQ 0; 0 is thread mode
SYSTICK = 15  # the SysTick timer's exception

# The architecture's exceptions below FIRST_IRQ, named as the trace's `exception` column names
# them (B1.5.2).
SYSTEM_EXCEPTIONS: dict[int, str] = {
    0: "Thread",
    1: "Reset",
    2: "NMI",
    3: "HardFault",
    4: "MemManage",
    5: "BusFault",
    6: "UsageFault",
    11: "SVCall",
    12: "DebugMon",
    14: "PendSV",
    15: "SysTick",
}
FIRST_CONFIGURABLE = 4  # MemManage: Reset, NMI and HardFault have fixed priorities

EXC_RETURN_VALUES = frozenset({0xFFFFFFE1, 0xFFFFFFE9, 0xFFFFFFED, 0xFFFFFFF1, 0xFFFFFFF9, 0xFFFFFFFD})
EXC_RETURN_PREFIX = 0xFFFFFF00  # the bits every EXC_RETURN value has set
EXC_RETURN_PSP = 1 << 2  # the interrupted code used the process stack
EXC_RETURN_BASIC_FRAME = 1 << 4  # clear: the frame also holds s0-s15 and FPSCR


def by_number(number: int) -> str:
    """An exception named by its number, as labels and unnamed exceptions read: `IRQ 3` for an
    interrupt, `exception 7` for a system exception."""
    return f"IRQ {number - FIRST_IRQ}" if number >= FIRST_IRQ else f"exception {number}"


def exception_name(number: int, irqs: dict[int, str]) -> str:
    """`Thread`, a system exception's name, the IRQ's name from `irqs` (by IRQ number), or
    `IRQn` / `ExceptionN` when unknown."""
    if number < FIRST_IRQ:
        return SYSTEM_EXCEPTIONS.get(number, f"Exception{number}")
    irq = number - FIRST_IRQ
    return irqs.get(irq, f"IRQ{irq}")


def logical_priority(raw: int, priority_bits: int) -> int:
    """A priority byte (NVIC_IPR, SHPR, BASEPRI) as the priority in implemented bits (0 most
    urgent): the core ignores the low 8 - `priority_bits` bits."""
    return (raw & 0xFF) >> (8 - priority_bits)


def is_exc_return(value: int) -> bool:
    """One of the ARMv7-M EXC_RETURN values (0xFFFFFFFF, lr at reset, is not one)."""
    return value in EXC_RETURN_VALUES
