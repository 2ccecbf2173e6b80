"""ISR timeline benchmark: QEMU's NVIC trace events, captured with no halts.

The bench firmware takes its interrupt N times and ends QEMU through semihosting. It runs twice
side by side: plainly, and with the NVIC trace irqmon uses (`QemuTarget(nvic_trace=True)`: the
acknowledge/complete events, host timestamps, a log file). The log is read with irqmon's own
reader and every activation is checked against the firmware's counter. Reported: IRQ
entries/exits per second of the traced run, the slowdown (traced ÷ plain wall time, medians),
and the same timeline through a whole `irqmon attach` with no probes (rows written per second).
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

from common import (
    BENCH_IPSR,
    NO_PROBES_PACK,
    RESULTS_DIR,
    TARGET,
    bench_firmware,
    irqmon,
    isr_count,
    median_of,
)

from irqmon.backends.qemu import NVIC_TRACE_EVENTS, NvicTraceReader, check_qemu
from irqmon.targets import load_target
from irqmon.tracefile import load_trace

SEMIHOSTING = ("-semihosting-config", "enable=on,target=native")


def qemu_run(elf: Path, work: Path, traced: bool) -> tuple[float, str]:
    """Run the firmware to its semihosting exit; the wall time and its USART1 output."""
    machine = load_target(TARGET).qemu_machine
    serial = work / "usart1.log"
    command = [check_qemu(), "-M", machine, "-nographic", "-monitor", "none", "-kernel", str(elf),
               "-serial", f"file:{serial}", *SEMIHOSTING]  # fmt: skip
    if traced:
        events = ",".join(f"trace:{event}" for event in NVIC_TRACE_EVENTS)
        command += ["-d", events, "-msg", "timestamp=on", "-D", str(work / "nvic-trace.log")]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdin=subprocess.DEVNULL, capture_output=True, timeout=3600)
    return time.perf_counter() - start, serial.read_text(errors="replace")


def traced_events(log: Path, activations: int) -> int:
    """IRQ rows irqmon's reader makes of the log, checked: every activation entered and left."""
    target = load_target(TARGET)
    rows = NvicTraceReader(log, target.exception_name, target.logical_priority)()
    bench = [row for row in rows if row["ipsr"] == BENCH_IPSR]
    entries = sum(row["event"] == "irq_enter" for row in bench)
    exits = sum(row["event"] == "irq_exit" for row in bench)
    if entries != activations or exits != activations:
        raise RuntimeError(f"the trace has {entries} entries and {exits} exits, the firmware counted {activations}")
    return len(rows)


def attach_rate(elf: Path, activations: int) -> float:
    """Rows per second of a whole `irqmon attach` that only reads the NVIC timeline."""
    output = RESULTS_DIR / "timeline-attach.csv"
    start = time.perf_counter()
    irqmon(
        "attach", "--target", TARGET, "--qemu", str(elf), "--unlimited", "--until", "sample_done",
        "--probes", str(NO_PROBES_PACK), "-q", "-o", str(output),
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    frame = load_trace(output).frame
    bench = frame[frame["ipsr"] == BENCH_IPSR]
    halts = frame["event"].isin(["call", "return", "access", "mask"]).sum()
    entries = (bench["event"] == "irq_enter").sum()
    if halts or entries != activations:
        raise RuntimeError(f"irqmon attach: {entries} entries of {activations}, {halts} halting rows")
    return len(frame) / elapsed


def run(activations: int, repeats: int) -> dict[str, float]:
    """Medians: events/s traced, the slowdown against the plain run, and irqmon attach rows/s."""
    elf = bench_firmware(activations, exit_qemu=True)
    RESULTS_DIR.mkdir(exist_ok=True)

    def once() -> dict[str, float]:
        with tempfile.TemporaryDirectory(prefix="irqmon-bench-") as work:
            plain, serial = qemu_run(elf, Path(work), traced=False)
            if isr_count(serial) != activations:
                raise RuntimeError(f"the plain run counted {isr_count(serial)} activations")
            traced, serial = qemu_run(elf, Path(work), traced=True)
            events = traced_events(Path(work) / "nvic-trace.log", isr_count(serial))
        return {"plain_s": plain, "traced_s": traced, "events": events, "events_per_s": events / traced,
                "slowdown": traced / plain}  # fmt: skip

    result = {"activations": activations, "repeats": repeats} | median_of(repeats, once)
    result["attach_rows_per_s"] = attach_rate(bench_firmware(activations), activations)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activations", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(run(args.activations, args.repeats))


if __name__ == "__main__":
    main()
