"""Findings: what a rule reports, and the grouping of a rule's hits into findings."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from irqmon import schema
from irqmon.analysis.context import ACT, EXC_NAME, IN_ISR, PRIO

if TYPE_CHECKING:
    from irqmon.analysis.context import Context
    from irqmon.analysis.registry import Rule

SEVERITIES = ("error", "warning", "note")


@dataclass
class Finding:
    """One problem at one site, however often the trace shows it."""

    rule: str
    severity: str
    title: str
    message: str
    fingerprint: str
    count: int
    first_time: float
    last_time: float
    first_seq: int
    contexts: list[str] = field(default_factory=list)
    exception: str | None = None
    priority: int | None = None
    task: str | None = None
    symbol: str | None = None
    address: int | None = None
    callpath: list[str] = field(default_factory=list)
    source: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})


def fingerprint(rule: str, site: Sequence[Any]) -> str:
    """Stable id of a finding's site: the rule and what identifies the place, never a time."""
    text = "\x1f".join([rule, *("" if plain(v) is None else str(plain(v)) for v in site)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def plain(value: Any) -> Any:
    """A JSON-friendly Python value from a pandas/numpy scalar (None for missing)."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and value != value:
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


TextFn = Callable[[pd.Series, pd.DataFrame], str]
EvidenceFn = Callable[[pd.Series, pd.DataFrame], dict[str, Any]]


def group_hits(
    rule: Rule,
    ctx: Context,
    hits: pd.DataFrame,
    site: Sequence[str],
    title: TextFn,
    message: TextFn,
    evidence: EvidenceFn | None = None,
    severity: str | None = None,
) -> list[Finding]:
    """One finding per site: count, first/last time, every context involved.

    `hits` holds one row per occurrence (indexed by position) with the context's derived columns
    and at least `seq`, `time`, `ipsr`, `task`, `prio` and the site's columns: each site's first hit gets
    the trace's other columns here (a rule with many hits need not convert them for every hit).
    An `other_context` column, where a rule fills it, adds the second party's label.
    `title`, `message` and `evidence` see the first hit (every column) and the whole group.
    """
    if hits.empty:
        return []
    hits = hits.sort_values("seq")
    hits = hits.assign(**{EXC_NAME: ctx.names(hits)})
    hits["context"] = ctx.labels(hits)
    groups = hits.groupby(list(site), dropna=False, sort=False)
    is_first, group_of = (groups.cumcount() == 0).to_numpy(), groups.ngroup().to_numpy()
    firsts = hits[is_first].iloc[np.argsort(group_of[is_first], kind="stable")]  # group k's first hit k-th
    missing = [c for c in ctx.columns if c not in firsts]
    if missing:
        firsts = firsts.join(ctx.rows_at(firsts.index.to_numpy(), missing))
    # The handler's name only for each site's first hit (a regex over the call path).
    firsts = firsts.assign(handler=ctx.handlers(firsts))
    findings = []
    for number, (_, group) in enumerate(groups):
        first = firsts.iloc[number]
        contexts = group["context"].dropna().unique().tolist()  # in order of appearance
        if "other_context" in group:
            contexts += [c for c in group["other_context"].dropna().unique().tolist() if c not in contexts]
        callpath = plain(first["callpath"])
        findings.append(
            Finding(
                rule=rule.id,
                severity=severity or rule.severity,
                title=f"{rule.id}: {title(first, group)}",
                message=message(first, group),
                fingerprint=fingerprint(rule.id, [first[c] for c in site]),
                count=len(group),
                first_time=float(group["time"].min()),
                last_time=float(group["time"].max()),
                first_seq=int(first["seq"]),
                contexts=contexts,
                exception=plain(first[EXC_NAME]) if first[IN_ISR] else None,
                priority=plain(first[PRIO]) if first[IN_ISR] else None,
                task=plain(first["task"]),
                symbol=plain(first["symbol"]),
                address=plain(first["address"]),
                callpath=frame_list(callpath),
                source=plain(first["source"]),
                evidence=_json_values(evidence(first, group) if evidence else {}),
            )
        )
    return findings


def _json_values(evidence: dict[str, Any]) -> dict[str, Any]:
    return {key: value if isinstance(value, (list, dict)) else plain(value) for key, value in evidence.items()}


def frame_list(callpath: str | None, own: bool = False) -> list[str]:
    """The frames of a call path, innermost first; an ISR's path goes on into the interrupted
    code unless `own` stops it at `<exception>`."""
    frames = [f for f in (callpath or "").split(schema.CALLPATH_SEPARATOR) if f]
    return frames[: frames.index(schema.EXCEPTION_FRAME)] if own and schema.EXCEPTION_FRAME in frames else frames


@dataclass
class Group:
    """What a finding's title, message and evidence see of its site's hits when they are added
    batch by batch (`SiteGroups`): how many, and what the rule collected of them."""

    count: int
    values: dict[str, Any] = field(default_factory=dict)


GroupTextFn = Callable[[pd.Series, Group], str]
GroupEvidenceFn = Callable[[pd.Series, Group], dict[str, Any]]
CollectFn = Callable[[dict[str, Any], pd.DataFrame], None]
InsideFn = Callable[["Context", set[int], set[str]], set[str]]


@dataclass
class _Site:
    first: pd.Series
    count: int
    first_time: float
    last_time: float
    contexts: list[str]
    acts: set[int]  # the activations of its hits in the batch before (an activation may go on)
    symbols: set[str]
    values: dict[str, Any]
    others: list[str] = field(default_factory=list)  # the second parties (`other_context`), in order
    context_seqs: dict[str, int] = field(default_factory=dict)  # context -> `seq` of its first hit
    other_seqs: dict[str, int] = field(default_factory=dict)  # the second parties (`other_context`), likewise


def _in_order_of_appearance(first_seqs: dict[str, int], group: pd.DataFrame, column: str) -> list[str]:
    """The labels of `column` so far, in order of their first hit's `seq` (`first_seqs`, updated
    with `group`'s)."""
    for label, seq in group.dropna(subset=[column]).groupby(column, sort=False)["seq"].min().items():
        first_seqs[str(label)] = min(int(seq), first_seqs.get(str(label), int(seq)))
    return sorted(first_seqs, key=first_seqs.__getitem__)


class SiteGroups:
    """`group_hits` for hits that come batch by batch (a trace analysed in batches, or whole as
    one batch; a rule may judge a hit batches after a later one): one finding per site, with its
    count, first and last time and every context involved. `collect` adds what `title`, `message` and `evidence` need of a batch's hits to the
    site's `Group.values` (kept small: the hits themselves are not kept); `inside` gives the
    probed calls the site's calls made inside themselves, kept as `values["inside"]`; `severity`
    replaces the rule's for these findings. An `other_context` column, where a rule fills it,
    adds the second party's label after the hits' contexts (as `group_hits`)."""

    def __init__(
        self, rule: Rule, site: Sequence[str], title: GroupTextFn, message: GroupTextFn,
        evidence: GroupEvidenceFn | None = None, collect: CollectFn | None = None, inside: InsideFn | None = None,
        severity: str | None = None,
    ) -> None:  # fmt: skip
        self.rule, self.site, self.title, self.message, self.evidence = rule, list(site), title, message, evidence
        self.collect, self.inside, self.severity = collect, inside, severity
        self.sites: dict[tuple[Any, ...], _Site] = {}

    def add(self, ctx: Context | None, hits: pd.DataFrame) -> None:
        """Add a batch's hits (indexed by position, with the context's derived columns and at
        least `seq`, `time`, `ipsr`, `task`, `prio` and the site's columns). An `other_context`
        column, where a rule fills it, adds the second party's label. Without `ctx`, the hits are
        whole already: every column, `exc_name`, `context` and `handler` (rows a rule kept until
        the end of the trace to judge them)."""
        acts = {key: site.acts for key, site in self.sites.items()}
        if not hits.empty:
            hits = hits.sort_values("seq")
            if ctx is not None:
                hits = hits.assign(**{EXC_NAME: ctx.names(hits)})
                hits["context"] = ctx.labels(hits)
            for key, group in hits.groupby(self.site, dropna=False, sort=False):
                site_key = tuple(plain(v) for v in (key if isinstance(key, tuple) else (key,)))
                site = self.sites.get(site_key)
                if site is None or int(group["seq"].iloc[0]) < int(site.first["seq"]):  # a rule may judge a hit late
                    first = group.iloc[[0]]
                    if ctx is not None:
                        missing = [c for c in ctx.columns if c not in first]
                        if missing:
                            first = first.join(ctx.rows_at(first.index.to_numpy(), missing))
                        first = first.assign(handler=ctx.handlers(first))
                    if site is None:
                        site = self.sites[site_key] = _Site(first.iloc[0], 0, np.inf, -np.inf, [], set(), set(), {})
                    site.first = first.iloc[0]
                site.count += len(group)
                site.first_time = min(site.first_time, float(group["time"].min()))
                site.last_time = max(site.last_time, float(group["time"].max()))
                site.contexts = _in_order_of_appearance(site.context_seqs, group, "context")
                if "other_context" in group:
                    site.others = _in_order_of_appearance(site.other_seqs, group, "other_context")
                site.symbols.update(group["symbol"].dropna().unique())  # the few distinct names, not every row
                if self.collect is not None:
                    self.collect(site.values, group)
                acts[site_key] = acts.get(site_key, set()) | set(group[ACT].tolist())
                site.acts = {int(group[ACT].iloc[-1])}  # a site's activations follow one another
        if self.inside is not None and ctx is not None:
            for key, site in self.sites.items():
                site.values.setdefault("inside", set()).update(self.inside(ctx, acts[key], site.symbols))

    def findings(self) -> list[Finding]:
        findings = []
        for site in self.sites.values():
            first, group = site.first, Group(site.count, site.values)
            findings.append(
                Finding(
                    rule=self.rule.id,
                    severity=self.severity or self.rule.severity,
                    title=f"{self.rule.id}: {self.title(first, group)}",
                    message=self.message(first, group),
                    fingerprint=fingerprint(self.rule.id, [first[c] for c in self.site]),
                    count=site.count,
                    first_time=site.first_time,
                    last_time=site.last_time,
                    first_seq=int(first["seq"]),
                    contexts=site.contexts + [c for c in site.others if c not in site.contexts],
                    exception=plain(first[EXC_NAME]) if first[IN_ISR] else None,
                    priority=plain(first[PRIO]) if first[IN_ISR] else None,
                    task=plain(first["task"]),
                    symbol=plain(first["symbol"]),
                    address=plain(first["address"]),
                    callpath=frame_list(plain(first["callpath"])),
                    source=plain(first["source"]),
                    evidence=_json_values(self.evidence(first, group) if self.evidence else {}),
                )
            )
        return findings
