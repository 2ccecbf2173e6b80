"""Benchmark 4: recording inside QEMU (`--backend qemu-plugin`) against gdb's own breakpoint loop.

- Hits/s into the trace: the bench firmware's tight interrupt loop, every activation a full row
  (registers, masks, exception, priority, call path), written as CSV and as Parquet, against
  gdb-multiarch alone breaking on the same handler (`capture.gdb_baseline`), measured in the same
  run. The plugin's run has more activations (a run of 2000 is over in milliseconds).
- Peak RSS of irqmon over a long capture, sampled every half second: the ratio of the last
  quarter's peak to the first quarter's says whether memory stays flat.
- Timing fidelity: the entry rate of hal_i2c_lock_deadlock's first storm (I2C1_EV entries in the
  first 5 ms after its first entry), uninstrumented (QEMU with only the NVIC trace, which the
  rate needs and which costs QEMU time itself) beside the plugin's capture (the default plan, and
  a plan without watched ranges, whose memory callbacks are the plugin's main cost) and gdb's.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import capture
from common import BENCH_HANDLER, PROBE_PACK, PYTHON, RESULTS_DIR, ROOT, TARGET, bench_firmware, isr_count, median_of

from irqmon.backends.qemu import NVIC_TRACE_EVENTS, NvicTraceReader, check_qemu
from irqmon.targets import load_target
from irqmon.tracefile import load_trace

STORM_SAMPLE = ROOT / "firmware_samples" / "build" / "hal_i2c_lock_deadlock.elf"
STORM_EXCEPTION = "I2C1_EV"
STORM_WINDOW = 0.005  # s from the storm's first entry
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


def storm_rate(times: list[float]) -> float:
    """Entries per second in the first STORM_WINDOW after the first entry."""
    start = times[0]
    return sum(1 for t in times if t - start < STORM_WINDOW) / STORM_WINDOW


def uninstrumented_storm_rate() -> float:
    """The storm's entry rate with QEMU's NVIC trace only: no debugger, no plugin."""
    target = load_target(TARGET)
    with tempfile.TemporaryDirectory(prefix="irqmon-bench-") as work:
        serial, log = Path(work) / "usart1.log", Path(work) / "nvic.log"
        events = ",".join(f"trace:{event}" for event in NVIC_TRACE_EVENTS)
        qemu = subprocess.Popen(
            [check_qemu(), "-M", target.qemu_machine, "-nographic", "-monitor", "none", "-kernel", str(STORM_SAMPLE),
             "-serial", f"file:{serial}", "-d", events, "-msg", "timestamp=on", "-D", str(log)],
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
        rows = NvicTraceReader(log, target.exception_name, target.logical_priority)()
    return storm_rate([row["epoch"] for row in rows if row["event"] == "irq_enter" and row["exception"] == STORM_EXCEPTION])


def captured_storm_rate(backend: str, *options: str) -> float:
    """The storm's entry rate in a capture's trace (its `time` column)."""
    with tempfile.TemporaryDirectory(prefix="irqmon-bench-") as work:
        output = Path(work) / "storm.csv"
        subprocess.run(
            [PYTHON, "-m", "irqmon", "attach", "--target", TARGET, "--qemu", str(STORM_SAMPLE), "--until", "sample_done",
             "--unlimited", "--backend", backend, *options, "-q", "-o", str(output)],
            check=True, capture_output=True, cwd=ROOT,
        )  # fmt: skip
        frame = load_trace(output).frame
    entries = frame[(frame["event"] == "irq_enter") & (frame["exception"] == STORM_EXCEPTION)]
    return storm_rate(entries["time"].tolist())


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
            "storm_plain": uninstrumented_storm_rate(), "storm_plugin": captured_storm_rate("qemu-plugin"),
            "storm_gdb": captured_storm_rate("gdb"), "storm_unwatched": captured_storm_rate("qemu-plugin", *UNWATCHED),
        }  # fmt: skip

    results = {"plugin_hits": plugin_hits, "baseline_hits": baseline_hits, "repeats": repeats} | median_of(repeats, once)
    results["storm_plugin_ratio"] = results["storm_plugin"] / results["storm_plain"]
    results["storm_gdb_ratio"] = results["storm_gdb"] / results["storm_plain"]
    results["storm_unwatched_ratio"] = results["storm_unwatched"] / results["storm_plain"]
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
