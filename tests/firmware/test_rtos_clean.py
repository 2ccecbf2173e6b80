"""rtos_clean and hal_clean, captured on QEMU (the default backend): the correct RTOS and HAL patterns the
analysis must stay silent on are in the trace (end-to-end checks the silence)."""

from __future__ import annotations

import pandas as pd
import pytest

from irqmon.tracefile import load_trace

CONTROL_SPSEL = 0x2


@pytest.fixture(scope="module")
def rtos_rows(sample_trace) -> pd.DataFrame:
    return load_trace(sample_trace("rtos_clean")).frame


@pytest.fixture(scope="module")
def hal_rows(sample_trace) -> pd.DataFrame:
    return load_trace(sample_trace("hal_clean")).frame


def test_a_send_to_a_mutex_is_a_release_and_to_a_queue_is_not(rtos_rows):
    """xSemaphoreGive is xQueueGenericSend: the capture reads the queue's pcHead at the call."""
    calls = rtos_rows[rtos_rows["event"] == "call"]
    mutexes = set(calls.loc[calls["symbol"] == "xQueueSemaphoreTake", "address"])
    sends = calls[calls["symbol"] == "xQueueGenericSend"]
    on_mutex = sends["address"].isin(mutexes)
    assert len(mutexes) == 1 and on_mutex.any() and (~on_mutex).any()
    assert set(sends.loc[on_mutex, "role"]) == {"release"}
    assert set(sends.loc[~on_mutex, "role"]) == {"api"}


def test_main_runs_on_the_main_stack_while_the_task_pointer_names_a_task(rtos_rows):
    """xTaskCreate makes a task current inside its critical section, before the scheduler runs."""
    thread_calls = rtos_rows[(rtos_rows["event"] == "call") & (rtos_rows["ipsr"] == 0)]
    main_stack = (thread_calls["control"] & CONTROL_SPSEL) == 0
    assert thread_calls.loc[main_stack, "task"].notna().any()
    tasks = set(thread_calls.loc[~main_stack, "task"])
    assert {"worker", "producer", "monitor"} <= tasks
    assert len([name for name in tasks if name.startswith("worker@0x")]) == 1  # the other task named worker


def test_blocked_tasks_switch_out_inside_kernel_calls(rtos_rows):
    """A task blocks in xQueueSemaphoreTake: other tasks run before its take returns."""
    in_tasks = rtos_rows[(rtos_rows["ipsr"] == 0) & rtos_rows["task"].notna()]
    takes = in_tasks[in_tasks["symbol"] == "xQueueSemaphoreTake"]
    others_between = []
    for call in takes[takes["event"] == "call"].itertuples():
        own = takes[(takes["task"] == call.task) & (takes["seq"] > call.seq)]
        returned = own.loc[own["event"] == "return", "seq"].min()
        between = in_tasks[(in_tasks["seq"] > call.seq) & (in_tasks["seq"] < returned)]
        others_between.append(set(between["task"]) - {call.task})
    assert any(others_between), others_between


def test_the_dma_lock_is_taken_in_thread_mode_and_released_by_the_completion_interrupt(hal_rows):
    lock = hal_rows[(hal_rows["event"] == "access") & (hal_rows["symbol"] == "hdma_memtomem.Lock") & (hal_rows["access"] == "w")]
    steps = list(zip(lock["ipsr"] > 0, lock["value"], strict=True))
    steps = steps[steps.index((False, 1)) :]  # after start-up's zeroing: main starts the first chunk
    assert (True, 0) in steps and steps.count((True, 1)) >= 2  # completion unlocks; the callback starts the next
    assert steps[-1] == (True, 0)
