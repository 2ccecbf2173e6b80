"""read_batches: a trace read in batches holds, batch by batch, what load_trace holds whole, and a
bad file is refused with load_trace's own line, its line or row counted over the whole file."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import ROOT
from test_loader import FUZZ, edit, mixed_rows, valid
from tracebuild import write_trace

from irqmon import schema
from irqmon.analysis.batches import _resident_bytes
from irqmon.errors import UsageError
from irqmon.tracefile import KeptRows, PartialRowWarning, Trace, load_trace, read_batches, write_parquet

sys.path.insert(0, str(ROOT / "benchmarks"))

import gen_trace

RECORDED = Path(__file__).parent / "traces"
BIG_ROWS = 300_000


def decoded(table: pa.Table) -> pa.Table:
    """`table` in one chunk, its dictionary columns decoded, to compare values."""
    columns = [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in table.columns]
    return pa.table(columns, names=table.column_names).combine_chunks()


def assert_batches_hold_the_trace(path: Path, rows: int) -> list[pa.Table]:
    """Each batch has load_trace's columns and types and `rows` rows (the last may have fewer),
    and together they are load_trace's rows in order."""
    whole = load_trace(path).table
    batches = list(read_batches(path, rows))
    assert all(batch.schema == whole.schema for batch in batches)
    assert all(batch.num_rows == rows for batch in batches[:-1]) and 0 < batches[-1].num_rows <= rows
    assert decoded(pa.concat_tables(batches)).equals(decoded(whole))
    return batches


def as_parquet(source: Path, directory: Path) -> Path:
    path = directory / f"{source.stem}.parquet"
    write_parquet(load_trace(source), path)
    return path


@pytest.mark.parametrize("rows", [1, 2, 7, 4096])
@pytest.mark.parametrize("recorded", ["usb_cdc_malloc_isr.csv", "hal_i2c_lock_deadlock.csv"])
def test_every_batch_size_gives_the_rows_load_trace_gives(tmp_path, recorded, rows):
    """The recorded captures lack the optional columns: every batch has them, empty."""
    csv = RECORDED / recorded
    header = next(line for line in csv.read_text().splitlines() if not line.startswith("#"))
    assert "seq" in header and not set(schema.OPTIONAL_COLUMNS) & set(header.split(","))
    for path in (csv, as_parquet(csv, tmp_path)):
        batches = assert_batches_hold_the_trace(path, rows)
        assert all(batch.column(name).null_count == batch.num_rows for batch in batches for name in schema.OPTIONAL_COLUMNS)
        assert read_batches(path).metadata == load_trace(path).metadata


def test_extra_columns_are_kept_in_every_batch(tmp_path):
    last = list(schema.COLUMNS)[-1]
    text = valid(tmp_path).read_text().replace(f",{last}\n", f",{last},note\n")
    csv = tmp_path / "extra.csv"
    csv.write_text("\n".join(line + ",x" if line[:1].isdigit() else line for line in text.splitlines()) + "\n")
    trace = load_trace(valid(tmp_path))
    parquet = tmp_path / "extra.parquet"
    write_parquet(Trace(trace.frame.assign(board_temp=[21.5, 22.0, 22.5]), trace.metadata, trace.path), parquet)
    for path, extra in ((csv, "note"), (parquet, "board_temp")):
        batches = assert_batches_hold_the_trace(path, 2)
        assert [value for batch in batches for value in batch[extra].to_pylist()] == load_trace(path).table[extra].to_pylist()


def test_a_trace_without_rows_is_one_empty_table_with_its_columns(tmp_path):
    header_only = edit(tmp_path, lambda text: text[: text.index("\n", text.index("seq,")) + 1].encode())
    for path in (header_only, as_parquet(header_only, tmp_path)):
        whole = load_trace(path).table
        (batch,) = read_batches(path, 3)
        (as_read,) = read_batches(path, 3).as_read()
        assert batch.num_rows == as_read.num_rows == 0 and batch.schema == as_read.schema == whole.schema


def test_a_cut_off_last_line_warns_once_and_is_dropped(tmp_path):
    text = (RECORDED / "usb_cdc_malloc_isr.csv").read_bytes()
    path = tmp_path / "cut.csv"
    path.write_bytes(text[: text.rindex(b"\n", 0, len(text) - 1) + 40])
    with pytest.warns(PartialRowWarning):
        whole = load_trace(path).table
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        batches = list(read_batches(path, 5))
    assert [type(w.message) for w in caught] == [PartialRowWarning]
    assert decoded(pa.concat_tables(batches)).equals(decoded(whole))
    assert whole.num_rows == load_trace(RECORDED / "usb_cdc_malloc_isr.csv").rows - 1


@pytest.fixture(scope="module")
def big_traces(tmp_path_factory) -> tuple[Path, Path]:
    """A CSV and a Parquet trace of BIG_ROWS rows: the recorded captures, repeated."""
    return gen_trace.generate(BIG_ROWS, tmp_path_factory.mktemp("big"))


def test_a_big_trace_in_small_batches_equals_load_trace(big_traces):
    for path in big_traces:
        batches = assert_batches_hold_the_trace(path, 4096)
        assert sum(batch.num_rows for batch in batches) == BIG_ROWS


def test_a_big_trace_as_read_equals_load_trace(big_traces):
    """`as_read` gives the reader's tables uncut: a CSV's byte ranges, in many chunks."""
    csv, parquet = big_traces
    for path in big_traces:
        tables = list(read_batches(path, 65536).as_read())
        assert decoded(pa.concat_tables(tables)).equals(decoded(load_trace(path).table))
        assert all(table.schema == tables[0].schema for table in tables)
    assert len(list(read_batches(csv, 65536).as_read())) > 1
    assert max(table["seq"].num_chunks for table in read_batches(csv, 65536).as_read()) > 1


# The process's own peak RSS (VmHWM: ru_maxrss would start from the forking pytest's).
PEAK_GROWTH = """
import re, sys
from pathlib import Path
from irqmon.tracefile import load_trace, read_batches
def peak_kib():
    return int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text())[1])
warm_up, path, how = sys.argv[1:]
read = (lambda p: sum(b.num_rows for b in read_batches(p, 4096))) if how == "batches" else (lambda p: load_trace(p).rows)
read(warm_up)  # the libraries' code and the allocator's first arenas, touched once
before = peak_kib()
assert read(path) > 0
print(peak_kib() - before)
"""


def peak_growth_kib(warm_up: Path, path: Path, how: str) -> int:
    result = subprocess.run([sys.executable, "-c", PEAK_GROWTH, str(warm_up), str(path), how],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return int(result.stdout)


def test_reading_in_batches_holds_far_less_than_the_whole_trace(big_traces, tmp_path):
    """The peak memory of reading in batches stays well under that of holding the trace whole
    (measured in a fresh process, after a small trace was read the same way)."""
    warm_ups = gen_trace.generate(30_000, tmp_path)
    for warm_up, path in zip(warm_ups, big_traces, strict=True):
        batches, whole = peak_growth_kib(warm_up, path, "batches"), peak_growth_kib(warm_up, path, "load")
        assert batches * 2 < whole, (path.suffix, batches, whole)


# Bad files: the cases of test_loader.py and tests/robustness, and some whose problem lies
# batches away from the first row.
def replaced(old: str, new: str, count: int = 1, recorded: str = "usb_cdc_malloc_isr.csv") -> Callable[[Path], Path]:
    def make(tmp_path: Path) -> Path:
        text = (RECORDED / recorded).read_text(encoding="utf-8")
        assert old in text
        path = tmp_path / "edited.csv"
        path.write_text(text.replace(old, new, count), encoding="utf-8")
        return path

    return make


def wrong_address_on_line_8(tmp_path: Path) -> Path:
    lines = valid(tmp_path).read_text().splitlines()
    cells = lines[7].split(",")
    cells[lines[5].split(",").index("address")] = "0xzz"
    lines[7] = ",".join(cells)
    return edit(tmp_path, ("\n".join(lines) + "\n").encode())


def parquet_of(change: Callable[[Trace], Trace], recorded: str = "usb_cdc_malloc_isr.csv") -> Callable[[Path], Path]:
    def make(tmp_path: Path) -> Path:
        path = tmp_path / "bad.parquet"
        write_parquet(change(load_trace(RECORDED / recorded)), path)
        return path

    return make


def with_value(column: str, row: int, value: object) -> Callable[[Trace], Trace]:
    def change(trace: Trace) -> Trace:
        frame = trace.frame.copy()
        frame.loc[row, column] = value
        return Trace(frame, trace.metadata, trace.path)

    return change


def not_a_trace(tmp_path: Path) -> Path:
    path = tmp_path / "other.parquet"
    pq.write_table(pa.table({"a": [1, 2]}), path)
    return path


def broken_parquet(tmp_path: Path) -> Path:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 not really")
    return path


def parquet_ipsr_of_strings(tmp_path: Path) -> Path:
    trace = load_trace(valid(tmp_path))
    write_parquet(Trace(trace.frame.assign(ipsr=["a", "b", "c"]), trace.metadata, trace.path), tmp_path / "t.parquet")
    return tmp_path / "t.parquet"


def last_row_short_a_field(tmp_path: Path) -> Path:
    text = (RECORDED / "clean.csv").read_text()
    path = tmp_path / "short.csv"
    path.write_text(text[: text.rindex(",", 0, len(text) - 1)] + "\n")
    return path


BAD_FILES: dict[str, Callable[[Path], Path]] = {
    "empty": lambda tmp_path: edit(tmp_path, b""),
    "metadata only": lambda tmp_path: edit(tmp_path, b"# irqmon-trace\n# schema: 1\n"),
    "missing column": lambda tmp_path: edit(tmp_path, lambda t: t.replace(",callpath,", ",path,").encode()),
    "not an integer": wrong_address_on_line_8,
    "not utf-8": lambda tmp_path: edit(tmp_path, lambda t: t.replace("malloc;main", "malloc;m\xe9").encode("latin-1")),
    "newer schema": lambda tmp_path: edit(tmp_path, lambda t: t.replace(f"# schema: {schema.SCHEMA_VERSION}", f"# schema: {schema.SCHEMA_VERSION + 1}").encode()),
    "unknown event": lambda tmp_path: edit(tmp_path, lambda t: t.replace(",irq_exit,", ",jump,").encode()),
    "seq back to 0": lambda tmp_path: edit(tmp_path, lambda t: t.replace("\n2,", "\n0,").encode()),
    "parquet not a trace": not_a_trace,
    "parquet broken": broken_parquet,
    "parquet wrong column type": parquet_ipsr_of_strings,
    "missing file": lambda tmp_path: tmp_path / "nope.csv",
    "time nan": replaced("\n1,0.168334,", "\n1,nan,"),
    "time inf": replaced("\n1,0.168334,", "\n1,inf,"),
    "time 1e308": replaced("\n1,0.168334,", "\n1,1e308,"),
    "priority outside": replaced(",0,Thread,,0,0,0,0,", ",0,Thread,9223372036854775807,0,0,0,0,"),
    "schema not a number": replaced("# schema: 1", "# schema: ²"),
    "priority_bits not a number": replaced("# priority_bits: 4", "# priority_bits: ³"),
    "seq repeated late": replaced("\n101,", "\n100,", recorded="clean.csv"),
    "unknown event late": replaced("\n150,3.310137,,call,", "\n150,3.310137,,jump,", recorded="clean.csv"),
    "not an integer late": replaced("\n120,", "\n120x,", recorded="clean.csv"),
    "last row short a field": last_row_short_a_field,
    "parquet time late": parquet_of(with_value("time", 170, float("inf")), recorded="clean.csv"),
    "parquet seq late": parquet_of(with_value("seq", 230, 5), recorded="clean.csv"),
    "parquet ipsr late": parquet_of(with_value("ipsr", 11, 600)),
}  # fmt: skip


@pytest.mark.parametrize("rows", [1, 3])
@pytest.mark.parametrize("case", BAD_FILES)
def test_a_bad_file_read_in_batches_gets_load_traces_line(tmp_path, case, rows):
    path = BAD_FILES[case](tmp_path)
    with pytest.raises(UsageError) as whole:
        load_trace(path)
    with pytest.raises(UsageError) as batched:
        list(read_batches(path, rows))
    with pytest.raises(UsageError) as as_read:
        list(read_batches(path, rows).as_read())
    assert str(batched.value) == str(whole.value) == str(as_read.value)
    assert "\n" not in str(whole.value) and str(path) in str(whole.value)


@FUZZ
@given(data=st.data())
def test_fuzz_batches_and_load_trace_agree(tmp_path, data):
    """A mutated trace is refused by both or read alike by both (with several problems, each may
    name a different one first: load_trace parses the whole file before checking rows)."""
    text = bytearray(write_trace(tmp_path / "base.csv", mixed_rows() * 3).read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(text) - 1))
        text[position : position + data.draw(st.integers(0, 2))] = bytes([data.draw(st.sampled_from(list(b',\n"#-x0 9')))])
    path = tmp_path / "fuzz.csv"
    path.write_bytes(bytes(text))
    rows = data.draw(st.integers(1, 8))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PartialRowWarning)
        try:
            whole = load_trace(path).table
        except UsageError as exc:
            with pytest.raises(UsageError) as batched:
                list(read_batches(path, rows))
            assert "\n" not in str(batched.value) and str(path) in str(batched.value), exc
        else:
            batches = list(read_batches(path, rows))
            assert decoded(pa.concat_tables(batches)).equals(decoded(whole))


@pytest.mark.parametrize("recorded", ["printf_tasks_critical.csv", "hal_i2c_lock_deadlock.csv"])
def test_some_columns_read_alone_are_those_of_the_whole_read(tmp_path, recorded):
    """The analysis's first pass reads a few columns: they hold what the whole read holds; the
    columns the row checks need come too."""
    wanted = ["ipsr", "priority", "symbol"]
    for path in (RECORDED / recorded, as_parquet(RECORDED / recorded, tmp_path)):
        whole = decoded(pa.concat_tables(read_batches(path, 97)))
        some = decoded(pa.concat_tables(read_batches(path, 97, wanted)))
        assert {"seq", "time", "event", "halted", *wanted} <= set(some.column_names) < set(whole.column_names)
        assert all(some[name].equals(whole[name]) for name in some.column_names)


def test_a_bad_value_in_a_column_not_read_is_left_to_the_read_of_every_column(tmp_path):
    """The first pass checks only what it reads; the second, every column, refuses the row."""
    path = write_trace(tmp_path / "bad.csv", [{"event": "mask", "ipsr": 0, "symbol": "basepri", "basepri": 999}])
    assert list(read_batches(path, 5, ["ipsr"]))
    with pytest.raises(UsageError, match="column basepri: 999 is outside 0..255"):
        list(read_batches(path, 5))


@pytest.mark.parametrize("rows", [1, 7, 65536])
def test_kept_rows_read_back_as_the_batches_read_from_the_file(big_traces, tmp_path, rows):
    """A CSV's first pass keeps some columns in a file: read back, they are the batches a
    second read of the CSV would give (each first-pass table passed on unchanged)."""
    csv = big_traces[0] if rows > 100 else RECORDED / "usb_cdc_malloc_isr.csv"
    columns = ["seq", "time", "event", "symbol", "callpath", "ipsr", "halted", "halts"]
    kept = KeptRows(tmp_path / "rows.arrows", columns, rows)
    passed = list(kept.writing(read_batches(csv, rows).as_read()))
    assert [t.num_rows for t in passed] == [t.num_rows for t in read_batches(csv, rows).as_read()]
    again = list(read_batches(csv, rows, columns))
    back = list(kept)
    assert [t.num_rows for t in back] == [t.num_rows for t in again]
    assert all(b.schema == a.schema and decoded(b).equals(decoded(a)) for b, a in zip(back, again, strict=True))
    assert all(column.num_chunks == 1 for table in back for column in table.columns)


def test_kept_rows_of_a_trace_without_rows_are_one_empty_table(tmp_path):
    header_only = edit(tmp_path, lambda text: text[: text.index("\n", text.index("seq,")) + 1].encode())
    kept = KeptRows(tmp_path / "rows.arrows", ["seq", "event", "ipsr"], 5)
    assert sum(t.num_rows for t in kept.writing(read_batches(header_only, 5).as_read())) == 0
    (table,) = kept
    assert table.num_rows == 0 and table.column_names == ["seq", "event", "ipsr"]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_kept_rows_on_a_full_disk_are_one_line():
    kept = KeptRows(Path("/dev/full"), ["seq", "event"], 5)
    with pytest.raises(UsageError, match="cannot keep the trace's rows for the second pass: .*No space left on device"):
        list(kept.writing(read_batches(RECORDED / "clean.csv", 5).as_read()))


@pytest.mark.parametrize("ending", ["done", "bad row", "Ctrl-C"])
def test_analysing_a_csv_leaves_no_kept_rows_behind(tmp_path, monkeypatch, ending):
    """The rows a CSV's first pass keeps are deleted after the analysis, after a bad row far
    into the file ends it, and after Ctrl-C in the second pass."""
    import irqmon.analysis.batches as batches
    from irqmon.analysis import AnalysisConfig

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    if ending == "bad row":
        rows = [{"event": "mask", "ipsr": 0, "symbol": "primask", "value": 1}] * 50 + [{"event": "mask", "ipsr": 0, "basepri": 999}]
        with pytest.raises(UsageError, match="column basepri"):
            batches.analyze_file(write_trace(tmp_path / "bad.csv", rows), AnalysisConfig(), None, lambda m: None, 8)
    elif ending == "Ctrl-C":

        def interrupted(*args: object) -> None:
            assert [path.name for path in scratch.glob("*/*")] == ["rows.arrows"]
            raise KeyboardInterrupt

        monkeypatch.setattr(batches, "Context", interrupted)
        with pytest.raises(KeyboardInterrupt):
            batches.analyze_file(RECORDED / "clean.csv", AnalysisConfig(), None, lambda m: None, 100)
    else:
        _, findings, facts = batches.analyze_file(RECORDED / "clean.csv", AnalysisConfig(), None, lambda m: None, 100)
        assert facts.rows == load_trace(RECORDED / "clean.csv").rows
    assert not list(scratch.iterdir())


@pytest.mark.parametrize("recorded", ["printf_tasks_critical.csv", "uart_queue_primask.csv"])
def test_convert_in_batches_writes_what_the_whole_trace_writes(tmp_path, recorded):
    from irqmon.tracefile import convert, write_csv

    source = RECORDED / recorded
    whole_parquet, whole_csv = tmp_path / "whole.parquet", tmp_path / "whole.csv"
    write_parquet(load_trace(source), whole_parquet)
    write_csv(load_trace(source), whole_csv)
    convert(source, tmp_path / "batched.parquet", rows=97)
    convert(tmp_path / "batched.parquet", tmp_path / "batched.csv", rows=41)
    assert pq.read_table(tmp_path / "batched.parquet").equals(pq.read_table(whole_parquet))
    assert (tmp_path / "batched.csv").read_text() == whole_csv.read_text()


def test_convert_of_a_bad_row_far_in_leaves_no_target(tmp_path):
    from irqmon.tracefile import convert

    rows = [{"event": "mask", "ipsr": 0, "symbol": "primask", "value": 1}] * 50 + [{"event": "mask", "ipsr": 0, "basepri": 999}]
    source = write_trace(tmp_path / "bad.csv", rows)
    with pytest.raises(UsageError, match="column basepri"):
        convert(source, tmp_path / "out.parquet", rows=8)
    assert not (tmp_path / "out.parquet").exists()


def parquet_in_row_groups(source: Path, directory: Path, group_rows: int) -> Path:
    """`source`'s trace as a Parquet file written `group_rows` rows to a row group."""
    plain = as_parquet(source, directory)
    path = directory / f"{source.stem}-groups.parquet"
    pq.write_table(pq.read_table(plain), path, row_group_size=group_rows)
    assert pq.ParquetFile(path).num_row_groups > 1
    return path


@pytest.mark.parametrize("rows", [1, 7, 4096])
def test_a_parquet_file_of_many_row_groups_gives_the_rows_load_trace_gives(tmp_path, rows):
    """Batches span row groups: each still has `rows` rows, in order."""
    assert_batches_hold_the_trace(parquet_in_row_groups(RECORDED / "hal_i2c_lock_deadlock.csv", tmp_path, 5), rows)



def test_the_resident_memory_the_batches_watch_is_this_process():
    """What decides whether a batch's freed memory is handed back: this process's resident bytes
    (more than the interpreter's few MB, less than the machine)."""
    machine = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert 10 << 20 < _resident_bytes() < machine
