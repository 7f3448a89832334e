"""Protocol approval by a second clinician: versions remember their last editor and whether their
author approved them, and a practice's approval policy says whether its single clinician may
approve their own protocols (row-level security like every tenant table)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from core.tenancy import EnableRowLevelSecurity


class Migration(migrations.Migration):
    dependencies = [
        ("calls", "0006_on_call_shift_group_required"),
        ("portal", "0005_merge_tenancy_proofs_lockout_fields"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="protocolversion",
            name="edited_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="protocolversion",
            name="self_approved",
            field=models.BooleanField(
                default=False, help_text="Approved by its own author under the practice's policy"
            ),
        ),
        migrations.CreateModel(
            name="ApprovalPolicy",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("allow_self_approval", models.BooleanField(default=False)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "practice",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="portal.practice",
                    ),
                ),
                (
                    "updated_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("practice",), name="approval_policy_one_per_practice"
                    )
                ],
            },
        ),
        EnableRowLevelSecurity("approvalpolicy"),
    ]
