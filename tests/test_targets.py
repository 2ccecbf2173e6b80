"""Target profiles: built-in data, profile files and CMSIS-SVD device files."""

from __future__ import annotations

import pytest

from irqmon.errors import UsageError
from irqmon.targets import available_targets, load_target

SVD = """<?xml version="1.0" encoding="utf-8"?>
<device schemaVersion="1.3">
  <name>STM32G474xx</name>
  <description>STM32G474xx</description>
  <cpu><name>CM4</name><nvicPrioBits>4</nvicPrioBits></cpu>
  <peripherals>
    <peripheral><name>EXTI</name>
      <interrupt><name>EXTI0</name><value>6</value></interrupt>
      <interrupt><name>EXTI1</name><value>7</value></interrupt>
    </peripheral>
    <peripheral><name>FDCAN1</name><interrupt><name>FDCAN1_IT0</name><value>21</value></interrupt></peripheral>
  </peripherals>
</device>
"""


def test_builtin_profiles_name_exceptions_per_reference_manual():
    assert {"stm32f405", "stm32f407", "stm32f429", "stm32f746"} <= set(available_targets())
    f405, f746 = load_target("stm32f405"), load_target("stm32f746")
    assert f405.exception_name(16 + 67) == "OTG_FS" and f746.exception_name(16 + 67) == "OTG_FS"
    assert f746.exception_name(16 + 97) == "SPDIF_RX" and f405.exception_name(16 + 97) == "IRQ97"
    assert f405.exception_name(0) == "Thread" and f405.exception_name(15) == "SysTick"
    assert len(f405.irqs) == 82 and len(f746.irqs) == 98 and len(load_target("stm32f429").irqs) == 91
    assert (f405.fpb_comparators, f405.dwt_comparators, f746.fpb_comparators) == (6, 4, 8)
    assert f405.logical_priority(0x60) == 6 and f405.qemu_machine == "netduinoplus2"


def test_svd_device_file_gives_irq_names_and_priority_bits(tmp_path):
    path = tmp_path / "STM32G474xx.svd"
    path.write_text(SVD)
    profile = load_target(str(path))
    assert profile.name == "stm32g474xx" and profile.core == "cortex-m4"
    assert profile.exception_name(16 + 21) == "FDCAN1_IT0" and profile.priority_bits == 4
    assert (profile.fpb_comparators, profile.dwt_comparators) == (6, 4)


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("stm32f999", None, "unknown target"),
        ("bad.toml", "core = [", "bad.toml"),
        ("wrong.toml", "nonsense = 1\n", "nonsense: expected no such key"),
        ("bad.svd", "<device><name>", "not an SVD file"),
        ("other.svd", "<html/>", "not an SVD file"),
    ],
)
def test_bad_profiles_are_one_clear_error(tmp_path, name, text, message):
    target = name
    if text is not None:
        (tmp_path / name).write_text(text)
        target = str(tmp_path / name)
    with pytest.raises(UsageError, match=message):
        load_target(target)
