"""Transcripts (encrypted), encounter notes and per-practice retention (calls work)."""

import uuid

import django.db.models.deletion
from django.db import migrations, models

import compliance.crypto
from core.tenancy import EnableRowLevelSecurity


class Migration(migrations.Migration):
    dependencies = [
        ("calls", "0002_escalation"),
        ("scheduling", "0003_bookings"),
    ]

    operations = [
        migrations.CreateModel(
            name="CallRetention",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("transcript_days", models.PositiveIntegerField(default=365)),
                ("note_days", models.PositiveIntegerField(default=2192)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
        ),
        migrations.CreateModel(
            name="EncounterNote",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("row_key", models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("pending", "Pending"),
                            ("sent", "Sent, waiting for the EHR"),
                            ("written", "Written to the EHR"),
                            ("failed", "Failed"),
                        ],
                        default="pending",
                        max_length=8,
                    ),
                ),
                ("failure_reason", models.TextField(blank=True, default="")),
                ("attempts", models.PositiveIntegerField(default=0)),
                ("content", compliance.crypto.EncryptedTextField(blank=True, null=True)),
                ("ehr_patient_id", models.BigIntegerField(blank=True, null=True)),
                ("ehr_document_id", models.BigIntegerField(blank=True, null=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("sent_at", models.DateTimeField(blank=True, null=True)),
                ("written_at", models.DateTimeField(blank=True, null=True)),
                ("purged_at", models.DateTimeField(blank=True, null=True)),
            ],
        ),
        migrations.AddField(
            model_name="call",
            name="booking",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="scheduling.booking",
            ),
        ),
        migrations.AddField(
            model_name="call",
            name="transcript",
            field=compliance.crypto.EncryptedJSONField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="call",
            name="transcript_purged_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="call",
            name="transcript_received_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="call",
            name="transcript_turns",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddIndex(
            model_name="call",
            index=models.Index(
                fields=["practice", "outcome", "started_at"], name="call_outcome_idx"
            ),
        ),
        migrations.AddConstraint(
            model_name="call",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("transcript_purged_at__isnull", True),
                    ("transcript__isnull", True),
                    _connector="OR",
                ),
                name="call_purged_transcript_is_gone",
            ),
        ),
        migrations.AddField(
            model_name="callretention",
            name="practice",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="+", to="portal.practice"
            ),
        ),
        migrations.AddField(
            model_name="encounternote",
            name="booking",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="scheduling.booking",
            ),
        ),
        migrations.AddField(
            model_name="encounternote",
            name="call",
            field=models.OneToOneField(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="encounter_note",
                to="calls.call",
            ),
        ),
        migrations.AddField(
            model_name="encounternote",
            name="practice",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="+", to="portal.practice"
            ),
        ),
        migrations.AddConstraint(
            model_name="callretention",
            constraint=models.UniqueConstraint(
                fields=("practice",), name="call_retention_one_per_practice"
            ),
        ),
        migrations.AddConstraint(
            model_name="callretention",
            constraint=models.CheckConstraint(
                condition=models.Q(("transcript_days__gte", 1), ("note_days__gte", 1)),
                name="call_retention_positive",
            ),
        ),
        migrations.AddIndex(
            model_name="encounternote",
            index=models.Index(fields=["practice", "status"], name="note_status_idx"),
        ),
        migrations.AddConstraint(
            model_name="encounternote",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("status__in", ["sent", "written"]), _negated=True),
                    ("ehr_document_id__isnull", False),
                    _connector="OR",
                ),
                name="note_sent_has_document",
            ),
        ),
        migrations.AddConstraint(
            model_name="encounternote",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("purged_at__isnull", True), ("content__isnull", True), _connector="OR"
                ),
                name="note_purged_content_is_gone",
            ),
        ),
        EnableRowLevelSecurity("encounternote"),
        EnableRowLevelSecurity("callretention"),
    ]
