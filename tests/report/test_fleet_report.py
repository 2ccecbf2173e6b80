"""`irqmon report TRACE_OR_DIR…`: the report of many traces, findings drawn per build and per trace."""

from __future__ import annotations

from fleetfarm import BUILD_A, BUILD_B, make_farm
from reportcheck import assert_real_figure, assert_self_contained, markdown_images

from irqmon.cli import main


def test_fleet_report_writes_its_files(tmp_path, capsys):
    farm = make_farm(tmp_path / "farm")
    (farm / "night2" / "broken.csv").write_bytes(b"")
    out = tmp_path / "report"
    assert main(["report", str(farm), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out / "report.md")
    assert captured.err.strip() == f"irqmon: {farm / 'night2' / 'broken.csv'}: empty file, not a trace"
    text = (out / "report.md").read_text()
    images = markdown_images(text)
    assert images == {"findings-by-build.png", "findings-by-trace.png"}
    for image in images:
        assert_real_figure((out / image).read_bytes())
    assert_self_contained((out / "report.html").read_text(), [out / image for image in sorted(images)])
    assert text.startswith("## ❌ irqmon: 3 errors, 0 warnings, 0 notes in 3 traces")  # the mutex inside malloc is its evidence
    assert "**traces:** 4 · **analysed:** 3 · **failed:** 1 · **builds:** 2" in text
    malloc = next(line for line in text.splitlines() if line.startswith("| error | malloc-in-isr | malloc called"))
    assert f"| 2/3 | 4 | {BUILD_A[:12]}, {BUILD_B[:12]} | night1/usb.csv (2026-11-20T01:00:00+00:00) |" in malloc
    assert text.endswith("### Traces that could not be analysed\n\n- night2/broken.csv: empty file, not a trace\n")


def test_fleet_report_refuses_options_of_one_trace(tmp_path, capsys):
    farm = make_farm(tmp_path / "farm")
    assert main(["report", str(farm), "--layout", "pr", "-o", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err.strip() == "irqmon: --layout applies to the report of one trace, not of several"


def test_fleet_report_of_only_broken_traces_exits_2(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_bytes(b"")
    assert main(["report", str(tmp_path / "in"), "-o", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == "irqmon: no trace could be analysed (1 failed)"
    assert not (tmp_path / "r" / "report.md").exists()
