"""Fixtures for the pyOCD backend tests: test firmware, QEMU, a pyOCD session through the bridge."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pyocd.core.session import Session

from bridge_support import HERE, build_firmware, open_session, symbols
from irqmon.backends.qemu import QemuTarget


@pytest.fixture(scope="session")
def tim2_elf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_firmware(HERE / "firmware" / "tim2_counter.c", tmp_path_factory.mktemp("firmware"))


@pytest.fixture(scope="session")
def tim2_symbols(tim2_elf: Path) -> dict[str, int]:
    return symbols(tim2_elf)


@pytest.fixture
def qemu(tim2_elf: Path) -> Iterator[QemuTarget]:
    with QemuTarget(tim2_elf) as target:
        yield target


@pytest.fixture
def session(qemu: QemuTarget) -> Iterator[Session]:
    session = open_session(qemu)
    yield session
    session.close()
