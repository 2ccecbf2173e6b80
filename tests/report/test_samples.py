"""End to end on every firmware sample: `irqmon report` and `irqmon export` on its QEMU trace."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from reportcheck import assert_real_figure, assert_self_contained, check_trace_events, markdown_images
from support import expected, irqmon, sample_names

from irqmon.report.document import md
from irqmon.tracefile import load_trace

SAMPLES = sample_names()


@pytest.fixture(scope="module")
def full_report(sample_trace, tmp_path_factory):
    """The `full` report of each sample (every panel), written once."""
    reports: dict[str, Path] = {}

    def get(sample: str) -> Path:
        if sample not in reports:
            out = tmp_path_factory.mktemp(f"report-{sample}")
            result = irqmon("report", str(sample_trace(sample)), "--layout", "full", "-o", str(out))
            assert result.returncode == 0, result.stderr
            assert Path(result.stdout.strip()) == out / "report.md"
            reports[sample] = out
        return reports[sample]

    return get


@pytest.mark.parametrize("sample", SAMPLES)
def test_every_png_is_a_real_figure_and_referenced(full_report, sample):
    out = full_report(sample)
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) >= 3, "timeline, zoom or rates at least"
    for png in pngs:
        assert_real_figure(png.read_bytes())
    text = (out / "report.md").read_text(encoding="utf-8")
    assert markdown_images(text) == {p.name for p in pngs}


@pytest.mark.parametrize("sample", SAMPLES)
def test_markdown_verdict_findings_and_summary(full_report, sample_trace, sample):
    text = (full_report(sample) / "report.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| F\d+ \| (error|warning|note) \| ([a-z-]+) \|", text, flags=re.MULTILINE)
    assert set(expected(sample)["rules"]) <= {rule for _, rule in rows}
    errors = sum(1 for severity, _ in rows if severity == "error")
    verdict = text.splitlines()[0]
    if rows:
        assert verdict.startswith("## ❌" if errors else "## ⚠️") and f" {errors} error" in verdict
    else:
        assert verdict == "## ✅ irqmon: no findings"
    frame = load_trace(sample_trace(sample)).frame
    summary = text.split("### Per-exception summary", 1)[1].split("###", 1)[0]
    for name in frame.loc[frame["event"] == "irq_enter", "exception"].dropna().unique():
        assert f"\n| {md(name)} |" in summary, name


@pytest.mark.parametrize("sample", SAMPLES)
def test_html_is_self_contained(full_report, sample):
    out = full_report(sample)
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert_self_contained(page, sorted(out.glob("*.png")))


@pytest.mark.parametrize("sample", SAMPLES)
def test_perfetto_export_has_a_track_per_exception_task_and_lock(sample_trace, tmp_path, sample):
    trace_path = sample_trace(sample)
    findings_json = tmp_path / "findings.json"
    assert irqmon("analyze", str(trace_path), "--format", "json", "-o", str(findings_json)).returncode in (0, 1)
    out = tmp_path / "trace.json"
    result = irqmon("export", "--format", "perfetto", str(trace_path), "--findings", str(findings_json), "-o", str(out))
    assert result.returncode == 0, result.stderr
    document = json.loads(out.read_text(encoding="utf-8"))
    tracks = check_trace_events(document)
    frame = load_trace(trace_path).frame
    exceptions = set(frame.loc[frame["event"] == "irq_enter", "exception"].dropna())
    exception_tracks = [re.fullmatch(r"(.+) \((?:IRQ|exc) \d+(?:, prio \d+)?\)", t) for t in tracks]
    assert {m.group(1) for m in exception_tracks if m} == exceptions
    assert {f"task {t}" for t in frame["task"].dropna().unique()} <= set(tracks)
    locks = set(frame.loc[(frame["kind"] == "lock").fillna(False), "symbol"].dropna())
    assert {f"lock {name}" for name in locks} <= set(tracks)
    events = document["traceEvents"]
    slices_per_track = {tid: sum(1 for e in events if e["ph"] == "X" and e["tid"] == tid) for tid in tracks.values()}
    enters = int((frame["event"] == "irq_enter").sum())
    assert slices_per_track[tracks["CPU (exception stack)"]] == enters
    findings = json.loads(findings_json.read_text())["findings"]
    instants = [e for e in events if e["ph"] == "i" and e.get("cat") == "finding"]
    assert [e["name"].split(" ", 1)[1] for e in instants] == [f["rule"] for f in findings]
