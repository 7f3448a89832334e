"""The maximum size of a practice configuration file, section by section.

A file is the practice's set-up, not a data dump: without caps one upload could write tens of
thousands of rows (and audit entries) in one transaction and make every intent resolution of the
practice scan them (intent resolution scores every phrase of the practice on each call). The caps
are generous for a real practice (the demo files use a few percent of them); the JSON schema
(`onboarding.document_schema`) states them with `maxItems` and `maxLength`, and
docs/practice-config.md lists them (a test keeps the table equal to `CAPS`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cap:
    name: str  # stable handle, used in code and docs
    path: str  # where it applies in the document ("[]" stands for every entry)
    limit: int
    unit: str  # "entries", "characters" or "bytes"


CAPS: tuple[Cap, ...] = (
    Cap("file_size", "(document)", 5 * 1024 * 1024, "bytes"),
    Cap("locations", "locations", 50, "entries"),
    Cap("operatories", "operatories", 500, "entries"),
    Cap("providers", "providers", 500, "entries"),
    Cap("appointment_types", "appointment_types", 500, "entries"),
    Cap("phrases_per_type", "appointment_types[].phrases", 50, "entries"),
    Cap("phrases_total", "appointment_types[].phrases (all types)", 1_000, "entries"),
    Cap("phrase_length", "appointment_types[].phrases[]", 200, "characters"),
    Cap("descriptors_per_type", "appointment_types[].descriptors", 50, "entries"),
    Cap("providers_per_type", "appointment_types[].providers", 500, "entries"),
    Cap("capabilities", "operatories[].capabilities", 50, "entries"),
    Cap("instructions_length", "appointment_types[].instructions", 10_000, "characters"),
    Cap("name_length", "*.name", 200, "characters"),
    Cap("working_hours", "working_hours", 5_000, "entries"),
    Cap("blocks", "blocks", 5_000, "entries"),
    Cap("appointments", "appointments", 5_000, "entries"),
    Cap("provider_rules", "provider_rules", 2_000, "entries"),
    Cap("escalation_protocols", "escalation_protocols", 200, "entries"),
    Cap("triggers_per_protocol", "escalation_protocols[].triggers", 100, "entries"),
    Cap("on_call", "on_call", 2_000, "entries"),
    Cap("lay_terms", "lay_terms", 500, "entries"),
    Cap("terms_per_lay_term", "lay_terms[].terms", 50, "entries"),
)
LIMITS: dict[str, int] = {cap.name: cap.limit for cap in CAPS}

# Entries (list items, phrases included) above which the portal imports in the background.
BACKGROUND_ABOVE_ENTRIES = 500


def entry_count(data: object) -> int:
    """How many list entries the document holds (the work an import does), phrases included."""
    if not isinstance(data, dict):
        return 0
    total = 0
    for value in data.values():
        if isinstance(value, list):
            total += len(value)
            for item in value:
                if isinstance(item, dict):
                    total += sum(len(v) for v in item.values() if isinstance(v, list))
    return total
