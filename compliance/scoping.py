"""Read one practice's rows from any connection state, without widening access."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

from django.db import connection

from core.tenancy import CROSS_TENANT_SETTING, PRACTICE_SETTING, tenant_context


@contextmanager
def practice_scope(practice_id: int) -> Iterator[None]:
    """Scope the connection to `practice_id` for the block: a no-op (one query) when it already
    is, or is cross-tenant; otherwise `tenant_context(practice_id)`, restored afterwards.

    For compliance machinery that must answer about one practice whatever the caller's state is
    (its keys, its BAA), and never sees another practice's rows while doing so.
    """
    with connection.cursor() as cur:
        cur.execute(
            "SELECT coalesce(current_setting(%s, true), ''), "
            "coalesce(current_setting(%s, true), '')",
            [PRACTICE_SETTING, CROSS_TENANT_SETTING],
        )
        current, cross = cur.fetchone()
    scoped = cross == "on" or current == str(practice_id)
    with nullcontext() if scoped else tenant_context(practice_id):
        yield
