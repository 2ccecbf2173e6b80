"""interrupt-storm on the time the core ran, on real captures: hal_i2c_lock_deadlock's storms are
found through every backend; a 1 kHz SysTick whose handler the gdb backend halts in again and
again (so the tick is due again whenever the core resumes) is not one; the UART's drain is not one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from support import capture_reproducing, irqmon, sample_elf

from irqmon.analysis import AnalysisConfig, analyze
from irqmon.analysis.context import Context
from irqmon.analysis.rules.interrupt_storm import configured_tick_period
from irqmon.cortexm.exceptions import SYSTICK
from irqmon.tracefile import load_trace

HALTING_BACKENDS = ("gdb", "rsp")


def storms(trace: Path, config: AnalysisConfig | None = None) -> list:
    return analyze(load_trace(trace), config, rules=["interrupt-storm"])


@pytest.mark.parametrize("backend", ("qemu-plugin", *HALTING_BACKENDS))
def test_hal_i2c_storm_found_under_every_backend(built_samples, tmp_path, backend):
    trace = tmp_path / "trace.csv"
    result = capture_reproducing("hal_i2c_lock_deadlock", trace, "--backend", backend)
    assert result.returncode == 0, result.stderr
    found = storms(trace)
    assert [f.exception for f in found] == ["I2C1_EV"], [f.title for f in found]
    evidence = found[0].evidence
    assert evidence["longest_run"] >= AnalysisConfig().storm_min_entries
    if backend in HALTING_BACKENDS:  # the halts the probes made inside the storms, reported
        assert evidence["halts"] > 0 and evidence["halted_s"] > 0, evidence
    else:
        assert evidence["halts"] is None and evidence["halted_s"] is None


@pytest.fixture(scope="module")
def halted_tick_trace(built_samples, tmp_path_factory) -> Path:
    """rtos_clean through gdb with its tick handler's variables watched: each tick halts the
    core seven times, long enough on the host for the next tick to be due at its exit."""
    trace = tmp_path_factory.mktemp("tick") / "trace.csv"
    result = irqmon(
        "attach", "--target", "stm32f405", "--qemu", str(sample_elf("rtos_clean")), "--backend", "gdb",
        "--unlimited", "--duration", "4", "--watch", "xTickCount", "--watch", "task_count", "-q", "-o", str(trace),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return trace


def test_a_halted_1khz_systick_is_not_a_storm(halted_tick_trace):
    trace = load_trace(halted_tick_trace)
    frame = trace.frame
    halts_in_tick = frame[(frame["ipsr"] == SYSTICK) & ~frame["event"].isin(["irq_enter", "irq_exit"])]
    assert len(halts_in_tick) >= 100
    assert analyze(trace, rules=["interrupt-storm"]) == []
    period = configured_tick_period(Context(frame, trace.metadata, AnalysisConfig()))
    assert period.seconds == pytest.approx(1e-3) and period.source == "LOAD 167999 at the 168 MHz core clock"


def test_the_tick_runs_at_its_period_once_halted_time_is_left_out(halted_tick_trace):
    """On the host's clock the ticks come tens of milliseconds apart (the halts); on the time the
    core ran they come about its 1 ms period apart: QEMU's clock stops while gdb holds it."""
    frame = load_trace(halted_tick_trace).frame
    entries = frame[(frame["event"] == "irq_enter") & (frame["ipsr"] == SYSTICK)]
    assert len(entries) >= 20 and entries["halted"].notna().all()
    host_gaps = np.diff(entries["time"].to_numpy())
    run_gaps = np.diff((entries["time"] - entries["halted"]).to_numpy())
    assert 0.9e-3 < np.median(run_gaps) < 20e-3, np.median(run_gaps)  # the halts stretch it a little (QEMU restarting)
    assert np.median(host_gaps) > 5 * np.median(run_gaps)


def test_uart_drain_under_gdb_is_not_a_storm(built_samples, tmp_path):
    """QEMU drains USART1's TX as a burst of tail-chained entries: no storm."""
    trace = tmp_path / "trace.csv"
    result = capture_reproducing("uart_queue_primask", trace, "--backend", "gdb")
    assert result.returncode == 0, result.stderr
    frame = load_trace(trace).frame
    assert ((frame["event"] == "irq_enter") & (frame["exception"] == "USART1")).sum() > 50
    assert storms(trace) == []
