"""The ELF reader and the Thumb decoder against binutils on the real sample images."""

from __future__ import annotations

import re
import subprocess

import pytest

from irqmon.cortexm import thumb
from irqmon.cortexm.elf import ElfImage
from support import sample_elf, sample_names

MASK_MNEMONIC = re.compile(r"^\s*([0-9a-f]+):\s+(?:[0-9a-f]{4} ?){1,2}\s+(cpsi[de]|msr)\s+(.*)$")
MASK_OPERANDS = ("primask", "basepri", "basepri_max", "faultmask")


def disassembly(elf) -> str:
    return subprocess.run(["arm-none-eabi-objdump", "-d", str(elf)], capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("sample", sample_names())
def test_mask_sites_are_every_mask_instruction_objdump_sees(sample, built_samples):
    expected = set()
    for line in disassembly(sample_elf(sample)).splitlines():
        match = MASK_MNEMONIC.match(line)
        if match and (match[2] != "msr" or match[3].split(",")[0].strip().lower() in MASK_OPERANDS):
            expected.add(int(match[1], 16))
    found = {site.address for site in ElfImage(sample_elf(sample)).mask_sites}
    assert found == expected


def test_loads_and_stores_are_told_apart_like_objdump(built_samples):
    elf = ElfImage(sample_elf("printf_tasks_critical"))
    lines = disassembly(sample_elf("printf_tasks_critical")).splitlines()
    checked = 0
    for line in lines:
        match = re.match(r"^\s*([0-9a-f]+):\s+(?:[0-9a-f]{4} ?){1,2}\s+(\w+)", line)
        if not match:
            continue
        mnemonic = match[2].split(".")[0]
        if re.fullmatch(r"(ldr|ldrb|ldrh|ldrsb|ldrsh|ldrd|ldm|ldmia|ldrex)(eq|ne)?", mnemonic):
            direction = "r"
        elif re.fullmatch(r"(str|strb|strh|strd|stm|stmia|strex)(eq|ne)?", mnemonic):
            direction = "w"
        else:
            continue
        insn = elf.instruction_at(int(match[1], 16))
        assert insn is not None and thumb.access_direction(insn) == direction, line
        checked += 1
    assert checked > 200


def test_dwarf_finds_hal_locks_and_task_names_without_knowing_the_firmware(built_samples):
    locks = ElfImage(sample_elf("hal_i2c_lock_deadlock")).objects_with_member("Lock", "HAL_LockTypeDef")
    assert [obj.name for obj in locks] == ["hi2c1.Lock"]
    image = ElfImage(sample_elf("printf_tasks_critical"))
    assert image.member_offset("pxCurrentTCB", "pcTaskName") is not None
    assert image.objects_with_member("Lock", "HAL_LockTypeDef") == []


def test_dwarf_locates_a_struct_member_by_the_type_name(built_samples):
    """FreeRTOS's mutex marker: `pcHead` of `struct QueueDefinition`, wherever the struct puts it."""
    image = ElfImage(sample_elf("rtos_clean"))
    assert image.struct_member("QueueDefinition", "pcHead") == (0, 4)
    assert image.struct_member("QueueDefinition", "uxItemSize") == (12, 4)
    assert image.struct_member("QueueDefinition", "nothing") is None
    assert ElfImage(sample_elf("hal_clean")).struct_member("QueueDefinition", "pcHead") is None


def test_source_lines_match_addr2line(built_samples):
    elf = sample_elf("usb_cdc_malloc_isr")
    image = ElfImage(elf)
    for name in ("USBD_CDC_Init", "OTG_FS_IRQHandler", "main"):
        address = image.symbols[name].address
        line = subprocess.run(["arm-none-eabi-addr2line", "-e", str(elf), hex(address)],
                              capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
        file, number = line.rsplit(":", 1)
        assert image.source_line(address).endswith(f"{file.split('/')[-1]}:{number.split()[0]}")
    assert image.build_id and len(image.build_id) == 40
