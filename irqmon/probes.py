"""Probe packs (`probes/*.toml`): what to break on or watch, and what each event means.

A pack is declarative; `plan_capture` resolves the selected packs against one ELF and one
target profile into a `CapturePlan`: concrete addresses, comparators needed, and the meaning
of each hit.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

from irqmon.cortexm.elf import ElfImage
from irqmon.cortexm.registers import SYST_CSR, SYST_RVR
from irqmon.errors import UsageError
from irqmon.resources import data_dir
from irqmon.schema import CONFIG_SYSTICK_CONTROL, CONFIG_SYSTICK_RELOAD, Kind, Role
from irqmon.targets import TargetProfile
from irqmon.validation import NAME, STRING, SYMBOL, Boolean, Integer, ListOf, MapOf, OneOf, Table, Text, read_toml, validate

PACK_DIR = data_dir("probes")
ARG_REGISTERS = ("r0", "r1", "r2", "r3")
KINDS = tuple(k.value for k in Kind)
ROLES = tuple(r.value for r in Role)
ARGUMENT = r"[A-Za-z_][A-Za-z0-9_]*"
MAX_WATCH_BYTES = 1 << 31  # a --watch range (a DWT comparator covers what its mask allows: the planner checks)

# What a pack file may hold (docs/probe-packs.md describes each key).
PACK_SPEC = Table(
    {
        "name": NAME,
        "description": STRING,
        "targets": ListOf(STRING),
        "function": ListOf(Table(
            {"symbols": ListOf(SYMBOL), "kind": OneOf(KINDS), "role": OneOf(ROLES),
             "args": MapOf(ARGUMENT, "an argument name", OneOf(ARG_REGISTERS)),
             "size_arg": Text(ARGUMENT, "an argument name"), "object_arg": Text(ARGUMENT, "an argument name"),
             "returns": Boolean(),
             "object_marker": Table(
                 {"type": SYMBOL, "member": SYMBOL, "equals": Integer(), "role": OneOf(ROLES)},
                 required=frozenset({"type", "member", "equals", "role"}),
             )},
            required=frozenset({"symbols", "kind", "role"}),
        )),
        "dwarf_member": ListOf(Table(
            {"member": SYMBOL, "type": SYMBOL, "kind": OneOf(KINDS), "locked_value": Integer(), "unlocked_value": Integer()},
            required=frozenset({"member", "type"}),
        )),
        "register": ListOf(Table(
            {"name": NAME, "address": Integer(), "size": OneOf((1, 2, 4))}, required=frozenset({"name", "address"})
        )),
        "mask_sites": Table({"scan": Boolean()}, required=frozenset({"scan"})),
        "task": Table(
            {"pointer": SYMBOL, "name_member": SYMBOL, "name_length": Integer(1, 256)},
            required=frozenset({"pointer", "name_member"}),
        ),
        "config": ListOf(Table({"name": NAME, "symbols": ListOf(SYMBOL)}, required=frozenset({"name", "symbols"}))),
    },
    required=frozenset({"name"}),
)  # fmt: skip


@dataclass(frozen=True)
class ObjectMarker:
    """A member of the call's object that, read at the call, changes the row's role: FreeRTOS
    gives a mutex through the queue send, and a mutex is a queue whose `pcHead` is NULL."""

    offset: int
    size: int
    equals: int
    role: str


@dataclass(frozen=True)
class FunctionProbe:
    """Break on a function's entry (and, if `returns`, on its return to the caller)."""

    probe: str
    symbol: str
    address: int
    kind: str
    role: str
    args: dict[str, str] = field(default_factory=dict)  # name -> register
    size_arg: str | None = None
    object_arg: str | None = None
    returns: bool = False
    object_marker: ObjectMarker | None = None


@dataclass(frozen=True)
class WatchProbe:
    """Stop on every access to `address`."""

    probe: str
    symbol: str
    address: int
    size: int
    kind: str
    locked_value: int | None = None
    unlocked_value: int | None = None

    def role(self, access: str, value: int | None) -> str:
        if self.locked_value is None:
            return Role.READ if access == "r" else Role.WRITE
        if access == "r":
            return Role.TEST
        return Role.ACQUIRE if value == self.locked_value else Role.RELEASE


@dataclass(frozen=True)
class MaskProbe:
    """Break on an instruction that changes a mask register, then step over it."""

    probe: str
    address: int
    function: str
    register: str
    role: str
    text: str


@dataclass(frozen=True)
class TaskPointer:
    """Where the current task's control block is, and the offset of its name in it."""

    pointer_address: int
    name_offset: int
    name_length: int = 16


@dataclass(frozen=True)
class ConfigRead:
    name: str
    symbol: str
    address: int
    size: int


# Read from every target at the end of a capture: SysTick's configured period (architectural
# registers, whatever the firmware).
SYSTICK_CONFIGS = (
    ConfigRead(CONFIG_SYSTICK_CONTROL, "SYST_CSR", SYST_CSR, 4),
    ConfigRead(CONFIG_SYSTICK_RELOAD, "SYST_RVR", SYST_RVR, 4),
)


@dataclass
class CapturePlan:
    packs: list[str]
    functions: list[FunctionProbe] = field(default_factory=list)
    watches: list[WatchProbe] = field(default_factory=list)
    masks: list[MaskProbe] = field(default_factory=list)
    task: TaskPointer | None = None
    configs: list[ConfigRead] = field(default_factory=list)

    @property
    def breakpoints_needed(self) -> int:
        """Entry breakpoints, one return breakpoint per returning function, one per mask site."""
        returning = sum(1 for f in self.functions if f.returns)
        return len(self.functions) + returning + len(self.masks)

    @property
    def watchpoints_needed(self) -> int:
        return len(self.watches)

    def cost_by_pack(self) -> dict[str, tuple[int, int]]:
        cost: dict[str, list[int]] = {name: [0, 0] for name in self.packs}
        for f in self.functions:
            cost[f.probe][0] += 2 if f.returns else 1
        for m in self.masks:
            cost[m.probe][0] += 1
        for w in self.watches:
            cost[w.probe][1] += 1
        return {name: (b, w) for name, (b, w) in cost.items()}


@dataclass(frozen=True)
class Pack:
    name: str
    description: str
    path: Path
    data: dict


def available_packs(directory: Path = PACK_DIR) -> dict[str, Pack]:
    packs = {}
    for path in sorted(directory.glob("*.toml")):
        pack = load_pack(path)
        packs[pack.name] = pack
    return packs


def load_pack(path: Path) -> Pack:
    """A pack file, checked against `PACK_SPEC` (one line naming the key on any mismatch)."""
    data = read_toml(path, "probe pack")
    validate(data, PACK_SPEC, path, "probe pack")
    for index, entry in enumerate(data.get("function", [])):
        for key in ("size_arg", "object_arg"):
            if key in entry and entry[key] not in entry.get("args", {}):
                raise UsageError(f"bad probe pack {path}: function[{index}].{key}: '{entry[key]}' is not one of its args")
        if "object_marker" in entry and "object_arg" not in entry:
            raise UsageError(f"bad probe pack {path}: function[{index}].object_marker: needs an object_arg to read it from")
    return Pack(data["name"], data.get("description", ""), path, data)


def _target_matches(pack: Pack, target: TargetProfile) -> bool:
    patterns = pack.data.get("targets")
    return not patterns or any(fnmatch.fnmatch(target.name, p) for p in patterns)


def _code_words(elf: ElfImage) -> set[int]:
    """Every aligned 32-bit word in the functions' bodies (their literal pools included)."""
    words: set[int] = set()
    for symbol in elf.symbols.values():
        if symbol.is_function and symbol.size:
            code = elf.read_code(symbol.address, symbol.size)
            start = (4 - symbol.address % 4) % 4
            words.update(int.from_bytes(code[i : i + 4], "little") for i in range(start, len(code) - 3, 4))
    return words


def resolve_pack(pack: Pack, elf: ElfImage, target: TargetProfile, code_words: set[int] | None = None) -> CapturePlan:
    """The part of `pack` that exists in this ELF on this target."""
    plan = CapturePlan(packs=[pack.name])
    if not _target_matches(pack, target):
        return plan
    probed: set[int] = set()
    for entry in pack.data.get("function", []):
        marker = _object_marker(entry.get("object_marker"), elf)
        for symbol_name in entry["symbols"]:
            symbol = elf.symbols.get(symbol_name)
            if symbol is None or not symbol.is_function or symbol.address in probed:
                continue  # aliases (iprintf = printf in newlib-nano) are probed once
            probed.add(symbol.address)
            plan.functions.append(
                FunctionProbe(
                    probe=pack.name, symbol=symbol_name, address=symbol.address,
                    kind=entry["kind"], role=entry["role"], args=dict(entry.get("args", {})),
                    size_arg=entry.get("size_arg"), object_arg=entry.get("object_arg"),
                    returns=bool(entry.get("returns", False)), object_marker=marker,
                )
            )  # fmt: skip
    for entry in pack.data.get("dwarf_member", []):
        for obj in elf.objects_with_member(entry["member"], entry["type"]):
            plan.watches.append(
                WatchProbe(pack.name, obj.name, obj.address, obj.size, entry.get("kind", Kind.LOCK),
                           entry.get("locked_value"), entry.get("unlocked_value"))
            )  # fmt: skip
    registers = pack.data.get("register", [])
    if registers:
        words = code_words if code_words is not None else _code_words(elf)
        pages = {word & ~0xFFF for word in words}
        for entry in registers:
            # Compilers load a peripheral's address, its base, or a nearby constant and add an
            # offset: a literal in the register's 4 KiB page is the sign that code touches it.
            if entry["address"] & ~0xFFF in pages:
                plan.watches.append(
                    WatchProbe(pack.name, entry["name"], entry["address"], entry.get("size", 4), Kind.SHARED_REGISTER)
                )
    if pack.data.get("mask_sites", {}).get("scan"):
        plan.masks = [
            MaskProbe(pack.name, s.address, s.function, s.register, s.role, s.text) for s in elf.mask_sites
        ]
    task = pack.data.get("task")
    if task and task["pointer"] in elf.symbols:
        offset = elf.member_offset(task["pointer"], task["name_member"])
        if offset is not None:
            plan.task = TaskPointer(elf.symbols[task["pointer"]].address, offset, task.get("name_length", 16))
    for entry in pack.data.get("config", []):
        for symbol_name in entry["symbols"]:
            symbol = elf.symbols.get(symbol_name)
            if symbol is not None and not symbol.is_function:
                plan.configs.append(ConfigRead(entry["name"], symbol_name, symbol.address, symbol.size or 4))
    return plan


def _object_marker(marker: dict | None, elf: ElfImage) -> ObjectMarker | None:
    """The marker's member located through DWARF (none where the ELF does not describe it)."""
    found = elf.struct_member(marker["type"], marker["member"]) if marker else None
    if marker is None or found is None:
        return None
    offset, size = found
    return ObjectMarker(offset, size if size in (1, 2, 4) else 4, marker["equals"], marker["role"])


def is_useful(plan: CapturePlan) -> bool:
    return bool(plan.functions or plan.watches or plan.masks or plan.task)


def plan_capture(
    elf: ElfImage,
    target: TargetProfile,
    selected: list[str] | None,
    extra_watches: list[WatchProbe] = (),
    pack_dir: Path = PACK_DIR,
) -> CapturePlan:
    """Resolve the chosen packs by name or .toml path (default: every built-in pack that finds
    something in the ELF)."""
    packs = available_packs(pack_dir)
    for name in list(selected or ()):
        if name.endswith(".toml"):  # a pack file of the user's own
            pack = load_pack(Path(name))
            packs[pack.name] = pack
            selected[selected.index(name)] = pack.name
    if selected:
        unknown = [name for name in selected if name not in packs]
        if unknown:
            raise UsageError(f"unknown probe pack '{unknown[0]}': known are {', '.join(packs)}")
        chosen = [packs[name] for name in selected]
    else:
        chosen = list(packs.values())
    words = _code_words(elf)
    plan = CapturePlan(packs=[])
    for pack in chosen:
        part = resolve_pack(pack, elf, target, words)
        if selected or is_useful(part):
            plan.packs.append(pack.name)
            plan.functions += part.functions
            plan.watches += part.watches
            plan.masks += part.masks
            plan.configs += part.configs
            plan.task = plan.task or part.task
    if extra_watches:
        plan.packs.append("watch")
        plan.watches += list(extra_watches)
    plan.configs += SYSTICK_CONFIGS
    return plan


def parse_watch(spec: str, elf: ElfImage) -> WatchProbe:
    """`--watch SYMBOL_OR_ADDRESS[:SIZE]` as a watch probe."""
    name, _, size_text = spec.partition(":")
    try:
        size = int(size_text, 0) if size_text else None
    except ValueError:
        raise UsageError(f"--watch {spec}: size must be a number of bytes") from None
    if size is not None and not 0 < size <= MAX_WATCH_BYTES:
        raise UsageError(f"--watch {spec}: size must be a number of bytes from 1 to {MAX_WATCH_BYTES}")
    symbol = elf.symbols.get(name)
    if symbol is not None:
        return WatchProbe("watch", name, symbol.address, size or min(symbol.size or 4, 4), Kind.WATCH)
    try:
        address = int(name, 0)
    except ValueError:
        raise UsageError(f"--watch {spec}: no symbol '{name}' in {elf.path.name}, and not an address") from None
    return WatchProbe("watch", f"0x{address:08x}", address, size or 4, Kind.WATCH)
