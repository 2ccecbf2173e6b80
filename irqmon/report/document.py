"""The report's text: `report.md` (GitHub-flavoured markdown) and `report.html` (self-contained).

Both come from the same pieces. Any text that comes from the trace, the ELF or a finding is
escaped: HTML-escaped everywhere, and markdown punctuation backslash-escaped in markdown.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from irqmon import schema
from irqmon.report.layout import TABLES, PanelSpec
from irqmon.analysis.coverage import Coverage
from irqmon.report.links import SourceLinks
from irqmon.report.model import Halting, ReportModel, exception_label
from irqmon.report.panels import Numbered

MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
LINE_START = re.compile(r"^([#+=-]|\d+[.)])")  # would start a heading or a list
SEVERITIES = ("error", "warning", "note")
PANEL_TITLES = {
    "summary": "Per-exception summary",
    "timing": "Per-ISR execution time and period jitter",
    "timeline": "ISR timeline",
    "load": "CPU load over time",
    "rates": "Per-IRQ entry rate",
    "masks": "BASEPRI and PRIMASK",
    "locks": "Lock lanes",
    "heap": "Heap calls by context",
}


@dataclass(frozen=True)
class Section:
    """One panel of the layout as rendered: an image file or a table (summary, timing); or, with
    `note`, why it was left out."""

    spec: PanelSpec
    image: str | None = None  # file name in the report directory
    note: str | None = None

    @property
    def table(self) -> bool:
        return self.spec.panel in TABLES

    @property
    def shown(self) -> bool:
        return self.note is None and (self.table or self.image is not None)

    @property
    def heading(self) -> str:
        base = self.spec.title or PANEL_TITLES[self.spec.panel]
        return f"{base} (zoom on the first finding)" if self.spec.zoom else base


def md(text: object) -> str:
    """Trace or finding text made inert in markdown (and in the HTML GitHub allows in it)."""
    flat = " ".join(str(text).split())
    return MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(flat, quote=True))


def md_paragraph(text: object) -> str:
    """`md` for text that starts a line: no heading or list either."""
    return LINE_START.sub(lambda m: m.group(1)[:-1] + "\\" + m.group(1)[-1], md(text))


def md_html(text: object) -> str:
    """Text inside an HTML element of the markdown (`<summary>`): entities only."""
    return MARKDOWN_SPECIAL.sub(lambda m: f"&#{ord(m.group(1))};", esc(" ".join(str(text).split())))


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


@dataclass(frozen=True)
class Link:
    """A table cell or detail value that links somewhere (a source line), or plain text without a URL."""

    text: str
    url: str | None = None


@dataclass(frozen=True)
class Marked:
    """A table row to highlight (the finding's own row in its event list)."""

    cells: list


Cell = str | Link


@dataclass
class Contents:
    """Everything both documents show."""

    model: ReportModel
    findings: Sequence[Numbered]
    sections: Sequence[Section]
    trace_path: Path
    rules: dict[str, tuple[str, str]]  # rule id -> (summary, documentation), the rules of the findings
    window: bool = False
    events: dict[str, pd.DataFrame] = field(default_factory=dict)  # finding label -> rows around its first occurrence
    links: SourceLinks | None = None
    coverage: Coverage | None = None  # which probe sites the capture armed when (None: all, throughout)
    drawn: str | None = None  # which part of a large trace the panels draw, when not the one asked for

    def source(self, text: str | None) -> Link:
        return Link(text or "", self.links.url(text) if self.links and text else None)


def verdict(findings: Sequence[Numbered]) -> tuple[str, str]:
    """(`❌`/`⚠️`/`✅`, `3 errors, 1 warning, 0 notes`)."""
    counts = {s: sum(1 for n in findings if n.finding.severity == s) for s in SEVERITIES}
    words = ", ".join(f"{counts[s]} {s}{'' if counts[s] == 1 else 's'}" for s in SEVERITIES)
    mark = "❌" if counts["error"] else "⚠️" if counts["warning"] else "✅"
    return mark, words if findings else "no findings"


def trace_facts(model: ReportModel, trace_path: Path, window: bool) -> list[tuple[str, str]]:
    meta = model.metadata
    facts = [("trace", trace_path.name), ("target", meta.get(schema.META_TARGET, "unknown")), ("rows", f"{model.rows:,}")]
    duration = model.whole.duration if model.whole is not None else model.duration
    facts.append(("window" if window else "duration", f"{model.start:.6f}–{model.end:.6f} s" if window else f"{duration:.3f} s"))
    if meta.get(schema.META_ELF):
        facts.append(("firmware", Path(meta[schema.META_ELF]).name))
    if meta.get(schema.META_BUILD_ID):
        facts.append(("build id", meta[schema.META_BUILD_ID][:16]))
    return facts


def findings_rows(findings: Sequence[Numbered], links: SourceLinks | None = None) -> list[list[Cell]]:
    rows: list[list[Cell]] = []
    for n in findings:
        f = n.finding
        title = f.title.removeprefix(f"{f.rule}: ")
        source = Link(f.source or "", links.url(f.source) if links and f.source else None)
        rows.append([n.label, f.severity, f.rule, title, "; ".join(f.contexts), str(f.count), f"{f.first_time:.6f}", source])
    return rows


FINDING_HEADER = ["#", "severity", "rule", "finding", "contexts", "count", "first (s)", "source"]
TIMING_HEADER = ["ISR", "number", "priority", "activations", "exec min (ms)", "exec median (ms)", "exec p99 (ms)", "exec max (ms)",
                 "period median (ms)", "period min (ms)", "period max (ms)", "jitter σ (ms)", "halts inside"]  # fmt: skip
EVENT_HEADER = ["", "seq", "time (s)", "context", "event", "what", "value", "source"]
EVENTS_BEFORE = EVENTS_AFTER = 5
# References to documents the reader does not have (internal field reports, issue numbers).
INTERNAL_REFERENCES = [
    re.compile(r"\s*\((?:see )?(?:seeds?|issues?|field reports?) #?\d+(?:(?:,\s*|\s+and\s+)#?\d+)*\)", re.IGNORECASE),
    re.compile(r"\s*\(#\d+\)"),
    re.compile(r"\b(?:seeds?|issues?) #?\d+\s*", re.IGNORECASE),
]
DOC_LABEL = re.compile(r"^([A-Z][A-Za-z ]{1,30}):\s+")
HALTED_NAMES = {"gdbmi": "gdb"}  # the backend as `irqmon attach --backend` names it
SUMMARY_HEADER = ["context", "number", "priority", "activations", "total (ms)", "self (ms)", "max (ms)", "max depth", "preempted", "CPU share"]


def summary_rows(model: ReportModel) -> list[list[str]]:
    """The profiler table: exceptions first by self time, then thread mode and tasks."""
    rows = []
    for r in model.summary().itertuples(index=False):
        is_exc = r.kind == "exception"
        number = exception_label(str(r.exception), int(r.ipsr), None).split("(")[1].rstrip(")") if is_exc else "thread"
        rows.append([
            str(r.exception), number, "" if pd.isna(r.priority) else str(int(r.priority)),
            f"{int(r.count):,}" if is_exc else "", f"{r.total * 1e3:.3f}", f"{r.self_time * 1e3:.3f}",
            f"{r.max_time * 1e3:.3f}" if is_exc else "", str(int(r.max_depth)) if is_exc else "",
            f"{int(r.preempted):,}" if is_exc else "", f"{r.share:.1%}",
        ])  # fmt: skip
    return rows


COVERAGE_HEADER = ["probe site", "kind", "armed (ms)", "share of the capture", "turns"]
COVERAGE_HEADING = "Probe coverage"


def coverage_rows(coverage: Coverage) -> list[list[str]]:
    """Per probe site, how long it was armed: longest first, never armed last."""
    span = max(coverage.span, 1e-9)
    sites = sorted(coverage.sites, key=lambda site: -site.armed_seconds)
    return [[site.name, site.kind, f"{1000 * site.armed_seconds:.1f}", f"{100 * site.armed_seconds / span:.0f}%", str(site.turns)] for site in sites]


def coverage_note(coverage: Coverage) -> str:
    return (
        f"The probe sites needed more comparators than the chip has: over {coverage.span:.2f} s the capture "
        "armed them in sets, in turns (or only the first set, with --no-rotate). A rule saw only what "
        "happened while its sites were armed."
    )


def _ms(seconds: object) -> str:
    return "—" if seconds is None or pd.isna(seconds) else f"{float(seconds) * 1e3:.3f}"


def timing_rows(model: ReportModel) -> list[list[str]]:
    """Per ISR: execution time (self time) of its whole activations and the period between entries."""
    rows = []
    for r in model.isr_stats().itertuples(index=False):
        number = exception_label(str(r.exception), int(r.ipsr), None).split("(")[1].rstrip(")")
        rows.append([
            str(r.exception), number, "" if pd.isna(r.priority) else str(int(r.priority)), f"{int(r.count):,}",
            _ms(r.exec_min), _ms(r.exec_median), _ms(r.exec_p99), _ms(r.exec_max),
            _ms(r.period_median), _ms(r.period_min), _ms(r.period_max), _ms(r.jitter), f"{int(r.halts):,}",
        ])  # fmt: skip
    return rows


def timing_missing(model: ReportModel) -> str | None:
    """Why the per-ISR timing table would be empty, or None."""
    acts = model.activations
    if model.whole is not None:
        seen, complete = model.whole.activations, model.whole.complete
    else:
        seen, complete = len(acts), int(acts["complete"].sum())
    if not seen:
        return "no exception entries in this trace"
    if not complete:
        return "no handler seen from its entry to its exit (that needs the irq_enter and irq_exit rows of an exception trace)"
    return None


def timing_note(model: ReportModel) -> str:
    text = ("Execution time: from entry to exit, less the time more urgent handlers ran inside it (self time), over the "
            "activations entered and exited inside the trace. Period: between successive entries; jitter: the standard "
            "deviation of the period.")  # fmt: skip
    if model.halting():
        text += " Handler times include the time the capture halted the core (halts inside: the hit rows during its activations)."
    return text


def without_internal_references(text: str) -> str:
    """Text for the reader without pointers to documents they do not have (`(seed 004)`, `#15`)."""
    for pattern in INTERNAL_REFERENCES:
        text = pattern.sub("", text)
    return re.sub(r"\s+([.,;:])", r"\1", text)


def rule_doc_paragraphs(doc: str) -> list[str]:
    return [without_internal_references(" ".join(p.split())) for p in re.split(r"\n\s*\n", doc) if p.strip()]


def rule_sections(doc: str) -> list[tuple[str | None, str]]:
    """A rule's documentation without its first line (the id and summary, shown as the heading):
    (label, text) per paragraph, the label of `Why it is bad:` / `Example:` / `Instead:` split off."""
    out = []
    for paragraph in rule_doc_paragraphs(doc)[1:]:
        match = DOC_LABEL.match(paragraph)
        out.append((match.group(1), paragraph[match.end() :]) if match else (None, paragraph))
    return out


def rule_anchor(rule: str) -> str:
    return "rule-" + re.sub(r"[^a-z0-9-]+", "-", rule.lower()).strip("-")


def halting_caveat(model: ReportModel, window: bool = False) -> tuple[str, str] | None:
    """What a halting capture did to the times (a headline and the text), or None when the
    capture did not halt the core."""
    halting: Halting | None = model.halting()
    if halting is None:
        return None
    name = HALTED_NAMES.get(halting.backend, halting.backend)
    text = (f"The {name} backend stops the core at every probe hit: "
            f"{halting.halts:,} halt{'' if halting.halts == 1 else 's'} in this {'window' if window else 'trace'} "
            "(one per recorded hit row). ")  # fmt: skip
    if halting.stopped is not None:
        text += (f"Each stopped it for about {halting.per_halt * 1e3:.3g} ms, about {halting.stopped:.3g} s in total "
                 "(estimated from the trace: handler activations with halts inside against those of the same handler without). ")  # fmt: skip
    else:
        text += "How long each halt stopped the core is not recorded in this trace. "
    text += ("Handler execution times, the CPU load and the rates include that time wherever a handler was hit: "
             "read them as upper bounds, and the halts-inside column of the per-ISR table as how much of it each handler holds.")  # fmt: skip
    return "The capture halted the core", text


def event_rows(events: pd.DataFrame, contents: Contents) -> list[list[Cell] | Marked]:
    """The rows around a finding's first occurrence; its own row marked."""
    rows: list[list[Cell] | Marked] = []
    for r in events.itertuples(index=False):
        what = "" if pd.isna(r.symbol) else str(r.symbol)
        if not pd.isna(r.role):
            what = f"{what} ({r.role})" if what else str(r.role)
        value = _number(r.value)
        if not pd.isna(r.old_value) and value:
            value = f"{_number(r.old_value)} → {value}"
        cells: list[Cell] = ["▶" if r.marked else "", str(r.seq), f"{r.time:.6f}", "" if r.context is None else str(r.context),
                             str(r.event) if not pd.isna(r.event) else "", what, value,
                             contents.source(None if pd.isna(r.source) else str(r.source))]  # fmt: skip
        rows.append(Marked(cells) if r.marked else cells)
    return rows


def _number(value: object) -> str:
    if value is None or pd.isna(value):
        return ""
    number = int(value)
    return str(number) if -256 < number < 256 else f"0x{number & 0xFFFFFFFF:x}"


def detail_items(n: Numbered, links: SourceLinks | None = None) -> list[tuple[str, Cell]]:
    f = n.finding
    items: list[tuple[str, Cell]] = [("contexts", "; ".join(f.contexts) or "—"),
                                     ("seen", f"{f.count} time(s), first at {f.first_time:.6f} s, last at {f.last_time:.6f} s")]  # fmt: skip
    if f.source:
        items.append(("source", Link(f.source, links.url(f.source) if links else None)))
    if f.symbol:
        items.append(("symbol", f.symbol))
    if f.address is not None:
        items.append(("address", f"0x{f.address:x}"))
    if f.callpath:
        items.append(("call path", " ← ".join(f.callpath)))
    if f.evidence:
        items.append(("evidence", "; ".join(f"{k} = {_value(v)}" for k, v in f.evidence.items() if v is not None)))
    items.append(("fingerprint", f.fingerprint))
    return items


def _value(value: object) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


# --- markdown ---------------------------------------------------------------------------------


def md_cell(cell: Cell) -> str:
    if isinstance(cell, Link):
        return f"[{md(cell.text)}]({cell.url})" if cell.url else md(cell.text)
    return md(cell)


def markdown(contents: Contents) -> str:
    model, findings = contents.model, contents.findings
    mark, words = verdict(findings)
    out = [f"## {mark} irqmon: {words}", ""]
    out.append(" · ".join(f"**{k}:** {md(v)}" for k, v in trace_facts(model, contents.trace_path, contents.window)))
    out.append("")
    if contents.drawn:
        out += [f"*{md(contents.drawn)}*", ""]
    caveat = halting_caveat(model, contents.window)
    if caveat:
        out += [f"> ⚠️ **{md(caveat[0])}.** {md(caveat[1])}", ""]
    if findings:
        out += md_table(FINDING_HEADER, findings_rows(findings, contents.links)) + [""]
    for section in contents.sections:
        if not section.shown:
            continue
        out += [f"### {md(section.heading)}", ""]
        if section.spec.panel == "summary":
            out += md_table(SUMMARY_HEADER, summary_rows(model))
        elif section.spec.panel == "timing":
            out += md_table(TIMING_HEADER, timing_rows(model)) + ["", md_paragraph(timing_note(model))]
        else:
            out.append(f"![{md(section.heading)}]({section.image})")
        out.append("")
    if contents.coverage is not None and contents.coverage.partial:
        out += [f"### {COVERAGE_HEADING}", "", md_paragraph(coverage_note(contents.coverage)), ""]
        out += md_table(COVERAGE_HEADER, coverage_rows(contents.coverage)) + [""]
    left_out = [s for s in contents.sections if not s.shown]
    if left_out:
        out += ["*Not drawn: " + md("; ".join(f"{s.heading}: {s.note}" for s in left_out)) + ".*", ""]
    if findings:
        out += ["### Details", ""]
    for n in findings:
        f = n.finding
        out += [f"<details><summary>{md_html(n.label)} · {md_html(f.severity)} · {md_html(f.title)}</summary>", "", md_paragraph(f.message), ""]
        out += [f"- **{k}:** {md_cell(v)}" for k, v in detail_items(n, contents.links)]
        if f.rule in contents.rules:
            out.append(f"- **rule:** [{md(f.rule)}](#{rule_anchor(f.rule)}): why it is bad and what to do instead, under *Rules* below")
        events = contents.events.get(n.label)
        if events is not None:
            out += ["", f"Trace rows around its first occurrence (▶ row {f.first_seq}):", ""]
            out += md_table(EVENT_HEADER, event_rows(events, contents)) if len(events) else [f"*Row {f.first_seq} is not in this trace.*"]
        out += ["", "</details>", ""]
    if contents.rules:
        out += ["### Rules", ""]
    for rule, (summary, doc) in contents.rules.items():
        out += [f'<a id="{rule_anchor(rule)}"></a>', "", f"#### {md(rule)}: {md(summary)}", ""]
        for label, text in rule_sections(doc):
            out += [(f"**{md(label)}:** {md(text)}" if label else md_paragraph(text)), ""]
    return "\n".join(out).rstrip() + "\n"


def md_table(header: list[str], rows: Sequence[list[Cell] | Marked]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        if isinstance(row, Marked):
            lines.append("| " + " | ".join(f"**{md_cell(c)}**" if md_cell(c) else "" for c in row.cells) + " |")
        else:
            lines.append("| " + " | ".join(md_cell(cell) for cell in row) + " |")
    return lines


# --- HTML -------------------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1250px;color:#1f2328;padding:0 1em}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}th,td{border:1px solid #d0d7de;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f6f8fa}img{max-width:100%;border:1px solid #d0d7de}details{margin:.4em 0;padding:.4em .8em;border:1px solid #d0d7de;border-radius:6px}
summary{cursor:pointer;font-weight:600}.facts{color:#59636e}.error{color:#cf222e}.warning{color:#9a6700}
.caveat{border-left:4px solid #9a6700;background:#fff8c5;padding:.5em .8em}tr.hit td{background:#ffebe9;font-weight:600}.left-out{color:#59636e}
"""


def html_cell(cell: Cell) -> str:
    if isinstance(cell, Link):
        return f'<a href="{esc(cell.url)}">{esc(cell.text)}</a>' if cell.url else esc(cell.text)
    return esc(cell)


def html_page(contents: Contents, out_dir: Path) -> str:
    model, findings = contents.model, contents.findings
    mark, words = verdict(findings)
    body = [f"<h1>{mark} irqmon: {esc(words)}</h1>"]
    body.append('<p class="facts">' + " · ".join(f"<b>{esc(k)}:</b> {esc(v)}" for k, v in trace_facts(model, contents.trace_path, contents.window)) + "</p>")
    if contents.drawn:
        body.append(f"<p><i>{esc(contents.drawn)}</i></p>")
    caveat = halting_caveat(model, contents.window)
    if caveat:
        first, rest = caveat
        body.append(f'<p class="caveat">⚠️ <b>{esc(first)}.</b> {esc(rest)}</p>')
    if findings:
        body.append(html_table(FINDING_HEADER, findings_rows(findings, contents.links), severity_column=1))
    for section in contents.sections:
        if not section.shown:
            continue
        body.append(f"<h2>{esc(section.heading)}</h2>")
        if section.spec.panel == "summary":
            body.append(html_table(SUMMARY_HEADER, summary_rows(model)))
        elif section.spec.panel == "timing":
            body.append(html_table(TIMING_HEADER, timing_rows(model)) + f"<p>{esc(timing_note(model))}</p>")
        else:
            data = base64.b64encode((out_dir / section.image).read_bytes()).decode("ascii")
            body.append(f'<img alt="{esc(section.heading)}" src="data:image/png;base64,{data}">')
    if contents.coverage is not None and contents.coverage.partial:
        body.append(f"<h2>{COVERAGE_HEADING}</h2><p>{esc(coverage_note(contents.coverage))}</p>")
        body.append(html_table(COVERAGE_HEADER, coverage_rows(contents.coverage)))
    left_out = [s for s in contents.sections if not s.shown]
    if left_out:
        body.append('<p class="left-out"><i>Not drawn: ' + esc("; ".join(f"{s.heading}: {s.note}" for s in left_out)) + ".</i></p>")
    if findings:
        body.append("<h2>Details</h2>")
    for n in findings:
        f = n.finding
        items = "".join(f"<li><b>{esc(k)}:</b> {html_cell(v)}</li>" for k, v in detail_items(n, contents.links))
        if f.rule in contents.rules:
            items += f'<li><b>rule:</b> <a href="#{rule_anchor(f.rule)}">{esc(f.rule)}</a>: why it is bad and what to do instead, under <i>Rules</i> below</li>'
        events = contents.events.get(n.label)
        table = ""
        if events is not None:
            table = f"<p>Trace rows around its first occurrence (▶ row {esc(f.first_seq)}):</p>"
            table += html_table(EVENT_HEADER, event_rows(events, contents)) if len(events) else f"<p><i>Row {esc(f.first_seq)} is not in this trace.</i></p>"
        body.append(
            f'<details><summary>{esc(n.label)} · <span class="{esc(f.severity)}">{esc(f.severity)}</span> · {esc(f.title)}</summary>'
            f"<p>{esc(f.message)}</p><ul>{items}</ul>{table}</details>"
        )
    if contents.rules:
        body.append("<h2>Rules</h2>")
    for rule, (summary, doc) in contents.rules.items():
        paragraphs = "".join(f"<p><b>{esc(label)}:</b> {esc(text)}</p>" if label else f"<p>{esc(text)}</p>" for label, text in rule_sections(doc))
        body.append(f'<h3 id="{rule_anchor(rule)}">{esc(rule)}: {esc(summary)}</h3>{paragraphs}')
    title = f"irqmon report: {contents.trace_path.name}"
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
        f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def html_table(header: list[str], rows: Sequence[list[Cell] | Marked], severity_column: int | None = None) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    lines = []
    for row in rows:
        marked = isinstance(row, Marked)
        cells = []
        for i, cell in enumerate(row.cells if marked else row):
            css = f' class="{esc(cell)}"' if i == severity_column else ""
            cells.append(f"<td{css}>{html_cell(cell)}</td>")
        lines.append(("<tr class=\"hit\">" if marked else "<tr>") + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table>"
