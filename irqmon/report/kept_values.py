"""Exact medians and quantiles of more values than memory should hold.

The report of a trace read in batches (`irqmon.report.streamed`) takes, per exception, the
median and p99 of every activation's execution time and of every period between entries: exact
order statistics of values whose number grows with the trace. `KeptValues` holds each series'
values (float64) in memory up to a bound in all; past it, it appends them to one file per series
in a temporary folder. A series in a file is read back in chunks: its order statistics by
counting its values per bin over their range, then gathering the values of the bin that holds a
wanted rank and selecting among them (a bin with too many, such as one of heavy ties, is split
into bins in turn). Memory then follows the chunk size, not the number of values, and the
results are numpy's (`np.median`, `np.quantile` with its default linear interpolation) exactly.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from irqmon.children import make_workdir

HELD_VALUES = 1 << 22  # values held in memory in all (32 MiB) before they go to files
CHUNK_VALUES = 1 << 20  # values read back from a file at a time (8 MiB)
GATHERED_VALUES = 1 << 20  # the most values gathered to select among at once
BINS = 4096  # the bins a range of values is counted in

Chunks = Callable[[], Iterator[np.ndarray]]


def order_statistics(
    chunks: Chunks, ranks: list[int], count: int, low: float, high: float, gathered: int = GATHERED_VALUES, bins: int = BINS
) -> dict[int, float]:  # fmt: skip
    """The values at `ranks` (0-based, in ascending order) among the `count` values between `low`
    and `high` (both included; the least and the greatest of them) in the chunks `chunks()`
    gives, which may hold other values too. Holds one chunk at a time, and gathers at most
    `gathered` values for each rank."""
    wanted = sorted(set(ranks))
    if low == high:
        return dict.fromkeys(wanted, low)
    if count <= gathered:
        values = np.concatenate([np.zeros(0), *(_between(chunk, low, high) for chunk in chunks())])
        values.partition(wanted)
        return {rank: float(values[rank]) for rank in wanted}
    per_bin = np.zeros(bins, dtype=np.int64)
    for _, at in _binned(chunks, low, high, bins):
        per_bin += np.bincount(at, minlength=bins)
    ends = np.cumsum(per_bin)  # the rank just after each bin's last value
    ranks_in: dict[int, list[int]] = {}
    for rank in wanted:
        ranks_in.setdefault(int(np.searchsorted(ends, rank, side="right")), []).append(rank)
    firsts = {where: int(ends[where] - per_bin[where]) for where in ranks_in}
    small = [where for where in ranks_in if per_bin[where] <= gathered]
    large = [where for where in ranks_in if per_bin[where] > gathered]
    found: dict[int, float] = {}
    if small:
        for where, values in _gathered(chunks, small, low, high, bins).items():
            inner = [rank - firsts[where] for rank in ranks_in[where]]
            values.partition(inner)
            found.update({rank + firsts[where]: float(values[rank]) for rank in inner})
    if large:  # each bin's range narrowed to its values': its least and greatest fall in different bins
        for where, (least, greatest) in _extremes(chunks, large, low, high, bins).items():
            inner = order_statistics(chunks, [rank - firsts[where] for rank in ranks_in[where]], int(per_bin[where]), least, greatest,
                                     gathered, bins)  # fmt: skip
            found.update({rank + firsts[where]: value for rank, value in inner.items()})
    return found


def _bins_of(values: np.ndarray, low: float, high: float, bins: int) -> np.ndarray:
    """The bin of each of `values` (between `low` and `high`, low < high) among `bins` equal
    parts of that range. Every step is monotone, so each bin holds the values of an interval;
    `low` falls in the first bin and `high` in the last."""
    scaled = values - low
    scaled /= high - low
    scaled *= bins
    np.floor(scaled, out=scaled)
    np.minimum(scaled, bins - 1, out=scaled)
    return scaled.astype(np.intp)


def _binned(chunks: Chunks, low: float, high: float, bins: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Chunk by chunk, its values between `low` and `high` and the bin of each."""
    for chunk in chunks():
        inside = _between(chunk, low, high)
        yield inside, _bins_of(inside, low, high, bins)


def _between(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Those of `values` between `low` and `high` (both included)."""
    if len(values) and low <= values.min() and values.max() <= high:
        return values
    return values[(values >= low) & (values <= high)]


def _gathered(chunks: Chunks, wanted: list[int], low: float, high: float, bins: int) -> dict[int, np.ndarray]:
    """The values in each of the `wanted` bins."""
    parts: dict[int, list[np.ndarray]] = {where: [] for where in wanted}
    for inside, at in _binned(chunks, low, high, bins):
        for where in wanted:
            parts[where].append(inside[at == where])
    return {where: np.concatenate(mine) for where, mine in parts.items()}


def _extremes(chunks: Chunks, wanted: list[int], low: float, high: float, bins: int) -> dict[int, tuple[float, float]]:
    """The least and greatest value in each of the `wanted` bins (none empty)."""
    least = dict.fromkeys(wanted, math.inf)
    greatest = dict.fromkeys(wanted, -math.inf)
    for inside, at in _binned(chunks, low, high, bins):
        for where in wanted:
            mine = inside[at == where]
            if len(mine):
                least[where], greatest[where] = min(least[where], float(mine.min())), max(greatest[where], float(mine.max()))
    return {where: (least[where], greatest[where]) for where in wanted}


def median_ranks(count: int) -> list[int]:
    """The ranks `np.median` takes of `count` values (at least one)."""
    return [(count - 1) // 2] if count % 2 else [count // 2 - 1, count // 2]


def median_from(at: dict[int, float], count: int) -> float:
    """`np.median` of `count` values, from those at its `median_ranks`."""
    ranks = median_ranks(count)
    return at[ranks[0]] if len(ranks) == 1 else (at[ranks[0]] + at[ranks[1]]) / 2


def quantile_ranks(count: int, q: float) -> list[int]:
    """The ranks `np.quantile(values, q)` (linear) interpolates between, of `count` values."""
    index = (count - 1) * q
    if index >= count - 1:
        return [count - 1]
    return [math.floor(index), math.floor(index) + 1]


def quantile_from(at: dict[int, float], count: int, q: float) -> float:
    """`np.quantile` (linear) of `count` values, from those at its `quantile_ranks`, with numpy's
    arithmetic."""
    ranks = quantile_ranks(count, q)
    if len(ranks) == 1:
        return at[ranks[0]]
    below, above = at[ranks[0]], at[ranks[1]]
    weight = (count - 1) * q - ranks[0]
    step = above - below
    return above - step * (1 - weight) if weight >= 0.5 else below + step * weight


@dataclass(frozen=True)
class Series:
    """One series of kept values: in memory (`values`) or in a file (`path`, read in chunks)."""

    count: int
    minimum: float
    maximum: float
    values: np.ndarray | None
    path: Path | None
    chunk: int = CHUNK_VALUES
    gathered: int = GATHERED_VALUES
    bins: int = BINS

    def chunks(self) -> Iterator[np.ndarray]:
        if self.values is not None:
            yield self.values
            return
        assert self.path is not None
        with self.path.open("rb") as file:
            while len(chunk := np.fromfile(file, dtype=np.float64, count=self.chunk)):
                yield chunk

    def median_and_quantile(self, q: float) -> tuple[float, float]:
        """`np.median` and `np.quantile(…, q)` of the values (at least one)."""
        if self.values is not None:
            return float(np.median(self.values)), float(np.quantile(self.values, q))
        at = self._at(median_ranks(self.count) + quantile_ranks(self.count, q))
        return median_from(at, self.count), quantile_from(at, self.count, q)

    def median(self) -> float:
        """`np.median` of the values (at least one)."""
        if self.values is not None:
            return float(np.median(self.values))
        return median_from(self._at(median_ranks(self.count)), self.count)

    def std(self) -> float:
        """The standard deviation (`np.std`: of the whole population); from a file, its sums
        are taken chunk by chunk (equal to numpy's to rounding)."""
        if self.values is not None:
            return float(np.std(self.values))
        mean = math.fsum(float(chunk.sum()) for chunk in self.chunks()) / self.count
        return math.sqrt(math.fsum(float(np.square(chunk - mean).sum()) for chunk in self.chunks()) / self.count)

    def _at(self, ranks: list[int]) -> dict[int, float]:
        return order_statistics(self.chunks, ranks, self.count, self.minimum, self.maximum, self.gathered, self.bins)


class KeptValues:
    """Float64 values of several series (by key), in memory up to `HELD_VALUES` in all; past
    that, each series' values held so far are appended to its file in a temporary folder (made
    then, in the system's temporary directory; `close` removes it, as does leaving a `with` block,
    also on an error or Ctrl-C). Its series are read back `CHUNK_VALUES` at a time."""

    def __init__(self) -> None:
        self.most_held, self.chunk, self.gathered, self.bins = HELD_VALUES, CHUNK_VALUES, GATHERED_VALUES, BINS
        self._held: dict[Hashable, list[np.ndarray]] = {}
        self._held_count = 0
        self._count: dict[Hashable, int] = {}
        self._least: dict[Hashable, float] = {}
        self._greatest: dict[Hashable, float] = {}
        self._folder: Path | None = None
        self._files: dict[Hashable, Path] = {}

    def __enter__(self) -> KeptValues:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def add(self, key: Hashable, values: np.ndarray) -> None:
        """Keep `values` (finite) in the series `key`."""
        self._count[key] = self._count.get(key, 0) + len(values)
        self._held.setdefault(key, [])
        if not len(values):
            return
        self._least[key] = min(self._least.get(key, math.inf), float(values.min()))
        self._greatest[key] = max(self._greatest.get(key, -math.inf), float(values.max()))
        self._held[key].append(np.asarray(values, dtype=np.float64))
        self._held_count += len(values)
        if self._held_count > self.most_held:
            for held_key in list(self._held):
                self._write(held_key)

    def count(self, key: Hashable) -> int:
        """How many values the series `key` has (0 for one never added to)."""
        return self._count.get(key, 0)

    def series(self, key: Hashable) -> Series:
        """The series `key` (with at least one value)."""
        if key in self._files:
            self._write(key)
            values = None
        else:
            values = np.concatenate(self._held[key])
        return Series(self._count[key], self._least[key], self._greatest[key], values, self._files.get(key), self.chunk, self.gathered,
                      self.bins)  # fmt: skip

    def close(self) -> None:
        """Drop every value, the temporary folder with them."""
        self._held.clear()
        self._files.clear()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def _write(self, key: Hashable) -> None:
        """Append the values held of the series `key` to its file."""
        held = self._held.get(key, [])
        if not held:
            return
        if self._folder is None:
            self._folder = make_workdir()  # named for this process: removed by the next irqmon if killed
        path = self._files.setdefault(key, self._folder / f"series-{len(self._files)}.f64")
        with path.open("ab") as file:
            for values in held:
                values.tofile(file)
        self._held_count -= sum(len(values) for values in held)
        self._held[key] = []
