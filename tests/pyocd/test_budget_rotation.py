"""The pyOCD backend under a real chip's comparator budget: on the QEMU bridge, which presents the
stm32f746 profile's 8 FPB (revision 2) and 4 DWT comparators, the planner's sets rotate and
the samples' rules are still found, and the trace says every site was disarmed at the end."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bridge_support import capture_with_pyocd
from irqmon.capture.budget import arming_plan
from irqmon.cortexm.elf import ElfImage
from irqmon.probes import plan_capture
from irqmon.targets import load_target
from irqmon.tracefile import load_trace
from support import expected, sample_elf

F746 = load_target("stm32f746")
ATTEMPTS = 3  # a rotated capture sees each site part of the time


def _rules(trace) -> set[str]:
    result = subprocess.run([sys.executable, "-m", "irqmon", "analyze", str(trace), "--format", "json"], capture_output=True, text=True, check=False)
    assert result.returncode in (0, 1), result.stderr
    return {f["rule"] for f in json.loads(result.stdout)["findings"] if f["severity"] in ("error", "warning")}


@pytest.mark.parametrize("sample", ["usb_cdc_malloc_isr", "hal_i2c_lock_deadlock"])
def test_samples_under_the_f746_budget_through_pyocd(built_samples, sample, tmp_path):
    elf = sample_elf(sample)
    image = ElfImage(elf)
    arming = arming_plan(plan_capture(image, F746, None), image, F746, unlimited=False, reserved_breakpoints=1)
    assert arming.rotates == (sample == "usb_cdc_malloc_isr")  # 10 breakpoints there, 7 free
    wanted = set(expected(sample)["rules"])
    for _ in range(ATTEMPTS):
        trace = tmp_path / "t.csv"
        summary, serial = capture_with_pyocd(elf, trace, target_name="stm32f746", unlimited=False, rotate_seconds=0.05)
        assert not summary.error, summary.error
        assert expected(sample)["done_marker"] in serial
        found = _rules(trace)
        assert found <= wanted, f"unexpected {found - wanted}"
        if found == wanted:
            break
    assert found == wanted
    coverage = load_trace(trace).frame.query("event == 'coverage'")
    assert (coverage.groupby("symbol")["value"].last() == 0).all()
    if arming.rotates:
        assert coverage.groupby("symbol")["value"].sum().max() >= 2, "the sets rotated"
