"""`irqmon report` / `irqmon export` options and bad input: one line, exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from synthetic import irq_trace

from irqmon.cli import main
from irqmon.errors import UsageError
from irqmon.report.layout import PANELS, builtin_layouts, load_layout
from irqmon.tracefile import write_csv

EVENTS = [
    (0.0, "irq_enter", 44, "TIM2", 5), (0.2, "irq_exit", 44, "TIM2", 5),
    (1.0, "irq_enter", 44, "TIM2", 5), (1.4, "irq_enter", 22, "EXTI0", 1),
    (1.5, "irq_exit", 22, "EXTI0", 1), (1.6, "irq_exit", 44, "TIM2", 5),
    (3.0, "irq_enter", 22, "EXTI0", 1), (3.1, "irq_exit", 22, "EXTI0", 1),
]  # fmt: skip


@pytest.fixture
def trace_csv(tmp_path):
    path = tmp_path / "trace.csv"
    write_csv(irq_trace(EVENTS, path), path)
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_builtin_layouts_pr_is_compact_full_has_every_panel():
    assert {"pr", "full"} <= set(builtin_layouts())
    full, pr = load_layout("full"), load_layout("pr")
    assert {p.panel for p in full.panels} == set(PANELS)
    assert len(pr.panels) < len(full.panels)
    assert sum(p.height for p in pr.panels) < sum(p.height for p in full.panels)


def test_layout_file_chooses_panels_order_and_size(tmp_path, trace_csv, capsys):
    layout = tmp_path / "mine.toml"
    layout.write_text('[[panel]]\nkind = "rates"\nheight = 3\nwidth = 6\n\n[[panel]]\nkind = "timeline"\ntitle = "Mine"\n')
    status, _, err = run(capsys, "report", str(trace_csv), "--layout", str(layout), "-o", str(tmp_path / "r"))
    assert (status, err) == (0, "")
    text = (tmp_path / "r" / "report.md").read_text()
    assert text.index("rates.png") < text.index("timeline.png") and "### Mine" in text
    assert sorted(p.name for p in (tmp_path / "r").glob("*.png")) == ["rates.png", "timeline.png"]
    assert Image.open(tmp_path / "r" / "rates.png").size == (600, 300)


@pytest.mark.parametrize(
    "content, message",
    [
        ("[[panel]]\nkind = 'pie'\n", "kind must be one of"),
        ("width = 0\n[[panel]]\nkind = 'rates'\n", "width must be a number of inches"),
        ("[[panel]]\nkind = 'rates'\ncolour = 'red'\n", "unknown key 'colour'"),
        ("[[panel]]\nkind = 'rates'\n[[panel]]\nkind = 'rates'\n", "appears twice"),
        ("title = \n", "not a TOML layout"),
        ("name = 'empty'\n", "at least one [[panel]]"),
    ],
)
def test_bad_layouts_are_one_line_errors(tmp_path, content, message):
    layout = tmp_path / "bad.toml"
    layout.write_text(content)
    with pytest.raises(UsageError, match=message.replace("[", r"\[")):
        load_layout(layout)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["report", "{trace}", "--layout", "nope", "-o", "{out}"], "unknown layout 'nope'"),
        (["report", "{missing}", "-o", "{out}"], "cannot read"),
        (["report", "{trace}", "--from", "2", "--to", "1", "-o", "{out}"], "--to 1 must be after --from 2"),
        (["report", "{trace}", "--from", "50", "-o", "{out}"], "empty time window"),
        (["report", "{trace}", "--findings", "{trace}", "-o", "{out}"], "not JSON"),
        (["export", "{trace}", "--findings", "{json}", "-o", "{out}"], "not an irqmon JSON result"),
        (["export", "{trace}", "-o", "{under_a_file}"], "cannot write"),
        (["export", "{trace}", "-o", "{tmp}"], "is a directory"),
        (["report", "{trace}", "-o", "{trace}"], "is a file, give a folder"),
        (["export", "{trace}", "-o", "/proc/irqmon/t.json"], "cannot write"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, trace_csv, capsys, argv, message):
    (tmp_path / "other.json").write_text(json.dumps({"schema": 99}))
    names = {"trace": trace_csv, "out": tmp_path / "out", "missing": tmp_path / "missing.csv", "json": tmp_path / "other.json",
             "under_a_file": trace_csv / "t.json", "tmp": tmp_path}  # fmt: skip
    status, _, err = run(capsys, *(a.format(**names) for a in argv))
    assert status == 2
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_time_window_limits_the_report(tmp_path, trace_csv, capsys):
    status, _, err = run(capsys, "report", str(trace_csv), "--from", "0.9", "--to", "2.0", "-o", str(tmp_path / "w"))
    assert (status, err) == (0, "")
    text = (tmp_path / "w" / "report.md").read_text()
    assert "**window:** 0.900000–2.000000 s" in text
    summary = text.split("### Per-exception summary", 1)[1].split("###", 1)[0]
    tim2 = next(line for line in summary.splitlines() if line.startswith("| TIM2 |"))
    assert tim2.split(" | ")[3:6] == ["1", "600.000", "500.000"]  # one activation: 600 ms in, 500 ms itself


def test_export_window_and_findings_file(tmp_path, trace_csv, capsys):
    result = tmp_path / "findings.json"
    assert main(["analyze", str(trace_csv), "--format", "json", "-o", str(result)]) in (0, 1)
    out = tmp_path / "t.json"
    status, _, err = run(capsys, "export", str(trace_csv), "--findings", str(result), "--from", "1.0", "--to", "2.0", "-o", str(out))
    assert (status, err) == (0, "")
    slices = [e for e in json.loads(out.read_text())["traceEvents"] if e["ph"] == "X" and e.get("cat") == "irq"]
    assert sorted({(e["name"], e["ts"], e["dur"]) for e in slices}) == [("EXTI0", 1.4e6, pytest.approx(0.1e6)), ("TIM2", 1.0e6, pytest.approx(0.6e6))]


RECORDED = Path(__file__).parent.parent / "analysis" / "traces" / "hal_i2c_lock_deadlock.csv"


@pytest.mark.parametrize("options", [[], ["--storm-threshold", "entries=100000,rate=1e9"], ["--rules", "isr-lock-contention"]])
def test_report_shows_what_analyze_finds_with_the_same_options(tmp_path, capsys, options):
    """The report is drawn from analyze's own analysis: its findings follow analyze's options."""
    result = tmp_path / "result.json"
    run(capsys, "analyze", str(RECORDED), "--no-elf", "--format", "json", "-o", str(result), *options)
    found = sorted(f["rule"] for f in json.loads(result.read_text())["findings"])
    assert found, "the recorded trace has findings under every option set here"
    status, _, err = run(capsys, "report", str(RECORDED), "--no-elf", "-o", str(tmp_path / "r"), *options)
    assert (status, err) == (0, "")
    table = (tmp_path / "r" / "report.md").read_text().split("| # |", 1)[1].split("\n\n", 1)[0]
    shown = sorted(line.split("|")[3].strip() for line in table.splitlines()[2:] if line.startswith("| F"))
    assert shown == found
