"""Rules: what one is, and finding them (built-in modules and the `irqmon.rules` entry points)."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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


@dataclass(frozen=True)
class LoadedRule:
    """A rule with its check and its documentation (the module docstring: why / example / instead)."""

    rule: Rule
    check: Callable[[Context], list[Finding]]
    doc: str

    @property
    def id(self) -> str:
        return self.rule.id


def _load(module: ModuleType) -> LoadedRule:
    return LoadedRule(module.RULE, module.check, (module.__doc__ or "").strip())


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
