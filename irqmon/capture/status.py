"""What a capture shows on the terminal: the plan, a live status line, and the result."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.text import Text

from irqmon.capture.loop import CaptureSummary
from irqmon.output.terminal import plain
from irqmon.probes import CapturePlan

REFRESH_SECONDS = 0.25


def plan_line(plan: CapturePlan) -> str:
    packs = ", ".join(plan.packs) or "none"
    return (
        f"probes: {packs} — {plan.breakpoints_needed} breakpoints, {plan.watchpoints_needed} watchpoints"
        f"{', task from RTOS' if plan.task else ''}"
    )


class LiveStatus:
    """A one-line live view: events/s, by kind, by exception, elapsed time."""

    def __init__(self, console: Console, enabled: bool) -> None:
        self.started = time.monotonic()
        self.last = 0.0
        live = enabled and console.is_terminal
        self.live = Live(Text(""), console=console, transient=True, auto_refresh=False) if live else None

    def __enter__(self) -> LiveStatus:
        if self.live:
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live:
            self.live.__exit__(*exc)

    def __call__(self, summary: CaptureSummary) -> None:
        now = time.monotonic()
        if self.live is None or now - self.last < REFRESH_SECONDS:
            return
        self.last = now
        elapsed = now - self.started
        kinds = " ".join(f"{k}:{n}" for k, n in summary.by_kind.most_common(5))
        exceptions = " ".join(f"{k}:{n}" for k, n in summary.by_exception.most_common(4))
        line = f"{elapsed:6.1f}s  {summary.events} events  {summary.events / max(elapsed, 1e-9):.0f}/s  [{kinds}]  [{exceptions}]"
        self.live.update(Text(plain(line)), refresh=True)


def report(console: Console, output: Path, summary: CaptureSummary, on_qemu: bool) -> None:
    rate = summary.events / summary.elapsed if summary.elapsed else 0.0
    ended = f", ended by {summary.ended_by}" if summary.ended_by and summary.ended_by != "error" else ""
    console.print(
        f"trace: {plain(output)} — {summary.events} events ({summary.halts} halts) in {summary.elapsed:.1f} s, "
        f"{rate:.0f} events/s{ended}",
        highlight=False,
    )
    if on_qemu:
        console.print(f"USART1 output: {plain(output.with_suffix('.usart1.log'))}", highlight=False)
    if summary.error:
        print(f"irqmon: capture cut off: {plain(summary.error)}; the {summary.events} events so far are in {plain(output)}", file=sys.stderr)
    else:
        console.print(f"next: irqmon analyze {plain(output)}", highlight=False)
