"""Thumb decoding where the capture depends on it: which instructions read or write data
(floating-point loads and stores count, prefetch hints do not), and literal pools are data."""

from __future__ import annotations

import pytest
from support import sample_elf

from irqmon.cortexm.elf import ElfImage
from irqmon.cortexm.thumb import Instruction, access_direction


@pytest.mark.parametrize(
    "first, second, direction",
    [
        (0xED90, 0x0A00, "r"),  # vldr s0, [r0]
        (0xED80, 0x0A00, "w"),  # vstr s0, [r0]
        (0xECBD, 0x8B02, "r"),  # vpop {d8}
        (0xF890, 0xF000, None),  # pld [r0]: a hint, no data access
        (0xF8D0, 0x1004, "r"),  # ldr.w r1, [r0, #4]
        (0xF8C0, 0x1004, "w"),  # str.w r1, [r0, #4]
        (0xE840, 0x2100, "w"),  # strex r1, r2, [r0]
        (0x6800, 0, "r"),  # ldr r0, [r0]
        (0x6001, 0, "w"),  # str r1, [r0]
        (0xB510, 0, "w"),  # push {r4, lr}
        (0x4770, 0, None),  # bx lr
    ],
)
def test_access_direction(first, second, direction):
    insn = Instruction(0x08000100, 4 if second else 2, first, second)
    assert access_direction(insn) == direction


def test_literal_pools_are_not_swept_as_code(built_samples):
    elf = ElfImage(sample_elf("clean"))
    pools = elf.data_in_code
    assert pools, "the sample's code has literal pools ($d mapping symbols)"
    functions = [s for s in elf.symbols.values() if s.is_function and s.size]
    inside = [(start, end) for start, end in pools if any(f.address <= start < f.address + f.size for f in functions)]
    assert inside, "some pools sit inside a function's body"
    starts = {insn.address for f in functions for insn in elf.instructions(f.name)}
    assert not [a for a in starts for start, end in inside if start <= a < end]
