"""`irqmon attach --gdb-remote` through pyOCD's real gdbserver (a GDB server nobody here wrote),
in front of QEMU through the `qemu` probe plugin; and plain gdb through the same server.

pyOCD presents the comparators of the target profile (6 FPB, 4 DWT on stm32f405) and refuses a
breakpoint beyond them, so every capture here fits that budget without --unlimited: where a
sample's packs are larger, the test probes a few of their functions, as a user with six
comparators would. Each capture starts its own QEMU and gdbserver: a sample's bugs happen from
reset on, and pyOCD resumes the target whenever a client lets go."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from gdbserver_support import narrowed_pack, pyocd_gdbserver
from support import expected, irqmon, sample_elf, sample_names

from irqmon.analysis import analyze
from irqmon.capture.budget import arming_plan
from irqmon.cortexm.elf import ElfImage
from irqmon.cortexm.registers import DWT_COMP0, DWT_FUNCTION_MATCHED, matched_watchpoint
from irqmon.probes import plan_capture
from irqmon.targets import load_target
from irqmon.tracefile import load_trace

TARGET = "stm32f405"
# What each sample is captured with: whole packs by name, or {pack: [functions]} for a few of a
# pack's functions. With --until's breakpoint, each fits 6 FPB and 4 DWT comparators.
PROBES: dict[str, list[str | dict[str, list[str]]]] = {
    "clean": ["newlib_heap", "stm32_hal_lock"],
    "exti_imr_rmw_race": ["stm32_shared_registers"],
    "hal_i2c_lock_deadlock": ["stm32_hal_lock"],
    "printf_tasks_critical": [
        {"nonreentrant": ["printf"]},
        {"freertos": ["vPortEnterCritical", "vPortExitCritical", "xQueueGenericSendFromISR"]},
    ],
    "uart_queue_primask": ["critical_sections"],
    "rtos_clean": [{"freertos": ["xQueueSemaphoreTake", "xQueueGenericSend", "vPortEnterCritical", "vPortExitCritical"]}],
    "hal_clean": ["stm32_hal_lock"],
    "usb_cdc_malloc_isr": [{"newlib_heap": ["malloc", "free"]}],  # the heap mutex is only their evidence
}
# Rules that tell ISR activations apart by the IRQ timeline (irq_enter/irq_exit rows): a GDB
# server gives none (QEMU's NVIC trace, or SWO with --probe pyocd on a board, does). A storm's
# re-entries, with no thread mode between them, look like one long activation without it.
NEEDS_IRQ_TIMELINE = {"interrupt-storm"}
ATTEMPTS = 3  # a sample whose timers race the halts can miss its interleaving in one run


def probes_argument(sample: str, directory: Path) -> str:
    if sample not in PROBES:
        pytest.fail(f"{sample}: choose its probes for a 6 FPB / 4 DWT budget in PROBES")
    specs = []
    for entry in PROBES[sample]:
        if isinstance(entry, str):
            specs.append(entry)
        else:
            specs += [str(narrowed_pack(pack, symbols, directory)) for pack, symbols in entry.items()]
    return ",".join(specs)


Capture = tuple[subprocess.CompletedProcess, Path, str]


def capture_through_pyocd(sample: str, backend: str, directory: Path) -> Capture:
    """Capture a whole run of `sample` through `pyocd gdbserver`, again while the firmware says
    its bug did not happen; returns irqmon's result, the trace and the firmware's output."""
    probes = probes_argument(sample, directory)
    marker = expected(sample).get("bug_marker")
    for attempt in range(ATTEMPTS):
        trace = directory / f"{backend}-{attempt}.csv"
        with pyocd_gdbserver(sample_elf(sample), directory / f"run-{backend}-{attempt}") as server:
            assert server.comparators() == (6, 4), "pyOCD reports the profile's comparators"
            result = irqmon(
                "attach", "--target", TARGET, "--backend", backend, "--gdb-remote", server.address,
                "--elf", str(sample_elf(sample)), "--probes", probes, "--until", "sample_done", "-q", "-o", str(trace),
                timeout=120,
            )  # fmt: skip
            serial = server.qemu.serial_output()
        if result.returncode != 0 or marker is None or marker in serial:
            break
    return result, trace, serial


@pytest.fixture(scope="module")
def pyocd_capture(built_samples, tmp_path_factory) -> Callable[[str, str], Capture]:
    """`capture_through_pyocd`, once per sample and backend in this module."""
    captures: dict[tuple[str, str], Capture] = {}

    def get(sample: str, backend: str) -> Capture:
        if (sample, backend) not in captures:
            captures[sample, backend] = capture_through_pyocd(sample, backend, tmp_path_factory.mktemp(sample))
        return captures[sample, backend]

    return get


def comparators(*entries: tuple[int, int, int]) -> bytes:
    """A DWT comparator block: COMPn, MASKn, FUNCTIONn and a reserved word each."""
    return b"".join(b"".join(v.to_bytes(4, "little") for v in (*entry, 0)) for entry in entries)


def test_the_matched_comparator_names_the_watchpoint():
    """FUNCTIONn.MATCHED picks the comparator; its MASK says how many bytes from COMP it covers."""
    block = comparators((0x20000100, 0, 6), (0x20000200, 2, 7 | DWT_FUNCTION_MATCHED), (0, 0, 0))

    def read(address: int, size: int) -> bytes:
        assert address == DWT_COMP0
        return block[:size]

    watches = {3: 0x20000100, 4: 0x20000202}
    assert matched_watchpoint(read, 3, watches) == 4, "0x20000202 is in the 4 bytes from 0x20000200"
    block = comparators((0x20000100, 0, 6), (0x20000200, 2, 7), (0, 0, 0))
    assert matched_watchpoint(read, 3, watches) is None, "no MATCHED bit, two watchpoints: unknown"
    assert matched_watchpoint(read, 3, {3: 0x20000100}) == 3, "no MATCHED bit, one watchpoint: that one"


@pytest.mark.parametrize("backend", ["gdb", "rsp"])
@pytest.mark.parametrize("sample", sample_names())
def test_sample_rules_through_pyocd_gdbserver(sample, backend, pyocd_capture):
    result, trace, serial = pyocd_capture(sample, backend)
    assert result.returncode == 0, result.stderr
    assert "reached --until" in result.stderr
    assert expected(sample)["done_marker"] in serial
    loaded = load_trace(trace)
    assert loaded.metadata["build_id"] == ElfImage(sample_elf(sample)).build_id
    assert not loaded.frame["event"].isin(["irq_enter", "irq_exit"]).any(), "a GDB server gives no IRQ timeline"

    findings = analyze(loaded)
    wanted = set(expected(sample)["rules"]) - NEEDS_IRQ_TIMELINE
    reported = {f.rule for f in findings}
    errors = {f.rule for f in findings if f.severity == "error"}
    assert wanted <= reported, f"missing {wanted - reported}"
    assert errors <= wanted, f"unexpected errors {errors - wanted}"
    if not expected(sample)["rules"]:
        assert not [f for f in findings if f.severity in ("error", "warning")]


@pytest.mark.parametrize("backend", ["gdb", "rsp"])
def test_watched_accesses_are_named_and_placed_after_the_access(backend, pyocd_capture):
    """pyOCD's stop reply names no watchpoint (a plain T05) and the bridge's DWT halts after the
    access: the rows name the register, and a write's value is the one written (stopped before
    the store, it would still be the old one)."""
    result, trace, _ = pyocd_capture("exti_imr_rmw_race", backend)
    assert result.returncode == 0, result.stderr
    rows = load_trace(trace).frame
    imr = rows[(rows["event"] == "access") & (rows["symbol"] == "EXTI_IMR") & (rows["ipsr"] > 0)]
    exti0, exti1 = 16 + 6, 16 + 7
    assert list(zip(imr["ipsr"], imr["access"], imr["value"])) == [
        (exti0, "r", 3), (exti1, "r", 3), (exti1, "w", 1), (exti0, "w", 2)
    ]  # fmt: skip


@pytest.mark.parametrize("backend", ["gdb", "rsp"])
def test_a_plan_beyond_the_comparators_pyocd_reports_is_one_line(backend, built_samples, tmp_path):
    """The profile says 6 FPB comparators, this pyOCD finds 3 and refuses the fourth breakpoint:
    one line, status 2, and the target left running without a breakpoint (the firmware ends)."""
    sample = "usb_cdc_malloc_isr"
    with pyocd_gdbserver(sample_elf(sample), tmp_path, breakpoints=3) as server:
        assert server.comparators() == (3, 4)
        result = irqmon(
            "attach", "--target", TARGET, "--backend", backend, "--gdb-remote", server.address,
            "--elf", str(sample_elf(sample)), "--probes", "newlib_heap", "--duration", "30", "-q",
            "-o", str(tmp_path / "t.csv"),
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while expected(sample)["done_marker"] not in server.qemu.serial_output() and time.monotonic() < deadline:
            time.sleep(0.1)
        serial = server.qemu.serial_output()
    assert result.returncode == 2, result.stderr
    assert "refused a hardware breakpoint" in result.stderr and "choose fewer with --probes" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert expected(sample)["done_marker"] in serial, "the target runs on, nothing left to stop it"


def test_until_counts_in_the_budget(built_samples):
    """irqmon's own planner: six breakpoints of probes fit six comparators in one set; with the
    one --until keeps, they are armed in two sets of at most five."""
    target, elf = load_target(TARGET), ElfImage(sample_elf("usb_cdc_malloc_isr"))
    plan = plan_capture(elf, target, ["newlib_heap"])
    assert len(arming_plan(plan, elf, target, unlimited=False).sets) == 1
    sets = arming_plan(plan, elf, target, unlimited=False, reserved_breakpoints=1).sets
    assert len(sets) == 2 and all(sum(site.breakpoints for site in armed) <= 5 for armed in sets)


def test_plain_gdb_session_through_pyocd_gdbserver(built_samples, tmp_path):
    """The report's reproduction: `break malloc` (gdb sends Z0, pyOCD writes a BKPT) and three
    continues in batch mode, then pyOCD's `monitor reset halt` and the firmware from reset again."""
    elf = sample_elf("usb_cdc_malloc_isr")
    reset_handler = ElfImage(elf).symbols["Reset_Handler"].address
    with pyocd_gdbserver(elf, tmp_path) as server:
        commands = [
            "set pagination off", "set confirm off", f"file {elf}", f"target remote {server.address}",
            "break malloc", "continue", "continue", "continue", "monitor reset halt",
            "maintenance flush register-cache",  # gdb does not know the monitor command moved the pc
            "printf \"after reset pc=%#x\\n\", $pc", "continue", "printf \"nbytes=%d\\n\", $r0", "detach",
        ]  # fmt: skip
        gdb = subprocess.run(
            ["gdb-multiarch", "-nx", "-batch", *(arg for c in commands for arg in ("-ex", c))],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    output = gdb.stdout + gdb.stderr
    assert gdb.returncode == 0, output
    assert "Cannot execute this command while the target is running" not in output
    assert len(re.findall(r"^Breakpoint 1, malloc", output, re.M)) == 4, output
    assert f"after reset pc={reset_handler:#x}" in output, output
    assert "nbytes=128" in output.split("after reset")[1], "the first malloc of main, from reset"

