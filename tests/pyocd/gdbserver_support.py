"""pyOCD's own gdbserver in front of QEMU, as a user runs it: `pyocd gdbserver` over the `qemu`
probe plugin (the stand-in for a board), QEMU halted at reset with its gdbstub, both real
processes on 127.0.0.1 and both stopped afterwards."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from irqmon.backends.qemu import QemuTarget, free_port

PYOCD = Path(sys.executable).with_name("pyocd")
PROBES_DIR = Path(__file__).resolve().parents[2] / "probes"
START_TIMEOUT = 30.0


@dataclass
class PyocdGdbserver:
    qemu: QemuTarget
    port: int
    log: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def comparators(self) -> tuple[int, int]:
        """The FPB and DWT comparators pyOCD found on the core (its log says so at connect)."""
        text = self.log.read_text()
        breakpoints = re.search(r"(\d+) hardware breakpoints", text)
        watchpoints = re.search(r"(\d+) hardware watchpoints", text)
        assert breakpoints and watchpoints, text[-2000:]
        return int(breakpoints[1]), int(watchpoints[1])


@contextmanager
def pyocd_gdbserver(
    elf: Path, workdir: Path, breakpoints: int = 6, watchpoints: int = 4, persist: bool = False
) -> Iterator[PyocdGdbserver]:
    """QEMU running `elf` (halted at reset) and `pyocd gdbserver` attached to it through the
    bridge, which presents `breakpoints` FPB and `watchpoints` DWT comparators. No semihosting
    console server: only the GDB port is opened. `persist`: the server outlives its first client
    (`--persist`, as a user keeps it between sessions)."""
    workdir.mkdir(parents=True, exist_ok=True)
    with QemuTarget(elf, workdir=workdir) as qemu:
        port = free_port()
        log = workdir / "pyocd-gdbserver.log"
        command = [
            str(PYOCD), "gdbserver", "--uid", f"qemu:{qemu.gdb_address}", "--target", "cortex_m",
            "--port", str(port), "-O", "semihost_console_type=off",
            "-O", f"qemu.fpb_comparators={breakpoints}", "-O", f"qemu.dwt_comparators={watchpoints}",
            *(["--persist"] if persist else []),
        ]  # fmt: skip
        with log.open("w") as output:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            _wait_listening(process, log, port)
            yield PyocdGdbserver(qemu, port, log)
        finally:
            _stop(process)


def _wait_listening(process: subprocess.Popen, log: Path, port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while f"GDB server listening on port {port}" not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"pyocd gdbserver did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)  # pyOCD's way out: it closes the session and the probe
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def narrowed_pack(pack: str, symbols: list[str], directory: Path) -> Path:
    """A copy of a built-in pack that probes only `symbols` of its functions (what a user with six
    comparators writes), with its task and config entries; written as `directory/<pack>.toml`."""
    data = tomllib.loads((PROBES_DIR / f"{pack}.toml").read_text())
    functions = []
    for entry in data.get("function", []):
        kept = [name for name in entry["symbols"] if name in symbols]
        if kept:
            functions.append(entry | {"symbols": kept})
    assert sorted(name for f in functions for name in f["symbols"]) == sorted(symbols), f"not all in {pack}"
    kept = {key: value for key, value in data.items() if key in ("name", "description", "task", "config")}
    path = directory / f"{pack}.toml"
    path.write_text(_toml(kept | {"function": functions}))
    return path


def _toml(data: dict) -> str:
    """Pack data as TOML: scalars first, then tables and arrays of tables."""
    lines = [f"{key} = {_value(value)}" for key, value in data.items() if not isinstance(value, dict | list)]
    for key, value in data.items():
        if isinstance(value, dict):
            lines += ["", f"[{key}]", *(f"{k} = {_value(v)}" for k, v in value.items())]
        elif isinstance(value, list):
            for table in value:
                lines += ["", f"[[{key}]]", *(f"{k} = {_value(v)}" for k, v in table.items())]
    return "\n".join(lines) + "\n"


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"not in a probe pack: {value!r}")
