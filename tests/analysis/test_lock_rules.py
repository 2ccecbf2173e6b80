"""isr-lock-contention and unbalanced-lock on HAL Lock bytes and mutexes."""

from __future__ import annotations

from tracebuild import THREAD, irq_pair, isr, run_rule, task

I2C = isr(31, "I2C1_EV", 3)
LOCK = {"event": "access", "kind": "lock", "symbol": "hi2c1.Lock", "address": 0x2000003C, "size": 1}
ISR_PATH = "I2C_Master_ISR_IT;HAL_I2C_EV_IRQHandler;I2C1_EV_IRQHandler;<exception>;I2C_WaitOnTXISFlagUntilTimeout"


def lock_read(ctx: dict, value: int, **extra) -> dict:
    return {**LOCK, **ctx, "access": "r", "role": "test", "value": value, **extra}


def write(ctx: dict, old: int, value: int, **extra) -> dict:
    role = "acquire" if value else "release"
    return {**LOCK, **ctx, "access": "w", "role": role, "value": value, "old_value": old, **extra}


def task_takes_lock() -> list[dict]:
    return [lock_read(THREAD, 0), write(THREAD, 0, 1, source="hal_i2c.c:120")]


def storm_rows(entries: int, period: float = 1e-3) -> list[dict]:
    """The task holds the lock; I2C1_EV re-enters every `period` s, 2 µs after its last exit."""
    rows = task_takes_lock()
    for n in range(entries):
        enter, leave = irq_pair(31, "I2C1_EV", 3, 0.01 + n * period, 0.01 + (n + 1) * period - 2e-6)
        rows += [enter, lock_read(I2C, 1, callpath=ISR_PATH, source="hal_i2c.c:300", time=enter["time"] + 1e-6), leave]
    return rows


def test_isr_lock_contention_found_with_holder(tmp_path):
    findings = run_rule(tmp_path, "isr-lock-contention", storm_rows(5))
    assert len(findings) == 1
    f = findings[0]
    assert f.title == "isr-lock-contention: I2C1_EV_IRQHandler (IRQ 31, priority 3) found hi2c1.Lock held by Thread"
    assert f.count == 5 and f.evidence["activations"] == 5
    assert f.evidence["holder_source"] == "hal_i2c.c:120"
    assert f.contexts == ["I2C1_EV (IRQ 31, priority 3)", "Thread"]


def test_isr_lock_contention_without_irq_rows_or_holder_row(tmp_path):
    rows = [lock_read(I2C, 1), lock_read(I2C, 1)]
    findings = run_rule(tmp_path, "isr-lock-contention", rows)
    assert len(findings) == 1 and findings[0].evidence["holder"] == "a context not in the trace"


def test_isr_lock_contention_silent_when_lock_free(tmp_path):
    rows = task_takes_lock() + [write(THREAD, 1, 0), lock_read(I2C, 0), write(I2C, 0, 1), write(I2C, 1, 0)]
    assert run_rule(tmp_path, "isr-lock-contention", rows) == []
    assert run_rule(tmp_path, "unbalanced-lock", rows) == []


def test_isr_mutex_contention(tmp_path):
    mutex = {"event": "call", "kind": "mutex", "address": 0x20000500}
    rows = [{**mutex, **task("a"), "role": "acquire", "symbol": "osMutexAcquire"},
            {**mutex, **isr(5, "EXTI0", 6), "role": "acquire", "symbol": "osMutexAcquire"}]  # fmt: skip
    findings = run_rule(tmp_path, "isr-lock-contention", rows)
    assert len(findings) == 1 and "held by task a" in findings[0].title


def test_unbalanced_lock_isr_force_unlock(tmp_path):
    rows = task_takes_lock() + [write(I2C, 1, 0, source="main.c:55"), write(THREAD, 0, 0)]
    findings = run_rule(tmp_path, "unbalanced-lock", rows)
    assert [f.evidence["case"] for f in findings] == ["foreign-release"]
    assert findings[0].title == "unbalanced-lock: hi2c1.Lock taken by Thread released by I2C1_EV (IRQ 31, priority 3)"
    assert findings[0].severity == "error"


def test_unbalanced_lock_isr_returns_locked(tmp_path):
    enter, leave = irq_pair(31, "I2C1_EV", 3, 0.1, 0.2)
    rows = [enter, lock_read(I2C, 0, time=0.15), write(I2C, 0, 1, time=0.16), leave]
    findings = run_rule(tmp_path, "unbalanced-lock", rows)
    assert [f.evidence["case"] for f in findings] == ["isr-returned-locked"]


def test_unbalanced_lock_isr_still_running_is_not_reported(tmp_path):
    enter, _ = irq_pair(31, "I2C1_EV", 3, 0.1, 0.2)
    assert run_rule(tmp_path, "unbalanced-lock", [enter, write(I2C, 0, 1)]) == []


def test_unbalanced_lock_held_at_end_and_window(tmp_path):
    from irqmon.analysis import AnalysisConfig

    findings = run_rule(tmp_path, "unbalanced-lock", task_takes_lock() + [lock_read(THREAD, 1)])
    assert [(f.severity, f.evidence["case"]) for f in findings] == [("warning", "never-released")]
    rows = task_takes_lock() + [write(THREAD, 1, 0, time=0.5)]
    assert run_rule(tmp_path, "unbalanced-lock", rows) == []
    slow = run_rule(tmp_path, "unbalanced-lock", rows, config=AnalysisConfig(lock_window=0.1))
    assert [f.evidence["case"] for f in slow] == ["held-too-long"]


QUEUE_MUTEX = {"address": 0x200000CC}


def freertos_take(ctx: dict, event: str) -> dict:
    return {**QUEUE_MUTEX, **ctx, "event": event, "kind": "mutex", "role": "acquire", "symbol": "xQueueSemaphoreTake"}


def freertos_give(ctx: dict, on_mutex: bool = True) -> dict:
    """xSemaphoreGive is xQueueGenericSend: the capture marks it a release when the queue is a mutex."""
    role = "release" if on_mutex else "api"
    return {**QUEUE_MUTEX, **ctx, "event": "call", "kind": "rtos-api", "role": role, "symbol": "xQueueGenericSend"}


def test_queue_send_on_a_mutex_releases_it(tmp_path):
    a = task("worker_a")
    rows = [freertos_take(a, "call"), freertos_take(a, "return"), freertos_give(a)]
    assert run_rule(tmp_path, "unbalanced-lock", rows) == []
    unmarked = rows[:2] + [freertos_give(a, on_mutex=False)]
    assert [f.evidence["case"] for f in run_rule(tmp_path, "unbalanced-lock", unmarked)] == ["never-released"]


def test_a_blocked_take_holds_the_mutex_from_its_return(tmp_path):
    """The producer's take blocks while worker_a holds the mutex; worker_a gives it back (not a
    foreign release), the producer's take returns and the producer gives it back."""
    producer, worker = task("producer"), task("worker_a")
    rows = [freertos_take(worker, "call"), freertos_take(worker, "return"), freertos_take(producer, "call"),
            freertos_give(worker), freertos_take(producer, "return"), freertos_give(producer)]  # fmt: skip
    assert run_rule(tmp_path, "unbalanced-lock", rows) == []
    taken_at_call = [row for row in rows if row["event"] != "return"]
    assert [f.evidence["case"] for f in run_rule(tmp_path, "unbalanced-lock", taken_at_call)] == ["foreign-release"]


def test_a_transfer_lock_released_by_its_completion_interrupt_is_handed_over(tmp_path):
    """ST's DMA: Start_IT returns with the handle locked, the completion ISR unlocks and its
    callback starts the next transfer, which the next completion ends. Only a release while
    the taker is still inside the function that locked (among the interrupted frames) is foreign."""
    dma = isr(56, "DMA2_Stream0", 8)
    lock = {"symbol": "hdma.Lock", "address": 0x20000100}
    irq = "HAL_DMA_IRQHandler;DMA2_Stream0_IRQHandler;<exception>"
    first, second = irq_pair(56, "DMA2_Stream0", 8, 0.1, 0.2), irq_pair(56, "DMA2_Stream0", 8, 0.3, 0.4)
    rows = [write(THREAD, 0, 1, callpath="HAL_DMA_Start_IT;main", **lock),
            first[0], write(dma, 1, 0, callpath=f"{irq};wait_loop;main", time=0.11, **lock),
            write(dma, 0, 1, callpath=f"HAL_DMA_Start_IT;callback;{irq};wait_loop;main", time=0.12, **lock), first[1],
            second[0], write(dma, 1, 0, callpath=f"{irq};wait_loop;main", time=0.31, **lock), second[1]]  # fmt: skip
    assert run_rule(tmp_path, "unbalanced-lock", rows) == []
    rows[2] = write(dma, 1, 0, callpath=f"{irq};HAL_DMA_Start_IT;main", time=0.11, **lock)
    assert [f.evidence["case"] for f in run_rule(tmp_path, "unbalanced-lock", rows)] == ["foreign-release"]


def test_a_take_whose_site_was_disarmed_while_held_is_not_reported_never_released(tmp_path):
    """A rotated capture that disarmed the take's site (and the gives planned with it) while the
    mutex was held cannot tell a missed give from none."""
    a = task("worker_a")
    site = {"event": "coverage", "kind": "mutex", "symbol": "xQueueSemaphoreTake+xQueueGenericSend"}
    taken = [{**site, "value": 1}, freertos_take(a, "call"), freertos_take(a, "return")]
    disarmed = taken + [{**site, "value": 0}, {**a, "event": "call", "kind": "blocking", "symbol": "vTaskDelay"}]
    assert run_rule(tmp_path, "unbalanced-lock", disarmed) == []
    armed_to_the_end = taken + [{**a, "event": "call", "kind": "blocking", "symbol": "vTaskDelay"}, {**site, "value": 0}]
    assert [f.evidence["case"] for f in run_rule(tmp_path, "unbalanced-lock", armed_to_the_end)] == ["never-released"]


def test_an_isr_take_whose_site_was_disarmed_before_its_release_is_no_finding(tmp_path):
    """An ISR takes a HAL lock and returns; a rotated capture disarms the watch before the
    release it would have seen, re-arms it, and the next activation finds the lock taken in its
    shadow: neither 'returned with it taken' nor contention, as the release may have been missed."""
    site = {"event": "coverage", "kind": "lock", "symbol": LOCK["symbol"], "address": LOCK["address"]}
    first, second = irq_pair(31, "I2C1_EV", 3, 0.10, 0.20), irq_pair(31, "I2C1_EV", 3, 0.40, 0.50)
    taken = [{**site, "value": 1, "time": 0.0}, first[0], write(I2C, 0, 1, time=0.11), first[1]]
    retried = [second[0], lock_read(I2C, 1, time=0.41), second[1]]
    rotated = [*taken, {**site, "value": 0, "time": 0.25}, {**site, "value": 1, "time": 0.35}, *retried]
    for rule in ("unbalanced-lock", "isr-lock-contention"):
        assert run_rule(tmp_path, rule, rotated) == [], rule
    watched = [*taken, *retried]
    assert [f.evidence["case"] for f in run_rule(tmp_path, "unbalanced-lock", watched)] == ["isr-returned-locked"]
    assert len(run_rule(tmp_path, "isr-lock-contention", watched)) == 1


def test_a_give_after_the_holders_site_was_disarmed_is_no_foreign_release(tmp_path):
    """The producer takes the mutex, a rotated capture disarms the site (the producer's give is
    missed) and re-arms it; the worker's own take and give then look like a release of the
    producer's hold. Only a hold watched until the release makes it foreign."""
    producer, worker = task("producer"), task("worker")
    site = {"event": "coverage", "kind": "mutex", "symbol": "xQueueSemaphoreTake+xQueueGenericSend"}
    taken = [{**site, "value": 1}, freertos_take(producer, "call"), freertos_take(producer, "return")]
    given = [freertos_give(worker)]
    rotated = [*taken, {**site, "value": 0}, {**site, "value": 1}, *given]
    assert run_rule(tmp_path, "unbalanced-lock", rotated) == []
    assert [f.evidence["case"] for f in run_rule(tmp_path, "unbalanced-lock", [*taken, *given])] == ["foreign-release"]
