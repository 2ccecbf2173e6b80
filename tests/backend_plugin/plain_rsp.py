"""A capture backend from outside irqmon, as a third party would write one: the GDB remote
protocol in its plainest form (one request per round trip, `Z1` breakpoints and no watchpoints,
the registers read at each stop, the call stack from irqmon's Cortex-M unwinder).

It is registered through an `irqmon.backends` entry point of its own distribution (the registry
test writes that distribution's metadata), not by any edit of irqmon.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from irqmon.backends.base import CORE_REGISTERS, Stop, StopReason, WatchAccess
from irqmon.capture.registry import BackendArgs, BackendSpec, Option, Reach
from irqmon.cortexm.elf import ElfImage
from irqmon.cortexm.frames import Frame
from irqmon.cortexm.points import PointTable
from irqmon.cortexm.target_description import stub_registers
from irqmon.cortexm.unwind import UNWIND_REGISTERS, Unwinder
from irqmon.errors import CaptureError, UsageError
from irqmon.rsp import SIGTRAP, PointKind, RspClient, RspDisconnected, RspError

NAME = "plain-rsp"
REGISTERS = tuple(dict.fromkeys(("r0", "r1", "r2", "r3", *UNWIND_REGISTERS, *CORE_REGISTERS)))
BREAKPOINT_LENGTH = 2  # Thumb


class PlainRspBackend:
    """The Backend protocol over `irqmon.rsp.RspClient`, one request at a time."""

    name = NAME

    def __init__(self, elf: ElfImage, address: str, timeout: float) -> None:
        self.elf = elf
        self.address = address
        self.timeout = timeout
        self.client: RspClient | None = None
        self.running = False
        self._unwinder = Unwinder(elf)
        self._numbers: dict[str, int] = {}
        self._points: PointTable[int] = PointTable()  # id -> address
        self._registers: dict[str, int] | None = None  # read once per stop
        self._detach = "D"

    def connect(self) -> None:
        host, _, port = self.address.rpartition(":")
        try:
            self.client = RspClient(host, int(port), self.timeout)
            self.client.handshake()
            thread = self.client.halt_reason().thread
            self._numbers = {name: r.number for name, r in stub_registers(self.client.read_feature).items()}
        except RspError as exc:
            raise UsageError(f"{NAME} cannot use the GDB stub at {self.address}: {exc}") from None
        missing = [name for name in REGISTERS if name not in self._numbers]
        if missing:
            raise UsageError(f"the GDB stub at {self.address} does not show {', '.join(missing)}")
        if self.client.features.get("multiprocess") and thread and thread.startswith("p"):
            self._detach = f"D;{thread[1:].split('.', 1)[0]}"

    def _call(self, function: Any, *args: Any) -> Any:
        try:
            return function(*args)
        except RspError as exc:
            raise CaptureError(f"lost the target: {exc}") from None

    # --- comparators ----------------------------------------------------------------------

    def add_breakpoint(self, address: int) -> int:
        self._call(self.client.insert_point, PointKind.HARDWARE, address, BREAKPOINT_LENGTH)
        return self._points.add(address)

    def add_watchpoint(self, address: int, size: int, access: WatchAccess) -> int:
        raise UsageError(f"--backend {NAME} sets no watchpoints: choose probe packs without them (--probes)")

    def remove_point(self, point: int) -> None:
        self._call(self.client.remove_point, PointKind.HARDWARE, self._points.pop(point), BREAKPOINT_LENGTH)

    # --- running --------------------------------------------------------------------------

    def resume(self) -> None:
        """Step off a breakpoint under pc first: the stub would report it again at once. Where
        that step lands on another breakpoint, continuing reports that one."""
        if self.read_registers(("pc",))["pc"] in self._points.values():
            self.step()
        self._registers = None
        self._call(self.client.cont)
        self.running = True

    def wait_stop(self, timeout: float) -> Stop | None:
        try:
            reply = self.client.wait_stop(timeout)
        except RspDisconnected as exc:
            return Stop(StopReason.EXITED, message=str(exc))
        if reply is None:
            return None
        self.running = False
        self._registers = None
        if reply.exited:
            return Stop(StopReason.EXITED, message=reply.raw)
        pc = self.read_registers(("pc",))["pc"]
        point = next((number for number, address in self._points.items() if address == pc), None)
        if reply.signal == SIGTRAP and point is not None:
            return Stop(StopReason.BREAKPOINT, pc, point)
        return Stop(StopReason.HALTED, pc, message=f"signal {reply.signal}")

    def halt(self) -> Stop:
        if self.running:
            self._call(self.client.stop)
            self.running = False
            self._registers = None
        return Stop(StopReason.HALTED, self.read_registers(("pc",))["pc"])

    def step(self) -> Stop:
        pc = self.read_registers(("pc",))["pc"]
        under_pc = pc in self._points.values()
        if under_pc:
            self._call(self.client.remove_point, PointKind.HARDWARE, pc, BREAKPOINT_LENGTH)
        reply = self._call(self.client.step)
        if under_pc:
            self._call(self.client.insert_point, PointKind.HARDWARE, pc, BREAKPOINT_LENGTH)
        self._registers = None
        if reply.exited:
            return Stop(StopReason.EXITED, message=reply.raw)
        return Stop(StopReason.STEP, self.read_registers(("pc",))["pc"])

    # --- reading --------------------------------------------------------------------------

    def read_registers(self, names: tuple[str, ...]) -> dict[str, int]:
        if self._registers is None:
            values = self._call(self.client.read_register_list, [self._numbers[name] for name in REGISTERS])
            self._registers = {name: int.from_bytes(raw[:4], "little") for name, raw in zip(REGISTERS, values)}
        return {name: self._registers[name] for name in names}

    def read_memory(self, address: int, size: int) -> bytes:
        return self._call(self.client.read_memory, address, size)

    def read_cycle_counter(self) -> int | None:
        return None

    def backtrace(self, depth: int) -> list[Frame]:
        registers = self.read_registers(REGISTERS)
        at_breakpoint = registers["pc"] in self._points.values()
        return self._unwinder.unwind(registers.__getitem__, self.read_memory, depth, at_breakpoint)

    def disconnect(self, resume: bool) -> None:
        """Remove every breakpoint and detach (the stub resumes the target). Never raises."""
        if self.client is None:
            return
        try:
            if self.running:
                self.halt()
            for address in self._points.values():
                self.client.remove_point(PointKind.HARDWARE, address, BREAKPOINT_LENGTH)
            self._points.clear()
            if resume:
                self.client.request(self._detach)
        except (CaptureError, RspError, OSError):
            pass
        finally:
            self.client.close()
            self.client = None


def configure(values: Mapping[str, Any], reach: Reach) -> float:
    """`--plain-timeout SECONDS`: how long a request may wait for its reply."""
    text = values["timeout"]
    try:
        timeout = float(text) if text is not None else 10.0
    except ValueError:
        raise UsageError(f"--plain-timeout {text}: not a number of seconds") from None
    if timeout <= 0:
        raise UsageError(f"--plain-timeout {text}: must be positive")
    return timeout


def create(args: BackendArgs) -> PlainRspBackend:
    assert args.gdb_address is not None
    return PlainRspBackend(args.elf, args.gdb_address, args.options)


BACKEND = BackendSpec(
    name=NAME,
    help="a test's own backend: the GDB remote protocol, one request at a time",
    reaches=frozenset({Reach.QEMU, Reach.GDB_SERVER}),
    create=create,
    options=(Option("timeout", ("--plain-timeout",), "seconds a request may wait for its reply", "SECONDS"),),
    configure=configure,
)
