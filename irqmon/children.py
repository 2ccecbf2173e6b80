"""Processes irqmon starts (QEMU, gdb) die with it, on every exit path, SIGKILL included.

Each child gets its own session (Ctrl-C reaches irqmon only, which then ends the capture in
order), the parent-death signal (Linux `PR_SET_PDEATHSIG`: the kernel kills the child when
irqmon dies, however it dies) and no core dumps (gdb killed mid-packet can drop a core file
of tens of MB into the user's working directory).
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def preexec_for_child() -> Callable[[], None]:
    """The `preexec_fn` for `subprocess.Popen` of a child that must not outlive irqmon."""
    parent = os.getpid()
    libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None

    def setup() -> None:  # runs in the child between fork and exec
        os.setsid()
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if libc is not None:
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != parent:  # irqmon died before the signal was set
                os._exit(1)

    return setup
