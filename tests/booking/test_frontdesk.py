"""Front desk pages: the agent's bookings (masked, filtered, paged, one access event per page,
constant queries) and the "needs attention" queue (retry re-queues, resolve needs a note)."""

from __future__ import annotations

import itertools
from datetime import datetime, time, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Practice, Role
from compliance.models import AccessEvent
from core.tenancy import cross_tenant, tenant_context
from scheduling.models import (
    AppointmentType,
    Booking,
    BookingStatus,
    Hold,
    HoldStatus,
    Operatory,
    OutboxMessage,
    Provider,
)
from tests.conftest import verify_second_factor
from tests.factories import (
    LocationFactory,
    MembershipFactory,
    PracticeFactory,
    UserFactory,
    sign_baa,
)
from tests.scheduling.factories import (
    AppointmentTypeFactory,
    OperatoryFactory,
    ProviderFactory,
)

pytestmark = pytest.mark.django_db
_keys = itertools.count(1)


class Desk:
    """A practice's provider, room and type, and a way to add agent bookings to it."""

    def __init__(self, practice: Practice) -> None:
        self.practice = practice
        self.location = LocationFactory(practice=practice)
        self.provider: Provider = ProviderFactory(practice=practice, name="Dr. Patel")
        self.operatory: Operatory = OperatoryFactory(practice=practice, location=self.location)
        self.type: AppointmentType = AppointmentTypeFactory(practice=practice, name="Cleaning")

    def at(self, days: int, hour: int = 10, minute: int = 0) -> datetime:
        day = timezone.localdate(timezone=self.practice.tz) + timedelta(days=days)
        return datetime.combine(day, time(hour, minute), self.practice.tz)

    def booking(
        self,
        start: datetime,
        status: str = BookingStatus.CONFIRMED,
        first: str = "Ana",
        last: str = "Lopez",
        **extra: Any,
    ) -> Booking:
        n = next(_keys)
        claiming = status in (
            BookingStatus.PENDING,
            BookingStatus.CONFIRMED,
            BookingStatus.REQUESTED,
        )
        with cross_tenant("test data setup"):
            hold = Hold.objects.create(
                practice=self.practice,
                appointment_type=self.type,
                provider=self.provider,
                operatory=self.operatory,
                location=self.location,
                start=start,
                end=start + timedelta(minutes=30),
                expires_at=start,
                status=HoldStatus.BOOKED if claiming else HoldStatus.RELEASED,
            )
            return Booking.objects.create(
                practice=self.practice,
                hold=hold,
                appointment_type=self.type,
                provider=self.provider,
                operatory=self.operatory,
                location=self.location,
                start=start,
                end=hold.end,
                status=status,
                idempotency_key=f"key-{n}",
                request_fingerprint="0" * 64,
                demographics={
                    "first_name": first,
                    "last_name": last,
                    "date_of_birth": "1985-04-12",
                    "phone": "+15555550101",
                },
                reason="a chipped tooth",
                **extra,
            )

    def failed(self, start: datetime, reason: str = "The slot was taken in the EHR.") -> Booking:
        return self.booking(start, BookingStatus.FAILED, failure_reason=reason)


def staff_client(client, practice: Practice, role: str = Role.FRONT_DESK):
    user = UserFactory(totp=True)
    MembershipFactory(user=user, practice=practice, role=role)
    verify_second_factor(client, user)
    return client, user


def phi_reads() -> list[AccessEvent]:
    with cross_tenant("test: read the audit trail"):
        return list(AccessEvent.objects.filter(action="phi.read").order_by("id"))


@pytest.fixture
def practice(db, django_capture_on_commit_callbacks):
    """The practice, its keys "committed": a key made inside a transaction is cached only once
    that commits (as in production), so page query counts are the page's own."""
    with django_capture_on_commit_callbacks(execute=True):
        return PracticeFactory(slug="alpha", name="Alpha Dental")


@pytest.fixture
def desk(practice) -> Desk:
    sign_baa(practice)
    return Desk(practice)


@pytest.fixture
def front_desk(client, practice):
    return staff_client(client, practice)[0]


def test_today_and_upcoming_by_default_patients_masked_and_one_access_event(desk, front_desk):
    old = desk.booking(desk.at(-1), first="Old", last="Timer")
    today = desk.booking(desk.at(0, 9), first="Ana", last="Lopez")
    later = desk.booking(desk.at(3, 14), BookingStatus.PENDING, first="Bo", last="Diaz")
    page = front_desk.get("/p/alpha/bookings/").content.decode()
    assert f'id="booking-{today.pk}"' in page and f'id="booking-{later.pk}"' in page
    assert f'id="booking-{old.pk}"' not in page
    assert "A. L." in page and "B. D." in page
    assert "Lopez" not in page and "Diaz" not in page and "1985-04-12" not in page
    assert page.index(f'id="booking-{today.pk}"') < page.index(f'id="booking-{later.pk}"')
    [event] = phi_reads()
    assert sorted(event.object_ids) == sorted([str(today.pk), str(later.pk)])
    assert event.object_type == "scheduling.booking" and event.practice_id == desk.practice.pk

    everything = front_desk.get("/p/alpha/bookings/?since=").content.decode()
    assert f'id="booking-{old.pk}"' in everything
    assert len(phi_reads()) == 2  # one more event, for the second page view


def test_filters_by_status_and_dates_and_says_what_is_wrong(desk, front_desk):
    confirmed = desk.booking(desk.at(1))
    failed = desk.failed(desk.at(2))
    far = desk.booking(desk.at(9))
    page = front_desk.get("/p/alpha/bookings/?status=failed&since=").content.decode()
    assert f'id="booking-{failed.pk}"' in page and f'id="booking-{confirmed.pk}"' not in page
    window = f"since={desk.at(1).date()}&until={desk.at(2).date()}"
    page = front_desk.get(f"/p/alpha/bookings/?{window}").content.decode()
    assert f'id="booking-{confirmed.pk}"' in page and f'id="booking-{failed.pk}"' in page
    assert f'id="booking-{far.pk}"' not in page
    bad = f"since={desk.at(2).date()}&until={desk.at(1).date()}"
    page = front_desk.get(f"/p/alpha/bookings/?{bad}").content.decode()
    assert "The last day is before the first day." in page
    nothing = front_desk.get("/p/alpha/bookings/?status=cancelled").content.decode()
    assert "No bookings by the voice agent match these filters" in nothing


def test_pages_of_twenty_five(desk, front_desk):
    made = [desk.booking(desk.at(1 + i // 8, 8 + i % 8)) for i in range(30)]
    first = front_desk.get("/p/alpha/bookings/").content.decode()
    assert first.count('<tr id="booking-') == 25 and 'rel="next"' in first
    assert "page=2" in first and 'rel="prev"' not in first
    second = front_desk.get("/p/alpha/bookings/?page=2").content.decode()
    assert second.count('<tr id="booking-') == 5 and f'id="booking-{made[-1].pk}"' in second
    assert 'rel="prev"' in second and 'rel="next"' not in second
    assert front_desk.get("/p/alpha/bookings/?page=x").status_code == 200  # page 1


@pytest.mark.parametrize(
    "url,rows", [("/p/alpha/bookings/", 24), ("/p/alpha/bookings/attention/", 12)]
)
def test_list_queries_do_not_grow_with_rows(desk, front_desk, url, rows, django_assert_num_queries):
    for i in range(2):
        desk.booking(desk.at(1, 8 + i))
        desk.failed(desk.at(2, 8 + i))
    front_desk.get(url)  # warm the per-process key cache
    with CaptureQueriesContext(connection) as few:
        assert front_desk.get(url).status_code == 200
    for i in range(10):
        desk.booking(desk.at(3, 8 + i % 9, 30 * (i // 9)))
        desk.failed(desk.at(4, 8 + i % 9, 30 * (i // 9)))
    with django_assert_num_queries(len(few.captured_queries)):
        page = front_desk.get(url).content.decode()
    assert page.count('<tr id="booking-') == rows


def test_the_queue_shows_the_reason_with_a_badge_and_retry_requeues(desk, front_desk):
    failed = desk.failed(desk.at(1), reason="The slot was taken in the EHR (appointment 7).")
    desk.booking(desk.at(2))
    page = front_desk.get("/p/alpha/bookings/attention/").content.decode()
    assert "The slot was taken in the EHR (appointment 7)." in page
    assert 'id="queue-count"' in page and ">1</span>" in page
    assert page.count('<tr id="booking-') == 1 and "Retry" in page and "hx-confirm" in page

    response = front_desk.post(f"/p/alpha/bookings/{failed.pk}/retry/", HTTP_HX_REQUEST="true")
    cell = response.content.decode()
    assert response.status_code == 200 and "Sending to the EHR" in cell
    assert f'hx-get="/p/alpha/bookings/{failed.pk}/status/"' in cell and "every 2s" in cell
    with tenant_context(desk.practice):
        failed.refresh_from_db()
        assert failed.status == BookingStatus.PENDING and failed.failure_reason == ""
        assert Hold.objects.get(pk=failed.hold_id).status == HoldStatus.BOOKED
        [message] = OutboxMessage.objects.filter(booking=failed)
        assert message.kind == "process_booking"
    # The polled cell keeps polling while pending, and stops once the booking is terminal.
    assert "every 2s" in front_desk.get(f"/p/alpha/bookings/{failed.pk}/status/").content.decode()
    with cross_tenant("test: the EHR confirmed it"):
        Booking.objects.filter(pk=failed.pk).update(
            status=BookingStatus.CONFIRMED, ehr_appointment_id=99
        )
    done = front_desk.get(f"/p/alpha/bookings/{failed.pk}/status/").content.decode()
    assert "Confirmed in the EHR" in done and "hx-trigger" not in done
    assert ">0</span>" in front_desk.get("/p/alpha/bookings/attention/").content.decode()


def test_retry_refused_when_the_slot_is_taken_or_without_a_baa(practice, front_desk):
    desk = Desk(practice)
    failed = desk.failed(desk.at(1))
    no_baa = front_desk.post(f"/p/alpha/bookings/{failed.pk}/retry/", HTTP_HX_REQUEST="true")
    assert "No executed BAA is in force" in no_baa.content.decode()
    sign_baa(practice)
    desk.booking(desk.at(1), BookingStatus.CONFIRMED)  # someone else has the slot now
    taken = front_desk.post(f"/p/alpha/bookings/{failed.pk}/retry/", follow=True)
    assert "The slot has been taken by another booking" in taken.content.decode()
    with tenant_context(practice):
        failed.refresh_from_db()
        assert failed.status == BookingStatus.FAILED
        assert not OutboxMessage.objects.filter(booking=failed).exists()


def test_resolve_needs_a_note_and_records_who(desk, client, practice):
    client, user = staff_client(client, practice)
    failed = desk.failed(desk.at(1))
    empty = client.post(f"/p/alpha/bookings/{failed.pk}/resolve/", {"note": "  "})
    assert empty.status_code == 400
    assert "Say how it was handled" in empty.content.decode()
    with tenant_context(practice):
        failed.refresh_from_db()
        assert failed.resolved_at is None
    done = client.post(
        f"/p/alpha/bookings/{failed.pk}/resolve/", {"note": "Booked by phone for Friday"}
    )
    assert done.status_code == 302 and done["Location"] == "/p/alpha/bookings/attention/"
    with tenant_context(practice):
        failed.refresh_from_db()
    assert failed.resolved_by == user and failed.resolution_note == "Booked by phone for Friday"
    page = client.get("/p/alpha/bookings/attention/").content.decode()
    assert f'id="booking-{failed.pk}"' not in page and "Nothing needs attention" in page


def test_revealing_a_patient_is_one_recorded_read(desk, front_desk):
    booking = desk.booking(desk.at(1))
    page = front_desk.get(f"/p/alpha/bookings/{booking.pk}/patient/").content.decode()
    assert "Ana Lopez" in page and "1985-04-12" in page and "+15555550101" in page
    [event] = phi_reads()
    assert event.object_ids == [str(booking.pk)] and "revealed" in event.reason


def test_without_a_baa_nothing_of_the_patient_is_shown(practice, front_desk):
    desk = Desk(practice)
    booking = desk.booking(desk.at(1))
    page = front_desk.get("/p/alpha/bookings/").content.decode()
    assert f'id="booking-{booking.pk}"' in page and "A. L." not in page
    assert front_desk.get(f"/p/alpha/bookings/{booking.pk}/patient/").status_code == 403
    assert phi_reads() == []


@pytest.mark.parametrize(
    "role,allowed",
    [
        (Role.FRONT_DESK, True),
        (Role.PRACTICE_MANAGER, True),
        (Role.CLINICIAN, False),
        (Role.COMPLIANCE_OFFICER, False),
    ],
)
def test_roles(desk, client, practice, role, allowed):
    client, _ = staff_client(client, practice, role)
    failed = desk.failed(desk.at(1))
    expected = 200 if allowed else 403
    assert client.get("/p/alpha/bookings/").status_code == expected
    assert client.get("/p/alpha/bookings/attention/").status_code == expected
    assert client.post(f"/p/alpha/bookings/{failed.pk}/resolve/", {"note": "x"}).status_code == (
        302 if allowed else 403
    )
    nav = client.get("/p/alpha/locations/").content.decode()
    assert ('href="/p/alpha/bookings/attention/"' in nav) is allowed


def test_another_practices_booking_is_404(desk, front_desk, other_practice):
    theirs = Desk(other_practice).failed(Desk(other_practice).at(1))
    for path in ("status/", "patient/", "resolve/"):
        assert front_desk.get(f"/p/alpha/bookings/{theirs.pk}/{path}").status_code == 404
    assert front_desk.post(f"/p/alpha/bookings/{theirs.pk}/retry/").status_code == 404
    assert front_desk.get("/p/beta/bookings/").status_code == 404


# --- against the real sandbox and a real worker ---------------------------------------------


def fail_by_a_clash_in_the_ehr(d) -> tuple[int, int]:
    """A booking the EHR refuses because someone took its slot there first: (booking id, the
    clashing EHR appointment id), the booking failed and in the queue."""
    from datetime import time as clock
    from zoneinfo import ZoneInfo

    from tests.booking.test_bookings import booking_body

    la = ZoneInfo("America/Los_Angeles")
    hold = d.hold()
    clash = d.world.staff_appointment(datetime.combine(d.day, clock(10), la))
    booking_id = d.post(booking_body(hold), f"clash-{hold.pk}").json()["id"]
    assert "taken in the EHR" in d.wait_status(booking_id, "failed")["failure_reason"]
    clash_id = clash["id"] if "id" in clash else clash["data"]["id"]
    return booking_id, clash_id


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_retry_from_the_queue_ends_confirmed_in_the_ehr(live_server, settings, client):
    from ehr_sandbox.testing import wait_until
    from tests.booking.test_bookings import desk as ehr_desk

    with ehr_desk(live_server, settings) as d:
        booking_id, clash_id = fail_by_a_clash_in_the_ehr(d)
        c, _ = staff_client(client, d.world.practice)
        base = f"/p/{d.world.practice.slug}/bookings"
        assert f'id="booking-{booking_id}"' in c.get(f"{base}/attention/").content.decode()
        # The front desk moves the other appointment in the EHR, then retries ours.
        d.world.admin(
            "PATCH", f"/_admin/ehr/appointments/{clash_id}", {"appt": {"cancelled": True}}
        )
        cell = c.post(f"{base}/{booking_id}/retry/", HTTP_HX_REQUEST="true").content.decode()
        assert "Sending to the EHR" in cell
        wait_until(
            lambda: (
                "Confirmed in the EHR" in c.get(f"{base}/{booking_id}/status/").content.decode()
            ),
            timeout=40,
            interval=0.2,
            message="the retried booking to be confirmed",
        )
        body = d.get(booking_id)
        live = [a for a in d.ehr_appointments() if not a["cancelled"]]
        assert [a["id"] for a in live] == [body["ehr_appointment_id"]]
        assert ">0</span>" in c.get(f"{base}/attention/").content.decode()


# --- sorting by column -----------------------------------------------------------------------


def _order(page: str, ids: list[int]) -> list[int]:
    return sorted(ids, key=lambda pk: page.index(f'id="booking-{pk}"'))


def test_the_list_sorts_by_column_both_ways_and_pages_in_that_order(desk, front_desk):
    with cross_tenant("test data setup"):
        names = ["Dr. Cho", "Dr. Adams", "Dr. Baker"]
        providers = [ProviderFactory(practice=desk.practice, name=n) for n in names]
    made = []
    for i in range(27):
        desk.provider = providers[i % 3]
        made.append(desk.booking(desk.at(1 + i // 8, 8 + i % 8)))
    by_name = {p.pk: p.name for p in providers}
    page = front_desk.get("/p/alpha/bookings/?since=&sort=provider").content.decode()
    assert 'aria-sort="ascending"' in page and 'href="?since=&amp;sort=-provider"' in page
    shown = _order(page, [b.pk for b in made if f'id="booking-{b.pk}"' in page])
    names_shown = [by_name[next(b.provider_id for b in made if b.pk == pk)] for pk in shown]
    assert names_shown == sorted(names_shown) and len(shown) == 25
    second = front_desk.get("/p/alpha/bookings/?since=&sort=provider&page=2").content.decode()
    rest = [b for b in made if f'id="booking-{b.pk}"' in second]
    assert len(rest) == 2 and {by_name[b.provider_id] for b in rest} == {"Dr. Cho"}
    assert "sort=provider&amp;page=1" in second  # the pager keeps the order

    down = front_desk.get("/p/alpha/bookings/?since=&sort=-provider").content.decode()
    assert 'aria-sort="descending"' in down
    shown = _order(down, [b.pk for b in made if f'id="booking-{b.pk}"' in down])
    names_shown = [by_name[next(b.provider_id for b in made if b.pk == pk)] for pk in shown]
    assert names_shown == sorted(names_shown, reverse=True) and names_shown[0] == "Dr. Cho"
    # Nonsense falls back to the default order, never an error or an arbitrary ORDER BY.
    odd = front_desk.get("/p/alpha/bookings/?since=&sort=patient__last_name")
    assert odd.status_code == 200 and 'data-sort="when"' in odd.content.decode()


def test_the_queue_sorts_by_type(desk, front_desk):
    with cross_tenant("test data setup"):
        extraction = AppointmentTypeFactory(practice=desk.practice, name="Extraction")
    cleaning = desk.failed(desk.at(2))
    desk.type = extraction
    pulled = desk.failed(desk.at(1))
    page = front_desk.get("/p/alpha/bookings/attention/?sort=-type").content.decode()
    assert _order(page, [cleaning.pk, pulled.pk]) == [pulled.pk, cleaning.pk]
    page = front_desk.get("/p/alpha/bookings/attention/?sort=when").content.decode()
    assert _order(page, [cleaning.pk, pulled.pk]) == [pulled.pk, cleaning.pk]
    page = front_desk.get("/p/alpha/bookings/attention/").content.decode()  # oldest first
    assert _order(page, [cleaning.pk, pulled.pk]) == [cleaning.pk, pulled.pk]


@pytest.mark.parametrize(
    "url", ["/p/alpha/bookings/?since=&sort=-type", "/p/alpha/bookings/attention/?sort=provider"]
)
def test_sorted_lists_keep_a_constant_number_of_queries(
    desk, front_desk, url, django_assert_num_queries
):
    for i in range(2):
        desk.failed(desk.at(2, 8 + i))
    front_desk.get(url)
    with CaptureQueriesContext(connection) as few:
        assert front_desk.get(url).status_code == 200
    for i in range(20):
        desk.failed(desk.at(4, 8 + i % 9, 20 * (i // 9)))
    with django_assert_num_queries(len(few.captured_queries)):
        page = front_desk.get(url).content.decode()
    assert page.count('<tr id="booking-') == 22
