"""Analyzer benchmark: whole `irqmon analyze` wall time against pyarrow reading the same file.

For each size, `gen_trace.py` writes a synthetic trace (CSV and Parquet) made of the recorded
sample captures. Each repeat times, one after the other: pyarrow reading the CSV (the same
`pyarrow.csv.read_csv` call and column types irqmon's loader uses), `irqmon analyze` on the
CSV, pyarrow reading the Parquet file, `irqmon analyze` on it. analyze runs as a user runs it
(a new process, JSON output); its peak RSS comes from GNU time. Every run must find every rule
the samples' bugs trigger (of the rules it runs).

`irqmon analyze` with its default rules judges the trace whole, or in batches once every rule
can (`path`). While some rule cannot, each repeat also times the batched path: analyze with
`--rules` naming the rules that can (`batched_*`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from common import PYTHON, RESULTS_DIR, ROOT, median_of
from gen_trace import SCHEMA, generate, planted_rules

from irqmon.analysis import all_rules

TIME = "/usr/bin/time"


def pyarrow_csv_seconds(path: Path) -> float:
    skip = 0
    with path.open("rb") as file:
        while file.readline().startswith(b"#"):
            skip += 1
    start = time.perf_counter()
    pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(skip_rows=skip, use_threads=True),
        convert_options=pacsv.ConvertOptions(column_types=SCHEMA, null_values=[""], strings_can_be_null=True),
    )
    return time.perf_counter() - start


def pyarrow_parquet_seconds(path: Path) -> float:
    start = time.perf_counter()
    pq.read_table(path)
    return time.perf_counter() - start


def streaming_rules() -> list[str] | None:
    """The rules that judge a trace in batches, while some rule cannot (None once all can: the
    default rules then take the batched path)."""
    rules = all_rules()
    streaming = [rule_id for rule_id, rule in rules.items() if rule.stream is not None]
    return None if len(streaming) == len(rules) else streaming


def analyze(path: Path, rules: list[str] | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (GiB) of `irqmon analyze` (its default rules, or only `rules`),
    checked against the planted bugs."""
    with tempfile.TemporaryDirectory(prefix="irqmon-bench-") as work:
        output, usage = Path(work) / "findings.json", Path(work) / "usage"
        only = ["--rules", ",".join(rules)] if rules else []
        command = [TIME, "-f", "%M", "-o", str(usage), PYTHON, "-m", "irqmon", "analyze", str(path),
                   "--no-elf", "--format", "json", "-o", str(output), *only]  # fmt: skip
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
        elapsed = time.perf_counter() - start
        if not output.exists():
            raise RuntimeError(f"irqmon analyze {path.name} failed: {result.stderr.strip()[-500:]}")
        found = {finding["rule"] for finding in json.loads(output.read_text())["findings"]}
        peak_kib = int(usage.read_text().split()[-1])
    missing = (planted_rules() if rules is None else planted_rules() & set(rules)) - found
    if missing:
        raise RuntimeError(f"irqmon analyze {path.name} missed {', '.join(sorted(missing))}")
    return elapsed, peak_kib / 2**20


def run(sizes: list[int], repeats: int) -> dict[str, dict[str, float]]:
    """For each size: medians of the timings, the ratios, and the peak RSS, of the default path
    and, while it is not the batched one, of the batched path."""
    results = {}
    batched_rules = streaming_rules()
    for rows in sizes:
        csv_path, parquet_path = generate(rows, RESULTS_DIR)

        def once(csv_path: Path = csv_path, parquet_path: Path = parquet_path) -> dict[str, float]:
            read_csv = pyarrow_csv_seconds(csv_path)
            analyze_csv, rss_csv = analyze(csv_path)
            read_parquet = pyarrow_parquet_seconds(parquet_path)
            analyze_parquet, rss_parquet = analyze(parquet_path)
            times = {
                "pyarrow_csv_s": read_csv, "analyze_csv_s": analyze_csv, "csv_ratio": analyze_csv / read_csv,
                "pyarrow_parquet_s": read_parquet, "analyze_parquet_s": analyze_parquet,
                "parquet_ratio": analyze_parquet / read_parquet, "peak_rss_gib": max(rss_csv, rss_parquet),
            }  # fmt: skip
            if batched_rules is None:
                return times
            batched_csv, batched_rss_csv = analyze(csv_path, batched_rules)
            batched_parquet, batched_rss_parquet = analyze(parquet_path, batched_rules)
            return times | {
                "batched_csv_s": batched_csv, "batched_csv_ratio": batched_csv / read_csv,
                "batched_parquet_s": batched_parquet, "batched_parquet_ratio": batched_parquet / read_parquet,
                "batched_peak_rss_gib": max(batched_rss_csv, batched_rss_parquet),
            }  # fmt: skip

        path = "batched" if batched_rules is None else "whole"
        results[str(rows)] = {"rows": rows, "repeats": repeats, "path": path} | median_of(repeats, once)
        csv_path.unlink()
        parquet_path.unlink()
    if len(sizes) >= 2:
        small, large = results[str(sizes[0])], results[str(sizes[-1])]
        results["scaling"] = {
            "size_ratio": sizes[-1] / sizes[0],
            "time_ratio": large["analyze_csv_s"] / small["analyze_csv_s"],
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(run(args.sizes, args.repeats), indent=2))


if __name__ == "__main__":
    main()
