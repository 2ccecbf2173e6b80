"""malloc-in-isr, mutex-in-isr, rtos-api-misuse, isr-priority-violation: bad trace found, good one silent."""

from __future__ import annotations

from tracebuild import THREAD, isr, run_rule, task

USB = isr(67, "OTG_FS", 6)
USB_PATH = "USBD_CDC_Init;USBD_SetClassConfig;HAL_PCD_IRQHandler;OTG_FS_IRQHandler;<exception>;main"


def heap_call(ctx: dict, symbol: str, path: str, role: str = "alloc") -> dict:
    return {"event": "call", "kind": "heap", "role": role, "symbol": symbol, "callpath": path, "size": 64,
            "source": "usbd_cdc.c:120", **ctx}  # fmt: skip


def test_malloc_in_isr_reports_outermost_call_with_chain(tmp_path):
    rows = [
        heap_call(THREAD, "malloc", "malloc;main"),
        {"event": "return", "kind": "heap", "role": "alloc", "symbol": "malloc", **THREAD},
        heap_call(USB, "malloc", f"malloc;{USB_PATH}"),
        heap_call(USB, "_malloc_r", f"_malloc_r;malloc;{USB_PATH}"),
        heap_call(USB, "malloc", f"malloc;{USB_PATH}"),
    ]
    findings = run_rule(tmp_path, "malloc-in-isr", rows)
    assert len(findings) == 1
    finding = findings[0]
    assert finding.title == "malloc-in-isr: malloc called from OTG_FS_IRQHandler (IRQ 67, priority 6)"
    assert finding.count == 2 and finding.severity == "error"
    assert finding.contexts == ["OTG_FS (IRQ 67, priority 6)"]
    assert finding.callpath[:5] == ["malloc", "USBD_CDC_Init", "USBD_SetClassConfig", "HAL_PCD_IRQHandler", "OTG_FS_IRQHandler"]
    assert finding.source == "usbd_cdc.c:120"
    assert finding.evidence["sizes"] == [64]


def test_malloc_in_isr_without_callpath_uses_exception_name(tmp_path):
    rows = [{"event": "call", "kind": "heap", "role": "free", "symbol": "vPortFree", "ipsr": 30, "exception": "TIM4"}]
    findings = run_rule(tmp_path, "malloc-in-isr", rows)
    assert [f.title for f in findings] == ["malloc-in-isr: vPortFree called from TIM4 (IRQ 14)"]


def test_malloc_in_isr_silent_in_thread_mode(tmp_path):
    rows = [heap_call(THREAD, "malloc", "malloc;main"), heap_call(task("net"), "free", "free;net_task", "free")]
    assert run_rule(tmp_path, "malloc-in-isr", rows) == []


def test_isr_malloc_while_thread_inside_malloc_is_still_outermost(tmp_path):
    rows = [
        heap_call(THREAD, "malloc", "malloc;main"),
        heap_call(USB, "malloc", f"malloc;{USB_PATH.replace('main', 'malloc;main')}"),
    ]
    assert len(run_rule(tmp_path, "malloc-in-isr", rows)) == 1


def test_mutex_in_isr_reports_take_and_blocking(tmp_path):
    rows = [
        {"event": "call", "kind": "mutex", "role": "acquire", "symbol": "osMutexAcquire", "address": 0x20000100,
         "callpath": f"osMutexAcquire;__malloc_lock;malloc;{USB_PATH}", **USB},
        {"event": "call", "kind": "mutex", "role": "acquire", "symbol": "xQueueSemaphoreTake", "address": 0x20000100,
         "callpath": f"xQueueSemaphoreTake;osMutexAcquire;__malloc_lock;malloc;{USB_PATH}", **USB},
        {"event": "call", "kind": "mutex", "role": "release", "symbol": "osMutexRelease", **USB},
        {"event": "call", "kind": "blocking", "role": "blocking", "symbol": "osDelay", **isr(6, "EXTI0", 10)},
    ]  # fmt: skip
    findings = run_rule(tmp_path, "mutex-in-isr", rows)
    assert sorted(f.symbol for f in findings) == ["osDelay", "osMutexAcquire"]
    take = next(f for f in findings if f.symbol == "osMutexAcquire")
    assert take.title == "mutex-in-isr: mutex take osMutexAcquire from OTG_FS_IRQHandler (IRQ 67, priority 6)"
    assert take.evidence["objects"] == ["0x20000100"]


def test_a_mutex_taken_inside_an_isr_malloc_is_the_malloc_findings_evidence(tmp_path):
    """The heap lock malloc takes in the ISR is listed under malloc-in-isr; a take of the same
    activation outside malloc is still a mutex-in-isr finding, and so is the one inside malloc
    when malloc-in-isr does not run."""
    from irqmon.analysis import analyze
    from tracebuild import irq_pair, load

    enter, leave = irq_pair(67, "OTG_FS", 6, 0.01, 0.02)
    malloc_path = f"malloc;{USB_PATH}"
    take = {"event": "call", "kind": "mutex", "role": "acquire", "symbol": "osMutexAcquire", "address": 0x200000D0,
            "callpath": f"osMutexAcquire;__malloc_lock;{malloc_path}", "source": "heap_lock.c:18", **USB}  # fmt: skip
    give = {**take, "role": "release", "symbol": "osMutexRelease", "callpath": f"osMutexRelease;__malloc_unlock;{malloc_path}"}
    alone = {**take, "callpath": f"osMutexAcquire;{USB_PATH}", "source": "usbd_cdc.c:130"}
    inside_only = [enter, heap_call(USB, "malloc", malloc_path), take, give, leave]
    findings = analyze(load(tmp_path, inside_only), rules=["malloc-in-isr", "mutex-in-isr"])
    assert [f.rule for f in findings] == ["malloc-in-isr"]
    assert findings[0].evidence["inside"] == ["osMutexAcquire (mutex)", "osMutexRelease (mutex)"]
    assert "Inside it: osMutexAcquire (mutex), osMutexRelease (mutex)." in findings[0].message
    both = [enter, heap_call(USB, "malloc", malloc_path), take, give, alone, leave]
    findings = analyze(load(tmp_path, both), rules=["malloc-in-isr", "mutex-in-isr"])
    assert sorted((f.rule, f.source) for f in findings) == [("malloc-in-isr", "usbd_cdc.c:120"), ("mutex-in-isr", "usbd_cdc.c:130")]
    assert [f.rule for f in analyze(load(tmp_path, inside_only), rules=["mutex-in-isr"])] == ["mutex-in-isr"]


def test_mutex_in_isr_silent_for_tasks(tmp_path):
    rows = [{"event": "call", "kind": "mutex", "role": "acquire", "symbol": "osMutexAcquire", **task("a")},
            {"event": "call", "kind": "blocking", "role": "blocking", "symbol": "osDelay", **task("a")}]  # fmt: skip
    assert run_rule(tmp_path, "mutex-in-isr", rows) == []


def test_rtos_api_misuse(tmp_path):
    uart = isr(37, "USART1", 7)
    rows = [
        {"event": "call", "kind": "rtos-api", "role": "api", "symbol": "xQueueGenericSend", **uart},
        {"event": "call", "kind": "critical-section", "role": "enter", "symbol": "vPortEnterCritical", **uart},
        {"event": "call", "kind": "rtos-fromisr", "role": "fromisr", "symbol": "xQueueGenericSendFromISR", **uart},
        {"event": "call", "kind": "rtos-api", "role": "api", "symbol": "xQueueGenericSend", **task("a")},
    ]
    findings = run_rule(tmp_path, "rtos-api-misuse", rows)
    assert sorted(f.symbol for f in findings) == ["vPortEnterCritical", "xQueueGenericSend"]
    assert all(f.contexts == ["USART1 (IRQ 37, priority 7)"] for f in findings)


def test_rtos_api_misuse_silent_for_fromisr_and_tasks(tmp_path):
    rows = [
        {"event": "call", "kind": "rtos-fromisr", "role": "fromisr", "symbol": "xQueueGenericSendFromISR", **isr(37, "USART1", 7)},
        {"event": "call", "kind": "critical-section", "role": "enter", "symbol": "vPortEnterCritical", **task("a")},
    ]  # fmt: skip
    assert run_rule(tmp_path, "rtos-api-misuse", rows) == []


def fromisr_rows(priority: int) -> list[dict]:
    return [
        {"event": "config", "kind": "config", "symbol": "max_syscall_priority", "value": 0x50},
        {"event": "call", "kind": "rtos-fromisr", "role": "fromisr", "symbol": "xQueueGenericSendFromISR",
         **isr(30, "TIM4", priority)},
    ]  # fmt: skip


def test_isr_priority_violation_from_trace_ceiling(tmp_path):
    findings = run_rule(tmp_path, "isr-priority-violation", fromisr_rows(2))
    assert len(findings) == 1
    assert findings[0].evidence == {"priority": 2, "ceiling": 5, "ceiling_raw": 0x50}
    assert "TIM4 (IRQ 30, priority 2)" in findings[0].title


def test_isr_priority_violation_silent_at_or_below_ceiling(tmp_path):
    assert run_rule(tmp_path, "isr-priority-violation", fromisr_rows(5)) == []
    assert run_rule(tmp_path, "isr-priority-violation", fromisr_rows(12)) == []


def test_isr_priority_violation_uses_option_and_priority_bits(tmp_path):
    from irqmon.analysis import AnalysisConfig

    rows = fromisr_rows(5)[1:]
    assert run_rule(tmp_path, "isr-priority-violation", rows) == []  # no ceiling known
    config = AnalysisConfig(max_syscall_priority=0xC0)
    assert len(run_rule(tmp_path, "isr-priority-violation", rows, config=config)) == 1
    # 3 implemented bits: 0xC0 is priority 6, so 5 is above it too; 0x20 is priority 1.
    assert len(run_rule(tmp_path, "isr-priority-violation", rows, {"priority_bits": 3}, config)) == 1
    low = AnalysisConfig(max_syscall_priority=0x20)
    assert run_rule(tmp_path, "isr-priority-violation", rows, {"priority_bits": 3}, low) == []


def test_what_the_kernel_does_inside_a_reported_call_is_its_evidence(tmp_path):
    """A TIM2 callback takes a FreeRTOS mutex: xQueueSemaphoreTake enters and leaves the
    kernel's critical section (twice: it found the mutex taken and tried again), and the capture
    ended inside the second section. One finding, the take, with the sections as its evidence."""
    from irqmon.analysis import analyze
    from tracebuild import irq_pair, load

    tim2 = isr(28, "TIM2", 6)
    path = "HAL_TIM_PeriodElapsedCallback;HAL_TIM_IRQHandler;TIM2_IRQHandler;<exception>;main"
    take = {"event": "call", "kind": "mutex", "role": "acquire", "symbol": "xQueueSemaphoreTake", "address": 0x200000CC,
            "callpath": f"xQueueSemaphoreTake;{path}", "source": "app.c:40", **tim2}  # fmt: skip

    def kernel(role: str) -> dict:
        symbol = "vPortEnterCritical" if role == "enter" else "vPortExitCritical"
        return {"event": "call", "kind": "critical-section", "role": role, "symbol": symbol,
                "callpath": f"{symbol};xQueueSemaphoreTake;{path}", "source": "queue.c:1500", **tim2}  # fmt: skip

    enter, leave = irq_pair(28, "TIM2", 6, 0.01, 0.02)
    rows = [enter, take, kernel("enter"), kernel("exit"), kernel("exit"), kernel("enter"), leave]
    findings = analyze(load(tmp_path, rows), rules=["mutex-in-isr", "rtos-api-misuse", "critical-section-imbalance"])
    assert [f.rule for f in findings] == ["mutex-in-isr"]
    assert findings[0].evidence["inside"] == ["vPortEnterCritical (critical-section)", "vPortExitCritical (critical-section)"]
    direct = [enter, {**kernel("enter"), "callpath": f"vPortEnterCritical;{path}"}, leave]
    assert [f.rule for f in analyze(load(tmp_path, direct), rules=["rtos-api-misuse", "critical-section-imbalance"])] == [
        "critical-section-imbalance", "rtos-api-misuse"]


def test_a_take_inside_malloc_counts_as_malloc_evidence_when_mallocs_site_was_disarmed(tmp_path):
    """A rotated capture saw the ISR's malloc once, then only the heap lock's take inside a later
    malloc, and one inside free (planned, never armed then): the take's own frames put it inside
    a heap function, so it is not a mutex-in-isr finding."""
    from irqmon.analysis import analyze
    from tracebuild import irq_pair, load

    malloc_path = f"malloc;{USB_PATH}"
    take = {"event": "call", "kind": "mutex", "role": "acquire", "symbol": "osMutexAcquire", "address": 0x200000D0,
            "callpath": f"osMutexAcquire;__malloc_lock;{malloc_path}", "source": "heap_lock.c:18", **USB}  # fmt: skip
    first_enter, first_leave = irq_pair(67, "OTG_FS", 6, 0.01, 0.02)
    later_enter, later_leave = irq_pair(67, "OTG_FS", 6, 0.05, 0.06)
    in_free = {**take, "callpath": f"osMutexAcquire;__malloc_lock;free;{USB_PATH}", "time": 0.052}  # free: never seen in an ISR
    heap_site = {"event": "coverage", "kind": "heap", "symbol": "malloc"}
    free_site = {"event": "coverage", "kind": "heap", "symbol": "free", "value": 0, "time": 0.0}
    rows = [free_site, {**heap_site, "value": 1, "time": 0.0}, first_enter, {**heap_call(USB, "malloc", malloc_path), "time": 0.011},
            first_leave, {**heap_site, "value": 0, "time": 0.03}, later_enter, {**take, "time": 0.051}, in_free, later_leave]  # fmt: skip
    findings = analyze(load(tmp_path, rows), rules=["malloc-in-isr", "mutex-in-isr"])
    assert [f.rule for f in findings if f.severity == "error"] == ["malloc-in-isr"]
