from __future__ import annotations

from datetime import datetime, time, timedelta

from django import forms

from compliance.export import AuditFilters
from compliance.models import AuditAction
from core.formfields import BoundedDateField

ACTION_CHOICES = [
    ("", "Any action"),
    *AuditAction.choices,
    ("change.", "Any configuration change"),
    ("change.create", "Created"),
    ("change.update", "Changed"),
    ("change.delete", "Deleted"),
]


# What the audit table shows for each action: the filter's labels (change entries by verb).
ACTION_LABELS: dict[str, str] = {value: label for value, label in ACTION_CHOICES if value}

DATE_PICKER = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def action_label(action: str) -> str:
    """The label of an audit action (the raw name when it is not a known one)."""
    return ACTION_LABELS.get(action, action)


class AuditFilterForm(forms.Form):
    since = BoundedDateField(required=False, label="From (day)", widget=DATE_PICKER)
    until = BoundedDateField(required=False, label="Through (day)", widget=DATE_PICKER)
    actor = forms.CharField(required=False, max_length=254, label="Actor (user id or email)")
    action = forms.ChoiceField(required=False, choices=ACTION_CHOICES)
    object_type = forms.CharField(required=False, max_length=100, label="Object type")

    def filters(self, practice_id: int, tz: object) -> AuditFilters:
        """Days are the practice's days; `until` includes its whole day."""
        data = self.cleaned_data if self.is_valid() else {}
        since, until = data.get("since"), data.get("until")
        return AuditFilters(
            practice_id=practice_id,
            since=datetime.combine(since, time.min, tzinfo=tz) if since else None,  # type: ignore[arg-type]
            until=(
                datetime.combine(until + timedelta(days=1), time.min, tzinfo=tz)  # type: ignore[arg-type]
                if until
                else None
            ),
            actor=(data.get("actor") or "").strip(),
            action=data.get("action") or "",
            object_type=(data.get("object_type") or "").strip(),
        )
