"""`irqmon attach` on real firmware under QEMU through gdb-multiarch: the rows, and every way a
capture can end."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from irqmon.backends.qemu import QemuTarget, free_port
from irqmon.cortexm.elf import ElfImage
from irqmon.schema import FIRST_IRQ
from irqmon.tracefile import load_trace
from support import ROOT, expected, irqmon, sample_elf, sample_names, start_irqmon, stderr_once_ended, wait_for_rows

OTG_FS, I2C1_EV, EXTI0, EXTI1 = FIRST_IRQ + 67, FIRST_IRQ + 31, FIRST_IRQ + 6, FIRST_IRQ + 7
LONG_SAMPLE = "printf_tasks_critical"  # runs for seconds under capture


def frame(path: Path) -> pd.DataFrame:
    return load_trace(path).frame


@pytest.mark.parametrize("sample", sample_names())
def test_every_sample_runs_to_its_end_under_capture(sample, sample_trace):
    trace = load_trace(sample_trace(sample))
    serial = sample_trace(sample).with_suffix(".usart1.log").read_text()
    assert expected(sample)["done_marker"] in serial
    assert trace.metadata["build_id"] == ElfImage(sample_elf(sample)).build_id
    assert trace.metadata["target"] == "stm32f405"
    times = trace.frame["time"]
    assert times.is_monotonic_increasing, "IRQ rows and halting rows are merged in time order"
    irq = trace.frame[trace.frame["event"].isin(["irq_enter", "irq_exit"])]
    assert len(irq) > 0, "QEMU's NVIC timeline is in the trace"
    counts = irq.groupby(["ipsr", "event"]).size().unstack(fill_value=0)
    assert ((counts["irq_enter"] - counts["irq_exit"]).abs() <= 1).all(), "every entry has its exit"


def test_malloc_in_otg_fs_isr_with_its_call_path(sample_trace):
    rows = frame(sample_trace("usb_cdc_malloc_isr"))
    malloc = rows[(rows["event"] == "call") & (rows["symbol"] == "malloc") & (rows["ipsr"] == OTG_FS)]
    assert len(malloc) >= 1
    row = malloc.iloc[0]
    assert row["exception"] == "OTG_FS"
    assert row["priority"] == 6  # IPR byte 0x60 read from the NVIC, 4 priority bits
    path = row["callpath"].split(";")
    assert path[0] == "malloc"
    assert path.index("USBD_CDC_Init") < path.index("OTG_FS_IRQHandler")
    assert row["size"] > 0 and "caller=USBD_malloc" in row["args"]
    assert row["primask"] == 0 and row["basepri"] == 0  # read from the core: nothing masked here
    # The matching return carries the pointer malloc gave back, in RAM.
    returns = rows[(rows["event"] == "return") & (rows["symbol"] == "malloc") & (rows["ipsr"] == OTG_FS)]
    assert (returns["value"] >= 0x20000000).all() and len(returns) == len(malloc)
    mutex = rows[(rows["kind"] == "mutex") & (rows["role"] == "acquire") & (rows["ipsr"] == OTG_FS)]
    assert len(mutex) >= 1 and mutex["address"].notna().all()
    thread_heap = rows[(rows["kind"] == "heap") & (rows["ipsr"] == 0)]
    assert len(thread_heap) > 0


def test_mask_columns_are_the_core_registers(sample_trace):
    rows = frame(sample_trace(LONG_SAMPLE))
    raise_basepri = rows[(rows["event"] == "mask") & (rows["symbol"] == "basepri") & (rows["value"] == 0x50)]
    assert len(raise_basepri) > 0, "vPortEnterCritical raises BASEPRI to the max-syscall priority"
    assert (raise_basepri["basepri"] == 0x50).all()
    # A probed call made inside a task-level critical section sees BASEPRI raised.
    inside = rows[(rows["event"] == "call") & (rows["basepri"] == 0x50)]
    assert len(inside) > 0
    tasks = rows.loc[rows["ipsr"] == 0, "task"].dropna().unique()
    assert len(tasks) >= 2, "the current-task pointer names each task"


def test_hal_lock_accessed_from_thread_and_isr(sample_trace):
    rows = frame(sample_trace("hal_i2c_lock_deadlock"))
    lock = rows[(rows["event"] == "access") & (rows["kind"] == "lock")]
    assert lock["symbol"].str.endswith(".Lock").all()
    assert set(lock["ipsr"]) >= {0, I2C1_EV}
    isr_tests = lock[(lock["ipsr"] == I2C1_EV) & (lock["role"] == "test")]
    assert (isr_tests["value"] == 1).any(), "the ISR reads HAL_LOCKED while the task holds it"
    thread_acquire = lock[(lock["ipsr"] == 0) & (lock["role"] == "acquire")]
    assert (thread_acquire["value"] == 1).all() and len(thread_acquire) > 0


def test_exti_imr_lost_update_is_in_the_trace(sample_trace):
    rows = frame(sample_trace("exti_imr_rmw_race"))
    imr = rows[(rows["event"] == "access") & (rows["symbol"] == "EXTI_IMR") & rows["ipsr"].isin([EXTI0, EXTI1])]
    sequence = list(zip(imr["ipsr"], imr["access"], imr["value"]))
    assert sequence == [(EXTI0, "r", 3), (EXTI1, "r", 3), (EXTI1, "w", 1), (EXTI0, "w", 2)]


def test_budget_is_rehearsed_on_qemu_unless_unlimited(built_samples, tmp_path):
    """The halting backends on QEMU rehearse the board's comparators (the default, recording
    inside QEMU, needs none): a plan that does not fit is armed in turns, not refused."""
    rotated = irqmon("attach", "--target", "stm32f405", "--qemu", str(sample_elf("usb_cdc_malloc_isr")),
                     "--backend", "gdb", "--until", "sample_done", "-o", str(tmp_path / "t.csv"))  # fmt: skip
    assert rotated.returncode == 0, rotated.stderr
    assert "(5 of 5 FPB" in rotated.stderr and "in 2 sets rotated every 0.25 s" in rotated.stderr  # --until keeps one
    unlimited = irqmon("attach", "--target", "stm32f405", "--qemu", str(sample_elf("usb_cdc_malloc_isr")), "--unlimited",
                       "--backend", "gdb", "--until", "sample_done", "-o", str(tmp_path / "u.csv"))  # fmt: skip
    assert unlimited.returncode == 0 and "rotated" not in unlimited.stderr, unlimited.stderr
    coverage = frame(tmp_path / "u.csv").query("event == 'coverage'")
    assert set(coverage["value"]) == {0, 1} and len(coverage) == 2 * coverage["symbol"].nunique()  # armed throughout
    fits = irqmon("attach", "--target", "stm32f405", "--qemu", str(sample_elf("hal_i2c_lock_deadlock")),
                  "--probes", "stm32_hal_lock", "--until", "sample_done", "--backend", "gdb", "-q", "-o", str(tmp_path / "lock.csv"))  # fmt: skip
    assert fits.returncode == 0, fits.stderr
    assert (frame(tmp_path / "lock.csv")["kind"] == "lock").any()


def test_max_events_and_duration_end_cleanly(built_samples, tmp_path):
    limited = irqmon("attach", "--target", "stm32f405", "--qemu", str(sample_elf(LONG_SAMPLE)), "--unlimited",
                     "--max-events", "40", "-o", str(tmp_path / "m.csv"))  # fmt: skip
    assert limited.returncode == 0, limited.stderr
    assert "--max-events" in limited.stderr
    assert len(frame(tmp_path / "m.csv")) >= 40
    timed = irqmon("attach", "--target", "stm32f405", "--qemu", str(sample_elf(LONG_SAMPLE)), "--unlimited",
                   "--duration", "1", "-o", str(tmp_path / "d.csv"))  # fmt: skip
    assert timed.returncode == 0, timed.stderr
    assert "--duration" in timed.stderr and len(frame(tmp_path / "d.csv")) > 0


def _attach_to(qemu: QemuTarget, output: Path) -> subprocess.Popen:
    return start_irqmon(
        "attach", "--target", "stm32f405", "--gdb-remote", qemu.gdb_address,
        "--elf", str(sample_elf(LONG_SAMPLE)), "--probes", "critical_sections", "-q", "-o", str(output),
    )  # fmt: skip


def test_ctrl_c_keeps_the_trace_and_leaves_the_target_running(built_samples, tmp_path):
    output = tmp_path / "c.csv"
    with QemuTarget(sample_elf(LONG_SAMPLE), workdir=tmp_path / "q") as qemu:
        process = _attach_to(qemu, output)
        wait_for_rows(output, 20)
        process.send_signal(signal.SIGINT)
        stderr = stderr_once_ended(process)
        assert process.returncode == 0, stderr
        assert "Ctrl-C" in stderr and "Traceback" not in stderr
        captured = len(frame(output))
        assert captured >= 20
        # Detached with nothing left behind: the firmware runs on to its end by itself.
        deadline = time.monotonic() + 30
        while expected(LONG_SAMPLE)["done_marker"] not in qemu.serial_output():
            assert time.monotonic() < deadline, "the target was left halted"
            time.sleep(0.1)
        assert qemu.alive()


def test_qemu_dying_mid_capture_keeps_every_event(built_samples, tmp_path):
    output = tmp_path / "dead.csv"
    with QemuTarget(sample_elf(LONG_SAMPLE), workdir=tmp_path / "q") as qemu:
        process = _attach_to(qemu, output)
        wait_for_rows(output, 20)
        qemu.process.kill()
        stderr = stderr_once_ended(process)
    assert process.returncode == 1
    lines = [line for line in stderr.splitlines() if line.startswith("irqmon:")]
    assert len(lines) == 1 and "cut off" in lines[0] and "Traceback" not in stderr
    assert len(frame(output)) >= 20


def test_gdb_dying_mid_capture_keeps_every_event(built_samples, tmp_path):
    output = tmp_path / "nogdb.csv"
    with QemuTarget(sample_elf(LONG_SAMPLE), workdir=tmp_path / "q") as qemu:
        process = _attach_to(qemu, output)
        wait_for_rows(output, 20)
        gdb = subprocess.run(["pgrep", "-P", str(process.pid), "-f", "gdb-multiarch"], capture_output=True, text=True)
        subprocess.run(["kill", "-9", *gdb.stdout.split()], check=True)
        stderr = stderr_once_ended(process)
    assert process.returncode == 1, stderr
    assert "cut off" in stderr and "Traceback" not in stderr
    assert len(frame(output)) >= 20


def _bad_input_cases(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    elf = sample_elf("usb_cdc_malloc_isr")
    stripped = tmp_path / "stripped.elf"
    subprocess.run(["arm-none-eabi-strip", "-o", str(stripped), str(elf)], check=True)
    bad_pack = tmp_path / "broken.toml"
    bad_pack.write_text('name = "broken"\n\n[[function]]\nsymbols = ["malloc"]\nkind = "heap"\nrole = "nonsense"\n')
    syntax_pack = tmp_path / "syntax.toml"
    syntax_pack.write_text('name = "syntax"\n[[function]\n')
    qemu = ["--target", "stm32f405", "--qemu"]
    return {
        "missing elf": ([*qemu, str(tmp_path / "nope.elf")], "cannot open"),
        "stripped elf": ([*qemu, str(stripped)], "stripped"),
        "not arm": ([*qemu, shutil.which("python3") or sys.executable], "not"),
        "unknown target": (["--target", "stm32f999", "--qemu", str(elf)], "unknown target"),
        "unreachable": (["--target", "stm32f746", "--gdb-remote", f"127.0.0.1:{free_port()}", "--elf", str(elf),
                         "--probes", "newlib_heap"], "cannot reach"),
        "bad pack role": ([*qemu, str(elf), "--probes", str(bad_pack)], "broken.toml:6"),
        "bad pack syntax": ([*qemu, str(elf), "--probes", str(syntax_pack)], "line 2"),
        "unknown pack": ([*qemu, str(elf), "--probes", "no_such_pack"], "unknown probe pack"),
        "bad watch": ([*qemu, str(elf), "--unlimited", "--watch", "no_such_symbol"], "no symbol"),
        "swo on qemu": ([*qemu, str(elf), "--backend", "pyocd", "--swo-clock", "2M", "--system-clock", "168M"], "for a board"),
        "another backend's option": ([*qemu, str(elf), "--swo-clock", "2M"], "--swo-clock is an option of --backend pyocd"),
        "probe uid on qemu": ([*qemu, str(elf), "--backend", "pyocd", "--probe-uid", "x"], "--probe-uid picks a hardware probe"),
        "bad swo clock": (["--target", "stm32f746", "--elf", str(elf), "--swo-clock", "2X", "--system-clock", "1M"], "not a frequency"),
        "gdb without a server": (["--target", "stm32f746", "--elf", str(elf), "--backend", "rsp"], "needs --qemu ELF or --gdb-remote"),
        "pyocd with a server": (["--target", "stm32f746", "--gdb-remote", "127.0.0.1:1", "--elf", str(elf), "--backend", "pyocd"],
                                "--backend pyocd cannot use --gdb-remote"),
        "bad svd": (["--svd", str(bad_pack), "--qemu", str(elf)], "SVD"),
        "icount out of range": ([*qemu, str(elf), "--icount", "11"], "a shift from 0 to 10"),
        "icount on a board": (["--target", "stm32f746", "--gdb-remote", "127.0.0.1:1", "--elf", str(elf), "--icount", "2"],
                              "it needs --qemu"),
    }  # fmt: skip


@pytest.mark.parametrize(
    "case",
    ["missing elf", "stripped elf", "not arm", "unknown target", "unreachable", "bad pack role",
     "bad pack syntax", "unknown pack", "bad watch", "swo on qemu", "another backend's option", "probe uid on qemu",
     "bad swo clock", "gdb without a server", "pyocd with a server", "bad svd", "icount out of range", "icount on a board"],
)  # fmt: skip
def test_bad_input_is_one_clear_line_and_status_2(case, built_samples, tmp_path):
    args, message = _bad_input_cases(tmp_path)[case]
    result = irqmon("attach", *args, "-o", str(tmp_path / "t.csv"))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("irqmon: ") and message in lines[0], result.stderr


def test_targets_and_probes_list_what_exists(built_samples):
    targets = irqmon("targets")
    assert targets.returncode == 0
    for name in ("stm32f405", "stm32f746"):
        assert name in targets.stdout
    probes = irqmon("probes", "--elf", str(sample_elf("hal_i2c_lock_deadlock")), "--target", "stm32f405")
    assert probes.returncode == 0
    assert "stm32_hal_lock" in probes.stdout and "hi2c1.Lock" in probes.stdout


def test_repo_has_no_sample_names_in_probe_packs():
    """Probe packs are generic: no sample's own symbol may appear in them."""
    text = "\n".join(p.read_text() for p in (ROOT / "probes").glob("*.toml"))
    for name in ("hi2c1", "USBD_", "OTG_FS", "serial_puts", "EXTI0_IRQHandler"):
        assert name not in text


def test_svd_file_names_the_exceptions_of_any_cortex_m(built_samples, tmp_path):
    svd = tmp_path / "device.svd"
    svd.write_text(
        "<device><name>MYCHIP</name><cpu><name>CM4</name><nvicPrioBits>4</nvicPrioBits></cpu><peripherals>"
        "<peripheral><name>EXTI</name><interrupt><name>LINE0_EDGE</name><value>6</value></interrupt>"
        "<interrupt><name>LINE1_EDGE</name><value>7</value></interrupt></peripheral></peripherals></device>"
    )
    output = tmp_path / "svd.csv"
    with QemuTarget(sample_elf("exti_imr_rmw_race"), workdir=tmp_path / "q") as qemu:
        result = irqmon("attach", "--svd", str(svd), "--gdb-remote", qemu.gdb_address,
                        "--elf", str(sample_elf("exti_imr_rmw_race")), "--watch", "0x40013C00:4",
                        "--until", "sample_done", "-q", "-o", str(output))  # fmt: skip
    assert result.returncode == 0, result.stderr
    trace = load_trace(output)
    assert trace.metadata["target"] == "mychip"
    accesses = trace.frame[trace.frame["event"] == "access"]
    assert {"LINE0_EDGE", "LINE1_EDGE"} <= set(accesses["exception"])


def test_qemu_records_inside_qemu_by_default_and_falls_back_to_gdb(built_samples, tmp_path, monkeypatch):
    """With --qemu the default backend is the recorder plugin (no comparator budget, no halts);
    where the plugin cannot run (no C compiler to build it), one line says so and gdb captures."""
    elf = str(sample_elf("usb_cdc_malloc_isr"))
    recorded = irqmon("attach", "--target", "stm32f405", "--qemu", elf, "--until", "sample_done", "-o", str(tmp_path / "p.csv"))
    assert recorded.returncode == 0, recorded.stderr
    assert "0 halts" in recorded.stderr
    assert load_trace(tmp_path / "p.csv").metadata["backend"] == "qemu-plugin"

    tools = tmp_path / "no-compiler"
    tools.mkdir()
    for tool in ("qemu-system-arm", "gdb-multiarch"):
        (tools / tool).symlink_to(shutil.which(tool))
    monkeypatch.setenv("PATH", str(tools))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("CC", "no-such-compiler")
    fallback = irqmon("attach", "--target", "stm32f405", "--qemu", elf, "--until", "sample_done", "--unlimited",
                      "-o", str(tmp_path / "g.csv"))  # fmt: skip
    assert fallback.returncode == 0, fallback.stderr
    assert "the qemu-plugin backend cannot run here (the QEMU recorder plugin is not built and there is no C compiler" in fallback.stderr
    assert load_trace(tmp_path / "g.csv").metadata["backend"] == "gdbmi"
