"""Escalation protocols (versioned), the on-call rota and screening decisions."""

import uuid

import django.contrib.postgres.constraints
import django.contrib.postgres.fields
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import compliance.crypto
from core.tenancy import EnableRowLevelSecurity


class Migration(migrations.Migration):
    dependencies = [
        ("calls", "0001_calls"),
        ("portal", "0003_username_ci_unique"),
        ("scheduling", "0003_bookings"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="EscalationProtocol",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("key", models.SlugField(max_length=64)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "practice",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="portal.practice",
                    ),
                ),
            ],
            options={
                "ordering": ["key"],
            },
        ),
        migrations.CreateModel(
            name="OnCallShift",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("start", models.DateTimeField()),
                ("end", models.DateTimeField()),
                ("note", models.CharField(blank=True, default="", max_length=200)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "practice",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="portal.practice",
                    ),
                ),
                (
                    "provider",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="on_call_shifts",
                        to="scheduling.provider",
                    ),
                ),
            ],
            options={
                "ordering": ["start", "id"],
            },
        ),
        migrations.CreateModel(
            name="ProtocolVersion",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("number", models.PositiveIntegerField()),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("draft", "Draft"),
                            ("live", "Live"),
                            ("superseded", "Superseded"),
                            ("withdrawn", "Withdrawn"),
                        ],
                        default="draft",
                        max_length=12,
                    ),
                ),
                ("name", models.CharField(max_length=200)),
                (
                    "within_days_of_procedure",
                    models.PositiveIntegerField(
                        blank=True,
                        help_text="Applies only this many days after the procedure",
                        null=True,
                    ),
                ),
                (
                    "triggers",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.CharField(max_length=200), default=list, size=None
                    ),
                ),
                (
                    "severity",
                    models.CharField(
                        choices=[
                            ("emergency", "Emergency: tell the caller to dial 911"),
                            ("urgent", "Urgent: connect to the on-call provider now"),
                            ("routine", "Routine: message for the next business day"),
                        ],
                        max_length=12,
                    ),
                ),
                (
                    "route",
                    models.CharField(
                        choices=[
                            ("on_call", "The on-call provider"),
                            ("911", "Dial 911"),
                            ("front_desk", "The front desk"),
                            ("message", "Take a message"),
                        ],
                        max_length=12,
                    ),
                ),
                (
                    "instructions",
                    models.TextField(blank=True, default="", help_text="What the agent says"),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("approved_at", models.DateTimeField(blank=True, null=True)),
                (
                    "approval_source",
                    models.CharField(
                        blank=True,
                        choices=[
                            ("portal", "Approved in the portal"),
                            ("config_import", "Configuration import"),
                        ],
                        default="",
                        max_length=16,
                    ),
                ),
                ("approval_note", models.CharField(blank=True, default="", max_length=200)),
                (
                    "appointment_types",
                    models.ManyToManyField(
                        blank=True,
                        help_text="Procedures it covers; none means every caller",
                        related_name="escalation_protocol_versions",
                        to="scheduling.appointmenttype",
                    ),
                ),
                (
                    "approved_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "practice",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="portal.practice",
                    ),
                ),
                (
                    "protocol",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="versions",
                        to="calls.escalationprotocol",
                    ),
                ),
            ],
            options={
                "ordering": ["protocol", "-number"],
            },
        ),
        migrations.CreateModel(
            name="Screening",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("row_key", models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                ("text", compliance.crypto.EncryptedTextField()),
                (
                    "procedure_date",
                    compliance.crypto.EncryptedTextField(
                        blank=True, help_text="ISO date (PHI)", null=True
                    ),
                ),
                ("escalate", models.BooleanField()),
                (
                    "severity",
                    models.CharField(
                        blank=True,
                        choices=[
                            ("emergency", "Emergency: tell the caller to dial 911"),
                            ("urgent", "Urgent: connect to the on-call provider now"),
                            ("routine", "Routine: message for the next business day"),
                        ],
                        default="",
                        max_length=12,
                    ),
                ),
                ("matched_trigger", models.CharField(blank=True, default="", max_length=200)),
                ("screened_at", models.DateTimeField()),
                (
                    "appointment_type",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="scheduling.appointmenttype",
                    ),
                ),
                (
                    "call",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="screenings",
                        to="calls.call",
                    ),
                ),
                (
                    "practice",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="portal.practice",
                    ),
                ),
                (
                    "protocol_version",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="screenings",
                        to="calls.protocolversion",
                    ),
                ),
                (
                    "routed_to",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="scheduling.provider",
                    ),
                ),
            ],
            options={
                "ordering": ["-screened_at", "-id"],
            },
        ),
        migrations.AddConstraint(
            model_name="escalationprotocol",
            constraint=models.UniqueConstraint(
                fields=("practice", "key"), name="escalation_protocol_key"
            ),
        ),
        migrations.AddIndex(
            model_name="oncallshift",
            index=models.Index(fields=["practice", "start"], name="calls_oncal_practic_1bdb84_idx"),
        ),
        migrations.AddConstraint(
            model_name="oncallshift",
            constraint=models.CheckConstraint(
                condition=models.Q(("end__gt", models.F("start"))), name="on_call_end_after_start"
            ),
        ),
        migrations.AddConstraint(
            model_name="oncallshift",
            constraint=django.contrib.postgres.constraints.ExclusionConstraint(
                expressions=[
                    (
                        models.Func(
                            models.F("provider_id"),
                            models.F("provider_id"),
                            models.Value("[]"),
                            function="int8range",
                        ),
                        "&&",
                    ),
                    (
                        models.Func(
                            models.F("start"),
                            models.F("end"),
                            models.Value("[)"),
                            function="tstzrange",
                        ),
                        "&&",
                    ),
                ],
                name="on_call_no_self_overlap",
            ),
        ),
        migrations.AddConstraint(
            model_name="protocolversion",
            constraint=models.UniqueConstraint(
                fields=("protocol", "number"), name="protocol_version_number"
            ),
        ),
        migrations.AddConstraint(
            model_name="protocolversion",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status", "live")),
                fields=("protocol",),
                name="protocol_one_live_version",
            ),
        ),
        migrations.AddConstraint(
            model_name="protocolversion",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status", "draft")),
                fields=("protocol",),
                name="protocol_one_draft",
            ),
        ),
        migrations.AddConstraint(
            model_name="protocolversion",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("status", "draft"), ("approved_at__isnull", False), _connector="OR"
                ),
                name="protocol_version_approved",
            ),
        ),
        migrations.AddConstraint(
            model_name="protocolversion",
            constraint=models.CheckConstraint(
                condition=models.Q(("triggers", []), _negated=True),
                name="protocol_version_has_triggers",
            ),
        ),
        migrations.AddConstraint(
            model_name="protocolversion",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("within_days_of_procedure__isnull", True),
                    ("within_days_of_procedure__gt", 0),
                    _connector="OR",
                ),
                name="protocol_version_window",
            ),
        ),
        migrations.AddIndex(
            model_name="screening",
            index=models.Index(
                fields=["practice", "screened_at"], name="calls_scree_practic_3c2c64_idx"
            ),
        ),
        EnableRowLevelSecurity("escalationprotocol"),
        EnableRowLevelSecurity("protocolversion"),
        EnableRowLevelSecurity("oncallshift"),
        EnableRowLevelSecurity("screening"),
    ]
