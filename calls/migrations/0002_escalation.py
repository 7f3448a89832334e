# Placeholder owned by the escalation work (protocols, on-call rota, screening): fill `operations`.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("calls", "0001_calls")]

    operations: list = []
