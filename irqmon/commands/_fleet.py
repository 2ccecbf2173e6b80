"""Many traces at once, shared by `analyze` and `report`: which traces, where they run (`--dask`),
and their findings merged (`irqmon.fleet`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from irqmon.commands._analysis_options import config_from, function_sources, selected_rules
from irqmon.errors import UsageError
from irqmon.output.terminal import plain

if TYPE_CHECKING:
    from irqmon.fleet.merge import Fleet
    from irqmon.fleet.task import TraceOptions, TraceResult

LOCAL_CLUSTER = "local"  # `--dask` without an address


def add_fleet_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dask", nargs="?", const=LOCAL_CLUSTER, metavar="SCHEDULER",
                        help="analyse each trace as a Dask task: on a local cluster of worker processes, or on the "
                             "scheduler at SCHEDULER (tcp://HOST:PORT); needs the `fleet` extra")  # fmt: skip


def is_fleet(args: argparse.Namespace) -> bool:
    """Several traces, a folder of traces, or `--dask`: each trace analysed on its own, findings merged."""
    return len(args.traces) > 1 or any(path.is_dir() for path in args.traces) or args.dask is not None


def trace_options(args: argparse.Namespace) -> TraceOptions:
    """The analysis options of `args`, checked, as each trace's task takes them."""
    from irqmon.analysis import all_rules
    from irqmon.fleet.task import TraceOptions

    rules = selected_rules(args)
    unknown = [r for r in rules or () if r not in all_rules()]
    if unknown:
        raise UsageError(f"unknown rule {unknown[0]!r} (irqmon analyze --list-rules shows them)")
    return TraceOptions(rules, config_from(args), *_elf_and_build(args.elf), use_recorded_elf=not args.no_elf)


def fleet_of(args: argparse.Namespace, options: TraceOptions, ignored: set[str] | None = None) -> Fleet:
    """The traces of `args.traces` analysed with `options`, each failed one named on stderr with
    its error as its result arrives; findings merged, `ignored` fingerprints left out."""
    from irqmon.fleet.merge import merge
    from irqmon.fleet.run import analyze_in_process, analyze_on_dask
    from irqmon.fleet.traces import trace_files

    address = scheduler_address(args.dask)
    paths = trace_files(args.traces)
    if args.dask is None:
        running = analyze_in_process(paths, options)
    else:
        running = analyze_on_dask(paths, options, address)
    results = []
    for result in running:
        if result.error is not None:
            print(f"irqmon: {plain(result.error)}", file=sys.stderr)
        results.append(result)
    return merge(results, ignored)


def function_sources_of(options: TraceOptions) -> Callable[[TraceResult], Callable[[str], str | None]]:
    """For a trace's result, `file:line` of a function by name from the ELF its source lines came
    from (each ELF read once)."""
    from irqmon.fleet.task import source_elf

    read: dict[Path | None, Callable[[str], str | None]] = {}

    def of(result: TraceResult) -> Callable[[str], str | None]:
        elf = source_elf(result.metadata, options)
        if elf not in read:
            read[elf] = function_sources(elf)
        return read[elf]

    return of


def every_trace_failed(fleet: Fleet) -> bool:
    """True (after saying so on stderr) when no trace could be analysed."""
    if fleet.analysed:
        return False
    print(f"irqmon: no trace could be analysed ({len(fleet.failed)} failed)", file=sys.stderr)
    return True


def scheduler_address(dask: str | None) -> str | None:
    """The scheduler `--dask` names; None for a local cluster or without `--dask`."""
    if dask is None or dask == LOCAL_CLUSTER:
        return None
    if "://" not in dask and Path(dask).exists():
        raise UsageError(f"--dask {dask}: that is a trace, not a scheduler address; give tcp://HOST:PORT, or put --dask after the traces")
    return dask


def _elf_and_build(elf: Path | None) -> tuple[str | None, str | None]:
    """`--elf` and its build id: it gives the source lines of the traces recorded from that build."""
    if elf is None:
        return None, None
    from irqmon.cortexm.elf import ElfImage

    image = ElfImage(elf)
    try:
        return str(elf), image.build_id or None
    finally:
        image.close()
