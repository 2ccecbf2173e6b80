"""usb_cdc_malloc_isr (seed 000): the CDC class Init/DeInit reached from OTG_FS_IRQHandler call
malloc/free, and newlib's heap lock calls osMutexAcquire, all with IPSR = OTG_FS (16 + 67)."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from support import expected, run_under_gdb, sample_elf

SAMPLE = "usb_cdc_malloc_isr"
OTG_FS_EXCEPTION = 16 + 67
NVIC_IPR = 0xE000E400
IN_ISR = "($xpsr & 0x1ff) != 0"
SETUP_CHAIN = [
    "USBD_SetConfig",
    "USBD_StdDevReq",
    "USBD_LL_SetupStage",
    "HAL_PCD_SetupStageCallback",
    "HAL_PCD_IRQHandler",
    "OTG_FS_IRQHandler",
    "<signal handler called>",
]


@pytest.fixture(scope="module")
def run(built_samples):
    commands = [
        f'dprintf {name},"call {name} ipsr=%d\\n",$xpsr & 0x1ff'
        for name in ("malloc", "free", "osMutexAcquire", "osMutexRelease")
    ]
    commands += [
        f"break malloc if {IN_ISR}",
        "continue",
        'echo backtrace malloc\\n',
        "bt",
        "delete 5",
        f"break free if {IN_ISR}",
        "continue",
        'echo backtrace free\\n',
        "bt",
        "delete 6",
        "break sample_done",
        "continue",
        f'printf "otg_fs priority=%d\\n", *(unsigned char *){NVIC_IPR + 67:#x}',
    ]
    return run_under_gdb(sample_elf(SAMPLE), commands, timeout=30)


def calls(output: str) -> Counter:
    return Counter(re.findall(r"^call (\w+) ipsr=(\d+)", output, re.M))


def backtrace(output: str, title: str) -> list[str]:
    block = output.split(f"backtrace {title}\n", 1)[1]
    return re.findall(r"^#\d+\s+(?:0x[0-9a-f]+ in )?(<signal handler called>|\w+)", block.split("\n\n")[0], re.M)


def test_heap_is_used_from_thread_mode_and_from_the_usb_isr(run):
    seen = calls(run.gdb_output)
    isr = str(OTG_FS_EXCEPTION)
    assert seen[("malloc", "0")] >= 2 and seen[("free", "0")] >= 2, seen
    assert seen[("malloc", isr)] == 2, seen  # SET_CONFIGURATION 1, twice
    assert seen[("free", isr)] == 2, seen  # SET_CONFIGURATION 0, twice
    assert {ipsr for (_, ipsr) in seen} == {"0", isr}, seen


def test_the_heap_lock_calls_the_mutex_api_inside_the_isr(run):
    seen = calls(run.gdb_output)
    isr = str(OTG_FS_EXCEPTION)
    assert seen[("osMutexAcquire", isr)] >= 4, seen
    assert seen[("osMutexRelease", isr)] >= 4, seen


def test_malloc_backtrace_is_the_seeds_call_path(run):
    frames = backtrace(run.gdb_output, "malloc")
    assert frames[:3] == ["malloc", "USBD_malloc", "USBD_CDC_Init"], frames
    assert frames[3:4] == ["USBD_SetClassConfig"], frames
    assert frames[4 : 4 + len(SETUP_CHAIN)] == SETUP_CHAIN, frames


def test_free_backtrace_goes_through_class_deinit(run):
    frames = backtrace(run.gdb_output, "free")
    assert frames[:4] == ["free", "USBD_free", "USBD_CDC_DeInit", "USBD_ClrClassConfig"], frames
    assert frames[4 : 4 + len(SETUP_CHAIN)] == SETUP_CHAIN, frames


def test_otg_fs_priority_and_serial_markers(run):
    assert "otg_fs priority=96" in run.gdb_output, run.gdb_output  # 6 << 4
    exp = expected(SAMPLE)
    assert exp["bug_marker"] in run.serial
    assert run.serial.rstrip().endswith(exp["done_marker"])
