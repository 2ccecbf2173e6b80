"""Reports for people: plotted panels, `report.md`, `report.html`, and the Perfetto export.

This package is the only part of irqmon that imports matplotlib (in `panels`, loaded by
`write_report` only, so `irqmon export` and the command line start without it).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from irqmon.errors import UsageError

if TYPE_CHECKING:
    from irqmon.analysis import Analysis
    from irqmon.fleet.merge import Fleet
    from irqmon.report.links import SourceLinks

__all__ = ["write_fleet_report", "write_report"]


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
    from irqmon.analysis import all_rules
    from irqmon.report import document, panels
    from irqmon.report.layout import FOLLOWS, TABLES, load_layout
    from irqmon.report.model import build_model, rows_around

    spec = load_layout(layout)
    links = _source_links(source_url)
    out = _report_directory(out_dir)
    model = build_model(analysis.context)
    windowed = window != (None, None)
    if windowed:
        try:
            model = model.clipped(*window)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    numbered = [panels.Numbered(f"F{i}", f) for i, f in enumerate(analysis.findings, start=1)]
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
    events = {n.label: rows_around(analysis.context, n.finding.first_seq, document.EVENTS_BEFORE, document.EVENTS_AFTER) for n in numbered}
    contents = document.Contents(model, numbered, sections, trace_path, rules_shown, windowed, events, links, analysis.context.coverage)
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
