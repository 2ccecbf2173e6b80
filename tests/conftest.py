from __future__ import annotations

import pytest

from support import build_samples


@pytest.fixture(scope="session")
def built_samples() -> None:
    """Build every sample for QEMU's board once per test session."""
    result = build_samples()
    assert result.returncode == 0, result.stdout + result.stderr
