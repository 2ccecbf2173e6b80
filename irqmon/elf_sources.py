"""A trace's source lines from the firmware image it was captured from: the `--elf` given, or
the ELF its metadata records when that is still there with the same build id."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from irqmon import schema
from irqmon.errors import UsageError

if TYPE_CHECKING:
    import pyarrow as pa

    from irqmon.cortexm.elf import ElfImage
    from irqmon.tracefile import Trace, TraceBatches


def with_elf_sources(trace: Trace, elf: Path) -> Trace:
    """`trace` with each row's source line from `elf`; refused when `elf` is another build."""
    from irqmon.analysis.sources import resolve_sources
    from irqmon.tracefile import Trace

    image = _same_build(elf, trace.metadata)
    try:
        return Trace(resolve_sources(trace.frame, image.source_line), trace.metadata, trace.path)
    finally:
        image.close()


def batches_with_elf_sources(batches: TraceBatches, elf: Path) -> Callable[[], Iterator[pa.Table]]:
    """The trace's batches (read anew on each call) with each row's source line from `elf`;
    refused, here, when `elf` is another build."""
    import pyarrow as pa

    from irqmon.analysis.sources import resolve_sources
    from irqmon.tracefile import Trace

    _same_build(elf, batches.metadata).close()

    def tables() -> Iterator[pa.Table]:
        image = _same_build(elf, batches.metadata)
        line_of = functools.cache(image.source_line)  # each batch looks up mostly the same addresses
        try:
            for table in batches:
                frame = resolve_sources(Trace(table, batches.metadata, batches.path).frame, line_of)
                yield pa.Table.from_pandas(frame, preserve_index=False)
        finally:
            image.close()

    return tables


def _same_build(elf: Path, metadata: Mapping[str, str]) -> ElfImage:
    """`elf` opened, when it is the build the trace's metadata names (or it names none)."""
    from irqmon.cortexm.elf import ElfImage

    image = ElfImage(elf)
    recorded = metadata.get(schema.META_BUILD_ID)
    if recorded and image.build_id and image.build_id != recorded:
        image.close()
        raise UsageError(
            f"{elf} (build id {image.build_id[:12]}) is not the firmware this trace was captured from "
            f"(build id {recorded[:12]}): its source lines would be wrong"
        )
    return image


def recorded_elf(metadata: Mapping[str, str]) -> Path | None:
    """The capture's ELF (trace metadata `elf`) when it is still there with the same build id."""
    from irqmon.cortexm.elf import ElfImage

    path = metadata.get(schema.META_ELF)
    build_id = metadata.get(schema.META_BUILD_ID)
    if not path or not build_id or not Path(path).is_file() or Path(path).stat().st_size == 0:
        return None  # gone, or not a file with contents (a /proc or /sys entry)
    try:
        image = ElfImage(path)
    except UsageError:
        return None
    try:
        return Path(path) if image.build_id == build_id else None
    finally:
        image.close()
