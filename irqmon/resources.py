"""Where the data that ships beside the code lives: probe packs and report layouts.

In a checkout (or an editable install) they are the repository's `probes/` and `dashboards/`;
a wheel installs them under `<prefix>/share/irqmon/`.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent


def data_dir(name: str) -> Path:
    for candidate in (REPOSITORY / name, Path(sys.prefix) / "share" / "irqmon" / name):
        if candidate.is_dir():
            return candidate
    return REPOSITORY / name
