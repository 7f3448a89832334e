"""Writes behind the set-up pages: test scenarios and their runs, API clients with their audit
events (the configuration upload is onboarding's: `onboarding.services`). Every function takes
the practice explicitly and runs inside its tenant context (the request's), so row-level
security stays the second wall."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import Practice, User
from compliance import audit
from compliance.models import AuditAction
from compliance.support_policy import SupportForbidden, refused_in_support_session
from scheduling import catalog
from scheduling import services as scheduling_services
from scheduling.intents import resolve_intent
from scheduling.models import ApiClient, AppointmentType, TestScenario

log = logging.getLogger("portal.setup")

SCENARIO_RESULT_FIELDS = ["last_passed", "last_got_type", "last_confidence", "last_run_at"]


# --- test scenarios ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSummary:
    total: int
    passed: int
    run_at: datetime

    @property
    def failed(self) -> int:
        return self.total - self.passed


def run_scenarios(practice: Practice, now: datetime | None = None) -> RunSummary:
    """Ask the intent resolver, as the voice agent would, for every scenario of the practice,
    and keep each outcome on its row. Passing means the top match is the expected type (or
    that nothing matched when no type is expected). Queries: 1 + one per scenario + 1."""
    now = now or timezone.now()
    scenarios = list(TestScenario.objects.for_practice(practice).order_by("pk"))
    for scenario in scenarios:
        matches = resolve_intent(practice, scenario.sentence, scenario.patient_status)
        top = matches[0] if matches else None
        scenario.last_got_type_id = top.appointment_type_id if top else None
        scenario.last_confidence = top.confidence if top else None
        scenario.last_passed = scenario.last_got_type_id == scenario.expected_type_id
        scenario.last_run_at = now
    passed = sum(1 for s in scenarios if s.last_passed)
    with transaction.atomic():
        if scenarios:
            TestScenario.objects.bulk_update(scenarios, SCENARIO_RESULT_FIELDS)
        audit.record(
            AuditAction.SCENARIOS_RUN,
            practice=practice,
            object_type="scheduling.TestScenario",
            object_ids=[s.pk for s in scenarios],
            details={"passed": passed, "failed": len(scenarios) - passed},
        )
    return RunSummary(total=len(scenarios), passed=passed, run_at=now)


def save_scenario(practice: Practice, scenario: TestScenario) -> TestScenario:
    """Create or change a scenario; a change forgets the last result (it tested something
    else). auditlog records the change."""
    scenario.practice = practice
    scenario.last_passed = None
    scenario.last_got_type = None
    scenario.last_confidence = None
    scenario.last_run_at = None
    scenario.save()
    return scenario


def delete_scenario(scenario: TestScenario) -> None:
    scenario.delete()


MAX_PASTED_SCENARIOS = 200


@dataclass(frozen=True)
class PasteResult:
    added: int
    duplicates: int


def add_scenarios(
    practice: Practice,
    sentences: list[str],
    patient_status: str,
    expected_type: AppointmentType | None,
) -> PasteResult:
    """Many scenarios at once (a list pasted, or lines from past calls), all for one expected
    type: blank lines are ignored, sentences the practice already tests for such callers (any
    case or spacing) are skipped, not refused. One query to read, then one insert per scenario
    (saved one by one so that auditlog records each, as for a scenario added by hand)."""
    if expected_type is not None and expected_type.practice_id != practice.pk:
        raise ValueError("not this practice's appointment type")
    existing = {
        s.casefold()
        for s in TestScenario.objects.for_practice(practice)
        .filter(patient_status=patient_status)
        .values_list("sentence", flat=True)
    }
    new: list[TestScenario] = []
    duplicates = 0
    for raw in sentences[:MAX_PASTED_SCENARIOS]:
        sentence = " ".join(raw.split())[:500]
        if not sentence:
            continue
        if sentence.casefold() in existing:
            duplicates += 1
            continue
        existing.add(sentence.casefold())
        new.append(
            TestScenario(
                practice=practice,
                sentence=sentence,
                patient_status=patient_status,
                expected_type=expected_type,
            )
        )
    with transaction.atomic():
        for scenario in new:
            scenario.save()
    return PasteResult(added=len(new), duplicates=duplicates)


def set_lay_terms(practice: Practice, entries: list[dict[str, Any]]) -> None:
    """The practice's own additions to the intent lexicon (the configuration file's
    `lay_terms`, validated by the form or the file's schema). auditlog records the change."""
    practice.lay_terms = entries
    practice.save(update_fields=["lay_terms"])


def adopt_phrase(practice: Practice, appointment_type: AppointmentType, text: str) -> None:
    """A phrase suggested by a missed scenario becomes one of the type's caller phrases
    (`scheduling.catalog.add_phrase`: its checks, auditlog records the row)."""
    catalog.add_phrase(practice, appointment_type, text)


# --- API clients ------------------------------------------------------------------------------


def _client_event(action: AuditAction, client: ApiClient, **details: Any) -> None:
    audit.record(
        action,
        practice=client.practice_id,
        object_type="scheduling.ApiClient",
        object_ids=[client.pk],
        details={"name": client.name, "client_id": client.application.client_id, **details},
    )


@refused_in_support_session(SupportForbidden.CREDENTIALS)
def issue_api_client(
    practice: Practice, name: str, scopes: list[str], created_by: User | None
) -> tuple[ApiClient, str]:
    """A new client and its secret in plain text (never stored: show it once)."""
    with transaction.atomic():
        client, secret = scheduling_services.create_api_client(
            practice, name, scopes, created_by=created_by
        )
        _client_event(AuditAction.API_CLIENT_CREATED, client, scopes=list(client.scopes))
    return client, secret


@refused_in_support_session(SupportForbidden.CREDENTIALS)
def rotate_api_client(client: ApiClient) -> str:
    """A new secret for an active client; its outstanding tokens stop working at once."""
    if not client.is_active:
        raise ValueError("a revoked client cannot be given a new secret")
    with transaction.atomic():
        secret = scheduling_services.rotate_api_client_secret(client, drop_tokens=True)
        _client_event(AuditAction.API_CLIENT_SECRET_ROTATED, client)
    return secret


@refused_in_support_session(SupportForbidden.CREDENTIALS)
def revoke_api_client(client: ApiClient) -> None:
    """Stop a client for good (idempotent: revoking twice keeps the first time)."""
    if not client.is_active:
        return
    with transaction.atomic():
        scheduling_services.revoke_api_client(client)
        _client_event(AuditAction.API_CLIENT_REVOKED, client)
