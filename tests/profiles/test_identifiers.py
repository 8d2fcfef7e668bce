"""IIN/BIN rules (issue part 2; kz-domain.md §1.2-1.4)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from profiles.identifiers import (
    iin_birth_date,
    iin_check_digit,
    iin_sex,
    is_valid_bin,
    is_valid_iin,
    validate_bin,
    validate_iin,
)

pytestmark = pytest.mark.req("TM-04")

_W1 = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)


@pytest.mark.parametrize("iin", ["850315300019", "900101412344", "040229500421", "151231699999", "850315301801"])
def test_official_vectors_are_valid(iin: str) -> None:
    assert validate_iin(iin) == []


def test_second_pass_vector_needs_the_second_weights() -> None:
    assert sum(int(d) * w for d, w in zip("85031530180", _W1, strict=True)) % 11 == 10
    assert iin_check_digit("85031530180") == 1


@pytest.mark.parametrize(
    ("iin", "problem"),
    [("850315300018", "check digit"), ("020229500428", "birth date"), ("000000000000", "century")],
)
def test_invalid_vectors_fail_for_their_reason(iin: str, problem: str) -> None:
    problems = validate_iin(iin)
    assert len(problems) == 1 and problem in problems[0]


def test_number_with_ten_on_both_passes_has_no_check_digit() -> None:
    assert iin_check_digit("85031530260") is None
    assert all(not is_valid_iin("85031530260" + str(d)) for d in range(10))


@pytest.mark.parametrize("value", ["", "85031530001", "8503153000199", "85031530001a", "８５０３１５３０００１９"])
def test_format_rejects_wrong_length_and_non_ascii_digits(value: str) -> None:
    assert validate_iin(value) == [f"IIN must be exactly 12 digits, got {value!r}"]


def test_birth_date_and_sex_are_decoded() -> None:
    assert iin_birth_date("040229500421") == date(2004, 2, 29)
    assert iin_sex("040229500421") == "male"
    assert iin_sex("900101412344") == "female"
    assert iin_birth_date("000000000000") is None and iin_sex("000000000000") is None


def test_relaxed_mode_accepts_nca_test_certificate_numbers_but_keeps_the_format_rule() -> None:
    assert not is_valid_iin("123456789011")
    assert is_valid_iin("123456789011", relaxed=True)
    assert is_valid_bin("123456789021", relaxed=True)
    assert not is_valid_iin("12345678901", relaxed=True)


def test_real_bins_pass_and_bin_structure_is_checked() -> None:
    assert is_valid_bin("940140000385") and is_valid_bin("990140004654")
    assert any("entity kind" in p for p in validate_bin("940110000385"))
    assert any("check digit" in p for p in validate_bin("940140000386"))


@settings(max_examples=300, deadline=None)
@given(st.dates(date(1900, 1, 1), date(2099, 12, 31)), st.text("0123456789", min_size=4, max_size=4), st.booleans())
def test_any_eleven_valid_digits_plus_computed_check_digit_is_valid(born: date, serial: str, male: bool) -> None:
    century = {19: "3", 20: "5"}[born.year // 100]
    first11 = born.strftime("%y%m%d") + str(int(century) + (0 if male else 1)) + serial
    check = iin_check_digit(first11)
    if check is None:  # the rule itself says such numbers cannot be issued
        assert all(not is_valid_iin(first11 + str(d)) for d in range(10))
    else:
        assert is_valid_iin(first11 + str(check))
        assert iin_birth_date(first11 + str(check)) == born


def _first_pass(digits: str) -> int:
    return sum(int(d) * w for d, w in zip(digits[:11], _W1, strict=True)) % 11


@settings(max_examples=300, deadline=None)
@given(st.text("0123456789", min_size=11, max_size=11), st.integers(0, 11), st.integers(1, 9))
def test_single_digit_change_is_caught_except_the_algorithms_blind_spots(first11: str, pos: int, delta: int) -> None:
    """Caught: any change of digit 12, and any change of digits 1-10 that keeps the pass. Not caught by
    the algorithm itself: digit 11 (weight 11 ≡ 0 mod 11 in pass 1) and changes that switch passes."""
    check = iin_check_digit(first11)
    if check is None:
        return
    original = first11 + str(check)
    changed = original[:pos] + str((int(original[pos]) + delta) % 10) + original[pos + 1:]
    same_pass = (_first_pass(original) == 10) == (_first_pass(changed) == 10)
    recomputed = iin_check_digit(changed[:11])
    undetected = recomputed is not None and recomputed == int(changed[11])
    if pos == 11 or (pos < 10 and same_pass):
        assert not undetected
    if pos == 10 and _first_pass(original) != 10:
        assert undetected  # documented blind spot: weight 11 vanishes modulo 11
