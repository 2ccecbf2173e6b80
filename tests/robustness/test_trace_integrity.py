"""Every row written stays readable, every value a renderer sees is sane, and what a trace
holds reaches the terminal as text, never as escape sequences or markup."""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from support import irqmon, sample_elf

from irqmon.cli import main
from irqmon.tracefile import PartialRowWarning, load_trace

RECORDED = Path(__file__).parent.parent / "analysis" / "traces" / "usb_cdc_malloc_isr.csv"
TRACE_LIMIT = 30_000  # bytes: the file-size limit that cuts the capture below


def limited_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails (EFBIG)
    resource.setrlimit(resource.RLIMIT_FSIZE, (TRACE_LIMIT, TRACE_LIMIT))


def test_a_write_that_fails_mid_capture_keeps_every_whole_row(built_samples, tmp_path):
    """A disk that fills (here: the file-size limit) ends the capture with one line; the trace
    is every row before the failed write, and no half row."""
    output = tmp_path / "trace.csv"
    result = subprocess.run(
        [sys.executable, "-m", "irqmon", "attach", "--target", "stm32f405", "--qemu", str(sample_elf("printf_tasks_critical")),
         "--probes", "critical_sections", "--duration", "60", "-q", "-o", str(output)],
        capture_output=True, text=True, timeout=120, preexec_fn=limited_file_size,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("irqmon:")]
    assert len(lines) == 1 and "cannot write the trace" in lines[0] and "Traceback" not in result.stderr, result.stderr
    with warnings.catch_warnings():
        warnings.simplefilter("error", PartialRowWarning)
        trace = load_trace(output)
    assert trace.rows > 50 and output.read_bytes().endswith(b"\n")
    assert f"{trace.rows} events kept" in lines[0]


def edited(tmp_path: Path, old: str, new: str, count: int = 1) -> Path:
    text = RECORDED.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "edited.csv"
    path.write_text(text.replace(old, new, count), encoding="utf-8")
    return path


def analyze_status(capsys: pytest.CaptureFixture[str], path: Path, *options: str) -> tuple[int, str, str]:
    status = main(["analyze", str(path), "--no-elf", *options])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("\n1,0.168334,", "\n1,nan,", "column time: nan is not a time"),
        ("\n1,0.168334,", "\n1,inf,", "column time: inf is not a time"),
        ("\n1,0.168334,", "\n1,1e308,", "column time: 1e+308 is not a time"),
        (",0,Thread,,0,0,0,0,", ",0,Thread,9223372036854775807,0,0,0,0,", "column priority: 9223372036854775807 is outside 0..255"),
        ("# schema: 1", "# schema: ²", "metadata schema '²' is not a version number"),
        ("# priority_bits: 4", "# priority_bits: ³", "metadata priority_bits '³'"),
    ],
)
def test_values_no_renderer_can_draw_are_refused_at_the_boundary(tmp_path, capsys, old, new, message):
    path = edited(tmp_path, old, new)
    for command in (["analyze", str(path)], ["report", str(path), "-o", str(tmp_path / "r")], ["export", str(path), "-o", str(tmp_path / "p.json")]):
        status = main(command)
        err = capsys.readouterr().err
        assert status == 2 and err.count("\n") == 1 and message in err, err


def test_a_byte_order_mark_is_taken_as_utf8(tmp_path, capsys):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + RECORDED.read_bytes())
    assert load_trace(path).frame.equals(load_trace(RECORDED).frame)


def test_a_recorded_elf_that_is_no_file_is_ignored(tmp_path, capsys):
    path = edited(tmp_path, "# elf: /work/main/firmware_samples/build/usb_cdc_malloc_isr.elf", "# elf: /proc/self/mem")
    status = main(["analyze", str(path)])
    err = capsys.readouterr().err
    assert status == 1 and err == ""


def test_a_source_line_with_unicode_digits_gets_no_line_in_sarif(tmp_path, capsys):
    path = edited(tmp_path, "usb_cdc_malloc_isr/main.c:59", "usb_cdc_malloc_isr/main.c:²", count=99)
    assert main(["analyze", str(path), "--no-elf", "--format", "sarif", "-o", str(tmp_path / "s.sarif")]) == 1
    assert capsys.readouterr().err == ""


def test_escape_sequences_and_markup_reach_the_terminal_as_text(tmp_path, capsys):
    hostile = "\x1b]0;pwned\x07\x1b[2J[link=https://evil.example]x[/link][/]"
    path = edited(tmp_path, "firmware_samples/usb_cdc_malloc_isr/usbd_conf.c:8", f"{hostile}.c:8", count=99)
    (tmp_path / "a[").mkdir()
    weird = tmp_path / "a[" / "]odd[bold].csv"  # the path holds `[/]` and `[bold]`
    weird.write_bytes(path.read_bytes())
    status, out, err = analyze_status(capsys, weird)
    assert status == 1 and err == "", err
    assert "\x1b" not in out and "\x07" not in out
    squeezed = "".join(line.strip(" │") for line in out.splitlines())  # the table wraps long cells
    assert "\\x1b]0;pwned\\x07\\x1b[2J[link=https://evil.example]x[/link][/].c:8" in squeezed
    assert "a[/]odd[bold].csv" in out


def test_an_elf_built_for_another_chip_gets_a_warning(built_samples, tmp_path):
    f746_elf = sample_elf("clean").parent / "nucleo_f746zg" / "clean.elf"
    result = irqmon("attach", "--target", "stm32f405", "--qemu", str(f746_elf), "--probes", "newlib_heap",
                    "--duration", "0.5", "-q", "-o", str(tmp_path / "t.csv"), timeout=60)  # fmt: skip
    warning = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warning) == 1 and "98 interrupt vectors but stm32f405 has 82" in warning[0], result.stderr
    quiet = irqmon("attach", "--target", "stm32f405", "--qemu", str(sample_elf("clean")), "--probes", "newlib_heap",
                   "--duration", "0.5", "-q", "-o", str(tmp_path / "u.csv"), timeout=60)  # fmt: skip
    assert "warning" not in quiet.stderr


def test_a_truncated_elf_is_one_line(built_samples, tmp_path):
    cut = tmp_path / "cut.elf"
    cut.write_bytes(sample_elf("clean").read_bytes()[:30_000])
    result = irqmon("attach", "--target", "stm32f405", "--qemu", str(cut), "-o", str(tmp_path / "t.csv"), timeout=30)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "not a whole one" in result.stderr, result.stderr
