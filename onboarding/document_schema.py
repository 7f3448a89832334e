"""The configuration document's JSON Schema (draft 2020-12), with the size caps of `limits`.

`check_document(data)` validates a document against it before the detailed parser runs: a file
over a cap is refused at once with the section's path (`appointment_types[3].phrases: at most
50 entries`), without parsing or writing any of it. The schema's other keywords describe the
same format the parser checks; the parser's messages are the more precise, so they are the ones
reported, and the schema's only when the parser found nothing (they then disagree, and the
stricter one wins). `manage.py config_schema` prints it for editors.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from onboarding.limits import LIMITS

CAP_KEYWORDS = frozenset({"maxItems", "maxLength"})

_NULL = {"type": "null"}


def _str(max_length: int = LIMITS["name_length"], *, nullable: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "maxLength": max_length}
    return {"anyOf": [schema, _NULL]} if nullable else schema


def _bool() -> dict[str, Any]:
    return {"type": ["boolean", "null"]}


def _int() -> dict[str, Any]:
    return {"type": "integer"}


def _list(items: dict[str, Any], cap: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": ["array", "null"], "items": items}
    if cap is not None:
        schema["maxItems"] = LIMITS[cap]
    return schema


def _obj(required: tuple[str, ...], props: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": list(required),
        "properties": props,
        "additionalProperties": False,
    }


def _key() -> dict[str, Any]:
    return {"type": "string", "pattern": "^[-a-zA-Z0-9_]+$", "maxLength": 64}


def _ehr_id() -> dict[str, Any]:
    return {"type": ["integer", "null"], "minimum": 1}


@cache
def document_schema() -> dict[str, Any]:
    name = _str()
    keys = _list(_key())
    clock = {"type": "string"}
    moment = {"type": "string"}
    days = {"type": ["array", "null"], "items": {"type": "string"}, "maxItems": 7}
    patient = {
        "anyOf": [
            _obj(
                ("first_name", "last_name", "date_of_birth"),
                {
                    "first_name": name,
                    "last_name": name,
                    "date_of_birth": {"type": "string"},
                    "phone": _str(32, nullable=True),
                    "email": _str(254, nullable=True),
                },
            ),
            _NULL,
        ]
    }
    sections: dict[str, Any] = {
        "practice": _obj(
            ("slug", "name", "timezone"),
            {"slug": _key(), "name": name, "timezone": {"type": "string"}},
        ),
        "baa": {
            "anyOf": [
                _obj(
                    ("status",),
                    {
                        "status": {"type": "string"},
                        "signed_by": _str(nullable=True),
                        "executed_on": _str(10, nullable=True),
                        "effective_on": _str(10, nullable=True),
                        "expires_on": _str(10, nullable=True),
                    },
                ),
                _NULL,
            ]
        },
        "ehr": {
            "anyOf": [
                _obj(
                    (),
                    {
                        "kind": {"type": ["string", "null"]},
                        "working_hours": {"type": ["string", "null"]},
                    },
                ),
                _NULL,
            ]
        },
        "locations": _list(
            _obj(
                ("key", "name"),
                {
                    "key": _key(),
                    "name": name,
                    "timezone": {"type": ["string", "null"]},
                    "working_hours": {"type": ["string", "null"]},
                    "ehr_id": _ehr_id(),
                },
            ),
            "locations",
        ),
        "operatories": _list(
            _obj(
                ("key", "name", "location"),
                {
                    "key": _key(),
                    "name": name,
                    "location": _key(),
                    "capabilities": _list(_key(), "capabilities"),
                    "active": _bool(),
                    "ehr_id": _ehr_id(),
                },
            ),
            "operatories",
        ),
        "providers": _list(
            _obj(
                ("key", "name"),
                {
                    "key": _key(),
                    "name": name,
                    "accepts_new_patients": _bool(),
                    "on_call_phone": _str(32, nullable=True),
                    "active": _bool(),
                    "ehr_id": _ehr_id(),
                },
            ),
            "providers",
        ),
        "appointment_types": {
            **_list(
                _obj(
                    ("key", "name", "minutes"),
                    {
                        "key": _key(),
                        "name": name,
                        "minutes": _int(),
                        "new_patients": _bool(),
                        "existing_patients": _bool(),
                        "providers": _list(_key(), "providers_per_type"),
                        "requires_capabilities": _list(_key(), "capabilities"),
                        "lead_time_hours": {"type": ["integer", "null"]},
                        "horizon_days": {"type": ["integer", "null"]},
                        "phrases": _list(_str(LIMITS["phrase_length"]), "phrases_per_type"),
                        "descriptors": _list(_str(32), "descriptors_per_type"),
                        "instructions": _str(LIMITS["instructions_length"], nullable=True),
                        "bookable": _bool(),
                        "booking_mode": {
                            "type": ["string", "null"],
                            "enum": ["book", "request", None],
                        },
                        "ehr_id": _ehr_id(),
                    },
                ),
                "appointment_types",
            ),
            # Not expressible in JSON Schema: checked by check_document, stated for readers.
            "x-maxTotalPhrases": LIMITS["phrases_total"],
        },
        "working_hours": _list(
            _obj(
                ("provider", "operatory", "begin", "end"),
                {
                    "provider": _key(),
                    "operatory": _key(),
                    "days": days,
                    "specific_date": _str(10, nullable=True),
                    "begin": clock,
                    "end": clock,
                    "label": _str(100, nullable=True),
                    "appointment_types": keys,
                    "active": _bool(),
                },
            ),
            "working_hours",
        ),
        "blocks": _list(
            _obj(
                ("start", "end"),
                {
                    "provider": {"anyOf": [_key(), _NULL]},
                    "operatory": {"anyOf": [_key(), _NULL]},
                    "location": {"anyOf": [_key(), _NULL]},
                    "start": moment,
                    "end": moment,
                    "reason": _str(nullable=True),
                },
            ),
            "blocks",
        ),
        "appointments": _list(
            _obj(
                ("provider", "start", "minutes"),
                {
                    "provider": _key(),
                    "operatory": {"anyOf": [_key(), _NULL]},
                    "location": {"anyOf": [_key(), _NULL]},
                    "appointment_type": {"anyOf": [_key(), _NULL]},
                    "start": moment,
                    "minutes": _int(),
                    "patient": patient,
                    "cancelled": _bool(),
                },
            ),
            "appointments",
        ),
        "provider_rules": _list(
            _obj(
                ("provider", "appointment_types", "days", "begin", "end"),
                {
                    "provider": _key(),
                    "appointment_types": keys,
                    "patient_status": {"type": ["string", "null"]},
                    "days": days,
                    "begin": clock,
                    "end": clock,
                },
            ),
            "provider_rules",
        ),
        "escalation_protocols": _list(
            _obj(
                ("key", "name", "triggers", "severity", "route"),
                {
                    "key": _key(),
                    "name": name,
                    "appointment_types": keys,
                    "within_days_of_procedure": {"type": ["integer", "null"]},
                    "triggers": _list(_str(LIMITS["phrase_length"]), "triggers_per_protocol"),
                    "severity": {"type": "string"},
                    "route": {
                        "anyOf": [
                            {"type": "string"},
                            {
                                "type": "object",
                                "properties": {"provider": _key(), "on_call_group": _key()},
                                "additionalProperties": False,
                                "minProperties": 1,
                                "maxProperties": 1,
                            },
                        ]
                    },
                    "instructions": _str(LIMITS["instructions_length"], nullable=True),
                },
            ),
            "escalation_protocols",
        ),
        "on_call": _list(
            _obj(
                ("provider", "start", "end"),
                {"provider": _key(), "start": moment, "end": moment, "group": _key()},
            ),
            "on_call",
        ),
        "lay_terms": _list(
            _obj(
                ("terms",),
                {
                    "terms": _list(_str(LIMITS["phrase_length"]), "terms_per_lay_term"),
                    "broader": _list(_str(LIMITS["phrase_length"]), "terms_per_lay_term"),
                },
            ),
            "lay_terms",
        ),
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Hello Practice Portal practice configuration",
        "type": "object",
        "required": ["practice"],
        "properties": sections,
        "additionalProperties": False,
        "x-maxFileBytes": LIMITS["file_size"],
    }


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(document_schema())


def _path(error: ValidationError) -> str:
    out = ""
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def _message(error: ValidationError) -> str:
    if error.validator == "maxItems":
        return f"at most {error.validator_value} entries (this file has {len(error.instance)})"
    if error.validator == "maxLength":
        return f"must be at most {error.validator_value} characters"
    return str(error.message)


def check_document(data: Any) -> tuple[list[str], list[str]]:
    """(cap errors, other schema errors) of the document, each with its path."""
    caps: list[str] = []
    others: list[str] = []
    for error in _validator().iter_errors(data):
        # anyOf hides a nullable value's own error one level down.
        found = [error, *(error.context or [])]
        cap = next((e for e in found if e.validator in CAP_KEYWORDS), None)
        if cap is not None:
            caps.append(f"{_path(cap)}: {_message(cap)}")
        else:
            others.append(f"{_path(error)}: {_message(error)}")
    types = data.get("appointment_types") if isinstance(data, dict) else None
    if isinstance(types, list):
        total = sum(
            len(t["phrases"])
            for t in types
            if isinstance(t, dict) and isinstance(t.get("phrases"), list)
        )
        if total > LIMITS["phrases_total"]:
            caps.append(
                f"appointment_types: at most {LIMITS['phrases_total']} phrases in all "
                f"(this file has {total})"
            )
    return sorted(set(caps), key=caps.index), others


def check_size(size: int, name: str = "(document)") -> list[str]:
    """The file-size cap, checked before the text is even parsed."""
    if size > LIMITS["file_size"]:
        mib = LIMITS["file_size"] / (1024 * 1024)
        return [f"{name}: the file is larger than {mib:g} MB ({size} bytes)"]
    return []
