"""The backend registry: a backend from outside irqmon, registered through its own entry point,
captures real firmware on QEMU end to end; `--probe` is a deprecated alias of `--backend`; and
argparse stays in the command line's own modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd
import pytest

from irqmon.analysis import analyze
from irqmon.tracefile import load_trace
from support import ROOT, capture_sample, comparable_rows, irqmon, register_backends

# Breakpoints only (the test's backend sets no watchpoints): heap calls and the heap's mutex.
BREAKPOINT_PACKS = "newlib_heap,cmsis_rtos2"
SAMPLE = "usb_cdc_malloc_isr"
COMMAND_LINE = {ROOT / "irqmon" / "cli.py", ROOT / "irqmon" / "commands"}


@pytest.fixture
def plugin_installed(tmp_path, monkeypatch) -> None:
    """The test's backend registered as a third party would: a distribution of its own whose
    metadata declares an `irqmon.backends` entry point, found on the irqmon subprocesses' path.
    A second entry point names nothing that loads: it must not get in the others' way."""
    entries = {"plain-rsp": "plain_rsp:BACKEND", "broken": "plain_rsp:MISSING"}
    monkeypatch.setenv("PYTHONPATH", register_backends(tmp_path / "site", "plain-rsp-backend", entries))


def test_a_backend_of_its_own_module_captures_like_gdb(built_samples, deterministic_qemu, plugin_installed, tmp_path):
    """Under -icount both backends see the same execution: every row matches gdb's."""
    help_text = irqmon("attach", "--help").stdout
    assert "plain-rsp" in help_text and "--plain-timeout SECONDS" in help_text
    traces = {name: tmp_path / f"{name}.csv" for name in ("gdb", "plain-rsp")}
    for name, trace in traces.items():
        extra = ["--plain-timeout", "20"] if name == "plain-rsp" else []
        result = capture_sample(SAMPLE, trace, "--backend", name, "--probes", BREAKPOINT_PACKS, *extra)
        assert result.returncode == 0, result.stderr
    plugin = load_trace(traces["plain-rsp"])
    assert plugin.metadata["backend"] == "plain-rsp"
    (gdb_halts, gdb_irqs), (plugin_halts, plugin_irqs) = map(comparable_rows, traces.values())
    assert len(plugin_halts) > 10 and len(plugin_irqs) > 10
    pd.testing.assert_frame_equal(plugin_halts, gdb_halts)
    pd.testing.assert_frame_equal(plugin_irqs, gdb_irqs)
    malloc_in_isr = [f for f in analyze(plugin) if f.rule == "malloc-in-isr"]
    assert malloc_in_isr and all(f.exception == "OTG_FS" for f in malloc_in_isr)


def test_bad_backend_choices_are_one_line_and_status_2(built_samples, plugin_installed, tmp_path):
    cases = {
        ("--backend", "plain-rsp", "--plain-timeout", "soon"): "--plain-timeout soon: not a number of seconds",
        ("--plain-timeout", "3"): "--plain-timeout is an option of --backend plain-rsp",
        ("--backend", "plain-rsp", "--watch", "0x40013C00:4"): "--backend plain-rsp sets no watchpoints",
        ("--backend", "broken"): "backend 'broken' cannot be used: plain_rsp:MISSING does not load (AttributeError",
        ("--backend", "jlink"): "unknown backend 'jlink': known are gdb, plain-rsp, pyocd, qemu-plugin, rsp",
    }
    for args, message in cases.items():
        result = capture_sample(SAMPLE, tmp_path / "t.csv", *args)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1, result.stderr
        assert lines[0].startswith(f"irqmon: {message}"), result.stderr


def test_probe_still_chooses_the_backend_with_one_deprecation_line(built_samples, tmp_path):
    output = tmp_path / "old.csv"
    result = capture_sample(SAMPLE, output, "--probe", "rsp")
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stderr.splitlines() if "deprecated" in line] == [
        "irqmon: --probe is deprecated: use --backend (--probes still chooses probe packs)"
    ]
    assert load_trace(output).metadata["backend"] == "rsp"
    both = irqmon("attach", "--target", "stm32f405", "--qemu", "fw.elf", "--backend", "gdb", "--probe", "rsp")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr


def argparse_importers(paths: list[Path]) -> list[Path]:
    """The modules among `paths` that import argparse anywhere (a function's own import too)."""
    found = []
    for path in paths:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            module = node.module if isinstance(node, ast.ImportFrom) else None
            if "argparse" in names or module == "argparse":
                found.append(path)
                break
    return found


def test_no_module_below_the_command_line_imports_argparse():
    modules = sorted((ROOT / "irqmon").rglob("*.py"))
    below = [p for p in modules if not any(p == c or c in p.parents for c in COMMAND_LINE)]
    assert argparse_importers([ROOT / "irqmon" / "commands" / "attach.py"]), "the scan finds an import"
    assert list(argparse_importers(below)) == []
