"""The US National Provider Identifier: 10 digits, the last a Luhn check digit over the card
issuer prefix 80840 and the first nine (the rule US Core's us-core-17 constraint applies)."""

from __future__ import annotations

NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"


def npi_check_digit(first_nine: str) -> int:
    """The check digit of an NPI whose first nine digits are ``first_nine``."""
    total = 0
    for position, char in enumerate(reversed("80840" + first_nine)):
        digit = int(char)
        if position % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return (10 - total % 10) % 10


def is_valid_npi(value: str) -> bool:
    """True for ten digits whose last is the check digit of the first nine."""
    if len(value) != 10 or not value.isascii() or not value.isdigit():
        return False
    return npi_check_digit(value[:9]) == int(value[9])


def npi_problem(value: str) -> str | None:
    """Why ``value`` is not an NPI (None when it is one); says nothing of the value itself."""
    if len(value) != 10 or not value.isascii() or not value.isdigit():
        return "an NPI is exactly 10 digits"
    if not is_valid_npi(value):
        return "not a valid NPI: the check digit (the 10th) does not match"
    return None
