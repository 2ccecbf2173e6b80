"""Capture backends: what one declares, and finding them (the `irqmon.backends` entry points).

A backend module declares one `BackendSpec`: its name, how it reaches a target, its own
command-line options as plain data, and a factory that takes the same `BackendArgs` for every
backend. The built-in backends are registered in pyproject.toml like any third-party one, so
adding a backend is one module (and its tests) plus its entry point.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

from irqmon.errors import UsageError

if TYPE_CHECKING:
    from irqmon.backends.base import Backend
    from irqmon.backends.qemu_plugin.recorder import Recorder
    from irqmon.capture.loop import CaptureLimits, IrqSource
    from irqmon.cortexm.elf import ElfImage
    from irqmon.probes import CapturePlan
    from irqmon.targets import TargetProfile

ENTRY_POINT_GROUP = "irqmon.backends"


class Reach(StrEnum):
    """How a capture reaches the target."""

    QEMU = "qemu"  # irqmon starts QEMU on the firmware; its gdbstub is on 127.0.0.1
    GDB_SERVER = "gdb-server"  # a GDB server already running (OpenOCD, pyOCD gdbserver, J-Link)
    PROBE = "probe"  # a debug probe the backend drives itself


# The command-line option that chooses each way (the session's messages name them).
REACH_OPTIONS = {Reach.QEMU: "--qemu ELF", Reach.GDB_SERVER: "--gdb-remote HOST:PORT", Reach.PROBE: "a debug probe"}


@dataclass(frozen=True)
class Option:
    """One command-line option of a backend. Its value reaches the backend's `configure` as the
    text given (a list of them when `repeatable`), or None (an empty list) when not given."""

    name: str  # the key in the values `configure` receives
    flags: tuple[str, ...]  # e.g. ("--probe-uid", "-u")
    help: str
    metavar: str = "VALUE"
    repeatable: bool = False


@dataclass(frozen=True)
class BackendArgs:
    """What every backend factory gets."""

    elf: ElfImage
    target: TargetProfile
    reach: Reach
    gdb_address: str | None  # QEMU's gdbstub or the --gdb-remote server; None with a debug probe
    unlimited: bool  # QEMU only: the comparator budget is lifted
    options: Any  # what the backend's `configure` made of its options
    traffic_log: Path | None = None  # -v: where to log the remote-protocol traffic (gdb, rsp)

    @property
    def on_hardware(self) -> bool:
        """A real core (not QEMU): it has a cycle counter worth starting and reading."""
        return self.reach is not Reach.QEMU


@dataclass(frozen=True)
class BackendSpec:
    """A capture backend as the registry knows it. Its option flags must differ from
    `irqmon attach`'s own and from every other backend's."""

    name: str
    help: str  # one line for `irqmon attach --help`
    reaches: frozenset[Reach]
    # A halting backend: not connected yet, the session connects it and runs the capture loop.
    create: Callable[[BackendArgs], Backend] | None = None
    # Or a backend that records inside the emulator by itself (QEMU only), started with QEMU.
    record: Callable[[BackendArgs, CapturePlan, CaptureLimits], Recorder] | None = None
    options: tuple[Option, ...] = ()
    # Checks and converts the option values (bad input: UsageError) before anything starts.
    configure: Callable[[Mapping[str, Any], Reach], Any] | None = None
    # An IRQ timeline the backend streams without halting, when not on QEMU (QEMU gives its
    # own): the source, a one-line reason why there is none this time, or None.
    timeline: Callable[[Backend, BackendArgs], IrqSource | str | None] | None = None
    # Whether this machine can run the backend (a UsageError line saying what is missing): a
    # default backend that cannot run gives way to the next default.
    check: Callable[[], None] | None = None

    def option_values(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Each of this backend's options: its value in `given`, else None (or [])."""
        return {o.name: given.get(o.name, [] if o.repeatable else None) for o in self.options}

    def flag(self, option: str) -> str:
        return next(o.flags[0] for o in self.options if o.name == option)


def backends() -> dict[str, BackendSpec]:
    """Every registered backend that loads, by name, in name order."""
    return {name: spec for name, spec in _registered().items() if isinstance(spec, BackendSpec)}


def backend(name: str) -> BackendSpec:
    """The backend registered as `name`; bad input (an unknown or broken one) is a UsageError."""
    registered = _registered()
    spec = registered.get(name)
    if isinstance(spec, BackendSpec):
        return spec
    if spec is not None:
        raise UsageError(f"backend '{name}' cannot be used: {spec}")
    if not registered:
        raise UsageError("no capture backend is registered: irqmon's installation is out of date (run make setup)")
    raise UsageError(f"unknown backend '{name}': known are {', '.join(backends())}")


@cache
def _registered() -> dict[str, BackendSpec | str]:
    """Each `irqmon.backends` entry point's BackendSpec, or why it is none (a third party's
    module may fail to import: that is said when it is chosen, not for every capture)."""
    found: dict[str, BackendSpec | str] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            spec = entry.load()
        except Exception as exc:  # any error of a module that is not irqmon's
            found.setdefault(entry.name, f"{entry.value} does not load ({type(exc).__name__}: {exc})")
            continue
        if isinstance(spec, BackendSpec) and spec.name == entry.name:
            found.setdefault(entry.name, spec)
        else:
            found.setdefault(entry.name, f"{entry.value} is not the BackendSpec of '{entry.name}'")
    return dict(sorted(found.items()))
