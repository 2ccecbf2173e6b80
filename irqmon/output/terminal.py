"""Text from a trace, an ELF or a pack made safe for a terminal.

Consoles that print such text are made with `markup=False` (a `[link=…]` or `[/]` in a symbol or
a path stays text), and `plain` shows control characters (an ANSI escape that would clear the
screen or set the window title) as `\\x1b` instead of sending them.
"""

from __future__ import annotations

import re
import sys

from rich.console import Console

CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def plain(text: object) -> str:
    """`text` with every control character but tab and newline written as an escape."""
    return CONTROL_CHARACTERS.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


PIPE_WIDTH = 160  # columns of a table written to a file or a pipe (no terminal to fit)


def console(**options: object) -> Console:
    """A console that takes no markup and no highlighting from what it prints. Its tables are as
    wide as the terminal, or PIPE_WIDTH columns when the output is not a terminal."""
    stream = options.get("file") or (sys.stderr if options.get("stderr") else sys.stdout)
    if "width" not in options and not stream.isatty():  # type: ignore[union-attr]
        options["width"] = PIPE_WIDTH
    return Console(markup=False, highlight=False, **options)  # type: ignore[arg-type]
