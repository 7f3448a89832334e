"""The on-call rota: who is on call at a moment, the gaps (DST-correct days), the calendar page
(add in local time, refuse nonsense, delete after confirming), the dashboard partial, roles."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.template.loader import render_to_string

from accounts.models import Role
from calls.escalation import selectors, services
from calls.models import OnCallGroup, OnCallShift
from core.tenancy import tenant_context
from tests.calls.test_escalation_world import clinic
from tests.conftest import verify_second_factor
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

LA = ZoneInfo("America/Los_Angeles")


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=LA)


D = date(2026, 12, 7)  # a Monday


@pytest.fixture
def surgery():
    return clinic()


def test_gaps_are_the_hours_nobody_covers(surgery):
    surgery.on_call("martinez", at(D, 17), at(D + timedelta(days=1), 8))
    # a backup overlapping the primary does not make a gap, nor count twice
    surgery.on_call("chen", at(D + timedelta(days=1), 6), at(D + timedelta(days=1), 18))
    surgery.on_call("martinez", at(D + timedelta(days=1), 20), at(D + timedelta(days=2), 8))
    with tenant_context(surgery.practice):
        gaps = selectors.on_call_gaps(surgery.practice, D, 2)
    assert [(g.start, g.end) for g in gaps] == [
        (at(D, 0), at(D, 17)),
        (at(D + timedelta(days=1), 18), at(D + timedelta(days=1), 20)),
    ]
    assert [g.hours for g in gaps] == [17.0, 2.0]


def test_a_gap_on_the_day_clocks_change_has_its_real_length(surgery):
    fall_back = date(2026, 11, 1)  # 25 hours long in Los Angeles
    with tenant_context(surgery.practice):
        (gap,) = selectors.on_call_gaps(surgery.practice, fall_back, 1)
    assert gap.hours == 25.0
    assert gap.start == at(fall_back, 0) and gap.end == at(fall_back + timedelta(days=1), 0)


def test_who_is_on_call_at_a_moment_is_the_latest_hand_over(surgery):
    surgery.on_call("martinez", at(D, 8), at(D, 20))
    surgery.on_call("chen", at(D, 12), at(D, 14))  # covers for two hours
    with tenant_context(surgery.practice):
        assert selectors.on_call_at(surgery.practice, at(D, 9)).provider.key == "martinez"
        assert selectors.on_call_at(surgery.practice, at(D, 13)).provider.key == "chen"
        assert selectors.on_call_at(surgery.practice, at(D, 20)) is None  # end is exclusive


def test_the_calendar_splits_days_at_hand_overs_and_marks_gaps(surgery):
    surgery.on_call("martinez", at(D, 17), at(D + timedelta(days=1), 8))
    with tenant_context(surgery.practice):
        monday, tuesday = selectors.rota_calendar(surgery.practice, D, 2)
    assert [(s.start.hour, s.end.hour, s.is_gap) for s in monday.segments] == [
        (0, 17, True),
        (17, 0, False),
    ]
    assert monday.gap_hours == 17.0 and tuesday.gap_hours == 16.0
    assert sum(s.percent for s in monday.segments) == pytest.approx(100)


def member(client, practice, role):
    user = UserFactory(totp=True)
    MembershipFactory(user=user, practice=practice, role=role)
    verify_second_factor(client, user)
    return user


def test_a_clinician_adds_a_shift_in_local_time_and_sees_it_on_the_calendar(client, surgery):
    user = member(client, surgery.practice, Role.CLINICIAN)
    url = f"/p/{surgery.practice.slug}/on-call/"
    response = client.post(
        url,
        {
            "provider": surgery.providers["chen"].pk,
            "start": "2026-12-07T17:00",
            "end": "2026-12-08T08:00",
            "note": "Holiday cover",
        },
    )
    assert response.status_code == 302 and response["Location"].endswith("?month=2026-12")
    with tenant_context(surgery.practice):
        shift = OnCallShift.objects.get()
    assert (shift.start, shift.end) == (at(D, 17), at(D + timedelta(days=1), 8))
    assert shift.created_by == user and shift.note == "Holiday cover"

    page = client.get(f"{url}?month=2026-12").content.decode()
    assert "Dr. Chen" in page and "Mon 7 Dec 2026, 17:00" in page
    assert 'class=" has-gap" data-day="2026-12-07"' in page  # 17 h before the shift
    assert "On-call coverage" in page


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"start": "2026-12-07T17:00", "end": "2026-12-07T09:00"}, "Must be after the start."),
        ({"start": "2026-12-08T07:00", "end": "2026-12-08T09:00"}, "already on call"),
        ({"provider": "lee"}, "Select a valid choice"),  # no on-call phone
    ],
)
def test_nonsense_shifts_are_refused_with_the_reason(client, surgery, form, error):
    surgery.on_call("chen", at(D, 17), at(D + timedelta(days=1), 8))
    member(client, surgery.practice, Role.CLINICIAN)
    provider = surgery.providers[form.pop("provider", "chen")].pk
    body = {"provider": provider, "start": "2026-12-09T17:00", "end": "2026-12-10T08:00", **form}
    response = client.post(f"/p/{surgery.practice.slug}/on-call/", body)
    assert response.status_code == 200
    assert error in response.content.decode()
    with tenant_context(surgery.practice):
        assert OnCallShift.objects.count() == 1


def test_deleting_a_shift_asks_first(client, surgery):
    shift = surgery.on_call("chen", at(D, 17), at(D + timedelta(days=1), 8))
    member(client, surgery.practice, Role.CLINICIAN)
    url = f"/p/{surgery.practice.slug}/on-call/{shift.pk}/delete/"
    assert "Delete this on-call shift?" in client.get(url).content.decode()
    with tenant_context(surgery.practice):
        assert OnCallShift.objects.count() == 1
    assert client.post(url).status_code == 302
    with tenant_context(surgery.practice):
        assert OnCallShift.objects.count() == 0


def test_managers_see_the_rota_but_do_not_change_it(client, surgery):
    shift = surgery.on_call("chen", at(D, 17), at(D + timedelta(days=1), 8))
    member(client, surgery.practice, Role.PRACTICE_MANAGER)
    url = f"/p/{surgery.practice.slug}/on-call/"
    page = client.get(f"{url}?month=2026-12").content.decode()
    assert "Dr. Chen" in page and "Add a shift" not in page
    body = {"provider": shift.provider_id, "start": "2026-12-09T17:00", "end": "2026-12-10T08:00"}
    assert client.post(url, body).status_code == 403
    assert client.post(f"{url}{shift.pk}/delete/").status_code == 403


def test_another_practices_shift_is_404(client, surgery):
    other = clinic("beta", "Beta")
    theirs = other.on_call("chen", at(D, 17), at(D + timedelta(days=1), 8))
    member(client, surgery.practice, Role.CLINICIAN)
    assert client.post(f"/p/{surgery.practice.slug}/on-call/{theirs.pk}/delete/").status_code == 404


def test_the_dashboard_partial_lists_the_gaps(surgery):
    surgery.on_call("martinez", at(D, 0), at(D, 20))
    with tenant_context(surgery.practice):
        gaps = selectors.on_call_gaps(surgery.practice, D, 1)
    html = render_to_string(
        "calls/escalation/_oncall_gaps.html", {"gaps": gaps, "days": 1, "current_practice": None}
    )
    assert "1 gap when urgent callers would reach nobody" in html
    assert "Mon 7 Dec, 20:00 PST \u2013 Tue 8 Dec, 00:00 PST (4.0 h)" in html
    covered = render_to_string("calls/escalation/_oncall_gaps.html", {"gaps": []})
    assert "Covered: someone is on call at every hour." in covered


def test_the_rota_page_costs_the_same_queries_however_many_shifts(client, surgery):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    member(client, surgery.practice, Role.CLINICIAN)
    url = f"/p/{surgery.practice.slug}/on-call/?month=2026-12"
    surgery.on_call("chen", at(D, 17), at(D + timedelta(days=1), 8))
    client.get(url)

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured.captured_queries)

    few = count()
    for n in range(1, 8):
        day = D + timedelta(days=n)
        surgery.on_call(
            "martinez" if n % 2 else "chen", at(day, 17), at(day + timedelta(days=1), 8)
        )
    assert count() == few


# --- one line per on-call group ----------------------------------------------------------------


def test_the_rota_has_a_line_per_group_and_each_group_has_its_own_gaps(surgery):
    with tenant_context(surgery.practice):
        eyes = services.group_for(surgery.practice, "ophthalmology", "Ophthalmology on call")
    surgery.on_call("martinez", at(D, 0), at(D + timedelta(days=1), 0))  # default group
    with tenant_context(surgery.practice):
        services.add_shift(
            surgery.practice, surgery.providers["chen"], at(D, 8), at(D, 20), group=eyes
        )
        lines = {
            line.group.key: line for line in selectors.rota_lines(surgery.practice, at(D, 9), 1)
        }
        eye_gaps = selectors.on_call_gaps(surgery.practice, D, 1, eyes.pk)
        default_gaps = selectors.on_call_gaps(surgery.practice, D, 1)
    assert set(lines) == {"on-call", "ophthalmology"}
    assert lines["ophthalmology"].on_call_now.provider.key == "chen"
    assert lines["on-call"].on_call_now.provider.key == "martinez"
    # martinez covering the default group does not cover ophthalmology's evening
    assert [(g.start.hour, g.end.hour) for g in eye_gaps] == [(0, 8), (20, 0)]
    assert default_gaps == []


def test_a_clinician_adds_a_group_and_a_shift_for_it_on_the_rota_page(client, surgery):
    member(client, surgery.practice, Role.CLINICIAN)
    url = f"/p/{surgery.practice.slug}/on-call/"
    response = client.post(url, {"group_name": "Ophthalmology on call"})
    assert response.status_code == 302 and response["Location"].endswith("?group=ophthalmology")
    with tenant_context(surgery.practice):
        eyes = OnCallGroup.objects.get(key="ophthalmology")
    response = client.post(
        url,
        {
            "provider": surgery.providers["chen"].pk,
            "group": eyes.pk,
            "start": "2026-12-07T17:00",
            "end": "2026-12-08T08:00",
        },
    )
    assert response.status_code == 302
    with tenant_context(surgery.practice):
        assert OnCallShift.objects.get().group == eyes
    page = client.get(f"{url}?group=ophthalmology&month=2026-12").content.decode()
    assert 'data-group="ophthalmology"' in page and "Ophthalmology on call" in page
    assert 'id="calendar-group">Ophthalmology on call' in page
