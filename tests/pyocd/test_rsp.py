"""irqmon.rsp: framing and stop replies as pure functions, then the client against QEMU's gdbstub."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from irqmon.backends.qemu import QemuTarget
from irqmon.rsp import PointKind, RspClient, RspDisconnected, RspError, StopReply, checksum, escape, frame, unescape


def test_frame_carries_the_modulo_256_checksum() -> None:
    assert frame(b"g") == b"$g#67"
    assert checksum(b"qSupported") == 0x37


@given(st.binary(max_size=64))
def test_escape_then_unescape_is_the_identity(data: bytes) -> None:
    escaped = escape(data)
    assert not any(c in escaped for c in b"#$") and unescape(escaped) == data


def test_unescape_expands_run_length_encoding() -> None:
    assert unescape(b"0* ") == b"0000"  # ' ' is 32: the '0' repeated 32 - 29 = 3 more times


@pytest.mark.parametrize(
    ("reply", "kind", "address"),
    [
        ("T05thread:p01.01;watch:20000024;", PointKind.WRITE, 0x20000024),
        ("T05thread:p01.01;rwatch:40013c00;", PointKind.READ, 0x40013C00),
        ("T05awatch:8;thread:01;", PointKind.ACCESS, 0x8),
    ],
)
def test_stop_reply_names_the_watchpoint_kind_and_address(reply: str, kind: PointKind, address: int) -> None:
    stop = StopReply.parse(reply)
    assert (stop.signal, stop.watch, stop.watch_address, stop.is_interrupt) == (5, kind, address, False)


def test_stop_reply_registers_interrupts_and_exits() -> None:
    stop = StopReply.parse("T020f:3c020008;thread:p01.01;")
    assert stop.is_interrupt and stop.registers == {15: bytes.fromhex("3c020008")}
    assert stop.thread == "p01.01"
    assert StopReply.parse("W00").exited and StopReply.parse("X09").exited
    with pytest.raises(RspError):
        StopReply.parse("OK")


def test_client_against_qemu(tim2_elf, tim2_symbols: dict[str, int]) -> None:
    with QemuTarget(tim2_elf) as qemu:
        client = RspClient("127.0.0.1", qemu.port)
        features = client.handshake()
        assert int(str(features["PacketSize"]), 16) >= 256
        assert client.halt_reason().signal == 5
        pc = int.from_bytes(client.read_register(15), "little")
        assert pc == tim2_symbols["Reset_Handler"]
        assert len(client.read_registers()) >= 17 * 4

        # Memory: a write and its read-back, and a read larger than one packet.
        scratch = tim2_symbols["main_loops"]
        client.write_memory(scratch, b"\x11\x22\x33\x44")
        assert client.read_memory(scratch, 4) == b"\x11\x22\x33\x44"
        assert len(client.read_memory(0x08000000, 10000)) == 10000

        # A hardware breakpoint on the ISR, then a write watchpoint on the counter.
        record = tim2_symbols["tim2_record"]
        client.insert_point(PointKind.HARDWARE, record, 2)
        client.cont()
        stop = client.wait_stop(20.0)
        assert stop is not None and stop.signal == 5 and stop.watch is None
        assert int.from_bytes(client.read_register(15), "little") == record
        client.remove_point(PointKind.HARDWARE, record, 2)
        client.insert_point(PointKind.WRITE, tim2_symbols["tim2_ticks"], 4)
        client.cont()
        stop = client.wait_stop(20.0)
        assert stop is not None and stop.watch is PointKind.WRITE
        assert stop.watch_address == tim2_symbols["tim2_ticks"]
        client.remove_point(PointKind.WRITE, tim2_symbols["tim2_ticks"], 4)

        # Ctrl-C stops a running target with SIGINT (resumed by `c` or `vCont;c`); a step moves the pc.
        for resume in (client.cont, lambda: client.vcont("c")):
            resume()
            assert client.wait_stop(0.05) is None
            assert client.stop().is_interrupt
        # QEMU now and then reports a step done without running anything (1 to 4 in 100 here,
        # with TIM2 due every few microseconds); the next one runs.
        before = client.read_register(15)
        moved = False
        for _ in range(4):
            assert client.step().signal == 5
            moved = client.read_register(15) != before
            if moved:
                break
        assert moved

        # Several requests, one round trip.
        replies = client.read_register_list([0, 1, 2, 15])
        assert len(replies) == 4 and all(len(r) == 4 for r in replies)
        assert client.monitor("info status").strip().startswith("VM status")

        qemu.stop()
        with pytest.raises(RspDisconnected):
            client.request("g")
        client.close()
