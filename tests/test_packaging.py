"""The wheel, installed (not editable) into a fresh virtual environment away from the
repository, finds its probe packs and report layouts through importlib.resources."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

from support import ROOT

RECORDED = ROOT / "tests" / "analysis" / "traces" / "usb_cdc_malloc_isr.csv"


def test_installed_wheel_finds_its_packs_and_layouts(tmp_path):
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(ROOT)],
                           capture_output=True, text=True, check=False)  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    wheel = next((tmp_path / "dist").glob("irqmon-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())  # fmt: skip
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                               capture_output=True, text=True, check=False)  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-3000:]
    # irqmon's dependencies from this environment; irqmon itself only from the wheel.
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = tmp_path / "elsewhere"
    work.mkdir()

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([python, "-m", "irqmon", *args], cwd=work, capture_output=True, text=True, check=False)

    where = subprocess.run([python, "-c", "import irqmon.resources as r; print(r.data_dir('probes'))"], cwd=work,
                           capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert where.startswith(str(site)), where
    packs = run("probes")
    assert packs.returncode == 0 and "newlib_heap" in packs.stdout and "stm32_hal_lock" in packs.stdout, packs.stderr
    findings = run("analyze", str(RECORDED), "--format", "concise")
    assert findings.returncode == 1 and "malloc-in-isr" in findings.stdout, findings.stderr
    report = run("report", str(RECORDED), "--layout", "pr", "-o", "report")
    assert report.returncode == 0 and (work / "report" / "report.md").exists(), report.stderr
