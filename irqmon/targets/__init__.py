"""Target profiles: data files naming a chip's exceptions, NVIC priority bits and comparators.

A profile is `irqmon/targets/<name>.toml`, or any TOML file of the same shape given by path.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from irqmon.errors import UsageError

PROFILE_DIR = Path(__file__).parent

# ARMv7-M system exceptions (Architecture Reference Manual, B1.5.2); 0 is thread mode.
SYSTEM_EXCEPTIONS: dict[int, str] = {
    0: "Thread",
    1: "Reset",
    2: "NMI",
    3: "HardFault",
    4: "MemManage",
    5: "BusFault",
    6: "UsageFault",
    11: "SVCall",
    12: "DebugMon",
    14: "PendSV",
    15: "SysTick",
}
FIRST_IRQ = 16


@dataclass(frozen=True)
class TargetProfile:
    name: str
    description: str
    core: str
    priority_bits: int
    fpb_comparators: int
    dwt_comparators: int
    irqs: dict[int, str] = field(default_factory=dict)
    qemu_machine: str | None = None
    pyocd_target: str | None = None
    pyocd_pack: str | None = None
    openocd_config: str | None = None

    def exception_name(self, number: int) -> str:
        """`Thread`, a system exception's name, the IRQ's name, or `IRQn` when unknown."""
        if number < FIRST_IRQ:
            return SYSTEM_EXCEPTIONS.get(number, f"Exception{number}")
        irq = number - FIRST_IRQ
        return self.irqs.get(irq, f"IRQ{irq}")

    def exception_names(self) -> dict[int, str]:
        names = dict(SYSTEM_EXCEPTIONS)
        names.update({FIRST_IRQ + irq: name for irq, name in self.irqs.items()})
        return names

    def logical_priority(self, raw: int) -> int:
        """An IPR/SHPR byte as the priority in implemented bits (0 most urgent)."""
        return (raw & 0xFF) >> (8 - self.priority_bits)


def available_targets() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))


def load_target(name_or_path: str) -> TargetProfile:
    """A built-in profile by name, or a profile file by path."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = PROFILE_DIR / f"{name_or_path}.toml"
        if not path.exists():
            raise UsageError(
                f"unknown target '{name_or_path}': known are {', '.join(available_targets())}"
                " (or give a profile .toml file)"
            )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"target profile {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: {exc}") from None
    try:
        irqs = {int(number): str(irq) for number, irq in data.pop("irqs", {}).items()}
        return TargetProfile(name=path.stem, irqs=irqs, **data)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{path}: not a target profile ({exc})") from None
