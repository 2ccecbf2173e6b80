"""A pyOCD debug-probe plugin that presents QEMU's gdbstub as an SWD probe.

With it pyOCD's own Cortex-M code (discovery, FPB, DWT, halting, register access, halt
reasons) runs unmodified against firmware executing on QEMU: `debug_unit` emulates the
debug registers QEMU lacks on top of `irqmon.rsp`, `probe` is the `pyocd.probe` entry point.
"""

from irqmon.backends.qemu_probe.probe import PLUGIN_NAME, QemuGdbstubProbe, QemuProbePlugin

__all__ = ["PLUGIN_NAME", "QemuGdbstubProbe", "QemuProbePlugin"]
