"""Target profiles: data files naming a chip's exceptions, NVIC priority bits and comparators.

A profile is `irqmon/targets/<name>.toml`, or any TOML file of the same shape given by path.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path

from irqmon.cortexm.exceptions import exception_name, logical_priority
from irqmon.errors import UsageError
from irqmon.validation import NAME, STRING, Integer, MapOf, Table, read_toml, validate

PROFILE_DIR = Path(__file__).parent

# Comparators by CMSIS-SVD <cpu><name> when the device file does not say (architecture
# maxima of the usual implementations: FPB code comparators, DWT comparators).
CORE_COMPARATORS: dict[str, tuple[str, int, int]] = {
    "CM0": ("cortex-m0", 4, 2),
    "CM0PLUS": ("cortex-m0+", 4, 2),
    "CM3": ("cortex-m3", 6, 4),
    "CM4": ("cortex-m4", 6, 4),
    "CM7": ("cortex-m7", 8, 4),
    "CM33": ("cortex-m33", 8, 4),
}


DEFAULT_DWT_MASK_BITS = 15

# What a profile file may hold. IRQ numbers are table keys: plain ASCII decimal digits.
PROFILE_SPEC = Table(
    {
        "name": NAME, "description": STRING, "core": STRING, "priority_bits": Integer(1, 8),
        "fpb_comparators": Integer(0, 255), "dwt_comparators": Integer(0, 255), "dwt_mask_bits": Integer(0, 31),
        "irqs": MapOf(r"[0-9]{1,3}", "an IRQ number (0-495)", STRING),
        "qemu_machine": STRING, "qemu_core_clock_hz": Integer(1, 10**10), "pyocd_target": STRING, "pyocd_pack": STRING, "openocd_config": STRING,
    },
    required=frozenset({"description", "core", "priority_bits", "fpb_comparators", "dwt_comparators"}),
)  # fmt: skip


@dataclass(frozen=True)
class TargetProfile:
    name: str
    description: str
    core: str
    priority_bits: int
    fpb_comparators: int
    dwt_comparators: int
    irqs: dict[int, str] = field(default_factory=dict)
    # The widest DWT address mask: a comparator covers at most 2**dwt_mask_bits aligned bytes
    # (ARMv7-M: implementation defined; 15 on the Cortex-M3/M4 when the profile does not say).
    dwt_mask_bits: int = DEFAULT_DWT_MASK_BITS
    qemu_machine: str | None = None
    qemu_core_clock_hz: int | None = None  # the core clock of the QEMU machine (fixed there)
    pyocd_target: str | None = None
    pyocd_pack: str | None = None
    openocd_config: str | None = None

    def exception_name(self, number: int) -> str:
        """`Thread`, a system exception's name, the IRQ's name, or `IRQn` when unknown."""
        return exception_name(number, self.irqs)

    def logical_priority(self, raw: int) -> int:
        """An IPR/SHPR byte as the priority in implemented bits (0 most urgent)."""
        return logical_priority(raw, self.priority_bits)


def available_targets() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))


def load_svd(path: Path) -> TargetProfile:
    """A profile from a CMSIS-SVD device file: its interrupts, NVIC priority bits and core."""
    try:
        root = ElementTree.parse(path).getroot()
    except OSError as exc:
        raise UsageError(f"cannot read SVD file {path}: {exc.strerror}") from None
    except ElementTree.ParseError as exc:
        raise UsageError(f"{path}: not an SVD file ({exc})") from None
    if root.tag != "device":
        raise UsageError(f"{path}: not an SVD file (its root is <{root.tag}>, not <device>)")
    irqs: dict[int, str] = {}
    for interrupt in root.iter("interrupt"):
        name, value = interrupt.findtext("name"), interrupt.findtext("value")
        if name and value and value.strip().isascii() and value.strip().isdigit():
            irqs[int(value)] = name.strip()
    cpu = (root.findtext("cpu/name") or "CM4").strip().upper()
    core, breakpoints, watchpoints = CORE_COMPARATORS.get(cpu, CORE_COMPARATORS["CM4"])
    bits = (root.findtext("cpu/nvicPrioBits") or "4").strip()
    return TargetProfile(
        name=(root.findtext("name") or path.stem).strip().lower(),
        description=(root.findtext("description") or "").strip().split("\n")[0],
        core=core,
        priority_bits=int(bits) if bits.isascii() and bits.isdigit() and 1 <= int(bits) <= 8 else 4,
        fpb_comparators=breakpoints,
        dwt_comparators=watchpoints,
        irqs=irqs,
    )


def load_target(name_or_path: str) -> TargetProfile:
    """A built-in profile by name, a profile file (.toml) or a CMSIS-SVD device file (.svd)."""
    path = Path(name_or_path)
    if path.suffix.lower() == ".svd":
        return load_svd(path)
    if path.suffix != ".toml":
        path = PROFILE_DIR / f"{name_or_path}.toml"
        if not path.exists():
            raise UsageError(
                f"unknown target '{name_or_path}': known are {', '.join(available_targets())}"
                " (or give a profile .toml file)"
            )
    if not path.exists():
        raise UsageError(f"target profile {path} not found")
    data = read_toml(path, "target profile")
    validate(data, PROFILE_SPEC, path, "target profile")
    irqs = {int(number): irq for number, irq in data.pop("irqs", {}).items()}
    if irqs and max(irqs) > 495:
        raise UsageError(f"bad target profile {path}: irqs.{max(irqs)}: expected an IRQ number (0-495)")
    return TargetProfile(name=data.pop("name", path.stem), irqs=irqs, **data)
