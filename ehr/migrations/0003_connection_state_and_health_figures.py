from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0002_connection_kind_nextech"),
    ]

    operations = [
        migrations.AddField(
            model_name="ehrconnection",
            name="state",
            field=models.CharField(
                blank=True,
                choices=[
                    ("connected", "connected"),
                    ("reset_required", "credentials need a reset"),
                    ("rejected", "credentials rejected"),
                    ("unreachable", "unreachable"),
                    ("rate_limited", "rate limited"),
                ],
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="connectionhealth",
            name="requests",
            field=models.BigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="connectionhealth",
            name="first_try_ok",
            field=models.BigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="connectionhealth",
            name="failures",
            field=models.JSONField(blank=True, default=dict, help_text="failed calls per reason"),
        ),
        migrations.RenameField(
            model_name="connectionhealth",
            old_name="webhook_lag_p50_ms",
            new_name="freshness_lag_p50_ms",
        ),
        migrations.RenameField(
            model_name="connectionhealth",
            old_name="webhook_lag_p95_ms",
            new_name="freshness_lag_p95_ms",
        ),
    ]
