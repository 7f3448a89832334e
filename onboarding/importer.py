"""Apply a validated practice configuration: create or update the practice to match the file.

Everything happens in one transaction, inside `tenant_context(practice)` (the Practice row itself
is not tenant-scoped). Rows are compared before they are written, so importing the same file
twice writes nothing and reports zero changes; row ids survive re-imports.

What the file owns, and what happens to rows the file no longer mentions (deliberate choices):

* **Entities with a key** (locations, operatories, providers, appointment types) are matched by
  their `ehr_id` when the file carries one (the export writes it), then by key, and updated in
  place: a renamed or re-keyed entry keeps its row, its EHR link and what refers to it. One
  missing from the file is deleted, unless something the file does not manage still refers to
  it (a hold, a booking, an appointment or block that came from the EHR): then the whole import
  fails with an error naming it and nothing changes. To retire such a row keep it in the file
  with `"active": false` (providers, operatories) or `"bookable": false` (appointment types).
* **Config-managed sets** are replaced by the file's content, deleting what is missing: caller
  phrases (per type, matched case-insensitively), the eligible providers and descriptor codes of
  a type, working hours with `source = manual`, provider rules, and the calendar blocks and
  appointments the file wrote (those without an EHR id). Rows without a key are matched on their
  whole content first and then on who/where (provider, operatory, location) so that editing one
  field is an update, not a delete plus a create.
* **Left alone:** working hours synced from the EHR, blocks and appointments carrying an EHR id
  (sync owns them), and appointment descriptors (the EHR's catalogue: the import creates the
  codes it needs at every location but never deletes one, except the ones it created at a
  location that is itself being deleted).
* The order of set-like lists (phrases, providers, days...) is not significant; new items are
  appended, so an export lists them in the file's order after a first import.
* **Escalation protocols** (keyed) and the **on-call rota** are stored by
  `calls.escalation.services`: a protocol whose live version differs from the file gets a new
  version, approved by the import (audited, source `config_import`; the file is the practice's
  own clinically defined set-up); protocols missing from the file are withdrawn, not deleted
  (screenings refer to their versions); clinicians' open drafts are kept. An `actor` who is not
  a clinician of the practice (a manager uploading the file) only drafts protocols for a
  clinician to approve and withdraws none. The rota is a keyless set: the file's entries
  replace it.
"""

from __future__ import annotations

import zoneinfo
from collections import defaultdict, deque
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar

from django.db import models, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from accounts.models import Location, Practice
from core.tenancy import tenant_context
from onboarding.schema import (
    AppointmentSpec,
    BlockSpec,
    ConfigError,
    PracticeConfig,
    ProviderRuleSpec,
    WorkingHourSpec,
)
from scheduling.models import (
    Appointment,
    AppointmentDescriptor,
    AppointmentType,
    Block,
    CallerPhrase,
    Operatory,
    Provider,
    ProviderRule,
    WorkingHour,
    WorkingHoursMode,
)

SECTIONS = (
    "practice",
    "locations",
    "operatories",
    "providers",
    "descriptors",
    "appointment_types",
    "phrases",
    "working_hours",
    "blocks",
    "appointments",
    "provider_rules",
    "escalation_protocols",
    "on_call",
)
NOT_IMPORTED_NOTE = "not imported yet (lands with the compliance/calls apps)"

M = TypeVar("M", bound=models.Model)
S = TypeVar("S")


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    deleted: int = 0

    @property
    def total(self) -> int:
        return self.created + self.updated + self.deleted


ADDED, CHANGED, REMOVED = "added", "changed", "removed"


def section_label(name: str) -> str:
    """ "appointment_types" -> "Appointment types" (the file's section, for people)."""
    return name.replace("_", " ").capitalize()


# What `_Writer.describe` names a keyless row by.
DESCRIBED_FIELDS = (
    "provider_id",
    "operatory_id",
    "location_id",
    "days",
    "specific_date",
    "patient_status",
    "begin",
    "end",
    "start",
)


@dataclass
class ImportResult:
    """What an import changed, per section, and what it validated but did not store.

    `items` names each change by the entry's key (or, for keyless rows such as working hours,
    by who, where and when), never by its position in the file: section -> label -> (added,
    changed or removed; the fields that changed). It is what a preview shows before the
    file is applied."""

    practice_slug: str
    practice_id: int
    sections: dict[str, Counts] = field(default_factory=lambda: {s: Counts() for s in SECTIONS})
    notes: list[str] = field(default_factory=list)
    items: dict[str, dict[str, tuple[str, list[str]]]] = field(default_factory=dict)

    def item(self, section: str, action: str, label: str, fields: Iterable[str] = ()) -> None:
        entries = self.items.setdefault(section, {})
        before, names = entries.get(label, ("", []))
        if before == ADDED:  # created in this import: later changes are part of adding it
            return
        entries[label] = (action, [*names, *(f for f in fields if f not in names)])

    def changed_sections(self) -> list[tuple[str, str, Counts]]:
        """(section, its label for people, counts) of the sections that changed."""
        return [(n, section_label(n), c) for n, c in self.sections.items() if c.total]

    def listed(self) -> list[tuple[str, str, list[tuple[str, str, list[str]]]]]:
        """(section, label, [(action, label, fields)]) in the file's order, added first."""
        order = {ADDED: 0, CHANGED: 1, REMOVED: 2}
        return [
            (
                name,
                section_label(name),
                sorted(
                    ((a, label, f) for label, (a, f) in self.items[name].items()),
                    key=lambda x: (order[x[0]], x[1]),
                ),
            )
            for name in SECTIONS
            if self.items.get(name)
        ]

    @property
    def changes(self) -> int:
        return sum(c.total for c in self.sections.values())

    def summary(self) -> list[str]:
        lines = [
            f"Practice {self.practice_slug}: "
            + (f"{self.changes} change(s)" if self.changes else "no changes")
        ]
        for name, c in self.sections.items():
            if c.total:
                lines.append(
                    f"  {name:<18} {c.created} created, {c.updated} updated, {c.deleted} deleted"
                )
        lines.extend(f"  note: {note}" for note in self.notes)
        return lines


EHR_NEEDS_BAA = "ehr: connecting an EHR needs an executed BAA"


def _file_baa_in_force(baa: Any, today: date) -> bool:
    """Whether the file's own `baa` section is an executed agreement covering `today` (it is
    stored before the EHR is connected, so it opens the PHI gate for the set-up)."""
    if not isinstance(baa, Mapping) or baa.get("status") != "executed":
        return False
    try:
        starts = max(
            date.fromisoformat(str(baa["executed_on"])),
            date.fromisoformat(str(baa["effective_on"])),
        )
        expires = baa.get("expires_on")
        ends = date.fromisoformat(str(expires)) if expires else None
    except (KeyError, ValueError):
        return False
    return starts <= today and (ends is None or today <= ends)


def ehr_gate_errors(config: PracticeConfig) -> list[str]:
    """Connecting an EHR passes PHI, so it needs an executed BAA in force: the file's own or
    one already stored. Checked before anything is written, so such a file changes nothing
    instead of failing half-way at the PHI gate."""
    if config.ehr_kind == "none":
        return []
    from compliance.gate import phi_allowed

    tz = zoneinfo.ZoneInfo(config.practice.timezone)
    if _file_baa_in_force(config.baa, timezone.localtime(timezone.now(), tz).date()):
        return []
    practice = Practice.objects.filter(slug=config.practice.slug).first()
    if practice is not None and phi_allowed(practice):
        return []
    return [EHR_NEEDS_BAA]


Progress = Callable[[int], None]


def config_entries(config: PracticeConfig) -> int:
    """The entries an import works through (what `progress` counts up to)."""
    return (
        len(config.locations)
        + len(config.operatories)
        + len(config.providers)
        + len(config.appointment_types)
        + sum(len(t.phrases) for t in config.appointment_types)
        + len(config.working_hours)
        + len(config.blocks)
        + len(config.appointments)
        + len(config.provider_rules)
        + len(config.escalation_protocols)
        + len(config.on_call)
    )


def apply_config(
    config: PracticeConfig, *, actor: Any = None, progress: Progress | None = None
) -> ImportResult:
    """Write a validated configuration in one transaction. `progress(entries_done)` is called
    as sections and phrases are written (from inside the transaction: store it elsewhere)."""
    with transaction.atomic():
        practice = Practice.objects.select_for_update().filter(slug=config.practice.slug).first()
        result_practice = Counts()
        lay_terms = [
            {"terms": list(t.terms), **({"broader": list(t.broader)} if t.broader else {})}
            for t in config.lay_terms
        ]
        if practice is None:
            practice = Practice.objects.create(
                slug=config.practice.slug,
                name=config.practice.name,
                timezone=config.practice.timezone,
                lay_terms=lay_terms,
            )
            result_practice.created = 1
        elif _assign(
            practice,
            {
                "name": config.practice.name,
                "timezone": config.practice.timezone,
                "lay_terms": lay_terms,
            },
        ):
            result_practice.updated = 1
        result = ImportResult(practice_slug=practice.slug, practice_id=practice.pk)
        result.sections["practice"] = result_practice
        if result_practice.total:
            result.item("practice", ADDED if result_practice.created else CHANGED, practice.slug)
        # The savepoint rolls a failure back while the tenant setting can still be restored.
        with tenant_context(practice), transaction.atomic():
            _Writer(practice, config, result, actor, progress).run()
            if config.baa is not None:
                from compliance.services import BAAError, upsert_baa_from_config

                try:
                    agreement = upsert_baa_from_config(practice, config.baa)
                except BAAError as exc:  # rolls the whole import back
                    raise ConfigError([str(exc)]) from exc
                result.notes.append(f"baa: version {agreement.version}, {agreement.status}")
    for section in config.not_imported:
        result.notes.append(f"{section}: validated, {NOT_IMPORTED_NOTE}")
    if config.patients_dropped:
        result.notes.append(
            f"appointments: {config.patients_dropped} patient record(s) validated but not stored "
            "(demographics are PHI and there is no encrypted patient store yet); "
            "the appointments were written without a patient"
        )
    return result


def _differing(obj: models.Model, values: dict[str, Any]) -> list[str]:
    """The names of the fields whose value differs from `values` (before `_assign`)."""
    return [name for name, value in values.items() if getattr(obj, name) != value]


def _assign(obj: models.Model, values: dict[str, Any]) -> bool:
    """Set the values that differ and save only those fields; True if anything changed."""
    changed = [name for name, value in values.items() if getattr(obj, name) != value]
    if changed:
        for name in changed:
            setattr(obj, name, values[name])
        obj.save(update_fields=changed)
    return bool(changed)


def _pair(
    specs: Sequence[S],
    rows: Sequence[M],
    signatures: Sequence[tuple[Callable[[S], Hashable], Callable[[M], Hashable]]],
) -> tuple[list[M | None], list[M]]:
    """Match file entries to existing rows, strictest signature first, in order.

    Returns the row for each spec (None: create one) and the rows nobody claimed (delete them).
    """
    matched: list[M | None] = [None] * len(specs)
    free = list(rows)
    for spec_sig, row_sig in signatures:
        pool: dict[Hashable, deque[M]] = defaultdict(deque)
        for row in free:
            pool[row_sig(row)].append(row)
        taken: set[int] = set()
        for i, spec in enumerate(specs):
            if matched[i] is None and pool[spec_sig(spec)]:
                row = pool[spec_sig(spec)].popleft()
                matched[i] = row
                taken.add(id(row))
        free = [row for row in free if id(row) not in taken]
    return matched, free


class _Writer:
    def __init__(
        self,
        practice: Practice,
        config: PracticeConfig,
        result: ImportResult,
        actor: Any = None,
        progress: Progress | None = None,
    ) -> None:
        self.actor = actor
        self.progress = progress
        self.done = 0
        self.practice = practice
        self.config = config
        self.result = result
        self.locations: dict[str, Location] = {}
        self.operatories: dict[str, Operatory] = {}
        self.providers: dict[str, Provider] = {}
        self.types: dict[str, AppointmentType] = {}
        self.descriptors: dict[tuple[int, str], AppointmentDescriptor] = {}
        self.leftovers: dict[str, list[Any]] = {}
        # (section, pk) already counted as created or updated: a row counts once per import.
        self.counted: set[tuple[str, int]] = set()
        # Keys set aside while keys move between rows (for messages about leftovers).
        self.original_keys: dict[tuple[str, int], str] = {}

    def count(self, section: str, what: str, n: int = 1) -> None:
        counts = self.result.sections[section]
        setattr(counts, what, getattr(counts, what) + n)

    def created(self, section: str, pk: int) -> None:
        self.counted.add((section, pk))
        self.count(section, "created")

    def updated(self, section: str, pk: int) -> None:
        """Count a row as updated once, however many of its parts changed (not if created)."""
        if (section, pk) not in self.counted:
            self.counted.add((section, pk))
            self.count(section, "updated")

    def advance(self, n: int) -> None:
        self.done += n
        if self.progress is not None and n:
            self.progress(self.done)

    def mine(self, model: type[M]) -> models.QuerySet[M]:
        return model.objects.filter(practice=self.practice).order_by("id")  # type: ignore[attr-defined]

    def run(self) -> None:
        c = self.config
        self.locations = self.keyed(
            "locations",
            Location,
            c.locations,
            lambda s: {
                "name": s.name,
                "timezone": s.timezone,
                "working_hours_mode": s.working_hours_mode,
            },
        )
        self.operatories = self.keyed(
            "operatories",
            Operatory,
            c.operatories,
            lambda s: {
                "name": s.name,
                "location_id": self.locations[s.location].pk,
                "capabilities": list(s.capabilities),
                "active": s.active,
            },
        )
        self.providers = self.keyed(
            "providers",
            Provider,
            c.providers,
            lambda s: {
                "name": s.name,
                "accepts_new_patients": s.accepts_new_patients,
                "on_call_phone": s.on_call_phone,
                "active": s.active,
            },
        )
        self.ensure_descriptors()
        self.types = self.keyed(
            "appointment_types",
            AppointmentType,
            c.appointment_types,
            lambda s: {
                "name": s.name,
                "minutes": s.minutes,
                "new_patients": s.new_patients,
                "existing_patients": s.existing_patients,
                "required_capabilities": list(s.requires_capabilities),
                "lead_time_hours": s.lead_time_hours,
                "horizon_days": s.horizon_days,
                "instructions": s.instructions,
                "bookable": s.bookable,
                "booking_mode": s.booking_mode,
            },
        )
        self.type_links()
        self.phrases()
        self.working_hours()
        if c.ehr_kind == "none":
            # With an EHR, blocks and appointments live there: provisioning writes the file's
            # into the EHR and the sync mirrors them back with their EHR ids.
            self.blocks()
            self.appointments()
        else:
            self.advance(len(c.blocks) + len(c.appointments))
        self.provider_rules()
        self.escalation()
        self.delete_leftovers()

    # keyed entities

    def keyed(
        self,
        section: str,
        model: type[M],
        specs: Iterable[Any],
        values_of: Callable[[Any], dict[str, Any]],
    ) -> dict[str, M]:
        """Match each entry to its row by EHR id first (the EHR's identity survives a rename
        or a new key), then by key; the key is one of the values updated."""
        specs = list(specs)
        rows: list[M] = list(self.mine(model))
        by_ehr: dict[int, M] = {r.ehr_id: r for r in rows if r.ehr_id is not None}  # type: ignore[attr-defined]
        by_key: dict[str, M] = {r.key: r for r in rows}  # type: ignore[attr-defined]
        claimed: set[int] = set()
        matched: list[M | None] = []
        for spec in specs:
            row = by_ehr.get(spec.ehr_id) if spec.ehr_id is not None else None
            matched.append(row)
            if row is not None:
                claimed.add(row.pk)
        for i, spec in enumerate(specs):
            row = by_key.get(spec.key)
            if matched[i] is None and row is not None and row.pk not in claimed:
                matched[i] = row
                claimed.add(row.pk)
        leftovers = [r for r in rows if r.pk not in claimed]
        # A key moving to another row: free every wanted key first (unique per practice).
        wanted = {spec.key for spec in specs}
        moving = [r for r, spec in zip(matched, specs, strict=True) if r and r.key != spec.key]  # type: ignore[attr-defined]
        for row in moving + [r for r in leftovers if r.key in wanted]:  # type: ignore[attr-defined]
            self.original_keys[(section, row.pk)] = row.key  # type: ignore[attr-defined]
            row.key = f"~{row.pk}"  # type: ignore[attr-defined]
            row.save(update_fields=["key"])
        out: dict[str, M] = {}
        for spec, found in zip(specs, matched, strict=True):
            values = {"key": spec.key, **values_of(spec)}
            if found is None:
                row = model.objects.create(practice=self.practice, **values)  # type: ignore[attr-defined]
                self.created(section, row.pk)
                self.result.item(section, ADDED, spec.key)
            else:
                row = found
                names = _differing(row, values)
                if names and section == "operatories" and "location_id" in names:
                    names = [n if n != "location_id" else "location" for n in names]
                if _assign(row, values):
                    self.updated(section, row.pk)
                    self.result.item(section, CHANGED, spec.key, names)
            out[spec.key] = row
            self.advance(1)
        self.leftovers[section] = leftovers
        return out

    def ensure_descriptors(self) -> None:
        """Every descriptor code the file uses, at every location (the EHR's catalogue is per
        location); created when missing, never deleted here."""
        for row in self.mine(AppointmentDescriptor):
            self.descriptors[(row.location_id, row.code)] = row
        codes = dict.fromkeys(code for t in self.config.appointment_types for code in t.descriptors)
        for location in self.locations.values():
            for code in codes:
                if (location.pk, code) not in self.descriptors:
                    self.descriptors[(location.pk, code)] = AppointmentDescriptor.objects.create(
                        practice=self.practice, location=location, code=code
                    )
                    self.count("descriptors", "created")
                    self.result.item("descriptors", ADDED, f"{code} at {location.key}")

    def sync_links(self, manager: Any, current: set[int], wanted: Sequence[int]) -> bool:
        """Make a many-to-many set equal `wanted`, adding one at a time in order (so the
        through rows keep the file's order for the export)."""
        stale = current - set(wanted)
        if stale:
            manager.remove(*stale)
        added = [pk for pk in dict.fromkeys(wanted) if pk not in current]
        for pk in added:
            manager.add(pk)
        return bool(stale or added)

    def links(
        self, through: Any, owner: str, target: str, owners: Iterable[int]
    ) -> dict[int, set[int]]:
        out: dict[int, set[int]] = defaultdict(set)
        rows = through.objects.filter(**{f"{owner}__in": list(owners)}).values_list(owner, target)
        for owner_id, target_id in rows:
            out[owner_id].add(target_id)
        return out

    def type_links(self) -> None:
        ids = [t.pk for t in self.types.values()]
        providers = self.links(
            AppointmentType.providers.through, "appointmenttype_id", "provider_id", ids
        )
        descriptors = self.links(
            AppointmentType.descriptors.through,
            "appointmenttype_id",
            "appointmentdescriptor_id",
            ids,
        )
        locations = list(self.locations.values())
        for spec in self.config.appointment_types:
            row = self.types[spec.key]
            moved = []
            if self.sync_links(
                row.providers, providers[row.pk], [self.providers[k].pk for k in spec.providers]
            ):
                moved.append("providers")
            wanted = [
                self.descriptors[(location.pk, code)].pk
                for code in spec.descriptors
                for location in locations
            ]
            if self.sync_links(row.descriptors, descriptors[row.pk], wanted):
                moved.append("descriptors")
            if moved:
                self.updated("appointment_types", row.pk)
                self.result.item("appointment_types", CHANGED, spec.key, moved)

    def phrases(self) -> None:
        existing: dict[int, dict[str, CallerPhrase]] = defaultdict(dict)
        for phrase in self.mine(CallerPhrase):
            existing[phrase.appointment_type_id][phrase.text.casefold()] = phrase
        kept: set[int] = set()
        # Phrases of types about to be deleted go with them (cascade), not counted here.
        leaving = {t.pk for t in self.leftovers["appointment_types"]}
        for spec in self.config.appointment_types:
            type_row = self.types[spec.key]
            current = existing[type_row.pk]
            for text in spec.phrases:
                row = current.get(text.casefold())
                if row is None:
                    CallerPhrase.objects.create(
                        practice=self.practice, appointment_type=type_row, text=text
                    )
                    self.count("phrases", "created")
                    self.result.item("phrases", ADDED, f"{spec.key}: “{text}”")
                else:
                    kept.add(row.pk)
                    if _assign(row, {"text": text}):
                        self.count("phrases", "updated")
                        self.result.item("phrases", CHANGED, f"{spec.key}: “{text}”", ["text"])
            self.advance(len(spec.phrases))
        type_keys = {row.pk: key for key, row in self.types.items()}
        stale = [
            phrase
            for by_text in existing.values()
            for phrase in by_text.values()
            if phrase.pk not in kept and phrase.appointment_type_id not in leaving
        ]
        if stale:
            CallerPhrase.objects.filter(pk__in=[p.pk for p in stale]).delete()
            self.count("phrases", "deleted", len(stale))
            for phrase in stale:
                owner = type_keys.get(phrase.appointment_type_id, "?")
                self.result.item("phrases", REMOVED, f"{owner}: “{phrase.text}”")

    # config-managed sets without keys

    def sync_rows(
        self,
        section: str,
        model: type[M],
        rows: Sequence[M],
        specs: Sequence[S],
        values_of: Callable[[S], dict[str, Any]],
        who: Callable[[dict[str, Any]], Hashable],
        links: dict[int, set[int]] | None = None,
        wanted_links: Callable[[S], list[int]] | None = None,
        link_name: str = "appointment_types",
    ) -> None:
        """Replace a keyless set by the file's entries: exact matches are kept untouched, then
        entries are paired with rows of the same provider/operatory/location and updated, the
        rest created; unclaimed rows are deleted. Each change is named by `self.describe`."""
        value_names = list(values_of(specs[0]).keys()) if specs else []

        def spec_full(spec: S) -> Hashable:
            values = values_of(spec)
            extra = frozenset(wanted_links(spec)) if wanted_links else None
            return (_freeze(values), extra)

        def row_full(row: M) -> Hashable:
            values = {name: getattr(row, name) for name in value_names}
            extra = frozenset(links.get(row.pk, set())) if links is not None else None
            return (_freeze(values), extra)

        matched, free = (
            _pair(
                specs,
                rows,
                [
                    (spec_full, row_full),
                    (
                        lambda s: who(values_of(s)),
                        lambda r: who({name: getattr(r, name) for name in value_names}),
                    ),
                ],
            )
            if specs
            else ([], list(rows))
        )
        for spec, found in zip(specs, matched, strict=True):
            values = values_of(spec)
            label = self.describe(section, values)
            if found is None:
                row = model.objects.create(practice=self.practice, **values)  # type: ignore[attr-defined]
                self.created(section, row.pk)
                self.result.item(section, ADDED, label)
                current: set[int] = set()
            else:
                row = found
                current = links.get(row.pk, set()) if links is not None else set()
                names = _differing(row, values)
                if _assign(row, values):
                    self.updated(section, row.pk)
                    self.result.item(
                        section, CHANGED, label, [n.removesuffix("_id") for n in names]
                    )
            if wanted_links is not None and self.sync_links(
                getattr(row, link_name), current, wanted_links(spec)
            ):
                self.updated(section, row.pk)
                self.result.item(section, CHANGED, label, [link_name])
            self.advance(1)
        if free:
            for row in free:
                values = {name: getattr(row, name, None) for name in DESCRIBED_FIELDS}
                self.result.item(section, REMOVED, self.describe(section, values))
            model.objects.filter(pk__in=[r.pk for r in free]).delete()  # type: ignore[attr-defined]
            self.count(section, "deleted", len(free))

    def key_of(self, kind: str, pk: int | None) -> str:
        """The file key of a provider, operatory or location row (also one leaving)."""
        if pk is None:
            return ""
        section = {"provider": "providers", "operatory": "operatories", "location": "locations"}
        current: dict[str, Any] = (
            self.providers
            if kind == "provider"
            else self.operatories
            if kind == "operatory"
            else self.locations
        )
        for key, row in current.items():
            if row.pk == pk:
                return str(key)
        for row in self.leftovers.get(section[kind], []):
            if row.pk == pk:
                return self.original_keys.get((section[kind], pk), row.key)
        return f"#{pk}"

    def describe(self, section: str, v: dict[str, Any]) -> str:
        """A keyless row as staff know it: who, where, when (the file's keys, not its ids)."""

        def span(begin: Any, end: Any) -> str:
            return f"{begin:%H:%M}-{end:%H:%M}"

        def when(days: Any, specific: Any) -> str:
            return specific.isoformat() if specific else ", ".join(d[:3] for d in days or ())

        if section == "working_hours":
            return (
                f"{self.key_of('provider', v['provider_id'])} in "
                f"{self.key_of('operatory', v['operatory_id'])}, "
                f"{when(v['days'], v['specific_date'])} {span(v['begin'], v['end'])}"
            )
        if section == "provider_rules":
            return (
                f"{self.key_of('provider', v['provider_id'])} ({v['patient_status']}), "
                f"{when(v['days'], None)} {span(v['begin'], v['end'])}"
            )
        where = (
            self.key_of("provider", v.get("provider_id"))
            or self.key_of("operatory", v.get("operatory_id"))
            or self.key_of("location", v.get("location_id"))
        )
        return f"{where}, {v['start']:%Y-%m-%d %H:%M}-{v['end']:%H:%M} UTC"

    def working_hours(self) -> None:
        rows = list(self.mine(WorkingHour).filter(source=WorkingHoursMode.MANUAL))
        links = self.links(
            WorkingHour.appointment_types.through,
            "workinghour_id",
            "appointmenttype_id",
            [r.pk for r in rows],
        )

        def values(s: WorkingHourSpec) -> dict[str, Any]:
            return {
                "provider_id": self.providers[s.provider].pk,
                "operatory_id": self.operatories[s.operatory].pk,
                "days": list(s.days),
                "specific_date": s.specific_date,
                "begin": s.begin,
                "end": s.end,
                "label": s.label,
                "active": s.active,
                "source": WorkingHoursMode.MANUAL,
            }

        self.sync_rows(
            "working_hours",
            WorkingHour,
            rows,
            self.config.working_hours,
            values,
            who=lambda v: (v["provider_id"], v["operatory_id"]),
            links=links,
            wanted_links=lambda s: [self.types[k].pk for k in s.appointment_types],
        )

    def blocks(self) -> None:
        rows = list(self.mine(Block).filter(ehr_id__isnull=True))

        def values(s: BlockSpec) -> dict[str, Any]:
            return {
                "location_id": self.locations[s.location].pk,
                "provider_id": self.providers[s.provider].pk if s.provider else None,
                "operatory_id": self.operatories[s.operatory].pk if s.operatory else None,
                "start": s.start,
                "end": s.end,
                "reason": s.reason,
            }

        self.sync_rows(
            "blocks",
            Block,
            rows,
            self.config.blocks,
            values,
            who=lambda v: (v["location_id"], v["provider_id"], v["operatory_id"]),
        )

    def appointments(self) -> None:
        rows = list(self.mine(Appointment).filter(ehr_id__isnull=True))

        def values(s: AppointmentSpec) -> dict[str, Any]:
            return {
                "location_id": self.locations[s.location].pk,
                "provider_id": self.providers[s.provider].pk,
                "operatory_id": self.operatories[s.operatory].pk if s.operatory else None,
                "appointment_type_id": self.types[s.appointment_type].pk
                if s.appointment_type
                else None,
                "start": s.start,
                "end": s.end,
                "cancelled": s.cancelled,
            }

        self.sync_rows(
            "appointments",
            Appointment,
            rows,
            self.config.appointments,
            values,
            who=lambda v: (v["location_id"], v["provider_id"], v["operatory_id"]),
        )

    def provider_rules(self) -> None:
        rows = list(self.mine(ProviderRule))
        links = self.links(
            ProviderRule.appointment_types.through,
            "providerrule_id",
            "appointmenttype_id",
            [r.pk for r in rows],
        )

        def values(s: ProviderRuleSpec) -> dict[str, Any]:
            return {
                "provider_id": self.providers[s.provider].pk,
                "patient_status": s.patient_status,
                "days": list(s.days),
                "begin": s.begin,
                "end": s.end,
            }

        self.sync_rows(
            "provider_rules",
            ProviderRule,
            rows,
            self.config.provider_rules,
            values,
            who=lambda v: v["provider_id"],
            links=links,
            wanted_links=lambda s: [self.types[k].pk for k in s.appointment_types],
        )

    # escalation protocols and the on-call rota (calls.escalation.services stores them)

    def escalation(self) -> None:
        from calls.escalation.services import import_on_call, import_protocols

        type_ids = {key: row.pk for key, row in self.types.items()}
        provider_ids = {key: row.pk for key, row in self.providers.items()}
        for section, counts in (
            (
                "escalation_protocols",
                import_protocols(
                    self.practice,
                    self.config.escalation_protocols,
                    type_ids,
                    self.actor,
                    provider_ids,
                ),
            ),
            ("on_call", import_on_call(self.practice, self.config.on_call, provider_ids)),
        ):
            for what in ("created", "updated", "deleted"):
                self.count(section, what, getattr(counts, what))
            self.result.notes.extend(counts.notes)
        self.advance(len(self.config.escalation_protocols) + len(self.config.on_call))

    # entities the file no longer mentions

    def delete_leftovers(self) -> None:
        errors: list[str] = []
        for section in ("appointment_types", "providers", "operatories", "locations"):
            for row in self.leftovers[section]:
                if section == "locations":
                    created_here = AppointmentDescriptor.objects.filter(
                        location=row, ehr_id__isnull=True
                    )
                    n = created_here.count()
                    if n:
                        created_here.delete()
                        self.count("descriptors", "deleted", n)
                key = self.original_keys.get((section, row.pk), row.key)
                try:
                    with transaction.atomic():
                        row.delete()
                except ProtectedError as exc:
                    errors.append(_still_used(section, key, exc))
                else:
                    self.count(section, "deleted")
                    self.result.item(section, REMOVED, key)
        if errors:
            raise ConfigError(errors)


def _still_used(section: str, key: str, exc: ProtectedError) -> str:
    by_kind: dict[str, int] = defaultdict(int)
    for obj in exc.protected_objects:
        by_kind[str(obj._meta.verbose_name_plural)] += 1
    uses = ", ".join(f"{n} {kind}" for kind, n in sorted(by_kind.items()))
    retire = {
        "appointment_types": ', with "bookable": false to retire it',
        "providers": ', with "active": false to retire it',
        "operatories": ', with "active": false to retire it',
    }.get(section, "")
    return (
        f'{section}: "{key}" is not in the file but cannot be deleted: still used by {uses} '
        f"(keep it in the file{retire})"
    )


def _freeze(values: dict[str, Any]) -> Hashable:
    return tuple(
        (name, tuple(v) if isinstance(v, list) else v) for name, v in sorted(values.items())
    )
