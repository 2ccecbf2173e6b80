"""One trace's analysis as a task: a path and options in, plain picklable values out (findings
and metadata, no DataFrame), so that it runs in-process or on a Dask worker alike."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from irqmon import schema
from irqmon.analysis.findings import Finding
from irqmon.errors import UsageError

if TYPE_CHECKING:
    from irqmon.analysis import AnalysisConfig

SEEN_FROM_CAPTURE = "capture start"  # the trace's `start_time` metadata
SEEN_FROM_FILE = "file modified"  # the file's mtime, for a trace without a usable start time


@dataclass(frozen=True)
class TraceOptions:
    """What decides a trace's findings: `irqmon analyze`'s analysis options, resolved once."""

    rules: list[str] | None = None
    config: AnalysisConfig | None = None
    elf: str | None = None  # used for the traces recorded from this build (elf_build_id)
    elf_build_id: str | None = None
    use_recorded_elf: bool = True


@dataclass(frozen=True)
class TraceResult:
    """A trace's findings and metadata, or the one-line error that stopped its analysis."""

    path: str
    seen_at: str  # ISO 8601: when the capture started, else when the file was last written
    seen_from: str  # SEEN_FROM_CAPTURE or SEEN_FROM_FILE
    rows: int = 0
    metadata: dict[str, str] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    error: str | None = None

    @property
    def build_id(self) -> str | None:
        return self.metadata.get(schema.META_BUILD_ID) or None

    @property
    def seen_time(self) -> datetime:
        return datetime.fromisoformat(self.seen_at)


def analyze_trace_file(path: str, options: TraceOptions) -> TraceResult:
    """Analyse one trace; a bad trace gives a result with its error instead of raising."""
    from irqmon.analysis import analyze, streams
    from irqmon.analysis.batches import analyze_file
    from irqmon.elf_sources import with_elf_sources
    from irqmon.tracefile import load_trace, use_system_memory_pool

    use_system_memory_pool()
    metadata: dict[str, str] = {}
    try:
        if streams(options.rules):  # in memory that follows the batch size, not the trace's length
            trace, findings, _ = analyze_file(path, options.config, options.rules, lambda m: source_elf(dict(m), options))
            metadata = dict(trace.metadata)
        else:
            trace = load_trace(path)
            metadata = dict(trace.metadata)
            elf = source_elf(metadata, options)
            if elf:
                trace = with_elf_sources(trace, elf)
            findings = analyze(trace, options.config, options.rules, release=True)
    except UsageError as exc:
        return _failed(path, metadata, str(exc))
    except Exception as exc:  # a bug on one trace must not lose the others' results
        return _failed(path, metadata, f"internal error: {type(exc).__name__}: {exc}")
    seen_at, seen_from = seen(path, metadata)
    return TraceResult(path, seen_at, seen_from, trace.rows, metadata, findings)


def source_elf(metadata: dict[str, str], options: TraceOptions) -> Path | None:
    """The ELF of a trace's source lines: `--elf` for the traces of its build, else the trace's
    recorded ELF (unless `--no-elf`)."""
    from irqmon.elf_sources import recorded_elf

    if options.elf and _same_build(metadata, options.elf_build_id):
        return Path(options.elf)
    return recorded_elf(metadata) if options.use_recorded_elf else None


def failed_result(path: str, error: str) -> TraceResult:
    """The result of a trace whose task did not return (a worker lost, a scheduler gone)."""
    return _failed(path, {}, error)


def _failed(path: str, metadata: dict[str, str], error: str) -> TraceResult:
    seen_at, seen_from = seen(path, metadata)
    named = error if error.startswith(f"{path}:") else f"{path}: {error}"
    return TraceResult(path, seen_at, seen_from, metadata=metadata, error=named.splitlines()[0])


def _same_build(metadata: dict[str, str], build_id: str | None) -> bool:
    recorded = metadata.get(schema.META_BUILD_ID)
    return not recorded or not build_id or recorded == build_id


def seen(path: str, metadata: dict[str, str]) -> tuple[str, str]:
    """When the trace was taken: its capture's start time, else the file's mtime (UTC)."""
    start = metadata.get(schema.META_START_TIME)
    if start:
        try:
            moment = datetime.fromisoformat(start)
        except ValueError:
            pass
        else:
            return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat(), SEEN_FROM_CAPTURE
    try:
        modified = os.stat(path).st_mtime
    except OSError:
        modified = 0.0
    return datetime.fromtimestamp(modified, UTC).isoformat(), SEEN_FROM_FILE
