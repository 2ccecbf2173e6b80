"""`irqmon analyze` and `irqmon convert` end to end on hand-built traces: exit codes, formats, baseline."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pyarrow as pa
import pytest
from support import SARIF_SCHEMA_FILE
from tracebuild import THREAD, isr, write_trace

from irqmon.analysis import all_rules
from irqmon.cli import main
from irqmon.tracefile import INTEGER_RANGES, Trace, load_trace, proven_in_range, write_parquet

USB = isr(67, "OTG_FS", 6)
MALLOC_IN_ISR = {"event": "call", "kind": "heap", "role": "alloc", "symbol": "malloc", "size": 64,
                 "callpath": "malloc;USBD_malloc;USBD_CDC_Init;OTG_FS_IRQHandler;<exception>;main",
                 "source": "firmware/usbd_conf.c:8", **USB}  # fmt: skip
WARNING_ONLY = [
    {"event": "access", "kind": "lock", "role": "acquire", "symbol": "h.Lock", "address": 16, "access": "w", "value": 1, "old_value": 0, **THREAD}
]  # fmt: skip


@pytest.fixture
def bad_trace(tmp_path: Path) -> Path:
    return write_trace(tmp_path / "bad.csv", [{"event": "call", "kind": "heap", "role": "alloc", "symbol": "malloc", **THREAD}, MALLOC_IN_ISR])


def sarif_schema() -> dict:
    return json.loads(SARIF_SCHEMA_FILE.read_text(encoding="utf-8"))


def test_exit_status_1_on_error_and_json_schema(bad_trace, tmp_path, capsys):
    out = tmp_path / "result.json"
    assert main(["analyze", str(bad_trace), "--format", "json", "-o", str(out)]) == 1
    result = json.loads(out.read_text())
    assert result["schema"] == 1 and result["summary"] == {"error": 1, "warning": 0, "note": 0}
    assert result["trace"]["metadata"]["priority_bits"] == "4" and result["trace"]["rows"] == 2
    finding = result["findings"][0]
    assert finding["title"] == "malloc-in-isr: malloc called from OTG_FS_IRQHandler (IRQ 67, priority 6)"
    assert set(finding) >= {"rule", "severity", "fingerprint", "count", "first_time", "last_time", "contexts", "callpath", "source", "evidence"}


def test_exit_status_0_for_warnings_only_and_clean(tmp_path, capsys):
    assert main(["analyze", str(write_trace(tmp_path / "w.csv", WARNING_ONLY))]) == 0
    assert "unbalanced-lock" in capsys.readouterr().out
    clean = write_trace(tmp_path / "c.csv", [{"event": "call", "kind": "heap", "role": "alloc", "symbol": "malloc", **THREAD}])
    assert main(["analyze", str(clean)]) == 0
    assert "no findings" in capsys.readouterr().out


def test_exit_status_2_on_bad_input(tmp_path, bad_trace, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert main(["analyze", str(empty)]) == 2
    assert capsys.readouterr().err.strip() == f"irqmon: {empty}: empty file, not a trace"
    assert main(["analyze", str(bad_trace), "--rules", "no-such-rule"]) == 2
    assert main(["analyze", str(bad_trace), "--storm-threshold", "rate=fast"]) == 2
    assert main(["analyze", str(bad_trace), "--baseline", str(empty)]) == 2
    assert main(["analyze"]) == 2


@pytest.mark.parametrize("column", ["pc", "lr", "cycles", "address"])
def test_bad_number_cell_is_exit_2_even_in_a_column_no_rule_reads(bad_trace, column, capsys):
    """The rules pass reads only the columns a rule needs: a bad cell in another is still a bad trace."""
    lines = bad_trace.read_text().splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("seq,"))
    cells = lines[header + 2].split(",")
    cells[lines[header].split(",").index(column)] = "0xzz"
    lines[header + 2] = ",".join(cells)
    bad_trace.write_text("\n".join(lines) + "\n")
    assert main(["analyze", str(bad_trace), "--no-elf"]) == 2
    assert capsys.readouterr().err.strip() == f"irqmon: {bad_trace}:{header + 3}: column {column}: '0xzz' is not an integer"


@pytest.mark.parametrize("column", ["pc", "lr", "cycles"])
def test_parquet_statistics_spare_reading_only_columns_they_prove_in_range(bad_trace, tmp_path, column, capsys):
    """A Parquet file's statistics put a column no rule reads within its range, so the first pass
    need not read it; a value outside is read, and still a bad trace."""
    good = tmp_path / "good.parquet"
    write_parquet(load_trace(bad_trace), good)
    assert proven_in_range(good, ["pc", "lr", "cycles"]) == {"pc", "lr", "cycles"} and not proven_in_range(bad_trace, ["pc"])
    trace = load_trace(bad_trace)
    table = trace.table
    values = pa.array([-1] + [None] * (table.num_rows - 1), pa.int64())
    outside = tmp_path / "outside.parquet"
    write_parquet(Trace(table.set_column(table.column_names.index(column), column, values), trace.metadata, outside), outside)
    assert proven_in_range(outside, ["pc", "lr", "cycles"]) == {"pc", "lr", "cycles"} - {column}
    assert main(["analyze", str(outside), "--no-elf"]) == 2
    assert capsys.readouterr().err.strip() == f"irqmon: {outside}: row 0: column {column}: -1 is outside {INTEGER_RANGES[column][0]}..{INTEGER_RANGES[column][1]}"


def test_rules_option_selects(bad_trace):
    assert main(["analyze", str(bad_trace), "--rules", "mutex-in-isr,rmw-race"]) == 0
    assert main(["analyze", str(bad_trace), "--rules", "malloc-in-isr"]) == 1


def test_baseline_reports_only_new_findings(bad_trace, tmp_path):
    old = tmp_path / "old.json"
    assert main(["analyze", str(bad_trace), "--format", "json", "-o", str(old)]) == 1
    new = tmp_path / "new.json"
    assert main(["analyze", str(bad_trace), "--baseline", str(old), "--format", "json", "-o", str(new)]) == 0
    assert json.loads(new.read_text())["findings"] == []
    # Same site at other times and counts: still the same fingerprint.
    later = write_trace(tmp_path / "later.csv", [MALLOC_IN_ISR, MALLOC_IN_ISR, MALLOC_IN_ISR])
    assert main(["analyze", str(later), "--baseline", str(old)]) == 0
    elsewhere = write_trace(tmp_path / "else.csv", [{**MALLOC_IN_ISR, "source": "firmware/other.c:3"}])
    assert main(["analyze", str(elsewhere), "--baseline", str(old)]) == 1


def test_sarif_validates_and_points_at_source(bad_trace, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the trace's relative source paths are from the working directory
    out = tmp_path / "result.sarif"
    assert main(["analyze", str(bad_trace), "--format", "sarif", "-o", str(out), "--source-root", str(tmp_path)]) == 1
    log = json.loads(out.read_text())
    jsonschema.validate(log, sarif_schema())
    run = log["runs"][0]
    assert {r["id"] for r in run["tool"]["driver"]["rules"]} == set(all_rules())
    result = run["results"][0]
    assert result["ruleId"] == "malloc-in-isr" and result["level"] == "error"
    assert run["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == "malloc-in-isr"
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "firmware/usbd_conf.c"
    assert location["region"]["startLine"] == 8
    flow = result["codeFlows"][0]["threadFlows"][0]["locations"]
    assert [step["location"]["message"]["text"] for step in flow][:4] == ["malloc", "USBD_malloc", "USBD_CDC_Init", "OTG_FS_IRQHandler"]


def test_sarif_absolute_paths_made_relative_to_root(tmp_path):
    source = tmp_path / "src" / "main.c"
    trace = write_trace(tmp_path / "t.csv", [{**MALLOC_IN_ISR, "source": f"{source}:12"}])
    out = tmp_path / "r.sarif"
    main(["analyze", str(trace), "--format", "sarif", "-o", str(out), "--source-root", str(tmp_path)])
    log = json.loads(out.read_text())
    jsonschema.validate(log, sarif_schema())
    assert log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "src/main.c"


def sarif_of(trace: Path, tmp_path: Path, root: Path) -> dict:
    out = tmp_path / "r.sarif"
    main(["analyze", str(trace), "--no-elf", "--format", "sarif", "-o", str(out), "--source-root", str(root)])
    log = json.loads(out.read_text())
    jsonschema.validate(log, sarif_schema())
    return log


def test_sarif_relative_sources_follow_the_source_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    trace = write_trace(tmp_path / "t.csv", [{**MALLOC_IN_ISR, "source": "fw/src/main.c:12"}])
    uri = sarif_of(trace, tmp_path, tmp_path / "fw")["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert uri == {"uri": "src/main.c", "uriBaseId": "%SRCROOT%"}
    outside = sarif_of(trace, tmp_path, tmp_path / "other")["runs"][0]["results"][0]["locations"][0]
    assert outside["physicalLocation"]["artifactLocation"]["uri"] == "../fw/src/main.c"  # never file://


def test_sarif_result_without_a_source_line_still_has_a_location(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    trace = write_trace(tmp_path / "t.csv", [{**MALLOC_IN_ISR, "source": None}])
    result = sarif_of(trace, tmp_path, tmp_path)["runs"][0]["results"][0]
    assert result["locations"][0]["physicalLocation"] == {"artifactLocation": {"uri": "t.csv", "uriBaseId": "%SRCROOT%"}, "region": {"startLine": 1}}


def test_sarif_rules_have_help_markdown_and_a_help_uri(bad_trace, tmp_path):
    rules = sarif_of(bad_trace, tmp_path, tmp_path)["runs"][0]["tool"]["driver"]["rules"]
    for rule in rules:
        assert rule["help"]["markdown"] and rule["helpUri"].endswith(f"docs/findings.md#{rule['id']}")


def test_list_rules_and_explain(capsys):
    assert main(["analyze", "--list-rules"]) == 0
    listed = capsys.readouterr().out
    assert all(rule in listed for rule in all_rules())
    assert main(["analyze", "--explain", "rmw-race"]) == 0
    text = capsys.readouterr().out
    assert "Why it is bad:" in text and "Example:" in text and "Instead:" in text
    assert main(["analyze", "--explain", "nope"]) == 2


def test_every_rule_is_documented_in_three_parts():
    for rule in all_rules().values():
        assert rule.id == rule.doc.split(":", 1)[0], rule.id
        assert rule.rule.severity in ("error", "warning", "note")
        positions = [rule.doc.find(part) for part in ("Why it is bad:", "Example:", "Instead:")]
        assert -1 not in positions and positions == sorted(positions), rule.id


def test_convert_round_trip(bad_trace, tmp_path):
    parquet = tmp_path / "t.parquet"
    assert main(["convert", str(bad_trace), str(parquet)]) == 0
    assert parquet.read_bytes()[:4] == b"PAR1"
    back = tmp_path / "back.csv"
    assert main(["convert", str(parquet), str(back)]) == 0
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    main(["analyze", str(bad_trace), "--format", "json", "-o", str(a)])
    main(["analyze", str(back), "--format", "json", "-o", str(b)])
    assert json.loads(a.read_text())["findings"] == json.loads(b.read_text())["findings"]
    assert main(["convert", str(bad_trace), str(tmp_path / "t.txt")]) == 2


def test_storm_threshold_option(tmp_path):
    from test_lock_rules import storm_rows

    trace = write_trace(tmp_path / "storm.csv", storm_rows(30))
    assert main(["analyze", str(trace), "--rules", "interrupt-storm"]) == 0
    assert main(["analyze", str(trace), "--rules", "interrupt-storm", "--storm-threshold", "entries=25,share=0.5,window=0.002"]) == 1


def test_elf_option_refuses_a_non_elf(bad_trace, capsys):
    assert main(["analyze", str(bad_trace), "--elf", str(bad_trace)]) == 2
    assert "not an ELF" in capsys.readouterr().err


def test_third_party_rule_from_entry_point(monkeypatch, bad_trace):
    """A module named by the `irqmon.rules` entry point group is run like a built-in rule."""
    import types

    from irqmon.analysis import Rule, analyze, registry
    from irqmon.analysis.findings import group_hits
    from irqmon.tracefile import load_trace

    plugin = types.ModuleType("vendor_rules")
    plugin.__doc__ = "vendor-heap: any heap call.\n\nWhy it is bad:\n    x\n\nExample:\n    y\n\nInstead:\n    z\n"
    plugin.RULE = Rule(id="vendor-heap", severity="note", summary="any heap call")
    plugin.check = lambda ctx: group_hits(
        plugin.RULE, ctx, ctx.select(kind="heap"), site=("symbol",), title=lambda f, g: str(f["symbol"]), message=lambda f, g: ""
    )

    class EntryPoint:
        def load(self):
            return plugin

    monkeypatch.setattr(registry, "entry_points", lambda group: [EntryPoint()] if group == registry.ENTRY_POINT_GROUP else [])
    assert "vendor-heap" in registry.all_rules()
    findings = analyze(load_trace(bad_trace), rules=["vendor-heap"])
    assert [(f.rule, f.severity, f.count) for f in findings] == [("vendor-heap", "note", 2)]
