"""A farm's night of traces for the fleet tests: recorded sample traces copied as captures of
other firmware builds at other times."""

from __future__ import annotations

from pathlib import Path

from support import ROOT

TRACES = ROOT / "tests" / "analysis" / "traces"
BUILD_A = "aaaa" * 10
BUILD_B = "bbbb" * 10


def copy_trace(sample: str, to: Path, build_id: str, start_time: str) -> Path:
    """A recorded trace as another capture of another build: new build id and start time, and
    no recorded ELF (its source column is used as is, wherever the samples were built)."""
    lines = []
    for line in (TRACES / f"{sample}.csv").read_text().splitlines(keepends=True):
        if line.startswith("# build_id:"):
            line = f"# build_id: {build_id}\n"
        elif line.startswith("# start_time:"):
            line = f"# start_time: {start_time}\n"
        elif line.startswith("# elf:"):
            continue
        lines.append(line)
    to.parent.mkdir(parents=True, exist_ok=True)
    to.write_text("".join(lines))
    return to


def make_farm(folder: Path) -> Path:
    """Two nights of traces: the USB sample on build A, then on build B next to the EXTI sample."""
    copy_trace("usb_cdc_malloc_isr", folder / "night1" / "usb.csv", BUILD_A, "2026-11-20T01:00:00+00:00")
    copy_trace("usb_cdc_malloc_isr", folder / "night2" / "usb.csv", BUILD_B, "2026-11-21T01:00:00+00:00")
    copy_trace("exti_imr_rmw_race", folder / "night2" / "exti.csv", BUILD_B, "2026-11-21T02:00:00+00:00")
    return folder
