"""`--probe rsp` (the GDB remote protocol spoken directly) writes the same rows as `--probe gdb`.

QEMU normally delivers interrupts by the host clock, so two captures of one sample interrupt the
code at different instructions. Here QEMU runs with `-icount` (virtual time counted in
instructions, stopped while halted) through a wrapper first in PATH: both captures then see the
same execution and every row must match, column by column.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
from support import capture_sample, sample_names

from irqmon.tracefile import load_trace

ICOUNT = "-icount shift=2,sleep=off"
# Under -icount the clean sample's TIM2 ticks outrun its thread and it never ends: every capture
# is cut at the same event count instead (both backends see the same events up to there).
MAX_EVENTS = "1500"
IRQ_EVENTS = ("irq_enter", "irq_exit")
HOST_COLUMNS = ("seq", "time")  # host clock, and the merge position of IRQ rows that follows it


@pytest.fixture
def deterministic_qemu(tmp_path, monkeypatch) -> None:
    """Put a `qemu-system-arm` that adds `-icount` first in PATH for the irqmon subprocesses."""
    real = shutil.which("qemu-system-arm")
    assert real is not None
    wrapper = tmp_path / "bin" / "qemu-system-arm"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nexec {real} "$@" {ICOUNT}\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper.parent}{os.pathsep}{os.environ['PATH']}")


def rows(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The halting rows and the IRQ rows of a trace, in order, without the host-clock columns.

    IRQ rows after the last halting row are left out: they are drained after the capture let
    the target run again, so how many there are depends on the host."""
    frame = load_trace(path).frame
    irq = frame["event"].isin(IRQ_EVENTS)
    last_halt = frame.index[~irq].max()
    frame, irq = frame.loc[:last_halt], irq.loc[:last_halt]
    frame, irq = frame[frame["event"] != "config"], irq[frame["event"] != "config"]  # read at the end
    columns = [c for c in frame.columns if c not in HOST_COLUMNS]
    return frame.loc[~irq, columns].reset_index(drop=True), frame.loc[irq, columns].reset_index(drop=True)


@pytest.mark.parametrize("sample", sample_names())
def test_rsp_rows_equal_gdb_rows(sample, built_samples, deterministic_qemu, tmp_path):
    traces = {}
    for probe in ("gdb", "rsp"):
        traces[probe] = tmp_path / f"{probe}.csv"
        result = capture_sample(sample, traces[probe], "--probe", probe, "--max-events", MAX_EVENTS)
        assert result.returncode == 0, result.stderr
    gdb_halts, gdb_irqs = rows(traces["gdb"])
    rsp_halts, rsp_irqs = rows(traces["rsp"])
    assert load_trace(traces["rsp"]).metadata["backend"] == "rsp"
    # A capture cut by --max-events ends a few rows earlier on the side with more rows before
    # it: the rows are compared up to where the shorter one ends.
    for gdb_rows, rsp_rows in ((gdb_halts, rsp_halts), (gdb_irqs, rsp_irqs)):
        common = min(len(gdb_rows), len(rsp_rows))
        assert common >= 0.95 * max(len(gdb_rows), len(rsp_rows)) and common > 0
        pd.testing.assert_frame_equal(rsp_rows.iloc[:common], gdb_rows.iloc[:common])
