"""What a capture shows on the terminal: the plan, a live status line, and the result."""

from __future__ import annotations

import sys
import time
from collections import deque
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.text import Text

from irqmon.capture.budget import ArmingPlan
from irqmon.capture.loop import CaptureSummary
from irqmon.output.terminal import plain
from irqmon.probes import CapturePlan
from irqmon.targets import TargetProfile

REFRESH_SECONDS = 0.25
RATE_WINDOW_SECONDS = 2.0  # the live rate is over the last two seconds, not since the start


NAMES_SHOWN = 8  # sites named in the plan line before "and N more"


def plan_line(
    plan: CapturePlan, target: TargetProfile | None = None, arming: ArmingPlan | None = None, rotate_seconds: float | None = None
) -> str:
    """The packs and the comparators they take; with `arming`, what is armed of them (and what
    not, or in turns); with `target` (a capture recorded inside QEMU, which takes none) what
    the same plan would need on that chip."""
    packs = ", ".join(plan.packs) or "none"
    need = f"{plan.breakpoints_needed} breakpoints, {plan.watchpoints_needed} watchpoints"
    task = ", task from RTOS" if plan.task else ""
    if target is None:
        return f"probes: {packs} — {need}{task}" + (arming_text(arming, rotate_seconds) if arming else "")
    return (
        f"probes: {packs} — recorded inside QEMU, no halts{task}; on {target.name} the same plan "
        f"would need {need} ({target.fpb_comparators} FPB and {target.dwt_comparators} DWT comparators there)"
    )


def arming_text(arming: ArmingPlan, rotate_seconds: float | None) -> str:
    """`; armed: 5 of 12 sites (6 of 6 FPB, 4 of 4 DWT); not armed: a, b` or `... in 3 sets
    rotated every 0.25 s`."""
    if not arming.rotates:
        return ""
    first = arming.first
    used = f"{sum(s.breakpoints for s in first)} of {arming.fpb_budget} FPB, {sum(s.watchpoints for s in first)} of {arming.dwt_budget} DWT"
    line = f"; armed: {len(first)} of {len(arming.sites)} sites ({used})"
    if rotate_seconds is not None:
        return line + f", all {len(arming.sites)} in {len(arming.sets)} sets rotated every {rotate_seconds:g} s"
    names = [site.name for site in arming.left_out]
    shown = ", ".join(names[:NAMES_SHOWN]) + (f" and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else "")
    return line + f"; not armed (--no-rotate): {shown}"


class LiveStatus:
    """A one-line live view: elapsed time (of --duration), events, the recent rate, by kind, by
    exception."""

    def __init__(self, console: Console, enabled: bool, duration: float | None = None) -> None:
        self.started = time.monotonic()
        self.last = 0.0
        self.duration = duration
        self.samples: deque[tuple[float, int]] = deque([(self.started, 0)])
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
        line = self.line(now, summary)
        self.live.update(Text(plain(line)), refresh=True)

    def line(self, now: float, summary: CaptureSummary) -> str:
        """`  12.3s / 60s  4567 events  380/s  [kinds]  [exceptions]`; the rate is the recent one."""
        self.samples.append((now, summary.events))
        while len(self.samples) > 2 and self.samples[1][0] <= now - RATE_WINDOW_SECONDS:
            self.samples.popleft()
        since, events_then = self.samples[0]
        rate = (summary.events - events_then) / max(now - since, 1e-9)
        elapsed = f"{now - self.started:6.1f}s" + (f" / {self.duration:g}s" if self.duration else "")
        kinds = " ".join(f"{k}:{n}" for k, n in summary.by_kind.most_common(5))
        exceptions = " ".join(f"{k}:{n}" for k, n in summary.by_exception.most_common(4))
        return f"{elapsed}  {summary.events} events  {rate:.0f}/s  [{kinds}]  [{exceptions}]"


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
