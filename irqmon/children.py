"""Nothing irqmon starts outlives it: child processes (QEMU, gdb) die with it on every exit
path, SIGKILL included, and scratch folders left by a killed irqmon are removed by the next.

Each child gets its own session (Ctrl-C reaches irqmon only, which then ends the capture in
order), the parent-death signal (Linux `PR_SET_PDEATHSIG`: the kernel kills the child when
irqmon dies, however it dies) and no core dumps (gdb killed mid-packet can drop a core file
of tens of MB into the user's working directory).
"""

from __future__ import annotations

import ctypes
import os
import resource
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

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


WORKDIR_PREFIX = "irqmon-"


def make_workdir() -> Path:
    """A new scratch folder for QEMU's logs, named for this process. Folders left by an irqmon
    that was killed (SIGKILL gives it no chance to clean up) are removed first."""
    scratch = Path(tempfile.gettempdir())
    for folder in scratch.glob(f"{WORKDIR_PREFIX}*-*"):
        owner = folder.name[len(WORKDIR_PREFIX) :].split("-", 1)[0]
        if owner.isascii() and owner.isdigit() and not _running(int(owner)):
            shutil.rmtree(folder, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-"))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
