"""The go-live checklist (portal.golive) and the go-live page with its test scenarios."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Role
from calls.models import EscalationProtocol, ProtocolVersion, VersionStatus
from compliance.models import AccessEvent
from core.tenancy import cross_tenant, tenant_context
from ehr.models import ConnectionKind, ConnectionState, ConnectionStatus, EHRConnection
from portal import golive
from scheduling.models import TestScenario
from tests.conftest import verify_second_factor
from tests.factories import LocationFactory, MembershipFactory, UserFactory, sign_baa
from tests.scheduling.factories import (
    AppointmentDescriptorFactory,
    AppointmentTypeFactory,
    ScenarioFactory,
)

pytestmark = pytest.mark.django_db


def member(practice, role):
    user = UserFactory(totp=True)
    MembershipFactory(user=user, practice=practice, role=role)
    return user


def connect(location, *, status=ConnectionStatus.CONNECTED, synced=True, state=""):
    with tenant_context(location.practice_id):
        return EHRConnection.objects.create(
            practice_id=location.practice_id,
            location=location,
            kind=ConnectionKind.SANDBOX,
            base_url="http://127.0.0.1:1",
            subdomain="golive",
            api_key="key",
            status=status,
            state=state,
            last_successful_sync_at=timezone.now() - timedelta(minutes=5) if synced else None,
        )


def protocol(practice, status=VersionStatus.LIVE, key="bleeding"):
    with cross_tenant("test data setup"):
        p, _ = EscalationProtocol.objects.get_or_create(practice=practice, key=key)
        return ProtocolVersion.objects.create(
            practice=practice,
            protocol=p,
            number=p.versions.count() + 1,
            status=status,
            name="Post-op bleeding",
            triggers=["bleeding that won't stop"],
            severity="urgent",
            route="on_call",
            approved_at=None if status == VersionStatus.DRAFT else timezone.now(),
        )


def mapped_type(practice, location, name="Cleaning", phrases=("teeth cleaned",)):
    code = AppointmentDescriptorFactory(practice=practice, location=location)
    return AppointmentTypeFactory(
        practice=practice, name=name, phrases=list(phrases), descriptors=[code]
    )


def by_key(practice):
    with tenant_context(practice):
        return {c.key: c for c in golive.checklist(practice)}


def test_a_new_practice_fails_every_check_and_says_what_to_do(practice):
    checks = by_key(practice)
    assert list(checks) == ["baa", "ehr", "mapping", "escalation", "scenarios"]
    assert all(c.status == golive.FAIL for c in checks.values())
    assert "No executed BAA" in checks["baa"].detail
    assert "no locations" in checks["ehr"].detail
    assert "No bookable appointment types" in checks["mapping"].detail
    assert "No approved escalation protocol" in checks["escalation"].detail
    assert "No test scenarios" in checks["scenarios"].detail
    assert checks["scenarios"].url == "/p/alpha/go-live/#scenarios"
    assert checks["ehr"].url == "/p/alpha/ehr/"
    with tenant_context(practice):
        assert not golive.ready(golive.checklist(practice))


def test_a_practice_that_did_everything_is_ready(practice):
    sign_baa(practice)
    location = LocationFactory(practice=practice, name="Main Office")
    connect(location)
    cleaning = mapped_type(practice, location)
    AppointmentTypeFactory(practice=practice, name="Retired", bookable=False)  # not checked
    protocol(practice)
    ScenarioFactory(
        practice=practice,
        expected_type=cleaning,
        last_passed=True,
        last_run_at=timezone.now(),
        last_got_type=cleaning,
        last_confidence=1.0,
    )
    checks = by_key(practice)
    assert {k: c.status for k, c in checks.items()} == dict.fromkeys(checks, golive.PASS)
    assert "Version 1, executed Jan 5, 2026" in checks["baa"].detail
    assert "1 location(s) connected; last sync 5\xa0minutes ago" in checks["ehr"].detail
    assert "All 1 bookable type(s)" in checks["mapping"].detail
    assert "1 protocol(s) approved and live" in checks["escalation"].detail
    assert checks["scenarios"].detail.startswith("All 1 passing")
    with tenant_context(practice):
        assert golive.ready(golive.checklist(practice))


def test_unmapped_types_are_listed_with_what_they_miss_and_a_link(practice):
    location = LocationFactory(practice=practice)
    mapped_type(practice, location, name="Cleaning")
    no_phrases = AppointmentTypeFactory(
        practice=practice,
        name="Exam",
        descriptors=[AppointmentDescriptorFactory(practice=practice, location=location)],
    )
    nothing = AppointmentTypeFactory(practice=practice, name="Whitening")
    check = by_key(practice)["mapping"]
    assert check.status == golive.FAIL
    assert check.detail == "2 of 3 bookable type(s) not fully mapped."
    problems = {item.label: item.problem for item in check.items}
    assert problems == {
        "Exam": "no caller phrases",
        "Whitening": "no caller phrases and no EHR descriptors",
    }
    urls = {item.label: item.url for item in check.items}
    assert urls["Exam"] and urls["Exam"] != urls["Whitening"]
    assert str(no_phrases.pk) in urls["Exam"] and str(nothing.pk) in urls["Whitening"]


def test_ehr_check_names_each_location_that_is_not_ready(practice):
    connect(LocationFactory(practice=practice, name="A Office"))
    connect(LocationFactory(practice=practice, name="B Office"), synced=False)
    connect(LocationFactory(practice=practice, name="C Office"), status=ConnectionStatus.ERROR)
    LocationFactory(practice=practice, name="D Office")
    connect(
        LocationFactory(practice=practice, name="E Office"),
        status=ConnectionStatus.ERROR,
        state=ConnectionState.RESET_REQUIRED,
    )
    check = by_key(practice)["ehr"]
    assert check.status == golive.FAIL
    assert check.detail == "4 of 5 location(s) not ready."
    assert [(i.label, i.problem) for i in check.items] == [
        ("B Office", "connected but never synced"),
        ("C Office", "connection error"),
        ("D Office", "not connected to an EHR"),
        # The connection page's and test_connection's words for the last test's finding.
        ("E Office", "connection credentials need a reset"),
    ]


def test_only_a_live_protocol_counts_and_waiting_drafts_are_mentioned(practice):
    protocol(practice, status=VersionStatus.DRAFT)
    check = by_key(practice)["escalation"]
    assert check.status == golive.FAIL
    assert "1 draft(s) wait for a clinician's approval" in check.detail
    protocol(practice, status=VersionStatus.LIVE, key="fever")
    assert by_key(practice)["escalation"].status == golive.PASS


def test_scenarios_must_all_have_run_and_passed(practice):
    t = AppointmentTypeFactory(practice=practice)
    ScenarioFactory(practice=practice, expected_type=t)
    ScenarioFactory(
        practice=practice, expected_type=t, last_passed=False, last_run_at=timezone.now()
    )
    ScenarioFactory(
        practice=practice, expected_type=t, last_passed=True, last_run_at=timezone.now()
    )
    check = by_key(practice)["scenarios"]
    assert check.status == golive.FAIL
    assert check.detail == "1 of 3 passing; 1 failing; 1 not run yet."


def test_checklist_query_count_does_not_grow_with_the_practice(practice, django_assert_num_queries):
    def build(n):
        for i in range(n):
            location = LocationFactory(practice=practice)
            connect(location)
            mapped_type(practice, location, name=f"Type {i} {n}")
            AppointmentTypeFactory(practice=practice)
            ScenarioFactory(practice=practice)
            protocol(practice, key=f"p-{i}-{n}")

    build(1)
    with tenant_context(practice), django_assert_num_queries(6):
        golive.checklist(practice)
    build(5)
    with tenant_context(practice), django_assert_num_queries(6):
        golive.checklist(practice)


# --- the go-live page and test scenarios -------------------------------------------------------


@pytest.fixture
def dental(practice):
    """Two types with phrases, for the intent resolver."""
    cleaning = AppointmentTypeFactory(
        practice=practice, name="Cleaning", phrases=["teeth cleaned", "hygiene visit"]
    )
    exam = AppointmentTypeFactory(
        practice=practice,
        name="New Patient Exam",
        existing_patients=False,
        phrases=["first visit", "new patient exam"],
    )
    return cleaning, exam


def test_a_manager_adds_a_scenario_runs_it_and_sees_pass_and_fail(manager_client, practice, dental):
    cleaning, exam = dental
    base = "/p/alpha/go-live/"
    page = manager_client.get(base).content.decode()
    assert "No test scenarios yet" in page and 'id="golive-checklist"' in page

    response = manager_client.post(
        f"{base}scenarios/",
        {
            "sentence": "I'd like to get my teeth cleaned",
            "patient_status": "existing",
            "expected_type": cleaning.pk,
        },
    )
    assert response.status_code == 302
    manager_client.post(
        f"{base}scenarios/",
        {"sentence": "hygiene visit please", "patient_status": "new", "expected_type": exam.pk},
    )
    manager_client.post(
        f"{base}scenarios/",
        {"sentence": "what are your opening hours", "patient_status": "new", "expected_type": ""},
    )
    with tenant_context(practice):
        ok, wrong, nothing = TestScenario.objects.order_by("pk")
    assert nothing.expected_type is None and ok.last_run_at is None

    response = manager_client.post(f"{base}scenarios/run/", HTTP_HX_REQUEST="true")
    text = response.content.decode()
    assert response.status_code == 200
    assert "2 of 3 scenario(s) passed." in text
    assert f'id="scenario-{ok.pk}" data-result="pass"' in text
    assert f'id="scenario-{wrong.pk}" data-result="fail"' in text
    assert f'id="scenario-{nothing.pk}" data-result="pass"' in text
    assert 'hx-swap-oob="true"' in text  # the checklist refreshes too
    with tenant_context(practice):
        ok.refresh_from_db()
        wrong.refresh_from_db()
    assert ok.last_passed is True and ok.last_got_type_id == cleaning.pk
    assert ok.last_confidence == pytest.approx(1.0)
    assert ok.last_evidence == ["phrase “teeth cleaned”: teeth: said; cleaned: said"]
    assert "phrase “teeth cleaned”: teeth: said; cleaned: said" in text  # why, word by word
    assert wrong.last_passed is False and wrong.last_got_type_id == cleaning.pk
    with tenant_context(practice):
        assert AccessEvent.objects.filter(action="golive.scenarios_run").count() == 1


def test_without_htmx_run_all_redirects_with_a_message(manager_client, practice, dental):
    ScenarioFactory(practice=practice, sentence="teeth cleaned", expected_type=dental[0])
    response = manager_client.post("/p/alpha/go-live/scenarios/run/", follow=True)
    assert "1 of 1 scenario(s) passed." in response.content.decode()


def test_scenario_form_errors_show_next_to_the_field(manager_client, practice, dental):
    ScenarioFactory(practice=practice, sentence="Teeth cleaned", expected_type=dental[0])
    response = manager_client.post(
        "/p/alpha/go-live/scenarios/",
        {"sentence": "teeth   CLEANED", "patient_status": "existing", "expected_type": ""},
    )
    assert response.status_code == 400
    assert "This sentence is already a scenario" in response.content.decode()
    response = manager_client.post(
        "/p/alpha/go-live/scenarios/", {"sentence": "  ", "patient_status": "existing"}
    )
    assert response.status_code == 400
    assert 'class="field has-error"' in response.content.decode()


def test_another_practices_type_cannot_be_expected(manager_client, practice, other_practice):
    foreign = AppointmentTypeFactory(practice=other_practice)
    response = manager_client.post(
        "/p/alpha/go-live/scenarios/",
        {"sentence": "hello", "patient_status": "existing", "expected_type": foreign.pk},
    )
    assert response.status_code == 400
    with cross_tenant("test: nothing was written"):
        assert not TestScenario.objects.exists()


def test_edit_forgets_the_last_result_and_delete_asks_first(manager_client, practice, dental):
    s = ScenarioFactory(
        practice=practice, expected_type=dental[0], last_passed=True, last_run_at=timezone.now()
    )
    url = f"/p/alpha/go-live/scenarios/{s.pk}/"
    assert "Edit test scenario" in manager_client.get(url).content.decode()
    response = manager_client.post(
        url, {"sentence": "a new sentence", "patient_status": "new", "expected_type": ""}
    )
    assert response.status_code == 302
    with tenant_context(practice):
        s.refresh_from_db()
    assert (s.sentence, s.expected_type_id, s.last_passed, s.last_run_at) == (
        "a new sentence",
        None,
        None,
        None,
    )
    confirm = manager_client.get(f"{url}delete/").content.decode()
    assert "Delete this test scenario?" in confirm and "cannot be undone" in confirm
    with tenant_context(practice):
        assert TestScenario.objects.filter(pk=s.pk).exists()
    manager_client.post(f"{url}delete/")
    with tenant_context(practice):
        assert not TestScenario.objects.filter(pk=s.pk).exists()


def test_scenario_changes_are_in_the_audit_trail(manager_client, practice, dental):
    from compliance.models import ChangeEntry

    manager_client.post(
        "/p/alpha/go-live/scenarios/",
        {"sentence": "teeth cleaned", "patient_status": "existing", "expected_type": dental[0].pk},
    )
    with tenant_context(practice):
        entry = ChangeEntry.objects.get(content_type__model="testscenario")
    assert entry.actor is not None and entry.actor.username.endswith("@example.test")


def test_roles(client, practice):
    officer = member(practice, Role.COMPLIANCE_OFFICER)
    verify_second_factor(client, officer)
    page = client.get("/p/alpha/go-live/").content.decode()
    assert 'id="golive-checklist"' in page
    assert 'id="run-all"' not in page and 'action="/p/alpha/go-live/scenarios/"' not in page
    assert client.post("/p/alpha/go-live/scenarios/run/").status_code == 403
    assert client.post("/p/alpha/go-live/scenarios/", {"sentence": "x"}).status_code == 403

    client.logout()
    verify_second_factor(client, member(practice, Role.FRONT_DESK))
    assert client.get("/p/alpha/go-live/").status_code == 403
    assert 'id="golive-checklist"' not in client.get("/p/alpha/").content.decode()


def test_the_dashboard_shows_the_checklist_to_managers(manager_client, practice):
    page = manager_client.get("/p/alpha/").content.decode()
    assert 'id="golive-checklist"' in page
    assert 'id="check-baa" data-status="fail"' in page
    assert "Not ready yet" in page


# --- the practice's evaluation: many sentences per type, results per type -----------------------


def test_a_manager_pastes_many_sentences_and_reads_right_wrong_empty_per_type(
    manager_client, practice, dental
):
    cleaning, _exam = dental
    base = "/p/alpha/go-live/"
    response = manager_client.post(
        f"{base}scenarios/paste/",
        {
            "sentences": "I'd like my teeth cleaned\n\n  hygiene visit please \n"
            "can I get the tartar off\nI'D LIKE MY TEETH CLEANED\n",
            "patient_status": "existing",
            "expected_type": cleaning.pk,
        },
        follow=True,
    )
    assert "3 scenario(s) added. 1 already tested, skipped." in response.content.decode()
    manager_client.post(
        f"{base}scenarios/paste/",
        {"sentences": "where do I park\nfirst visit", "patient_status": "new", "expected_type": ""},
    )
    with tenant_context(practice):
        assert TestScenario.objects.count() == 5

    text = manager_client.post(f"{base}scenarios/run/", HTTP_HX_REQUEST="true").content.decode()
    # Cleaning: two right, "the tartar off" came back empty; nothing expected: "where do
    # I park" right, "first visit" picked the exam (wrong).
    assert f'id="report-{cleaning.pk}" data-right="2" data-wrong="0" data-empty="1"' in text
    assert 'id="report-none" data-right="1" data-wrong="1" data-empty="0"' in text
    assert "Add “tartar off”" in text  # the miss suggests a phrase for its type

    response = manager_client.post(
        f"{base}suggestions/",
        {"appointment_type": cleaning.pk, "text": "tartar off"},
        follow=True,
    )
    assert "is now a phrase of Cleaning" in response.content.decode()
    text = manager_client.post(f"{base}scenarios/run/", HTTP_HX_REQUEST="true").content.decode()
    assert f'id="report-{cleaning.pk}" data-right="3" data-wrong="0" data-empty="0"' in text


def test_pasted_scenarios_and_suggestions_stay_in_the_practice(
    manager_client, practice, other_practice
):
    foreign = AppointmentTypeFactory(practice=other_practice, phrases=["x ray"])
    response = manager_client.post(
        "/p/alpha/go-live/scenarios/paste/",
        {"sentences": "hello", "patient_status": "existing", "expected_type": foreign.pk},
    )
    assert response.status_code == 400
    response = manager_client.post(
        "/p/alpha/go-live/suggestions/",
        {"appointment_type": foreign.pk, "text": "teeth"},
        follow=True,
    )
    assert "is not for one of this practice" in response.content.decode()
    with cross_tenant("test: nothing was written"):
        assert not TestScenario.objects.exists()
        assert list(foreign.phrases.values_list("text", flat=True)) == ["x ray"]


def test_pasting_too_much_or_nothing_is_refused_next_to_the_field(manager_client, practice):
    for sentences in ("  \n \n", "\n".join(f"sentence {i}" for i in range(201))):
        response = manager_client.post(
            "/p/alpha/go-live/scenarios/paste/",
            {"sentences": sentences, "patient_status": "existing", "expected_type": ""},
        )
        assert response.status_code == 400
        assert 'class="field has-error"' in response.content.decode()


def test_a_manager_adds_caller_words_and_the_agent_understands_them(
    manager_client, practice, dental
):
    cleaning, _exam = dental
    base = "/p/alpha/go-live/"
    ScenarioFactory(
        practice=practice, sentence="time for my six month visit", expected_type=cleaning
    )
    text = manager_client.post(f"{base}scenarios/run/", HTTP_HX_REQUEST="true").content.decode()
    assert f'id="report-{cleaning.pk}" data-right="0" data-wrong="0" data-empty="1"' in text

    response = manager_client.post(
        f"{base}caller-words/",
        {
            "lay_terms": "teeth cleaned, six month visit, hygiene appointment\n\n"
            "botox, tox > injectables"
        },
        follow=True,
    )
    assert "Caller words saved." in response.content.decode()
    practice.refresh_from_db()
    assert practice.lay_terms == [
        {"terms": ["teeth cleaned", "six month visit", "hygiene appointment"]},
        {"terms": ["botox", "tox"], "broader": ["injectables"]},
    ]
    page = manager_client.get(base).content.decode()
    assert "botox, tox &gt; injectables" in page  # shown back as written
    text = manager_client.post(f"{base}scenarios/run/", HTTP_HX_REQUEST="true").content.decode()
    assert f'id="report-{cleaning.pk}" data-right="1" data-wrong="0" data-empty="0"' in text

    bad = manager_client.post(f"{base}caller-words/", {"lay_terms": "tox, Tox\n> injectables"})
    assert bad.status_code == 400 and "is listed twice" in bad.content.decode()
    practice.refresh_from_db()
    assert len(practice.lay_terms) == 2  # unchanged
