"""What the benchmarks share: paths, the bench firmware build, timing and the machine's description."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
FIRMWARE_DIR = BENCH_DIR / "firmware"
PROBE_PACK = FIRMWARE_DIR / "bench_isr.toml"
NO_PROBES_PACK = FIRMWARE_DIR / "no_probes.toml"
RESULTS_DIR = BENCH_DIR / "results"  # generated traces and captures (git-ignored)
PYTHON = sys.executable
TARGET = "stm32f405"
BENCH_HANDLER = "EXTI2_IRQHandler"
BENCH_IPSR = 16 + 8  # EXTI2 is IRQ 8
COUNT_MARKER = "bench_irq: isr_count="


def bench_firmware(iterations: int, exit_qemu: bool = False) -> Path:
    """Build (if needed) the tight-interrupt-loop firmware for `iterations` activations."""
    args = ["make", "-s", "-C", str(FIRMWARE_DIR), f"ITERATIONS={iterations}"] + (["EXIT=1"] if exit_qemu else [])
    subprocess.run(args, check=True, capture_output=True, text=True)
    return FIRMWARE_DIR / "build" / f"bench_irq_{iterations}{'_exit' if exit_qemu else ''}.elf"


def isr_count(serial: str) -> int:
    """The activation count the firmware printed on USART1."""
    for line in serial.splitlines():
        if line.startswith(COUNT_MARKER):
            return int(line[len(COUNT_MARKER) :].strip(), 16)
    raise RuntimeError(f"the bench firmware did not print its count: {serial[-200:]!r}")


def irqmon(*args: str, timeout: float = 3600.0) -> subprocess.CompletedProcess:
    """The irqmon command line, as a user runs it."""
    result = subprocess.run(
        [PYTHON, "-m", "irqmon", *args], capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT
    )
    if result.returncode != 0:
        raise RuntimeError(f"irqmon {' '.join(args)} failed: {result.stderr.strip()[-500:]}")
    return result


def median_of(repeats: int, measure: Callable[[], dict[str, float]]) -> dict[str, float]:
    """Run `measure` `repeats` times and take the median of each number it returns."""
    runs = [measure() for _ in range(repeats)]
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def machine() -> str:
    """One line about the host: CPU, cores, memory, OS, and the tools' versions."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    try:
        os_name = platform.freedesktop_os_release().get("PRETTY_NAME", platform.system())
    except OSError:
        os_name = platform.system()
    versions = [_first_line(["qemu-system-arm", "--version"]), _first_line(["gdb-multiarch", "--version"])]
    return (
        f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB, {os_name}, Python {platform.python_version()}; "
        + "; ".join(v for v in versions if v)
    )


def load_average() -> str:
    try:
        return " ".join(f"{value:.1f}" for value in os.getloadavg())
    except OSError:
        return "?"


def _first_line(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, check=False).stdout.splitlines()[0]
    except (OSError, IndexError):
        return ""
