"""The analysis context: rules see the halting rows; IRQ rows only through the timeline arrays."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from test_loader import mixed_rows
from tracebuild import load

from irqmon.analysis import AnalysisConfig
from irqmon.analysis.context import ACT, Context
from irqmon.tracefile import STRING_CODES


def test_loaded_trace_keeps_its_arrow_table_and_builds_the_frame_on_use(tmp_path):
    trace = load(tmp_path, mixed_rows())
    assert trace.table.schema.field("event").type == STRING_CODES
    assert trace.rows == trace.table.num_rows
    assert isinstance(trace.frame["event"].dtype, pd.StringDtype)
    assert trace.rows == len(trace.frame)


def test_context_from_the_table_or_the_frame_is_the_same(tmp_path):
    trace = load(tmp_path, mixed_rows())
    from_table = Context(trace.table, trace.metadata, AnalysisConfig())
    from_frame = Context(trace.frame, trace.metadata, AnalysisConfig())
    pd.testing.assert_frame_equal(from_table.halting, from_frame.halting)
    pd.testing.assert_frame_equal(from_table.frame, from_frame.frame)
    pd.testing.assert_frame_equal(from_table.activations, from_frame.activations)
    pd.testing.assert_series_equal(from_table.exception_names, from_frame.exception_names)


def test_halting_rows_leave_out_irq_rows_and_keep_their_positions(tmp_path):
    trace = load(tmp_path, mixed_rows())
    ctx = Context(trace.table, trace.metadata, AnalysisConfig())
    events = trace.frame["event"]
    irq = events.isin(["irq_enter", "irq_exit"]).to_numpy()
    assert irq.any() and not ctx.halting["event"].isin(["irq_enter", "irq_exit"]).any()
    assert list(ctx.halting.index) == list(np.flatnonzero(~irq))
    pd.testing.assert_frame_equal(ctx.halting, ctx.frame[~irq])
    assert ctx.timeline.act.tolist() == ctx.frame[ACT].tolist()
    first_irq = int(np.flatnonzero(irq)[0])
    assert ctx.rows_at(np.array([first_irq])).index.tolist() == [first_irq]


def test_activation_flags_for_rows_of_no_activation(tmp_path):
    trace = load(tmp_path, mixed_rows())
    ctx = Context(trace.table, trace.metadata, AnalysisConfig())
    acts = pd.Series(np.r_[ctx.activations.index.to_numpy(), -5], index=range(len(ctx.activations) + 1))
    closed = ctx.is_closed(acts)
    assert closed.iloc[:-1].tolist() == ctx.activations["closed"].tolist() and not closed.iloc[-1]


def test_empty_trace(tmp_path):
    trace = load(tmp_path, [])
    ctx = Context(trace.table, trace.metadata, AnalysisConfig())
    assert ctx.halting.empty and ctx.activations.empty
    assert ctx.is_closed(pd.Series([], dtype=np.int64)).empty
    assert pa.types.is_dictionary(trace.table.schema.field("kind").type)
