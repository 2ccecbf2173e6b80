"""The registers a GDB stub describes in its target description: `target.xml` and the files it
includes (GDB manual, "Target Descriptions"), each read with `qXfer:features:read`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from xml.etree import ElementTree

TARGET_XML = "target.xml"


@dataclass(frozen=True)
class StubRegister:
    name: str
    number: int  # the stub's own number (`p`/`P` packets, the `g` block's order)
    size: int  # bytes


def stub_registers(read_annex: Callable[[str], str], annex: str = TARGET_XML) -> dict[str, StubRegister]:
    """Every register the description names, by name, in document order (includes where they
    stand). A register without `regnum` is numbered one after the one before it."""
    registers: dict[str, StubRegister] = {}
    next_number = 0

    def walk(name: str) -> None:
        nonlocal next_number
        # Stubs write `xi:include` without declaring the prefix (QEMU): read it as a plain tag.
        root = ElementTree.fromstring(read_annex(name).replace("xi:include", "include"))
        for element in root.iter():
            if element.tag == "include":
                walk(element.get("href", ""))
            elif element.tag == "reg":
                number = int(element.get("regnum", next_number))
                # Lower case and whole bytes: OpenOCD names `xPSR` and gives `primask` one bit.
                size = (int(element.get("bitsize", "32")) + 7) // 8
                register = StubRegister(element.get("name", "").lower(), number, size)
                registers[register.name] = register
                next_number = number + 1

    walk(annex)
    return registers
