"""Benchmark 4: recording inside QEMU (`--backend qemu-plugin`) against gdb's own breakpoint loop.

- Hits/s into the trace: the bench firmware's tight interrupt loop, every activation a full row
  (registers, masks, exception, priority, call path), written as CSV and as Parquet, against
  gdb-multiarch alone breaking on the same handler (`capture.gdb_baseline`), measured in the same
  run. The plugin's run has more activations (a run of 2000 is over in milliseconds).
- Peak RSS of irqmon over a long capture, sampled every half second: the ratio of the last
  quarter's peak to the first quarter's says whether memory stays flat.
- Timing fidelity: the entry rate of hal_i2c_lock_deadlock's first storm in guest time (its
  longest back-to-back run over the core cycles it lasted, both counted by the firmware from
  SysTick and printed at the end), QEMU alone (no debugger, no plugin, no trace) beside the
  plugin's capture (the default plan, and a plan without watched ranges) and gdb's; under
  -icount (guest time counted in instructions: the host's speed cannot show) and on QEMU's own
  clock (guest time follows the host's: what slows QEMU down leaves fewer instructions to each
  guest millisecond, and the rate drops).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

import capture
from common import BENCH_HANDLER, PROBE_PACK, PYTHON, RESULTS_DIR, ROOT, TARGET, bench_firmware, isr_count, median_of

from irqmon.backends.qemu import check_qemu
from irqmon.targets import load_target
from irqmon.tracefile import load_trace

STORM_SAMPLE = ROOT / "firmware_samples" / "build" / "hal_i2c_lock_deadlock.elf"
STORM_LINE = re.compile(r"longest back-to-back run (\d+) over (\d+) core cycles")
STORM_CORE_HZ = 168e6  # the sample's SysTick clock (a tick of 168000 cycles is its millisecond)
ICOUNT = ("-icount", "shift=2,sleep=off")
CLOCKS = ("icount", "qemu")  # guest time counted in instructions; QEMU's own clock (the host's)
DONE_MARKER = "hal_i2c_lock_deadlock: done"
UNWATCHED = ("--probes", "newlib_heap")  # a plan with no watched range: no memory callbacks


def plugin_rates(elf: Path, hits: int, output: Path) -> tuple[float, float]:
    """Hits/s and events/s of `irqmon attach --backend qemu-plugin` into `output` (CSV or Parquet),
    end to end: the whole command's wall time (Python's and QEMU's start-up included); every hit
    checked to have its full row."""
    started = time.perf_counter()
    subprocess.run(
        [PYTHON, "-m", "irqmon", "attach", "--target", TARGET, "--qemu", str(elf), "--until", "sample_done",
         "--probes", str(PROBE_PACK), "--backend", "qemu-plugin", "-q", "-o", str(output)],
        check=True, capture_output=True, cwd=ROOT,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    frame = load_trace(output).frame
    rows = frame[(frame["event"] == "call") & (frame["symbol"] == BENCH_HANDLER)]
    counted = isr_count(output.with_suffix(".usart1.log").read_text())
    if len(rows) != hits or counted != hits or rows["callpath"].isna().any():
        raise RuntimeError(f"qemu-plugin: {len(rows)} full rows, the firmware counted {counted}; expected {hits}")
    output.unlink()
    return hits / elapsed, len(frame) / elapsed


def peak_rss(elf: Path, seconds: float) -> dict[str, float]:
    """irqmon's resident memory over a capture of `seconds` (a firmware that does not end)."""
    with tempfile.TemporaryDirectory(prefix="irqmon-bench-") as work:
        process = subprocess.Popen(
            [PYTHON, "-m", "irqmon", "attach", "--target", TARGET, "--qemu", str(elf), "--probes", str(PROBE_PACK),
             "--backend", "qemu-plugin", "--duration", str(seconds), "-q", "-o", str(Path(work) / "long.parquet")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT,
        )  # fmt: skip
        samples: list[tuple[float, float]] = []
        started = time.monotonic()
        while process.poll() is None:
            try:
                status = Path(f"/proc/{process.pid}/status").read_text()
            except OSError:
                break
            rss = [int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")]
            if not rss:  # exited, not yet reaped
                break
            samples.append((time.monotonic() - started, rss[0] / 2**20))
            time.sleep(0.5)
        _, errors = process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"the long capture failed: {errors.decode()[-300:]}")
        rows = load_trace(Path(work) / "long.parquet").table.num_rows
    quarter = max(1, len(samples) // 4)
    first, last = max(r for _, r in samples[:quarter]), max(r for _, r in samples[-quarter:])
    return {"seconds": seconds, "rows": rows, "rss_first_gib": first, "rss_last_gib": last, "rss_growth": last / first}


def storm_rate(serial: str) -> float:
    """The first storm's entries per guest second, as the firmware counted entries and core cycles."""
    match = STORM_LINE.search(serial)
    if match is None:
        raise RuntimeError(f"hal_i2c_lock_deadlock did not report its first storm: {serial[-300:]!r}")
    entries, cycles = map(int, match.groups())
    return entries / cycles * STORM_CORE_HZ


def icount_path(work: Path) -> str:
    """A PATH whose first qemu-system-arm runs the real one under -icount."""
    wrapper = work / "bin" / "qemu-system-arm"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nexec {check_qemu()} "$@" {" ".join(ICOUNT)}\n')
    wrapper.chmod(0o755)
    return f"{wrapper.parent}{os.pathsep}{os.environ['PATH']}"


def uninstrumented_storm_rate(clock: str) -> float:
    """The storm's entry rate with QEMU alone: no debugger, no plugin, no trace."""
    target = load_target(TARGET)
    with tempfile.TemporaryDirectory(prefix="irqmon-bench-") as work:
        serial = Path(work) / "usart1.log"
        qemu = subprocess.Popen(
            [check_qemu(), "-M", target.qemu_machine, "-nographic", "-monitor", "none", "-kernel", str(STORM_SAMPLE),
             "-serial", f"file:{serial}", *(ICOUNT if clock == "icount" else ())],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while DONE_MARKER not in (serial.read_text(errors="replace") if serial.exists() else ""):
                if time.monotonic() > deadline:
                    raise RuntimeError("hal_i2c_lock_deadlock did not finish under plain QEMU")
                time.sleep(0.05)
        finally:
            qemu.kill()
            qemu.wait()
        return storm_rate(serial.read_text(errors="replace"))


def captured_storm_rate(clock: str, backend: str, *options: str) -> float:
    """The storm's entry rate in a capture, from the firmware's report on USART1."""
    with tempfile.TemporaryDirectory(prefix="irqmon-bench-") as work:
        output = Path(work) / "storm.csv"
        environment = os.environ | ({"PATH": icount_path(Path(work))} if clock == "icount" else {})
        subprocess.run(
            [PYTHON, "-m", "irqmon", "attach", "--target", TARGET, "--qemu", str(STORM_SAMPLE), "--until", "sample_done",
             "--unlimited", "--backend", backend, *options, "-q", "-o", str(output)],
            check=True, capture_output=True, cwd=ROOT, env=environment,
        )  # fmt: skip
        return storm_rate(output.with_suffix(".usart1.log").read_text(errors="replace"))


def storm_rates(clock: str) -> dict[str, float]:
    """The storm's guest-time rate uninstrumented and under each capture, on `clock`."""
    return {
        f"storm_plain_{clock}": uninstrumented_storm_rate(clock),
        f"storm_plugin_{clock}": captured_storm_rate(clock, "qemu-plugin"),
        f"storm_unwatched_{clock}": captured_storm_rate(clock, "qemu-plugin", *UNWATCHED),
        f"storm_gdb_{clock}": captured_storm_rate(clock, "gdb"),
    }


def run(plugin_hits: int, baseline_hits: int, rss_seconds: float, repeats: int) -> dict[str, float]:
    elf, baseline_elf = bench_firmware(plugin_hits), bench_firmware(baseline_hits)
    RESULTS_DIR.mkdir(exist_ok=True)

    def once() -> dict[str, float]:
        baseline = capture.gdb_baseline(baseline_elf, baseline_hits)
        csv_hits, csv_events = plugin_rates(elf, plugin_hits, RESULTS_DIR / "capture-qemu-plugin.csv")
        parquet_hits, parquet_events = plugin_rates(elf, plugin_hits, RESULTS_DIR / "capture-qemu-plugin.parquet")
        return {
            "baseline": baseline, "csv_hits": csv_hits, "csv_events": csv_events, "csv_ratio": csv_hits / baseline,
            "parquet_hits": parquet_hits, "parquet_events": parquet_events, "parquet_ratio": parquet_hits / baseline,
        } | {key: rate for clock in CLOCKS for key, rate in storm_rates(clock).items()}  # fmt: skip

    results = {"plugin_hits": plugin_hits, "baseline_hits": baseline_hits, "repeats": repeats} | median_of(repeats, once)
    for clock in CLOCKS:
        for run_name in ("plugin", "unwatched", "gdb"):
            results[f"storm_{run_name}_ratio_{clock}"] = results[f"storm_{run_name}_{clock}"] / results[f"storm_plain_{clock}"]
    return results | peak_rss(bench_firmware(10**9), rss_seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hits", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(run(args.hits, 2000, args.seconds, args.repeats))


if __name__ == "__main__":
    main()
