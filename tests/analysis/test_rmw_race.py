"""rmw-race: the observed lost update of seed 001, the predictive case, and masked code that is silent."""

from __future__ import annotations

from tracebuild import THREAD, isr, run_rule

EXTI0 = isr(6, "EXTI0", 10)
EXTI1 = isr(7, "EXTI1", 5)
IMR = {"event": "access", "kind": "shared-register", "symbol": "EXTI_IMR", "address": 0x40013C00, "size": 4}


def rd(ctx: dict, value: int, **extra) -> dict:
    return {**IMR, **ctx, "access": "r", "role": "read", "value": value, **extra}


def wr(ctx: dict, old: int, value: int, **extra) -> dict:
    return {**IMR, **ctx, "access": "w", "role": "write", "value": value, "old_value": old, **extra}


def masked(ctx: dict) -> dict:
    return {**ctx, "primask": 1}


def test_lost_update_with_values(tmp_path):
    rows = [
        wr(THREAD, 0, 0b11),
        rd(EXTI0, 0b11, source="main.c:16"),
        rd(EXTI1, 0b11), wr(EXTI1, 0b11, 0b01, source="main.c:29"),
        wr(EXTI0, 0b01, 0b10, source="main.c:22"),
    ]  # fmt: skip
    findings = run_rule(tmp_path, "rmw-race", rows)
    assert len(findings) == 1
    f = findings[0]
    assert f.severity == "error" and f.source == "main.c:22"
    assert f.title == "rmw-race: EXTI_IMR: EXTI1 (IRQ 7, priority 5) wrote between the read and the write of EXTI0 (IRQ 6, priority 10)"
    assert f.evidence["lost_bits"] == "0x2" and f.evidence["read_value"] == "0x3"
    assert f.evidence["other_source"] == "main.c:29"
    assert f.contexts == ["EXTI0 (IRQ 6, priority 10)", "EXTI1 (IRQ 7, priority 5)"]


def test_interleaving_that_loses_nothing_is_only_the_warning(tmp_path):
    rows = [rd(EXTI0, 0b11), rd(EXTI1, 0b11), wr(EXTI1, 0b11, 0b11), wr(EXTI0, 0b11, 0b10)]
    assert [f.severity for f in run_rule(tmp_path, "rmw-race", rows)] == ["warning"]


def test_sequential_updates_from_two_levels_are_a_warning(tmp_path):
    rows = [rd(EXTI0, 3), wr(EXTI0, 3, 2), rd(EXTI1, 2), wr(EXTI1, 2, 0)]
    findings = run_rule(tmp_path, "rmw-race", rows)
    assert [(f.severity, f.evidence["case"]) for f in findings] == [("warning", "unprotected")]
    assert findings[0].contexts == ["EXTI0 (IRQ 6, priority 10)", "EXTI1 (IRQ 7, priority 5)"]


def test_masked_updates_are_silent(tmp_path):
    rows = [
        rd(masked(THREAD), 0), wr(masked(THREAD), 0, 3),
        rd(masked(EXTI0), 3), wr(masked(EXTI0), 3, 2),
        rd(masked(EXTI1), 2), wr(masked(EXTI1), 2, 0),
    ]  # fmt: skip
    assert run_rule(tmp_path, "rmw-race", rows) == []


def test_basepri_masks_only_less_urgent(tmp_path):
    # BASEPRI 0x60 (level 6 with 4 bits) masks EXTI0 (10) but not EXTI1 (5).
    low = {**THREAD, "basepri": 0x60}
    rows = [rd(low, 0), wr(low, 0, 3), rd(EXTI0, 3), wr(EXTI0, 3, 2), rd(EXTI1, 2), wr(EXTI1, 2, 0)]
    findings = run_rule(tmp_path, "rmw-race", rows)
    others = {(f.contexts[0], f.evidence["other_context"]) for f in findings}
    assert ("Thread", "EXTI1 (IRQ 7, priority 5)") in others
    assert ("Thread", "EXTI0 (IRQ 6, priority 10)") not in others


def test_same_priority_and_write_only_are_silent(tmp_path):
    twin = isr(8, "EXTI2", 10)
    rows = [rd(EXTI0, 0), wr(EXTI0, 0, 1), rd(twin, 1), wr(twin, 1, 3), wr(EXTI1, 3, 0)]
    assert run_rule(tmp_path, "rmw-race", rows) == []
