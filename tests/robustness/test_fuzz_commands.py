"""Fuzzed recorded traces through every command that reads a trace: exit 0, 1 or 2, one line
on stderr for 2, never a traceback or an internal error (3), and JSON outputs that parse."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from irqmon.cli import main

TRACES = sorted((Path(__file__).parent.parent / "analysis" / "traces").glob("*.csv"))
# Values that have broken renderers and parsers: non-finite and huge numbers, int64's ends,
# Unicode digits, markup and control characters.
HOSTILE = ["nan", "inf", "-inf", "1e308", "-1e308", "9223372036854775807", "-9223372036854775808", "²", "٣",
           "[/]", "[link=http://x]y[/link]", "\x1b[2J", "", "0", "-1", "4294967296", '"', "x.c:²"]  # fmt: skip
EXAMPLES = int(os.environ.get("IRQMON_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=max(EXAMPLES // 5, 10), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def mutated_trace(draw: st.DrawFn) -> bytes:
    """A recorded trace with a few cells, metadata values or rows replaced, swapped or cut."""
    lines = TRACES[draw(st.integers(0, len(TRACES) - 1))].read_text(encoding="utf-8").splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(lines) - 1))
        line = lines[at]
        action = draw(st.sampled_from(["cell", "cell", "metadata", "swap", "drop", "cut"]))
        if action == "cell" and not line.startswith("#"):
            cells = line.rstrip("\n").split(",")
            cells[draw(st.integers(0, len(cells) - 1))] = draw(st.sampled_from(HOSTILE))
            lines[at] = ",".join(cells) + "\n"
        elif action == "metadata" and line.startswith("# ") and ":" in line:
            key = line.split(":", 1)[0]
            lines[at] = f"{key}: {draw(st.sampled_from(HOSTILE + ['/proc/self/mem', '/nonexistent.elf']))}\n"
        elif action == "swap" and at + 1 < len(lines):
            lines[at], lines[at + 1] = lines[at + 1], lines[at]
        elif action == "drop":
            del lines[at]
        elif action == "cut":
            lines = lines[:at] + [line[: draw(st.integers(0, len(line)))]]
        if not lines:
            break
    return "".join(lines).encode("utf-8")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    status = main(list(argv))
    return status, capsys.readouterr().err


def assert_clean_exit(status: int, err: str) -> None:
    assert status in (0, 1, 2), err
    assert "Traceback" not in err and "internal error" not in err, err
    if status == 2:
        assert len(err.strip().splitlines()) == 1 + err.count("warning:"), err


@FUZZ
@given(text=mutated_trace())
def test_analyze_export_convert_take_fuzzed_traces(tmp_path, capsys, text):
    trace = tmp_path / "trace.csv"
    trace.write_bytes(text)
    for fmt in ("table", "json", "sarif"):
        out = tmp_path / f"out.{fmt}"
        status, err = run(capsys, "analyze", str(trace), "--format", fmt, "-o", str(out))
        assert_clean_exit(status, err)
        if fmt != "table" and status != 2:
            json.loads(out.read_text(encoding="utf-8"), parse_constant=_refuse)
    status, err = run(capsys, "export", str(trace), "-o", str(tmp_path / "perfetto.json"))
    assert_clean_exit(status, err)
    if status == 0:
        json.loads((tmp_path / "perfetto.json").read_text(encoding="utf-8"), parse_constant=_refuse)
    status, err = run(capsys, "convert", str(trace), str(tmp_path / "trace.parquet"))
    assert_clean_exit(status, err)
    if status == 0:
        assert_clean_exit(*run(capsys, "analyze", str(tmp_path / "trace.parquet")))


@settings(max_examples=max(EXAMPLES // 15, 4), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=mutated_trace())
def test_report_takes_fuzzed_traces(tmp_path, capsys, text):
    trace = tmp_path / "trace.csv"
    trace.write_bytes(text)
    assert_clean_exit(*run(capsys, "report", str(trace), "--layout", "full", "-o", str(tmp_path / "report")))


def _refuse(constant: str) -> None:
    raise AssertionError(f"{constant} in JSON output")
