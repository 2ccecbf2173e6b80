"""The report of a trace read in batches: every recorded capture, cut into batches of a few rows,
gives the report the whole trace gives (the markdown, and the model's tables); a trace with more
rows than the panels draw gets its tables over the whole trace and a sentence on the window drawn."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import pytest
from support import irqmon, sample_names

from irqmon.analysis import AnalysisConfig, Analysis, all_rules, analysis_of
from irqmon.analysis.batches import analyze_file
from irqmon.analysis.facts import facts_of
from irqmon.children import make_workdir
from irqmon.elf_sources import recorded_elf, with_elf_sources
from irqmon.report import kept_values, write_report, write_report_in_batches
from irqmon.report.model import build_model, load_window
from irqmon.report.streamed import DRAWN_ROWS, view_in_batches
from irqmon.tracefile import load_trace

TRACES = Path(__file__).parents[1] / "analysis" / "traces"
CAPTURES = sorted(TRACES.glob("*.csv"))
STREAMING = [rule_id for rule_id, rule in all_rules().items() if rule.stream is not None]


def _analysis(path: Path) -> Analysis:
    return analysis_of(load_trace(path), AnalysisConfig(), STREAMING)


def _reports(path: Path, out: Path, rows: int, window=(None, None), drawn_rows: int | None = None) -> tuple[str, str]:
    """(whole, in batches): the markdown of the same findings, the trace whole and in batches."""
    analysis = _analysis(path)
    whole = write_report(analysis, path, out / "whole", window=window).read_text()
    batched = write_report_in_batches(path, analysis.findings, AnalysisConfig(), lambda _: None, out / "batched",
                                      window=window, batch_rows=rows, drawn_rows=drawn_rows)  # fmt: skip
    return whole, batched.read_text()


def _models(path: Path, drawn_rows: int = DRAWN_ROWS):
    """(in batches of 5 rows, whole): the report's view of the trace at `path` and the whole trace's model."""
    trace = load_trace(path)
    table = trace.table
    analysis = _analysis(path)
    batches = [table.slice(start, 5) for start in range(0, table.num_rows, 5)]
    view = view_in_batches(iter(batches), trace.metadata, AnalysisConfig(), facts_of(batches), analysis.findings,
                           (None, None), batch_rows=5, drawn_rows=drawn_rows)  # fmt: skip
    return view, build_model(analysis.context)


@pytest.mark.parametrize("rows", [1, 7])
@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.stem)
def test_batches_give_the_whole_traces_report(capture, rows, tmp_path):
    whole, batched = _reports(capture, tmp_path, rows)
    assert batched == whole


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.stem)
def test_the_tables_summed_over_batches_are_the_whole_traces(capture):
    view, whole = _models(capture, drawn_rows=20)
    assert view.model.whole is not None
    for mine, theirs in ((view.model.summary(), whole.summary()), (view.model.isr_stats(), whole.isr_stats())):
        pd.testing.assert_frame_equal(mine.reset_index(drop=True), theirs.reset_index(drop=True), check_dtype=False, rtol=1e-12)
    assert view.model.halting() == whole.halting()
    window = load_window(whole.duration)
    pd.testing.assert_frame_equal(view.model.cpu_load(window), whole.cpu_load(window), check_like=True, rtol=1e-9)


@pytest.mark.parametrize("capture", ["printf_tasks_critical", "hal_i2c_lock_deadlock", "uart_queue_primask"])
def test_the_facts_the_analysis_learned_give_the_report_without_a_facts_pass_of_its_own(capture, tmp_path, monkeypatch):
    path = TRACES / f"{capture}.csv"
    whole, own_facts = _reports(path, tmp_path, 7)
    trace, findings, facts = analyze_file(path, AnalysisConfig(), STREAMING, lambda _: None, batch_rows=11)
    assert findings == _analysis(path).findings and facts.rows == trace.rows
    monkeypatch.setattr("irqmon.analysis.facts.facts_of", lambda _: pytest.fail("the report learned the facts again"))
    learned = write_report_in_batches(path, findings, AnalysisConfig(), lambda _: None, tmp_path / "learned", batch_rows=7, facts=facts)
    assert learned.read_text() == own_facts == whole


@pytest.mark.parametrize("capture", ["printf_tasks_critical", "hal_i2c_lock_deadlock", "uart_queue_primask"])
def test_timing_values_kept_in_files_give_the_same_tables_and_report(capture, tmp_path, monkeypatch):
    """With bounds so small that every exception's execution times and periods go to temporary
    files, are read back in chunks of a few values and split into few bins: the same timing table
    (medians and p99 to the bit) and the same report; and no temporary file is left."""
    path = TRACES / f"{capture}.csv"
    in_memory = _models(path)[0].model.isr_stats()
    folders = []
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(kept_values, "make_workdir", lambda: folders.append(make_workdir()) or folders[-1])
    for bound, value in (("HELD_VALUES", 1), ("CHUNK_VALUES", 5), ("GATHERED_VALUES", 2), ("BINS", 3)):
        monkeypatch.setattr(kept_values, bound, value)
    in_files = _models(path)[0].model.isr_stats()
    assert len(folders) == 1 and not Path(folders[0]).exists()
    pd.testing.assert_frame_equal(in_files.drop(columns="jitter"), in_memory.drop(columns="jitter"), check_exact=True)
    pd.testing.assert_series_equal(in_files["jitter"], in_memory["jitter"], rtol=1e-9, atol=1e-15)
    whole, batched = _reports(path, tmp_path, 7)
    assert batched == whole and len(folders) == 2


@pytest.mark.parametrize("open_ended", [False, True], ids=["from-to", "from"])
@pytest.mark.parametrize("capture", ["printf_tasks_critical", "hal_i2c_lock_deadlock", "uart_queue_primask"])
def test_a_window_asked_for_is_drawn_as_the_whole_trace_draws_it(capture, open_ended, tmp_path):
    path = TRACES / f"{capture}.csv"
    times = load_trace(path).table["time"].to_pylist()
    window = (times[len(times) // 3], None if open_ended else times[2 * len(times) // 3])  # inside activations, as likely as not
    whole, batched = _reports(path, tmp_path, 4, window)
    assert batched == whole


@pytest.mark.parametrize("capture", ["printf_tasks_critical", "hal_i2c_lock_deadlock"])
def test_a_trace_longer_than_the_panels_draw_says_which_window_they_draw(capture, tmp_path):
    path = TRACES / f"{capture}.csv"
    rows = load_trace(path).rows
    whole, batched = _reports(path, tmp_path, 16, drawn_rows=rows // 4)
    sentence = f"*The trace has {rows:,} rows, more than the {rows // 4:,} the panels draw: the tables and the CPU load cover the whole trace"
    assert sentence in batched and "around the first finding). Choose another window with --from and --to.*" in batched
    (line,) = [line for line in batched.splitlines() if line.startswith("*The trace has")]
    assert batched.replace(line + "\n\n", "", 1) == whole  # the sentence is all the text that differs
    assert (tmp_path / "batched" / "timeline.png").stat().st_size > 0


def test_a_window_with_more_rows_than_the_panels_draw_is_cut_short_and_says_so(tmp_path):
    path = TRACES / "printf_tasks_critical.csv"
    analysis = _analysis(path)
    report = write_report_in_batches(path, analysis.findings, AnalysisConfig(), lambda _: None, tmp_path,
                                     window=(1.0, None), batch_rows=16, drawn_rows=100).read_text()  # fmt: skip
    assert "the window asked for holds more than the 100 rows the panels draw. Choose a shorter one with --from and --to." in report


def test_report_reads_the_trace_in_batches_with_streaming_rules(tmp_path):
    path = TRACES / "hal_i2c_lock_deadlock.csv"
    result = irqmon("report", str(path), "--rules", ",".join(STREAMING), "--batch-rows", "50", "--no-elf", "-o", str(tmp_path / "cli"))
    assert result.returncode == 0, result.stderr
    whole = write_report(_analysis(path), path, tmp_path / "whole").read_text()
    assert (tmp_path / "cli" / "report.md").read_text() == whole
    refused = irqmon("report", str(path), "--rules", "malloc-in-isr", "--batch-rows", "0", "-o", str(tmp_path / "no"))
    assert refused.returncode == 2 and "--batch-rows: 0 rows: at least 1" in refused.stderr


@pytest.mark.parametrize("sample", sample_names())
def test_every_sample_in_batches_gives_the_whole_traces_report(sample, sample_trace, tmp_path):
    """Live captures, with the source lines of the sample's ELF, as CSV and as Parquet."""
    path = sample_trace(sample)
    trace = load_trace(path)
    elf = recorded_elf(trace.metadata)
    assert elf is not None
    whole = write_report(analysis_of(with_elf_sources(trace, elf), AnalysisConfig(), STREAMING), path, tmp_path / "whole").read_text()
    parquet = tmp_path / "trace.parquet"
    assert irqmon("convert", str(path), str(parquet)).returncode == 0
    for source in (path, parquet):
        out = tmp_path / source.suffix[1:]
        result = irqmon("report", str(source), "--rules", ",".join(STREAMING), "--batch-rows", "997", "-o", str(out))
        assert result.returncode == 0, result.stderr
        assert (out / "report.md").read_text().replace(source.name, path.name) == whole


def test_a_trace_without_rows_reports_in_batches(tmp_path):
    path = TRACES / "clean.csv"
    empty = tmp_path / "empty.csv"
    empty.write_text("".join(line for line in path.read_text().splitlines(keepends=True) if line.startswith("#") or line.startswith("seq,")))
    result = irqmon("report", str(empty), "--rules", ",".join(STREAMING), "-o", str(tmp_path / "out"))
    whole = write_report(_analysis(empty), empty, tmp_path / "whole").read_text()
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "report.md").read_text() == whole


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.stem)
def test_the_figures_of_a_trace_drawn_whole_show_the_whole_traces_rows(capture):
    """With the trace small enough to draw whole, the rows each figure draws (heap calls, masks,
    locks, activations) are those of the whole trace's model, though the trace came in batches."""
    view, whole = _models(capture)
    for name in ("heap", "masks", "locks", "lock_events", "activations", "segments", "lanes"):
        mine, theirs = getattr(view.model, name), getattr(whole, name)
        pd.testing.assert_frame_equal(mine.reset_index(drop=True), theirs.reset_index(drop=True), check_dtype=False, obj=name)
