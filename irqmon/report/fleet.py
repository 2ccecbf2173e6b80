"""The report of many traces (`irqmon report TRACE_OR_DIR…`): the findings merged across traces,
drawn by firmware build and by trace, as `report.md` and `report.html`."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pandas as pd

from irqmon.fleet.merge import Fleet, Sighting
from irqmon.fleet.task import TraceResult
from irqmon.report.document import CSS, SEVERITIES, Cell, Link, esc, html_table, md, md_table
from irqmon.report.links import SourceLinks

BY_BUILD = "findings-by-build.png"
BY_TRACE = "findings-by-trace.png"
BUILD_ID_SHOWN = 12  # leading hex digits of a build id in labels
NO_BUILD = "no build id"
FINDING_HEADER = ["severity", "rule", "finding", "source", "traces", "occurrences", "builds", "first seen", "last seen"]
TRACE_HEADER = ["trace", "taken", "build", "rows", "findings"]


FIGURES = [(BY_BUILD, "Findings per firmware build"), (BY_TRACE, "Findings per trace")]  # file, heading


def write(fleet: Fleet, out: Path, links: SourceLinks | None) -> Path:
    """Draw the figures and write `report.md` and `report.html` into `out`; return report.md's path."""
    from irqmon.report import panels

    names = trace_names(fleet.results)
    sightings = sightings_table(fleet)
    by_build = counts_by(sightings, "build", [_build_label(b, fleet) for b in _builds_in_order(fleet)])
    by_trace = counts_by(sightings, "trace", [names[r.path] for r in fleet.analysed])
    panels.stacked_findings(by_build, "Findings by rule per firmware build", "firmware build (traces)", out / BY_BUILD)
    panels.stacked_findings(by_trace, "Findings by rule per trace", f"trace, in the order taken ({len(fleet.analysed)})", out / BY_TRACE)
    report_md = out / "report.md"
    report_md.write_text(markdown(fleet, names, links), encoding="utf-8")
    (out / "report.html").write_text(html_page(fleet, names, links, out), encoding="utf-8")
    return report_md


def trace_names(results: list[TraceResult]) -> dict[str, str]:
    """Each trace's path, relative to the folder all of them are in."""
    paths = [os.path.abspath(r.path) for r in results]
    common = os.path.commonpath([os.path.dirname(p) for p in paths]) if paths else ""
    return {r.path: os.path.relpath(p, common) for r, p in zip(results, paths, strict=True)}


def sightings_table(fleet: Fleet) -> pd.DataFrame:
    """One row per merged finding and trace it was seen in: fingerprint, rule, trace, build label."""
    names = trace_names(fleet.results)
    build_of = {r.path: _build_label(r.build_id, fleet) for r in fleet.analysed}
    rows = [
        (m.finding.fingerprint, m.finding.rule, names[trace], build_of[trace])
        for m in fleet.findings for trace in m.traces
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["fingerprint", "rule", "trace", "build"])


def counts_by(sightings: pd.DataFrame, group: str, order: list[str]) -> pd.DataFrame:
    """Distinct findings per `group` value (rows, in `order`, absent ones as 0) and rule (columns)."""
    counts = sightings.groupby([group, "rule"])["fingerprint"].nunique().unstack("rule", fill_value=0)
    return counts.reindex(order, fill_value=0).reindex(sorted(counts.columns), axis=1)


def _builds_in_order(fleet: Fleet) -> list[str | None]:
    return list(dict.fromkeys(r.build_id for r in fleet.analysed))


def _build_label(build_id: str | None, fleet: Fleet) -> str:
    traces = sum(1 for r in fleet.analysed if r.build_id == build_id)
    return f"{build_id[:BUILD_ID_SHOWN] if build_id else NO_BUILD} ({traces})"


def verdict(fleet: Fleet) -> tuple[str, str]:
    """(`❌`/`⚠️`/`✅`, what was found across how many traces)."""
    counts = {s: sum(1 for m in fleet.findings if m.severity == s) for s in SEVERITIES}
    words = ", ".join(f"{counts[s]} {s}{'' if counts[s] == 1 else 's'}" for s in SEVERITIES) if fleet.findings else "no findings"
    mark = "❌" if counts["error"] else "⚠️" if counts["warning"] else "✅"
    return mark, f"{words} in {len(fleet.analysed)} traces"


def facts(fleet: Fleet) -> list[tuple[str, str]]:
    known = [r.seen_at for r in fleet.analysed]
    items = [("traces", str(len(fleet.results))), ("analysed", str(len(fleet.analysed))), ("failed", str(len(fleet.failed))),
             ("builds", str(len(fleet.builds)))]  # fmt: skip
    if known:
        items.append(("taken", f"{min(known)} – {max(known)}"))
    return items


def finding_rows(fleet: Fleet, names: dict[str, str], links: SourceLinks | None) -> list[list[Cell]]:
    rows: list[list[Cell]] = []
    for m in fleet.findings:
        f = m.finding
        source = Link(f.source or "", links.url(f.source) if links and f.source else None)
        rows.append([m.severity, f.rule, f.title.removeprefix(f"{f.rule}: "), source, f"{len(m.traces)}/{len(fleet.analysed)}",
                     str(m.occurrences), ", ".join(b[:BUILD_ID_SHOWN] for b in m.builds), _seen(m.first_seen, names),
                     _seen(m.last_seen, names)])  # fmt: skip
    return rows


def trace_rows(fleet: Fleet, names: dict[str, str]) -> list[list[Cell]]:
    return [[names[r.path], r.seen_at, (r.build_id or NO_BUILD)[:BUILD_ID_SHOWN], f"{r.rows:,}", str(len(r.findings))] for r in fleet.analysed]


def failures(fleet: Fleet, names: dict[str, str]) -> list[str]:
    """Each failed trace's error, naming the trace as the report does."""
    return [(r.error or "").replace(r.path, names[r.path], 1) for r in fleet.failed]


def _seen(sighting: Sighting, names: dict[str, str]) -> str:
    return f"{names[sighting.trace]} ({sighting.seen_at})"


def markdown(fleet: Fleet, names: dict[str, str], links: SourceLinks | None) -> str:
    mark, words = verdict(fleet)
    out = [f"## {mark} irqmon: {md(words)}", "", " · ".join(f"**{k}:** {md(v)}" for k, v in facts(fleet)), ""]
    if fleet.findings:
        out += md_table(FINDING_HEADER, finding_rows(fleet, names, links)) + [""]
    for image, heading in FIGURES:
        out += [f"### {md(heading)}", "", f"![{md(heading)}]({image})", ""]
    out += ["### Traces", ""] + md_table(TRACE_HEADER, trace_rows(fleet, names)) + [""]
    if fleet.failed:
        out += ["### Traces that could not be analysed", ""] + [f"- {md(error)}" for error in failures(fleet, names)] + [""]
    return "\n".join(out).rstrip() + "\n"


def html_page(fleet: Fleet, names: dict[str, str], links: SourceLinks | None, out_dir: Path) -> str:
    mark, words = verdict(fleet)
    body = [f"<h1>{mark} irqmon: {esc(words)}</h1>"]
    body.append('<p class="facts">' + " · ".join(f"<b>{esc(k)}:</b> {esc(v)}" for k, v in facts(fleet)) + "</p>")
    if fleet.findings:
        body.append(html_table(FINDING_HEADER, finding_rows(fleet, names, links), severity_column=0))
    for image, heading in FIGURES:
        data = base64.b64encode((out_dir / image).read_bytes()).decode("ascii")
        body.append(f'<h2>{esc(heading)}</h2><img alt="{esc(heading)}" src="data:image/png;base64,{data}">')
    body.append("<h2>Traces</h2>" + html_table(TRACE_HEADER, trace_rows(fleet, names)))
    if fleet.failed:
        items = "".join(f"<li>{esc(error)}</li>" for error in failures(fleet, names))
        body.append(f"<h2>Traces that could not be analysed</h2><ul>{items}</ul>")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>irqmon report: {len(fleet.results)} traces</title>'
        f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )

