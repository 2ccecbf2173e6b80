"""uart_queue_primask (seed 002): serial_puts() ends with an unconditional `cpsie i`. Called from
the USB ISR (OTG_FS, 16 + 67) inside its own interrupts-off section, that instruction clears
PRIMASK while the ISR still runs, and the more urgent USART1 TX ISR preempts it right there."""

from __future__ import annotations

import re
import subprocess

import pytest

from support import expected, run_under_gdb, sample_elf

SAMPLE = "uart_queue_primask"
OTG_FS_EXCEPTION = 16 + 67
IN_USB_ISR = f"($xpsr & 0x1ff) == {OTG_FS_EXCEPTION}"


def cpsie_address(elf, function: str) -> int:
    """Address of the `cpsie i` instruction in `function`, from the ELF's disassembly."""
    listing = subprocess.run(
        ["arm-none-eabi-objdump", "-d", f"--disassemble={function}", str(elf)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    addresses = re.findall(r"^\s*([0-9a-f]+):\s+b662\s+cpsie\s+i", listing, re.M)
    assert len(addresses) == 1, listing
    return int(addresses[0], 16)


@pytest.fixture(scope="module")
def run(built_samples):
    elf = sample_elf(SAMPLE)
    cpsie = cpsie_address(elf, "serial_puts")
    commands = [
        f"break *{cpsie:#x} if {IN_USB_ISR}",
        "continue",
        'printf "before cpsie ipsr=%d primask=%d\\n", $xpsr & 0x1ff, $primask',
        "stepi",
        'printf "after cpsie ipsr=%d primask=%d\\n", $xpsr & 0x1ff, $primask',
        "delete",
        "break USART1_IRQHandler",
        "continue",
        'printf "usart1 entry ipsr=%d\\n", $xpsr & 0x1ff',
        "bt",
        "delete",
        "break sample_done",
        "continue",
        'printf "records torn=%d\\n", tx_queue.sent_from_open_record',
    ]
    return run_under_gdb(elf, commands, timeout=30)


def test_cpsie_in_serial_puts_unmasks_inside_the_usb_isr(run):
    assert f"before cpsie ipsr={OTG_FS_EXCEPTION} primask=1" in run.gdb_output, run.gdb_output
    assert f"after cpsie ipsr={OTG_FS_EXCEPTION} primask=0" in run.gdb_output, run.gdb_output


def test_usart1_isr_preempts_the_usb_isrs_critical_section(run):
    assert "usart1 entry ipsr=53" in run.gdb_output, run.gdb_output  # 16 + 37
    block = run.gdb_output.split("usart1 entry", 1)[1]
    frames = re.findall(r"^#\d+\s+(?:0x[0-9a-f]+ in )?(<signal handler called>|\w+)", block, re.M)
    assert frames[:6] == [
        "USART1_IRQHandler",
        "<signal handler called>",
        "serial_puts",
        "CDC_Receive_FS",
        "OTG_FS_IRQHandler",
        "<signal handler called>",
    ], frames


def test_output_and_markers(run):
    exp = expected(SAMPLE)
    assert "records torn=0" not in run.gdb_output
    assert "usb rx: AT+GMR" in run.serial
    assert exp["bug_marker"] in run.serial
    assert run.serial.rstrip().endswith(exp["done_marker"])
