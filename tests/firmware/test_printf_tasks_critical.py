"""printf_tasks_critical (seed 003): gdb stops in printf called by lcd_task and unwinds led_task's
saved context (its PendSV frame on its own stack) to show led_task preempted inside printf; stops in
xQueueGenericSendFromISR from TIM3 whose IPR byte is more urgent than ulMaxSyscallInterruptPriority;
and in vPortEnterCritical called from the TIM4 ISR, which raises BASEPRI inside the ISR."""

from __future__ import annotations

import re

import pytest

from support import expected, run_under_gdb, sample_elf

SAMPLE = "printf_tasks_critical"
TIM3_EXCEPTION = 16 + 29
TIM4_EXCEPTION = 16 + 30
TIM3_IPR = 0xE000E400 + 29
CALLEE_SAVED = ["r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11", "sp", "lr", "pc"]

# Point the core registers at led_task's saved context: r4-r11 and EXC_RETURN pushed by
# PendSV_Handler, s16-s31 when EXC_RETURN bit 4 is clear, then the hardware exception frame.
UNWIND_LED_TASK = [
    "set $ctx = (unsigned *)led_task.tcb.pxTopOfStack",
    "set $fpu = ($ctx[8] & 0x10) == 0",
    "set $hw = $ctx + 9 + ($fpu ? 16 : 0)",
    *[f"set $r{4 + i} = $ctx[{i}]" for i in range(8)],
    "set $lr = $hw[5]",
    "set $pc = $hw[6]",
    "set $sp = (unsigned)($hw + 8 + ($fpu ? 18 : 0) + (($hw[7] >> 9) & 1))",
]
SAVE = [f"set $saved_{r} = ${r}" for r in CALLEE_SAVED]
RESTORE = [f"set ${r} = $saved_{r}" for r in CALLEE_SAVED]


@pytest.fixture(scope="module")
def run(built_samples):
    commands = [
        "break printf if pxCurrentTCB == &lcd_task.tcb", "continue",
        'printf "== printf task=%s ipsr=%d\\n", pxCurrentTCB->pcTaskName, $xpsr & 0x1ff', "bt",
        *SAVE, *UNWIND_LED_TASK, 'echo == led_task context\\n', "bt", *RESTORE, 'echo == restored\\n',
        "delete", "break xQueueGenericSendFromISR", "continue",
        f'printf "== fromisr ipsr=%d ipr=%d ceiling=%d\\n", $xpsr & 0x1ff, '
        f"*(unsigned char *){TIM3_IPR:#x}, ulMaxSyscallInterruptPriority",
        "bt",
        "delete", f"break vPortEnterCritical if ($xpsr & 0x1ff) == {TIM4_EXCEPTION}", "continue", "bt", "finish",
        'printf "== critical ipsr=%d basepri=%d nesting=%d\\n", $xpsr & 0x1ff, $basepri, uxCriticalNesting',
        "delete", "break sample_done", "continue",
        'printf "== done reentries=%d\\n", printf_reentries',
    ]  # fmt: skip
    return run_under_gdb(sample_elf(SAMPLE), commands, timeout=20)


def frames(text: str) -> list[str]:
    return re.findall(r"^#\d+\s+(?:0x[0-9a-f]+ in )?(<signal handler called>|\w+|\?\?)", text, re.M)


def section(output: str, start: str, end: str) -> str:
    return output.split(start, 1)[1].split(end, 1)[0]


def test_printf_entered_while_the_other_task_is_inside(run):
    out = run.gdb_output
    assert "== printf task=lcd_task ipsr=0" in out, out
    lcd = frames(section(out, "== printf task=", "== led_task context"))
    assert lcd[:3] == ["printf", "print_task", "lcd_func"], out
    led = frames(section(out, "== led_task context", "== restored"))
    assert "printf" in led[1:], out  # led_task was switched out somewhere below printf
    assert led[led.index("printf") + 1 :][:2] == ["print_task", "led_func"], out


def test_fromisr_call_above_the_syscall_ceiling(run):
    out = run.gdb_output
    m = re.search(r"== fromisr ipsr=(\d+) ipr=(\d+) ceiling=(\d+)", out)
    assert m, out
    ipsr, ipr, ceiling = map(int, m.groups())
    assert ipsr == TIM3_EXCEPTION and ceiling == 0x50
    assert ipr < ceiling  # more urgent than configMAX_SYSCALL_INTERRUPT_PRIORITY
    assert frames(section(out, "== fromisr", "Breakpoint"))[:2] == ["xQueueGenericSendFromISR", "TIM3_IRQHandler"]


def test_task_level_critical_section_entered_from_an_isr(run):
    out = run.gdb_output
    assert re.search(r"#0 +vPortEnterCritical .*\n#1 .* in TIM4_IRQHandler", out), out
    assert f"== critical ipsr={TIM4_EXCEPTION} basepri=80 nesting=1" in out, out


def test_serial_reports_the_reentry_and_finishes(run):
    m = re.search(r"== done reentries=(\d+)", run.gdb_output)
    assert m and int(m[1]) > 0, run.gdb_output
    exp = expected(SAMPLE)
    assert exp["bug_marker"] in run.serial
    assert run.serial.rstrip().endswith(exp["done_marker"])
