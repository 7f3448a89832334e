"""The practice manager sets up a practice by hand in the portal: appointment types, providers,
rooms and their capabilities (a practice whose schedule is manual); an EHR-synced practice's
EHR-owned fields are read-only with their source and survive a POST; working hours that put
one provider in two rooms at once are flagged when saved."""

from __future__ import annotations

from datetime import time

import pytest

from accounts.models import Location, Role
from compliance.models import ChangeEntry
from core.tenancy import cross_tenant, tenant_context
from scheduling.models import AppointmentType, Operatory, Provider, WorkingHour
from tests.conftest import verify_second_factor
from tests.factories import LocationFactory, UserFactory, staff_member
from tests.scheduling.factories import (
    AppointmentDescriptorFactory,
    AppointmentTypeFactory,
    OperatoryFactory,
    ProviderFactory,
    WorkingHourFactory,
)
from tests.scheduling.test_pages import field_errors, type_form

pytestmark = pytest.mark.django_db
BASE = "/p/alpha/scheduling"


@pytest.fixture
def office(practice) -> Location:
    return LocationFactory(practice=practice, key="main", name="Main Office")


def synced(location: Location) -> None:
    with cross_tenant("test: the location's schedule comes from the EHR"):
        Location.objects.filter(pk=location.pk).update(working_hours_mode="synced")


def test_a_manager_adds_a_provider_a_room_with_capabilities_and_a_type_that_needs_it(
    manager_client, manager, practice, office
):
    assert manager_client.get(f"{BASE}/types/new/").status_code == 200
    page = manager_client.get(f"{BASE}/providers/").content.decode()
    assert 'id="add-provider"' in page

    made = manager_client.post(
        f"{BASE}/providers/new/",
        {"name": "Dr. Ana Cho", "accepts_new_patients": "on", "on_call_phone": "555 555 0199"},
    )
    assert made.status_code == 302
    with tenant_context(practice):
        cho = Provider.objects.get(name="Dr. Ana Cho")
    assert made["Location"] == f"{BASE}/providers/{cho.pk}/"
    assert (cho.key, cho.on_call_phone, cho.ehr_id) == ("dr-ana-cho", "+15555550199", None)
    again = manager_client.post(f"{BASE}/providers/new/", {"name": "dr. ana cho"})
    assert "already a provider called" in " ".join(field_errors(again.content.decode(), "name"))

    rooms = manager_client.get(f"{BASE}/rooms/").content.decode()
    assert 'id="add-room"' in rooms and "No rooms yet" in rooms
    bad = manager_client.post(
        f"{BASE}/rooms/new/",
        {"location": office.pk, "name": "Laser room", "capabilities": "laser, x ray!"},
    )
    assert bad.status_code == 400
    assert "not a capability name" in " ".join(field_errors(bad.content.decode(), "capabilities"))
    room = manager_client.post(
        f"{BASE}/rooms/new/",
        {"location": office.pk, "name": "Laser room", "capabilities": "Laser, imaging, laser"},
    )
    assert room.status_code == 302
    with tenant_context(practice):
        laser = Operatory.objects.get(name="Laser room")
    assert laser.capabilities == ["imaging", "laser"] and laser.location_id == office.pk
    rooms = manager_client.get(f"{BASE}/rooms/").content.decode()
    assert f'id="room-{laser.pk}"' in rooms and "<code>laser</code>" in rooms
    assert "Set up here" in rooms

    # The new room's capabilities are offered as a type's requirement.
    form = manager_client.get(f"{BASE}/types/new/").content.decode()
    assert 'value="laser"' in form and f'value="{cho.pk}"' in form
    created = manager_client.post(
        f"{BASE}/types/new/",
        {
            "name": "Laser Hair Removal",
            "minutes": 45,
            "new_patients": "on",
            "existing_patients": "on",
            "bookable": "on",
            "booking_mode": "request",
            "lead_time_hours": 24,
            "horizon_days": 60,
            "providers": [cho.pk],
            "required_capabilities": ["laser"],
        },
    )
    assert created.status_code == 302
    with tenant_context(practice):
        t = AppointmentType.objects.get(name="Laser Hair Removal")
        assert list(t.providers.all()) == [cho] and t.required_capabilities == ["laser"]
        assert ChangeEntry.objects.filter(object_pk=str(t.pk), actor=manager).exists()
    assert (t.key, t.minutes, t.lead_time_hours, t.bookable) == ("laser-hair-removal", 45, 24, True)
    assert t.booking_mode == "request"

    # Capabilities of an existing room are edited on its page.
    manager_client.post(
        f"{BASE}/rooms/{laser.pk}/",
        {"name": "Laser room 1", "active": "on", "capabilities": "laser"},
    )
    with tenant_context(practice):
        laser.refresh_from_db()
    assert (laser.name, laser.capabilities) == ("Laser room 1", ["laser"])


def test_a_synced_practice_adds_nothing_here_and_ehr_fields_are_read_only(
    manager_client, practice, office
):
    synced(office)
    for what in ("types", "providers"):
        page = manager_client.get(f"{BASE}/{what}/new/").content.decode()
        assert 'id="synced-only"' in page and 'name="minutes"' not in page
        refused = manager_client.post(f"{BASE}/{what}/new/", {"name": "Sneaky", "minutes": 30})
        assert refused.status_code == 400
    assert 'id="add-type"' not in manager_client.get(f"{BASE}/types/").content.decode()
    assert 'id="add-room"' not in manager_client.get(f"{BASE}/rooms/").content.decode()
    with tenant_context(practice):
        assert not AppointmentType.objects.filter(name="Sneaky").exists()
        assert not Provider.objects.filter(name="Sneaky").exists()

    # An EHR type: name, length and codes read-only with their source; a POST cannot move them
    # (set 210, "Saved", sync, back to 240 no longer happens: 240 stays and the page says why).
    code = AppointmentDescriptorFactory(practice=practice, location=office, code="D0150")
    implant = AppointmentTypeFactory(practice=practice, name="Implant consult", minutes=240)
    with cross_tenant("test: linked by the sync"):
        AppointmentType.objects.filter(pk=implant.pk).update(ehr_id=9001)
        implant.refresh_from_db()
    page = manager_client.get(f"{BASE}/types/{implant.pk}/").content.decode()
    assert "From the EHR (EHR id 9001)" in page
    assert page.count("disabled") >= 3  # name, minutes, each EHR code
    saved = manager_client.post(
        f"{BASE}/types/{implant.pk}/",
        type_form(implant, minutes=210, name="Renamed", descriptors=[code.pk], lead_time_hours=48),
    )
    assert saved.status_code == 302
    with tenant_context(practice):
        implant.refresh_from_db()
        assert (implant.name, implant.minutes, implant.lead_time_hours) == (
            "Implant consult",
            240,
            48,
        )
        assert list(implant.descriptors.all()) == []

    # An EHR room: name and status the EHR's, capabilities the practice's own.
    op = OperatoryFactory(practice=practice, location=office, name="Op 7", capabilities=[])
    with cross_tenant("test: linked by the sync"):
        Operatory.objects.filter(pk=op.pk).update(ehr_id=31)
    page = manager_client.get(f"{BASE}/rooms/{op.pk}/").content.decode()
    assert 'id="ehr-linked"' in page and "From the EHR (EHR id 31)" in page
    manager_client.post(f"{BASE}/rooms/{op.pk}/", {"name": "Mine now", "capabilities": "imaging"})
    with tenant_context(practice):
        op.refresh_from_db()
    assert (op.name, op.active, op.capabilities) == ("Op 7", True, ["imaging"])


def test_hours_that_put_a_provider_in_two_rooms_at_once_are_flagged(
    manager_client, practice, office
):
    patel = ProviderFactory(practice=practice, name="Dr. Patel")
    op1 = OperatoryFactory(practice=practice, location=office, name="Op 1")
    op2 = OperatoryFactory(practice=practice, location=office, name="Op 2")
    WorkingHourFactory(
        practice=practice,
        provider=patel,
        operatory=op1,
        days=["Monday", "Tuesday"],
        begin=time(8),
        end=time(12),
    )
    response = manager_client.post(
        f"{BASE}/schedule/hours/new/",
        {
            "provider": patel.pk,
            "operatory": op2.pk,
            "days": ["Tuesday", "Wednesday"],
            "begin": "11:00",
            "end": "15:00",
        },
        follow=True,
    )
    page = response.content.decode()
    assert "Saved the working hours." in page
    assert "Dr. Patel is also in Op 1 (Main Office) on Tuesday, 11:00 to 12:00" in page
    # Back to back, or the same room, is no clash.
    quiet = manager_client.post(
        f"{BASE}/schedule/hours/new/",
        {
            "provider": patel.pk,
            "operatory": op2.pk,
            "days": ["Monday"],
            "begin": "12:00",
            "end": "13:00",
        },
        follow=True,
    ).content.decode()
    assert "Saved the working hours." in quiet and "is also in" not in quiet
    with tenant_context(practice):
        assert WorkingHour.objects.filter(provider=patel).count() == 3


def test_a_specific_date_clashes_with_a_weekly_entry_on_its_weekday(practice, office):
    from datetime import date

    from scheduling import catalog_selectors

    patel = ProviderFactory(practice=practice, name="Dr. Patel")
    op1 = OperatoryFactory(practice=practice, location=office, name="Op 1")
    op2 = OperatoryFactory(practice=practice, location=office, name="Op 2")
    weekly = WorkingHourFactory(
        practice=practice,
        provider=patel,
        operatory=op1,
        days=["Friday"],
        begin=time(9),
        end=time(17),
    )
    friday = date(2031, 3, 7)
    one_day = WorkingHourFactory(
        practice=practice,
        provider=patel,
        operatory=op2,
        days=[],
        specific_date=friday,
        begin=time(16),
        end=time(18),
    )
    with tenant_context(practice):
        [clash] = catalog_selectors.provider_room_clashes(practice, one_day)
        assert clash.other.pk == weekly.pk and clash.days == ["2031-03-07"]
        assert (clash.begin, clash.end) == (time(16), time(17))
        saturday = WorkingHour.objects.get(pk=one_day.pk)
        saturday.specific_date = date(2031, 3, 8)
        assert catalog_selectors.provider_room_clashes(practice, saturday) == []


def test_rooms_and_new_pages_are_the_managers_and_this_practices(
    client, practice, office, other_practice
):
    theirs = OperatoryFactory(
        practice=other_practice,
        location=LocationFactory(practice=other_practice, key="x", name="Elsewhere"),
        name="Their room",
    )
    clinician = staff_member(practice, Role.CLINICIAN)
    verify_second_factor(client, clinician)
    assert client.get(f"{BASE}/rooms/").status_code == 200  # clinicians look, read-only
    for url in ("types/new/", "providers/new/", "rooms/new/"):
        assert client.get(f"{BASE}/{url}").status_code == 403
    mine = OperatoryFactory(practice=practice, location=office, name="Op 1")
    assert client.post(f"{BASE}/rooms/{mine.pk}/", {"name": "x"}).status_code == 403
    assert client.get(f"{BASE}/rooms/{theirs.pk}/").status_code == 404


def test_the_room_list_queries_do_not_grow_with_rows(
    manager_client, practice, office, django_assert_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    OperatoryFactory(practice=practice, location=office, name="Op 0")
    manager_client.get(f"{BASE}/rooms/")
    with CaptureQueriesContext(connection) as few:
        manager_client.get(f"{BASE}/rooms/")
    for i in range(1, 12):
        OperatoryFactory(practice=practice, location=office, name=f"Op {i}", capabilities=["x"])
    with django_assert_num_queries(len(few.captured_queries)):
        page = manager_client.get(f"{BASE}/rooms/").content.decode()
    assert page.count('<tr id="room-') == 12


def test_overlapping_hours_are_drawn_side_by_side_in_the_week(manager_client, practice, office):
    from datetime import date, timedelta

    patel = ProviderFactory(practice=practice, name="Dr. Patel")
    op1 = OperatoryFactory(practice=practice, location=office, name="Op 1")
    op2 = OperatoryFactory(practice=practice, location=office, name="Op 2")
    for room, begin, end in ((op1, 8, 12), (op2, 11, 15), (op1, 16, 18)):
        WorkingHourFactory(
            practice=practice,
            provider=patel,
            operatory=room,
            days=["Tuesday"],
            begin=time(begin),
            end=time(end),
        )
    monday = date.today() - timedelta(days=date.today().weekday()) + timedelta(days=7)
    page = manager_client.get(
        f"{BASE}/schedule/?show=provider-{patel.pk}&week={monday.isoformat()}"
    ).content.decode()
    assert page.count('class="item hour overlaps"') == 2
    assert 'data-width-percent="48" data-offset-percent="0"' in page
    assert 'data-width-percent="48" data-offset-percent="50"' in page
    assert page.count("data-offset-percent") == 2  # the 16:00 entry overlaps nothing


def test_a_read_only_support_session_and_a_missing_csrf_token_change_nothing(
    client, manager_client, practice, office
):
    from django.test import Client

    from accounts.models import VendorRole
    from tests.factories import sign_baa

    sign_baa(practice)
    room = OperatoryFactory(practice=practice, location=office, name="Op 1")
    kind = AppointmentTypeFactory(practice=practice, name="Consult")
    writes = [
        ("types/new/", {"name": "Sneaky", "minutes": 30, "new_patients": "on"}),
        (f"types/{kind.pk}/", {"name": kind.name, "minutes": 30, "booking_mode": "request"}),
        ("providers/new/", {"name": "Dr. Sneaky"}),
        ("rooms/new/", {"location": office.pk, "name": "Sneaky room"}),
        (f"rooms/{room.pk}/", {"name": "Renamed", "capabilities": "x"}),
    ]
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = manager_client.cookies
    for url, data in writes:
        assert strict.post(f"{BASE}/{url}", data).status_code == 403, url

    support = UserFactory(
        totp=True, username="support@hello.test", vendor_role=VendorRole.SUPPORT, is_staff=True
    )
    verify_second_factor(client, support)
    started = client.post(
        "/support/impersonate/",
        {"practice": "alpha", "reason": "set-up help", "ticket": "SUP-3", "minutes": 30},
    )
    assert started.status_code == 302
    assert client.get(f"{BASE}/rooms/").status_code == 200
    for url, data in writes:
        assert client.post(f"{BASE}/{url}", data).status_code == 403, url
    with tenant_context(practice):
        assert not AppointmentType.objects.filter(name="Sneaky").exists()
        assert not Provider.objects.filter(name="Dr. Sneaky").exists()
        assert list(Operatory.objects.values_list("name", flat=True)) == ["Op 1"]
        assert AppointmentType.objects.get(pk=kind.pk).booking_mode == "book"
