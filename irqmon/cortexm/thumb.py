"""Just enough Thumb-2 decoding for the capture: instruction boundaries, mask-changing
instructions, loads and stores, instructions that cannot branch, and what a function's prologue
pushed on the stack.

Whether an instruction reads or writes memory comes from capstone's Thumb decoder (M profile):
every load and store, floating-point ones (VLDR/VSTR/VPUSH/VPOP) included, and hints such as
PLD that touch no data. The rest are encodings from the ARMv7-M Architecture Reference Manual
(A5.2, A5.3, A7.7). The interface is the names in `__all__`; how they decode is this module's
own business.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache

import capstone

__all__ = [
    "Instruction",
    "MaskChange",
    "PcLoad",
    "access_direction",
    "branch_target",
    "it_conditions",
    "may_branch_directly",
    "may_load_pc",
    "falls_through",
    "iter_instructions",
    "mask_change",
    "pc_load",
    "prologue_effect",
    "stores",
    "waits_for_event",
]

# SYSm values of MSR/MRS (B5.1.1).
SPECIAL_REGISTERS = {16: "primask", 17: "basepri", 18: "basepri_max", 19: "faultmask", 20: "control"}
MASK_REGISTERS = ("primask", "basepri", "basepri_max", "faultmask")
WAIT_FOR_EVENT = (0xBF20, 0xBF30)  # wfe, wfi
# Mnemonics (capstone's, without width suffixes) that read or write data memory.
LOADS = ("ldr", "ldm", "pop", "vldr", "vldm", "vpop", "lda", "tbb", "tbh")
STORES = ("str", "stm", "push", "vstr", "vstm", "vpush", "stl")


@dataclass(frozen=True)
class Instruction:
    address: int
    size: int  # 2 or 4 bytes
    first: int  # first halfword
    second: int  # second halfword of a 32-bit instruction, else 0

    @property
    def end(self) -> int:
        return self.address + self.size


def _instruction_size(first_halfword: int) -> int:
    """32-bit encodings start with 0b11101, 0b11110 or 0b11111 (A5.1)."""
    return 4 if (first_halfword >> 11) in (0b11101, 0b11110, 0b11111) else 2


def iter_instructions(code: bytes, base: int, data: Sequence[tuple[int, int]] = ()) -> Iterator[Instruction]:
    """Linear sweep over `code` loaded at `base` (a function's body), stepping over `data`:
    the sorted (start, end) ranges that the ELF's `$d` mapping symbols mark as data (literal
    pools), which are not instructions."""
    starts = [start for start, _ in data]
    offset = 0
    while offset + 2 <= len(code):
        at = bisect.bisect_right(starts, base + offset) - 1
        if at >= 0 and data[at][0] <= base + offset < data[at][1]:
            offset = data[at][1] - base
            continue
        first = int.from_bytes(code[offset : offset + 2], "little")
        size = _instruction_size(first)
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
    """'r' for a load, 'w' for a store (a store-exclusive too), None for anything else (PLD and
    PLI touch no data)."""
    mnemonic = _mnemonic(insn.first, insn.second, insn.size)
    if mnemonic.startswith(STORES):
        return "w"
    if mnemonic.startswith(LOADS):
        return "r"
    return None


@cache
def _mnemonic(first: int, second: int, size: int) -> str:
    decoded = next(_decoder().disasm(_encoding(first, second, size), 0, 1), None)
    return decoded.mnemonic if decoded is not None else ""


@cache
def _decoder(detail: bool = False) -> capstone.Cs:
    decoder = capstone.Cs(capstone.CS_ARCH_ARM, capstone.CS_MODE_THUMB | capstone.CS_MODE_MCLASS)
    decoder.detail = detail
    return decoder


def _encoding(first: int, second: int, size: int) -> bytes:
    return first.to_bytes(2, "little") + (second.to_bytes(2, "little") if size == 4 else b"")


def _decoded(insn: Instruction):  # a capstone CsInsn with operands, or None
    return next(_decoder(True).disasm(_encoding(insn.first, insn.second, insn.size), insn.address, 1), None)


REGISTER_NUMBERS = {f"r{n}": n for n in range(13)} | {"sb": 9, "sl": 10, "fp": 11, "ip": 12, "sp": 13, "lr": 14, "pc": 15}


@dataclass(frozen=True)
class PcLoad:
    """How an instruction loads pc from a register or memory: the ways a function or an
    exception returns (bx, pop/ldm with pc, ldr pc; B1.5.8 of the ARMv7-M manual)."""

    base: int  # register number: the new pc itself (offset None), or the base of the read
    offset: int | None  # the new pc is the word at base + offset
    loaded: tuple[int, ...] = ()  # registers loaded from base, base + 4, ... (pop, ldm), pc last
    base_after: int = 0  # what the base register gains (pop, ldm!, ldr post-index)


def pc_load(insn: Instruction) -> PcLoad | None:
    """How `insn` loads pc from a register or memory, or None (direct branches, everything else)."""
    decoded = _decoded(insn)
    if decoded is None:
        return None
    mnemonic = decoded.mnemonic.split(".")[0]
    names = [decoded.reg_name(op.reg) if op.type == capstone.arm.ARM_OP_REG else None for op in decoded.operands]
    if mnemonic == "bx" and names and names[0]:
        return PcLoad(REGISTER_NUMBERS[names[0]], None)
    if mnemonic in ("pop", "ldm", "ldmia") and "pc" in names:
        base = 13 if mnemonic == "pop" else REGISTER_NUMBERS[names[0]]
        loaded = tuple(REGISTER_NUMBERS[name] for name in (names if mnemonic == "pop" else names[1:]) if name)
        grows = 4 * len(loaded) if mnemonic == "pop" or decoded.writeback else 0
        return PcLoad(base, 4 * loaded.index(15), loaded, grows)
    if mnemonic == "ldr" and names and names[0] == "pc" and len(decoded.operands) > 1:
        memory = decoded.operands[1]
        if memory.type != capstone.arm.ARM_OP_MEM or memory.mem.index:
            return None
        base = REGISTER_NUMBERS[decoded.reg_name(memory.mem.base)]
        if decoded.post_index:
            return PcLoad(base, 0, (15,), decoded.operands[2].imm if len(decoded.operands) > 2 else 0)
        return PcLoad(base, memory.mem.disp, (15,), memory.mem.disp if decoded.writeback else 0)
    return None


def may_load_pc(insn: Instruction) -> bool:
    """A cheap test before `pc_load`: bx, pop with pc, ldm.w with pc, ldr.w pc (A5.2, A5.3)."""
    first, second = insn.first, insn.second
    if insn.size == 2:
        return first & 0xFF87 == 0x4700 or first & 0xFF00 == 0xBD00
    return (first & 0xFFD0 == 0xE890 and bool(second & 0x8000)) or (first & 0xFF70 == 0xF850 and second >> 12 == 15)


def may_branch_directly(insn: Instruction) -> bool:
    """A cheap test before `branch_target`: b (T2), b.w and bl (T4, T1)."""
    if insn.size == 2:
        return insn.first & 0xF800 == 0xE000
    return insn.first & 0xF800 == 0xF000 and (insn.second & 0xD000) in (0x9000, 0xD000)


def it_conditions(instructions: Sequence[Instruction]) -> dict[int, int]:
    """The condition (0-13) of each instruction an IT instruction makes conditional (A7.7.38),
    by address. Inside an IT block the core still fetches the instruction when the condition
    fails: a breakpoint there fires, but nothing executes."""
    conditions: dict[int, int] = {}
    block: list[int] = []
    for insn in instructions:
        if block:
            conditions[insn.address] = block.pop(0)
            continue
        if insn.size == 2 and insn.first & 0xFF00 == 0xBF00 and insn.first & 0xF:  # IT (T1)
            first_condition, mask = insn.first >> 4 & 0xF, insn.first & 0xF
            length = 4 - (mask & -mask).bit_length() + 1
            block = [first_condition] + [(first_condition & 0xE) | (mask >> (4 - j) & 1) for j in range(1, length)]
    return conditions


def branch_target(insn: Instruction) -> tuple[int, bool] | None:
    """Where a direct branch goes and whether it links (bl: a call; b: a jump or tail call)."""
    decoded = _decoded(insn)
    if decoded is None or not decoded.operands or decoded.operands[0].type != capstone.arm.ARM_OP_IMM:
        return None
    mnemonic = decoded.mnemonic.split(".")[0]
    if mnemonic in ("bl", "b"):
        return decoded.operands[0].imm, mnemonic == "bl"
    return None


def falls_through(insn: Instruction) -> bool:
    """A 16-bit Thumb instruction that never changes the flow (A5.2), `push.w`, `msr`, `mrs`
    or a barrier: stepping it lands on the next instruction. Conservative: anything else may
    branch."""
    if insn.size == 4:
        msr = insn.first & 0xFFE0 == 0xF380 and insn.second & 0xD000 == 0x8000
        mrs = insn.first == 0xF3EF and insn.second & 0xF000 == 0x8000
        barrier = insn.first == 0xF3BF and insn.second & 0xFFF0 in (0x8F40, 0x8F50, 0x8F60)  # dsb, dmb, isb
        return insn.first == 0xE92D or msr or mrs or barrier  # push.w (stmdb sp!): pc cannot be in the list
    op = insn.first
    top6 = op >> 10
    if top6 < 0b010000 or top6 == 0b010000:  # shifts, add/sub/mov/cmp immediate, ALU operations
        return True
    if op >> 11 == 0b01001 or 0b0101 <= op >> 12 <= 0b1001:  # ldr literal, loads and stores
        return True
    if op >> 11 in (0b10100, 0b10101, 0b11000, 0b11001):  # adr, add sp, stm, ldm
        return True
    if op >> 12 == 0b1011:  # miscellaneous (A5.2.5)
        if op & 0xF500 == 0xB100 or op & 0xFF00 in (0xBD00, 0xBE00):  # cbz/cbnz, pop {.., pc}, bkpt
            return False
        return op not in WAIT_FOR_EVENT  # a step with interrupts masked never ends
    return False


def stores(insn: Instruction) -> bool:
    """A 16-bit store other than `push`: str, strh, strb (register or immediate), str sp-relative,
    stm. 32-bit instructions count as stores unless they are known not to be (`falls_through`)."""
    op = insn.first
    if insn.size == 4:
        return False  # of those `falls_through` knows, push.w writes below sp only
    return op >> 9 in (0b0101000, 0b0101001, 0b0101010) or op >> 11 in (0b01100, 0b01110, 0b10000, 0b10010, 0b11000)


def waits_for_event(insn: Instruction) -> bool:
    """`wfi` or `wfe`: the core sleeps until an interrupt or event."""
    return insn.size == 2 and insn.first in WAIT_FOR_EVENT


def _expand_immediate(imm12: int) -> int:
    """ThumbExpandImm (A5.3.2) for the constants of `sub.w sp, sp, #const`."""
    if imm12 >> 10 == 0:
        byte = imm12 & 0xFF
        return [byte, byte << 16 | byte, byte << 24 | byte << 8, byte * 0x01010101][(imm12 >> 8) & 3]
    rotation = imm12 >> 7
    value = 0x80 | (imm12 & 0x7F)
    return ((value >> rotation) | (value << (32 - rotation))) & 0xFFFFFFFF


def prologue_effect(code: bytes, start: int, pc: int) -> tuple[int, dict[int, int]]:
    """For code without CFI: how far the prologue executed before `pc` moved sp down, and where
    it saved registers (register number -> offset from the CFA), from push/vpush/sub sp.

    `code` holds the function's first bytes from `start`. Scanning stops at `pc` or at the
    first branch, as gdb's Thumb prologue analyser does."""
    size, saved = 0, {}
    for insn in iter_instructions(code, start):
        if insn.address >= pc:
            break
        first, second, wide = insn.first, insn.second, insn.size == 4
        if not wide and first & 0xFE00 == 0xB400:  # push {r0-r7[, lr]}
            registers = [n for n in range(8) if first >> n & 1] + ([14] if first & 0x100 else [])
        elif first == 0xE92D:  # push.w {...} (stmdb sp!)
            registers = [n for n in range(15) if second >> n & 1]
        elif first == 0xF84D and second & 0x0FFF == 0x0D04:  # str.w rt, [sp, #-4]!
            registers = [second >> 12]
        else:
            registers = []
            if not wide and first & 0xFF80 == 0xB080:  # sub sp, #imm7*4
                size += (first & 0x7F) * 4
            elif wide and first & 0xFBEF == 0xF1AD and second & 0x8F00 == 0x0D00:  # sub.w sp, sp, #const
                size += _expand_immediate((first >> 10 & 1) << 11 | (second >> 12 & 7) << 8 | second & 0xFF)
            elif wide and first & 0xFBFF == 0xF2AD and second & 0x8F00 == 0x0D00:  # subw sp, sp, #imm12
                size += (first >> 10 & 1) << 11 | (second >> 12 & 7) << 8 | second & 0xFF
            elif wide and first == 0xED2D and second & 0x0E00 == 0x0A00:  # vpush {s/d registers}
                size += (second & 0xFF) * 4
            elif (
                not wide
                and (first & 0xF000 == 0xD000 or first & 0xF800 == 0xE000 or first & 0xFF00 in (0x4700, 0xBD00))
            ) or (wide and first & 0xF800 == 0xF000 and second & 0x8000):  # branches, pop {pc}
                break
        if registers:
            size += 4 * len(registers)
            saved.update({number: -size + 4 * index for index, number in enumerate(registers)})
    return size, saved
