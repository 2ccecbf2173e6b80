"""The capture loop: install a plan's comparators through a backend, turn every stop into trace
rows, merge the emulator's IRQ timeline, and always leave the target running and clean.

This is the hot path: per stop it does one register batch, one backtrace, and reads memory only
where the event needs it (watched value, task name, exception priority).
"""

from __future__ import annotations

import time
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from irqmon.backends.base import CORE_REGISTERS, Backend, Stop, StopReason, WatchAccess
from irqmon.capture.budget import PAIRED_KINDS, ArmingPlan, Site, arming_plan, comparator_block, paired_kind
from irqmon.cortexm import thumb
from irqmon.cortexm.elf import ElfImage
from irqmon.cortexm.exceptions import EXC_RETURN_PREFIX, FIRST_CONFIGURABLE, FIRST_IRQ
from irqmon.cortexm.registers import NVIC_IPR, SCB_SHPR
from irqmon.errors import CaptureError
from irqmon.probes import ARG_REGISTERS, CapturePlan, FunctionProbe, MaskProbe, WatchProbe
from irqmon.schema import ARGS_SEPARATOR, CALLPATH_SEPARATOR, Event, Kind, Role, Row, TimelineRow
from irqmon.targets import TargetProfile
from irqmon.tracewriter import TraceWriter

STOP_REGISTERS = ARG_REGISTERS + CORE_REGISTERS
CALLPATH_DEPTH = 16
PRIORITY_CACHE_SECONDS = 0.5
POLL_SECONDS = 0.05
STEP_ATTEMPTS = 4
VALUE_BYTES = 4  # watched values are read (and written to the trace) up to this size; a wider range has none
# How many rotation periods a switch may wait for a safe moment (unmasked, no call of the set
# going out yet to return, no pair of it open) before it switches anyway.
ROTATION_PATIENCE = 2


@dataclass
class CaptureLimits:
    duration: float | None = None
    max_events: int | None = None
    until: int | None = None  # stop when the core reaches this address


@dataclass
class CaptureSummary:
    events: int = 0
    halts: int = 0
    elapsed: float = 0.0
    by_kind: Counter = field(default_factory=Counter)
    by_exception: Counter = field(default_factory=Counter)
    ended_by: str = ""
    error: str = ""


class HaltClock:
    """When the capture held the core halted, so that every row can say how much of its `time`
    the core spent stopped (`halted`) and after how many halts (`halts`): the core's own run
    time is `time - halted`. Times are host epochs (time.time()), as the IRQ timeline's are."""

    def __init__(self, start: float) -> None:
        self.halts = 0
        self.total = 0.0  # seconds halted in the halts that ended
        self.halted_since: float | None = start  # the core is halted when the capture begins
        # The halts that ended, oldest first, kept while IRQ rows from before them may still come.
        self._starts: list[float] = []
        self._ends: list[float] = []
        self._totals: list[float] = []  # `total` after each of them

    def stopped(self, when: float) -> None:
        if self.halted_since is None:
            self.halted_since = when
            self.halts += 1

    def resumed(self, when: float) -> None:
        if self.halted_since is None:
            return
        self.total += when - self.halted_since
        self._starts.append(self.halted_since)
        self._ends.append(when)
        self._totals.append(self.total)
        self.halted_since = None

    def during_halt(self, now: float) -> tuple[float, int]:
        """`halted` and `halts` of a row made now, while the core is halted: its run time is the
        time the halt began."""
        current = 0.0 if self.halted_since is None else now - self.halted_since
        return self.total + current, self.halts

    def at(self, epoch: float) -> tuple[float, int]:
        """`halted` and `halts` of an event the core made at `epoch` while running (an IRQ entry
        or exit); one stamped inside a halt (clocks read apart) counts from that halt's start."""
        ended = bisect_right(self._ends, epoch)
        if ended:
            halted = self._totals[ended - 1]
        else:  # before the oldest kept halt ended (or none has ended yet)
            halted = self._totals[0] - (self._ends[0] - self._starts[0]) if self._ends else 0.0
        if ended < len(self._starts) and self._starts[ended] < epoch:
            halted += epoch - self._starts[ended]
        elif ended == len(self._ends) and self.halted_since is not None and epoch > self.halted_since:
            halted += epoch - self.halted_since
        later = len(self._starts) - bisect_right(self._starts, epoch)
        later += self.halted_since is not None and epoch < self.halted_since
        return halted, self.halts - later

    def forget_before(self, epoch: float) -> None:
        """Drop the halts that ended before `epoch`: no IRQ row older than it is still to come."""
        ended = bisect_right(self._ends, epoch)
        if ended > 1:
            del self._starts[: ended - 1], self._ends[: ended - 1], self._totals[: ended - 1]


# An IRQ timeline read without halting: each call returns the entries and exits since the last.
IrqSource = Callable[[], Iterable[TimelineRow]]
# Where the target itself reports its halts (QEMU's gdbstub trace): after each IrqSource call,
# the changes it read, in order: (host epoch, True for stopped, False for running again).
HaltSource = Callable[[], list[tuple[float, bool]]]


class Capture:
    """One capture session over a connected, halted backend."""

    def __init__(
        self,
        backend: Backend,
        plan: CapturePlan,
        elf: ElfImage,
        target: TargetProfile,
        writer: TraceWriter,
        irq_source: IrqSource | None = None,
        halt_source: HaltSource | None = None,
        on_progress: Callable[[CaptureSummary], None] | None = None,
        arming: ArmingPlan | None = None,
        rotate_seconds: float | None = None,
    ) -> None:
        """`arming`: the comparator sets (default: every site at once); `rotate_seconds`: arm
        them in turns, switching this often (None: the first set only)."""
        self.backend = backend
        self.plan = plan
        self.elf = elf
        self.target = target
        self.writer = writer
        self.irq_source = irq_source
        self.halt_source = halt_source
        self.on_progress = on_progress
        self.arming = arming or arming_plan(plan, elf, target, unlimited=True)
        self.rotate_seconds = rotate_seconds if self.arming.rotates else None
        self.summary = CaptureSummary()
        self._start = time.time()
        self.halt_clock = HaltClock(self._start)
        self._handlers: dict[int, list[Callable[[dict], None]]] = defaultdict(list)
        self._breakpoint_ids: dict[int, int] = {}  # address -> backend id
        self._watch_by_point: dict[int, WatchProbe] = {}
        self._shadow: dict[int, int] = {}  # watched address -> last value seen
        # return address -> (sp at the call, probe, object the call worked on)
        self._pending_returns: dict[int, list[tuple[int, FunctionProbe, int | None]]] = defaultdict(list)
        self._priority_cache: dict[int, tuple[float, int | None]] = {}
        self._task_names: dict[int, str] = {}
        self._until_reached = False
        self.stop_requested = ""  # why the capture is to end at its next safe point
        # Breakpoints right after a store: gdb may report the breakpoint alone when that store
        # hit a watchpoint, so a changed watched value is checked there.
        self._after_store: set[int] = set()
        # Registers at the last breakpoint stop and the event count after it was handled.
        self._last_breakpoint: tuple[tuple[int, ...], int] | None = None
        # What each armed site set up: its (address, handler) pairs and its watchpoint ids.
        self._armed: dict[Site, tuple[list[tuple[int, Callable[[dict], None]]], list[int]]] = {}
        self._turn = 0  # which turn of `self._turns` is armed
        # The first set holds the sites the rules most need in handlers: with three sets or
        # more it is armed every other turn (0, 1, 0, 2, 0, 3, ...), the others in between.
        count = len(self.arming.sets)
        self._turns = [0] + [i for other in range(1, count) for i in (other, 0)][:-1] if count > 2 else list(range(count))
        self._set_since = 0.0  # time.monotonic() when the current set was armed
        # (pack, kind) of a paired site -> takes not yet given back (enter/acquire minus exit/release)
        self._open_pairs: Counter[tuple[str, str]] = Counter()

    # --- set-up and tear-down -----------------------------------------------------------

    def _break_at(self, address: int, handler: Callable[[dict], None]) -> None:
        if address not in self._breakpoint_ids:
            self._breakpoint_ids[address] = self.backend.add_breakpoint(address)
        self._handlers[address].append(handler)

    def install(self, limits: CaptureLimits) -> None:
        """Arm the first comparator set (and --until's breakpoint) and record what is armed."""
        if limits.until is not None:
            self._break_at(limits.until, self._on_until)
        if self.plan.watches:
            addresses = {p.address for p in (*self.plan.functions, *self.plan.masks)} | set(self._breakpoint_ids)
            self._after_store = {
                address for address in addresses
                if (insn := self.elf.instruction_before(address)) and thumb.access_direction(insn) == "w"
            }  # fmt: skip
        for site in self._plan_order(self.arming.first):
            self._arm(site)
        first = set(self.arming.first)
        for site in self.arming.sites:
            self._write_coverage(site, site in first)
        self._set_since = time.monotonic()

    def _plan_order(self, sites: Iterable[Site]) -> list[Site]:
        """`sites` in the plan's order: functions, then mask sites, then watches (the order gdb
        numbers the points in, which decides how it reports a watchpoint and a breakpoint hit
        in one halt)."""
        position = {id(p): i for i, p in enumerate((*self.plan.functions, *self.plan.masks, *self.plan.watches))}
        return sorted(sites, key=lambda site: min(position.get(id(p), len(position)) for p in (*site.functions, *site.masks, *site.watches)))

    def _arm(self, site: Site) -> None:
        handlers: list[tuple[int, Callable[[dict], None]]] = []
        for probe in site.functions:
            handlers.append((probe.address, lambda regs, p=probe: self._on_call(p, regs)))
        for mask in site.masks:
            handlers.append((mask.address, lambda regs, m=mask: self._on_mask(m, regs)))
        for address, handler in handlers:
            self._break_at(address, handler)
        points = []
        for watch in site.watches:
            self._shadow[watch.address] = self._watched_value(watch)
            base, length = comparator_block(watch.address, watch.size)
            point = self.backend.add_watchpoint(base, length, WatchAccess.ACCESS)
            self._watch_by_point[point] = watch
            points.append(point)
        self._armed[site] = (handlers, points)

    def _disarm(self, site: Site) -> None:
        handlers, points = self._armed.pop(site)
        for address, handler in handlers:
            self._handlers[address].remove(handler)
            if not self._handlers[address]:
                del self._handlers[address]
                self.backend.remove_point(self._breakpoint_ids.pop(address))
        for point in points:
            self.backend.remove_point(point)
            del self._watch_by_point[point]

    def _write_coverage(self, site: Site, armed: bool) -> None:
        """A coverage row: `site` armed (value 1) or disarmed (0) from now on."""
        first = min((p.address for p in (*site.functions, *site.masks, *site.watches)), default=None)
        self.writer.write(
            {"time": time.time() - self._start, "event": Event.COVERAGE, "kind": site.kind, "probe": site.probe,
             "symbol": site.name, "address": first, "value": int(armed)}
        )  # fmt: skip

    # --- rotation ---------------------------------------------------------------------------

    def _rotation_due(self) -> bool:
        return self.rotate_seconds is not None and time.monotonic() - self._set_since >= self.rotate_seconds

    def _rotate(self) -> None:
        """Arm the next comparator set, the core halted. For up to ROTATION_PATIENCE periods it
        waits for a moment outside masked critical sections, with no probed call of the set going
        out yet to return and no pair of it (enter/exit, take/give) open: the other half would go
        unseen. Sites in both sets stay armed."""
        assert self.rotate_seconds is not None
        regs = self._registers()
        masked = bool(regs["primask"] & 1 or regs["basepri"] & 0xFF or regs["faultmask"] & 1)
        next_turn = (self._turn + 1) % len(self._turns)
        incoming = self.arming.sets[self._turns[next_turn]]
        staying = set(incoming)
        outgoing = [site for site in self._armed if site not in staying]
        returning = {p.symbol for site in outgoing for p in site.functions if p.returns}
        pending = [entry for entries in self._pending_returns.values() for entry in entries if entry[1].symbol in returning]
        pairs = [(site.probe, site.kind) for site in outgoing if site.functions and site.kind in PAIRED_KINDS]
        held = any(self._open_pairs[pair] > 0 for pair in pairs)
        waited = time.monotonic() - self._set_since
        if (masked or pending or held) and waited < ROTATION_PATIENCE * self.rotate_seconds:
            return
        for pair in pairs:
            self._open_pairs.pop(pair, None)
        for address, entries in list(self._pending_returns.items()):
            entries[:] = [entry for entry in entries if entry[1].symbol not in returning]
            if not entries:
                self._pending_returns.pop(address)
                self._release_return_breakpoint(address)
        self._turn = next_turn
        for site in outgoing:
            self._disarm(site)
            self._write_coverage(site, False)
        for site in self._plan_order(incoming):
            if site not in self._armed:
                self._arm(site)
                self._write_coverage(site, True)
        self._set_since = time.monotonic()

    def _rotate_with_halt(self) -> None:
        """Rotate while the target runs: halt it briefly (handling a stop the halt met). A stop
        that reached `--until` leaves it halted there: the capture ends."""
        stop = self.backend.halt()
        self._halted()
        if stop.reason in (StopReason.BREAKPOINT, StopReason.WATCHPOINT, StopReason.EXITED):
            self._handle(stop)
            if self._until_reached:
                return
        self._rotate()
        self._resume()

    def _release_return_breakpoint(self, address: int) -> None:
        handlers = self._handlers.get(address)
        if handlers:
            handlers.remove(self._on_return)
        if not handlers:
            self._handlers.pop(address, None)
            self.backend.remove_point(self._breakpoint_ids.pop(address))

    # --- the loop -------------------------------------------------------------------------

    def request_stop(self, reason: str) -> None:
        """End the capture at its next safe point, between two exchanges with the target (a
        signal handler calls this: an exchange cut in half would leave the debugger out of step)."""
        self.stop_requested = reason

    def run(self, limits: CaptureLimits) -> CaptureSummary:
        """Capture until a limit, a stop request, Ctrl-C or the target going away. Always cleans up."""
        self._start = time.time()
        self.halt_clock = HaltClock(self._start)
        deadline = self._start + limits.duration if limits.duration else None
        try:
            self.install(limits)
            self._resume()
            while True:
                stop = self.backend.wait_stop(POLL_SECONDS)
                if stop is not None:
                    self._halted()
                self._drain_irqs()
                if stop is not None:
                    self._handle(stop)
                    if self._until_reached:
                        self.summary.ended_by = "reached --until"
                        break
                if self.stop_requested:
                    self.summary.ended_by = self.stop_requested
                    break
                if limits.max_events and self.summary.events >= limits.max_events:
                    self.summary.ended_by = "--max-events"
                    break
                if deadline and time.time() >= deadline:
                    self.summary.ended_by = "--duration"
                    break
                if stop is not None:
                    if self._rotation_due():
                        self._rotate()
                    self._resume()
                elif self._rotation_due():
                    self._rotate_with_halt()
                    if self._until_reached:  # at a stop its halt met: the core is halted there
                        self.summary.ended_by = "reached --until"
                        break
                if self.on_progress:
                    self.on_progress(self.summary)
        except KeyboardInterrupt:
            self.summary.ended_by = "Ctrl-C"
        except CaptureError as exc:
            self.summary.error = str(exc)
            self.summary.ended_by = "error"
        finally:
            self._finish()
        return self.summary

    def _halted(self) -> None:
        """The core just stopped (the capture's own stamp, where the target does not report it)."""
        if self.halt_source is None:
            self.halt_clock.stopped(time.time())

    def _resume(self) -> None:
        if self.halt_source is None:
            self.halt_clock.resumed(time.time())
        self.backend.resume()

    def _finish(self) -> None:
        try:
            if not self.summary.error:
                self.backend.halt()
                self._halted()
                self._drain_irqs()
                self._read_configs()
        except (CaptureError, KeyboardInterrupt) as exc:
            self.summary.error = self.summary.error or str(exc)
        finally:
            self.backend.disconnect(resume=True)
            if self.halt_source is None:
                self.halt_clock.resumed(time.time())
            try:
                for site in list(self._armed):
                    self._armed.pop(site)
                    self._write_coverage(site, False)
                self._drain_irqs()
            except CaptureError as exc:  # the trace cannot take them (disk full): what it has stays
                self.summary.error = self.summary.error or str(exc)
            self.summary.elapsed = time.time() - self._start
            self.writer.close()

    def _handle(self, stop: Stop) -> None:
        if stop.reason is StopReason.EXITED:
            raise CaptureError(f"the target went away: {stop.message}")
        self.summary.halts += 1
        if stop.reason is StopReason.WATCHPOINT:
            regs = self._registers()
            watch = self._watch_by_point.get(stop.point) if stop.point is not None else None
            if watch is not None:
                self._on_access(watch, stop, regs)
            if stop.breakpoint_too:
                self._run_handlers(regs)
            return
        if stop.reason is StopReason.BREAKPOINT:
            regs = self._registers()
            state = (tuple(regs.values()), self.summary.events)
            if state == self._last_breakpoint:
                # The same instruction reported again with nothing run in between (gdb on QEMU
                # sometimes resumes without stepping off the breakpoint): one event, not two.
                return
            if regs["pc"] in self._after_store:
                self._catch_unreported_write(regs)
            self._run_handlers(regs)
            self._last_breakpoint = (tuple(regs.values()), self.summary.events)

    def _catch_unreported_write(self, regs: dict[str, int]) -> None:
        store = self.elf.instruction_before(regs["pc"])
        for watch in list(self._watch_by_point.values()):
            if watch.size <= VALUE_BYTES and self._watched_value(watch) != self._shadow.get(watch.address):
                stop = Stop(StopReason.WATCHPOINT, regs["pc"], access_pc=store.address)
                self._on_access(watch, stop, regs, function=self.elf.function_at(store.address))

    def _run_handlers(self, regs: dict[str, int]) -> None:
        """Everything probed at the current pc."""
        for handler in list(self._handlers.get(regs["pc"], ())):
            handler(regs)

    # --- rows -----------------------------------------------------------------------------

    def _registers(self) -> dict[str, int]:
        return self.backend.read_registers(STOP_REGISTERS)

    def _base_row(self, regs: dict[str, int], pc: int | None = None, function: str | None = None) -> Row:
        """The columns every halting row has. `function`: the function `pc` is in, when the
        core has moved on from it (frames of code inlined after it are left out)."""
        ipsr = regs["xpsr"] & 0x1FF
        pc = regs["pc"] if pc is None else pc
        frames = self.backend.backtrace(CALLPATH_DEPTH)
        now = time.time()
        halted, halts = self.halt_clock.during_halt(now)
        if function is not None:
            names = [frame.function for frame in frames]
            if function in names:
                frames = frames[names.index(function) :]
        return {
            "time": now - self._start,
            "halted": halted,
            "halts": halts,
            "cycles": self.backend.read_cycle_counter(),
            "pc": pc,
            "lr": regs["lr"],
            "sp": regs["sp"],
            "ipsr": ipsr,
            "exception": self.target.exception_name(ipsr),
            "priority": self._priority(ipsr),
            "basepri": regs["basepri"],
            "primask": regs["primask"] & 1,
            "faultmask": regs["faultmask"] & 1,
            "control": regs["control"],
            "task": self._task() if ipsr == 0 else None,
            "callpath": CALLPATH_SEPARATOR.join(f.function for f in frames),
            "source": self.elf.source_line(pc),
        }

    def _emit(self, row: Row) -> None:
        self.writer.write(row)
        self.summary.events += 1
        self.summary.by_kind[row.get("kind") or row.get("event")] += 1
        self.summary.by_exception[row.get("exception") or "?"] += 1

    def _on_call(self, probe: FunctionProbe, regs: dict[str, int]) -> None:
        row = self._base_row(regs)
        row.update(call_row_fields(probe, regs, self.elf, row["source"]))
        marker = probe.object_marker
        if marker is not None and row["address"]:
            if self._read_value(row["address"] + marker.offset, marker.size) == marker.equals:
                row["role"] = marker.role
        self._emit(row)
        pair = paired_kind(probe)
        if pair and row["role"] in (Role.ENTER, Role.ACQUIRE):
            self._open_pairs[(probe.probe, pair)] += 1
        elif pair and row["role"] in (Role.EXIT, Role.RELEASE):
            self._open_pairs[(probe.probe, pair)] -= 1
        return_address = regs["lr"] & ~1
        if probe.returns and regs["lr"] & EXC_RETURN_PREFIX != EXC_RETURN_PREFIX:
            pending = self._pending_returns[return_address]
            if not pending:
                self._break_at(return_address, self._on_return)
            pending.append((regs["sp"], probe, row["address"]))

    def _on_return(self, regs: dict[str, int]) -> None:
        address = regs["pc"]
        pending = self._pending_returns.get(address, [])
        # Innermost first; a function that tail-calls another returns at the same place.
        matches = [entry for entry in reversed(pending) if entry[0] == regs["sp"]]
        if not matches:
            return
        row = self._base_row(regs)
        for entry in matches:
            pending.remove(entry)
            _, probe, target_object = entry
            self._emit(
                row | {"event": Event.RETURN, "kind": probe.kind, "role": probe.role, "probe": probe.probe,
                       "symbol": probe.symbol, "value": regs["r0"], "address": target_object}
            )  # fmt: skip
        if not pending:
            self._pending_returns.pop(address, None)
            self._release_return_breakpoint(address)

    def _on_mask(self, mask: MaskProbe, before: dict[str, int]) -> None:
        row = self._base_row(before, pc=mask.address)
        after = self._step_off(mask.address)
        row.update(mask_row_fields(mask, before, after))
        self._emit(row)
        # The step may have landed on another probed instruction: handle it now, since
        # resuming from here would run straight past it.
        self._run_handlers(after)

    def _step_off(self, address: int) -> dict[str, int]:
        """Execute the instruction at `address` and return the registers after it. QEMU's
        gdbstub now and then reports a step done without running anything (1 to 4 steps in
        100 with a timer interrupt due); a mask instruction always moves the pc, so a step
        that left it in place is sent again."""
        for _ in range(STEP_ATTEMPTS):
            stop = self.backend.step()
            if stop.reason is StopReason.EXITED:
                raise CaptureError(f"the target went away: {stop.message}")
            after = self._registers()
            if after["pc"] != address:
                return after
        raise CaptureError(f"{STEP_ATTEMPTS} single steps did not execute the instruction at 0x{address:08x}")

    def _watched_value(self, watch: WatchProbe) -> int | None:
        return self._read_value(watch.address, watch.size) if watch.size <= VALUE_BYTES else None

    def _on_access(self, watch: WatchProbe, stop: Stop, regs: dict[str, int], function: str | None = None) -> None:
        """A watched access. The comparator may cover more than the watched bytes (a DWT
        comparator covers an aligned power-of-two block): its rows say the watched range."""
        value = self._watched_value(watch)
        previous = self._shadow.get(watch.address)
        insn = (
            self.elf.instruction_at(stop.access_pc)
            if stop.access_pc is not None
            else self.elf.instruction_before(regs["pc"])
        )
        access = thumb.access_direction(insn) if insn else None
        if access is None and value is not None:
            access = "w" if value != previous else "r"
        row = self._base_row(regs, pc=insn.address if insn else regs["pc"], function=function)
        row.update(
            event=Event.ACCESS, kind=watch.kind, role=watch.role(access, value), probe=watch.probe,
            symbol=watch.symbol, address=watch.address, access=access, value=value,
            old_value=previous if access == "w" else None, size=watch.size,
        )  # fmt: skip
        self._shadow[watch.address] = value
        self._emit(row)

    def _on_until(self, regs: dict[str, int]) -> None:
        self._until_reached = True

    def _read_configs(self) -> None:
        for config in self.plan.configs:
            value = self._read_value(config.address, min(config.size, 4))
            now = time.time()
            halted, halts = self.halt_clock.during_halt(now)
            self._emit(
                {"time": now - self._start, "halted": halted, "halts": halts, "cycles": self.backend.read_cycle_counter(),
                 "event": Event.CONFIG, "kind": Kind.CONFIG, "probe": "config", "symbol": config.name, "address": config.address, "value": value,
                 "args": f"from={config.symbol}"}
            )  # fmt: skip

    # --- reads that not every stop needs ----------------------------------------------------

    def _read_value(self, address: int, size: int) -> int:
        return int.from_bytes(self.backend.read_memory(address, size), "little")

    def _priority(self, ipsr: int) -> int | None:
        """The active exception's priority in implemented bits, from NVIC_IPR or SCB_SHPR."""
        if ipsr < FIRST_CONFIGURABLE:
            return None  # thread mode, or Reset/NMI/HardFault with fixed priorities
        cached = self._priority_cache.get(ipsr)
        now = time.monotonic()
        if cached and now - cached[0] < PRIORITY_CACHE_SECONDS:
            return cached[1]
        address = NVIC_IPR + ipsr - FIRST_IRQ if ipsr >= FIRST_IRQ else SCB_SHPR + ipsr - FIRST_CONFIGURABLE
        priority = self.target.logical_priority(self._read_value(address, 1))
        self._priority_cache[ipsr] = (now, priority)
        return priority

    def _task(self) -> str | None:
        task = self.plan.task
        if task is None:
            return None
        tcb = self._read_value(task.pointer_address, 4)
        if tcb == 0:
            return None
        if tcb not in self._task_names:
            raw = self.backend.read_memory(tcb + task.name_offset, task.name_length)
            name = raw.split(b"\0", 1)[0].decode(errors="replace") or f"tcb@{tcb:#x}"
            # Task names need not be unique (two tasks of one function, one name): the control
            # block tells them apart.
            self._task_names[tcb] = f"{name}@{tcb:#x}" if name in self._task_names.values() else name
        return self._task_names[tcb]

    def _drain_irqs(self) -> None:
        if self.irq_source is None:
            return
        rows = self.irq_source()
        if self.halt_source is not None:
            for epoch, stopped in self.halt_source():
                (self.halt_clock.stopped if stopped else self.halt_clock.resumed)(epoch)
        latest = None
        for row in rows:
            latest = row.pop("epoch")
            row["time"] = latest - self._start
            row["halted"], row["halts"] = self.halt_clock.at(latest)
            self.summary.by_exception[row["exception"]] += 1
        if latest is not None:
            self.halt_clock.forget_before(latest)
        self.writer.write_many(rows)
        self.summary.events += len(rows)
        self.summary.by_kind[Kind.IRQ] += len(rows)


def mask_value(regs: dict[str, int], register: str) -> int:
    return regs[register] & (0xFF if register == "basepri" else 1)


def mask_row_fields(mask: MaskProbe, before: dict[str, int], after: dict[str, int]) -> Row:
    """The columns of a mask row beyond the registers before it: the register's value before
    and after, and the masks as the instruction left them."""
    register = mask.register
    return {
        "event": Event.MASK, "kind": Kind.CRITICAL_SECTION, "role": mask.role, "probe": mask.probe,
        "symbol": register, "address": mask.address, "args": f"insn={mask.text}",
        "old_value": mask_value(before, register), "value": mask_value(after, register),
        "basepri": after["basepri"], "primask": after["primask"] & 1, "faultmask": after["faultmask"] & 1,
    }  # fmt: skip


def call_row_fields(probe: FunctionProbe, regs: dict[str, int], elf: ElfImage, source: str | None) -> Row:
    """The columns of a call row beyond the registers: its arguments, the caller, and the
    source line of the call (the instruction before the return address; else `source`)."""
    args = {name: regs[register] for name, register in probe.args.items()}
    caller = elf.function_at(regs["lr"] & ~1)
    arg_text = [f"{name}={value:#x}" if name != probe.size_arg else f"{name}={value}" for name, value in args.items()]
    if caller:
        arg_text.append(f"caller={caller}")
    size = args.get(probe.size_arg) if probe.size_arg else None
    return {
        "event": Event.CALL, "kind": probe.kind, "role": probe.role, "probe": probe.probe, "symbol": probe.symbol,
        "address": args.get(probe.object_arg) if probe.object_arg else None, "size": size, "value": size,
        "args": ARGS_SEPARATOR.join(arg_text),
        "source": elf.source_line((regs["lr"] & ~1) - 2) or source,
    }  # fmt: skip
