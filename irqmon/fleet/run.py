"""Running the per-trace tasks: one after the other in this process, or on a Dask cluster
(a local one, or a scheduler's address), each result handed on as it completes."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from irqmon.errors import UsageError
from irqmon.fleet.task import TraceOptions, TraceResult, analyze_trace_file, failed_result

LOCAL_WORKERS = 4  # at most: a local cluster's worker processes
CONNECT_TIMEOUT = "10s"
WORKERS_TIMEOUT = 60  # seconds a scheduler may have no worker before the run gives up
FLEET_EXTRA = "dask[distributed] (pip install 'irqmon[fleet]')"


def analyze_in_process(paths: Sequence[Path], options: TraceOptions) -> Iterator[TraceResult]:
    """Each trace's result, in the order given."""
    for path in paths:
        yield analyze_trace_file(str(path), options)


def analyze_on_dask(paths: Sequence[Path], options: TraceOptions, address: str | None) -> Iterator[TraceResult]:
    """Each trace's result as its task completes: on the scheduler at `address`, or (None) on a
    local cluster of worker processes listening on 127.0.0.1 only, without a dashboard."""
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise UsageError(f"--dask needs {FLEET_EXTRA}") from None
    if address is None:
        workers = max(1, min(LOCAL_WORKERS, os.cpu_count() or 1, len(paths)))
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=None, silence_logs=logging.ERROR,
        )  # fmt: skip
        client = Client(cluster)
    else:
        cluster = None
        try:
            client = Client(address, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as exc:
            raise UsageError(f"--dask {address}: cannot reach the scheduler ({exc})") from None
        try:
            client.wait_for_workers(1, timeout=WORKERS_TIMEOUT)
        except TimeoutError:
            client.close()
            raise UsageError(f"--dask {address}: the scheduler has had no worker for {WORKERS_TIMEOUT} s") from None
    try:
        tasks = {client.submit(analyze_trace_file, str(path), options, pure=False): str(path) for path in paths}
        for task in as_completed(list(tasks)):
            path = tasks.pop(task)  # the cluster lets go of a result once nothing holds its future
            try:
                yield task.result()
            except Exception as exc:  # the worker died or could not run the task
                yield failed_result(path, f"task failed on the cluster: {type(exc).__name__}: {exc}")
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
