"""Small traces whose batch edges fall where critical-section-imbalance and non-reentrant-reentry
must carry something over: inside a section, a call, an activation, a turn of a rotated capture."""

from __future__ import annotations

from typing import Any

from test_sections_and_reentry import USART, cpsid, cpsie, msr, nested_isr_sections, nr, section
from tracebuild import THREAD, irq_pair, isr, task

A, B, C = task("a"), task("b"), task("c")
USB = isr(67, "OTG_FS", 6)
SVCALL = {"ipsr": 11, "exception": "SVCall", "priority": 0}
USART_IN, USART_OUT = irq_pair(37, "USART1", 7, 0.0, 0.0)
SVC_IN, SVC_OUT = irq_pair(-5, "SVCall", 0, 0.0, 0.0)


def _timed(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows 1 ms apart (irq_pair's rows carry times of their own)."""
    return [{**row, "time": number * 1e-3} for number, row in enumerate(rows)]


def _usb_puts() -> list[dict[str, Any]]:
    """The USB ISR masks and calls puts, which unmasks on its way out (call paths)."""
    outer = "CDC_Receive_FS;OTG_FS_IRQHandler;<exception>;main"
    inner = f"serial_puts;{outer}"
    usb_in, usb_out = irq_pair(67, "OTG_FS", 6, 0.0, 0.0)
    rows = [usb_in, {**cpsid(USB, 0, "usb.c:15"), "callpath": f"__disable_irq;{outer}"}]
    for _ in range(3):
        rows += [{**cpsid(USB, 1, "board.h:99"), "callpath": f"__disable_irq;{inner}"},
                 {**cpsie(USB, 1, "board.h:100"), "callpath": f"__enable_irq;{inner}"}]  # fmt: skip
    return [*rows, {**cpsie(USB, 0, "board.h:100"), "callpath": f"__enable_irq;{outer}"}, usb_out, cpsid(THREAD, 0, "main.c:1")]


def _without_call_paths() -> list[dict[str, Any]]:
    """Nested entries, an early unmasking, the caller's exit finding nothing to unmask; in task a
    with rows of another context between."""
    main = [cpsid(THREAD, 0, "main.c:40"), cpsid(THREAD, 1, "puts.c:3"), cpsie(THREAD, 1, "puts.c:9"), cpsie(THREAD, 0, "main.c:44")]
    in_a = [cpsid(A, 0, "a.c:1"), cpsid(A, 1, "a.c:2"), cpsid(A, 1, "a.c:3"), cpsie(A, 1, "a.c:4"),
            section(B, "enter"), section(B, "exit"), cpsie(A, 0, "a.c:5")]  # fmt: skip
    return [*main, *in_a, *main]


def _isr_activations() -> list[dict[str, Any]]:
    """ISRs returning with a mask changed or inside a section, tail-chained, at the trace's end;
    SVCall clearing BASEPRI as it starts a task (a context switch)."""
    return [
        section(A, "enter"), USART_IN, cpsid(USART, 0, "uart.c:30"), USART_OUT,
        USART_IN, cpsid(USART, 0, "uart.c:31"), msr(USART, "basepri", 0, 0x50), USART_OUT, USART_IN, msr(USART, "basepri", 0x50, 0x50), USART_OUT,
        section(A, "exit"), USART_IN, cpsid(USART, 0, "uart.c:30"), section(USART, "enter"), USART_OUT,
        {**msr(A, "basepri", 0, 0x50), "control": 0}, SVC_IN, msr(SVCALL, "basepri", 0x50, 0, "svc.c:1"), SVC_OUT, {**section(B, "enter"), "control": 2},
        USART_IN, section(USART, "enter"), section(USART, "exit"), section(USART, "exit"), USART_OUT,
        section(A, "exit"), section(B, "exit"), section(B, "exit"),
        USART_IN, cpsid(USART, 0, "uart.c:99"), section(USART, "enter"), USART_OUT, USART_IN, section(USART, "enter"),
    ]  # fmt: skip


def _switch_after_a_chain(resumes: dict[str, Any]) -> list[dict[str, Any]]:
    """SVCall clears BASEPRI and tail-chains into itself; thread mode resumes (in `resumes`)
    only rows later, after an ISR without IRQ rows. The thread-mode row before it (task a on its
    own stack) is no mask or section row: no part of the rule carries it for its own sake."""
    start = {"event": "call", "kind": "rtos-api", "role": "api", "symbol": "vTaskDelay", **A, "control": 2}
    return [
        {**msr(A, "basepri", 0, 0x50), "control": 0}, start, SVC_IN, msr(SVCALL, "basepri", 0x50, 0, "svc.c:1"), SVC_OUT, SVC_IN, SVC_OUT,
        cpsid(USART, 0, "u.c:7"), section(USART, "enter"), section(resumes, "enter"), section(resumes, "exit"),
    ]  # fmt: skip


def _api(ctx: dict[str, Any]) -> dict[str, Any]:
    """A row of `ctx` that no part of critical-section-imbalance reads."""
    return {"event": "call", "kind": "rtos-api", "role": "api", "symbol": "vTaskDelay", **ctx, "control": 2}


def _changed_twice_then_resumed() -> list[dict[str, Any]]:
    """An ISR writes BASEPRI twice (neither opens a section), returns to task a; task b runs before
    the ISR's next activation (the activation is judged by the task it returned to, rows earlier)."""
    return [
        _api(A), USART_IN, msr(USART, "basepri", 0x50, 0x60, "u.c:40"), msr(USART, "basepri", 0x60, 0x60, "u.c:41"), USART_OUT,
        _api(A), _api(B), USART_IN, USART_OUT, _api(B),
    ]  # fmt: skip


def _nested_without_call_paths() -> list[dict[str, Any]]:
    """The exit called inside the enter (no call paths: told by the enter's open call), then the
    task's own exit."""
    returned = lambda role: {**section(A, role), "event": "return"}  # noqa: E731
    return [section(A, "enter"), _api(A), section(A, "exit"), returned("exit"), returned("enter"), section(A, "exit"), returned("exit")]


def _without_irq_rows() -> list[dict[str, Any]]:
    """Activations told apart by thread-mode rows alone."""
    return [
        section(A, "enter"), cpsid(USART, 0, "u.c:1"), section(USART, "enter"), section(A, "exit"), cpsid(USART, 0, "u.c:2"),
        cpsid(USB, 0, "usb.c:1"), msr(USB, "primask", 1, 0), section(A, "exit"), section(A, "exit"), cpsid(USART, 1, "u.c:3"),
    ]  # fmt: skip


def _rotated_sections() -> list[dict[str, Any]]:
    """The enter/exit site armed in turns, disarmed inside sections and activations."""
    site = lambda armed: {"event": "coverage", "kind": "critical-section", "symbol": "vPortEnterCritical+vPortExitCritical", "value": armed}  # noqa: E731
    return [
        site(1), section(A, "enter"), section(A, "exit"), section(A, "exit"), site(0), section(A, "enter"), site(1), section(A, "exit"),
        section(A, "exit"), section(B, "exit"), section(B, "enter"), USART_IN, section(USART, "enter"), USART_OUT,
        USART_IN, section(USART, "enter"), site(0), USART_OUT, USART_IN, cpsid(USART, 0, "u.c:1"), site(1), USART_OUT,
        USART_IN, cpsid(USART, 0, "u.c:2"), USART_OUT, site(0), section(A, "enter"), USART_IN, section(USART, "enter"), USART_OUT,
        site(1), section(A, "exit"), section(B, "exit"), section(B, "exit"),
    ]  # fmt: skip


def _reentered_printf() -> list[dict[str, Any]]:
    """_write entered by a task inside printf before printf itself is entered by another
    (the _write hit is printf's, known only later); calls open across batch edges."""
    return [
        nr(C, "call", "_write", 0x300, "_write;c_func"),
        nr(A, "call", "printf", 0x100, "printf;a_func"), nr(A, "call", "_write", 0x0F0, "_write;_vfprintf_r;printf;a_func"),
        nr(B, "call", "printf", 0x200, "printf;b_func"),
        nr(A, "return", "_write", 0x0F0), nr(A, "return", "printf", 0x100), nr(B, "return", "printf", 0x200), nr(C, "return", "_write", 0x300),
        nr(USART, "call", "_write", 0x50, "_write;USART1_IRQHandler;<exception>;main"), nr(USART, "return", "_write", 0x50),
    ]  # fmt: skip


def _reentered_puts() -> list[dict[str, Any]]:
    """A return without its call, calls left open, an ISR and thread mode entering meanwhile."""
    return [
        nr(A, "return", "puts", 0x100), nr(A, "call", "puts", 0x100), nr(B, "call", "puts", 0x200), nr(A, "return", "puts", 0x100),
        nr(B, "return", "puts", 0x200), nr(C, "call", "puts", 0x300), nr(USART, "call", "puts", 0x10), nr(USART, "return", "puts", 0x10),
        nr(C, "return", "puts", 0x300), nr(B, "call", "puts", 0x200), nr(THREAD, "call", "puts", 0x20), nr(B, "return", "puts", 0x200),
    ]  # fmt: skip


def _rotated_puts() -> list[dict[str, Any]]:
    """puts's site armed in turns: a call left open in one turn does not pair with a later return."""
    site = lambda armed: {"event": "coverage", "kind": "non-reentrant", "symbol": "puts", "value": armed}  # noqa: E731
    return [
        site(1), nr(A, "call", "puts", 0x100), site(0), site(1), nr(B, "call", "puts", 0x200), nr(B, "return", "puts", 0x200),
        nr(A, "call", "puts", 0x100), nr(C, "call", "puts", 0x300), site(0), nr(C, "return", "puts", 0x300), site(1),
        nr(B, "call", "puts", 0x200), nr(A, "call", "puts", 0x100),
    ]  # fmt: skip


TRACES = {
    name: _timed(rows)
    for name, rows in {
    "usb-puts": _usb_puts(),
    "without-call-paths": _without_call_paths(),
    "isr-activations": _isr_activations(),
    "isr-activations-cut-in-thread-mode": [*_isr_activations()[:-2], section(A, "enter")],
    "isr-activations-cut-after-an-exit": _isr_activations()[:-5],
    "switch-after-a-chain": _switch_after_a_chain({**B, "control": 2}),
    "same-task-after-a-chain": _switch_after_a_chain({**A, "control": 2}),
    "changed-twice-then-resumed": _changed_twice_then_resumed(),
    "nested-without-call-paths": _nested_without_call_paths(),
    "without-irq-rows": _without_irq_rows(),
    "rotated-sections": _rotated_sections(),
    "rotated-sections-cut-off": _rotated_sections()[:-3],
    "reentered-printf": _reentered_printf(),
    "reentered-puts": _reentered_puts(),
    "rotated-puts": _rotated_puts(),
    "nested-isr-sections": nested_isr_sections(),
    "nested-isr-sections-one-unbalanced": nested_isr_sections()[:6] + nested_isr_sections()[7:],
    }.items()
}  # fmt: skip
