"""The report's text: `report.md` (GitHub-flavoured markdown) and `report.html` (self-contained).

Both come from the same pieces. Any text that comes from the trace, the ELF or a finding is
escaped: HTML-escaped everywhere, and markdown punctuation backslash-escaped in markdown.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from irqmon import schema
from irqmon.report.layout import PanelSpec
from irqmon.report.model import ReportModel, exception_label
from irqmon.report.panels import Numbered

MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
LINE_START = re.compile(r"^([#+=-]|\d+[.)])")  # would start a heading or a list
SEVERITIES = ("error", "warning", "note")
PANEL_TITLES = {
    "summary": "Per-exception summary",
    "timeline": "ISR timeline",
    "rates": "Per-IRQ entry rate",
    "masks": "BASEPRI and PRIMASK",
    "locks": "Lock lanes",
    "heap": "Heap calls by context",
}


@dataclass(frozen=True)
class Section:
    """One panel of the layout as rendered: an image file, a table (summary) or why it is empty."""

    spec: PanelSpec
    image: str | None = None  # file name in the report directory
    note: str | None = None

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


def verdict(findings: Sequence[Numbered]) -> tuple[str, str]:
    """(`❌`/`⚠️`/`✅`, `3 errors, 1 warning, 0 notes`)."""
    counts = {s: sum(1 for n in findings if n.finding.severity == s) for s in SEVERITIES}
    words = ", ".join(f"{counts[s]} {s}{'' if counts[s] == 1 else 's'}" for s in SEVERITIES)
    mark = "❌" if counts["error"] else "⚠️" if counts["warning"] else "✅"
    return mark, words if findings else "no findings"


def trace_facts(model: ReportModel, trace_path: Path, window: bool) -> list[tuple[str, str]]:
    meta = model.metadata
    facts = [("trace", trace_path.name), ("target", meta.get(schema.META_TARGET, "unknown")), ("rows", f"{model.rows:,}")]
    facts.append(("window" if window else "duration", f"{model.start:.6f}–{model.end:.6f} s" if window else f"{model.duration:.3f} s"))
    if meta.get(schema.META_ELF):
        facts.append(("firmware", Path(meta[schema.META_ELF]).name))
    if meta.get(schema.META_BUILD_ID):
        facts.append(("build id", meta[schema.META_BUILD_ID][:16]))
    return facts


def findings_rows(findings: Sequence[Numbered]) -> list[list[str]]:
    rows = []
    for n in findings:
        f = n.finding
        title = f.title.removeprefix(f"{f.rule}: ")
        rows.append([n.label, f.severity, f.rule, title, "; ".join(f.contexts), str(f.count), f"{f.first_time:.6f}", f.source or ""])
    return rows


FINDING_HEADER = ["#", "severity", "rule", "finding", "contexts", "count", "first (s)", "source"]
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


def rule_doc_paragraphs(doc: str) -> list[str]:
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", doc) if p.strip()]


def detail_items(n: Numbered) -> list[tuple[str, str]]:
    f = n.finding
    items = [("contexts", "; ".join(f.contexts) or "—"), ("seen", f"{f.count} time(s), first at {f.first_time:.6f} s, last at {f.last_time:.6f} s")]
    if f.source:
        items.append(("source", f.source))
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


def markdown(
    model: ReportModel, findings: Sequence[Numbered], sections: Sequence[Section], trace_path: Path, docs: dict[str, str], window: bool
) -> str:
    mark, words = verdict(findings)
    out = [f"## {mark} irqmon: {words}", ""]
    out.append(" · ".join(f"**{k}:** {md(v)}" for k, v in trace_facts(model, trace_path, window)))
    out.append("")
    if findings:
        out += _md_table(FINDING_HEADER, findings_rows(findings)) + [""]
    for section in sections:
        out += [f"### {md(section.heading)}", ""]
        if section.spec.panel == "summary":
            out += _md_table(SUMMARY_HEADER, summary_rows(model))
        elif section.image:
            out.append(f"![{md(section.heading)}]({section.image})")
        else:
            out.append(f"*{md(section.note or 'nothing to show')}*")
        out.append("")
    if findings:
        out += ["### Details", ""]
    for n in findings:
        f = n.finding
        out += [f"<details><summary>{md_html(n.label)} · {md_html(f.severity)} · {md_html(f.title)}</summary>", "", md_paragraph(f.message), ""]
        out += [f"- **{k}:** {md(v)}" for k, v in detail_items(n)]
        doc = docs.get(f.rule)
        if doc:
            out += [""] + [md_paragraph(p) + "\n" for p in rule_doc_paragraphs(doc)]
        out += ["", "</details>", ""]
    return "\n".join(out).rstrip() + "\n"


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(md(cell) for cell in row) + " |" for row in rows]


# --- HTML -------------------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1250px;color:#1f2328;padding:0 1em}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}th,td{border:1px solid #d0d7de;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f6f8fa}img{max-width:100%;border:1px solid #d0d7de}details{margin:.4em 0;padding:.4em .8em;border:1px solid #d0d7de;border-radius:6px}
summary{cursor:pointer;font-weight:600}.facts{color:#59636e}.error{color:#cf222e}.warning{color:#9a6700}
"""


def html_page(
    model: ReportModel, findings: Sequence[Numbered], sections: Sequence[Section], trace_path: Path, docs: dict[str, str], window: bool, out_dir: Path
) -> str:
    mark, words = verdict(findings)
    body = [f"<h1>{mark} irqmon: {esc(words)}</h1>"]
    body.append('<p class="facts">' + " · ".join(f"<b>{esc(k)}:</b> {esc(v)}" for k, v in trace_facts(model, trace_path, window)) + "</p>")
    if findings:
        body.append(_html_table(FINDING_HEADER, findings_rows(findings), severity_column=1))
    for section in sections:
        body.append(f"<h2>{esc(section.heading)}</h2>")
        if section.spec.panel == "summary":
            body.append(_html_table(SUMMARY_HEADER, summary_rows(model)))
        elif section.image:
            data = base64.b64encode((out_dir / section.image).read_bytes()).decode("ascii")
            body.append(f'<img alt="{esc(section.heading)}" src="data:image/png;base64,{data}">')
        else:
            body.append(f"<p><i>{esc(section.note or 'nothing to show')}</i></p>")
    if findings:
        body.append("<h2>Details</h2>")
    for n in findings:
        f = n.finding
        items = "".join(f"<li><b>{esc(k)}:</b> {esc(v)}</li>" for k, v in detail_items(n))
        doc = "".join(f"<p>{esc(p)}</p>" for p in rule_doc_paragraphs(docs.get(f.rule, "")))
        body.append(
            f'<details><summary>{esc(n.label)} · <span class="{esc(f.severity)}">{esc(f.severity)}</span> · {esc(f.title)}</summary>'
            f"<p>{esc(f.message)}</p><ul>{items}</ul>{doc}</details>"
        )
    title = f"irqmon report: {trace_path.name}"
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
        f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _html_table(header: list[str], rows: list[list[str]], severity_column: int | None = None) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    lines = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            css = f' class="{esc(cell)}"' if i == severity_column else ""
            cells.append(f"<td{css}>{esc(cell)}</td>")
        lines.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table>"
