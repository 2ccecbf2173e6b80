"""The recorder's binary records (the layout `irqmon_recorder.c` writes), decoded in batches."""

from __future__ import annotations

import struct
from dataclasses import dataclass
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


HEADER_DTYPE = np.dtype(
    [
        ("type", "u1"), ("access_size", "u1"), ("is_store", "u1"), ("reserved", "u1"),
        ("pc", "<u4"), ("instructions", "<u8"), ("host_ns", "<u8"),
        ("regs", "<u4", (len(REGISTERS),)),
        ("a", "<u4"), ("b", "<u4"), ("c", "<u4"), ("task", "<u4"), ("task_name", f"S{TASK_NAME_BYTES}"),
        ("sp_window_length", "<u2"), ("psp_window_length", "<u2"),
    ]  # fmt: skip
)
CHUNK_HEADER = struct.Struct("<4I")  # magic, records, bytes of stack windows, reserved
CHUNK_MAGIC = 0x43515249  # "IRQC"


class RecordFormatError(Exception):
    """The recorder's output is not what this decoder expects (a plugin built from other source)."""


@dataclass(frozen=True)
class Batch:
    """Records that arrived together: their headers, and their stack windows back to back
    (record i's sp window starts at `window_starts[i]`, its psp window right after it)."""

    records: np.ndarray
    windows: bytes
    window_starts: np.ndarray

    def __len__(self) -> int:
        return len(self.records)

    def sp_window(self, index: int) -> bytes:
        start = int(self.window_starts[index])
        return self.windows[start : start + int(self.records["sp_window_length"][index])]

    def psp_window(self, index: int) -> bytes:
        start = int(self.window_starts[index]) + int(self.records["sp_window_length"][index])
        return self.windows[start : start + int(self.records["psp_window_length"][index])]


class RecordStream:
    """Bytes as they arrive from the recorder in, whole chunks out as one batch per call."""

    def __init__(self) -> None:
        self._pending = bytearray()

    def feed(self, data: bytes) -> Batch:
        self._pending += data
        headers, windows, offset = [], [], 0
        view = memoryview(self._pending)
        while len(view) - offset >= CHUNK_HEADER.size:
            magic, count, window_bytes, _ = CHUNK_HEADER.unpack_from(view, offset)
            if magic != CHUNK_MAGIC:
                raise RecordFormatError("the recorder's output lost its framing (a plugin built from other source?)")
            size = CHUNK_HEADER.size + count * HEADER_DTYPE.itemsize + window_bytes
            if len(view) - offset < size:
                break
            start = offset + CHUNK_HEADER.size
            headers.append(np.frombuffer(bytes(view[start : start + count * HEADER_DTYPE.itemsize]), HEADER_DTYPE))
            windows.append(bytes(view[start + count * HEADER_DTYPE.itemsize : offset + size]))
            offset += size
        view.release()
        del self._pending[:offset]
        if not headers:
            return Batch(np.empty(0, HEADER_DTYPE), b"", np.empty(0, np.int64))
        records = np.concatenate(headers)
        lengths = records["sp_window_length"].astype(np.int64) + records["psp_window_length"]
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1])) if len(records) else np.empty(0, np.int64)
        return Batch(records, b"".join(windows), starts)
