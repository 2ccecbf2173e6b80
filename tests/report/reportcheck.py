"""Checks the report tests share: PNGs with content, a self-contained HTML page, trace-event JSON."""

from __future__ import annotations

import base64
import io
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import numpy as np
from PIL import Image

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
IMAGE_REF = re.compile(r"!\[[^\]]*\]\(([^)]+)\)")


@dataclass
class PngStats:
    width: int
    height: int
    std: float  # grey-level standard deviation
    ink: float  # share of pixels that are not background white


def png_stats(data: bytes) -> PngStats:
    assert data.startswith(PNG_MAGIC), "not a PNG"
    image = Image.open(io.BytesIO(data)).convert("L")
    pixels = np.asarray(image, dtype=float)
    return PngStats(image.width, image.height, float(pixels.std()), float((pixels < 245).mean()))


def assert_real_figure(data: bytes, min_width: int = 800, min_height: int = 200) -> PngStats:
    """A rendered figure: a PNG of figure size, not blank, with a fair amount drawn on it."""
    stats = png_stats(data)
    assert stats.width >= min_width and stats.height >= min_height, stats
    assert stats.std > 20, f"almost uniform image {stats}"
    assert stats.ink > 0.02, f"almost nothing drawn {stats}"
    return stats


def markdown_images(text: str) -> set[str]:
    return set(IMAGE_REF.findall(text))


def assert_self_contained(page: str, pngs: list[Path]) -> None:
    """No script, stylesheet link or remote resource; every image an embedded PNG of the report."""
    lowered = page.lower()
    for marker in ("<script", "<link", "src=\"http", "src='http", "url(http", "<iframe", "@import"):
        assert marker not in lowered, marker
    sources = re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert len(sources) == len(pngs)
    embedded = set()
    for source in sources:
        assert source.startswith("data:image/png;base64,"), source[:40]
        data = base64.b64decode(source.split(",", 1)[1], validate=True)
        assert_real_figure(data)
        embedded.add(data)
    assert embedded == {p.read_bytes() for p in pngs}


# Chrome trace-event format (the subset irqmon writes), as Perfetto's JSON importer reads it.
TRACE_EVENT_SCHEMA = {
    "type": "object",
    "required": ["traceEvents"],
    "properties": {
        "traceEvents": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["ph", "pid", "name"],
                "properties": {
                    "ph": {"enum": ["X", "i", "C", "M"]},
                    "pid": {"type": "integer"},
                    "tid": {"type": "integer"},
                    "name": {"type": "string"},
                    "ts": {"type": "number", "minimum": 0},
                    "dur": {"type": "number", "minimum": 0},
                    "s": {"enum": ["g", "p", "t"]},
                    "args": {"type": "object"},
                },
                "allOf": [
                    {"if": {"properties": {"ph": {"const": "X"}}}, "then": {"required": ["ts", "dur", "tid"]}},
                    {"if": {"properties": {"ph": {"const": "i"}}}, "then": {"required": ["ts", "s", "tid"]}},
                    {"if": {"properties": {"ph": {"const": "C"}}}, "then": {"required": ["ts", "args"],
                     "properties": {"args": {"additionalProperties": {"type": "number"}}}}},
                    {"if": {"properties": {"ph": {"const": "M"}}}, "then": {"required": ["args"]}},
                ],
            },
        },
        "displayTimeUnit": {"enum": ["ms", "ns"]},
    },
}  # fmt: skip


def check_trace_events(document: dict) -> dict[str, int]:
    """Validate the document; return track name → tid. Slices on one track must nest properly."""
    jsonschema.validate(document, TRACE_EVENT_SCHEMA)
    events = document["traceEvents"]
    tracks = {e["args"]["name"]: e["tid"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert len(set(tracks.values())) == len(tracks), "two tracks share a tid"
    slices: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for event in events:
        if event["ph"] in ("X", "i"):
            assert event["tid"] in tracks.values(), f"event on an unnamed track: {event}"
        if event["ph"] == "X":
            slices[event["tid"]].append((event["ts"], event["ts"] + event["dur"]))
    for tid, spans in slices.items():
        stack: list[float] = []
        for start, end in sorted(spans, key=lambda s: (s[0], -s[1])):
            while stack and stack[-1] <= start + 1e-6:
                stack.pop()
            assert not stack or end <= stack[-1] + 1e-6, f"track {tid}: slices overlap without nesting at {start} us"
            stack.append(end)
    return tracks
