"""The report's model on hand-placed IRQ rows: nesting, self time, open activations, windows."""

from __future__ import annotations

from pathlib import Path

import pytest
from synthetic import METADATA, frame, irq_trace

from irqmon.analysis import analysis_of
from irqmon.report.model import THREAD, ReportModel, build_model
from irqmon.tracefile import Trace

# TIM2 (priority 5) from 1.0 to 5.0 s, preempted by EXTI0 (priority 1) from 2.0 to 3.0 s,
# SysTick from 6.0 s that has not returned when the trace ends at 7.0 s.
NESTED = [
    (0.0, "irq_enter", 15, "SysTick", 15),
    (0.5, "irq_exit", 15, "SysTick", 15),
    (1.0, "irq_enter", 44, "TIM2", 5),
    (2.0, "irq_enter", 22, "EXTI0", 1),
    (3.0, "irq_exit", 22, "EXTI0", 1),
    (5.0, "irq_exit", 44, "TIM2", 5),
    (6.0, "irq_enter", 15, "SysTick", 15),
    (7.0, "irq_enter", 22, "EXTI0", 1),
]


def model_of(trace: Trace) -> ReportModel:
    """The report's model of the analyzer's context (no rules needed for it)."""
    return build_model(analysis_of(trace, rules=[]).context)


def summary_row(model, name):
    table = model.summary()
    return table[table["exception"] == name].iloc[0]


def test_nesting_depth_and_self_time():
    model = model_of(irq_trace(NESTED))
    tim2 = model.activations[model.activations["exception"] == "TIM2"].iloc[0]
    exti0 = model.activations[model.activations["exception"] == "EXTI0"].iloc[0]
    assert (tim2["start"], tim2["end"], tim2["depth"], tim2["self_time"]) == (1.0, 5.0, 1, 3.0)
    assert (exti0["start"], exti0["end"], exti0["depth"], exti0["self_time"]) == (2.0, 3.0, 2, 1.0)
    assert model.activations.loc[exti0.name, "parent"] == tim2.name
    assert bool(tim2["preempted"]) and not bool(exti0["preempted"])
    assert len(model.activations) == 5


def test_activation_open_at_the_end_runs_to_the_end():
    model = model_of(irq_trace(NESTED))
    late = model.activations[model.activations["start"] >= 6.0].sort_values("start")
    assert list(late["exception"]) == ["SysTick", "EXTI0"]
    assert list(late["closed"]) == [False, False]
    assert list(late["end"]) == [7.0, 7.0]


def test_segments_name_who_ran_and_cover_the_trace():
    model = model_of(irq_trace(NESTED))
    segs = model.segments
    ran = [(s, e, lane) for s, e, lane in zip(segs["start"], segs["end"], segs["lane"])]
    assert ran == [(0.0, 0.5, "SysTick"), (0.5, 1.0, "Thread"), (1.0, 2.0, "TIM2"), (2.0, 3.0, "EXTI0"),
                   (3.0, 5.0, "TIM2"), (5.0, 6.0, "Thread"), (6.0, 7.0, "SysTick")]  # fmt: skip
    assert (segs["running"] == THREAD).sum() == 2


def test_summary_like_a_profiler():
    model = model_of(irq_trace(NESTED))
    tim2 = summary_row(model, "TIM2")
    assert (tim2["count"], tim2["total"], tim2["self_time"], tim2["max_time"], tim2["max_depth"], tim2["preempted"]) == (1, 4.0, 3.0, 4.0, 1, 1)
    assert tim2["share"] == pytest.approx(3.0 / 7.0)
    exti0 = summary_row(model, "EXTI0")
    assert (exti0["count"], exti0["self_time"], exti0["max_depth"]) == (2, 1.0, 2)
    assert summary_row(model, "Thread")["self_time"] == 1.5
    assert model.summary()["share"].sum() == pytest.approx(1.0)


def test_exit_without_entry_started_before_the_capture():
    events = [(1.0, "irq_exit", 44, "TIM2", 5), (2.0, "irq_enter", 44, "TIM2", 5), (3.0, "irq_exit", 44, "TIM2", 5)]
    model = model_of(irq_trace(events))
    acts = model.activations.sort_values("start")
    assert list(zip(acts["start"], acts["end"])) == [(1.0, 1.0), (2.0, 3.0)]
    assert summary_row(model, "TIM2")["self_time"] == 1.0


def test_window_clips_intervals_and_recomputes_self_time():
    model = model_of(irq_trace(NESTED)).clipped(2.5, 4.0)
    assert (model.start, model.end) == (2.5, 4.0)
    tim2 = summary_row(model, "TIM2")
    assert (tim2["total"], tim2["self_time"]) == (1.5, 1.0)
    assert summary_row(model, "EXTI0")["self_time"] == 0.5
    with pytest.raises(ValueError, match="empty time window"):
        model_of(irq_trace(NESTED)).clipped(8.0, 9.0)


def test_without_irq_rows_an_activation_spans_its_halting_rows():
    """Hardware without an exception trace: ISR rows of one activation, thread rows around them."""
    rows = [(0.0, 0), (1.0, 44), (1.5, 22), (2.0, 44), (3.0, 0), (4.0, 44), (5.0, 0)]
    times, ipsr = zip(*rows)
    names = {0: "Thread", 44: "TIM2", 22: "EXTI0"}
    columns = {"time": list(times), "event": "access", "ipsr": list(ipsr), "exception": [names[i] for i in ipsr],
               "priority": [None if i == 0 else {44: 5, 22: 1}[i] for i in ipsr]}  # fmt: skip
    model = model_of(Trace(frame(columns, len(rows)), dict(METADATA), Path("halting.csv")))
    acts = model.activations.sort_values("start")
    assert list(zip(acts["exception"], acts["start"], acts["end"], acts["depth"])) == [
        ("TIM2", 1.0, 2.0, 1), ("EXTI0", 1.5, 1.5, 2), ("TIM2", 4.0, 4.0, 1)]  # fmt: skip
    assert summary_row(model, "TIM2")["count"] == 2
