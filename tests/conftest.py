from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from support import ICOUNT, build_samples, capture_reproducing


@pytest.fixture(scope="session")
def built_samples() -> None:
    """Build every sample for QEMU's board once per test session."""
    result = build_samples()
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="session")
def sample_trace(built_samples, tmp_path_factory) -> Callable[[str], Path]:
    """The trace of a whole run of a sample on QEMU, captured once per session."""
    traces: dict[str, Path] = {}

    def get(sample: str) -> Path:
        if sample not in traces:
            output = tmp_path_factory.mktemp(sample) / "trace.csv"
            result = capture_reproducing(sample, output)
            assert result.returncode == 0, result.stderr
            traces[sample] = output
        return traces[sample]

    return get


@pytest.fixture
def deterministic_qemu(tmp_path, monkeypatch) -> None:
    """Put a `qemu-system-arm` that adds `-icount` first in PATH for the irqmon subprocesses."""
    real = shutil.which("qemu-system-arm")
    assert real is not None
    wrapper = tmp_path / "bin" / "qemu-system-arm"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nexec {real} "$@" {ICOUNT}\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper.parent}{os.pathsep}{os.environ['PATH']}")
