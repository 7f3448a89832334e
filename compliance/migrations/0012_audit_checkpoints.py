"""Signed checkpoints of the audit chains and the public keys that signed them (both
append-only, like the trail; see compliance.checkpoints)."""

from django.db import migrations, models

APPEND_ONLY_SQL = """
CREATE TRIGGER compliance_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON compliance_auditcheckpoint
    FOR EACH STATEMENT EXECUTE FUNCTION compliance_audit_append_only();
CREATE TRIGGER compliance_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON compliance_auditsigningkey
    FOR EACH STATEMENT EXECUTE FUNCTION compliance_audit_append_only();
"""
REVERSE_SQL = """
DROP TRIGGER compliance_append_only ON compliance_auditcheckpoint;
DROP TRIGGER compliance_append_only ON compliance_auditsigningkey;
"""


class Migration(migrations.Migration):
    dependencies = [("compliance", "0011_async_sealing")]

    operations = [
        migrations.CreateModel(
            name="AuditCheckpoint",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("created_at", models.DateTimeField(db_index=True)),
                ("body", models.TextField()),
                ("signature", models.CharField(max_length=128)),
                ("key_id", models.CharField(max_length=16)),
            ],
        ),
        migrations.CreateModel(
            name="AuditSigningKey",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "key_id",
                    models.CharField(
                        help_text="SHA-256 of the key, hex", max_length=16, unique=True
                    ),
                ),
                ("public_key", models.BinaryField(help_text="Ed25519, raw 32 bytes")),
                ("created_at", models.DateTimeField()),
            ],
        ),
        migrations.RunSQL(APPEND_ONLY_SQL, REVERSE_SQL),
    ]
