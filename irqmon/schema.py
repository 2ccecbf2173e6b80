"""The trace schema: one place for column names, dtypes, event names and the version.

Every writer, reader and rule refers to these names instead of spelling them again.
`docs/trace-format.md` describes the same schema for people.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypedDict, get_type_hints

# The `ipsr` column numbers exceptions as the core does: 0 thread mode, FIRST_IRQ + n IRQ n.
from irqmon.cortexm.exceptions import FIRST_IRQ as FIRST_IRQ

# 2: the `coverage` event (which probe sites were armed when). Version 1 traces read as before:
# everything their capture planned was armed throughout.
SCHEMA_VERSION = 2
MAGIC = "irqmon-trace"


class Event(StrEnum):
    """What happened at a trace row."""

    CALL = "call"  # a probed function was entered (breakpoint on its first instruction)
    RETURN = "return"  # a probed function returned to its caller (value = r0)
    ACCESS = "access"  # a watched address was read or written (access = r|w)
    MASK = "mask"  # an instruction that changes PRIMASK/BASEPRI/FAULTMASK executed
    IRQ_ENTER = "irq_enter"  # the core took an exception (from QEMU's NVIC trace or SWO)
    IRQ_EXIT = "irq_exit"  # the exception returned
    CONFIG = "config"  # a value read from the target once (e.g. the max-syscall priority)
    # A probe site armed (value 1) or disarmed (value 0) from this time on: symbol names the
    # site, kind/probe what it probes, address its first address (schema 2 and later).
    COVERAGE = "coverage"


class Kind(StrEnum):
    """What an event means, as its probe pack declares it."""

    HEAP = "heap"
    MUTEX = "mutex"
    BLOCKING = "blocking"
    LOCK = "lock"
    CRITICAL_SECTION = "critical-section"
    RTOS_API = "rtos-api"
    RTOS_FROMISR = "rtos-fromisr"
    NON_REENTRANT = "non-reentrant"
    SHARED_REGISTER = "shared-register"
    IRQ = "irq"
    WATCH = "watch"
    CONFIG = "config"


class Role(StrEnum):
    """What a row does to the object it names, as its probe pack declares it."""

    ACQUIRE = "acquire"  # take a mutex/semaphore/lock (a write of the locked value for a HAL Lock)
    RELEASE = "release"  # give it back (a write of the unlocked value)
    TEST = "test"  # read a lock without taking it (e.g. `if (h->Lock == HAL_LOCKED)`)
    ALLOC = "alloc"  # malloc, calloc, realloc
    FREE = "free"
    BLOCKING = "blocking"  # a call that may wait (delay, queue receive with a timeout)
    ENTER = "enter"  # task-level critical section entered (e.g. vPortEnterCritical)
    EXIT = "exit"
    API = "api"  # any other task-level RTOS call
    FROMISR = "fromisr"  # an ISR-safe RTOS call (the FromISR family)
    DISABLE = "disable"  # cpsid: PRIMASK/FAULTMASK set
    ENABLE = "enable"  # cpsie: PRIMASK/FAULTMASK cleared
    WRITE = "write"  # msr to PRIMASK/BASEPRI/BASEPRI_MAX/FAULTMASK, or a plain watched write
    READ = "read"  # a plain watched read


class Row(TypedDict, total=False):
    """One trace row: a key per column, in CSV column order. A key left out (or None) is an
    empty cell. The types give the columns' dtypes (`COLUMNS`)."""

    seq: int  # the row's place in the trace, from 0 (the writer numbers the rows)
    time: float  # seconds since the capture started
    cycles: int | None  # DWT CYCCNT where the target has one, else empty
    event: str | None  # Event
    kind: str | None  # Kind
    role: str | None  # Role
    probe: str | None  # probe pack that produced the row
    symbol: str | None  # function (call/return), watched object (access), mask register (mask)
    pc: int | None
    lr: int | None
    sp: int | None
    ipsr: int | None  # exception number: 0 thread mode, FIRST_IRQ + n IRQ n
    exception: str | None  # its name from the target profile ("Thread" for 0)
    priority: int | None  # NVIC priority of the active exception, in implemented bits; empty in thread mode
    basepri: int | None
    primask: int | None
    faultmask: int | None
    control: int | None
    task: str | None  # current RTOS task where a pack can tell
    address: int | None  # watched address, lock object, mask-instruction site
    access: str | None  # r | w for access rows
    value: int | None  # accessed value, return value, first argument, mask register after
    old_value: int | None  # value before a write, mask register before
    size: int | None  # access width in bytes, or the size argument of a heap call
    args: str | None  # name=value pairs separated by ';'
    callpath: str | None  # call stack, innermost first, frames separated by ';'
    source: str | None  # file:line of pc
    # Optional columns (`OPTIONAL_COLUMNS`): a trace without them reads as one with them empty.
    halted: float | None  # of `time`, the seconds the capture held the core halted (at the event)
    halts: int | None  # how many times the capture had halted the core before the event


class TimelineRow(Row, total=False):
    """An IRQ entry or exit as a timeline source (QEMU's NVIC trace, SWO) reports it: stamped
    with the host clock when it was read, which the capture turns into `time`."""

    epoch: float  # time.time() of the event; never written to the trace


_DTYPES = {int: "int64", float: "float64", float | None: "float64", int | None: "Int64", str | None: "string"}
# Column name -> pandas dtype, in CSV column order.
COLUMNS: dict[str, str] = {name: _DTYPES[hint] for name, hint in get_type_hints(Row).items()}

# Columns added after schema 1's first traces: readers fill them in empty where a trace has none
# (older readers keep them as extra columns).
OPTIONAL_COLUMNS: tuple[str, ...] = ("halted", "halts")
REQUIRED_COLUMNS: tuple[str, ...] = tuple(c for c in COLUMNS if c not in OPTIONAL_COLUMNS)

CALLPATH_SEPARATOR = ";"
ARGS_SEPARATOR = ";"
# Call path frames that are no function: an exception entry (the handler's frame, then this,
# then the interrupted code's frames), and code no symbol covers (as gdb prints it).
EXCEPTION_FRAME = "<exception>"
UNKNOWN_FUNCTION = "??"

# Metadata keys written in the leading '# key: value' lines of a CSV trace
# (and in the Parquet schema metadata).
META_SCHEMA = "schema"
PARQUET_META_PREFIX = "irqmon."  # a Parquet trace keeps its metadata under these schema-metadata keys
META_TARGET = "target"
META_ELF = "elf"
META_BUILD_ID = "build_id"
META_TOOL_VERSION = "tool_version"
META_START_TIME = "start_time"
META_PRIORITY_BITS = "priority_bits"
META_BACKEND = "backend"
META_PROBES = "probes"  # the probe packs the capture used, separated by ','
META_CORE_CLOCK = "core_clock_hz"  # the core clock where the capture knows it (an emulator's fixed clock)
# `config` rows the capture reads from every target: SysTick's control and reload registers.
CONFIG_SYSTICK_CONTROL = "systick_control"
CONFIG_SYSTICK_RELOAD = "systick_reload"

