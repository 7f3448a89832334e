"""EHR connections, their health figures, and the bookkeeping that makes webhooks safe.

* `EHRConnection`: one per location; how to reach its EHR (NexHealth or the sandbox), with the
  API key and webhook secret encrypted at rest (PHI-grade: they open the practice's records).
* `ConnectionHealth`: the dashboard's figures per connection (calls, first-try successes,
  failures by reason, errors by kind, latency percentiles, rate-limit waits, freshness lag,
  last sync, drift repaired by reconcile). Live
  counters accumulate in Redis on the hot path; `services.flush_health` persists them here.
* `WebhookDelivery`: every accepted webhook, unique per (connection, delivery id), so a
  duplicate is acknowledged and never processed twice. The payload is encrypted: appointment and
  patient events carry PHI.
* `EHRVersion`: the newest `updated_at` seen per EHR appointment (blocks included), and whether
  it is gone, so a late or reordered delivery never overwrites newer state or resurrects a
  cancelled appointment or a deleted block.
* `AppointmentTypeLink`: NexHealth appointment types belong to a location, ours to the practice;
  this maps our type to its EHR id at each connection (what a booking must post).
"""

from __future__ import annotations

import uuid

from django.db import models

from accounts.models import Location
from compliance.crypto import EncryptedJSONField, EncryptedTextField, PHIModel
from core.tenancy import TenantModel
from ehr.errors import RESET_REQUIRED, EHRCredentialsNeedReset, EHRRateLimited, EHRTransientError


class ConnectionKind(models.TextChoices):
    NEXHEALTH = "nexhealth", "NexHealth Synchronizer"
    SANDBOX = "sandbox", "EHR sandbox"
    NEXTECH = "nextech", "Nextech Select API"


class ConnectionStatus(models.TextChoices):
    NEW = "new", "New"
    CONNECTED = "connected", "Connected"
    ERROR = "error", "Error"
    DISABLED = "disabled", "Disabled"


class ConnectionState(models.TextChoices):
    """What the last test of a connection found, in the words the connection page and
    `manage.py test_connection` both use (`state_for` maps our errors onto them)."""

    CONNECTED = "connected", "connected"
    RESET_REQUIRED = "reset_required", RESET_REQUIRED
    REJECTED = "rejected", "credentials rejected"
    UNREACHABLE = "unreachable", "unreachable"
    RATE_LIMITED = "rate_limited", "rate limited"


def state_for(error: BaseException | None) -> ConnectionState:
    """The one mapping from what a connection test raised (nothing: it worked) to its state.
    A refusal that names the practice or location (unknown id, not found, invalid settings)
    is the connection's settings being rejected, like a wrong password."""
    if error is None:
        return ConnectionState.CONNECTED
    if isinstance(error, EHRCredentialsNeedReset):
        return ConnectionState.RESET_REQUIRED
    if isinstance(error, EHRRateLimited):
        return ConnectionState.RATE_LIMITED
    if isinstance(error, EHRTransientError):
        return ConnectionState.UNREACHABLE
    return ConnectionState.REJECTED


def new_rate_limit_key() -> str:
    return uuid.uuid4().hex


class EHRConnection(PHIModel):
    """How one location reaches its EHR. Working-hours mode lives on the Location."""

    location = models.OneToOneField(
        Location, on_delete=models.PROTECT, related_name="ehr_connection"
    )
    kind = models.CharField(max_length=16, choices=ConnectionKind.choices)
    base_url = models.CharField(max_length=300, help_text="e.g. https://nexhealth.info")
    subdomain = models.CharField(max_length=100)
    ehr_location_id = models.BigIntegerField(null=True, blank=True)
    api_key = EncryptedTextField()
    webhook_endpoint_id = models.BigIntegerField(null=True, blank=True)
    webhook_target_url = models.CharField(max_length=500, blank=True, default="")
    webhook_secret = EncryptedTextField(blank=True)
    status = models.CharField(
        max_length=16, choices=ConnectionStatus.choices, default=ConnectionStatus.NEW
    )
    status_detail = models.TextField(blank=True, default="")
    # What the last test found ("": never tested); the words of the page and the command.
    state = models.CharField(max_length=16, choices=ConnectionState.choices, blank=True)
    last_successful_sync_at = models.DateTimeField(null=True, blank=True)
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="Practice-specific overall limit (e.g. 100/min)"
    )
    rate_limits = models.JSONField(
        default=dict,
        blank=True,
        help_text='Bucket overrides: {"overall": {"limit": 10, "window_seconds": 1}}',
    )
    # Connections sharing an API key share one set of buckets (NexHealth limits per key).
    rate_limit_key = models.CharField(max_length=64, default=new_rate_limit_key)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        verbose_name = "EHR connection"

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.subdomain}/{self.ehr_location_id}"

    @property
    def state_label(self) -> str:
        """The last test's words; a connection not tested since states were kept reads as its
        status ("new", "connected", "error")."""
        return self.get_state_display() if self.state else self.get_status_display().lower()

    @property
    def health_key(self) -> str:
        """Redis namespace of this connection's live counters (unique per row, ever)."""
        return str(self.row_key)


class ConnectionHealth(TenantModel):
    """Persisted health figures for the dashboard (see `services.flush_health`)."""

    connection = models.OneToOneField(
        EHRConnection, on_delete=models.CASCADE, related_name="health"
    )
    calls = models.BigIntegerField(default=0)  # HTTP attempts (retries and refreshes included)
    errors = models.JSONField(default=dict, blank=True, help_text="count per error kind")
    requests = models.BigIntegerField(default=0)  # calls as the caller made them
    first_try_ok = models.BigIntegerField(default=0)  # of those, answered on the first attempt
    failures = models.JSONField(default=dict, blank=True, help_text="failed calls per reason")
    rate_limit_waits = models.BigIntegerField(default=0)
    rate_limit_wait_seconds = models.FloatField(default=0.0)
    throttled_429 = models.BigIntegerField(default=0)
    retries = models.BigIntegerField(default=0)
    latency_p50_ms = models.FloatField(null=True, blank=True)
    latency_p95_ms = models.FloatField(null=True, blank=True)
    latency_samples = models.IntegerField(default=0)
    webhooks_received = models.BigIntegerField(default=0)
    # From the EHR's change to our seeing it: webhook lag, or poll lag for a polled EHR.
    freshness_lag_p50_ms = models.FloatField(null=True, blank=True)
    freshness_lag_p95_ms = models.FloatField(null=True, blank=True)
    last_successful_sync_at = models.DateTimeField(null=True, blank=True)
    last_sync_report = models.JSONField(default=dict, blank=True)
    last_reconcile_at = models.DateTimeField(null=True, blank=True)
    last_drift = models.JSONField(default=dict, blank=True, help_text="rows fixed per kind")
    drift_total = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "connection health"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSED = "processed", "Processed"
    IGNORED = "ignored", "Ignored"
    FAILED = "failed", "Failed"


class WebhookDelivery(PHIModel):
    """One accepted webhook message. Unique per delivery id: duplicates are answered, not run."""

    connection = models.ForeignKey(
        EHRConnection, on_delete=models.CASCADE, related_name="deliveries"
    )
    delivery_id = models.CharField(max_length=100)
    event = models.CharField(max_length=64)
    event_name = models.CharField(max_length=100, blank=True, default="")
    resource_ehr_id = models.BigIntegerField(null=True, blank=True)
    ehr_created_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    payload = EncryptedJSONField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    processed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "delivery_id"], name="webhook_delivery_unique"
            ),
        ]
        indexes = [models.Index(fields=["status", "received_at"])]


class EHRVersion(TenantModel):
    """The newest state seen of one EHR record, for ordering out-of-order deliveries."""

    connection = models.ForeignKey(EHRConnection, on_delete=models.CASCADE, related_name="+")
    resource = models.CharField(max_length=32, default="appointment")
    ehr_id = models.BigIntegerField()
    updated_at = models.DateTimeField(null=True, blank=True)
    gone = models.BooleanField(default=False, help_text="cancelled, deleted or a removed block")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "resource", "ehr_id"], name="ehr_version_unique"
            ),
        ]


class AppointmentTypeLink(TenantModel):
    """Our appointment type's id in the EHR at one connection (types are per EHR location)."""

    connection = models.ForeignKey(
        EHRConnection, on_delete=models.CASCADE, related_name="type_links"
    )
    appointment_type = models.ForeignKey(
        "scheduling.AppointmentType", on_delete=models.CASCADE, related_name="ehr_links"
    )
    ehr_id = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["connection", "ehr_id"], name="type_link_ehr_unique"),
            models.UniqueConstraint(
                fields=["connection", "appointment_type"], name="type_link_type_unique"
            ),
        ]
