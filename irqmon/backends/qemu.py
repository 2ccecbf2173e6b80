"""Start QEMU with its gdbstub on 127.0.0.1, USART1 in a log, and optionally its NVIC trace."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from irqmon.children import make_workdir, preexec_for_child
from irqmon.errors import UsageError
from irqmon.schema import Event, Kind, TimelineRow

NVIC_TRACE_EVENTS = ("nvic_acknowledge_irq", "nvic_complete_irq")
# `1234@1795310967.573734:nvic_acknowledge_irq NVIC acknowledge IRQ: 44 now active (prio 80)`
# `1234@1795310967.573785:nvic_complete_irq NVIC complete IRQ 44 (secure 0)`
NVIC_LINE = re.compile(
    r"^\d+@([\d.]+):nvic_(acknowledge|complete)_irq NVIC \w+ IRQ:? (\d+)(?: now active \(prio (-?\d+)\))?",
    re.MULTILINE,
)
# QEMU's gdbstub stopping the machine for the debugger (its virtual clock stops with it) and
# letting it run again (continue, or one step):
# `1234@1795310967.573801:gdbstub_hit_break `, `1234@1795310967.579102:gdbstub_op_stepping Stepping CPU 0`
GDBSTUB_TRACE_EVENTS = (
    "gdbstub_hit_break", "gdbstub_hit_watchpoint", "gdbstub_hit_paused",
    "gdbstub_op_continue", "gdbstub_op_continue_cpu", "gdbstub_op_stepping",
)  # fmt: skip
GDBSTUB_LINE = re.compile(r"^\d+@([\d.]+):gdbstub_(hit|op)_\w+", re.MULTILINE)
MIN_QEMU_MAJOR = 8


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def check_qemu(binary: str = "qemu-system-arm") -> str:
    """The path of a QEMU >= 8.0, or UsageError saying what to install."""
    path = shutil.which(binary)
    if path is None:
        raise UsageError(f"{binary} not found: install QEMU >= {MIN_QEMU_MAJOR}.0 (make setup)")
    out = subprocess.run([path, "--version"], capture_output=True, text=True, check=False).stdout
    try:
        major = int(out.split("version ", 1)[1].split(".", 1)[0])
    except (IndexError, ValueError):
        raise UsageError(f"cannot read the version of {path}") from None
    if major < MIN_QEMU_MAJOR:
        raise UsageError(
            f"{path} is QEMU {major}: irqmon needs >= {MIN_QEMU_MAJOR}.0 to see BASEPRI/PRIMASK"
        )
    return path


@dataclass
class QemuTarget:
    """A QEMU machine running `elf`, halted at reset until a debugger continues it."""

    elf: Path
    machine: str = "netduinoplus2"
    workdir: Path | None = None
    nvic_trace: bool = False
    extra_args: list[str] = field(default_factory=list)  # e.g. a -plugin option
    icount_shift: int | None = None  # guest time counted in instructions, 2**shift ns each
    port: int = 0
    process: subprocess.Popen | None = field(default=None, repr=False)
    _own_workdir: bool = field(default=False, repr=False)  # made here: removed by `stop`

    @property
    def serial_log(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "usart1.log"

    @property
    def nvic_log(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "nvic-trace.log"

    @property
    def gdb_address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, connect_timeout: float = 10.0) -> QemuTarget:
        binary = check_qemu()
        if self.workdir is None:
            self.workdir = make_workdir()
            self._own_workdir = True
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        cmd = [
            binary, "-M", self.machine, "-nographic", "-monitor", "none",
            "-kernel", str(self.elf), "-S",
            "-gdb", f"tcp:127.0.0.1:{self.port}",
            "-serial", f"file:{self.serial_log}",
        ]  # fmt: skip
        if self.nvic_trace:
            # `-msg timestamp=on` prefixes each line with pid@seconds.microseconds (host clock).
            events = ",".join(f"trace:{event}" for event in NVIC_TRACE_EVENTS + GDBSTUB_TRACE_EVENTS)
            cmd += ["-d", events, "-msg", "timestamp=on", "-D", str(self.nvic_log)]
        if self.icount_shift is not None:
            # sleep=off: an idle core's clock jumps to the next timer, instead of following the host's.
            cmd += ["-icount", f"shift={self.icount_shift},sleep=off"]
        cmd += self.extra_args
        self.process = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            preexec_fn=preexec_for_child(),  # its own session: Ctrl-C reaches irqmon, which stops QEMU itself
        )
        self._wait_for_gdbstub(connect_timeout)
        return self

    def _wait_for_gdbstub(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace").strip() if self.process.stderr else ""
                self.stop()
                raise UsageError(f"QEMU exited at start: {err.splitlines()[-1] if err else 'no message'}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise UsageError(f"QEMU's gdbstub did not open 127.0.0.1:{self.port} in {timeout:.0f} s")

    def serial_output(self) -> str:
        try:
            return self.serial_log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr:
            self.process.stderr.close()
        if self._own_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> QemuTarget:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class NvicTraceReader:
    """Turns new lines of QEMU's NVIC trace log into `irq_enter`/`irq_exit` rows, and its
    gdbstub lines into the times the debugger stopped and resumed the machine (`halt_changes`).

    A line looks like `1234@1795310967.573734:nvic_acknowledge_irq NVIC acknowledge IRQ: 44 now
    active (prio 80)`: host clock in µs, the exception number, its raw priority byte.
    """

    def __init__(self, path: Path, exception_name, logical_priority) -> None:
        self.path = path
        self._exception_name = exception_name
        self._logical_priority = logical_priority
        self._file = None
        self._partial = ""
        self._halt_changes: list[tuple[float, bool]] = []

    def halt_changes(self) -> list[tuple[float, bool]]:
        """Since the last call, in order: (host epoch, True when the machine stopped for the
        debugger, False when it ran again), from the lines the last read took in."""
        changes, self._halt_changes = self._halt_changes, []
        return changes

    def __call__(self) -> list[TimelineRow]:
        if self._file is None:
            try:
                self._file = open(self.path, encoding="utf-8", errors="replace")
            except FileNotFoundError:
                return []
        text = self._partial + self._file.read()
        end = text.rfind("\n") + 1
        self._partial = text[end:]
        self._halt_changes += [(float(epoch), kind == "hit") for epoch, kind in GDBSTUB_LINE.findall(text, 0, end)]
        rows = []
        enter, leave, irq = Event.IRQ_ENTER.value, Event.IRQ_EXIT.value, Kind.IRQ.value  # plain str: cheaper to write
        for epoch, event, number, raw in NVIC_LINE.findall(text, 0, end):
            exception = int(number)
            entering = event == "acknowledge"
            rows.append(
                {"epoch": float(epoch), "event": enter if entering else leave, "kind": irq,
                 "probe": "qemu", "ipsr": exception, "exception": self._exception_name(exception),
                 "priority": self._logical_priority(int(raw)) if entering and int(raw) >= 0 else None}
            )  # fmt: skip
        return rows

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
