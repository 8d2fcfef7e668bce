"""Kazakhstan national identifiers: IIN (individuals) and BIN (legal entities).

Both are 12 digits ending in a check digit computed the same way (kz-domain.md §1.2; government decree
No. 406 of 22.05.2007 as cited there):

1. ``c = Σ d[i]·w[i] mod 11`` with weights 1..11 over the first 11 digits;
2. if ``c == 10``, a second pass with weights 3,4,5,6,7,8,9,10,11,1,2;
3. if ``c`` is still 10 the number cannot be issued (invalid); otherwise ``c`` must equal digit 12.

IIN digits 1-6 are the birth date ``YYMMDD`` and digit 7 is century + sex (1/2 = 1800s, 3/4 = 1900s,
5/6 = 2000s; odd = male, even = female). BIN digits 1-4 are ``YYMM`` of registration, digit 5 the kind
of entity (4, 5, 6) and digit 6 the unit attribute (0-3).

Relaxed mode keeps only the format rule (exactly 12 ASCII digits) and skips the date, century/sex,
entity-kind and check-digit rules. The NCA RK test certificates carry IINs and BINs such as
``123456789011`` / ``123456789021`` (kz-domain.md §1.3, §5.1) that fail the checksum *and* encode no real
date (7th digit 7, month 34), so relaxing the checksum alone would still reject them.

Known blind spot of the algorithm itself (not of this code): digit 11 has weight 11 ≡ 0 (mod 11) in the
first pass, so changing digit 11 of a number whose first pass is not 10 leaves it valid; and a change that
moves a number between the first and second pass can land on the same check digit by chance. Every other
single-digit change is caught (tests/profiles/test_identifiers.py proves both statements).
"""

from __future__ import annotations

from datetime import date
from typing import Literal

__all__ = [
    "bin_check_digit",
    "iin_birth_date",
    "iin_check_digit",
    "iin_sex",
    "is_valid_bin",
    "is_valid_iin",
    "validate_bin",
    "validate_iin",
]

_WEIGHTS_1 = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
_WEIGHTS_2 = (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)
_CENTURY = {"1": 1800, "2": 1800, "3": 1900, "4": 1900, "5": 2000, "6": 2000}
_BIN_KINDS = frozenset("456")
_BIN_UNITS = frozenset("0123")


def iin_check_digit(first11: str) -> int | None:
    """The check digit for 11 leading digits, or None when both passes give 10 (not issuable)."""
    if len(first11) != 11 or not first11.isascii() or not first11.isdigit():
        raise ValueError("expected exactly 11 ASCII digits")
    digits = [ord(ch) - 48 for ch in first11]
    check = sum(d * w for d, w in zip(digits, _WEIGHTS_1, strict=True)) % 11
    if check == 10:
        check = sum(d * w for d, w in zip(digits, _WEIGHTS_2, strict=True)) % 11
        if check == 10:
            return None
    return check


# The algorithm is shared (kz-domain.md §1.4); the alias keeps BIN call sites readable.
bin_check_digit = iin_check_digit


def _is_twelve_digits(value: str) -> bool:
    return len(value) == 12 and value.isascii() and value.isdigit()


def _checksum_problem(value: str, label: str) -> str | None:
    expected = iin_check_digit(value[:11])
    if expected is None:
        return f"{label} {value} has no valid check digit (both weight passes give 10)"
    if expected != int(value[11]):
        return f"{label} {value} check digit is {value[11]}, expected {expected}"
    return None


def iin_birth_date(iin: str) -> date | None:
    """The birth date encoded in an IIN, or None when digits 1-7 do not form a real date."""
    if not _is_twelve_digits(iin) or iin[6] not in _CENTURY:
        return None
    year = _CENTURY[iin[6]] + int(iin[0:2])
    try:
        return date(year, int(iin[2:4]), int(iin[4:6]))
    except ValueError:
        return None


def iin_sex(iin: str) -> Literal["male", "female"] | None:
    """Sex from the 7th digit (odd = male, even = female); None when the digit is not 1-6."""
    if len(iin) < 7 or iin[6] not in _CENTURY:
        return None
    return "male" if int(iin[6]) % 2 == 1 else "female"


def validate_iin(value: str, *, relaxed: bool = False) -> list[str]:
    """Problems with an IIN; an empty list means valid. ``relaxed`` checks the 12-digit format only."""
    if not _is_twelve_digits(value):
        return [f"IIN must be exactly 12 digits, got {value!r}"]
    if relaxed:
        return []
    problems = []
    if value[6] not in _CENTURY:
        problems.append(f"IIN {value} 7th digit {value[6]} is not a century/sex code 1-6")
    elif iin_birth_date(value) is None:
        problems.append(f"IIN {value} digits 1-6 ({value[:6]}) are not a valid birth date YYMMDD")
    problem = _checksum_problem(value, "IIN")
    if problem:
        problems.append(problem)
    return problems


def is_valid_iin(value: str, *, relaxed: bool = False) -> bool:
    return not validate_iin(value, relaxed=relaxed)


def validate_bin(value: str, *, relaxed: bool = False) -> list[str]:
    """Problems with a BIN; an empty list means valid. ``relaxed`` checks the 12-digit format only."""
    if not _is_twelve_digits(value):
        return [f"BIN must be exactly 12 digits, got {value!r}"]
    if relaxed:
        return []
    problems = []
    if not 1 <= int(value[2:4]) <= 12:
        problems.append(f"BIN {value} digits 3-4 ({value[2:4]}) are not a registration month")
    if value[4] not in _BIN_KINDS:
        problems.append(f"BIN {value} 5th digit {value[4]} is not an entity kind 4-6")
    if value[5] not in _BIN_UNITS:
        problems.append(f"BIN {value} 6th digit {value[5]} is not a unit attribute 0-3")
    problem = _checksum_problem(value, "BIN")
    if problem:
        problems.append(problem)
    return problems


def is_valid_bin(value: str, *, relaxed: bool = False) -> bool:
    return not validate_bin(value, relaxed=relaxed)
