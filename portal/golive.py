"""The go-live checklist: may this practice's voice agent start taking calls?

`checklist(practice)` returns one `Check` per condition, each with a status, a sentence that says
what was found, a link to the page that fixes it and, where it helps, the offending items with
their own links. Pure reads with a constant number of queries (whatever the number of types,
connections or scenarios); the dashboard and the go-live page render the same list.

1. BAA: an executed agreement is in force now (`compliance.gate`, the PHI gate's own decision).
2. EHR: every location is connected, the connections are healthy, and each has synced at least
   once (the oldest last-sync time is shown).
3. Mapping: every bookable appointment type has caller phrases AND EHR descriptor codes.
4. Escalation: at least one approved, live escalation protocol.
5. Test scenarios: at least one, all of them run and passing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Count, Max, Min, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.timesince import timesince

from accounts.models import Location, Practice

PASS = "pass"
FAIL = "fail"


@dataclass(frozen=True)
class Item:
    """One thing that keeps a check from passing (a type without phrases...)."""

    label: str
    problem: str
    url: str | None = None


@dataclass(frozen=True)
class Check:
    key: str
    title: str
    status: str
    detail: str
    url: str | None = None
    link_label: str = ""
    items: list[Item] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.status == PASS


def _url(name: str, practice: Practice, **kwargs: Any) -> str:
    """The practice's page that fixes a check."""
    return reverse(name, kwargs={"practice_slug": practice.slug, **kwargs})


def _ago(moment: datetime) -> str:
    return f"{timesince(moment, timezone.now()).split(',')[0]} ago"


def check_baa(practice: Practice) -> Check:
    from compliance.gate import agreement_in_force

    agreement = agreement_in_force(practice)
    url = _url("compliance_baa_list", practice)
    if agreement is None:
        return Check(
            "baa",
            "Business associate agreement executed and in force",
            FAIL,
            "No executed BAA is in force: the agent may not process any patient information "
            "until one is signed (ask your compliance officer).",
            url,
            "Business associate agreements",
        )
    until = f"until {agreement.expires_on:%b %-d, %Y}" if agreement.expires_on else "with no expiry"
    return Check(
        "baa",
        "Business associate agreement executed and in force",
        PASS,
        f"Version {agreement.version}, executed {agreement.executed_on:%b %-d, %Y}, in force "
        f"{until}.",
        url,
        "Business associate agreements",
    )


def check_ehr(practice: Practice) -> Check:
    """Two queries: locations with their connection (if any)."""
    from ehr.models import ConnectionStatus

    url = reverse("ehr_connections", kwargs={"practice_slug": practice.slug})
    locations = list(
        Location.objects.for_practice(practice)
        .select_related("ehr_connection")
        .order_by("name")
        .only(
            "name",
            "ehr_connection__status",
            "ehr_connection__state",
            "ehr_connection__status_detail",
            "ehr_connection__last_successful_sync_at",
        )
    )
    items: list[Item] = []
    synced: list[datetime] = []
    for location in locations:
        conn = getattr(location, "ehr_connection", None)
        if conn is None:
            items.append(Item(location.name, "not connected to an EHR", url))
        elif conn.status != ConnectionStatus.CONNECTED:
            detail = f": {conn.status_detail}" if conn.status_detail else ""
            items.append(Item(location.name, f"connection {conn.state_label}{detail}", url))
        elif conn.last_successful_sync_at is None:
            items.append(Item(location.name, "connected but never synced", url))
        else:
            synced.append(conn.last_successful_sync_at)
    title = "EHR connected and synced"
    if not locations:
        return Check(
            "ehr", title, FAIL, "The practice has no locations yet.", url, "EHR connection"
        )
    if items:
        return Check(
            "ehr",
            title,
            FAIL,
            f"{len(items)} of {len(locations)} location(s) not ready.",
            url,
            "EHR connection",
            items,
        )
    oldest = min(synced)
    return Check(
        "ehr",
        title,
        PASS,
        f"{len(locations)} location(s) connected; last sync {_ago(oldest)} "
        f"({timezone.localtime(oldest, practice.tz):%b %-d, %H:%M}).",
        url,
        "EHR connection",
    )


def check_mapping(practice: Practice) -> Check:
    """One query: the bookable types with their phrase and descriptor counts."""
    from scheduling.models import AppointmentType

    title = "Every bookable type mapped to caller phrases and EHR descriptors"
    types_page = _url("scheduling_types", practice)
    types = list(
        AppointmentType.objects.for_practice(practice)
        .filter(bookable=True)
        .annotate(
            n_phrases=Count("phrases", distinct=True),
            n_descriptors=Count("descriptors", distinct=True),
        )
        .order_by("name")
        .values_list("pk", "name", "n_phrases", "n_descriptors")
    )
    if not types:
        return Check(
            "mapping",
            title,
            FAIL,
            "No bookable appointment types yet: add them, or upload the configuration file.",
            types_page,
            "Appointment types",
        )
    items = []
    for pk, name, n_phrases, n_descriptors in types:
        missing = [
            what
            for what, n in (("caller phrases", n_phrases), ("EHR descriptors", n_descriptors))
            if not n
        ]
        if missing:
            url = _url("scheduling_type", practice, pk=pk)
            items.append(Item(name, "no " + " and no ".join(missing), url))
    if items:
        return Check(
            "mapping",
            title,
            FAIL,
            f"{len(items)} of {len(types)} bookable type(s) not fully mapped.",
            types_page,
            "Appointment types",
            items,
        )
    return Check(
        "mapping",
        title,
        PASS,
        f"All {len(types)} bookable type(s) have caller phrases and EHR descriptors.",
        types_page,
        "Appointment types",
    )


def check_scenarios(practice: Practice) -> Check:
    """One query: counts of scenarios by last result."""
    from scheduling.models import TestScenario

    title = "Test scenarios passing"
    url = reverse("golive", kwargs={"practice_slug": practice.slug}) + "#scenarios"
    figures = TestScenario.objects.for_practice(practice).aggregate(
        total=Count("pk"),
        passed=Count("pk", filter=Q(last_passed=True)),
        failed=Count("pk", filter=Q(last_passed=False)),
        oldest_run=Min("last_run_at"),
        newest_run=Max("last_run_at"),
    )
    total, passed, failed = figures["total"], figures["passed"], figures["failed"]
    if not total:
        return Check(
            "scenarios",
            title,
            FAIL,
            "No test scenarios yet: add what your callers say and the type they should get.",
            url,
            "Test scenarios",
        )
    not_run = total - passed - failed
    if failed or not_run:
        parts = [f"{passed} of {total} passing"]
        if failed:
            parts.append(f"{failed} failing")
        if not_run:
            parts.append(f"{not_run} not run yet")
        return Check("scenarios", title, FAIL, "; ".join(parts) + ".", url, "Test scenarios")
    return Check(
        "scenarios",
        title,
        PASS,
        f"All {total} passing (last run {_ago(figures['newest_run'])}).",
        url,
        "Test scenarios",
    )


def check_escalation(practice: Practice) -> Check:
    """One query: live (clinician-approved, in use) protocol versions and drafts waiting."""
    from calls.models import ProtocolVersion, VersionStatus

    title = "Escalation protocols approved"
    url = _url("escalation_protocols", practice)
    figures = ProtocolVersion.objects.for_practice(practice).aggregate(
        live=Count("protocol", filter=Q(status=VersionStatus.LIVE), distinct=True),
        drafts=Count("pk", filter=Q(status=VersionStatus.DRAFT)),
    )
    waiting = (
        f" {figures['drafts']} draft(s) wait for a clinician's approval."
        if figures["drafts"]
        else ""
    )
    if not figures["live"]:
        return Check(
            "escalation",
            title,
            FAIL,
            "No approved escalation protocol is live: the agent would not know which calls are "
            "urgent." + waiting,
            url,
            "Escalation protocols",
        )
    return Check(
        "escalation",
        title,
        PASS,
        f"{figures['live']} protocol(s) approved and live." + waiting,
        url,
        "Escalation protocols",
    )


def checklist(practice: Practice) -> list[Check]:
    """Every go-live condition, in the order a practice usually meets them."""
    return [
        check_baa(practice),
        check_ehr(practice),
        check_mapping(practice),
        check_escalation(practice),
        check_scenarios(practice),
    ]


def ready(checks: list[Check]) -> bool:
    return all(c.passed for c in checks)


# --- the practice's evaluation: test scenarios per type ---------------------------------------


@dataclass(frozen=True)
class Suggestion:
    """A caller phrase that would have helped a missed sentence, for one type."""

    phrase: str
    sentence: str


@dataclass
class TypeResult:
    """How one expected type's scenarios last came out: `right` (the type), `wrong` (another
    type: the failure that books the wrong visit), `empty` (nothing: a message taken). For
    "nothing expected", a type picked is wrong and nothing is right."""

    type_id: int | None
    name: str
    right: int = 0
    wrong: int = 0
    empty: int = 0
    not_run: int = 0
    suggestions: list[Suggestion] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.right + self.wrong + self.empty + self.not_run


def scenario_report(practice: Practice, scenarios: list[Any]) -> list[TypeResult]:
    """Right / wrong / empty per expected type, over scenarios already loaded (with their
    `expected_type`), and for each type the phrases its misses suggest that it does not have
    yet. One query (the practice's phrases); types by name, "nothing expected" last."""
    from scheduling.intents import suggest_phrase
    from scheduling.models import CallerPhrase

    phrases: dict[int, set[str]] = {}
    for type_id, text in CallerPhrase.objects.for_practice(practice).values_list(
        "appointment_type_id", "text"
    ):
        phrases.setdefault(type_id, set()).add(text.casefold())
    results: dict[int | None, TypeResult] = {}
    for s in scenarios:
        expected = s.expected_type_id
        result = results.get(expected)
        if result is None:
            name = s.expected_type.name if expected else "Nothing (take a message)"
            result = results[expected] = TypeResult(expected, name)
        if s.last_run_at is None:
            result.not_run += 1
        elif s.last_got_type_id == expected:
            result.right += 1
        elif s.last_got_type_id is None:
            result.empty += 1
        else:
            result.wrong += 1
        missed = s.last_run_at is not None and s.last_got_type_id != expected
        if expected is not None and missed:
            phrase = suggest_phrase(s.sentence)
            known = phrases.get(expected, set())
            if phrase and phrase.casefold() not in known:
                known.add(phrase.casefold())
                phrases[expected] = known
                result.suggestions.append(Suggestion(phrase, s.sentence))
    return sorted(results.values(), key=lambda r: (r.type_id is None, r.name.casefold()))
