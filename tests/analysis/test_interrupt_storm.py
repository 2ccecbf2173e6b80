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


def halted_activations(count: int, halt: float = 0.95e-3) -> list[dict]:
    """EXTI0 entered every 1 ms of host time; inside each activation the capture halts the core
    for `halt` s (a breakpoint in the handler), so the handler fills 97% of the host's time
    but only 20 µs of the 50 µs the core runs per activation."""
    exti = {"ipsr": 16 + 6, "exception": "EXTI0", "priority": 5}
    irq = {**exti, "probe": "qemu", "kind": "irq"}
    rows = []
    for n in range(count):
        start = n * 1e-3
        rows += [
            {"event": "irq_enter", "time": start, "halted": n * halt, "halts": n, **irq},
            {"event": "call", "kind": "rtos-fromisr", "role": "fromisr", "symbol": "xQueueSendFromISR",
             "time": start + 0.5e-3, "halted": n * halt + 0.49e-3, "halts": n + 1, **exti},
            {"event": "irq_exit", "time": start + 0.97e-3, "halted": (n + 1) * halt, "halts": n + 1, **irq},
        ]  # fmt: skip
    return rows


def test_halted_time_is_left_out(tmp_path):
    """The same activations are a storm on the host's clock and not on the time the core ran."""
    rows = halted_activations(200)
    assert run_rule(tmp_path, "interrupt-storm", rows) == []
    host_clock_only = [{k: v for k, v in row.items() if k not in ("halted", "halts")} for row in rows]
    assert [f.exception for f in run_rule(tmp_path, "interrupt-storm", host_clock_only)] == ["EXTI0"]


def test_storm_evidence_counts_the_halts_in_it(tmp_path):
    """Halts inside a storm (a handler that never clears its flag, probed): how many, how long."""
    rows = []
    for n in range(60):
        start = n * 1e-3
        rows += irq_pair(31, "I2C1_EV", 3, start, start + 0.999e-3)
        rows[-2:] = [{**rows[-2], "halted": n * 0.5e-3, "halts": n}, {**rows[-1], "halted": (n + 1) * 0.5e-3, "halts": n + 1}]
    findings = run_rule(tmp_path, "interrupt-storm", rows)
    assert len(findings) == 1
    evidence = findings[0].evidence
    assert evidence["halts"] == 60 and abs(evidence["halted_s"] - 60 * 0.5e-3) < 1e-6
    assert 990 < evidence["rate_per_s"] * 0.5 < 1010  # 60 entries in 30 ms of run time
    assert evidence["tick_period_s"] is None and "halted time left out: 60 halts" in findings[0].message


SYSTICK = {"ipsr": 15, "exception": "SysTick", "priority": 15, "probe": "qemu", "kind": "irq"}
CORE_CLOCK = {"core_clock_hz": 168_000_000}


def systick_run(count: int, period: float, reload: int | None) -> list[dict]:
    """SysTick entered every `period` s, each activation filling 99% of it (the handler's
    time stretched), and its registers read at the end: enabled on the core clock, `reload`."""
    rows = [
        row for n in range(count)
        for row in ({"event": "irq_enter", "time": n * period, **SYSTICK}, {"event": "irq_exit", "time": (n + 0.99) * period, **SYSTICK})
    ]  # fmt: skip
    if reload is not None:
        end = count * period
        rows += [
            {"event": "config", "kind": "config", "symbol": "systick_control", "value": 0x7, "time": end},
            {"event": "config", "kind": "config", "symbol": "systick_reload", "value": reload, "time": end},
        ]  # fmt: skip
    return rows


def test_a_tick_at_its_configured_rate_is_not_a_storm(tmp_path):
    """1 ms apart, back to back: exactly the rate LOAD 167999 at 168 MHz gives."""
    assert run_rule(tmp_path, "interrupt-storm", systick_run(200, 1e-3, 167_999), metadata=CORE_CLOCK) == []
    # The same tick's period from the median time between its entries, with no registers read.
    assert run_rule(tmp_path, "interrupt-storm", systick_run(200, 1e-3, None)) == []


def test_a_tick_faster_than_its_configured_period_is_a_storm(tmp_path):
    """Every 0.1 ms while LOAD says 1 ms (a handler that pends SysTick again)."""
    findings = run_rule(tmp_path, "interrupt-storm", systick_run(200, 1e-4, 167_999), metadata=CORE_CLOCK)
    assert [f.exception for f in findings] == ["SysTick"]
    evidence = findings[0].evidence
    assert evidence["tick_period_s"] == 1e-3 and evidence["tick_period_from"] == "LOAD 167999 at the 168 MHz core clock"
    assert 9.5 < evidence["rate_over_tick_rate"] < 10.5
    assert "periodic tick of 1.000 ms" in findings[0].message
    # Without the core clock the period is not known from LOAD: the median (0.1 ms) is used.
    assert run_rule(tmp_path, "interrupt-storm", systick_run(200, 1e-4, 167_999)) == []
