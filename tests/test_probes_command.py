"""`irqmon probes --elf`: what the default plan needs in all, and a pack set that fits the chip."""

from __future__ import annotations

import re

from support import irqmon, sample_elf


def test_probes_shows_the_total_and_a_set_that_fits(built_samples, tmp_path):
    shown = irqmon("probes", "--elf", str(sample_elf("clean")), "--target", "stm32f405")
    assert shown.returncode == 0, shown.stderr
    total = re.search(r"all that find something\D+(\d+)\D+(\d+)", shown.stdout)
    assert total and (int(total[1]), int(total[2])) == (33, 5)
    chosen = re.search(r"--probes (\S+)", shown.stdout)
    assert chosen and chosen[1].split(",")[0] == "newlib_heap"  # heap calls first
    # The set it names is accepted under the chip's budget, without --unlimited.
    capture = irqmon("attach", "--target", "stm32f405", "--qemu", str(sample_elf("clean")), "--probes", chosen[1],
                     "--duration", "0.5", "-q", "-o", str(tmp_path / "t.csv"), timeout=60)  # fmt: skip
    assert capture.returncode == 0, capture.stderr
