from django.db import migrations, models


class Migration(migrations.Migration):
    """The audit.export_failed action (its choices only: no SQL)."""

    dependencies = [
        ("compliance", "0008_audit_action_labels"),
    ]

    operations = [
        migrations.AlterField(
            model_name="accessevent",
            name="action",
            field=models.CharField(
                choices=[
                    ("phi.read", "PHI read"),
                    ("phi.export", "PHI export"),
                    ("audit.export", "Audit log export"),
                    ("audit.export_failed", "Audit log export failed"),
                    ("audit.verify", "Audit chain verified"),
                    ("login", "Signed in (password)"),
                    ("login_failed", "Failed sign-in"),
                    ("logout", "Signed out"),
                    ("2fa.enrolled", "Second factor enrolled"),
                    ("2fa.verified", "Second factor verified"),
                    ("2fa.failed", "Second factor failed"),
                    ("impersonation.start", "Support impersonation started"),
                    ("impersonation.end", "Support impersonation ended"),
                    ("api_token.issued", "API token issued"),
                    ("api_client.created", "API client created"),
                    ("api_client.secret_rotated", "API client secret rotated"),
                    ("api_client.revoked", "API client revoked"),
                    ("config.export", "Configuration downloaded"),
                    ("config.import", "Configuration uploaded"),
                    ("golive.scenarios_run", "Go-live test scenarios run"),
                    ("escalation.protocol_approved", "Escalation protocol approved"),
                    ("escalation.protocol_withdrawn", "Escalation protocol withdrawn"),
                ],
                max_length=48,
            ),
        ),
    ]
