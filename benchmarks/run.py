"""`make bench`: the benchmarks of issues 7 and 16, their ratios printed and written to RESULTS.md.

Every ratio is measured side by side in one run (the compared commands alternate within each
repeat) and is the median over the repeats. `--tiny` runs everything at a size that takes
seconds and writes no RESULTS.md unless `--results` says where (the tests use it).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import analyzer
import capture
import large_trace
import recorder
import timeline
from common import BENCH_DIR, ROOT, load_average, machine

FULL = {"hits": 2000, "activations": 200_000, "sizes": [1_000_000, 10_000_000], "repeats": 5, "analyzer_repeats": 3,
        "plugin_hits": 1_000_000, "rss_seconds": 60.0, "large_sizes": [10_000_000, 100_000_000]}
TINY = {"hits": 20, "activations": 2000, "sizes": [5000, 20_000], "repeats": 1, "analyzer_repeats": 1,
        "plugin_hits": 2000, "rss_seconds": 4.0, "large_sizes": [5000, 50_000]}
GOALS = {"capture": 3.0, "events_per_s": 100_000, "csv_ratio": 2.0, "rss_gib": 2.0, "plugin": 100.0, "fidelity": 0.05}


def head_commit() -> str:
    """The commit the benchmarks ran at (short hash)."""
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False, cwd=ROOT).stdout.strip()


def report(command: str, size: dict, results: dict, started: datetime, load: str) -> str:
    """RESULTS.md: the command, the machine, the date, and the three benchmarks' tables."""
    cap, tl, an = results["capture"], results["timeline"], results["analyzer"]
    lines = [
        "# Benchmark results",
        "",
        f"- Command: `{command}`",
        f"- Machine: {machine()}",
        f"- Date: {started.isoformat(timespec='seconds')} (load average at the start: {load}); commit {head_commit()}",
        "- Ratios are measured side by side in this run: medians over the repeats, the compared commands",
        "  alternating within each repeat.",
        "",
        f"## 1. Capture: breakpoint hits on a tight interrupt loop ({cap['hits']} hits, median of {cap['repeats']})",
        "",
        "`benchmarks/firmware/bench_irq.c` pends EXTI2 through STIR and waits for each activation. Baseline:",
        "gdb-multiarch alone, `break *EXTI2_IRQHandler` with `commands` / `silent` / `continue` / `end`. irqmon:",
        "`irqmon attach` writing every hit as a full row (pc, lr, sp, ipsr, priority, masks, call path).",
        "",
        "| path | hits/s | ratio to the baseline |",
        "|---|---:|---:|",
        f"| gdb-multiarch alone (baseline) | {cap['baseline']:.0f} | 1.00 |",
        f"| `irqmon attach --backend gdb` | {cap['gdb']:.0f} | {cap['gdb_ratio']:.2f} |",
        f"| `irqmon attach --backend rsp` | {cap['rsp']:.0f} | **{cap['rsp_ratio']:.2f}** (goal ≥ {GOALS['capture']:.0f}) |",
        f"| floor: bare `s` + `c` per hit, no registers, no rows | {cap['floor']:.0f} | {cap['floor_ratio']:.2f} |",
        f"| floor without the step: one write per hit (registers, stack window, the handler's first "
        f"instruction written instead of stepped, `c`), no rows | {cap['burst_floor']:.0f} | {cap['burst_floor_ratio']:.2f} |",
        "",
        "The second floor is what one halt per hit costs on this host with nothing else done: QEMU's stop",
        "and resume, and one write with its replies.",
        "",
        "Round trips per hit, counted by a relay between the debugger and QEMU (a write after the stub has",
        f"written is one; packets sent together are one): gdb-multiarch alone **{cap['baseline_round_trips']:.1f}**, "
        f"`irqmon attach --backend rsp` **{cap['rsp_round_trips']:.1f}**.",
        "",
        f"The same two through a relay that makes every round trip {cap['slow_link_ms']:.0f} ms slower, about what a USB "
        f"debug probe adds to each request ({cap['slow_link_hits']} hits, median of {cap['repeats']}; not the goal's "
        "measure, which is the local socket above):",
        "",
        "| path, over the slow link | hits/s | ratio |",
        "|---|---:|---:|",
        f"| gdb-multiarch alone | {cap['slow_link_baseline']:.0f} | 1.00 |",
        f"| `irqmon attach --backend rsp` | {cap['slow_link_rsp']:.0f} | {cap['slow_link_ratio']:.2f} |",
        "",
        f"## 2. ISR timeline: QEMU's NVIC trace ({tl['activations']} activations, median of {tl['repeats']})",
        "",
        "The firmware ends QEMU through semihosting; the plain run and the traced run (the events, timestamps",
        "and log irqmon uses) alternate. Every entry and exit is checked against the firmware's counter.",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| plain run | {tl['plain_s']:.2f} s |",
        f"| traced run | {tl['traced_s']:.2f} s |",
        f"| IRQ entries + exits traced | {tl['events']:.0f} |",
        f"| events/s, traced | **{tl['events_per_s']:.0f}** (goal ≥ {GOALS['events_per_s']}) |",
        f"| slowdown (traced ÷ plain) | **{tl['slowdown']:.2f}** |",
        f"| whole `irqmon attach` with no probes, rows written/s | {tl['attach_rows_per_s']:.0f} |",
        "",
    ]
    sections = analyzer_section(an, size) + recorder_section(results["recorder"]) + large_trace.section(results["large"])
    return "\n".join(lines + sections)


def analyzer_section(an: dict, size: dict) -> list[str]:
    """Benchmark 3: irqmon analyze against pyarrow reading the same CSV and Parquet file."""
    lines = [
        f"## 3. Analyzer: `irqmon analyze` against pyarrow reading the same file (median of {size['analyzer_repeats']})",
        "",
        "`benchmarks/gen_trace.py`: the recorded QEMU captures of every sample end to end, repeated; every run",
        "must find all ten rules the samples' bugs trigger.",
        "",
    ]
    rows = [row for key, row in an.items() if key != "scaling"]
    batched = bool(rows) and "batched_csv_s" in rows[0]  # the default rules judge whole traces: batches timed apart
    path = rows[0]["path"] if rows else "whole"
    lines += [
        f"analyze with its default rules judges the trace {'whole' if path == 'whole' else 'in batches'}"
        + ("; batched: analyze with `--rules` naming every rule that judges a trace in batches." if batched else "."),
        "",
        "| rows | pyarrow CSV | analyze CSV | ratio | pyarrow Parquet | analyze Parquet | ratio | peak RSS |"
        + (" batched CSV | ratio | batched Parquet | ratio | peak RSS |" if batched else ""),
        "|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|---:|---:|---:|---:|" if batched else ""),
    ]
    for row in rows:
        lines.append(
            f"| {row['rows']:,} | {row['pyarrow_csv_s']:.2f} s | {row['analyze_csv_s']:.2f} s | **{row['csv_ratio']:.2f}** "
            f"| {row['pyarrow_parquet_s']:.2f} s | {row['analyze_parquet_s']:.2f} s | {row['parquet_ratio']:.2f} "
            f"| {row['peak_rss_gib']:.2f} GiB |"
            + (f" {row['batched_csv_s']:.2f} s | **{row['batched_csv_ratio']:.2f}** | {row['batched_parquet_s']:.2f} s "
               f"| {row['batched_parquet_ratio']:.2f} | {row['batched_peak_rss_gib']:.2f} GiB |" if batched else "")
        )
    if "scaling" in an:
        scaling = an["scaling"]
        lines += ["", f"analyze time ratio for {scaling['size_ratio']:.0f}× the rows (CSV): **{scaling['time_ratio']:.2f}**"]
    lines += ["", f"Goals: CSV and Parquet ratios ≤ {GOALS['csv_ratio']:.0f}, peak RSS < {GOALS['rss_gib']:.0f} GiB, time ratio close to 10.", ""]
    return lines


def recorder_section(rec: dict) -> list[str]:
    """Benchmark 4: recording inside QEMU against gdb's breakpoint loop; memory; timing fidelity."""
    return [
        f"## 4. Recording inside QEMU: `--backend qemu-plugin` (median of {rec['repeats']})",
        "",
        f"The bench firmware of benchmark 1, {rec['plugin_hits']:,} activations, every one a full row (registers, masks,",
        "exception, priority, call path); end to end: the whole `irqmon attach` command's wall time, start-up",
        f"included. Baseline: gdb-multiarch alone breaking on the same handler ({rec['baseline_hits']} hits), in the same run.",
        "",
        "| path | hits/s | events/s | ratio to the baseline |",
        "|---|---:|---:|---:|",
        f"| gdb-multiarch alone (baseline) | {rec['baseline']:.0f} | | 1.00 |",
        f"| qemu-plugin, CSV | {rec['csv_hits']:.0f} | {rec['csv_events']:.0f} | **{rec['csv_ratio']:.1f}** (goal ≥ {GOALS['plugin']:.0f}) |",
        f"| qemu-plugin, Parquet (`-o trace.parquet`) | {rec['parquet_hits']:.0f} | {rec['parquet_events']:.0f} "
        f"| **{rec['parquet_ratio']:.1f}** (goal ≥ {GOALS['plugin']:.0f}) |",
        "",
        f"Memory over a {rec['seconds']:.0f} s capture to Parquet ({rec['rows']:,} rows): irqmon's peak RSS "
        f"{rec['rss_first_gib']:.2f} GiB in the first quarter, {rec['rss_last_gib']:.2f} GiB in the last "
        f"(ratio **{rec['rss_growth']:.2f}**; flat is 1).",
        "",
        "Timing fidelity: hal_i2c_lock_deadlock's first storm, I2C1_EV entries per second of guest time (its",
        "longest back-to-back run over the core cycles it lasted, both counted by the firmware from SysTick and",
        "printed at the end), QEMU alone (no debugger, no plugin, no trace) beside the captures; under `-icount",
        "shift=2,sleep=off` (guest time counted in instructions) and on QEMU's own clock (guest time follows the host's):",
        "",
        "| run | -icount: entries/s | ratio | QEMU's clock: entries/s | ratio |",
        "|---|---:|---:|---:|---:|",
        f"| QEMU alone | {rec['storm_plain_icount']:.0f} | 1.00 | {rec['storm_plain_qemu']:.0f} | 1.00 |",
        f"| `--backend qemu-plugin` | {rec['storm_plugin_icount']:.0f} | **{rec['storm_plugin_ratio_icount']:.3f}** "
        f"(goal within {GOALS['fidelity']:.0%}) | {rec['storm_plugin_qemu']:.0f} | {rec['storm_plugin_ratio_qemu']:.2f} |",
        f"| `--backend qemu-plugin --probes newlib_heap` (no watched range) | {rec['storm_unwatched_icount']:.0f} "
        f"| {rec['storm_unwatched_ratio_icount']:.3f} | {rec['storm_unwatched_qemu']:.0f} | {rec['storm_unwatched_ratio_qemu']:.2f} |",
        f"| `--backend gdb` | {rec['storm_gdb_icount']:.0f} | {rec['storm_gdb_ratio_icount']:.4f} "
        f"| {rec['storm_gdb_qemu']:.0f} | {rec['storm_gdb_ratio_qemu']:.4f} |",
        "",
        "Under -icount the plugin leaves the guest's execution as it is: the same instructions between the same",
        "timer interrupts, so the same storm. On QEMU's own clock, what the plugin costs QEMU leaves fewer",
        "instructions to each guest millisecond. gdb's halts move the clock under either: on QEMU's clock the",
        "host time around each stop counts; under -icount each stop jumps it to the next timer's deadline",
        "(QEMU warps an idle vCPU's clock there, and a vCPU stopped for gdb counts as idle until the VM stops).",
        "",
    ]


def summary(results: dict) -> str:
    cap, tl, an = results["capture"], results["timeline"], results["analyzer"]
    sizes = [row for key, row in an.items() if key != "scaling"]
    parts = [
        (f"capture: --backend rsp {cap['rsp_ratio']:.2f}x the gdb baseline ({cap['rsp']:.0f} vs {cap['baseline']:.0f} "
         f"hits/s; --backend gdb {cap['gdb_ratio']:.2f}x; bare s+c floor {cap['floor_ratio']:.2f}x; "
         f"floor without the step {cap['burst_floor_ratio']:.2f}x; round trips per hit {cap['baseline_round_trips']:.1f} "
         f"vs {cap['rsp_round_trips']:.1f}; over a link {cap['slow_link_ms']:.0f} ms slower per round trip "
         f"{cap['slow_link_ratio']:.2f}x)"),
        f"timeline: {tl['events_per_s']:.0f} events/s traced, slowdown {tl['slowdown']:.2f}",
        "analyzer: " + ", ".join(f"{row['rows']:,} rows CSV ratio {row['csv_ratio']:.2f} "
                                 f"(Parquet {row['parquet_ratio']:.2f}, {row['peak_rss_gib']:.2f} GiB)"
                                 + (f", batched {row['batched_csv_ratio']:.2f} (Parquet {row['batched_parquet_ratio']:.2f}, "
                                    f"{row['batched_peak_rss_gib']:.2f} GiB)" if "batched_csv_s" in row else "")
                                 for row in sizes),
    ]  # fmt: skip
    rec = results["recorder"]
    parts.append(
        f"qemu-plugin: {rec['csv_ratio']:.1f}x the gdb baseline to CSV, {rec['parquet_ratio']:.1f}x to Parquet; "
        f"RSS growth {rec['rss_growth']:.2f}; storm rate in guest time {rec['storm_plugin_ratio_icount']:.3f} of "
        f"uninstrumented under -icount, {rec['storm_plugin_ratio_qemu']:.2f} on QEMU's clock"
    )
    if "scaling" in an:
        parts.append(f"analyzer scaling: {an['scaling']['time_ratio']:.2f} for {an['scaling']['size_ratio']:.0f}x the rows")
    large = results["large"]
    largest = max((row for key, row in large.items() if key != "growth"), key=lambda row: row["rows"])
    parts.append(f"large trace: {largest['rows']:,} rows in {largest['analyze_s']:.1f} s, peak RSS {largest['peak_rss_gib']:.2f} GiB; "
                 f"time ratio {large['growth']['time_ratio']:.2f} for {large['growth']['size_ratio']:.0f}x the rows")
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a size that runs in seconds (the tests)")
    parser.add_argument("--results", type=Path, help="where to write the report (default: RESULTS.md unless --tiny)")
    parser.add_argument("--only", nargs="+", choices=["analyzer", "large"],
                        help="run only these benchmarks and replace their sections in the existing report")  # fmt: skip
    args = parser.parse_args()
    size = TINY if args.tiny else FULL
    started, load = datetime.now(UTC), load_average()
    if args.only:
        rerun(args.only, size, args.results or BENCH_DIR / "RESULTS.md", started, load)
        return
    results = {
        "capture": capture.run(size["hits"], size["repeats"]),
        "timeline": timeline.run(size["activations"], size["repeats"]),
        "analyzer": analyzer.run(size["sizes"], size["analyzer_repeats"]),
        "recorder": recorder.run(size["plugin_hits"], size["hits"] if args.tiny else 2000, size["rss_seconds"], size["repeats"]),
        "large": large_trace.run(size["large_sizes"], 1),
    }
    print(summary(results))
    output = args.results or (None if args.tiny else BENCH_DIR / "RESULTS.md")
    if output is not None:
        command = "make bench" if not args.tiny else "benchmarks/run.py --tiny"
        output.write_text(report(command, size, results, started, load))
        print(f"written: {output}")


def rerun(names: list[str], size: dict, results_md: Path, started: datetime, load: str) -> None:
    """Run the benchmarks `names` alone and replace their sections in `results_md`, which says
    when they were rerun."""
    numbers = []
    for name in names:
        if name == "analyzer":
            lines = analyzer_section(analyzer.run(size["sizes"], size["analyzer_repeats"]), size)
        else:
            lines = large_trace.section(large_trace.run(size["large_sizes"], 1))
        replace_section(results_md, lines)
        numbers.append(lines[0].split(" ", 2)[1].rstrip("."))
    command = f"rerun alone (`benchmarks/run.py --only {' '.join(names)}`)"
    note = (f"- Sections {', '.join(numbers)} {command}: "
            f"{started.isoformat(timespec='seconds')} (load average at the start: {load}); commit {head_commit()}")  # fmt: skip
    head, marker, rest = results_md.read_text(encoding="utf-8").partition("\n\n## 1.")
    head = "\n".join(line for line in head.split("\n") if command not in line)  # the same rerun's earlier line
    results_md.write_text(head + "\n" + note + marker + rest, encoding="utf-8")
    print(f"written: {results_md}")


def replace_section(results_md: Path, lines: list[str]) -> None:
    """`results_md` with the section `lines` begins with (its `## N.` heading) replaced, or added at the end."""
    text = results_md.read_text(encoding="utf-8") if results_md.exists() else ""
    number = lines[0].split(" ", 2)[1]
    new = "\n".join(lines).rstrip("\n") + "\n"
    match = re.search(rf"^## {re.escape(number)} .*?(?=^## |\Z)", text, flags=re.M | re.S)
    if match:
        after = text[match.end() :]
        text = text[: match.start()] + new + ("\n" + after if after else "")
    else:
        text = text.rstrip("\n") + "\n\n" + new
    results_md.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
