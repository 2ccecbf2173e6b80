"""Helpers for the pyOCD backend tests: building test firmware, symbols, a pyOCD session on QEMU."""

from __future__ import annotations

import subprocess
from pathlib import Path

from elftools.elf.elffile import ELFFile
from pyocd.core.helpers import ConnectHelper
from pyocd.core.session import Session

from irqmon.backends.qemu import QemuTarget

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
