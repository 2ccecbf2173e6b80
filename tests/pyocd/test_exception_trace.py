"""Non-halting capture's set-up, as far as it can run without a board.

QEMU has no SWO, ITM or trace clock, so no exception trace ever streams here. What runs: the
register set-up pyOCD's ITM/TPIU code and ours write through the bridge (read back from its
ITM, TPIU, DWT and DEMCR), the "no SWO" verdict for a probe without it, and the decoding of
DWT exception-trace packets by pyOCD's own SWO parser into irq_enter/irq_exit rows."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bridge_support import create_pyocd
from irqmon.backends import pyocd as pyocd_backend
from irqmon.backends.base import WatchAccess
from irqmon.backends.qemu import QemuTarget
from irqmon.cortexm import registers
from irqmon.schema import Event
from irqmon.targets import load_target

ITM_TCR, ITM_TER, ITM_LAR = 0xE0000E80, 0xE0000E00, 0xE0000FB0
TPIU_ACPR, TPIU_SPPR, TPIU_FFCR = 0xE0040010, 0xE00400F0, 0xE0040304
SYSTEM_CLOCK, SWO_CLOCK = 168_000_000, 2_000_000
TIM2_EXCEPTION = 16 + 28


@pytest.fixture
def trace(tim2_elf) -> Iterator[pyocd_backend.ExceptionTrace]:
    target = load_target("stm32f405")
    with QemuTarget(tim2_elf) as qemu:
        backend = create_pyocd(target, tim2_elf, qemu)
        backend.connect()
        yield pyocd_backend.ExceptionTrace(backend, target.exception_name)
        backend.disconnect(resume=True)


def test_a_probe_without_swo_falls_back_to_halting(trace):
    reason = trace.unavailable_reason()
    assert reason is not None and reason.endswith("has no SWO input")
    assert reason.startswith("probe qemu:127.0.0.1:")


def test_start_says_in_one_line_why_it_falls_back(trace):
    result = pyocd_backend.start_exception_trace(trace.backend, load_target("stm32f405"), SYSTEM_CLOCK, SWO_CLOCK)
    assert isinstance(result, str) and "\n" not in result
    assert result.startswith("no exception trace: probe qemu:") and result.endswith("capturing by halting the core")


def test_register_setup_for_exception_trace_and_pc_sampling(trace):
    trace.configure(SYSTEM_CLOCK, SWO_CLOCK, pc_sampling=True)
    core = trace.backend.target
    assert core.read32(registers.DEMCR) & registers.DEMCR_TRCENA
    control = core.read32(registers.DWT_CTRL)
    assert control >> 28 == 4, "NUMCOMP is read-only and kept"
    for bit in ("EXCTRCENA", "PCSAMPLENA", "CYCTAP", "CYCCNTENA"):
        assert control & getattr(registers, f"DWT_CTRL_{bit}"), bit
    assert (control >> 1) & 0xF == pyocd_backend.PC_SAMPLE_POSTPRESET
    assert core.read32(ITM_LAR) == 0xC5ACCE55  # pyOCD unlocks the ITM
    assert core.read32(ITM_TCR) == (1 << 16) | 0b1011  # TraceBusID 1, ITMENA, TSENA, TXENA
    assert core.read32(ITM_TER) == 0xFFFFFFFF
    assert core.read32(TPIU_SPPR) == 2  # SWO in NRZ (UART) mode
    assert core.read32(TPIU_FFCR) == 0  # formatter off
    assert core.read32(TPIU_ACPR) == SYSTEM_CLOCK // SWO_CLOCK - 1


def test_watchpoints_after_setup_keep_exception_trace_on(trace, tim2_symbols):
    """pyOCD's DWT init rewrites DWT_CTRL; it must not run again once trace is configured."""
    trace.configure(SYSTEM_CLOCK, SWO_CLOCK, pc_sampling=False)
    trace.backend.add_watchpoint(tim2_symbols["tim2_ticks"], 4, WatchAccess.WRITE)
    control = trace.backend.target.read32(registers.DWT_CTRL)
    assert control & registers.DWT_CTRL_EXCTRCENA
    assert not control & registers.DWT_CTRL_PCSAMPLENA


def exception_packet(number: int, action: int) -> bytes:
    """A DWT exception-trace packet (ARMv7-M ARM D4.3.2): discriminator 1, 2 payload bytes."""
    return bytes([0x0E, number & 0xFF, (number >> 8) | (action << 4)])


def timestamp_packet(ticks: int) -> bytes:
    """A one-byte local timestamp (ticks 1-6), which also flushes the events before it."""
    return bytes([ticks << 4])


def test_swo_exception_packets_become_irq_rows(trace):
    stream = (
        exception_packet(TIM2_EXCEPTION, 1) + timestamp_packet(3)
        + exception_packet(TIM2_EXCEPTION, 2) + timestamp_packet(5)
        + exception_packet(0, 3) + timestamp_packet(1)
        + bytes([0x17]) + (0x08000210).to_bytes(4, "little") + timestamp_packet(2)
    )  # fmt: skip
    trace.feed(stream[:4])
    trace.feed(stream[4:])  # packets split across reads decode the same
    rows = trace()
    assert [(r["event"], r["ipsr"], r["exception"], r["cycles"]) for r in rows] == [
        (Event.IRQ_ENTER, TIM2_EXCEPTION, "TIM2", 3),
        (Event.IRQ_EXIT, TIM2_EXCEPTION, "TIM2", 8),
    ]
    assert all(r["kind"] == "irq" and r["probe"] == "swo" and r["epoch"] > 0 for r in rows)
    assert [pc for _, pc in trace.pc_samples] == [0x08000210]
    assert trace() == []  # rows are handed over once
