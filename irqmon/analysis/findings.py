"""Findings: what a rule reports, and the grouping of a rule's hits into findings."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from irqmon import schema
from irqmon.analysis.context import ACT, EXC_NAME, IN_ISR, LABEL_COLUMNS, PRIO

if TYPE_CHECKING:
    from irqmon.analysis.context import Context
    from irqmon.analysis.registry import Rule

SEVERITIES = ("error", "warning", "note")
# What `SiteGroups.add` reads of every hit besides the site's columns (a site's first hit gets the others).
HIT_COLUMNS = ["seq", "time", *LABEL_COLUMNS, ACT, "symbol"]


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


def _in_order_of_appearance(first_seqs: dict[str, int], labels: list[str], seqs: list[int]) -> list[str]:
    """The labels so far, in order of their first hit's `seq` (`first_seqs`, updated with
    `labels`, each with the `seq` of its first hit in a batch)."""
    for label, seq in zip(labels, seqs, strict=True):
        first_seqs[label] = min(seq, first_seqs.get(label, seq))
    return sorted(first_seqs, key=first_seqs.__getitem__)


def _in_seq_order(hits: pd.DataFrame) -> pd.DataFrame:
    """`hits` sorted by `seq` (as they are, when they come in order already)."""
    seq = hits["seq"].to_numpy()
    return hits if len(seq) < 2 or bool((seq[1:] > seq[:-1]).all()) else hits.sort_values("seq")


def labelled(ctx: Context, hits: pd.DataFrame) -> pd.DataFrame:
    """`hits` with their exception's name (`exc_name`) and their context's label (`context`),
    each worked out once per distinct (exception, task, priority)."""
    label_of = numbered([hits[column] for column in LABEL_COLUMNS])
    distinct = hits.iloc[np.unique(label_of, return_index=True)[1]]
    labels = pd.array(ctx.labels_of_distinct(distinct), dtype="string")
    return hits.assign(**{EXC_NAME: ctx.names(distinct).array.take(label_of), "context": labels.take(label_of)})


def numbered(columns: list[pd.Series] | list[np.ndarray]) -> np.ndarray:
    """Per row, a number for its combination of values of `columns` (missing values one value
    each), numbered 0, 1, … in order of first appearance."""
    combination = np.zeros(len(columns[0]), dtype=np.int64)
    for column in columns:
        codes, values = pd.factorize(column, use_na_sentinel=False)
        combination = combination * (len(values) + 1) + codes
    return pd.factorize(combination)[0]


@dataclass
class Distinct:
    """Per site of a batch, the distinct values of a column among its hits, each with the `seq`
    of its first hit, in order of appearance (missing values left out)."""

    values: list[list[Any]]
    seqs: list[list[int]]


def distinct_per_site(site_of: np.ndarray, sites: int, column: pd.Series, seq: np.ndarray) -> Distinct:
    codes, uniques = pd.factorize(column)
    keep = codes >= 0
    pair = site_of[keep] * (len(uniques) + 1) + codes[keep]
    _, first = np.unique(pair, return_index=True)
    first = np.sort(first)  # in order of appearance (the hits are in order of seq)
    values: list[list[Any]] = [[] for _ in range(sites)]
    seqs: list[list[int]] = [[] for _ in range(sites)]
    kept_sites, kept_codes, kept_seqs = site_of[keep][first].tolist(), codes[keep][first], seq[keep][first].tolist()
    for site, value, first_seq in zip(kept_sites, uniques.take(kept_codes).tolist(), kept_seqs, strict=True):
        values[site].append(value)
        seqs[site].append(first_seq)
    return Distinct(values, seqs)


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
        """Add a batch's hits (indexed by position, with at least `HIT_COLUMNS` and the site's
        columns; a site's first hit gets the trace's other columns here). An `other_context`
        column, where a rule fills it, adds the second party's label. Without `ctx`, the hits are
        whole already: every column, `exc_name`, `context` and `handler` (rows a rule kept until
        the end of the trace to judge them)."""
        acts = {key: site.acts for key, site in self.sites.items()}
        if not hits.empty:
            hits = _in_seq_order(hits)
            if ctx is not None:
                hits = labelled(ctx, hits)
            self._add_sites(ctx, hits, acts)
        if self.inside is not None and ctx is not None:
            for key, site in self.sites.items():
                site.values.setdefault("inside", set()).update(self.inside(ctx, acts[key], site.symbols))

    def _add_sites(self, ctx: Context | None, hits: pd.DataFrame, acts: dict[tuple[Any, ...], set[int]]) -> None:
        """Fold `hits` (in order of seq, labelled) into their sites, on arrays: the hits grouped
        per site once, a frame only for a site's new first hit (and for `collect`)."""
        site_of = numbered([hits[column] for column in self.site])
        sites = int(site_of.max()) + 1
        order = np.argsort(site_of, kind="stable")  # each site's hits together, in order of seq
        ends = np.cumsum(np.bincount(site_of, minlength=sites))
        starts = ends - np.bincount(site_of, minlength=sites)
        first_hits = order[starts]
        seq = hits["seq"].to_numpy(dtype=np.int64)
        time = hits["time"].to_numpy(dtype=float, na_value=np.nan)[order]
        first_times = np.fmin.reduceat(time, starts).tolist()
        last_times = np.fmax.reduceat(time, starts).tolist()
        contexts = distinct_per_site(site_of, sites, hits["context"], seq)
        others = distinct_per_site(site_of, sites, hits["other_context"], seq) if "other_context" in hits else None
        if self.inside is not None:  # what `inside` reads: the sites' activations and functions
            act = hits[ACT].to_numpy(dtype=np.int64)
            act_sets = distinct_per_site(site_of, sites, hits[ACT], seq).values
            symbols = distinct_per_site(site_of, sites, hits["symbol"], seq).values
        keys = zip(*(hits[column].iloc[first_hits].tolist() for column in self.site))
        for number, key in enumerate(keys):
            site_key = tuple(plain(v) for v in key)
            first_hit = int(first_hits[number])
            site = self.sites.get(site_key)
            if site is None or int(seq[first_hit]) < int(site.first["seq"]):  # a rule may judge a hit late
                first = hits.iloc[[first_hit]]
                if ctx is not None:
                    missing = [c for c in ctx.columns if c not in first]
                    if missing:
                        first = first.join(ctx.rows_at(first.index.to_numpy(), missing))
                    first = first.assign(handler=ctx.handlers(first))
                if site is None:
                    site = self.sites[site_key] = _Site(first.iloc[0], 0, np.inf, -np.inf, [], set(), set(), {})
                site.first = first.iloc[0]
            site.count += int(ends[number] - starts[number])
            site.first_time = min(site.first_time, first_times[number])
            site.last_time = max(site.last_time, last_times[number])
            labels = [str(label) for label in contexts.values[number]]
            site.contexts = _in_order_of_appearance(site.context_seqs, labels, contexts.seqs[number])
            if others is not None:
                labels = [str(label) for label in others.values[number]]
                site.others = _in_order_of_appearance(site.other_seqs, labels, others.seqs[number])
            if self.collect is not None:
                self.collect(site.values, hits.iloc[order[starts[number] : ends[number]]])
            if self.inside is not None:
                site.symbols.update(symbols[number])  # the few distinct names, not every row
                acts[site_key] = acts.get(site_key, set()) | set(act_sets[number])
                site.acts = {int(act[order[ends[number] - 1]])}  # a site's activations follow one another

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
