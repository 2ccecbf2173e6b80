"""The GDB-MI backend: gdb-multiarch driven over its machine interface, talking to any GDB
server (QEMU's gdbstub, OpenOCD, pyOCD gdbserver, J-Link GDB server).

pygdbmi parses the MI records; the process and the reads are ours, so no call ever waits for a
fixed time: each command carries a token and returns as soon as its result record arrives.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import time
from collections import deque
from pathlib import Path

from pygdbmi.gdbmiparser import parse_response

from irqmon.backends.base import Stop, StopReason, WatchAccess
from irqmon.capture.registry import BackendArgs, BackendSpec, Reach
from irqmon.cortexm.frames import Frame
from irqmon.cortexm.registers import (
    DWT_CYCCNT,
    PPB_END,
    dwt_comparator_count,
    matched_watchpoint,
    start_cycle_counter,
)
from irqmon.children import preexec_for_child
from irqmon.errors import CaptureError, UsageError
from irqmon.rsp import PointKind, RspClient, RspError
from irqmon.schema import EXCEPTION_FRAME, UNKNOWN_FUNCTION

GDB = "gdb-multiarch"
GDB_SIGNAL_FRAME = "<signal handler called>"  # how gdb shows an exception entry
WATCH_TYPES = {1: "unsigned char", 2: "unsigned short", 4: "unsigned int"}
GONE_MESSAGES = ("Remote connection closed", "The program is not being run", "Remote communication error")

SETUP_COMMANDS = (
    "-gdb-set mi-async on",
    "-gdb-set confirm off",
    "-gdb-set pagination off",
    "-gdb-set width 0",
    "-gdb-set height 0",
    "-gdb-set backtrace limit 32",
    # Keep breakpoints in the target while stopped: no z/Z packet pairs at every stop.
    "-gdb-set breakpoint always-inserted on",
    "-gdb-set print pretty off",
    "-gdb-set tcp auto-retry off",  # a server that is not there is an error at once
    # Step with `vCont;s` wherever the server's `vCont?` lists it. pyOCD lists it without
    # announcing `vContSupported+`, and gdb then steps by itself: a `Z0` breakpoint on the next
    # instruction and a continue, which costs a comparator (or writes a BKPT into the code).
    "-gdb-set remote verbose-resume-supported-packet on",
    # Unwinding reads code (prologue analysis): from the ELF, not one `m` packet a word.
    "-gdb-set trust-readonly-sections on",
    # Nor does it probe the EXC_RETURN values (0xFFFFFFxx) as code addresses: memory above the
    # Cortex-M private peripheral bus is not asked for. 67 -> 16 packets per breakpoint stop.
    f'-interpreter-exec console "mem 0 {PPB_END:#x} rw"',
    "-gdb-set mem inaccessible-by-default on",
)


THUMB_BREAKPOINT_KIND = 2  # the `kind` gdb gives a Thumb breakpoint in Z1/z1 packets
# How long a GDB server may take to answer gdb's first packets (OpenOCD and J-Link examine the
# core first; a second or two).
CONNECT_SECONDS = 10.0


class GdbError(Exception):
    """gdb answered a command with ^error."""


class GdbMiBackend:
    name = "gdbmi"

    def __init__(
        self, elf: Path, remote: str, gdb: str = GDB, command_timeout: float = 20.0, cycle_counter: bool = False,
        traffic_log: Path | None = None,
    ) -> None:
        self.elf = Path(elf)
        self.cycle_counter = cycle_counter  # a real core: start DWT CYCCNT and read it at each stop
        self.remote = remote
        self.traffic_log = traffic_log  # gdb's `remotelogfile`: the packets it exchanges with the server
        self.gdb = gdb
        self.command_timeout = command_timeout
        self._process: subprocess.Popen | None = None
        self._buffer = b""
        self._records: deque[dict] = deque()
        self._stops: deque[Stop] = deque()
        self._token = 0
        self._register_numbers: dict[str, int] = {}
        self._watch_addresses: dict[int, int] = {}
        self._dwt_comparators: int | None = None  # read at the first watchpoint stop gdb cannot explain
        self.running = False
        self.gone = ""
        # What the GDB server holds for each of gdb's points (Z packet type, address, length),
        # to remove them without gdb when gdb dies.
        self._points: dict[int, tuple[PointKind, int, int]] = {}
        self._gdb_died = False

    # --- process and MI plumbing --------------------------------------------------------

    def connect(self) -> None:
        try:
            self._process = subprocess.Popen(
                [self.gdb, "--nx", "--quiet", "--interpreter=mi3"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                preexec_fn=preexec_for_child(),  # its own session: Ctrl-C goes to irqmon only, which cleans up
            )  # fmt: skip
        except FileNotFoundError:
            raise UsageError(f"{self.gdb} not found: install gdb-multiarch (make setup)") from None
        try:
            self._select_target()
        except BaseException:  # no target reached: gdb has nothing to clean up, and must not stay
            self._process.kill()
            self._process.wait()
            raise
        self._stops.clear()  # the stop that connecting reports is not an event
        if self.cycle_counter:
            self.cycle_counter = start_cycle_counter(self.read_memory, self.write_memory)
        names = self.command("-data-list-register-names")["register-names"]
        # Names as lower case: OpenOCD calls the program status register `xPSR`.
        self._register_numbers = {name.lower(): number for number, name in enumerate(names) if name}
        missing = [r for r in ("basepri", "primask") if r not in self._register_numbers]
        if missing:
            raise UsageError(
                f"the GDB server at {self.remote} does not show {', '.join(missing)}: "
                "irqmon needs them (QEMU >= 8.0, OpenOCD, pyOCD and J-Link show them)"
            )
        self.running = False

    def _select_target(self) -> None:
        for command in SETUP_COMMANDS:
            self.command(command)
        self.command(f"-file-exec-and-symbols {_quote(str(self.elf))}")
        if self.traffic_log is not None:
            self.command(f"-gdb-set remotelogfile {self.traffic_log}")
        try:
            self.command(f"-target-select remote {self.remote}", timeout=CONNECT_SECONDS)
        except GdbError as exc:
            raise UsageError(f"cannot reach the GDB server at {self.remote}: {exc}") from None
        except CaptureError:  # a listener that takes the connection and never speaks the protocol
            raise UsageError(
                f"{self.remote} did not answer as a GDB server in {CONNECT_SECONDS:.0f} s: is it a GDB server's port?"
            ) from None

    def command(self, text: str, timeout: float | None = None) -> dict:
        """Send one MI command and return its result payload; raises GdbError on ^error."""
        self._token += 1
        token = self._token
        self._send(f"{token}{text}\n")
        deadline = time.monotonic() + (timeout or self.command_timeout)
        while True:
            record = self._next_record(deadline)
            if record is None:
                raise CaptureError(f"gdb did not answer '{text}' in time")
            if record["type"] == "result" and record["token"] == token:
                if record["message"] == "error":
                    message = (record.get("payload") or {}).get("msg", "error")
                    if any(gone in message for gone in GONE_MESSAGES):
                        self.gone = message
                        raise CaptureError(f"lost the target: {message}")
                    raise GdbError(message)
                if record["message"] == "running":
                    self.running = True
                return record.get("payload") or {}

    def _send(self, text: str) -> None:
        assert self._process is not None and self._process.stdin is not None
        try:
            self._process.stdin.write(text.encode())
            self._process.stdin.flush()
        except (BrokenPipeError, OSError):
            self._gdb_died = True
            raise CaptureError("gdb exited") from None

    def _next_record(self, deadline: float, until_stop: bool = False) -> dict | None:
        """The next MI record; async stop records are queued as they pass (and end the wait
        when `until_stop`)."""
        while True:
            while self._records:
                record = self._records.popleft()
                if record["type"] == "notify" and record["message"] == "stopped":
                    self.running = False
                    self._stops.append(self._parse_stop(record.get("payload") or {}))
                    continue
                if record["type"] == "notify" and record["message"] == "thread-group-exited":
                    self.gone = self.gone or "the target exited"
                    self._stops.append(Stop(StopReason.EXITED, message=self.gone))
                    continue
                if record["type"] in ("log", "console") and any(g in str(record["payload"]) for g in GONE_MESSAGES):
                    self.gone = str(record["payload"]).strip()
                    self._stops.append(Stop(StopReason.EXITED, message=self.gone))
                    continue
                return record
            if until_stop and self._stops:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._read_more(remaining):
                return None

    def _read_more(self, timeout: float) -> bool:
        assert self._process is not None and self._process.stdout is not None
        fd = self._process.stdout.fileno()
        ready, _, _ = select.select([fd], [], [], max(timeout, 0))
        if not ready:
            return False
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            self._gdb_died = True
            raise CaptureError(self.gone or "gdb exited")
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            text = line.decode(errors="replace").rstrip("\r")
            if text and text != "(gdb) ":
                self._records.append(parse_response(text))
        return True

    def _parse_stop(self, payload: dict) -> Stop:
        # One halt can have several reasons (a watchpoint and a breakpoint): a list then.
        reasons = payload.get("reason", "")
        reasons = reasons if isinstance(reasons, list) else [reasons]
        reason = reasons[0]
        pc = int(payload.get("frame", {}).get("addr", "0"), 16)
        if any(r.endswith("watchpoint-trigger") for r in reasons):
            spec = payload.get("hw-awpt") or payload.get("hw-rwpt") or payload.get("wpt") or {}
            spec = spec[0] if isinstance(spec, list) else spec
            number = int(spec.get("number", 0))
            return Stop(
                StopReason.WATCHPOINT, pc, number, self._watch_addresses.get(number),
                breakpoint_too="breakpoint-hit" in reasons,
            )  # fmt: skip
        if reason == "breakpoint-hit":
            return Stop(StopReason.BREAKPOINT, pc, int(payload.get("bkptno", 0)))
        if reason == "end-stepping-range":
            return Stop(StopReason.STEP, pc)
        if reason.startswith("exited"):
            return Stop(StopReason.EXITED, pc, message=reason)
        return Stop(StopReason.HALTED, pc, message=payload.get("signal-name", reason))

    # --- the Backend protocol -----------------------------------------------------------

    def add_breakpoint(self, address: int) -> int:
        result = self._insert(f"-break-insert -h *0x{address:x}", f"a hardware breakpoint at 0x{address:08x}")
        number = int(result["bkpt"]["number"])
        self._points[number] = (PointKind.HARDWARE, address, THUMB_BREAKPOINT_KIND)
        return number

    def add_watchpoint(self, address: int, size: int, access: WatchAccess) -> int:
        # `watch` ignores writes of an unchanged value, so writes are watched as accesses too.
        flag = "-r" if access is WatchAccess.READ else "-a"
        # A block wider than a word is watched as a byte array: gdb asks the server for the
        # whole length (one comparator with a mask on a board).
        expression = f"*({WATCH_TYPES[size]} *)0x{address:x}" if size in WATCH_TYPES else f"*(unsigned char (*)[{size}])0x{address:x}"
        result = self._insert(f"-break-watch {flag} {_quote(expression)}", f"a watchpoint at 0x{address:08x}")
        spec = result.get("hw-awpt") or result.get("hw-rwpt") or result.get("wpt")
        number = int(spec["number"])
        self._watch_addresses[number] = address
        self._points[number] = (PointKind.READ if access is WatchAccess.READ else PointKind.ACCESS, address, size)
        return number

    def _insert(self, command: str, what: str) -> dict:
        """A breakpoint or watchpoint the server may refuse: it has as many comparators as the
        chip, whatever the target profile says (pyOCD answers `E01` once they are used up)."""
        try:
            return self.command(command)
        except GdbError as exc:
            reason = str(exc).strip().splitlines()[-1]
            raise UsageError(
                f"the GDB server at {self.remote} refused {what} ({reason}): "
                "the target has fewer comparators free than the probes need; choose fewer with --probes"
            ) from None

    def remove_point(self, point: int) -> None:
        self.command(f"-break-delete {point}")
        self._watch_addresses.pop(point, None)
        self._points.pop(point, None)

    def resume(self) -> None:
        self.running = True  # before the answer: a Ctrl-C in between must still halt it first
        self.command("-exec-continue")

    def wait_stop(self, timeout: float) -> Stop | None:
        deadline = time.monotonic() + timeout
        while not self._stops:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            record = self._next_record(deadline, until_stop=True)
            if record is None and not self._stops:
                return None
        stop = self._stops.popleft()
        if stop.reason is StopReason.HALTED and stop.message == "SIGTRAP" and self._watch_addresses:
            return self._unnamed_watchpoint_stop(stop)
        return stop

    def _unnamed_watchpoint_stop(self, stop: Stop) -> Stop:
        """A debug event gdb cannot explain: the server's stop reply named no watchpoint (pyOCD
        never does). The DWT says which comparator matched; it halted after the access."""
        if self._dwt_comparators is None:
            self._dwt_comparators = dwt_comparator_count(self.read_memory)
        point = matched_watchpoint(self.read_memory, self._dwt_comparators, self._watch_addresses)
        if point is None:
            return stop
        return Stop(StopReason.WATCHPOINT, stop.pc, point, self._watch_addresses[point])

    def halt(self) -> Stop:
        if not self.running:
            return Stop(StopReason.HALTED)
        try:
            self.command("-exec-interrupt")
        except GdbError:  # it had already stopped; that stop is queued or consumed
            self.running = False
            return self._stops.popleft() if self._stops else Stop(StopReason.HALTED)
        stop = self.wait_stop(self.command_timeout)
        if stop is None:
            raise CaptureError("the target did not halt")
        return self._breakpoint_about_to_hit(stop)

    def _breakpoint_about_to_hit(self, stop: Stop) -> Stop:
        """A halt at a breakpoint's address that came before the breakpoint fired is that
        breakpoint's hit: gdb steps off a breakpoint under pc when it resumes, whatever stopped
        the core, so the hit would never come."""
        if stop.reason is not StopReason.HALTED:
            return stop
        point = next((n for n, (kind, address, _) in self._points.items() if kind is PointKind.HARDWARE and address == stop.pc), None)
        return stop if point is None else Stop(StopReason.BREAKPOINT, stop.pc, point)

    def step(self) -> Stop:
        self.command("-exec-step-instruction")
        stop = self.wait_stop(self.command_timeout)
        if stop is None:
            raise CaptureError("a single step did not finish")
        return Stop(StopReason.STEP, stop.pc) if stop.reason is StopReason.BREAKPOINT else stop

    def read_registers(self, names: tuple[str, ...]) -> dict[str, int]:
        numbers = " ".join(str(self._register_numbers[name]) for name in names)
        values = self.command(f"-data-list-register-values --skip-unavailable x {numbers}")["register-values"]
        by_number = {int(v["number"]): int(v["value"], 16) for v in values}
        return {name: by_number.get(self._register_numbers[name], 0) for name in names}

    def read_memory(self, address: int, size: int) -> bytes:
        blocks = self.command(f"-data-read-memory-bytes 0x{address:x} {size}")["memory"]
        return bytes.fromhex("".join(block["contents"] for block in blocks))

    def write_memory(self, address: int, data: bytes) -> None:
        self.command(f"-data-write-memory-bytes 0x{address:x} {data.hex()}")

    def read_cycle_counter(self) -> int | None:
        if not self.cycle_counter:
            return None
        return int.from_bytes(self.read_memory(DWT_CYCCNT, 4), "little")

    def backtrace(self, depth: int) -> list[Frame]:
        try:
            frames = self.command(f"-stack-list-frames 0 {depth - 1}")["stack"]
        except GdbError:
            return []
        result = []
        for frame in frames:
            function = frame.get("func", UNKNOWN_FUNCTION)
            if function == GDB_SIGNAL_FRAME:
                function = EXCEPTION_FRAME
            result.append(Frame(function, int(frame.get("addr", "0"), 16)))
        return result

    def disconnect(self, resume: bool) -> None:
        """Delete every breakpoint and watchpoint, resume the target, disconnect, quit. The
        target is resumed here, not by a detach: OpenOCD leaves a halted target halted when gdb
        detaches (QEMU and pyOCD resume it). Each step is tried even when one before it failed:
        the target must not stay halted."""
        if self._process is None:
            return
        try:
            steps = [] if self.gone else ["-break-delete", *(["-exec-continue"] if resume else []), "-target-disconnect"]
            if steps and self.running:
                try:
                    self.halt()
                except (CaptureError, GdbError):
                    pass
            for command in steps:
                try:
                    self.command(command)
                except GdbError:
                    pass
            self.command("-gdb-exit", timeout=2)
        except (CaptureError, OSError):
            pass
        finally:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait()
            self._process = None
        if self._gdb_died and self._points and not self.gone:
            self._clear_points_without_gdb()

    def _clear_points_without_gdb(self) -> None:
        """gdb died with points set and the target maybe halted on one (a GDB server keeps both
        when its client goes away): remove them over a connection of irqmon's own, resume the
        target and let go. Best effort: the server may be gone too."""
        host, _, port = self.remote.rpartition(":")
        try:
            client = RspClient(host, int(port), timeout=CONNECT_SECONDS)
        except (RspError, ValueError):
            return
        try:
            client.handshake()
            for kind, address, length in self._points.values():
                with contextlib.suppress(RspError):
                    client.remove_point(kind, address, length)
            self._points.clear()
            client.cont()
        except (RspError, OSError):
            pass
        finally:
            client.close()

def _quote(path: str) -> str:
    return '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'


def create(args: BackendArgs) -> GdbMiBackend:
    assert args.gdb_address is not None
    return GdbMiBackend(args.elf.path, args.gdb_address, cycle_counter=args.on_hardware, traffic_log=args.traffic_log)


BACKEND = BackendSpec(
    name="gdb",
    help="gdb-multiarch over its machine interface (the default with --qemu or --gdb-remote)",
    reaches=frozenset({Reach.QEMU, Reach.GDB_SERVER}),
    create=create,
)
