"""Recording inside QEMU: the recorder plugin's records turned into trace rows, no halts.

The plugin writes records into a FIFO while the guest runs; here they are read in batches and
become the same rows the halting backends write (`irqmon.capture.loop`), with `cycles` holding
the instructions the core had retired (exact, and free of any debugger's time) and `time` the
host clock. Call paths are unwound offline from the stack the record carries, once per distinct
stack. QEMU's gdbstub is used twice only: to start the core, and at the end to read the plan's
configuration values.
"""

from __future__ import annotations

import fcntl
import os
import select
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from irqmon.backends.qemu import QemuTarget
from irqmon.backends.qemu_plugin.records import REGISTERS, TASK_NAME_BYTES, Batch, RecordStream, RecordType
from irqmon.backends.qemu_plugin.rows import ROWS_PER_RECORD, Column, RowBlocks, tally
from irqmon.backends.qemu_plugin.sites import build_sites, marker_read
from irqmon.capture.loop import CALLPATH_DEPTH, CaptureLimits, CaptureSummary
from irqmon.cortexm.elf import ElfImage
from irqmon.cortexm.exceptions import EXC_RETURN_PREFIX, FIRST_CONFIGURABLE
from irqmon.cortexm.unwind import UnreadableMemory, Unwinder
from irqmon.probes import CapturePlan, ConfigRead, FunctionProbe, MaskProbe, WatchProbe
from irqmon.rsp import RspClient, RspError
from irqmon.schema import ARGS_SEPARATOR, CALLPATH_SEPARATOR, Event, Kind, Role, Row
from irqmon.targets import TargetProfile
from irqmon.tracewriter import TraceWriter

POLL_SECONDS = 0.05
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
PIPE_BYTES = 1 << 20
READ_BYTES = 1 << 22
NO_PRIORITY = 0xFFFFFFFF
WALKS_PER_SITE = 16  # call-path walks kept per (pc, how stopped), most recently used first
REGISTER_INDEX = {name: index for index, name in enumerate(REGISTERS)}
SP, PSP, XPSR = REGISTER_INDEX["sp"], REGISTER_INDEX["psp"], REGISTER_INDEX["xpsr"]


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
        self._return_addresses = np.array(sorted(self.sites.return_addresses), np.int64)
        self._exception_names = np.array([target.exception_name(number) for number in range(512)], object)
        # return address -> (sp at the call, probe, object, call path of the caller)
        self._pending: dict[int, list[tuple[int, FunctionProbe, int | None, str]]] = defaultdict(list)
        self._priorities: dict[int, int | None] = {}
        self._task_names: dict[int, str] = {}
        self._walks: dict[tuple[int, bool], list[tuple[tuple[tuple[str, int], ...], list, str]]] = {}
        self._start_ns = 0
        self._core_time = 0.0  # the last record's time: the core's time, the plugin's stalls left out
        self._fifo_fd: int | None = None
        self._records = RecordStream()
        self._ended = False

    # --- QEMU ----------------------------------------------------------------------------------

    def qemu_arguments(self, workdir: Path) -> list[str]:
        """The `-plugin` option, with the sites file written and the records FIFO open for
        reading (so the plugin's open for writing does not wait)."""
        sites_file, fifo = workdir / "sites.txt", workdir / "records.fifo"
        self.sites.write(sites_file, self.plan)
        os.mkfifo(fifo, 0o600)
        self._fifo_fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        try:  # a burst of records waits in the pipe, not in a stalled guest
            fcntl.fcntl(self._fifo_fd, F_SETPIPE_SZ, PIPE_BYTES)
        except OSError:
            pass  # above the system's pipe-max-size: the default pipe
        values = [f"out={fifo}", f"sites={sites_file}", f"window={self.window}"]
        if self.elf.initial_stack_pointer:
            values.append(f"stack_top={self.elf.initial_stack_pointer:#x}")
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
                with self._discarding_records():  # the plugin must not block on a full FIFO while QEMU stops
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
            rows = RowBlocks()
            rows.add_rows(
                range(len(configs)),
                [{"time": self._core_time, "event": Event.CONFIG.value, "kind": Kind.CONFIG.value, "probe": "config",
                  "symbol": config.name, "address": config.address, "value": int.from_bytes(raw, "little"),
                  "args": f"from={config.symbol}"} for config, raw in configs],
            )  # fmt: skip
            self._write(rows.table()[0])
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

    @contextmanager
    def _discarding_records(self) -> Iterator[None]:
        """Records read and dropped in the background (the capture has ended) while the body runs."""
        done = threading.Event()

        def discard() -> None:
            while not done.is_set():
                if select.select([self._fifo_fd], [], [], POLL_SECONDS)[0] and not os.read(self._fifo_fd, READ_BYTES):
                    return

        reader = threading.Thread(target=discard, daemon=True)
        reader.start()
        try:
            yield
        finally:
            done.set()
            reader.join()

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
            if not self._ended:  # after the end, records are dropped unread (a chunk may be cut)
                self._handle(self._records.feed(data))

    # --- records -> rows ---------------------------------------------------------------------

    def _handle(self, batch: Batch) -> None:
        """One batch of records as rows, column by column; the state that runs across records
        (priorities, pending returns) is carried in record order."""
        if self._ended or not len(batch):
            return
        records = batch.records
        end, until_reached = len(records), False
        if self.limits.until is not None:
            at_until = np.flatnonzero((records["type"] == RecordType.SITE) & (records["pc"] == self.limits.until))
            if len(at_until):
                end, until_reached = int(at_until[0]), True
        columns = _BatchColumns(self, batch, end)
        if len(columns.time):
            self._core_time = float(columns.time[-1])
        rows = RowBlocks()
        self._irq_rows(columns, rows)
        self._site_rows(columns, rows)
        self._access_rows(columns, rows)
        table, record_of_row = rows.table()
        if self.limits.max_events and self.summary.events + table.num_rows >= self.limits.max_events:
            last_record = record_of_row[self.limits.max_events - self.summary.events - 1]
            table = table.slice(0, int(np.searchsorted(record_of_row, last_record, side="right")))
            self.summary.ended_by, self._ended = "--max-events", True
        elif until_reached:
            self.summary.ended_by, self._ended = "reached --until", True
        self._write(table)

    def _write(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        self.writer.write_table(table)
        by_kind, by_exception = tally(table)
        self.summary.events += table.num_rows
        self.summary.by_kind.update(by_kind)
        self.summary.by_exception.update(by_exception)

    def _irq_rows(self, columns: _BatchColumns, rows: RowBlocks) -> None:
        types = columns.types
        index = np.flatnonzero((types == RecordType.ENTER) | (types == RecordType.EXIT))
        entering = types[index] == RecordType.ENTER
        rows.add(
            index * ROWS_PER_RECORD,
            {"time": columns.time[index], "cycles": columns.cycles[index],
             "event": np.where(entering, Event.IRQ_ENTER.value, Event.IRQ_EXIT.value).astype(object),
             "kind": Kind.IRQ.value, "probe": "qemu", "ipsr": columns.ipsr[index],
             "exception": columns.exception[index], "priority": np.ma.masked_where(~entering, columns.priority[index])},
        )  # fmt: skip

    def _site_rows(self, columns: _BatchColumns, rows: RowBlocks) -> None:
        """Calls and mask instructions by site, column by column; then, in record order, what
        pairs calls with their returns."""
        sites = np.flatnonzero(columns.types == RecordType.SITE)
        pcs = columns.pc[sites]
        pushes: list[tuple[int, int, FunctionProbe, int | None, str]] = []
        for pc in np.unique(pcs).tolist():
            calls, masks = self._calls.get(pc, ()), self._masks.get(pc, ())
            if not calls and not masks:
                continue
            index = sites[pcs == pc]
            base = columns.base(index)  # one call path per record, for every row made there
            for rank, probe in enumerate(calls):
                pushes += self._call_rows(columns, rows, index, base, probe, 1 + rank)
            for rank, mask in enumerate(masks):
                self._mask_rows(columns, rows, index, base, mask, 16 + rank)
        returns = [(int(i), 1) for i in sites[np.isin(pcs, self._return_addresses)]]
        returns += [(int(i), 2) for i in np.flatnonzero(columns.types == RecordType.RETURN)]
        if not pushes and not returns:
            return
        made_places: list[int] = []
        made: list[Row] = []
        events = sorted([(entry[0], 0, entry) for entry in pushes] + [(i, kind, None) for i, kind in returns], key=lambda e: e[:2])
        for index, kind, entry in events:
            if kind == 0:
                _, sp, probe, target_object, caller_path = entry
                self._pending[int(columns.lr[index]) & ~1].append((sp, probe, target_object, caller_path))
            elif kind == 1:
                made += self._returns(columns, index, columns.registers(index), synthesized=False)
            else:
                made += self._function_return(columns, index)
            made_places += [index * ROWS_PER_RECORD + 32] * (len(made) - len(made_places))
        rows.add_rows(made_places, made)

    def _call_rows(
        self, columns: _BatchColumns, rows: RowBlocks, index: np.ndarray, base: dict[str, Column], probe: FunctionProbe,
        rank: int,
    ) -> list[tuple[int, int, FunctionProbe, int | None, str]]:
        """Call rows of `probe` at `index` (`base`: their common columns); the calls whose
        returns are wanted, to be paired."""
        lr = columns.lr[index]
        arguments = {name: columns.register(register)[index] for name, register in probe.args.items()}
        callers = _per_value(lr, lambda value: self.elf.function_at(value & ~1))
        call_sources = _per_value(lr, lambda value: self.elf.source_line((value & ~1) - 2))
        texts = [
            [f"{name}={value:#x}" if name != probe.size_arg else f"{name}={value}" for value in values.tolist()]
            for name, values in arguments.items()
        ]
        args = [
            ARGS_SEPARATOR.join([*parts, *([f"caller={caller}"] if caller else [])])
            for parts, caller in zip(zip(*texts) if texts else [()] * len(index), callers.tolist())
        ]
        size = arguments[probe.size_arg] if probe.size_arg else None
        target_object = arguments[probe.object_arg] if probe.object_arg else None
        rows.add(
            index * ROWS_PER_RECORD + rank,
            base | {"event": Event.CALL.value, "kind": probe.kind, "role": self._call_roles(columns, index, probe),
                    "probe": probe.probe, "symbol": probe.symbol, "address": target_object, "size": size,
                    "value": size, "args": args,
                    "source": np.where(call_sources != None, call_sources, base["source"])},  # noqa: E711
        )  # fmt: skip
        if not probe.returns:
            return []
        called = (lr & EXC_RETURN_PREFIX) != EXC_RETURN_PREFIX
        return [
            (int(i), int(columns.sp[i]), probe, None if target_object is None else int(target_object[k]), _caller_path(base["callpath"][k]))
            for k, i in enumerate(index.tolist()) if called[k]
        ]  # fmt: skip

    def _call_roles(self, columns: _BatchColumns, index: np.ndarray, probe: FunctionProbe) -> np.ndarray | str:
        """The role of each call: the object marker's where the member its record carries (read
        at the call, from a non-NULL object) equals the marker's value, else the probe's."""
        marker = probe.object_marker
        read = marker_read(probe)
        if marker is None or read is None or self.sites.sites[probe.address].marker != read:
            return probe.role
        carried = columns.records["b"][index] == 1
        marked = carried & (columns.records["a"][index].astype(np.int64) == marker.equals)
        return np.where(marked, marker.role, probe.role).astype(object)

    def _mask_rows(
        self, columns: _BatchColumns, rows: RowBlocks, index: np.ndarray, base: dict[str, Column], mask: MaskProbe, rank: int
    ) -> None:
        register = mask.register
        width = 0xFF if register == "basepri" else 1
        after = {name: columns.register(name)[index] for name in ("basepri", "primask", "faultmask")}
        before = after[register] if register in after else columns.register(register)[index]
        if mask.role in ("disable", "enable"):
            after[register] = np.full(len(index), 1 if mask.role == "disable" else 0, np.int64)
        else:
            source = columns.register(mask.text.rsplit(" ", 1)[-1])[index]
            if mask.text.startswith("msr basepri_max"):
                value, current = source & 0xFF, after["basepri"] & 0xFF
                after["basepri"] = np.where((value != 0) & ((current == 0) | (value < current)), value, current)
            else:
                after[register] = source & width
        rows.add(
            index * ROWS_PER_RECORD + rank,
            base
            | {"event": Event.MASK.value, "kind": Kind.CRITICAL_SECTION.value, "role": mask.role, "probe": mask.probe,
               "symbol": register, "address": mask.address, "args": f"insn={mask.text}",
               "old_value": before & width, "value": after[register] & width,
               "basepri": after["basepri"], "primask": after["primask"] & 1, "faultmask": after["faultmask"] & 1},
        )  # fmt: skip

    def _access_rows(self, columns: _BatchColumns, rows: RowBlocks) -> None:
        accesses = np.flatnonzero(columns.types == RecordType.ACCESS)
        ranges = columns.records["a"][accesses]
        for address in np.unique(ranges).tolist():
            watch: WatchProbe | None = self._watches.get(address)
            if watch is None:
                continue
            index = accesses[ranges == address]
            store = columns.records["is_store"][index].astype(bool)
            value, previous = columns.records["b"][index].astype(np.int64), columns.records["c"][index].astype(np.int64)
            if watch.locked_value is None:
                role = np.where(store, Role.WRITE.value, Role.READ.value)
            else:
                role = np.where(~store, Role.TEST.value, np.where(value == watch.locked_value, Role.ACQUIRE.value, Role.RELEASE.value))
            unwind_from = _per_value(columns.pc[index], self._after_instruction).astype(np.int64)
            rows.add(
                index * ROWS_PER_RECORD,
                columns.base(index, unwind_from=unwind_from)
                | {"event": Event.ACCESS.value, "kind": watch.kind, "role": role.astype(object), "probe": watch.probe,
                   "symbol": watch.symbol, "address": watch.address, "access": np.where(store, "w", "r").astype(object),
                   "value": value, "old_value": np.where(store, previous, None), "size": watch.size},
            )  # fmt: skip

    def _after_instruction(self, pc: int) -> int:
        insn = self.elf.instruction_at(pc)
        return insn.end if insn else pc

    def _returns(self, columns: _BatchColumns, index: int, registers: dict[str, int], synthesized: bool) -> list[Row]:
        """At a return address: the returns of the calls made from this stack depth.
        `synthesized`: the registers are made from the returning instruction's record, and the
        call path is the caller's as the call saw it."""
        pending = self._pending.get(registers["pc"], [])
        matches = [entry for entry in reversed(pending) if entry[0] == registers["sp"]]
        if not matches:
            return []
        row = columns.one_row(index, registers, callpath=matches[0][3] if synthesized else None)
        made = []
        for entry in matches:
            pending.remove(entry)
            _, probe, target_object, _ = entry
            made.append(
                row | {"event": Event.RETURN.value, "kind": probe.kind, "role": probe.role, "probe": probe.probe,
                       "symbol": probe.symbol, "value": registers["r0"], "address": target_object}
            )  # fmt: skip
        return made

    def _function_return(self, columns: _BatchColumns, index: int) -> list[Row]:
        """A returning instruction of a probed function: where no return address site waits
        for it (a call through a pointer), the return row is made from the registers as the
        instruction will leave them."""
        destination = int(columns.records["a"][index]) & ~1
        if destination in self.sites.return_addresses or destination not in self._pending:
            return []
        registers = columns.registers(index)
        load = self.sites.sites[registers["pc"]].load
        assert load is not None
        base = registers["sp"] if load.base == 13 else registers.get(REGISTERS[load.base], 0)
        window = columns.sp_window(index) if load.base == 13 else b""
        for rank, number in enumerate(load.loaded[:-1]):
            word = window[4 * rank : 4 * rank + 4]
            if len(word) == 4:
                registers[REGISTERS[number]] = int.from_bytes(word, "little")
        if load.base == 13:
            registers["sp"] = base + load.base_after
        registers["pc"] = destination
        return self._returns(columns, index, registers, synthesized=True)

    # --- call paths ------------------------------------------------------------------------------

    def callpath(self, registers: Sequence[int], pc: int, at_site: bool, sp_window: bytes, psp_window: bytes) -> str:
        """The call path from `pc` with the record's registers and stack windows. A walk depends
        only on the registers and stack words it reads: it is kept with them, and reused for a
        record that has the same values there."""
        windows = [(registers[SP], sp_window)]
        if registers[XPSR] & 0x1FF and registers[PSP] != registers[SP]:
            windows.append((registers[PSP], psp_window))

        def stack(address: int, size: int) -> bytes | None:
            for start, data in windows:
                if start <= address and address + size <= start + len(data):
                    return data[address - start : address - start + size]
            return None

        def value(name: str) -> int:
            return pc if name == "pc" else registers[REGISTER_INDEX[name]]

        walks = self._walks.setdefault((pc, at_site), [])
        for rank, walk in enumerate(walks):
            used, reads, path = walk
            if all(value(name) == known for name, known in used) and all(stack(a, n) == data for a, n, data in reads):
                if rank:
                    walks.insert(0, walks.pop(rank))
                return path
        used_now: dict[str, int] = {}
        reads_now: list[tuple[int, int, bytes | None]] = []

        def read_register(name: str) -> int:
            used_now[name] = value(name)
            return used_now[name]

        def read_memory(address: int, size: int) -> bytes:
            for start, end in self._code_ranges:
                if start <= address and address + size <= end:
                    return self.elf.read_code(address, size)
            data = stack(address, size)
            reads_now.append((address, size, data))
            if data is None:
                raise UnreadableMemory(address)  # beyond what the record carries: the walk ends there
            return data

        frames = self._unwinder.unwind(read_register, read_memory, CALLPATH_DEPTH, at_breakpoint=at_site)
        path = CALLPATH_SEPARATOR.join(frame.function for frame in frames)
        walks.insert(0, (tuple(used_now.items()), reads_now, path))
        del walks[WALKS_PER_SITE:]
        return path


class _BatchColumns:
    """The columns every row of a batch draws on, computed once for all its records (up to
    `end`): registers, time, exception, priority, task."""

    def __init__(self, recorder: Recorder, batch: Batch, end: int) -> None:
        self.recorder, self.batch = recorder, batch
        self.records = records = batch.records[:end]
        self.types = records["type"]
        self.regs = records["regs"].astype(np.int64)
        self.pc = records["pc"].astype(np.int64)
        self.lr, self.sp = self.regs[:, REGISTER_INDEX["lr"]], self.regs[:, SP]
        self.ipsr = self.regs[:, XPSR] & 0x1FF
        self.time = (records["host_ns"].astype(np.int64) - recorder._start_ns) / 1e9
        self.cycles = records["instructions"].astype(np.int64)
        self.exception = recorder._exception_names[self.ipsr]
        self.priority = self._priorities()
        self.window_bytes = np.frombuffer(batch.windows, np.uint8)
        self.task = self._tasks()

    def register(self, name: str) -> np.ndarray:
        return self.pc if name == "pc" else self.regs[:, REGISTER_INDEX[name]]

    def registers(self, index: int) -> dict[str, int]:
        registers = dict(zip(REGISTERS, self.regs[index].tolist()))
        registers["pc"] = int(self.pc[index])
        return registers

    def sp_window(self, index: int) -> bytes:
        return self.batch.sp_window(index)

    def _priorities(self) -> np.ma.MaskedArray:
        """Each record's exception priority as the last entry of that exception set it (carried
        from batch to batch); masked in thread mode, for Reset, NMI and HardFault, and where not
        known."""
        known = self.recorder._priorities
        priority = np.full(len(self.records), -1, np.int64)
        entering = self.types == RecordType.ENTER
        raws = self.records["a"].astype(np.int64)
        logical = _per_value(raws[entering], self._logical_priority)
        entered = np.full(len(self.records), -1, np.int64)
        entered[entering] = logical.astype(np.int64)
        for ipsr in np.unique(self.ipsr[self.ipsr >= FIRST_CONFIGURABLE]).tolist():
            index = np.flatnonzero(self.ipsr == ipsr)
            at_entry = entering[index]
            latest = np.maximum.accumulate(np.where(at_entry, np.arange(len(index)), -1))
            before = known.get(ipsr)
            priority[index] = np.where(latest >= 0, entered[index][np.maximum(latest, 0)], -1 if before is None else before)
            if at_entry.any():
                last = int(entered[index][latest[-1]])
                known[ipsr] = None if last < 0 else last
        return np.ma.masked_less(priority, 0)

    def _logical_priority(self, raw: int) -> int:
        return self.recorder.target.logical_priority(raw) if raw != NO_PRIORITY else -1

    def _tasks(self) -> np.ndarray:
        tasks = np.full(len(self.records), None, object)
        task = self.recorder.plan.task
        if task is None:
            return tasks
        tcbs = self.records["task"].astype(np.int64)
        running = np.flatnonzero((self.ipsr == 0) & (tcbs != 0))
        names = self.recorder._task_names
        for index in sorted(np.unique(tcbs[running], return_index=True)[1].tolist()):  # as first seen
            tcb = int(tcbs[running[index]])
            if tcb not in names:
                raw = bytes(self.records["task_name"][running[index]])[: min(task.name_length, TASK_NAME_BYTES)]
                name = raw.split(b"\0", 1)[0].decode(errors="replace") or f"tcb@{tcb:#x}"
                # Task names need not be unique (two tasks of one function): the control block tells them apart.
                names[tcb] = f"{name}@{tcb:#x}" if name in names.values() else name
        tasks[running] = [names[tcb] for tcb in tcbs[running].tolist()]
        return tasks

    def base(self, index: np.ndarray, unwind_from: np.ndarray | None = None) -> dict[str, Column]:
        """The columns every site or access row has. `unwind_from`: the call path is walked
        from there, as a debugger stopped after an access there shows it (not as stopped on a
        breakpoint)."""
        row_pc = self.pc[index]
        return {
            "time": self.time[index], "cycles": self.cycles[index], "pc": row_pc, "lr": self.lr[index],
            "sp": self.sp[index], "ipsr": self.ipsr[index], "exception": self.exception[index],
            "priority": self.priority[index], "basepri": self.register("basepri")[index],
            "primask": self.register("primask")[index] & 1, "faultmask": self.register("faultmask")[index] & 1,
            "control": self.register("control")[index], "task": self.task[index],
            "callpath": self._callpaths(index, self.pc[index] if unwind_from is None else unwind_from, unwind_from is None),
            "source": _per_value(row_pc, self.recorder.elf.source_line),
        }  # fmt: skip

    def _callpaths(self, index: np.ndarray, unwind_pcs: np.ndarray, at_site: bool) -> np.ndarray:
        """Each row's call path: the rows whose registers and stack match the latest walk from
        their pc take its result at once; the others are walked (or found among older walks)."""
        paths = np.empty(len(index), object)
        regs, batch, callpath = self.regs, self.batch, self.recorder.callpath
        for pc in np.unique(unwind_pcs).tolist():
            group = np.flatnonzero(unwind_pcs == pc)
            walks = self.recorder._walks.get((pc, at_site))
            if walks:
                same = self._same_walk(index[group], walks[0])
                paths[group[same]] = walks[0][2]
                group = group[~same]
            for k in group.tolist():
                i = int(index[k])
                paths[k] = callpath(regs[i].tolist(), pc, at_site, batch.sp_window(i), batch.psp_window(i))
        return paths

    def _same_walk(self, index: np.ndarray, walk: tuple) -> np.ndarray:
        """Which records have the walk's register values and, in their sp window, its stack
        bytes: its call path is theirs."""
        used, reads, _ = walk
        same = np.ones(len(index), bool)
        if any(data is None for _, _, data in reads):
            return ~same
        for name, known in used:
            if name != "pc":
                same &= self.regs[index, REGISTER_INDEX[name]] == known
        sp, length = self.sp[index], self.records["sp_window_length"][index].astype(np.int64)
        for address, size, data in reads:
            offset = address - sp
            same &= (offset >= 0) & (offset + size <= length)
            at = np.where(same, self.batch.window_starts[index] + offset, 0)
            same &= (self.window_bytes[at[:, None] + np.arange(size)] == np.frombuffer(data, np.uint8)).all(axis=1)
        return same

    def one_row(self, index: int, registers: dict[str, int], callpath: str | None) -> Row:
        """The base columns of one row made from `registers` (a return's, possibly synthesized)."""
        ipsr = registers["xpsr"] & 0x1FF
        if callpath is None:
            callpath = self.recorder.callpath(
                [registers[name] for name in REGISTERS], registers["pc"], True, self.batch.sp_window(index),
                self.batch.psp_window(index),
            )  # fmt: skip
        return {
            "time": float(self.time[index]), "cycles": int(self.cycles[index]), "pc": registers["pc"],
            "lr": registers["lr"], "sp": registers["sp"], "ipsr": ipsr, "exception": self.exception[index],
            "priority": None if self.priority[index] is np.ma.masked else int(self.priority[index]),
            "basepri": registers["basepri"], "primask": registers["primask"] & 1,
            "faultmask": registers["faultmask"] & 1, "control": registers["control"], "task": self.task[index],
            "callpath": callpath, "source": self.recorder.elf.source_line(registers["pc"]),
        }  # fmt: skip


def _per_value(values: np.ndarray, function: Callable[[int], Any]) -> np.ndarray:
    """`function` of each value, computed once per distinct value."""
    distinct, inverse = np.unique(values, return_inverse=True)
    return np.array([function(value) for value in distinct.tolist()] + [None], dtype=object)[:-1][inverse]


def _caller_path(callpath: str) -> str:
    return callpath.split(CALLPATH_SEPARATOR, 1)[1] if CALLPATH_SEPARATOR in callpath else ""
