"""The EHR port: the one interface booking, sync and calls use to reach a practice's EHR.

An adapter (`ehr.nexhealth`, `ehr.nextech`, ...) implements `EHRPort` for one connection and is
chosen by the connection's kind in `ehr.registry.port_for`. Callers outside `ehr` import this
module, `ehr.types`, `ehr.errors`, `ehr.events` and `ehr.registry`, never an adapter package.

Rules every adapter keeps:
- Writes that may land without an answer (a timeout or 5xx after sending) are resolved by looking
  for what the write may have made before retrying (`find_appointment`, the patient search, the
  note's reference), so a retry never doubles a booking, a patient or a note.
- Errors are the typed ones of `ehr.errors` (`EHRTransientError` may be retried, `EHRRateLimited`
  carries `retry_after`, `EHRNotFound`, `EHRValidationError`, `EHRAuthError`).
- Availability comes either as inputs our slot engine combines (working hours and blocks:
  `Capability.WORKING_HOURS`) or as the EHR's own free slots (`Capability.NATIVE_SLOTS`).
- A booking may be a request staff confirm (`Capability.REQUEST_MODE`: `as_request`), and a
  cancel may be a request staff act on (`Capability.CANCEL_REQUESTS`).
- Changes reach the portal by webhook (`Capability.WEBHOOKS`) or by polling
  `appointments_changed_since`; either way they are announced on `ehr.events`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Protocol, Required, TypedDict, Unpack, runtime_checkable

from ehr.types import (
    EHRAppointment,
    EHRAppointmentType,
    EHRDescriptor,
    EHRDocument,
    EHROperatory,
    EHRPatient,
    EHRProvider,
    EHRWorkingHour,
    WebhookRegistration,
)


class Capability(StrEnum):
    WORKING_HOURS = "working_hours"  # availability inputs: working hours + blocks
    NATIVE_SLOTS = "native_slots"  # the EHR computes free slots itself
    WEBHOOKS = "webhooks"  # the EHR pushes changes; otherwise poll
    INSERTION_REPORTS = "insertion_reports"  # a write is accepted first, confirmed later
    REQUEST_MODE = "request_mode"  # a booking may be a request on the office's follow-up list
    CANCEL_REQUESTS = "cancel_requests"  # a cancel is a request the office's staff act on
    # Each EHR appointment type names its descriptors (NexHealth); without it (Nextech's purposes
    # are not tied to types) the type's descriptors are the practice's own, kept by the sync.
    TYPE_DESCRIPTORS = "type_descriptors"
    # Appointments name the EHR's rooms (NexHealth's operatories); without it (Nextech keeps its
    # scheduling resources out of its API) rooms are ours alone and never sent.
    OPERATORIES = "operatories"
    # A caller the EHR does not know is created only with an email address (Nextech's prospect
    # needs name, phone and email), so the booking asks for it while the caller is on the line.
    NEW_PATIENT_EMAIL = "new_patient_email"


# The arguments of the port's many-keyword calls, stated once: every adapter takes them as
# `**kwargs: Unpack[...]`, so callers keep keyword calls and mypy checks them against one list.


class WorkingHoursQuery(TypedDict, total=False):
    location_id: int | None
    provider_id: int | None
    source: str | None


class AppointmentKey(TypedDict, total=False):
    """What identifies a live appointment: what a write whose answer was lost may have made."""

    patient_id: Required[int]
    provider_id: Required[int]
    start: Required[datetime]
    location_id: int | None


class AppointmentDetails(AppointmentKey, total=False):
    operatory_id: Required[int | None]
    end: datetime | None  # None: the appointment type's duration
    appointment_type_id: int | None
    descriptor_ids: list[int] | None
    note: str | None
    notify_patient: bool  # default False
    as_request: bool  # default False; only with Capability.REQUEST_MODE: the follow-up list


class PatientQuery(TypedDict, total=False):
    name: str | None
    date_of_birth: date | str | None
    phone_number: str | None
    email: str | None
    location_id: int | None


class PatientDetails(TypedDict, total=False):
    first_name: Required[str]
    last_name: Required[str]
    date_of_birth: date | None
    phone_number: str | None
    email: str | None
    provider_id: int | None
    location_id: int | None


class DocumentDetails(TypedDict, total=False):
    title: Required[str]
    content: Required[str]
    reference: Required[str]  # must appear in the title: the look-up before a retry finds it
    appointment_id: int | None
    location_id: int | None


@runtime_checkable
class EHRPort(Protocol):
    """One connection's EHR. Thread-safe; one instance per connection per process."""

    kind: str
    capabilities: frozenset[Capability]

    def check(self) -> str:
        """Prove the connection works (credentials afresh, the location readable): the
        location's name in the EHR. Raises the `ehr.errors` of what failed."""
        ...

    # -- the practice's resources -----------------------------------------------------------
    def providers(self, location_id: int | None = None) -> list[EHRProvider]: ...

    def provider(self, provider_id: int) -> EHRProvider: ...

    def operatories(self, location_id: int | None = None) -> list[EHROperatory]: ...

    def descriptors(self, location_id: int | None = None) -> list[EHRDescriptor]: ...

    def appointment_types(self, location_id: int | None = None) -> list[EHRAppointmentType]: ...

    # -- availability inputs (WORKING_HOURS) --------------------------------------------------
    def working_hours(self, **query: Unpack[WorkingHoursQuery]) -> list[EHRWorkingHour]: ...

    # -- appointments -------------------------------------------------------------------------
    def appointments(
        self, start: datetime, end: datetime, *, location_id: int | None = None, **filters: Any
    ) -> list[EHRAppointment]: ...

    def appointments_listed(
        self, start: datetime, end: datetime, *, location_id: int | None = None
    ) -> tuple[list[EHRAppointment], list[str]]:
        """The calendar of [start, end) for a sync: records that cannot be read are left out
        and reported as problems (one each), so one bad record does not stop the rest."""
        ...

    def appointment(self, appointment_id: int) -> EHRAppointment: ...

    def find_appointment(self, **key: Unpack[AppointmentKey]) -> EHRAppointment | None:
        """The live appointment of this patient with this provider at `start`: what a write
        whose answer was lost may have made."""
        ...

    def create_appointment(self, **new: Unpack[AppointmentDetails]) -> EHRAppointment:
        """`as_request` (only with `Capability.REQUEST_MODE`): put it on the office's follow-up
        list for staff to confirm; the answer's `insertion_status` is `HELD` until they do."""
        ...

    def cancel_appointment(self, appointment_id: int) -> EHRAppointment:
        """With `Capability.CANCEL_REQUESTS` the answer may still stand, `cancel_requested`:
        staff act on the request later (found by the change poll)."""
        ...

    # -- patients -----------------------------------------------------------------------------
    def search_patients(self, **query: Unpack[PatientQuery]) -> list[EHRPatient]: ...

    def create_patient(self, **new: Unpack[PatientDetails]) -> EHRPatient: ...

    # -- the chart ----------------------------------------------------------------------------
    def find_document(self, patient_id: int, reference: str) -> EHRDocument | None:
        """The patient's document whose title carries `reference`, unless the EHR refused it:
        what a write whose answer was lost may have made."""
        ...

    def document(self, patient_id: int, document_id: int) -> EHRDocument: ...

    def create_document(self, patient_id: int, **new: Unpack[DocumentDetails]) -> EHRDocument:
        """Write a document to the chart; `reference` must appear in `title` (it is what the
        look-up before a retry finds)."""
        ...

    def close(self) -> None: ...


class FreeSlotsQuery(TypedDict, total=False):
    start_date: Required[date]
    days: Required[int]
    provider_ids: Required[Sequence[int]]
    location_id: int | None
    appointment_type_id: int | None


class SlotSource(Protocol):
    """`Capability.NATIVE_SLOTS`: the EHR's own free slots for some providers over some days."""

    def free_slots(self, **query: Unpack[FreeSlotsQuery]) -> list[tuple[int, datetime, datetime]]:
        """(provider id, start, end) of each free slot."""
        ...


@runtime_checkable
class WebhookSource(Protocol):
    """`Capability.WEBHOOKS`: the EHR posts a connection's changes to a URL of ours."""

    def register_webhooks(self, target_url: str, endpoint_id: int | None) -> WebhookRegistration:
        """Make sure the EHR posts this connection's changes to `target_url` (keeping the
        endpoint registered before, `endpoint_id`, when it still exists). Idempotent."""
        ...
