"""A capture session: a typed `CaptureRequest` in, a finished capture out.

Everything is checked before anything starts (bad input: UsageError); then the target is
started (QEMU) or reached (a GDB server, a debug probe), the backend the registry names is
created and connected, the IRQ timeline chosen, and the capture loop runs until its end,
leaving QEMU stopped (its USART1 output kept next to the trace) or the target running.
"""

from __future__ import annotations

import math
import shutil
import signal
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console

from irqmon import __version__, schema
from irqmon.backends.qemu import NvicTraceReader, QemuTarget
from irqmon.backends.qemu_plugin.recorder import Recorder
from irqmon.capture import registry, status
from irqmon.capture.budget import ArmingPlan, arming_plan
from irqmon.capture.loop import Capture, CaptureLimits, CaptureSummary, IrqSource
from irqmon.capture.registry import REACH_OPTIONS, BackendArgs, BackendSpec, Reach
from irqmon.children import make_workdir
from irqmon.cortexm.elf import ElfImage
from irqmon.errors import UsageError
from irqmon.output.paths import check_output_file
from irqmon.output.terminal import plain
from irqmon.probes import CapturePlan, parse_watch, plan_capture
from irqmon.targets import TargetProfile, load_target
from irqmon.tracewriter import open_trace_writer

# The backend used when the request names none, by how the target is reached.
DEFAULT_ROTATE_SECONDS = 0.25  # how long each comparator set stays armed when they do not all fit
# The defaults per reach, first choice first: the next is used where this machine cannot run one.
DEFAULT_BACKENDS = {Reach.QEMU: ("qemu-plugin", "gdb"), Reach.GDB_SERVER: ("gdb",), Reach.PROBE: ("pyocd",)}


@dataclass(frozen=True)
class CaptureRequest:
    """What to capture, from where, through which backend, and until when."""

    target: str  # a profile name, a profile .toml or a CMSIS-SVD .svd file
    elf: Path
    output: Path
    qemu: bool = False  # start QEMU on `elf` (halted at reset)
    gdb_remote: str | None = None  # HOST:PORT of a running GDB server
    backend: str | None = None  # a registered backend; None: the default for the way in
    # The options given of each backend: backend name -> option name -> value (see registry.Option).
    backend_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    packs: tuple[str, ...] | None = None  # probe packs by name or .toml; None: every pack that finds something
    watch: tuple[str, ...] = ()  # SYMBOL_OR_ADDRESS[:SIZE]
    unlimited: bool = False  # QEMU only: no comparator budget
    icount: int | None = None  # QEMU only: guest time counted in instructions, 2**icount ns each
    rotate: float | None = None  # seconds each comparator set stays armed; None: the default
    no_rotate: bool = False  # arm the first comparator set only
    duration: float | None = None
    max_events: int | None = None
    until: str | None = None  # stop when the core reaches this function
    quiet: bool = False  # no plan line and no live status
    traffic_log: Path | None = None  # log the remote-protocol traffic here (gdb and rsp backends)

    @property
    def reach(self) -> Reach:
        if self.qemu:
            return Reach.QEMU
        return Reach.GDB_SERVER if self.gdb_remote else Reach.PROBE


@dataclass(frozen=True)
class _Prepared:
    """A request checked and resolved: everything the capture needs before it starts."""

    target: TargetProfile
    spec: BackendSpec
    backend_options: Any
    elf: ElfImage
    plan: CapturePlan
    arming: ArmingPlan
    rotate_seconds: float | None  # None: no rotation
    limits: CaptureLimits
    note: str | None = None  # why the first default backend was not used


def run_capture(request: CaptureRequest, console: Console) -> CaptureSummary:
    """Check the request, capture, and show the result; used by `attach` and `demo`."""
    prepared = _prepare(request)
    if prepared.note:
        console.print(prepared.note, highlight=False)
    request.output.parent.mkdir(parents=True, exist_ok=True)
    if prepared.spec.record is not None:
        return _record_in_qemu(request, prepared, console)
    qemu = None
    workdir = make_workdir()
    try:
        if request.qemu:
            assert prepared.target.qemu_machine is not None
            qemu = QemuTarget(
                request.elf, machine=prepared.target.qemu_machine, workdir=workdir, nvic_trace=True, icount_shift=request.icount
            )
            qemu.start()
        args = BackendArgs(
            prepared.elf, prepared.target, request.reach, qemu.gdb_address if qemu else request.gdb_remote,
            request.unlimited, prepared.backend_options, request.traffic_log,
        )  # fmt: skip
        backend = prepared.spec.create(args)
        backend.connect()
        if not request.quiet:
            console.print(status.plan_line(prepared.plan, arming=prepared.arming, rotate_seconds=prepared.rotate_seconds), highlight=False)
        nvic_trace = (
            NvicTraceReader(qemu.nvic_log, prepared.target.exception_name, prepared.target.logical_priority) if qemu else None
        )
        irq_source = nvic_trace if nvic_trace is not None else _timeline(prepared.spec, backend, args, console)
        writer = open_trace_writer(request.output, _metadata(prepared, backend.name, on_qemu=qemu is not None))
        halt_source = nvic_trace.halt_changes if nvic_trace is not None else None  # QEMU's own halt times
        capture = Capture(
            backend, prepared.plan, prepared.elf, prepared.target, writer, irq_source, halt_source,
            arming=prepared.arming, rotate_seconds=prepared.rotate_seconds,
        )  # fmt: skip
        with status.LiveStatus(console, enabled=not request.quiet, duration=request.duration) as live, _signals_end(capture):
            capture.on_progress = live
            summary = capture.run(prepared.limits)
        if qemu is not None and not qemu.alive() and not summary.error:
            summary.error = "QEMU exited during the capture"
        if summary.error and qemu is not None and not qemu.alive():
            summary.error = f"QEMU died during the capture ({summary.error})"
    finally:
        if qemu is not None:
            qemu.stop()
            _keep_serial_log(qemu, request.output.with_suffix(".usart1.log"), console)
        shutil.rmtree(workdir, ignore_errors=True)
    status.report(console, request.output, summary, qemu is not None)
    return summary


def _record_in_qemu(request: CaptureRequest, prepared: _Prepared, console: Console) -> CaptureSummary:
    """A capture by a backend that records inside QEMU: QEMU started with it, no halts."""
    assert prepared.spec.record is not None and prepared.target.qemu_machine is not None
    args = BackendArgs(prepared.elf, prepared.target, Reach.QEMU, None, True, prepared.backend_options)
    recorder = prepared.spec.record(args, prepared.plan, prepared.limits)
    qemu = None
    workdir = make_workdir()
    try:
        qemu = QemuTarget(
            request.elf, machine=prepared.target.qemu_machine, workdir=workdir, extra_args=recorder.qemu_arguments(workdir),
            icount_shift=request.icount,
        )  # fmt: skip
        qemu.start()
        if not request.quiet:
            console.print(status.plan_line(prepared.plan, prepared.target), highlight=False)
        writer = open_trace_writer(request.output, _metadata(prepared, prepared.spec.name, on_qemu=True))
        with status.LiveStatus(console, enabled=not request.quiet, duration=request.duration) as live, _signals_end(recorder):
            recorder.on_progress = live
            summary = recorder.run(qemu, writer)
    finally:
        if qemu is not None:
            qemu.stop()
            _keep_serial_log(qemu, request.output.with_suffix(".usart1.log"), console)
        shutil.rmtree(workdir, ignore_errors=True)
    status.report(console, request.output, summary, True)
    return summary


def _keep_serial_log(qemu: QemuTarget, destination: Path, console: Console) -> None:
    """QEMU's USART1 output next to the trace; a failure to copy it is one line, not the end."""
    if not qemu.serial_log.exists():
        return
    try:
        shutil.copyfile(qemu.serial_log, destination)
    except OSError as exc:
        console.print(f"irqmon: cannot keep the USART1 output in {plain(destination)}: {exc.strerror or exc}")


def _prepare(request: CaptureRequest) -> _Prepared:
    """Every check that needs no target, in the order a user fixes them."""
    target = load_target(request.target)
    reach = request.reach
    spec, note = (registry.backend(request.backend), None) if request.backend else _default_backend(reach)
    if reach is not Reach.QEMU and request.unlimited:
        raise UsageError("--unlimited is for QEMU only: real hardware has the comparators it has")
    _check_reach(spec, reach)
    options = _backend_options(spec, request.backend_options, reach)
    if reach is Reach.QEMU and not target.qemu_machine:
        raise UsageError(f"target {target.name} has no QEMU machine: use --gdb-remote with a board")
    for name, value in (("duration", request.duration), ("max-events", request.max_events), ("rotate", request.rotate)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise UsageError(f"--{name} must be a positive number, not {value}")
    check_output_file(request.output)
    check_output_file(request.output.with_suffix(".usart1.log"), "-o (its USART1 log)")
    if request.traffic_log is not None:
        check_output_file(request.traffic_log, "-v (the traffic log)")
    elf = ElfImage(request.elf)
    _check_vectors(elf, target)
    watches = [parse_watch(spec_text, elf) for spec_text in request.watch]
    plan = plan_capture(elf, target, list(request.packs) if request.packs is not None else None, watches)
    if request.no_rotate and request.rotate is not None:
        raise UsageError("--rotate and --no-rotate: choose one")
    # Recording inside QEMU takes no comparators.
    unlimited = request.unlimited or spec.record is not None
    arming = arming_plan(plan, elf, target, unlimited, reserved_breakpoints=int(request.until is not None))
    rotate_seconds = None if request.no_rotate or not arming.rotates else (request.rotate or DEFAULT_ROTATE_SECONDS)
    limits = CaptureLimits(request.duration, request.max_events, _until_address(elf, request.until))
    return _Prepared(target, spec, options, elf, plan, arming, rotate_seconds, limits, note)


def _default_backend(reach: Reach) -> tuple[BackendSpec, str | None]:
    """The first default backend this machine can run, and why any before it could not."""
    *firsts, last = DEFAULT_BACKENDS[reach]
    for name in firsts:
        spec = registry.backend(name)
        try:
            if spec.check is not None:
                spec.check()
        except UsageError as exc:
            return registry.backend(last), f"irqmon: the {name} backend cannot run here ({exc}); capturing with --backend {last}"
        return spec, None
    return registry.backend(last), None


def _check_vectors(elf: ElfImage, target: TargetProfile) -> None:
    """Warn when the firmware's vector table has more interrupts than the target profile's chip
    (an image built for another part: IRQ names and priorities would be wrong)."""
    vectors = elf.interrupt_vectors
    if vectors is not None and target.irqs and vectors > max(target.irqs) + 1:
        warnings.warn(
            f"{elf.path.name} has {vectors} interrupt vectors but {target.name} has {max(target.irqs) + 1}: "
            "built for another chip? (check --target)",
            stacklevel=2,
        )


def _check_reach(spec: BackendSpec, reach: Reach) -> None:
    if reach in spec.reaches:
        return
    if reach is Reach.PROBE:
        ways = " or ".join(REACH_OPTIONS[r] for r in Reach if r in spec.reaches)
        raise UsageError(f"--backend {spec.name} needs {ways}")
    others = "|".join(name for name, other in registry.backends().items() if reach in other.reaches)
    option = REACH_OPTIONS[reach].split()[0]
    raise UsageError(f"--backend {spec.name} cannot use {option}: drop it (or use --backend {others})")


def _backend_options(spec: BackendSpec, given: Mapping[str, Mapping[str, Any]], reach: Reach) -> Any:
    """The chosen backend's options as its `configure` makes them; another backend's option
    given here is refused."""
    for name, options in given.items():
        if name != spec.name and options:
            flag = registry.backend(name).flag(next(iter(options)))
            raise UsageError(f"{flag} is an option of --backend {name}")
    values = spec.option_values(given.get(spec.name, {}))
    return spec.configure(values, reach) if spec.configure else values


def _timeline(spec: BackendSpec, backend: Any, args: BackendArgs, console: Console) -> IrqSource | None:
    """The backend's own non-halting IRQ timeline, or None (with one line saying why) to
    capture by halting."""
    if spec.timeline is None:
        return None
    result = spec.timeline(backend, args)
    if isinstance(result, str):
        console.print(result, highlight=False)
        return None
    return result


@contextmanager
def _signals_end(capture: Capture | Recorder) -> Iterator[None]:
    """Ctrl-C (unless ignored, as in a script's background job), SIGTERM and SIGHUP (the terminal
    closed) end the capture at
    its next safe point: every event kept, the target left running. A second Ctrl-C interrupts
    at once."""

    def on_signal(signum: int, frame: object) -> None:
        if signum == signal.SIGINT and capture.stop_requested:
            raise KeyboardInterrupt
        capture.request_stop("Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name)

    signals = [signal.SIGTERM, signal.SIGHUP] + ([signal.SIGINT] if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN else [])
    previous = {signum: signal.signal(signum, on_signal) for signum in signals}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _until_address(elf: ElfImage, name: str | None) -> int | None:
    if name is None:
        return None
    symbol = elf.symbols.get(name)
    if symbol is None or not symbol.is_function:
        raise UsageError(f"--until {name}: no such function in {elf.path.name}")
    return symbol.address


def _metadata(prepared: _Prepared, backend: str, on_qemu: bool) -> dict[str, object]:
    target, elf = prepared.target, prepared.elf
    clock = {schema.META_CORE_CLOCK: target.qemu_core_clock_hz} if on_qemu and target.qemu_core_clock_hz else {}
    return {
        schema.META_TARGET: target.name,
        schema.META_ELF: str(elf.path.resolve()),
        schema.META_BUILD_ID: elf.build_id,
        schema.META_TOOL_VERSION: __version__,
        schema.META_START_TIME: datetime.now(timezone.utc).isoformat(timespec="seconds"),
        schema.META_PRIORITY_BITS: target.priority_bits,
        schema.META_BACKEND: backend,
        schema.META_PROBES: ",".join(prepared.plan.packs),
        **clock,
    }
