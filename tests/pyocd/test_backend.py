"""PyOcdBackend end to end: every sample captured through pyOCD and the QEMU bridge, compared
row by row and finding by finding with the GDB-MI backend's capture of the same sample; the
comparator budget read from the target; and the ways a pyOCD capture can fail."""

from __future__ import annotations

import difflib
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bridge_support import capture_with_pyocd, create_pyocd
from irqmon.backends import pyocd as pyocd_backend
from irqmon.backends.base import StopReason, WatchAccess
from irqmon.backends.qemu import QemuTarget
from irqmon.cortexm.elf import ElfImage
from irqmon.errors import CaptureError, UsageError
from irqmon.rsp import RspClient
from irqmon.schema import COLUMNS
from irqmon.targets import load_target
from irqmon.tracefile import load_trace
from support import capture_reproducing, expected, irqmon, sample_elf, sample_names

# Columns that depend on the host's timing rather than on the firmware: left out of comparisons.
TIMING_COLUMNS = ["seq", "time", "cycles", "halted", "halts"]
# Samples whose halting events come in the same order on every run (no timer races with halts).
COMPARED = [c for c in COLUMNS if c not in TIMING_COLUMNS]
DETERMINISTIC = ["clean", "exti_imr_rmw_race", "uart_queue_primask", "usb_cdc_malloc_isr"]
TIME_JUDGED_RULES = {"interrupt-storm"}


def _without(found: dict[str, set[str]], rules: set[str]) -> dict[str, set[str]]:
    return {rule: fingerprints for rule, fingerprints in found.items() if rule not in rules}


@pytest.fixture(scope="session")
def pyocd_trace(built_samples, tmp_path_factory):
    """`irqmon attach --backend pyocd --qemu` over a whole run of a sample, once per session."""
    traces: dict[str, Path] = {}

    def get(sample: str) -> Path:
        if sample not in traces:
            output = tmp_path_factory.mktemp(f"pyocd-{sample}") / "trace.csv"
            result = capture_reproducing(sample, output, "--backend", "pyocd")
            assert result.returncode == 0, result.stderr
            assert expected(sample)["done_marker"] in output.with_suffix(".usart1.log").read_text()
            traces[sample] = output
        return traces[sample]

    return get


def halting_rows(path: Path) -> list[tuple]:
    frame = load_trace(path).frame
    rows = frame[~frame["event"].isin(["irq_enter", "irq_exit", "coverage"])].drop(columns=TIMING_COLUMNS)
    return [tuple(row) for row in rows.astype("string").fillna("").itertuples(index=False)]


def findings(path: Path) -> dict[str, set[str]]:
    """rule -> fingerprints of `irqmon analyze`'s findings."""
    result = subprocess.run(
        [sys.executable, "-m", "irqmon", "analyze", str(path), "--format", "json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode in (0, 1) and result.stdout.startswith("{"), result.stderr
    found: dict[str, set[str]] = {}
    for finding in json.loads(result.stdout)["findings"]:
        found.setdefault(finding["rule"], set()).add(finding["fingerprint"])
    return found


@pytest.mark.parametrize("sample", DETERMINISTIC)
def test_pyocd_rows_are_the_gdbmi_rows(sample, pyocd_trace, sample_trace):
    """Same events, registers, priorities, call paths and source lines as the GDB-MI backend.

    The one allowed difference: a write access right before a probed instruction. gdb reports
    the watchpoint and the breakpoint at the next instruction as one stop, which the capture
    records as the breakpoint only; pyOCD sees the DWT halt and then the FPB halt."""
    ours, theirs = halting_rows(pyocd_trace(sample)), halting_rows(sample_trace(sample))
    matcher = difflib.SequenceMatcher(a=theirs, b=ours, autojunk=False)
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        if tag == "equal":
            continue
        assert tag == "insert", f"{tag}: gdbmi {theirs[a0:a1]} / pyocd {ours[b0:b1]}"
        for row in ours[b0:b1]:
            assert row[COMPARED.index("event")] == "access" and row[COMPARED.index("access")] == "w", row
            following = ours[b1] if b1 < len(ours) else None
            assert following is not None and following[COMPARED.index("event")] in ("mask", "call", "return"), row
    assert len(ours) >= len(theirs) > 0


@pytest.mark.parametrize("sample", sample_names())
def test_pyocd_findings_are_the_gdbmi_findings(sample, pyocd_trace, sample_trace):
    """`irqmon analyze` gives the same findings (by fingerprint) for both backends' traces: all of
    them where the sample runs the same every time; where timers race with the halts, each of
    the sample's rules is found by both or by neither, with a finding in common."""
    ours, theirs = findings(pyocd_trace(sample)), findings(sample_trace(sample))
    if sample in DETERMINISTIC:
        # A storm is judged on the time spent in handlers, and each backend halts for its own
        # time: the same rows can cross the threshold under one backend and not the other.
        assert _without(ours, TIME_JUDGED_RULES) == _without(theirs, TIME_JUDGED_RULES)
        return
    for rule in expected(sample)["rules"]:
        assert bool(ours.get(rule)) == bool(theirs.get(rule)), (rule, ours, theirs)
        if rule in ours:
            assert ours[rule] & theirs[rule], (rule, ours[rule], theirs[rule])


def test_pyocd_trace_records_the_backend(pyocd_trace):
    trace = load_trace(pyocd_trace("exti_imr_rmw_race"))
    assert trace.metadata["backend"] == "pyocd"


# --- the comparator budget ---------------------------------------------------------------------


def test_budget_is_read_from_the_target_and_enforced(tim2_elf, tim2_symbols):
    """Through the bridge, pyOCD reads 6 FPB and 4 DWT comparators (a Cortex-M4's) from FP_CTRL and
    DWT_CTRL: six breakpoints and four watchpoints work, a seventh or fifth is refused."""
    target = load_target("stm32f405")
    functions = ["tim2_record", "TIM2_IRQHandler", "main", "Default_Handler", "sample_done", "Reset_Handler"]
    with QemuTarget(tim2_elf) as qemu:
        backend = create_pyocd(target, tim2_elf, qemu)
        backend.connect()
        try:
            assert (backend.comparators.breakpoints, backend.comparators.watchpoints) == (6, 4)
            points = [backend.add_breakpoint(tim2_symbols[name]) for name in functions]
            with pytest.raises(UsageError, match="6 FPB comparators"):
                backend.add_breakpoint(tim2_symbols["main"] + 4)
            backend.resume()  # pyOCD programs the FPB when the core runs
            assert backend.wait_stop(5.0) is not None
            fp_comps = [backend.target.read32(0xE0002008 + 4 * n) for n in range(6)]
            assert all(comp & 1 for comp in fp_comps), "all six FP_COMPn are enabled"
            assert sorted(comp & 0x1FFFFFFC for comp in fp_comps) == sorted(tim2_symbols[f] & ~3 for f in functions)
            for point in points[1:]:
                backend.remove_point(point)
            watched = [tim2_symbols["tim2_ticks"], tim2_symbols["tim2_ipsr"], tim2_symbols["main_loops"], 0x20001000]
            for address in watched:
                backend.add_watchpoint(address, 4, WatchAccess.WRITE)
            with pytest.raises(UsageError, match="4 DWT comparators"):
                backend.add_watchpoint(0x20001004, 4, WatchAccess.WRITE)
            functions = [backend.target.read32(0xE0001028 + 16 * n) & 0xF for n in range(4)]
            assert functions == [6, 6, 6, 6], "all four DWT FUNCTIONn watch writes"
        finally:
            backend.disconnect(resume=True)


def test_capture_within_the_budget_runs(built_samples, tmp_path):
    """Without --unlimited the bridge presents the profile's 6/4 comparators and a plan that fits runs."""
    summary, serial = capture_with_pyocd(
        sample_elf("exti_imr_rmw_race"), tmp_path / "t.csv", unlimited=False, packs=["stm32_shared_registers"]
    )
    assert not summary.error and summary.events > 0
    assert expected("exti_imr_rmw_race")["done_marker"] in serial


# --- stops, and letting go --------------------------------------------------------------------


def test_breakpoint_and_watchpoint_stops_name_their_point(tim2_elf, tim2_symbols):
    target = load_target("stm32f405")
    with QemuTarget(tim2_elf) as qemu:
        backend = create_pyocd(target, tim2_elf, qemu)
        backend.connect()
        main = backend.add_breakpoint(tim2_symbols["main"])
        backend.resume()
        stop = backend.wait_stop(5.0)
        assert stop is not None and (stop.reason, stop.point, stop.pc) == (
            StopReason.BREAKPOINT,
            main,
            tim2_symbols["main"],
        )
        backend.remove_point(main)
        ticks = backend.add_watchpoint(tim2_symbols["tim2_ticks"], 4, WatchAccess.ACCESS)
        seen = []
        for _ in range(2):  # the read, then the write, of tim2_ticks = tim2_ticks + 1
            backend.resume()
            stop = backend.wait_stop(5.0)
            assert stop is not None and stop.reason is StopReason.WATCHPOINT and stop.point == ticks
            assert stop.data_address == tim2_symbols["tim2_ticks"]
            regs = backend.read_registers(("xpsr", "basepri", "primask", "faultmask", "control", "pc"))
            assert regs["xpsr"] & 0x1FF == 16 + 28
            seen.append(int.from_bytes(backend.read_memory(tim2_symbols["tim2_ticks"], 4), "little"))
        assert seen == [0, 1]
        frames = [f.function for f in backend.backtrace(8)]
        assert frames == ["tim2_record", "TIM2_IRQHandler", "<exception>", "main"]
        assert backend.read_cycle_counter() is None  # QEMU has no CYCCNT: the bridge says NOCYCCNT
        backend.disconnect(resume=True)


def test_disconnect_leaves_the_target_running_with_no_point_left(tim2_elf, tim2_symbols):
    target = load_target("stm32f405")
    with QemuTarget(tim2_elf) as qemu:
        backend = create_pyocd(target, tim2_elf, qemu)
        backend.connect()
        backend.add_breakpoint(tim2_symbols["tim2_record"])
        backend.add_watchpoint(tim2_symbols["tim2_ticks"], 4, WatchAccess.WRITE)
        backend.resume()
        assert backend.wait_stop(5.0) is not None
        backend.resume()
        backend.disconnect(resume=True)
        backend.disconnect(resume=True)  # a second call is harmless
        client = RspClient("127.0.0.1", qemu.port)
        client.handshake()
        before = int.from_bytes(client.read_memory(tim2_symbols["tim2_ticks"], 4), "little")
        client.cont()
        assert client.wait_stop(0.5) is None, "a breakpoint or watchpoint was left behind"
        client.stop()
        assert int.from_bytes(client.read_memory(tim2_symbols["tim2_ticks"], 4), "little") > before
        client.close()


def test_probe_lost_mid_capture_keeps_the_trace(built_samples, tmp_path):
    """The probe's link dies while the capture runs: the capture ends with an error, without
    hanging, and the rows captured so far are in the trace."""

    def unplug_later(backend: pyocd_backend.PyOcdBackend) -> None:
        link = backend.session.probe.client._sock
        threading.Timer(1.5, link.shutdown, args=(socket.SHUT_RDWR,)).start()

    output = tmp_path / "cut.csv"
    started = time.monotonic()
    summary, _ = capture_with_pyocd(sample_elf("printf_tasks_critical"), output, on_connect=unplug_later)
    assert time.monotonic() - started < 30
    assert "lost" in summary.error  # the probe link, or the stub behind it, whichever notices first
    trace = load_trace(output)
    assert len(trace.frame.query("event != 'coverage'")) == summary.events > 0  # coverage rows are no events
    assert (trace.frame["event"] == "call").any(), "halting rows from before the loss are kept"


def test_a_target_error_with_the_probe_alive_still_cleans_up(tim2_elf, tim2_symbols):
    """A bus fault on a debugger read (nothing at 0x60000000 on this board) ends the capture,
    but the probe still answers: the comparators are removed and the core runs on."""
    target = load_target("stm32f405")
    with QemuTarget(tim2_elf) as qemu:
        backend = create_pyocd(target, tim2_elf, qemu)
        backend.connect()
        backend.add_breakpoint(tim2_symbols["tim2_record"])
        backend.resume()
        assert backend.wait_stop(5.0) is not None
        with pytest.raises(CaptureError, match="the target did not answer"):
            backend.read_memory(0x60000000, 4)
        assert not backend.gone
        backend.disconnect(resume=True)
        client = RspClient("127.0.0.1", qemu.port)
        client.handshake()
        client.cont()
        assert client.wait_stop(0.5) is None, "the breakpoint was left behind or the core stayed halted"
        client.close()


def test_writes_qemu_cannot_do_fail_instead_of_pretending(session_backend):
    """QEMU's gdbstub acknowledges writes to basepri/primask/msp/psp without doing them: the
    bridge reads each write back and a write that did not happen fails in pyOCD."""
    from pyocd.core.exceptions import CoreRegisterAccessError

    core = session_backend.target
    core.write_core_register("r0", 0x1234)
    assert core.read_core_register("r0") == 0x1234
    with pytest.raises(CoreRegisterAccessError):
        core.write_core_register("basepri", 0x50)
    assert core.read_core_register("basepri") == 0


@pytest.fixture
def session_backend(tim2_elf):
    with QemuTarget(tim2_elf) as qemu:
        backend = create_pyocd(load_target("stm32f405"), tim2_elf, qemu)
        backend.connect()
        yield backend
        backend.disconnect(resume=True)


# --- bad input and missing pieces -------------------------------------------------------------


def test_attach_without_a_probe_says_so_in_one_line(built_samples):
    result = irqmon("attach", "--target", "stm32f746", "--elf", str(sample_elf("exti_imr_rmw_race")), "-q")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "irqmon: no debug probe connected: plug in an ST-Link, CMSIS-DAP or J-Link probe "
        "(pyocd list shows what pyOCD sees), or capture on QEMU with --qemu"
    ]
    assert "Traceback" not in result.stdout + result.stderr


def test_attach_with_a_bad_pyocd_option_is_a_usage_error(built_samples):
    result = irqmon("attach", "--target", "stm32f405", "--backend", "pyocd", "--qemu",
                    str(sample_elf("exti_imr_rmw_race")), "-O", "frequency=lots", "-q")  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith("irqmon: -O frequency=lots: not a valid value for frequency")
    assert len(result.stderr.strip().splitlines()) == 1


def test_no_probe_connected_says_so(tim2_elf):
    backend = create_pyocd(load_target("stm32f746"), tim2_elf)
    with pytest.raises(UsageError, match="no debug probe connected"):
        backend.connect()
    backend = create_pyocd(load_target("stm32f746"), tim2_elf, options=pyocd_backend.PyOcdOptions(probe_uid="0669FF55"))
    with pytest.raises(UsageError, match="no debug probe with unique id 0669FF55 connected"):
        backend.connect()


@pytest.mark.parametrize(
    ("frequency", "options", "message"),
    [
        ("fast", [], "not a frequency"),
        ("-4M", [], "must be positive"),
        (None, ["no_such_option=1"], "pyOCD has no option 'no_such_option'"),
        (None, ["frequency=lots"], "not a valid value for frequency"),
    ],
)
def test_bad_pyocd_options_are_usage_errors(frequency, options, message):
    with pytest.raises(UsageError, match=message):
        pyocd_backend.parse_options(None, frequency, options)


def test_pyocd_options_as_pyocd_spells_them():
    parsed = pyocd_backend.parse_options("0669FF", "4M", ["connect_mode=under-reset", "no-resume_on_disconnect"])
    assert parsed.frequency == 4_000_000 and parsed.probe_uid == "0669FF"
    assert parsed.session_options == {"connect_mode": "under-reset", "resume_on_disconnect": False}


def test_lost_probe_calls_raise_capture_errors(tim2_elf):
    target = load_target("stm32f405")
    with QemuTarget(tim2_elf) as qemu:
        backend = create_pyocd(target, tim2_elf, qemu)
        backend.connect()
        qemu.stop()
        with pytest.raises(CaptureError, match="lost the probe"):
            backend.read_registers(("pc",))
        assert backend.wait_stop(0.1).reason is StopReason.EXITED
        backend.disconnect(resume=True)
