"""gdb killed (kill -9) in the middle of a `--gdb-remote` capture: irqmon removes the points gdb
had set over a connection of its own and leaves the target running, as a board's user needs.
Checked through pyOCD's gdbserver (kept running with --persist) in front of the QEMU bridge,
whose FPB and DWT registers say what is still armed."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from gdbserver_support import pyocd_gdbserver
from support import bytes_written, expected, sample_elf, start_irqmon, stderr_once_ended

from irqmon.cortexm.registers import DWT_COMP0, DWT_COMPARATOR_STRIDE, DWT_FUNCTION_OFFSET, FP_COMP0
from irqmon.rsp import RspClient
from irqmon.tracefile import load_trace

SAMPLE = "uart_queue_primask"  # its cpsid/cpsie sites fit six FPB comparators
FPB_COMPARATORS, DWT_COMPARATORS = 6, 4


def child_named(pid: int, name: str) -> int:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if f"({name})" in stat and int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                return int(entry.name)
    raise AssertionError(f"no {name} below {pid}")


def armed_comparators(address: str) -> list[str]:
    """The FPB and DWT comparators still enabled, read through the GDB server."""
    host, _, port = address.rpartition(":")
    client = RspClient(host, int(port), timeout=10)
    try:
        client.handshake()
        armed = []
        for n in range(FPB_COMPARATORS):
            if int.from_bytes(client.read_memory(FP_COMP0 + 4 * n, 4), "little") & 1:
                armed.append(f"FP_COMP{n}")
        for n in range(DWT_COMPARATORS):
            function = DWT_COMP0 + DWT_COMPARATOR_STRIDE * n + DWT_FUNCTION_OFFSET
            if int.from_bytes(client.read_memory(function, 4), "little") & 0xF:
                armed.append(f"DWT_FUNCTION{n}")
        return armed
    finally:
        client.close()


def test_gdb_killed_leaves_no_point_armed_and_the_target_running(built_samples, tmp_path):
    output = tmp_path / "trace.csv"
    with pyocd_gdbserver(sample_elf(SAMPLE), tmp_path / "server", persist=True) as server:
        process = start_irqmon("attach", "--target", "stm32f405", "--backend", "gdb", "--gdb-remote", server.address,
                               "--elf", str(sample_elf(SAMPLE)), "--probes", "critical_sections", "-q", "-o", str(output))  # fmt: skip
        deadline = time.monotonic() + 60
        while bytes_written(output) <= 3000:
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()[1]
            time.sleep(0.05)
        os.kill(child_named(process.pid, "gdb-multiarch"), signal.SIGKILL)
        stderr = stderr_once_ended(process)
        assert process.returncode == 1 and "cut off" in stderr and "Traceback" not in stderr, stderr
        assert load_trace(output).rows > 0
        # Running: the firmware gets to its end by itself.
        deadline = time.monotonic() + 60
        while expected(SAMPLE)["done_marker"] not in server.qemu.serial_output():
            assert time.monotonic() < deadline, "the target was left halted"
            time.sleep(0.1)
        assert armed_comparators(server.address) == []
