"""Where the data that ships beside the code lives: probe packs and report layouts.

Found through `importlib.resources` in the package `irqmon.data`, so that a checkout, an
editable install and a wheel installed anywhere (a venv, `--user`, `--target`) find the same.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def data_dir(name: str) -> Path:
    """The folder of shipped data called `name` (`probes`, `dashboards`)."""
    return Path(str(files("irqmon.data").joinpath(name)))
