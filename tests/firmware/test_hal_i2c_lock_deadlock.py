"""hal_i2c_lock_deadlock (seed 004): gdb stops inside I2C1_EV's XferISR while the task that holds
hi2c1.Lock sits in its TXIS wait below the exception frame, and again 100 entries later with thread
mode not one loop further (storm 1); stops in I2C_ITError from I2C1_ER unlocking the task's lock,
then in I2C1_EV with XferISR NULL (storm 2); and sees the workaround's ISR unlock the task's lock."""

from __future__ import annotations

import re

import pytest

from support import expected, run_under_gdb, sample_elf

SAMPLE = "hal_i2c_lock_deadlock"
I2C1_EV_EXCEPTION = 16 + 31
I2C1_ER_EXCEPTION = 16 + 32
I2C1_EV_IPR = 0xE000E400 + 31
SYSTICK_SHPR = 0xE000ED18 + 15 - 4
SKIPPED_ENTRIES = 40
RXNE = 1 << 2
STATE = (
    'printf "== {tag} lock=%d ipsr=%d loops=%u xferisr=%u\\n", '
    "hi2c1.Lock, $xpsr & 0x1ff, thread_wait_loops, hi2c1.XferISR"
)
PRIORITIES = (
    f'printf "== priorities ev=%d systick=%d\\n", '
    f"*(unsigned char *){I2C1_EV_IPR:#x}, *(unsigned char *){SYSTICK_SHPR:#x}"
)
STOP = re.compile(
    r"^== (?P<tag>[\w-]+) lock=(?P<lock>\d+) ipsr=(?P<ipsr>\d+) loops=(?P<loops>\d+) xferisr=(?P<xferisr>\d+)\n"
    r"(?P<bt>(?:#\d+ .*\n)*)",
    re.M,
)


def at_stop(tag: str) -> list[str]:
    return [STATE.format(tag=tag), "bt"]


@pytest.fixture(scope="module")
def run(built_samples):
    commands = [
        "break I2C_Master_ISR_IT", "continue", *at_stop("storm1-first"),
        PRIORITIES,
        f"ignore 1 {SKIPPED_ENTRIES}", "continue", *at_stop("storm1-later"),
        "delete", "break I2C_ITError", "continue", *at_stop("error-path"),
        "delete", f"break HAL_I2C_EV_IRQHandler if hi2c1.XferISR == 0 && (I2C1_Regs.ISR & {RXNE})",
        "continue", *at_stop("storm2-first"),
        f"ignore 3 {SKIPPED_ENTRIES}", "continue", *at_stop("storm2-later"),
        "delete", "break I2C1_EV_IRQHandler if force_unlock_in_isr", "continue", *at_stop("workaround-entry"),
        "delete", "break HAL_I2C_EV_IRQHandler", "continue", *at_stop("workaround-unlocked"),
        "delete", "break sample_done", "continue", *at_stop("done"),
    ]  # fmt: skip
    result = run_under_gdb(sample_elf(SAMPLE), commands)
    stops = {m["tag"]: m for m in STOP.finditer(result.gdb_output)}
    return result, stops


def frames(stop: re.Match) -> list[str]:
    return re.findall(r"^#\d+\s+(?:0x[0-9a-f]+ in )?(<signal handler called>|\w+)", stop["bt"], re.M)


def thread_frames(stop: re.Match) -> list[str]:
    names = frames(stop)
    return names[names.index("<signal handler called>") + 1 :]


def test_priorities_as_the_seed(run):
    result, _ = run
    assert "== priorities ev=48 systick=16" in result.gdb_output, result.gdb_output


def test_isr_meets_the_lock_the_task_holds(run):
    result, stops = run
    first = stops["storm1-first"]
    assert (int(first["lock"]), int(first["ipsr"])) == (1, I2C1_EV_EXCEPTION), result.gdb_output
    assert frames(first)[:3] == ["I2C_Master_ISR_IT", "HAL_I2C_EV_IRQHandler", "I2C1_EV_IRQHandler"]
    thread = thread_frames(first)
    waiting = thread[thread.index("I2C_WaitOnTXISFlagUntilTimeout") :]  # or in HAL_GetTick it calls
    assert waiting[:3] == ["I2C_WaitOnTXISFlagUntilTimeout", "I2C_RequestMemoryRead", "HAL_I2C_Mem_Read_IT"]


def test_storm_starves_thread_mode(run):
    """40 entries later the lock is still held and the task's wait loop has not turned once."""
    result, stops = run
    first, later = stops["storm1-first"], stops["storm1-later"]
    assert (int(later["lock"]), int(later["ipsr"])) == (1, I2C1_EV_EXCEPTION), result.gdb_output
    assert later["loops"] == first["loops"]


def test_error_path_in_isr_unlocks_the_tasks_lock_and_drops_xfer_isr(run):
    result, stops = run
    error = stops["error-path"]
    assert (int(error["lock"]), int(error["ipsr"])) == (1, I2C1_ER_EXCEPTION), result.gdb_output
    assert "HAL_I2C_Mem_Read_IT" in thread_frames(error)
    first, later = stops["storm2-first"], stops["storm2-later"]
    assert (int(first["xferisr"]), int(first["ipsr"])) == (0, I2C1_EV_EXCEPTION), result.gdb_output
    storm2_thread = thread_frames(first)
    assert "storm_on_null_xfer_isr" in storm2_thread  # the task went on past the bus error
    assert "I2C_RequestMemoryRead" not in storm2_thread
    assert int(later["ipsr"]) == I2C1_EV_EXCEPTION and later["loops"] == first["loops"]


def test_workaround_unlocks_from_the_isr(run):
    result, stops = run
    entry, unlocked = stops["workaround-entry"], stops["workaround-unlocked"]
    assert (int(entry["lock"]), int(entry["ipsr"])) == (1, I2C1_EV_EXCEPTION), result.gdb_output
    assert (int(unlocked["lock"]), int(unlocked["ipsr"])) == (0, I2C1_EV_EXCEPTION)
    assert "HAL_I2C_Mem_Read_IT" in thread_frames(unlocked)  # the task still thinks it holds it


def test_serial_reports_the_storm_and_finishes(run):
    result, stops = run
    assert frames(stops["done"])[0] == "sample_done", result.gdb_output
    exp = expected(SAMPLE)
    assert exp["bug_marker"] in result.serial
    assert "transfer 2 never completed" in result.serial
    assert result.serial.rstrip().endswith(exp["done_marker"])
