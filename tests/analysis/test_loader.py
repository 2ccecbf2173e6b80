"""load_trace: valid files load with the schema's dtypes; bad ones give one UsageError line."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tracebuild import THREAD, isr, write_trace

from irqmon import schema
from irqmon.analysis import analyze
from irqmon.errors import UsageError
from irqmon.tracefile import PartialRowWarning, Trace, load_trace, write_csv, write_parquet
from irqmon.tracewriter import ParquetTraceWriter, TraceWriter, arrow_schema

ROWS = [
    {"event": "call", "kind": "heap", "role": "alloc", "symbol": "malloc", "callpath": "malloc;main", "size": 8, **THREAD},
    {"event": "access", "kind": "lock", "role": "test", "symbol": "h.Lock", "address": 0x20000010, "access": "r",
     "value": 1, **isr(31, "I2C1_EV", 3)},
    {"event": "irq_exit", "ipsr": 47, "exception": "I2C1_EV", "priority": 3, "probe": "qemu", "kind": "irq"},
]  # fmt: skip


def mixed_rows() -> list[dict]:
    """A bit of every rule's input, so mutations reach every rule."""
    from test_interrupt_storm import storm_rows
    from test_rmw_race import EXTI0, EXTI1, rd, wr
    from test_sections_and_reentry import USART, cpsid, cpsie, nr

    return [
        *ROWS, *storm_rows(3),
        rd(EXTI0, 3), rd(EXTI1, 3), wr(EXTI1, 3, 1), wr(EXTI0, 1, 2),
        cpsid(THREAD, 0), cpsid(THREAD, 1), cpsie(THREAD, 1), cpsie(THREAD, 0), cpsid(USART, 0),
        nr(THREAD, "call", "puts", 0x20001000), nr(USART, "call", "puts", 0x20000100), nr(USART, "return", "puts", 0x20000100),
        {"event": "config", "kind": "config", "symbol": "max_syscall_priority", "value": 0x50},
        {"event": "call", "kind": "rtos-fromisr", "role": "fromisr", "symbol": "xQueueGenericSendFromISR", **isr(28, "TIM2", 2)},
    ]  # fmt: skip


def valid(tmp_path: Path) -> Path:
    return write_trace(tmp_path / "ok.csv", ROWS)


def test_csv_loads_with_schema_dtypes_and_metadata(tmp_path):
    trace = load_trace(valid(tmp_path))
    assert list(trace.frame.columns) == list(schema.COLUMNS)
    assert trace.frame["seq"].dtype == "int64" and trace.frame["time"].dtype == "float64"
    assert isinstance(trace.frame["ipsr"].dtype, pd.Int64Dtype)
    assert trace.frame["address"].iloc[1] == 0x20000010 and pd.isna(trace.frame["address"].iloc[0])
    assert trace.metadata["priority_bits"] == "4" and trace.metadata["schema"] == str(schema.SCHEMA_VERSION)


def test_parquet_round_trip_and_csv_round_trip(tmp_path):
    trace = load_trace(valid(tmp_path))
    write_parquet(trace, tmp_path / "t.parquet")
    again = load_trace(tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(again.frame, trace.frame)
    assert again.metadata == trace.metadata
    write_csv(again, tmp_path / "t2.csv")
    pd.testing.assert_frame_equal(load_trace(tmp_path / "t2.csv").frame, trace.frame)


def test_parquet_writer_gathers_single_rows_in_order_like_the_csv_writer(tmp_path):
    """A halting capture writes row by row: the Parquet writer gathers them into tables, in
    the order written, tables written between them included, as the CSV writer has them."""
    rows = [{**ROWS[i % len(ROWS)], "time": i * 1e-6} for i in range(ParquetTraceWriter.ROW_BATCH + 10)]
    batch = pa.Table.from_pylist([{**ROWS[0], "time": 1.0}], schema=pa.schema([f for f in arrow_schema() if f.name != "seq"]))
    paths = {TraceWriter: tmp_path / "t.csv", ParquetTraceWriter: tmp_path / "t.parquet"}
    for kind, path in paths.items():
        with kind(path, {"target": "stm32f405"}) as writer:
            for row in rows[:5]:
                writer.write(row)
            writer.write_table(batch)
            writer.write_many(rows[5:])
            assert writer.rows == len(rows) + 1
    csv, parquet = (load_trace(path).frame for path in paths.values())
    pd.testing.assert_frame_equal(parquet, csv)
    assert parquet["seq"].tolist() == list(range(len(rows) + 1)) and parquet["time"].iloc[5] == 1.0

def error_of(path: Path) -> str:
    with pytest.raises(UsageError) as info:
        load_trace(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def edit(tmp_path: Path, change) -> Path:
    text = valid(tmp_path).read_text()
    path = tmp_path / "bad.csv"
    path.write_bytes(change(text) if callable(change) else change)
    return path


def test_empty_file(tmp_path):
    assert "empty file" in error_of(edit(tmp_path, b""))


def test_metadata_only(tmp_path):
    assert "no header row" in error_of(edit(tmp_path, b"# irqmon-trace\n# schema: 1\n"))


def test_missing_column(tmp_path):
    message = error_of(edit(tmp_path, lambda t: t.replace(",callpath,", ",path,").encode()))
    assert "missing column callpath" in message and "bad.csv:" in message


def test_wrong_type_names_line_and_column(tmp_path):
    lines = valid(tmp_path).read_text().splitlines()
    header = lines[5].split(",")
    cells = lines[7].split(",")
    cells[header.index("address")] = "0xzz"
    lines[7] = ",".join(cells)
    message = error_of(edit(tmp_path, ("\n".join(lines) + "\n").encode()))
    assert message.endswith("bad.csv:8: column address: '0xzz' is not an integer")


def test_last_row_cut_off_is_dropped_with_a_warning(tmp_path):
    """A capture killed mid-write leaves a last line without its newline: the rows before it
    are the trace (a warning says one was dropped)."""
    text = valid(tmp_path).read_text()
    whole = load_trace(valid(tmp_path))
    with pytest.warns(PartialRowWarning, match="cut off"):
        cut = load_trace(edit(tmp_path, text[: text.rindex("I2C1_EV") + 3].encode()))
    assert cut.rows == whole.rows - 1
    assert cut.frame.equals(whole.frame.iloc[:-1])


def test_not_utf8(tmp_path):
    message = error_of(edit(tmp_path, lambda t: t.replace("malloc;main", "malloc;m\xe9").encode("latin-1")))
    assert "not UTF-8" in message or "UTF8" in message


def test_newer_schema_refused(tmp_path):
    current = f"# schema: {schema.SCHEMA_VERSION}"
    assert "newer" in error_of(edit(tmp_path, lambda t: t.replace(current, f"# schema: {schema.SCHEMA_VERSION + 1}").encode()))


def test_schema_1_traces_still_load(tmp_path):
    """Schema 2 added the coverage event; a trace from before it reads as it did."""
    old = edit(tmp_path, lambda t: t.replace(f"# schema: {schema.SCHEMA_VERSION}", "# schema: 1").encode())
    trace = load_trace(old)
    assert trace.metadata["schema"] == "1" and len(trace.frame) == len(ROWS)


def test_unknown_event_and_seq_order(tmp_path):
    assert "unknown event 'jump'" in error_of(edit(tmp_path, lambda t: t.replace(",irq_exit,", ",jump,").encode()))
    assert "seq is not increasing" in error_of(edit(tmp_path, lambda t: t.replace("\n2,", "\n0,").encode()))


def test_extra_columns_are_kept(tmp_path):
    last = list(schema.COLUMNS)[-1]
    text = valid(tmp_path).read_text().replace(f",{last}\n", f",{last},note\n")
    path = tmp_path / "extra.csv"
    path.write_text("\n".join(line + ",x" if line[:1].isdigit() else line for line in text.splitlines()) + "\n")
    assert list(load_trace(path).frame["note"]) == ["x", "x", "x"]


def test_parquet_extra_columns_of_any_type_are_kept(tmp_path):
    trace = load_trace(valid(tmp_path))
    frame = trace.frame.assign(board_temp=[21.5, 22.0, 22.5])
    write_parquet(Trace(frame, trace.metadata, trace.path), tmp_path / "t.parquet")
    assert list(load_trace(tmp_path / "t.parquet").frame["board_temp"]) == [21.5, 22.0, 22.5]


def test_parquet_that_is_not_a_trace(tmp_path):
    path = tmp_path / "other.parquet"
    pq.write_table(pa.table({"a": [1, 2]}), path)
    assert "not an irqmon trace" in error_of(path)
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really")
    assert "Parquet" in error_of(broken)


def test_parquet_wrong_column_type(tmp_path):
    trace = load_trace(valid(tmp_path))
    frame = trace.frame.assign(ipsr=["a", "b", "c"])
    write_parquet(Trace(frame, trace.metadata, trace.path), tmp_path / "t.parquet")
    assert "column ipsr" in error_of(tmp_path / "t.parquet")


def test_missing_file(tmp_path):
    assert "cannot read" in error_of(tmp_path / "nope.csv")


def assert_trace_or_usage_error(path: Path) -> None:
    """A file either loads, and then every rule runs on it, or is refused with one line."""
    try:
        trace = load_trace(path)
    except UsageError as exc:
        assert "\n" not in str(exc)
    else:
        assert set(schema.COLUMNS) <= set(trace.frame.columns)
        assert all(f.rule and f.fingerprint for f in analyze(trace))


FUZZ = settings(max_examples=int(os.environ.get("IRQMON_FUZZ_EXAMPLES", "150")), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(data=st.binary(max_size=600))
def test_fuzz_random_bytes(tmp_path, data):
    path = tmp_path / "fuzz.bin"
    path.write_bytes(data)
    assert_trace_or_usage_error(path)


@FUZZ
@given(data=st.data())
def test_fuzz_mutated_csv(tmp_path, data):
    text = bytearray(write_trace(tmp_path / "base.csv", mixed_rows()).read_bytes())
    for _ in range(data.draw(st.integers(1, 6))):
        position = data.draw(st.integers(0, len(text) - 1))
        action = data.draw(st.sampled_from(["replace", "delete", "insert", "truncate"]))
        byte = data.draw(st.sampled_from(list(b',\n"#:-x0\xff\x00 ') + [data.draw(st.integers(0, 255))]))
        if action == "replace":
            text[position] = byte
        elif action == "delete":
            del text[position]
        elif action == "insert":
            text.insert(position, byte)
        else:
            del text[position:]
        if not text:
            break
    path = tmp_path / "fuzz.csv"
    path.write_bytes(bytes(text))
    assert_trace_or_usage_error(path)
