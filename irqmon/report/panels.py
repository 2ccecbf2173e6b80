"""The report's figures (matplotlib's Agg canvas, no pyplot): the only module of irqmon that plots.

Every panel aggregates before drawing — intervals merged below a pixel, rates binned, points
thinned to one per pixel — so a trace of a million events draws in seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib import colormaps
from matplotlib.colors import TABLEAU_COLORS, to_hex
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

from irqmon.analysis import Finding
from irqmon.report.layout import PanelSpec
from irqmon.report.model import ReportModel, busy_per_bin, load_window

DPI = 100
PIXELS = 1200  # horizontal resolution the aggregation aims at
MAX_RATE_BINS = 1000
LOG_SPAN = 20  # a rate axis whose values span more than this ratio is logarithmic
LANE_HEIGHT = 0.7
MIN_SHARE = 0.12  # a column that ran at all is drawn at least this tall
TIME_LABEL = "time since capture start (s)"
FINDING_COLOR = "#d62728"
THREAD_COLOR = "#4c72b0"
STYLE = {"text.parse_math": False, "font.size": 9, "axes.titlesize": 11}  # names with '$' stay text


@dataclass(frozen=True)
class Numbered:
    """A finding and its label in the report (`F1`)."""

    label: str
    finding: Finding


PanelFn = Callable[[ReportModel, Sequence[Numbered], PanelSpec, str], "Figure | str"]


def draw(model: ReportModel, findings: Sequence[Numbered], spec: PanelSpec, title: str, path: Path) -> str | None:
    """Save the panel as a PNG at `path`; the reason instead when the trace has nothing to show."""
    if model.duration <= 0 and spec.panel != "heap":
        return "the trace spans no time"
    with matplotlib.rc_context(STYLE):
        result = PANELS[spec.panel](model, findings, spec, title)
        if isinstance(result, str):
            return result
        FigureCanvasAgg(result)
        result.savefig(path, dpi=DPI)
    return None


def zoom_window(model: ReportModel, findings: Sequence[Numbered]) -> tuple[float, float] | None:
    """A window around the first finding in time: a little before it, more after it."""
    times = [n.finding.first_time for n in findings if model.start <= n.finding.first_time <= model.end]
    if not times:
        return None
    first = min(times)
    acts = model.activations
    typical = float(acts["duration"].median()) if len(acts) else 0.0
    width = max(model.duration / 25, typical * 20, 1e-6)
    return max(model.start, first - width * 0.2), min(model.end, first + width * 0.8)


# --- aggregation ------------------------------------------------------------------------------


def merge_intervals(starts: np.ndarray, ends: np.ndarray, gap: float) -> tuple[np.ndarray, np.ndarray]:
    """Intervals joined where they overlap or are closer than `gap` (one pixel)."""
    if len(starts) == 0:
        return starts, ends
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], np.maximum.accumulate(ends[order])
    new = np.r_[True, s[1:] > e[:-1] + gap]
    group = np.cumsum(new) - 1
    return s[new], np.maximum.reduceat(e, np.flatnonzero(new))[: group[-1] + 1]


def thin_points(times: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Indices of `times` keeping at most one point per pixel column."""
    if len(times) <= PIXELS:
        return np.arange(len(times))
    column = np.floor((times - lo) / max(hi - lo, 1e-12) * PIXELS)
    return np.unique(column, return_index=True)[1]


def occupancy(starts: np.ndarray, ends: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-column edges and the share of each column the intervals cover (0…1)."""
    edges = np.linspace(lo, hi, PIXELS + 1)
    s, e = merge_intervals(starts, ends, 0.0)
    return edges, np.clip(busy_per_bin(s, e, edges) / (edges[1] - edges[0]), 0.0, 1.0)


def _lane(ax, starts: np.ndarray, ends: np.ndarray, y: float, lo: float, hi: float, **style) -> None:
    """A lane as one bar per pixel column, as tall as the share of it covered (a sliver stays visible)."""
    if len(starts) == 0:
        return
    edges, share = occupancy(starts, ends, lo, hi)
    height = np.where(share > 0, LANE_HEIGHT * np.maximum(share, MIN_SHARE), 0.0)
    ax.fill_between(edges, y - LANE_HEIGHT / 2, y - LANE_HEIGHT / 2 + np.r_[height, height[-1]], step="post", linewidth=0, **style)


# --- panels -----------------------------------------------------------------------------------


def timeline(model: ReportModel, findings: Sequence[Numbered], spec: PanelSpec, title: str) -> Figure | str:
    """Thread/task lanes and one lane per exception (most urgent on top): solid where it ran,
    pale where it was active but preempted; findings marked where they happened."""
    if spec.zoom:
        window = zoom_window(model, findings)
        if window is None:
            return "no finding to zoom on"
        model = model.clipped(*window)
    lanes = model.lanes
    if lanes.empty:
        return "no events to draw"
    fig = Figure(figsize=(spec.width, max(spec.height, 0.9 + 0.38 * len(lanes))))
    ax = fig.add_subplot()
    y_of = {lane: len(lanes) - 1 - i for i, lane in enumerate(lanes["lane"])}
    colors = _lane_colors(lanes)
    acts, segs = model.activations, model.segments
    for lane, kind in zip(lanes["lane"], lanes["kind"]):
        y, lo, hi = y_of[lane], model.start, model.end
        if kind == "exception":
            mine = acts[(acts["exception"] == lane).to_numpy(dtype=bool)]
            _lane(ax, mine["start"].to_numpy(), mine["end"].to_numpy(), y, lo, hi, color=colors[lane], alpha=0.3)
        ran = segs[(segs["lane"] == lane).to_numpy(dtype=bool)]
        _lane(ax, ran["start"].to_numpy(), ran["end"].to_numpy(), y, lo, hi, color=colors[lane])
    _mark_findings(ax, model, findings, y_of)
    ax.set_yticks(list(y_of.values()), list(lanes["label"]))
    ax.set_ylim(-0.7, len(lanes) - 0.3)
    ax.set_xlim(model.start, model.end)
    ax.set_xlabel(TIME_LABEL)
    ax.set_ylabel("context")
    ax.grid(axis="x", alpha=0.3)
    zoomed = f" (zoom {model.start:.4f}–{model.end:.4f} s around the first finding)" if spec.zoom else ""
    ax.set_title(spec.title or f"ISR timeline{zoomed}: {title}")
    ax.legend(
        handles=[
            Patch(color="grey", label="running (bar height: share\nof each pixel's time)"),
            Patch(color="grey", alpha=0.3, label="active, preempted"),
            Line2D([], [], color=FINDING_COLOR, marker="v", label="finding (first … last time)"),
        ],
        loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False,
    )  # fmt: skip
    fig.tight_layout()
    return fig


def rates(model: ReportModel, findings: Sequence[Numbered], spec: PanelSpec, title: str) -> Figure | str:
    """Entries per second and share of time in the handler, per exception, with the storm thresholds."""
    acts = model.activations
    if acts.empty:
        return "no exception entries in this trace"
    cfg = model.config
    # The storm rule judges the handler's share of a sliding window: bins of that window, unless too many.
    bins = int(np.clip(model.duration / cfg.storm_window, 1, MAX_RATE_BINS)) if cfg.storm_window > 0 else MAX_RATE_BINS
    edges = np.linspace(model.start, model.end, bins + 1)
    width = edges[1] - edges[0]
    fig = Figure(figsize=(spec.width, spec.height))
    top, bottom = fig.subplots(2, 1, sharex=True)
    colors = _lane_colors(model.lanes)
    for name, mine in acts.groupby("exception", sort=False):
        entries = np.histogram(mine["start"].to_numpy(), bins=edges)[0]
        rate = np.where(entries > 0, entries / width, np.nan)
        top.step(edges[:-1], rate, where="post", color=colors.get(name), label=str(name), linewidth=1.2)
        share = busy_per_bin(mine["start"].to_numpy(), mine["end"].to_numpy(), edges) / width * 100
        bottom.step(edges[:-1], share, where="post", color=colors.get(name), linewidth=1.2)
    if cfg.storm_rate is not None:
        top.axhline(cfg.storm_rate, color=FINDING_COLOR, linestyle="--", linewidth=1, label=f"storm rate threshold ({cfg.storm_rate:g}/s)")
    bottom.axhline(cfg.storm_share * 100, color=FINDING_COLOR, linestyle="--", linewidth=1, label=f"storm share threshold ({cfg.storm_share:.0%})")
    low, high = top.dataLim.y0, top.dataLim.y1
    if low > 0 and high / low > LOG_SPAN:  # rates over decades: log axis, labelled in plain numbers
        top.set_yscale("log")
        top.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
        top.yaxis.set_minor_formatter(NullFormatter())
    else:
        top.set_ylim(bottom=0)
    top.set_ylabel("entries / s")
    bottom.set_ylabel("time in handler (%)")
    bottom.set_ylim(0, 105)
    bottom.set_xlabel(TIME_LABEL)
    bottom.set_xlim(model.start, model.end)
    for n in findings:
        f = n.finding
        if f.rule != "interrupt-storm":
            continue
        marks = {f.first_time: f"{n.label} first storm", f.last_time: f"{n.label} last storm"} if f.last_time > f.first_time else {f.first_time: f"{n.label} storm"}
        for at, text in marks.items():
            if model.start <= at <= model.end:
                for ax in (top, bottom):
                    ax.axvline(at, color=FINDING_COLOR, linestyle=":", linewidth=1.2)
                bottom.annotate(text, (at, 0.5), xycoords=("data", "axes fraction"), xytext=(3, 0), textcoords="offset points",
                                color=FINDING_COLOR, fontsize=8, rotation=90, va="center")  # fmt: skip
    top.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    bottom.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    rule = f"storm: ≥{cfg.storm_min_entries} back-to-back entries, ≥{cfg.storm_share:.0%} of {cfg.storm_window * 1e3:g} ms in the handler"
    top.set_title(spec.title or f"Per-IRQ entry rate and handler load: {title}\n{width * 1e3:.3g} ms bins; {rule}")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def load(model: ReportModel, findings: Sequence[Numbered], spec: PanelSpec, title: str) -> Figure | str:
    """CPU load over time: per window, the share of its time in handler mode, stacked by exception
    (over the whole trace when the other panels draw a part of it)."""
    span = model.whole if model.whole is not None else model
    if (model.whole.activations if model.whole is not None else len(model.activations)) == 0:
        return "no exception entries in this trace"
    window = load_window(span.duration)
    shares = model.cpu_load(window)
    lanes = model.whole.lanes() if model.whole is not None else model.lanes
    colors = _lane_colors(lanes)
    order = [lane for lane in lanes["lane"] if lane in shares.columns][::-1]  # most urgent on top
    fig = Figure(figsize=(spec.width, spec.height))
    ax = fig.add_subplot()
    edges = np.r_[shares.index.to_numpy(), span.end]
    bottom = np.zeros(len(shares))
    for lane in order:
        top = bottom + shares[lane].to_numpy() * 100
        ax.fill_between(edges, np.r_[bottom, bottom[-1]], np.r_[top, top[-1]], step="post", color=colors.get(lane), linewidth=0, label=str(lane))
        bottom = top
    ax.step(edges, np.r_[bottom, bottom[-1]], where="post", color="black", linewidth=0.8, label="handler mode (total)")
    ax.set_ylim(0, 105)
    ax.set_xlim(span.start, span.end)
    ax.set_ylabel("time in handler mode (%)")
    ax.set_xlabel(TIME_LABEL)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    halted = " (includes the time the capture halted the core)" if model.halting() else ""
    ax.set_title(spec.title or f"CPU load: share of each {window * 1e3:g} ms window in handler mode{halted}: {title}")
    fig.tight_layout()
    return fig


def masks(model: ReportModel, findings: Sequence[Numbered], spec: PanelSpec, title: str) -> Figure | str:
    """BASEPRI and PRIMASK as steps over time; critical-section findings marked."""
    data = model.masks
    if data.empty:
        return "no BASEPRI/PRIMASK values in this trace"
    fig = Figure(figsize=(spec.width, spec.height))
    axes = fig.subplots(2, 1, sharex=True)
    for ax, register, label in zip(axes, ("basepri", "primask"), ("BASEPRI (raw, 8 bits)", "PRIMASK (1 = IRQs off)")):
        rows = data[data["register"] == register]
        if rows.empty:
            ax.text(0.5, 0.5, f"{register.upper()} not traced", transform=ax.transAxes, ha="center", va="center")
        else:
            _step(ax, rows["time"].to_numpy(), rows["value"].to_numpy(dtype=float), model)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    if model.max_syscall_priority is not None:
        axes[0].axhline(model.max_syscall_priority, color="#8172b2", linestyle=":", label=f"max syscall priority (0x{model.max_syscall_priority:x})")
    basepri = data.loc[data["register"] == "basepri", "value"]
    ticks = sorted(set(basepri.tolist()) | ({model.max_syscall_priority} if model.max_syscall_priority is not None else set()))
    if ticks and len(ticks) <= 8:
        axes[0].set_yticks(ticks, [f"0x{t:02x}" for t in ticks])
    axes[1].set_yticks([0, 1])
    axes[1].set_ylim(-0.15, 1.3)
    for n in findings:
        if n.finding.rule == "critical-section-imbalance" and model.start <= n.finding.first_time <= model.end:
            for ax in axes:
                ax.axvline(n.finding.first_time, color=FINDING_COLOR, linestyle="--", linewidth=1)
            axes[0].annotate(n.label, (n.finding.first_time, 1), xycoords=("data", "axes fraction"), color=FINDING_COLOR, fontsize=8, va="bottom")
    handles = axes[0].get_legend_handles_labels()[0]
    if any(n.finding.rule == "critical-section-imbalance" for n in findings):
        handles.append(Line2D([], [], color=FINDING_COLOR, linestyle="--", label="critical-section imbalance"))
    if handles:
        axes[0].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    axes[1].set_xlabel(TIME_LABEL)
    axes[1].set_xlim(model.start, model.end)
    axes[0].set_title(spec.title or f"Interrupt masks: {title}")
    fig.tight_layout()
    return fig


def locks(model: ReportModel, findings: Sequence[Numbered], spec: PanelSpec, title: str) -> Figure | str:
    """One lane per HAL Lock field and mutex: held intervals coloured by holder, contention marked."""
    events, holds = model.lock_events, model.locks
    names = list(dict.fromkeys([*holds["lock"], *events["lock"]]))
    if not names:
        return "no HAL lock or mutex events in this trace"
    fig = Figure(figsize=(spec.width, max(spec.height, 1.2 + 0.5 * len(names))))
    ax = fig.add_subplot()
    y_of = {name: len(names) - 1 - i for i, name in enumerate(names)}
    holders = list(dict.fromkeys(holds["holder"]))
    palette = _palette(len(holders))
    handles = []
    for holder, color in zip(holders, palette):
        mine = holds[(holds["holder"] == holder).to_numpy(dtype=bool)]
        for name, per_lock in mine.groupby("lock", sort=False):
            _lane(ax, per_lock["start"].to_numpy(), per_lock["end"].to_numpy(), y_of[name], model.start, model.end, color=color)
        handles.append(Patch(color=color, label=f"held by {holder}"))
    for contention, style in ((False, {"marker": "|", "color": "#555555", "s": 40}), (True, {"marker": "x", "color": FINDING_COLOR, "s": 30})):
        points = events[events["contended"] == contention]
        keep = thin_points(points["time"].to_numpy(), model.start, model.end)
        points = points.iloc[keep]
        ax.scatter(points["time"], points["lock"].map(y_of).astype(float) + 0.45, zorder=3, **style)
    handles += [
        Line2D([], [], marker="|", color="#555555", linestyle="", label="take / test / release"),
        Line2D([], [], marker="x", color=FINDING_COLOR, linestyle="", label="ISR found it held (contention)"),
    ]
    ax.set_yticks(list(y_of.values()), names)
    ax.set_ylim(-0.6, len(names) - 0.2)
    ax.set_xlim(model.start, model.end)
    ax.set_xlabel(TIME_LABEL)
    ax.set_ylabel("lock")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    ax.set_title(spec.title or f"Locks and mutexes: who held them: {title}")
    fig.tight_layout()
    return fig


def heap(model: ReportModel, findings: Sequence[Numbered], spec: PanelSpec, title: str) -> Figure | str:
    """malloc/free calls by context: thread mode and tasks against each ISR."""
    calls = model.heap
    if calls.empty:
        return "no heap calls in this trace"
    counts = calls.groupby(["context", "role"]).size().unstack(fill_value=0)
    in_isr = calls.groupby("context")["in_isr"].any().reindex(counts.index)
    order = in_isr.sort_values(kind="stable").index
    counts = counts.reindex(order)
    fig = Figure(figsize=(spec.width, max(spec.height, 1.2 + 0.45 * len(counts))))
    ax = fig.add_subplot()
    left = np.zeros(len(counts))
    styles = {"alloc": ("malloc / calloc / realloc", None), "free": ("free", "//")}
    for role in counts.columns:
        label, hatch = styles.get(str(role), (str(role), ".."))
        colors = [FINDING_COLOR if isr else THREAD_COLOR for isr in in_isr.reindex(counts.index)]
        ax.barh(range(len(counts)), counts[role].to_numpy(), left=left, color=colors, hatch=hatch, edgecolor="white", label=label)
        left += counts[role].to_numpy()
    ax.set_yticks(range(len(counts)), [f"{c} (ISR)" if in_isr[c] else str(c) for c in counts.index])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("heap calls (count)")
    ax.set_ylabel("context")
    ax.legend(
        handles=[Patch(color=THREAD_COLOR, label="thread mode"), Patch(color=FINDING_COLOR, label="interrupt handler"),
                 Patch(facecolor="white", edgecolor="black", hatch="//", label="free")],
        loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False,
    )  # fmt: skip
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(spec.title or f"Heap calls by context: {title}")
    fig.tight_layout()
    return fig


PANELS: dict[str, PanelFn] = {"timeline": timeline, "load": load, "rates": rates, "masks": masks, "locks": locks, "heap": heap}


# --- many traces ------------------------------------------------------------------------------

MAX_BAR_LABELS = 40  # more bars than this are left unlabelled (traces in time order)
BAR_LABEL_CHARS = 32  # a longer label keeps its end (a trace's file name)


def stacked_findings(counts: pd.DataFrame, title: str, xlabel: str, path: Path, width: float = 11.0, height: float = 4.5) -> None:
    """Save a bar per row of `counts` (in its order), stacked by column (a rule: how many distinct
    findings of it), as a PNG at `path`."""
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(width, height))
        ax = fig.add_subplot()
        positions = np.arange(len(counts))
        bottom = np.zeros(len(counts))
        for rule, color in zip(counts.columns, _many_colors(len(counts.columns)), strict=True):
            values = counts[rule].to_numpy(dtype=float)
            ax.bar(positions, values, bottom=bottom, color=color, label=str(rule), width=0.8)
            bottom += values
        if len(counts) <= MAX_BAR_LABELS:
            labels = [_label_end(str(label)) for label in counts.index]
            ax.set_xticks(positions, labels, rotation=30 if len(counts) > 6 else 0, ha="right" if len(counts) > 6 else "center")
        else:
            ax.xaxis.set_major_formatter(NullFormatter())
        ax.set_xlim(-0.6, max(len(counts), 1) - 0.4)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("findings (distinct sites)")
        ax.set_xlabel(xlabel)
        ax.grid(axis="y", alpha=0.3)
        if len(counts.columns):
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
        else:
            ax.text(0.5, 0.5, "no findings", transform=ax.transAxes, ha="center", va="center")
        ax.set_title(title)
        fig.tight_layout()
        FigureCanvasAgg(fig)
        fig.savefig(path, dpi=DPI)


# --- helpers ----------------------------------------------------------------------------------


def _label_end(label: str) -> str:
    return label if len(label) <= BAR_LABEL_CHARS else "…" + label[-(BAR_LABEL_CHARS - 1) :]


def _many_colors(count: int) -> list[str]:
    """Up to 18 distinct colours (matplotlib's tab20 without its reds, which mark findings)."""
    base = [to_hex(color) for number, color in enumerate(colormaps["tab20"].colors) if number not in (6, 7)]
    return [base[i % len(base)] for i in range(count)]


def _step(ax, times: np.ndarray, values: np.ndarray, model: ReportModel) -> None:
    """A step plot, or per-pixel min/max bands when there are more changes than pixels."""
    times, values = np.r_[times, model.end], np.r_[values, values[-1]]
    if len(times) <= 4 * PIXELS:
        ax.step(times, values, where="post", color=THREAD_COLOR, linewidth=1.2)
        return
    column = np.clip(((times - model.start) / max(model.duration, 1e-12) * PIXELS).astype(np.int64), 0, PIXELS - 1)
    low = pd.Series(values).groupby(column).min()
    high = pd.Series(values).groupby(column).max()
    x = model.start + low.index.to_numpy() / PIXELS * model.duration
    ax.fill_between(x, low.to_numpy(), high.to_numpy(), step="post", color=THREAD_COLOR, alpha=0.6, linewidth=0.8)


def _mark_findings(ax, model: ReportModel, findings: Sequence[Numbered], y_of: dict[str, int]) -> None:
    """A marker at each finding's first time in its context's lane, a line to its last time;
    labels of findings that start in the same pixel are joined (`F1,F2`)."""
    fallback = y_of.get("Thread", max(y_of.values(), default=0))
    labels: dict[tuple[float, int], list[str]] = {}
    pixel = max(model.duration, 1e-12) / PIXELS * 8
    for n in findings:
        f = n.finding
        if f.last_time < model.start or f.first_time > model.end:
            continue
        task_lane = f"task {f.task}"
        y = y_of.get(f.exception or "", y_of.get(task_lane, fallback))
        first, last = max(f.first_time, model.start), min(f.last_time, model.end)
        ax.plot([first, last], [y + 0.42, y + 0.42], color=FINDING_COLOR, linewidth=1.5)
        ax.plot([first], [y + 0.42], marker="v", color=FINDING_COLOR, markersize=7)
        labels.setdefault((round(first / pixel), y), []).append(n.label)
    for (column, y), names in labels.items():
        ax.annotate(",".join(names), (column * pixel, y + 0.42), xytext=(4, 2), textcoords="offset points", color=FINDING_COLOR,
                    fontsize=8, fontweight="bold")  # fmt: skip


def _lane_colors(lanes: pd.DataFrame) -> dict[str, str]:
    exceptions = [lane for lane, kind in zip(lanes["lane"], lanes["kind"]) if kind == "exception"]
    colors = dict(zip(exceptions, _palette(len(exceptions), skip_blue=True)))
    threads = [lane for lane, kind in zip(lanes["lane"], lanes["kind"]) if kind == "thread"]
    colors.update({lane: THREAD_COLOR for lane in threads})
    return colors


def _palette(count: int, skip_blue: bool = False) -> list[str]:
    base = [color for name, color in TABLEAU_COLORS.items() if name != "tab:red"]  # red marks findings
    if skip_blue:  # blue is thread mode's
        base = base[1:]
    return [base[i % len(base)] for i in range(count)]
