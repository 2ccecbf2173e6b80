"""Recording inside QEMU: the recorder plugin's records turned into trace rows, no halts.

The plugin writes records into a FIFO while the guest runs; here they are read in batches and
become the same rows the halting backends write (`irqmon.capture.loop`), with `cycles` holding
the instructions the core had retired (exact, and free of any debugger's time) and `time` the
host clock. Call paths are unwound offline from the stack the record carries, once per distinct
stack. QEMU's gdbstub is used twice only: to start the core, and at the end to read the plan's
configuration values.
"""

from __future__ import annotations

import os
import select
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

from irqmon.backends.qemu import QemuTarget
from irqmon.backends.qemu_plugin.records import REGISTERS, TASK_NAME_BYTES, RecordStream, RecordType
from irqmon.backends.qemu_plugin.sites import build_sites
from irqmon.capture.loop import CALLPATH_DEPTH, CaptureLimits, CaptureSummary, call_row_fields, mask_row_fields
from irqmon.cortexm.elf import ElfImage
from irqmon.cortexm.exceptions import EXC_RETURN_PREFIX, FIRST_CONFIGURABLE
from irqmon.cortexm.unwind import UnreadableMemory, Unwinder
from irqmon.probes import CapturePlan, ConfigRead, FunctionProbe, MaskProbe, WatchProbe
from irqmon.rsp import RspClient, RspError
from irqmon.schema import CALLPATH_SEPARATOR, Event, Kind, Row
from irqmon.targets import TargetProfile
from irqmon.tracewriter import TraceWriter

POLL_SECONDS = 0.05
READ_BYTES = 1 << 22
NO_PRIORITY = 0xFFFFFFFF
UNWIND_CACHE_LIMIT = 100_000
XPSR = REGISTERS.index("xpsr")


def qemu_option_value(text: str) -> str:
    """A value inside a QEMU `-plugin` option: commas doubled."""
    return text.replace(",", ",,")


class Recorder:
    """One capture through the recorder plugin, from QEMU's start to the trace's last row."""

    def __init__(
        self, elf: ElfImage, target: TargetProfile, plan: CapturePlan, plugin: Path, window: int,
        limits: CaptureLimits,
    ) -> None:  # fmt: skip
        self.elf, self.target, self.plan, self.limits = elf, target, plan, limits
        self.plugin, self.window = plugin, window
        self.sites = build_sites(elf, plan, limits.until)
        self.summary = CaptureSummary()
        self.stop_requested = ""
        self.on_progress: Callable[[CaptureSummary], None] | None = None
        self._unwinder = Unwinder(elf)
        self._code_ranges = elf.read_only_ranges
        self._calls: dict[int, list[FunctionProbe]] = defaultdict(list)
        for probe in plan.functions:
            self._calls[probe.address].append(probe)
        self._masks: dict[int, list[MaskProbe]] = defaultdict(list)
        for mask in plan.masks:
            self._masks[mask.address].append(mask)
        self._watches = {watch.address: watch for watch in plan.watches}
        # return address -> (sp at the call, probe, object, call path of the caller)
        self._pending: dict[int, list[tuple[int, FunctionProbe, int | None, str]]] = defaultdict(list)
        self._priorities: dict[int, int | None] = {}
        self._task_names: dict[int, str] = {}
        self._callpaths: dict[tuple, str] = {}
        self._start_ns = 0
        self._fifo_fd: int | None = None
        self._records = RecordStream(window)
        self._ended = False

    # --- QEMU ----------------------------------------------------------------------------------

    def qemu_arguments(self, workdir: Path) -> list[str]:
        """The `-plugin` option, with the sites file written and the records FIFO open for
        reading (so the plugin's open for writing does not wait)."""
        sites_file, fifo = workdir / "sites.txt", workdir / "records.fifo"
        self.sites.write(sites_file, self.plan)
        os.mkfifo(fifo, 0o600)
        self._fifo_fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        values = [f"out={fifo}", f"sites={sites_file}", f"window={self.window}"]
        return ["-plugin", ",".join([qemu_option_value(str(self.plugin)), *map(qemu_option_value, values)])]

    def request_stop(self, reason: str) -> None:
        self.stop_requested = reason

    def run(self, qemu: QemuTarget, writer: TraceWriter) -> CaptureSummary:
        """Start the core, turn records into rows until a limit, a stop request or QEMU's end,
        then read the configuration values and stop QEMU. Every record that arrived is kept."""
        assert self._fifo_fd is not None
        self.writer = writer
        started = time.monotonic()
        client = None
        configs: list[tuple[ConfigRead, bytes]] = []
        try:
            client = RspClient("127.0.0.1", qemu.port)
            client.handshake()
            self._start_ns = time.monotonic_ns()
            client.cont()
            self._record(started)
            if not self.summary.error:
                client.stop(timeout=5)
                configs = [(config, client.read_memory(config.address, min(config.size, 4))) for config in self.plan.configs]
        except (RspError, OSError) as exc:
            self.summary.error = self.summary.error or f"QEMU's gdbstub: {exc}"
            self.summary.ended_by = self.summary.ended_by or "error"
        except KeyboardInterrupt:
            self.summary.ended_by = "Ctrl-C"
        finally:
            if client is not None:
                client.close()
            qemu.stop()  # the plugin writes what it holds as QEMU exits
            self._drain()
            os.close(self._fifo_fd)
            for config, raw in configs:
                self._emit(
                    {"time": self._now(), "event": Event.CONFIG, "kind": Kind.CONFIG, "probe": "config",
                     "symbol": config.name, "address": config.address, "value": int.from_bytes(raw, "little"),
                     "args": f"from={config.symbol}"}
                )  # fmt: skip
            self.summary.elapsed = time.monotonic() - started
            writer.close()
        return self.summary

    def _record(self, started: float) -> None:
        deadline = started + self.limits.duration if self.limits.duration else None
        while not self._ended:
            ready, _, _ = select.select([self._fifo_fd], [], [], POLL_SECONDS)
            if ready:
                data = os.read(self._fifo_fd, READ_BYTES)
                if not data:
                    self.summary.error, self.summary.ended_by = "QEMU exited during the capture", "error"
                    return
                self._handle(self._records.feed(data))
            if self.stop_requested and not self._ended:
                self.summary.ended_by = self.stop_requested
                self._ended = True
            if deadline and time.monotonic() >= deadline and not self._ended:
                self.summary.ended_by = "--duration"
                self._ended = True
            if self.on_progress:
                self.on_progress(self.summary)

    def _drain(self) -> None:
        """Records still in the FIFO (kept unless the capture had already ended)."""
        if self._fifo_fd is None:
            return
        while True:
            try:
                data = os.read(self._fifo_fd, READ_BYTES)
            except BlockingIOError:
                return
            if not data:
                return
            self._handle(self._records.feed(data))

    # --- records -> rows ---------------------------------------------------------------------

    def _handle(self, records: np.ndarray) -> None:
        for record in records:
            if self._ended:
                return
            kind = int(record["type"])
            if kind == RecordType.SITE:
                self._on_site(record)
            elif kind == RecordType.ACCESS:
                self._on_access(record)
            elif kind in (RecordType.ENTER, RecordType.EXIT):
                self._on_irq(record, kind == RecordType.ENTER)
            elif kind == RecordType.RETURN:
                self._on_function_return(record)
            if self.limits.max_events and self.summary.events >= self.limits.max_events:
                self.summary.ended_by, self._ended = "--max-events", True

    def _emit(self, row: Row) -> None:
        self.writer.write(row)
        self.summary.events += 1
        self.summary.by_kind[row.get("kind") or row.get("event")] += 1
        self.summary.by_exception[row.get("exception") or "?"] += 1

    def _now(self) -> float:
        return (time.monotonic_ns() - self._start_ns) / 1e9

    def _registers(self, record: np.void) -> dict[str, int]:
        registers = dict(zip(REGISTERS, record["regs"].tolist()))
        registers["pc"] = int(record["pc"])
        return registers

    def _on_site(self, record: np.void) -> None:
        registers = self._registers(record)
        pc = registers["pc"]
        if pc == self.limits.until:
            self.summary.ended_by, self._ended = "reached --until", True
            return
        for probe in self._calls.get(pc, ()):
            self._on_call(probe, registers, record)
        for mask in self._masks.get(pc, ()):
            self._on_mask(mask, registers, record)
        if pc in self.sites.return_addresses:
            self._on_return(registers, record)

    def _base_row(
        self, registers: dict[str, int], record: np.void, pc: int | None = None, unwind_pc: int | None = None,
        with_callpath: bool = True,
    ) -> Row:
        """The columns every site row has; `unwind_pc`: the call path is walked from there, as
        a debugger stopped after an access there shows it (not as stopped on a breakpoint)."""
        ipsr = registers["xpsr"] & 0x1FF
        pc = registers["pc"] if pc is None else pc
        return {
            "time": (int(record["host_ns"]) - self._start_ns) / 1e9,
            "cycles": int(record["instructions"]),
            "pc": pc, "lr": registers["lr"], "sp": registers["sp"], "ipsr": ipsr,
            "exception": self.target.exception_name(ipsr),
            "priority": self._priorities.get(ipsr) if ipsr >= FIRST_CONFIGURABLE else None,
            "basepri": registers["basepri"], "primask": registers["primask"] & 1,
            "faultmask": registers["faultmask"] & 1, "control": registers["control"],
            "task": self._task(record) if ipsr == 0 else None,
            "callpath": self._callpath(registers, record, registers["pc"] if unwind_pc is None else unwind_pc, unwind_pc is None)
            if with_callpath else None,
            "source": self.elf.source_line(pc),
        }  # fmt: skip

    def _task(self, record: np.void) -> str | None:
        if self.plan.task is None:
            return None
        tcb = int(record["task"])
        if tcb == 0:
            return None
        if tcb not in self._task_names:
            raw = bytes(record["task_name"])[: min(self.plan.task.name_length, TASK_NAME_BYTES)]
            self._task_names[tcb] = raw.split(b"\0", 1)[0].decode(errors="replace") or f"tcb@{tcb:#x}"
        return self._task_names[tcb]

    def _callpath(self, registers: dict[str, int], record: np.void, pc: int, at_site: bool) -> str:
        sp_window = record["sp_window"].tobytes()[: int(record["sp_window_length"])]
        psp_window = record["psp_window"].tobytes()[: int(record["psp_window_length"])]
        key = (pc, at_site, tuple(registers.values()), sp_window, psp_window)
        cached = self._callpaths.get(key)
        if cached is not None:
            return cached
        windows = [(registers["sp"], sp_window)]
        if registers["xpsr"] & 0x1FF and registers["psp"] != registers["sp"]:
            windows.append((registers["psp"], psp_window))

        def read_memory(address: int, size: int) -> bytes:
            for start, end in self._code_ranges:
                if start <= address and address + size <= end:
                    return self.elf.read_code(address, size)
            for start, data in windows:
                if start <= address and address + size <= start + len(data):
                    return data[address - start : address - start + size]
            raise UnreadableMemory(address)  # beyond what the record carries: the walk ends there

        at = dict(registers, pc=pc)
        frames = self._unwinder.unwind(at.__getitem__, read_memory, CALLPATH_DEPTH, at_breakpoint=at_site)
        callpath = CALLPATH_SEPARATOR.join(frame.function for frame in frames)
        if len(self._callpaths) < UNWIND_CACHE_LIMIT:
            self._callpaths[key] = callpath
        return callpath

    def _on_call(self, probe: FunctionProbe, registers: dict[str, int], record: np.void) -> None:
        row = self._base_row(registers, record)
        row.update(call_row_fields(probe, registers, self.elf, row["source"]))
        self._emit(row)
        if probe.returns and registers["lr"] & EXC_RETURN_PREFIX != EXC_RETURN_PREFIX:
            caller_path = row["callpath"].split(CALLPATH_SEPARATOR, 1)[1] if CALLPATH_SEPARATOR in row["callpath"] else ""
            self._pending[registers["lr"] & ~1].append((registers["sp"], probe, row["address"], caller_path))

    def _on_return(self, registers: dict[str, int], record: np.void, synthesized: bool = False) -> None:
        """At a return address: the returns of the calls made from this stack depth.
        `synthesized`: the registers are made from the returning instruction's record, and the
        call path is the caller's as the call saw it."""
        pending = self._pending.get(registers["pc"], [])
        matches = [entry for entry in reversed(pending) if entry[0] == registers["sp"]]
        if not matches:
            return
        row = self._base_row(registers, record, with_callpath=not synthesized)
        if synthesized:
            row["callpath"] = matches[0][3]
        for entry in matches:
            pending.remove(entry)
            _, probe, target_object, _ = entry
            self._emit(
                row | {"event": Event.RETURN, "kind": probe.kind, "role": probe.role, "probe": probe.probe,
                       "symbol": probe.symbol, "value": registers["r0"], "address": target_object}
            )  # fmt: skip

    def _on_function_return(self, record: np.void) -> None:
        """A returning instruction of a probed function: where no return address site waits
        for it (a call through a pointer), the return row is made from the registers as the
        instruction will leave them."""
        destination = int(record["a"]) & ~1
        if destination in self.sites.return_addresses or destination not in self._pending:
            return
        registers = self._registers(record)
        load = self.sites.sites[registers["pc"]].load
        assert load is not None
        base = registers["sp"] if load.base == 13 else registers.get(REGISTERS[load.base], 0)
        window = record["sp_window"].tobytes()[: int(record["sp_window_length"])] if load.base == 13 else b""
        for index, number in enumerate(load.loaded[:-1]):
            word = window[4 * index : 4 * index + 4]
            if len(word) == 4:
                registers[REGISTERS[number]] = int.from_bytes(word, "little")
        if load.base == 13:
            registers["sp"] = base + load.base_after
        registers["pc"] = destination
        self._on_return(registers, record, synthesized=True)

    def _on_mask(self, mask: MaskProbe, before: dict[str, int], record: np.void) -> None:
        after = dict(before)
        register = mask.register
        if mask.role in ("disable", "enable"):
            after[register] = 1 if mask.role == "disable" else 0
        else:
            source = before[mask.text.rsplit(" ", 1)[-1]]
            if mask.text.startswith("msr basepri_max"):
                value = source & 0xFF
                current = before["basepri"] & 0xFF
                after["basepri"] = value if value and (current == 0 or value < current) else current
            else:
                after[register] = source & (0xFF if register == "basepri" else 1)
        row = self._base_row(before, record, pc=mask.address)
        row.update(mask_row_fields(mask, before, after))
        self._emit(row)

    def _on_access(self, record: np.void) -> None:
        watch: WatchProbe | None = self._watches.get(int(record["a"]))
        if watch is None:
            return
        registers = self._registers(record)
        access = "w" if record["is_store"] else "r"
        value, previous = int(record["b"]), int(record["c"])
        insn = self.elf.instruction_at(registers["pc"])
        after = insn.end if insn else registers["pc"]
        row = self._base_row(registers, record, unwind_pc=after)
        row.update(
            event=Event.ACCESS, kind=watch.kind, role=watch.role(access, value), probe=watch.probe,
            symbol=watch.symbol, address=watch.address, access=access, value=value,
            old_value=previous if access == "w" else None, size=watch.size,
        )  # fmt: skip
        self._emit(row)

    def _on_irq(self, record: np.void, entering: bool) -> None:
        ipsr = int(record["regs"][XPSR]) & 0x1FF
        row: Row = {
            "time": (int(record["host_ns"]) - self._start_ns) / 1e9, "cycles": int(record["instructions"]),
            "event": Event.IRQ_ENTER if entering else Event.IRQ_EXIT, "kind": Kind.IRQ, "probe": "qemu",
            "ipsr": ipsr, "exception": self.target.exception_name(ipsr),
        }  # fmt: skip
        if entering:
            raw = int(record["a"])
            priority = self.target.logical_priority(raw) if raw != NO_PRIORITY else None
            self._priorities[ipsr] = priority
            row["priority"] = priority
        self._emit(row)

