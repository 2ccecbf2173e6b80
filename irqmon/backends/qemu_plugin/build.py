"""Building the recorder plugin with the host's C compiler, once per version of its source.

`make setup` runs this module; a capture builds the plugin itself when it is missing. It lands in
the user's cache directory ($XDG_CACHE_HOME/irqmon, else ~/.cache/irqmon), named by the
source's hash, so an updated irqmon never loads an older plugin.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from irqmon.errors import UsageError

SOURCE = Path(__file__).with_name("irqmon_recorder.c")
MIN_QEMU = (10, 0)  # the plugin API version 4 with register and memory reads
CFLAGS = ["-shared", "-fPIC", "-O2", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter", "-pthread"]


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "irqmon"


def plugin_path() -> Path:
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]
    return cache_dir() / f"irqmon-recorder-{digest}.so"


def built_plugin() -> Path:
    """The plugin for this irqmon, built now if it is not yet; bad set-up is one UsageError line."""
    path = plugin_path()
    if path.exists():
        return path
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if compiler is None:
        raise UsageError("the QEMU recorder plugin is not built and there is no C compiler to build it: run make setup")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    result = subprocess.run([compiler, *CFLAGS, "-o", str(partial), str(SOURCE)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        first = next((line for line in result.stderr.splitlines() if "error" in line), result.stderr.strip()[:200])
        raise UsageError(f"the QEMU recorder plugin does not build with {compiler}: {first}")
    partial.replace(path)
    return path


def check_plugin_support(qemu: str) -> None:
    """QEMU new enough for the plugin, and built with plugin support, or one UsageError line."""
    version = subprocess.run([qemu, "--version"], capture_output=True, text=True, check=False).stdout
    found = re.search(r"version (\d+)\.(\d+)", version)
    if found is None or tuple(map(int, found.groups())) < MIN_QEMU:
        shown = ".".join(found.groups()) if found else "of unknown version"
        raise UsageError(
            f"--backend qemu-plugin needs QEMU >= {MIN_QEMU[0]}.{MIN_QEMU[1]} (found {shown}): "
            "run make setup, or use --backend gdb"
        )
    help_text = subprocess.run([qemu, "-help"], capture_output=True, text=True, check=False).stdout
    if "-plugin" not in help_text:
        raise UsageError(f"{qemu} is built without TCG plugin support: use --backend gdb")


def main() -> int:
    try:
        print(built_plugin())
    except UsageError as exc:
        print(f"irqmon: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
