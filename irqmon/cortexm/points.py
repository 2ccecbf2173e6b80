"""Breakpoint and watchpoint bookkeeping: the comparators a core has, and the ids a backend
gives the points it sets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

Point = TypeVar("Point")


@dataclass(frozen=True)
class Comparators:
    """How many hardware breakpoint (FPB) and watchpoint (DWT) comparators a core has."""

    breakpoints: int
    watchpoints: int


class PointTable(dict[int, Point]):
    """A backend's points by id. Ids count from 1 (the capture takes 0 as no point) and are
    never given twice, so a stale id never names a newer point."""

    def __init__(self) -> None:
        super().__init__()
        self._last_id = 0

    def add(self, point: Point) -> int:
        self._last_id += 1
        self[self._last_id] = point
        return self._last_id
