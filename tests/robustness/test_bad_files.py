"""Bad probe packs and target profiles: one line naming the file, the key and what was expected."""

from __future__ import annotations

import pytest

from irqmon.errors import UsageError
from irqmon.probes import load_pack
from irqmon.targets import load_target
from support import irqmon, sample_elf

GOOD_FUNCTION = '[[function]]\nsymbols = ["malloc"]\nkind = "heap"\nrole = "alloc"\n'

BAD_PACKS = [
    ('name = "p"\nfunction = "malloc"\n', "function: expected a non-empty array of tables, got a string"),
    ('name = "p"\n' + GOOD_FUNCTION + 'args = "r0"\n', "function[0].args: expected a table of an argument name = one of"),
    ('name = "p"\n' + GOOD_FUNCTION + 'args = { size = "r7" }\n', "function[0].args.size: expected one of 'r0', 'r1', 'r2', 'r3'"),
    ('name = "p"\n' + GOOD_FUNCTION + 'colour = "red"\n', "function[0].colour: expected no such key"),
    ('name = "p"\n[[function]]\nsymbols = ["malloc"]\nkind = "heap"\n', "function[0].role: expected this key (it is required)"),
    ('name = "p"\n[[function]]\nsymbols = []\nkind = "heap"\nrole = "alloc"\n', "function[0].symbols: expected a non-empty array"),
    ('name = "p"\n' + GOOD_FUNCTION + 'size_arg = "n"\n', "function[0].size_arg: 'n' is not one of its args"),
    ('name = "p"\n[[dwarf_member]]\nmember = "Lock"\n', "dwarf_member[0].type: expected this key"),
    ('name = "p"\n[[register]]\nname = "EXTI_IMR"\n', "register[0].address: expected this key"),
    ('name = "p"\n[[register]]\nname = "R"\naddress = -4\n', "register[0].address: expected an integer from 0 to 4294967295"),
    ('name = "p"\n[task]\nname_member = "pcTaskName"\n', "task.pointer: expected this key"),
    ('name = "p"\nmask_sites = true\n', "mask_sites: expected a table, got a boolean"),
    ("name = 7\n", "name: expected a name"),
    ('description = "no name"\n', "name: expected this key"),
    ('name = "p"\nwatch = 1\n', "watch: expected no such key"),
    ('name = "p"\n[[function]]\nsymbols = ["malloc"]\nkind = "heap"\nrole = "grab"\n', "function[0].role: expected one of"),
    ("name = [\n", "not valid TOML"),
    ('name = "p"\n' + GOOD_FUNCTION + 'object_marker = { type = "Q", member = "pcHead", equals = 0, role = "release" }\n',
     "function[0].object_marker: needs an object_arg"),
    ('name = "p"\n' + GOOD_FUNCTION + 'args = { q = "r0" }\nobject_arg = "q"\nobject_marker = { type = "Q", member = "pcHead", role = "release" }\n',
     "function[0].object_marker.equals: expected this key"),
]


@pytest.mark.parametrize("text, message", BAD_PACKS)
def test_bad_pack_is_one_line_naming_the_key(tmp_path, text, message):
    path = tmp_path / "mine.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UsageError) as caught:
        load_pack(path)
    line = str(caught.value)
    assert message in line and str(path) in line and "\n" not in line


def test_pack_that_is_not_utf8_or_a_directory(tmp_path):
    binary = tmp_path / "latin1.toml"
    binary.write_bytes('name = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(UsageError, match="not UTF-8 text"):
        load_pack(binary)
    (tmp_path / "dir.toml").mkdir()
    with pytest.raises(UsageError, match="is a directory"):
        load_pack(tmp_path / "dir.toml")


def test_bad_pack_through_attach_is_exit_2_before_any_capture(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('name = "p"\nfunction = "malloc"\n', encoding="utf-8")
    run = irqmon("attach", "--target", "stm32f405", "--qemu", str(sample_elf("clean")), "--probes", str(path),
                 "--duration", "1", "-o", str(tmp_path / "t.csv"))  # fmt: skip
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "function: expected" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "t.csv").exists()


PROFILE = 'description = "x"\ncore = "cortex-m4"\npriority_bits = 4\nfpb_comparators = 6\ndwt_comparators = 4\n'

BAD_PROFILES = [
    (PROFILE.replace("priority_bits = 4", 'priority_bits = "four"'), "priority_bits: expected an integer from 1 to 8, got a string"),
    (PROFILE.replace("priority_bits = 4", "priority_bits = 0"), "priority_bits: expected an integer from 1 to 8"),
    (PROFILE.replace("fpb_comparators = 6\n", ""), "fpb_comparators: expected this key"),
    (PROFILE + "colour = 1\n", "colour: expected no such key"),
    (PROFILE + '[irqs]\n"²" = "TIM2"\n', "irqs.²: expected a key that is an IRQ number"),
    (PROFILE + '[irqs]\n28 = 5\n', "irqs.28: expected a string"),
    (PROFILE + '[irqs]\n900 = "X"\n', "irqs.900: expected an IRQ number"),
]


@pytest.mark.parametrize("text, message", BAD_PROFILES)
def test_bad_profile_is_one_line_naming_the_key(tmp_path, text, message):
    path = tmp_path / "chip.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UsageError) as caught:
        load_target(str(path))
    assert message in str(caught.value) and str(path) in str(caught.value)


def test_profile_that_is_not_utf8_or_a_directory(tmp_path):
    binary = tmp_path / "latin1.toml"
    binary.write_bytes((PROFILE + 'qemu_machine = "caf\xe9"\n').encode("latin-1"))
    with pytest.raises(UsageError, match="not UTF-8 text"):
        load_target(str(binary))
    (tmp_path / "x.toml").mkdir()
    with pytest.raises(UsageError, match="is a directory"):
        load_target(str(tmp_path / "x.toml"))
