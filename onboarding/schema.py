"""Validation of a practice configuration document (docs/practice-config.md) into typed specs.

The whole document is checked before anything is written, and every problem is reported with
its path (`appointment_types[2].minutes: must be a positive integer`), all of them at once.
A valid document becomes a `PracticeConfig`: plain frozen dataclasses whose references are still
the file's own keys and whose times are already resolved (clock times as `time`, instants as
aware datetimes), so the importer never parses anything again.

Conventions (beyond the format's core, all optional, and exported only when not the default so
the round trip is exact):
* unknown fields are errors at every level, not only at the top (a typo must not be ignored);
* `locations[].timezone` (empty = the practice's) and `locations[].working_hours`
  (overrides `ehr.working_hours` for that location);
* `providers[].active`, `operatories[].active`, `working_hours[].active` (default true),
  `appointment_types[].bookable` (default true: may the voice agent book it?),
  `appointment_types[].booking_mode` (default "book": straight onto the schedule; "request":
  staff confirm it first),
  `appointments[].cancelled` (default false);
* `ehr_id` on locations, operatories, providers and appointment types: written by the export
  when the row is linked to the EHR; the importer matches an entry to its row by it before the
  key, so a renamed or re-keyed entry is an update, not a delete plus a create;
* `blocks[].location` / `appointments[].location`: required only without an operatory
  (otherwise it is the operatory's location); a block with neither provider nor operatory is
  location-wide;
* weekday names are matched case-insensitively and stored as "Monday".."Sunday";
* phone numbers: a leading "+" is required unless the number is North American; the number
  must be possible for its country (right length and prefix) and is stored as E.164.
  `phonenumbers.is_valid_number` is deliberately not required: the demo numbers are the
  fictional 555-01xx range, which no numbering plan assigns.

`lay_terms` are stored on the practice (the intent resolver adds them to its lexicon for this
practice only). `baa` is stored by compliance.services; `escalation_protocols` and `on_call` by
calls.escalation.services (an emergency protocol routes to "911" and only an emergency does; one
provider's on-call entries must not overlap); appointment patients (PHI) are validated, counted
and dropped.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import cache
from typing import Any, TypeVar

from core.phone import to_e164
from scheduling.slots import WEEKDAYS

# "sandbox": the NexHealth-shaped sandbox; "nextech": Nextech's Select API (or the sandbox's
# Nextech surface in development). Credentials are never in the file.
EHR_KINDS = ("none", "sandbox", "nextech")
# "native": the EHR's own free slots are the free time (an EHR that offers them: nextech); the
# file's working hours still say which rooms and types each provider takes.
WORKING_HOURS_MODES = ("manual", "synced", "native")
NATIVE_SLOT_KINDS = ("nextech",)
RULE_PATIENT_STATUSES = ("new", "existing", "any")
# Sections validated but not stored (none left: compliance stores the BAA, calls the protocols
# and the on-call rota).
NOT_IMPORTED_SECTIONS: tuple[str, ...] = ()
BAA_STATUSES = ("draft", "sent", "executed", "terminated", "expired")
ESCALATION_SEVERITIES = ("routine", "urgent", "emergency")
ESCALATION_ROUTES = ("on_call", "911", "front_desk", "message")
TOP_LEVEL = (
    "practice",
    "baa",
    "ehr",
    "locations",
    "operatories",
    "providers",
    "appointment_types",
    "working_hours",
    "blocks",
    "appointments",
    "provider_rules",
    "escalation_protocols",
    "on_call",
    "lay_terms",
)

_KEY = re.compile(r"^[-a-zA-Z0-9_]+$")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")
_MISSING: Any = object()  # "already reported": a checker returns it after an error

T = TypeVar("T")


class ConfigError(Exception):
    """The document (or applying it) failed; `errors` lists every problem with its path."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


# --- the typed result -----------------------------------------------------------------------


# appointment_types[].booking_mode: scheduling.models.BookingMode's values.
BOOKING_MODES = ("book", "request")


@dataclass(frozen=True)
class PracticeSpec:
    slug: str
    name: str
    timezone: str


@dataclass(frozen=True)
class LocationSpec:
    key: str
    name: str
    timezone: str  # "" = the practice's
    working_hours_mode: str
    ehr_id: int | None = None  # the EHR's id, as exported: matched before the key


@dataclass(frozen=True)
class OperatorySpec:
    key: str
    name: str
    location: str
    capabilities: tuple[str, ...]
    active: bool
    ehr_id: int | None = None


@dataclass(frozen=True)
class ProviderSpec:
    key: str
    name: str
    accepts_new_patients: bool
    on_call_phone: str  # E.164 or ""
    active: bool
    ehr_id: int | None = None


@dataclass(frozen=True)
class AppointmentTypeSpec:
    key: str
    name: str
    minutes: int
    new_patients: bool
    existing_patients: bool
    providers: tuple[str, ...]
    requires_capabilities: tuple[str, ...]
    lead_time_hours: int
    horizon_days: int
    phrases: tuple[str, ...]
    descriptors: tuple[str, ...]
    instructions: str
    bookable: bool
    ehr_id: int | None = None
    booking_mode: str = "book"


@dataclass(frozen=True)
class WorkingHourSpec:
    provider: str
    operatory: str
    days: tuple[str, ...]
    specific_date: date | None
    begin: time
    end: time
    label: str
    appointment_types: tuple[str, ...]
    active: bool


@dataclass(frozen=True)
class BlockSpec:
    location: str
    provider: str | None
    operatory: str | None
    start: datetime  # UTC
    end: datetime
    reason: str


@dataclass(frozen=True)
class AppointmentSpec:
    location: str
    provider: str
    operatory: str | None
    start: datetime  # UTC
    end: datetime
    appointment_type: str | None
    cancelled: bool


@dataclass(frozen=True)
class ProviderRuleSpec:
    provider: str
    appointment_types: tuple[str, ...]
    patient_status: str
    days: tuple[str, ...]
    begin: time
    end: time


@dataclass(frozen=True)
class EscalationProtocolSpec:
    key: str
    name: str
    appointment_types: tuple[str, ...]
    within_days_of_procedure: int | None
    triggers: tuple[str, ...]
    severity: str
    route: str
    instructions: str
    # `"route": {"provider": key}` or `{"on_call_group": key}`: route "on_call", taken by
    route_provider: str = ""  # this provider
    on_call_group: str = ""  # else the on-call of this group ("": the default group)


@dataclass(frozen=True)
class OnCallSpec:
    provider: str
    start: datetime  # aware
    end: datetime
    group: str = ""  # the group the shift covers ("": the default group)


@dataclass(frozen=True)
class LayTermSpec:
    terms: tuple[str, ...]
    broader: tuple[str, ...] = ()


@dataclass(frozen=True)
class PracticeConfig:
    practice: PracticeSpec
    ehr_kind: str
    working_hours_mode: str
    locations: tuple[LocationSpec, ...] = ()
    operatories: tuple[OperatorySpec, ...] = ()
    providers: tuple[ProviderSpec, ...] = ()
    appointment_types: tuple[AppointmentTypeSpec, ...] = ()
    working_hours: tuple[WorkingHourSpec, ...] = ()
    blocks: tuple[BlockSpec, ...] = ()
    appointments: tuple[AppointmentSpec, ...] = ()
    provider_rules: tuple[ProviderRuleSpec, ...] = ()
    # The `baa` section as written (validated here; compliance.services stores it).
    baa: Mapping[str, Any] | None = None
    escalation_protocols: tuple[EscalationProtocolSpec, ...] = ()
    on_call: tuple[OnCallSpec, ...] = ()
    # What the practice's callers say, added to the intent lexicon for this practice.
    lay_terms: tuple[LayTermSpec, ...] = ()
    # Present in the file, validated, not stored yet.
    not_imported: tuple[str, ...] = ()
    # Appointment patients validated and dropped (PHI; no encrypted patient store yet).
    patients_dropped: int = 0


# --- small helpers ----------------------------------------------------------------------------


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _q(value: object) -> str:
    """Quote a user value for a message, without letting a huge value flood the output."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f'"{text}"'


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def local_to_aware(naive: datetime, tz: tzinfo) -> datetime | None:
    """A wall-clock time in `tz` as an aware datetime, or None if the clocks skip it (spring
    forward). An ambiguous time (fall back) means its first occurrence (PEP 495 fold=0)."""
    aware = naive.replace(tzinfo=tz, fold=0)
    if aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
        return None
    return aware


def format_moment(value: datetime, tz: tzinfo) -> str:
    """The file's form of an instant: local wall-clock time without offset, unless that would
    be ambiguous (the repeated hour when clocks fall back), then with its offset."""
    local = value.astimezone(tz)
    naive = local.replace(tzinfo=None, fold=0)
    text = naive.isoformat(timespec="seconds" if naive.second else "minutes")
    back = local_to_aware(naive, tz)
    if back is None or back.astimezone(UTC) != value.astimezone(UTC):
        text = local.isoformat(timespec="seconds" if local.second else "minutes")
    return text


def format_clock(value: time) -> str:
    return value.isoformat(timespec="seconds" if value.second else "minutes")


# --- the checker ----------------------------------------------------------------------------


class _Checker:
    """Collects errors; each `check_*` returns the parsed value, or _MISSING after an error."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}")

    def obj(
        self,
        path: str,
        value: Any,
        required: tuple[str, ...],
        optional: tuple[str, ...] = (),
    ) -> dict[str, Any] | None:
        if not isinstance(value, Mapping):
            self.error(path, "must be an object")
            return None
        allowed = set(required) | set(optional)
        for name in value:
            if name not in allowed:
                self.error(_join(path, str(name)), "unknown field")
        for name in required:
            if name not in value:
                self.error(_join(path, name), "is required")
        return dict(value)

    def items(self, path: str, value: Any) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(path, "must be a list")
            return []
        return value

    def entries(
        self,
        section: str,
        value: Any,
        required: tuple[str, ...],
        optional: tuple[str, ...] = (),
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Each item of a section's list that is an object, with its path (`section[i]`); the
        others, and unknown or missing fields, are reported."""
        for i, item in enumerate(self.items(section, value)):
            path = f"{section}[{i}]"
            entry = self.obj(path, item, required, optional)
            if entry is not None:
                yield path, entry

    def given(
        self,
        path: str,
        entry: dict[str, Any],
        name: str,
        check: Callable[..., Any],
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        """A required field, checked by `check`; _MISSING when absent (`obj` reported that)."""
        if name not in entry:
            return _MISSING
        return check(f"{path}.{name}", entry[name], *args, **kwargs)

    # scalars

    def text(self, path: str, value: Any, *, max_length: int, blank: bool = False) -> Any:
        if value is None and blank:
            return ""
        if not isinstance(value, str):
            self.error(path, "must be a string")
            return _MISSING
        value = value.strip()
        if not value and not blank:
            self.error(path, "must not be empty")
            return _MISSING
        if len(value) > max_length:
            self.error(path, f"must be at most {max_length} characters")
            return _MISSING
        return value

    def key(self, path: str, value: Any, *, max_length: int = 64) -> Any:
        if not isinstance(value, str) or not _KEY.match(value):
            self.error(path, "must be a key of letters, digits, '-' or '_'")
            return _MISSING
        if len(value) > max_length:
            self.error(path, f"must be at most {max_length} characters")
            return _MISSING
        return value

    def boolean(self, path: str, value: Any) -> Any:
        if not isinstance(value, bool):
            self.error(path, "must be true or false")
            return _MISSING
        return value

    def integer(self, path: str, value: Any, *, minimum: int) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            wanted = {0: "a non-negative integer", 1: "a positive integer"}.get(
                minimum, f"an integer of at least {minimum}"
            )
            self.error(path, f"must be {wanted}")
            return _MISSING
        if value > 2**31 - 1:
            self.error(path, "is too large")
            return _MISSING
        return value

    def choice(self, path: str, value: Any, choices: tuple[str, ...]) -> Any:
        if value not in choices:
            self.error(path, "must be one of " + ", ".join(f'"{c}"' for c in choices))
            return _MISSING
        return value

    def timezone(self, path: str, value: Any) -> Any:
        if not isinstance(value, str) or value not in _zones():
            self.error(
                path, f"unknown time zone {_q(value)} (use an IANA name such as America/New_York)"
            )
            return _MISSING
        return value

    def clock(self, path: str, value: Any) -> Any:
        match = _CLOCK.match(value) if isinstance(value, str) else None
        if match is None:
            self.error(path, 'must be a time of day "HH:MM" (24-hour)')
            return _MISSING
        return time(int(match[1]), int(match[2]), int(match[3] or 0))

    def day(self, path: str, value: Any) -> Any:
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        if isinstance(value, str) and _DATE.match(value):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        self.error(path, 'must be a date "YYYY-MM-DD"')
        return _MISSING

    def moment(self, path: str, value: Any, tz: tzinfo | None) -> Any:
        """An instant, in UTC: local to `tz` without an offset, or with an explicit offset.

        UTC because PEP 495 makes an aware datetime in an ambiguous hour unequal to every
        datetime of another zone, even the same instant (the importer compares with the DB's)."""
        parsed: datetime | None = None
        if isinstance(value, str) and _MOMENT.match(value):
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                parsed = None
        if parsed is None:
            self.error(
                path, 'must be a date and time "YYYY-MM-DDTHH:MM" (local, or with an offset)'
            )
            return _MISSING
        if parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
        if tz is None:  # the practice's zone is invalid: reported there already
            return _MISSING
        aware = local_to_aware(parsed, tz)
        if aware is None:
            self.error(path, f"{_q(value)} does not exist in {tz} (the clocks skip it)")
            return _MISSING
        return aware.astimezone(UTC)

    def phone(self, path: str, value: Any) -> Any:
        if value is None or value == "":
            return ""
        if not isinstance(value, str):
            self.error(path, "must be a phone number string or null")
            return _MISSING
        number = to_e164(value, "US")
        if number is None:
            self.error(path, f"{_q(value)} is not a valid phone number (use E.164, +15555550101)")
            return _MISSING
        return number

    # lists

    def weekdays(self, path: str, value: Any, *, required: bool) -> Any:
        if value is None and not required:
            return ()
        if value is None:
            self.error(path, "must name at least one weekday (or give specific_date)")
            return _MISSING
        if not isinstance(value, list):
            self.error(path, "must be a list of weekday names")
            return _MISSING
        if not value and required:
            self.error(path, "must name at least one weekday")
            return _MISSING
        by_lower = {d.lower(): d for d in WEEKDAYS}
        out: list[str] = []
        ok = True
        for i, item in enumerate(value):
            name = by_lower.get(item.strip().lower()) if isinstance(item, str) else None
            if name is None:
                self.error(f"{path}[{i}]", f"unknown weekday {_q(item)}")
                ok = False
            elif name in out:
                self.error(f"{path}[{i}]", f"{name} is listed twice")
                ok = False
            else:
                out.append(name)
        return tuple(out) if ok else _MISSING

    def unique_list(
        self,
        path: str,
        value: Any,
        check: Callable[[str, Any], Any],
        *,
        what: str,
        fold: Callable[[Any], Any] = lambda v: v,
    ) -> Any:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.error(path, f"must be a list of {what}")
            return _MISSING
        out: list[Any] = []
        seen: set[Any] = set()
        ok = True
        for i, item in enumerate(value):
            parsed = check(f"{path}[{i}]", item)
            if parsed is _MISSING:
                ok = False
                continue
            if fold(parsed) in seen:
                self.error(f"{path}[{i}]", f"{_q(parsed)} is listed twice")
                ok = False
                continue
            seen.add(fold(parsed))
            out.append(parsed)
        return tuple(out) if ok else _MISSING

    def ref(self, path: str, value: Any, known: Mapping[str, Any] | set[str], kind: str) -> Any:
        if not isinstance(value, str):
            self.error(path, f"must be a {kind} key")
            return _MISSING
        if value not in known:
            self.error(path, f"unknown {kind} {_q(value)}")
            return _MISSING
        return value


def _ok(*values: Any) -> bool:
    return all(v is not _MISSING for v in values)


def _get(entry: dict[str, Any], name: str, default: Any) -> Any:
    value = entry.get(name, default)
    return default if value is None and default is not None else value


# --- the document ---------------------------------------------------------------------------


class _Parser:
    def __init__(self, data: Any) -> None:
        self.c = _Checker()
        self.data = data
        self.tz: tzinfo | None = None
        self.location_keys: dict[str, LocationSpec | None] = {}
        self.operatory_location: dict[str, str | None] = {}
        self.provider_phone: dict[str, str | None] = {}
        self.type_keys: dict[str, AppointmentTypeSpec | None] = {}
        self.location_modes: dict[str, str] = {}

    def parse(self) -> PracticeConfig | None:
        c = self.c
        root = c.obj("", self.data, ("practice",), TOP_LEVEL[1:])
        if root is None:
            self.c.errors = ['(document): must be an object with a "practice" section']
            return None
        practice = self.practice(root["practice"]) if "practice" in root else None
        ehr_kind, mode = self.ehr(root.get("ehr"))
        locations = self.locations(root.get("locations"), mode)
        operatories = self.operatories(root.get("operatories"))
        providers = self.providers(root.get("providers"))
        types = self.appointment_types(root.get("appointment_types"))
        working_hours = self.working_hours(root.get("working_hours"))
        blocks = self.blocks(root.get("blocks"))
        appointments, patients = self.appointments(root.get("appointments"))
        rules = self.provider_rules(root.get("provider_rules"))
        self.baa(root.get("baa"))
        protocols = self.escalation_protocols(root.get("escalation_protocols"))
        on_call = self.on_call(root.get("on_call"))
        lay_terms = self.lay_terms(root.get("lay_terms"))
        if ehr_kind == "nextech":
            self.nextech_limits(working_hours, blocks, appointments)
        self.native_needs_slots(ehr_kind, mode, locations)
        if c.errors or practice is None:
            return None
        return PracticeConfig(
            practice=practice,
            ehr_kind=ehr_kind,
            working_hours_mode=mode,
            locations=locations,
            operatories=operatories,
            providers=providers,
            appointment_types=types,
            working_hours=working_hours,
            blocks=blocks,
            appointments=appointments,
            provider_rules=rules,
            baa=root.get("baa"),
            escalation_protocols=protocols,
            on_call=on_call,
            lay_terms=lay_terms,
            not_imported=tuple(s for s in NOT_IMPORTED_SECTIONS if root.get(s) not in (None, [])),
            patients_dropped=patients,
        )

    def native_needs_slots(
        self, ehr_kind: str, mode: str, locations: tuple[LocationSpec, ...]
    ) -> None:
        """`native` reads free time from the EHR's own slots: not with an EHR that has none
        (without an EHR yet, the location offers nothing until one is connected)."""
        if ehr_kind in NATIVE_SLOT_KINDS or ehr_kind == "none":
            return
        kinds = " or ".join(NATIVE_SLOT_KINDS)
        if mode == "native":
            self.c.error(
                "ehr.working_hours", f'"native" needs an EHR with its own free slots ({kinds})'
            )
        for i, loc in enumerate(locations):
            if loc.working_hours_mode == "native" and mode != "native":
                self.c.error(
                    f"locations[{i}].working_hours",
                    f'"native" needs an EHR with its own free slots ({kinds})',
                )

    def nextech_limits(
        self,
        working_hours: tuple[WorkingHourSpec, ...],
        blocks: tuple[BlockSpec, ...],
        appointments: tuple[AppointmentSpec, ...],
    ) -> None:
        """What a Nextech practice cannot take from the file: its blocks and appointments live
        in Nextech (the Select API writes neither a block nor a staff booking), and Nextech's
        templates repeat by weekday, so a one-day working hour has no template to become."""
        if blocks:
            self.c.error("blocks", "a Nextech practice's blocks are kept in Nextech; remove them")
        if appointments:
            self.c.error(
                "appointments", "a Nextech practice's appointments are kept in Nextech; remove them"
            )
        for i, hour in enumerate(working_hours):
            if hour.specific_date is not None:
                self.c.error(
                    f"working_hours[{i}].specific_date",
                    "Nextech templates repeat by weekday; a one-day entry is not possible",
                )

    def keyed(self, path: str, entry: dict[str, Any], registry: Mapping[str, Any]) -> Any:
        """The entry's key, checked for form and uniqueness (first occurrence wins)."""
        if "key" not in entry:
            return _MISSING
        key = self.c.key(f"{path}.key", entry["key"])
        if key is not _MISSING and key in registry:
            self.c.error(f"{path}.key", f"duplicate key {_q(key)}")
            return _MISSING
        return key

    def records(
        self,
        section: str,
        value: Any,
        registry: Mapping[str, Any],
        required: tuple[str, ...],
        optional: tuple[str, ...],
    ) -> Iterator[tuple[str, dict[str, Any], Any, Any, Any]]:
        """The entries of a section of named, keyed records (locations, operatories, providers,
        appointment types): each with its path, key (unique in `registry`), EHR id (unique in
        the section) and name, checked."""
        seen_ehr: dict[int, None] = {}
        for path, entry in self.c.entries(section, value, required, optional):
            key = self.keyed(path, entry, registry)
            ehr_id = self.ehr_id(path, entry, seen_ehr)
            name = self.c.given(path, entry, "name", self.c.text, max_length=200)
            yield path, entry, key, ehr_id, name

    def ehr_id(self, path: str, entry: dict[str, Any], seen: dict[int, None]) -> Any:
        """The entry's optional EHR id (an export writes it; it survives renames and re-keys),
        unique within its section."""
        value = entry.get("ehr_id")
        if value is None:
            return None
        ehr_id = self.c.integer(f"{path}.ehr_id", value, minimum=1)
        if ehr_id is not _MISSING:
            if ehr_id in seen:
                self.c.error(f"{path}.ehr_id", f"duplicate EHR id {ehr_id}")
                return _MISSING
            seen[ehr_id] = None
        return ehr_id

    # sections

    def practice(self, value: Any) -> PracticeSpec | None:
        c = self.c
        entry = c.obj("practice", value, ("slug", "name", "timezone"))
        if entry is None:
            return None
        slug = c.given("practice", entry, "slug", c.key)
        name = c.given("practice", entry, "name", c.text, max_length=200)
        tzname = c.given("practice", entry, "timezone", c.timezone)
        if tzname is not _MISSING:
            self.tz = zoneinfo.ZoneInfo(tzname)
        if not _ok(slug, name, tzname):
            return None
        return PracticeSpec(slug=slug, name=name, timezone=tzname)

    def ehr(self, value: Any) -> tuple[str, str]:
        c = self.c
        if value is None:
            return "none", "manual"
        entry = c.obj("ehr", value, (), ("kind", "working_hours"))
        if entry is None:
            return "none", "manual"
        kind = c.choice("ehr.kind", _get(entry, "kind", "none"), EHR_KINDS)
        mode = c.choice(
            "ehr.working_hours", _get(entry, "working_hours", "manual"), WORKING_HOURS_MODES
        )
        return (
            kind if kind is not _MISSING else "none",
            mode if mode is not _MISSING else "manual",
        )

    def locations(self, value: Any, default_mode: str) -> tuple[LocationSpec, ...]:
        c = self.c
        out: list[LocationSpec] = []
        for path, entry, key, ehr_id, name in self.records(
            "locations",
            value,
            self.location_keys,
            ("key", "name"),
            ("timezone", "working_hours", "ehr_id"),
        ):
            tzname = entry.get("timezone") or ""
            if tzname:
                tzname = c.timezone(f"{path}.timezone", tzname)
            mode = c.choice(
                f"{path}.working_hours",
                _get(entry, "working_hours", default_mode),
                WORKING_HOURS_MODES,
            )
            if key is _MISSING:
                continue
            spec = None
            if _ok(name, tzname, mode, ehr_id):
                spec = LocationSpec(
                    key=key, name=name, timezone=tzname, working_hours_mode=mode, ehr_id=ehr_id
                )
                out.append(spec)
            self.location_keys[key] = spec
            self.location_modes[key] = mode if mode is not _MISSING else default_mode
        return tuple(out)

    def capabilities(self, path: str, value: Any) -> Any:
        return self.c.unique_list(
            path, value, lambda p, v: self.c.key(p, v, max_length=32), what="capability keys"
        )

    def operatories(self, value: Any) -> tuple[OperatorySpec, ...]:
        c = self.c
        out: list[OperatorySpec] = []
        for path, entry, key, ehr_id, name in self.records(
            "operatories",
            value,
            self.operatory_location,
            ("key", "name", "location"),
            ("capabilities", "active", "ehr_id"),
        ):
            location = c.given(path, entry, "location", c.ref, self.location_keys, "location")
            capabilities = self.capabilities(f"{path}.capabilities", entry.get("capabilities"))
            active = c.boolean(f"{path}.active", _get(entry, "active", True))
            if key is _MISSING:
                continue
            self.operatory_location[key] = location if location is not _MISSING else None
            if _ok(name, location, capabilities, active, ehr_id):
                out.append(OperatorySpec(key, name, location, capabilities, active, ehr_id))
        return tuple(out)

    def providers(self, value: Any) -> tuple[ProviderSpec, ...]:
        c = self.c
        out: list[ProviderSpec] = []
        for path, entry, key, ehr_id, name in self.records(
            "providers",
            value,
            self.provider_phone,
            ("key", "name"),
            ("accepts_new_patients", "on_call_phone", "active", "ehr_id"),
        ):
            accepts = c.boolean(
                f"{path}.accepts_new_patients", _get(entry, "accepts_new_patients", True)
            )
            phone = c.phone(f"{path}.on_call_phone", entry.get("on_call_phone"))
            active = c.boolean(f"{path}.active", _get(entry, "active", True))
            if key is _MISSING:
                continue
            self.provider_phone[key] = phone if phone is not _MISSING else None
            if _ok(name, accepts, phone, active, ehr_id):
                out.append(ProviderSpec(key, name, accepts, phone, active, ehr_id))
        return tuple(out)

    def appointment_types(self, value: Any) -> tuple[AppointmentTypeSpec, ...]:
        c = self.c
        out: list[AppointmentTypeSpec] = []
        optional = (
            "new_patients",
            "existing_patients",
            "providers",
            "requires_capabilities",
            "lead_time_hours",
            "horizon_days",
            "phrases",
            "descriptors",
            "instructions",
            "bookable",
            "booking_mode",
            "ehr_id",
        )
        for path, entry, key, ehr_id, name in self.records(
            "appointment_types", value, self.type_keys, ("key", "name", "minutes"), optional
        ):
            minutes = c.given(path, entry, "minutes", c.integer, minimum=1)
            new = c.boolean(f"{path}.new_patients", _get(entry, "new_patients", True))
            existing = c.boolean(
                f"{path}.existing_patients", _get(entry, "existing_patients", True)
            )
            if new is False and existing is False:
                c.error(path, "new_patients and existing_patients cannot both be false")
                new = _MISSING
            providers = c.unique_list(
                f"{path}.providers",
                entry.get("providers"),
                lambda p, v: c.ref(p, v, self.provider_phone, "provider"),
                what="provider keys",
            )
            capabilities = self.capabilities(
                f"{path}.requires_capabilities", entry.get("requires_capabilities")
            )
            lead = c.integer(
                f"{path}.lead_time_hours", _get(entry, "lead_time_hours", 0), minimum=0
            )
            horizon = c.integer(f"{path}.horizon_days", _get(entry, "horizon_days", 90), minimum=1)
            phrases = c.unique_list(
                f"{path}.phrases",
                entry.get("phrases"),
                self.phrase,
                what="phrases",
                fold=str.casefold,
            )
            descriptors = c.unique_list(
                f"{path}.descriptors",
                entry.get("descriptors"),
                lambda p, v: c.text(p, v, max_length=32),
                what="descriptor codes",
            )
            instructions = c.text(
                f"{path}.instructions", entry.get("instructions", ""), max_length=10_000, blank=True
            )
            bookable = c.boolean(f"{path}.bookable", _get(entry, "bookable", True))
            mode = c.choice(
                f"{path}.booking_mode", _get(entry, "booking_mode", "book"), BOOKING_MODES
            )
            if key is _MISSING:
                continue
            spec = None
            values = (name, minutes, new, existing, providers, capabilities, lead, horizon)
            if _ok(*values, phrases, descriptors, instructions, bookable, mode, ehr_id):
                spec = AppointmentTypeSpec(
                    key=key,
                    name=name,
                    minutes=minutes,
                    new_patients=new,
                    existing_patients=existing,
                    providers=providers,
                    requires_capabilities=capabilities,
                    lead_time_hours=lead,
                    horizon_days=horizon,
                    phrases=phrases,
                    descriptors=descriptors,
                    instructions=instructions,
                    bookable=bookable,
                    ehr_id=ehr_id,
                    booking_mode=mode,
                )
                out.append(spec)
            self.type_keys[key] = spec
        return tuple(out)

    def phrase(self, path: str, value: Any) -> Any:
        text = self.c.text(path, value, max_length=200)
        return " ".join(text.split()) if text is not _MISSING else text

    def type_list(self, path: str, value: Any) -> Any:
        return self.c.unique_list(
            path,
            value,
            lambda p, v: self.c.ref(p, v, self.type_keys, "appointment type"),
            what="appointment type keys",
        )

    def window(self, path: str, entry: dict[str, Any]) -> tuple[Any, Any]:
        c = self.c
        begin = c.given(path, entry, "begin", c.clock)
        end = c.given(path, entry, "end", c.clock)
        if _ok(begin, end) and begin >= end:
            c.error(f"{path}.end", "must be after begin")
            end = _MISSING
        return begin, end

    def working_hours(self, value: Any) -> tuple[WorkingHourSpec, ...]:
        c = self.c
        out: list[WorkingHourSpec] = []
        for path, entry in c.entries(
            "working_hours",
            value,
            ("provider", "operatory", "begin", "end"),
            ("days", "specific_date", "label", "appointment_types", "active"),
        ):
            provider = c.given(path, entry, "provider", c.ref, self.provider_phone, "provider")
            operatory = c.given(
                path, entry, "operatory", c.ref, self.operatory_location, "operatory"
            )
            specific = entry.get("specific_date")
            if specific is not None:
                specific = c.day(f"{path}.specific_date", specific)
            days = c.weekdays(f"{path}.days", entry.get("days"), required=specific is None)
            begin, end = self.window(path, entry)
            label = c.text(f"{path}.label", entry.get("label"), max_length=100, blank=True)
            types = self.type_list(f"{path}.appointment_types", entry.get("appointment_types"))
            active = c.boolean(f"{path}.active", _get(entry, "active", True))
            if operatory is not _MISSING:
                location = self.operatory_location.get(operatory)
                if location is not None and self.location_modes.get(location) == "synced":
                    c.error(
                        f"{path}.operatory",
                        f"location {_q(location)} takes its working hours from the EHR "
                        '(working hours "synced"): manual working hours cannot be imported for it',
                    )
                    operatory = _MISSING
            if _ok(provider, operatory, specific, days, begin, end, label, types, active):
                out.append(
                    WorkingHourSpec(
                        provider, operatory, days, specific, begin, end, label, types, active
                    )
                )
        return tuple(out)

    def place(self, path: str, entry: dict[str, Any], operatory: Any) -> Any:
        """The location of a block or appointment: its operatory's, or the explicit one."""
        c = self.c
        given = entry.get("location")
        if given is not None:
            given = c.ref(f"{path}.location", given, self.location_keys, "location")
        if operatory is None:
            if given is None:
                c.error(f"{path}.location", "is required when there is no operatory")
                return _MISSING
            return given
        if operatory is _MISSING:
            return _MISSING
        derived = self.operatory_location.get(operatory)
        if derived is None:
            return _MISSING  # the operatory's own location is wrong: reported there
        if given not in (None, _MISSING) and given != derived:
            c.error(f"{path}.location", f"operatory {_q(operatory)} is in location {_q(derived)}")
            return _MISSING
        return derived

    def period(self, path: str, entry: dict[str, Any]) -> tuple[Any, Any]:
        c = self.c
        start = c.given(path, entry, "start", c.moment, self.tz)
        end = c.given(path, entry, "end", c.moment, self.tz)
        if _ok(start, end) and start >= end:
            c.error(f"{path}.end", "must be after start")
            end = _MISSING
        return start, end

    def optional_ref(self, path: str, value: Any, known: Mapping[str, Any], kind: str) -> Any:
        return None if value is None else self.c.ref(path, value, known, kind)

    def blocks(self, value: Any) -> tuple[BlockSpec, ...]:
        c = self.c
        out: list[BlockSpec] = []
        for path, entry in c.entries(
            "blocks", value, ("start", "end"), ("provider", "operatory", "location", "reason")
        ):
            provider = self.optional_ref(
                f"{path}.provider", entry.get("provider"), self.provider_phone, "provider"
            )
            operatory = self.optional_ref(
                f"{path}.operatory", entry.get("operatory"), self.operatory_location, "operatory"
            )
            location = self.place(path, entry, operatory)
            start, end = self.period(path, entry)
            reason = c.text(f"{path}.reason", entry.get("reason"), max_length=200, blank=True)
            if _ok(provider, operatory, location, start, end, reason):
                out.append(BlockSpec(location, provider, operatory, start, end, reason))
        return tuple(out)

    def appointments(self, value: Any) -> tuple[tuple[AppointmentSpec, ...], int]:
        c = self.c
        out: list[AppointmentSpec] = []
        patients = 0
        for path, entry in c.entries(
            "appointments",
            value,
            ("provider", "start", "minutes"),
            ("operatory", "location", "appointment_type", "patient", "cancelled"),
        ):
            provider = c.given(path, entry, "provider", c.ref, self.provider_phone, "provider")
            operatory = self.optional_ref(
                f"{path}.operatory", entry.get("operatory"), self.operatory_location, "operatory"
            )
            location = self.place(path, entry, operatory)
            start = c.given(path, entry, "start", c.moment, self.tz)
            minutes = c.given(path, entry, "minutes", c.integer, minimum=1)
            kind = self.optional_ref(
                f"{path}.appointment_type",
                entry.get("appointment_type"),
                self.type_keys,
                "appointment type",
            )
            cancelled = c.boolean(f"{path}.cancelled", _get(entry, "cancelled", False))
            if entry.get("patient") is not None:
                patients += 1
                self.patient(f"{path}.patient", entry["patient"])
            if _ok(provider, operatory, location, start, minutes, kind, cancelled):
                end = start + timedelta(minutes=minutes)  # UTC: real minutes across DST
                out.append(
                    AppointmentSpec(location, provider, operatory, start, end, kind, cancelled)
                )
        return tuple(out), patients

    def patient(self, path: str, value: Any) -> None:
        """Demographics are PHI: checked for shape here, never stored by this importer."""
        c = self.c
        entry = c.obj(path, value, ("first_name", "last_name", "date_of_birth"), ("phone", "email"))
        if entry is None:
            return
        for name in ("first_name", "last_name"):
            if name in entry:
                c.text(f"{path}.{name}", entry[name], max_length=200)
        if "date_of_birth" in entry:
            born = c.day(f"{path}.date_of_birth", entry["date_of_birth"])
            if born is not _MISSING and born > date.today():
                c.error(f"{path}.date_of_birth", "must not be in the future")
        if entry.get("phone") is not None:
            c.phone(f"{path}.phone", entry["phone"])
        email = entry.get("email")
        if email is not None and (not isinstance(email, str) or "@" not in email):
            c.error(f"{path}.email", "must be an email address")

    def provider_rules(self, value: Any) -> tuple[ProviderRuleSpec, ...]:
        c = self.c
        out: list[ProviderRuleSpec] = []
        for path, entry in c.entries(
            "provider_rules",
            value,
            ("provider", "appointment_types", "days", "begin", "end"),
            ("patient_status",),
        ):
            provider = c.given(path, entry, "provider", c.ref, self.provider_phone, "provider")
            types = self.type_list(f"{path}.appointment_types", entry.get("appointment_types"))
            if types == ():
                c.error(f"{path}.appointment_types", "must name at least one appointment type")
                types = _MISSING
            status = c.choice(
                f"{path}.patient_status",
                _get(entry, "patient_status", "any"),
                RULE_PATIENT_STATUSES,
            )
            days = (
                c.weekdays(f"{path}.days", entry.get("days"), required=True)
                if "days" in entry
                else _MISSING
            )
            begin, end = self.window(path, entry)
            if _ok(provider, types, status, days, begin, end):
                out.append(ProviderRuleSpec(provider, types, status, days, begin, end))
        return tuple(out)

    # validated, not stored yet

    def baa(self, value: Any) -> None:
        c = self.c
        if value is None:
            return
        entry = c.obj(
            "baa", value, ("status",), ("signed_by", "executed_on", "effective_on", "expires_on")
        )
        if entry is None:
            return
        status = (
            c.choice("baa.status", entry.get("status"), BAA_STATUSES)
            if "status" in entry
            else _MISSING
        )
        dates: dict[str, Any] = {}
        for name in ("executed_on", "effective_on", "expires_on"):
            if entry.get(name) is not None:
                dates[name] = c.day(f"baa.{name}", entry[name])
        if entry.get("signed_by") is not None:
            c.text("baa.signed_by", entry["signed_by"], max_length=200)
        if status == "executed":
            for name in ("signed_by", "executed_on", "effective_on"):
                if entry.get(name) is None:
                    c.error(f"baa.{name}", "is required for an executed BAA")
        effective, expires = dates.get("effective_on", _MISSING), dates.get("expires_on", _MISSING)
        if _ok(effective, expires) and expires <= effective:
            c.error("baa.expires_on", "must be after effective_on")

    def escalation_protocols(self, value: Any) -> tuple[EscalationProtocolSpec, ...]:
        c = self.c
        out: list[EscalationProtocolSpec] = []
        seen: dict[str, None] = {}
        for path, entry in c.entries(
            "escalation_protocols",
            value,
            ("key", "name", "triggers", "severity", "route"),
            ("appointment_types", "within_days_of_procedure", "instructions"),
        ):
            key = self.keyed(path, entry, seen)
            if key is not _MISSING:
                seen[key] = None
            name = c.given(path, entry, "name", c.text, max_length=200)
            types = self.type_list(f"{path}.appointment_types", entry.get("appointment_types"))
            within = None
            if entry.get("within_days_of_procedure") is not None:
                within = c.integer(
                    f"{path}.within_days_of_procedure", entry["within_days_of_procedure"], minimum=1
                )
            triggers: Any = _MISSING
            if "triggers" in entry:
                triggers = c.unique_list(
                    f"{path}.triggers",
                    entry["triggers"],
                    lambda p, v: self.phrase(p, v),
                    what="trigger phrases",
                    fold=str.casefold,
                )
                if triggers == ():
                    c.error(f"{path}.triggers", "must name at least one trigger phrase")
                    triggers = _MISSING
            severity = c.given(path, entry, "severity", c.choice, ESCALATION_SEVERITIES)
            route: Any = _MISSING
            taker = ("", "")
            if isinstance(entry.get("route"), Mapping):
                route, taker = self.route_taker(f"{path}.route", entry["route"])
            elif "route" in entry:
                route = c.choice(f"{path}.route", entry["route"], ESCALATION_ROUTES)
            if _ok(severity, route) and (severity == "emergency") != (route == "911"):
                c.error(f"{path}.route", 'an emergency routes to "911", and only an emergency does')
                route = _MISSING
            instructions = c.text(
                f"{path}.instructions", entry.get("instructions"), max_length=10_000, blank=True
            )
            if _ok(key, name, types, within, triggers, severity, route, instructions):
                out.append(
                    EscalationProtocolSpec(
                        key, name, types, within, triggers, severity, route, instructions, *taker
                    )
                )
        return tuple(out)

    def on_call(self, value: Any) -> tuple[OnCallSpec, ...]:
        c = self.c
        out: list[OnCallSpec] = []
        for path, entry in c.entries("on_call", value, ("provider", "start", "end"), ("group",)):
            group = ""
            if entry.get("group") is not None:
                group = c.key(f"{path}.group", entry["group"])
            provider: Any = _MISSING
            if "provider" in entry:
                provider = c.ref(
                    f"{path}.provider", entry["provider"], self.provider_phone, "provider"
                )
                if provider is not _MISSING and self.provider_phone.get(provider) == "":
                    c.error(f"{path}.provider", f"{_q(provider)} has no on_call_phone")
                    provider = _MISSING
            start, end = self.period(path, entry)
            if not _ok(provider, start, end, group):
                continue
            for j, other in enumerate(out):
                if other.provider == provider and other.start < end and start < other.end:
                    c.error(f"{path}.start", f"overlaps on_call entry {j} of the same provider")
                    break
            else:
                out.append(OnCallSpec(provider, start, end, group))
        return tuple(out)

    def lay_terms(self, value: Any) -> tuple[LayTermSpec, ...]:
        """Words that mean the same to this practice's callers ("tox", "baby botox", "botox"),
        and optionally the wider terms they fall under; no word twice in one entry."""
        c = self.c
        out: list[LayTermSpec] = []
        for path, entry in c.entries("lay_terms", value, ("terms",), ("broader",)):
            terms = c.given(
                path, entry, "terms", c.unique_list, self.phrase, what="terms", fold=str.casefold
            )
            if terms == ():
                c.error(f"{path}.terms", "must name at least one term")
                terms = _MISSING
            broader = c.unique_list(
                f"{path}.broader",
                entry.get("broader"),
                self.phrase,
                what="terms",
                fold=str.casefold,
            )
            if _ok(terms, broader):
                out.append(LayTermSpec(terms, broader))
        return tuple(out)

    def route_taker(self, path: str, value: Mapping[str, Any]) -> tuple[Any, tuple[str, str]]:
        """`{"provider": key}` or `{"on_call_group": key}`: an on-call route and who takes it."""
        c = self.c
        entry = c.obj(path, value, (), ("provider", "on_call_group"))
        if entry is None or len(entry) != 1:
            c.error(path, 'must name one "provider" or one "on_call_group"')
            return _MISSING, ("", "")
        if "provider" in entry:
            provider = c.ref(f"{path}.provider", entry["provider"], self.provider_phone, "provider")
            if _ok(provider) and not self.provider_phone.get(provider):
                c.error(f"{path}.provider", f"{_q(provider)} has no on_call_phone")
                provider = _MISSING
            return ("on_call", (provider, "")) if _ok(provider) else (_MISSING, ("", ""))
        group = c.key(f"{path}.on_call_group", entry["on_call_group"])
        return ("on_call", ("", group)) if _ok(group) else (_MISSING, ("", ""))


def parse_config(data: Any) -> PracticeConfig:
    """The typed configuration, or ConfigError with every problem found.

    The size caps come first: a file over one is refused by its path without being parsed."""
    from onboarding.document_schema import check_document

    caps, schema_errors = check_document(data)
    if caps:
        raise ConfigError(caps)
    parser = _Parser(data)
    config = parser.parse()
    if parser.c.errors or config is None:
        raise ConfigError(parser.c.errors or ["(document): invalid"])
    if schema_errors:
        raise ConfigError(schema_errors)
    return config


def validate_config(data: Any) -> list[str]:
    """Every problem in the document, each prefixed with its path; empty when it is valid."""
    try:
        parse_config(data)
    except ConfigError as exc:
        return exc.errors
    return []
