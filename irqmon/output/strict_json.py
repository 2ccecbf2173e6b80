"""JSON that is JSON: never `NaN` or `Infinity` (Python writes them; JSON parsers refuse them)."""

from __future__ import annotations

import json
import math
from typing import Any


def dumps(document: Any, **options: Any) -> str:
    """`json.dumps` of `document` with every non-finite float written as null."""
    try:
        return json.dumps(document, allow_nan=False, **options)
    except ValueError:  # rare: walk the document only when it holds such a number
        return json.dumps(_finite(document), allow_nan=False, **options)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value
