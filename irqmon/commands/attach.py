"""`irqmon attach`: capture a trace from QEMU, a GDB server or a debug probe.

This module only turns the command line into a `CaptureRequest`; `irqmon.capture.session`
runs it. Each backend's own options come from its declaration in the registry.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from irqmon.output import terminal

from irqmon.capture import registry
from irqmon.capture.session import CaptureRequest, run_capture
from irqmon.errors import UsageError

DEFAULT_OUTPUT = "irqmon-trace.csv"
DEPRECATED_PROBE = "irqmon: --probe is deprecated: use --backend (--probes still chooses probe packs)"
MAX_ICOUNT_SHIFT = 10  # QEMU's own bound on -icount shift=


EXAMPLES = """examples:
  irqmon attach --target stm32f405 --qemu fw.elf --until main_loop_idle -o trace.csv
  irqmon attach --target stm32f746 --gdb-remote 127.0.0.1:3333 --elf fw.elf --probes newlib_heap,stm32_hal_lock
  irqmon attach --target stm32f746 --elf fw.elf --duration 10
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "attach", help="capture a trace from QEMU, a GDB server or a debug probe", description=__doc__.split("\n\n")[0], epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_capture_options(parser)
    parser.set_defaults(run=run)


def add_capture_options(parser: argparse.ArgumentParser) -> None:
    backends = registry.backends()
    chip = parser.add_mutually_exclusive_group(required=True)
    chip.add_argument("--target", help="target profile name (irqmon targets) or a profile .toml file")
    chip.add_argument("--svd", metavar="FILE", help="any other Cortex-M: IRQ names and priority bits from its CMSIS-SVD file")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--qemu", metavar="ELF", help="start QEMU on this firmware (halted at reset) and capture")
    source.add_argument("--gdb-remote", metavar="HOST:PORT", help="attach to a running GDB server (OpenOCD, pyOCD, J-Link)")
    parser.add_argument("--elf", help="the firmware's ELF (with --gdb-remote or a debug probe)")
    choose = parser.add_mutually_exclusive_group()
    choose.add_argument(
        "--backend", metavar="NAME",
        help="how to reach the target (default: qemu-plugin with --qemu, else gdb with --gdb-remote, pyocd with a probe): " + "; ".join(f"{name}: {spec.help}" for name, spec in backends.items()),
    )  # fmt: skip
    choose.add_argument("--probe", metavar="NAME", help="deprecated: the old name of --backend")
    parser.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this long")
    parser.add_argument("--max-events", type=int, metavar="N", help="stop after N events")
    parser.add_argument("--until", metavar="SYMBOL", help="stop when the core reaches this function")
    parser.add_argument("--probes", metavar="A,B", help="probe packs by name or .toml file (default: every pack that finds something)")
    parser.add_argument("--watch", action="append", default=[], metavar="SYMBOL_OR_ADDRESS[:SIZE]", help="also watch every access here (repeatable; SIZE in bytes, one DWT comparator covers its aligned power-of-two block)")
    parser.add_argument("--unlimited", action="store_true", help="QEMU only: ignore the target's comparator budget")
    parser.add_argument(
        "--icount", type=int, metavar="SHIFT",
        help=f"QEMU only: guest time counted in instructions (2**SHIFT ns each, {MAX_ICOUNT_SHIFT} at most), so what a "
        "capture costs QEMU does not change the firmware's timing; gdb's halts still move the clock to the next timer",
    )  # fmt: skip
    rotation = parser.add_mutually_exclusive_group()
    rotation.add_argument("--rotate", metavar="DURATION", type=_duration,
                          help="when the probes need more comparators than the chip has, arm them in sets for this long each (e.g. 250ms, 1s; default 250ms)")  # fmt: skip
    rotation.add_argument("--no-rotate", action="store_true", help="arm only the first comparator set (the highest-ranked probe sites)")
    parser.add_argument("-o", "--output", default=DEFAULT_OUTPUT, help=f"trace file (default {DEFAULT_OUTPUT})")
    parser.add_argument("-q", "--quiet", action="store_true", help="no plan line and no live status line")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log the remote-protocol packets to OUTPUT.traffic.log (gdb and rsp backends), for a GDB server that misbehaves")  # fmt: skip
    for name, spec in backends.items():
        if spec.options:
            group = parser.add_argument_group(f"{name} backend (--backend {name})")
            for option in spec.options:
                group.add_argument(
                    *option.flags, dest=_dest(name, option.name), metavar=option.metavar, help=option.help,
                    action="append" if option.repeatable else "store",
                )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    summary = run_capture(request(args), terminal.console(stderr=True, soft_wrap=True))
    return 1 if summary.error else 0


def request(args: argparse.Namespace) -> CaptureRequest:
    """The command line as a capture request."""
    if args.svd and not args.svd.lower().endswith(".svd"):
        raise UsageError(f"--svd {args.svd}: expected a CMSIS-SVD .svd file")
    elf = args.qemu or args.elf
    if not elf:
        raise UsageError("--elf FW.elf is needed to attach to a board (the firmware's symbols)")
    if args.probe:
        print(DEPRECATED_PROBE, file=sys.stderr)
    if args.icount is not None and not args.qemu:
        raise UsageError("--icount counts QEMU's instructions: it needs --qemu")
    if args.icount is not None and not 0 <= args.icount <= MAX_ICOUNT_SHIFT:
        raise UsageError(f"--icount {args.icount}: a shift from 0 to {MAX_ICOUNT_SHIFT} (2**SHIFT ns an instruction)")
    given = {
        name: {o.name: value for o in spec.options if (value := getattr(args, _dest(name, o.name))) is not None}
        for name, spec in registry.backends().items()
    }
    return CaptureRequest(
        target=args.svd or args.target,
        elf=Path(elf),
        output=Path(args.output),
        qemu=bool(args.qemu),
        gdb_remote=args.gdb_remote,
        backend=args.backend or args.probe,
        backend_options={name: options for name, options in given.items() if options},
        packs=tuple(p.strip() for p in args.probes.split(",") if p.strip()) if args.probes else None,
        watch=tuple(args.watch),
        unlimited=args.unlimited,
        icount=args.icount,
        rotate=args.rotate,
        no_rotate=args.no_rotate,
        duration=args.duration,
        max_events=args.max_events,
        until=args.until,
        quiet=args.quiet,
        traffic_log=Path(args.output).with_suffix(".traffic.log") if args.verbose else None,
    )


def _duration(text: str) -> float:
    """`250ms`, `1.5s` or plain seconds, as seconds."""
    number, scale = (text[:-2], 1e-3) if text.endswith("ms") else (text[:-1], 1.0) if text.endswith("s") else (text, 1.0)
    try:
        seconds = float(number) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (e.g. 250ms, 1s)") from None
    if not (seconds > 0 and seconds < float("inf")):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive duration")
    return seconds


def _dest(backend: str, option: str) -> str:
    """Where argparse keeps a backend's option (backends may name their options alike)."""
    return f"{backend}:{option}"
