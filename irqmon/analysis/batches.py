"""Out-of-core analysis: a trace judged batch by batch in bounded memory.

A first pass learns the few facts of the whole trace a batch's judgement needs
(`irqmon.analysis.facts`); the second builds each batch's context on what the batches before it
left (`Before`: counts, and the rows a rule still needs, such as an activation's last call), runs
every rule's stream on it, and merges each site's hits as they come (`SiteGroups`). Memory
follows the batch size, the number of sites and what is still open, never the trace's length.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa

from irqmon import schema
from irqmon.analysis.context import WORKING_COLUMNS, AnalysisConfig, Before, Context
from irqmon.analysis.facts import FACT_COLUMNS, TraceFacts, facts_of
from irqmon.analysis.findings import Finding
from irqmon.analysis.registry import LoadedRule
from irqmon.tracefile import Trace


def streamable(rules: dict[str, LoadedRule], selected: Sequence[str]) -> bool:
    """Whether every selected rule can judge a trace in batches."""
    return all(rules[rule_id].stream is not None for rule_id in selected)


def findings_in_batches(
    batches: Callable[[], Iterable[pa.Table]], metadata: dict[str, str], config: AnalysisConfig,
    rules: dict[str, LoadedRule], selected: Sequence[str], fact_batches: Iterable[pa.Table] | None = None,
) -> tuple[list[Finding], TraceFacts]:  # fmt: skip
    """The findings of the `selected` rules (each with a stream) over the trace `batches()` reads,
    unsorted; and the trace's facts, learned first from `fact_batches` (the trace's
    `FACT_COLUMNS` at least), else from `batches()`."""
    facts = facts_of(table.select(FACT_COLUMNS) for table, _ in read_ahead(batches() if fact_batches is None else fact_batches))
    streams = [rules[rule_id].stream() for rule_id in selected]  # type: ignore[misc]
    before = Before(facts)
    for table, is_last in read_ahead(batches()):
        ctx = Context([table], metadata, config, before, is_last)
        del table
        ctx.rules = frozenset(selected)
        carry = [np.zeros(0, dtype=np.int64)]
        for stream in streams:
            stream.add(ctx)
            carry.append(stream.carry(ctx))
        before = ctx.leaving(np.unique(np.concatenate(carry)))
        del ctx
        if _resident_bytes() > HAND_BACK_ABOVE:
            pa.default_memory_pool().release_unused()
    return [finding for stream in streams for finding in stream.findings()], facts


HAND_BACK_ABOVE = 5 << 28
"""Resident bytes (1.25 GiB) past which the memory a batch freed is handed back to the system
before the next batch is built. Below, the allocator keeps it for the next batch: handing it
back every batch costs a page fault per page reused (at 10M rows about 1M faults, 1 s)."""


def _resident_bytes() -> int:
    """This process's resident memory (Linux); elsewhere unknown, taken as past any limit."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return sys.maxsize


def read_ahead(tables: Iterable[pa.Table]) -> Iterator[tuple[pa.Table, Callable[[], bool]]]:
    """`tables` in order, each next one read in a thread while the caller works on the one
    before (Arrow reads and converts without holding the GIL); with each, a call that says
    whether it is the last (waiting for the next read when it is not done yet)."""
    remaining = iter(tables)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="irqmon-read") as reader:
        following = reader.submit(next, remaining, None)
        while (table := following.result()) is not None:
            following = reader.submit(next, remaining, None)
            yield table, partial(_none_read, following)
            del table


def _none_read(read: Future[pa.Table | None]) -> bool:
    return read.result() is None


_ONLY_CHECKED = [c for c, dtype in schema.COLUMNS.items() if c not in {*WORKING_COLUMNS, *FACT_COLUMNS} and dtype != "string"]
"""Number columns (pc, lr, cycles) no pass needs: read by the first, only so that a bad cell in
them is still a bad trace. The string columns no pass needs are not read at all (a CSV cell
cannot be a bad string)."""


def analyze_file(
    path: Path | str, config: AnalysisConfig, rules: Sequence[str] | None, elf_of: Callable[[dict[str, str]], Path | None],
    batch_rows: int | None = None,
) -> tuple[Trace, list[Finding], TraceFacts]:  # fmt: skip
    """The trace file at `path` read and judged batch by batch (every one of `rules` streams),
    with source lines from the ELF `elf_of` names for its metadata: the trace (its path,
    metadata and row count; no rows), its findings, in order, and its facts (for another pass
    over it, such as the report's)."""
    from irqmon.analysis import analyze_in_batches
    from irqmon.elf_sources import batches_with_elf_sources
    from irqmon.tracefile import BATCH_ROWS, KeptRows, proven_in_range, read_batches, scratch_folder

    rows = batch_rows or BATCH_ROWS
    batches = read_batches(path, rows)
    elf = elf_of(batches.metadata)
    proven = proven_in_range(path, _ONLY_CHECKED)  # a Parquet file's statistics can spare reading them
    first_pass = [*FACT_COLUMNS, *(c for c in _ONLY_CHECKED if c not in proven)]

    def analyzed(tables: Callable[[], Iterable[pa.Table]], facts: Iterable[pa.Table]) -> tuple[Trace, list[Finding], TraceFacts]:
        findings, learned = analyze_in_batches(tables, batches.metadata, config, rules, facts)
        return Trace.read_in_batches(batches.path, batches.metadata, learned.rows), findings, learned

    if elf:  # the line lookup reads pc and lr
        return analyzed(batches_with_elf_sources(batches, elf), read_batches(path, rows, first_pass).as_read())
    if not batches.parsed:  # only the columns a batch's context holds: the others are neither decoded nor held
        return analyzed(partial(iter, read_batches(path, rows, WORKING_COLUMNS)), read_batches(path, rows, first_pass).as_read())
    with scratch_folder() as folder:  # a CSV is parsed once: the first pass keeps what the second reads
        kept = KeptRows(folder / "rows.arrows", WORKING_COLUMNS, rows)
        parsed = (table for table, _ in read_ahead(read_batches(path, rows, [*first_pass, *WORKING_COLUMNS]).as_read()))
        return analyzed(partial(iter, kept), kept.writing(parsed))  # parsed in one thread, written in another
