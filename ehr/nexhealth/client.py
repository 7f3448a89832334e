"""The one NexHealth Synchronizer API client (httpx), used for the real API and the sandbox alike.

What every call gets, in this order:

1. **Rate limit**: the practice's shared Redis buckets (`ehr.ratelimit`, NexHealth's in
   `ehr.nexhealth.ratelimit`) admit the
   attempt, waiting at most `rate_wait` seconds, else `EHRRateLimited(retry_after)`.
2. **Auth**: a bearer token from `POST /authenticates` with the API key, cached in Redis (shared
   by every worker), refreshed before it expires (its JWT `exp`), and on a 401 invalidated and
   fetched again once.
3. **Timeouts** on every call: connect / read / write / pool (`settings.EHR_TIMEOUTS`); calls
   safe to repeat use the shorter `settings.EHR_READ_TIMEOUTS` (a caller may be waiting: a hung
   read is abandoned and asked again sooner).
4. **Envelope**: `{code, description, error, data, count}` parsed into `EHRResponse`; errors mapped
   onto `ehr.errors`.
5. **Retries** for transient faults only (connect errors, timeouts, 5xx, 429 honouring
   Retry-After), with exponential backoff and full jitter; never for 4xx validation errors.

Idempotency (read this before posting anything): GET/PUT/PATCH/DELETE are retried freely. A POST
is not idempotent: if it times out after being sent, or gets a 5xx, the EHR may have written it.
So by default such a POST is **not retried** and raises `EHRWriteUncertain`. Pass
`lookup=callable` to `request()` and the client calls it first (an idempotent search for the
record the POST would have made): found -> that record is the answer; not found -> the POST is
retried. `create_appointment()` does exactly this for `POST /appointments` (search by patient,
provider and start time before retrying); `create_patient()` likewise (name + birth date). A
connect error or a 429 means the request was never processed, so those are always retried.

Health: calls, latency, errors by kind, rate-limit waits and retries go to the connection's live
counters (`ehr.health`).
"""

from __future__ import annotations

import base64
import json
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from hashlib import sha256
from typing import TYPE_CHECKING, Any, Unpack

import httpx
from django.conf import settings

from core.redis import get_redis
from ehr.errors import (
    EHRAuthError,
    EHRError,
    EHRNotFound,
    EHRTransientError,
    EHRValidationError,
)
from ehr.events import report_trouble as _report
from ehr.http import ClientOptions, EHRHttpClient
from ehr.instances import PerConnection
from ehr.nexhealth import normalize as norm
from ehr.nexhealth.ratelimit import buckets_for, parse_limits
from ehr.port import (
    AppointmentDetails,
    AppointmentKey,
    Capability,
    DocumentDetails,
    PatientDetails,
    PatientQuery,
    WorkingHoursQuery,
)
from ehr.ratelimit import Limit, RateLimiter
from ehr.ratelimit import redis_prefix as _prefix
from ehr.types import EHRTrouble, WebhookRegistration

if TYPE_CHECKING:
    from ehr.models import EHRConnection

log = logging.getLogger("ehr.nexhealth.client")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})
ACCEPT = "application/vnd.Nexhealth+json;version=2"
USER_AGENT = "hello-practice-portal/1.0 (+integrations)"

# event -> resource type to subscribe it under (NexHealth's names; working_hours_updated is the
# sandbox's name for a provider's synced schedule being replaced in the EHR). The receiver
# (`ehr.nexhealth.webhooks`) processes exactly these.
SUBSCRIPTIONS: dict[str, str] = {
    "appointment_insertion": "Appointment",
    "appointment_created": "Appointment",
    "appointment_updated": "Appointment",
    "working_hours_updated": "WorkingHour",
    "document_insertion": "Document",
}


# --- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionConfig:
    """Everything the client needs, decoupled from the ORM (so any process can build one)."""

    base_url: str
    subdomain: str
    api_key: str
    location_id: int | None = None
    rate_limit_key: str = "default"
    health_key: str = "default"
    limits: dict[str, Limit] = field(default_factory=lambda: parse_limits(None))

    @classmethod
    def from_connection(cls, connection: EHRConnection) -> ConnectionConfig:
        overrides = dict(connection.rate_limits or {})
        if connection.rate_limit_per_minute and "overall" not in overrides:
            overrides["overall"] = {"limit": connection.rate_limit_per_minute, "window_seconds": 60}
        return cls(
            base_url=connection.base_url.rstrip("/"),
            subdomain=connection.subdomain,
            api_key=connection.api_key,
            location_id=connection.ehr_location_id,
            rate_limit_key=connection.rate_limit_key,
            health_key=connection.health_key,
            limits=parse_limits(overrides),
        )

    @property
    def fingerprint(self) -> str:
        material = json.dumps(
            [
                self.base_url,
                self.subdomain,
                self.api_key,
                self.location_id,
                self.rate_limit_key,
                self.health_key,
                sorted((k, v.limit, v.window_seconds) for k, v in self.limits.items()),
            ]
        )
        return sha256(material.encode()).hexdigest()[:16]


@dataclass
class EHRResponse:
    """A successful answer, unwrapped from NexHealth's envelope."""

    status: int
    data: Any
    count: int | None = None
    description: Any = None
    headers: dict[str, str] = field(default_factory=dict)


# --- tokens ----------------------------------------------------------------------------------


def _jwt_claims(token: str) -> dict[str, Any]:
    try:
        body = token.split(".")[1]
        return dict(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))))
    except (IndexError, ValueError):
        return {}


# Delete the cached token only if it is still the one that was refused (another worker may have
# refreshed it meanwhile: its fresh token must survive).
_INVALIDATE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class TokenCache:
    """The bearer token of one API key at one EHR, in Redis so every worker shares it."""

    def __init__(self, config: ConnectionConfig) -> None:
        scope = sha256(f"{config.base_url}|{config.api_key}".encode()).hexdigest()[:16]
        self.key = f"{_prefix()}:token:{config.rate_limit_key}:{scope}"
        self.lock_key = f"{self.key}:lock"

    def get(self) -> str | None:
        raw = get_redis().get(self.key)
        if not raw:
            return None
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    def put(self, token: str, ttl: float) -> None:
        get_redis().set(self.key, token, px=max(1000, int(ttl * 1000)))

    def invalidate(self, token: str) -> None:
        get_redis().eval(_INVALIDATE, 1, self.key, token)

    def try_lock(self) -> bool:
        return bool(get_redis().set(self.lock_key, "1", nx=True, px=10_000))

    def unlock(self) -> None:
        get_redis().delete(self.lock_key)


def refresh_margin(claims: dict[str, Any]) -> float:
    """Refresh this long before `exp`: 10% of the lifetime, between 5 s and 5 minutes."""
    lifetime = float(claims.get("exp", 0)) - float(claims.get("iat", 0))
    return min(300.0, max(5.0, 0.1 * lifetime)) if lifetime > 0 else 30.0


# --- the client ------------------------------------------------------------------------------


class NexHealthClient(EHRHttpClient[EHRResponse]):
    """One per connection (see `client_for`); thread-safe (httpx.Client is). Implements
    `ehr.port.EHRPort` for NexHealth and the sandbox that speaks its API."""

    kind = "nexhealth"
    capabilities = frozenset(
        {
            Capability.WORKING_HOURS,
            Capability.WEBHOOKS,
            Capability.INSERTION_REPORTS,
            Capability.TYPE_DESCRIPTORS,
            Capability.OPERATORIES,
        }
    )
    log = log

    def __init__(
        self,
        config: ConnectionConfig,
        *,
        api_version: str | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        self.config = config
        version = api_version or str(getattr(settings, "EHR_API_VERSION", "v20240412"))
        super().__init__(
            base_url=config.base_url,
            headers={"Accept": ACCEPT, "Nex-Api-Version": version, "User-Agent": USER_AGENT},
            health_key=config.health_key,
            **options,
        )
        self.limiter = RateLimiter(config.rate_limit_key, config.limits)
        self.tokens = TokenCache(config)

    # -- auth -------------------------------------------------------------------------------

    def authenticate(self) -> str:
        """`POST /authenticates` with the API key; caches and returns the bearer token."""
        response = self.request(
            "POST",
            "/authenticates",
            auth=False,
            idempotent=True,  # asking for a token twice is harmless
            headers={"Authorization": self.config.api_key},
            subdomain=False,
        )
        token = (response.data or {}).get("token") if isinstance(response.data, dict) else None
        if not token:
            raise EHRAuthError("authenticates answered without a token", status=response.status)
        claims = _jwt_claims(token)
        if claims.get("exp"):
            ttl = float(claims["exp"]) - time.time() - refresh_margin(claims)
        else:
            ttl = 50 * 60.0  # opaque token: NexHealth's last for an hour
        self.tokens.put(token, max(1.0, ttl))
        return str(token)

    def token(self) -> str:
        """A token valid for a while yet: from Redis, or fresh (one worker refreshes at a time)."""
        cached = self.tokens.get()
        if cached:
            return cached
        if self.tokens.try_lock():
            try:
                return self.authenticate()
            finally:
                self.tokens.unlock()
        # Someone else is refreshing: use theirs when it lands, or fetch our own after a bit.
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            self._sleep(0.05)
            cached = self.tokens.get()
            if cached:
                return cached
        return self.authenticate()

    # -- the request loop (ehr.http.EHRHttpClient) -------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        idempotent: bool | None = None,
        lookup: Callable[[], EHRResponse | None] | None = None,
        auth: bool = True,
        headers: dict[str, str] | None = None,
        subdomain: bool = True,
        max_attempts: int | None = None,
    ) -> EHRResponse:
        """One API call with rate limiting, auth, retries and error mapping (module docstring).

        `idempotent` defaults to the method's nature (POST is not). For a non-idempotent call an
        ambiguous failure (read/write timeout, dropped connection, 5xx) raises
        `EHRWriteUncertain` unless `lookup` is given: then `lookup()` runs first and a non-None
        result is returned as the call's answer; None means "not written", and the call is
        retried.
        """
        method = method.upper()
        query = {k: v for k, v in (params or {}).items() if v is not None}
        if subdomain:
            query.setdefault("subdomain", self.config.subdomain)
        return self._call(
            method,
            path,
            limit_key=(buckets_for(method, path), auth),
            error_path=path,
            safe_to_repeat=method in IDEMPOTENT_METHODS if idempotent is None else idempotent,
            attempts=max_attempts or self.max_attempts,
            lookup=lookup,
            params=query,
            json=json,
            headers=headers,
        )

    def _admit(self, limit_key: tuple[list[str], bool], member: str) -> float:
        return self.limiter.acquire(
            limit_key[0], max_wait=self.rate_wait, member=member, in_flight=self._in_flight
        )

    def _complete(self, limit_key: tuple[list[str], bool], member: str) -> None:
        self.limiter.complete(limit_key[0], member)

    def _sign(self, headers: dict[str, str], limit_key: tuple[list[str], bool]) -> str | None:
        if not limit_key[1]:  # `POST /authenticates` presents the API key itself
            return None
        token = self.token()
        headers["Authorization"] = f"Bearer {token}"
        return token

    def _invalidate(self, token: str) -> None:
        self.tokens.invalidate(token)

    def _error_text(self, response: httpx.Response) -> tuple[list[str], str]:
        messages, description = _error_details(response)
        return messages, "; ".join(messages) or str(description or response.reason_phrase)

    def _permanent(
        self, response: httpx.Response, text: str, messages: list[str], method: str, path: str
    ) -> EHRError:
        return _permanent_error(response.status_code, text, messages, method, path)

    def _throttled(
        self, limit_key: tuple[list[str], bool], retry_after: float, times: int
    ) -> float | None:
        if retry_after > self.rate_wait:
            return None
        return retry_after + random.uniform(0, 0.1)  # noqa: S311

    def _trouble(self, kind: EHRTrouble) -> None:
        _report(kind)

    def _parse_ok(self, response: httpx.Response, method: str, path: str) -> EHRResponse:
        try:
            payload = response.json()
        except ValueError as exc:
            raise EHRTransientError(
                "the EHR answered 2xx without JSON", status=response.status_code
            ) from exc
        if isinstance(payload, dict) and "code" in payload:
            if payload.get("code") is False:
                messages = _as_messages(payload.get("error"))
                raise EHRValidationError(
                    "; ".join(messages) or "the EHR refused the request",
                    status=response.status_code,
                    messages=messages,
                    method=method,
                    path=path,
                )
            return EHRResponse(
                status=response.status_code,
                data=payload.get("data"),
                count=payload.get("count"),
                description=payload.get("description"),
                headers=dict(response.headers),
            )
        return EHRResponse(
            status=response.status_code, data=payload, headers=dict(response.headers)
        )

    # -- plumbing for the resource methods --------------------------------------------------

    def _location(self, location_id: int | None) -> int:
        value = location_id if location_id is not None else self.config.location_id
        if value is None:
            raise ValueError("this call needs an EHR location id (none on the connection)")
        return value

    def get(self, path: str, **params: Any) -> EHRResponse:
        return self.request("GET", path, params=params)

    def iterate(
        self, path: str, params: dict[str, Any] | None = None, *, key: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every record of a paginated list (`page` from 1, `per_page` up to 1000)."""
        per_page = 200
        page = 1
        seen = 0
        while True:
            response = self.request(
                "GET", path, params={**(params or {}), "page": page, "per_page": per_page}
            )
            data = response.data
            rows = (data or {}).get(key, []) if key else data
            if not isinstance(rows, list):
                raise EHRTransientError(f"unexpected list shape from {path}", method="GET")
            yield from rows
            seen += len(rows)
            total = response.count
            if not rows or len(rows) < per_page or (total is not None and seen >= total):
                return
            page += 1

    # -- resources --------------------------------------------------------------------------

    def locations(self) -> list[dict[str, Any]]:
        return list(self.iterate("/locations"))

    def location(self, location_id: int | None = None) -> dict[str, Any]:
        return dict(self.get(f"/locations/{self._location(location_id)}").data)

    def check(self) -> str:
        """Authenticate afresh and read the connection's location: its name."""
        self.authenticate()
        return str(self.location().get("name", ""))

    def providers(self, location_id: int | None = None) -> list[norm.EHRProvider]:
        rows = self.iterate("/providers", {"location_id": self._location(location_id)})
        return [norm.provider(r) for r in rows]

    def provider(self, provider_id: int) -> norm.EHRProvider:
        return norm.provider(self.get(f"/providers/{provider_id}").data)

    def operatories(self, location_id: int | None = None) -> list[norm.EHROperatory]:
        rows = self.iterate("/operatories", {"location_id": self._location(location_id)})
        return [norm.operatory(r) for r in rows]

    def descriptors(self, location_id: int | None = None) -> list[norm.EHRDescriptor]:
        path = f"/locations/{self._location(location_id)}/appointment_descriptors"
        return [norm.descriptor(r) for r in self.iterate(path)]

    def appointment_types(self, location_id: int | None = None) -> list[norm.EHRAppointmentType]:
        rows = self.iterate("/appointment_types", {"location_id": self._location(location_id)})
        return [norm.appointment_type(r) for r in rows]

    def working_hours(self, **query: Unpack[WorkingHoursQuery]) -> list[norm.EHRWorkingHour]:
        params = {
            "location_id": self._location(query.get("location_id")),
            "provider_id": query.get("provider_id"),
            "source": query.get("source"),
        }
        return [norm.working_hour(r) for r in self.iterate("/working_hours", params)]

    def appointments_raw(
        self,
        start: datetime,
        end: datetime,
        *,
        location_id: int | None = None,
        **filters: Any,
    ) -> list[dict[str, Any]]:
        params = {
            "location_id": self._location(location_id),
            "start": start.isoformat(),
            "end": end.isoformat(),
            **{k: _query_value(v) for k, v in filters.items()},
        }
        return list(self.iterate("/appointments", params))

    def appointments(
        self, start: datetime, end: datetime, *, location_id: int | None = None, **filters: Any
    ) -> list[norm.EHRAppointment]:
        rows = self.appointments_raw(start, end, location_id=location_id, **filters)
        return [norm.appointment(r) for r in rows]

    def appointments_listed(
        self, start: datetime, end: datetime, *, location_id: int | None = None
    ) -> tuple[list[norm.EHRAppointment], list[str]]:
        """The location's appointments and blocks in [start, end), and a problem for each
        record that cannot be read (kept out of the list, never half-applied)."""
        appointments: list[norm.EHRAppointment] = []
        problems: list[str] = []
        for raw in self.appointments_raw(start, end, location_id=location_id):
            try:
                appointments.append(norm.appointment(raw))
            except (KeyError, ValueError) as exc:
                problems.append(f"appointment {raw.get('id')}: {exc}")
        return appointments, problems

    def appointment(self, appointment_id: int) -> norm.EHRAppointment:
        return norm.appointment(self.get(f"/appointments/{appointment_id}").data)

    def find_appointment(self, **key: Unpack[AppointmentKey]) -> norm.EHRAppointment | None:
        """The live (not cancelled) appointment of this patient with this provider at `start`."""
        start = key["start"]
        rows = self.appointments(
            start - timedelta(minutes=1),
            start + timedelta(minutes=1),
            location_id=key.get("location_id"),
            patient_id=key["patient_id"],
            provider_id=key["provider_id"],
        )
        for appt in rows:
            if appt.start == start and not appt.cancelled and not appt.refused:
                return appt
        return None

    def create_appointment(self, **new: Unpack[AppointmentDetails]) -> norm.EHRAppointment:
        """`POST /appointments`, safe against ambiguous failures. NexHealth has no request mode
        (`as_request` is refused): a request waits in our front desk's queue instead.

        On a timeout or 5xx after sending, the client searches for the appointment (patient,
        provider, start) before retrying, so a retry never books twice. The answer means
        *accepted*: insertion into the EHR is reported later by `appointment_insertion`.
        """
        if new.get("as_request"):
            raise EHRValidationError("NexHealth has no request mode; approve the request first")
        lid = self._location(new.get("location_id"))
        appt: dict[str, Any] = {
            "patient_id": new["patient_id"],
            "provider_id": new["provider_id"],
            "operatory_id": new["operatory_id"],
            "start_time": new["start"].isoformat(),
        }
        if (end := new.get("end")) is not None:
            appt["end_time"] = end.isoformat()
        if (type_id := new.get("appointment_type_id")) is not None:
            appt["appointment_type_id"] = type_id
        if (descriptor_ids := new.get("descriptor_ids")) is not None:
            appt["descriptor_ids"] = list(descriptor_ids)
        if note := new.get("note"):
            appt["note"] = note

        def lookup() -> EHRResponse | None:
            found = self.find_appointment(
                patient_id=new["patient_id"],
                provider_id=new["provider_id"],
                start=new["start"],
                location_id=lid,
            )
            return None if found is None else EHRResponse(200, {"appt": _appt_raw(found)})

        notify = str(new.get("notify_patient", False)).lower()
        response = self.request(
            "POST",
            "/appointments",
            params={"location_id": lid, "notify_patient": notify},
            json={"appt": appt},
            lookup=lookup,
        )
        data = response.data or {}
        return norm.appointment(data.get("appt", data) if isinstance(data, dict) else data)

    def cancel_appointment(self, appointment_id: int) -> norm.EHRAppointment:
        """`PATCH /appointments/{id}` `{"appt": {"cancelled": true}}` (idempotent: retried)."""
        response = self.request(
            "PATCH", f"/appointments/{appointment_id}", json={"appt": {"cancelled": True}}
        )
        data = response.data or {}
        return norm.appointment(data.get("appt", data))

    def search_patients(self, **query: Unpack[PatientQuery]) -> list[norm.EHRPatient]:
        params = {
            "location_id": self._location(query.get("location_id")),
            "name": query.get("name"),
            "date_of_birth": _query_value(query.get("date_of_birth")),
            "phone_number": query.get("phone_number"),
            "email": query.get("email"),
        }
        return [norm.patient(r) for r in self.iterate("/patients", params, key="patients")]

    def create_patient(self, **new: Unpack[PatientDetails]) -> norm.EHRPatient:
        """`POST /patients`; on an ambiguous failure, finds the patient by name and birth date
        before retrying (so a retry never creates a twin)."""
        lid = self._location(new.get("location_id"))
        date_of_birth = new.get("date_of_birth")
        bio: dict[str, Any] = {}
        if date_of_birth is not None:
            bio["date_of_birth"] = date_of_birth.isoformat()
        if phone_number := new.get("phone_number"):
            bio["phone_number"] = phone_number
        body: dict[str, Any] = {
            "patient": {
                "first_name": norm.clean_name(new["first_name"]),
                "last_name": norm.clean_name(new["last_name"]),
                "email": new.get("email"),
                "bio": bio,
            }
        }
        if (provider_id := new.get("provider_id")) is not None:
            body["provider"] = {"provider_id": provider_id}

        def lookup() -> EHRResponse | None:
            found = self.search_patients(
                name=f"{new['first_name']} {new['last_name']}",
                date_of_birth=date_of_birth,
                location_id=lid,
            )
            if not found:
                return None
            match = max(found, key=lambda p: p.id)
            return EHRResponse(200, {"user": self.get(f"/patients/{match.id}").data})

        response = self.request(
            "POST", "/patients", params={"location_id": lid}, json=body, lookup=lookup
        )
        data = response.data or {}
        return norm.patient(data.get("user", data))

    # documents (the encounter note goes to the patient's document centre)

    def _documents_raw(self, patient_id: int, reference: str) -> dict[str, Any] | None:
        for doc in self.iterate(f"/patients/{patient_id}/documents"):
            if reference in str(doc.get("title", "")) and doc.get("insertion_status") != "failed":
                return dict(doc)
        return None

    def find_document(self, patient_id: int, reference: str) -> norm.EHRDocument | None:
        """The patient's document whose title carries `reference` (a stable id of ours); one
        whose insertion failed does not count (it is not in the record)."""
        found = self._documents_raw(patient_id, reference)
        return None if found is None else norm.document(found)

    def document(self, patient_id: int, document_id: int) -> norm.EHRDocument:
        return norm.document(self.get(f"/patients/{patient_id}/documents/{document_id}").data)

    def create_document(self, patient_id: int, **new: Unpack[DocumentDetails]) -> norm.EHRDocument:
        """`POST /patients/{id}/documents` (text). `reference` must appear in `title`: on an
        ambiguous failure the client finds the document by it before retrying, so a retry never
        writes the document twice. Answers the accepted document (`insertion_status`)."""
        reference = new["reference"]
        if reference not in new["title"]:
            raise ValueError("the document title must carry its reference")
        body: dict[str, Any] = {
            "title": new["title"],
            "content": new["content"],
            "content_type": "text/plain",
        }
        if (appointment_id := new.get("appointment_id")) is not None:
            body["appointment_id"] = appointment_id

        def lookup() -> EHRResponse | None:
            found = self._documents_raw(patient_id, reference)
            return None if found is None else EHRResponse(200, found)

        response = self.request(
            "POST",
            f"/patients/{patient_id}/documents",
            params={"location_id": self._location(new.get("location_id"))},
            json={"document": body},
            lookup=lookup,
        )
        return norm.document(dict(response.data or {}))

    def available_slots(
        self,
        *,
        start_date: date,
        days: int = 1,
        provider_ids: list[int],
        location_id: int | None = None,
        operatory_ids: list[int] | None = None,
        appointment_type_id: int | None = None,
    ) -> EHRResponse:
        """`GET /available_slots` (the live check before a hold). Pass `operatory_ids`: without
        them NexHealth returns only the first available operatory (the guide's gotcha)."""
        params: dict[str, Any] = {
            "start_date": start_date.isoformat(),
            "days": days,
            "lids[]": [self._location(location_id)],
            "pids[]": provider_ids,
            "appointment_type_id": appointment_type_id,
        }
        if operatory_ids:
            params["operatory_ids[]"] = operatory_ids
        return self.request("GET", "/available_slots", params=params)

    # webhooks (endpoints belong to the API key; subscriptions to the subdomain)

    def webhook_endpoints(self) -> list[dict[str, Any]]:
        return list(self.iterate("/webhook_endpoints"))

    def create_webhook_endpoint(self, target_url: str) -> dict[str, Any]:
        # Not idempotent, but a stray duplicate endpoint is harmless (we keep one and its secret):
        # the lookup finds an endpoint with our URL.
        def lookup() -> EHRResponse | None:
            for endpoint in self.webhook_endpoints():
                if endpoint.get("target_url") == target_url:
                    return EHRResponse(200, endpoint)
            return None

        return dict(
            self.request(
                "POST",
                "/webhook_endpoints",
                json={"target_url": target_url},
                lookup=lookup,
                subdomain=False,
            ).data
        )

    def webhook_endpoint(self, endpoint_id: int) -> dict[str, Any]:
        return dict(self.request("GET", f"/webhook_endpoints/{endpoint_id}", subdomain=False).data)

    def update_webhook_endpoint(self, endpoint_id: int, **changes: Any) -> dict[str, Any]:
        return dict(
            self.request(
                "PATCH", f"/webhook_endpoints/{endpoint_id}", json=changes, subdomain=False
            ).data
        )

    def register_webhooks(self, target_url: str, endpoint_id: int | None) -> WebhookRegistration:
        """Make sure the EHR posts our events to `target_url` (an endpoint of the API key, kept
        if it exists: `endpoint_id`), active and subscribed to every event we process
        (subscriptions are upserts). Idempotent."""
        endpoint: dict[str, Any] | None = None
        if endpoint_id:
            try:
                endpoint = self.webhook_endpoint(endpoint_id)
            except EHRError:
                endpoint = None
            if endpoint is not None and endpoint.get("target_url") != target_url:
                endpoint = self.update_webhook_endpoint(endpoint_id, target_url=target_url)
        if endpoint is None:
            endpoint = self.create_webhook_endpoint(target_url)
        if not endpoint.get("active", True):
            endpoint = self.update_webhook_endpoint(int(endpoint["id"]), active=True)
        for event, resource_type in SUBSCRIPTIONS.items():
            self.subscribe(int(endpoint["id"]), resource_type, event)
        return WebhookRegistration(
            endpoint_id=int(endpoint["id"]),
            target_url=target_url,
            secret=str(endpoint.get("secret_key") or ""),
        )

    def subscribe(self, endpoint_id: int, resource_type: str, event: str) -> dict[str, Any]:
        """Subscriptions are upserts on (endpoint, subdomain, event): safe to repeat."""
        return dict(
            self.request(
                "POST",
                f"/webhook_endpoints/{endpoint_id}/webhook_subscriptions",
                json={"resource_type": resource_type, "event": event},
                idempotent=True,
            ).data
        )


# --- helpers ---------------------------------------------------------------------------------


def _query_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bool):
        return str(value).lower()
    return value


def _appt_raw(appt: norm.EHRAppointment) -> dict[str, Any]:
    return {
        "id": appt.id,
        "location_id": appt.location_id,
        "provider_id": appt.provider_id,
        "operatory_id": appt.operatory_id,
        "patient_id": appt.patient_id,
        "appointment_type_id": appt.appointment_type_id,
        "start_time": appt.start.isoformat(),
        "end_time": appt.end.isoformat(),
        "cancelled": appt.cancelled,
        "unavailable": appt.unavailable,
        "updated_at": appt.updated_at.isoformat() if appt.updated_at else None,
        "insertion_status": appt.insertion_status.value,
        "note": appt.note,
    }


def _as_messages(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        out: list[str] = []
        for item in value:
            out.extend(_as_messages(item))
        return out
    return [str(value)]


def _error_details(response: httpx.Response) -> tuple[list[str], Any]:
    try:
        payload = response.json()
    except ValueError:
        return ([response.text[:200]] if response.text else []), None
    if isinstance(payload, dict):
        return _as_messages(payload.get("error")), payload.get("description")
    return [], None


def _permanent_error(
    status: int, text: str, messages: list[str], method: str, path: str
) -> EHRError:
    kwargs: dict[str, Any] = {
        "status": status,
        "messages": messages,
        "method": method,
        "path": path,
    }
    if status in (401, 403):
        return EHRAuthError(f"the EHR refused our credentials: {text}", **kwargs)
    if status == 404:
        return EHRNotFound(f"not found in the EHR: {text}", **kwargs)
    return EHRValidationError(f"the EHR refused the request: {text}", **kwargs)


# --- one client per connection per process ---------------------------------------------------

_clients: PerConnection[NexHealthClient] = PerConnection()


def client_for(connection: EHRConnection) -> NexHealthClient:
    """The process's client for this connection (rebuilt when its settings change)."""
    config = ConnectionConfig.from_connection(connection)
    return _clients.get(
        connection.pk or config.rate_limit_key, config.fingerprint, lambda: NexHealthClient(config)
    )


def reset_clients() -> None:
    """Close every cached client (tests)."""
    _clients.clear()
