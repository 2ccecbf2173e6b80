"""Out-of-core analysis: a trace judged batch by batch gives the findings the whole trace gives.

Every recorded capture, cut into batches of every small size (a batch edge between every pair of
rows, inside calls, activations and storms), against the whole-trace analysis of the same rules:
the rules that can judge a trace in batches."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from section_edges import TRACES as SECTION_EDGES
from storm_edges import TRACES as STORM_EDGES
from test_rmw_race import EXTI0, EXTI1, masked, rd, wr
from tracebuild import THREAD, irq_pair, isr, task, write_trace

from irqmon.analysis import AnalysisConfig, all_rules, analyze, analyze_in_batches, streams
from irqmon.analysis.batches import read_ahead
from irqmon.analysis.context import Before, Context
from irqmon.errors import UsageError
from irqmon.analysis.facts import FACT_COLUMNS, facts_of
from irqmon.tracefile import load_trace

TRACES = Path(__file__).parent / "traces"
RULES = all_rules()
STREAMING = [rule_id for rule_id, rule in RULES.items() if rule.stream is not None]


def _in_batches(path: Path, rows: int, rules: list[str], config: AnalysisConfig | None = None) -> list[dict]:
    trace = load_trace(path)
    table = trace.table
    batches = lambda: [table.slice(start, rows) for start in range(0, table.num_rows, rows)]  # noqa: E731
    findings, _ = analyze_in_batches(batches, trace.metadata, config, rules=rules)
    return sorted((f.to_dict() for f in findings), key=lambda f: (f["rule"], f["first_seq"]))


def _whole(path: Path, rules: list[str], config: AnalysisConfig | None = None) -> list[dict]:
    findings = analyze(load_trace(path), config, rules=rules)
    return sorted((f.to_dict() for f in findings), key=lambda f: (f["rule"], f["first_seq"]))


def test_every_rule_streams():
    """So the default rule set judges a trace in batches."""
    assert set(STREAMING) == set(RULES) and streams(STREAMING) and streams()


# Every streaming rule; and mutex-in-isr alone, which then reports the heap lock inside malloc.
RULE_SETS = {"streaming": STREAMING, "mutex-alone": ["mutex-in-isr"]}


@pytest.mark.parametrize("rules", RULE_SETS, ids=str)
@pytest.mark.parametrize("rows", [3, 16])
@pytest.mark.parametrize("capture", sorted(TRACES.glob("*.csv")), ids=lambda p: p.stem)
def test_batches_give_the_whole_traces_findings(capture, rows, rules):
    assert _in_batches(capture, rows, RULE_SETS[rules]) == _whole(capture, RULE_SETS[rules])


@pytest.mark.parametrize("capture", ["usb_cdc_malloc_isr", "exti_imr_rmw_race", "hal_clean"])
def test_a_batch_edge_between_every_two_rows(capture):
    path = TRACES / f"{capture}.csv"
    assert _in_batches(path, 1, STREAMING + ["mutex-in-isr"]) == _whole(path, STREAMING + ["mutex-in-isr"])


def test_the_comparison_sees_findings():
    """The samples' captures do give these rules' findings (the comparisons above are not of nothing)."""
    found = {f["rule"] for capture in TRACES.glob("*.csv") for rules in RULE_SETS.values() for f in _whole(capture, rules)}
    assert {
        "malloc-in-isr", "mutex-in-isr", "rtos-api-misuse", "isr-priority-violation", "rmw-race", "non-reentrant-reentry",
        "critical-section-imbalance", "isr-lock-contention", "unbalanced-lock", "interrupt-storm",
    } <= found  # fmt: skip


def _irq(event: str, ctx: dict) -> dict:
    return {"event": event, "kind": "irq", "probe": "qemu", **ctx}


def rmw_lost_updates() -> list[dict]:
    """Two lost updates of one register (IRQ rows mark the activations). In batches of 1 and 2
    rows each read is in an earlier batch than its stale write, and so is the foreign write
    between them, the first one's from an activation over before the write (EXTI1 runs again);
    an activation that only reads, then the next one that only writes, is no pair."""
    led = task("led")
    return [
        wr(THREAD, 0, 0b11),
        _irq("irq_enter", EXTI0), rd(EXTI0, 0b11, source="main.c:16"),
        _irq("irq_enter", EXTI1), rd(EXTI1, 0b11), wr(EXTI1, 0b11, 0b01, source="main.c:29"), _irq("irq_exit", EXTI1),
        _irq("irq_enter", EXTI1), _irq("irq_exit", EXTI1),
        wr(EXTI0, 0b01, 0b10, source="main.c:22"), _irq("irq_exit", EXTI0),
        rd(led, 0b10), _irq("irq_enter", EXTI1), rd(EXTI1, 0b10), wr(EXTI1, 0b10, 0b00), _irq("irq_exit", EXTI1),
        wr(led, 0b00, 0b11),
        _irq("irq_enter", EXTI0), rd(EXTI0, 0b11), _irq("irq_exit", EXTI0),
        _irq("irq_enter", EXTI0), wr(EXTI0, 0b11, 0b01), _irq("irq_exit", EXTI0),
    ]  # fmt: skip


COUNTER = {"kind": "watch", "symbol": "counter", "address": 0x20000010}


def rmw_open_pairs() -> list[dict]:
    """Read-modify-writes of two locations from three levels, no IRQ rows. Thread mode's first
    update of the register is masked, a later one batches after it is not: the register is open
    to both ISRs. EXTI0 raises its own priority between two updates: its level stays its first
    pair's. The counter's open pairs come first, its lost update last: it is only the error."""
    urgent = {**EXTI0, "priority": 3}
    return [
        rd(masked(THREAD), 0), wr(masked(THREAD), 0, 1),
        rd(THREAD, 5, **COUNTER), wr(THREAD, 5, 6, **COUNTER),
        rd(EXTI0, 1), wr(EXTI0, 1, 3), rd(urgent, 3), wr(urgent, 3, 3),
        rd(EXTI1, 6, **COUNTER), wr(EXTI1, 6, 7, **COUNTER),
        rd(THREAD, 3), wr(THREAD, 3, 2),
        rd(EXTI1, 2), wr(EXTI1, 2, 0),
        rd(THREAD, 7, **COUNTER), rd(EXTI1, 7, **COUNTER), wr(EXTI1, 7, 8, **COUNTER), wr(THREAD, 7, 4, **COUNTER),
    ]  # fmt: skip


BUILT = {"rmw-lost-updates": rmw_lost_updates, "rmw-open-pairs": rmw_open_pairs}


@pytest.mark.parametrize("rows", [1, 2, 3])
@pytest.mark.parametrize("built", BUILT, ids=str)
def test_built_traces_in_batches(tmp_path, built, rows):
    path = write_trace(tmp_path / "trace.csv", BUILT[built]())
    assert _in_batches(path, rows, STREAMING) == _whole(path, STREAMING)


def test_the_built_traces_show_what_they_are_for(tmp_path):
    lost = _whole(write_trace(tmp_path / "lost.csv", rmw_lost_updates()), ["rmw-race"])
    assert [(f["severity"], f["count"]) for f in lost] == [("error", 2)]
    assert lost[0]["contexts"] == ["EXTI0 (IRQ 6, priority 10)", "task led", "EXTI1 (IRQ 7, priority 5)"]
    opened = _whole(write_trace(tmp_path / "open.csv", rmw_open_pairs()), ["rmw-race"])
    assert {(f["symbol"], f["severity"], f["count"]) for f in opened} == {("EXTI_IMR", "warning", 3), ("counter", "error", 1)}


def test_rmw_race_carries_rows_per_address_and_context_going_on(tmp_path):
    """However many activations read-modify-write the register, a batch carries at most the last
    read and write of thread mode and of EXTI0's latest activation, and the register's last write."""
    rows = [
        row for _ in range(40) for row in
        (rd(THREAD, 1), _irq("irq_enter", EXTI0), rd(EXTI0, 1), wr(EXTI0, 1, 3), _irq("irq_exit", EXTI0), wr(THREAD, 3, 1))
    ]  # fmt: skip
    trace = load_trace(write_trace(tmp_path / "trace.csv", rows))
    batches = [trace.table.slice(start, 7) for start in range(0, trace.table.num_rows, 7)]
    stream = RULES["rmw-race"].stream()
    before, carried = Before(facts_of(batch.select(FACT_COLUMNS) for batch in batches)), []
    for batch in batches:
        ctx = Context([batch], trace.metadata, AnalysisConfig(), before)
        stream.add(ctx)
        positions = stream.carry(ctx)
        carried.append(len(positions))
        before = ctx.leaving(positions)
    assert max(carried) <= 5 and len(stream.context_levels) <= 2
    assert [f.count for f in stream.findings()] == [40]


# Who accesses, how masked, where and what: thread mode, a task, ISRs of three priorities (two
# alike) and one without a known priority; no IRQ rows (activations follow the exception number).
RMW_CONTEXTS = [THREAD, task("led"), EXTI0, EXTI1, isr(8, "EXTI2", 10), isr(9, "EXTI3", None)]
RMW_MASKS = [{}, {"primask": 1}, {"basepri": 0x60}]
rmw_accesses = st.lists(
    st.tuples(st.sampled_from(RMW_CONTEXTS), st.sampled_from(RMW_MASKS), st.sampled_from([{}, COUNTER]),
              st.booleans(), st.integers(0, 3), st.one_of(st.none(), st.integers(0, 3))),
    min_size=2, max_size=30,
)  # fmt: skip


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(accesses=rmw_accesses)
def test_rmw_race_in_batches_of_any_access_sequence(tmp_path_factory, accesses):
    rows = [
        wr(ctx | mask, old, value, **where) if write else rd(ctx | mask, value, **where)
        for ctx, mask, where, write, value, old in accesses
    ]  # fmt: skip
    path = write_trace(tmp_path_factory.mktemp("rmw") / "trace.csv", rows)
    whole = _whole(path, ["rmw-race"])
    assert _in_batches(path, 1, ["rmw-race"]) == whole and _in_batches(path, 3, ["rmw-race"]) == whole


# Each rule alone too: what another rule carries must not stand in for what a rule carries itself.
SECTION_RULE_SETS = {"streaming": STREAMING, "sections-alone": ["critical-section-imbalance"], "reentry-alone": ["non-reentrant-reentry"]}


@pytest.mark.parametrize("rules", SECTION_RULE_SETS)
@pytest.mark.parametrize("rows", [1, 2, 3])
@pytest.mark.parametrize("name", SECTION_EDGES)
def test_batch_edges_inside_sections_calls_and_activations(tmp_path, name, rows, rules):
    path = write_trace(tmp_path / "trace.csv", SECTION_EDGES[name])
    assert _in_batches(path, rows, SECTION_RULE_SETS[rules]) == _whole(path, SECTION_RULE_SETS[rules])


def test_the_section_edges_give_every_case(tmp_path):
    """The small traces above do give each kind of finding of the two rules."""
    found = {
        (f["rule"], f["evidence"].get("case")) for name, rows in SECTION_EDGES.items()
        for f in _whole(write_trace(tmp_path / f"{name}.csv", rows), STREAMING)
    }  # fmt: skip
    assert {("non-reentrant-reentry", None)} | {
        ("critical-section-imbalance", case) for case in ("inner-enable", "isr-changed-mask", "exit-without-enter", "isr-returned-inside")
    } <= found


@pytest.mark.parametrize("name", ["rotated-sections", "rotated-sections-cut-off", "rotated-puts"])
def test_a_batch_sees_the_whole_traces_coverage(tmp_path, name):
    """Coverage comes from the trace's facts in a batch: the same sites, turns and span (a capture
    cut off with sites armed runs to the trace's last time) as the whole trace's."""
    trace = load_trace(write_trace(tmp_path / "trace.csv", SECTION_EDGES[name]))
    whole = Context(trace.table, trace.metadata, AnalysisConfig()).coverage
    table = trace.table
    facts = facts_of([table.select(FACT_COLUMNS)])
    batch = Context([table.slice(2, 3)], trace.metadata, AnalysisConfig(), Before(facts)).coverage
    assert whole is not None and batch is not None
    assert (batch.sites, batch.span, batch.seqs.tolist()) == (whole.sites, whole.span, whole.seqs.tolist())
    assert {name: seqs.tolist() for name, seqs in batch.changes.items()} == {name: seqs.tolist() for name, seqs in whole.changes.items()}



# Hand-built lock traces whose batch edges fall inside held locks, open activations and nested calls.
I2C, EXTI = isr(31, "I2C1_EV", 3), isr(6, "EXTI0", 6)
HAL_LOCK = {"event": "access", "kind": "lock", "symbol": "hi2c1.Lock", "address": 0x2000003C, "size": 1}
ISR_PATH = "I2C_Master_ISR_IT;HAL_I2C_EV_IRQHandler;I2C1_EV_IRQHandler;<exception>;I2C_WaitOnTXISFlagUntilTimeout;main"


def _lock(ctx: dict, old: int, value: int, symbol: str = "hi2c1.Lock", **extra) -> dict:
    role = "test" if old == value else "acquire" if value else "release"
    access = "r" if old == value else "w"
    return {**HAL_LOCK, **ctx, "symbol": symbol, "access": access, "role": role, "value": value, "old_value": old, **extra}


def _hal_lock_rows() -> list[dict]:
    """A task holds the lock through I2C activations that find it taken; one force-unlocks it
    and takes it again, returning with it taken; an activation without IRQ rows takes another
    lock and thread mode shows it returned; a preempting ISR takes a lock the ISR it preempted
    holds; a last activation takes a lock and is still running."""
    rows = [_lock(THREAD, 0, 0), _lock(THREAD, 0, 1, source="hal_i2c.c:120", callpath="HAL_I2C_Mem_Read;main")]
    for n in range(3):
        enter, leave = irq_pair(31, "I2C1_EV", 3, 0.01 + n * 0.01, 0.015 + n * 0.01)
        rows += [enter, *[_lock(I2C, 1, 1, time=enter["time"] + k * 1e-4, source="hal_i2c.c:300") for k in range(1, n + 2)], leave]
    enter, leave = irq_pair(31, "I2C1_EV", 3, 0.05, 0.06)
    rows += [enter, _lock(I2C, 1, 0, time=0.051, source="main.c:55", callpath=f"{ISR_PATH.replace('main', 'HAL_I2C_Mem_Read;main')}"),
             _lock(I2C, 0, 1, time=0.052, source="main.c:56", callpath=ISR_PATH), leave]  # fmt: skip
    rows += [_lock(THREAD, 1, 1, time=0.07), _lock(EXTI, 0, 1, symbol="hspi1.Lock", address=0x20000100, time=0.08)]
    rows += [{**task("idle"), "event": "call", "kind": "blocking", "symbol": "vTaskDelay", "time": 0.09}]
    rows += [_lock(THREAD, 0, 1, symbol="huart2.Lock", address=0x20000200, time=0.1)]
    # I2C1_EV takes a lock; TIM2, preempting it, takes it again; I2C1_EV returns later.
    dma, tim = {"symbol": "hdma.Lock", "address": 0x20000300}, isr(28, "TIM2", 1)
    i2c, timer = irq_pair(31, "I2C1_EV", 3, 0.101, 0.108), irq_pair(28, "TIM2", 1, 0.103, 0.105)
    rows += [i2c[0], _lock(I2C, 0, 1, time=0.102, **dma), timer[0], _lock(tim, 0, 1, time=0.104, **dma), timer[1],
             _lock(I2C, 1, 1, time=0.106, **dma), i2c[1]]  # fmt: skip
    rows += [irq_pair(31, "I2C1_EV", 3, 0.11, 0.12)[0], _lock(I2C, 0, 1, symbol="hspi1.Lock", address=0x20000100, time=0.111)]
    return rows


def _mutex(ctx: dict, event: str, symbol: str, role: str, kind: str = "mutex") -> dict:
    return {**ctx, "event": event, "kind": kind, "role": role, "symbol": symbol, "address": 0x20000500}


def _mutex_rows() -> list[dict]:
    """Tasks take a mutex through a call that takes it inside itself (no call paths: nesting
    shows only in the order of calls and returns; a take holds it from its return on), an ISR
    tries it while a task's take has not returned yet, one task blocks until the other gives it,
    an ISR tries it, another activation gives it, a task gives what the other holds and takes it for good."""
    a, b = task("a"), task("b")

    def take(ctx: dict) -> list[dict]:
        return [_mutex(ctx, "call", "osMutexAcquire", "acquire"), _mutex(ctx, "call", "xQueueSemaphoreTake", "acquire")]

    def taken(ctx: dict) -> list[dict]:
        return [_mutex(ctx, "return", "xQueueSemaphoreTake", "acquire"), _mutex(ctx, "return", "osMutexAcquire", "acquire")]

    def give(ctx: dict) -> list[dict]:
        return [_mutex(ctx, "call", "xQueueGenericSend", "release", kind="rtos-api"), _mutex(ctx, "return", "xQueueGenericSend", "release", kind="rtos-api")]

    early, tried, given = irq_pair(6, "EXTI0", 6, 0, 0), irq_pair(6, "EXTI0", 6, 0, 0), irq_pair(6, "EXTI0", 6, 0, 0)
    rows = [*take(a), early[0], _mutex(EXTI, "call", "osMutexAcquire", "acquire"), early[1], *taken(a), *take(b), *give(a), *taken(b), tried[0], _mutex(EXTI, "call", "osMutexAcquire", "acquire"),
            tried[1], given[0], *give(EXTI), given[1], *take(a), *taken(a), *give(b), *take(b), *taken(b)]  # fmt: skip
    return [{**row, "time": number * 1e-3} for number, row in enumerate(rows)]


def _nested_take_rows() -> list[dict]:
    """A task's mutex take (a call without returns) runs a take inside itself; an ISR gives the
    mutex between the two calls; the next activation takes it, free, and returns with it taken
    (its give follows the take without a return between: a call inside the take)."""
    a = task("a")
    gave, took = irq_pair(6, "EXTI0", 6, 0, 0), irq_pair(6, "EXTI0", 6, 0, 0)
    rows = [_mutex(a, "call", "osMutexAcquire", "acquire"), gave[0], _mutex(EXTI, "call", "osMutexRelease", "release"),
            _mutex(EXTI, "return", "osMutexRelease", "release"), gave[1], _mutex(a, "call", "xQueueSemaphoreTake", "acquire"),
            took[0], _mutex(EXTI, "call", "osMutexAcquire", "acquire"), _mutex(EXTI, "call", "osMutexRelease", "release"), took[1]]  # fmt: skip
    return [{**row, "time": number * 1e-3} for number, row in enumerate(rows)]


def _rotated_rows() -> list[dict]:
    """A capture arming its sites in turns: an ISR takes a lock and its site is disarmed before
    the next activation finds it taken, a task's give follows a hold whose site was disarmed
    (neither judged), and a lock whose site stays armed is held to the end (cut off: no last
    coverage row)."""
    def site(kind: str, symbol: str, value: int, **where) -> dict:
        return {"event": "coverage", "kind": kind, "symbol": symbol, "value": value, **where}

    hal = {"address": HAL_LOCK["address"]}
    first, second = irq_pair(31, "I2C1_EV", 3, 0, 0), irq_pair(31, "I2C1_EV", 3, 0, 0)
    a, b, mutex_site = task("a"), task("b"), "xQueueSemaphoreTake+xQueueGenericSend"
    rows = [site("lock", "hi2c1.Lock", 1, **hal), site("mutex", mutex_site, 1), site("lock", "hspi1.Lock", 1, address=0x20000100),
            first[0], _lock(I2C, 0, 1), first[1], _mutex(a, "call", "xQueueSemaphoreTake", "acquire"),
            _mutex(a, "return", "xQueueSemaphoreTake", "acquire"), site("lock", "hi2c1.Lock", 0, **hal), site("mutex", mutex_site, 0),
            _lock(THREAD, 0, 1, symbol="hspi1.Lock", address=0x20000100), site("lock", "hi2c1.Lock", 1, **hal),
            site("mutex", mutex_site, 1), second[0], _lock(I2C, 1, 1), second[1],
            _mutex(b, "call", "xQueueGenericSend", "release", kind="rtos-api"), _lock(I2C, 1, 1, symbol="hspi1.Lock", address=0x20000100)]  # fmt: skip
    return [{**row, "time": number * 1e-3} for number, row in enumerate(rows)]


LOCK_TRACES = {"hal-locks": _hal_lock_rows, "mutexes": _mutex_rows, "nested-take": _nested_take_rows, "rotated": _rotated_rows}
LOCK_RULES = ["unbalanced-lock", "isr-lock-contention"]


@pytest.mark.parametrize("window", [None, 0.005], ids=["no-window", "lock-window"])
@pytest.mark.parametrize("trace", LOCK_TRACES)
def test_lock_traces_in_batches_of_every_size(tmp_path, trace, window):
    path = write_trace(tmp_path / f"{trace}.csv", LOCK_TRACES[trace]())
    config = AnalysisConfig(lock_window=window)
    whole = _whole(path, LOCK_RULES, config)
    for rows in range(1, 9):
        assert _in_batches(path, rows, LOCK_RULES, config) == whole, f"batches of {rows} rows"


def test_the_lock_traces_show_every_case(tmp_path):
    """Each way a lock goes wrong is among the hand-built traces' findings (the comparisons
    above are not of nothing)."""
    cases = set()
    for trace, rows in LOCK_TRACES.items():
        for window in (None, 0.005):
            findings = _whole(write_trace(tmp_path / f"{trace}.csv", rows()), LOCK_RULES, AnalysisConfig(lock_window=window))
            cases |= {f["evidence"].get("case", f["rule"]) for f in findings}
    assert cases == {"isr-lock-contention", "foreign-release", "isr-returned-locked", "never-released", "held-too-long"}


def test_a_rule_whose_sites_were_never_armed_says_so_in_batches_too(tmp_path):
    """The "not observed" note of a rotated capture that never armed a rule's sites."""
    coverage = lambda symbol, kind, value: {"event": "coverage", "kind": kind, "symbol": symbol, "value": value}  # noqa: E731
    rows = [coverage("malloc", "heap", 0), coverage("hi2c1.Lock", "lock", 1), *[{"event": "mask", "symbol": "primask", **THREAD}] * 5,
            coverage("hi2c1.Lock", "lock", 0)]  # fmt: skip
    path = write_trace(tmp_path / "trace.csv", rows)
    rules = ["malloc-in-isr", "unbalanced-lock"]
    whole = _whole(path, rules)
    assert [(f["rule"], f["severity"]) for f in whole] == [("malloc-in-isr", "note")]
    assert _in_batches(path, 2, rules) == whole


def test_read_ahead_gives_every_table_in_order_then_the_readers_error():
    """The next table is read in a thread: the tables still come in order, and a bad row found
    while reading one is raised where that table would have come."""

    def tables():
        yield pa.table({"n": [1]})
        yield pa.table({"n": [2]})
        raise UsageError("trace.csv:9: column seq is not increasing")

    seen = []
    with pytest.raises(UsageError, match="trace.csv:9"):
        for table, _ in read_ahead(tables()):
            seen.append(table["n"][0].as_py())
    assert seen == [1, 2]


@pytest.mark.parametrize("capture", sorted(TRACES.glob("*.csv")), ids=lambda p: p.stem)
def test_no_rule_keeps_a_batchs_context(capture):
    """A batch's context (its columns: a batch of memory) is freed once the rules are done with
    it: a rule keeps only the rows it carries, not the context, even when it waits for the end."""
    trace = load_trace(capture)
    table = trace.table
    streams = [RULES[rule_id].stream() for rule_id in STREAMING]
    ctx = Context([table.slice(0, table.num_rows // 2)], trace.metadata, AnalysisConfig(), Before(facts_of([table.select(FACT_COLUMNS)])), lambda: False)
    ctx.rules = frozenset(STREAMING)
    carry = []
    for stream in streams:
        stream.add(ctx)
        carry.append(stream.carry(ctx))
    ctx.leaving(np.unique(np.concatenate(carry)))
    first = weakref.ref(ctx)
    del ctx
    gc.collect()
    assert first() is None


def test_read_ahead_says_which_table_is_the_last():
    """Each table comes with a call that says whether no table follows it."""
    lasts = [(table["n"][0].as_py(), is_last()) for table, is_last in read_ahead(pa.table({"n": [n]}) for n in (1, 2, 3))]
    assert lasts == [(1, False), (2, False), (3, True)]


# The rule alone at every small batch size; with the other rules (what they carry too) at two.
STORM_BATCHES = [(["interrupt-storm"], rows) for rows in (1, 2, 3, 5, 8)] + [(STREAMING, rows) for rows in (3, 8)]


@pytest.mark.parametrize(("rules", "rows"), STORM_BATCHES, ids=[f"{len(rules)}-rules-{rows}" for rules, rows in STORM_BATCHES])
@pytest.mark.parametrize("name", STORM_EDGES)
def test_batch_edges_inside_storms(tmp_path, name, rows, rules):
    trace, metadata = STORM_EDGES[name]
    path = write_trace(tmp_path / "trace.csv", trace, metadata)
    assert _in_batches(path, rows, rules) == _whole(path, rules)


def test_the_storm_edges_give_storms(tmp_path):
    """Each small storm trace gives storm findings (the comparisons above are not of nothing)."""
    found = {}
    for name, (trace, metadata) in STORM_EDGES.items():
        findings = _whole(write_trace(tmp_path / f"{name}.csv", trace, metadata), ["interrupt-storm"])
        found[name] = [(f["exception"], f["count"], f["evidence"]["cause"] is not None, f["evidence"]["halts"]) for f in findings]
    assert found == {
        "lock-storm": [("I2C1_EV", 1, True, None)],
        "lock-storm-reading-twice": [("I2C1_EV", 1, True, None)],
        "two-storms": [("I2C1_EV", 2, False, None)],
        "halted": [("EXTI0", 1, False, 60)],
        "tick-median": [("SysTick", 1, False, None)],
        "tick-configured": [("SysTick", 1, False, None)],
        "without-irq-rows": [("I2C1_EV", 1, False, None)],
    }
