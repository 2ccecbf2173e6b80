"""A frame of the call stack, as every backend reports it (innermost first)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Frame:
    function: str  # the function's name; schema.EXCEPTION_FRAME for an exception entry
    pc: int
