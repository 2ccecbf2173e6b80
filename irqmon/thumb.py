"""Just enough Thumb-2 decoding to find mask-changing instructions and memory accesses.

Encodings from the ARMv7-M Architecture Reference Manual (A5.2, A5.3, A7.7).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

# SYSm values of MSR/MRS (B5.1.1).
SPECIAL_REGISTERS = {16: "primask", 17: "basepri", 18: "basepri_max", 19: "faultmask", 20: "control"}
MASK_REGISTERS = ("primask", "basepri", "basepri_max", "faultmask")


@dataclass(frozen=True)
class Instruction:
    address: int
    size: int  # 2 or 4 bytes
    first: int  # first halfword
    second: int  # second halfword of a 32-bit instruction, else 0

    @property
    def end(self) -> int:
        return self.address + self.size


def instruction_size(first_halfword: int) -> int:
    """32-bit encodings start with 0b11101, 0b11110 or 0b11111 (A5.1)."""
    return 4 if (first_halfword >> 11) in (0b11101, 0b11110, 0b11111) else 2


def iter_instructions(code: bytes, base: int) -> Iterator[Instruction]:
    """Linear sweep over `code` loaded at `base` (a function's body)."""
    offset = 0
    while offset + 2 <= len(code):
        first = int.from_bytes(code[offset : offset + 2], "little")
        size = instruction_size(first)
        if offset + size > len(code):
            return
        second = int.from_bytes(code[offset + 2 : offset + 4], "little") if size == 4 else 0
        yield Instruction(base + offset, size, first, second)
        offset += size


@dataclass(frozen=True)
class MaskChange:
    """What a mask-changing instruction does: which register, and disable/enable/write."""

    register: str
    role: str
    text: str


def mask_change(insn: Instruction) -> MaskChange | None:
    if insn.size == 2 and insn.first & 0xFFE8 == 0xB660:  # CPS (T1)
        disable = bool(insn.first & 0x10)
        register = "primask" if insn.first & 0x2 else "faultmask" if insn.first & 0x1 else None
        if register is None:
            return None
        flag = "i" if register == "primask" else "f"
        op = "cpsid" if disable else "cpsie"
        return MaskChange(register, "disable" if disable else "enable", f"{op} {flag}")
    if insn.size == 4 and insn.first & 0xFFF0 == 0xF380 and insn.second & 0xF300 == 0x8000:  # MSR (T1)
        register = SPECIAL_REGISTERS.get(insn.second & 0xFF)
        if register in MASK_REGISTERS:
            rn = insn.first & 0xF
            return MaskChange("basepri" if register == "basepri_max" else register, "write", f"msr {register}, r{rn}")
    return None


def access_direction(insn: Instruction) -> str | None:
    """'r' for a load, 'w' for a store, None for anything else."""
    if insn.size == 2:
        op = insn.first >> 9
        top5 = insn.first >> 11
        if top5 == 0b01001:  # LDR (literal)
            return "r"
        if 0b0101000 <= op <= 0b0101111:  # register offset: STR, STRH, STRB then loads
            return "w" if op <= 0b0101010 else "r"
        if top5 in (0b01100, 0b01110, 0b10000, 0b10010):  # STR/STRB/STRH/STR SP (immediate)
            return "w"
        if top5 in (0b01101, 0b01111, 0b10001, 0b10011):  # the loads of the same
            return "r"
        if top5 == 0b11000:  # STMIA
            return "w"
        if top5 == 0b11001:  # LDMIA
            return "r"
        return None
    first = insn.first
    if first & 0xFE00 == 0xF800:  # load/store single data item (A5.3.10-A5.3.12)
        return "r" if first & 0x10 else "w"
    if first & 0xFE40 == 0xE800 or first & 0xFE40 == 0xE840:  # LDM/STM, LDRD/STRD, LDREX/STREX
        return "r" if first & 0x10 else "w"
    return None
