"""`--backend rsp` (the GDB remote protocol spoken directly) writes the same rows as `--backend gdb`.

QEMU normally delivers interrupts by the host clock, so two captures of one sample interrupt the
code at different instructions. Here QEMU runs with `-icount` (virtual time counted in
instructions, stopped while halted) through a wrapper first in PATH: both captures then see the
same execution and every row must match, column by column.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from support import (
    ROOT,
    capture_sample,
    comparable_rows,
    expected,
    sample_elf,
    sample_names,
    start_irqmon,
    stderr_once_ended,
    wait_for_rows,
)

from irqmon.backends.qemu import QemuTarget
from irqmon.backends.rsp_direct import RspBackend
from irqmon.cortexm.elf import ElfImage
from irqmon.tracefile import load_trace

sys.path.insert(0, str(ROOT / "benchmarks"))

from common import bench_firmware  # noqa: E402

# Every capture is cut at the same event count (both backends see the same events up to there):
# under -icount a sample whose timer outruns its thread would not end otherwise.
MAX_EVENTS = "1500"
LONG_SAMPLE = "printf_tasks_critical"  # runs for seconds under capture


def without_inline_entry_of_accesses_into_probes(halts: pd.DataFrame) -> pd.DataFrame:
    """The rows with the call path of an access that ran up to a probed instruction blanked.

    After the access the core stops on that instruction's breakpoint; where it is the first of
    an inlined function, gdb shows that function as entered or not depending on whether it
    reports the watchpoint and the breakpoint as one stop or as two (it does both, from run to
    run). Every other column of those rows is still compared."""
    following = halts.shift(-1)
    next_site = following["address"].where(following["event"] == "mask", following["pc"])
    into_probe = (halts["event"] == "access") & (following["event"] != "access") & (next_site - halts["pc"]).isin([2, 4])
    halts = halts.copy()
    halts.loc[into_probe.fillna(False).astype(bool), "callpath"] = pd.NA
    return halts


@pytest.mark.parametrize("sample", sample_names())
def test_rsp_rows_equal_gdb_rows(sample, built_samples, deterministic_qemu, tmp_path):
    traces = {}
    for backend in ("gdb", "rsp"):
        traces[backend] = tmp_path / f"{backend}.csv"
        result = capture_sample(sample, traces[backend], "--backend", backend, "--max-events", MAX_EVENTS)
        assert result.returncode == 0, result.stderr
    gdb_halts, gdb_irqs = comparable_rows(traces["gdb"])
    rsp_halts, rsp_irqs = comparable_rows(traces["rsp"])
    gdb_halts, rsp_halts = without_inline_entry_of_accesses_into_probes(gdb_halts), without_inline_entry_of_accesses_into_probes(rsp_halts)
    assert load_trace(traces["rsp"]).metadata["backend"] == "rsp"
    # A capture cut by --max-events ends a few rows earlier on the side with more rows before
    # it: the rows are compared up to where the shorter one ends.
    for gdb_rows, rsp_rows in ((gdb_halts, rsp_halts), (gdb_irqs, rsp_irqs)):
        common = min(len(gdb_rows), len(rsp_rows))
        assert common >= 0.95 * max(len(gdb_rows), len(rsp_rows)) and common > 0
        pd.testing.assert_frame_equal(rsp_rows.iloc[:common], gdb_rows.iloc[:common])


def attach_rsp(qemu: QemuTarget, output: Path) -> subprocess.Popen:
    """`irqmon attach --backend rsp` on a QEMU that is already running the long sample."""
    return start_irqmon(
        "attach", "--target", "stm32f405", "--gdb-remote", qemu.gdb_address, "--elf", str(sample_elf(LONG_SAMPLE)),
        "--backend", "rsp", "--probes", "critical_sections", "-q", "-o", str(output),
    )  # fmt: skip


@pytest.mark.parametrize("signum, ended_by", [(signal.SIGINT, "Ctrl-C"), (signal.SIGTERM, "SIGTERM")])
def test_rsp_ctrl_c_keeps_the_trace_and_leaves_the_target_running(built_samples, tmp_path, signum, ended_by):
    output = tmp_path / "c.csv"
    with QemuTarget(sample_elf(LONG_SAMPLE), workdir=tmp_path / "q") as qemu:
        process = attach_rsp(qemu, output)
        wait_for_rows(output, 20)
        process.send_signal(signum)
        stderr = stderr_once_ended(process)
        assert process.returncode == 0, stderr
        assert f"ended by {ended_by}" in stderr and "Traceback" not in stderr
        rows = load_trace(output).frame
        assert len(rows) >= 20
        # Through --gdb-remote the target counts as hardware: CYCCNT is started and read at every
        # halt, as --backend gdb does (QEMU has no DWT: it reads 0 there). Coverage rows are no halts.
        assert rows.loc[rows["event"] != "coverage", "cycles"].notna().all()
        # Every point removed and the target resumed: the firmware runs on to its end by itself.
        deadline = time.monotonic() + 30
        while expected(LONG_SAMPLE)["done_marker"] not in qemu.serial_output():
            assert time.monotonic() < deadline, "the target was left halted"
            time.sleep(0.1)


def test_rsp_qemu_dying_mid_capture_keeps_every_event(built_samples, tmp_path):
    output = tmp_path / "dead.csv"
    with QemuTarget(sample_elf(LONG_SAMPLE), workdir=tmp_path / "q") as qemu:
        process = attach_rsp(qemu, output)
        wait_for_rows(output, 20)
        assert qemu.process is not None
        qemu.process.kill()
        stderr = stderr_once_ended(process)
    assert process.returncode == 1
    lines = [line for line in stderr.splitlines() if line.startswith("irqmon:")]
    assert len(lines) == 1 and "cut off" in lines[0] and "Traceback" not in stderr
    assert len(load_trace(output).frame) >= 20


def test_the_step_sent_with_the_register_reads_ends_even_on_a_wfi(tmp_path):
    """Where every breakpoint allows it, the step off a breakpoint goes out in the same write as
    the register reads, before the pc is known. On the `wfi` the bench firmware ends on, that
    step waits for an interrupt a step never takes: it is interrupted, and the session goes on."""
    hits = 20
    elf = bench_firmware(hits)
    image = ElfImage(elf)
    handler, done = (image.symbols[name].address & ~1 for name in ("EXTI2_IRQHandler", "sample_done"))
    writes: list[bytes] = []
    with QemuTarget(elf, workdir=tmp_path / "q") as qemu:
        backend = RspBackend(image, qemu.gdb_address, timeout=3.0)  # a step left hanging fails at once
        backend.connect()
        send = backend.client._send
        backend.client._send = lambda data: (writes.append(data), send(data))[1]
        try:
            backend.add_breakpoint(handler)
            backend.add_breakpoint(done)
            stops = []
            while not stops or stops[-1].pc != done:
                backend.resume()
                stops.append(backend.wait_stop(5))
            counted = int.from_bytes(backend.read_memory(image.symbols["bench_isr_count"].address, 4), "little")
        finally:
            backend.disconnect(resume=True)
    assert [stop.pc for stop in stops] == [handler] * hits + [done]
    assert counted == hits
    steps_ahead = [w for w in writes if w.startswith(b"$g#") and w.endswith(b"$s#73")]
    assert len(steps_ahead) >= hits - 1  # all but the first stop, where the stub's stepping is found out
