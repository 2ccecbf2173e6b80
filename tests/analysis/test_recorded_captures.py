"""Regression on traces captured from the firmware samples on QEMU (tests/analysis/traces/):
each reports the rules of its expected.toml and no other error; clean reports no error or warning.

The live version (capture, then analyze) is the end-to-end test over firmware_samples/; these
recorded captures keep the analyzer checked without QEMU."""

from __future__ import annotations

import json
import tomllib
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest
from test_cli import sarif_schema

from irqmon.analysis import analyze
from irqmon.cli import main
from irqmon.tracefile import load_trace

TRACES = Path(__file__).parent / "traces"
SAMPLES = Path(__file__).resolve().parents[2] / "firmware_samples"


def expected_rules(sample: str) -> set[str]:
    return set(tomllib.loads((SAMPLES / sample / "expected.toml").read_text())["rules"])


@pytest.mark.parametrize("sample", sorted(p.stem for p in TRACES.glob("*.csv")))
def test_json_result_matches_its_schema(sample, tmp_path):
    out = tmp_path / "result.json"
    main(["analyze", str(TRACES / f"{sample}.csv"), "--format", "json", "-o", str(out)])
    schema = json.loads(files("irqmon.output").joinpath("result.schema.json").read_text())
    result = json.loads(out.read_text())
    jsonschema.validate(result, schema)
    for finding in result["findings"]:
        broken = {**result, "findings": [{**finding, "fingerprint": "not-hex"}]}
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema)


@pytest.mark.parametrize("sample", sorted(p.stem for p in TRACES.glob("*.csv")))
def test_recorded_capture_reports_its_rules(sample):
    findings = analyze(load_trace(TRACES / f"{sample}.csv"))
    wanted = expected_rules(sample)
    reported = {f.rule for f in findings}
    assert wanted <= reported
    assert {f.rule for f in findings if f.severity == "error"} <= wanted
    if not wanted:
        assert [f.title for f in findings if f.severity in ("error", "warning")] == []


def test_sarif_points_at_the_malloc_call_in_usb_cdc_sample(tmp_path):
    """From the trace's own source column: the recorded capture's ELF was built in another
    checkout (another build id), so it is not used."""
    out = tmp_path / "usb.sarif"
    args = ["analyze", str(TRACES / "usb_cdc_malloc_isr.csv"), "--no-elf", "--format", "sarif", "-o", str(out),
            "--source-root", str(SAMPLES.parent)]  # fmt: skip
    assert main(args) == 1
    log = json.loads(out.read_text())
    jsonschema.validate(log, sarif_schema())
    result = next(r for r in log["runs"][0]["results"] if r["ruleId"] == "malloc-in-isr" and "malloc called" in r["message"]["text"])
    location = result["locations"][0]["physicalLocation"]
    path = location["artifactLocation"]["uri"]
    line = (SAMPLES.parent / path).read_text().splitlines()[location["region"]["startLine"] - 1]
    assert path == "firmware_samples/usb_cdc_malloc_isr/usbd_conf.c" and "malloc(" in line
