"""The small protocol every capture backend implements (GDB-MI, pyOCD, a raw GDB remote stub).

The capture loop (`irqmon.capture.loop`) owns probe packs, rows and the trace; a backend only
halts, resumes, sets comparators and reads registers and memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from irqmon.cortexm.frames import Frame


class StopReason(StrEnum):
    BREAKPOINT = "breakpoint"
    WATCHPOINT = "watchpoint"
    STEP = "step"
    HALTED = "halted"  # an asynchronous halt the capture asked for
    EXITED = "exited"  # the target or its debug server went away


class WatchAccess(StrEnum):
    READ = "r"
    WRITE = "w"
    ACCESS = "rw"


@dataclass(frozen=True)
class Stop:
    """Why and where the core stopped."""

    reason: StopReason
    pc: int = 0
    # The comparator that fired (the id add_breakpoint/add_watchpoint returned), if known.
    point: int | None = None
    # For watchpoints the stop is reported after the access completed (as DWT does):
    # the address hit, and the accessing instruction's address where the backend knows it.
    data_address: int | None = None
    access_pc: int | None = None
    # The core also reached a breakpoint at `pc` in the same halt (a watched access right
    # before a probed instruction): its handlers run now, as resuming steps over it.
    breakpoint_too: bool = False
    message: str = ""


# Register names as the capture asks for them (lower case, as gdb names them for Cortex-M).
CORE_REGISTERS = ("pc", "lr", "sp", "xpsr", "basepri", "primask", "faultmask", "control")


class Backend(Protocol):
    """What the capture loop needs from a debug connection. All calls are made while halted,
    except `resume`, `wait_stop` and `halt`."""

    name: str

    def connect(self) -> None:
        """Attach; the target is halted afterwards."""

    def add_breakpoint(self, address: int) -> int:
        """A hardware breakpoint at `address` (Thumb bit clear); returns its id."""

    def add_watchpoint(self, address: int, size: int, access: WatchAccess) -> int:
        """A data watchpoint that stops on every matching access, same-value writes included."""

    def remove_point(self, point: int) -> None: ...

    def resume(self) -> None: ...

    def wait_stop(self, timeout: float) -> Stop | None:
        """The next stop, or None if the target is still running after `timeout` seconds."""

    def halt(self) -> Stop:
        """Halt the running core. The stop it met: one the core came to by itself before the
        halt (a breakpoint, a watchpoint), or a breakpoint under pc it halted at before it fired
        (a resume would step off it); else HALTED."""

    def step(self) -> Stop:
        """Execute one instruction with interrupts masked for the step."""

    def read_registers(self, names: tuple[str, ...]) -> dict[str, int]:
        """Several core registers in as few round trips as the connection allows."""

    def read_memory(self, address: int, size: int) -> bytes: ...

    def read_cycle_counter(self) -> int | None:
        """DWT CYCCNT where the target counts cycles (not QEMU), else None."""

    def backtrace(self, depth: int) -> list[Frame]:
        """Innermost first. An exception entry appears as a frame named schema.EXCEPTION_FRAME."""

    def disconnect(self, resume: bool) -> None:
        """Remove every breakpoint and watchpoint, resume the target if asked, let go.
        Must not raise when the connection is already gone."""
