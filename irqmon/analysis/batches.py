"""Out-of-core analysis: a trace judged batch by batch in bounded memory.

A first pass learns the few facts of the whole trace a batch's judgement needs
(`irqmon.analysis.facts`); the second builds each batch's context on what the batches before it
left (`Before`: counts, and the rows a rule still needs, such as an activation's last call), runs
every rule's stream on it, and merges each site's hits as they come (`SiteGroups`). Memory
follows the batch size, the number of sites and what is still open, never the trace's length.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import pyarrow as pa

from irqmon.analysis.context import AnalysisConfig, Before, Context
from irqmon.analysis.facts import FACT_COLUMNS, TraceFacts, facts_of
from irqmon.analysis.findings import Finding
from irqmon.analysis.registry import LoadedRule


def streamable(rules: dict[str, LoadedRule], selected: Sequence[str]) -> bool:
    """Whether every selected rule can judge a trace in batches."""
    return all(rules[rule_id].stream is not None for rule_id in selected)


def findings_in_batches(
    batches: Callable[[], Iterable[pa.Table]], metadata: dict[str, str], config: AnalysisConfig,
    rules: dict[str, LoadedRule], selected: Sequence[str],
) -> tuple[list[Finding], TraceFacts]:  # fmt: skip
    """The findings of the `selected` rules (each with a stream) over the trace `batches()` reads
    (called twice: the facts pass, then the rules' pass), unsorted; and the trace's facts."""
    facts = facts_of(table.select(FACT_COLUMNS) for table in batches())
    streams = [rules[rule_id].stream() for rule_id in selected]  # type: ignore[misc]
    before = Before(facts)
    for table in batches():
        ctx = Context([table], metadata, config, before)
        del table
        ctx.rules = frozenset(selected)
        carry = [np.zeros(0, dtype=np.int64)]
        for stream in streams:
            stream.add(ctx)
            carry.append(stream.carry(ctx))
        before = ctx.leaving(np.unique(np.concatenate(carry)))
    return [finding for stream in streams for finding in stream.findings()], facts
