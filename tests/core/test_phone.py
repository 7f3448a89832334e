"""core.phone: the one E.164 normaliser, and the callers that decide what a failure means."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from compliance import crypto
from core.phone import to_e164
from ehr.types import phone_e164
from scheduling import catalog


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(555) 555-0101", "+15555550101"),  # national, read in the deployment's country
        ("+1 555 555 0101", "+15555550101"),
        ("  +44 20 7946 0958 ", "+442079460958"),
        ("+15555550101", "+15555550101"),
        ("", None),
        ("   ", None),
        ("ext 12", None),  # not a number
        ("12", None),  # too short to be possible
        ("+1 555 555 01011234", None),  # too long
    ],
)
def test_possible_numbers_as_e164(text: str, expected: str | None) -> None:
    assert to_e164(text) == expected


def test_valid_is_stricter_than_possible() -> None:
    # the fictional 555-01xx range is possible (right length) but assigned to no one
    assert to_e164("+15555550101") == "+15555550101"
    assert to_e164("+15555550101", valid=True) is None
    assert to_e164("+12135550123", valid=True) == "+12135550123"


def test_region_reads_national_numbers(settings) -> None:
    assert to_e164("020 7946 0958", "GB") == "+442079460958"
    settings.PHI_DEFAULT_PHONE_REGION = "GB"
    assert to_e164("020 7946 0958") == "+442079460958"


def test_each_caller_keeps_its_own_failure() -> None:
    """Same parsing everywhere; a failure is a form error, no number, or the typed digits."""
    assert catalog.normalise_phone(" (555) 555-0101 ") == "+15555550101"
    assert catalog.normalise_phone("  ") == ""
    with pytest.raises(ValidationError):
        catalog.normalise_phone("12")
    assert phone_e164(" 555  555\u00a00101 ") == "+15555550101"
    assert phone_e164(None) == ""
    assert phone_e164("12") == ""
    assert crypto.normalize_phone("(555) 867-5309") == "+15558675309"
    assert crypto.normalize_phone("+1 2") == "+12"
