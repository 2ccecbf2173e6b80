"""Large-trace benchmark: `irqmon analyze` of Parquet traces up to 100M rows, in bounded memory.

For each size, `gen_trace.py` writes a synthetic Parquet trace (the recorded sample captures,
repeated) and `irqmon analyze` judges it with its default rules, as a user runs it (a new
process, JSON output, peak RSS from GNU time; every planted rule must be found). Beside it, in
the same run: pyarrow reading the same file row group by row group, the way a bounded reader
must (a whole-file read of 100M rows would itself take several GiB). Time should grow with the
rows and peak RSS should not.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pyarrow.parquet as pq
from analyzer import analyze
from common import RESULTS_DIR, median_of
from gen_trace import generate

SECTION = "## 5. A trace of 100M rows"
RSS_GOAL_GIB = 2.0


def pyarrow_row_groups_seconds(path: Path) -> float:
    """Wall seconds of pyarrow reading every row group of `path`, one at a time."""
    start = time.perf_counter()
    parquet = pq.ParquetFile(path)
    for group in range(parquet.num_row_groups):
        parquet.read_row_group(group, use_threads=True)
    return time.perf_counter() - start


def run(sizes: list[int], repeats: int) -> dict[str, dict[str, float]]:
    """For each size: medians of pyarrow's read and of analyze, their ratio, analyze's peak RSS;
    and how time and peak RSS grew from the smallest size to the largest."""
    results = {}
    for rows in sizes:
        (path,) = generate(rows, RESULTS_DIR, ("parquet",))

        def once(path: Path = path) -> dict[str, float]:
            read = pyarrow_row_groups_seconds(path)
            seconds, peak = analyze(path)
            return {"pyarrow_s": read, "analyze_s": seconds, "ratio": seconds / read, "peak_rss_gib": peak}

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
