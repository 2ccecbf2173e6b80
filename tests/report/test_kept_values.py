"""The report's kept values (`irqmon.report.kept_values`): past the bound they go to files, and the
medians and quantiles selected from a file in chunks are numpy's, exactly."""

from __future__ import annotations

import tempfile

import numpy as np
import pytest

from irqmon.report import kept_values
from irqmon.report.kept_values import KeptValues, order_statistics
from irqmon.report.model import P99

RNG = np.random.default_rng(16)
SAMPLES = {
    "one value": np.array([4.5e-6]),
    "two values": np.array([3e-6, 1e-6]),
    "three values": np.array([2e-6, 9e-6, 1e-6]),
    "even count": RNG.random(200) * 1e-4,
    "odd count": RNG.random(201) * 1e-4,
    "heavy ties": RNG.integers(0, 4, 501) * 1e-6,
    "all equal": np.full(300, 40e-6),
    "two values, many of each": np.r_[np.full(150, 1.0), np.full(151, np.nextafter(1.0, 2.0))],
    "clustered, one far": np.r_[1.0 + RNG.random(400) * 1e-12, 1e6],
    "negative and positive": RNG.normal(0, 1, 333),
}


@pytest.fixture
def small_bounds(monkeypatch, tmp_path):
    """Bounds tiny enough that a few hundred values go to files, are read in many chunks and are
    split into few bins over and over; temporary folders under tmp_path."""
    monkeypatch.setattr(kept_values, "HELD_VALUES", 5)
    monkeypatch.setattr(kept_values, "CHUNK_VALUES", 7)
    monkeypatch.setattr(kept_values, "GATHERED_VALUES", 3)
    monkeypatch.setattr(kept_values, "BINS", 4)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


@pytest.mark.parametrize("values", SAMPLES.values(), ids=SAMPLES.keys())
def test_selected_from_files_are_numpys_median_and_quantiles(values, small_bounds, tmp_path):
    with KeptValues() as kept:
        for part in np.array_split(values, 9):
            kept.add("x", part)
        kept.add("other", np.arange(50.0))  # past the bound: every series to its file
        series = kept.series("x")
        assert series.path is not None and series.path.parent.parent == tmp_path
        assert series.count == len(values) and (series.minimum, series.maximum) == (values.min(), values.max())
        for q in (0.0, 0.25, 0.5, P99, 1.0):
            assert series.median_and_quantile(q) == (np.median(values), np.quantile(values, q)), q
        assert series.median() == np.median(values)
        assert series.std() == pytest.approx(np.std(values), rel=1e-9, abs=1e-12 * np.abs(values).max())
        assert kept.series("other").median_and_quantile(P99) == (24.5, np.quantile(np.arange(50.0), P99))
    assert list(tmp_path.iterdir()) == []


def test_values_under_the_bound_stay_in_memory():
    with KeptValues() as kept:
        kept.add(1, np.array([3.0, 1.0, 2.0]))
        kept.add(1, np.zeros(0))
        series = kept.series(1)
        assert series.path is None and series.median_and_quantile(P99) == (2.0, np.quantile([1.0, 2.0, 3.0], P99))
        assert kept.count(1) == 3 and kept.count(2) == 0


def test_the_files_go_when_the_report_fails_or_is_interrupted(small_bounds, tmp_path):
    for failure in (ValueError, KeyboardInterrupt):
        with pytest.raises(failure), KeptValues() as kept:
            kept.add(1, np.arange(20.0))
            assert len(list(tmp_path.iterdir())) == 1
            raise failure
        assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bins", [2, 3, 16])
@pytest.mark.parametrize("gathered", [1, 4, 50])
def test_order_statistics_are_the_sorted_values_at_their_ranks(bins, gathered):
    values = np.r_[RNG.integers(0, 9, 300) * 0.5, RNG.random(100), [7.25] * 40]
    chunks = lambda: iter(np.array_split(values, 13))  # noqa: E731
    ranks = [0, 1, 150, 151, 299, 438, 439]
    found = order_statistics(chunks, ranks, len(values), values.min(), values.max(), gathered, bins)
    assert found == {rank: np.sort(values)[rank] for rank in ranks}


def test_order_statistics_of_a_range_count_only_the_values_inside_it():
    values = np.array([5.0, -1.0, 2.0, 9.0, 3.0, 2.0, 4.0])  # 2, 2, 3, 4, 5 between 2 and 5
    assert order_statistics(lambda: iter([values[:3], values[3:]]), [0, 1, 4], 5, 2.0, 5.0, 1, 2) == {0: 2.0, 1: 2.0, 4: 5.0}
