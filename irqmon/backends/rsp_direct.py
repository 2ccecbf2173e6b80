"""The lean backend: GDB's remote serial protocol spoken directly to the stub (QEMU's gdbstub,
OpenOCD, pyOCD gdbserver), with no gdb process in between.

Per breakpoint stop it costs what the protocol needs and little more: the stop reply; one
round trip for every register the capture and the unwinder use (`g`, `p` for the system
registers) together with the stack window the unwinder walks (guessed from the last stop's sp);
and the step off the breakpoint, sent as soon as those are in (where the instruction cannot
branch or store), or in the same write where every breakpoint allows it, so that it runs while
the capture builds its row. Code bytes come from the ELF.
Where the stub steps through a breakpoint under pc (QEMU does) it is not removed for the step.

Stubs that stop *before* a watched access (QEMU) are stepped once past it with the watchpoints
out, so a watchpoint stop is reported after the access, as DWT reports it. Stubs in front of a
real DWT (OpenOCD, pyOCD, J-Link) stop after it already; where their stop reply does not name
the watchpoint (pyOCD), the DWT's MATCHED bits say which one fired, and steps are checked too.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from irqmon.backends.base import CORE_REGISTERS, Stop, StopReason, WatchAccess
from irqmon.capture.registry import BackendArgs, BackendSpec, Reach
from irqmon.cortexm.elf import ElfImage
from irqmon.cortexm.frames import Frame
from irqmon.cortexm.points import PointTable
from irqmon.cortexm.registers import DWT_CYCCNT, dwt_comparator_count, matched_watchpoint, start_cycle_counter
from irqmon.cortexm.target_description import stub_registers
from irqmon.cortexm.thumb import falls_through, stores, waits_for_event
from irqmon.errors import CaptureError, UsageError
from irqmon.rsp import (
    SIGINT,
    SIGTRAP,
    PointKind,
    RspClient,
    RspDisconnected,
    RspError,
    StopReply,
    frame,
    refused,
)
from irqmon.cortexm.unwind import UNWIND_REGISTERS, Unwinder

BREAKPOINT_LENGTH = 2  # Thumb
WATCH_KINDS = {WatchAccess.READ: PointKind.READ, WatchAccess.WRITE: PointKind.WRITE, WatchAccess.ACCESS: PointKind.ACCESS}
SYSTEM_REGISTERS = ("msp", "psp", "primask", "control", "basepri", "faultmask")
CYCLES = "cyccnt"  # DWT CYCCNT, read with the registers when counted
STACK_WINDOW = 1024  # the unwinder's reads are served from blocks up to this size and alignment
STACK_BELOW_SP = 64  # how far below the last stop's sp the guessed window starts
ACK = b"+"


class _BatchedAckClient(RspClient):
    """An RspClient that acknowledges the replies of one exchange with one write at its end.

    For stubs without `QStartNoAckMode` (QEMU). An acknowledgement per packet is one system call
    each; sent at the end of the exchange they also go out before the next `s` or `c`: QEMU
    takes any byte that arrives while the target runs as an interrupt, an acknowledgement
    included. They are not held until the next request: the stub's next reply would wait for
    the TCP acknowledgement of this one (Nagle on the stub's side, delayed ACK on ours)."""

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

    def _flush_acks(self) -> None:
        if self._owed:
            data, self._owed = ACK * self._owed, 0
            super()._send(data)

    def pipeline(self, payloads: list[str | bytes], then: bytes | None = None, refused_ok: bool = False) -> list[str]:
        try:
            return super().pipeline(payloads, then, refused_ok)
        finally:
            if then is None:
                self._flush_acks()
            else:
                # The stub forgot these replies when `then` came (a new packet abandons the
                # last reply), and a byte that reaches the running target pauses it: none is sent.
                self._owed = 0

    def wait_stop(self, timeout: float | None) -> StopReply | None:
        try:
            return super().wait_stop(timeout)
        finally:
            self._flush_acks()

    def start_step(self) -> None:
        """Step one instruction; the stop reply comes later through `wait_stop`."""
        self._send(frame(b"s"))


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
    """The Backend protocol over `irqmon.rsp.RspClient`, backtraces from `irqmon.cortexm.unwind`."""

    name = "rsp"

    def __init__(
        self, elf: ElfImage, address: str, timeout: float = 10.0, cycle_counter: bool = False, traffic_log: Path | None = None
    ) -> None:
        self.elf = elf
        self.traffic_log = traffic_log  # -v: every packet, both ways
        self.cycle_counter = cycle_counter  # a real core: start DWT CYCCNT and read it at each stop
        self.address = address
        self.timeout = timeout
        self.running = False
        self.gone = ""
        self._client: RspClient | None = None
        self._unwinder = Unwinder(elf)
        self._register_numbers: dict[str, int] = {}
        self._g_layout: list[tuple[str, int]] = []  # (name, byte offset) of each register in `g`
        self._single_reads = True  # the stub answers `p` (pyOCD does not: everything is in `g`)
        self._points: PointTable[_Point] = PointTable()
        self._breakpoints: dict[int, int] = {}  # address -> point id
        self._registers: dict[str, int] | None = None  # cached while halted
        self._known_pc: int | None = None  # pc after a step, known without reading registers
        self._fall_through: dict[int, int | None] = {}  # pc -> next pc, for non-branching code
        self._step_passes_breakpoints: bool | None = None  # found out at the first step
        self._last_sp: int | None = None  # where the next stop's stack window is guessed
        self._memory: list[tuple[int, bytes]] = []  # blocks read while halted
        self._code_ranges = elf.read_only_ranges
        self._pending: list[Stop] = []
        self._early_step_from: int | None = None  # a step started at the stop, not yet reported
        self._early_reply: StopReply | None = None
        self._early_steppable: dict[int, bool] = {}
        self._steps_ahead: bool | None = None  # see `_every_breakpoint_steps_early`
        self._stops_before_access = False  # QEMU: a watchpoint stops before the access, DWT after
        self._dwt_comparators: int | None = None  # read when first needed

    # --- connecting -----------------------------------------------------------------------

    @property
    def client(self) -> RspClient:
        if self._client is None:
            raise CaptureError("not connected to the GDB stub")
        return self._client

    def connect(self) -> None:
        host, _, port = self.address.rpartition(":")
        try:
            self._client = _BatchedAckClient(host or "127.0.0.1", int(port), self.timeout)
            if self.traffic_log is not None:
                self._client.traffic = open(self.traffic_log, "wb")  # closed with the client
            self._client.handshake()
            self._client.halt_reason()  # a stub that stopped on connect has its stop consumed here
            # Only QEMU answers its own query (its single-step flags); only QEMU stops before.
            self._stops_before_access = self._client.request("qqemu.sstepbits") != ""
            self._read_register_map()
        except (RspError, ValueError) as exc:
            self.close()
            raise UsageError(f"cannot use the GDB stub at {self.address}: {exc}") from None
        readable = set(self._register_numbers) if self._single_reads else {name for name, _ in self._g_layout}
        missing = [name for name in (*UNWIND_REGISTERS, *CORE_REGISTERS) if name not in readable]
        if missing:
            self.close()
            raise UsageError(
                f"the GDB stub at {self.address} does not show {', '.join(missing)}: "
                "irqmon needs them (QEMU >= 8.0, OpenOCD, pyOCD and J-Link show them)"
            )
        if self.cycle_counter:
            self.cycle_counter = self._guard(
                lambda: start_cycle_counter(self.client.read_memory, self.client.write_memory)
            )
        self.running = False

    def _read_register_map(self) -> None:
        """Register numbers from the stub's target description, and the `g` packet layout."""
        registers = sorted(stub_registers(self.client.read_feature).values(), key=lambda r: r.number)
        self._register_numbers = {register.name: register.number for register in registers}
        g_size = len(self.client.request("g")) // 2
        offset, layout = 0, []
        for register in registers:
            if offset + register.size > g_size:
                break
            layout.append((register.name, offset))
            offset += register.size
        self._g_layout = layout
        numbers = self._register_numbers
        self._single_reads = "pc" in numbers and self.client.request(f"p{numbers['pc']:x}") != ""

    # --- comparators ----------------------------------------------------------------------

    def _add_point(self, point: _Point) -> int:
        reply = self._guard(lambda: self.client.pipeline([point.insert], refused_ok=True))[0]
        if refused(reply) or reply != "OK":
            what = "a hardware breakpoint" if point.kind is PointKind.HARDWARE else "a watchpoint"
            raise UsageError(
                f"the GDB stub at {self.address} refused {what} at 0x{point.address:08x} ({reply or 'not supported'}): "
                "the target has fewer comparators free than the probes need; choose fewer with --probes"
            )
        return self._points.add(point)

    def add_breakpoint(self, address: int) -> int:
        number = self._add_point(_Point(PointKind.HARDWARE, address & ~1, BREAKPOINT_LENGTH))
        self._breakpoints[address & ~1] = number
        self._steps_ahead = None
        return number

    def add_watchpoint(self, address: int, size: int, access: WatchAccess) -> int:
        return self._add_point(_Point(WATCH_KINDS[access], address, size))

    def remove_point(self, point: int) -> None:
        removed = self._points.pop(point)
        if removed.kind is PointKind.HARDWARE:
            self._breakpoints.pop(removed.address, None)
            self._steps_ahead = None
        self._request(removed.remove)

    def _watchpoints(self) -> list[_Point]:
        return [p for p in self._points.values() if p.kind is not PointKind.HARDWARE]

    # --- running --------------------------------------------------------------------------

    def resume(self) -> None:
        if self._pending:
            return  # a stop found while stepping off a breakpoint is still to be reported
        early = self._take_early_step()
        if early is not None:
            if early.reason is StopReason.STEP and early.pc not in self._breakpoints:
                self._forget_state()
                self._guard(self.client.cont)
                self.running = True
                return
            if early.reason is StopReason.STEP:
                early = Stop(StopReason.BREAKPOINT, early.pc, self._breakpoints[early.pc])
            self._pending.insert(0, early)
            return
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
        return self._stop_from(reply, step_ahead=True)

    def halt(self) -> Stop:
        if not self.running:
            return Stop(StopReason.HALTED, self._pc())
        reply = self._guard(self.client.stop)
        self.running = False
        if not reply.is_interrupt:
            # The target stopped on its own before the interrupt arrived: that stop is the halt's,
            # handled before anything changes the points (a rotation may remove its breakpoint).
            return self._stop_from(reply)
        pc = self._pc()
        if pc in self._breakpoints:
            # Halted at a breakpoint before it fired: resuming steps off it, so this is its hit.
            return Stop(StopReason.BREAKPOINT, pc, self._breakpoints[pc])
        return Stop(StopReason.HALTED, pc)

    def step(self) -> Stop:
        return self._take_early_step() or self._step_from(self._pc())

    # An early step: at a breakpoint stop whose instruction cannot branch or store (beyond a push
    # below sp), the step off the breakpoint is sent as soon as the registers and the stack
    # window are in, and runs while the capture builds its row from them. The capture's own
    # step, or its resume, then only collects it. Where every breakpoint's instruction allows
    # it, the step goes out in the same write as the register reads (see `_stop_from`).

    def _start_early_step(self, pc: int) -> None:
        if self._step_passes_breakpoints and not self._checks_dwt() and self._can_step_early(pc):
            self._guard(self.client.start_step)
            self._early_step_from, self._early_reply = pc, None

    def _can_step_early(self, pc: int) -> bool:
        if pc not in self._early_steppable:
            insn = self.elf.instruction_at(pc)
            self._early_steppable[pc] = insn is not None and falls_through(insn) and not stores(insn)
        return self._early_steppable[pc]

    def _settle(self) -> None:
        """Wait for an early step still running: the stub takes nothing else meanwhile. The step
        of a `wfi` or `wfe` waits for an interrupt that a step never takes: it is interrupted.
        The stub then reports either that stop or the step's own, if it ended first (an interrupt
        that reaches a halted stub is dropped)."""
        if self._early_step_from is None or self._early_reply is not None:
            return
        try:
            pc = self._early_step_from  # a memo lookup per hit; decoded only off early-steppable sites
            if not self._can_step_early(pc) and self._waits_for_event(pc):
                self.client.interrupt()
            reply = self.client.wait_stop(self.timeout)
        except RspDisconnected as exc:
            self.gone = str(exc)
            raise CaptureError(f"lost the target: {exc}") from None
        if reply is None:
            raise CaptureError("a single step did not finish")
        self._early_reply = reply

    def _take_early_step(self) -> Stop | None:
        """The stop an early step ended with, as `step` reports it; None if there was none."""
        if self._early_step_from is None:
            return None
        self._settle()
        pc, reply = self._early_step_from, self._early_reply
        self._early_step_from = self._early_reply = None
        self._forget_state()
        assert reply is not None
        if reply.exited:
            return self._exited(reply)
        if reply.watch is not None:
            return self._watch_stop(reply)
        self._known_pc = self._next_pc(pc)
        return Stop(StopReason.STEP, self._pc())

    def _step_from(self, pc: int) -> Stop:
        """One instruction, stepping off any breakpoint under pc."""
        if pc in self._breakpoints and self._step_passes_breakpoints is False:
            reply = self._step_without([self._points[self._breakpoints[pc]]], pc)
        else:
            calibrating = self._step_passes_breakpoints is None and pc in self._breakpoints
            reply = self._step_without([], pc, read_pc=calibrating)
            if calibrating:
                # The first step off a breakpoint tells whether the stub executes the
                # instruction (QEMU: single-stepping overrides breakpoints) or stops at once.
                self._step_passes_breakpoints = reply.watch is not None or self._pc() != pc
                if not self._step_passes_breakpoints:
                    reply = self._step_without([self._points[self._breakpoints[pc]]], pc)
        if reply.exited:
            return self._exited(reply)
        if reply.watch is not None:
            return self._watch_stop(reply)
        return Stop(StopReason.STEP, self._pc())

    def _step_without(self, points: list[_Point], pc: int, read_pc: bool = False) -> StopReply:
        """Take `points` out, step once from `pc`, put them back. Where the instruction cannot
        branch, the new pc is known without asking; else it comes back with the reinsertion."""
        replies = self._pipeline([p.remove for p in points] + ["s"])
        self._forget_state()
        reply = StopReply.parse(replies[-1])
        landing = self._next_pc(pc) if reply.watch is None and not reply.exited and not read_pc else None
        requests = [p.insert for p in points] + ([] if landing else [self._pc_request()])
        replies = self._pipeline(requests) if requests else []
        self._known_pc = landing or self._pc_from(replies[-1])
        if reply.watch is None and not reply.exited and self._checks_dwt():
            # The stub reports a step that made a watched access as a plain step (pyOCD).
            point = self._matched_watchpoint()
            if point is not None:
                watched = self._points[point]
                return StopReply(reply.signal, watch=watched.kind, watch_address=watched.address, raw=reply.raw)
        return reply

    def _next_pc(self, pc: int) -> int | None:
        """The address after the instruction at `pc` if it always falls through, else None."""
        if pc not in self._fall_through:
            insn = self.elf.instruction_at(pc)
            self._fall_through[pc] = insn.end if insn is not None and falls_through(insn) else None
        return self._fall_through[pc]

    def _stop_from(self, reply: StopReply, step_ahead: bool = False) -> Stop:
        """The stop `reply` reports. `step_ahead`: the target ran into it, so a SIGTRAP without a
        watchpoint is a breakpoint; if every breakpoint's instruction can be stepped early, the
        early step goes out with the register reads, before the pc is known (one round trip less).
        A stop that is no breakpoint's then has its instruction run early: the resume after it
        would run it anyway."""
        self._forget_state()
        if reply.exited:
            return self._exited(reply)
        if reply.watch is not None:
            return self._watch_stop(reply)
        if reply.signal == SIGINT:
            return Stop(StopReason.HALTED, self._pc(), message="SIGINT")
        stepping = step_ahead and reply.signal == SIGTRAP and self._every_breakpoint_steps_early()
        pc = self._all_registers(step=stepping)["pc"]
        if pc in self._breakpoints:
            if not stepping:
                self._start_early_step(pc)
            return Stop(StopReason.BREAKPOINT, pc, self._breakpoints[pc])
        if reply.signal == SIGTRAP and self._checks_dwt():
            point = self._matched_watchpoint()
            if point is not None:
                return self._after_access(pc, point, self._points[point].address)
        return Stop(StopReason.HALTED, pc, message=f"signal {reply.signal}")

    def _checks_dwt(self) -> bool:
        """Whether a stop or a step may have been a watchpoint the stub does not name."""
        return not self._stops_before_access and bool(self._watchpoints())

    def _matched_watchpoint(self) -> int | None:
        def read(address: int, size: int) -> bytes:
            return self._guard(lambda: self.client.read_memory(address, size))

        if self._dwt_comparators is None:
            self._dwt_comparators = dwt_comparator_count(read)
        watches = {n: p.address for n, p in self._points.items() if p.kind is not PointKind.HARDWARE}
        return matched_watchpoint(read, self._dwt_comparators, watches)

    def _watch_stop(self, reply: StopReply) -> Stop:
        if self._stops_before_access:
            return self._past_watched_access(reply)
        address = reply.watch_address
        return self._after_access(self._pc(), self._watch_point_at(address), address)

    def _after_access(self, pc: int, point: int | None, address: int | None) -> Stop:
        """A watchpoint stop as DWT reports it: after the access, which the instruction before
        `pc` made. The core may have reached a breakpoint too."""
        return Stop(StopReason.WATCHPOINT, pc, point, address, breakpoint_too=pc in self._breakpoints)

    def _watch_point_at(self, address: int | None) -> int | None:
        return next(
            (n for n, p in self._points.items()
             if p.kind is not PointKind.HARDWARE and address is not None and p.address <= address < p.address + p.length),
            None,
        )  # fmt: skip

    def _every_breakpoint_steps_early(self) -> bool:
        """Whether a step sent before the pc is known is right wherever the target stopped:
        every breakpoint is on an instruction that can be stepped early, or on a `wfi`/`wfe`
        (its step is ended with an interrupt, see `_settle`). Known again when they change."""
        if not self._step_passes_breakpoints or self._checks_dwt():
            return False
        if self._steps_ahead is None:
            self._steps_ahead = all(self._can_step_early(pc) or self._waits_for_event(pc) for pc in self._breakpoints)
        return self._steps_ahead

    def _waits_for_event(self, pc: int) -> bool:
        insn = self.elf.instruction_at(pc)
        return insn is not None and waits_for_event(insn)

    def _past_watched_access(self, reply: StopReply) -> Stop:
        """The stub stopped before the access: step over it with every comparator under the
        instruction out of the way, then report the stop as DWT would."""
        access_pc = self._pc()
        watches = self._watchpoints()
        around = watches + ([self._points[self._breakpoints[access_pc]]] if access_pc in self._breakpoints else [])
        stepped = self._step_without(around, access_pc)
        if stepped.exited:
            return self._exited(stepped)
        address = reply.watch_address
        pc = self._pc()
        # The access may have run up to a breakpoint: that one is hit too.
        return Stop(
            StopReason.WATCHPOINT, pc, self._watch_point_at(address), address, access_pc, breakpoint_too=pc in self._breakpoints
        )

    def _exited(self, reply: StopReply) -> Stop:
        self.gone = f"the target exited ({reply.raw})"
        return Stop(StopReason.EXITED, message=self.gone)

    # --- reading --------------------------------------------------------------------------

    def _forget_state(self) -> None:
        self._registers = None
        self._known_pc = None
        self._memory.clear()

    def _all_registers(self, step: bool = False) -> dict[str, int]:
        """Every register the capture and the unwinder use, in one pipelined round trip.
        `step`: an early step goes out in the same write, after the reads."""
        if self._registers is None:
            in_g = {name for name, _ in self._g_layout}
            system = [name for name in SYSTEM_REGISTERS if name in self._register_numbers and name not in in_g]
            requests = ["g"] + [f"p{self._register_numbers[name]:x}" for name in system]
            if self.cycle_counter:
                requests.append(f"m{DWT_CYCCNT:x},4")
            # The stack window the unwinder will read, guessed from the last stop's sp, goes in
            # the same round trip; if the stub refuses it, the unwinder asks for what it needs.
            guess = _stack_window(self._last_sp) if self._last_sp is not None else None
            window = [f"m{guess[0]:x},{guess[1] - guess[0]:x}"] if guess else []
            replies = self._guard(
                lambda: self.client.pipeline(requests + window, then=b"s" if step else None, refused_ok=True)
            )
            if window and not refused(window_reply := replies.pop()):
                self._memory.append((guess[0], bytes.fromhex(window_reply)))
            failed = next((r for r in replies if refused(r)), None)
            if failed:
                if step:  # the step went out all the same: take its stop reply
                    self._guard(lambda: self.client.wait_stop(self.timeout))
                raise CaptureError(f"the GDB stub at {self.address} refused a register read: {failed}")
            block = bytes.fromhex(replies[0])
            registers = {name: struct.unpack_from("<I", block, offset)[0] for name, offset in self._g_layout}
            for name, reply in zip(system, replies[1:]):
                registers[name] = int.from_bytes(bytes.fromhex(reply)[:4], "little")
            if self.cycle_counter:
                registers[CYCLES] = int.from_bytes(bytes.fromhex(replies[-1]), "little")
            self._registers = registers
            self._last_sp = registers["sp"]
            if step:
                self._early_step_from, self._early_reply = registers["pc"], None
        return self._registers

    def _pc_request(self) -> str:
        return f"p{self._register_numbers['pc']:x}" if self._single_reads else "g"

    def _pc_from(self, reply: str) -> int:
        if self._single_reads:
            return int.from_bytes(bytes.fromhex(reply)[:4], "little")
        return struct.unpack_from("<I", bytes.fromhex(reply), dict(self._g_layout)["pc"])[0]

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
        for start, end in self._code_ranges:
            if start <= address and address + size <= end:
                return self.elf.read_code(address, size)
        for start, data in self._memory:
            if start <= address and address + size <= start + len(data):
                return data[address - start : address - start + size]
        start, end = _stack_window(address)
        window = self.read_memory(address, max(end, address + size) - address)
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
        """Remove every point, resume the target and drop the connection. Never raises. The
        target is resumed here, not by a detach: OpenOCD leaves a halted target halted on `D`
        (QEMU and pyOCD resume it); while it runs, only a Ctrl-C may follow, so no `D` is sent."""
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
                    self._guard(self.client.cont)
        except (CaptureError, RspError, OSError):
            pass
        finally:
            self.close()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            if self._client.traffic is not None:
                self._client.traffic.close()
            self._client = None
        self.running = False

    # --- plumbing -------------------------------------------------------------------------

    def _request(self, payload: str) -> str:
        return self._pipeline([payload])[0]

    def _pipeline(self, payloads: list[str]) -> list[str]:
        return self._guard(lambda: self.client.pipeline(payloads))

    def _guard(self, call):
        """Run a client call (after any early step), turning protocol failures into CaptureError."""
        self._settle()
        try:
            return call()
        except RspDisconnected as exc:
            self.gone = str(exc)
            self.running = False
            raise CaptureError(f"lost the target: {exc}") from None
        except RspError as exc:
            raise CaptureError(str(exc)) from None


def _stack_window(sp: int) -> tuple[int, int]:
    """The block read for a stack near `sp`: from a little below it up to the next window
    boundary. RAM ends on such a boundary, so the block never runs past it."""
    start = max(0, sp - STACK_BELOW_SP) & ~3
    return start, (sp // STACK_WINDOW + 1) * STACK_WINDOW


def create(args: BackendArgs) -> RspBackend:
    assert args.gdb_address is not None
    return RspBackend(args.elf, args.gdb_address, cycle_counter=args.on_hardware, traffic_log=args.traffic_log)


BACKEND = BackendSpec(
    name="rsp",
    help="the GDB remote protocol spoken directly, no gdb process (fewer round trips per stop)",
    reaches=frozenset({Reach.QEMU, Reach.GDB_SERVER}),
    create=create,
)
