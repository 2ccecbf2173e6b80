"""The qemu-plugin backend: a TCG plugin records every hit and every watched access inside QEMU,
without halting the core (QEMU only; silicon keeps FPB/DWT and the halting backends)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from irqmon.backends.qemu import check_qemu
from irqmon.backends.qemu_plugin.recorder import Recorder
from irqmon.capture.loop import CaptureLimits
from irqmon.capture.registry import BackendArgs, BackendSpec, Option, Reach
from irqmon.errors import UsageError
from irqmon.probes import CapturePlan

DEFAULT_WINDOW = 1024  # bytes of stack per record, from sp (and from psp): what call paths can walk


def configure(values: Mapping[str, Any], reach: Reach) -> dict[str, Any]:
    text = values.get("window")
    if text is None:
        return {"window": DEFAULT_WINDOW}
    try:
        window = int(text, 0)
    except ValueError:
        raise UsageError(f"--stack-window {text}: not a number of bytes") from None
    if not 64 <= window <= 4096 or window % 4:
        raise UsageError(f"--stack-window {text}: a multiple of 4 from 64 to 4096 bytes")
    return {"window": window}


def check() -> None:
    """QEMU with plugin support, and the plugin built (now, if it was not), or one UsageError."""
    from irqmon.backends.qemu_plugin.build import built_plugin, check_plugin_support  # `python -m` runs it too

    check_plugin_support(check_qemu())
    built_plugin()


def create_recorder(args: BackendArgs, plan: CapturePlan, limits: CaptureLimits) -> Recorder:
    from irqmon.backends.qemu_plugin.build import built_plugin

    check()
    return Recorder(args.elf, args.target, plan, built_plugin(), args.options["window"], limits)


BACKEND = BackendSpec(
    name="qemu-plugin",
    help="records inside QEMU through a TCG plugin: every hit and watched access, no halts (QEMU only)",
    reaches=frozenset({Reach.QEMU}),
    record=create_recorder,
    options=(
        Option("window", ("--stack-window",), "bytes of stack each record carries for its call path (default 1024)", "BYTES"),
    ),
    configure=configure,
    check=check,
)
