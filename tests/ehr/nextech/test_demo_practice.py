"""The third demo practice (ophthalmology and dermatology on Nextech) validates, loads through
the one import path into a real Nextech sandbox process, and comes back from Nextech as the seed
describes it: a 90-minute dilated cataract evaluation, Mohs as a half-day block in the procedure
suite that only Mohs-trained surgeons take, a new-patient skin exam any dermatologist sees."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.conf import settings

from accounts.models import Practice
from core.tenancy import tenant_context
from ehr.models import AppointmentTypeLink, ConnectionKind, EHRConnection
from ehr.registry import port_for
from ehr_sandbox.nextech.testing import NextechServer
from onboarding.nextech_provisioning import (
    connect_sandbox_locations,
    ensure_sandbox_user,
    sandbox_practice_id,
)
from onboarding.schema import validate_config
from onboarding.services import import_document, load_file, parse_config
from scheduling.models import AppointmentType, NativeSlot, Operatory, Provider
from scheduling.selectors import available_slots

pytestmark = pytest.mark.django_db(transaction=True)  # the import commits before the EHR set-up

DEMO = Path(settings.BASE_DIR) / "demo" / "lakeside-eye-skin.json"
SLUG = "lakeside-eye-skin"


def load(server: NextechServer) -> Practice:
    data = load_file(DEMO)
    ensure_sandbox_user(SLUG)
    outcome = import_document(data)
    assert not outcome.errors and not outcome.warnings, outcome.errors + outcome.warnings
    practice = Practice.objects.get(slug=SLUG)
    assert connect_sandbox_locations(practice, parse_config(data)) == []
    return practice


def test_the_nextech_demo_practice_loads_into_the_nextech_sandbox_as_the_seed_says(
    nextech_sandbox: NextechServer,
) -> None:
    data = json.loads(DEMO.read_text())
    assert data["ehr"] == {"kind": "nextech", "working_hours": "native"}
    assert validate_config(data) == []
    assert "password" not in DEMO.read_text() and "secret" not in DEMO.read_text()

    practice = load(nextech_sandbox)

    # Nextech holds the set-up the file describes.
    pid = sandbox_practice_id(SLUG)
    nx = nextech_sandbox.admin("GET", f"/_admin/practices/{pid}").json()
    nx_types = {t["name"]: t for t in nx["appointment_types"]}
    assert nx_types["Cataract Evaluation"]["duration"] == 90
    assert nx_types["Mohs Surgery"]["duration"] == 240
    mohs_id = nx_types["Mohs Surgery"]["id"]
    names = {p["id"]: p["text"] for p in nx["practitioners"]}
    mohs_templates = [t for t in nx["templates"] if mohs_id in t["appointment_types"]]
    assert {names[t["practitioner"]] for t in mohs_templates} == {
        "Dr. Daniel Okafor",
        "Dr. Priya Raman",
    }
    assert {(t["start"], t["end"], t["interval"]) for t in mohs_templates} == {
        ("08:00", "16:00", 240)
    }
    assert {p["name"] for p in nx["appointment_purposes"]} >= {"Dilated exam"}

    # The mirror, synced back from Nextech, keeps the file's rules and links them to Nextech.
    with tenant_context(practice):
        conn = EHRConnection.objects.select_related("location__practice").get()
        assert conn.kind == ConnectionKind.NEXTECH and conn.status == "connected"
        # The service user's credentials are on the connection, encrypted, not in the file.
        assert json.loads(conn.api_key)["username"].endswith(".nextech.demo")
        mohs = AppointmentType.objects.get(key="mohs")
        assert mohs.minutes == 240
        assert mohs.required_capabilities == ["procedure"]
        assert set(mohs.providers.values_list("key", flat=True)) == {"okafor", "raman"}
        suites = Operatory.objects.filter(capabilities__contains=["procedure"])
        assert list(suites.values_list("name", flat=True)) == ["Procedure Suite"]
        assert AppointmentTypeLink.objects.get(connection=conn, appointment_type=mohs).ehr_id == (
            int(mohs_id)
        )
        assert list(mohs.descriptors.values_list("code", "ehr_id")) == [
            ("Mohs micrographic surgery", 203)
        ]
        cataract = AppointmentType.objects.get(key="cataract-eval")
        assert cataract.minutes == 90 and cataract.required_capabilities == ["dilation"]
        assert list(cataract.descriptors.values_list("code", flat=True)) == ["Dilated exam"]
        skin = AppointmentType.objects.get(key="skin-exam")
        assert skin.minutes == 45 and skin.required_capabilities == []
        assert set(skin.providers.values_list("key", flat=True)) == {"lin", "okafor", "raman"}
        providers = {p.key: (p.name, p.ehr_id) for p in Provider.objects.all()}
        assert providers["okafor"][0] == "Dr. Daniel Okafor"
        assert all(ehr_id for _, ehr_id in providers.values())
        assert Provider.objects.count() == 4  # adopted by the sync, not duplicated

    # Nextech's own /Slot offers Mohs as half-day blocks, only with the Mohs-trained surgeons.
    port = port_for(conn)
    surgeons = {providers["okafor"][1], providers["raman"][1]}
    slots = port.free_slots(
        start_date=date.today() + timedelta(days=1),
        days=14,
        provider_ids=[ehr_id for _, ehr_id in providers.values() if ehr_id],
        appointment_type_id=int(mohs_id),
    )
    assert slots
    assert {provider for provider, _, _ in slots} == surgeons
    assert {end - start for _, start, end in slots} == {timedelta(hours=4)}
    assert {start.astimezone(port.tz).strftime("%H:%M") for _, start, _ in slots} == {
        "08:00",
        "12:00",
    }

    # The location is in native mode: the sync stored Nextech's own slots, and availability
    # offers them in the rooms the file names (Mohs in the procedure suite, the Mohs-trained
    # surgeons only), with our layer on top.
    day = next_weekday_from(date.today() + timedelta(days=4), 1)  # past the 72 h lead: a Tuesday
    with tenant_context(practice):
        assert conn.location.working_hours_mode == "native"
        assert NativeSlot.objects.filter(location=conn.location).exists()
        offered = available_slots(practice, appointment_type_id=mohs.pk, start_date=day, days=1)
        suite = Operatory.objects.get(key="procedure-suite")
        okafor = Provider.objects.get(key="okafor")
    assert [
        (s.start.astimezone(port.tz).strftime("%H:%M"), s.provider_id, s.operatory_id)
        for s in offered
    ] == [("08:00", okafor.pk, suite.pk), ("12:00", okafor.pk, suite.pk)]


def next_weekday_from(day: date, weekday: int) -> date:
    while day.weekday() != weekday:
        day += timedelta(days=1)
    return day


def test_loading_the_nextech_demo_again_changes_nothing(nextech_sandbox: NextechServer) -> None:
    practice = load(nextech_sandbox)
    with tenant_context(practice):
        before = sorted(AppointmentType.objects.values_list("key", "ehr_id", "minutes"))
    outcome = import_document(load_file(DEMO))
    assert "EHR: already up to date with the file." in outcome.result.notes  # type: ignore[union-attr]
    assert outcome.result.changes == 0  # type: ignore[union-attr]
    assert connect_sandbox_locations(practice, parse_config(load_file(DEMO))) == []
    with tenant_context(practice):
        assert sorted(AppointmentType.objects.values_list("key", "ehr_id", "minutes")) == before
