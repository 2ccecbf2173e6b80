"""QEMU and gdb started by irqmon never outlive it: SIGKILL, SIGHUP, a --duration that is not a
number; and bad output paths refused before anything starts."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from support import bytes_written, irqmon, sample_elf, start_irqmon, stderr_once_ended

from irqmon.tracefile import load_trace

SAMPLE = "printf_tasks_critical"  # runs for seconds under capture


def children_of(pid: int) -> dict[int, str]:
    """Every live process below `pid`, by pid, with its command name."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            name = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found[int(entry.name)] = name
    for child in list(found):
        found |= children_of(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_gone(pids: list[int], timeout: float = 10) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


def start_capture(tmp_path: Path, backend: str) -> tuple[subprocess.Popen, dict[int, str], Path]:
    """irqmon capturing SAMPLE on QEMU through `backend`, once its trace has rows; its children."""
    output = tmp_path / "trace.csv"
    process = start_irqmon("attach", "--target", "stm32f405", "--qemu", str(sample_elf(SAMPLE)), "--backend", backend,
                           "--probes", "critical_sections", "-q", "-o", str(output))  # fmt: skip
    deadline = time.monotonic() + 60
    while bytes_written(output) <= 2000:
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "no rows in 60 s"
        time.sleep(0.05)
    return process, children_of(process.pid), output


@pytest.mark.parametrize("backend", ["gdb", "rsp"])
def test_sigkill_of_irqmon_takes_qemu_and_gdb_with_it(built_samples, tmp_path, backend):
    process, children, output = start_capture(tmp_path, backend)
    names = set(children.values())
    assert any(name.startswith("qemu-system") for name in names), names
    if backend == "gdb":
        assert "gdb-multiarch" in names, names
    for pid in children:  # no core file from a child killed mid-packet
        assert re.search(r"Max core file size\s+0\s+0", Path(f"/proc/{pid}/limits").read_text())
    scratch = list(Path(tempfile.gettempdir()).glob(f"irqmon-{process.pid}-*"))
    assert len(scratch) == 1, "the capture's scratch folder is named for its process"
    process.kill()
    process.wait()
    assert wait_gone(list(children)) == [], f"outlived irqmon: {children}"
    assert load_trace(output).rows > 0  # every whole row written stays readable
    # The next irqmon removes what the killed one could not.
    irqmon("attach", "--target", "stm32f405", "--qemu", str(sample_elf(SAMPLE)), "--probes", "newlib_heap",
           "--duration", "0.2", "-q", "-o", str(tmp_path / "next.csv"), timeout=60)  # fmt: skip
    assert not scratch[0].exists()


def test_sighup_ends_the_capture_in_order(built_samples, tmp_path):
    process, children, output = start_capture(tmp_path, "gdb")
    process.send_signal(signal.SIGHUP)
    stderr = stderr_once_ended(process)
    assert process.returncode == 0 and "SIGHUP" in stderr and "Traceback" not in stderr, stderr
    assert wait_gone(list(children)) == []
    assert load_trace(output).rows > 0


@pytest.mark.parametrize("duration", ["nan", "inf", "-1", "0"])
def test_duration_must_be_a_positive_number(built_samples, tmp_path, duration):
    result = irqmon("attach", "--target", "stm32f405", "--qemu", str(sample_elf(SAMPLE)), "--duration", duration,
                    "-o", str(tmp_path / "t.csv"), timeout=30)  # fmt: skip
    assert result.returncode == 2 and "--duration must be a positive number" in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1 and not (tmp_path / "t.csv").exists()


@pytest.mark.parametrize("output", ["{tmp}", "/proc/irqmon/trace.csv", "{file}/trace.csv"])
def test_output_that_cannot_be_written_is_refused_before_qemu_starts(built_samples, tmp_path, output):
    (tmp_path / "afile").write_text("x")
    path = output.format(tmp=tmp_path, file=tmp_path / "afile")
    before = set(children_of(os.getpid()))
    result = irqmon("attach", "--target", "stm32f405", "--qemu", str(sample_elf(SAMPLE)), "-o", path, timeout=30)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert "-o" in result.stderr and path in result.stderr
    assert set(children_of(os.getpid())) <= before
