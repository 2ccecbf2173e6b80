"""The pyOCD backend: a debug probe (ST-Link, CMSIS-DAP, J-Link, or QEMU through the `qemu`
probe plugin) driven through pyOCD's Python API.

Breakpoints are FPB comparators and watchpoints DWT comparators, set with pyOCD's breakpoint
manager and DWT code; the counts are the ones pyOCD reads from the target at connect, and a plan
that needs more is refused. Halts are decoded from DFSR and the DWT's MATCHED bits.

Non-halting capture on hardware (`ExceptionTrace`): with an SWO-capable probe, DWT exception
trace and PC sampling are switched on and pyOCD's SWO parser turns the stream into irq_enter /
irq_exit rows. Without SWO the capture says so in one line and halts as usual.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from irqmon.backends.base import Stop, StopReason, WatchAccess
from irqmon.capture.registry import BackendArgs, BackendSpec, Option, Reach
from irqmon.cortexm.elf import ElfImage
from irqmon.cortexm.frames import Frame
from irqmon.cortexm.points import Comparators, PointTable
from irqmon.cortexm.registers import (
    ARCHITECTURE_MAX_BREAKPOINTS,
    ARCHITECTURE_MAX_WATCHPOINTS,
    DEMCR,
    DEMCR_TRCENA,
    DFSR,
    DFSR_BKPT,
    DFSR_DWTTRAP,
    DFSR_EXTERNAL,
    DFSR_VCATCH,
    DWT_CTRL,
    DWT_CTRL_CYCCNTENA,
    DWT_CTRL_CYCTAP,
    DWT_CTRL_EXCTRCENA,
    DWT_CTRL_PCSAMPLENA,
    DWT_CTRL_POSTPRESET_SHIFT,
    DWT_CTRL_READ_ONLY,
    DWT_CYCCNT,
    DWT_FUNCTION_MATCHED,
    DWT_FUNCTION_OFFSET,
)
from irqmon.cortexm.unwind import UNWIND_REGISTERS, Unwinder
from irqmon.errors import CaptureError, UsageError
from irqmon.schema import Event, Kind, TimelineRow

if TYPE_CHECKING:
    from pyocd.core.session import Session
    from pyocd.core.soc_target import SoCTarget

    from irqmon.targets import TargetProfile

PROBE_NAME = "pyocd"
QEMU_PROBE_PREFIX = "qemu:"
GENERIC_TARGET = "cortex_m"  # QEMU is the chip: no flash algorithm or pack is needed there
# The most comparators the architecture can describe: FP_CTRL.NUM_CODE and DWT_CTRL.NUMCOMP.
POLL_SECONDS = 0.0005
HALT_TIMEOUT = 5.0

PC_SAMPLE_POSTPRESET = 0xF  # a PC sample every 16 x 1024 cycles with CYCTAP set

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PyOcdOptions:
    """What `--backend pyocd` takes on the command line, as pyOCD's own tools spell it."""

    probe_uid: str | None = None
    frequency: int | None = None
    session_options: dict[str, Any] | None = None
    swo_clock: int | None = None  # stream exception trace over SWO at this bit rate
    system_clock: int | None = None  # the core clock SWO's divider works from


OPTIONS = (
    Option("probe_uid", ("--probe-uid", "-u"), "the probe's unique id (pyocd list), or a prefix of it", "UID"),
    Option("frequency", ("--frequency", "-f"), "SWD clock, e.g. 4000000, 4M or 1000k", "FREQ"),
    Option("session_options", ("-O",), "a pyOCD session option", "NAME=VALUE", repeatable=True),
    Option("swo_clock", ("--swo-clock",), "non-halting IRQ timeline on a board with an SWO-capable probe: "
           "stream exception trace over SWO at this bit rate", "HZ"),
    Option("system_clock", ("--system-clock",), "the core clock (needed with --swo-clock)", "HZ"),
)  # fmt: skip


def configure(values: Mapping[str, Any], reach: Reach) -> PyOcdOptions:
    """The options of `--backend pyocd`, checked; bad input is a UsageError."""
    if values["probe_uid"] is not None and reach is Reach.QEMU:
        raise UsageError("--probe-uid picks a hardware probe: with --qemu the probe is QEMU's gdbstub")
    if values["swo_clock"] is not None and reach is Reach.QEMU:
        raise UsageError("--swo-clock is for a board: on QEMU the timeline comes from QEMU itself")
    if values["swo_clock"] is not None and values["system_clock"] is None:
        raise UsageError("--swo-clock needs --system-clock HZ (the core clock, which SWO's divider works from)")
    options = parse_options(values["probe_uid"], values["frequency"], values["session_options"])
    return replace(
        options,
        swo_clock=_frequency("--swo-clock", values["swo_clock"]),
        system_clock=_frequency("--system-clock", values["system_clock"]),
    )


def _frequency(option: str, text: str | None) -> int | None:
    """`4000000`, `4M`, `1000k` as hertz; bad input is a UsageError."""
    from pyocd.utility.cmdline import convert_frequency

    if text is None:
        return None
    try:
        hertz = convert_frequency(text)
    except (ValueError, IndexError):
        raise UsageError(f"{option} {text}: not a frequency (e.g. 4000000, 4M, 1000k)") from None
    if hertz <= 0:
        raise UsageError(f"{option} {text}: must be positive")
    return hertz


def parse_options(probe_uid: str | None, frequency: str | None, option_list: list[str]) -> PyOcdOptions:
    """Check `--frequency` and every `-O` against pyOCD's option table; bad input is a UsageError."""
    from pyocd.core.options import OPTIONS_INFO
    from pyocd.probe import aggregator  # noqa: F401  (loads probe plugins and their options)
    from pyocd.utility.cmdline import convert_one_session_option

    options: dict[str, Any] = {}
    for text in option_list:
        name, _, value = text.partition("=")
        name = name.strip().lower()
        base = name[3:] if name.startswith("no-") else name
        if base not in OPTIONS_INFO:
            raise UsageError(f"-O {text}: pyOCD has no option '{base}' (pyocd list --options)")
        converter_log = logging.getLogger(convert_one_session_option.__module__)
        converter_log.disabled = True  # its warning would be a second line: the error says it all
        try:
            key, converted = convert_one_session_option(name, value.strip() if "=" in text else None)
        finally:
            converter_log.disabled = False
        if converted is None:
            raise UsageError(f"-O {text}: not a valid value for {base} ({OPTIONS_INFO[base].help.rstrip('.')})")
        options[key] = converted
    return PyOcdOptions(probe_uid, _frequency("--frequency", frequency), options)


def create(args: BackendArgs) -> PyOcdBackend:
    """A hardware probe, or QEMU's gdbstub through the `qemu` probe plugin with the target's
    comparator counts (or the architecture's maximum with `--unlimited`)."""
    target, options = args.target, args.options or PyOcdOptions()
    session_options = dict(options.session_options or {})
    if options.frequency is not None:
        session_options["frequency"] = options.frequency
    if args.reach is Reach.QEMU:
        session_options.setdefault(
            "qemu.fpb_comparators", ARCHITECTURE_MAX_BREAKPOINTS if args.unlimited else target.fpb_comparators
        )
        session_options.setdefault(
            "qemu.dwt_comparators", ARCHITECTURE_MAX_WATCHPOINTS if args.unlimited else target.dwt_comparators
        )
        session_options.setdefault("qemu.fpb_revision", 2 if target.core == "cortex-m7" or args.unlimited else 1)
        return PyOcdBackend(args.elf, f"{QEMU_PROBE_PREFIX}{args.gdb_address}", GENERIC_TARGET, session_options)
    if not target.pyocd_target:
        raise UsageError(f"target {target.name} names no pyOCD target type: add pyocd_target to its profile")
    return PyOcdBackend(args.elf, options.probe_uid, target.pyocd_target, session_options, target.pyocd_pack)


@dataclass
class _Point:
    address: int
    size: int = 0
    watch_type: Any = None  # pyocd Target.WatchpointType for watchpoints, None for breakpoints


class PyOcdBackend:
    """The Backend protocol on pyOCD's Python API."""

    name = PROBE_NAME

    def __init__(
        self,
        elf: ElfImage,
        probe_uid: str | None,
        target_type: str,
        session_options: dict[str, Any] | None = None,
        pack: str | None = None,
    ) -> None:
        self.elf = elf
        self.probe_uid = probe_uid
        self.target_type = target_type
        self.session_options = dict(session_options or {})
        self.pack = pack
        self.session: Session | None = None
        self.comparators = Comparators(0, 0)
        self.running = False
        self.gone = ""
        self._unwinder = Unwinder(self.elf)
        self._points: PointTable[_Point] = PointTable()
        self._pending: deque[Stop] = deque()
        self._has_cycle_counter = False
        self._last_stop = Stop(StopReason.HALTED)

    @property
    def target(self) -> SoCTarget:
        assert self.session is not None and self.session.target is not None
        return self.session.target

    # --- connecting -----------------------------------------------------------------------

    def connect(self) -> None:
        from pyocd.core import exceptions
        from pyocd.core.helpers import ConnectHelper
        from pyocd.core.session import Session

        options = {"connect_mode": "halt", "resume_on_disconnect": True} | self.session_options
        try:
            probes = ConnectHelper.get_all_connected_probes(
                blocking=False, unique_id=self.probe_uid, print_wait_message=False
            )
        except exceptions.Error as exc:
            raise UsageError(f"pyOCD cannot list debug probes: {exc}") from None
        if not probes:
            wanted = f" with unique id {self.probe_uid}" if self.probe_uid else ""
            raise UsageError(
                f"no debug probe{wanted} connected: plug in an ST-Link, CMSIS-DAP or J-Link probe "
                "(pyocd list shows what pyOCD sees), or capture on QEMU with --qemu"
            )
        if len(probes) > 1:
            found = ", ".join(probe.unique_id for probe in probes)
            raise UsageError(f"{len(probes)} debug probes connected ({found}): choose one with --probe-uid")
        try:
            session = Session(probes[0], options=options, target_override=self.target_type)
        except exceptions.TargetSupportError:
            raise UsageError(self._target_type_missing()) from None
        except exceptions.Error as exc:
            raise UsageError(f"pyOCD cannot use {probes[0].unique_id}: {exc}") from None
        try:
            session.open()
        except exceptions.TargetSupportError:
            session.close()
            raise UsageError(self._target_type_missing()) from None
        except exceptions.Error as exc:
            session.close()
            raise UsageError(
                f"pyOCD cannot connect to {self.target_type} through {session.probe.unique_id}: {exc}"
            ) from None
        self.session = session
        core = self.target.selected_core
        if core.fpb is None or core.dwt is None:
            self.disconnect(resume=True)
            raise UsageError(f"{self.target_type}: the core has no FPB or DWT, irqmon needs both")
        self.comparators = Comparators(len(core.fpb.hw_breakpoints), core.dwt.watchpoint_count)
        self._has_cycle_counter = core.dwt.has_cycle_counter
        self._call(self._wait_halted)
        self.running = False

    def _target_type_missing(self) -> str:
        if self.pack:
            return (
                f"pyOCD target type {self.target_type} needs its CMSIS pack, which is not installed: "
                f"run `pyocd pack install {self.pack}` (or pass -O pack=FILE.pack)"
            )
        return f"pyOCD does not know target type {self.target_type} (pyocd list --targets)"

    def _call(self, action: Callable[[], Any]) -> Any:
        """Run a pyOCD call: a lost probe, or a target that stops answering, is a CaptureError.
        Only a lost probe marks the backend gone; otherwise `disconnect` still cleans up."""
        from pyocd.core import exceptions

        if self.gone:
            raise CaptureError(f"lost the probe: {self.gone}")
        try:
            return action()
        except exceptions.ProbeDisconnected as exc:
            self.gone = str(exc) or "probe disconnected"
            raise CaptureError(f"lost the probe: {self.gone}") from None
        except (exceptions.ProbeError, exceptions.TransferError) as exc:
            raise CaptureError(f"the target did not answer: {exc or type(exc).__name__}") from None

    # --- comparators ------------------------------------------------------------------------

    def _used(self, watch: bool) -> int:
        return sum(1 for p in self._points.values() if (p.watch_type is not None) == watch)

    def add_breakpoint(self, address: int) -> int:
        from pyocd.core.target import Target

        if self._used(watch=False) >= self.comparators.breakpoints:
            raise UsageError(
                f"out of hardware breakpoints: the target has {self.comparators.breakpoints} FPB comparators "
                "and the probes need more: choose fewer with --probes"
            )
        if not self._call(lambda: self.target.set_breakpoint(address, Target.BreakpointType.HW)):
            raise UsageError(f"pyOCD could not set a hardware breakpoint at {address:#010x}")
        return self._points.add(_Point(address))

    def add_watchpoint(self, address: int, size: int, access: WatchAccess) -> int:
        from pyocd.core.target import Target

        kinds = {
            WatchAccess.READ: Target.WatchpointType.READ,
            WatchAccess.WRITE: Target.WatchpointType.WRITE,
            WatchAccess.ACCESS: Target.WatchpointType.READ_WRITE,
        }
        if self._used(watch=True) >= self.comparators.watchpoints:
            raise UsageError(
                f"out of watchpoints: the target has {self.comparators.watchpoints} DWT comparators "
                "and the probes need more: choose fewer with --probes or --watch"
            )
        if size not in (1, 2, 4) or address % size:
            raise UsageError(f"a DWT watchpoint covers 1, 2 or 4 aligned bytes, not {size} at {address:#010x}")
        if not self._call(lambda: self.target.set_watchpoint(address, size, kinds[access])):
            raise UsageError(f"pyOCD could not set a watchpoint at {address:#010x}")
        return self._points.add(_Point(address, size, kinds[access]))

    def remove_point(self, point: int) -> None:
        entry = self._points.pop(point)
        if entry.watch_type is None:
            self._call(lambda: self.target.remove_breakpoint(entry.address))
        else:
            self._call(lambda: self.target.remove_watchpoint(entry.address, entry.size, entry.watch_type))

    # --- running and stopping ------------------------------------------------------------------

    def _breakpoint_at(self, pc: int) -> int | None:
        return next((n for n, p in self._points.items() if p.watch_type is None and p.address == pc), None)

    def _step_over_breakpoint(self) -> Stop | None:
        """After a stop at a breakpoint, execute the instruction under it (the FPB would match
        it again at once); a debug event of that instruction's own (a watchpoint) is returned.
        A breakpoint at a pc where the core halted for another reason has not been hit yet:
        resuming hits it, as it should."""
        pc = self.target.read_core_register_raw("pc")
        last = self._last_stop
        if self._breakpoint_at(pc) is None or last.reason is not StopReason.BREAKPOINT or last.pc != pc:
            return None
        self.target.remove_breakpoint(pc)
        self.target.step(disable_interrupts=True)
        self.target.set_breakpoint(pc, _hardware())
        stop = self._decode_stop()
        return stop if stop.reason is StopReason.WATCHPOINT else None

    def resume(self) -> None:
        def resume() -> None:
            stop = self._step_over_breakpoint()
            if stop is not None:
                self._pending.append(stop)  # stays halted: the next wait_stop reports it
                return
            self.target.resume()
            self.running = True

        self._call(resume)

    def wait_stop(self, timeout: float) -> Stop | None:
        if self._pending:
            self._last_stop = self._pending.popleft()
            return self._last_stop
        if self.gone:
            return Stop(StopReason.EXITED, message=self.gone)
        from pyocd.core.target import Target

        deadline = time.monotonic() + timeout
        try:
            while self._call(self.target.get_state) != Target.State.HALTED:
                if time.monotonic() >= deadline:
                    return None
                time.sleep(POLL_SECONDS)
            self.running = False
            return self._call(self._decode_stop)
        except CaptureError:
            return Stop(StopReason.EXITED, message=self.gone)

    def halt(self) -> Stop:
        if not self.running:
            return Stop(StopReason.HALTED, self._call(lambda: self.target.read_core_register_raw("pc")))

        def halt() -> Stop:
            self.target.halt()
            self._wait_halted()
            return self._decode_stop()

        stop = self._call(halt)
        self.running = False
        return stop

    def _wait_halted(self) -> None:
        from pyocd.core.target import Target

        deadline = time.monotonic() + HALT_TIMEOUT
        while self.target.get_state() != Target.State.HALTED:
            if time.monotonic() >= deadline:
                raise CaptureError(f"the core did not halt within {HALT_TIMEOUT:.0f} s")
            time.sleep(POLL_SECONDS)

    def step(self) -> Stop:
        def step() -> Stop:
            pc = self.target.read_core_register_raw("pc")
            on_breakpoint = self._breakpoint_at(pc) is not None
            if on_breakpoint:
                self.target.remove_breakpoint(pc)
            self.target.step(disable_interrupts=True)
            if on_breakpoint:
                self.target.set_breakpoint(pc, _hardware())
            stop = self._decode_stop()
            if stop.reason is StopReason.WATCHPOINT:
                return stop
            # Landing on a breakpointed instruction is a stop at that breakpoint, as gdb sees it.
            landed = self._breakpoint_at(stop.pc)
            self._last_stop = Stop(StopReason.BREAKPOINT, stop.pc, landed) if landed else stop
            return Stop(StopReason.STEP, stop.pc)

        return self._call(step)

    def _decode_stop(self) -> Stop:
        """Why the core halted, from DFSR and, for a DWT halt, the comparators' MATCHED bits."""
        dfsr = self.target.read32(DFSR)
        pc = self.target.read_core_register_raw("pc")
        stops = []
        if dfsr & DFSR_DWTTRAP:
            for number, point in self._matched_watchpoints():
                stops.append(Stop(StopReason.WATCHPOINT, pc, number, data_address=point.address))
            if not stops:
                stops.append(Stop(StopReason.WATCHPOINT, pc, message="DWT halt on no watched comparator"))
        if dfsr & DFSR_BKPT:
            stops.append(Stop(StopReason.BREAKPOINT, pc, self._breakpoint_at(pc)))
        if not stops:
            cause = "vector catch" if dfsr & DFSR_VCATCH else "external" if dfsr & DFSR_EXTERNAL else "halt"
            stops.append(Stop(StopReason.HALTED, pc, message=cause))
        self._pending.extend(stops[1:])
        self._last_stop = stops[0]
        return stops[0]

    def _matched_watchpoints(self) -> list[tuple[int, _Point]]:
        """Watchpoints whose DWT comparator fired (reading FUNCTIONn clears MATCHED)."""
        dwt = self.target.selected_core.dwt
        matched = []
        for number, point in self._points.items():
            if point.watch_type is None:
                continue
            comparator = dwt.find_watchpoint(point.address, point.size, point.watch_type)
            if comparator is not None:
                function = self.target.read32(comparator.comp_register_addr + DWT_FUNCTION_OFFSET)
                if function & DWT_FUNCTION_MATCHED:
                    matched.append((number, point))
        return matched

    # --- reading ---------------------------------------------------------------------------------

    def read_registers(self, names: tuple[str, ...]) -> dict[str, int]:
        values = self._call(lambda: self.target.read_core_registers_raw(list(names)))
        return dict(zip(names, values))

    def read_memory(self, address: int, size: int) -> bytes:
        return bytes(self._call(lambda: self.target.read_memory_block8(address, size)))

    def read_cycle_counter(self) -> int | None:
        """DWT CYCCNT, where the core has one (QEMU has none)."""
        if not self._has_cycle_counter:
            return None
        return self._call(lambda: self.target.read32(DWT_CYCCNT))

    def backtrace(self, depth: int) -> list[Frame]:
        registers = self.read_registers(UNWIND_REGISTERS)
        at_breakpoint = self._last_stop.reason is StopReason.BREAKPOINT and self._last_stop.pc == registers["pc"]
        return self._unwinder.unwind(registers.__getitem__, self.read_memory, depth, at_breakpoint)

    # --- letting go ---------------------------------------------------------------------------------

    def disconnect(self, resume: bool) -> None:
        """Remove every comparator this backend set, resume if asked, close the session.
        Never raises: with the probe gone there is nothing left to clean."""
        session = self.session
        if session is None:
            return
        try:
            if not self.gone:
                if self.running:
                    self.target.halt()
                # Each point is removed here: pyOCD 0.46's own disconnect forgets breakpoints it
                # has not flushed yet and the resume that follows flushes them back in.
                for number in list(self._points):
                    self.remove_point(number)
            session.options["resume_on_disconnect"] = resume
            session.close()
        except Exception as exc:  # a lost probe fails in many ways; none matters any more
            log.debug("disconnect: %s", exc)
            with contextlib.suppress(Exception):
                session.probe.close()
        finally:
            self.session = None
            self.running = False


def _hardware() -> Any:
    from pyocd.core.target import Target

    return Target.BreakpointType.HW


class ExceptionTrace:
    """Non-halting capture on hardware: DWT exception trace (and PC sampling) over SWO.

    pyOCD's SWV support configures the ITM and TPIU but neither sets DWT_CTRL.EXCTRCENA nor
    keeps it (its DWT init rewrites DWT_CTRL), so `configure()` does that after connect.
    Used as the capture's IRQ source: calling it returns the rows received since the last call.
    """

    def __init__(self, backend: PyOcdBackend, exception_name: Callable[[int], str]) -> None:
        self.backend = backend
        self.exception_name = exception_name
        self.pc_samples: list[tuple[float, int]] = []
        self._rows: deque[TimelineRow] = deque()
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._parser: Any = None

    def unavailable_reason(self) -> str | None:
        """Why this probe and target cannot trace exceptions without halting, or None."""
        from pyocd.coresight.itm import ITM
        from pyocd.coresight.tpiu import TPIU
        from pyocd.probe.debug_probe import DebugProbe

        session = self.backend.session
        assert session is not None and session.probe is not None
        if DebugProbe.Capability.SWO not in session.probe.capabilities:
            return f"probe {session.probe.unique_id} has no SWO input"
        target = self.backend.target
        if target.get_first_child_of_type(ITM) is None:
            return "the target has no ITM"
        tpiu = target.get_first_child_of_type(TPIU)
        if tpiu is None:
            return "the target has no TPIU"
        tpiu.init()
        if not tpiu.has_swo_uart:
            return "the target's TPIU has no SWO UART mode"
        return None

    def configure(self, system_clock: int, swo_clock: int, pc_sampling: bool = True) -> None:
        """Set up ITM, TPIU (SWO UART at `swo_clock`) and the DWT's exception trace."""
        from pyocd.coresight.itm import ITM
        from pyocd.coresight.tpiu import TPIU

        target = self.backend.target
        itm = target.get_first_child_of_type(ITM)
        tpiu = target.get_first_child_of_type(TPIU)
        itm.init()
        itm.enable()
        tpiu.init()
        if not tpiu.set_swo_clock(swo_clock, system_clock):
            raise UsageError(f"the SWO clock {swo_clock} Hz cannot be derived from {system_clock} Hz within 3%")
        target.write32(DEMCR, target.read32(DEMCR) | DEMCR_TRCENA)
        control = target.read32(DWT_CTRL) & ~DWT_CTRL_READ_ONLY
        control |= DWT_CTRL_EXCTRCENA
        if pc_sampling:
            control |= DWT_CTRL_PCSAMPLENA | DWT_CTRL_CYCTAP | DWT_CTRL_CYCCNTENA
            control |= PC_SAMPLE_POSTPRESET << DWT_CTRL_POSTPRESET_SHIFT
        target.write32(DWT_CTRL, control)

    def feed(self, data: bytes) -> None:
        """Decode SWO bytes with pyOCD's SWO parser; exception events become rows."""
        if self._parser is None:
            from pyocd.trace.sink import TraceEventSink
            from pyocd.trace.swo import SWOParser

            receive = self._receive

            class RowSink(TraceEventSink):
                def receive(self, event: Any) -> None:
                    receive(event)

            self._parser = SWOParser(self.backend.target.selected_core, RowSink())
        self._parser.parse(data)

    def start(self, swo_clock: int) -> None:
        """Read the probe's SWO input in a thread until `stop()`."""
        probe = self.backend.session.probe  # type: ignore[union-attr]

        def read_stream() -> None:
            probe.swo_start(swo_clock)
            try:
                while not self._stop_event.is_set():
                    data = probe.swo_read()
                    if data:
                        self.feed(bytes(data))
                    else:
                        self._stop_event.wait(0.001)
            finally:
                probe.swo_stop()

        self._thread = threading.Thread(target=read_stream, name="irqmon-swo", daemon=True)
        self._thread.start()

    def _receive(self, event: Any) -> None:
        from pyocd.trace.events import TraceExceptionEvent, TracePeriodicPC

        now = time.time()
        if isinstance(event, TraceExceptionEvent):
            if event.action == TraceExceptionEvent.ENTERED:
                kind = Event.IRQ_ENTER
            elif event.action == TraceExceptionEvent.EXITED:
                kind = Event.IRQ_EXIT
            else:
                return  # "returned to": the exit row already said it
            self._rows.append(
                {"epoch": now, "event": kind, "kind": Kind.IRQ, "probe": "swo", "ipsr": event.exception_number,
                 "exception": self.exception_name(event.exception_number), "cycles": event.timestamp}
            )  # fmt: skip
        elif isinstance(event, TracePeriodicPC):
            self.pc_samples.append((now, event.pc))

    def __call__(self) -> list[TimelineRow]:
        """The rows received since the last call (the reader thread keeps appending meanwhile)."""
        rows = []
        while self._rows:
            rows.append(self._rows.popleft())
        return rows

    def stop(self) -> None:
        self._stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout=2)


def start_exception_trace(
    backend: PyOcdBackend, target: TargetProfile, system_clock: int, swo_clock: int
) -> ExceptionTrace | str:
    """Exception trace streaming as the capture's IRQ source, or the one-line reason it cannot
    run on this probe and target (the capture then halts as usual)."""
    trace = ExceptionTrace(backend, target.exception_name)
    reason = trace.unavailable_reason()
    if reason is not None:
        return f"no exception trace: {reason}; capturing by halting the core"
    trace.configure(system_clock, swo_clock)
    trace.start(swo_clock)
    return trace


def timeline(backend: PyOcdBackend, args: BackendArgs) -> ExceptionTrace | str | None:
    """With --swo-clock, the exception trace as the capture's IRQ source."""
    options: PyOcdOptions = args.options
    if options.swo_clock is None or options.system_clock is None:
        return None
    return start_exception_trace(backend, args.target, options.system_clock, options.swo_clock)


BACKEND = BackendSpec(
    name=PROBE_NAME,
    help="pyOCD's Python API, to a debug probe on USB or to QEMU through the qemu probe plugin "
    "(the default with neither --qemu nor --gdb-remote)",
    reaches=frozenset({Reach.QEMU, Reach.PROBE}),
    create=create,
    options=OPTIONS,
    configure=configure,
    timeline=timeline,
)
