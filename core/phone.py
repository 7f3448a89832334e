"""Phone numbers as E.164, parsed one way everywhere (`phonenumbers`).

`to_e164` answers the number or None; what a failure means stays with the caller, because it
differs by place: a form field refuses it, the EHR importer keeps no number rather than a guess,
the blind index keeps the digits so that a lookup with the same typing still finds the row.

Two strictnesses. *Possible* (right length and prefix for its country) is the default: the demo
and test numbers are the fictional 555-01xx range, which no numbering plan assigns. *Valid*
(`valid=True`: assigned in its country's numbering plan) is for numbers the EHR is given.
"""

from __future__ import annotations

import phonenumbers
from django.conf import settings

__all__ = ["default_region", "to_e164"]


def default_region() -> str:
    """The country national numbers are read in. Practices have no country of their own yet:
    each deployment serves one (PHI_DEFAULT_PHONE_REGION)."""
    return str(getattr(settings, "PHI_DEFAULT_PHONE_REGION", "US"))


def to_e164(value: str, region: str | None = None, *, valid: bool = False) -> str | None:
    """`value` as E.164 ("+15555550101"), a national number read in `region` (the
    deployment's by default); None when it is empty, unparseable, or not a possible (with
    `valid`, not a valid) number."""
    text = str(value or "").strip()
    if not text:
        return None
    try:
        number = phonenumbers.parse(text, region or default_region())
    except phonenumbers.NumberParseException:
        return None
    accepted = phonenumbers.is_valid_number if valid else phonenumbers.is_possible_number
    if not accepted(number):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
