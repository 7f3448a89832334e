"""Configuration keys: the stable, readable names a practice's rows go by in its configuration
file and the API ("Dr. Ana Cho" -> "dr-ana-cho")."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils.text import slugify


def unique_key(rows: QuerySet[Any], name: str, fallback: str) -> str:
    """A key made from `name` (`fallback` when nothing of it is left) that none of `rows` (the
    practice's rows of the kind) has yet: a number is added when it is taken."""
    base = slugify(name)[:56] or fallback
    taken = set(rows.filter(key__startswith=base).values_list("key", flat=True))
    key, n = base, 1
    while key in taken:
        n += 1
        key = f"{base}-{n}"
    return key
