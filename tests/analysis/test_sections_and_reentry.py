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
    assert findings[0].source == "puts.c:9" and findings[0].evidence["case"] == "inner-enable"


def test_inner_enable_found_from_call_paths_in_an_isr(tmp_path):
    """Seed 002: the USB ISR masks, calls puts three times; each puts unmasks on its way out."""
    usb = isr(67, "OTG_FS", 6)
    outer, inner = "CDC_Receive_FS;OTG_FS_IRQHandler;<exception>;main", "serial_puts;CDC_Receive_FS;OTG_FS_IRQHandler;<exception>;main"
    rows = [{**cpsid(usb, 0, "usb.c:15"), "callpath": f"__disable_irq;{outer}"}]
    for _ in range(3):
        rows += [{**cpsid(usb, rows[-1]["value"], "board.h:99"), "callpath": f"__disable_irq;{inner}"},
                 {**cpsie(usb, 1, "board.h:100"), "callpath": f"__enable_irq;{inner}"}]  # fmt: skip
    rows.append({**cpsie(usb, 0, "board.h:100"), "callpath": f"__enable_irq;{outer}"})
    findings = run_rule(tmp_path, "critical-section-imbalance", rows)
    assert len(findings) == 1
    assert findings[0].evidence["outer_source"] == "usb.c:15"
    assert findings[0].evidence["frames"] == "__enable_irq;serial_puts;CDC_Receive_FS;OTG_FS_IRQHandler"
    # Saved and restored instead: the inner restore writes back 1, nothing unmasks early.
    fixed = [rows[0], {**cpsid(usb, 1), "callpath": f"__disable_irq;{inner}"},
             {**msr(usb, "primask", 1, 1), "callpath": f"__set_PRIMASK;{inner}"},
             {**msr(usb, "primask", 1, 0), "callpath": f"__set_PRIMASK;{outer}"}]  # fmt: skip
    assert run_rule(tmp_path, "critical-section-imbalance", fixed) == []


def test_rtos_nesting_with_call_paths_is_silent(tmp_path):
    enter = "ulPortRaiseBASEPRI;vPortEnterCritical;"
    rows = [
        {**msr(THREAD, "basepri", 0, 0x50), "callpath": f"__set_BASEPRI;{enter}task_a;main"},
        {**msr(THREAD, "basepri", 0x50, 0x50), "callpath": f"__set_BASEPRI;{enter}helper;task_a;main"},
        {**msr(THREAD, "basepri", 0x50, 0), "callpath": "__set_BASEPRI;vPortExitCritical;task_a;main"},
        {**cpsid(THREAD, 0), "callpath": "__disable_irq;a;b;c;task_a;main"},
        {**cpsie(THREAD, 1), "callpath": "__enable_irq;a;b;c;task_a;main"},
    ]
    assert run_rule(tmp_path, "critical-section-imbalance", rows) == []


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


def section(ctx: dict, role: str) -> dict:
    symbol = "vPortEnterCritical" if role == "enter" else "vPortExitCritical"
    return {"event": "call", "kind": "critical-section", "role": role, "symbol": symbol, **ctx}


def test_unpaired_rtos_sections(tmp_path):
    enter, leave = irq_pair(37, "USART1", 7, 0.1, 0.2)
    a = task("a")
    rows = [section(a, "enter"), section(a, "exit"), section(a, "exit"), enter, section(USART, "enter"), leave]
    findings = run_rule(tmp_path, "critical-section-imbalance", rows)
    assert sorted(f.evidence["case"] for f in findings) == ["exit-without-enter", "isr-returned-inside"]
    balanced = [section(a, "enter"), section(a, "enter"), section(a, "exit"), section(a, "exit")]
    assert run_rule(tmp_path, "critical-section-imbalance", balanced) == []


def test_sections_open_at_the_capture_edges_are_silent(tmp_path):
    """A task's first exit closes a section entered before the capture; a section still open at
    the end, in a task or in an ISR the capture stopped in, was not seen to end."""
    a = task("a")
    rows = [section(a, "exit"), section(a, "enter"), section(a, "exit"), section(a, "enter"),
            irq_pair(37, "USART1", 7, 0.1, 0.2)[0], section(USART, "enter"), msr(USART, "basepri", 0, 0x50)]  # fmt: skip
    assert run_rule(tmp_path, "critical-section-imbalance", rows) == []


def test_nesting_is_counted_per_task_across_context_switches(tmp_path):
    """Task a enters, blocks inside the section (PendSV at the exit), task b runs its own
    sections, a resumes and leaves: one count per task, as the RTOS keeps it."""
    a, b = task("a"), task("b")
    rows = [section(a, "enter"), section(a, "enter"), section(a, "exit"),
            section(b, "enter"), section(b, "exit"), section(b, "exit"),  # b: one exit too many
            section(a, "exit"), section(a, "enter"), section(a, "exit")]  # fmt: skip
    findings = run_rule(tmp_path, "critical-section-imbalance", rows)
    assert [(f.task, f.evidence["case"]) for f in findings] == [("b", "exit-without-enter")]


def test_main_before_the_scheduler_is_not_the_task_it_creates(tmp_path):
    """xTaskCreate sets the current-task pointer inside its critical section: main's exit then
    reads as the new task's. Thread mode on the main stack (CONTROL.SPSEL clear) is main."""
    main_stack, process_stack = {**task("worker"), "control": 0}, {**task("worker"), "control": 2}
    rows = [section({**THREAD, "control": 0}, "enter"), section(main_stack, "exit"), section(main_stack, "exit"),
            section(process_stack, "enter"), section(process_stack, "exit")]  # fmt: skip
    findings = run_rule(tmp_path, "critical-section-imbalance", rows)
    assert [(f.task, f.contexts, f.first_seq) for f in findings] == [(None, ["Thread"], 2)]


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


def test_mask_change_by_a_context_switch_is_silent(tmp_path):
    """SVCall starting the first task clears the BASEPRI the scheduler start raised: it returns
    to a task, not to the code it interrupted."""
    svc = {"ipsr": 11, "exception": "SVCall", "priority": 0}
    rows = [
        {**msr(THREAD, "basepri", 0, 0x50), "callpath": "__set_BASEPRI;vTaskStartScheduler;main"},
        *irq_pair(-5, "SVCall", 0, 0.01, 0.02)[:1],
        {**msr(svc, "basepri", 0x50, 0), "time": 0.015},
        *irq_pair(-5, "SVCall", 0, 0.01, 0.02)[1:],
        {"event": "call", "kind": "rtos-api", "role": "api", "symbol": "vTaskDelay", **task("led_task"), "time": 0.03},
    ]
    assert run_rule(tmp_path, "critical-section-imbalance", rows) == []
    same_task = [*rows[:4], {**rows[4], "task": None}]
    assert [f.evidence["case"] for f in run_rule(tmp_path, "critical-section-imbalance", same_task)] == ["isr-changed-mask"]


def test_scheduler_start_seen_as_a_stack_switch(tmp_path):
    """The task column may name the first task before it runs; CONTROL.SPSEL still changes."""
    svc = {"ipsr": 11, "exception": "SVCall", "priority": 0}
    led = task("led_task")
    rows = [
        {**msr({**led, "control": 0}, "basepri", 0, 0x50), "callpath": "__set_BASEPRI;vTaskStartScheduler;main"},
        *irq_pair(-5, "SVCall", 0, 0.01, 0.02)[:1],
        {**msr(svc, "basepri", 0x50, 0), "time": 0.015},
        *irq_pair(-5, "SVCall", 0, 0.01, 0.02)[1:],
        {"event": "call", "kind": "rtos-api", "role": "api", "symbol": "vTaskDelay", **led, "control": 2, "time": 0.03},
        {**msr({**led, "control": 2}, "basepri", 0, 0x50), "callpath": "__set_BASEPRI;ulPortRaiseBASEPRI;vPortEnterCritical;xQueueReceive;print_task;led_func"},
        {**msr({**led, "control": 2}, "basepri", 0x50, 0), "callpath": "__set_BASEPRI;vPortSetBASEPRI;vPortExitCritical;xQueueReceive;print_task;led_func"},
    ]  # fmt: skip
    assert run_rule(tmp_path, "critical-section-imbalance", rows) == []



def nested_isr_sections() -> list[dict]:
    """Twice: a higher-priority ISR preempts one inside its section and runs its own; the first
    ISR's calls begin before and end after the second's (activations interleaved)."""
    usart, tim2 = isr(37, "USART1", 7), isr(28, "TIM2", 3)
    usart_in, usart_out = irq_pair(37, "USART1", 7, 0, 0)
    tim2_in, tim2_out = irq_pair(28, "TIM2", 3, 0, 0)
    a = task("a")
    rows = [section(a, "enter"), section(a, "exit"),
            usart_in, section(usart, "enter"), tim2_in, section(tim2, "enter"), section(tim2, "exit"), tim2_out,
            section(usart, "exit"), usart_out] * 2  # fmt: skip
    return [{**row, "time": number * 1e-3} for number, row in enumerate(rows)]


def test_nested_isrs_each_balancing_their_sections(tmp_path):
    rows = nested_isr_sections()
    assert run_rule(tmp_path, "critical-section-imbalance", rows) == []
    unbalanced = rows[:6] + rows[7:]  # the first TIM2 activation returns inside its section
    findings = run_rule(tmp_path, "critical-section-imbalance", unbalanced)
    assert [(f.exception, f.evidence["case"], f.count) for f in findings] == [("TIM2", "isr-returned-inside", 1)]
