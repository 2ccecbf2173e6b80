"""Just enough Thumb-2 decoding for the capture: instruction boundaries, mask-changing
instructions, loads and stores, instructions that cannot branch, and what a function's prologue
pushed on the stack.

What an instruction is comes from capstone's Thumb decoder (M profile), one decoder for the
whole module, each instruction decoded once: loads and stores (floating-point ones such as
VLDR/VSTR/VPUSH/VPOP included; hints such as PLD touch no data), branches, mask changes and
prologue instructions. Only an instruction's length is read from its first halfword (A5.1 of
the ARMv7-M Architecture Reference Manual), to sweep code that capstone may not decode. The
interface is the names in `__all__`; how they decode is this module's own business.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

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

MASK_REGISTERS = ("primask", "basepri", "basepri_max", "faultmask")
# Mnemonics (capstone's, without width suffixes) that read or write data memory.
LOADS = ("ldr", "ldm", "pop", "vldr", "vldm", "vpop", "lda", "tbb", "tbh")
STORES = ("str", "stm", "push", "vstr", "vstm", "vpush", "stl")
PUSHES = ("push", "vpush")  # stores below sp only
# 32-bit instructions that never change the flow, for `falls_through`: push.w, special
# registers and barriers. Other 32-bit ones count as possible branches.
WIDE_FALL_THROUGH = ("push", "msr", "mrs", "dsb", "dmb", "isb")
# 16-bit instructions that stop or leave the flow other than by writing pc or branching.
NO_FALL_THROUGH = ("cbz", "cbnz", "bkpt", "udf", "svc", "wfi", "wfe")
WAITS = ("wfi", "wfe")
REGISTER_NUMBERS = {f"r{n}": n for n in range(13)} | {"sb": 9, "sl": 10, "fp": 11, "ip": 12, "sp": 13, "lr": 14, "pc": 15}
FLOW_GROUPS = (capstone.CS_GRP_JUMP, capstone.CS_GRP_CALL, capstone.CS_GRP_RET, capstone.CS_GRP_INT)


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
class _Decoded:
    """What this module needs of one instruction, as capstone decodes it."""

    mnemonic: str  # without a width suffix (push for push.w), condition included (beq)
    wide: bool  # the .w suffix was written (b.w)
    flags: str  # first operand text (cps: "i", "if"; msr: the special register)
    condition: int  # 0-13, 14 (always) outside a condition
    registers: tuple[str, ...]  # register operands in order, capstone's names (r0, sp, d8)
    immediate: int | None  # the last immediate operand
    memory: tuple[str, int] | None  # base register and displacement of a memory operand without index
    writeback: bool
    post_index: bool
    writes_pc: bool
    changes_flow: bool  # a jump, call, return or exception call


@cache
def _decode(insn: Instruction) -> _Decoded | None:
    """`insn` decoded once (None where capstone has no instruction for it)."""
    found = _full(insn)
    if found is None:
        return None
    mnemonic, _, suffix = found.mnemonic.partition(".")
    registers = tuple(found.reg_name(op.reg) for op in found.operands if op.type == capstone.arm.ARM_OP_REG)
    immediates = [op.imm for op in found.operands if op.type == capstone.arm.ARM_OP_IMM]
    memory = next(
        (
            (found.reg_name(op.mem.base), op.mem.disp)
            for op in found.operands
            if op.type == capstone.arm.ARM_OP_MEM and not op.mem.index
        ),
        None,
    )
    return _Decoded(
        mnemonic=mnemonic,
        wide=suffix == "w",
        flags=found.op_str.split(",")[0].strip(),
        condition=found.cc - 1,
        registers=registers,
        immediate=immediates[-1] if immediates else None,
        memory=memory,
        writeback=found.writeback,
        post_index=found.post_index,
        writes_pc="pc" in (found.reg_name(r) for r in found.regs_access()[1]),
        changes_flow=any(found.group(group) for group in FLOW_GROUPS),
    )


@cache
def _decoder() -> capstone.Cs:
    decoder = capstone.Cs(capstone.CS_ARCH_ARM, capstone.CS_MODE_THUMB | capstone.CS_MODE_MCLASS)
    decoder.detail = True
    return decoder


def _full(insn: Instruction) -> Any:  # capstone's CsInsn with operands, or None
    encoding = insn.first.to_bytes(2, "little") + (insn.second.to_bytes(2, "little") if insn.size == 4 else b"")
    return next(_decoder().disasm(encoding, insn.address, 1), None)


def _mnemonic(insn: Instruction) -> str:
    decoded = _decode(insn)
    return decoded.mnemonic if decoded is not None else ""


@dataclass(frozen=True)
class MaskChange:
    """What a mask-changing instruction does: which register, and disable/enable/write."""

    register: str
    role: str
    text: str


def mask_change(insn: Instruction) -> MaskChange | None:
    """cpsid/cpsie on PRIMASK or FAULTMASK, or msr to a mask register."""
    decoded = _decode(insn)
    if decoded is None:
        return None
    if decoded.mnemonic in ("cpsid", "cpsie"):
        flag = "i" if "i" in decoded.flags else "f" if "f" in decoded.flags else None
        if flag is None:
            return None
        disable = decoded.mnemonic == "cpsid"
        register = "primask" if flag == "i" else "faultmask"
        return MaskChange(register, "disable" if disable else "enable", f"{decoded.mnemonic} {flag}")
    if decoded.mnemonic == "msr" and decoded.flags in MASK_REGISTERS and decoded.registers:
        register, source = decoded.flags, REGISTER_NUMBERS[decoded.registers[0]]
        return MaskChange("basepri" if register == "basepri_max" else register, "write", f"msr {register}, r{source}")
    return None


def access_direction(insn: Instruction) -> str | None:
    """'r' for a load, 'w' for a store (a store-exclusive too), None for anything else (PLD and
    PLI touch no data)."""
    mnemonic = _mnemonic(insn)
    if mnemonic.startswith(STORES):
        return "w"
    if mnemonic.startswith(LOADS):
        return "r"
    return None


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
    decoded = _decode(insn)
    if decoded is None:
        return None
    mnemonic, names = decoded.mnemonic, decoded.registers
    if mnemonic == "bx" and names:
        return PcLoad(REGISTER_NUMBERS[names[0]], None)
    if mnemonic in ("pop", "ldm", "ldmia") and "pc" in names:
        base = 13 if mnemonic == "pop" else REGISTER_NUMBERS[names[0]]
        loaded = tuple(REGISTER_NUMBERS[name] for name in (names if mnemonic == "pop" else names[1:]))
        grows = 4 * len(loaded) if mnemonic == "pop" or decoded.writeback else 0
        return PcLoad(base, 4 * loaded.index(15), loaded, grows)
    if mnemonic == "ldr" and names == ("pc",) and decoded.memory is not None:
        base_name, displacement = decoded.memory
        base = REGISTER_NUMBERS[base_name]
        if decoded.post_index:
            return PcLoad(base, 0, (15,), decoded.immediate or 0)
        return PcLoad(base, displacement, (15,), displacement if decoded.writeback else 0)
    return None


def may_load_pc(insn: Instruction) -> bool:
    """A cheap test before `pc_load`: bx, pop or ldm with pc, ldr pc."""
    decoded = _decode(insn)
    return decoded is not None and decoded.writes_pc and decoded.mnemonic in ("bx", "pop", "ldm", "ldr")


def may_branch_directly(insn: Instruction) -> bool:
    """A cheap test before `branch_target`: b and bl to an immediate address, not conditional
    ones (beq) nor cbz/cbnz."""
    decoded = _decode(insn)
    return decoded is not None and decoded.mnemonic in ("b", "bl") and decoded.immediate is not None


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
        mnemonic = _mnemonic(insn)
        if mnemonic.startswith("it"):  # it, itt, ite, ittet, ...: then/else after the first
            first = _decode(insn).condition
            block = [first] + [first if letter == "t" else first ^ 1 for letter in mnemonic[2:]]
    return conditions


def branch_target(insn: Instruction) -> tuple[int, bool] | None:
    """Where a direct branch goes and whether it links (bl: a call; b: a jump or tail call)."""
    decoded = _decode(insn)
    if decoded is None or decoded.mnemonic not in ("b", "bl") or decoded.immediate is None or decoded.registers:
        return None
    return decoded.immediate, decoded.mnemonic == "bl"


def falls_through(insn: Instruction) -> bool:
    """Stepping `insn` lands on the next instruction: a 16-bit instruction that neither
    branches, writes pc, calls an exception nor sleeps, or a 32-bit `push.w`, `msr`, `mrs` or
    barrier. Conservative: any other 32-bit instruction may branch."""
    decoded = _decode(insn)
    if decoded is None:
        return False
    if insn.size == 4:
        return decoded.mnemonic in WIDE_FALL_THROUGH
    return not (decoded.changes_flow or decoded.writes_pc or decoded.mnemonic in NO_FALL_THROUGH)


def stores(insn: Instruction) -> bool:
    """Writes data memory other than by a push (below sp): str, strb, strh, stm, vstr, ..."""
    return access_direction(insn) == "w" and _mnemonic(insn) not in PUSHES


def waits_for_event(insn: Instruction) -> bool:
    """`wfi` or `wfe`: the core sleeps until an interrupt or event."""
    return _mnemonic(insn) in WAITS


def _pushed_registers(decoded: _Decoded) -> list[int]:
    """Core registers a push, push.w (stmdb sp!) or `str rt, [sp, #-4]!` saves, lowest first."""
    if decoded.mnemonic == "push":
        return [REGISTER_NUMBERS[name] for name in decoded.registers]
    if decoded.mnemonic == "str" and decoded.memory == ("sp", -4) and decoded.writeback and not decoded.post_index:
        return [REGISTER_NUMBERS[decoded.registers[0]]]
    return []


def _stack_reserved(decoded: _Decoded) -> int:
    """Bytes that a `sub sp, #n` (any width) or `vpush` moves sp down."""
    if decoded.mnemonic in ("sub", "subs", "subw") and decoded.registers in (("sp",), ("sp", "sp")):
        return decoded.immediate or 0
    if decoded.mnemonic == "vpush":
        return sum(8 if name.startswith("d") else 4 for name in decoded.registers)
    return 0


@lru_cache(maxsize=4096)  # the unwinder asks again for each row halted in the same code
def prologue_effect(code: bytes, start: int, pc: int) -> tuple[int, dict[int, int]]:
    """For code without CFI: how far the prologue executed before `pc` moved sp down, and where
    it saved registers (register number -> offset from the CFA), from push/vpush/sub sp.

    `code` holds the function's first bytes from `start`. Scanning stops at `pc` or at the
    first branch (cbz/cbnz aside), as gdb's Thumb prologue analyser does."""
    size, saved = 0, {}
    for insn in iter_instructions(code, start):
        if insn.address >= pc:
            break
        decoded = _decode(insn)
        if decoded is None:
            continue
        if (decoded.changes_flow or decoded.writes_pc) and decoded.mnemonic not in ("cbz", "cbnz"):
            break
        registers = _pushed_registers(decoded)
        size += _stack_reserved(decoded) + 4 * len(registers)
        saved.update({number: -size + 4 * index for index, number in enumerate(registers)})
    return size, saved
