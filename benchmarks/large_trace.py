"""Large-trace benchmark: `irqmon analyze` of Parquet traces up to 100M rows, in bounded memory.

For each size, `gen_trace.py` writes a synthetic Parquet trace (the recorded sample captures,
repeated) and `irqmon analyze` judges it with its default rules, as a user runs it (a new
process, JSON output, peak RSS from GNU time; every planted rule must be found). Beside it, in
the same run: pyarrow reading the same file row group by row group, the way a bounded reader
must (a whole-file read of 100M rows would itself take several GiB). Time should grow with the
rows and peak RSS should not. At the largest size, `irqmon report` of the same file too (its
analysis in batches, then the report's pass: tables over the whole trace, figures of a window).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
from analyzer import TIME, analyze
from common import PYTHON, RESULTS_DIR, ROOT, median_of
from gen_trace import generate

from irqmon.report.kept_values import HELD_VALUES
from irqmon.report.streamed import DRAWN_ROWS, REPORT_BATCH_ROWS

SECTION = "## 5. A trace of 100M rows"
RSS_GOAL_GIB = 2.0


def pyarrow_row_groups_seconds(path: Path) -> float:
    """Wall seconds of pyarrow reading every row group of `path`, one at a time."""
    start = time.perf_counter()
    parquet = pq.ParquetFile(path)
    for group in range(parquet.num_row_groups):
        parquet.read_row_group(group, use_threads=True)
    return time.perf_counter() - start


def report(path: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (GiB) of `irqmon report` (its default rules and layout), as a user runs it."""
    with tempfile.TemporaryDirectory(prefix="irqmon-bench-") as work:
        output, usage = Path(work) / "report", Path(work) / "usage"
        command = [TIME, "-f", "%M", "-o", str(usage), PYTHON, "-m", "irqmon", "report", str(path), "--no-elf", "-o", str(output)]
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
        elapsed = time.perf_counter() - start
        if result.returncode != 0 or not (output / "report.md").exists():
            raise RuntimeError(f"irqmon report {path.name} failed: {result.stderr.strip()[-500:]}")
        peak_kib = int(usage.read_text().split()[-1])
    return elapsed, peak_kib / 2**20


def run(sizes: list[int], repeats: int) -> dict[str, dict[str, float]]:
    """For each size: medians of pyarrow's read and of analyze, their ratio, analyze's peak RSS
    (and at the largest size, of `irqmon report`); and how time and peak RSS grew from the
    smallest size to the largest."""
    results = {}
    for rows in sizes:
        (path,) = generate(rows, RESULTS_DIR, ("parquet",))

        def once(path: Path = path, largest: bool = rows == max(sizes)) -> dict[str, float]:
            read = pyarrow_row_groups_seconds(path)
            seconds, peak = analyze(path)
            times = {"pyarrow_s": read, "analyze_s": seconds, "ratio": seconds / read, "peak_rss_gib": peak}
            if not largest:
                return times
            report_seconds, report_peak = report(path)
            return times | {"report_s": report_seconds, "report_peak_rss_gib": report_peak}

        results[str(rows)] = {"rows": rows, "repeats": repeats, "bytes": path.stat().st_size} | median_of(repeats, once)
        path.unlink()
    small, large = results[str(sizes[0])], results[str(sizes[-1])]
    results["growth"] = {
        "size_ratio": sizes[-1] / sizes[0],
        "time_ratio": large["analyze_s"] / small["analyze_s"],
        "rss_ratio": large["peak_rss_gib"] / small["peak_rss_gib"],
    }
    return results


def section(results: dict) -> list[str]:
    """The RESULTS.md section of this benchmark."""
    sizes = [row for key, row in results.items() if key != "growth"]
    growth = results["growth"]
    lines = [
        f"{SECTION}: `irqmon analyze` in batches (Parquet, default rules, median of {sizes[0]['repeats']})",
        "",
        "`irqmon analyze` reads a trace in batches of 1,048,576 rows when every selected rule can judge one",
        "(all of the default rules can); pyarrow reading the same file row group by row group beside it.",
        "",
        "| rows | file | pyarrow, by row group | analyze | ratio | rows/s | peak RSS |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in sizes:
        lines.append(
            f"| {row['rows']:,} | {row['bytes'] / 2**30:.2f} GiB | {row['pyarrow_s']:.2f} s | {row['analyze_s']:.1f} s "
            f"| {row['ratio']:.1f} | {row['rows'] / row['analyze_s']:,.0f} | **{row['peak_rss_gib']:.2f} GiB** |"
        )
    reported = [row for row in sizes if "report_s" in row]
    if reported:
        lines += [
            "",
            "`irqmon report` of the same file (default rules and layout: the analysis in batches, then the report's pass",
            f"in batches of {REPORT_BATCH_ROWS:,} rows; the tables over the whole trace, exact medians and p99 from execution",
            f"times and periods kept in temporary files past {HELD_VALUES:,} values; the figures of a window of {DRAWN_ROWS:,} rows):",
            "",
            "| rows | report | ratio to pyarrow | rows/s | peak RSS |",
            "|---:|---:|---:|---:|---:|",
        ]
        for row in reported:
            lines.append(
                f"| {row['rows']:,} | {row['report_s']:.1f} s | {row['report_s'] / row['pyarrow_s']:.1f} "
                f"| {row['rows'] / row['report_s']:,.0f} | **{row['report_peak_rss_gib']:.2f} GiB** |"
            )
    lines += [
        "",
        f"For {growth['size_ratio']:.0f}× the rows: analyze time ratio **{growth['time_ratio']:.2f}** (linear is "
        f"{growth['size_ratio']:.0f}), peak RSS ratio **{growth['rss_ratio']:.2f}** (flat is 1).",
        "",
        f"Goals: peak RSS < {RSS_GOAL_GIB:.0f} GiB at any size; time linear in rows.",
        "",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000_000, 100_000_000])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    results = run(args.sizes, args.repeats)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
