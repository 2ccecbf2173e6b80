"""Helpers the tests share: the sample list, building them, and running one under gdb on QEMU."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from irqmon.backends.qemu import QemuTarget
from irqmon.tracefile import load_trace

ROOT = Path(__file__).resolve().parents[1]
SARIF_SCHEMA_FILE = ROOT / "tests" / "data" / "sarif-schema-2.1.0.json"  # OASIS, vendored
SAMPLES_DIR = ROOT / "firmware_samples"
BUILD_DIR = SAMPLES_DIR / "build"
PLUGIN_DIR = ROOT / "tests" / "backend_plugin"  # capture backends of the tests' own
GDB = "gdb-multiarch"
# QEMU counting virtual time in instructions (stopped while halted): two captures of one sample
# see the same execution (see the `deterministic_qemu` fixture).
ICOUNT = "-icount shift=2,sleep=off"
IRQ_EVENTS = ("irq_enter", "irq_exit")
# The host clock, the merge position of IRQ rows that follows it, and the halts (their time on the
# host; their number: how each backend steps off a breakpoint).
HOST_COLUMNS = ("seq", "time", "halted", "halts")


def sample_names() -> list[str]:
    """Every sample: a directory of firmware_samples/ with an expected.toml."""
    return sorted(p.parent.name for p in SAMPLES_DIR.glob("*/expected.toml"))


def expected(sample: str) -> dict:
    return tomllib.loads((SAMPLES_DIR / sample / "expected.toml").read_text())


def build_samples(board: str = "netduinoplus2") -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "-C", str(SAMPLES_DIR), f"BOARD={board}", "-j2"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def register_backends(site: Path, distribution: str, entries: dict[str, str]) -> str:
    """Backends of `tests/backend_plugin/` registered as a third party would: a distribution
    of their own under `site` whose metadata declares `irqmon.backends` entry points (name ->
    module:attribute). The PYTHONPATH that lets irqmon subprocesses find them."""
    dist = site / f"{distribution.replace('-', '_')}-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 1.0\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entries.items())
    (dist / "entry_points.txt").write_text(f"[irqmon.backends]\n{lines}")
    path = os.pathsep.join([str(site), str(PLUGIN_DIR), os.environ.get("PYTHONPATH", "")])
    return path.rstrip(os.pathsep)


def irqmon(*args: str, timeout: float = 300.0) -> subprocess.CompletedProcess:
    """Run the irqmon command line as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "irqmon", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def start_irqmon(*args: str) -> subprocess.Popen:
    """The irqmon command line in the background, for a test that signals it or its target. It
    takes SIGINT as a terminal's Ctrl-C, even where the tests run with SIGINT ignored (a shell
    script's background job)."""
    return subprocess.Popen(
        [sys.executable, "-m", "irqmon", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=os.environ | {"PYTHONFAULTHANDLER": "1"},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip


def bytes_written(path: Path) -> int:
    """The size of a capture's output `path`, 0 while it does not exist. irqmon's check that `-o`
    can be written creates and removes the file before the capture starts, so it can vanish
    between two looks."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def rows_written(path: Path) -> int:
    """The rows (lines that are not `#` metadata) in a capture's output `path` so far, 0 while it
    does not exist (see `bytes_written`)."""
    try:
        with path.open() as lines:
            return sum(1 for line in lines if not line.startswith("#"))
    except FileNotFoundError:
        return 0


def wait_for_rows(output: Path, rows: int, timeout: float = 60) -> None:
    """Wait until a capture has written more than `rows` rows to `output`."""
    deadline = time.monotonic() + timeout
    while rows_written(output) <= rows:
        assert time.monotonic() < deadline, f"no {rows} rows in {output}"
        time.sleep(0.1)


def text_written(path: Path) -> str:
    """The text of a capture's output `path` so far, empty while it does not exist (see `bytes_written`)."""
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def stderr_once_ended(process: subprocess.Popen, timeout: float = 60) -> str:
    """The stderr of a background irqmon once it has ended. One still running after `timeout`
    is aborted and the failure shows where it was stuck (Python's fault handler)."""
    try:
        return process.communicate(timeout=timeout)[1]
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)
        stderr = process.communicate()[1]
        raise AssertionError(f"irqmon still running after {timeout:.0f} s:\n{stderr[-4000:]}") from None


def capture_sample(sample: str, output: Path, *extra: str) -> subprocess.CompletedProcess:
    """`irqmon attach` on a sample under QEMU, every probe, until it finishes."""
    return irqmon(
        "attach", "--target", "stm32f405", "--qemu", str(sample_elf(sample)), "--unlimited",
        "--until", "sample_done", "-q", "-o", str(output), *extra,
    )  # fmt: skip


def capture_reproducing(sample: str, output: Path, *extra: str, attempts: int = 3) -> subprocess.CompletedProcess:
    """`capture_sample`, repeated while the firmware reports that its bug did not happen in the
    run: where a sample's timers race the halts, a run can miss the interleaving it reproduces."""
    marker = expected(sample).get("bug_marker")
    for _ in range(attempts):
        result = capture_sample(sample, output, *extra)
        serial = output.with_suffix(".usart1.log")
        if result.returncode != 0 or marker is None or (serial.exists() and marker in serial.read_text()):
            break
    return result


def comparable_rows(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The halting rows and the IRQ rows of a trace, in order, without the host-clock columns.

    IRQ rows after the last halting row are left out: they are drained after the capture let
    the target run again, so how many there are depends on the host."""
    frame = load_trace(path).frame
    # Coverage rows (what was armed when) are no halts, and a plugin's trace has none.
    frame = frame[frame["event"] != "coverage"]
    irq = frame["event"].isin(IRQ_EVENTS)
    last_halt = frame.index[~irq].max()
    frame, irq = frame.loc[:last_halt], irq.loc[:last_halt]
    frame, irq = frame[frame["event"] != "config"], irq[frame["event"] != "config"]  # read at the end
    columns = [c for c in frame.columns if c not in HOST_COLUMNS]
    return frame.loc[~irq, columns].reset_index(drop=True), frame.loc[irq, columns].reset_index(drop=True)


def sample_elf(sample: str) -> Path:
    return BUILD_DIR / f"{sample}.elf"


@dataclass
class GdbRun:
    gdb_output: str
    serial: str
    returncode: int


def run_under_gdb(elf: Path, commands: list[str], timeout: float = 120.0) -> GdbRun:
    """Boot `elf` on QEMU halted at reset, run gdb-multiarch in batch mode with `commands`.

    The commands run after `target remote`; QEMU is stopped afterwards whatever gdb did.
    """
    with QemuTarget(elf) as qemu:
        args = [GDB, "-nx", "-batch", "-ex", "set pagination off", "-ex", "set confirm off",
                "-ex", f"file {elf}", "-ex", f"target remote {qemu.gdb_address}"]  # fmt: skip
        for command in commands:
            args += ["-ex", command]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
        return GdbRun(proc.stdout + proc.stderr, qemu.serial_output(), proc.returncode)
