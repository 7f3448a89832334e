"""EHR identity survives renames and re-keys: matched by stored EHR id, never retired by key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings

from accounts.models import Location, Practice
from core.tenancy import tenant_context
from ehr import services
from ehr.models import EHRConnection
from onboarding.services import export_config, import_config
from scheduling.models import Appointment, AppointmentType, Block, Operatory, Provider
from tests.ehr.conftest import API_KEY
from tests.ehr.test_sync import day_ahead, populate

pytestmark = pytest.mark.django_db

DEMO = Path(settings.BASE_DIR) / "demo" / "happy-smiles.json"


def sandbox_settings(settings, ehr, receiver) -> None:
    settings.EHR_SANDBOX_URL = ehr.base_url
    settings.EHR_SANDBOX_API_KEY = API_KEY
    settings.EHR_SANDBOX_ADMIN_TOKEN = ehr.admin_token
    settings.PORTAL_PUBLIC_URL = receiver.url.removesuffix("/hooks")


def demo_in_the_window() -> dict:
    """The demo file with its appointment and block next week, inside the sync's window."""
    doc = json.loads(DEMO.read_text())
    day = day_ahead(7).isoformat()
    doc["appointments"][0]["start"] = f"{day}T10:00"
    doc["blocks"][0].update(start=f"{day}T13:00", end=f"{day}T14:00")
    return doc


def ehr_counts(ehr) -> dict[str, int]:
    state = ehr.admin("GET", "/_admin/state").json()
    return {
        k: len(state[k]) for k in ("locations", "providers", "operatories", "appointment_types")
    }


def mirror(practice) -> dict:
    with tenant_context(practice):
        return {
            "location": list(Location.objects.values_list("pk", "key", "ehr_id")),
            "connection": list(EHRConnection.objects.values_list("ehr_location_id", flat=True)),
            "providers": sorted(Provider.objects.values_list("pk", "ehr_id")),
            "operatories": sorted(Operatory.objects.values_list("pk", "ehr_id")),
            "types": sorted(AppointmentType.objects.values_list("pk", "ehr_id")),
            "appointments": list(Appointment.objects.values_list("pk", "ehr_id", "cancelled")),
            "blocks": list(Block.objects.values_list("pk", "ehr_id")),
        }


def test_renamed_entries_are_renamed_in_the_ehr_and_keep_their_calendar(ehr, receiver, settings):
    sandbox_settings(settings, ehr, receiver)
    doc = demo_in_the_window()
    practice = Practice.objects.get(pk=import_config(doc).practice_id)
    before, counts = mirror(practice), ehr_counts(ehr)
    assert before["appointments"] and not before["appointments"][0][2]
    assert before["blocks"] and before["location"][0][2]

    doc["locations"][0]["name"] = "Downtown Office"
    doc["providers"][0]["name"] = "Dr. Priya Patel"
    doc["operatories"][0]["name"] = "Chair 1"
    doc["appointment_types"][0]["name"] = "Teeth cleaning"
    result = import_config(doc)

    assert mirror(practice) == before  # same rows, same EHR ids, nothing cancelled
    assert ehr_counts(ehr) == counts  # nothing created in the EHR
    state = ehr.admin("GET", "/_admin/state").json()
    assert [loc["name"] for loc in state["locations"]] == ["Downtown Office"]
    assert "Dr. Priya Patel" in {p["name"] for p in state["providers"]}
    assert "Chair 1" in {o["name"] for o in state["operatories"]}
    assert "Teeth cleaning" in {t["name"] for t in state["appointment_types"]}
    assert any("locations 1 updated" in note for note in result.notes), result.notes


def test_a_re_keyed_export_is_an_update_matched_by_ehr_id(ehr, receiver, settings):
    sandbox_settings(settings, ehr, receiver)
    practice = Practice.objects.get(pk=import_config(demo_in_the_window()).practice_id)
    before, counts = mirror(practice), ehr_counts(ehr)

    exported = export_config(practice)
    location_ehr_id = before["location"][0][2]
    assert exported["locations"][0]["ehr_id"] == location_ehr_id
    assert all(p.get("ehr_id") for p in exported["providers"])
    exported["ehr"] = {"kind": "sandbox", "working_hours": "manual"}
    text = json.dumps(exported).replace('"main"', '"downtown"').replace('"patel"', '"dr-patel"')
    result = import_config(json.loads(text))

    sections = result.sections
    assert (sections["locations"].created, sections["locations"].deleted) == (0, 0)
    assert sections["locations"].updated == 1 and sections["providers"].updated == 1
    assert sections["providers"].created == sections["providers"].deleted == 0
    after = mirror(practice)
    assert after["location"] == [(before["location"][0][0], "downtown", location_ehr_id)]
    assert {k: v for k, v in after.items() if k != "location"} == {
        k: v for k, v in before.items() if k != "location"
    }
    with tenant_context(practice):
        assert Provider.objects.filter(key="dr-patel").exists()
    assert ehr_counts(ehr) == counts


def test_the_sync_cancels_a_mirrored_appointment_only_when_the_ehr_says_it_is_gone(world):
    ehr = populate(world)
    services.sync_connection(world.conn)
    # The connection now reads another EHR location (the location was re-created there): its
    # listing holds none of the old calendar, which is still live in the EHR.
    moved = world.ok(
        "POST", "/locations", {"location": {"name": "Annex", "tz": "America/Los_Angeles"}}
    )["id"]
    with tenant_context(world.practice):
        EHRConnection.objects.filter(pk=world.conn.pk).update(ehr_location_id=moved)
        Location.objects.filter(pk=world.location.pk).update(ehr_id=moved)
    report = services.sync_connection(world.reload())
    assert report.counts["appointments"].deleted == 0 and report.counts["blocks"].deleted == 0
    with tenant_context(world.practice):
        assert not Appointment.objects.get(ehr_id=ehr["appt"]["id"]).cancelled
        assert Block.objects.filter(ehr_id=ehr["block"]["id"]).exists()

    # Cancelled in the EHR: asked by id, the EHR says so, and the mirror follows.
    world.admin(
        "PATCH", f"/_admin/ehr/appointments/{ehr['appt']['id']}", {"appt": {"cancelled": True}}
    )
    report = services.sync_connection(world.reload())
    assert report.counts["appointments"].deleted == 1
    with tenant_context(world.practice):
        assert Appointment.objects.get(ehr_id=ehr["appt"]["id"]).cancelled
        assert Block.objects.filter(ehr_id=ehr["block"]["id"]).exists()
