"""The capture's halt clock: how much of each event's time the core spent halted."""

from __future__ import annotations

import pytest

from irqmon.capture.loop import HaltClock


def test_rows_in_a_halt_and_events_between_halts():
    clock = HaltClock(start=100.0)  # halted from the start until the first resume
    clock.resumed(100.5)
    clock.stopped(101.0)
    assert clock.during_halt(101.25) == (0.75, 1)  # the row's run time is 0.5 s: the halt's start
    clock.resumed(102.0)
    clock.stopped(103.0)
    assert clock.at(100.75) == (0.5, 0)
    assert clock.at(102.5) == (1.5, 1)
    assert clock.at(103.5) == (2.0, 2)  # inside the current halt: counted from its start
    assert clock.at(101.5) == (pytest.approx(1.0), 1)  # stamped inside a halt that ended


def test_forgotten_halts_keep_the_totals():
    clock = HaltClock(start=0.0)
    for second in range(1, 6):
        clock.resumed(second - 0.5)
        clock.stopped(float(second))
    clock.resumed(5.5)
    clock.forget_before(4.75)
    assert clock.at(4.75) == (2.5, 4)
    assert clock.at(6.0) == (3.0, 5)


def test_a_later_report_of_a_stop_or_resume_changes_nothing():
    clock = HaltClock(start=0.0)
    clock.resumed(1.0)
    clock.resumed(1.5)  # already running
    clock.stopped(2.0)
    clock.stopped(2.5)  # already halted
    assert clock.during_halt(3.0) == (2.0, 1)
