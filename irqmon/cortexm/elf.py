"""What the capture and the analyzer need from the firmware's ELF file: symbols, code bytes,
source lines, and DWARF-found objects (HAL `Lock` fields). `ElfImage` is the one way irqmon
opens an ELF: the unwinder reads its DWARF through it too."""

from __future__ import annotations

import bisect
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.constants import P_FLAGS
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import NoteSection, SymbolTableSection

from irqmon.cortexm import thumb
from irqmon.errors import UsageError

EM_ARM = "EM_ARM"


@dataclass(frozen=True)
class Symbol:
    name: str
    address: int  # Thumb bit cleared for functions
    size: int
    is_function: bool


@dataclass(frozen=True)
class DwarfObject:
    """A memory location found through DWARF types, e.g. `hi2c1.Lock`."""

    name: str
    address: int
    size: int
    type_name: str


@dataclass(frozen=True)
class MaskSite:
    """An instruction that changes PRIMASK/BASEPRI/FAULTMASK, in function `function`."""

    address: int
    next_address: int
    function: str
    register: str
    role: str
    text: str


class ElfImage:
    """A firmware image, read once. Raises UsageError for anything that is not usable."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self._file = open(self.path, "rb")
        except OSError as exc:
            raise UsageError(f"cannot open ELF {self.path}: {exc.strerror}") from None
        try:
            self._elf = ELFFile(self._file)
            self._check_whole()
            symbols = self.symbols
        except (ELFError, OSError, struct.error, ValueError) as exc:
            self._file.close()
            raise UsageError(f"{self.path} is not an ELF file, or not a whole one ({exc})") from None
        except UsageError:
            self._file.close()
            raise
        if self._elf["e_machine"] != EM_ARM:
            raise UsageError(f"{self.path} is not an ARM ELF (machine {self._elf['e_machine']})")
        if not symbols:
            raise UsageError(f"{self.path} is stripped: irqmon needs its symbol table (build with -g, don't strip)")

    def _check_whole(self) -> None:
        """Refuse a truncated file up front (else pyelftools fails deep in a later read)."""
        size = os.fstat(self._file.fileno()).st_size
        for section in self._elf.iter_sections():
            if section["sh_type"] != "SHT_NOBITS" and section["sh_offset"] + section["sh_size"] > size:
                raise UsageError(f"{self.path} is truncated: section {section.name} ends past its {size} bytes")

    @property
    def elffile(self) -> ELFFile:
        """pyelftools' view of the file, for readers of its DWARF (the unwinder)."""
        return self._elf

    @cached_property
    def symbols(self) -> dict[str, Symbol]:
        table = self._elf.get_section_by_name(".symtab")
        if not isinstance(table, SymbolTableSection):
            return {}
        found: dict[str, Symbol] = {}
        for sym in table.iter_symbols():
            kind = sym["st_info"]["type"]
            if not sym.name or kind not in ("STT_FUNC", "STT_OBJECT") or sym["st_shndx"] == "SHN_UNDEF":
                continue
            is_function = kind == "STT_FUNC"
            address = sym["st_value"] & ~1 if is_function else sym["st_value"]
            if sym.name not in found or sym["st_info"]["bind"] == "STB_GLOBAL":
                found[sym.name] = Symbol(sym.name, address, sym["st_size"], is_function)
        return found

    @cached_property
    def _function_ranges(self) -> tuple[list[int], list[Symbol]]:
        functions = sorted((s for s in self.symbols.values() if s.is_function), key=lambda s: s.address)
        return [s.address for s in functions], functions

    def function_at(self, pc: int) -> str | None:
        starts, functions = self._function_ranges
        index = bisect.bisect_right(starts, pc & ~1) - 1
        if index < 0:
            return None
        symbol = functions[index]
        return symbol.name if pc < symbol.address + max(symbol.size, 2) else None

    @cached_property
    def build_id(self) -> str:
        for section in self._elf.iter_sections():
            if isinstance(section, NoteSection):
                for note in section.iter_notes():
                    if note["n_type"] == "NT_GNU_BUILD_ID":
                        return str(note["n_desc"])
        return ""

    @property
    def has_dwarf(self) -> bool:
        return self._elf.has_dwarf_info()

    def read_code(self, address: int, size: int) -> bytes:
        """Bytes of the loaded image at `address` (from whichever section holds them)."""
        for segment in self._elf.iter_segments():
            if segment["p_type"] != "PT_LOAD":
                continue
            start = segment["p_vaddr"]
            if start <= address and address + size <= start + segment["p_filesz"]:
                data = segment.data()
                return data[address - start : address - start + size]
        return b""

    @cached_property
    def read_only_ranges(self) -> list[tuple[int, int]]:
        """Address ranges of the loaded, non-writable segments: code and constants, which a
        backend reads from the file instead of the target."""
        return [
            (s["p_vaddr"], s["p_vaddr"] + s["p_filesz"])
            for s in self._elf.iter_segments()
            if s["p_type"] == "PT_LOAD" and not s["p_flags"] & P_FLAGS.PF_W
        ]

    @cached_property
    def _vector_table(self) -> tuple[int, int, list[tuple[int, int]]] | None:
        """Where the vector table is (the one whose reset vector is the entry point, a Thumb
        address), the end of its segment, and the image's code ranges; None where no loaded
        segment starts with it."""
        entry = self._elf["e_entry"] | 1
        loaded = [(g["p_vaddr"], g["p_vaddr"] + g["p_filesz"], g["p_flags"]) for g in self._elf.iter_segments() if g["p_type"] == "PT_LOAD"]
        code = [(start, end) for start, end, flags in loaded if flags & P_FLAGS.PF_X]
        for start, end, _ in loaded:
            head = self.read_code(start, 8)
            if len(head) == 8 and int.from_bytes(head[4:8], "little") == entry:
                return start, end, code
        return None

    @cached_property
    def interrupt_vectors(self) -> int | None:
        """How many IRQ entries the image's vector table has, or None where it cannot be told:
        the words after the 16 system entries count while they are handlers (Thumb addresses in
        the image's code) or empty (0)."""
        if self._vector_table is None:
            return None
        start, end, code = self._vector_table
        words = self.read_code(start, min(end - start, 4 * (16 + 496)))
        count = 0
        for offset in range(4 * 16, len(words) - 3, 4):
            word = int.from_bytes(words[offset : offset + 4], "little")
            if word and not (word & 1 and any(lo <= word < hi for lo, hi in code)):
                break
            count += 1
        return count

    @cached_property
    def initial_stack_pointer(self) -> int | None:
        """The main stack's top: the vector table's first word (None without a vector table)."""
        if self._vector_table is None:
            return None
        return int.from_bytes(self.read_code(self._vector_table[0], 4), "little")

    @cached_property
    def exception_handlers(self) -> set[int]:
        """The addresses of the handlers in the vector table, reset's own left out: it runs in
        thread mode."""
        if self._vector_table is None:
            return set()
        start, end, _ = self._vector_table
        words = self.read_code(start, min(end - start, 4 * (16 + (self.interrupt_vectors or 0))))
        handlers = {int.from_bytes(words[i : i + 4], "little") & ~1 for i in range(8, len(words) - 3, 4)}
        return {address for address in handlers if address and address != self._elf["e_entry"] & ~1}

    def instructions(self, function: str) -> Iterator[thumb.Instruction]:
        """The function's instructions, its literal pools left out."""
        symbol = self.symbols[function]
        yield from thumb.iter_instructions(self.read_code(symbol.address, symbol.size), symbol.address, self.data_in_code)

    @cached_property
    def data_in_code(self) -> list[tuple[int, int]]:
        """The (start, end) ranges that `$d` mapping symbols mark as data (literal pools), each
        up to the next mapping symbol (AAELF 5.5.5)."""
        table = self._elf.get_section_by_name(".symtab")
        if not isinstance(table, SymbolTableSection):
            return []
        marks = sorted(
            (sym["st_value"], sym.name[1])
            for sym in table.iter_symbols()
            if sym.name[:2] in ("$d", "$t", "$a") and sym.name[2:3] in ("", ".") and sym["st_shndx"] != "SHN_UNDEF"
        )
        ranges = []
        for (address, kind), following in zip(marks, [*marks[1:], (None, "")]):
            if kind == "d" and following[0] is not None and following[0] > address:
                ranges.append((address, following[0]))
        return ranges

    @cached_property
    def mask_sites(self) -> list[MaskSite]:
        """Every cpsid/cpsie/msr-to-a-mask-register instruction in the code."""
        sites = []
        for symbol in self.symbols.values():
            if not symbol.is_function or symbol.size == 0:
                continue
            for insn in self.instructions(symbol.name):
                change = thumb.mask_change(insn)
                if change:
                    sites.append(
                        MaskSite(insn.address, insn.end, symbol.name, change.register, change.role, change.text)
                    )
        return sorted(sites, key=lambda site: site.address)

    @cached_property
    def _instruction_starts(self) -> list[int]:
        starts: set[int] = set()
        for symbol in self.symbols.values():
            if symbol.is_function and symbol.size:
                starts.update(insn.address for insn in self.instructions(symbol.name))
        return sorted(starts)

    def instruction_before(self, pc: int) -> thumb.Instruction | None:
        """The instruction that ends at `pc` (where a watchpoint access happened)."""
        starts = self._instruction_starts
        index = bisect.bisect_left(starts, pc) - 1
        if index < 0:
            return None
        return self.instruction_at(starts[index])

    def instruction_at(self, address: int) -> thumb.Instruction | None:
        code = self.read_code(address, 4) or self.read_code(address, 2)
        return next(thumb.iter_instructions(code, address), None)

    # --- DWARF line table -------------------------------------------------------------

    @cached_property
    def _line_table(self) -> tuple[list[int], list[str]]:
        rows: list[tuple[int, str]] = []
        if not self.has_dwarf:
            return [], []
        dwarf = self._elf.get_dwarf_info()
        for cu in dwarf.iter_CUs():
            program = dwarf.line_program_for_CU(cu)
            if program is None:
                continue
            comp_dir = _attr_text(cu.get_top_DIE(), "DW_AT_comp_dir") or ""
            version = program.header["version"]
            files = program.header["file_entry"]
            dirs = program.header["include_directory"]
            for entry in program.get_entries():
                state = entry.state
                if state is None or state.end_sequence:
                    continue
                file_index = state.file if version >= 5 else state.file - 1
                if not 0 <= file_index < len(files):
                    continue
                file_entry = files[file_index]
                dir_index = file_entry.dir_index if version >= 5 else file_entry.dir_index - 1
                directory = dirs[dir_index].decode() if 0 <= dir_index < len(dirs) else ""
                path = os.path.join(comp_dir, directory, file_entry.name.decode())
                rows.append((state.address, f"{_display_path(path)}:{state.line}"))
        rows.sort(key=lambda row: row[0])
        return [row[0] for row in rows], [row[1] for row in rows]

    def source_line(self, pc: int) -> str | None:
        """`file:line` for `pc`, the path relative to the working directory when below it."""
        addresses, lines = self._line_table
        index = bisect.bisect_right(addresses, pc & ~1) - 1
        if index < 0:
            return None
        function = self.function_at(pc)
        if function is None or self.function_at(addresses[index]) != function:
            return None
        return lines[index]

    # --- DWARF objects ------------------------------------------------------------------

    def objects_with_member(self, member: str, type_name: str) -> list[DwarfObject]:
        """Global variables whose struct type has `member` of type `type_name`, e.g. every
        HAL handle's `Lock` field: (`hi2c1.Lock`, its address, its size)."""
        found = []
        for name, address, type_die in self._global_variables():
            struct = _strip_type(type_die)
            if struct is None or struct.tag != "DW_TAG_structure_type":
                continue
            for child in struct.iter_children():
                if child.tag != "DW_TAG_member" or _attr_text(child, "DW_AT_name") != member:
                    continue
                member_type = child.get_DIE_from_attribute("DW_AT_type")
                if _type_name(member_type) != type_name:
                    continue
                offset = child.attributes.get("DW_AT_data_member_location")
                if offset is None or not isinstance(offset.value, int):
                    continue
                size = _byte_size(member_type) or 4
                found.append(DwarfObject(f"{name}.{member}", address + offset.value, size, type_name))
        return sorted(found, key=lambda obj: obj.address)

    def member_offset(self, pointer_variable: str, member: str) -> int | None:
        """Offset of `member` in the struct that global pointer `pointer_variable` points to
        (e.g. `pcTaskName` in the TCB `pxCurrentTCB` points to)."""
        for name, _address, type_die in self._global_variables():
            if name != pointer_variable:
                continue
            pointer = _strip_type(type_die)
            if pointer is None or pointer.tag != "DW_TAG_pointer_type" or "DW_AT_type" not in pointer.attributes:
                return None
            struct = _strip_type(pointer.get_DIE_from_attribute("DW_AT_type"))
            for child in struct.iter_children() if struct is not None else ():
                if child.tag == "DW_TAG_member" and _attr_text(child, "DW_AT_name") == member:
                    offset = child.attributes.get("DW_AT_data_member_location")
                    return offset.value if offset is not None and isinstance(offset.value, int) else None
        return None

    def struct_member(self, struct_name: str, member: str) -> tuple[int, int] | None:
        """Offset and size of `member` in the struct type named `struct_name` (its tag or a
        typedef of it, e.g. `pcHead` in FreeRTOS's `QueueDefinition`), from the first
        compilation unit that defines it."""
        if not self.has_dwarf:
            return None
        for cu in self._elf.get_dwarf_info().iter_CUs():
            for die in cu.get_top_DIE().iter_children():
                if _attr_text(die, "DW_AT_name") != struct_name:
                    continue
                struct = _strip_type(die)
                if struct is None or struct.tag != "DW_TAG_structure_type" or not struct.has_children:
                    continue
                for child in struct.iter_children():
                    offset = child.attributes.get("DW_AT_data_member_location")
                    if child.tag == "DW_TAG_member" and _attr_text(child, "DW_AT_name") == member and offset is not None:
                        if isinstance(offset.value, int):
                            return offset.value, _byte_size(child.get_DIE_from_attribute("DW_AT_type")) or 4
        return None

    def _global_variables(self) -> Iterator[tuple[str, int, object]]:
        if not self.has_dwarf:
            return
        for cu in self._elf.get_dwarf_info().iter_CUs():
            for die in cu.get_top_DIE().iter_children():
                if die.tag != "DW_TAG_variable" or "DW_AT_location" not in die.attributes:
                    continue
                location = die.attributes["DW_AT_location"].value
                # DW_OP_addr (0x03) followed by a 4-byte address: a static location.
                if not isinstance(location, list) or len(location) != 5 or location[0] != 0x03:
                    continue
                address = int.from_bytes(bytes(location[1:5]), "little")
                spec = die
                if "DW_AT_specification" in die.attributes:
                    spec = die.get_DIE_from_attribute("DW_AT_specification")
                name = _attr_text(spec, "DW_AT_name")
                if name and "DW_AT_type" in spec.attributes:
                    yield name, address, spec.get_DIE_from_attribute("DW_AT_type")

    def close(self) -> None:
        self._file.close()


def _attr_text(die, name: str) -> str | None:
    attr = die.attributes.get(name)
    if attr is None:
        return None
    value = attr.value
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


_QUALIFIERS = ("DW_TAG_typedef", "DW_TAG_volatile_type", "DW_TAG_const_type")


def _strip_type(die):
    """Follow typedefs and qualifiers to the underlying type."""
    while die is not None and die.tag in _QUALIFIERS and "DW_AT_type" in die.attributes:
        die = die.get_DIE_from_attribute("DW_AT_type")
    return die


def _type_name(die) -> str | None:
    """The first name along the typedef/qualifier chain (`HAL_LockTypeDef`)."""
    while die is not None:
        name = _attr_text(die, "DW_AT_name")
        if name:
            return name
        if "DW_AT_type" not in die.attributes:
            return None
        die = die.get_DIE_from_attribute("DW_AT_type")
    return None


def _byte_size(die) -> int | None:
    die = _strip_type(die)
    attr = die.attributes.get("DW_AT_byte_size") if die is not None else None
    return attr.value if attr else None


def _display_path(path: str) -> str:
    path = os.path.normpath(path)
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return path
    return path if relative.startswith("..") else relative
