"""pyOCD's own Cortex-M code against firmware running on QEMU, through the gdbstub bridge.

Nothing here is mocked: pyOCD discovers the DP, AP, ROM table, SCS, DWT and FPB, and its
breakpoint manager, FPB, DWT and halt-reason code drive QEMU through `irqmon.rsp`."""

from __future__ import annotations

import time

from pyocd.core.session import Session
from pyocd.core.target import Target

from bridge_support import open_session
from irqmon.backends.qemu import QemuTarget
from irqmon.rsp import RspClient

TIM2_EXCEPTION = 16 + 28


def wait_halted(target: Target, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while target.get_state() != Target.State.HALTED:
        assert time.monotonic() < deadline, "the core did not halt"
        time.sleep(0.001)


def run_to(target: Target, address: int) -> None:
    """Run from wherever the core is to a hardware breakpoint at `address`, and remove it."""
    target.set_breakpoint(address, Target.BreakpointType.HW)
    target.resume()
    wait_halted(target)
    target.remove_breakpoint(address)
    assert target.read_core_register("pc") == address


def test_connect_discovers_a_cortex_m4_halted_at_reset(session: Session, tim2_symbols: dict[str, int]) -> None:
    target = session.target
    core = target.selected_core
    assert core.name == "Cortex-M4"
    assert target.get_state() == Target.State.HALTED
    assert target.get_halt_reason() == Target.HaltReason.DEBUG
    registers = dict(zip(("pc", "xpsr", "basepri", "primask"), target.read_core_registers_raw(
        ["pc", "xpsr", "basepri", "primask"])))  # fmt: skip
    assert registers["pc"] == tim2_symbols["Reset_Handler"]
    assert registers["xpsr"] & (1 << 24)  # Thumb
    assert registers["basepri"] == registers["primask"] == 0
    assert (core.fpb.nb_code, core.dwt.watchpoint_count) == (6, 4)


def test_comparator_counts_come_from_the_bridge_options(qemu: QemuTarget) -> None:
    session = open_session(qemu, **{"qemu.fpb_comparators": 8, "qemu.dwt_comparators": 2})
    try:
        core = session.target.selected_core
        assert (core.fpb.nb_code, core.dwt.watchpoint_count) == (8, 2)
    finally:
        session.close()


def test_hardware_breakpoint_on_an_isr_halts_with_breakpoint_reason(
    session: Session, tim2_symbols: dict[str, int]
) -> None:
    target = session.target
    record = tim2_symbols["tim2_record"]
    assert target.set_breakpoint(record, Target.BreakpointType.HW)
    assert target.get_breakpoint_type(record) == Target.BreakpointType.HW
    target.resume()
    wait_halted(target)
    assert target.get_halt_reason() == Target.HaltReason.BREAKPOINT
    assert target.read_core_register("pc") == record
    assert target.read_core_register("ipsr") == TIM2_EXCEPTION
    target.remove_breakpoint(record)
    target.resume()
    time.sleep(0.05)
    assert target.get_state() == Target.State.RUNNING


def test_dwt_write_watchpoint_halts_after_the_store(session: Session, tim2_symbols: dict[str, int]) -> None:
    target = session.target
    run_to(target, tim2_symbols["main"])  # past the start-up code zeroing .bss
    ticks = tim2_symbols["tim2_ticks"]
    target.set_watchpoint(ticks, 4, Target.WatchpointType.WRITE)
    values = []
    for _ in range(3):
        target.resume()
        wait_halted(target)
        assert target.get_halt_reason() == Target.HaltReason.WATCHPOINT
        assert target.read_core_register("ipsr") == TIM2_EXCEPTION
        values.append(target.read32(ticks))
    # DWT semantics: the halt comes after the access, so each stop shows the new value.
    assert values == [1, 2, 3]
    target.remove_watchpoint(ticks, 4, Target.WatchpointType.WRITE)


def test_memory_reads_while_running_leave_the_core_running(session: Session, tim2_symbols: dict[str, int]) -> None:
    target = session.target
    target.resume()
    loops = tim2_symbols["main_loops"]
    first = target.read32(loops)
    time.sleep(0.02)
    second = target.read32(loops)
    assert second > first
    assert target.get_state() == Target.State.RUNNING
    target.halt()
    assert target.get_state() == Target.State.HALTED
    assert target.get_halt_reason() == Target.HaltReason.DEBUG


def test_step_executes_one_instruction(session: Session) -> None:
    target = session.target
    pc = target.read_core_register("pc")
    target.step()
    assert target.get_state() == Target.State.HALTED
    assert target.read_core_register("pc") != pc
    assert target.get_halt_reason() == Target.HaltReason.DEBUG


def test_a_step_always_retires_an_instruction(session: Session) -> None:
    """As C_STEP does on silicon, even where QEMU reports 1 to 4 steps in 100 done without
    running anything (TIM2 due every few microseconds): 300 halts at random places, each
    followed by a step that must move the pc (nothing in this firmware branches to itself)."""
    target = session.target
    for index in range(300):
        target.resume()
        time.sleep(index % 7 / 1000)
        target.halt()
        pc = target.read_core_register("pc")
        target.step()
        assert target.read_core_register("pc") != pc


def test_reset_and_halt_stops_at_the_reset_handler(session: Session, tim2_symbols: dict[str, int]) -> None:
    target = session.target
    target.resume()
    time.sleep(0.02)
    target.reset_and_halt()
    assert target.get_state() == Target.State.HALTED
    assert target.read_core_register("pc") == tim2_symbols["Reset_Handler"]
    assert target.get_halt_reason() == Target.HaltReason.VECTOR_CATCH


def test_removing_points_and_closing_leaves_the_target_running_free(
    qemu: QemuTarget, tim2_symbols: dict[str, int]
) -> None:
    session = open_session(qemu)
    target = session.target
    run_to(target, tim2_symbols["main"])
    target.set_breakpoint(tim2_symbols["tim2_record"], Target.BreakpointType.HW)
    target.set_watchpoint(tim2_symbols["tim2_ticks"], 4, Target.WatchpointType.WRITE)
    target.resume()
    wait_halted(target)  # pyOCD commits breakpoints on resume; both are in QEMU now
    # pyOCD 0.46's disconnect alone would set the breakpoint again: remove_all_breakpoints()
    # leaves it in the manager's pending list and the resume that follows flushes it back.
    target.remove_breakpoint(tim2_symbols["tim2_record"])
    target.remove_watchpoint(tim2_symbols["tim2_ticks"], 4, Target.WatchpointType.WRITE)
    session.close()
    client = RspClient("127.0.0.1", qemu.port)
    client.handshake()
    before = int.from_bytes(client.read_memory(tim2_symbols["tim2_ticks"], 4), "little")
    client.cont()
    assert client.wait_stop(0.5) is None  # TIM2 fired meanwhile and nothing stopped it
    client.stop()
    after = int.from_bytes(client.read_memory(tim2_symbols["tim2_ticks"], 4), "little")
    assert after > before
    client.close()


def test_pcsr_samples_the_running_core(session: Session, tim2_symbols: dict[str, int]) -> None:
    """DWT_PCSR reads the pc of the running core, and 0xFFFFFFFF while it is halted. (QEMU stops
    only between translation blocks, so a tight loop is always sampled at its top.)"""
    target = session.target
    pcsr = 0xE000101C
    assert target.read32(pcsr) == 0xFFFFFFFF
    run_to(target, tim2_symbols["main"])
    target.resume()
    samples = [target.read32(pcsr) for _ in range(20)]
    assert target.get_state() == Target.State.RUNNING
    code = [tim2_symbols[name] for name in ("main", "tim2_record", "TIM2_IRQHandler")]
    assert all(min(code) - 0x100 <= pc < max(code) + 0x100 for pc in samples), [hex(pc) for pc in samples]


def test_a_software_breakpoint_halts_where_qemu_would_fault(session: Session, tim2_symbols: dict[str, int]) -> None:
    """pyOCD's software breakpoint is a BKPT written into the code. QEMU alone would take it as a
    HardFault; through the bridge the core halts on it with the breakpoint reason, as halting
    debug makes a chip do, and a step there halts again without executing it."""
    target = session.target
    record = tim2_symbols["tim2_record"]
    target.set_breakpoint(record, Target.BreakpointType.SW)
    target.resume()
    wait_halted(target)
    assert target.read_core_register("pc") == record
    assert target.get_halt_reason() == Target.HaltReason.BREAKPOINT
    assert target.read_core_register("ipsr") == TIM2_EXCEPTION
    target.step()
    assert target.read_core_register("pc") == record
    target.remove_breakpoint(record)
    target.step()
    assert target.read_core_register("pc") != record


def test_a_step_of_wfi_retires_it(session: Session, tim2_symbols: dict[str, int]) -> None:
    """With the step's interrupts masked QEMU would sleep in a WFI for good; a chip may retire it
    as a NOP, and the bridge does."""
    target = session.target
    wfi = next(a for a in range(tim2_symbols["sample_done"], tim2_symbols["sample_done"] + 16, 2)
               if target.read16(a) == 0xBF30)  # fmt: skip
    target.write_core_register("pc", wfi)
    target.step()
    assert target.read_core_register("pc") == wfi + 2
