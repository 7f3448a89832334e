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

from compliance import audit
from compliance.gate import BAARequired
from compliance.models import AuditAction
from compliance.support_policy import SupportForbidden, refused_in_support_session
from portal.models import Practice, User
from portal.tenancy import tenant_context
from scheduling import services as scheduling_services
from scheduling.config import (
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
from scheduling.config.importer import Progress
from scheduling.config.limits import BACKGROUND_ABOVE_ENTRIES
from scheduling.intents import resolve_intent
from scheduling.models import ApiClient, ConfigImport, ConfigImportStatus, TestScenario

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
    from integrations.errors import EHRError
    from integrations.provisioning import provision_sandbox

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
    _count_ehr_sync(result, report)
    return []


def _count_ehr_sync(result: ImportResult, report: Any) -> None:
    """The sync mirrors the EHR back: rows it created or deleted here (the file's blocks and
    appointments, written into the EHR) are changes of this upload and counted with it; its
    updates only link the imported rows to their EHR records. Said in words, per kind."""
    linked = 0
    for kind, (created, updated, deleted) in sorted(report.sync_counts.items()):
        counts = result.sections.get(kind)
        if counts is None:
            continue
        counts.created += created
        counts.deleted += deleted
        linked += updated
    written = report.written()
    result.notes.append(
        f"EHR: {written} in the EHR." if written else "EHR: already up to date with the file."
    )
    if linked:
        result.notes.append(f"EHR: {linked} row(s) here linked to their EHR records by the sync.")


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


class _DryRun(Exception):
    """Raised inside the preview's transaction to roll the import back, carrying its result."""

    def __init__(self, result: ImportResult) -> None:
        super().__init__("preview")
        self.result = result


@dataclass
class Preview:
    """What an uploaded file would change, computed by running the import and rolling it back
    (so it is exactly what applying it does), kept with the file until confirmed or discarded.
    `result` is None for a large file: its import runs on a worker once confirmed."""

    job: ConfigImport | None = None
    result: ImportResult | None = None
    errors: list[str] = field(default_factory=list)
    entries: int = 0


@refused_in_support_session(SupportForbidden.CONFIG_IMPORT)
def preview_config(
    practice: Practice,
    text: str,
    filename: str,
    *,
    may_import_baa: bool,
    actor: User | None = None,
) -> Preview:
    """Validate an uploaded file and show what it would change, without changing anything:
    the import runs inside a transaction that is rolled back (its audit rows and queued tasks
    with it). The file is kept, encrypted, on a `ConfigImport` waiting for confirmation."""
    try:
        data = parse_text(text, format_of(filename), name=filename)
    except ConfigError as exc:
        return Preview(errors=list(exc.errors))
    config, errors = _checked(practice, data, may_import_baa)
    if config is None:
        return Preview(errors=errors)
    entries = config_entries(config)
    result = None
    if entries <= background_above_entries():
        try:
            with transaction.atomic():
                raise _DryRun(apply_config(config, actor=actor))
        except _DryRun as dry:
            result = dry.result
        except ConfigError as exc:
            return Preview(errors=list(exc.errors))
    job = ConfigImport.objects.create(
        practice=practice,
        created_by=actor,
        filename=filename[:200],
        may_import_baa=may_import_baa,
        document=data,
        entries_total=entries,
        status=ConfigImportStatus.PREVIEW,
    )
    return Preview(job=job, result=result, entries=entries)


@refused_in_support_session(SupportForbidden.CONFIG_IMPORT)
def confirm_config(job: ConfigImport, actor: User | None = None) -> UploadOutcome:
    """Apply a previewed file (checked again: the practice may have changed since), here or,
    for a large file, by a worker. A preview is applied once: a second confirmation (a double
    click, a re-sent form) finds it no longer waiting and does nothing."""
    with transaction.atomic():
        job = ConfigImport.objects.select_for_update().get(pk=job.pk)
        if job.status != ConfigImportStatus.PREVIEW or job.document is None:
            return UploadOutcome(job=job)
        practice = Practice.objects.get(pk=job.practice_id)
        data = job.document
        config, errors = _checked(practice, data, job.may_import_baa)
        if config is None:
            job.status = ConfigImportStatus.FAILED
            job.outcome = {"errors": errors, "sections": {}, "notes": [], "warnings": []}
            job.document = None
            job.finished_at = timezone.now()
            job.save()
            return UploadOutcome(errors=errors)
        if job.entries_total > background_above_entries():
            job.status = ConfigImportStatus.QUEUED
            job.save(update_fields=["status"])
            _run_later(job)
            return UploadOutcome(job=job)
        job.status = ConfigImportStatus.RUNNING
        job.started_at = timezone.now()
        job.save(update_fields=["status", "started_at"])
    outcome = _import(practice, data, config, job.filename, actor or job.created_by)
    _finish(job, outcome)
    return outcome


def discard_config(job: ConfigImport) -> None:
    """Forget a previewed file (its document is dropped: it may name patients)."""
    ConfigImport.objects.filter(pk=job.pk, status=ConfigImportStatus.PREVIEW).update(
        status=ConfigImportStatus.DISCARDED, document=None, finished_at=timezone.now()
    )


def _finish(job: ConfigImport, outcome: UploadOutcome) -> None:
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
    job = ConfigImport.objects.create(
        practice=practice,
        created_by=actor,
        filename=filename[:200],
        may_import_baa=may_import_baa,
        document=data,
        entries_total=config_entries(config),
    )
    _run_later(job)
    return job


def _run_later(job: ConfigImport) -> None:
    from scheduling.tasks import run_config_import

    queue = getattr(settings, "CONFIG_IMPORT_QUEUE", settings.CELERY_TASK_DEFAULT_QUEUE)
    job_id, practice_id = job.pk, job.practice_id
    transaction.on_commit(
        lambda: run_config_import.apply_async(args=(job_id, practice_id), queue=queue)
    )


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
            if job.status in (ConfigImportStatus.PREVIEW, ConfigImportStatus.DISCARDED):
                return "not confirmed"  # only a confirmed upload is imported
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
        _finish(job, outcome)
        cache.delete(key)
    return str(job.status)


def config_import_progress(job: ConfigImport) -> int:
    """Entries written so far (live while running, from the worker's progress reports)."""
    if job.finished or job.status == ConfigImportStatus.QUEUED:
        return int(job.entries_done)
    return min(int(cache.get(progress_key(job.pk)) or 0), int(job.entries_total))
