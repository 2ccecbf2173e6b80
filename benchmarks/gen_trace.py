"""Synthetic traces for the analyzer benchmark, made of real ones.

The recorded QEMU captures of every sample (`tests/analysis/traces/`, one per sample: IRQ
timelines, calls and returns, lock and register accesses, mask changes, the clean sample's busy
but legal traffic) are laid end to end, each shifted in time to follow the one before, and the
sequence is repeated until the trace has the rows asked for. Every repetition carries the
samples' bugs again, so the rules each sample's `expected.toml` names must all be found.
"""

from __future__ import annotations

import argparse
import tomllib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from common import ROOT

from irqmon import __version__, schema
from irqmon.tracefile import PARQUET_META_PREFIX, with_optional_columns

RECORDED = ROOT / "tests" / "analysis" / "traces"
SAMPLES = ROOT / "firmware_samples"
GAP_SECONDS = 0.01  # between one recorded capture and the next
ARROW_TYPES = {"int64": pa.int64(), "Int64": pa.int64(), "float64": pa.float64(), "string": pa.string()}
SCHEMA = pa.schema([(name, ARROW_TYPES[dtype]) for name, dtype in schema.COLUMNS.items()])
METADATA = {
    schema.META_SCHEMA: schema.SCHEMA_VERSION,
    schema.META_TARGET: "stm32f405",
    schema.META_PRIORITY_BITS: 4,
    schema.META_BACKEND: "synthetic",
    schema.META_TOOL_VERSION: __version__,
}


def recorded_captures() -> list[Path]:
    return sorted(RECORDED.glob("*.csv"))


def planted_rules() -> set[str]:
    """The rules the samples' expected.toml files say their bugs trigger."""
    rules: set[str] = set()
    for capture in recorded_captures():
        rules.update(tomllib.loads((SAMPLES / capture.stem / "expected.toml").read_text())["rules"])
    return rules


def _read(path: Path) -> pa.Table:
    skip = sum(1 for _ in iter(path.open().readline, "") if _.startswith("#")) if path.exists() else 0
    table = pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(skip_rows=skip),
        convert_options=pacsv.ConvertOptions(column_types=SCHEMA, null_values=[""], strings_can_be_null=True),
    )
    return with_optional_columns(table).select(SCHEMA.names).cast(SCHEMA)


def one_round() -> tuple[pa.Table, float]:
    """Every recorded capture once, end to end in time; and how long the round lasts."""
    tables, offset = [], 0.0
    for path in recorded_captures():
        table = _read(path)
        times = table["time"]
        start, end = pc.min(times).as_py(), pc.max(times).as_py()
        shifted = pc.add(pc.subtract(times, start), offset)
        tables.append(table.set_column(SCHEMA.get_field_index("time"), "time", shifted))
        offset += end - start + GAP_SECONDS
    return pa.concat_tables(tables).combine_chunks(), offset


ROUNDS_PER_CHUNK = 256  # rounds written at a time: a 100M-row trace is never held whole


def synthetic_chunks(rows: int) -> Iterator[pa.Table]:
    """`rows` rows of the recorded captures, repeated, with `seq` and `time` renumbered, in
    tables of a few hundred rounds."""
    round_table, duration = one_round()
    if rows < len(round_table):
        raise ValueError(f"{rows} rows hold not even one round of the recorded captures ({len(round_table)} rows)")
    chunk = pa.concat_tables([round_table] * ROUNDS_PER_CHUNK).combine_chunks()
    round_times = np.tile(round_table["time"].to_numpy(), ROUNDS_PER_CHUNK)
    round_of_row = np.repeat(np.arange(ROUNDS_PER_CHUNK), len(round_table))
    for first in range(0, rows, len(chunk)):
        size = min(len(chunk), rows - first)
        rounds_before = first // len(round_table)
        times = round_times[:size] + (rounds_before + round_of_row[:size]) * duration
        table = chunk.slice(0, size)
        table = table.set_column(SCHEMA.get_field_index("seq"), "seq", pa.array(np.arange(first, first + size, dtype=np.int64)))
        yield table.set_column(SCHEMA.get_field_index("time"), "time", pa.array(np.round(times, 6)))


def write_csv(chunks: Iterable[pa.Table], path: Path) -> None:
    """The capture's CSV format: `# key: value` lines, the header, one row per event."""
    metadata = METADATA | {schema.META_START_TIME: datetime.now(UTC).isoformat(timespec="seconds")}
    with path.open("wb") as file:
        file.write(f"# {schema.MAGIC}\n".encode())
        for key, value in metadata.items():
            file.write(f"# {key}: {value}\n".encode())
        options = pacsv.WriteOptions(quoting_style="needed", quoting_header="none")
        with pacsv.CSVWriter(file, SCHEMA, write_options=options) as writer:
            for table in chunks:
                writer.write_table(table)


def write_parquet(chunks: Iterable[pa.Table], path: Path) -> None:
    metadata = {f"{PARQUET_META_PREFIX}{key}": str(value) for key, value in METADATA.items()}
    with pq.ParquetWriter(path, SCHEMA.with_metadata(metadata)) as writer:
        for table in chunks:
            writer.write_table(table)


def generate(rows: int, directory: Path, formats: tuple[str, ...] = ("csv", "parquet")) -> tuple[Path, ...]:
    """Write `synthetic-<rows>.csv` and `.parquet` (or the `formats` asked) into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = tuple(directory / f"synthetic-{rows}.{suffix}" for suffix in formats)
    for path in paths:
        (write_csv if path.suffix == ".csv" else write_parquet)(synthetic_chunks(rows), path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=int, nargs="+", help="trace sizes, e.g. 1000000 10000000")
    parser.add_argument("-o", "--output", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    for rows in args.rows:
        print(*generate(rows, args.output))
    print("planted:", ", ".join(sorted(planted_rules())))


if __name__ == "__main__":
    main()
