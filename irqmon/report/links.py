"""Source lines as links (`irqmon report --source-url TEMPLATE`).

A template names the place of a file in a repository browser, e.g.
`https://github.com/OWNER/REPO/blob/COMMIT/{path}#L{line}`: `{path}` is the source file as the
trace has it (relative to the repository; an absolute path under the working directory is made
relative to it), `{line}` its line. A file outside the repository (an absolute path elsewhere,
a path that leaves it with `..`) stays plain text.
"""

from __future__ import annotations

import posixpath
import re
import string
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import quote, urlsplit

from irqmon.errors import UsageError

FIELDS = ("path", "line")
SCHEMES = ("http", "https", "file")
EXAMPLE = "https://github.com/OWNER/REPO/blob/COMMIT/{path}#L{line}"
SOURCE = re.compile(r"^(?P<path>.+?)(?::(?P<line>\d+))?$")
# Characters that would end a markdown link or table cell, or an HTML attribute, if left raw.
UNSAFE = {c: f"%{ord(c):02X}" for c in " ()<>\"'|[]`\\"}


def check_template(template: str) -> str:
    """The template if it is usable; else a UsageError naming what is wrong, in one line."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise UsageError(f"--source-url {template!r}: {exc} (use {{path}} and {{line}}, e.g. {EXAMPLE})") from None
    unknown = sorted({n for n in names if n not in FIELDS})
    if unknown:
        raise UsageError(f"--source-url {template!r}: unknown field {{{unknown[0]}}} (only {{path}} and {{line}}, e.g. {EXAMPLE})")
    if "path" not in names:
        raise UsageError(f"--source-url {template!r} has no {{path}} (e.g. {EXAMPLE})")
    scheme = urlsplit(template.replace("{", "").replace("}", "")).scheme
    if scheme and scheme.lower() not in SCHEMES:
        raise UsageError(f"--source-url {template!r}: scheme {scheme}: is not one of {', '.join(SCHEMES)}")
    return template


@dataclass(frozen=True)
class SourceLinks:
    """Turns `file:line` into a URL by a checked template."""

    template: str
    root: Path = field(default_factory=Path.cwd)  # absolute paths under it are made relative to it

    def url(self, source: str | None) -> str | None:
        """The URL of `file:line` (or `file`), None for a file outside the repository."""
        if not source:
            return None
        match = SOURCE.match(source.strip())
        if match is None:
            return None
        path, line = match.group("path"), match.group("line") or ""
        relative = self._relative(path)
        if relative is None:
            return None
        url = self.template.format(path=quote(relative, safe="/-_.~"), line=line)
        return "".join(UNSAFE.get(c, c) for c in url)

    def _relative(self, path: str) -> str | None:
        posix = PurePosixPath(path.replace("\\", "/"))
        if posix.is_absolute():
            try:
                posix = PurePosixPath(Path(path).resolve().relative_to(self.root.resolve()).as_posix())
            except (ValueError, OSError):
                return None
        normal = posixpath.normpath(posix.as_posix())
        if normal == "." or normal == ".." or normal.startswith("../"):
            return None
        return normal
