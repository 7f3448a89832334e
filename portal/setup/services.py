"""Writes behind the set-up pages: test scenarios and their runs, API clients with their audit
events, and the configuration upload. Every function takes the practice explicitly and runs
inside its tenant context (the request's), so row-level security stays the second wall."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from accounts.models import Practice, User
from compliance import audit
from compliance.gate import BAARequired
from compliance.models import AuditAction
from compliance.support_policy import SupportForbidden, refused_in_support_session
from core.tenancy import tenant_context
from onboarding.importer import Progress
from onboarding.limits import BACKGROUND_ABOVE_ENTRIES
from onboarding.services import (
    ConfigError,
    ImportResult,
    PracticeConfig,
    apply_config,
    config_entries,
    ehr_gate_errors,
    format_of,
    parse_config,
    parse_text,
    validate_config,
)
from scheduling import catalog
from scheduling import services as scheduling_services
from scheduling.intents import resolve_intent
from scheduling.models import (
    ApiClient,
    AppointmentType,
    ConfigImport,
    ConfigImportStatus,
    TestScenario,
)

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


# --- configuration ----------------------------------------------------------------------------


@dataclass
class UploadOutcome:
    """An upload either has `errors` (nothing changed) or a `result`, with `warnings` about
    the EHR set-up that follows a successful import."""

    errors: list[str] = field(default_factory=list)
    result: ImportResult | None = None
    warnings: list[str] = field(default_factory=list)
    job: ConfigImport | None = None  # queued for a worker instead


@refused_in_support_session(SupportForbidden.EXPORT)
def record_export(practice: Practice) -> None:
    audit.record(
        AuditAction.CONFIG_EXPORT,
        practice=practice,
        object_type="portal.Practice",
        object_ids=[practice.pk],
    )


def _scope_errors(practice: Practice, data: Any, may_import_baa: bool) -> list[str]:
    """What the portal refuses on top of the file's own validation: a file for another practice
    (an upload never reaches beyond the practice in the URL), and a BAA from someone who is
    not a compliance officer (a BAA opens the PHI gate; that is their decision)."""
    if not isinstance(data, dict):
        return []
    errors = []
    section = data.get("practice")
    slug = section.get("slug") if isinstance(section, dict) else None
    if isinstance(slug, str) and slug != practice.slug:
        errors.append(
            f'practice.slug: this file is for "{slug}"; only a file for "{practice.slug}" '
            "can be uploaded here"
        )
    if data.get("baa") not in (None, {}) and not may_import_baa:
        errors.append(
            "baa: only a compliance officer may import a business associate agreement; remove "
            "the section or ask your compliance officer to upload the file"
        )
    return errors


def _set_up_ehr(practice: Practice, data: Any, result: ImportResult) -> list[str]:
    """After the import committed: write the file into the EHR sandbox and sync it back (never
    inside the import's transaction). Idempotent, so a failure is repaired by a re-upload."""
    from ehr.errors import EHRError
    from onboarding.provisioning import provision_sandbox

    try:
        report = provision_sandbox(practice, data)
    except BAARequired:
        return [
            "The configuration was imported, but the EHR was not set up: no executed BAA is in "
            "force. Upload the file again once it is."
        ]
    except (EHRError, httpx.HTTPError, OSError) as exc:
        log.warning("EHR set-up after a configuration upload failed: %s", type(exc).__name__)
        return [
            f"The configuration was imported, but setting up the EHR failed "
            f"({type(exc).__name__}). Uploading the same file again retries it."
        ]
    result.notes.extend(f"ehr {line.strip()}" for line in report.summary())
    return []


def _checked(
    practice: Practice, data: Any, may_import_baa: bool
) -> tuple[PracticeConfig | None, list[str]]:
    """The file's configuration, or every reason the portal refuses it (nothing is written)."""
    errors = _scope_errors(practice, data, may_import_baa) + validate_config(data)
    if errors:
        return None, errors
    config = parse_config(data)
    errors = ehr_gate_errors(config)
    return (None, errors) if errors else (config, [])


@refused_in_support_session(SupportForbidden.CONFIG_IMPORT)
def upload_config(
    practice: Practice,
    text: str,
    filename: str,
    *,
    may_import_baa: bool,
    actor: User | None = None,
) -> UploadOutcome:
    """Validate an uploaded configuration as a whole, then import it (idempotent). With an
    `ehr.kind = "sandbox"` section the import goes on to set the EHR up; that part needs a BAA
    in force (checked up front, as for `manage.py import_practice`) and is repaired by
    uploading the same file again if it fails. A large file is validated here and imported by
    a worker (`UploadOutcome.job`): writing thousands of rows does not belong in a request."""
    try:
        data = parse_text(text, format_of(filename), name=filename)
    except ConfigError as exc:
        return UploadOutcome(errors=list(exc.errors))
    config, errors = _checked(practice, data, may_import_baa)
    if config is None:
        return UploadOutcome(errors=errors)
    if config_entries(config) > background_above_entries():
        return UploadOutcome(
            job=_queue_import(practice, data, config, filename, may_import_baa, actor)
        )
    return _import(practice, data, config, filename, actor)


def background_above_entries() -> int:
    return int(getattr(settings, "CONFIG_IMPORT_BACKGROUND_ABOVE", BACKGROUND_ABOVE_ENTRIES))


def _queue_import(
    practice: Practice,
    data: Any,
    config: PracticeConfig,
    filename: str,
    may_import_baa: bool,
    actor: User | None,
) -> ConfigImport:
    from booking.tasks import run_config_import

    job = ConfigImport.objects.create(
        practice=practice,
        created_by=actor,
        filename=filename[:200],
        may_import_baa=may_import_baa,
        document=data,
        entries_total=config_entries(config),
    )
    queue = getattr(settings, "CONFIG_IMPORT_QUEUE", settings.CELERY_TASK_DEFAULT_QUEUE)
    transaction.on_commit(
        lambda: run_config_import.apply_async(args=(job.pk, practice.pk), queue=queue)
    )
    return job


def _import(
    practice: Practice,
    data: Any,
    config: PracticeConfig,
    filename: str,
    actor: User | None,
    progress: Progress | None = None,
) -> UploadOutcome:
    try:
        # import_config's two steps, taken apart so that the audit entry commits with the
        # import, and a failed EHR set-up afterwards still reports what the import changed.
        with transaction.atomic():
            result = apply_config(config, actor=actor, progress=progress)
            audit.record(
                AuditAction.CONFIG_IMPORT,
                practice=practice,
                actor=actor,
                object_type="portal.Practice",
                object_ids=[practice.pk],
                details={
                    "file": filename[:200],
                    "changes": result.changes,
                    "sections": {
                        name: [c.created, c.updated, c.deleted]
                        for name, c in result.sections.items()
                        if c.total
                    },
                },
            )
    except ConfigError as exc:
        return UploadOutcome(errors=list(exc.errors))
    outcome = UploadOutcome(result=result)
    if config.ehr_kind == "sandbox":
        outcome.warnings.extend(_set_up_ehr(practice, data, result))
    return outcome


def progress_key(job_id: int) -> str:
    return f"config-import:{job_id}:done"


def run_config_import(job_id: int, practice_id: int) -> str:
    """The worker's half of a background upload. Idempotent: a finished import is not run
    again, and one interrupted mid-way (a worker lost) is run again from the start, which the
    importer's own idempotency makes safe (its transaction was rolled back)."""
    with tenant_context(practice_id):
        with transaction.atomic():
            job = (
                ConfigImport.objects.select_for_update()
                .filter(pk=job_id, practice_id=practice_id)
                .first()
            )
            if job is None or job.finished or job.document is None:
                return "nothing to do"
            job.status = ConfigImportStatus.RUNNING
            job.started_at = timezone.now()
            job.save(update_fields=["status", "started_at"])
        practice = Practice.objects.get(pk=practice_id)
        data = job.document
        key = progress_key(job.pk)
        step = max(1, job.entries_total // 100)
        last = [0]

        def progress(done: int) -> None:
            # Inside the import's transaction: the row would show nothing until the end.
            if done - last[0] >= step:
                last[0] = done
                cache.set(key, done, timeout=24 * 3600)

        # Checked again: the practice (or its BAA) may have changed since the upload.
        config, errors = _checked(practice, data, job.may_import_baa)
        if config is None:
            outcome = UploadOutcome(errors=errors)
        else:
            outcome = _import(practice, data, config, job.filename, job.created_by, progress)
        result = outcome.result
        job.status = ConfigImportStatus.FAILED if outcome.errors else ConfigImportStatus.SUCCEEDED
        job.entries_done = 0 if outcome.errors else job.entries_total
        job.changes = result.changes if result is not None else 0
        job.outcome = {
            "errors": outcome.errors,
            "sections": {
                name: [c.created, c.updated, c.deleted]
                for name, c in (result.sections.items() if result is not None else ())
                if c.total
            },
            "notes": list(result.notes) if result is not None else [],
            "warnings": outcome.warnings,
        }
        job.document = None  # it may name patients: not kept once imported
        job.finished_at = timezone.now()
        job.save()
        cache.delete(key)
    return str(job.status)


def config_import_progress(job: ConfigImport) -> int:
    """Entries written so far (live while running, from the worker's progress reports)."""
    if job.finished or job.status == ConfigImportStatus.QUEUED:
        return int(job.entries_done)
    return min(int(cache.get(progress_key(job.pk)) or 0), int(job.entries_total))
