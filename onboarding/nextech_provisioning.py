"""A Nextech practice from its configuration file: the sandbox's Nextech surface set up like the
office's own Nextech, the connections (credentials from the caller, never the file), the sync.

Nextech keeps a practice's set-up itself (templates, appointment types, purposes, locations,
practitioners with a linked user) and its Select API writes none of it. So against a real
Nextech an import writes only our side and syncs the connections the practice already made on
the connection page (or with `manage.py connect_nextech`). In development
(`settings.NEXTECH_SANDBOX_URL`) the import first writes the file into the sandbox the way an
office would configure Nextech, through its admin routes:

* locations -> Nextech locations (id: the entry's `ehr_id`, else its position from 1);
* providers -> practitioners with a linked user, named as in the file (ids from 9301);
* appointment types -> Nextech appointment types with the file's minutes (ids from 101), and the
  types' `descriptors` -> appointment purposes named by them (ids from 201): a purpose's name is
  the code the mirror knows it by, and the type's purposes are what a booking sends;
* working hours -> templates (weekdays, hours, the types they take, at the operatory's location;
  one start every `minutes` of the shortest type, so a 240-minute Mohs block starts at 08:00
  and 12:00).

Rooms (operatories and their capabilities) stay ours: Nextech's scheduling resources are not in
its API. Writing the set-up again keeps the sandbox's calendar and charts (idempotent).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings

from accounts.models import Location, Practice
from core.tenancy import tenant_context
from ehr.errors import EHRError
from ehr.models import ConnectionKind, EHRConnection
from ehr.registry import connect_nextech
from ehr.services import sync_connection
from onboarding.provisioning import ProvisionReport
from onboarding.schema import WEEKDAYS, PracticeConfig

log = logging.getLogger("onboarding.nextech")

FIRST_PRACTITIONER_ID = 9301
FIRST_TYPE_ID = 101
FIRST_PURPOSE_ID = 201
TOKEN_TENANT = "sandbox-tenant"  # the sandbox answers Azure AD's /{tenant}/oauth2/token


def sandbox_practice_id(slug: str) -> str:
    """The practice's `nx-practice-id` in the sandbox: stable per slug, digits like Nextech's."""
    return str(10000 + int(hashlib.sha256(slug.encode()).hexdigest()[:8], 16) % 90000)


def _ids(entries: Any, first: int) -> dict[str, str]:
    """key -> Nextech id: the entry's own `ehr_id`, else the next free number from `first`."""
    taken = {e.ehr_id for e in entries if e.ehr_id is not None}
    out: dict[str, str] = {}
    candidate = first
    for entry in entries:
        if entry.ehr_id is not None:
            out[entry.key] = str(entry.ehr_id)
            continue
        while candidate in taken:
            candidate += 1
        out[entry.key] = str(candidate)
        taken.add(candidate)
    return out


@dataclass(frozen=True)
class NextechIds:
    locations: dict[str, str]
    practitioners: dict[str, str]
    types: dict[str, str]
    purposes: dict[str, str]


def nextech_ids(config: PracticeConfig) -> NextechIds:
    locations = _ids(config.locations, 1)
    codes = dict.fromkeys(code for t in config.appointment_types for code in t.descriptors)
    return NextechIds(
        locations=locations,
        practitioners=_ids(config.providers, FIRST_PRACTITIONER_ID),
        types=_ids(config.appointment_types, FIRST_TYPE_ID),
        purposes={code: str(FIRST_PURPOSE_ID + i) for i, code in enumerate(codes)},
    )


def nextech_setup(config: PracticeConfig) -> dict[str, Any]:
    """The sandbox's practice seed (`PUT /_admin/practices/{id}`) for this configuration."""
    ids = nextech_ids(config)
    minutes = {t.key: t.minutes for t in config.appointment_types}
    room_location = {o.key: o.location for o in config.operatories}
    weekday = {name: i for i, name in enumerate(WEEKDAYS)}
    templates = []
    for hour in config.working_hours:
        if not hour.active or hour.specific_date is not None:
            continue
        lengths = [minutes[t] for t in hour.appointment_types]
        templates.append(
            {
                "practitioner": ids.practitioners[hour.provider],
                "location": ids.locations[room_location[hour.operatory]],
                "weekdays": sorted(weekday[d] for d in hour.days),
                "start": hour.begin.strftime("%H:%M"),
                "end": hour.end.strftime("%H:%M"),
                "interval": min(lengths) if lengths else 15,
                "appointment_types": [ids.types[t] for t in hour.appointment_types],
            }
        )
    return {
        "name": config.practice.name,
        "timezone": config.practice.timezone,
        "booking_preference": "book",
        "locations": [{"id": ids.locations[loc.key], "name": loc.name} for loc in config.locations],
        "practitioners": [
            {
                "id": ids.practitioners[p.key],
                "text": p.name,
                "family": p.name.split()[-1],
                "given": " ".join(p.name.split()[:-1]),
            }
            for p in config.providers
            if p.active
        ],
        "appointment_types": [
            {"id": ids.types[t.key], "name": t.name, "duration": t.minutes}
            for t in config.appointment_types
        ],
        "appointment_purposes": [
            {"id": purpose_id, "name": code} for code, purpose_id in ids.purposes.items()
        ],
        "templates": templates,
    }


class _SandboxAdmin:
    """The Nextech sandbox's admin routes: what the office does inside its own Nextech."""

    def __init__(self, base_url: str | None = None, token: str | None = None) -> None:
        self.base_url = (base_url or settings.NEXTECH_SANDBOX_URL).rstrip("/")
        self.http = httpx.Client(
            base_url=self.base_url,
            headers={"X-Admin-Token": token or settings.NEXTECH_SANDBOX_ADMIN_TOKEN},
            timeout=httpx.Timeout(10.0, connect=3.0),
        )

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        response = self.http.request(method, path, json=body)
        if response.status_code >= 400 and response.status_code != 404:
            raise EHRError(
                f"Nextech sandbox admin {method} {path}: {response.text[:300]}",
                status=response.status_code,
            )
        return response.status_code, response.json()

    def close(self) -> None:
        self.http.close()


def _setup_of(described: dict[str, Any]) -> dict[str, Any]:
    """The parts of a described practice that a seed sets (to compare before writing)."""
    return {k: described.get(k) for k in ("locations", "practitioners", "appointment_types")} | {
        "purposes": described.get("appointment_purposes"),
        "templates": described.get("templates"),
    }


def provision_nextech(
    practice: Practice,
    config: PracticeConfig,
    *,
    sandbox_url: str | None = None,
    admin_token: str | None = None,
) -> ProvisionReport:
    """After an import of an `ehr.kind = "nextech"` file: write its set-up into the sandbox
    (when there is one), then sync the practice's Nextech connections back into the mirror."""
    report = ProvisionReport()
    if sandbox_url or settings.NEXTECH_SANDBOX_URL:
        admin = _SandboxAdmin(sandbox_url, admin_token)
        try:
            practice_id = sandbox_practice_id(practice.slug)
            wanted = nextech_setup(config)
            status, before = admin.call("GET", f"/_admin/practices/{practice_id}")
            if status == 404:
                admin.call("PUT", f"/_admin/practices/{practice_id}", wanted)
                report.created["practice set-up"] += 1
            else:
                if _normalised(_setup_of(before)) != _normalised(_setup_of(wanted)):
                    admin.call("PUT", f"/_admin/practices/{practice_id}", wanted)
                    report.updated["practice set-up"] += 1
        finally:
            admin.close()
    for conn in _nextech_connections(practice):
        report.connections.append(conn.pk)
        report.add_sync(sync_connection(conn))
    log.info("Nextech set-up of %s: %s", practice.slug, report.summary())
    return report


def _normalised(setup: dict[str, Any]) -> dict[str, Any]:
    """Seeds and descriptions differ in defaults (a described type has its duration as int,
    a practitioner its linked flag): compare the fields a seed writes, as strings."""

    def rows(items: Any, fields: tuple[str, ...]) -> list[tuple[str, ...]]:
        return sorted(tuple(str(item.get(f, "")) for f in fields) for item in items or [])

    return {
        "locations": rows(setup["locations"], ("id", "name")),
        "practitioners": rows(setup["practitioners"], ("id", "text", "family", "given")),
        "appointment_types": rows(setup["appointment_types"], ("id", "name", "duration")),
        "purposes": rows(setup["purposes"], ("id", "name")),
        "templates": rows(
            setup["templates"],
            (
                "practitioner",
                "location",
                "weekdays",
                "start",
                "end",
                "interval",
                "appointment_types",
            ),
        ),
    }


def _nextech_connections(practice: Practice) -> list[EHRConnection]:
    with tenant_context(practice):
        return list(
            EHRConnection.objects.filter(practice=practice, kind=ConnectionKind.NEXTECH)
            .select_related("location", "location__practice")
            .order_by("id")
        )


# --- the demo's service user -------------------------------------------------------------------


@dataclass(frozen=True)
class SandboxUser:
    username: str
    password: str


def sandbox_user(slug: str) -> SandboxUser:
    """The practice's service user in the sandbox. Its password is derived from this checkout's
    SECRET_KEY: never in a file, and the same after the sandbox restarts (it keeps no state),
    so a stored connection keeps working once the user is made again."""
    digest = hmac.new(
        settings.SECRET_KEY.encode(), f"nextech-sandbox:{slug}".encode(), "sha256"
    ).hexdigest()
    return SandboxUser(f"hello-service@{slug}.nextech.demo", digest[:24])


def ensure_sandbox_user(
    slug: str, *, sandbox_url: str | None = None, admin_token: str | None = None
) -> SandboxUser:
    """Make the practice's service user in the sandbox (again: it keeps no state). Before the
    import, so the sync after it signs in with the connections already stored."""
    user = sandbox_user(slug)
    admin = _SandboxAdmin(sandbox_url, admin_token)
    try:
        admin.call(
            "POST",
            "/_admin/users",
            {
                "username": user.username,
                "password": user.password,
                "practices": [sandbox_practice_id(slug)],
            },
        )
    finally:
        admin.close()
    return user


def connect_sandbox_locations(
    practice: Practice,
    config: PracticeConfig,
    *,
    sandbox_url: str | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
) -> list[str]:
    """Connect each location to the sandbox's Nextech as `manage.py connect_nextech` would
    (the service user's credentials stored encrypted on the connection, the connection
    tested), then sync it. Returns a problem per location whose connection did not work."""
    base = (sandbox_url or settings.NEXTECH_SANDBOX_URL).rstrip("/")
    user = sandbox_user(practice.slug)
    ids = nextech_ids(config)
    problems = []
    for spec in config.locations:
        with tenant_context(practice):
            location = Location.objects.get(practice=practice, key=spec.key)
        conn, check = connect_nextech(
            location,
            practice_id=sandbox_practice_id(practice.slug),
            ehr_location_id=int(ids.locations[spec.key]),
            client_id=client_id or settings.NEXTECH_SANDBOX_CLIENT_ID,
            client_secret=client_secret or settings.NEXTECH_SANDBOX_CLIENT_SECRET,
            username=user.username,
            password=user.password,
            api_base_url=f"{base}/api",
            token_url=f"{base}/{TOKEN_TENANT}/oauth2/token",
        )
        if not check.ok:
            problems.append(f"{spec.key}: {check.detail}")
            continue
        sync_connection(conn)
    return problems
