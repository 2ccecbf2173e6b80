"""Which probe sites a capture had armed, and when: its `coverage` rows (trace schema 2).

A capture that fits the chip's comparators arms every site throughout; one that does not arms
them in turns (or only the first set) and says so in coverage rows: a site armed (value 1) or
disarmed (value 0) from that row on. A trace without coverage rows (schema 1, or a capture
recorded inside QEMU) had everything it planned armed throughout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from irqmon.analysis.facts import COVERAGE_COLUMNS
from irqmon.schema import Event

if TYPE_CHECKING:
    from irqmon.analysis.context import Context
    from irqmon.analysis.findings import Finding
    from irqmon.analysis.registry import Rule

SITE_SEPARATOR = "+"  # a site of paired functions is named `enter+exit`


@dataclass(frozen=True)
class SiteCoverage:
    """One site: how long it was armed, in how many turns."""

    name: str
    kind: str
    armed_seconds: float
    turns: int
    throughout: bool  # armed once, at the start, and disarmed only at the end (if at all)
    intervals: tuple[tuple[float, float], ...] = ()  # (armed, disarmed) times

    @property
    def functions(self) -> list[str]:
        return self.name.split(SITE_SEPARATOR)


@dataclass(frozen=True)
class Coverage:
    """The sites of a capture with coverage rows, and the trace's span in seconds."""

    sites: list[SiteCoverage]
    span: float
    changes: dict[str, np.ndarray]  # function (or site) name -> `seq` of its site's coverage rows
    seqs: np.ndarray  # every coverage row's `seq`, in order

    @property
    def partial(self) -> bool:
        """Some site was not armed for the whole capture."""
        return not all(site.throughout for site in self.sites)

    def never_armed(self, kinds: tuple[str, ...]) -> list[SiteCoverage]:
        return [site for site in self.sites if site.kind in kinds and site.turns == 0]

    def armed_throughout(self, functions: set[str], start: float, end: float) -> bool:
        """Whether a site probing one of `functions` (or watching one of those objects) was
        armed from `start` to `end`."""
        return any(
            a <= start and end <= b
            for site in self.sites if functions.intersection(site.functions)
            for a, b in site.intervals
        )  # fmt: skip

    def of_kinds(self, kinds: tuple[str, ...]) -> list[SiteCoverage]:
        return [site for site in self.sites if site.kind in kinds]

    def changed_between(self, first: np.ndarray, last: np.ndarray) -> np.ndarray:
        """Per (first, last) pair of rows (their `seq`): whether some site was armed or disarmed
        between them (what the rows between show may then be missing a part)."""
        return np.searchsorted(self.seqs, last) > np.searchsorted(self.seqs, first, side="right")

    def turn(self, symbols: pd.Series, seqs: np.ndarray) -> np.ndarray:
        """Per row (its symbol and `seq`), how many times its symbol's site had been armed or
        disarmed before it: rows of different turns cannot pair up (a call or its return may
        have gone unseen between)."""
        turns = np.zeros(len(seqs), dtype=np.int64)
        names = symbols.to_numpy(dtype=object, na_value=None)
        seqs = np.asarray(seqs)
        for name, changed in self.changes.items():
            mine = names == name
            if mine.any():
                turns[mine] = np.searchsorted(changed, seqs[mine])
        return turns


def coverage_of(ctx: Context) -> Coverage | None:
    """The trace's coverage, or None when it has no coverage rows (in a batch: the whole trace's,
    from its facts)."""
    if ctx.before is not None:
        return ctx.before.facts.capture_coverage
    positions = ctx.positions_of(event=Event.COVERAGE.value)
    if len(positions) == 0:
        return None
    return coverage_from(ctx.rows_at(positions, COVERAGE_COLUMNS), float(np.nanmax(ctx.timeline.time)))


def coverage_from(rows: pd.DataFrame, end_time: float) -> Coverage:
    """The coverage the trace's coverage `rows` (in order) describe; `end_time`: its latest time."""
    # From the first coverage row (the capture armed its first set) to the last (it disarmed
    # everything at its end), or the trace's last row where a cut-off capture wrote no last one.
    start = float(rows["time"].min())
    still_armed = rows.groupby("symbol", sort=False)["value"].last().fillna(0).astype(bool).any()
    end = end_time if still_armed else float(rows["time"].max())
    sites, changed = [], {}
    for name, changes in rows.groupby("symbol", sort=False):
        armed_at: float | None = None
        intervals = []
        for time, value in zip(changes["time"].to_numpy(dtype=float), changes["value"].to_numpy(dtype=float, na_value=0)):
            if value and armed_at is None:
                armed_at = time
            elif not value and armed_at is not None:
                intervals.append((armed_at, time))
                armed_at = None
        if armed_at is not None:  # a capture cut off before it wrote the last disarm
            intervals.append((armed_at, end))
        seconds, turns = sum(b - a for a, b in intervals), len(intervals)
        values = changes["value"].fillna(0).astype(bool).tolist()
        sites.append(SiteCoverage(str(name), str(changes["kind"].iloc[0]), seconds, turns, values in ([True], [True, False]), tuple(intervals)))
        for function in str(name).split(SITE_SEPARATOR):
            changed[function] = changes["seq"].to_numpy(dtype=np.int64)
    return Coverage(sites, end - start, changed, rows["seq"].to_numpy(dtype=np.int64))


def not_observed(rule: Rule, coverage: Coverage) -> Finding | None:
    """A note for `rule` when the capture planned sites of the kinds it reads but armed none of
    them: its silence would mean nothing."""
    from irqmon.analysis.findings import Finding, fingerprint

    planned = coverage.of_kinds(rule.needs)
    if not planned or any(site.turns for site in planned):
        return None
    names = ", ".join(site.name for site in planned)
    return Finding(
        rule=rule.id, severity="note", title=f"{rule.id}: not observed (its probe sites were never armed)",
        message=f"The capture had more probe sites than comparators and never armed {names}: "
        f"{rule.id} could not see what it checks. Capture with rotation (the default), longer, or with fewer --probes.",
        fingerprint=fingerprint(rule.id, ["not-observed"]), count=0, first_time=0.0, last_time=0.0, first_seq=0,
        evidence={"never_armed": [site.name for site in planned]},
    )  # fmt: skip


def summary(coverage: Coverage) -> str:
    """`24 probe sites armed in turns over 0.8 s: each 12-41% of it; never armed: a, b`."""
    armed = [site for site in coverage.sites if site.turns]
    never = [site.name for site in coverage.sites if not site.turns]
    span = max(coverage.span, 1e-9)
    text = f"{len(coverage.sites)} probe sites over {coverage.span:.1f} s"
    if armed:
        shares = [100 * site.armed_seconds / span for site in armed]
        text += f": {len(armed)} armed in turns, each {min(shares):.0f}-{max(shares):.0f}% of the capture"
    if never:
        text += f"; never armed: {', '.join(never)}"
    return text
