"""The comparator planner, rotation and coverage: plans that fit the chip, bad input, every
sample under the stm32f405 budget on real QEMU through real gdb, and nothing left armed."""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path

import pytest

from irqmon.capture.budget import arming_plan
from irqmon.cortexm.elf import ElfImage
from irqmon.probes import plan_capture
from irqmon.targets import load_target
from irqmon.tracefile import load_trace
from support import (
    expected, irqmon, register_backends, sample_elf, sample_names, start_irqmon, stderr_once_ended, text_written,
)  # fmt: skip

F405 = load_target("stm32f405")
TEST_ROTATION = "20ms"  # the samples run for about 0.25 s under capture: 5 sets, alternating with the first, each get a turn
ATTEMPTS = 3  # a rotated capture sees each site part of the time: a run may miss a bug's few events


def _arming(sample: str, reserved: int = 0):
    elf = ElfImage(sample_elf(sample))
    plan = plan_capture(elf, F405, None)
    return plan, arming_plan(plan, elf, F405, unlimited=False, reserved_breakpoints=reserved)


@pytest.mark.parametrize("sample", sample_names())
def test_every_set_fits_and_every_probe_is_in_one_site(built_samples, sample):
    plan, arming = _arming(sample, reserved=1)
    for armed in arming.sets:
        assert sum(s.breakpoints for s in armed) <= F405.fpb_comparators - 1
        assert sum(s.watchpoints for s in armed) <= F405.dwt_comparators
    in_sets = {id(site) for armed in arming.sets for site in armed}
    assert in_sets == {id(site) for site in arming.sites}
    probes = [id(p) for site in arming.sites for p in (*site.functions, *site.masks, *site.watches)]
    assert sorted(probes) == sorted(id(p) for p in (*plan.functions, *plan.masks, *plan.watches))


def test_ranking_arms_what_isr_rules_need_first_and_keeps_pairs_together(built_samples):
    _, arming = _arming("usb_cdc_malloc_isr")
    assert {site.kind for site in arming.first} == {"heap"}  # heap before mutex, by kind
    mutex = [site for site in arming.sites if site.kind == "mutex"]
    assert [site.name for site in mutex] == ["osMutexAcquire+osMutexRelease"] and mutex[0].breakpoints == 3
    _, arming = _arming("printf_tasks_critical")
    # Reached from a handler by direct calls: ranked before the thread-only sites.
    assert all(site.in_handlers for site in arming.first)
    assert not next(site for site in arming.sites if site.name == "printf").in_handlers



def test_a_give_recognised_by_its_object_marker_is_armed_with_the_takes(built_samples):
    plan, arming = _arming("rtos_clean")
    givers = [p for p in plan.functions if p.object_marker and p.object_marker.role == "release"]
    assert givers
    for giver in givers:
        site = next(site for site in arming.sites if giver in site.functions)
        assert site.kind == "mutex"
        assert any(p.role == "acquire" and p.probe == giver.probe for p in site.functions)

def test_unlimited_arms_everything_at_once(built_samples):
    elf = ElfImage(sample_elf("clean"))
    plan = plan_capture(elf, F405, None)
    arming = arming_plan(plan, elf, F405, unlimited=True)
    assert len(arming.sets) == 1 and not arming.left_out


def _profile(tmp_path: Path, fpb: int, dwt: int) -> Path:
    text = (Path(__file__).parents[1] / "irqmon" / "targets" / "stm32f405.toml").read_text()
    text = re.sub(r"(?m)^fpb_comparators = \d+", f"fpb_comparators = {fpb}", text)
    text = re.sub(r"(?m)^dwt_comparators = \d+", f"dwt_comparators = {dwt}", text)
    path = tmp_path / "tiny.toml"
    path.write_text(text)
    return path


def test_a_site_no_comparator_set_can_hold_is_bad_input(built_samples, tmp_path):
    no_dwt = irqmon("attach", "--target", str(_profile(tmp_path, 6, 0)), "--qemu", str(sample_elf("hal_i2c_lock_deadlock")),
                    "--backend", "gdb", "-o", str(tmp_path / "t.csv"))  # fmt: skip
    assert no_dwt.returncode == 2
    assert no_dwt.stderr.strip().splitlines() == [
        "irqmon: probe site hi2c1.Lock (stm32_hal_lock) alone needs 1 DWT comparators but tiny has 0 DWT free: "
        "drop it with --probes (or its --watch)"
    ]
    one_fpb = irqmon("attach", "--target", str(_profile(tmp_path, 1, 4)), "--qemu", str(sample_elf("usb_cdc_malloc_isr")),
                     "--probes", "newlib_heap", "--backend", "gdb", "-o", str(tmp_path / "t.csv"))  # fmt: skip
    assert one_fpb.returncode == 2 and "Traceback" not in one_fpb.stderr
    assert "probe site malloc (newlib_heap) alone needs 2 FPB" in one_fpb.stderr  # entry and return
    until = irqmon("attach", "--target", str(_profile(tmp_path, 0, 4)), "--qemu", str(sample_elf("exti_imr_rmw_race")),
                   "--backend", "gdb", "--until", "sample_done", "-o", str(tmp_path / "t.csv"))  # fmt: skip
    assert until.returncode == 2 and "--until needs an FPB comparator but tiny has 0" in until.stderr
    assert not (tmp_path / "t.csv").exists()


def test_a_watched_range_no_dwt_mask_covers_is_bad_input(built_samples, tmp_path):
    # 32 KiB from an odd address: the aligned block around it is 64 KiB, the DWT masks 2^15 bytes.
    result = irqmon("attach", "--target", "stm32f405", "--qemu", str(sample_elf("exti_imr_rmw_race")), "--backend", "gdb",
                    "--watch", "0x20000001:32768", "-o", str(tmp_path / "t.csv"))  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "irqmon: watch 0x20000001 (32768 bytes at 0x20000001): the aligned block a DWT comparator would cover is "
        "65536 bytes at 0x20000000, but stm32f405's DWT masks at most 32768 bytes (2^15): watch a smaller range"
    ]
    assert not (tmp_path / "t.csv").exists()


def test_a_watched_range_takes_one_masked_comparator(built_samples, tmp_path):
    """EXTI_IMR..EXTI_FTSR as one 16-byte range: one DWT comparator (Z4 of length 16 on the wire),
    and the race on EXTI_IMR is still found, at the range's address."""
    trace = tmp_path / "w.csv"
    result = irqmon("attach", "--target", "stm32f405", "--qemu", str(sample_elf("exti_imr_rmw_race")), "--backend", "gdb",
                    "--probes", "critical_sections", "--watch", "0x40013C00:16", "--until", "sample_done", "-v", "-q", "-o", str(trace))  # fmt: skip
    assert result.returncode == 0, result.stderr
    traffic = trace.with_suffix(".traffic.log").read_text(errors="replace")
    assert set(re.findall(r"\$Z([2-4]),([0-9a-f]+),([0-9a-f]+)#", traffic)) == {("4", "40013c00", "10")}
    rows = load_trace(trace).frame.query("event == 'access'")
    assert (rows["size"] == 16).all() and rows["value"].isna().all() and set(rows["access"]) == {"r", "w"}
    race = [f for f in _findings(trace, tmp_path) if f["rule"] == "rmw-race"]
    assert race and race[0]["severity"] == "error" and race[0]["address"] == 0x40013C00


def _findings(trace: Path, tmp_path: Path) -> list[dict]:
    irqmon("analyze", str(trace), "--format", "json", "-o", str(tmp_path / "f.json"))
    return json.loads((tmp_path / "f.json").read_text())["findings"]


@pytest.mark.parametrize("sample", sample_names())
def test_every_sample_under_the_chip_budget_with_rotation(built_samples, sample, tmp_path):
    """`--backend gdb` on stm32f405's 6 FPB and 4 DWT comparators, in turns: each sample's
    expected rules as errors, nothing else as an error or warning."""
    wanted = set(expected(sample)["rules"])
    for _ in range(ATTEMPTS):
        trace = tmp_path / "t.csv"
        result = irqmon("attach", "--target", "stm32f405", "--qemu", str(sample_elf(sample)), "--backend", "gdb",
                        "--rotate", TEST_ROTATION, "--until", "sample_done", "-o", str(trace))  # fmt: skip
        assert result.returncode == 0, result.stderr
        findings = _findings(trace, tmp_path)
        serious = {f["rule"] for f in findings if f["severity"] in ("error", "warning")}
        assert serious <= wanted, f"unexpected {serious - wanted}: " + "; ".join(f["title"] for f in findings if f["rule"] in serious - wanted)
        if serious == wanted:
            break
    assert serious == wanted, f"missing {wanted - serious} in {ATTEMPTS} captures"
    coverage = load_trace(trace).frame.query("event == 'coverage'")
    assert (coverage.groupby("symbol")["value"].last() == 0).all(), "every site disarmed at the end"
    notes = {f["rule"] for f in findings if f["severity"] == "note"}
    assert ("probe-coverage" in notes) == ("rotated every" in result.stderr)


@pytest.mark.parametrize("wrapped", ["gdb", "rsp"])
def test_a_stop_only_a_rotation_halt_meets_still_counts(built_samples, wrapped, tmp_path, monkeypatch):
    """The target reaches a breakpoint after the capture's poll and before its rotation halts
    the core: that halt finds the stop, and its events are captured. When it is `--until`'s, the
    capture ends there (it went on until its time ran out). A backend that reports no stop by
    itself makes every stop that late."""
    monkeypatch.setenv("PYTHONPATH", register_backends(tmp_path / "site", "late-stops-backend", {"late-stops": "late_stops:BACKEND"}))
    sample = "printf_tasks_critical"  # 17 sites in 5 sets on the F405
    trace = tmp_path / "late.csv"
    result = irqmon("attach", "--target", "stm32f405", "--qemu", str(sample_elf(sample)), "--backend", "late-stops",
                    "--late-over", wrapped, "--rotate", TEST_ROTATION, "--until", "sample_done", "--duration", "60",
                    "-o", str(trace))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "ended by reached --until" in result.stderr, result.stderr
    assert expected(sample)["done_marker"] in trace.with_suffix(".usart1.log").read_text()
    frame = load_trace(trace).frame
    assert (frame["event"] == "call").any()  # found only at rotations' halts
    coverage = frame.query("event == 'coverage'")
    assert (coverage.groupby("symbol")["value"].last() == 0).all(), "every site disarmed at the end"


def test_no_rotate_says_what_is_left_out_and_the_rules_that_saw_nothing(built_samples, tmp_path):
    trace = tmp_path / "pinned.csv"
    result = irqmon("attach", "--target", "stm32f405", "--qemu", str(sample_elf("usb_cdc_malloc_isr")), "--backend", "gdb",
                    "--no-rotate", "--until", "sample_done", "-o", str(trace))  # fmt: skip
    assert result.returncode == 0, result.stderr
    # --until keeps one of the 6 FPB comparators: the heap's 5 fit, the mutex pair does not.
    assert re.search(r"not armed \(--no-rotate\): [^\n]*osMutexAcquire\+osMutexRelease", result.stderr), result.stderr
    findings = _findings(trace, tmp_path)
    by_rule = {f["rule"]: f for f in findings}
    assert by_rule["malloc-in-isr"]["severity"] == "error"
    assert by_rule["mutex-in-isr"]["severity"] == "note" and "not observed" in by_rule["mutex-in-isr"]["title"]
    assert by_rule["mutex-in-isr"]["evidence"]["never_armed"] == ["osMutexAcquire+osMutexRelease"]
    assert "osMutexAcquire+osMutexRelease" in by_rule["probe-coverage"]["title"].split("never armed: ")[1]


def _points_on_the_wire(traffic_log: Path) -> tuple[int, int, set[str]]:
    """From gdb's remote-protocol log: the most FPB (Z1) and DWT (Z2-Z4) comparators inserted
    when the target was resumed, and what was still inserted after the last packet."""
    inserted: set[str] = set()
    most_fpb = most_dwt = 0
    for line in traffic_log.read_text(errors="replace").splitlines():
        match = re.match(r"w \+?\$([Zz])([1-4]),([0-9a-f]+),([0-9a-f]+)#", line)
        if match:
            point = f"{match[2]},{match[3]},{match[4]}"
            (inserted.add if match[1] == "Z" else inserted.discard)(point)
        elif re.match(r"w \+?\$(vCont;[cC]|c)", line):
            most_fpb = max(most_fpb, sum(p.startswith("1,") for p in inserted))
            most_dwt = max(most_dwt, sum(not p.startswith("1,") for p in inserted))
    return most_fpb, most_dwt, inserted


def test_rotation_stays_within_the_comparators_and_leaves_none_armed(built_samples, tmp_path):
    trace = tmp_path / "r.csv"
    result = irqmon("attach", "--target", "stm32f405", "--qemu", str(sample_elf("clean")), "--backend", "gdb",
                    "--rotate", TEST_ROTATION, "--until", "sample_done", "-v", "-o", str(trace))  # fmt: skip
    assert result.returncode == 0, result.stderr
    most_fpb, most_dwt, left = _points_on_the_wire(trace.with_suffix(".traffic.log"))
    assert 0 < most_fpb <= F405.fpb_comparators and 0 < most_dwt <= F405.dwt_comparators
    assert not left, f"left armed: {left}"
    coverage = load_trace(trace).frame.query("event == 'coverage'")
    assert coverage.groupby("symbol")["value"].sum().max() >= 2, "a set armed again: the capture rotated"
    report = irqmon("report", str(trace), "-o", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr
    text = (tmp_path / "report" / "report.md").read_text()
    table = text.split("### Probe coverage", 1)[1].split("\n\n")[2].splitlines()
    assert table[0] == "| probe site | kind | armed (ms) | share of the capture | turns |"
    assert len(table) == 2 + coverage["symbol"].nunique()  # a row per site
    assert "Probe coverage" in (tmp_path / "report" / "report.html").read_text()


def test_ctrl_c_during_rotation_leaves_none_armed(built_samples, tmp_path):
    trace = tmp_path / "c.csv"
    process = start_irqmon("attach", "--target", "stm32f405", "--qemu", str(sample_elf("printf_tasks_critical")), "--backend", "gdb",
                           "--rotate", TEST_ROTATION, "-v", "-q", "-o", str(trace))  # fmt: skip
    deadline = time.monotonic() + 60
    while text_written(trace).count(",coverage,") <= 40:  # several turns
        assert time.monotonic() < deadline and process.poll() is None, "the capture did not rotate"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stderr = stderr_once_ended(process)
    assert process.returncode == 0 and "Ctrl-C" in stderr, stderr
    _, _, left = _points_on_the_wire(trace.with_suffix(".traffic.log"))
    assert not left, f"left armed: {left}"
    coverage = load_trace(trace).frame.query("event == 'coverage'")
    assert (coverage.groupby("symbol")["value"].last() == 0).all()


@pytest.mark.parametrize(("value", "message"), [("0ms", "not a positive duration"), ("soon", "not a duration"), ("inf", "not a positive duration")])
def test_bad_rotation_periods_are_refused(built_samples, tmp_path, value, message):
    result = irqmon("attach", "--target", "stm32f405", "--qemu", str(sample_elf("clean")), "--backend", "gdb",
                    "--rotate", value, "-o", str(tmp_path / "t.csv"))  # fmt: skip
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "t.csv").exists()
