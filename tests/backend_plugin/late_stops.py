"""A capture backend from outside irqmon that hears of no stop by itself: it wraps a registered
backend (`--late-over gdb|rsp`, gdb by default) whose `wait_stop` reports nothing while the
target runs, so every breakpoint the target reaches is found only when the capture halts the
core to rotate its comparators. That is the race a real capture meets now and then, made
certain: the stop comes in after the capture's poll and before its halt. (A stop the halt keeps
for later is reported.)
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from irqmon.backends.base import Stop
from irqmon.capture.registry import BackendArgs, BackendSpec, Option, Reach, backend
from irqmon.errors import UsageError

NAME = "late-stops"
WRAPPABLE = ("gdb", "rsp")


class LateStops:
    """The wrapped backend as it is, but for `wait_stop`."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = NAME

    def wait_stop(self, timeout: float) -> Stop | None:
        if self.inner.running:  # a stop that comes now is left for the capture's next halt to find
            time.sleep(timeout)
            return None
        return self.inner.wait_stop(timeout)  # one the halt found and kept for later

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def configure(values: Mapping[str, Any], reach: Reach) -> str:
    wrapped = values["over"] or "gdb"
    if wrapped not in WRAPPABLE:
        raise UsageError(f"--late-over {wrapped}: one of {', '.join(WRAPPABLE)}")
    return wrapped


def create(args: BackendArgs) -> LateStops:
    spec = backend(args.options)
    assert spec.create is not None
    return LateStops(spec.create(args))


BACKEND = BackendSpec(
    name=NAME,
    help="a test's own backend: another one whose stops are found only by the capture's halts",
    reaches=frozenset({Reach.QEMU}),
    create=create,
    options=(Option("over", ("--late-over",), "the backend it wraps: gdb or rsp", "BACKEND"),),
    configure=configure,
)
