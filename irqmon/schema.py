"""The trace schema: one place for column names, dtypes, event names and the version.

Every writer, reader and rule refers to these names instead of spelling them again.
`docs/trace-format.md` describes the same schema for people.
"""

from __future__ import annotations

from enum import StrEnum

# The `ipsr` column numbers exceptions as the core does: 0 thread mode, FIRST_IRQ + n IRQ n.
from irqmon.cortexm.exceptions import FIRST_IRQ as FIRST_IRQ

SCHEMA_VERSION = 1
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


# Column name -> pandas dtype. Order is the CSV column order.
COLUMNS: dict[str, str] = {
    "seq": "int64",
    "time": "float64",  # seconds since the capture started
    "cycles": "Int64",  # DWT CYCCNT where the target has one, else empty
    "event": "string",  # Event
    "kind": "string",  # Kind
    "role": "string",  # Role
    "probe": "string",  # probe pack that produced the row
    "symbol": "string",  # function (call/return), watched object (access), mask register (mask)
    "pc": "Int64",
    "lr": "Int64",
    "sp": "Int64",
    "ipsr": "Int64",  # exception number: 0 thread mode, 16+n IRQ n
    "exception": "string",  # its name from the target profile ("Thread" for 0)
    "priority": "Int64",  # NVIC priority of the active exception, in implemented bits; empty in thread mode
    "basepri": "Int64",
    "primask": "Int64",
    "faultmask": "Int64",
    "control": "Int64",
    "task": "string",  # current RTOS task where a pack can tell
    "address": "Int64",  # watched address, lock object, mask-instruction site
    "access": "string",  # r | w for access rows
    "value": "Int64",  # accessed value, return value, first argument, mask register after
    "old_value": "Int64",  # value before a write, mask register before
    "size": "Int64",  # access width in bytes, or the size argument of a heap call
    "args": "string",  # name=value pairs separated by ';'
    "callpath": "string",  # call stack, innermost first, frames separated by ';'
    "source": "string",  # file:line of pc
}

REQUIRED_COLUMNS: tuple[str, ...] = tuple(COLUMNS)

CALLPATH_SEPARATOR = ";"
ARGS_SEPARATOR = ";"
# Call path frames that are no function: an exception entry (the handler's frame, then this,
# then the interrupted code's frames), and code no symbol covers (as gdb prints it).
EXCEPTION_FRAME = "<exception>"
UNKNOWN_FUNCTION = "??"

# Metadata keys written in the leading '# key: value' lines of a CSV trace
# (and in the Parquet schema metadata).
META_SCHEMA = "schema"
META_TARGET = "target"
META_ELF = "elf"
META_BUILD_ID = "build_id"
META_TOOL_VERSION = "tool_version"
META_START_TIME = "start_time"
META_PRIORITY_BITS = "priority_bits"
META_BACKEND = "backend"
