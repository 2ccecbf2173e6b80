"""Names from the trace and the ELF are text, never markup, in report.md and report.html."""

from __future__ import annotations

import json

from reportcheck import assert_real_figure

from irqmon.analysis import analysis_of
from irqmon.report import write_report
from irqmon.report.model import build_model
from irqmon.report.perfetto import trace_events
from irqmon.tracefile import load_trace
from irqmon.tracewriter import TraceWriter

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(2)>"
MARKDOWN = "[click](javascript:alert(3)) | *bold* `code`"


def hostile_trace(path):
    """An ISR named like a script calls malloc, a function named like an image tag, under a task
    named like a markdown link: malloc-in-isr reports all three names."""
    isr = {"ipsr": 21, "exception": SCRIPT, "priority": 2, "primask": 0, "basepri": 0, "task": MARKDOWN}
    rows = [
        {"time": 0.0, "event": "irq_enter", "kind": "irq", "probe": "qemu", "ipsr": 21, "exception": SCRIPT, "priority": 2},
        {"time": 0.001, "event": "call", "kind": "heap", "role": "alloc", "probe": "newlib", "symbol": "malloc", "size": 16,
         "callpath": f"malloc;{IMG};{SCRIPT}_Handler;<exception>;main", "source": f"{IMG}.c:1", **isr},
        {"time": 0.002, "event": "irq_exit", "kind": "irq", "probe": "qemu", "ipsr": 21, "exception": SCRIPT, "priority": 2},
        {"time": 0.003, "event": "mask", "kind": "critical-section", "role": "disable", "symbol": "primask", "ipsr": 0,
         "exception": "Thread", "primask": 1, "basepri": 0, "task": MARKDOWN, "old_value": 0, "value": 1},
    ]  # fmt: skip
    with TraceWriter(path, {"target": SCRIPT, "elf": f"/fw/{IMG}.elf", "priority_bits": 4}) as writer:
        for row in rows:
            writer.write(row)
    return load_trace(path)


def test_script_and_markdown_names_come_out_escaped(tmp_path):
    trace = hostile_trace(tmp_path / f"{SCRIPT}.csv".replace("/", "_"))
    analysis = analysis_of(trace)
    assert any(f.rule == "malloc-in-isr" and SCRIPT in " ".join(f.contexts) for f in analysis.findings)
    report = write_report(analysis, trace.path, tmp_path / "out", layout="full")
    text = report.read_text(encoding="utf-8")
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    for document in (text, page):
        lowered = document.lower()
        assert "<script" not in lowered and "<img src=x" not in lowered
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in document
        assert "&lt;img src=x onerror=alert(2)&gt;" in document
    assert "[click](javascript" not in text and "\\[click\\](javascript" in text
    assert "\\| \\*bold\\* \\`code\\`" in text
    for png in (tmp_path / "out").glob("*.png"):
        assert_real_figure(png.read_bytes())


def test_perfetto_json_keeps_names_as_strings(tmp_path):
    trace = hostile_trace(tmp_path / "trace.csv")
    analysis = analysis_of(trace)
    document = json.loads(json.dumps(trace_events(build_model(analysis.context), analysis.findings, "trace.csv")))
    names = {e["args"]["name"] for e in document["traceEvents"] if e["ph"] == "M" and e["name"] == "thread_name"}
    assert f"{SCRIPT} (IRQ 5, prio 2)" in names
    assert f"task {MARKDOWN}" in names
