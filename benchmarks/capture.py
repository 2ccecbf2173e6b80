"""Capture benchmark: breakpoint hits per second on a tight interrupt loop under QEMU.

Baseline: gdb-multiarch alone on the same QEMU, `break` on the handler with `commands` /
`silent` / `continue` / `end`, counting the hits. irqmon: `irqmon attach` logging every hit as a
full row (registers, masks, exception, priority, call path), through gdb (`--probe gdb`) and
through the GDB remote protocol spoken directly (`--probe rsp`). Each repeat runs the three
one after the other on the same firmware; the numbers are the medians. For scale, the floor: the
rate of a bare `s` + `c` per hit over the GDB remote protocol, the least any capture that halts
at each hit can do (QEMU needs the step to leave the breakpoint).
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

from common import (
    BENCH_HANDLER,
    BENCH_IPSR,
    PROBE_PACK,
    RESULTS_DIR,
    TARGET,
    bench_firmware,
    irqmon,
    isr_count,
    median_of,
)

from irqmon.backends.qemu import QemuTarget
from irqmon.elf import ElfImage
from irqmon.rsp import PointKind, RspClient
from irqmon.tracefile import load_trace

PROBES = ("gdb", "rsp")
FULL_ROW = ("pc", "lr", "sp", "ipsr", "priority", "basepri", "primask", "faultmask", "control", "callpath")

GDB_SCRIPT = """\
set pagination off
set confirm off
file {elf}
target remote {address}
break *{handler:#x}
commands
silent
continue
end
break *{done:#x}
python import time; bench_start = time.monotonic()
continue
python print("BENCH_SECONDS %.6f" % (time.monotonic() - bench_start))
python print("BENCH_HITS %d" % gdb.breakpoints()[0].hit_count)
"""


def gdb_baseline(elf: Path, hits: int) -> float:
    """Hits per second of gdb alone, from `continue` to the stop after the last hit."""
    image = ElfImage(elf)
    addresses = {"handler": image.symbols[BENCH_HANDLER].address, "done": image.symbols["sample_done"].address}
    with tempfile.TemporaryDirectory(prefix="irqmon-bench-") as work, QemuTarget(elf, workdir=Path(work)) as qemu:
        script = Path(work) / "bench.gdb"
        script.write_text(GDB_SCRIPT.format(elf=elf, address=qemu.gdb_address, **addresses))
        result = subprocess.run(
            ["gdb-multiarch", "-nx", "-batch", "-x", str(script)], capture_output=True, text=True, timeout=3600, check=False
        )
        values = dict(line.split()[:2] for line in result.stdout.splitlines() if line.startswith("BENCH_"))
        if "BENCH_HITS" not in values:
            raise RuntimeError(f"the gdb baseline did not finish: {result.stdout[-300:]} {result.stderr[-300:]}")
        counted, serial = int(values["BENCH_HITS"]), qemu.serial_output()
    if counted != hits or isr_count(serial) != hits:
        raise RuntimeError(f"gdb counted {counted} hits, the firmware {isr_count(serial)}; expected {hits}")
    return hits / float(values["BENCH_SECONDS"])


def step_and_continue_floor(elf: Path, hits: int) -> float:
    """Hits per second of the least any halting capture does: at each hit only `s` then `c`
    (no registers, no rows), spoken directly to QEMU's stub."""
    image = ElfImage(elf)
    handler = image.symbols[BENCH_HANDLER].address
    with tempfile.TemporaryDirectory(prefix="irqmon-bench-") as work, QemuTarget(elf, workdir=Path(work)) as qemu:
        host, _, port = qemu.gdb_address.rpartition(":")
        client = RspClient(host, int(port))
        try:
            client.handshake()
            client.halt_reason()
            client.insert_point(PointKind.HARDWARE, handler, 2)
            client.cont()
            client.wait_stop(client.timeout)  # the first hit
            start = time.perf_counter()
            for _ in range(hits - 1):
                client.step()  # QEMU steps through the breakpoint under pc
                client.cont()
                client.wait_stop(client.timeout)
            elapsed = time.perf_counter() - start
        finally:
            client.close()
    return (hits - 1) / elapsed


def irqmon_capture(elf: Path, hits: int, probe: str, output: Path) -> float:
    """Hits per second of `irqmon attach`, from the capture's start to the last hit's row."""
    irqmon(
        "attach", "--target", TARGET, "--qemu", str(elf), "--unlimited", "--until", "sample_done",
        "--probes", str(PROBE_PACK), "--probe", probe, "-q", "-o", str(output),
    )  # fmt: skip
    frame = load_trace(output).frame
    rows = frame[(frame["event"] == "call") & (frame["symbol"] == BENCH_HANDLER)]
    serial = output.with_suffix(".usart1.log").read_text()
    if len(rows) != hits or isr_count(serial) != hits:
        raise RuntimeError(f"{probe}: {len(rows)} rows, the firmware counted {isr_count(serial)}; expected {hits}")
    if rows[list(FULL_ROW)].isna().any().any() or not (rows["ipsr"] == BENCH_IPSR).all():
        raise RuntimeError(f"{probe}: rows without the full set of columns")
    if not rows["callpath"].str.startswith(f"{BENCH_HANDLER};<exception>;").all():
        raise RuntimeError(f"{probe}: a call path does not show the exception entry")
    return hits / float(rows["time"].iloc[-1])


def run(hits: int, repeats: int) -> dict[str, float]:
    """Medians of hits/s for the baseline and both irqmon paths, and their ratios to the baseline."""
    elf = bench_firmware(hits)
    RESULTS_DIR.mkdir(exist_ok=True)

    def once() -> dict[str, float]:
        rates = {"baseline": gdb_baseline(elf, hits), "floor": step_and_continue_floor(elf, hits)}
        for probe in PROBES:
            rates[probe] = irqmon_capture(elf, hits, probe, RESULTS_DIR / f"capture-{probe}.csv")
        return rates | {f"{name}_ratio": rates[name] / rates["baseline"] for name in (*PROBES, "floor")}

    return {"hits": hits, "repeats": repeats} | median_of(repeats, once)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hits", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(run(args.hits, args.repeats))


if __name__ == "__main__":
    main()
