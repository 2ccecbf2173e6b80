"""Which DWT comparator halted the core, for GDB servers whose stop reply does not say: pyOCD's
gdbserver answers every debug event with a plain `T05`, without `watch:`/`rwatch:`/`awatch:`.

ARMv7-M ARM C1.8: DWT_CTRL.NUMCOMP (bits 31:28) counts the comparators; comparator n is COMPn,
MASKn and FUNCTIONn at DWT_COMP0 + 16 n; FUNCTIONn.MATCHED (bit 24) is set when it matched and
clears when FUNCTIONn is read. The comparator watches 2^MASK bytes from COMP.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

DWT_CTRL = 0xE0001000
DWT_COMP0 = 0xE0001020
COMPARATOR_BYTES = 16
FUNCTION_MATCHED = 1 << 24
FUNCTION_MODE = 0xF  # 0: disabled

ReadMemory = Callable[[int, int], bytes]


def comparator_count(read_memory: ReadMemory) -> int:
    return int.from_bytes(read_memory(DWT_CTRL, 4), "little") >> 28


def matched_point(read_memory: ReadMemory, count: int, watches: dict[int, int]) -> int | None:
    """The watchpoint (id -> watched address in `watches`) whose comparator matched; with no
    MATCHED bit to go by (the server read it first), the only watchpoint there is."""
    if count:
        block = read_memory(DWT_COMP0, count * COMPARATOR_BYTES)
        for offset in range(0, len(block), COMPARATOR_BYTES):
            comp, mask, function = struct.unpack_from("<III", block, offset)
            if function & FUNCTION_MATCHED and function & FUNCTION_MODE:
                length = 1 << (mask & 0x1F)
                base = comp & ~(length - 1)
                hit = next((point for point, address in watches.items() if base <= address < base + length), None)
                if hit is not None:
                    return hit
    return next(iter(watches)) if len(watches) == 1 else None
