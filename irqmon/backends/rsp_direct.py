"""The lean backend: GDB's remote serial protocol spoken directly to the stub (QEMU's gdbstub,
OpenOCD, pyOCD gdbserver), with no gdb process in between.

Per stop it costs what the protocol needs and no more: the stop reply, one pipelined round trip
for every register the capture and the unwinder use (`g` plus `p` for the system registers),
one read of the stack window the unwinder walks, and one pipelined remove/step/reinsert round
trip to step off a breakpoint when resuming. Code bytes come from the ELF, not the target.

Stubs that stop *before* a watched access (QEMU) are stepped once past it with the watchpoints
out, so a watchpoint stop is reported after the access, as DWT reports it.
"""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass

from irqmon.backends.base import CORE_REGISTERS, Frame, Stop, StopReason, WatchAccess
from irqmon.elf import ElfImage
from irqmon.errors import CaptureError, UsageError
from irqmon.rsp import SIGINT, PointKind, RspClient, RspDisconnected, RspError, StopReply
from irqmon.unwind import UNWIND_REGISTERS, Unwinder

BREAKPOINT_LENGTH = 2  # Thumb
WATCH_KINDS = {WatchAccess.READ: PointKind.READ, WatchAccess.WRITE: PointKind.WRITE, WatchAccess.ACCESS: PointKind.ACCESS}
SYSTEM_REGISTERS = ("msp", "psp", "primask", "control", "basepri", "faultmask")
CYCLES = "cyccnt"  # DWT CYCCNT, read with the registers when counted
STACK_WINDOW = 512  # bytes read at once when the unwinder first touches the stack
TARGET_XML = "target.xml"
XML_CHUNK = 0xFFF
ACK = b"+"
DEMCR, DEMCR_TRCENA = 0xE000EDFC, 1 << 24
DWT_CTRL, DWT_CTRL_CYCCNTENA, DWT_CTRL_NOCYCCNT, DWT_CYCCNT = 0xE0001000, 1 << 0, 1 << 25, 0xE0001004


class _DeferredAckClient(RspClient):
    """An RspClient that owes its acknowledgements until it next sends, then sends them first.

    For stubs without `QStartNoAckMode` (QEMU): QEMU never waits for an acknowledgement, but
    takes any byte that arrives while the target runs as an interrupt, an acknowledgement
    included. Sent ahead of the next packet they arrive while the target is halted, so requests
    can be pipelined ahead of an `s`, and the acknowledgements of a pipelined batch cost one
    write instead of one each. Stubs that wait for acknowledgements (OpenOCD, pyOCD, J-Link)
    offer `QStartNoAckMode`, and then there are none to owe."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout)
        self._owed = 0

    def _send(self, data: bytes) -> None:
        if data == ACK:
            self._owed += 1
            return
        if self._owed:
            data, self._owed = ACK * self._owed + data, 0
        super()._send(data)


@dataclass(frozen=True)
class _Point:
    kind: PointKind
    address: int
    length: int

    @property
    def insert(self) -> str:
        return f"Z{self.kind.value},{self.address:x},{self.length:x}"

    @property
    def remove(self) -> str:
        return f"z{self.kind.value},{self.address:x},{self.length:x}"


class RspBackend:
    """The Backend protocol over `irqmon.rsp.RspClient`, backtraces from `irqmon.unwind`."""

    name = "rsp"

    def __init__(self, elf: ElfImage, address: str, timeout: float = 10.0, cycle_counter: bool = False) -> None:
        self.elf = elf
        self.cycle_counter = cycle_counter  # a real core: start DWT CYCCNT and read it at each stop
        self.address = address
        self.timeout = timeout
        self.running = False
        self.gone = ""
        self._client: RspClient | None = None
        self._unwinder = Unwinder(elf.path)
        self._register_numbers: dict[str, int] = {}
        self._g_layout: list[tuple[str, int]] = []  # (name, byte offset) of each register in `g`
        self._points: dict[int, _Point] = {}
        self._breakpoints: dict[int, int] = {}  # address -> point id
        self._next_id = 1  # the capture treats point 0 as "none"
        self._registers: dict[str, int] | None = None  # cached while halted
        self._known_pc: int | None = None  # pc read alone after a step
        self._memory: list[tuple[int, bytes]] = []  # blocks read while halted
        self._pending: list[Stop] = []

    # --- connecting -----------------------------------------------------------------------

    @property
    def client(self) -> RspClient:
        if self._client is None:
            raise CaptureError("not connected to the GDB stub")
        return self._client

    def connect(self) -> None:
        host, _, port = self.address.rpartition(":")
        try:
            self._client = _DeferredAckClient(host or "127.0.0.1", int(port), self.timeout)
            self._client.handshake()
            self._client.halt_reason()  # a stub that stopped on connect has its stop consumed here
            self._read_register_map()
        except (RspError, ValueError) as exc:
            self.close()
            raise UsageError(f"cannot use the GDB stub at {self.address}: {exc}") from None
        missing = [name for name in (*UNWIND_REGISTERS, *CORE_REGISTERS) if name not in self._register_numbers]
        if missing:
            self.close()
            raise UsageError(
                f"the GDB stub at {self.address} does not show {', '.join(missing)}: "
                "irqmon needs them (QEMU >= 8.0, OpenOCD, pyOCD and J-Link show them)"
            )
        if self.cycle_counter:
            self._start_cycle_counter()
        self.running = False

    def _start_cycle_counter(self) -> None:
        """DEMCR.TRCENA then DWT_CTRL.CYCCNTENA, keeping the other bits (ARMv7-M C1.6, C1.8)."""
        demcr = int.from_bytes(self.client.read_memory(DEMCR, 4), "little")
        self.client.write_memory(DEMCR, (demcr | DEMCR_TRCENA).to_bytes(4, "little"))
        control = int.from_bytes(self.client.read_memory(DWT_CTRL, 4), "little")
        if control & DWT_CTRL_NOCYCCNT:
            self.cycle_counter = False
            return
        self.client.write_memory(DWT_CTRL, (control | DWT_CTRL_CYCCNTENA).to_bytes(4, "little"))

    def _read_register_map(self) -> None:
        """Register numbers from the stub's target description, and the `g` packet layout."""
        numbers: dict[str, int] = {}
        sizes: dict[int, int] = {}
        next_number = 0
        for feature in self._target_features(TARGET_XML):
            for reg in feature.iter("reg"):
                number = int(reg.get("regnum", next_number))
                numbers[reg.get("name", "")] = number
                sizes[number] = int(reg.get("bitsize", "32")) // 8
                next_number = number + 1
        self._register_numbers = numbers
        g_size = len(self.client.request("g")) // 2
        offset, layout = 0, []
        for number in sorted(sizes):
            if offset + sizes[number] > g_size:
                break
            layout.append((next(n for n, k in numbers.items() if k == number), offset))
            offset += sizes[number]
        self._g_layout = layout

    def _target_features(self, annex: str) -> list[ElementTree.Element]:
        # Stubs write `xi:include` without declaring the prefix (QEMU): read it as a plain tag.
        root = ElementTree.fromstring(self._read_xfer(annex).replace("xi:include", "include"))
        features = [root] if root.tag == "feature" else list(root.iter("feature"))
        for include in root.iter("include"):
            features += self._target_features(include.get("href", ""))
        return features

    def _read_xfer(self, annex: str) -> str:
        text, offset = "", 0
        while True:
            reply = self.client.request(f"qXfer:features:read:{annex}:{offset:x},{XML_CHUNK:x}")
            if reply[:1] not in ("m", "l"):
                raise RspError(f"the stub has no target description {annex}: {reply!r:.40}")
            text += reply[1:]
            offset += len(reply) - 1
            if reply[0] == "l":
                return text

    # --- comparators ----------------------------------------------------------------------

    def _add_point(self, point: _Point) -> int:
        self._request(point.insert)
        number = self._next_id
        self._next_id += 1
        self._points[number] = point
        return number

    def add_breakpoint(self, address: int) -> int:
        number = self._add_point(_Point(PointKind.HARDWARE, address & ~1, BREAKPOINT_LENGTH))
        self._breakpoints[address & ~1] = number
        return number

    def add_watchpoint(self, address: int, size: int, access: WatchAccess) -> int:
        return self._add_point(_Point(WATCH_KINDS[access], address, size))

    def remove_point(self, point: int) -> None:
        removed = self._points.pop(point)
        if removed.kind is PointKind.HARDWARE:
            self._breakpoints.pop(removed.address, None)
        self._request(removed.remove)

    def _watchpoints(self) -> list[_Point]:
        return [p for p in self._points.values() if p.kind is not PointKind.HARDWARE]

    # --- running --------------------------------------------------------------------------

    def resume(self) -> None:
        if self._pending:
            return  # a stop found while stepping off a breakpoint is still to be reported
        pc = self._pc()
        if pc in self._breakpoints:
            # The stub would stop again at once on the breakpoint under pc: step off it first.
            stop = self._step_from(pc)
            if stop.reason is not StopReason.STEP or stop.pc in self._breakpoints:
                if stop.reason is StopReason.STEP:
                    stop = Stop(StopReason.BREAKPOINT, stop.pc, self._breakpoints[stop.pc])
                self._pending.insert(0, stop)  # ahead of any stop the step queued behind it
                return
        self._forget_state()
        self._guard(self.client.cont)
        self.running = True

    def wait_stop(self, timeout: float) -> Stop | None:
        if self._pending:
            return self._pending.pop(0)
        try:
            reply = self.client.wait_stop(timeout)
        except RspDisconnected as exc:
            self.gone = str(exc)
            self.running = False
            return Stop(StopReason.EXITED, message=self.gone)
        if reply is None:
            return None
        self.running = False
        return self._stop_from(reply)

    def halt(self) -> Stop:
        if not self.running:
            return Stop(StopReason.HALTED, self._pc())
        reply = self._guard(self.client.stop)
        self.running = False
        if not reply.is_interrupt:
            # The target stopped on its own before the interrupt arrived: keep that stop.
            self._pending.insert(0, self._stop_from(reply))
        return Stop(StopReason.HALTED, self._pc())

    def step(self) -> Stop:
        return self._step_from(self._pc())

    def _step_from(self, pc: int) -> Stop:
        """One instruction with any breakpoint under pc taken out for the step."""
        around = [self._points[self._breakpoints[pc]]] if pc in self._breakpoints else []
        reply = self._step_without(around)
        if reply.exited:
            return self._exited(reply)
        if reply.watch is not None:
            return self._past_watched_access(reply)
        return Stop(StopReason.STEP, self._pc())

    def _step_without(self, points: list[_Point]) -> StopReply:
        """Take `points` out, step once, put them back: two round trips. The step's pc comes
        back with the reinsertion."""
        replies = self._pipeline([p.remove for p in points] + ["s"])
        self._forget_state()
        reply = StopReply.parse(replies[-1])
        pc = self._pipeline([p.insert for p in points] + [f"p{self._register_numbers['pc']:x}"])[-1]
        self._known_pc = int.from_bytes(bytes.fromhex(pc), "little")
        return reply

    def _stop_from(self, reply: StopReply) -> Stop:
        self._forget_state()
        if reply.exited:
            return self._exited(reply)
        if reply.watch is not None:
            return self._past_watched_access(reply)
        pc = self._pc()
        if reply.signal == SIGINT:
            return Stop(StopReason.HALTED, pc, message="SIGINT")
        if pc in self._breakpoints:
            return Stop(StopReason.BREAKPOINT, pc, self._breakpoints[pc])
        return Stop(StopReason.HALTED, pc, message=f"signal {reply.signal}")

    def _past_watched_access(self, reply: StopReply) -> Stop:
        """The stub stopped before the access: step over it with every comparator under the
        instruction out of the way, then report the stop as DWT would."""
        access_pc = self._pc()
        watches = self._watchpoints()
        around = watches + ([self._points[self._breakpoints[access_pc]]] if access_pc in self._breakpoints else [])
        stepped = self._step_without(around)
        if stepped.exited:
            return self._exited(stepped)
        address = reply.watch_address
        number = next(
            (n for n, p in self._points.items()
             if p.kind is not PointKind.HARDWARE and address is not None and p.address <= address < p.address + p.length),
            None,
        )  # fmt: skip
        pc = self._pc()
        if pc in self._breakpoints:
            # The access ran up to a breakpoint: that is an event too, reported next (gdb
            # reports only the breakpoint and loses the access).
            self._pending.append(Stop(StopReason.BREAKPOINT, pc, self._breakpoints[pc]))
        return Stop(StopReason.WATCHPOINT, pc, number, address, access_pc)

    def _exited(self, reply: StopReply) -> Stop:
        self.gone = f"the target exited ({reply.raw})"
        return Stop(StopReason.EXITED, message=self.gone)

    # --- reading --------------------------------------------------------------------------

    def _forget_state(self) -> None:
        self._registers = None
        self._known_pc = None
        self._memory.clear()

    def _all_registers(self) -> dict[str, int]:
        """Every register the capture and the unwinder use, in one pipelined round trip."""
        if self._registers is None:
            system = [name for name in SYSTEM_REGISTERS if name in self._register_numbers]
            requests = ["g"] + [f"p{self._register_numbers[name]:x}" for name in system]
            if self.cycle_counter:
                requests.append(f"m{DWT_CYCCNT:x},4")
            replies = self._pipeline(requests)
            block = bytes.fromhex(replies[0])
            registers = {name: struct.unpack_from("<I", block, offset)[0] for name, offset in self._g_layout}
            for name, reply in zip(system, replies[1:]):
                registers[name] = int.from_bytes(bytes.fromhex(reply)[:4], "little")
            if self.cycle_counter:
                registers[CYCLES] = int.from_bytes(bytes.fromhex(replies[-1]), "little")
            self._registers = registers
        return self._registers

    def _pc(self) -> int:
        if self._registers is None and self._known_pc is not None:
            return self._known_pc
        return self._all_registers()["pc"]

    def read_registers(self, names: tuple[str, ...]) -> dict[str, int]:
        registers = self._all_registers()
        missing = [name for name in names if name not in registers]
        if missing:
            replies = self._pipeline([f"p{self._register_numbers[name]:x}" for name in missing])
            for name, reply in zip(missing, replies):
                registers[name] = int.from_bytes(bytes.fromhex(reply)[:4], "little")
        return {name: registers[name] for name in names}

    def read_cycle_counter(self) -> int | None:
        return self._all_registers()[CYCLES] if self.cycle_counter else None

    def read_memory(self, address: int, size: int) -> bytes:
        for start, data in self._memory:
            if start <= address and address + size <= start + len(data):
                return data[address - start : address - start + size]
        data = self._guard(lambda: self.client.read_memory(address, size))
        self._memory.append((address, data))
        return data

    def _read_stack(self, address: int, size: int) -> bytes:
        """A read for the unwinder: code from the ELF, data through a window of the stack."""
        code = self.elf.read_code(address, size)
        if len(code) == size:
            return code
        for start, data in self._memory:
            if start <= address and address + size <= start + len(data):
                return data[address - start : address - start + size]
        # Up to the next window boundary: RAM ends on one, so the window never runs past it.
        end = max(address + size, (address // STACK_WINDOW + 1) * STACK_WINDOW)
        window = self.read_memory(address, end - address)
        return window[:size]

    def backtrace(self, depth: int) -> list[Frame]:
        registers = self._all_registers()
        try:
            return self._unwinder.unwind(
                registers.__getitem__, self._read_stack, depth, at_breakpoint=registers["pc"] in self._breakpoints
            )
        except CaptureError:
            if self.gone:
                raise
            return []

    # --- letting go -----------------------------------------------------------------------

    def disconnect(self, resume: bool) -> None:
        """Remove every point and detach (the stub resumes the target). Never raises."""
        if self._client is None:
            return
        try:
            if not self.gone:
                if self.running:
                    self.halt()
                if self._points:
                    self._pipeline([p.remove for p in self._points.values()])
                self._points.clear()
                self._breakpoints.clear()
                if resume:
                    self._client.request("D")
        except (CaptureError, RspError, OSError):
            pass
        finally:
            self.close()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        self.running = False

    # --- plumbing -------------------------------------------------------------------------

    def _request(self, payload: str) -> str:
        return self._pipeline([payload])[0]

    def _pipeline(self, payloads: list[str]) -> list[str]:
        return self._guard(lambda: self.client.pipeline(payloads))

    def _guard(self, call):
        """Run a client call, turning protocol failures into CaptureError."""
        try:
            return call()
        except RspDisconnected as exc:
            self.gone = str(exc)
            self.running = False
            raise CaptureError(f"lost the target: {exc}") from None
        except RspError as exc:
            raise CaptureError(str(exc)) from None
