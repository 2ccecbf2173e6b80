"""What `irqmon attach` tells its user while it runs: the recent rate, the time against
--duration, and with -v the remote-protocol traffic in a file."""

from __future__ import annotations

import pytest
from rich.console import Console
from support import irqmon, sample_elf

from irqmon.capture.loop import CaptureSummary
from irqmon.capture.status import LiveStatus


def test_live_rate_is_the_recent_rate_and_elapsed_is_against_duration():
    status = LiveStatus(Console(), enabled=False, duration=60)
    start = status.started
    for second in range(11):  # 100 events a second for ten seconds
        line = status.line(start + second, CaptureSummary(events=100 * second))
    assert " 100/s " in line and line.lstrip().startswith("10.0s / 60s")
    for second in range(11, 14):  # then nothing for three seconds (the target stopped hitting)
        line = status.line(start + second, CaptureSummary(events=1000))
    assert " 0/s " in line  # a cumulative average would still say 77/s


@pytest.mark.parametrize("backend, packet", [("gdb", "Z1,"), ("rsp", "Z1,")])
def test_verbose_logs_the_remote_protocol_traffic(built_samples, tmp_path, backend, packet):
    output = tmp_path / "t.csv"
    result = irqmon("attach", "--target", "stm32f405", "--qemu", str(sample_elf("usb_cdc_malloc_isr")), "--backend", backend,
                    "--probes", "newlib_heap", "--duration", "2", "-q", "-v", "-o", str(output), timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    traffic = (tmp_path / "t.traffic.log").read_text(errors="replace")
    assert "qSupported" in traffic and packet in traffic
