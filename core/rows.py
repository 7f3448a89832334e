"""Writing a row only where it differs: the EHR sync and the configuration import both update
existing rows this way, so an unchanged row is never saved (no write, no audit event)."""

from __future__ import annotations

from typing import Any

from django.db import models


def differing_fields(obj: models.Model, values: dict[str, Any]) -> list[str]:
    """The names of the fields whose value differs from `values`."""
    return [name for name, value in values.items() if getattr(obj, name) != value]


def save_changed(obj: models.Model, values: dict[str, Any]) -> bool:
    """Set the values that differ and save only those fields; True if anything changed."""
    changed = differing_fields(obj, values)
    if changed:
        for name in changed:
            setattr(obj, name, values[name])
        obj.save(update_fields=changed)
    return bool(changed)
