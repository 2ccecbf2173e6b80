"""`--gdb-remote` to a port that is not a GDB server: one line, status 2, nothing left running."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from support import irqmon, sample_elf


@pytest.fixture
def silent_listener() -> Iterator[str]:
    """A TCP listener on 127.0.0.1 that takes connections and reads, and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    connections: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            connections.append(connection)

    threading.Thread(target=accept, daemon=True).start()
    yield f"127.0.0.1:{server.getsockname()[1]}"
    server.close()
    for connection in connections:
        connection.close()


@pytest.mark.parametrize("backend", ["gdb", "rsp"])
def test_a_listener_that_is_no_gdb_server_is_bad_input(built_samples, tmp_path, silent_listener, backend):
    result = irqmon("attach", "--target", "stm32f405", "--backend", backend, "--gdb-remote", silent_listener,
                    "--elf", str(sample_elf("clean")), "--probes", "newlib_heap", "-o", str(tmp_path / "t.csv"),
                    timeout=60)  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and silent_listener in result.stderr and "Traceback" not in result.stderr
