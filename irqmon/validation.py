"""Declarative checks for the TOML files users write (probe packs, target profiles).

A spec says what a value must be; `check` walks a parsed document against it and raises
`Invalid` with the key path (`function[2].args.size`) and what was expected. Unknown keys
are refused, so a typo is an error and not a setting silently ignored.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from irqmon.errors import UsageError


class Invalid(Exception):
    """A value that does not match its spec: where it is and what was expected there."""

    def __init__(self, path: str, expected: str, value: Any) -> None:
        super().__init__(f"{path or 'the file'}: expected {expected}, got {describe(value)}")
        self.path = path


def describe(value: Any) -> str:
    """A value as the error shows it: its type, and the value itself when short."""
    kinds = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array", dict: "a table"}
    kind = kinds.get(type(value), type(value).__name__)
    if isinstance(value, (bool, int, float)) or (isinstance(value, str) and len(value) <= 40):
        return f"{kind} ({value!r})"
    return kind


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


class Spec:
    """What one value must be."""

    expected = "a value"

    def check(self, value: Any, path: str) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class Text(Spec):
    """A string; with `pattern`, one that matches it whole."""

    pattern: str | None = None
    expected: str = "a string"

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, str) or (self.pattern and not re.fullmatch(self.pattern, value)):
            raise Invalid(path, self.expected, value)


@dataclass(frozen=True)
class Integer(Spec):
    """An integer (not a boolean) in [low, high]."""

    low: int = 0
    high: int = 2**32 - 1

    @property
    def expected(self) -> str:  # type: ignore[override]
        return f"an integer from {self.low} to {self.high}"

    def check(self, value: Any, path: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not self.low <= value <= self.high:
            raise Invalid(path, self.expected, value)


@dataclass(frozen=True)
class Boolean(Spec):
    expected: str = "true or false"

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, bool):
            raise Invalid(path, self.expected, value)


@dataclass(frozen=True)
class OneOf(Spec):
    """One of a few values (strings or integers)."""

    values: tuple[Any, ...]

    @property
    def expected(self) -> str:  # type: ignore[override]
        return "one of " + ", ".join(repr(v) if isinstance(v, str) else str(v) for v in self.values)

    def check(self, value: Any, path: str) -> None:
        if isinstance(value, bool) or value not in self.values:
            raise Invalid(path, self.expected, value)


@dataclass(frozen=True)
class ListOf(Spec):
    """An array whose items all match `item` (`non_empty`: at least one)."""

    item: Spec
    non_empty: bool = True

    @property
    def expected(self) -> str:  # type: ignore[override]
        return f"an array of {self.item.expected.removeprefix('a ').removeprefix('an ')}s"

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, list) or (self.non_empty and not value):
            raise Invalid(path, ("a non-empty " if self.non_empty else "") + self.expected.removeprefix("an "), value)
        for index, item in enumerate(value):
            self.item.check(item, _join(path, index))


@dataclass(frozen=True)
class MapOf(Spec):
    """A table of any keys matching `key` (a regular expression), each value matching `value`."""

    key: str
    key_expected: str
    value: Spec

    @property
    def expected(self) -> str:  # type: ignore[override]
        return f"a table of {self.key_expected} = {self.value.expected}"

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise Invalid(path, self.expected, value)
        for key, item in value.items():
            if not re.fullmatch(self.key, key):
                raise Invalid(_join(path, key), f"a key that is {self.key_expected}", key)
            self.value.check(item, _join(path, key))


@dataclass(frozen=True)
class Table(Spec):
    """A table with known keys: `required` ones must be there, no others may be."""

    fields: dict[str, Spec]
    required: frozenset[str] = field(default_factory=frozenset)
    expected: str = "a table"

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise Invalid(path, self.expected, value)
        for key in value:
            if key not in self.fields:
                raise Invalid(_join(path, key), "no such key (known: " + ", ".join(sorted(self.fields)) + ")", key)
        for key in sorted(self.required - set(value)):
            raise Invalid(_join(path, key), "this key (it is required)", None)
        for key, item in value.items():
            self.fields[key].check(item, _join(path, key))


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """A TOML file as a table; anything that stops it being read is one `UsageError` line."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except IsADirectoryError:
        raise UsageError(f"{what} {path}: is a directory, not a file") from None
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{what} {path}: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{what} {path}: not valid TOML ({exc})") from None


def validate(data: dict[str, Any], spec: Spec, path: Path, what: str) -> None:
    """Check a parsed file against its spec; a mismatch is one line naming the file, the line
    of the offending key where it can be found, the key path and what was expected."""
    try:
        spec.check(data, "")
    except Invalid as exc:
        raise UsageError(f"bad {what} {path}{_line_of(path, exc.path)}: {exc}") from None


def _line_of(path: Path, key_path: str) -> str:
    """':N' for the first line of `path` naming the last key of `key_path`, for messages."""
    names = [part for part in re.split(r"[.\[\]]", key_path) if part and not part.isdigit()]
    if not names:
        return ""
    pattern = re.compile(rf"(^|[\s{{,\[]){re.escape(names[-1])}\s*(=|\]\])")
    try:
        lines: Iterable[str] = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    for number, line in enumerate(lines, 1):
        if pattern.search(line):
            return f":{number}"
    return ""


NAME = Text(r"[A-Za-z_][A-Za-z0-9_.-]*", "a name (letters, digits, _ . -)")
SYMBOL = Text(r"[A-Za-z_.$][A-Za-z0-9_.$@]*", "a symbol name")
STRING = Text()
