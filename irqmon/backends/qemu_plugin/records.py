"""The recorder's binary records (the layout `irqmon_recorder.c` writes), decoded in batches."""

from __future__ import annotations

from enum import IntEnum

import numpy as np

# Registers in record order.
REGISTERS = (
    "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11", "r12",
    "sp", "lr", "xpsr", "msp", "psp", "primask", "basepri", "faultmask", "control",
)  # fmt: skip
TASK_NAME_BYTES = 16


class RecordType(IntEnum):
    SITE = 1  # an instrumented instruction is about to execute
    ACCESS = 2  # a watched range was read or written (a: range, b: value after, c: value before)
    ENTER = 3  # an exception handler's first instruction, the exception newly active (a: raw priority)
    EXIT = 4  # an exception returns (a: the EXC_RETURN value)
    RETURN = 5  # a function the plan wants returns of returns (a: where to)


def record_dtype(window: int) -> np.dtype:
    """One record: the header, then `window` bytes of stack from sp and as many from psp."""
    return np.dtype(
        [
            ("type", "u1"), ("access_size", "u1"), ("is_store", "u1"), ("reserved", "u1"),
            ("pc", "<u4"), ("instructions", "<u8"), ("host_ns", "<u8"),
            ("regs", "<u4", (len(REGISTERS),)),
            ("a", "<u4"), ("b", "<u4"), ("c", "<u4"), ("task", "<u4"), ("task_name", f"S{TASK_NAME_BYTES}"),
            ("sp_window_length", "<u2"), ("psp_window_length", "<u2"),
            ("sp_window", "u1", (window,)), ("psp_window", "u1", (window,)),
        ]  # fmt: skip
    )


class RecordStream:
    """Bytes as they arrive from the recorder in, whole records out (a batch per call)."""

    def __init__(self, window: int) -> None:
        self.dtype = record_dtype(window)
        self._pending = bytearray()

    def feed(self, data: bytes) -> np.ndarray:
        self._pending += data
        count = len(self._pending) // self.dtype.itemsize
        if count == 0:
            return np.empty(0, self.dtype)
        size = count * self.dtype.itemsize
        batch = np.frombuffer(bytes(self._pending[:size]), self.dtype)
        del self._pending[:size]
        return batch

