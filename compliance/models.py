"""Compliance data: PHI encryption keys, business associate agreements, the audit trail."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from auditlog.models import AbstractLogEntry, LogEntryManager
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections, models, router, transaction
from django.db.models import F, Func, Q, Value
from django.db.models.functions import Now
from django.db.models.lookups import Exact
from django.db.models.signals import post_save, pre_save
from django.utils import timezone

from core.statements import execute_prepared, insert_sql
from core.tenancy import TenantModel


class KeyPurpose(models.TextChoices):
    DATA = "data", "Data encryption"
    INDEX = "index", "Blind index"


WRAPPED_KEY_BYTES = 12 + 32 + 16  # nonce, key, GCM tag


def octet_length(column: str) -> Func:
    return Func(F(column), function="octet_length", output_field=models.IntegerField())


class PracticeDataKey(TenantModel):
    """A practice's key, stored only wrapped by the master key (see compliance.crypto).

    Data keys are versioned: the active version encrypts, every version decrypts (ciphertexts name
    theirs). The blind-index key has one version for the practice's lifetime: changing it would
    orphan every stored index.
    """

    purpose = models.CharField(max_length=8, choices=KeyPurpose.choices)
    version = models.PositiveIntegerField()
    wrapped_key = models.BinaryField()
    kek_id = models.CharField(
        max_length=16, help_text="Which master key wraps it (a fingerprint, not the key)"
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    rewrapped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["practice", "purpose", "version"], name="data_key_version_unique"
            ),
            models.UniqueConstraint(
                fields=["practice", "purpose"],
                condition=Q(active=True),
                name="data_key_one_active_per_purpose",
            ),
            models.CheckConstraint(condition=Q(version__gte=1), name="data_key_version_positive"),
            models.CheckConstraint(
                condition=Exact(octet_length("wrapped_key"), WRAPPED_KEY_BYTES),
                name="data_key_wrapped_length",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.purpose} key v{self.version} of practice {self.practice_id}"


class BAAStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SENT = "sent", "Sent for signature"
    EXECUTED = "executed", "Executed"
    TERMINATED = "terminated", "Terminated"
    EXPIRED = "expired", "Expired"


# Statuses of an agreement that was signed by both parties: its terms are frozen.
SIGNED_STATUSES = (BAAStatus.EXECUTED, BAAStatus.TERMINATED, BAAStatus.EXPIRED)
# What may still change on a signed agreement, and only executed -> terminated / expired.
SIGNED_MUTABLE_FIELDS = ("status", "terminated_at", "termination_reason", "updated_at")


class AgreementImmutable(Exception):
    """An executed agreement's terms cannot change; amend with a new version instead."""


class BusinessAssociateAgreement(TenantModel):
    """The HIPAA BAA between a practice and Hello, one row per version.

    Immutable once executed (this `save()` and a PostgreSQL trigger): the only change allowed
    afterwards is recording its end, executed -> terminated (with `terminated_at`) or -> expired.
    An amendment is a new version. Whether PHI may be processed is decided from the dates by
    `compliance.gate.phi_allowed`, so a missed expiry sweep never extends an agreement.
    `expires_on` is the last day in force (inclusive), in the practice's time zone.
    """

    version = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=BAAStatus.choices, default=BAAStatus.DRAFT)
    practice_signer_name = models.CharField(max_length=200, blank=True, default="")
    practice_signer_title = models.CharField(max_length=200, blank=True, default="")
    practice_signer_email = models.EmailField(blank=True, default="")
    hello_signer_name = models.CharField(max_length=200, blank=True, default="")
    hello_signer_title = models.CharField(max_length=200, blank=True, default="")
    executed_on = models.DateField(null=True, blank=True)
    effective_on = models.DateField(null=True, blank=True)
    expires_on = models.DateField(
        null=True, blank=True, help_text="Last day in force; empty means no fixed end"
    )
    terminated_at = models.DateTimeField(null=True, blank=True)
    termination_reason = models.TextField(blank=True, default="")
    signed_pdf = models.BinaryField(null=True, blank=True, editable=False)
    signed_pdf_sha256 = models.CharField(max_length=64, blank=True, default="", editable=False)
    source = models.CharField(
        max_length=16,
        choices=[("portal", "Signed through the portal"), ("config", "Practice configuration")],
        default="portal",
    )
    notes = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-version"]
        verbose_name = "business associate agreement"
        constraints = [
            models.UniqueConstraint(fields=["practice", "version"], name="baa_version_unique"),
            models.CheckConstraint(condition=Q(version__gte=1), name="baa_version_positive"),
            models.CheckConstraint(
                condition=~Q(status__in=SIGNED_STATUSES)
                | (
                    Q(executed_on__isnull=False, effective_on__isnull=False)
                    & ~Q(practice_signer_name="")
                ),
                name="baa_signed_has_dates_and_signer",
            ),
            models.CheckConstraint(
                condition=Q(expires_on__isnull=True)
                | Q(effective_on__isnull=True)
                | Q(expires_on__gte=F("effective_on")),
                name="baa_expires_after_effective",
            ),
            models.CheckConstraint(
                condition=Q(status=BAAStatus.TERMINATED, terminated_at__isnull=False)
                | (~Q(status=BAAStatus.TERMINATED) & Q(terminated_at__isnull=True)),
                name="baa_terminated_has_time",
            ),
            models.CheckConstraint(
                condition=Q(signed_pdf__isnull=True, signed_pdf_sha256="")
                | Q(
                    signed_pdf__isnull=False,
                    signed_pdf_sha256=Func(
                        Func(F("signed_pdf"), function="sha256"),
                        Value("hex"),
                        function="encode",
                        output_field=models.CharField(),
                    ),
                ),
                name="baa_pdf_digest_matches",
            ),
        ]

    def __str__(self) -> str:
        return f"BAA v{self.version} ({self.get_status_display()})"

    @property
    def is_signed(self) -> bool:
        return self.status in SIGNED_STATUSES

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding and self.pk is not None:
            stored = type(self).objects.filter(pk=self.pk).first()
            if stored is not None and stored.is_signed:
                self._check_signed_change(stored)
        super().save(*args, **kwargs)

    def _check_signed_change(self, stored: BusinessAssociateAgreement) -> None:
        frozen = [
            f.attname
            for f in self._meta.concrete_fields
            if f.attname not in SIGNED_MUTABLE_FIELDS
            and _comparable(getattr(self, f.attname)) != _comparable(getattr(stored, f.attname))
        ]
        ends = stored.status == BAAStatus.EXECUTED and self.status in (
            BAAStatus.TERMINATED,
            BAAStatus.EXPIRED,
        )
        if frozen or not ends:
            what = ", ".join(frozen) if frozen else f"status {stored.status} -> {self.status}"
            raise AgreementImmutable(
                f"{stored} is {stored.status}: {what} cannot change; amend with a new version"
            )

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        if self.is_signed:
            raise AgreementImmutable(f"{self} is {self.status} and is kept")
        return super().delete(*args, **kwargs)


def _comparable(value: Any) -> Any:
    return bytes(value) if isinstance(value, memoryview) else value


# --- audit trail -----------------------------------------------------------------------------


class AuditAction(models.TextChoices):
    PHI_READ = "phi.read", "PHI read"
    PHI_EXPORT = "phi.export", "PHI export"
    AUDIT_EXPORT = "audit.export", "Audit log export"
    AUDIT_EXPORT_FAILED = "audit.export_failed", "Audit log export failed"
    AUDIT_VERIFY = "audit.verify", "Audit chain verified"
    LOGIN = "login", "Signed in (password)"
    LOGIN_FAILED = "login_failed", "Failed sign-in"
    LOGOUT = "logout", "Signed out"
    TWO_FACTOR_ENROLLED = "2fa.enrolled", "Second factor enrolled"
    TWO_FACTOR_VERIFIED = "2fa.verified", "Second factor verified"
    TWO_FACTOR_FAILED = "2fa.failed", "Second factor failed"
    IMPERSONATION_START = "impersonation.start", "Support impersonation started"
    IMPERSONATION_END = "impersonation.end", "Support impersonation ended"
    API_TOKEN_ISSUED = "api_token.issued", "API token issued"
    API_CLIENT_CREATED = "api_client.created", "API client created"
    API_CLIENT_SECRET_ROTATED = "api_client.secret_rotated", "API client secret rotated"
    API_CLIENT_REVOKED = "api_client.revoked", "API client revoked"
    CONFIG_EXPORT = "config.export", "Configuration downloaded"
    CONFIG_IMPORT = "config.import", "Configuration uploaded"
    SCENARIOS_RUN = "golive.scenarios_run", "Go-live test scenarios run"
    PROTOCOL_APPROVED = "escalation.protocol_approved", "Escalation protocol approved"
    PROTOCOL_WITHDRAWN = "escalation.protocol_withdrawn", "Escalation protocol withdrawn"


class AuditAppendOnly(Exception):
    """Audit rows are written once and never changed or deleted (by the app or the database)."""


@dataclass
class InsertGuard:
    """A condition the next INSERT of a `model` row is made on (`INSERT ... SELECT ... WHERE`),
    evaluated by PostgreSQL in the same statement; `inserted` tells whether it held."""

    model: type[models.Model]
    condition: str
    params: list[Any]
    tried: bool = False
    inserted: bool = False


INSERT_GUARD: ContextVar[InsertGuard | None] = ContextVar("compliance_insert_guard", default=None)
_GUARDED_SQL: dict[str, str] = {}


def guarded_insert_sql(sql: str) -> str:
    """`INSERT ... VALUES (...)` as `INSERT ... SELECT ...`, so a WHERE can follow (PostgreSQL
    types the SELECT's parameters from the target columns, as it does VALUES')."""
    guarded = _GUARDED_SQL.get(sql)
    if guarded is None:
        head, _, values = sql.partition(") VALUES (")
        guarded = f"{head}) SELECT {values[:-1]}"
        _GUARDED_SQL[sql] = guarded
    return guarded


class AppendOnlyModel(models.Model):
    """An audit row: inserted once, sealed into its hash chain when the transaction commits
    (a deferred PostgreSQL trigger, see compliance.audit), never updated or deleted.

    Inserted without RETURNING (the id is drawn from the sequence first): row-level security
    lets any code append, but reading back is limited to the row's practice or cross-tenant.
    """

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AuditAppendOnly(f"{type(self).__name__} rows are append-only")
        from compliance.audit import allocate_id, stamp_context

        stamp_context(self)
        cls = type(self)
        if self.pk is None:
            self.pk = allocate_id(cls)
        if (
            not args
            and not cls._meta.parents
            and kwargs.keys() <= {"using", "force_insert"}
            and not pre_save.has_listeners(cls)
            and not post_save.has_listeners(cls)
        ):
            # All that Model.save() would do for a new row of a model without parents, with its
            # id known and nobody listening for its signals: the INSERT (on the request's path).
            using = kwargs.get("using") or router.db_for_write(cls, instance=self)
            with transaction.mark_for_rollback_on_error(using):
                self._do_insert(None, using, cls._meta.local_concrete_fields, None, False)
            self._state.adding = False
            self._state.db = using
            return
        kwargs["force_insert"] = True
        kwargs.pop("force_update", None)
        kwargs.pop("update_fields", None)
        super().save(*args, **kwargs)

    def _do_insert(
        self, manager: Any, using: Any, fields: Any, returning_fields: Any, raw: Any
    ) -> Any:
        """One INSERT from a statement text built once per model and column list (the ORM's
        compiler would rebuild it for every audit row, on the request's path), prepared on the
        server once per session."""
        conn = connections[using]
        sql = insert_sql(type(self), tuple(fields), conn)
        params = [
            f.get_db_prep_save(getattr(self, f.attname) if raw else f.pre_save(self, True), conn)
            for f in fields
        ]
        guard = INSERT_GUARD.get()
        if guard is not None and not isinstance(self, guard.model):
            guard = None
        if guard is not None:
            INSERT_GUARD.set(None)  # for this one row only
            sql = guarded_insert_sql(sql) + guard.condition
            params.extend(guard.params)
        inserted = execute_prepared(sql, params, using=using)
        if guard is not None:
            guard.tried, guard.inserted = True, inserted == 1
        return []

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise AuditAppendOnly(f"{type(self).__name__} rows are kept (retention)")


class AccessEvent(AppendOnlyModel):
    """What auditlog cannot see: PHI reads, exports, sign-ins, 2FA, impersonation, API tokens.

    `practice_id` is the tenant (NULL: a vendor-level event on the global chain). No foreign keys:
    an audit row outlives the user, client or practice it names. Write with
    `compliance.audit.record(...)`.
    """

    occurred_at = models.DateTimeField(default=timezone.now)
    practice_id = models.BigIntegerField(null=True, blank=True)
    action = models.CharField(max_length=48, choices=AuditAction.choices)
    actor_user_id = models.BigIntegerField(null=True, blank=True)
    actor_label = models.CharField(max_length=254, blank=True, default="")
    api_client_id = models.CharField(max_length=100, blank=True, default="")
    impersonation_session_id = models.BigIntegerField(null=True, blank=True)
    object_type = models.CharField(max_length=100, blank=True, default="")
    object_ids = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    request_id = models.CharField(max_length=64, blank=True, default="")
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True, default="")
    reason = models.TextField(blank=True, default="")
    details = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        # The audit browser pages newest first with a keyset on (occurred_at, id) inside one
        # practice: each filter it offers has an index ending in those columns, so every page
        # is one short index range scan however long the log (compliance.export.page).
        indexes = [
            models.Index(
                fields=["practice_id", "-occurred_at", "-id"], name="access_practice_time"
            ),
            models.Index(fields=["occurred_at", "id"], name="access_time"),
            models.Index(
                fields=["practice_id", "action", "occurred_at", "id"], name="access_action_time"
            ),
            models.Index(
                fields=["practice_id", "actor_user_id", "occurred_at", "id"],
                name="access_actor_time",
            ),
            models.Index(
                fields=["practice_id", "actor_label", "occurred_at", "id"],
                name="access_label_time",
            ),
            models.Index(
                fields=["practice_id", "api_client_id", "occurred_at", "id"],
                name="access_client_time",
            ),
            models.Index(
                fields=["practice_id", "object_type", "occurred_at", "id"],
                name="access_object_time",
            ),
            models.Index(fields=["request_id"], name="access_request"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(action__regex=r"^[a-z0-9_]+(\.[a-z0-9_]+)*$"),
                name="access_action_format",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_label or self.api_client_id or 'system'}"


class ChangeEntryManager(LogEntryManager):
    """auditlog's manager, which also records the tenant of the changed object."""

    def log_create(self, instance: models.Model, force_log: bool = False, **kwargs: Any) -> Any:
        kwargs.setdefault("practice_id", practice_of(instance))
        return super().log_create(instance, force_log=force_log, **kwargs)

    def log_m2m_changes(
        self, changed_queryset: Any, instance: models.Model, *args: Any, **kwargs: Any
    ) -> Any:
        kwargs.setdefault("practice_id", practice_of(instance))
        return super().log_m2m_changes(changed_queryset, instance, *args, **kwargs)


def practice_of(instance: models.Model) -> int | None:
    """The tenant an object belongs to: its practice, or itself if it is a practice."""
    if instance._meta.label == "portal.Practice":
        return int(instance.pk)
    return getattr(instance, "practice_id", None)


class ChangeEntry(AppendOnlyModel, AbstractLogEntry):  # noqa: DJ008 (auditlog has __str__)
    """django-auditlog's log entry (AUDITLOG_LOGENTRY_MODEL), with the tenant, the request id
    (auditlog's `cid`), the API client and the impersonation session, append-only and chained.
    """

    practice_id = models.BigIntegerField(null=True, blank=True)
    api_client_id = models.CharField(max_length=100, blank=True, default="")
    impersonation_session_id = models.BigIntegerField(null=True, blank=True)
    # The actor's id survives the actor: no database constraint, nothing cascades.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )

    objects = ChangeEntryManager()

    class Meta(AbstractLogEntry.Meta):
        verbose_name = "change entry"
        verbose_name_plural = "change entries"
        # As AccessEvent's: one index per audit-browser filter, ending in (timestamp, id).
        indexes = [
            models.Index(fields=["practice_id", "timestamp", "id"], name="change_practice_ts"),
            models.Index(
                fields=["practice_id", "action", "timestamp", "id"], name="change_action_ts"
            ),
            models.Index(
                fields=["practice_id", "actor_id", "timestamp", "id"], name="change_actor_ts"
            ),
            models.Index(
                fields=["practice_id", "actor_email", "timestamp", "id"], name="change_email_ts"
            ),
            models.Index(
                fields=["practice_id", "api_client_id", "timestamp", "id"],
                name="change_client_ts",
            ),
            models.Index(
                fields=["practice_id", "content_type_id", "timestamp", "id"],
                name="change_type_ts",
            ),
        ]


class AuditSeal(models.Model):
    """One per audit row, written at commit by the sealing trigger: the row's place in its chain.

    `hash` = SHA-256 over version | chain | seq | table | entry id | prev_hash (hex) | the row's
    canonical JSON (the sealed columns, as PostgreSQL's jsonb text in UTC). Chains: `practice:<id>`
    per practice, `global` for vendor-level events; a chain's head is its highest seq (index).
    No tenant data here, hence no row-level security: hashes and counters only.
    """

    chain = models.CharField(max_length=64)
    seq = models.BigIntegerField()
    entry_table = models.CharField(max_length=64)
    entry_id = models.BigIntegerField()
    prev_hash = models.BinaryField()
    hash = models.BinaryField()
    version = models.CharField(max_length=8)
    sealed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["chain", "seq"], name="audit_seal_seq_unique"),
            models.UniqueConstraint(fields=["chain", "prev_hash"], name="audit_seal_no_fork"),
            models.UniqueConstraint(
                fields=["entry_table", "entry_id"], name="audit_seal_entry_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.chain}#{self.seq}"


class SealQueue(models.Model):
    """Audit rows written but not yet sealed, in the order they were written: filled by the
    entry tables' triggers (the row's chain and canonical payload, at INSERT), drained by the
    sealer (`compliance.sealer`), which alone may delete from it. Not append-only: a work
    queue; an entry that is neither sealed nor queued is what `verify_audit` reports."""

    chain = models.CharField(max_length=64)
    entry_table = models.CharField(max_length=64)
    entry_id = models.BigIntegerField()
    version = models.CharField(max_length=8)
    payload = models.TextField()
    queued_at = models.DateTimeField(db_default=Now())

    class Meta:
        indexes = [models.Index(fields=["entry_table", "entry_id"], name="sealqueue_entry")]

    def __str__(self) -> str:
        return f"{self.entry_table} #{self.entry_id} awaiting its seal in {self.chain}"


class AuditSigningKey(models.Model):
    """A public key that signed audit checkpoints (compliance.checkpoints): kept for good, so
    checkpoints signed before a rotation still verify. Append-only."""

    key_id = models.CharField(max_length=16, unique=True, help_text="SHA-256 of the key, hex")
    public_key = models.BinaryField(help_text="Ed25519, raw 32 bytes")
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"audit signing key {self.key_id}"


class AuditCheckpoint(models.Model):
    """The chain heads after a sealed batch, the entries sealed so far and the time, as the
    canonical JSON `body` that `signature` (Ed25519, hex) signs. Append-only."""

    created_at = models.DateTimeField(db_index=True)
    body = models.TextField()
    signature = models.CharField(max_length=128)
    key_id = models.CharField(max_length=16)

    def __str__(self) -> str:
        return f"audit checkpoint {self.pk}"


# --- support impersonation -------------------------------------------------------------------

IMPERSONATION_MAX_MINUTES = 60


class SupportAccess(TenantModel):
    """A practice's say on support impersonation: read-only unless it allows writes."""

    allow_write = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["practice"], name="support_access_one_per_practice")
        ]

    def __str__(self) -> str:
        return f"support access for practice {self.practice_id}"


class ImpersonationSession(TenantModel):
    """Hello support acting inside one practice (not as a person): time-boxed, with a reason and
    a ticket; read-only unless the practice allowed writes when it started. Every request and
    audit row during it names the real support user and this session."""

    support_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.TextField()
    ticket = models.CharField(max_length=100)
    write_allowed = models.BooleanField(default=False)
    started_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=32, blank=True, default="")

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(expires_at__gt=F("started_at"))
                & Q(expires_at__lte=F("started_at") + timedelta(minutes=IMPERSONATION_MAX_MINUTES)),
                name="impersonation_at_most_an_hour",
            ),
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True) | Q(ended_at__gte=F("started_at")),
                name="impersonation_ends_after_start",
            ),
            models.CheckConstraint(condition=~Q(reason=""), name="impersonation_has_reason"),
            models.CheckConstraint(condition=~Q(ticket=""), name="impersonation_has_ticket"),
        ]

    def __str__(self) -> str:
        return f"support session {self.pk} in practice {self.practice_id}"

    def is_active(self, now: datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.ended_at is None and now < self.expires_at
