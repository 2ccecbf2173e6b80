"""irqmon.cortexm.unwind against gdb's `bt`: the same stop of firmware on QEMU, unwound by both.

The stop is reached with `irqmon.rsp` (a hardware breakpoint, hit N times); the unwinder reads
the stopped core through the same connection; then gdb attaches to the same QEMU and prints `bt`."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from bridge_support import HERE, build_firmware, symbols
from irqmon.backends.qemu import QemuTarget
from irqmon.cortexm.elf import ElfImage
from irqmon.cortexm.exceptions import is_exc_return
from irqmon.cortexm.target_description import stub_registers
from irqmon.cortexm.unwind import Unwinder
from irqmon.rsp import PointKind, RspClient
from irqmon.schema import EXCEPTION_FRAME, UNKNOWN_FUNCTION
from support import sample_elf

GDB_FRAME = re.compile(r"^#\d+\s+(?:0x[0-9a-f]+ in )?(<signal handler called>|[\w.]+|\?\?)", re.M)

STOPS = [
    ("exti_imr_rmw_race", "EXTI1_IRQHandler", 1),
    ("usb_cdc_malloc_isr", "malloc", 1),
    ("usb_cdc_malloc_isr", "malloc", 3),
    ("usb_cdc_malloc_isr", "__malloc_lock", 2),
    ("printf_tasks_critical", "TIM4_IRQHandler", 1),
    ("printf_tasks_critical", "TIM3_IRQHandler", 2),
    ("printf_tasks_critical", "_printf_i", 3),
    ("hal_i2c_lock_deadlock", "HAL_I2C_EV_IRQHandler", 1),
    ("uart_queue_primask", "USART1_IRQHandler", 1),
]


def gdb_backtrace(elf: Path, qemu: QemuTarget) -> list[str]:
    """Function names of gdb's `bt` at the QEMU machine's current stop."""
    out = subprocess.run(
        ["gdb-multiarch", "-nx", "-batch", "-ex", f"file {elf}", "-ex", f"target remote {qemu.gdb_address}",
         "-ex", "bt 32"],
        capture_output=True, text=True, timeout=60, check=False,
    ).stdout  # fmt: skip
    return [EXCEPTION_FRAME if name == "<signal handler called>" else name for name in GDB_FRAME.findall(out)]


def stop_at(client: RspClient, address: int, hits: int) -> None:
    client.insert_point(PointKind.HARDWARE, address, 2)
    for _ in range(hits):
        client.cont()
        stop = client.wait_stop(30.0)
        assert stop is not None and stop.signal == 5, "the breakpoint was not hit"
    client.remove_point(PointKind.HARDWARE, address, 2)


def unwind_here(client: RspClient, unwinder: Unwinder) -> list[str]:
    registers = stub_registers(client.read_feature)
    frames = unwinder.unwind(
        lambda name: int.from_bytes(client.read_register(registers[name].number), "little"), client.read_memory, 32
    )
    assert all(is_exc_return(f.pc) for f in frames if f.function == EXCEPTION_FRAME)
    return [f.function for f in frames]


def compare_with_gdb(elf: Path, function: str, hits: int) -> tuple[list[str], list[str]]:
    unwinder = Unwinder(ElfImage(elf))
    with QemuTarget(elf) as qemu:
        client = RspClient("127.0.0.1", qemu.port)
        client.handshake()
        stop_at(client, symbols(elf)[function], hits)
        ours = unwind_here(client, unwinder)
        client.close()
        return ours, gdb_backtrace(elf, qemu)


@pytest.mark.parametrize(("sample", "function", "hits"), STOPS, ids=[f"{s}-{f}-{n}" for s, f, n in STOPS])
def test_backtrace_matches_gdb_on_samples(built_samples: None, sample: str, function: str, hits: int) -> None:
    ours, gdb = compare_with_gdb(sample_elf(sample), function, hits)
    assert ours[0] == function
    assert ours == gdb


def test_backtrace_through_an_isr_matches_gdb(tim2_elf: Path) -> None:
    ours, gdb = compare_with_gdb(tim2_elf, "tim2_record", 2)
    assert ours == ["__get_IPSR", "tim2_record", "TIM2_IRQHandler", EXCEPTION_FRAME, "main"] == gdb


def test_fpu_frame_on_the_process_stack_matches_gdb(tmp_path: Path) -> None:
    """An IRQ taken while thread mode runs on PSP with the FPU in use: a 26-word frame on PSP."""
    elf = build_firmware(HERE / "firmware" / "psp_fpu.c", tmp_path)
    unwinder = Unwinder(ElfImage(elf))
    with QemuTarget(elf) as qemu:
        client = RspClient("127.0.0.1", qemu.port)
        client.handshake()
        stop_at(client, symbols(elf)["tim2_count"], 2)
        registers = stub_registers(client.read_feature)
        frames = unwinder.unwind(
            lambda name: int.from_bytes(client.read_register(registers[name].number), "little"), client.read_memory, 32
        )
        client.close()
        gdb = gdb_backtrace(elf, qemu)
    assert [f.function for f in frames] == gdb
    assert [f.function for f in frames][-3:] == [EXCEPTION_FRAME, "spin_with_fpu", "main"]
    assert next(f.pc for f in frames if f.function == EXCEPTION_FRAME) == 0xFFFFFFED


def test_function_names_and_unknown_addresses(tim2_elf: Path, tim2_symbols: dict[str, int]) -> None:
    unwinder = Unwinder(ElfImage(tim2_elf))
    assert unwinder.function_at(tim2_symbols["main"]) == "main"
    assert unwinder.function_at(tim2_symbols["main"] + 2) == "main"
    assert unwinder.function_at(0x1FFF0000) == UNKNOWN_FUNCTION == "??"
