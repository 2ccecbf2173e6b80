"""Report layouts: which panels, in which order and at which size (`dashboards/*.toml`)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from irqmon.errors import UsageError
from irqmon.resources import data_dir

DASHBOARDS = data_dir("dashboards")
PANELS = ("summary", "timing", "timeline", "load", "rates", "masks", "locks", "heap")
TABLES = ("summary", "timing")  # panels that are tables in the text, not figures
ZOOMS = ("first-finding",)
# Panels drawn only when a finding of one of these rules is shown (unless the layout says `always`),
# with what the report says when they are left out.
FOLLOWS: dict[str, tuple[tuple[str, ...], str]] = {
    "heap": (("malloc-in-isr",), "no heap finding"),
    "masks": (("critical-section-imbalance",), "no critical-section finding"),
}


@dataclass(frozen=True)
class PanelSpec:
    """One panel of a layout: its kind, size in inches and an optional zoom."""

    panel: str
    title: str | None = None
    width: float = 11.0
    height: float = 4.0
    zoom: str | None = None  # "first-finding": a window around the first finding
    always: bool = False  # draw it even when no finding calls for it (FOLLOWS)

    @property
    def name(self) -> str:
        return self.panel if self.zoom is None else f"{self.panel}-{self.zoom}"


@dataclass(frozen=True)
class Layout:
    name: str
    panels: list[PanelSpec] = field(default_factory=list)


def builtin_layouts() -> list[str]:
    return sorted(p.stem for p in DASHBOARDS.glob("*.toml"))


def load_layout(choice: str | Path) -> Layout:
    """A layout by name (`pr`, `full`: `dashboards/<name>.toml`) or from a TOML file."""
    path = Path(choice)
    if path.suffix != ".toml":
        path = DASHBOARDS / f"{choice}.toml"
        if not path.is_file():
            raise UsageError(f"unknown layout {str(choice)!r} (built in: {', '.join(builtin_layouts()) or 'none found'}; or give a .toml file)")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{path}: cannot read layout: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not a TOML layout ({exc})") from None
    return _parse(path, data)


def _parse(path: Path, data: dict) -> Layout:
    width = _size(path, "width", data.get("width", 11.0))
    panels = data.get("panel")
    if not isinstance(panels, list) or not panels:
        raise UsageError(f"{path}: a layout needs at least one [[panel]] table")
    specs = []
    for number, item in enumerate(panels, start=1):
        where = f"{path}: panel {number}"
        if not isinstance(item, dict) or item.get("kind") not in PANELS:
            raise UsageError(f"{where}: kind must be one of {', '.join(PANELS)}")
        unknown = set(item) - {"kind", "title", "width", "height", "zoom", "always"}
        if unknown:
            raise UsageError(f"{where}: unknown key {min(unknown)!r}")
        zoom = item.get("zoom")
        if zoom is not None and zoom not in ZOOMS:
            raise UsageError(f"{where}: zoom must be one of {', '.join(ZOOMS)}")
        title = item.get("title")
        if title is not None and not isinstance(title, str):
            raise UsageError(f"{where}: title must be a string")
        always = item.get("always", False)
        if not isinstance(always, bool):
            raise UsageError(f"{where}: always must be true or false")
        specs.append(
            PanelSpec(
                panel=item["kind"],
                title=title,
                width=_size(where, "width", item.get("width", width)),
                height=_size(where, "height", item.get("height", 4.0)),
                zoom=zoom,
                always=always,
            )
        )
    names = [s.name for s in specs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UsageError(f"{path}: panel {repeated[0]!r} appears twice (give one a zoom)")
    return Layout(str(data.get("name", path.stem)), specs)


def _size(where: object, key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 1 <= value <= 40:
        raise UsageError(f"{where}: {key} must be a number of inches from 1 to 40")
    return float(value)
