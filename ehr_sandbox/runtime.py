"""The sandbox's moving parts and the operations with side effects.

Request handlers (``app.py``, ``admin.py``) stay thin: they parse HTTP and call these methods, which
validate against the store, write, schedule the asynchronous EHR insertion and emit webhooks.
Both the public API and the admin "EHR side" (what practice staff do in their own system) go
through the same validation so the two can never disagree about what a valid record is.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from datetime import UTC, date, datetime, timedelta

from . import slots as slot_engine
from .config import RuntimeSettings, ServerConfig
from .errors import ApiError, bad_request, not_found
from .faults import Faults, RateLimiter, Stats
from .scheduler import Scheduler
from .store import Record, Store, public
from .timeutil import (
    WEEKDAYS,
    iso_local,
    iso_utc,
    normalise_days,
    parse_date,
    parse_datetime,
    parse_hhmm,
    tz_offset_string,
    utc_now,
    zone,
)
from .webhooks import EVENTS, WebhookDispatcher

ACTIVE_INSERTION = ("pending", "complete")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def digits(value: object) -> str:
    return re.sub(r"\D", "", str(value or ""))


def _id_list(value: object, name: str) -> list[int]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise bad_request(f"{name} must be a list of integer ids")
    return list(dict.fromkeys(value))


class Sandbox:
    """Holds the store, faults, limiter, counters, insertion worker and webhook dispatcher."""

    def __init__(self, config: ServerConfig, settings: RuntimeSettings | None = None) -> None:
        self.config = config
        self.settings = settings or RuntimeSettings()
        self._initial_settings = self.settings.as_dict()
        self.store = Store(config.state_file)
        self.faults = Faults()
        self.limiter = RateLimiter()
        self.stats = Stats()
        self.scheduler = Scheduler()
        self.webhooks = WebhookDispatcher(
            self._resolve_endpoint,
            self._deactivate_endpoint,
            self.settings,
            self.faults,
            self.stats,
        )
        self.started_at = time.time()

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        self.scheduler.start()
        self.webhooks.start()
        self._resume_pending()

    def stop(self) -> None:
        self.webhooks.stop()
        self.scheduler.stop()

    def reset(
        self,
        *,
        data: bool = True,
        stats: bool = True,
        faults: bool = True,
        rate_limits: bool = True,
        settings: bool = True,
    ) -> None:
        if data:
            self.scheduler.clear()
            self.webhooks.clear()
            self.store.reset()
        if stats:
            self.stats.reset()
            self.limiter.clear_counters()
        if faults:
            self.faults.reset()
        if rate_limits:
            self.limiter.reset()
        if settings:
            self.settings.reset(self._initial_settings)

    def _resume_pending(self) -> None:
        """After a restart, insertions that were accepted but not finished still finish."""
        delay = self.settings.insertion_delay_ms / 1000.0
        for appt in self.store.rows("appointments", lambda r: r["insertion_status"] == "pending"):
            self.scheduler.call_later(
                delay, functools.partial(self._insert_appointment, appt["id"])
            )
        for doc in self.store.rows("documents", lambda r: r["insertion_status"] == "pending"):
            self.scheduler.call_later(delay, functools.partial(self._insert_document, doc["id"]))

    # -- auth -------------------------------------------------------------------------------

    def api_keys(self) -> set[str]:
        return set(self.config.api_keys) | set(self.store.extra_api_keys)

    def add_api_key(self, key: str) -> None:
        with self.store.tx():
            if key not in self.store.extra_api_keys and key not in self.config.api_keys:
                self.store.extra_api_keys.append(key)
                self.store.touch()

    def issue_token(self, api_key: str) -> str:
        """A JWT-shaped bearer token (``exp`` readable by clients); validity is checked here."""
        now = time.time()
        expires = now + self.settings.token_ttl_seconds
        header = _b64url(b'{"alg":"HS256","typ":"JWT"}')
        claims = {
            "sub": hashlib.sha256(api_key.encode()).hexdigest()[:16],
            "scp": "api_user",
            "iat": int(now),
            "exp": int(expires),
            "jti": str(uuid.uuid4()),
        }
        body = _b64url(json.dumps(claims, separators=(",", ":")).encode())
        signature = hmac.new(
            self.store.jwt_secret.encode(), f"{header}.{body}".encode(), hashlib.sha256
        ).digest()
        token = f"{header}.{body}.{_b64url(signature)}"
        self.store.add_token(token, api_key, now, expires)
        self.stats.add("auth", "tokens_issued")
        return token

    def token_key(self, token: str) -> tuple[str | None, bool]:
        """(api key the token was issued to or None, still valid?)."""
        info = self.store.token_info(token)
        if info is None:
            return None, False
        return info["api_key"], info["expires_at"] > time.time()

    # -- scoped look-ups --------------------------------------------------------------------

    def require_subdomain(self, subdomain: str | None) -> str:
        if not subdomain:
            raise bad_request("subdomain is required")
        if subdomain not in self.store.subdomains():
            raise ApiError(404, f"Subdomain {subdomain} not found", description="Not Found")
        return subdomain

    def scoped(self, table: str, subdomain: str, record_id: object, what: str) -> Record:
        record = self.store.get(table, record_id if isinstance(record_id, int) else None)
        if record is None or record.get("_subdomain") != subdomain:
            raise not_found(what, record_id)
        return record

    def location(self, subdomain: str, location_id: object) -> Record:
        return self.scoped("locations", subdomain, location_id, "Location")

    def type_applies(self, appt_type: Record, location_id: int) -> bool:
        return bool(appt_type["parent_type"] != "Location" or appt_type["parent_id"] == location_id)

    # -- working hours ----------------------------------------------------------------------

    def label(self, location_id: int, name: str) -> Record:
        """Blockout labels keep their id per location and name, as EHR definitions do."""
        for row in self.store.rows("labels"):
            if row["_location_id"] == location_id and row["name"] == name:
                return row
        return self.store.insert(
            "labels", {"location_id": None, "name": name, "_location_id": location_id}
        )

    def validate_working_hour(
        self, subdomain: str, location: Record, body: Record, *, partial: Record | None = None
    ) -> Record:
        """Check a working-hour body (``partial`` = the stored record for a PATCH)."""
        merged = {**(partial or {}), **body}
        out: Record = {}
        if partial is None or "provider_id" in body:
            provider = self.scoped("providers", subdomain, merged.get("provider_id"), "Provider")
            out["provider_id"] = provider["id"]
        if partial is None or "operatory_id" in body:
            operatory_id = merged.get("operatory_id")
            if operatory_id is not None:
                operatory = self.scoped("operatories", subdomain, operatory_id, "Operatory")
                if operatory["location_id"] != location["id"]:
                    raise bad_request(f"operatory {operatory_id} is not at this location")
            out["operatory_id"] = operatory_id
        try:
            begin = parse_hhmm(merged.get("begin_time"))
            end = parse_hhmm(merged.get("end_time"))
        except ValueError as exc:
            raise bad_request(f"begin_time/end_time {exc}") from exc
        if end <= begin:
            raise bad_request("end_time must be after begin_time")
        out["begin_time"], out["end_time"] = begin.strftime("%H:%M"), end.strftime("%H:%M")
        specific = merged.get("specific_date")
        if specific is not None:
            try:
                day = parse_date(specific)
            except ValueError as exc:
                raise bad_request(f"specific_date {exc}") from exc
            out["specific_date"] = day.isoformat()
            out["days"] = [WEEKDAYS[day.weekday()]]
        else:
            out["specific_date"] = None
            try:
                out["days"] = normalise_days(merged.get("days"))
            except ValueError as exc:
                raise bad_request(f"days {exc}") from exc
        if partial is None or "appointment_type_ids" in body:
            type_ids = _id_list(merged.get("appointment_type_ids"), "appointment_type_ids")
            for type_id in type_ids:
                appt_type = self.scoped("appointment_types", subdomain, type_id, "Appointment type")
                if not self.type_applies(appt_type, location["id"]):
                    raise bad_request(f"appointment type {type_id} is not at this location")
            out["appointment_type_ids"] = type_ids
        if partial is None or "active" in body:
            active = merged.get("active", True)
            if not isinstance(active, bool):
                raise bad_request("active must be a boolean")
            out["active"] = active
        return out

    def replace_synced_working_hours(
        self, subdomain: str, location: Record, provider_id: object, items: object
    ) -> tuple[list[Record], list[int]]:
        """What Eaglesoft does on a schedule change: delete the provider's synced records and
        create fresh ones (new ids), then tell subscribers with ``working_hours_updated``."""
        if not isinstance(items, list):
            raise bad_request("working_hours must be a list")
        tz = zone(location.get("tz"))
        with self.store.tx():
            provider = self.scoped("providers", subdomain, provider_id, "Provider")
            prepared = []
            for index, item in enumerate(items):
                if not isinstance(item, dict):
                    raise bad_request(f"working_hours[{index}] must be an object")
                fields = self.validate_working_hour(
                    subdomain, location, {**item, "provider_id": provider["id"]}
                )
                label = item.get("label")
                if isinstance(label, dict):
                    label = label.get("name")
                if label is not None and not isinstance(label, str):
                    raise bad_request(f"working_hours[{index}].label must be a name or null")
                prepared.append((fields, label, item.get("tz_offset")))
            old = self.store.rows(
                "working_hours",
                lambda r: (
                    r["provider_id"] == provider["id"]
                    and r["location_id"] == location["id"]
                    and r["source"] == "synced"
                ),
            )
            for row in old:
                self.store.delete("working_hours", row["id"])
            created = []
            for fields, label_name, tz_offset in prepared:
                on = (
                    date.fromisoformat(fields["specific_date"]) if fields["specific_date"] else None
                )
                label = self.label(location["id"], label_name) if label_name else None
                record = self.store.insert(
                    "working_hours",
                    {
                        **fields,
                        "location_id": location["id"],
                        "custom_recurrence": None,
                        "tz_offset": tz_offset or tz_offset_string(tz, on or utc_now().date()),
                        "source": "synced",
                        "label": public(label) if label else None,
                        "_subdomain": subdomain,
                    },
                )
                created.append(public(record))
            deleted = [row["id"] for row in old]
        self.stats.add("working_hours", "synced_replacements")
        self.emit(
            subdomain,
            "working_hours_updated",
            location["id"],
            {
                "provider_id": provider["id"],
                "location_id": location["id"],
                "source": "synced",
                "deleted_ids": deleted,
                "working_hours": created,
            },
        )
        return created, deleted

    # -- patients ---------------------------------------------------------------------------

    def create_patient(
        self, subdomain: str, location: Record, body: Record, *, via: str = "api"
    ) -> Record:
        patient = body.get("patient")
        if not isinstance(patient, dict):
            raise bad_request("patient is required")
        errors = [
            f"patient.{name} is required"
            for name in ("first_name", "last_name")
            if not isinstance(patient.get(name), str) or not patient[name].strip()
        ]
        bio = patient.get("bio") or {}
        if not isinstance(bio, dict):
            errors.append("patient.bio must be an object")
            bio = {}
        if bio.get("date_of_birth") is not None:
            try:
                parse_date(bio["date_of_birth"])
            except ValueError:
                errors.append("patient.bio.date_of_birth must be a date (YYYY-MM-DD)")
        if errors:
            raise bad_request(*errors)
        provider = body.get("provider") or {}
        provider_id = provider.get("provider_id") if isinstance(provider, dict) else None
        with self.store.tx():
            if provider_id is not None:
                self.scoped("providers", subdomain, provider_id, "Provider")
            first, last = patient["first_name"].strip(), patient["last_name"].strip()
            dob = bio.get("date_of_birth")
            duplicate = self.store.rows(
                "patients",
                lambda r: (
                    r["_subdomain"] == subdomain
                    and r["first_name"].lower() == first.lower()
                    and r["last_name"].lower() == last.lower()
                    and r["bio"].get("date_of_birth") == dob
                ),
            )
            if duplicate:
                self.stats.add("duplicates_detected", "patients")
            middle = patient.get("middle_name")
            record = self.store.insert(
                "patients",
                {
                    "email": patient.get("email"),
                    "first_name": first,
                    "middle_name": middle,
                    "last_name": last,
                    "name": f"{first} {last}",
                    "institution_id": self.store.institution_for(subdomain)["id"],
                    "foreign_id": None,
                    "foreign_id_type": None,
                    "bio": {"date_of_birth": dob, "phone_number": None, **bio},
                    "inactive": False,
                    "last_sync_time": None,
                    "guarantor_id": None,
                    "unsubscribe_sms": False,
                    "location_ids": [location["id"]],
                    "provider_id": provider_id,
                    "_subdomain": subdomain,
                    "_via": via,
                },
            )
            if via == "ehr":
                record["foreign_id"] = f"pat-{record['id']}"
                record["foreign_id_type"] = "sandbox-ehr"
                record["last_sync_time"] = record["created_at"]
            view = public(record)
        self.stats.add("patients", "created")
        self.emit(subdomain, "patient_created", location["id"], {"patient": view})
        return view

    def upcoming_appointments(self, patient_id: int) -> list[Record]:
        now = time.time()
        return [
            {
                "id": a["id"],
                "provider_id": a["provider_id"],
                "provider_name": a["provider_name"],
                "start_time": a["start_time"],
                "end_time": a["end_time"],
                "location_id": a["location_id"],
                "confirmed": a["confirmed"],
            }
            for a in self.store.rows(
                "appointments",
                lambda r: (
                    r["patient_id"] == patient_id
                    and not r["cancelled"]
                    and r["insertion_status"] in ACTIVE_INSERTION
                    and r["_start"] >= now
                ),
            )
        ]

    # -- appointments -----------------------------------------------------------------------

    def build_appointment(
        self, subdomain: str, location: Record, appt: object, *, via: str
    ) -> Record:
        """Validate an ``appt`` body into a record (not stored). ``via`` is "api" or "ehr"."""
        if not isinstance(appt, dict):
            raise bad_request("appt is required")
        tz = zone(location.get("tz"))
        unavailable = bool(appt.get("unavailable", False)) if via == "ehr" else False
        provider_id = appt.get("provider_id")
        provider = None
        if provider_id is not None or (via == "api"):
            provider = self.scoped("providers", subdomain, provider_id, "Provider")
        operatory_id = appt.get("operatory_id")
        if operatory_id is None and via == "api" and location.get("map_by_operatory", True):
            raise bad_request("operatory_id is required for this location (map_by_operatory)")
        if operatory_id is not None:
            operatory = self.scoped("operatories", subdomain, operatory_id, "Operatory")
            if operatory["location_id"] != location["id"]:
                raise bad_request(f"operatory {operatory_id} is not at this location")
        patient_id = appt.get("patient_id")
        if patient_id is None and via == "api":
            raise bad_request("patient_id is required")
        if patient_id is not None:
            self.scoped("patients", subdomain, patient_id, "Patient")
        appt_type = None
        if appt.get("appointment_type_id") is not None:
            appt_type = self.scoped(
                "appointment_types", subdomain, appt["appointment_type_id"], "Appointment type"
            )
            if not self.type_applies(appt_type, location["id"]):
                raise bad_request("appointment type is not available at this location")
        try:
            start = parse_datetime(appt.get("start_time"), tz)
        except ValueError as exc:
            raise bad_request(f"start_time {exc}") from exc
        if appt.get("end_time") is not None:
            try:
                end = parse_datetime(appt["end_time"], tz)
            except ValueError as exc:
                raise bad_request(f"end_time {exc}") from exc
        elif appt_type is not None:
            end = start + timedelta(minutes=appt_type["minutes"])
        elif via == "ehr" and isinstance(appt.get("minutes"), int) and appt["minutes"] > 0:
            end = start + timedelta(minutes=appt["minutes"])
        else:
            raise bad_request("end_time or appointment_type_id is required to set the duration")
        if end <= start:
            raise bad_request("end_time must be after start_time")
        if via == "api" and self.settings.reject_past_appointments and start <= utc_now():
            raise bad_request("start_time must be in the future")
        if "descriptor_ids" in appt:
            descriptor_ids = _id_list(appt.get("descriptor_ids"), "descriptor_ids")
        else:
            descriptor_ids = list(appt_type["emr_appt_descriptor_ids"]) if appt_type else []
        descriptors = []
        for descriptor_id in descriptor_ids:
            descriptor = self.scoped("descriptors", subdomain, descriptor_id, "Descriptor")
            if descriptor["location_id"] != location["id"]:
                raise bad_request(f"descriptor {descriptor_id} is not at this location")
            descriptors.append(
                {k: descriptor[k] for k in ("id", "code", "name", "descriptor_type")}
            )
        note = appt.get("note")
        if note is not None and not isinstance(note, str):
            raise bad_request("note must be a string")
        return {
            "patient_id": patient_id,
            "provider_id": provider["id"] if provider else None,
            "provider_name": provider["name"] if provider else None,
            "operatory_id": operatory_id,
            "location_id": location["id"],
            "appointment_type_id": appt_type["id"] if appt_type else None,
            "start_time": iso_utc(start),
            "end_time": iso_utc(end),
            "timezone": location.get("tz"),
            "confirmed": False,
            "patient_missed": False,
            "cancelled": False,
            "unavailable": unavailable,
            "note": note,
            "deleted": False,
            "misc": {},
            "emr_appt_descriptor_ids": descriptor_ids,
            "descriptors": descriptors,
            # Written into the EHR with the practice's default type when nothing is mapped.
            "ehr_appointment_type": "mapped" if descriptors else "practice default",
            "foreign_id": None,
            "foreign_id_type": None,
            "last_sync_time": None,
            "insertion_status": "pending",
            "insertion_error": None,
            "booked_via": via,
            "_subdomain": subdomain,
            "_start": start.timestamp(),
            "_end": end.timestamp(),
        }

    def accept_appointment(self, subdomain: str, location: Record, appt: object) -> Record:
        """POST /appointments: accepted now, inserted into the EHR a moment later."""
        with self.store.tx():
            record = self.build_appointment(subdomain, location, appt, via="api")
            twins = self.store.rows(
                "appointments",
                lambda r: (
                    r["patient_id"] == record["patient_id"]
                    and r["provider_id"] == record["provider_id"]
                    and r["start_time"] == record["start_time"]
                    and not r["cancelled"]
                    and r["insertion_status"] in ACTIVE_INSERTION
                ),
            )
            if twins:
                self.stats.add("duplicates_detected", "appointments")
            stored = self.store.insert("appointments", record)
            view = public(stored)
        self.stats.add("appointments", "accepted")
        delay = self.settings.insertion_delay_ms / 1000.0
        self.scheduler.call_later(delay, functools.partial(self._insert_appointment, view["id"]))
        return view

    def _conflict(self, appt: Record) -> Record | None:
        def clashes(other: Record) -> bool:
            if other["id"] == appt["id"] or other["cancelled"]:
                return False
            if other["insertion_status"] != "complete":
                return False
            if not (other["_start"] < appt["_end"] and other["_end"] > appt["_start"]):
                return False
            if appt["provider_id"] is not None and other["provider_id"] == appt["provider_id"]:
                return True
            if appt["operatory_id"] is not None and other["operatory_id"] == appt["operatory_id"]:
                return True
            return (
                other["unavailable"]
                and other["provider_id"] is None
                and other["operatory_id"] is None
                and other["location_id"] == appt["location_id"]
            )

        found = self.store.rows("appointments", clashes)
        return found[0] if found else None

    def _insert_appointment(self, appt_id: int) -> None:
        """The EHR write: completes, or fails on a fault or a slot taken in the meantime."""
        with self.store.tx():
            appt = self.store.get("appointments", appt_id)
            if appt is None or appt["insertion_status"] != "pending":
                return
            if appt["cancelled"]:
                self.store.update("appointments", appt_id, {"insertion_status": "cancelled"})
                return
            error = None
            conflict = self._conflict(appt)
            if self.faults.roll(self.faults.settings.insertion_failure_share):
                error = "The health record system rejected the appointment (injected fault)"
            elif conflict is not None:
                error = f"Time slot is no longer available (conflicts with {conflict['id']})"
            if error:
                self.store.update(
                    "appointments",
                    appt_id,
                    {"insertion_status": "failed", "insertion_error": error},
                )
                self.stats.add("appointments", "insertion_failed")
            else:
                self.store.update(
                    "appointments",
                    appt_id,
                    {
                        "insertion_status": "complete",
                        "foreign_id": f"appt-{appt_id}",
                        "foreign_id_type": "sandbox-ehr",
                        "last_sync_time": iso_utc(utc_now()),
                    },
                )
                self.stats.add("appointments", "inserted")
            view = public(appt)
            subdomain = appt["_subdomain"]
        status = "failed" if error else "complete"
        self.emit(
            subdomain,
            "appointment_insertion",
            view["location_id"],
            {"appointment": view, "status": status},
            event_name=f"appointment_insertion.{status}",
        )

    def ehr_create_appointment(self, subdomain: str, location: Record, appt: object) -> Record:
        """Staff book (or block) directly in the EHR: exists at once, ``appointment_created``."""
        with self.store.tx():
            record = self.build_appointment(subdomain, location, appt, via="ehr")
            record.update(insertion_status="complete", last_sync_time=iso_utc(utc_now()))
            stored = self.store.insert("appointments", record)
            stored["foreign_id"] = f"appt-{stored['id']}"
            stored["foreign_id_type"] = "sandbox-ehr"
            view = public(stored)
        self.stats.add("appointments", "ehr_created")
        self.emit(subdomain, "appointment_created", location["id"], {"appointment": view})
        return view

    def update_appointment(
        self, subdomain: str, appt_id: int, changes: object, *, via: str
    ) -> Record:
        """PATCH: cancel, confirm, note (the EHR side may also move it); ``appointment_updated``."""
        if not isinstance(changes, dict) or not changes:
            raise bad_request("appt must be an object with the fields to change")
        allowed = {"cancelled", "confirmed", "patient_missed", "note"}
        if via == "ehr":
            allowed |= {"start_time", "end_time", "provider_id", "operatory_id", "unavailable"}
        unknown = sorted(set(changes) - allowed)
        if unknown:
            raise bad_request(f"cannot change {', '.join(unknown)}")
        with self.store.tx():
            appt = self.scoped("appointments", subdomain, appt_id, "Appointment")
            if appt["insertion_status"] == "failed":
                raise bad_request("appointment was never inserted into the health record system")
            location = self.store.get("locations", appt["location_id"]) or {}
            update: Record = {}
            for key in ("cancelled", "confirmed", "patient_missed", "unavailable"):
                if key in changes:
                    if not isinstance(changes[key], bool):
                        raise bad_request(f"{key} must be a boolean")
                    update[key] = changes[key]
            if "note" in changes:
                if changes["note"] is not None and not isinstance(changes["note"], str):
                    raise bad_request("note must be a string")
                update["note"] = changes["note"]
            if {"start_time", "end_time", "provider_id", "operatory_id"} & set(changes):
                merged = {
                    **{k: appt[k] for k in ("patient_id", "provider_id", "operatory_id", "note")},
                    "start_time": appt["start_time"],
                    "end_time": appt["end_time"],
                    "unavailable": appt["unavailable"],
                    "descriptor_ids": appt["emr_appt_descriptor_ids"],
                    **changes,
                }
                rebuilt = self.build_appointment(subdomain, location, merged, via="ehr")
                for key in ("provider_id", "provider_name", "operatory_id", "start_time"):
                    update[key] = rebuilt[key]
                update.update(end_time=rebuilt["end_time"], _start=rebuilt["_start"])
                update["_end"] = rebuilt["_end"]
            changed = {k: v for k, v in update.items() if appt.get(k) != v}
            if changed:
                self.store.update("appointments", appt["id"], changed)
            view = public(appt)
        if changed.get("cancelled"):
            self.stats.add("appointments", "cancelled")
        if changed:
            self.emit(
                subdomain,
                "appointment_updated",
                view["location_id"],
                {"appointment": view, "changes": sorted(k for k in changed if k[0] != "_")},
            )
        return view

    # -- documents --------------------------------------------------------------------------

    def accept_document(
        self,
        subdomain: str,
        patient: Record,
        location_id: int,
        *,
        title: str,
        content: bytes,
        content_type: str,
        appointment_id: int | None,
    ) -> Record:
        """A file for the patient's document centre (our encounter note); inserted later."""
        with self.store.tx():
            if appointment_id is not None:
                self.scoped("appointments", subdomain, appointment_id, "Appointment")
            stored = self.store.insert(
                "documents",
                {
                    "patient_id": patient["id"],
                    "location_id": location_id,
                    "appointment_id": appointment_id,
                    "title": title,
                    "content_type": content_type,
                    "size": len(content),
                    "sha256": hashlib.sha256(content).hexdigest(),
                    "insertion_status": "pending",
                    "insertion_error": None,
                    "foreign_id": None,
                    "_subdomain": subdomain,
                    "_content": base64.b64encode(content).decode(),
                },
            )
            view = public(stored)
        self.stats.add("documents", "accepted")
        delay = self.settings.insertion_delay_ms / 1000.0
        self.scheduler.call_later(delay, functools.partial(self._insert_document, view["id"]))
        return view

    def _insert_document(self, doc_id: int) -> None:
        with self.store.tx():
            doc = self.store.get("documents", doc_id)
            if doc is None or doc["insertion_status"] != "pending":
                return
            if self.faults.roll(self.faults.settings.document_failure_share):
                update: Record = {
                    "insertion_status": "failed",
                    "insertion_error": "The health record system rejected the document "
                    "(injected fault)",
                }
            else:
                update = {"insertion_status": "complete", "foreign_id": f"doc-{doc_id}"}
            self.store.update("documents", doc_id, update)
            view = public(doc)
            subdomain = doc["_subdomain"]
        status = view["insertion_status"]
        self.stats.add("documents", "inserted" if status == "complete" else "insertion_failed")
        self.emit(
            subdomain,
            "document_insertion",
            view["location_id"],
            {"document": view, "status": status},
            event_name=f"document_insertion.{status}",
        )

    # -- slots ------------------------------------------------------------------------------

    def find_slots(
        self,
        subdomain: str,
        *,
        start_date: date,
        days: int,
        location_ids: list[int],
        provider_ids: list[int],
        operatory_ids: list[int],
        appointment_type_id: int | None,
        slot_length: int | None,
        slot_interval: int | None,
        overlapping_operatory_slots: bool,
    ) -> tuple[list[Record], bool]:
        """Level 2D derivation; returns the response groups and whether every group is empty."""
        with self.store.tx():
            locations = [self.location(subdomain, lid) for lid in location_ids]
            for pid in provider_ids:
                self.scoped("providers", subdomain, pid, "Provider")
            for oid in operatory_ids:
                self.scoped("operatories", subdomain, oid, "Operatory")
            minutes = None
            if appointment_type_id is not None:
                appt_type = self.scoped(
                    "appointment_types", subdomain, appointment_type_id, "Appointment type"
                )
                minutes = appt_type["minutes"]
            zones = {loc["id"]: zone(loc.get("tz")) for loc in locations}
            hours = [
                slot_engine.WorkingHour(
                    id=wh["id"],
                    provider_id=wh["provider_id"],
                    location_id=wh["location_id"],
                    operatory_id=wh["operatory_id"],
                    begin=parse_hhmm(wh["begin_time"]),
                    end=parse_hhmm(wh["end_time"]),
                    weekdays=frozenset(WEEKDAYS.index(d) for d in wh["days"]),
                    specific_date=date.fromisoformat(wh["specific_date"])
                    if wh["specific_date"]
                    else None,
                    appointment_type_ids=frozenset(wh.get("appointment_type_ids") or ()),
                    label_id=wh["label"]["id"] if wh.get("label") else None,
                    active=wh["active"],
                )
                for wh in self.store.rows(
                    "working_hours",
                    lambda r: r["location_id"] in location_ids and r["provider_id"] in provider_ids,
                )
            ]
            horizon = days + self.settings.next_available_horizon_days + 2
            window_start = datetime.combine(start_date, datetime.min.time(), tzinfo=UTC) - (
                timedelta(days=1)
            )
            lo, hi = window_start.timestamp(), (window_start + timedelta(days=horizon)).timestamp()
            busy = [
                slot_engine.Busy(
                    start=datetime.fromtimestamp(a["_start"], UTC),
                    end=datetime.fromtimestamp(a["_end"], UTC),
                    provider_id=a["provider_id"],
                    operatory_id=a["operatory_id"],
                    location_id=a["location_id"],
                )
                for a in self.store.rows(
                    "appointments",
                    lambda r: (
                        not r["cancelled"]
                        and r["insertion_status"] in ACTIVE_INSERTION
                        and r["_end"] > lo
                        and r["_start"] < hi
                    ),
                )
            ]
        query = slot_engine.SlotQuery(
            start_date=start_date,
            days=days,
            location_ids=location_ids,
            provider_ids=provider_ids,
            zones=zones,
            operatory_ids=operatory_ids,
            appointment_type_id=appointment_type_id,
            appointment_type_minutes=minutes,
            slot_length=slot_length,
            slot_interval=slot_interval,
            overlapping_operatory_slots=overlapping_operatory_slots,
            next_available_horizon_days=self.settings.next_available_horizon_days,
        )
        groups = slot_engine.derive_slots(query, hours, busy)
        out = []
        for group in groups:
            tz = zones.get(group.location_id, UTC)
            rendered = []
            for slot in group.slots:
                rendered.append(
                    {
                        "time": iso_local(slot.start, tz),
                        "end_time": iso_local(slot.end, tz),
                        "operatory_id": slot.operatory_id,
                        "provider_id": slot.provider_id,
                        "working_hour_label_id": slot.label_id,
                    }
                )
            out.append(
                {
                    "lid": group.location_id,
                    "pid": group.provider_id,
                    "operatory_id": group.operatory_id,
                    "slots": rendered,
                    "next_available_date": group.next_available_date.isoformat()
                    if group.next_available_date
                    else None,
                }
            )
        return out, all(not g.slots for g in groups)

    # -- webhooks ---------------------------------------------------------------------------

    def create_webhook_endpoint(self, api_key: str, target_url: str) -> Record:
        stored = self.store.insert(
            "webhook_endpoints",
            {
                "target_url": target_url,
                "secret_key": secrets.token_urlsafe(24),
                "active": True,
                "_api_key": api_key,
            },
        )
        return public(stored)

    def subscribers(self, subdomain: str, event: str) -> list[int]:
        with self.store.lock:
            endpoint_ids = {
                sub["webhook_endpoint_id"]
                for sub in self.store.tables["webhook_subscriptions"].values()
                if sub["subdomain"] == subdomain and sub["event"] == event and sub["active"]
            }
            return sorted(
                eid
                for eid in endpoint_ids
                if (ep := self.store.tables["webhook_endpoints"].get(eid)) and ep["active"]
            )

    def emit(
        self,
        subdomain: str,
        event: str,
        location_id: int | None,
        data: Record,
        *,
        event_name: str | None = None,
    ) -> None:
        self.stats.add("events", event)
        endpoint_ids = self.subscribers(subdomain, event)
        if not endpoint_ids:
            return
        payload = {
            "event": event,
            "event_name": event_name or event,
            "resource_type": EVENTS[event],
            "subdomain": subdomain,
            "location_id": location_id,
            "created_at": iso_utc(utc_now()),
            "data": data,
        }
        self.webhooks.emit(endpoint_ids, event, payload)

    def _resolve_endpoint(self, endpoint_id: int) -> tuple[str, str] | None:
        with self.store.lock:
            endpoint = self.store.get("webhook_endpoints", endpoint_id)
            if endpoint is None or not endpoint["active"]:
                return None
            return endpoint["target_url"], endpoint["secret_key"]

    def _deactivate_endpoint(self, endpoint_id: int) -> None:
        with self.store.tx():
            if self.store.get("webhook_endpoints", endpoint_id) is not None:
                self.store.update("webhook_endpoints", endpoint_id, {"active": False})
        self.stats.add("webhooks", "endpoints_deactivated")
