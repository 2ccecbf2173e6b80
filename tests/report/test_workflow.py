"""The pull-request workflow: valid YAML, the steps the issue asks for, and irqmon commands that parse."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from irqmon.cli import build_parser

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "irqmon-pr.yml"


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def test_runs_on_pull_requests_with_the_permissions_it_needs(workflow):
    assert "pull_request" in workflow[True]  # YAML 1.1 reads the key `on` as True
    assert workflow["permissions"] == {"contents": "read", "security-events": "write", "pull-requests": "write"}


def test_uploads_sarif_attaches_the_report_and_comments(workflow):
    uses = [step.get("uses", "") for step in steps(workflow)]
    assert any(u.startswith("github/codeql-action/upload-sarif@") for u in uses)
    assert any(u.startswith("actions/upload-artifact@") for u in uses)
    comment = next(step["run"] for step in steps(workflow) if "gh pr comment" in step.get("run", ""))
    assert "report/report.md" in comment


def test_every_irqmon_command_line_parses(workflow):
    """The irqmon lines of the workflow, with its variables filled in, are valid command lines."""
    parser = build_parser()
    commands = []
    for step in steps(workflow):
        for line in step.get("run", "").splitlines():
            line = line.strip()
            if line.startswith("irqmon "):
                words = shlex.split(line.replace("$", "").split("||")[0])
                commands.append(words[1])
                parser.parse_args(words[1:])
    assert commands == ["attach", "analyze", "analyze", "report"]
