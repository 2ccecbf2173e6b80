"""Thumb decoding where the capture depends on it: which instructions read or write data
(floating-point loads and stores count, prefetch hints do not), literal pools are data, and
each decoder on instructions that arm-none-eabi-as assembles."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pytest
from support import sample_elf

from irqmon.cortexm.elf import ElfImage
from irqmon.cortexm.thumb import (
    Instruction,
    MaskChange,
    PcLoad,
    access_direction,
    branch_target,
    falls_through,
    it_conditions,
    iter_instructions,
    mask_change,
    may_branch_directly,
    may_load_pc,
    pc_load,
    prologue_effect,
    stores,
    waits_for_event,
)


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


BASE = 0x08000100


def assemble(source: str) -> list[Instruction]:
    """The Thumb instructions `arm-none-eabi-as` makes of `source` (Cortex-M4F), at BASE."""
    with tempfile.TemporaryDirectory() as work:
        listing, obj, binary = Path(work, "a.s"), Path(work, "a.o"), Path(work, "a.bin")
        listing.write_text(".syntax unified\n.thumb\n.cpu cortex-m4\n.fpu fpv4-sp-d16\n" + source + "\n")
        subprocess.run(["arm-none-eabi-as", "-o", str(obj), str(listing)], check=True, capture_output=True)
        subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", "-j", ".text", str(obj), str(binary)], check=True)
        return list(iter_instructions(binary.read_bytes(), BASE))


def only(source: str) -> Instruction:
    (insn,) = assemble(source)
    return insn


@pytest.mark.parametrize(
    "source, steps_to_next, writes_memory",
    [
        ("adds r0, r1, #1", True, False),
        ("ldr r0, [pc, #4]", True, False),
        ("str r0, [r1, #4]", True, True),
        ("strb r0, [r1]", True, True),
        ("stm r0!, {r1, r2}", True, True),
        ("push {r4, lr}", True, False),  # below sp only
        ("push.w {r4-r11, lr}", True, False),
        ("mov r0, r8", True, False),
        ("cpsid i", True, False),
        ("msr basepri, r0", True, False),
        ("mrs r0, primask", True, False),
        ("dsb", True, False),
        ("mov pc, r1", False, False),
        ("bx lr", False, False),
        ("blx r3", False, False),
        ("pop {r4, pc}", False, False),
        ("1: b 1b", False, False),
        ("1: beq 1b", False, False),
        ("1: cbz r0, 2f\nnop\n2:", False, False),
        ("svc #1", False, False),
        ("bkpt #0", False, False),
        ("wfi", False, False),
        ("str.w r0, [r1, #4]", False, True),  # 32-bit: only push.w, msr, mrs and barriers step
        ("ldr.w r0, [r1, #4]", False, False),
    ],
)
def test_falls_through_and_stores(source, steps_to_next, writes_memory):
    insn = assemble(source)[0]
    assert (falls_through(insn), stores(insn)) == (steps_to_next, writes_memory)


@pytest.mark.parametrize("source, sleeps", [("wfi", True), ("wfe", True), ("wfi.w", True), ("nop", False), ("yield", False)])
def test_waits_for_event(source, sleeps):
    assert waits_for_event(only(source)) is sleeps


@pytest.mark.parametrize(
    "source, change",
    [
        ("cpsid i", MaskChange("primask", "disable", "cpsid i")),
        ("cpsie f", MaskChange("faultmask", "enable", "cpsie f")),
        ("msr primask, r2", MaskChange("primask", "write", "msr primask, r2")),
        ("msr basepri_max, r3", MaskChange("basepri", "write", "msr basepri_max, r3")),
        ("msr faultmask, r12", MaskChange("faultmask", "write", "msr faultmask, r12")),
        ("msr psp, r0", None),
        ("mrs r0, primask", None),
        ("mov r0, r1", None),
    ],
)
def test_mask_change(source, change):
    assert mask_change(only(source)) == change


@pytest.mark.parametrize(
    "source, load",
    [
        ("bx lr", PcLoad(14, None)),
        ("pop {r4, pc}", PcLoad(13, 4, (4, 15), 8)),
        ("pop.w {r4-r11, pc}", PcLoad(13, 32, (4, 5, 6, 7, 8, 9, 10, 11, 15), 36)),
        ("ldm.w r0!, {r1, pc}", PcLoad(0, 4, (1, 15), 8)),
        ("ldm.w r0, {r1, pc}", PcLoad(0, 4, (1, 15), 0)),
        ("ldr.w pc, [sp], #4", PcLoad(13, 0, (15,), 4)),
        ("ldr.w pc, [r1, #8]", PcLoad(1, 8, (15,), 0)),
        ("ldr pc, [r1, #-4]!", PcLoad(1, -4, (15,), -4)),
        ("ldr.w pc, [r0, r1]", None),
        ("blx r3", None),
        ("mov pc, r1", None),
        ("pop {r4, r5}", None),
        ("ldr r0, [r1]", None),
    ],
)
def test_pc_load(source, load):
    insn = only(source)
    assert (pc_load(insn) if may_load_pc(insn) else None) == load


def test_branch_target_of_direct_branches_only():
    b, bl, b_wide, beq, cbz, bx, _ = assemble("1: b 1b\nbl 1b\nb.w 1b\nbeq 1b\ncbz r0, 2f\nbx lr\n2: nop")
    assert [branch_target(i) if may_branch_directly(i) else None for i in (b, bl, b_wide, beq, cbz, bx)] == [
        (BASE, False), (BASE, True), (BASE, False), None, None, None,
    ]  # fmt: skip


def test_it_conditions():
    code = assemble("ittet eq\nmoveq r0, #1\nmoveq r0, #2\nmovne r0, #3\nmoveq r0, #4\nmov r0, #5\nite hi\nmovhi r1, #1\nmovls r1, #2")
    eq, ne, hi, ls = 0, 1, 8, 9
    addresses = [i.address for i in code]
    assert it_conditions(code) == {
        addresses[1]: eq, addresses[2]: eq, addresses[3]: ne, addresses[4]: eq, addresses[7]: hi, addresses[8]: ls,
    }  # fmt: skip


PROLOGUE = """push {r4-r7, lr}
sub sp, #16
vpush {d8-d9}
str.w r8, [sp, #-4]!
sub.w sp, sp, #1024
subw sp, sp, #1000
cbz r0, 1f
push {r0}
1: b 1b
push {r1}"""


def test_prologue_effect_follows_pushes_and_stack_reservations():
    insns = assemble(PROLOGUE)
    code = b"".join(i.first.to_bytes(2, "little") + (i.second.to_bytes(2, "little") if i.size == 4 else b"") for i in insns)
    saved = {4: -20, 5: -16, 6: -12, 7: -8, 14: -4}
    after = [prologue_effect(code, BASE, insn.end) for insn in insns]
    assert prologue_effect(code, BASE, BASE) == (0, {})
    assert after[0] == (20, saved)
    assert after[1] == (36, saved)
    assert after[2] == (52, saved)  # two doubles
    assert after[3] == (56, saved | {8: -56})
    assert after[5] == (56 + 1024 + 1000, saved | {8: -56})
    assert after[7][0] == 56 + 1024 + 1000 + 4  # past a cbz, as on its fall-through path
    assert after[9] == after[8] == after[7]  # a branch ends the prologue
