"""Chrome trace-event JSON for the Perfetto UI (https://ui.perfetto.dev): one track per exception,
per task and per lock, a "CPU" track with the exception stack nested, findings as instant events,
and BASEPRI/PRIMASK as counters. Times are microseconds.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from irqmon.analysis import Finding
from irqmon.output import strict_json
from irqmon.report.model import ReportModel

PID = 1
CPU_TID = 1
US = 1e6


def trace_events(model: ReportModel, findings: Sequence[Finding], name: str) -> dict[str, Any]:
    """The whole trace-event document (`{"traceEvents": [...], ...}`)."""
    tids = _track_ids(model)
    events: list[dict[str, Any]] = [{"ph": "M", "pid": PID, "name": "process_name", "args": {"name": f"irqmon: {name}"}}]
    for sort_index, (track, tid) in enumerate(tids.items()):
        events.append({"ph": "M", "pid": PID, "tid": tid, "name": "thread_name", "args": {"name": track}})
        events.append({"ph": "M", "pid": PID, "tid": tid, "name": "thread_sort_index", "args": {"sort_index": sort_index}})
    events += _activations(model, tids)
    events += _thread_slices(model, tids)
    events += _lock_slices(model, tids)
    events += _counters(model)
    events += _findings(findings, tids)
    return {"traceEvents": events, "displayTimeUnit": "ns", "otherData": {"trace": name, **model.metadata}}


def write_perfetto(model: ReportModel, findings: Sequence[Finding], name: str, path: Path) -> None:
    with open(path, "w", encoding="utf-8") as out:
        out.write(strict_json.dumps(trace_events(model, findings, name), ensure_ascii=False, separators=(",", ":")))


def _track_ids(model: ReportModel) -> dict[str, int]:
    """Track name → tid: the CPU stack, the exceptions (most urgent first), tasks, locks."""
    tracks = ["CPU (exception stack)"]
    tracks += [label for label, kind in zip(model.lanes["label"], model.lanes["kind"]) if kind == "exception"]
    tracks += [label for label, kind in zip(model.lanes["label"], model.lanes["kind"]) if kind == "thread"]
    tracks += [f"lock {name}" for name in dict.fromkeys([*model.locks["lock"], *model.lock_events["lock"]])]
    return {track: tid for tid, track in enumerate(tracks, start=CPU_TID)}


def _exception_tracks(model: ReportModel) -> pd.Series:
    lanes = model.lanes[model.lanes["kind"] == "exception"]
    return pd.Series(lanes["label"].to_numpy(), index=lanes["lane"].to_numpy())


def _complete(names: Sequence[Any], tids: Sequence[int], starts: np.ndarray, ends: np.ndarray, cat: str, args: list[dict] | None = None) -> Iterator[dict]:
    for i, (name, tid, start, end) in enumerate(zip(names, tids, starts, ends)):
        event = {"ph": "X", "pid": PID, "tid": int(tid), "name": str(name), "cat": cat, "ts": float(start) * US, "dur": max(float(end - start), 0.0) * US}
        if args is not None:
            event["args"] = args[i]
        yield event


def _activations(model: ReportModel, tids: dict[str, int]) -> list[dict]:
    """Each activation twice: on its exception's track, and nested on the CPU track."""
    acts = model.activations
    if acts.empty:
        return []
    track = acts["exception"].map(_exception_tracks(model)).map(tids).to_numpy()
    starts, ends = acts["start"].to_numpy(), acts["end"].to_numpy()
    args = [{"depth": int(d), "self_us": float(s) * US, "closed": bool(c)} for d, s, c in zip(acts["depth"], acts["self_time"], acts["closed"])]
    names = acts["exception"].to_numpy()
    return [*_complete(names, track, starts, ends, "irq", args), *_complete(names, [CPU_TID] * len(acts), starts, ends, "irq", args)]


def _thread_slices(model: ReportModel, tids: dict[str, int]) -> list[dict]:
    segs = model.segments
    segs = segs[segs["lane"].isin(list(tids)).to_numpy(dtype=bool) & (segs["running"] < 0).to_numpy()]
    return list(_complete(["running"] * len(segs), segs["lane"].map(tids).to_numpy(), segs["start"].to_numpy(), segs["end"].to_numpy(), "thread"))


def _lock_slices(model: ReportModel, tids: dict[str, int]) -> list[dict]:
    holds = model.locks
    out = list(_complete(("held by " + holds["holder"]).to_numpy(), ("lock " + holds["lock"]).map(tids).to_numpy(), holds["start"].to_numpy(), holds["end"].to_numpy(), "lock"))
    contended = model.lock_events[model.lock_events["contended"].to_numpy(dtype=bool)]
    for lock, time, context in zip(contended["lock"], contended["time"], contended["context"]):
        out.append({"ph": "i", "s": "t", "pid": PID, "tid": tids[f"lock {lock}"], "name": f"contention: {context}", "cat": "lock", "ts": float(time) * US})
    return out


def _counters(model: ReportModel) -> list[dict]:
    return [
        {"ph": "C", "pid": PID, "name": register.upper(), "ts": float(time) * US, "args": {"value": int(value)}}
        for time, register, value in zip(model.masks["time"], model.masks["register"], model.masks["value"])
    ]


def _findings(findings: Sequence[Finding], tids: dict[str, int]) -> list[dict]:
    """Each finding as an instant event at its first time on its context's track (else the CPU's)."""
    by_name = {track.split(" (")[0]: tid for track, tid in tids.items()}
    out = []
    for number, f in enumerate(findings, start=1):
        tid = by_name.get(f.exception or "", by_name.get(f"task {f.task}", by_name.get("Thread", CPU_TID)))
        args = {"title": f.title, "message": f.message, "severity": f.severity, "count": f.count, "last_time_s": f.last_time, "source": f.source, "fingerprint": f.fingerprint}
        out.append({"ph": "i", "s": "t", "pid": PID, "tid": tid, "name": f"F{number} {f.rule}", "cat": "finding", "ts": f.first_time * US, "args": args})
    return out

