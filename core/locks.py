"""PostgreSQL advisory locks: the one place their keys are folded and their SQL is written.

Keys are (namespace, id) pairs in the two-int form; each app names its namespaces (four ASCII
letters as an int, "HOLP", "BOOK") so they cannot collide with each other's. Two kinds:

* transaction-scoped (`xact_locks`, `TRY_XACT_LOCKS_SQL`): freed at COMMIT or ROLLBACK; several
  are always taken in sorted key order (`ordered`), so two claimers never wait on each other in
  a cycle;
* session-scoped (`session_lock`, `blocking_lock`): held across HTTP calls outside any
  transaction (never a row lock held that long), freed by PostgreSQL if the worker dies.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

__all__ = [
    "TRY_XACT_LOCKS_SQL",
    "WAIT_FOR_HOLDERS_SQL",
    "blocking_lock",
    "int4",
    "ordered",
    "session_lock",
    "xact_locks",
]

# Both or neither, the second tried only once the first is held (a held lower key while the
# higher one is refused keeps the fixed order). CASE, not AND: PostgreSQL documents CASE as the
# way to order evaluation.
TRY_XACT_LOCKS_SQL = (
    "CASE WHEN pg_try_advisory_xact_lock(%s, %s) THEN pg_try_advisory_xact_lock(%s, %s)"
    " ELSE false END"
)

# Wait until the present holders of two keys have finished, without queueing behind other
# waiters: shared session locks are granted to every waiter together when the holder commits,
# taken in key order and given back in the same statement, so none outlives it.
WAIT_FOR_HOLDERS_SQL = (
    "SELECT pg_advisory_lock_shared(%s, %s), pg_advisory_lock_shared(%s, %s),"
    " pg_advisory_unlock_shared(%s, %s), pg_advisory_unlock_shared(%s, %s)"
)


def int4(value: int) -> int:
    """An id folded into a signed 32-bit lock key (a collision only serialises more)."""
    folded = value % (1 << 32)
    return folded - (1 << 32) if folded >= 1 << 31 else folded


def ordered(*keys: tuple[int, int]) -> list[int]:
    """(namespace, key) pairs, keys folded, in key order, flattened into statement parameters."""
    return [part for pair in sorted((ns, int4(key)) for ns, key in keys) for part in pair]


def xact_locks(*keys: tuple[int, int]) -> None:
    """Transaction-scoped locks on every key, waiting, in one round trip and key order (a
    SELECT list is evaluated left to right)."""
    sql = "SELECT " + ", ".join(["pg_advisory_xact_lock(%s, %s)"] * len(keys))
    with connection.cursor() as cur:
        cur.execute(sql, ordered(*keys))


def _session_key(key: int) -> int:
    return key % (1 << 31)


@contextmanager
def session_lock(namespace: int, key: int) -> Iterator[bool]:
    """A session lock if free now (yields whether it was taken), released on exit."""
    key = _session_key(key)
    with connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s, %s)", [namespace, key])
        got = bool(cur.fetchone()[0])
    try:
        yield got
    finally:
        if got:
            with connection.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s, %s)", [namespace, key])


@contextmanager
def blocking_lock(namespace: int, key: int) -> Iterator[None]:
    """A session lock, waited for, released on exit."""
    key = _session_key(key)
    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(%s, %s)", [namespace, key])
    try:
        yield
    finally:
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s, %s)", [namespace, key])
