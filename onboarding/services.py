"""The configuration file's one entry point: validate, import, export.

Every way a configuration file reaches the database goes through `import_document`:
`manage.py import_practice`, the set-up page's upload (and the worker that imports a large one,
`run_config_import`) and the demo loader. It checks the file as a whole, writes it in one
transaction (with the upload's audit entry), and only after that transaction has committed sets
up the EHR a `ehr.kind = "sandbox"` or `"nextech"` file asks for: HTTP calls never run inside a
transaction, and provisioning is idempotent, so a failed set-up is repaired by importing the same
file again.
`import_config` is the same path for code that wants an exception instead of an outcome.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
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
from onboarding.exporter import export_config
from onboarding.files import dump_text, format_of, load_file, parse_text
from onboarding.importer import (
    Counts,
    ImportResult,
    Progress,
    apply_config,
    config_entries,
    ehr_gate_errors,
)
from onboarding.limits import BACKGROUND_ABOVE_ENTRIES
from onboarding.schema import ConfigError, PracticeConfig, parse_config, validate_config
from scheduling.models import ConfigImport, ConfigImportStatus

log = logging.getLogger("onboarding")

__all__ = [
    "ConfigError",
    "Counts",
    "EHRSetupFailed",
    "ImportOutcome",
    "ImportResult",
    "PracticeConfig",
    "apply_config",
    "checked_config",
    "config_entries",
    "config_import_progress",
    "confirm_config",
    "discard_config",
    "dump_text",
    "ehr_gate_errors",
    "export_config",
    "format_of",
    "import_config",
    "import_document",
    "load_file",
    "parse_config",
    "parse_text",
    "preview_config",
    "record_export",
    "run_config_import",
    "upload_config",
    "validate_config",
]


@dataclass
class ImportOutcome:
    """An import either has `errors` (nothing changed) or a `result`, with `warnings` about the
    EHR set-up that follows a successful import; an upload may instead be a queued `job`."""

    errors: list[str] = field(default_factory=list)
    result: ImportResult | None = None
    warnings: list[str] = field(default_factory=list)
    job: ConfigImport | None = None


class EHRSetupFailed(Exception):
    """The configuration was imported (and committed) but the EHR set-up after it failed."""

    def __init__(self, result: ImportResult, warnings: list[str]) -> None:
        super().__init__("; ".join(warnings))
        self.result = result
        self.warnings = warnings


# --- checking and importing -------------------------------------------------------------------


def _scope_errors(practice: Practice, data: Any, may_import_baa: bool) -> list[str]:
    """What an upload is refused on top of the file's own validation: a file for another
    practice (an upload never reaches beyond the practice in the URL), and a BAA from someone
    who is not a compliance officer (a BAA opens the PHI gate; that is their decision)."""
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


def checked_config(
    data: Any, *, practice: Practice | None = None, may_import_baa: bool = True
) -> tuple[PracticeConfig | None, list[str]]:
    """The file's configuration, or every reason it is refused (nothing is written). With a
    `practice` the file must be that practice's (an upload); `may_import_baa` says whether the
    one importing it may bring a BAA."""
    errors = _scope_errors(practice, data, may_import_baa) if practice is not None else []
    errors += validate_config(data)
    if errors:
        return None, errors
    config = parse_config(data)
    errors = ehr_gate_errors(config)
    return (None, errors) if errors else (config, [])


def _set_up_ehr(
    practice: Practice, data: Any, config: PracticeConfig, result: ImportResult
) -> list[str]:
    """After the import committed: write the file into the EHR sandbox (NexHealth-shaped, or
    Nextech's set-up) and sync it back (never inside the import's transaction). Idempotent, so
    a failure is repaired by a re-import."""
    from ehr.errors import EHRError
    from onboarding.nextech_provisioning import provision_nextech
    from onboarding.provisioning import provision_sandbox

    try:
        if config.ehr_kind == "nextech":
            report = provision_nextech(practice, config)
        else:
            report = provision_sandbox(practice, data)
    except BAARequired:
        return [
            "The configuration was imported, but the EHR was not set up: no executed BAA is in "
            "force. Upload the file again once it is."
        ]
    except (EHRError, httpx.HTTPError, OSError) as exc:
        log.warning("EHR set-up after a configuration import failed: %s", type(exc).__name__)
        return [
            f"The configuration was imported, but setting up the EHR failed "
            f"({type(exc).__name__}). Uploading the same file again, or importing it again, "
            "retries it."
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


def _apply_checked(
    data: Any,
    config: PracticeConfig,
    *,
    actor: User | None,
    filename: str | None,
    progress: Progress | None = None,
) -> ImportOutcome:
    sets_up_ehr = config.ehr_kind in ("sandbox", "nextech")
    try:
        # The audit entry commits with the import, and a failed EHR set-up afterwards still
        # reports what the import changed. Durable when the EHR is set up next: the import must
        # have committed before any HTTP call, so a caller's own transaction is refused here
        # (RuntimeError) instead of holding its locks across the EHR's answers.
        with transaction.atomic(durable=sets_up_ehr):
            result = apply_config(config, actor=actor, progress=progress)
            if filename is not None:
                audit.record(
                    AuditAction.CONFIG_IMPORT,
                    practice=result.practice_id,
                    actor=actor,
                    object_type="portal.Practice",
                    object_ids=[result.practice_id],
                    details={
                        "file": filename[:200],
                        "changes": result.changes,
                        "sections": _sections(result),
                    },
                )
    except ConfigError as exc:
        return ImportOutcome(errors=list(exc.errors))
    outcome = ImportOutcome(result=result)
    if sets_up_ehr:
        practice = Practice.objects.get(pk=result.practice_id)
        outcome.warnings.extend(_set_up_ehr(practice, data, config, result))
    return outcome


def import_document(
    data: Any,
    *,
    practice: Practice | None = None,
    may_import_baa: bool = True,
    actor: User | None = None,
    filename: str | None = None,
) -> ImportOutcome:
    """Check the whole document, write it in one transaction, then set the EHR up (after the
    commit: a file that sets the EHR up refuses to be imported inside a transaction of yours).
    An upload passes the `practice` it is for and its `filename`, under which the import is
    audited; a command's import is the operator's (no actor, no audit entry: the shell that ran
    it is the record)."""
    config, errors = checked_config(data, practice=practice, may_import_baa=may_import_baa)
    if config is None:
        return ImportOutcome(errors=errors)
    return _apply_checked(data, config, actor=actor, filename=filename)


def import_config(data: Any, *, actor: User | None = None) -> ImportResult:
    """`import_document` for code that wants the result or an exception: ConfigError (every
    problem, with its path; nothing was written) or EHRSetupFailed (imported, but the EHR set-up
    after it failed)."""
    outcome = import_document(data, actor=actor)
    if outcome.errors:
        raise ConfigError(outcome.errors)
    assert outcome.result is not None
    if outcome.warnings:
        raise EHRSetupFailed(outcome.result, outcome.warnings)
    return outcome.result


def _sections(result: ImportResult) -> dict[str, list[int]]:
    return {
        name: [c.created, c.updated, c.deleted] for name, c in result.sections.items() if c.total
    }


# --- the set-up page's upload and export ------------------------------------------------------


@refused_in_support_session(SupportForbidden.EXPORT)
def record_export(practice: Practice) -> None:
    audit.record(
        AuditAction.CONFIG_EXPORT,
        practice=practice,
        object_type="portal.Practice",
        object_ids=[practice.pk],
    )


def background_above_entries() -> int:
    return int(getattr(settings, "CONFIG_IMPORT_BACKGROUND_ABOVE", BACKGROUND_ABOVE_ENTRIES))


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
    config, errors = checked_config(data, practice=practice, may_import_baa=may_import_baa)
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
def confirm_config(job: ConfigImport, actor: User | None = None) -> ImportOutcome:
    """Apply a previewed file (checked again: the practice may have changed since), here or,
    for a large file, by a worker. A preview is applied once: a second confirmation (a double
    click, a re-sent form) finds it no longer waiting and does nothing."""
    with transaction.atomic():
        job = ConfigImport.objects.select_for_update().get(pk=job.pk)
        if job.status != ConfigImportStatus.PREVIEW or job.document is None:
            return ImportOutcome(job=job)
        practice = Practice.objects.get(pk=job.practice_id)
        data = job.document
        config, errors = checked_config(data, practice=practice, may_import_baa=job.may_import_baa)
        if config is None:
            _finish(job, ImportOutcome(errors=errors))
            return ImportOutcome(errors=errors)
        if job.entries_total > background_above_entries():
            job.status = ConfigImportStatus.QUEUED
            job.save(update_fields=["status"])
            _run_later(job)
            return ImportOutcome(job=job)
        job.status = ConfigImportStatus.RUNNING
        job.started_at = timezone.now()
        job.save(update_fields=["status", "started_at"])
    outcome = _apply_checked(data, config, actor=actor or job.created_by, filename=job.filename)
    _finish(job, outcome)
    return outcome


def discard_config(job: ConfigImport) -> None:
    """Forget a previewed file (its document is dropped: it may name patients)."""
    ConfigImport.objects.filter(pk=job.pk, status=ConfigImportStatus.PREVIEW).update(
        status=ConfigImportStatus.DISCARDED, document=None, finished_at=timezone.now()
    )


def _finish(job: ConfigImport, outcome: ImportOutcome) -> None:
    result = outcome.result
    job.status = ConfigImportStatus.FAILED if outcome.errors else ConfigImportStatus.SUCCEEDED
    job.entries_done = 0 if outcome.errors else job.entries_total
    job.changes = result.changes if result is not None else 0
    job.outcome = {
        "errors": outcome.errors,
        "sections": _sections(result) if result is not None else {},
        "notes": list(result.notes) if result is not None else [],
        "warnings": outcome.warnings,
    }
    job.document = None  # it may name patients: not kept once imported
    job.finished_at = timezone.now()
    job.save()


def _run_later(job: ConfigImport) -> None:
    from onboarding.tasks import run_config_import as task

    queue = getattr(settings, "CONFIG_IMPORT_QUEUE", settings.CELERY_TASK_DEFAULT_QUEUE)
    job_id, practice_id = job.pk, job.practice_id
    transaction.on_commit(lambda: task.apply_async(args=(job_id, practice_id), queue=queue))


@refused_in_support_session(SupportForbidden.CONFIG_IMPORT)
def upload_config(
    practice: Practice,
    text: str,
    filename: str,
    *,
    may_import_baa: bool,
    actor: User | None = None,
) -> ImportOutcome:
    """Validate an uploaded configuration as a whole, then import it (idempotent). With an
    `ehr.kind = "sandbox"` section the import goes on to set the EHR up; that part needs a BAA
    in force (checked up front, as for `manage.py import_practice`) and is repaired by
    uploading the same file again if it fails. A large file is validated here and imported by
    a worker (`ImportOutcome.job`): writing thousands of rows does not belong in a request."""
    try:
        data = parse_text(text, format_of(filename), name=filename)
    except ConfigError as exc:
        return ImportOutcome(errors=list(exc.errors))
    config, errors = checked_config(data, practice=practice, may_import_baa=may_import_baa)
    if config is None:
        return ImportOutcome(errors=errors)
    if config_entries(config) > background_above_entries():
        return ImportOutcome(
            job=_queue_import(practice, data, config, filename, may_import_baa, actor)
        )
    return _apply_checked(data, config, actor=actor, filename=filename)


def _queue_import(
    practice: Practice,
    data: Any,
    config: PracticeConfig,
    filename: str,
    may_import_baa: bool,
    actor: User | None,
) -> ConfigImport:
    from onboarding.tasks import run_config_import as task

    job = ConfigImport.objects.create(
        practice=practice,
        created_by=actor,
        filename=filename[:200],
        may_import_baa=may_import_baa,
        document=data,
        entries_total=config_entries(config),
    )
    queue = getattr(settings, "CONFIG_IMPORT_QUEUE", settings.CELERY_TASK_DEFAULT_QUEUE)
    transaction.on_commit(lambda: task.apply_async(args=(job.pk, practice.pk), queue=queue))
    return job


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
            if job.status == ConfigImportStatus.PREVIEW:
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
        config, errors = checked_config(data, practice=practice, may_import_baa=job.may_import_baa)
        if config is None:
            outcome = ImportOutcome(errors=errors)
        else:
            outcome = _apply_checked(
                data, config, actor=job.created_by, filename=job.filename, progress=progress
            )
        _finish(job, outcome)
        cache.delete(key)
    return str(job.status)


def config_import_progress(job: ConfigImport) -> int:
    """Entries written so far (live while running, from the worker's progress reports)."""
    if job.finished or job.status == ConfigImportStatus.QUEUED:
        return int(job.entries_done)
    return min(int(cache.get(progress_key(job.pk)) or 0), int(job.entries_total))
