"""SARIF 2.1.0 for GitHub code scanning: one result per finding, at its source line."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from irqmon import __version__
from irqmon.analysis import Finding, LoadedRule
from irqmon.output import strict_json

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
FINGERPRINT_KEY = "irqmonSite/v1"
INFORMATION_URI = "https://github.com/irqmon/irqmon"
RULE_HELP_URI = INFORMATION_URI + "/blob/main/docs/findings.md#{rule}"


def split_source(source: str | None) -> tuple[str, int] | None:
    """`path/file.c:123` → (`path/file.c`, 123); None when there is no usable line."""
    if not source:
        return None
    path, _, line = source.rpartition(":")
    return (path, int(line)) if path and line.isascii() and line.isdigit() and int(line) > 0 else None


def artifact(path: str, root: Path) -> dict[str, Any]:
    """The file as a URI relative to `root` (%SRCROOT%). A relative path is taken from the
    working directory, as the trace's source lines are; a file outside `root` gets `../`
    steps, never an absolute file URI (code scanning maps only repository paths)."""
    where = Path(path) if Path(path).is_absolute() else Path.cwd() / path
    relative = os.path.relpath(os.path.normpath(where), os.path.normpath(root.resolve()))
    return {"uri": PurePosixPath(Path(relative)).as_posix(), "uriBaseId": "%SRCROOT%"}


def _location(source: str | None, root: Path, text: str | None = None) -> dict[str, Any] | None:
    parsed = split_source(source)
    if parsed is None:
        return None
    location: dict[str, Any] = {
        "physicalLocation": {"artifactLocation": artifact(parsed[0], root), "region": {"startLine": parsed[1]}}
    }
    if text:
        location["message"] = {"text": text}
    return location


def _rule_descriptor(rule: LoadedRule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": "".join(part.capitalize() for part in rule.id.split("-")),
        "shortDescription": {"text": rule.rule.summary},
        "fullDescription": {"text": rule.doc.split("\n\n", 1)[0]},
        "help": {"text": rule.doc, "markdown": rule.doc},
        "helpUri": RULE_HELP_URI.format(rule=rule.id),
        "defaultConfiguration": {"level": rule.rule.severity},
    }


def _result(
    finding: Finding, index: int, root: Path, fallback: str, function_source: Callable[[str], str | None]
) -> dict[str, Any]:
    """One finding; one without a source line is placed at `fallback` (the firmware image or
    the trace), line 1, so that code scanning takes it. Its call path is a code flow: the
    innermost frame at the finding's line, each caller at its function's first line where
    `function_source` knows it, else by name only."""
    result: dict[str, Any] = {
        "ruleId": finding.rule,
        "ruleIndex": index,
        "level": finding.severity,
        "message": {"text": f"{finding.title}. {finding.message}"},
        "partialFingerprints": {FINGERPRINT_KEY: finding.fingerprint},
        "properties": {
            "count": finding.count,
            "firstTime": finding.first_time,
            "lastTime": finding.last_time,
            "contexts": finding.contexts,
            "evidence": finding.evidence,
        },
    }
    location = _location(finding.source, root) or {
        "physicalLocation": {"artifactLocation": artifact(fallback, root), "region": {"startLine": 1}},
        "message": {"text": "no source line was recorded for this finding"},
    }
    result["locations"] = [location]
    frames = finding.callpath
    if frames:
        steps = [{"location": _location(finding.source, root, frames[0]) or {"message": {"text": frames[0]}}}]
        steps += [{"location": _location(function_source(frame), root, frame) or {"message": {"text": frame}}} for frame in frames[1:]]
        result["codeFlows"] = [{"threadFlows": [{"locations": steps}]}]
    return result


def render(
    findings: list[Finding],
    rules: dict[str, LoadedRule],
    root: Path,
    fallback: str,
    function_source: Callable[[str], str | None],
) -> str:
    """The SARIF log; `fallback` is where a finding without a source line is placed;
    `function_source` gives a function's `file:line` by name, for the call paths' frames."""
    used = sorted(rules)
    index = {rule_id: number for number, rule_id in enumerate(used)}
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "irqmon",
                        "version": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": [_rule_descriptor(rules[r]) for r in used],
                    }
                },
                "originalUriBaseIds": {"%SRCROOT%": {"uri": root.resolve().as_uri() + "/"}},
                "results": [_result(f, index[f.rule], root, fallback, function_source) for f in findings],
            }
        ],
    }
    return strict_json.dumps(log, indent=2, ensure_ascii=False) + "\n"
