"""Source lines from the firmware image: the call site for `call` rows, the pc for the others.

A `call` row halts on the callee's first instruction, so its own pc points into the callee
(often a library without line info); the line a developer must change is the caller's, the
instruction before the return address in `lr`. The line lookup is passed in, so the analysis
does not depend on how the ELF is read.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from irqmon.schema import Event

THUMB_BIT = 1
EXC_RETURN_MIN = 0xF0000000  # lr values at or above this are exception returns, not call sites


def resolve_sources(frame: pd.DataFrame, line_of: Callable[[int], str | None]) -> pd.DataFrame:
    """A copy of `frame` whose `source` is the ELF's line of each row's site, where it has one."""
    is_call = (frame["event"] == Event.CALL.value).fillna(False).to_numpy(dtype=bool)
    lr = frame["lr"]
    call_site = ((lr.fillna(0) & ~THUMB_BIT) - 2).where(lr.notna() & (lr < EXC_RETURN_MIN) & (lr > 2))
    address = pd.Series(np.where(is_call, call_site.astype("Float64"), frame["pc"].astype("Float64")), index=frame.index)
    address = address.astype("Float64").astype("Int64")
    unique = address.dropna().unique()
    lines = pd.Series({int(a): line_of(int(a)) for a in unique}, dtype="string")
    resolved = address.map(lines).astype("string")
    out = frame.copy(deep=False)
    out["source"] = resolved.fillna(frame["source"])
    return out
