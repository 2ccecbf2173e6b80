"""`irqmon analyze TRACE_OR_DIR…`: many recorded traces analysed one by one (in-process, on a
Dask scheduler with two workers started here, on a local Dask cluster), findings merged by
fingerprint; failed traces named, exit statuses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest
from fleetfarm import BUILD_A, BUILD_B, TRACES, make_farm
from support import ROOT, sample_elf
from test_cli import sarif_schema

import irqmon.fleet.run
from irqmon.analysis import analyze
from irqmon.cli import main
from irqmon.tracefile import load_trace

DASK = Path(sys.executable).parent / "dask"


def result_schema() -> dict:
    return json.loads(files("irqmon.output").joinpath("result.schema.json").read_text())


@pytest.fixture
def farm(tmp_path: Path) -> Path:
    return make_farm(tmp_path / "farm")


def fleet_json(*args: str, out: Path, status: int = 1) -> dict:
    assert main(["analyze", *args, "--format", "json", "-o", str(out)]) == status
    result = json.loads(out.read_text())
    jsonschema.validate(result, result_schema())
    return result


def by_fingerprint(result: dict) -> dict[str, dict]:
    return {f["fingerprint"]: f for f in result["findings"]}


def test_folder_merges_findings_by_fingerprint(farm, tmp_path):
    result = fleet_json(str(farm), out=tmp_path / "fleet.json")
    assert result["fleet"] == {"traces": 3, "analysed": 3, "failed": 0, "builds": [BUILD_A, BUILD_B]}
    assert [t["path"] for t in result["traces"]] == [str(farm / "night1/usb.csv"), str(farm / "night2/usb.csv"), str(farm / "night2/exti.csv")]
    assert all(t["seen_from"] == "capture start" and t["error"] is None for t in result["traces"])
    usb = analyze(load_trace(farm / "night1/usb.csv"))
    exti = analyze(load_trace(farm / "night2/exti.csv"))
    merged = by_fingerprint(result)
    assert set(merged) == {f.fingerprint for f in usb + exti} and len(merged) == len(usb) + len(exti)
    for finding in usb:
        sightings = merged[finding.fingerprint]["fleet"]
        assert sightings["traces"] == 2 and sightings["occurrences"] == 2 * finding.count
        assert sightings["builds"] == [BUILD_A, BUILD_B]
        assert sightings["first_seen"] == {"trace": str(farm / "night1/usb.csv"), "time": "2026-11-20T01:00:00+00:00"}
        assert sightings["last_seen"] == {"trace": str(farm / "night2/usb.csv"), "time": "2026-11-21T01:00:00+00:00"}
    for finding in exti:
        sightings = merged[finding.fingerprint]["fleet"]
        assert (sightings["traces"], sightings["builds"], sightings["seen_in"]) == (1, [BUILD_B], [str(farm / "night2/exti.csv")])
    assert result["summary"]["error"] == sum(1 for f in result["findings"] if f["severity"] == "error")
    named = fleet_json(str(farm / "night2"), str(farm / "night1/usb.csv"), out=tmp_path / "named.json")
    assert named["findings"] == result["findings"] and named["traces"] == result["traces"]


def test_trace_without_start_time_is_dated_by_its_file(farm, tmp_path):
    undated = farm / "night3" / "usb.csv"
    text = (farm / "night1/usb.csv").read_text()
    undated.parent.mkdir()
    undated.write_text("".join(line for line in text.splitlines(keepends=True) if not line.startswith("# start_time:")))
    os.utime(undated, (time.time(), datetime(2026, 11, 25, tzinfo=UTC).timestamp()))
    result = fleet_json(str(farm), out=tmp_path / "fleet.json")
    entry = next(t for t in result["traces"] if t["path"] == str(undated))
    assert entry["seen_from"] == "file modified" and entry["seen_at"].startswith("2026-11-25T00:00:00")
    usb = analyze(load_trace(undated))
    assert by_fingerprint(result)[usb[0].fingerprint]["fleet"]["last_seen"]["trace"] == str(undated)


def test_elf_serves_only_the_traces_of_its_build(farm, tmp_path, built_samples):
    elf = sample_elf("usb_cdc_malloc_isr")
    without = fleet_json(str(farm), out=tmp_path / "without.json")
    with_elf = fleet_json(str(farm), "--elf", str(elf), out=tmp_path / "with.json")  # built here: another build id
    assert with_elf["fleet"]["failed"] == 0 and with_elf["findings"] == without["findings"]
    assert main(["analyze", str(farm / "night1/usb.csv"), "--elf", str(elf)]) == 2  # one trace: refused as before


def test_baseline_of_a_fleet_result_leaves_nothing_new(farm, tmp_path):
    baseline = tmp_path / "fleet.json"
    fleet_json(str(farm), out=baseline)
    assert main(["analyze", str(farm), "--baseline", str(baseline), "--format", "concise"]) == 0


def test_malformed_trace_is_named_and_the_others_analysed(farm, tmp_path, capsys):
    bad = farm / "night2" / "broken.csv"
    bad.write_text("# irqmon-trace\n# schema: 1\nseq,time\n0,zero\n")
    result = fleet_json(str(farm), out=tmp_path / "fleet.json")
    error_lines = capsys.readouterr().err.splitlines()
    assert len(error_lines) == 1 and error_lines[0].startswith(f"irqmon: {bad}:")
    failed = [t for t in result["traces"] if t["error"] is not None]
    assert [t["path"] for t in failed] == [str(bad)] and failed[0]["error"] == error_lines[0].removeprefix("irqmon: ")
    assert result["fleet"]["analysed"] == 3 and result["fleet"]["failed"] == 1
    assert len(result["findings"]) == len(fleet_json(str(farm / "night1"), str(farm / "night2/exti.csv"), out=tmp_path / "ok.json")["findings"])
    sarif_out = tmp_path / "fleet.sarif"
    assert main(["analyze", str(farm), "--format", "sarif", "-o", str(sarif_out), "--exit-zero"]) == 0
    run = json.loads(sarif_out.read_text())["runs"][0]
    jsonschema.validate(json.loads(sarif_out.read_text()), sarif_schema())
    notification = run["invocations"][0]["toolExecutionNotifications"]
    assert [n["message"]["text"] for n in notification] == [failed[0]["error"]]
    assert run["invocations"][0]["executionSuccessful"] is True


def test_missing_trace_is_named_and_the_others_analysed(farm, tmp_path, capsys):
    missing = farm / "night3" / "gone.csv"
    result = fleet_json(str(farm), str(missing), "--exit-zero", out=tmp_path / "fleet.json", status=0)
    assert capsys.readouterr().err.strip() == f"irqmon: {missing}: cannot read: No such file or directory"
    assert (result["fleet"]["analysed"], result["fleet"]["failed"]) == (3, 1)


def test_every_trace_malformed_exits_2(tmp_path, capsys):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "empty.csv").write_bytes(b"")
    (folder / "text.parquet").write_text("not parquet")
    assert main(["analyze", str(folder), "--format", "json", "-o", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"irqmon: {folder / 'empty.csv'}: empty file, not a trace"
    assert err[1].startswith(f"irqmon: {folder / 'text.parquet'}:")
    assert err[2] == "irqmon: no trace could be analysed (2 failed)" and len(err) == 3
    assert json.loads((tmp_path / "r.json").read_text())["fleet"]["analysed"] == 0


def test_folder_without_traces_is_bad_input(tmp_path, capsys):
    assert main(["analyze", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == f"irqmon: {tmp_path}: no *.csv or *.parquet trace in this folder"


def test_every_format_has_one_entry_per_merged_finding(farm, tmp_path, capsys):
    merged = fleet_json(str(farm), out=tmp_path / "fleet.json")["findings"]
    main(["analyze", str(farm), "--format", "concise"])
    concise = capsys.readouterr().out.splitlines()
    assert len(concise) == len(merged)
    usb_line = next(line for line in concise if "malloc-in-isr" in line)
    assert usb_line.endswith(f"[error] (2 of 3 traces, 2 builds, first {farm / 'night1/usb.csv'}, last {farm / 'night2/usb.csv'})")
    main(["analyze", str(farm), "--format", "github"])
    github = capsys.readouterr().out.splitlines()
    assert len(github) == len(merged) and all(line.startswith("::error ") and "Seen in " in line for line in github)
    main(["analyze", str(farm), "--format", "table", "--color", "never"])
    table = capsys.readouterr().out
    assert "3 traces (3 analysed, 2 build(s))" in table and "2/3" in table and BUILD_B[:12] in table
    sarif_out = tmp_path / "fleet.sarif"
    main(["analyze", str(farm), "--format", "sarif", "-o", str(sarif_out)])
    log = json.loads(sarif_out.read_text())
    jsonschema.validate(log, sarif_schema())
    results = log["runs"][0]["results"]
    assert len(log["runs"]) == 1 and len(results) == len(merged)
    for result, finding in zip(results, merged, strict=True):
        assert result["partialFingerprints"]["irqmonSite/v1"] == finding["fingerprint"]
        assert result["occurrenceCount"] == finding["fleet"]["occurrences"]
        assert result["properties"]["traces"] == finding["fleet"]["traces"]
        assert result["properties"]["builds"] == finding["fleet"]["builds"]


def test_one_trace_keeps_the_single_trace_result(tmp_path):
    result = fleet_json(str(TRACES / "exti_imr_rmw_race.csv"), out=tmp_path / "one.json")
    assert "trace" in result and "traces" not in result and "fleet" not in result
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**result, "traces": []}, result_schema())


def test_dask_without_distributed_names_the_extra(farm, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` fails as if not installed
    assert main(["analyze", str(farm), "--dask"]) == 2
    assert capsys.readouterr().err.strip() == "irqmon: --dask needs dask[distributed] (pip install 'irqmon[fleet]')"


def test_dask_given_a_trace_as_its_address(farm, capsys):
    assert main(["analyze", "--dask", str(farm)]) == 2
    assert "not a scheduler address" in capsys.readouterr().err


@contextmanager
def dask_cluster(directory: Path, workers: int) -> Iterator[str]:
    """A Dask scheduler and `workers` single-thread workers on 127.0.0.1 (random ports), as
    processes; its address."""
    scheduler_file = directory / "scheduler.json"
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    common = ["--no-dashboard", "--host", "127.0.0.1"]
    processes = [subprocess.Popen([str(DASK), "scheduler", "--port", "0", "--scheduler-file", str(scheduler_file), *common],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(scheduler_file.read_text())["address"]
        for index in range(workers):
            processes.append(subprocess.Popen([str(DASK), "worker", address, "--nthreads", "1", "--name", f"w{index}", *common],
                                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # fmt: skip
        if workers:
            from distributed import Client

            with Client(address, timeout="30s") as client:
                client.wait_for_workers(workers, timeout=30)
        yield address
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def scheduler(tmp_path: Path) -> Iterator[str]:
    """A Dask scheduler with two workers."""
    with dask_cluster(tmp_path, workers=2) as address:
        yield address


def test_dask_scheduler_without_workers_gives_up_in_one_line(farm, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(irqmon.fleet.run, "WORKERS_TIMEOUT", 2)
    with dask_cluster(tmp_path, workers=0) as address:
        assert main(["analyze", str(farm), "--dask", address]) == 2
    assert capsys.readouterr().err.strip() == f"irqmon: --dask {address}: the scheduler has had no worker for 2 s"


def test_dask_scheduler_gives_the_sequential_result(farm, scheduler, tmp_path, capsys):
    (farm / "night2" / "broken.csv").write_bytes(b"")
    sequential = fleet_json(str(farm), out=tmp_path / "sequential.json")
    capsys.readouterr()
    assert scheduler.startswith("tcp://127.0.0.1:")
    on_dask = fleet_json(str(farm), "--dask", scheduler, out=tmp_path / "dask.json")
    assert on_dask == sequential
    assert capsys.readouterr().err.strip() == f"irqmon: {farm / 'night2' / 'broken.csv'}: empty file, not a trace"


def test_dask_local_cluster_gives_the_sequential_result(farm, tmp_path):
    sequential = fleet_json(str(farm), out=tmp_path / "sequential.json")
    assert fleet_json(str(farm), "--dask", out=tmp_path / "dask.json") == sequential


def test_rules_that_stream_judge_each_trace_in_batches(farm, tmp_path):
    """With only rules that judge a trace in batches, each trace is read in batches: the merged
    findings are those of each trace's whole-trace analysis."""
    rules = ["malloc-in-isr", "mutex-in-isr"]
    result = fleet_json(str(farm), "--rules", ",".join(rules), out=tmp_path / "fleet.json")
    assert result["fleet"]["analysed"] == 3
    usb = analyze(load_trace(farm / "night1/usb.csv"), rules=rules)
    assert usb and set(by_fingerprint(result)) == {f.fingerprint for f in usb}
    assert all(by_fingerprint(result)[f.fingerprint]["fleet"]["occurrences"] == 2 * f.count for f in usb)
