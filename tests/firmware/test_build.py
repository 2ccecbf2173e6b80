"""Every sample builds for both boards into a 32-bit ARM ELF whose vector table sits at the start
of flash with one entry for each of the chip's exceptions, carries DWARF line info, and comes with
an expected.toml the end-to-end tests can read."""

from __future__ import annotations

import pytest
from elftools.elf.elffile import ELFFile

from support import BUILD_DIR, build_samples, expected, sample_names

FLASH_BASE = 0x08000000
BOARDS = {  # board → (ELF directory, device IRQs of its chip: RM0090 / RM0385)
    "netduinoplus2": (BUILD_DIR, 82),
    "nucleo_f746zg": (BUILD_DIR / "nucleo_f746zg", 98),
}
SAMPLES = sample_names()


@pytest.fixture(scope="module", params=sorted(BOARDS))
def board(request):
    result = build_samples(request.param)
    assert result.returncode == 0, result.stdout + result.stderr
    return request.param


@pytest.mark.parametrize("sample", SAMPLES)
def test_elf_layout(board, sample):
    elf_dir, device_irqs = BOARDS[board]
    path = elf_dir / f"{sample}.elf"
    assert path.is_file(), path
    with path.open("rb") as f:
        elf = ELFFile(f)
        assert elf.elfclass == 32
        assert elf["e_machine"] == "EM_ARM"
        vectors = elf.get_section_by_name(".symtab").get_symbol_by_name("g_pfnVectors")
        assert vectors, "no g_pfnVectors symbol"
        assert vectors[0]["st_value"] == FLASH_BASE
        assert vectors[0]["st_size"] == 4 * (16 + device_irqs)
        assert elf.has_dwarf_info()
        dwarf = elf.get_dwarf_info()
        line_rows = sum(
            len(dwarf.line_program_for_CU(cu).get_entries()) for cu in dwarf.iter_CUs()
            if dwarf.line_program_for_CU(cu) is not None
        )  # fmt: skip
        assert line_rows > 0, "no DWARF line table"


@pytest.mark.parametrize("sample", SAMPLES)
def test_expected_toml(sample):
    exp = expected(sample)
    assert isinstance(exp.get("rules"), list)
    assert all(isinstance(rule, str) and rule for rule in exp["rules"])
    assert exp.get("done_marker", "").startswith(f"{sample}: ")
    if exp["rules"]:
        assert exp.get("bug_marker", "").startswith(f"{sample}: "), "a sample with rules names its bug marker"
    else:
        assert "bug_marker" not in exp
