"""The practice manager's scheduling pages: appointment types, phrases, EHR codes, the "what would
the agent book?" console, providers and rules, the week grid of working hours and blocks."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Location, Practice, Role
from compliance.models import ChangeEntry
from core.tenancy import cross_tenant, tenant_context
from onboarding.services import import_config
from scheduling.models import (
    AppointmentDescriptor,
    AppointmentType,
    Block,
    CallerPhrase,
    Operatory,
    Provider,
    ProviderRule,
    WorkingHour,
)
from tests.conftest import verify_second_factor
from tests.factories import LocationFactory, MembershipFactory, UserFactory
from tests.scheduling.factories import (
    AppointmentDescriptorFactory,
    AppointmentTypeFactory,
    BlockFactory,
    OperatoryFactory,
    ProviderFactory,
    ProviderRuleFactory,
    WorkingHourFactory,
)

pytestmark = pytest.mark.django_db

ALL_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


@dataclass
class Clinic:
    practice: Practice
    location: Location
    patel: Provider
    op1: Operatory
    suite: Operatory
    d1110: AppointmentDescriptor
    cleaning: AppointmentType
    consult: AppointmentType
    hours: WorkingHour

    @property
    def base(self) -> str:
        return f"/p/{self.practice.slug}/scheduling"


@pytest.fixture
def clinic(practice) -> Clinic:
    location = LocationFactory(practice=practice, key="main", name="Main Office")
    patel = ProviderFactory(practice=practice, name="Dr. Patel", key="patel")
    op1 = OperatoryFactory(practice=practice, location=location, name="Operatory 1")
    suite = OperatoryFactory(
        practice=practice, location=location, name="Procedure Suite", capabilities=["procedure"]
    )
    d1110 = AppointmentDescriptorFactory(
        practice=practice, location=location, code="D1110", description="Prophylaxis Adult"
    )
    AppointmentDescriptorFactory(
        practice=practice, location=location, code="D0150", description="Comprehensive Eval"
    )
    cleaning = AppointmentTypeFactory(
        practice=practice, name="Cleaning", key="cleaning", phrases=["teeth cleaned"]
    )
    consult = AppointmentTypeFactory(
        practice=practice, name="New Patient Consultation", key="consult", minutes=60
    )
    hours = WorkingHourFactory(
        practice=practice,
        provider=patel,
        operatory=op1,
        days=ALL_DAYS,
        begin=time(8),
        end=time(18),
        appointment_types=[cleaning, consult],
    )
    return Clinic(practice, location, patel, op1, suite, d1110, cleaning, consult, hours)


def member_client(client, practice, role):
    user = UserFactory(totp=True)
    MembershipFactory(user=user, practice=practice, role=role)
    verify_second_factor(client, user)
    return client


def changes(practice, model, pk) -> list[ChangeEntry]:
    with tenant_context(practice):
        return list(
            ChangeEntry.objects.filter(
                content_type__model=model._meta.model_name, object_pk=str(pk)
            ).order_by("timestamp", "id")
        )


def type_form(t: AppointmentType, **overrides) -> dict:
    data = {
        "name": t.name,
        "minutes": t.minutes,
        "new_patients": "on" if t.new_patients else "",
        "existing_patients": "on" if t.existing_patients else "",
        "bookable": "on" if t.bookable else "",
        "booking_mode": t.booking_mode,
        "lead_time_hours": t.lead_time_hours,
        "horizon_days": t.horizon_days,
        "instructions": t.instructions,
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v != ""}


def field_errors(html: str, field: str) -> list[str]:
    """The error messages rendered inside the field's own wrapper (next to the field)."""
    match = re.search(rf'id="field-{field}".*?(?=id="field-|</form>)', html, re.S)
    assert match, f"no field {field} on the page"
    return re.findall(r'<p class="error"[^>]*>(.*?)</p>', match.group(0))


# --- appointment types -----------------------------------------------------------------------


def test_the_type_list_shows_this_practices_types_with_codes_and_filters(
    manager_client, clinic, other_practice
):
    with cross_tenant("test"):
        clinic.cleaning.descriptors.add(clinic.d1110)
        clinic.cleaning.providers.add(clinic.patel)
    AppointmentTypeFactory(practice=clinic.practice, name="Whitening", bookable=False)
    AppointmentTypeFactory(practice=other_practice, name="Rhinoplasty Consult")

    page = manager_client.get(f"{clinic.base}/types/").content.decode()
    assert "Cleaning" in page and "Whitening" in page and "Rhinoplasty" not in page
    assert "<code>D1110</code>" in page and "Dr. Patel" in page

    only = manager_client.get(f"{clinic.base}/types/?q=clean").content.decode()
    assert "Cleaning" in only and "Whitening" not in only
    by_phrase = manager_client.get(f"{clinic.base}/types/?q=teeth").content.decode()
    assert "Cleaning" in by_phrase and "New Patient Consultation" not in by_phrase
    not_bookable = manager_client.get(f"{clinic.base}/types/?bookable=no").content.decode()
    assert "Whitening" in not_bookable and ">Cleaning<" not in not_bookable
    nothing = manager_client.get(f"{clinic.base}/types/?q=zzz").content.decode()
    assert "No appointment type matches" in nothing


def test_the_type_list_paginates(manager_client, clinic):
    for i in range(30):
        AppointmentTypeFactory(practice=clinic.practice, name=f"Visit {i:02d}")
    first = manager_client.get(f"{clinic.base}/types/").content.decode()
    assert first.count("<tr>") == 26  # header + 25
    assert "Page 1 of 2 (32 in all)" in first
    second = manager_client.get(f"{clinic.base}/types/?page=2").content.decode()
    assert second.count("<tr>") == 8


def test_the_type_list_queries_do_not_grow_with_rows(
    manager_client, clinic, django_assert_num_queries
):
    url = f"{clinic.base}/types/"
    manager_client.get(url)
    with CaptureQueriesContext(connection) as few:
        assert manager_client.get(url).status_code == 200
    for i in range(15):
        t = AppointmentTypeFactory(
            practice=clinic.practice, name=f"Visit {i}", phrases=[f"visit {i}", f"see {i}"]
        )
        with cross_tenant("test"):
            t.providers.add(clinic.patel)
            t.descriptors.add(clinic.d1110)
    with django_assert_num_queries(len(few.captured_queries)):
        page = manager_client.get(url).content.decode()
    assert page.count("<code>D1110</code>") == 15


def test_a_manager_edits_a_type_and_the_change_is_audited_with_the_actor(
    manager_client, manager, clinic
):
    url = f"{clinic.base}/types/{clinic.cleaning.pk}/"
    page = manager_client.get(url).content.decode()
    assert "D1110 — Prophylaxis Adult (Main Office)" in page
    response = manager_client.post(
        url,
        type_form(
            clinic.cleaning,
            name="Adult Cleaning",
            minutes=45,
            lead_time_hours=4,
            providers=[clinic.patel.pk],
            descriptors=[clinic.d1110.pk],
            required_capabilities=["procedure"],
            instructions="Arrive 10 minutes early.",
        ),
    )
    assert response.status_code == 302
    with tenant_context(clinic.practice):
        saved = AppointmentType.objects.get(pk=clinic.cleaning.pk)
        assert (saved.name, saved.minutes, saved.lead_time_hours) == ("Adult Cleaning", 45, 4)
        assert list(saved.providers.all()) == [clinic.patel]
        assert list(saved.descriptors.values_list("code", flat=True)) == ["D1110"]
        assert saved.required_capabilities == ["procedure"]
    entries = changes(clinic.practice, AppointmentType, clinic.cleaning.pk)
    update = next(
        e for e in entries if e.action == ChangeEntry.Action.UPDATE and "name" in e.changes
    )
    assert update.action == ChangeEntry.Action.UPDATE
    assert update.changes["name"] == ["Cleaning", "Adult Cleaning"]
    assert update.actor_id == manager.pk
    assert update.practice_id == clinic.practice.pk
    # many-to-many changes (EHR codes, eligible providers) are audited too, with the actor
    codes = next(e for e in entries if "descriptors" in e.changes)
    assert codes.changes["descriptors"] == {
        "type": "m2m",
        "operation": "add",
        "objects": ["D1110 Prophylaxis Adult"],
    }
    assert (codes.actor_id, codes.practice_id) == (manager.pk, clinic.practice.pk)
    assert any("providers" in e.changes for e in entries)

    # unticking the code is recorded as its removal
    manager_client.post(url, type_form(saved, providers=[clinic.patel.pk]))
    last = changes(clinic.practice, AppointmentType, clinic.cleaning.pk)[-1]
    assert last.changes["descriptors"]["operation"] == "delete"


def test_type_validation_errors_are_shown_next_to_their_fields(manager_client, clinic):
    url = f"{clinic.base}/types/{clinic.cleaning.pk}/"
    response = manager_client.post(
        url,
        type_form(clinic.cleaning, minutes=0, new_patients="", existing_patients="", name=""),
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert field_errors(html, "minutes") == ["Ensure this value is greater than or equal to 1."]
    assert field_errors(html, "name") == ["This field is required."]
    assert field_errors(html, "new_patients") == [
        "Open the type to new patients, existing ones, or both."
    ]
    with tenant_context(clinic.practice):
        assert AppointmentType.objects.get(pk=clinic.cleaning.pk).minutes == 30


def test_a_manager_sets_the_booking_mode_with_what_it_means_for_each_ehr_audited(
    manager_client, manager, clinic
):
    url = f"{clinic.base}/types/{clinic.cleaning.pk}/"
    page = manager_client.get(url).content.decode()
    assert (
        'name="booking_mode" value="book"' in page
        and "checked" in page.split('value="book"', 1)[1].split(">", 1)[0]
    )
    assert "follow-up list" in page and "Requests page" in page  # Nextech's and ours
    missing = manager_client.post(url, type_form(clinic.cleaning, booking_mode=""))
    assert field_errors(missing.content.decode(), "booking_mode") == ["This field is required."]
    odd = manager_client.post(url, type_form(clinic.cleaning, booking_mode="maybe"))
    assert "not one of the available choices" in " ".join(
        field_errors(odd.content.decode(), "booking_mode")
    )
    saved = manager_client.post(url, type_form(clinic.cleaning, booking_mode="request"))
    assert saved.status_code == 302
    with tenant_context(clinic.practice):
        assert AppointmentType.objects.get(pk=clinic.cleaning.pk).booking_mode == "request"
    [entry] = [
        e
        for e in changes(clinic.practice, AppointmentType, clinic.cleaning.pk)
        if e.action == ChangeEntry.Action.UPDATE and "booking_mode" in e.changes
    ]
    assert entry.changes["booking_mode"] == ["book", "request"]
    assert (entry.actor_id, entry.practice_id) == (manager.pk, clinic.practice.pk)
    listed = manager_client.get(f"{clinic.base}/types/").content.decode()
    assert "Requests (staff confirm)" in listed


def test_a_clinician_sees_the_booking_mode_read_only_and_cannot_post_it(client, clinic):
    viewer = member_client(client, clinic.practice, Role.CLINICIAN)
    url = f"{clinic.base}/types/{clinic.cleaning.pk}/"
    page = viewer.get(url).content.decode()
    assert 'name="booking_mode" value="request"' in page
    assert page.split('value="request"', 1)[1].split(">", 1)[0].count("disabled") == 1
    refused = viewer.post(url, type_form(clinic.cleaning, booking_mode="request"))
    assert refused.status_code == 403
    with tenant_context(clinic.practice):
        assert AppointmentType.objects.get(pk=clinic.cleaning.pk).booking_mode == "book"


def test_phrases_are_added_and_removed_inline_with_htmx(manager_client, manager, clinic):
    url = f"{clinic.base}/types/{clinic.cleaning.pk}/phrases/"
    fragment = manager_client.post(url, {"text": "  hygiene   visit "}, HTTP_HX_REQUEST="true")
    html = fragment.content.decode()
    assert html.lstrip().startswith('<div id="phrases"')
    assert "hygiene visit" in html and "teeth cleaned" in html
    with tenant_context(clinic.practice):
        phrase = CallerPhrase.objects.get(text="hygiene visit")
    created = changes(clinic.practice, CallerPhrase, phrase.pk)
    assert [e.action for e in created] == [ChangeEntry.Action.CREATE]
    assert created[0].actor_id == manager.pk

    duplicate = manager_client.post(url, {"text": "Hygiene Visit"}, HTTP_HX_REQUEST="true")
    assert "is already a phrase of this type" in duplicate.content.decode()
    empty = manager_client.post(url, {"text": "   "}, HTTP_HX_REQUEST="true")
    assert 'id="id_phrase_text-error">This field is required.' in empty.content.decode()

    removed = manager_client.post(
        f"{url}{phrase.pk}/delete/", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "hygiene visit" not in removed and "teeth cleaned" in removed
    with tenant_context(clinic.practice):
        assert not CallerPhrase.objects.filter(pk=phrase.pk).exists()
    assert changes(clinic.practice, CallerPhrase, phrase.pk)[-1].action == (
        ChangeEntry.Action.DELETE
    )


def test_phrases_work_without_javascript_too(manager_client, clinic):
    url = f"{clinic.base}/types/{clinic.cleaning.pk}/phrases/"
    response = manager_client.post(url, {"text": "scale and polish"}, follow=True)
    assert "Added “scale and polish”." in response.content.decode()
    assert "scale and polish" in response.content.decode()


def test_the_type_page_lists_the_provider_rules_for_the_type(manager_client, clinic):
    ProviderRuleFactory(
        practice=clinic.practice,
        provider=clinic.patel,
        appointment_types=[clinic.consult],
        patient_status="new",
        days=["Tuesday"],
    )
    page = manager_client.get(f"{clinic.base}/types/{clinic.consult.pk}/").content.decode()
    assert "Tuesday, 12:00\u201317:00" in page and "New patients" in page
    other = manager_client.get(f"{clinic.base}/types/{clinic.cleaning.pk}/").content.decode()
    assert "No rules" in other


def test_an_ehr_linked_type_says_the_ehr_wins_on_sync(manager_client, clinic):
    with cross_tenant("test"):
        AppointmentType.objects.filter(pk=clinic.cleaning.pk).update(ehr_id=4242)
    page = manager_client.get(f"{clinic.base}/types/{clinic.cleaning.pk}/").content.decode()
    assert 'id="ehr-linked"' in page and "EHR id 4242" in page


# --- the console -----------------------------------------------------------------------------


def test_the_console_picks_the_type_and_shows_the_next_slots(manager_client, clinic):
    url = f"{clinic.base}/console/"
    assert "What would the agent book?" in manager_client.get(url).content.decode()
    fragment = manager_client.post(
        url,
        {"utterance": "I'd like to get my teeth cleaned", "patient_status": "existing"},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert "<h1>" not in fragment  # a partial for htmx
    first = fragment.split('<li class="answer card"')[1]
    assert f'data-type-id="{clinic.cleaning.pk}"' in first
    assert "100%" in first and "the agent's pick" in first
    assert "Dr. Patel" in first and "Operatory 1" in first
    assert first.count("<tr>") == 1 + 5  # header + the next five slots

    nothing = manager_client.post(
        url, {"utterance": "what is the weather", "patient_status": "new"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert 'id="no-match"' in nothing


def test_the_console_follows_the_type_settings(manager_client, clinic):
    """Not bookable by the agent: the console shows no slot for it, as the agent would offer
    none; existing-only types are not offered to new callers."""
    with cross_tenant("test"):
        AppointmentType.objects.filter(pk=clinic.cleaning.pk).update(new_patients=False)
    url = f"{clinic.base}/console/"
    new = manager_client.post(
        url, {"utterance": "teeth cleaned", "patient_status": "new"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert 'id="no-match"' in new


def test_the_console_without_javascript_renders_the_whole_page(manager_client, clinic):
    page = manager_client.post(
        f"{clinic.base}/console/", {"utterance": "teeth cleaned", "patient_status": "existing"}
    ).content.decode()
    assert "<h1>What would the agent book?</h1>" in page and "Cleaning" in page
    blank = manager_client.post(
        f"{clinic.base}/console/", {"utterance": "", "patient_status": "existing"}
    ).content.decode()
    assert field_errors(blank, "utterance") == ["This field is required."]


# --- providers and rules ---------------------------------------------------------------------


def test_providers_list_and_phone_is_normalised_to_e164_and_audited(
    manager_client, manager, clinic
):
    ProviderFactory(practice=clinic.practice, name="Dr. Lee")
    page = manager_client.get(f"{clinic.base}/providers/").content.decode()
    assert "Dr. Patel" in page and "Dr. Lee" in page
    assert "Dr. Lee" not in manager_client.get(f"{clinic.base}/providers/?q=pat").content.decode()

    url = f"{clinic.base}/providers/{clinic.patel.pk}/"
    response = manager_client.post(url, {"on_call_phone": "(555) 555-0101"})
    assert response.status_code == 302
    with tenant_context(clinic.practice):
        saved = Provider.objects.get(pk=clinic.patel.pk)
    assert (saved.on_call_phone, saved.accepts_new_patients) == ("+15555550101", False)
    entry = changes(clinic.practice, Provider, clinic.patel.pk)[-1]
    assert entry.changes["on_call_phone"] == ["", "+15555550101"]
    assert entry.actor_id == manager.pk


@pytest.mark.parametrize("phone", ["12", "+1 555", "call me maybe", "+15555550101999999"])
def test_an_impossible_phone_is_refused_next_to_the_field(manager_client, clinic, phone):
    url = f"{clinic.base}/providers/{clinic.patel.pk}/"
    response = manager_client.post(url, {"on_call_phone": phone, "accepts_new_patients": "on"})
    assert response.status_code == 200
    assert field_errors(response.content.decode(), "on_call_phone") == [
        "Enter a phone number with its country code, for example +15555550101."
    ]


def test_rules_are_added_edited_and_deleted_after_a_confirmation(manager_client, clinic):
    base = f"{clinic.base}/providers/{clinic.patel.pk}/rules/"
    bad = manager_client.post(
        f"{base}new/",
        {"patient_status": "new", "begin": "17:00", "end": "12:00"},
    ).content.decode()
    assert field_errors(bad, "end") == ["Must be later than the start."]
    assert field_errors(bad, "days") == ["Choose at least one day."]
    assert field_errors(bad, "appointment_types") == ["This field is required."]

    created = manager_client.post(
        f"{base}new/",
        {
            "appointment_types": [clinic.consult.pk],
            "patient_status": "new",
            "days": ["Thursday", "Tuesday"],
            "begin": "12:00",
            "end": "17:00",
        },
    )
    assert created.status_code == 302
    with tenant_context(clinic.practice):
        rule = ProviderRule.objects.get(provider=clinic.patel)
    assert rule.days == ["Tuesday", "Thursday"]
    page = manager_client.get(f"{clinic.base}/providers/{clinic.patel.pk}/").content.decode()
    assert "Tuesday, Thursday, 12:00\u201317:00" in page

    manager_client.post(
        f"{base}{rule.pk}/",
        {
            "appointment_types": [clinic.consult.pk, clinic.cleaning.pk],
            "patient_status": "any",
            "days": ["Friday"],
            "begin": "08:00",
            "end": "10:30",
        },
    )
    with tenant_context(clinic.practice):
        rule.refresh_from_db()
        assert set(rule.appointment_types.all()) == {clinic.consult, clinic.cleaning}
    assert (rule.days, rule.begin, rule.patient_status) == (["Friday"], time(8), "any")

    confirm = manager_client.get(f"{base}{rule.pk}/delete/").content.decode()
    assert "Delete this rule of Dr. Patel (Friday, 08:00 to 10:30)?" in confirm
    with tenant_context(clinic.practice):
        assert ProviderRule.objects.filter(pk=rule.pk).exists()  # asking deletes nothing
    manager_client.post(f"{base}{rule.pk}/delete/")
    with tenant_context(clinic.practice):
        assert not ProviderRule.objects.filter(pk=rule.pk).exists()
    actions = [e.action for e in changes(clinic.practice, ProviderRule, rule.pk)]
    assert actions[0] == ChangeEntry.Action.CREATE and actions[-1] == ChangeEntry.Action.DELETE


def test_the_provider_list_queries_do_not_grow_with_rows(
    manager_client, clinic, django_assert_num_queries
):
    url = f"{clinic.base}/providers/"
    manager_client.get(url)
    with CaptureQueriesContext(connection) as few:
        manager_client.get(url)
    for i in range(10):
        p = ProviderFactory(practice=clinic.practice, name=f"Dr. {i}")
        ProviderRuleFactory(
            practice=clinic.practice, provider=p, appointment_types=[clinic.consult]
        )
    with django_assert_num_queries(len(few.captured_queries)):
        assert manager_client.get(url).content.decode().count("<tr>") == 12


# --- the week grid ---------------------------------------------------------------------------


def monday_next_week() -> date:
    today = timezone.localdate()
    return today - timedelta(days=today.weekday()) + timedelta(days=7)


def test_the_week_grid_places_hours_and_blocks(manager_client, clinic):
    monday = monday_next_week()
    tz = clinic.location.tz
    block = BlockFactory(
        practice=clinic.practice,
        location=clinic.location,
        provider=clinic.patel,
        start=datetime.combine(monday + timedelta(days=2), time(9), tz),
        end=datetime.combine(monday + timedelta(days=2), time(11), tz),
        reason="Staff meeting",
    )
    url = (
        f"{clinic.base}/schedule/?show=provider-{clinic.patel.pk}&week={monday + timedelta(days=3)}"
    )
    page = manager_client.get(url).content.decode()
    assert f"week={monday - timedelta(days=7)}" in page  # previous week from the Monday
    assert page.count('class="item hour"') == 7  # every day
    # Wednesday is the fourth column (hour labels first); 09:00 is row 5 after 08:00 + header.
    assert 'data-grid-column="4" data-grid-row="6 / 14"' in page  # static/js/portal.js lays it out
    assert "Blocked: Staff meeting" in page
    assert f"/schedule/blocks/{block.pk}/" in page and f"/schedule/hours/{clinic.hours.pk}/" in page

    room = manager_client.get(
        f"{clinic.base}/schedule/?show=operatory-{clinic.suite.pk}&week={monday}"
    ).content.decode()
    assert 'class="item hour"' not in room and "Nothing this week" in room
    assert manager_client.get(f"{clinic.base}/schedule/?show=provider-999999").status_code == 404


def test_working_hours_are_added_with_errors_next_to_fields_and_deleted_after_confirming(
    manager_client, manager, clinic
):
    new = f"{clinic.base}/schedule/hours/new/?show=provider-{clinic.patel.pk}"
    form = manager_client.get(new).content.decode()
    assert f'<option value="{clinic.patel.pk}" selected>' in form

    bad = manager_client.post(
        new,
        {
            "provider": clinic.patel.pk,
            "operatory": clinic.suite.pk,
            "begin": "13:00",
            "end": "09:00",
        },
    ).content.decode()
    assert field_errors(bad, "days") == ["Choose weekdays, or one specific date below."]
    assert field_errors(bad, "end") == ["Must be later than the start."]

    day = monday_next_week() + timedelta(days=5)
    response = manager_client.post(
        new,
        {
            "provider": clinic.patel.pk,
            "operatory": clinic.suite.pk,
            "specific_date": day.isoformat(),
            "begin": "09:00",
            "end": "12:00",
            "appointment_types": [clinic.consult.pk],
        },
    )
    assert response.status_code == 302
    assert response["Location"].endswith(f"/schedule/?show=provider-{clinic.patel.pk}")
    with tenant_context(clinic.practice):
        hour = WorkingHour.objects.get(operatory=clinic.suite)
        assert list(hour.appointment_types.all()) == [clinic.consult]
    assert (hour.specific_date, hour.days, hour.source) == (day, [], "manual")
    assert changes(clinic.practice, WorkingHour, hour.pk)[0].actor_id == manager.pk

    confirm = manager_client.get(f"{clinic.base}/schedule/hours/{hour.pk}/delete/")
    assert "Delete the working hours of Dr. Patel in Procedure Suite" in confirm.content.decode()
    manager_client.post(f"{clinic.base}/schedule/hours/{hour.pk}/delete/")
    with tenant_context(clinic.practice):
        assert not WorkingHour.objects.filter(pk=hour.pk).exists()


def test_synced_working_hours_are_read_only_and_the_page_says_why(manager_client, clinic):
    with cross_tenant("test"):
        Location.objects.filter(pk=clinic.location.pk).update(working_hours_mode="synced")
        WorkingHour.objects.filter(pk=clinic.hours.pk).update(source="synced", ehr_id=77)
    page = manager_client.get(
        f"{clinic.base}/schedule/?show=provider-{clinic.patel.pk}&week={monday_next_week()}"
    ).content.decode()
    assert 'id="synced-note"' in page and "synced from the EHR" in page
    assert 'class="item hour readonly"' in page
    assert f"/schedule/hours/{clinic.hours.pk}/" not in page

    url = f"{clinic.base}/schedule/hours/{clinic.hours.pk}/"
    form = manager_client.get(url).content.decode()
    assert "read-only here" in form and "disabled" in form
    response = manager_client.post(
        url,
        {
            "provider": clinic.patel.pk,
            "operatory": clinic.op1.pk,
            "days": ["Monday"],
            "begin": "10:00",
            "end": "11:00",
        },
    )
    assert response.status_code == 200
    with tenant_context(clinic.practice):
        assert WorkingHour.objects.get(pk=clinic.hours.pk).begin == time(8)
    manager_client.post(f"{url}delete/")
    with tenant_context(clinic.practice):
        assert WorkingHour.objects.filter(pk=clinic.hours.pk).exists()
    # and no room of a synced location is offered for new manual hours
    new = manager_client.get(f"{clinic.base}/schedule/hours/new/").content.decode()
    assert "Operatory 1" not in new


def test_blocks_are_typed_in_the_locations_time_and_edited(manager_client, clinic):
    with cross_tenant("test"):
        Location.objects.filter(pk=clinic.location.pk).update(timezone="America/Los_Angeles")
    day = monday_next_week() + timedelta(days=1)
    new = f"{clinic.base}/schedule/blocks/new/"
    bad = manager_client.post(
        new,
        {
            "location": clinic.location.pk,
            "start": f"{day}T12:00",
            "end": f"{day}T11:00",
        },
    ).content.decode()
    assert field_errors(bad, "end") == ["Must be later than the start."]
    response = manager_client.post(
        new,
        {
            "location": clinic.location.pk,
            "operatory": clinic.op1.pk,
            "start": f"{day}T12:00",
            "end": f"{day}T13:30",
            "reason": "Lunch and learn",
        },
    )
    assert response.status_code == 302
    with tenant_context(clinic.practice):
        block = Block.objects.get(reason="Lunch and learn")
    la = ZoneInfo("America/Los_Angeles")
    assert block.start == datetime.combine(day, time(12), la)
    assert block.end - block.start == timedelta(minutes=90)

    edit = manager_client.get(f"{clinic.base}/schedule/blocks/{block.pk}/").content.decode()
    assert f'value="{day}T12:00"' in edit
    manager_client.post(
        f"{clinic.base}/schedule/blocks/{block.pk}/",
        {
            "location": clinic.location.pk,
            "start": f"{day}T12:00",
            "end": f"{day}T14:00",
            "reason": "Lunch and learn",
        },
    )
    with tenant_context(clinic.practice):
        block.refresh_from_db()
    assert block.operatory_id is None and block.end == datetime.combine(day, time(14), la)
    assert (
        "Delete the block “Lunch and learn”"
        in manager_client.get(f"{clinic.base}/schedule/blocks/{block.pk}/delete/").content.decode()
    )
    manager_client.post(f"{clinic.base}/schedule/blocks/{block.pk}/delete/")
    with tenant_context(clinic.practice):
        assert not Block.objects.filter(pk=block.pk).exists()


# --- the demo practices --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["happy-smiles", "bellavista-plastic-surgery"])
def test_every_page_renders_for_the_demo_practices(client, name):
    """Real configuration files, not factories: every list, type, provider and week renders."""
    doc = json.loads((Path(settings.BASE_DIR) / "demo" / f"{name}.json").read_text())
    doc["ehr"]["kind"] = "none"
    practice = Practice.objects.get(pk=import_config(doc).practice_id)
    member_client(client, practice, Role.PRACTICE_MANAGER)
    base = f"/p/{practice.slug}/scheduling"
    with tenant_context(practice):
        types = list(AppointmentType.objects.values_list("pk", flat=True))
        providers = list(Provider.objects.values_list("pk", flat=True))
        rooms = list(Operatory.objects.values_list("pk", flat=True))
    paths = [f"{base}/types/", f"{base}/providers/", f"{base}/console/", f"{base}/schedule/"]
    paths += [f"{base}/types/{pk}/" for pk in types]
    paths += [f"{base}/providers/{pk}/" for pk in providers]
    paths += [f"{base}/schedule/?show=provider-{pk}" for pk in providers]
    paths += [f"{base}/schedule/?show=operatory-{pk}" for pk in rooms]
    paths += [f"{base}/schedule/hours/new/", f"{base}/schedule/blocks/new/"]
    for path in paths:
        assert client.get(path).status_code == 200, path
    grid = client.get(f"{base}/schedule/?show=provider-{providers[0]}&week=2026-05-04")
    assert 'class="item' in grid.content.decode()


# --- roles and tenancy -----------------------------------------------------------------------


def test_clinicians_see_the_pages_read_only_and_cannot_change_anything(client, clinic):
    member_client(client, clinic.practice, Role.CLINICIAN)
    page = client.get(f"{clinic.base}/types/{clinic.cleaning.pk}/").content.decode()
    assert "disabled" in page and "Add phrase" not in page and ">Save</button>" not in page
    assert client.get(f"{clinic.base}/console/").status_code == 200
    assert client.get(f"{clinic.base}/schedule/").status_code == 200
    assert (
        "Add a rule"
        not in client.get(f"{clinic.base}/providers/{clinic.patel.pk}/").content.decode()
    )
    refused = [
        client.post(f"{clinic.base}/types/{clinic.cleaning.pk}/", type_form(clinic.cleaning)),
        client.post(f"{clinic.base}/types/{clinic.cleaning.pk}/phrases/", {"text": "x"}),
        client.post(f"{clinic.base}/providers/{clinic.patel.pk}/", {"on_call_phone": ""}),
        client.get(f"{clinic.base}/providers/{clinic.patel.pk}/rules/new/"),
        client.get(f"{clinic.base}/schedule/hours/new/"),
        client.get(f"{clinic.base}/schedule/blocks/new/"),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)


@pytest.mark.parametrize("role", [Role.FRONT_DESK, Role.COMPLIANCE_OFFICER])
def test_other_roles_do_not_open_the_scheduling_pages(client, clinic, role):
    member_client(client, clinic.practice, role)
    for path in ("types/", "console/", "providers/", "schedule/"):
        assert client.get(f"{clinic.base}/{path}").status_code == 403, path


def test_the_manager_sees_the_scheduling_navigation(manager_client, clinic):
    page = manager_client.get(f"/p/{clinic.practice.slug}/").content.decode()
    for label in ("Appointment types", "Providers", "Schedule"):
        assert f">{label}</a>" in page


def test_another_practices_rows_are_404_even_in_forms(manager_client, clinic, other_practice):
    """Choices are this practice's rows: another practice's provider id is not a valid choice."""
    theirs = ProviderFactory(practice=other_practice, name="Dr. Elsewhere")
    response = manager_client.post(
        f"{clinic.base}/types/{clinic.cleaning.pk}/",
        type_form(clinic.cleaning, providers=[theirs.pk]),
    )
    assert response.status_code == 200
    assert "Select a valid choice" in " ".join(field_errors(response.content.decode(), "providers"))
    assert manager_client.get(f"{clinic.base}/providers/{theirs.pk}/").status_code == 404
