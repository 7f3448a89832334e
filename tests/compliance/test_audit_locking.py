"""Audited business transactions and the audit trail: no deadlock, ever.

Writers only append audit rows; the sealer seals them after commit, alone, under its own lock
(see compliance.audit), so an audited transaction takes no audit lock at all: a booking that
holds row and advisory locks, a configuration import that holds the practice row, and writers
that append to several chains in any order all commit, with no retry to hide a deadlock. Every
wait is on a condition with a deadline; the chains verify afterwards.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Location, Practice
from booking import services as bookings
from compliance import audit
from compliance.models import AccessEvent, AuditAction
from core.tenancy import cross_tenant, tenant_context
from ehr_sandbox.testing import wait_until
from scheduling.models import Booking, Hold
from scheduling.services import _lock_slot
from tests.receptionist_api.factories import Schedule, schedule

DEADLINE = 60.0


def wait_for(condition: Callable[[], object], what: str, timeout: float = DEADLINE) -> None:
    wait_until(condition, timeout=timeout, interval=0.01, message=what)


def in_thread(target: Callable[[], None], errors: list[BaseException]) -> threading.Thread:
    def run() -> None:
        try:
            target()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def backend_waits_on_a_lock(pid: int) -> bool:
    with connection.cursor() as cur:
        cur.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cur.fetchone()
    return bool(row) and row[0] == "Lock"


class Desk:
    """A practice with one provider, one operatory and a type: enough to hold and book."""

    def __init__(self, slug: str) -> None:
        self.s: Schedule = schedule(slug)
        self.practice = self.s.practice
        self.provider = self.s.provider()
        self.operatory = self.s.operatory()
        self.type = self.s.type()
        self.slots = itertools.count()
        self.start = timezone.now() + timedelta(days=3)

    def hold(self) -> Hold:
        """A fresh hold on the next free half hour, claimed in its own transaction as
        `place_hold` claims one: the provider and operatory advisory locks (in their fixed
        order), then the insert (and its change entry)."""
        start = self.start + timedelta(minutes=30 * next(self.slots))
        with tenant_context(self.practice), transaction.atomic():
            _lock_slot(self.provider.pk, self.operatory.pk)
            return Hold.objects.create(
                practice=self.practice,
                appointment_type=self.type,
                provider=self.provider,
                operatory=self.operatory,
                location=self.s.location,
                start=start,
                end=start + timedelta(minutes=30),
                expires_at=timezone.now() + timedelta(minutes=10),
            )

    def book(self, hold: Hold, key: str) -> Booking:
        """Book a held slot as the API does: the hold's row lock, its update and the booking
        and outbox inserts (change entries on the practice chain, foreign keys checked at
        commit). `_create_booking` is called without the deadlock retry of `create_booking`:
        a retry would hide exactly what this proves absent."""
        with tenant_context(self.practice):
            booking, created = bookings._create_booking(
                self.practice,
                idempotency_key=key,
                body={"hold_id": hold.pk, "patient": {"first_name": "Ana"}, "reason": "check"},
            )
        assert created
        return booking


def import_config_step(practice: Practice, name: str) -> None:
    """What the configuration importer does first: lock the practice row, write configuration
    (a change entry) and, here, an access event on the practice and the global chain."""
    Practice.objects.select_for_update().get(pk=practice.pk)
    with tenant_context(practice):
        location = Location.objects.get(practice=practice, key="main")
        location.name = name
        location.save()
    audit.record(AuditAction.PHI_EXPORT, practice=practice, reason="config export")
    audit.record(AuditAction.LOGIN, practice=None)


def assert_chains_verify(*practices: Practice) -> None:
    with cross_tenant("test: verify"):
        for chain in [audit.chain_name(p.pk) for p in practices] + [audit.GLOBAL_CHAIN]:
            report = audit.verify_chain(chain)
            assert report.ok, report.first_break


@pytest.mark.django_db(transaction=True)
def test_a_booking_blocked_at_commit_by_a_config_import_does_not_deadlock_with_its_audit():
    """The booking's deferred foreign-key check (on the practice row) waits for the import,
    which holds that row FOR UPDATE and then appends to the same chain. With the chain locked
    before the foreign-key checks this was a deadlock; with the chain lock last it is a wait."""
    desk = Desk("lock-order")
    errors: list[BaseException] = []
    import_has_locked, release_import = threading.Event(), threading.Event()
    booker_pid: list[int] = []
    booked: list[Booking] = []
    hold = desk.hold()

    def config_import() -> None:
        with transaction.atomic():
            import_config_step(desk.practice, "Main Office (renamed)")
            import_has_locked.set()
            assert release_import.wait(DEADLINE), "never released"

    def booking() -> None:
        assert import_has_locked.wait(DEADLINE)
        with connection.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            booker_pid.append(cur.fetchone()[0])
        booked.append(desk.book(hold, "lock-order-1"))

    importer = in_thread(config_import, errors)
    booker = in_thread(booking, errors)
    try:
        wait_for(lambda: booker_pid or errors, "the booking to start")
        # The booking reaches its COMMIT and waits there for the practice row.
        wait_for(lambda: errors or backend_waits_on_a_lock(booker_pid[0]), "the booking to wait")
    finally:
        release_import.set()
    importer.join(DEADLINE)
    booker.join(DEADLINE)
    assert not importer.is_alive() and not booker.is_alive()
    assert not errors, errors
    assert booked and booked[0].pk
    with tenant_context(desk.practice):
        assert Location.objects.get(key="main").name == "Main Office (renamed)"
    assert_chains_verify(desk.practice)


@pytest.mark.django_db(transaction=True)
def test_bookings_imports_and_multi_chain_audit_writers_run_together_without_deadlock():
    """Concurrent bookings (advisory slot locks, hold row lock, deferred foreign keys), config
    imports (the practice row FOR UPDATE) and writers appending to two practice chains and the
    global chain in opposite orders: every transaction commits first time."""
    alpha, beta = Desk("lock-alpha"), Desk("lock-beta")
    rounds = 6
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def booker(desk: Desk, n: int) -> Callable[[], None]:
        def run() -> None:
            barrier.wait(DEADLINE)
            for i in range(rounds):
                desk.book(desk.hold(), f"stress-{n}-{i}")

        return run

    def importer(desk: Desk) -> Callable[[], None]:
        def run() -> None:
            barrier.wait(DEADLINE)
            for i in range(rounds):
                with transaction.atomic():
                    import_config_step(desk.practice, f"Main {i}")

        return run

    def chain_writer(order: tuple[Practice | None, ...]) -> Callable[[], None]:
        def run() -> None:
            barrier.wait(DEADLINE)
            for i in range(rounds * 2):
                with transaction.atomic():
                    for target in order:
                        audit.record(AuditAction.PHI_READ, practice=target, object_ids=[i])

        return run

    a, b = alpha.practice, beta.practice
    jobs = [
        booker(alpha, 1),
        booker(alpha, 2),
        booker(beta, 3),
        importer(alpha),
        importer(beta),
        chain_writer((a, None, b)),
        chain_writer((b, a, None)),
        chain_writer((None, b, a)),
    ]
    threads = [in_thread(job, errors) for job in jobs]
    for thread in threads:
        thread.join(DEADLINE * 2)
    assert not [t for t in threads if t.is_alive()], "a writer is stuck"
    assert not errors, errors[:3]
    with cross_tenant("test: count"):
        assert Booking.objects.count() == 3 * rounds
        assert AccessEvent.objects.filter(action="phi.read").count() == 3 * rounds * 2 * 3
    assert_chains_verify(a, b)
