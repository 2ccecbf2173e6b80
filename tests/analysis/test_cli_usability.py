"""The command line as a linter's users expect it: help with examples everywhere, suggestions
for typos, one-line formats for editors and CI, and exit statuses chosen by severity."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from test_cli import WARNING_ONLY
from tracebuild import write_trace

from irqmon.analysis.findings import SEVERITIES
from irqmon.cli import build_parser, command_names, main
from irqmon.commands import analyze

RECORDED = Path(__file__).parent / "traces" / "usb_cdc_malloc_isr.csv"  # 2 errors: malloc and free in OTG_FS


def subparsers() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("command", command_names())
def test_every_command_has_a_description_an_example_and_help_for_every_option(command):
    parser = subparsers()[command]
    text = parser.format_help()
    assert parser.description and "examples:" in text and f"irqmon {command}" in text.split("examples:", 1)[1]
    for action in parser._actions:
        assert action.help, f"irqmon {command} {'/'.join(action.option_strings) or action.dest} has no help"


def test_typos_get_a_suggestion(capsys):
    for argv, suggestion in ((["analyse", "t.csv"], "did you mean 'analyze'?"),
                             (["analyze", "t.csv", "--formt", "json"], "did you mean '--format'?"),
                             (["analyze", "t.csv", "--format", "jsn"], "did you mean 'json'?")):  # fmt: skip
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 2 and suggestion in capsys.readouterr().err


def test_concise_format_is_one_line_per_finding(capsys):
    assert main(["analyze", str(RECORDED), "--no-elf", "--format", "concise"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("firmware_samples/usb_cdc_malloc_isr/usbd_conf.c:8: malloc-in-isr malloc called from")
    assert lines[0].endswith("[error]")


def test_github_format_is_workflow_commands(capsys):
    main(["analyze", str(RECORDED), "--no-elf", "--format", "github"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("::error file=firmware_samples/usb_cdc_malloc_isr/usbd_conf.c,line=8,title=irqmon malloc-in-isr::")
    assert all(line.startswith(("::error ", "::warning ", "::notice ")) for line in lines)
    assert all("\n" not in line and "%0A" not in line.split("::", 2)[1] for line in lines)


def test_fail_on_and_exit_zero_choose_the_status(tmp_path, capsys):
    assert main(["analyze", str(RECORDED), "--no-elf"]) == 1  # errors
    assert main(["analyze", str(RECORDED), "--no-elf", "--exit-zero"]) == 0
    warning_only = write_trace(tmp_path / "w.csv", WARNING_ONLY)  # an unbalanced-lock warning
    assert main(["analyze", str(warning_only), "--fail-on", "error"]) == 0
    assert main(["analyze", str(warning_only), "--fail-on", "warning"]) == 1
    assert main(["analyze", str(warning_only), "--fail-on", "note"]) == 1
    assert main(["analyze", str(warning_only), "--fail-on", "note", "--exit-zero"]) == 0
    assert analyze.SEVERITIES == SEVERITIES


def test_color_never_and_always(tmp_path, capsys):
    main(["analyze", str(RECORDED), "--no-elf", "--color", "always"])
    assert "\x1b[" in capsys.readouterr().out
    main(["analyze", str(RECORDED), "--no-elf", "--color", "never"])
    assert "\x1b[" not in capsys.readouterr().out
