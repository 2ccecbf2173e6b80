"""Reports for people: plotted panels, `report.md`, `report.html`, and the Perfetto export.

This package is the only part of irqmon that imports matplotlib (in `panels`, loaded by
`write_report` only, so `irqmon export` and the command line start without it).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from irqmon.errors import UsageError

if TYPE_CHECKING:
    import pandas as pd

    from irqmon.analysis import Analysis, Finding
    from irqmon.analysis.context import AnalysisConfig
    from irqmon.analysis.coverage import Coverage
    from irqmon.analysis.facts import TraceFacts
    from irqmon.report.model import ReportModel
    from irqmon.fleet.merge import Fleet
    from irqmon.report.links import SourceLinks

__all__ = ["write_fleet_report", "write_report", "write_report_in_batches"]


def write_report(
    analysis: Analysis,
    trace_path: Path,
    out_dir: Path | str,
    layout: str | Path = "full",
    window: tuple[float | None, float | None] = (None, None),
    source_url: str | None = None,
) -> Path:
    """Write `report.md`, `report.html` and the PNGs of `layout` into `out_dir`; return report.md's path.

    The report draws the analysis's context and shows its findings. `window` limits it to
    (from, to) seconds of the trace (None: its start or end). `source_url`: a template such as
    `https://github.com/OWNER/REPO/blob/COMMIT/{path}#L{line}` that makes source lines links.
    Panels a layout asks for are left out when nothing calls for them (a heap panel without a
    heap finding) or they would be empty; the report says which.
    """
    from irqmon.report import document
    from irqmon.report.model import build_model, rows_around

    model = build_model(analysis.context)
    windowed = window != (None, None)
    if windowed:
        try:
            model = model.clipped(*window)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    ctx = analysis.context
    near = {f.first_seq: rows_around(ctx, f.first_seq, document.EVENTS_BEFORE, document.EVENTS_AFTER) for f in analysis.findings}
    return _write(model, analysis.findings, near, ctx.coverage, trace_path, out_dir, layout, windowed, source_url)


def write_report_in_batches(
    trace_path: Path,
    findings: list[Finding],
    config: AnalysisConfig,
    elf_of: Callable[[dict[str, str]], Path | None],
    out_dir: Path | str,
    layout: str | Path = "full",
    window: tuple[float | None, float | None] = (None, None),
    source_url: str | None = None,
    batch_rows: int | None = None,
    drawn_rows: int | None = None,
    facts: TraceFacts | None = None,
) -> Path:
    """`write_report` of the trace file at `trace_path` read in batches (of `batch_rows`), with its
    `findings` (in order): the tables cover the whole trace, the panels a window of at most
    `drawn_rows` rows (see `irqmon.report.streamed`); source lines from the ELF `elf_of` names.
    `facts`: the trace's, when an analysis of it in batches has learned them (else a first pass
    over the trace learns them)."""
    from irqmon.analysis.facts import FACT_COLUMNS, facts_of
    from irqmon.report.streamed import DRAWN_ROWS, REPORT_BATCH_ROWS, view_in_batches
    from irqmon.tracefile import read_batches

    rows = batch_rows or REPORT_BATCH_ROWS
    if facts is None:
        facts = facts_of(read_batches(trace_path, rows, FACT_COLUMNS).as_read())
    batches = read_batches(trace_path, rows)
    elf = elf_of(batches.metadata)
    if elf:
        from irqmon.elf_sources import batches_with_elf_sources

        tables = batches_with_elf_sources(batches, elf)()
    else:
        tables = iter(batches)
    try:
        view = view_in_batches(tables, batches.metadata, config, facts, findings, window, rows, drawn_rows or DRAWN_ROWS)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    near = {f.first_seq: view.nearby.rows_around(f.first_seq) for f in findings}
    windowed = window != (None, None)
    return _write(view.model, findings, near, facts.capture_coverage, trace_path, out_dir, layout, windowed, source_url, view.note)


def _write(
    model: ReportModel, findings: list[Finding], near: dict[int, pd.DataFrame], coverage: Coverage | None, trace_path: Path,
    out_dir: Path | str, layout: str | Path, windowed: bool, source_url: str | None, drawn: str | None = None,
) -> Path:  # fmt: skip
    """The report of `model` and `findings`, with the rows `near` each finding's first seq."""
    from irqmon.analysis import all_rules
    from irqmon.report import document, panels
    from irqmon.report.layout import FOLLOWS, TABLES, load_layout

    spec = load_layout(layout)
    links = _source_links(source_url)
    out = _report_directory(out_dir)
    numbered = [panels.Numbered(f"F{i}", f) for i, f in enumerate(findings, start=1)]
    shown_rules = {n.finding.rule for n in numbered}
    title = trace_path.name
    sections = []
    for panel in spec.panels:
        if panel.panel in TABLES:
            sections.append(document.Section(panel, note=document.timing_missing(model) if panel.panel == "timing" else None))
            continue
        rules, reason = FOLLOWS.get(panel.panel, ((), ""))
        if rules and not panel.always and not shown_rules.intersection(rules):
            sections.append(document.Section(panel, note=reason))
            continue
        image = f"{panel.name}.png"
        note = panels.draw(model, numbered, panel, title, out / image)
        sections.append(document.Section(panel, image=None if note else image, note=note))
    loaded = all_rules()
    rules_shown = {rule_id: (loaded[rule_id].rule.summary, loaded[rule_id].doc) for rule_id in dict.fromkeys(n.finding.rule for n in numbered) if rule_id in loaded}
    events = {n.label: near[n.finding.first_seq] for n in numbered}
    contents = document.Contents(model, numbered, sections, trace_path, rules_shown, windowed, events, links, coverage, drawn)
    report_md = out / "report.md"
    report_md.write_text(document.markdown(contents), encoding="utf-8")
    (out / "report.html").write_text(document.html_page(contents, out), encoding="utf-8")
    return report_md


def write_fleet_report(fleet: Fleet, out_dir: Path | str, source_url: str | None = None) -> Path:
    """Write the report of many traces (`report.md`, `report.html`, a figure of the findings per
    firmware build and one per trace) into `out_dir`; return report.md's path."""
    from irqmon.report import fleet as fleet_report

    return fleet_report.write(fleet, _report_directory(out_dir), _source_links(source_url))


def _source_links(source_url: str | None) -> SourceLinks | None:
    from irqmon.report.links import SourceLinks, check_template

    return SourceLinks(check_template(source_url)) if source_url is not None else None


def _report_directory(out_dir: Path | str) -> Path:
    """`out_dir`, created if missing."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{out}: cannot create the report directory: {exc.strerror or exc}") from None
    return out
