"""The dashboard's figures and server-rendered SVG charts (portal.dashboard)."""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from accounts.models import Role
from core.tenancy import cross_tenant, tenant_context
from ehr.health import Figure, HealthRecorder
from ehr.models import ConnectionHealth, ConnectionKind, ConnectionStatus, EHRConnection
from portal import dashboard
from scheduling.models import OutboxMessage
from tests.conftest import verify_second_factor
from tests.factories import LocationFactory, staff_member
from tests.scheduling.factories import BookingFactory

pytestmark = pytest.mark.django_db
NY = ZoneInfo("America/New_York")


def days_ago(n: int):
    """Noon, practice time (New York), n days ago: the day is unambiguous."""
    local = timezone.now().astimezone(NY)
    return local.replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=n)


def connect(practice, name="Main Office", kind=ConnectionKind.SANDBOX, **health):
    location = LocationFactory(practice=practice, name=name)
    with tenant_context(practice):
        conn = EHRConnection.objects.create(
            practice=practice,
            location=location,
            kind=kind,
            base_url="http://127.0.0.1:1",
            subdomain="dash",
            api_key="key",
            status=ConnectionStatus.CONNECTED,
        )
        if health:
            ConnectionHealth.objects.create(practice=practice, connection=conn, **health)
    return conn


def same_slot_as(booking) -> dict:
    """Factory arguments for more bookings of the same practice, type, provider and room."""
    return {
        "practice": booking.practice,
        "appointment_type": booking.appointment_type,
        "provider": booking.provider,
        "operatory": booking.operatory,
    }


def build(practice):
    """Bookings over the window: 3 today, 2 ten days ago, 1 before the window."""
    first = BookingFactory(practice=practice, status="confirmed", attempts=1)
    kw = same_slot_as(first)
    BookingFactory(**kw, status="confirmed", attempts=3)
    BookingFactory(**kw, status="failed", attempts=1, failure_reason="EHR refused the slot")
    BookingFactory(
        **kw,
        status="failed",
        attempts=2,
        failure_reason="EHR refused the slot",
        created_at=days_ago(10),
    )
    pending = BookingFactory(**kw, status="pending", created_at=days_ago(10))
    BookingFactory(
        **kw, status="failed", failure_reason="Patient not found", created_at=days_ago(40)
    )
    with cross_tenant("test data setup"):
        OutboxMessage.objects.create(practice=practice, kind="process_booking", booking=pending)
        OutboxMessage.objects.create(
            practice=practice,
            kind="process_booking",
            booking=first,
            dispatched_at=timezone.now(),
        )
    return first


def figures_of(practice):
    with tenant_context(practice):
        return dashboard.figures(practice)


def test_figures_count_the_agents_bookings_in_the_window(practice, other_practice):
    build(practice)
    build(other_practice)  # never counted here
    f = figures_of(practice)
    assert f["made"] == 5
    assert f["settled"] == 4  # 2 confirmed + 2 failed in the window; the pending one is not
    assert f["first_try"] == 1
    assert f["first_try_percent"] == 25
    assert f["queue"] == {
        "outbox_pending": 1,
        "bookings_pending": 1,
        "needs_attention": 3,
        "requests": 0,
    }

    chart = f["bookings_chart"]
    assert len(chart.bars) == dashboard.DAYS
    assert [b.value for b in chart.bars][-1] == 3
    assert [b.value for b in chart.bars][-11] == 2
    assert sum(b.value for b in chart.bars) == 5
    tallest = max(chart.bars, key=lambda b: b.value)
    assert tallest.height == dashboard.COLUMN_H and tallest.y == 0

    failures = f["failures_chart"]
    assert [(b.label, b.value) for b in failures.bars] == [("Other", 2)]

    first_try = f["first_try_chart"]  # both bars are shares: never a per cent beside a count
    assert [(b.label, b.value, b.text) for b in first_try.bars] == [
        ("First try", 25.0, "25% (1 of 4)"),
        ("Retried or failed", 75.0, "75% (3 of 4)"),
    ]


def test_failures_group_by_category_without_ids_or_the_callers_words(practice):
    from booking.failures import FailureCategory, category_of

    first = BookingFactory(practice=practice, status="confirmed", attempts=1)
    kw = {**same_slot_as(first), "status": "failed"}
    reasons = [
        "The slot was taken in the EHR before we could book it (EHR appointment 7101). Offer "
        "the caller another time.",
        "The slot was taken in the EHR before we could book it (EHR appointment 7102). Offer "
        "the caller another time.",
        "The EHR refused to write appointment 88: double booked. Check the schedule for a "
        "clash, then retry or book by hand.",
        "The EHR refused the booking: patient note 'my tooth hurts since Tuesday' too long. "
        "Fix the details, then retry.",
        "The EHR kept failing (EHRServerError: 503) after 11 attempts. Check the connection, "
        "then retry.",
        "Not mapped to the EHR: provider Dr. Cho has no EHR id.",
        "Patient details missing (date_of_birth).",
        "Something nobody foresaw",
    ]
    for reason in reasons:
        BookingFactory(**kw, failure_reason=reason)
    bars = {b.label: b.value for b in figures_of(practice)["failures_chart"].bars}
    assert bars == {
        "Slot taken in the EHR": 3,
        "EHR refused the details": 1,
        "EHR kept failing": 1,
        "Not set up for the EHR": 1,
        "Patient details missing": 1,
        "Other": 1,
    }
    assert [category_of(r) for r in reasons[:2]] == [FailureCategory.SLOT_TAKEN] * 2
    assert not any(ch.isdigit() for label in bars for ch in label)


def test_a_practice_without_data_gets_empty_states_not_errors(practice):
    f = figures_of(practice)
    assert f["made"] == 0 and f["first_try_share"] is None
    for key in ("bookings_chart", "first_try_chart", "failures_chart", "latency_chart"):
        assert not f[key].has_data
        assert f[key].empty


def test_ehr_latency_errors_and_freshness_lag_come_from_live_and_stored_health(practice):
    conn = connect(
        practice, calls=10, errors={"timeout": 2}, latency_p50_ms=999, freshness_lag_p95_ms=4000
    )
    recorder = HealthRecorder(conn.health_key)
    for seconds in (0.100, 0.100, 0.300):
        recorder.record(Figure.ATTEMPT, seconds)
    recorder.record(Figure.ATTEMPT, 0.050, "5xx")
    recorder.record(Figure.FRESHNESS, 12.5, "webhooks")
    f = figures_of(practice)
    [c] = f["connections"]
    assert c.calls == 14
    assert c.errors == {"timeout": 2, "5xx": 1}
    assert c.latency_p50_ms == 100.0  # the live window wins over the stored figure
    assert c.latency_p95_ms == 300.0
    assert c.freshness_lag_p95_ms == 12500.0 and c.freshness_source == "webhook lag"
    latency = {b.label: b.text for b in f["latency_chart"].bars}
    assert latency == {"Main Office p50": "100 ms", "Main Office p95": "300 ms"}
    assert {b.label: b.text for b in f["errors_chart"].bars} == {
        "timeout": "2 of 14 calls",
        "5xx": "1 of 14 calls",
    }
    assert {b.label: b.text for b in f["lag_chart"].bars}["Main Office webhook lag p95"] == "12.5 s"


def test_figures_take_a_constant_number_of_queries(practice, django_assert_num_queries):
    build(practice)
    connect(practice, "One")
    connect(practice, "Eye", ConnectionKind.NEXTECH)
    with tenant_context(practice), django_assert_num_queries(5):
        dashboard.figures(practice)
    for i in range(3):
        build(practice)
        connect(practice, f"Office {i}", calls=1)
        connect(practice, f"Skin {i}", ConnectionKind.NEXTECH, requests=2, first_try_ok=1)
    with tenant_context(practice), django_assert_num_queries(5):
        dashboard.figures(practice)


def test_the_integration_health_panel_shows_both_adapters_figures(manager_client, practice):
    nexhealth = connect(practice, "Main Office", requests=4, first_try_ok=4)
    nextech = connect(
        practice,
        "Eye Center",
        ConnectionKind.NEXTECH,
        requests=10,
        first_try_ok=8,
        failures={"rate_limited": 1, "auth": 1},
        rate_limit_waits=3,
        rate_limit_wait_seconds=2.5,
    )
    HealthRecorder(nexhealth.health_key).record(Figure.FRESHNESS, 0.8, "webhooks")
    HealthRecorder(nextech.health_key).record(Figure.FRESHNESS, 2.0, "polled_changes")
    page = manager_client.get("/p/alpha/").content.decode()
    assert 'id="integration-health"' in page
    assert f'id="health-{nexhealth.pk}-first-try">100%<' in page
    assert f'id="health-{nextech.pk}-first-try">80%<' in page
    assert f'id="health-{nextech.pk}-failed">2<' in page
    assert f'id="health-{nextech.pk}-rate-waits">3<' in page and "2.5 s waited in all" in page
    assert f'id="health-{nexhealth.pk}-lag">800 ms<' in page
    assert f'id="health-{nextech.pk}-lag">2000 ms<' in page
    assert "Freshness (webhook lag) p95" in page and "Freshness (poll lag) p95" in page
    f = figures_of(practice)
    lags = {b.label: b.text for b in f["lag_chart"].bars}
    assert lags["Eye Center poll lag p95"] == "2000 ms"
    assert lags["Main Office webhook lag p95"] == "800 ms"


def test_the_dashboard_page_has_svg_charts_and_constant_queries(manager_client, practice):
    build(practice)
    connect(practice)
    connect(practice, "Eye Center", ConnectionKind.NEXTECH)
    manager_client.get("/p/alpha/")  # warm the session and caches

    def count_queries():
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as ctx:
            response = manager_client.get("/p/alpha/")
        assert response.status_code == 200
        return len(ctx.captured_queries), response.content.decode()

    before, page = count_queries()
    for i in range(4):
        build(practice)
        connect(practice, f"Office {i}")
        connect(practice, f"Skin Clinic {i}", ConnectionKind.NEXTECH)
    after, page = count_queries()
    assert before > 10 and after == before

    assert page.count('<svg viewBox="0 0 640') == 3  # bookings, first try, failures
    assert "No EHR calls measured yet." in page and "No changes seen from the EHR yet." in page
    assert len(re.findall(r'<rect [^>]*data-value="', page)) == dashboard.DAYS
    assert 'id="figure-bookings">25<' in page
    assert 'id="queue-needs-attention">15<' in page
    assert 'id="oncall-gaps"' in page  # the manager staffs the rota


def test_requests_waiting_for_the_front_desk_are_counted_not_the_ehrs_own(
    manager_client, practice, other_practice
):
    first = build(practice)
    kw = same_slot_as(first)
    BookingFactory(**kw, status="requested")  # in our front desk's queue
    BookingFactory(**kw, status="requested", ehr_appointment_id=77)  # on the EHR's list
    BookingFactory(**kw, status="declined")
    BookingFactory(**same_slot_as(build(other_practice)), status="requested")
    assert figures_of(practice)["queue"]["requests"] == 1
    page = manager_client.get("/p/alpha/").content.decode()
    assert 'id="queue-requests">1<' in page


def test_front_desk_sees_the_figures_but_not_the_checklist(client, practice):
    user = staff_member(practice, Role.FRONT_DESK)
    verify_second_factor(client, user)
    page = client.get("/p/alpha/").content.decode()
    assert 'id="figure-bookings">0<' in page
    assert "No bookings yet in the last 30 days" in page
    assert 'id="golive-checklist"' not in page


def test_on_call_gaps_show_to_clinicians_until_the_week_is_covered(client, practice):
    from calls.models import OnCallShift
    from tests.scheduling.factories import ProviderFactory

    user = staff_member(practice, Role.CLINICIAN)
    verify_second_factor(client, user)
    page = client.get("/p/alpha/").content.decode()
    assert 'id="oncall-gaps"' in page and "when urgent callers would reach nobody" in page

    provider = ProviderFactory(practice=practice)
    now = timezone.now()
    with tenant_context(practice):
        OnCallShift.objects.create(
            practice=practice,
            provider=provider,
            start=now - timedelta(hours=1),
            end=now + timedelta(days=8),
        )
    page = client.get("/p/alpha/").content.decode()
    assert "Covered: someone is on call at every hour." in page


def test_front_desk_does_not_see_on_call_gaps(client, practice):
    user = staff_member(practice, Role.FRONT_DESK)
    verify_second_factor(client, user)
    assert 'id="oncall-gaps"' not in client.get("/p/alpha/").content.decode()
