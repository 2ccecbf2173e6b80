"""resolve_sources: a call row's line is its call site (lr), other rows keep the line of pc."""

from __future__ import annotations

import pandas as pd
from tracebuild import THREAD, load


def test_call_rows_take_the_call_site_and_others_the_pc(tmp_path):
    from irqmon.analysis.sources import resolve_sources

    rows = [
        {"event": "call", "symbol": "malloc", "pc": 0x8001000, "lr": 0x8000A31, "source": "malloc.c:164", **THREAD},
        {"event": "access", "symbol": "x", "pc": 0x8000B00, "source": "old.c:1", **THREAD},
        {"event": "call", "symbol": "handler", "pc": 0x8002000, "lr": 0xFFFFFFF9, "source": "h.c:3", **THREAD},
        {"event": "irq_enter", "ipsr": 20},
    ]
    lines = {0x8000A2E: "usbd_conf.c:8", 0x8000B00: "main.c:40"}
    frame = resolve_sources(load(tmp_path, rows).frame, lines.get)
    # lr 0x8000A31: Thumb bit off, minus 2 lands inside the bl; an EXC_RETURN lr keeps the pc line.
    assert list(frame["source"].fillna("-")) == ["usbd_conf.c:8", "main.c:40", "h.c:3", "-"]
    assert isinstance(frame["source"].dtype, pd.StringDtype)
