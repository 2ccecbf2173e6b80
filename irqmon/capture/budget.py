"""Fitting a capture plan into the chip's comparators: sites, their ranking, and the sets to arm.

A *site* is what is armed and disarmed as one: a probed function (its return breakpoint
reserved with it when it returns), a pair that only means something together (a critical
section's enter and exit, a mutex's take and give), the mask instructions of one function, or
one watched object. Sites are ranked by what the rules need most, then cut into comparator
sets that each fit the FPB and DWT budget. The first set is the one armed without rotation.

Ranking: a site reachable from an exception handler (through direct calls in the ELF, starting
at the vector table's handlers) comes before a thread-only one; watched objects (HAL Lock
fields, shared registers, --watch) always count as reachable, since loads and stores through
pointers cannot be followed. Ties go by kind, in `KIND_RANK` order, then by address.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property

from irqmon.cortexm import thumb
from irqmon.cortexm.elf import ElfImage
from irqmon.errors import UsageError
from irqmon.probes import CapturePlan, FunctionProbe, MaskProbe, WatchProbe
from irqmon.schema import Kind, Role
from irqmon.targets import TargetProfile

# Kinds in the order their sites are armed first: what the error-level rules in handlers need.
KIND_RANK = (
    Kind.HEAP, Kind.MUTEX, Kind.LOCK, Kind.CRITICAL_SECTION, Kind.RTOS_FROMISR, Kind.RTOS_API,
    Kind.BLOCKING, Kind.NON_REENTRANT, Kind.SHARED_REGISTER, Kind.WATCH,
)  # fmt: skip
# Function kinds whose probes in one pack are armed together: one half alone misleads the rules.
PAIRED_KINDS = (Kind.CRITICAL_SECTION, Kind.MUTEX)
# The pair a role belongs to, for a probe whose object marker gives its rows that role.
PAIR_OF_ROLE = {Role.ENTER: Kind.CRITICAL_SECTION, Role.EXIT: Kind.CRITICAL_SECTION, Role.ACQUIRE: Kind.MUTEX, Role.RELEASE: Kind.MUTEX}


@dataclass(frozen=True, eq=False)
class Site:
    """Probes armed and disarmed as one (each site is its own: compared by identity)."""

    name: str
    kind: str
    probe: str
    functions: tuple[FunctionProbe, ...] = ()
    masks: tuple[MaskProbe, ...] = ()
    watches: tuple[WatchProbe, ...] = ()
    in_handlers: bool = True  # reachable from an exception handler (or cannot be told)

    @property
    def breakpoints(self) -> int:
        """Entry breakpoints, a return breakpoint per returning function, one per mask site."""
        return sum(2 if f.returns else 1 for f in self.functions) + len(self.masks)

    @property
    def watchpoints(self) -> int:
        return len(self.watches)

    @property
    def rank(self) -> tuple[int, int, int]:
        kind = KIND_RANK.index(self.kind) if self.kind in KIND_RANK else len(KIND_RANK)
        first = min([p.address for p in (*self.functions, *self.masks, *self.watches)], default=0)
        return (0 if self.in_handlers else 1, kind, first)


@dataclass(frozen=True)
class ArmingPlan:
    """The ranked sites and the comparator sets they are armed in, first set first."""

    sites: tuple[Site, ...]
    sets: tuple[tuple[Site, ...], ...]
    fpb_budget: int | None  # None: unlimited
    dwt_budget: int | None

    @property
    def rotates(self) -> bool:
        return len(self.sets) > 1

    @property
    def first(self) -> tuple[Site, ...]:
        return self.sets[0] if self.sets else ()

    @property
    def left_out(self) -> tuple[Site, ...]:
        """The sites the first set does not arm (armed only by rotation)."""
        armed = set(self.first)
        return tuple(site for site in self.sites if site not in armed)


@dataclass
class _CallGraph:
    """Direct calls and jumps between the ELF's functions (branches to another function)."""

    elf: ElfImage
    reachable: set[str] = field(default_factory=set)

    @cached_property
    def callees(self) -> dict[str, set[str]]:
        graph: dict[str, set[str]] = defaultdict(set)
        for symbol in self.elf.symbols.values():
            if not symbol.is_function or not symbol.size:
                continue
            for insn in self.elf.instructions(symbol.name):
                if not thumb.may_branch_directly(insn):
                    continue
                target = thumb.branch_target(insn)
                callee = self.elf.function_at(target[0]) if target else None
                if callee and callee != symbol.name:
                    graph[symbol.name].add(callee)
        return graph

    def from_handlers(self) -> set[str]:
        """Every function a vector-table handler reaches by direct branches, the handlers too."""
        todo = [name for address in self.elf.exception_handlers if (name := self.elf.function_at(address))]
        seen: set[str] = set()
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(self.callees.get(name, ()))
        return seen


def paired_kind(probe: FunctionProbe) -> str | None:
    """The pair `probe` is armed with: its own kind when paired, or the pair of the role its
    object marker gives (FreeRTOS's queue send is a mutex's give); None when it stands alone."""
    if probe.kind in PAIRED_KINDS:
        return probe.kind
    return PAIR_OF_ROLE.get(probe.object_marker.role) if probe.object_marker else None


def sites_of(plan: CapturePlan, elf: ElfImage) -> list[Site]:
    """The plan's probes as sites, ranked (most needed first)."""
    handlers = _CallGraph(elf).from_handlers() if elf.exception_handlers else None

    def reached(*functions: str) -> bool:
        return handlers is None or any(name in handlers for name in functions)

    sites: list[Site] = []
    paired: dict[tuple[str, str], list[FunctionProbe]] = defaultdict(list)
    for probe in plan.functions:
        if pair := paired_kind(probe):
            paired[(probe.probe, pair)].append(probe)
        else:
            sites.append(Site(probe.symbol, probe.kind, probe.probe, functions=(probe,), in_handlers=reached(probe.symbol)))
    for (pack, kind), probes in paired.items():
        names = [p.symbol for p in probes]
        sites.append(Site("+".join(names), kind, pack, functions=tuple(probes), in_handlers=reached(*names)))
    by_function: dict[str, list[MaskProbe]] = defaultdict(list)
    for mask in plan.masks:
        by_function[mask.function].append(mask)
    for function, masks in by_function.items():
        sites.append(Site(f"{function} masks", Kind.CRITICAL_SECTION, masks[0].probe, masks=tuple(masks), in_handlers=reached(function)))
    for watch in plan.watches:
        sites.append(Site(watch.symbol, watch.kind, watch.probe, watches=(watch,)))
    return sorted(sites, key=lambda site: site.rank)


def arming_plan(plan: CapturePlan, elf: ElfImage, target: TargetProfile, unlimited: bool, reserved_breakpoints: int = 0) -> ArmingPlan:
    """The plan's sites in comparator sets that fit `target` (one set when `unlimited`).
    `reserved_breakpoints`: FPB comparators the capture keeps for itself (--until).
    A site that alone needs more than the chip has is bad input (UsageError)."""
    sites = sites_of(plan, elf)
    for site in sites:
        _check_watch_fits(site, target)
    if unlimited:
        return ArmingPlan(tuple(sites), (tuple(sites),) if sites else (), None, None)
    if reserved_breakpoints > target.fpb_comparators:
        raise UsageError(f"--until needs an FPB comparator but {target.name} has {target.fpb_comparators}")
    fpb = target.fpb_comparators - reserved_breakpoints
    dwt = target.dwt_comparators
    fitted: list[Site] = []
    for site in sites:
        fitted.extend(_split_to_fit(site, fpb, dwt, target))
    breakpoint_sets = _pack([s for s in fitted if s.breakpoints], lambda s: s.breakpoints, fpb)
    watch_sets = _pack([s for s in fitted if s.watchpoints], lambda s: s.watchpoints, dwt)
    count = max(len(breakpoint_sets), len(watch_sets))
    sets = tuple(
        tuple((breakpoint_sets[i % len(breakpoint_sets)] if breakpoint_sets else []) + (watch_sets[i % len(watch_sets)] if watch_sets else []))
        for i in range(count)
    )
    return ArmingPlan(tuple(fitted), sets, fpb, dwt)


def comparator_block(address: int, size: int) -> tuple[int, int]:
    """The aligned power-of-two block one DWT comparator watches to cover `size` bytes at
    `address` (the comparator ignores the address's low MASK bits): (base, length)."""
    length = 1
    while (address & ~(length - 1)) + length < address + size:
        length *= 2
    return address & ~(length - 1), length


def _check_watch_fits(site: Site, target: TargetProfile) -> None:
    """A watched range whose covering block is wider than the DWT's largest mask is bad input."""
    for watch in site.watches:
        base, length = comparator_block(watch.address, watch.size)
        widest = 1 << target.dwt_mask_bits
        if length > widest:
            raise UsageError(
                f"watch {watch.symbol} ({watch.size} bytes at 0x{watch.address:08x}): the aligned block a DWT "
                f"comparator would cover is {length} bytes at 0x{base:08x}, but {target.name}'s DWT masks at most "
                f"{widest} bytes (2^{target.dwt_mask_bits}): watch a smaller range"
            )


def _split_to_fit(site: Site, fpb: int, dwt: int, target: TargetProfile) -> list[Site]:
    """`site`, or its probes one by one where together they need more than the budget; a probe
    that alone needs more is bad input."""
    if site.breakpoints <= fpb and site.watchpoints <= dwt:
        return [site]
    parts = [Site(f.symbol, site.kind, site.probe, functions=(f,), in_handlers=site.in_handlers) for f in site.functions]
    parts += [Site(f"{m.function} {m.text} at 0x{m.address:08x}", site.kind, site.probe, masks=(m,), in_handlers=site.in_handlers) for m in site.masks]
    parts += [Site(w.symbol, site.kind, site.probe, watches=(w,), in_handlers=site.in_handlers) for w in site.watches]
    if len(parts) == 1:
        part = parts[0]
        need = f"{part.breakpoints} FPB" if part.breakpoints > fpb else f"{part.watchpoints} DWT"
        have = f"{max(fpb, 0)} FPB" if part.breakpoints > fpb else f"{dwt} DWT"
        raise UsageError(
            f"probe site {part.name} ({part.probe}) alone needs {need} comparators but {target.name} has {have} "
            "free: drop it with --probes (or its --watch)"
        )
    return [piece for part in parts for piece in _split_to_fit(part, fpb, dwt, target)]


def _pack(sites: list[Site], cost, budget: int) -> list[list[Site]]:
    """Ranked sites into sets of at most `budget` comparators: each set takes, in rank order,
    every site that still fits (first fit), so the first set holds the highest-ranked."""
    sets: list[list[Site]] = []
    free: list[int] = []
    for site in sites:
        for index, room in enumerate(free):
            if cost(site) <= room:
                sets[index].append(site)
                free[index] -= cost(site)
                break
        else:
            sets.append([site])
            free.append(budget - cost(site))
    return sets
