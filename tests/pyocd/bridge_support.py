"""Helpers for the pyOCD backend tests: building test firmware, symbols, a pyOCD session on QEMU."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from elftools.elf.elffile import ELFFile
from pyocd.core.helpers import ConnectHelper
from pyocd.core.session import Session

from irqmon.backends.qemu import QemuTarget

if TYPE_CHECKING:
    from collections.abc import Callable

    from irqmon.backends.pyocd import PyOcdBackend, PyOcdOptions
    from irqmon.capture.loop import CaptureSummary
    from irqmon.targets import TargetProfile

HERE = Path(__file__).resolve().parent
COMMON = HERE.parents[1] / "firmware_samples" / "common"
CPU_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"]


def build_firmware(source: Path, out_dir: Path) -> Path:
    """Compile one test firmware source with the samples' startup code for netduinoplus2."""
    elf = out_dir / f"{source.stem}.elf"
    command = [
        "arm-none-eabi-gcc", *CPU_FLAGS, "-DSTM32F405", "-g3", "-Og", "-std=gnu11",
        "-ffunction-sections", "-fdata-sections", "-fno-common", f"-I{COMMON}",
        str(source), *map(str, sorted(COMMON.glob("*.c"))),
        "-specs=nano.specs", "-Wl,--gc-sections", f"-L{COMMON / 'boards'}",
        f"-T{COMMON / 'boards' / 'netduinoplus2.ld'}", "-o", str(elf),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return elf


def symbols(elf: Path) -> dict[str, int]:
    """Function and object addresses of `elf` (Thumb bit cleared)."""
    with elf.open("rb") as stream:
        table = ELFFile(stream).get_section_by_name(".symtab")
        return {
            s.name: s["st_value"] & ~1
            for s in table.iter_symbols()
            if s["st_info"]["type"] in ("STT_FUNC", "STT_OBJECT")
        }


def open_session(qemu: QemuTarget, **options: object) -> Session:
    session = ConnectHelper.session_with_chosen_probe(
        unique_id=f"qemu:{qemu.gdb_address}", target_override="cortex_m", options=options
    )
    assert session is not None
    session.open()
    return session


def create_pyocd(
    target: TargetProfile,
    elf: Path,
    qemu: QemuTarget | None = None,
    unlimited: bool = False,
    options: PyOcdOptions | None = None,
) -> PyOcdBackend:
    """The pyOCD backend as `irqmon attach --backend pyocd` creates it: on QEMU through the
    bridge when `qemu` is given, else on a hardware probe."""
    from irqmon.backends import pyocd as pyocd_backend
    from irqmon.capture.registry import BackendArgs, Reach
    from irqmon.cortexm.elf import ElfImage

    reach = Reach.QEMU if qemu is not None else Reach.PROBE
    address = qemu.gdb_address if qemu is not None else None
    args = BackendArgs(ElfImage(elf), target, reach, address, unlimited, options or pyocd_backend.PyOcdOptions())
    return pyocd_backend.create(args)


def capture_with_pyocd(
    elf: Path,
    output: Path,
    target_name: str = "stm32f405",
    unlimited: bool = True,
    packs: list[str] | None = None,
    until: str = "sample_done",
    duration: float | None = 120.0,
    on_connect: Callable[[PyOcdBackend], None] | None = None,
    rotate_seconds: float | None = None,
) -> tuple[CaptureSummary, str]:
    """What `irqmon attach --target T --backend pyocd --qemu ELF --until sample_done` does: QEMU with
    its NVIC trace, the pyOCD backend through the bridge, the capture loop; returns the summary
    and the firmware's USART1 output. Without `unlimited` the comparator sets that fit the
    target rotate every `rotate_seconds` (default: attach's default)."""
    from irqmon.backends.qemu import NvicTraceReader
    from irqmon.capture.loop import Capture, CaptureLimits
    from irqmon.capture.budget import arming_plan
    from irqmon.capture.session import DEFAULT_ROTATE_SECONDS
    from irqmon.cortexm.elf import ElfImage
    from irqmon.probes import plan_capture
    from irqmon.targets import load_target
    from irqmon.tracewriter import TraceWriter

    target = load_target(target_name)
    image = ElfImage(elf)
    plan = plan_capture(image, target, packs, [])
    arming = arming_plan(plan, image, target, unlimited, reserved_breakpoints=1)  # --until's breakpoint
    with QemuTarget(elf, machine=target.qemu_machine or "netduinoplus2", nvic_trace=True) as qemu:
        backend = create_pyocd(target, elf, qemu, unlimited)
        backend.connect()
        if on_connect is not None:
            on_connect(backend)
        irqs = NvicTraceReader(qemu.nvic_log, target.exception_name, target.logical_priority)
        writer = TraceWriter(output, {"target": target.name, "backend": backend.name, "priority_bits": target.priority_bits})
        capture = Capture(
            backend, plan, image, target, writer, irqs, arming=arming,
            rotate_seconds=(rotate_seconds or DEFAULT_ROTATE_SECONDS) if arming.rotates else None,
        )  # fmt: skip
        summary = capture.run(CaptureLimits(duration=duration, until=image.symbols[until].address))
        return summary, qemu.serial_output()
