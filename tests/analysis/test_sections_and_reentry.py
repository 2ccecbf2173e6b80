"""critical-section-imbalance and non-reentrant-reentry: bad traces found, good ones silent."""

from __future__ import annotations

from tracebuild import THREAD, irq_pair, isr, run_rule, task

USART = isr(37, "USART1", 7)


def cpsid(ctx: dict, old: int, source: str = "main.c:10") -> dict:
    return {"event": "mask", "kind": "critical-section", "symbol": "primask", "role": "disable",
            "old_value": old, "value": 1, "source": source, **ctx}  # fmt: skip


def cpsie(ctx: dict, old: int, source: str = "main.c:20") -> dict:
    return {"event": "mask", "kind": "critical-section", "symbol": "primask", "role": "enable",
            "old_value": old, "value": 0, "source": source, **ctx}  # fmt: skip


def msr(ctx: dict, register: str, old: int, value: int, source: str = "port.c:5") -> dict:
    return {"event": "mask", "kind": "critical-section", "symbol": register, "role": "write",
            "old_value": old, "value": value, "source": source, **ctx}  # fmt: skip


def test_inner_enable_inside_outer_section(tmp_path):
    rows = [cpsid(THREAD, 0, "main.c:40"), cpsid(THREAD, 1, "puts.c:3"), cpsie(THREAD, 1, "puts.c:9"), cpsie(THREAD, 0, "main.c:44")]
    findings = run_rule(tmp_path, "critical-section-imbalance", rows)
    assert len(findings) == 1
    assert findings[0].source == "puts.c:9" and findings[0].evidence["outer_exit"] == "main.c:44"


def test_save_restore_and_nesting_counter_are_silent(tmp_path):
    spl = [cpsid(THREAD, 0), cpsid(THREAD, 1), msr(THREAD, "primask", 1, 1), msr(THREAD, "primask", 1, 0)]
    freertos = [msr(THREAD, "basepri", 0, 0x50), msr(THREAD, "basepri", 0x50, 0x50), msr(THREAD, "basepri", 0x50, 0)]
    assert run_rule(tmp_path, "critical-section-imbalance", spl + freertos) == []


def test_isr_returns_with_primask_set(tmp_path):
    enter, leave = irq_pair(37, "USART1", 7, 0.1, 0.2)
    rows = [enter, cpsid(USART, 0, "uart.c:30"), leave]
    findings = run_rule(tmp_path, "critical-section-imbalance", rows)
    assert [f.evidence["case"] for f in findings] == ["isr-changed-mask"]
    assert findings[0].title == "critical-section-imbalance: USART1 (IRQ 37, priority 7) returned with primask 0x1, entered with 0x0"


def test_isr_restoring_its_mask_is_silent(tmp_path):
    enter, leave = irq_pair(37, "USART1", 7, 0.1, 0.2)
    rows = [enter, cpsid(USART, 0), msr(USART, "primask", 1, 0), leave]
    assert run_rule(tmp_path, "critical-section-imbalance", rows) == []


def test_unpaired_rtos_sections(tmp_path):
    def call(ctx: dict, role: str, symbol: str) -> dict:
        return {"event": "call", "kind": "critical-section", "role": role, "symbol": symbol, **ctx}

    enter, leave = irq_pair(37, "USART1", 7, 0.1, 0.2)
    rows = [call(task("a"), "exit", "vPortExitCritical"), enter, call(USART, "enter", "vPortEnterCritical"), leave]
    findings = run_rule(tmp_path, "critical-section-imbalance", rows)
    assert sorted(f.evidence["case"] for f in findings) == ["exit-without-enter", "isr-returned-inside"]
    balanced = [call(task("a"), "enter", "vPortEnterCritical"), call(task("a"), "enter", "vPortEnterCritical"),
                call(task("a"), "exit", "vPortExitCritical"), call(task("a"), "exit", "vPortExitCritical")]  # fmt: skip
    assert run_rule(tmp_path, "critical-section-imbalance", balanced) == []


def nr(ctx: dict, event: str, symbol: str, sp: int, path: str | None = None) -> dict:
    return {"event": event, "kind": "non-reentrant", "symbol": symbol, "sp": sp, "callpath": path, **ctx}


def test_printf_reentered_by_another_task(tmp_path):
    led, lcd = task("led_task"), task("lcd_task")
    rows = [
        nr(led, "call", "printf", 0x20001000, "printf;led_func"),
        nr(led, "call", "_write", 0x20000F00, "_write;_vfprintf_r;printf;led_func"),
        nr(lcd, "call", "printf", 0x20002000, "printf;lcd_func"),
        nr(lcd, "call", "_write", 0x20001F00, "_write;_vfprintf_r;printf;lcd_func"),
        nr(lcd, "return", "_write", 0x20001F00), nr(lcd, "return", "printf", 0x20002000),
        nr(led, "return", "_write", 0x20000F00), nr(led, "return", "printf", 0x20001000),
    ]  # fmt: skip
    findings = run_rule(tmp_path, "non-reentrant-reentry", rows)
    assert len(findings) == 1
    assert findings[0].title == "non-reentrant-reentry: printf entered by task lcd_task while task led_task was inside it"


def test_sequential_and_recursive_calls_are_silent(tmp_path):
    led, lcd = task("led_task"), task("lcd_task")
    rows = [
        nr(led, "return", "printf", 0x20001100),  # capture started inside a call
        nr(led, "call", "printf", 0x20001000), nr(led, "return", "printf", 0x20001000),
        nr(lcd, "call", "printf", 0x20002000), nr(lcd, "call", "printf", 0x20001E00),
        nr(lcd, "return", "printf", 0x20001E00), nr(lcd, "return", "printf", 0x20002000),
        nr(USART, "call", "printf", 0x20000100), nr(USART, "return", "printf", 0x20000100),
    ]  # fmt: skip
    assert run_rule(tmp_path, "non-reentrant-reentry", rows) == []


def test_isr_enters_while_thread_inside(tmp_path):
    rows = [nr(THREAD, "call", "puts", 0x20001000), nr(USART, "call", "puts", 0x20000100), nr(USART, "return", "puts", 0x20000100)]
    findings = run_rule(tmp_path, "non-reentrant-reentry", rows)
    assert [f.contexts for f in findings] == [["USART1 (IRQ 37, priority 7)", "Thread"]]
