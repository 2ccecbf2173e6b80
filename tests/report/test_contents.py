"""What the report shows follows the findings: panels, event lists, rule texts, source links and
the caveat of a capture that halted the core. On the recorded traces of the firmware samples."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from synthetic import irq_trace

from irqmon.analysis import analysis_of
from irqmon.cli import main
from irqmon.errors import UsageError
from irqmon.report import write_report
from irqmon.report.document import without_internal_references
from irqmon.report.links import SourceLinks, check_template
from irqmon.report.model import rows_around
from irqmon.tracefile import Trace, load_trace

TRACES = Path(__file__).parent.parent / "analysis" / "traces"
TEMPLATE = "https://github.com/o/r/blob/SHA/{path}#L{line}"


def report_of(tmp_path: Path, name: str, *options: str) -> tuple[Path, str, str]:
    out = tmp_path / name
    assert main(["report", str(TRACES / f"{name}.csv"), "--no-elf", "-o", str(out), *options]) == 0
    return out, (out / "report.md").read_text(encoding="utf-8"), (out / "report.html").read_text(encoding="utf-8")


def details(text: str, label: str) -> str:
    return text.split(f"<details><summary>{label} ·", 1)[1].split("</details>", 1)[0]


# --- panels follow the findings --------------------------------------------------------------


def test_heap_panel_only_with_a_heap_finding(tmp_path, capsys):
    out, text, _ = report_of(tmp_path, "usb_cdc_malloc_isr")
    assert "malloc-in-isr" in text and (out / "heap.png").is_file() and "(heap.png)" in text
    out, text, page = report_of(tmp_path, "hal_i2c_lock_deadlock")
    assert "malloc-in-isr" not in text
    assert not (out / "heap.png").exists() and "heap.png" not in text
    assert "Heap calls by context: no heap finding" in text and "Heap calls by context: no heap finding" in page


def test_masks_panel_only_with_a_critical_section_finding(tmp_path, capsys):
    out, text, _ = report_of(tmp_path, "uart_queue_primask")
    assert "| critical-section-imbalance |" in text and (out / "masks.png").is_file()
    out, text, _ = report_of(tmp_path, "usb_cdc_malloc_isr")
    assert not (out / "masks.png").exists() and "BASEPRI and PRIMASK: no critical-section finding" in text


def test_empty_panels_are_left_out(tmp_path, capsys):
    out, text, page = report_of(tmp_path, "uart_queue_primask")  # no lock or mutex events
    assert not (out / "locks.png").exists()
    assert "### Lock lanes" not in text and "<h2>Lock lanes</h2>" not in page
    assert "Lock lanes: no HAL lock or mutex events in this trace" in text
    out, text, _ = report_of(tmp_path, "clean")  # no finding to zoom on
    assert not (out / "timeline-first-finding.png").exists() and "zoom on the first finding)\n" not in text


def test_always_draws_a_panel_no_finding_calls_for(tmp_path, capsys):
    layout = tmp_path / "always.toml"
    layout.write_text('[[panel]]\nkind = "heap"\nalways = true\n\n[[panel]]\nkind = "masks"\n')
    out, text, _ = report_of(tmp_path, "clean", "--layout", str(layout))
    assert (out / "heap.png").is_file() and not (out / "masks.png").exists()


def test_always_must_be_a_boolean(tmp_path, capsys):
    layout = tmp_path / "bad.toml"
    layout.write_text('[[panel]]\nkind = "heap"\nalways = "yes"\n')
    assert main(["report", str(TRACES / "clean.csv"), "--layout", str(layout), "-o", str(tmp_path / "o")]) == 2
    assert "always must be true or false" in capsys.readouterr().err


# --- event list ------------------------------------------------------------------------------


def test_rows_around_the_first_occurrence_with_its_row_marked():
    analysis = analysis_of(load_trace(TRACES / "hal_i2c_lock_deadlock.csv"))
    for finding in analysis.findings:
        rows = rows_around(analysis.context, finding.first_seq, 5, 5)
        assert len(rows) == 11
        assert list(rows["seq"]) == list(range(finding.first_seq - 5, finding.first_seq + 6))
        assert list(rows.loc[rows["marked"], "seq"]) == [finding.first_seq]
    assert rows_around(analysis.context, 10**9).empty
    edge = rows_around(analysis.context, 2, 5, 5)
    assert list(edge["seq"]) == list(range(0, 8)) and edge["marked"].sum() == 1


def test_event_list_in_the_details_contains_the_findings_row(tmp_path, capsys):
    _, text, page = report_of(tmp_path, "hal_i2c_lock_deadlock")
    block = details(text, "F3")  # unbalanced-lock: I2C1_ER releases hi2c1.Lock at row 809
    assert "▶ row 809" in block
    marked = [line for line in block.splitlines() if line.startswith("| **▶** |")]
    assert len(marked) == 1 and "| **809** |" in marked[0] and "hi2c1.Lock (release)" in marked[0] and "1 → 0" in marked[0]
    seqs = [int(m) for m in re.findall(r"^\| (?:\*\*▶\*\*)? \| \**(\d+)\**", block, flags=re.MULTILINE)]
    assert seqs == list(range(804, 815))
    assert page.count('<tr class="hit">') == 4  # one per finding


# --- rule texts --------------------------------------------------------------------------------


def test_rule_text_once_per_rule_and_no_internal_references(tmp_path, capsys):
    _, text, page = report_of(tmp_path, "hal_i2c_lock_deadlock")  # two unbalanced-lock findings
    rules = {"interrupt-storm", "isr-lock-contention", "unbalanced-lock"}
    for document in (text, page):
        assert document.count("Why it is bad:") == len(rules)
        assert document.count("Instead:") == len(rules)
        assert not re.search(r"\bseeds?\b|\bissue #?\d|\(#\d+\)", document, flags=re.IGNORECASE)
    assert "Why it is bad" not in details(text, "F3") and "(#rule-unbalanced-lock)" in details(text, "F4")
    assert '<h3 id="rule-unbalanced-lock">' in page and page.count('href="#rule-unbalanced-lock"') == 2


@pytest.mark.parametrize(
    "before, after",
    [
        ("and free() on de-initialisation (seed 000).", "and free() on de-initialisation."),
        ("The seed 004 workaround: I2C1_EV runs", "The workaround: I2C1_EV runs"),
        ("as reported (issue #15) and (#15).", "as reported and."),
        ("seeds the PRNG", "seeds the PRNG"),
    ],
)
def test_internal_references_are_taken_out(before, after):
    assert without_internal_references(before) == after


# --- source links ------------------------------------------------------------------------------


def test_source_url_makes_source_lines_links(tmp_path, capsys):
    _, text, page = report_of(tmp_path, "hal_i2c_lock_deadlock", "--source-url", TEMPLATE)
    url = "https://github.com/o/r/blob/SHA/firmware_samples/hal_i2c_lock_deadlock/hal_i2c.c#L133"
    source = r"firmware\_samples/hal\_i2c\_lock\_deadlock/hal\_i2c.c:133"
    assert f"| [{source}]({url}) |" in text  # the findings table
    assert f"- **source:** [{source}]({url})" in details(text, "F3")  # the details
    assert f"**[{source}]({url})**" in details(text, "F3")  # the event list
    assert f'<a href="{url}">firmware_samples/hal_i2c_lock_deadlock/hal_i2c.c:133</a>' in page
    _, plain, _ = report_of(tmp_path / "plain", "hal_i2c_lock_deadlock")
    assert "https://" not in plain


def test_source_links_only_inside_the_repository(tmp_path):
    links = SourceLinks(TEMPLATE, root=tmp_path)
    assert links.url("src/main.c:12") == "https://github.com/o/r/blob/SHA/src/main.c#L12"
    assert links.url(f"{tmp_path}/src/a b.c:3") == "https://github.com/o/r/blob/SHA/src/a%20b.c#L3"
    assert links.url("/home/x/newlib/libc/stdio/findfp.c:132") is None
    assert links.url("../elsewhere.c:1") is None
    assert SourceLinks("https://h/{path}", root=tmp_path).url("src/x.c:9") == "https://h/src/x.c"
    assert links.url("src/(x)|y.c:1") == "https://github.com/o/r/blob/SHA/src/%28x%29%7Cy.c#L1"


@pytest.mark.parametrize(
    "template, message",
    [
        ("https://github.com/o/r/blob/SHA/file#L{line}", "has no {path}"),
        ("https://x/{path}/{column}", "unknown field {column}"),
        ("https://x/{path", "use {path} and {line}"),
        ("javascript:alert({path})", "scheme javascript"),
    ],
)
def test_bad_source_url_is_one_line_and_exit_2(tmp_path, capsys, template, message):
    status = main(["report", str(TRACES / "clean.csv"), "--source-url", template, "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and message in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()
    with pytest.raises(UsageError, match=re.escape(message)):
        check_template(template)


def test_analyze_is_unchanged_by_source_url(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["analyze", str(TRACES / "clean.csv"), "--source-url", TEMPLATE])
    assert exited.value.code == 2 and "unrecognized arguments: --source-url" in capsys.readouterr().err


# --- a capture that halted the core ------------------------------------------------------------


def test_caveat_for_a_gdb_backend_trace(tmp_path, capsys):
    trace = load_trace(TRACES / "hal_i2c_lock_deadlock.csv")
    assert trace.metadata["backend"] == "gdbmi"
    frame = trace.frame
    hits = int((~frame["event"].isin(["irq_enter", "irq_exit", "config"])).sum())
    _, text, page = report_of(tmp_path, "hal_i2c_lock_deadlock")
    caveat = next(line for line in text.splitlines() if line.startswith("> ⚠️ **The capture halted the core.**"))
    assert f"The gdb backend stops the core at every probe hit: {hits:,} halts in this trace" in caveat
    assert re.search(r"about [\d.]+ ms, about [\d.]+ s in total", caveat)
    assert "Handler execution times" in caveat
    assert '<p class="caveat">⚠️ <b>The capture halted the core.</b>' in page
    assert "halts inside" in text


@pytest.mark.parametrize("backend", [None, "swo-replay"])
def test_no_caveat_when_the_capture_did_not_halt(tmp_path, backend):
    trace = load_trace(TRACES / "hal_i2c_lock_deadlock.csv")
    metadata = {k: v for k, v in trace.metadata.items() if k != "backend"} | ({"backend": backend} if backend else {})
    trace = Trace(trace.frame, metadata, trace.path)
    report = write_report(analysis_of(trace), trace.path, tmp_path / "r")
    for document in (report.read_text(encoding="utf-8"), (tmp_path / "r" / "report.html").read_text(encoding="utf-8")):
        assert "halted the core" not in document


def test_no_caveat_on_a_synthetic_irq_trace(tmp_path):
    trace = irq_trace([(0.0, "irq_enter", 44, "TIM2", 5), (1.0, "irq_exit", 44, "TIM2", 5)])
    report = write_report(analysis_of(trace), trace.path, tmp_path / "r")
    text = report.read_text(encoding="utf-8")
    assert "halted the core" not in text and "### Per-ISR execution time and period jitter" in text
