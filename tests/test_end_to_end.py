"""Every firmware sample, captured on QEMU and analyzed: the rules in its expected.toml are
reported and no other rule of severity error; `clean` reports no error and no warning; the
halting backends report exactly its rules too. A new sample directory with an expected.toml is a
new test here."""

from __future__ import annotations

import json

import jsonschema
import pytest

from irqmon.analysis import analyze
from irqmon.cortexm.elf import ElfImage
from irqmon.tracefile import load_trace
from support import ROOT, SARIF_SCHEMA_FILE, capture_reproducing, expected, irqmon, sample_elf, sample_names


@pytest.mark.parametrize("sample", sample_names())
def test_sample_findings_match_expected_rules(sample, sample_trace, tmp_path):
    result = irqmon("analyze", str(sample_trace(sample)), "--format", "json", "-o", str(tmp_path / "f.json"))
    findings = json.loads((tmp_path / "f.json").read_text())["findings"]
    wanted = set(expected(sample)["rules"])
    reported = {f["rule"] for f in findings}
    errors = {f["rule"] for f in findings if f["severity"] == "error"}
    assert wanted <= reported, f"missing {wanted - reported}"
    assert errors <= wanted, f"unexpected errors {errors - wanted}: " + "; ".join(
        f["title"] for f in findings if f["rule"] in errors - wanted
    )
    assert result.returncode == (1 if errors else 0)
    if not wanted:
        assert not [f for f in findings if f["severity"] in ("error", "warning")]


@pytest.mark.parametrize("backend", ["gdb", "rsp"])
@pytest.mark.parametrize("sample", sample_names())
def test_halting_backends_report_exactly_the_expected_rules(sample, backend, built_samples, tmp_path):
    """The default backend records inside QEMU; gdb and rsp halt on every hit and read memory
    while halted (object markers, task names): their traces give the same findings."""
    trace = tmp_path / "trace.csv"
    result = capture_reproducing(sample, trace, "--backend", backend)
    assert result.returncode == 0, result.stderr
    assert {finding.rule for finding in analyze(load_trace(trace))} == set(expected(sample)["rules"])


def test_malloc_in_isr_finding_carries_the_seed_call_path(sample_trace, tmp_path):
    irqmon("analyze", str(sample_trace("usb_cdc_malloc_isr")), "--format", "json", "-o", str(tmp_path / "f.json"))
    findings = json.loads((tmp_path / "f.json").read_text())["findings"]
    malloc = next(f for f in findings if f["rule"] == "malloc-in-isr" and f["symbol"] == "malloc")
    chain = ["malloc", "USBD_malloc", "USBD_CDC_Init", "USBD_SetClassConfig", "USBD_SetConfig",
             "USBD_StdDevReq", "USBD_LL_SetupStage", "HAL_PCD_SetupStageCallback", "HAL_PCD_IRQHandler",
             "OTG_FS_IRQHandler"]  # fmt: skip
    assert malloc["callpath"][: len(chain)] == chain
    assert "OTG_FS" in malloc["title"] and "priority 6" in malloc["title"]
    assert malloc["source"].startswith("firmware_samples/usb_cdc_malloc_isr/")


def test_an_elf_from_another_build_is_refused(sample_trace):
    result = irqmon("analyze", str(sample_trace("exti_imr_rmw_race")), "--elf", str(sample_elf("clean")))
    assert result.returncode == 2 and "not the firmware this trace was captured from" in result.stderr
    assert "Traceback" not in result.stderr


def test_sarif_from_the_elf_line_table_points_at_the_malloc_call(sample_trace, tmp_path):
    out = tmp_path / "usb.sarif"
    result = irqmon("analyze", str(sample_trace("usb_cdc_malloc_isr")), "--elf", str(sample_elf("usb_cdc_malloc_isr")),
                    "--format", "sarif", "-o", str(out))  # fmt: skip
    assert result.returncode == 1, result.stderr
    log = json.loads(out.read_text())
    schema = json.loads(SARIF_SCHEMA_FILE.read_text(encoding="utf-8"))  # OASIS 2.1.0
    jsonschema.validate(log, schema)
    found = next(r for r in log["runs"][0]["results"] if r["ruleId"] == "malloc-in-isr" and "malloc called" in r["message"]["text"])
    location = found["locations"][0]["physicalLocation"]
    line = (ROOT / location["artifactLocation"]["uri"]).read_text().splitlines()[location["region"]["startLine"] - 1]
    assert location["artifactLocation"]["uri"] == "firmware_samples/usb_cdc_malloc_isr/usbd_conf.c" and "malloc(" in line


def test_sarif_code_flow_frames_point_at_their_functions(sample_trace, tmp_path):
    """Every frame of every code flow whose function has a line in the ELF is at that file and
    line (the caller frames at their function's first line); the others are named only."""
    out = tmp_path / "usb.sarif"
    elf = sample_elf("usb_cdc_malloc_isr")
    irqmon("analyze", str(sample_trace("usb_cdc_malloc_isr")), "--elf", str(elf), "--format", "sarif",
           "-o", str(out), "--source-root", str(ROOT))  # fmt: skip
    log = json.loads(out.read_text())
    jsonschema.validate(log, json.loads(SARIF_SCHEMA_FILE.read_text(encoding="utf-8")))
    image = ElfImage(elf)
    flows = [r["codeFlows"][0]["threadFlows"][0]["locations"] for r in log["runs"][0]["results"] if "codeFlows" in r]
    placed = 0
    for steps in flows:
        for step in steps[1:]:
            location = step["location"]
            function = location["message"]["text"]
            symbol = image.symbols.get(function)
            source = image.source_line(symbol.address) if symbol and symbol.is_function else None
            if source is None:
                assert "physicalLocation" not in location, function
                continue
            physical = location["physicalLocation"]
            path, line = source.rsplit(":", 1)
            assert (ROOT / physical["artifactLocation"]["uri"]).resolve() == (ROOT / path).resolve()
            assert physical["region"]["startLine"] == int(line)
            placed += 1
    assert placed and all("physicalLocation" in steps[0]["location"] for steps in flows)
    malloc = next(r for r in log["runs"][0]["results"] if r["ruleId"] == "malloc-in-isr" and "malloc called" in r["message"]["text"])
    caller = malloc["codeFlows"][0]["threadFlows"][0]["locations"][2]["location"]  # USBD_CDC_Init
    physical = caller["physicalLocation"]
    start = physical["region"]["startLine"]
    opening = (ROOT / physical["artifactLocation"]["uri"]).read_text().splitlines()[start - 3 : start]  # name, `{`
    assert any(caller["message"]["text"] + "(" in line for line in opening)
