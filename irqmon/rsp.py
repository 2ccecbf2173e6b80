"""A small, fast client for GDB's remote serial protocol over TCP.

One request is one round trip: packets are framed and checksummed here, acknowledgements are
turned off with `QStartNoAckMode` where the stub allows it, and replies are read through a buffer.
Several requests can be sent back to back and their replies collected together (`pipeline`).
The client knows nothing of any target beyond the protocol: stop replies are parsed into
`StopReply`, register numbers are the stub's own.
"""

from __future__ import annotations

import contextlib
import select
import socket
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import BinaryIO

INTERRUPT = b"\x03"
# Linux: acknowledge what arrived at once instead of up to 40 ms later. A stub that answers a
# pipeline with one small write per reply and leaves Nagle's algorithm on (pyOCD's gdbserver)
# holds each reply until the one before it is acknowledged.
QUICKACK = getattr(socket, "TCP_QUICKACK", None)
XFER_CHUNK = 0xFFF  # bytes asked for per qXfer request
SIGINT = 2
SIGTRAP = 5


class RspError(Exception):
    """The stub answered a request with an error, or the reply made no sense."""


class RspDisconnected(RspError):
    """The connection to the stub is gone."""


class PointKind(StrEnum):
    """The `Z`/`z` point types."""

    SOFTWARE = "0"
    HARDWARE = "1"
    WRITE = "2"
    READ = "3"
    ACCESS = "4"


WATCH_KINDS = {"watch": PointKind.WRITE, "rwatch": PointKind.READ, "awatch": PointKind.ACCESS}


@dataclass(frozen=True)
class StopReply:
    """A parsed `S`, `T`, `W` or `X` reply."""

    signal: int
    registers: dict[int, bytes] = field(default_factory=dict)
    watch: PointKind | None = None
    watch_address: int | None = None
    thread: str | None = None
    exited: bool = False
    raw: str = ""

    @classmethod
    def parse(cls, text: str) -> StopReply:
        kind = text[:1]
        if kind in ("W", "X"):
            return cls(signal=int(text[1:3], 16), exited=True, raw=text)
        if kind == "S":
            return cls(signal=int(text[1:3], 16), raw=text)
        if kind != "T":
            raise RspError(f"not a stop reply: {text!r}")
        registers: dict[int, bytes] = {}
        watch = watch_address = thread = None
        for pair in filter(None, text[3:].split(";")):
            name, _, value = pair.partition(":")
            if name in WATCH_KINDS:
                watch, watch_address = WATCH_KINDS[name], int(value, 16)
            elif name == "thread":
                thread = value
            elif all(c in "0123456789abcdefABCDEF" for c in name):
                registers[int(name, 16)] = bytes.fromhex(value)
        return cls(int(text[1:3], 16), registers, watch, watch_address, thread, raw=text)

    @property
    def is_interrupt(self) -> bool:
        """The stop a Ctrl-C asked for, not a debug event of the target's own."""
        return not self.exited and self.signal == SIGINT and self.watch is None


def refused(reply: str) -> bool:
    """An `Enn` error reply."""
    return len(reply) == 3 and reply[0] == "E"


def checksum(payload: bytes) -> int:
    return sum(payload) & 0xFF


def escape(payload: bytes) -> bytes:
    """Escape the characters the protocol reserves (`#`, `$`, `}`, `*`) in binary data."""
    out = bytearray()
    for byte in payload:
        if byte in b"#$}*":
            out += bytes((0x7D, byte ^ 0x20))
        else:
            out.append(byte)
    return bytes(out)


def frame(payload: bytes) -> bytes:
    return b"$" + payload + b"#" + f"{checksum(payload):02x}".encode()


def unescape(payload: bytes) -> bytes:
    """Undo `}` escapes and `*` run-length encoding in a reply."""
    if b"}" not in payload and b"*" not in payload:
        return payload
    out = bytearray()
    index = 0
    while index < len(payload):
        byte = payload[index]
        if byte == 0x7D:
            index += 1
            out.append(payload[index] ^ 0x20)
        elif byte == 0x2A and out:
            index += 1
            out += out[-1:] * (payload[index] - 29)
        else:
            out.append(byte)
        index += 1
    return bytes(out)


class RspClient:
    """One connection to a GDB remote stub (all-stop mode)."""

    def __init__(self, host: str, port: int, timeout: float = 5.0) -> None:
        self.timeout = timeout
        try:
            self._sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise RspDisconnected(f"cannot connect to the GDB stub at {host}:{port}: {exc}") from None
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = bytearray()
        self._acks = True
        self.features: dict[str, str | bool] = {}
        self.address = f"{host}:{port}"
        self.traffic: BinaryIO | None = None  # every byte sent (`>`) and received (`<`), for -v
        self._opened = time.monotonic()

    # Framing ------------------------------------------------------------------------------

    def _log(self, direction: bytes, data: bytes) -> None:
        if self.traffic is not None:
            self.traffic.write(b"%.6f %s %s\n" % (time.monotonic() - self._opened, direction, data))

    def _send(self, data: bytes) -> None:
        self._log(b">", data)
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise RspDisconnected(f"lost the GDB stub at {self.address}: {exc}") from None

    def _fill(self, deadline: float | None) -> bool:
        """Read what the socket has into the buffer; False if nothing came before `deadline`."""
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready, _, _ = select.select([self._sock], [], [], wait)
        if not ready:
            return False
        try:
            chunk = self._sock.recv(65536)
        except OSError as exc:
            raise RspDisconnected(f"lost the GDB stub at {self.address}: {exc}") from None
        if not chunk:
            raise RspDisconnected(f"the GDB stub at {self.address} closed the connection")
        self._log(b"<", chunk)
        if QUICKACK is not None:
            self._sock.setsockopt(socket.IPPROTO_TCP, QUICKACK, 1)  # cleared by the kernel: set per read
        self._buffer += chunk
        return True

    def _take_packet(self) -> bytes | None:
        """One complete packet's payload from the buffer, or None if none is complete yet."""
        buf = self._buffer
        start = buf.find(b"$")
        if start < 0:
            buf.clear()  # only acks ('+') and noise before a packet starts
            return None
        end = buf.find(b"#", start)
        if end < 0 or len(buf) < end + 3:
            return None
        payload = bytes(buf[start + 1 : end])
        received = int(buf[end + 1 : end + 3], 16)
        del buf[: end + 3]
        if received != checksum(payload):
            if self._acks:
                self._send(b"-")
                return None
            raise RspError(f"bad checksum in a reply from {self.address}")
        if self._acks:
            self._send(b"+")
        return unescape(payload)

    def receive(self, timeout: float | None = -1.0) -> bytes | None:
        """The next packet; None if none arrived within `timeout` (-1: the client's timeout)."""
        if timeout is not None and timeout < 0:
            timeout = self.timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            packet = self._take_packet()
            if packet is not None:
                return packet
            if not self._fill(deadline):
                return None

    def request(self, payload: str | bytes) -> str:
        """Send one packet and return its reply; an `Enn` reply raises RspError."""
        return self.pipeline([payload])[0]

    def pipeline(self, payloads: list[str | bytes], then: bytes | None = None, refused_ok: bool = False) -> list[str]:
        """Send several packets at once and return their replies in order: one round trip.

        `then`: one more packet in the same write whose reply is not awaited (`s` or `c`: the
        stop reply comes later through `wait_stop`). Every reply is read before an `Enn` reply
        raises RspError; with `refused_ok` it is returned like any other."""
        data = b"".join(frame(p.encode() if isinstance(p, str) else p) for p in payloads)
        self._send(data + frame(then) if then else data)
        replies, failure = [], None
        for payload in payloads:
            reply = self.receive()
            if reply is None:
                raise RspDisconnected(f"no reply from the GDB stub at {self.address} to {payload!r:.40}")
            text = reply.decode("latin-1")
            if failure is None and refused(text) and payload[:1] not in ("q", b"q"):
                failure = RspError(f"{payload!r:.40} failed: {text}")
            replies.append(text)
        if failure is not None and not refused_ok:
            raise failure
        return replies

    # Session ------------------------------------------------------------------------------

    def handshake(self) -> dict[str, str | bool]:
        """Exchange `qSupported` and turn acknowledgements off if the stub allows it.

        A stub that stops a running target when a debugger connects (QEMU) sends that stop
        reply first: it is skipped here, `halt_reason()` tells where the target is."""
        self._send(b"+" + frame(b"qSupported:multiprocess+;swbreak+;hwbreak+;vContSupported+"))
        while True:
            packet = self.receive()
            if packet is None:
                raise RspDisconnected(f"the GDB stub at {self.address} did not answer qSupported")
            reply = packet.decode("latin-1")
            if reply[:1] not in ("T", "S"):
                break
        for item in filter(None, reply.split(";")):
            if "=" in item:
                name, value = item.split("=", 1)
                self.features[name] = value
            else:
                self.features[item[:-1]] = item.endswith("+")
        if self.features.get("QStartNoAckMode") and self.request("QStartNoAckMode") == "OK":
            self._acks = False
        return self.features

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()

    # Execution ----------------------------------------------------------------------------

    def halt_reason(self) -> StopReply:
        return StopReply.parse(self.request("?"))

    def cont(self) -> None:
        """Resume; the stop reply comes later through `wait_stop`."""
        self._send(frame(b"c"))

    def vcont(self, actions: str) -> None:
        """Resume with `vCont;ACTIONS` (e.g. `c`, `s:1`); the stop reply comes through `wait_stop`."""
        self._send(frame(f"vCont;{actions}".encode()))

    def interrupt(self) -> None:
        self._send(INTERRUPT)

    def wait_stop(self, timeout: float | None) -> StopReply | None:
        """The next stop reply, or None if the target still runs after `timeout` seconds."""
        while True:
            packet = self.receive(timeout)
            if packet is None:
                return None
            text = packet.decode("latin-1")
            if text[:1] in ("T", "S", "W", "X"):
                return StopReply.parse(text)
            if text[:1] == "O" and text != "OK":  # console output from the stub
                continue
            raise RspError(f"unexpected packet while the target runs: {text!r:.60}")

    def step(self) -> StopReply:
        self._send(frame(b"s"))
        reply = self.wait_stop(self.timeout)
        if reply is None:
            raise RspDisconnected(f"the GDB stub at {self.address} did not finish a step")
        return reply

    def stop(self, timeout: float | None = None) -> StopReply:
        """Interrupt a running target and return its stop reply (maybe a debug event of its own)."""
        self.interrupt()
        reply = self.wait_stop(self.timeout if timeout is None else timeout)
        if reply is None:
            raise RspDisconnected(f"the GDB stub at {self.address} did not stop on Ctrl-C")
        return reply

    # Registers and memory -----------------------------------------------------------------

    def read_registers(self) -> bytes:
        """The `g` block: the stub's general registers, target byte order."""
        return bytes.fromhex(self.request("g"))

    def read_register(self, number: int) -> bytes:
        return bytes.fromhex(self.request(f"p{number:x}"))

    def read_register_list(self, numbers: list[int]) -> list[bytes]:
        """Several registers with `p` packets in one round trip."""
        return [bytes.fromhex(r) for r in self.pipeline([f"p{n:x}" for n in numbers])]

    def write_register(self, number: int, value: bytes) -> None:
        self._expect_ok(self.request(f"P{number:x}={value.hex()}"))

    def read_memory(self, address: int, size: int) -> bytes:
        """`size` bytes from `address`, split into packets the stub can return."""
        limit = max(16, (int(str(self.features.get("PacketSize", "1000")), 16) - 8) // 2)
        chunks = [(a, min(limit, address + size - a)) for a in range(address, address + size, limit)]
        replies = self.pipeline([f"m{a:x},{n:x}" for a, n in chunks])
        return b"".join(bytes.fromhex(r) for r in replies)

    def write_memory(self, address: int, data: bytes) -> None:
        self._expect_ok(self.request(f"M{address:x},{len(data):x}:{data.hex()}"))

    # Breakpoints and watchpoints ----------------------------------------------------------

    def insert_point(self, kind: PointKind, address: int, length: int) -> None:
        self._expect_ok(self.request(f"Z{kind.value},{address:x},{length:x}"))

    def remove_point(self, kind: PointKind, address: int, length: int) -> None:
        self._expect_ok(self.request(f"z{kind.value},{address:x},{length:x}"))

    # Target description -------------------------------------------------------------------

    def read_feature(self, annex: str) -> str:
        """A file of the stub's target description (`target.xml`, or one it includes)."""
        text = ""
        while True:
            reply = self.request(f"qXfer:features:read:{annex}:{len(text):x},{XFER_CHUNK:x}")
            if reply[:1] not in ("m", "l"):
                raise RspError(f"the stub has no target description {annex}: {reply!r:.40}")
            text += reply[1:]
            if reply[0] == "l":
                return text

    # Monitor ------------------------------------------------------------------------------

    def monitor(self, command: str) -> str:
        """Run a stub monitor command (`qRcmd`) and return its console output."""
        self._send(frame(f"qRcmd,{command.encode().hex()}".encode()))
        output = []
        while True:
            packet = self.receive()
            if packet is None:
                raise RspDisconnected(f"no reply from the GDB stub at {self.address} to monitor {command}")
            text = packet.decode("latin-1")
            if text.startswith("O") and text != "OK":
                output.append(bytes.fromhex(text[1:]).decode(errors="replace"))
                continue
            if text.startswith("E"):
                raise RspError(f"monitor {command} failed: {text}")
            if text != "OK":
                output.append(bytes.fromhex(text).decode(errors="replace"))
            return "".join(output)

    def _expect_ok(self, reply: str) -> None:
        if reply != "OK":
            raise RspError(f"the GDB stub at {self.address} answered {reply!r:.40}")
