"""clean: the fixed form of every pattern, under busy interrupt traffic. gdb checks that no heap
or mutex call and no printf or HAL lock runs in an ISR, that the FromISR calls come from TIM2 at a
priority the syscall ceiling covers, that nested EXTI updates of EXTI_IMR and USB records
in the serial queue stay whole."""

from __future__ import annotations

import re
import subprocess
from collections import Counter

import pytest

from support import expected, run_under_gdb, sample_elf

SAMPLE = "clean"
TIM2_EXCEPTION = 16 + 28
USART1_EXCEPTION = 16 + 37
NVIC_IPR = 0xE000E400
EXTI_IMR = 0x40013C00
THREAD_ONLY = ("malloc", "free", "_malloc_r", "_free_r", "printf", "puts", "HAL_UART_Transmit", "vPortEnterCritical")


@pytest.fixture(scope="module")
def run(built_samples):
    current_priority = f"*(unsigned char *)({NVIC_IPR:#x} + ($xpsr & 0x1ff) - 16)"
    commands = [f'dprintf {name},"call {name} ipsr=%d\\n",$xpsr & 0x1ff' for name in THREAD_ONLY]
    commands += [
        f'dprintf xQueueGenericSendFromISR,"fromisr ipsr=%d prio=%d\\n",$xpsr & 0x1ff,{current_priority}',
        f'dprintf EXTI1_IRQHandler,"exti1 imr=%d nested_in_exti0=%d\\n",*(unsigned *){EXTI_IMR:#x},'
        '$_any_caller_is("EXTI0_IRQHandler", 6)',
        'dprintf USART1_IRQHandler,"usart1 in_usb=%d writer=%d\\n",'
        '$_any_caller_is("OTG_FS_IRQHandler", 12),tx_queue.writer',
        "break sample_done",
        "continue",
        f'printf "final imr=%d ceiling=%d\\n", *(unsigned *){EXTI_IMR:#x}, ulMaxSyscallInterruptPriority',
    ]
    return run_under_gdb(sample_elf(SAMPLE), commands, timeout=60)


def test_heap_printf_lock_and_task_critical_only_in_thread_mode(run):
    calls = Counter(re.findall(r"^call (\w+) ipsr=(\d+)", run.gdb_output, re.M))
    assert calls[("_malloc_r", "0")] >= 1, calls  # printf's stdout buffer
    assert calls[("HAL_UART_Transmit", "0")] == 1, calls
    assert calls[("vPortEnterCritical", "0")] >= 64, calls
    assert {ipsr for (_, ipsr) in calls} == {"0"}, calls


def test_fromisr_calls_come_from_tim2_below_the_syscall_ceiling(run):
    sends = re.findall(r"^fromisr ipsr=(\d+) prio=(\d+)", run.gdb_output, re.M)
    assert len(sends) >= 64, run.gdb_output
    assert {int(ipsr) for ipsr, _ in sends} == {TIM2_EXCEPTION}
    assert all(int(prio) >= 5 << 4 for _, prio in sends), sends
    assert "ceiling=80" in run.gdb_output


def test_exti1_nests_in_exti0_only_after_its_store(run):
    entries = re.findall(r"^exti1 imr=(\d+) nested_in_exti0=(\d)", run.gdb_output, re.M)
    assert entries == [("2", "1")] * 3, entries  # line 0 already masked when EXTI1 gets in
    assert "final imr=0" in run.gdb_output


def test_usart1_never_runs_inside_a_usb_record(run):
    entries = re.findall(r"^usart1 in_usb=(\d) writer=(\d)", run.gdb_output, re.M)
    assert any(in_usb == "1" for in_usb, _ in entries), entries  # it does preempt the USB ISR...
    assert all(writer == "0" for _, writer in entries), entries  # ...but never mid-record


def test_no_unconditional_interrupt_enable_in_the_image(built_samples):
    listing = subprocess.run(
        ["arm-none-eabi-objdump", "-d", str(sample_elf(SAMPLE))], capture_output=True, text=True, check=True
    ).stdout
    assert re.search(r"\scpsie\s", listing) is None


def test_serial_output(run):
    assert "UNEXPECTED" not in run.serial and "BUG" not in run.serial, run.serial
    assert "usb rx: AT+GMR" in run.serial
    assert "64 TIM2 ticks received in thread mode" in run.serial
    assert run.serial.rstrip().endswith(expected(SAMPLE)["done_marker"])
