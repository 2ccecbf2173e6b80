"""The qemu-plugin backend: the recorder plugin inside QEMU records what gdb records, without a
halt; its findings match the samples'; bad set-up is one line; a QEMU killed mid-capture leaves
a trace that parses."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from irqmon.analysis import analyze
from irqmon.tracefile import load_trace
from support import (
    ICOUNT, bytes_written, capture_sample, comparable_rows, expected, run_under_gdb, sample_elf, sample_names, start_irqmon,
    stderr_once_ended,
)

# Samples whose execution under -icount does not depend on the halts. Where a timer races the
# code (hal_i2c_lock_deadlock's SysTick, printf_tasks_critical's tick and TIM3), gdb's captures see
# another execution: under `-icount ...,sleep=off` each gdb stop moves QEMU's virtual clock to the
# next timer's deadline (see test_each_gdb_stop_moves_the_virtual_clock_to_the_next_timer_deadline).
TIMING_FREE = ("clean", "exti_imr_rmw_race", "uart_queue_primask", "usb_cdc_malloc_isr")
STORM_SAMPLE = "hal_i2c_lock_deadlock"
STORM_LINE = re.compile(r"longest back-to-back run (\d+) over (\d+) core cycles")


def without_instruction_counts(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.drop(columns=["cycles"])


@pytest.mark.parametrize("sample", sample_names())
def test_plugin_matches_gdb_under_icount(built_samples, deterministic_qemu, tmp_path, sample):
    """Under -icount, on the timing-free samples: every row as gdb's (events, order, registers,
    values, call paths). On the samples whose timers race the code, the same findings (rule and
    fingerprint): their rows cannot be equal, as gdb's stops move QEMU's virtual clock by a timer
    period each (measured below; hal_i2c_lock_deadlock's first storm lasts 150 entries under gdb,
    20000 under the plugin and under QEMU alone), so the timer interrupts, and all they change,
    arrive at other instructions.

    Equal rows make equal findings only up to the `time` column, which is the host's clock in both
    backends (the plugin stamps a record when QEMU makes it): a host busy enough to stall QEMU
    during a handler once gave the plugin's capture of uart_queue_primask an interrupt storm."""
    traces = {backend: tmp_path / f"{backend}.csv" for backend in ("gdb", "qemu-plugin")}
    for backend, trace in traces.items():
        result = capture_sample(sample, trace, "--backend", backend)
        assert result.returncode == 0, result.stderr
    gdb, plugin = (load_trace(trace) for trace in traces.values())
    assert plugin.metadata["backend"] == "qemu-plugin"
    cycles = plugin.frame["cycles"].dropna()
    assert len(cycles) == len(plugin.frame[plugin.frame["event"] != "config"]) and cycles.is_monotonic_increasing
    if sample not in TIMING_FREE:
        found_by_gdb = sorted((finding.rule, finding.fingerprint) for finding in analyze(gdb))
        assert {rule for rule, _ in found_by_gdb} == set(expected(sample)["rules"])
        assert sorted((finding.rule, finding.fingerprint) for finding in analyze(plugin)) == found_by_gdb
        return
    (gdb_hits, gdb_irqs), (plugin_hits, plugin_irqs) = map(comparable_rows, traces.values())
    assert len(plugin_hits) > 5 and len(plugin_irqs) > 3
    pd.testing.assert_frame_equal(without_instruction_counts(plugin_hits), without_instruction_counts(gdb_hits))
    pd.testing.assert_frame_equal(without_instruction_counts(plugin_irqs), without_instruction_counts(gdb_irqs))


def test_each_gdb_stop_moves_the_virtual_clock_to_the_next_timer_deadline(built_samples, deterministic_qemu):
    """Why the rows of the timer samples differ under -icount: stopped at a breakpoint in a
    polling loop a few dozen instructions long (a SysTick period is 168000 cycles), the firmware's
    tick count has gone up by at least one at every stop. QEMU warps the virtual clock of an idle
    vCPU to the next timer deadline (`sleep=off`), and a vCPU stopped for gdb is idle before the
    VM's run state leaves 'running'."""
    stops = 12
    run = run_under_gdb(
        sample_elf(STORM_SAMPLE),
        ["break HAL_GetTick", "continue", *[command for _ in range(stops) for command in ("continue", 'printf "tick=%u\\n", uwTick')]],
    )  # fmt: skip
    ticks = [int(tick) for tick in re.findall(r"^tick=(\d+)$", run.gdb_output, re.MULTILINE)]
    assert len(ticks) == stops, run.gdb_output
    assert all(later > earlier for earlier, later in zip(ticks, ticks[1:])), ticks


def storm_rate(serial: str) -> float:
    """The first storm's entries per core cycle, both as the firmware counted them: guest time."""
    match = STORM_LINE.search(serial)
    assert match is not None, serial
    entries, cycles = map(int, match.groups())
    return entries / cycles


def test_the_storms_rate_in_guest_time_is_the_uninstrumented_rate(built_samples, tmp_path):
    """hal_i2c_lock_deadlock's first storm, entries per core cycle by the firmware's own SysTick
    count: the plugin's capture with `--icount 2` within 5% of QEMU running the firmware alone
    under the same -icount."""
    plain_serial = tmp_path / "plain.usart1.log"
    qemu = subprocess.Popen(
        [shutil.which("qemu-system-arm"), "-M", "netduinoplus2", "-nographic", "-monitor", "none",
         "-kernel", str(sample_elf(STORM_SAMPLE)), "-serial", f"file:{plain_serial}", *ICOUNT.split()],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while expected(STORM_SAMPLE)["done_marker"] not in (plain_serial.read_text() if plain_serial.exists() else ""):
            assert time.monotonic() < deadline, "the sample did not finish under QEMU alone"
            time.sleep(0.05)
    finally:
        qemu.kill()
        qemu.wait()
    trace = tmp_path / "plugin.csv"
    assert capture_sample(STORM_SAMPLE, trace, "--backend", "qemu-plugin", "--icount", "2").returncode == 0
    ratio = storm_rate(trace.with_suffix(".usart1.log").read_text()) / storm_rate(plain_serial.read_text())
    assert abs(ratio - 1) <= 0.05, ratio


@pytest.mark.parametrize("sample", sample_names())
def test_plugin_finds_each_samples_bug(built_samples, tmp_path, sample):
    trace = tmp_path / "trace.csv"
    result = capture_sample(sample, trace, "--backend", "qemu-plugin")
    assert result.returncode == 0, result.stderr
    assert "0 halts" in result.stdout or result.stdout == ""
    found = {finding.rule for finding in analyze(load_trace(trace))}
    assert found == set(expected(sample)["rules"])


def test_the_hal_storm_is_in_the_trace_back_to_back(built_samples, tmp_path):
    """hal_i2c_lock_deadlock's storm as the plugin sees it: I2C1_EV entered again right after
    it returns, with nothing of thread mode between, a hundred times and more."""
    trace = tmp_path / "trace.csv"
    assert capture_sample("hal_i2c_lock_deadlock", trace, "--backend", "qemu-plugin").returncode == 0
    frame = load_trace(trace).frame
    irq = frame[frame["event"].isin(["irq_enter", "irq_exit"]) | (frame["ipsr"] == 0)]
    entering = (irq["event"] == "irq_enter") & (irq["exception"] == "I2C1_EV")
    after_exit = (irq["event"].shift() == "irq_exit") & (irq["exception"].shift() == "I2C1_EV")
    run, longest = 0, 0
    for enter, follows in zip(entering, after_exit):
        if enter:
            run = run + 1 if follows else 1
            longest = max(longest, run)
    assert longest >= 100


def test_old_qemu_and_no_compiler_are_one_line_and_status_2(built_samples, tmp_path, monkeypatch):
    real_qemu = shutil.which("qemu-system-arm")
    assert real_qemu is not None
    old = tmp_path / "old" / "qemu-system-arm"
    old.parent.mkdir()
    old.write_text("#!/bin/sh\necho 'QEMU emulator version 8.2.1'\n")
    old.chmod(0o755)
    monkeypatch.setenv("PATH", f"{old.parent}{os.pathsep}{os.environ['PATH']}")
    result = capture_sample("clean", tmp_path / "t.csv", "--backend", "qemu-plugin")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "needs QEMU >= 10.0 (found 8.2)" in result.stderr

    only_qemu = tmp_path / "only-qemu"
    only_qemu.mkdir()
    (only_qemu / "qemu-system-arm").symlink_to(real_qemu)
    monkeypatch.setenv("PATH", str(only_qemu))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("CC", "no-such-compiler")
    result = capture_sample("clean", tmp_path / "t.csv", "--backend", "qemu-plugin")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "recorder plugin is not built and there is no C compiler" in result.stderr


def recording_a_while(trace: Path) -> subprocess.Popen:
    """irqmon recording printf_tasks_critical inside QEMU for up to a minute, once its trace has
    its first 200 kB."""
    process = start_irqmon(
        "attach", "--target", "stm32f405", "--qemu", str(sample_elf("printf_tasks_critical")),
        "--backend", "qemu-plugin", "--duration", "60", "-q", "-o", str(trace),
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and bytes_written(trace) < 200_000:
        time.sleep(0.2)
    return process


def test_qemu_killed_mid_capture_keeps_every_record_so_far(built_samples, tmp_path):
    trace = tmp_path / "trace.csv"
    process = recording_a_while(trace)
    qemu = subprocess.run(["pgrep", "-P", str(process.pid), "qemu-system-arm"], capture_output=True, text=True).stdout.split()
    assert qemu, "QEMU is not running under irqmon"
    os.kill(int(qemu[0]), signal.SIGKILL)
    stderr = stderr_once_ended(process)
    assert process.returncode != 0 and "capture cut off" in stderr, stderr
    kept = load_trace(trace).frame
    assert len(kept) > 500 and {"mask", "irq_enter"} <= set(kept["event"])


def test_time_leaves_out_the_stall_while_irqmon_could_not_read(built_samples, tmp_path):
    """irqmon stopped for two seconds mid-capture (SIGSTOP): the plugin fills the pipe and QEMU
    waits in it, as the core waits at a halt. The stamps leave that wait out, as the halting
    backends leave out their halts, so no gap between rows comes near it (a tick is 1 ms)."""
    trace, stopped_for = tmp_path / "trace.csv", 2.0
    process = recording_a_while(trace)
    process.send_signal(signal.SIGSTOP)
    time.sleep(stopped_for)
    process.send_signal(signal.SIGCONT)
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    stderr_once_ended(process)
    times = load_trace(trace).frame["time"].dropna().to_numpy()
    assert len(times) > 1000
    assert (times[1:] - times[:-1]).max() < stopped_for / 4

def test_parquet_straight_from_the_capture_holds_the_csv_rows(built_samples, deterministic_qemu, tmp_path):
    """`-o trace.parquet`: written by the capture itself, the same rows (instruction counts
    included) and metadata as the CSV of the same run under -icount, and analysed alike."""
    traces = {suffix: tmp_path / f"trace.{suffix}" for suffix in ("csv", "parquet")}
    for trace in traces.values():
        result = capture_sample("usb_cdc_malloc_isr", trace, "--backend", "qemu-plugin")
        assert result.returncode == 0, result.stderr
    assert traces["parquet"].read_bytes()[:4] == b"PAR1"
    csv_trace, parquet_trace = (load_trace(trace) for trace in traces.values())
    columns = [c for c in csv_trace.frame.columns if c != "time"]
    pd.testing.assert_frame_equal(parquet_trace.frame[columns], csv_trace.frame[columns])
    assert parquet_trace.metadata["backend"] == csv_trace.metadata["backend"] == "qemu-plugin"
    assert parquet_trace.metadata["build_id"] == csv_trace.metadata["build_id"]
    assert [f.fingerprint for f in analyze(parquet_trace)] == [f.fingerprint for f in analyze(csv_trace)]
