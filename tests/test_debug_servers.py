"""The names irqmon gives debug servers, checked against the servers installed here: pyOCD's
target types (`pyocd list --targets`), OpenOCD's config scripts (found by OpenOCD itself), and the
commands docs/attach-to-a-board.md tells users to run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from support import ROOT, build_samples, sample_elf

from irqmon.backends.pyocd import PyOcdBackend
from irqmon.backends.qemu import QemuTarget
from irqmon.cortexm.elf import ElfImage
from irqmon.errors import UsageError
from irqmon.targets import available_targets, load_target

PYOCD = Path(sys.executable).with_name("pyocd")
DOC = ROOT / "docs" / "attach-to-a-board.md"
PROFILES = [load_target(name) for name in available_targets()]


@pytest.fixture(scope="module")
def pyocd_targets() -> dict[str, str]:
    """Target type -> where pyOCD has it from (`builtin`, or `pack` once its pack is installed)."""
    listing = subprocess.run([PYOCD, "list", "--targets"], capture_output=True, text=True, timeout=120, check=True)
    rows = (line.split() for line in listing.stdout.splitlines())
    return {fields[0]: fields[-1] for fields in rows if len(fields) >= 3 and fields[-1] in ("builtin", "pack")}


def openocd_finds(script: str) -> bool:
    """Whether the installed OpenOCD finds `script` on its search path (no adapter, no server)."""
    result = subprocess.run(
        ["openocd", "-c", "gdb_port disabled", "-c", "telnet_port disabled", "-c", "tcl_port disabled",
         "-c", f"puts [find {script}]", "-c", "shutdown"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    return result.returncode == 0 and result.stdout.strip().endswith(script)


def doc_commands() -> list[str]:
    """The shell lines of the document's code blocks, continuation lines joined."""
    blocks = re.findall(r"```sh\n(.*?)```", DOC.read_text(), re.S)
    return [line for block in blocks for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def test_pyocd_lists_targets(pyocd_targets):
    assert pyocd_targets.get("cortex_m") == "builtin" and len(pyocd_targets) > 50


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_profile_names_a_target_type_pyocd_resolves(profile, pyocd_targets):
    """Built into pyOCD (no pack then), or from a pack whose install pattern selects that part."""
    assert profile.pyocd_target, f"{profile.name} names no pyOCD target type"
    if pyocd_targets.get(profile.pyocd_target) == "builtin":
        assert profile.pyocd_pack is None, "a built-in target type needs no pack"
    else:
        assert profile.pyocd_pack and profile.pyocd_pack in profile.pyocd_target, (
            f"{profile.pyocd_target} is not built into pyOCD: the profile must name its pack"
        )


@pytest.mark.parametrize("profile", [p for p in PROFILES if p.pyocd_pack], ids=lambda p: p.name)
def test_missing_pack_names_the_install_command(profile, built_samples, monkeypatch, tmp_path):
    """With no pack installed (an empty pack cache), pyOCD's own lookup of the target type fails
    and irqmon says which command installs it. The probe is real: the QEMU bridge."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    elf = sample_elf("clean")
    with QemuTarget(elf) as qemu:
        backend = PyOcdBackend(ElfImage(elf), f"qemu:{qemu.gdb_address}", profile.pyocd_target, pack=profile.pyocd_pack)
        with pytest.raises(UsageError) as error:
            backend.connect()
    assert f"run `pyocd pack install {profile.pyocd_pack}`" in str(error.value)


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_profile_names_an_openocd_config_openocd_has(profile):
    assert profile.openocd_config and openocd_finds(profile.openocd_config)


def test_openocd_finds_what_it_would_not_find():
    assert not openocd_finds("target/stm32f9x-no-such-chip.cfg")


def test_the_documents_commands_name_what_exists(pyocd_targets):
    commands = doc_commands()
    configs = [c for line in commands if line.startswith("openocd ") for c in re.findall(r"-f (\S+)", line)]
    pyocd_types = [t for line in commands if line.startswith("pyocd ") for t in re.findall(r"--target (\S+)", line)]
    packs = [p for line in commands for p in re.findall(r"^pyocd pack install (\S+)", line)]
    profiles = [t for line in commands if line.startswith("irqmon ") for t in re.findall(r"--target (\S+)", line)]
    elves = [e for line in commands if line.startswith("irqmon ") for e in re.findall(r"--elf (\S+)", line)]
    assert configs and pyocd_types and packs and profiles and elves
    assert all(openocd_finds(config) for config in configs), configs
    by_type = {p.pyocd_target: p for p in PROFILES}
    assert all(t in by_type and (pyocd_targets.get(t) == "builtin" or by_type[t].pyocd_pack in packs) for t in pyocd_types)
    assert set(profiles) <= set(available_targets())
    assert build_samples("nucleo_f746zg").returncode == 0
    board_build = ROOT / "firmware_samples" / "build" / "nucleo_f746zg"
    assert all((board_build / Path(e).name).is_file() for e in elves), "make firmware builds them for the Nucleo"
