"""The pull-request workflow and its composite action: the scripts run here (a fake `gh` stands in
for GitHub's API; irqmon, QEMU and gdb are real), the YAML is checked against the action, and
actionlint and shellcheck run when installed."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from irqmon.cli import build_parser
from support import BUILD_DIR, ROOT

ACTION_DIR = ROOT / ".github" / "actions" / "irqmon"
ACTION = ACTION_DIR / "action.yml"
COMMENT_ACTION = ACTION_DIR / "comment" / "action.yml"
WORKFLOW = ROOT / ".github" / "workflows" / "irqmon-pr.yml"
SCRIPTS = sorted(ACTION_DIR.glob("*.sh"))
RECORDED_TRACES = ROOT / "tests" / "analysis" / "traces"
MARKER = "<!-- irqmon-report -->"
REPOSITORY = "octo/firmware"
RUN_URL = "https://github.com/octo/firmware/actions/runs/42"


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


def run_script(script: str, tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """Run one of the action's scripts with tmp_path/bin first on PATH, as a runner step would."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("IRQMON_", "GITHUB_"))}
    environment["PATH"] = f"{tmp_path / 'bin'}{os.pathsep}{environment['PATH']}"
    environment["GITHUB_OUTPUT"] = str(tmp_path / "github_output")
    environment["RUNNER_TEMP"] = str(tmp_path)  # a runner's own, emptied after each job: where comment.sh leaves the body
    environment.update(env)
    return subprocess.run(
        ["bash", str(ACTION_DIR / script), *args], env=environment, cwd=tmp_path, capture_output=True, text=True
    )


def step_outputs(tmp_path: Path) -> dict[str, str]:
    """The step outputs the scripts wrote (a later line wins, as on a runner)."""
    path = tmp_path / "github_output"
    lines = path.read_text().splitlines() if path.exists() else []
    return dict(line.split("=", 1) for line in lines)


@pytest.fixture
def real_irqmon(tmp_path: Path) -> None:
    """`irqmon` on PATH is this checkout's, run by this interpreter."""
    executable(
        tmp_path / "bin" / "irqmon",
        f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{sys.executable}" -m irqmon "$@"\n',
    )


# --- comment.sh, against a fake gh --------------------------------------------------------

FAKE_GH = """#!{python}
import json, os, sys
args = sys.argv[1:]
entry = {{"args": args}}
for arg in args:
    if arg.startswith("body=@"):
        with open(arg[len("body=@"):]) as body:
            entry["body"] = body.read()
with open(os.environ["FAKE_GH_LOG"], "a") as log:
    log.write(json.dumps(entry) + "\\n")
if "-X" in args:
    print("{{}}")
else:
    with open(os.environ["FAKE_GH_COMMENTS"]) as pages:
        sys.stdout.write(pages.read())
"""


def comment(user: str, body: str, comment_id: int) -> dict:
    return {"id": comment_id, "user": {"login": user}, "body": body}


def run_comment(tmp_path: Path, pages: list[list[dict]], reports: list[Path], **env: str) -> subprocess.CompletedProcess:
    """comment.sh for PR 12, with `gh api --paginate` answering these pages of comments."""
    executable(tmp_path / "bin" / "gh", FAKE_GH.format(python=sys.executable))
    (tmp_path / "comments.json").write_text("".join(json.dumps(page) for page in pages))
    environment = {
        "FAKE_GH_LOG": str(tmp_path / "gh.log"),
        "FAKE_GH_COMMENTS": str(tmp_path / "comments.json"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        "IRQMON_PR": "12",
        "IRQMON_REPOSITORY": REPOSITORY,
        "IRQMON_RUN_URL": RUN_URL,
        "IRQMON_FORK": "false",
        **env,
    }
    result = run_script("comment.sh", tmp_path, environment, *map(str, reports))
    assert result.returncode == 0, result.stderr
    return result


def gh_calls(tmp_path: Path) -> list[dict]:
    log = tmp_path / "gh.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def writes(tmp_path: Path) -> list[dict]:
    return [call for call in gh_calls(tmp_path) if "-X" in call["args"]]


@pytest.fixture
def report(tmp_path: Path) -> Path:
    """A report.md as `irqmon report` lays it out, in the artifact folder irqmon-clean."""
    path = tmp_path / "reports" / "irqmon-clean" / "report" / "report.md"
    path.parent.mkdir(parents=True)
    path.write_text("## ✅ irqmon: no findings\n\n### ISR timeline\n\n![ISR timeline](timeline.png)\n")
    return path


def test_comment_updates_its_own_marked_comment_found_on_a_later_page(tmp_path, report):
    pages = [
        [comment("alice", "looks good", 1), comment("github-actions[bot]", "coverage: 91%", 2)],
        [comment("github-actions[bot]", f"{MARKER}\nold report", 7)],
    ]
    run_comment(tmp_path, pages, [report])
    listing = gh_calls(tmp_path)[0]["args"]
    assert listing[:2] == ["api", "--paginate"] and listing[2] == f"repos/{REPOSITORY}/issues/12/comments"
    [patch] = writes(tmp_path)
    assert patch["args"][:4] == ["api", "-X", "PATCH", f"repos/{REPOSITORY}/issues/comments/7"]
    assert patch["body"].startswith(MARKER) and "irqmon-clean" in patch["body"]


def test_comment_ignores_other_comments_and_posts_a_new_one(tmp_path, report):
    """Neither the token's other comment (no marker) nor another bot's comment that quotes it is touched."""
    pages = [[comment("github-actions[bot]", "coverage: 91%", 3), comment("other-bot[bot]", f"quote: {MARKER}", 4)]]
    run_comment(tmp_path, pages, [report])
    [post] = writes(tmp_path)
    assert post["args"][:4] == ["api", "-X", "POST", f"repos/{REPOSITORY}/issues/12/comments"]


def test_comment_posts_when_the_pr_has_no_comment(tmp_path, report):
    run_comment(tmp_path, [[]], [report])
    [post] = writes(tmp_path)
    assert post["args"][2] == "POST" and MARKER in post["body"]
    assert "--edit-last" not in json.dumps(gh_calls(tmp_path))


def test_comment_turns_figures_into_captions_linking_the_run(tmp_path, report):
    missing = tmp_path / "reports" / "irqmon-broken" / "report" / "report.md"
    run_comment(tmp_path, [[]], [report, missing])
    body = writes(tmp_path)[0]["body"]
    assert "![" not in body
    assert "ISR timeline" in body and "timeline.png" in body and RUN_URL in body
    assert "irqmon-broken" in body and "No report" in body


def test_fork_pr_writes_the_summary_and_calls_no_api(tmp_path, report):
    result = run_comment(tmp_path, [[]], [report], IRQMON_FORK="true")
    assert gh_calls(tmp_path) == []
    summary = (tmp_path / "summary.md").read_text()
    assert summary.startswith(MARKER) and "ISR timeline" in summary
    assert "summary" in result.stdout


def test_summary_is_written_when_posting_too(tmp_path, report):
    run_comment(tmp_path, [[]], [report])
    assert (tmp_path / "summary.md").read_text() == writes(tmp_path)[0]["body"]


def test_long_reports_are_cut_under_githubs_limit_with_a_note(tmp_path, report):
    report.write_text("".join(f"| row {i} | {'é' * 60} |\n" for i in range(3000)))
    run_comment(tmp_path, [[]], [report])
    body = writes(tmp_path)[0]["body"]
    assert 60_000 < len(body) < 65_536
    assert "cut here" in body.splitlines()[-1] and RUN_URL in body.splitlines()[-1]
    assert body.splitlines()[-3].endswith("|")  # cut at a line's end


# --- analyze.sh, capture.sh, report.sh with the real irqmon ------------------------------


def recorded(sample: str, out: Path) -> Path:
    out.mkdir(parents=True)
    shutil.copy(RECORDED_TRACES / f"{sample}.csv", out / "trace.csv")
    return out


def test_analyze_records_error_findings_as_status_1_and_goes_on(tmp_path, real_irqmon):
    out = recorded("usb_cdc_malloc_isr", tmp_path / "out")
    result = run_script("analyze.sh", tmp_path, {"IRQMON_OUT": str(out)})
    assert result.returncode == 0, result.stderr
    outputs = step_outputs(tmp_path)
    assert outputs["status"] == "1"
    assert outputs["findings"] == str(out / "findings.json")
    assert json.loads((out / "findings.json").read_text())["findings"]
    assert json.loads((out / "irqmon.sarif").read_text())["runs"][0]["results"]


def test_analyze_without_errors_gives_status_0(tmp_path, real_irqmon):
    out = recorded("clean", tmp_path / "out")
    result = run_script("analyze.sh", tmp_path, {"IRQMON_OUT": str(out)})
    assert result.returncode == 0, result.stderr
    assert step_outputs(tmp_path)["status"] == "0"


def test_analyze_counts_only_findings_the_baseline_lacks(tmp_path, real_irqmon):
    out = recorded("usb_cdc_malloc_isr", tmp_path / "out")
    assert run_script("analyze.sh", tmp_path, {"IRQMON_OUT": str(out)}).returncode == 0
    baseline = tmp_path / "base-findings.json"
    shutil.copy(out / "findings.json", baseline)
    result = run_script("analyze.sh", tmp_path, {"IRQMON_OUT": str(out), "IRQMON_BASELINE": str(baseline)})
    assert result.returncode == 0, result.stderr
    outputs = step_outputs(tmp_path)
    assert outputs["status"] == "0"
    assert outputs["findings"] == str(out / "new-findings.json")
    assert json.loads((out / "new-findings.json").read_text())["findings"] == []
    assert json.loads((out / "findings.json").read_text())["findings"]  # the next baseline keeps them all


def test_analyze_fails_on_bad_input(tmp_path, real_irqmon):
    out = tmp_path / "out"
    out.mkdir()
    result = run_script("analyze.sh", tmp_path, {"IRQMON_OUT": str(out)})
    assert result.returncode == 2
    assert "status" not in step_outputs(tmp_path)
    assert "Traceback" not in result.stderr


@pytest.mark.timeout(180)
def test_capture_analyze_and_report_a_real_run(tmp_path, real_irqmon, built_samples):
    """The action's three steps, in order, on the clean sample on QEMU."""
    out = tmp_path / "irqmon-out" / "clean"
    env = {
        "IRQMON_ELF": str(BUILD_DIR / "clean.elf"),
        "IRQMON_TARGET": "stm32f405",
        "IRQMON_UNTIL": "sample_done",
        "IRQMON_OUT": str(out),
    }
    for script in ("capture.sh", "analyze.sh"):
        result = run_script(script, tmp_path, env)
        assert result.returncode == 0, result.stderr
    outputs = step_outputs(tmp_path)
    assert outputs["trace"] == str(out / "trace.csv") and outputs["status"] == "0"
    result = run_script("report.sh", tmp_path, {**env, "IRQMON_FINDINGS": outputs["findings"]})
    assert result.returncode == 0, result.stderr
    assert (Path(step_outputs(tmp_path)["report"]) / "report.md").read_text().startswith("## ")


def test_every_irqmon_command_line_of_the_scripts_parses(tmp_path):
    """Run the scripts with an `irqmon` that logs its arguments; each logged line must parse."""
    log = tmp_path / "irqmon.log"
    executable(
        tmp_path / "bin" / "irqmon",
        f'#!{sys.executable}\nimport json, sys\nopen("{log}", "a").write(json.dumps(sys.argv[1:]) + "\\n")\n',
    )
    env = {
        "IRQMON_ELF": "app.elf",
        "IRQMON_TARGET": "stm32f405",
        "IRQMON_UNTIL": "app_done",
        "IRQMON_OUT": "out",
        "IRQMON_BASELINE": "base.json",
        "IRQMON_FINDINGS": "out/new-findings.json",
    }
    for script in ("capture.sh", "analyze.sh", "report.sh"):
        assert run_script(script, tmp_path, env).returncode == 0
    command_lines = [json.loads(line) for line in log.read_text().splitlines()]
    parser = build_parser()
    for words in command_lines:
        parser.parse_args(words)
    written = {re.search(r"^\s*irqmon (\w+)", line, re.M).group(1) for line in map(Path.read_text, SCRIPTS)
               if re.search(r"^\s*irqmon (\w+)", line, re.M)}
    assert {words[0] for words in command_lines} == written == {"attach", "analyze", "report"}
    assert ["--baseline", "base.json"] in [words[i:i + 2] for words in command_lines for i in range(len(words))]


# --- action.yml and the workflow ---------------------------------------------------------


def expressions(text: str, context: str) -> set[str]:
    """The names used as `context.NAME` inside ${{ }} expressions of a YAML file's text."""
    return set(re.findall(rf"\b{re.escape(context)}\.([A-Za-z0-9_-]+)", " ".join(re.findall(r"\$\{\{(.*?)\}\}", text))))


@pytest.mark.parametrize("path", [ACTION, COMMENT_ACTION], ids=["irqmon", "comment"])
def test_action_inputs_and_outputs_are_used_consistently(path):
    action = load(path)
    text = path.read_text()
    assert action["runs"]["using"] == "composite"
    assert expressions(text, "inputs") == set(action["inputs"])  # each input used, none undeclared
    steps = {step.get("id"): step for step in action["runs"]["steps"]}
    for name, output in action.get("outputs", {}).items():
        for step_id, key in re.findall(r"steps\.([\w-]+)\.outputs\.([\w-]+)", output["value"]):
            assert step_id in steps, f"output {name}: no step {step_id}"
            run = steps[step_id]["run"]
            script = re.search(r"(\w+\.sh)", run)  # both actions' scripts live in ACTION_DIR
            source = (ACTION_DIR / script.group(1)).read_text() if script else run
            assert f"{key}=" in source, f"output {name}: step {step_id} never writes {key}"


def test_each_script_reads_only_the_environment_its_step_sets():
    for step in load(ACTION)["runs"]["steps"]:
        script = re.search(r"/(\w+\.sh)$", step.get("run", ""))
        if not script:
            continue
        path = ACTION_DIR / script.group(1)
        assert os.access(path, os.X_OK), f"{path.name} is not executable"
        needed = set(re.findall(r"\$\{?(IRQMON_[A-Z_]+)", path.read_text()))
        assert needed <= set(step.get("env", {})), f"{path.name} reads {needed - set(step.get('env', {}))}"


@pytest.fixture(scope="module")
def workflow() -> dict:
    return load(WORKFLOW)


def workflow_steps(workflow: dict, job: str) -> list[dict]:
    return workflow["jobs"][job]["steps"]


def test_workflow_uses_the_action_with_its_inputs_and_outputs(workflow):
    inputs, outputs = set(load(ACTION)["inputs"]), set(load(ACTION)["outputs"])
    uses = [step for step in workflow_steps(workflow, "capture") if step.get("uses") == "./.github/actions/irqmon"]
    assert [step["id"] for step in uses] == ["base", "irqmon"]
    for step in uses:
        assert set(step["with"]) <= inputs
        assert {"elf", "target", "until"} <= set(step["with"])
    for step_id in ("base", "irqmon"):
        assert expressions(WORKFLOW.read_text(), f"steps.{step_id}.outputs") <= outputs
    comment_inputs = set(load(COMMENT_ACTION)["inputs"])
    [comment] = [s for s in workflow_steps(workflow, "comment") if s.get("uses") == "./.github/actions/irqmon/comment"]
    assert set(comment["with"]) <= comment_inputs


def test_workflow_baselines_against_the_base_commit(workflow):
    steps = workflow_steps(workflow, "capture")
    assert any(step.get("with", {}).get("ref") == "${{ github.event.pull_request.base.sha }}" for step in steps)
    base = next(step for step in steps if step.get("id") == "base")
    assert base["continue-on-error"] is True
    head = next(step for step in steps if step.get("id") == "irqmon")
    assert "steps.base.outputs.all-findings" in head["with"]["baseline"]


def test_sarif_upload_is_v4_guarded_against_forks_and_never_stops_the_job(workflow):
    [upload] = [s for s in workflow_steps(workflow, "capture") if "upload-sarif" in s.get("uses", "")]
    assert upload["uses"] == "github/codeql-action/upload-sarif@v4"
    assert upload["continue-on-error"] is True
    assert "github.event.pull_request.head.repo.full_name == github.repository" in upload["if"]
    assert "!cancelled()" in upload["if"]


def test_report_and_comment_survive_findings_and_the_failure_comes_last(workflow):
    steps = workflow_steps(workflow, "capture")
    [artifact] = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert "!cancelled()" in artifact["if"]
    assert "exit 1" in steps[-1]["run"] and "steps.irqmon.outputs.status" in steps[-1]["if"]
    assert "!cancelled()" in workflow["jobs"]["comment"]["if"]
    assert "--edit-last" not in WORKFLOW.read_text() + (ACTION_DIR / "comment.sh").read_text()


def test_permissions_are_per_job(workflow):
    assert workflow["permissions"] == {"contents": "read"}
    assert workflow["jobs"]["capture"]["permissions"]["security-events"] == "write"
    assert workflow["jobs"]["comment"]["permissions"]["pull-requests"] == "write"
    assert "pull_request" in workflow[True]  # YAML 1.1 reads the key `on` as True


def test_edit_markers_show_where_a_user_adapts_the_workflow():
    lines = WORKFLOW.read_text().splitlines()
    marked = [line for line in lines if "# EDIT" in line]
    local_uses = [line for line in lines if line.lstrip(" -").startswith("uses: ./.github/actions/irqmon")]
    assert len(local_uses) == 3 and all("# EDIT" in line for line in local_uses)
    assert any("IRQMON_TARGET:" in line for line in marked) and any("make " in line for line in marked)


# --- linters ------------------------------------------------------------------------------


def tool(name: str) -> str:
    """The linter from PATH or beside this interpreter (the dev extras install it there)."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[dev]' installs it)")
    return found


def test_shellcheck_finds_nothing_in_the_scripts():
    result = subprocess.run([tool("shellcheck"), *map(str, SCRIPTS)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_finds_nothing_in_the_workflow_and_its_actions():
    """actionlint also checks the local actions' inputs, and the run: scripts with shellcheck when present."""
    environment = dict(os.environ)
    shellcheck = shutil.which("shellcheck") or shutil.which("shellcheck", path=str(Path(sys.executable).parent))
    if shellcheck:
        environment["PATH"] = f"{Path(shellcheck).parent}{os.pathsep}{environment['PATH']}"
    result = subprocess.run(
        [tool("actionlint"), str(WORKFLOW.relative_to(ROOT))], cwd=ROOT, env=environment, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
