"""`irqmon demo [SAMPLE]`: the whole path on QEMU — attach, analyze, report — on a firmware
sample of this repository (what `make demo` runs)."""

from __future__ import annotations

import argparse
from pathlib import Path

from irqmon.errors import UsageError

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "firmware_samples"
DEFAULT_SAMPLE = "hal_i2c_lock_deadlock"
DEFAULT_OUTPUT = Path("irqmon-demo")


EXAMPLES = """examples:
  irqmon demo
  irqmon demo usb_cdc_malloc_isr -o results/
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "demo", help="capture, analyze and report a firmware sample on QEMU", description=__doc__, epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("sample", nargs="?", default=DEFAULT_SAMPLE, help=f"sample name (default {DEFAULT_SAMPLE})")
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT, help="directory for the results")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from irqmon.cli import main

    known = sorted(p.parent.name for p in SAMPLES.glob("*/expected.toml"))
    if args.sample not in known:
        raise UsageError(f"unknown sample '{args.sample}': known are {', '.join(known)}")
    elf = SAMPLES / "build" / f"{args.sample}.elf"
    if not elf.exists():
        raise UsageError(f"{elf} is not built: run make -C {SAMPLES} (make demo does it)")
    out = args.output / args.sample
    out.mkdir(parents=True, exist_ok=True)
    trace = out / "trace.csv"
    steps = [
        ["attach", "--target", "stm32f405", "--qemu", str(elf), "--unlimited", "--until", "sample_done", "-o", str(trace)],
        ["analyze", str(trace)],
        ["analyze", str(trace), "--format", "json", "-o", str(out / "findings.json")],
        ["analyze", str(trace), "--format", "sarif", "-o", str(out / "findings.sarif")],
        ["report", str(trace), "-o", str(out / "report")],
    ]  # fmt: skip
    for step in steps:
        print(f"\n$ irqmon {' '.join(step)}", flush=True)
        status = main(step)
        if status == 2 or (step[0] != "analyze" and status != 0):
            return status
    print(
        f"\ndone: trace {trace}, findings {out / 'findings.json'} and {out / 'findings.sarif'}, "
        f"report {out / 'report' / 'report.md'} (and report.html)"
    )
    return 0
