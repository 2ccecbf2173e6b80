"""QEMU's gdbstub presented to pyOCD as an SWD debug probe with one AHB-AP.

pyOCD's unique id for it is `qemu:HOST:PORT` (the `qemu` plugin, the gdbstub's address).
The DP and AP registers are answered here; every memory access goes through `BridgeMemory`,
as an ST-Link's accelerated memory interface does, and from there to `DebugUnit`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pyocd.core import exceptions
from pyocd.core.memory_interface import MemoryInterface
from pyocd.core.options import OptionInfo
from pyocd.core.plugin import Plugin
from pyocd.probe.debug_probe import DebugProbe

from irqmon.backends.qemu_probe.debug_unit import DebugUnit, DebugUnitLost
from irqmon.cortexm.registers import ROM_TABLE_BASE
from irqmon.rsp import RspClient, RspError

DP_IDR = 0x0  # read; ABORT on write
DP_CTRL_STAT = 0x4
CSYSPWRUPREQ, CSYSPWRUPACK, CDBGPWRUPREQ, CDBGPWRUPACK = 1 << 30, 1 << 31, 1 << 28, 1 << 29
SWDP_IDR = 0x2BA01477  # Arm SW-DP v1, as on a Cortex-M4
AHB_AP_IDR = 0x24770011
AP_CSW, AP_BASE, AP_IDR = 0x00, 0xF8, 0xFC
CSW_DEVICE_EN = 1 << 6
ROM_TABLE_BASE_ENTRY = ROM_TABLE_BASE | 0x3  # ADIv5 format, present

PLUGIN_NAME = "qemu"
OPTION_BREAKPOINTS = "qemu.fpb_comparators"
OPTION_WATCHPOINTS = "qemu.dwt_comparators"
OPTION_FPB_REVISION = "qemu.fpb_revision"


def _lost(exc: Exception) -> exceptions.ProbeDisconnected:
    return exceptions.ProbeDisconnected(f"QEMU gdbstub lost: {exc}")


class BridgeMemory(MemoryInterface):
    """The AHB-AP's memory, through the debug unit."""

    def __init__(self, unit: DebugUnit) -> None:
        self._unit = unit

    def _call(self, function: Callable[..., Any], *args: Any) -> Any:
        try:
            return function(*args)
        except DebugUnitLost as exc:
            raise _lost(exc) from None
        except RspError as exc:
            raise exceptions.TransferFaultError(str(exc)) from None

    def write_memory(self, addr: int, data: int, transfer_size: int = 32, **attrs: Any) -> None:
        size = transfer_size // 8
        self._call(self._unit.write_memory, addr, (data & ((1 << transfer_size) - 1)).to_bytes(size, "little"))

    def read_memory(
        self, addr: int, transfer_size: int = 32, now: bool = True, **attrs: Any
    ) -> int | Callable[[], int]:
        if transfer_size == 32 and addr % 4 == 0:
            value = self._call(self._unit.read_word, addr)
        else:
            value = int.from_bytes(self._call(self._unit.read_memory, addr, transfer_size // 8), "little")
        return value if now else (lambda: value)

    def read_memory_block32(self, addr: int, size: int, **attrs: Any) -> Sequence[int]:
        data = self._call(self._unit.read_memory, addr, size * 4)
        return [int.from_bytes(data[i : i + 4], "little") for i in range(0, len(data), 4)]

    def write_memory_block32(self, addr: int, data: Sequence[int], **attrs: Any) -> None:
        self._call(self._unit.write_memory, addr, b"".join(w.to_bytes(4, "little") for w in data))

    def read_memory_block8(self, addr: int, size: int, **attrs: Any) -> Sequence[int]:
        return list(self._call(self._unit.read_memory, addr, size))

    def write_memory_block8(self, addr: int, data: Sequence[int], **attrs: Any) -> None:
        self._call(self._unit.write_memory, addr, bytes(data))


class QemuGdbstubProbe(DebugProbe):
    """A debug probe whose target is a QEMU machine, reached through its gdbstub."""

    @classmethod
    def get_all_connected_probes(
        cls, unique_id: str | None = None, is_explicit: bool = False
    ) -> list[QemuGdbstubProbe]:
        probe = cls.get_probe_with_id(unique_id or "", is_explicit)
        return [probe] if probe is not None else []

    @classmethod
    def get_probe_with_id(cls, unique_id: str, is_explicit: bool = False) -> QemuGdbstubProbe | None:
        """Only when asked for by name (`qemu:HOST:PORT`): there is nothing to enumerate."""
        if not is_explicit or not unique_id:
            return None
        host, _, port = unique_id.rpartition(":")
        if not host or not (port.isascii() and port.isdigit()):
            return None
        return cls(host, int(port))

    def __init__(self, host: str, port: int) -> None:
        super().__init__()
        self.host, self.port = host, port
        self.client: RspClient | None = None
        self.unit: DebugUnit | None = None
        self._memory: BridgeMemory | None = None
        self._ctrl_stat = 0
        self._csw = 0x23000052  # DbgSwEnable, HPROT privileged data, 32-bit, auto-increment

    @property
    def description(self) -> str:
        return f"QEMU gdbstub at {self.host}:{self.port}"

    @property
    def vendor_name(self) -> str:
        return "QEMU"

    @property
    def product_name(self) -> str:
        return "gdbstub bridge"

    @property
    def supported_wire_protocols(self) -> list[DebugProbe.Protocol]:
        return [DebugProbe.Protocol.DEFAULT, DebugProbe.Protocol.SWD]

    @property
    def unique_id(self) -> str:
        return f"{PLUGIN_NAME}:{self.host}:{self.port}"

    @property
    def wire_protocol(self) -> DebugProbe.Protocol | None:
        return DebugProbe.Protocol.SWD if self.unit is not None else None

    @property
    def is_open(self) -> bool:
        return self.client is not None

    @property
    def capabilities(self) -> set[DebugProbe.Capability]:
        return {DebugProbe.Capability.MANAGED_AP_SELECTION, DebugProbe.Capability.MANAGED_DPBANKSEL}

    def open(self) -> None:
        try:
            self.client = RspClient(self.host, self.port)
            self.client.handshake()
        except RspError as exc:
            self.client = None
            raise exceptions.ProbeError(str(exc)) from None

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        self.client = None
        self.unit = None
        self._memory = None

    def connect(self, protocol: DebugProbe.Protocol | None = None) -> None:
        assert self.client is not None and self.session is not None
        options = self.session.options
        try:
            self.unit = DebugUnit(
                self.client,
                breakpoints=options.get(OPTION_BREAKPOINTS),
                watchpoints=options.get(OPTION_WATCHPOINTS),
                fpb_revision=options.get(OPTION_FPB_REVISION),
            )
        except (RspError, DebugUnitLost) as exc:
            raise _lost(exc) from None
        self._memory = BridgeMemory(self.unit)

    def disconnect(self) -> None:
        self.unit = None
        self._memory = None

    def set_clock(self, frequency: float) -> None:
        """There is no wire: the clock has no meaning here."""

    def reset(self) -> None:
        self._call_unit(lambda unit: unit.reset())

    def assert_reset(self, asserted: bool) -> None:
        if asserted:
            self.reset()

    def is_reset_asserted(self) -> bool:
        return False

    def flush(self) -> None:
        """Every request has already been answered."""

    def _call_unit(self, action: Callable[[DebugUnit], Any]) -> Any:
        if self.unit is None:
            raise exceptions.ProbeError("the QEMU bridge is not connected")
        try:
            return action(self.unit)
        except DebugUnitLost as exc:
            raise _lost(exc) from None

    # DP and AP registers ------------------------------------------------------------------

    def read_dp(self, addr: int, now: bool = True) -> int | Callable[[], int]:
        if addr == DP_IDR:
            value = SWDP_IDR
        elif addr == DP_CTRL_STAT:
            value = self._ctrl_stat
            value |= CSYSPWRUPACK if value & CSYSPWRUPREQ else 0
            value |= CDBGPWRUPACK if value & CDBGPWRUPREQ else 0
        else:
            value = 0
        return value if now else (lambda: value)

    def write_dp(self, addr: int, data: int) -> None:
        if addr == DP_CTRL_STAT:
            self._ctrl_stat = data & (CSYSPWRUPREQ | CDBGPWRUPREQ | 0x0F000F00)

    def read_ap(self, addr: int, now: bool = True) -> int | Callable[[], int]:
        apsel, register = addr >> 24, addr & 0xFF
        value = 0
        if apsel == 0:
            if register == AP_IDR:
                value = AHB_AP_IDR
            elif register == AP_BASE:
                value = ROM_TABLE_BASE_ENTRY
            elif register == AP_CSW:
                value = self._csw | CSW_DEVICE_EN
        return value if now else (lambda: value)

    def write_ap(self, addr: int, data: int) -> None:
        if addr >> 24 == 0 and addr & 0xFF == AP_CSW:
            self._csw = data

    def read_ap_multiple(self, addr: int, count: int = 1, now: bool = True) -> Any:
        values = [self.read_ap(addr) for _ in range(count)]
        return values if now else (lambda: values)

    def write_ap_multiple(self, addr: int, values: Sequence[int]) -> None:
        for value in values:
            self.write_ap(addr, value)

    def get_memory_interface_for_ap(self, ap_address: Any) -> MemoryInterface | None:
        return self._memory if getattr(ap_address, "apsel", None) == 0 else None


class QemuProbePlugin(Plugin):
    """pyOCD probe plugin: `pyocd ... -u qemu:127.0.0.1:PORT`."""

    def should_load(self) -> bool:
        return True

    def load(self) -> type[QemuGdbstubProbe]:
        return QemuGdbstubProbe

    @property
    def name(self) -> str:
        return PLUGIN_NAME

    @property
    def description(self) -> str:
        return "QEMU gdbstub as a Cortex-M SWD probe (FPB/DWT emulated over GDB remote)"

    @property
    def options(self) -> list[OptionInfo]:
        return [
            OptionInfo(OPTION_BREAKPOINTS, int, 6, "FPB code comparators the bridge presents."),
            OptionInfo(OPTION_WATCHPOINTS, int, 4, "DWT comparators the bridge presents."),
            OptionInfo(OPTION_FPB_REVISION, int, 1, "FPB revision: 1 (Cortex-M3/M4) or 2 (Cortex-M7)."),
        ]
