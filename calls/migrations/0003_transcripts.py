# Placeholder owned by the calls work (transcripts, encounter notes, retention): fill `operations`.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("calls", "0002_escalation")]

    operations: list = []
