"""core.locks: advisory locks, held while they should be and given back after."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from core.locks import blocking_lock, int4, ordered, session_lock, xact_locks

NAMESPACE = 0x54455354  # "TEST"


def _held() -> set[tuple[int, int]]:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT classid::bigint, objid::bigint FROM pg_locks"
            " WHERE locktype = 'advisory' AND objsubid = 2 AND pid = pg_backend_pid()"
        )
        return {(int(a), int(b)) for a, b in cur.fetchall()}


def test_keys_fold_into_int4_and_sort() -> None:
    assert int4(5) == 5
    assert int4(2**31) == -(2**31)
    assert int4(2**32 + 7) == 7
    assert ordered((20, 1), (10, 2**31 + 1)) == [10, -(2**31) + 1, 20, 1]


@pytest.mark.django_db(transaction=True)
def test_session_locks_are_held_inside_and_released_after() -> None:
    with session_lock(NAMESPACE, 41) as got:
        assert got
        assert (NAMESPACE, 41) in _held()
    assert (NAMESPACE, 41) not in _held()
    with blocking_lock(NAMESPACE, 42):
        assert (NAMESPACE, 42) in _held()
    assert (NAMESPACE, 42) not in _held()


@pytest.mark.django_db(transaction=True)
def test_transaction_locks_end_with_the_transaction() -> None:
    with transaction.atomic():
        xact_locks((NAMESPACE, 7), (NAMESPACE, 3))
        assert {(NAMESPACE, 3), (NAMESPACE, 7)} <= _held()
    assert not {(NAMESPACE, 3), (NAMESPACE, 7)} & _held()
