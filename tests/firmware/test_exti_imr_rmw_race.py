"""exti_imr_rmw_race (seed 001): EXTI0's `IMR &= ~line0` is preempted by EXTI1 between its load
and store, so EXTI1's update of EXTI_IMR is lost. A gdb access watchpoint on the real register
sees the four accesses in that order and the final value shows line 1 unmasked again."""

from __future__ import annotations

import re

import pytest

from support import expected, run_under_gdb, sample_elf

SAMPLE = "exti_imr_rmw_race"
EXTI_IMR = 0x40013C00
EXTI0_EXCEPTION = 16 + 6
EXTI1_EXCEPTION = 16 + 7
ACCESS = re.compile(
    r"(?:\nValue = (?P<read>\d+)|Old value = (?P<old>\d+)\s+New value = (?P<new>\d+))"
    r".*?\naccess ipsr=(?P<ipsr>\d+)",
    re.S,
)


@pytest.fixture(scope="module")
def run(built_samples):
    commands = [
        "break EXTI0_IRQHandler",
        "continue",
        f"awatch *(unsigned *){EXTI_IMR:#x}",
    ]
    for _ in range(4):
        commands += ["continue", 'printf "access ipsr=%d\\n", $xpsr & 0x1ff', "bt"]
    commands += [
        "delete",
        "break sample_done",
        "continue",
        f'printf "final imr=%d\\n", *(unsigned *){EXTI_IMR:#x}',
    ]
    return run_under_gdb(sample_elf(SAMPLE), commands, timeout=30)


def test_imr_accesses_interleave_across_priorities(run):
    accesses = [
        ("r", int(m["read"]), int(m["ipsr"])) if m["read"] else
        ("w", (int(m["old"]), int(m["new"])), int(m["ipsr"]))
        for m in ACCESS.finditer(run.gdb_output)
    ]  # fmt: skip
    assert accesses == [
        ("r", 0b11, EXTI0_EXCEPTION),  # EXTI0 loads IMR
        ("r", 0b11, EXTI1_EXCEPTION),  # EXTI1 preempts and loads the same value
        ("w", (0b11, 0b01), EXTI1_EXCEPTION),  # EXTI1 masks line 1
        ("w", (0b01, 0b10), EXTI0_EXCEPTION),  # EXTI0 stores its stale copy: line 1 back on
    ], run.gdb_output


def test_exti1_runs_nested_inside_exti0(run):
    """At EXTI1's accesses the stack shows EXTI1 on top of EXTI0 on top of main."""
    backtraces = re.findall(r"^#0 .*?(?=^access ipsr|^Breakpoint|\Z)", run.gdb_output, re.M | re.S)
    frame = re.compile(r"^#\d+\s+(?:0x[0-9a-f]+ in )?(<signal handler called>|\w+)", re.M)
    handler_chains = [
        [name for name in frame.findall(bt) if name.endswith("_IRQHandler") or name == "main"]
        for bt in backtraces
    ]
    assert ["EXTI1_IRQHandler", "EXTI0_IRQHandler", "main"] in handler_chains, run.gdb_output


def test_final_imr_shows_the_lost_update(run):
    assert "final imr=2" in run.gdb_output, run.gdb_output
    exp = expected(SAMPLE)
    assert exp["bug_marker"] in run.serial
    assert run.serial.rstrip().endswith(exp["done_marker"])
