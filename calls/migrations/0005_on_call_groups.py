"""On-call groups: a protocol names who takes it (a provider, or the on-call of a group), and each
rota shift covers one group. Existing data keeps working: every practice with a rota or protocols
gets the default group `on-call` ("On call"), every existing shift joins it, and protocols naming
no group route to it, as before."""

import django.db.models.deletion
from django.db import migrations, models

from core.tenancy import EnableRowLevelSecurity


def default_groups(apps, schema_editor):
    from core.tenancy import cross_tenant

    Group = apps.get_model("calls", "OnCallGroup")
    Shift = apps.get_model("calls", "OnCallShift")
    Protocol = apps.get_model("calls", "EscalationProtocol")
    with cross_tenant("migration: default on-call group per practice"):
        practices = set(Shift.objects.values_list("practice_id", flat=True)) | set(
            Protocol.objects.values_list("practice_id", flat=True)
        )
        for practice_id in sorted(practices):
            group, _ = Group.objects.get_or_create(
                practice_id=practice_id, key="on-call", defaults={"name": "On call"}
            )
            Shift.objects.filter(practice_id=practice_id, group__isnull=True).update(group=group)


class Migration(migrations.Migration):
    dependencies = [
        ("calls", "0004_note_rejections"),
        ("portal", "0005_merge_tenancy_proofs_lockout_fields"),
        ("scheduling", "0009_merge_0006_config_import_0008_booking_pending_reason"),
    ]

    operations = [
        migrations.CreateModel(
            name="OnCallGroup",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("key", models.SlugField(max_length=64)),
                ("name", models.CharField(max_length=100)),
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
                "ordering": ["name", "id"],
                "constraints": [
                    models.UniqueConstraint(fields=("practice", "key"), name="on_call_group_key")
                ],
            },
        ),
        EnableRowLevelSecurity("oncallgroup"),
        migrations.AddField(
            model_name="oncallshift",
            name="group",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="shifts",
                to="calls.oncallgroup",
            ),
        ),
        migrations.AddField(
            model_name="protocolversion",
            name="on_call_group",
            field=models.ForeignKey(
                blank=True,
                help_text="Whose on-call takes these calls; none means the practice's default group",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="protocol_versions",
                to="calls.oncallgroup",
            ),
        ),
        migrations.AddField(
            model_name="protocolversion",
            name="route_provider",
            field=models.ForeignKey(
                blank=True,
                help_text="A provider who takes these calls themself",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="scheduling.provider",
            ),
        ),
        migrations.RunPython(default_groups, migrations.RunPython.noop),
    ]
