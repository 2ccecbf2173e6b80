"""Capture benchmark: breakpoint hits per second on a tight interrupt loop under QEMU.

Baseline: gdb-multiarch alone on the same QEMU, `break` on the handler with `commands` /
`silent` / `continue` / `end`, counting the hits. irqmon: `irqmon attach` logging every hit as a
full row (registers, masks, exception, priority, call path), through gdb (`--backend gdb`) and
through the GDB remote protocol spoken directly (`--backend rsp`). Each repeat runs them one
after the other on the same firmware; the numbers are the medians. For scale, two floors over the
GDB remote protocol, with no rows built: a bare `s` + `c` per hit (QEMU needs the step to leave
the breakpoint), and the least any capture that halts at each hit can do: one burst per hit that
reads the registers and a stack window, moves past the handler's first instruction by writing
its result instead of stepping it, and continues. Last, the baseline and `--backend rsp` again
through a relay that makes every round trip cost a millisecond more, as a USB debug probe's
requests do: the two differ in round trips per hit, which a local socket makes almost free.
"""

from __future__ import annotations

import argparse
import contextlib
import select
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
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
from irqmon.cortexm.elf import ElfImage
from irqmon.rsp import PointKind, RspClient, frame
from irqmon.tracefile import load_trace

PROBES = ("gdb", "rsp")
FLOORS = ("floor", "burst_floor")
LDR_LITERAL = 0b01001  # bits 15:11 of a 16-bit `ldr rt, [pc, #imm]`
STACK_WINDOW = 64
COUNTER = "bench_isr_count"
ROUND_TRIP_HITS = 200
SLOW_LINK_HITS = 200
SLOW_LINK_LATENCY = 0.001  # seconds added to every round trip
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


class TurnCounter(threading.Thread):
    """A TCP relay between a debugger and QEMU's stub that counts the debugger's turns: the
    writes it makes after the stub has written. Packets sent together, without waiting for
    the stub in between, are one turn: a round trip. With `latency`, every turn reaches the
    stub that many seconds late: a link whose round trips cost that much more."""

    def __init__(self, upstream: str, latency: float = 0.0) -> None:
        super().__init__(daemon=True)
        self._upstream = upstream
        self._latency = latency
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self.turns = 0

    def run(self) -> None:
        debugger, _ = self._listener.accept()
        host, _, port = self._upstream.rpartition(":")
        stub = socket.create_connection((host, int(port)))
        for end in (debugger, stub):
            end.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # else Nagle holds small writes
        stub_spoke = True
        with debugger, stub, self._listener:
            while True:
                ready, _, _ = select.select([debugger, stub], [], [])
                for source in ready:
                    data = source.recv(65536)
                    if not data:
                        return
                    if source is debugger:
                        if stub_spoke and self._latency:
                            time.sleep(self._latency)
                        self.turns += stub_spoke
                        stub_spoke = False
                        stub.sendall(data)
                    else:
                        stub_spoke = True
                        debugger.sendall(data)


def gdb_baseline(elf: Path, hits: int, turns: list[int] | None = None, latency: float = 0.0) -> float:
    """Hits per second of gdb alone, from `continue` to the stop after the last hit (with
    `turns`: run through a TurnCounter with `latency` and append its count)."""
    image = ElfImage(elf)
    addresses = {"handler": image.symbols[BENCH_HANDLER].address, "done": image.symbols["sample_done"].address}
    with tempfile.TemporaryDirectory(prefix="irqmon-bench-") as work, QemuTarget(elf, workdir=Path(work)) as qemu:
        relay = TurnCounter(qemu.gdb_address, latency) if turns is not None else None
        if relay:
            relay.start()
        script = Path(work) / "bench.gdb"
        address = relay.address if relay else qemu.gdb_address
        script.write_text(GDB_SCRIPT.format(elf=elf, address=address, **addresses))
        result = subprocess.run(
            ["gdb-multiarch", "-nx", "-batch", "-x", str(script)], capture_output=True, text=True, timeout=3600, check=False
        )
        values = dict(line.split()[:2] for line in result.stdout.splitlines() if line.startswith("BENCH_"))
        if "BENCH_HITS" not in values:
            raise RuntimeError(f"the gdb baseline did not finish: {result.stdout[-300:]} {result.stderr[-300:]}")
        counted, serial = int(values["BENCH_HITS"]), qemu.serial_output()
        if relay:
            relay.join(10)
            turns.append(relay.turns)
    if counted != hits or isr_count(serial) != hits:
        raise RuntimeError(f"gdb counted {counted} hits, the firmware {isr_count(serial)}; expected {hits}")
    return hits / float(values["BENCH_SECONDS"])


class _NoAckClient(RspClient):
    """An RspClient that sends no acknowledgements. QEMU's stub never resends a reply, and a
    byte that reaches it after `c` makes it drop the next stop reply."""

    def _send(self, data: bytes) -> None:
        if data != b"+":
            super()._send(data)

    def exchange_then_continue(self, payloads: list[bytes]) -> list[bytes]:
        """Send `payloads` and `c` in one write and return the payloads' replies."""
        self._send(b"".join(frame(payload) for payload in payloads) + frame(b"c"))
        return [self.receive() or b"" for _ in payloads]


@contextlib.contextmanager
def _at_first_hit(elf: Path, client_type: type[RspClient]) -> Iterator[RspClient]:
    """A client of QEMU's stub, halted at the first hit of a breakpoint on the bench handler."""
    handler = ElfImage(elf).symbols[BENCH_HANDLER].address & ~1
    with tempfile.TemporaryDirectory(prefix="irqmon-bench-") as work, QemuTarget(elf, workdir=Path(work)) as qemu:
        host, _, port = qemu.gdb_address.rpartition(":")
        client = client_type(host, int(port))
        try:
            client.handshake()
            client.halt_reason()
            client.insert_point(PointKind.HARDWARE, handler, 2)
            client.cont()
            client.wait_stop(client.timeout)
            yield client
        finally:
            client.close()


def step_and_continue_floor(elf: Path, hits: int) -> float:
    """Hits per second of a bare `s` then `c` at each hit (no registers, no rows), spoken
    directly to QEMU's stub."""
    with _at_first_hit(elf, RspClient) as client:
        start = time.perf_counter()
        for _ in range(hits - 1):
            client.step()  # QEMU steps through the breakpoint under pc
            client.cont()
            client.wait_stop(client.timeout)
        return (hits - 1) / (time.perf_counter() - start)


def burst_floor(elf: Path, hits: int) -> float:
    """Hits per second of one write per hit and no step: `g`, a stack window, the handler's
    first instruction (`ldr rt, [pc, #imm]`) done by writing rt and pc, then `c`; no rows."""
    image = ElfImage(elf)
    handler = image.symbols[BENCH_HANDLER].address & ~1
    first = image.instruction_at(handler)
    if first is None or first.size != 2 or first.first >> 11 != LDR_LITERAL:
        raise RuntimeError(f"{BENCH_HANDLER} does not start with `ldr rt, [pc, #imm]`: update burst_floor")
    literal = ((handler + 4) & ~3) + (first.first & 0xFF) * 4
    writes = [
        f"P{(first.first >> 8) & 7:x}={image.read_code(literal, 4).hex()}".encode(),
        f"Pf={struct.pack('<I', handler + 2).hex()}".encode(),
    ]
    with _at_first_hit(elf, _NoAckClient) as client:
        sp = struct.unpack_from("<I", bytes.fromhex(client.request("g")), 13 * 4)[0]
        window = f"m{sp - STACK_WINDOW // 2:x},{STACK_WINDOW:x}".encode()
        start = time.perf_counter()
        for _ in range(hits - 1):
            client.exchange_then_continue([b"g", window, *writes])
            if client.wait_stop(client.timeout) is None:
                raise RuntimeError("the burst floor lost a stop")
        elapsed = time.perf_counter() - start
        counted = int.from_bytes(bytes.fromhex(client.request(f"m{image.symbols[COUNTER].address:x},4")), "little")
    if counted != hits - 1:  # halted at the last hit's first instruction
        raise RuntimeError(f"the burst floor: the firmware counted {counted} activations, expected {hits - 1}")
    return (hits - 1) / elapsed


def irqmon_capture(elf: Path, hits: int, probe: str, output: Path) -> float:
    """Hits per second of `irqmon attach`, from the capture's start to the last hit's row."""
    irqmon(
        "attach", "--target", TARGET, "--qemu", str(elf), "--unlimited", "--until", "sample_done",
        "--probes", str(PROBE_PACK), "--backend", probe, "-q", "-o", str(output),
    )  # fmt: skip
    return hit_rate(output, hits, probe)


def hit_rate(output: Path, hits: int, probe: str) -> float:
    """Hits per second in a capture's trace, once every hit is checked to have its full row."""
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


def rsp_through_relay(elf: Path, hits: int, turns: list[int], latency: float = 0.0) -> float:
    """Hits per second of `irqmon attach --backend rsp` through a TurnCounter with `latency` on a
    running QEMU; its count is appended to `turns`."""
    with tempfile.TemporaryDirectory(prefix="irqmon-bench-") as work, QemuTarget(elf, workdir=Path(work)) as qemu:
        relay = TurnCounter(qemu.gdb_address, latency)
        relay.start()
        output = Path(work) / "trace.csv"
        irqmon(
            "attach", "--target", TARGET, "--gdb-remote", relay.address, "--elf", str(elf), "--until", "sample_done",
            "--probes", str(PROBE_PACK), "--backend", "rsp", "-q", "-o", str(output),
        )  # fmt: skip
        relay.join(10)
        turns.append(relay.turns)
        output.with_suffix(".usart1.log").write_text(qemu.serial_output())
        return hit_rate(output, hits, "rsp")


def round_trips_per_hit(hits: int) -> dict[str, float]:
    """Round trips per hit of the baseline and of `--backend rsp`: the difference in turns between
    a run of `hits` and one of twice as many, over `hits`, so that set-up and tear-down cancel."""
    counts: dict[str, list[int]] = {"baseline": [], "rsp": []}
    for size in (hits, 2 * hits):
        elf = bench_firmware(size)
        gdb_baseline(elf, size, counts["baseline"])
        rsp_through_relay(elf, size, counts["rsp"])
    return {f"{name}_round_trips": (runs[1] - runs[0]) / hits for name, runs in counts.items()}


def run(hits: int, repeats: int) -> dict[str, float]:
    """Medians of hits/s for the baseline and both irqmon paths, and their ratios to the baseline;
    the same over a slow link."""
    elf = bench_firmware(hits)
    slow_link_hits = min(hits, SLOW_LINK_HITS)
    slow_link_elf = bench_firmware(slow_link_hits)
    RESULTS_DIR.mkdir(exist_ok=True)

    def once() -> dict[str, float]:
        rates = {"baseline": gdb_baseline(elf, hits), "floor": step_and_continue_floor(elf, hits)}
        rates["burst_floor"] = burst_floor(elf, hits)
        for probe in PROBES:
            rates[probe] = irqmon_capture(elf, hits, probe, RESULTS_DIR / f"capture-{probe}.csv")
        rates["slow_link_baseline"] = gdb_baseline(slow_link_elf, slow_link_hits, [], SLOW_LINK_LATENCY)
        rates["slow_link_rsp"] = rsp_through_relay(slow_link_elf, slow_link_hits, [], SLOW_LINK_LATENCY)
        rates["slow_link_ratio"] = rates["slow_link_rsp"] / rates["slow_link_baseline"]
        return rates | {f"{name}_ratio": rates[name] / rates["baseline"] for name in (*PROBES, *FLOORS)}

    return (
        {"hits": hits, "repeats": repeats, "slow_link_hits": slow_link_hits, "slow_link_ms": SLOW_LINK_LATENCY * 1e3}
        | median_of(repeats, once)
        | round_trips_per_hit(ROUND_TRIP_HITS)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hits", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(run(args.hits, args.repeats))


if __name__ == "__main__":
    main()
