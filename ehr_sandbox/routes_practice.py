"""Routes for the practice's set-up: auth, locations, providers, operatories, appointment types,
EHR descriptors, working hours and availabilities (scheduling guide levels 1-3)."""

from __future__ import annotations

import re

from starlette.responses import Response

from .api import Call, envelope, nested
from .errors import ApiError, bad_request, not_found
from .runtime import Sandbox
from .store import Record, public
from .timeutil import valid_zone

# ---------------------------------------------------------------------------------------------
# Auth


def authenticate(call: Call) -> Response:
    presented = call.request.headers.get("authorization", "").strip()
    if not presented or presented not in call.sandbox.api_keys():
        raise ApiError(401, "Invalid API key", description="Unauthorized")
    token = call.sandbox.issue_token(presented)
    return envelope({"token": token}, description="Authenticated")


# ---------------------------------------------------------------------------------------------
# Locations, providers, operatories


def list_locations(call: Call) -> Response:
    subdomain = call.q_str("subdomain")
    if subdomain is not None:
        call.sandbox.require_subdomain(subdomain)
    rows = call.sandbox.store.rows(
        "locations", lambda r: subdomain is None or r["_subdomain"] == subdomain
    )
    return call.paginate([public(r) for r in rows])


def get_location(call: Call) -> Response:
    return envelope(public(call.sandbox.location(call.subdomain(), call.path_int("id"))))


def create_location(call: Call) -> Response:
    """Set-up only (real locations come from the practice's NexHealth account)."""
    subdomain = call.q_str("subdomain")
    if not subdomain or not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", subdomain):
        raise bad_request("subdomain is required (lowercase letters, digits and dashes)")
    body = nested(call.json(), "location")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise bad_request("location.name is required")
    tz = body.get("tz", "UTC")
    if not isinstance(tz, str) or not valid_zone(tz):
        raise bad_request("location.tz must be an IANA time zone such as America/Los_Angeles")
    store = call.sandbox.store
    with store.tx():
        institution = store.institution_for(subdomain)
        record = store.insert(
            "locations",
            {
                "name": name.strip(),
                "institution_id": institution["id"],
                "subdomain": subdomain,
                "street_address": body.get("street_address"),
                "city": body.get("city"),
                "state": body.get("state"),
                "zip_code": body.get("zip_code"),
                "phone_number": body.get("phone_number"),
                "email": body.get("email"),
                "tz": tz,
                "map_by_operatory": bool(body.get("map_by_operatory", True)),
                "inactive": False,
                "foreign_id": None,
                "_subdomain": subdomain,
            },
        )
        return envelope(public(record), status=201)


def list_providers(call: Call) -> Response:
    subdomain = call.subdomain()
    location = call.location(subdomain, required=False)
    inactive = call.q_bool("inactive")
    rows = call.sandbox.store.rows(
        "providers",
        lambda r: (
            r["_subdomain"] == subdomain
            and (location is None or location["id"] in r["location_ids"])
            and (inactive is None or r["inactive"] == inactive)
        ),
    )
    return call.paginate([public(r) for r in rows])


def get_provider(call: Call) -> Response:
    record = call.sandbox.scoped("providers", call.subdomain(), call.path_int("id"), "Provider")
    return envelope(public(record))


def create_provider(call: Call) -> Response:
    """Set-up only (real providers are read from the EHR)."""
    subdomain = call.subdomain()
    body = call.json()
    provider = nested(body, "provider")
    errors = [
        f"provider.{f} is required"
        for f in ("first_name", "last_name")
        if not isinstance(provider.get(f), str) or not provider[f].strip()
    ]
    if errors:
        raise bad_request(*errors)
    location = call.location(subdomain, required=False, body=body)
    location_ids = provider.get("location_ids") or ([location["id"]] if location else [])
    if not isinstance(location_ids, list) or not location_ids:
        raise bad_request("provider.location_ids (or location_id) is required")
    store = call.sandbox.store
    with store.tx():
        for lid in location_ids:
            call.sandbox.location(subdomain, lid)
        first, last = provider["first_name"].strip(), provider["last_name"].strip()
        name = provider.get("name") or f"{first} {last}"
        record = store.insert(
            "providers",
            {
                "first_name": first,
                "middle_name": provider.get("middle_name"),
                "last_name": last,
                "name": name,
                "display_name": provider.get("display_name") or name,
                "email": provider.get("email"),
                "npi": provider.get("npi"),
                "specialty": provider.get("specialty"),
                "inactive": False,
                "location_ids": list(location_ids),
                "institution_id": store.institution_for(subdomain)["id"],
                "foreign_id": provider.get("foreign_id"),
                "foreign_id_type": "sandbox-ehr",
                "_subdomain": subdomain,
            },
        )
        return envelope(public(record), status=201)


def list_operatories(call: Call) -> Response:
    subdomain = call.subdomain()
    location = call.location(subdomain, required=False)
    active = call.q_bool("active")
    rows = call.sandbox.store.rows(
        "operatories",
        lambda r: (
            r["_subdomain"] == subdomain
            and (location is None or r["location_id"] == location["id"])
            and (active is None or r["active"] == active)
        ),
    )
    return call.paginate([public(r) for r in rows])


def get_operatory(call: Call) -> Response:
    record = call.sandbox.scoped("operatories", call.subdomain(), call.path_int("id"), "Operatory")
    return envelope(public(record))


def create_operatory(call: Call) -> Response:
    """Set-up only (real operatories are read from the EHR)."""
    subdomain = call.subdomain()
    body = call.json()
    operatory = nested(body, "operatory")
    if not isinstance(operatory.get("name"), str) or not operatory["name"].strip():
        raise bad_request("operatory.name is required")
    location = call.location(subdomain, body=operatory)
    active = operatory.get("active", True)
    if not isinstance(active, bool):
        raise bad_request("operatory.active must be a boolean")
    record = call.sandbox.store.insert(
        "operatories",
        {
            "name": operatory["name"].strip(),
            "location_id": location["id"],
            "active": active,
            "foreign_id": operatory.get("foreign_id"),
            "foreign_id_type": "sandbox-ehr",
            "_subdomain": subdomain,
        },
    )
    return envelope(public(record), status=201)


# ---------------------------------------------------------------------------------------------
# Appointment types and descriptors


def _type_view(sandbox: Sandbox, record: Record) -> Record:
    view = public(record)
    view["emr_appt_descriptors"] = [
        public(d)
        for d in (sandbox.store.get("descriptors", i) for i in record["emr_appt_descriptor_ids"])
        if d is not None
    ]
    return view


def list_appointment_types(call: Call) -> Response:
    subdomain = call.subdomain()
    location = call.location(subdomain, required=False)
    sandbox = call.sandbox
    rows = sandbox.store.rows(
        "appointment_types",
        lambda r: (
            r["_subdomain"] == subdomain
            and (location is None or sandbox.type_applies(r, location["id"]))
        ),
    )
    return call.paginate([_type_view(sandbox, r) for r in rows])


def get_appointment_type(call: Call) -> Response:
    record = call.sandbox.scoped(
        "appointment_types", call.subdomain(), call.path_int("id"), "Appointment type"
    )
    return envelope(_type_view(call.sandbox, record))


def _type_fields(
    sandbox: Sandbox, subdomain: str, location_id: int | None, body: Record, partial: bool
) -> Record:
    out: Record = {}
    if not partial or "name" in body:
        if not isinstance(body.get("name"), str) or not body["name"].strip():
            raise bad_request("appointment_type.name is required")
        out["name"] = body["name"].strip()
    if not partial or "minutes" in body:
        minutes = body.get("minutes")
        if isinstance(minutes, bool) or not isinstance(minutes, int) or not 0 < minutes <= 1440:
            raise bad_request("appointment_type.minutes must be a positive integer (<= 1440)")
        out["minutes"] = minutes
    if "bookable_online" in body or not partial:
        bookable = body.get("bookable_online", True)
        if not isinstance(bookable, bool):
            raise bad_request("appointment_type.bookable_online must be a boolean")
        out["bookable_online"] = bookable
    if "emr_appt_descriptor_ids" in body:
        ids = body["emr_appt_descriptor_ids"]
        if not isinstance(ids, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in ids
        ):
            raise bad_request("emr_appt_descriptor_ids must be a list of descriptor ids")
        for descriptor_id in ids:
            descriptor = sandbox.scoped("descriptors", subdomain, descriptor_id, "Descriptor")
            if location_id is not None and descriptor["location_id"] != location_id:
                raise bad_request(f"descriptor {descriptor_id} is not at location {location_id}")
        out["emr_appt_descriptor_ids"] = list(dict.fromkeys(ids))
    return out


def create_appointment_type(call: Call) -> Response:
    subdomain = call.subdomain()
    body = call.json()
    inner = nested(body, "appointment_type")
    location = call.location(subdomain, required=False, body=body)
    parent_type = inner.get("parent_type", "Location" if location else "Institution")
    if parent_type not in ("Location", "Institution"):
        raise bad_request("appointment_type.parent_type must be Location or Institution")
    sandbox = call.sandbox
    with sandbox.store.tx():
        if parent_type == "Location":
            parent_id = inner.get("parent_id", location["id"] if location else None)
            parent = sandbox.location(subdomain, parent_id)
            parent_id = parent["id"]
        else:
            parent_id = sandbox.store.institution_for(subdomain)["id"]
        fields = _type_fields(
            sandbox, subdomain, parent_id if parent_type == "Location" else None, inner, False
        )
        fields.setdefault("emr_appt_descriptor_ids", [])
        record = sandbox.store.insert(
            "appointment_types",
            {**fields, "parent_type": parent_type, "parent_id": parent_id, "_subdomain": subdomain},
        )
        return envelope(_type_view(sandbox, record), status=201)


def update_appointment_type(call: Call) -> Response:
    """PATCH, e.g. ``{"appointment_type": {"emr_appt_descriptor_ids": [...]}}`` (Level 2C)."""
    subdomain = call.subdomain()
    sandbox = call.sandbox
    inner = nested(call.json(), "appointment_type")
    with sandbox.store.tx():
        record = sandbox.scoped(
            "appointment_types", subdomain, call.path_int("id"), "Appointment type"
        )
        location_id = record["parent_id"] if record["parent_type"] == "Location" else None
        fields = _type_fields(sandbox, subdomain, location_id, inner, True)
        sandbox.store.update("appointment_types", record["id"], fields)
        return envelope(_type_view(sandbox, record))


def delete_appointment_type(call: Call) -> Response:
    subdomain = call.subdomain()
    sandbox = call.sandbox
    with sandbox.store.tx():
        record = sandbox.scoped(
            "appointment_types", subdomain, call.path_int("id"), "Appointment type"
        )
        sandbox.store.delete("appointment_types", record["id"])
        for wh in sandbox.store.rows(
            "working_hours", lambda r: record["id"] in r.get("appointment_type_ids", [])
        ):
            ids = [i for i in wh["appointment_type_ids"] if i != record["id"]]
            sandbox.store.update("working_hours", wh["id"], {"appointment_type_ids": ids})
    return envelope(None, description="Appointment type deleted")


def list_descriptors(call: Call) -> Response:
    subdomain = call.subdomain()
    location = call.sandbox.location(subdomain, call.path_int("id"))
    kind = call.q_str("descriptor_type")
    rows = call.sandbox.store.rows(
        "descriptors",
        lambda r: (
            r["location_id"] == location["id"] and (kind is None or r["descriptor_type"] == kind)
        ),
    )
    return call.paginate([public(r) for r in rows])


def create_descriptor(call: Call) -> Response:
    """Set-up only: descriptors are the EHR's own codes (D1110 "Prophylaxis Adult")."""
    subdomain = call.subdomain()
    location = call.sandbox.location(subdomain, call.path_int("id"))
    body = nested(call.json(), "appointment_descriptor")
    errors = [
        f"appointment_descriptor.{f} is required"
        for f in ("code", "name")
        if not isinstance(body.get(f), str) or not body[f].strip()
    ]
    kind = body.get("descriptor_type", "Procedure Code")
    if kind not in ("Procedure Code", "Appointment Type"):
        errors.append("descriptor_type must be 'Procedure Code' or 'Appointment Type'")
    if errors:
        raise bad_request(*errors)
    record = call.sandbox.store.insert(
        "descriptors",
        {
            "location_id": location["id"],
            "code": body["code"].strip(),
            "name": body["name"].strip(),
            "descriptor_type": kind,
            "active": True,
            "foreign_id": body.get("foreign_id") or body["code"].strip(),
            "foreign_id_type": "sandbox-ehr",
            "_subdomain": subdomain,
        },
    )
    return envelope(public(record), status=201)


# ---------------------------------------------------------------------------------------------
# Working hours (and the booking guide's older name for manual ones, availabilities)


def _list_working_hours(call: Call, *, manual_only: bool) -> Response:
    subdomain = call.subdomain()
    location = call.location(subdomain, required=False)
    providers = call.q_ints("provider_ids") + call.q_ints("provider_id")
    operatories = call.q_ints("operatory_ids") + call.q_ints("operatory_id")
    source = "manual" if manual_only else call.q_str("source")
    active = call.q_bool("active")
    rows = call.sandbox.store.rows(
        "working_hours",
        lambda r: (
            r["_subdomain"] == subdomain
            and (location is None or r["location_id"] == location["id"])
            and (not providers or r["provider_id"] in providers)
            and (not operatories or r["operatory_id"] in operatories)
            and (source is None or r["source"] == source)
            and (active is None or r["active"] == active)
        ),
    )
    return call.paginate([public(r) for r in rows])


def _create_working_hour(call: Call, key: str) -> Record:
    subdomain = call.subdomain()
    body = call.json()
    inner = nested(body, key)
    sandbox = call.sandbox
    with sandbox.store.tx():
        location = call.location(subdomain, body=inner)
        fields = sandbox.validate_working_hour(subdomain, location, inner)
        record = sandbox.store.insert(
            "working_hours",
            {
                **fields,
                "location_id": location["id"],
                "custom_recurrence": None,
                "tz_offset": None,
                "source": "manual",
                "label": None,
                "_subdomain": subdomain,
            },
        )
        return public(record)


def _update_working_hour(call: Call, key: str, *, manual_only: bool) -> Record:
    subdomain = call.subdomain()
    inner = nested(call.json(), key)
    sandbox = call.sandbox
    with sandbox.store.tx():
        record = sandbox.scoped("working_hours", subdomain, call.path_int("id"), "Working hour")
        if manual_only and record["source"] != "manual":
            raise not_found("Availability", record["id"])
        if record["source"] == "synced" and set(inner) - {"appointment_type_ids"}:
            raise bad_request(
                "synced working hours are managed in the health record system; "
                "only appointment_type_ids can be changed"
            )
        location = sandbox.location(subdomain, record["location_id"])
        fields = sandbox.validate_working_hour(subdomain, location, inner, partial=record)
        sandbox.store.update("working_hours", record["id"], fields)
        return public(record)


def _delete_working_hour(call: Call, *, manual_only: bool) -> Response:
    subdomain = call.subdomain()
    sandbox = call.sandbox
    with sandbox.store.tx():
        record = sandbox.scoped("working_hours", subdomain, call.path_int("id"), "Working hour")
        if record["source"] == "synced":
            if manual_only:
                raise not_found("Availability", record["id"])
            raise bad_request("synced working hours are managed in the health record system")
        sandbox.store.delete("working_hours", record["id"])
    return envelope(None, description="Deleted")


def _get_working_hour(call: Call, *, manual_only: bool) -> Response:
    record = call.sandbox.scoped(
        "working_hours", call.subdomain(), call.path_int("id"), "Working hour"
    )
    if manual_only and record["source"] != "manual":
        raise not_found("Availability", record["id"])
    return envelope(public(record))


def list_working_hours(call: Call) -> Response:
    return _list_working_hours(call, manual_only=False)


def get_working_hour(call: Call) -> Response:
    return _get_working_hour(call, manual_only=False)


def create_working_hour(call: Call) -> Response:
    # The scheduling guide's response shows data as a list holding the new record.
    return envelope([_create_working_hour(call, "working_hour")], status=201)


def update_working_hour(call: Call) -> Response:
    return envelope(_update_working_hour(call, "working_hour", manual_only=False))


def delete_working_hour(call: Call) -> Response:
    return _delete_working_hour(call, manual_only=False)


def list_availabilities(call: Call) -> Response:
    return _list_working_hours(call, manual_only=True)


def get_availability(call: Call) -> Response:
    return _get_working_hour(call, manual_only=True)


def create_availability(call: Call) -> Response:
    return envelope(_create_working_hour(call, "availability"), status=201)


def update_availability(call: Call) -> Response:
    return envelope(_update_working_hour(call, "availability", manual_only=True))


def delete_availability(call: Call) -> Response:
    return _delete_working_hour(call, manual_only=True)
