"""Every rota shift covers a group (0005 put the existing ones in the default group)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("calls", "0005_on_call_groups"),
    ]

    operations = [
        migrations.AlterField(
            model_name="oncallshift",
            name="group",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="shifts",
                to="calls.oncallgroup",
            ),
        ),
    ]
