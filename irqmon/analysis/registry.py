"""Rules: what one is, and finding them (built-in modules and the `irqmon.rules` entry points)."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from types import ModuleType
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np

    from irqmon.analysis.context import Context
    from irqmon.analysis.findings import Finding

ENTRY_POINT_GROUP = "irqmon.rules"


@dataclass(frozen=True)
class Rule:
    """A rule's identity: a stable id (`malloc-in-isr`), its severity and a one-line summary."""

    id: str
    severity: str
    summary: str
    # The probe kinds (schema.Kind values) whose rows the rule reads: when a capture armed none
    # of their sites, the rule reports that it could not observe anything (empty: it needs none).
    needs: tuple[str, ...] = ()


class Stream(Protocol):
    """A rule that judges a trace batch by batch (`irqmon.analysis.batches`): it sees each
    batch's context in turn, says which rows the next batch needs of it, and gives its findings
    at the end. The whole trace at once is one batch."""

    def add(self, ctx: Context) -> None: ...

    def carry(self, ctx: Context) -> np.ndarray: ...

    def findings(self) -> list[Finding]: ...


@dataclass(frozen=True)
class LoadedRule:
    """A rule with its check and its documentation (the module docstring: why / example / instead)."""

    rule: Rule
    check: Callable[[Context], list[Finding]]
    doc: str
    stream: Callable[[], Stream] | None = None  # rules that can judge a trace in batches

    @property
    def id(self) -> str:
        return self.rule.id


def _load(module: ModuleType) -> LoadedRule:
    stream = getattr(module, "stream", None)
    check = module.check if hasattr(module, "check") else lambda ctx: whole_trace(stream(), ctx)
    return LoadedRule(module.RULE, check, (module.__doc__ or "").strip(), stream)


def whole_trace(stream: Stream, ctx: Context) -> list[Finding]:
    """A stream's findings on a whole trace: one batch."""
    stream.add(ctx)
    return stream.findings()


def all_rules() -> dict[str, LoadedRule]:
    """Every rule by id: the modules of `irqmon.analysis.rules`, then third-party entry points."""
    from irqmon.analysis import rules

    found: dict[str, LoadedRule] = {}
    for info in sorted(pkgutil.iter_modules(rules.__path__), key=lambda m: m.name):
        loaded = _load(importlib.import_module(f"{rules.__name__}.{info.name}"))
        found[loaded.id] = loaded
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        loaded = _load(entry.load())
        found.setdefault(loaded.id, loaded)
    return found
