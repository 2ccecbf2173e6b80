"""`irqmon attach`: capture a trace from QEMU or from a running GDB server."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.text import Text

from irqmon import __version__, schema
from irqmon.backends import pyocd as pyocd_backend
from irqmon.backends.base import Backend
from irqmon.backends.gdbmi import GdbMiBackend
from irqmon.backends.qemu import NvicTraceReader, QemuTarget
from irqmon.capture import Capture, CaptureLimits, CaptureSummary, check_budget
from irqmon.elf import ElfImage
from irqmon.errors import UsageError
from irqmon.probes import CapturePlan, parse_watch, plan_capture
from irqmon.targets import TargetProfile, load_target
from irqmon.tracewriter import TraceWriter

DEFAULT_OUTPUT = "irqmon-trace.csv"
PROBES = ("gdb", "rsp", "pyocd")
REFRESH_SECONDS = 0.25


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("attach", help="capture a trace from QEMU or a GDB server")
    add_capture_options(parser)
    parser.set_defaults(run=run)


def add_capture_options(parser: argparse.ArgumentParser) -> None:
    chip = parser.add_mutually_exclusive_group(required=True)
    chip.add_argument("--target", help="target profile name (irqmon targets) or a profile .toml file")
    chip.add_argument("--svd", metavar="FILE", help="any other Cortex-M: IRQ names and priority bits from its CMSIS-SVD file")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--qemu", metavar="ELF", help="start QEMU on this firmware (halted at reset) and capture")
    source.add_argument("--gdb-remote", metavar="HOST:PORT", help="attach to a running GDB server (OpenOCD, pyOCD, J-Link)")
    parser.add_argument("--elf", help="the firmware's ELF (with --gdb-remote or a debug probe)")
    parser.add_argument(
        "--probe", choices=PROBES,
        help="how to reach the target: gdb (gdb-multiarch, the default with --qemu/--gdb-remote), "
        "rsp (the GDB remote protocol spoken directly: fewer round trips per stop), "
        "pyocd (pyOCD's Python API: a debug probe on USB, or QEMU through the qemu probe plugin; "
        "the default with neither --qemu nor --gdb-remote)",
    )  # fmt: skip
    parser.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this long")
    parser.add_argument("--max-events", type=int, metavar="N", help="stop after N events")
    parser.add_argument("--until", metavar="SYMBOL", help="stop when the core reaches this function")
    parser.add_argument("--probes", metavar="A,B", help="probe packs by name or .toml file (default: every pack that finds something)")
    parser.add_argument("--watch", action="append", default=[], metavar="SYMBOL_OR_ADDRESS[:SIZE]", help="also watch every access here (repeatable)")
    parser.add_argument("--unlimited", action="store_true", help="QEMU only: ignore the target's comparator budget")
    parser.add_argument("-o", "--output", default=DEFAULT_OUTPUT, help=f"trace file (default {DEFAULT_OUTPUT})")
    parser.add_argument("-q", "--quiet", action="store_true", help="no plan line and no live status line")
    pyocd_backend.add_arguments(parser)
    swo = parser.add_argument_group("non-halting IRQ timeline on a board (--probe pyocd with an SWO-capable probe)")
    swo.add_argument("--swo-clock", type=_frequency, metavar="HZ", help="stream exception trace over SWO at this bit rate")
    swo.add_argument("--system-clock", type=_frequency, metavar="HZ", help="the core clock (needed with --swo-clock)")


def run(args: argparse.Namespace) -> int:
    summary = attach(args)
    return 1 if summary.error else 0


def attach(args: argparse.Namespace) -> CaptureSummary:
    """Validate everything, capture, and report; used by `attach` and `demo`."""
    console = Console(stderr=True, soft_wrap=True)
    if args.svd and not args.svd.lower().endswith(".svd"):
        raise UsageError(f"--svd {args.svd}: expected a CMSIS-SVD .svd file")
    target = load_target(args.svd if args.svd else args.target)
    probe = args.probe or ("gdb" if args.qemu or args.gdb_remote else "pyocd")
    elf_path = args.qemu or args.elf
    if not elf_path:
        raise UsageError("--elf FW.elf is needed to attach to a board (the firmware's symbols)")
    if not args.qemu and args.unlimited:
        raise UsageError("--unlimited is for QEMU only: real hardware has the comparators it has")
    if probe in ("gdb", "rsp") and not (args.qemu or args.gdb_remote):
        raise UsageError(f"--probe {probe} needs --qemu ELF or --gdb-remote HOST:PORT")
    if probe == "pyocd" and args.gdb_remote:
        raise UsageError("--probe pyocd talks to the probe itself: drop --gdb-remote (or use --probe gdb)")
    if args.swo_clock is not None and (probe != "pyocd" or args.qemu):
        raise UsageError("--swo-clock needs --probe pyocd on a board (on QEMU the timeline comes from QEMU itself)")
    if args.swo_clock is not None and args.system_clock is None:
        raise UsageError("--swo-clock needs --system-clock HZ (the core clock, which SWO's divider works from)")
    pyocd_options = pyocd_backend.parse_options(args.probe_uid, args.frequency, args.pyocd_options)
    if args.qemu and not target.qemu_machine:
        raise UsageError(f"target {target.name} has no QEMU machine: use --gdb-remote with a board")
    for name in ("duration", "max_events"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            raise UsageError(f"--{name.replace('_', '-')} must be positive")
    elf = ElfImage(elf_path)
    watches = [parse_watch(spec, elf) for spec in args.watch]
    packs = [p.strip() for p in args.probes.split(",") if p.strip()] if args.probes else None
    plan = plan_capture(elf, target, packs, watches)
    if not args.unlimited:
        check_budget(plan, target, until=args.until is not None)
    limits = CaptureLimits(args.duration, args.max_events, _until_address(elf, args.until))
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)

    qemu = None
    workdir = Path(tempfile.mkdtemp(prefix="irqmon-"))
    try:
        if args.qemu:
            qemu = QemuTarget(Path(args.qemu), machine=target.qemu_machine, workdir=workdir, nvic_trace=True).start()
        backend = _backend(probe, elf, target, qemu, args.gdb_remote, pyocd_options, args.unlimited)
        backend.connect()
        if not args.quiet:
            console.print(_plan_line(plan), highlight=False)
        irq_source = (
            NvicTraceReader(qemu.nvic_log, target.exception_name, target.logical_priority)
            if qemu
            else _swo_timeline(args, backend, target, console)
        )
        writer = TraceWriter(output, _metadata(target, elf, backend.name, plan))
        capture = Capture(backend, plan, elf, target, writer, irq_source)
        with _live_status(console, enabled=not args.quiet) as status, _signals_end(capture):
            capture.on_progress = status
            summary = capture.run(limits)
        if qemu is not None and not qemu.alive() and not summary.error:
            summary.error = "QEMU exited during the capture"
        if summary.error and qemu is not None and not qemu.alive():
            summary.error = f"QEMU died during the capture ({summary.error})"
    finally:
        if qemu is not None:
            qemu.stop()
            if qemu.serial_log.exists():
                shutil.copyfile(qemu.serial_log, output.with_suffix(".usart1.log"))
        shutil.rmtree(workdir, ignore_errors=True)
    _report(console, output, summary, qemu is not None)
    return summary


@contextmanager
def _signals_end(capture: Capture) -> Iterator[None]:
    """Ctrl-C (unless ignored, as in a script's background job) and SIGTERM end the capture at
    its next safe point: every event kept, the target left running. A second Ctrl-C interrupts
    at once."""

    def on_signal(signum: int, frame: object) -> None:
        if signum == signal.SIGINT and capture.stop_requested:
            raise KeyboardInterrupt
        capture.request_stop("Ctrl-C" if signum == signal.SIGINT else "SIGTERM")

    signals = [signal.SIGTERM] + ([signal.SIGINT] if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN else [])
    previous = {signum: signal.signal(signum, on_signal) for signum in signals}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _frequency(text: str) -> int:
    """`4000000`, `4M`, `1000k` as hertz."""
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:].lower(), 1)
    try:
        value = float(text[:-1] if scale > 1 else text) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a frequency: {text} (e.g. 2000000, 2M, 500k)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"not a positive frequency: {text}")
    return int(value)


def _swo_timeline(args: argparse.Namespace, backend: Backend, target: TargetProfile, console: Console):
    """The SWO exception-trace reader, or None (with one line saying why) to capture by halting."""
    if args.swo_clock is None:
        return None
    result = pyocd_backend.start_exception_trace(backend, target, args.system_clock, args.swo_clock)
    if isinstance(result, str):
        console.print(result, highlight=False)
        return None
    return result


def _backend(
    probe: str,
    elf: ElfImage,
    target: TargetProfile,
    qemu: QemuTarget | None,
    remote: str | None,
    pyocd_options: pyocd_backend.PyOcdOptions,
    unlimited: bool,
) -> Backend:
    if probe == "pyocd":
        return pyocd_backend.create(target, elf.path, pyocd_options, qemu, unlimited)
    address = qemu.gdb_address if qemu else remote
    assert address is not None
    if probe == "rsp":
        from irqmon.backends.rsp_direct import RspBackend

        return RspBackend(elf, address)
    return GdbMiBackend(elf.path, address, cycle_counter=qemu is None)


def _until_address(elf: ElfImage, name: str | None) -> int | None:
    if name is None:
        return None
    symbol = elf.symbols.get(name)
    if symbol is None or not symbol.is_function:
        raise UsageError(f"--until {name}: no such function in {elf.path.name}")
    return symbol.address


def _metadata(target: TargetProfile, elf: ElfImage, backend: str, plan: CapturePlan) -> dict[str, object]:
    return {
        schema.META_TARGET: target.name,
        schema.META_ELF: str(elf.path.resolve()),
        schema.META_BUILD_ID: elf.build_id,
        schema.META_TOOL_VERSION: __version__,
        schema.META_START_TIME: datetime.now(timezone.utc).isoformat(timespec="seconds"),
        schema.META_PRIORITY_BITS: target.priority_bits,
        schema.META_BACKEND: backend,
        "probes": ",".join(plan.packs),
    }


def _plan_line(plan: CapturePlan) -> str:
    packs = ", ".join(plan.packs) or "none"
    return (
        f"probes: {packs} — {plan.breakpoints_needed} breakpoints, {plan.watchpoints_needed} watchpoints"
        f"{', task from RTOS' if plan.task else ''}"
    )


class _live_status:
    """A one-line live view: events/s, by kind, by exception, elapsed time."""

    def __init__(self, console: Console, enabled: bool) -> None:
        self.started = time.monotonic()
        self.last = 0.0
        live = enabled and console.is_terminal
        self.live = Live(Text(""), console=console, transient=True, auto_refresh=False) if live else None

    def __enter__(self):
        if self.live:
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live:
            self.live.__exit__(*exc)

    def __call__(self, summary: CaptureSummary) -> None:
        now = time.monotonic()
        if self.live is None or now - self.last < REFRESH_SECONDS:
            return
        self.last = now
        elapsed = now - self.started
        kinds = " ".join(f"{k}:{n}" for k, n in summary.by_kind.most_common(5))
        exceptions = " ".join(f"{k}:{n}" for k, n in summary.by_exception.most_common(4))
        line = f"{elapsed:6.1f}s  {summary.events} events  {summary.events / max(elapsed, 1e-9):.0f}/s  [{kinds}]  [{exceptions}]"
        self.live.update(Text(line), refresh=True)


def _report(console: Console, output: Path, summary: CaptureSummary, on_qemu: bool) -> None:
    rate = summary.events / summary.elapsed if summary.elapsed else 0.0
    ended = f", ended by {summary.ended_by}" if summary.ended_by and summary.ended_by != "error" else ""
    console.print(
        f"trace: {output} — {summary.events} events ({summary.halts} halts) in {summary.elapsed:.1f} s, "
        f"{rate:.0f} events/s{ended}",
        highlight=False,
    )
    if on_qemu:
        console.print(f"USART1 output: {output.with_suffix('.usart1.log')}", highlight=False)
    if summary.error:
        print(f"irqmon: capture cut off: {summary.error}; the {summary.events} events so far are in {output}", file=sys.stderr)
    else:
        console.print(f"next: irqmon analyze {output}", highlight=False)
