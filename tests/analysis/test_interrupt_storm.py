"""interrupt-storm: back-to-back re-entry with thread mode starved; periodic traffic is silent."""

from __future__ import annotations

from test_lock_rules import storm_rows
from tracebuild import THREAD, irq_pair, isr, run_rule

from irqmon.analysis import AnalysisConfig


def test_storm_found_with_lock_cause(tmp_path):
    findings = run_rule(tmp_path, "interrupt-storm", storm_rows(60))
    assert len(findings) == 1
    f = findings[0]
    assert f.title == "interrupt-storm: I2C1_EV_IRQHandler (IRQ 31, priority 3) re-entered 60 times back to back"
    assert f.evidence["longest_run"] == 60
    assert f.evidence["share_of_time"] > 0.99 and f.evidence["peak_share_of_window"] > 0.99
    assert 990 < f.evidence["rate_per_s"] < 1010
    assert f.evidence["cause"] == "its handler found hi2c1.Lock held by Thread in 60 of 60 entries"


def test_two_storms_of_one_irq_are_one_finding(tmp_path):
    rows = []
    for start in (0.0, 1.0):
        for n in range(30):
            rows += irq_pair(31, "I2C1_EV", 3, start + n * 1e-3, start + n * 1e-3 + 998e-6)
        rows.append({"event": "call", "kind": "rtos-api", "role": "api", "symbol": "poll", **THREAD, "time": start + 0.5})
    findings = run_rule(tmp_path, "interrupt-storm", rows, config=AnalysisConfig(storm_min_entries=25))
    assert len(findings) == 1 and findings[0].count == 2 and findings[0].evidence["cause"] is None


def test_periodic_interrupts_are_not_a_storm(tmp_path):
    rows = [row for n in range(200) for row in irq_pair(28, "TIM2", 6, n * 1e-3, n * 1e-3 + 5e-6)]
    assert run_rule(tmp_path, "interrupt-storm", rows) == []


def test_short_bursts_are_not_a_storm(tmp_path):
    """A burst of back-to-back entries that leaves most of the window to thread mode (a UART
    sending a line at emulator speed), and a long run that is too short in entries."""
    burst = [row for n in range(120) for row in irq_pair(37, "USART1", 7, n * 1e-5, n * 1e-5 + 8e-6)]
    assert run_rule(tmp_path, "interrupt-storm", burst) == []
    few = [row for n in range(10) for row in irq_pair(37, "USART1", 7, n * 1e-3, n * 1e-3 + 998e-6)]
    assert run_rule(tmp_path, "interrupt-storm", few) == []
    # The rate criterion, when asked for, reports the burst.
    assert len(run_rule(tmp_path, "interrupt-storm", burst, config=AnalysisConfig(storm_rate=10_000))) == 1


def test_storm_from_halting_rows_only(tmp_path):
    """Hardware trace without IRQ rows: activations from ipsr; thread rows in between end a run."""
    i2c = isr(31, "I2C1_EV", 3)
    read = {"event": "access", "kind": "shared-register", "access": "r", "role": "read", "symbol": "I2C1_ISR", "address": 0x40005418}
    between_thread = [row for _ in range(60) for row in ({**read, **i2c}, {**read, **THREAD})]
    assert run_rule(tmp_path, "interrupt-storm", between_thread) == []
    # ISR rows separated only by a less urgent ISR: I2C1_EV re-entered with thread mode starved.
    starved = [row for _ in range(60) for row in ({**read, **i2c}, {**read, **isr(28, "TIM2", 6)})]
    findings = run_rule(tmp_path, "interrupt-storm", starved)
    assert [f.exception for f in findings] == ["I2C1_EV"]
    assert findings[0].evidence["rate_per_s"] is None
