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

__all__ = ["write_report"]


def write_report(
    analysis: Analysis,
    trace_path: Path,
    out_dir: Path | str,
    layout: str | Path = "full",
    window: tuple[float | None, float | None] = (None, None),
) -> Path:
    """Write `report.md`, `report.html` and the PNGs of `layout` into `out_dir`; return report.md's path.

    The report draws the analysis's context and shows its findings. `window` limits it to
    (from, to) seconds of the trace (None: its start or end).
    """
    from irqmon.analysis import all_rules
    from irqmon.report import document, panels
    from irqmon.report.layout import load_layout
    from irqmon.report.model import build_model

    spec = load_layout(layout)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{out}: cannot create the report directory: {exc.strerror or exc}") from None
    model = build_model(analysis.context)
    windowed = window != (None, None)
    if windowed:
        try:
            model = model.clipped(*window)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    numbered = [panels.Numbered(f"F{i}", f) for i, f in enumerate(analysis.findings, start=1)]
    title = trace_path.name
    sections = []
    for panel in spec.panels:
        if panel.panel == "summary":
            sections.append(document.Section(panel))
            continue
        image = f"{panel.name}.png"
        note = panels.draw(model, numbered, panel, title, out / image)
        sections.append(document.Section(panel, image=None if note else image, note=note))
    docs = {rule_id: loaded.doc for rule_id, loaded in all_rules().items()}
    report_md = out / "report.md"
    report_md.write_text(document.markdown(model, numbered, sections, trace_path, docs, windowed), encoding="utf-8")
    page = document.html_page(model, numbered, sections, trace_path, docs, windowed, out)
    (out / "report.html").write_text(page, encoding="utf-8")
    return report_md
