"""The configuration file's `escalation_protocols` and `on_call`: stored by the import (protocols
approved by it, audited), idempotent, exported back exactly, edits become new versions, removed
protocols are withdrawn, clinicians' drafts survive, invalid sections change nothing."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from django.conf import settings

from accounts.models import Practice, Role
from calls.escalation import services
from calls.models import EscalationProtocol, OnCallShift, ProtocolVersion, VersionStatus
from compliance.models import AccessEvent
from core.tenancy import tenant_context
from onboarding.services import ConfigError, export_config, import_config, validate_config
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

DEMO_DIR = Path(settings.BASE_DIR) / "demo"
SECTIONS = ("escalation_protocols", "on_call")


def demo(name: str = "bellavista-plastic-surgery") -> dict:
    doc = json.loads((DEMO_DIR / f"{name}.json").read_text())
    doc["ehr"]["kind"] = "none"
    return doc


def counts(result) -> dict[str, tuple[int, int, int]]:
    return {
        s: (result.sections[s].created, result.sections[s].updated, result.sections[s].deleted)
        for s in SECTIONS
    }


def live(practice: Practice) -> dict[str, ProtocolVersion]:
    with tenant_context(practice):
        return {
            v.protocol.key: v
            for v in ProtocolVersion.objects.filter(status=VersionStatus.LIVE).select_related(
                "protocol"
            )
        }


@pytest.mark.parametrize("name", ["bellavista-plastic-surgery", "happy-smiles"])
def test_importing_a_demo_file_makes_its_protocols_live_and_fills_the_rota(name):
    doc = demo(name)
    result = import_config(doc)
    practice = Practice.objects.get(pk=result.practice_id)

    n = len(doc["escalation_protocols"])
    assert counts(result) == {"escalation_protocols": (n, 0, 0), "on_call": (1, 0, 0)}
    assert not any("not imported" in note for note in result.notes)
    versions = live(practice)
    assert set(versions) == {p["key"] for p in doc["escalation_protocols"]}
    for spec in doc["escalation_protocols"]:
        v = versions[spec["key"]]
        assert (v.name, v.severity, v.route, v.triggers) == (
            spec["name"],
            spec["severity"],
            spec["route"],
            spec["triggers"],
        )
        assert (v.number, v.approval_source, v.approved_by) == (1, "config_import", None)
        assert v.approved_at is not None
    with tenant_context(practice):
        shift = OnCallShift.objects.select_related("provider").get()
        assert shift.provider.key == doc["on_call"][0]["provider"]
        # every approval is on the audit trail
        approvals = AccessEvent.objects.filter(action=services.APPROVED_ACTION)
        assert approvals.count() == n
        assert {e.details["source"] for e in approvals} == {"config_import"}


def test_importing_twice_changes_nothing_and_the_export_gives_the_sections_back():
    doc = demo()
    first = import_config(doc)
    practice = Practice.objects.get(pk=first.practice_id)
    before = {k: v.pk for k, v in live(practice).items()}
    with tenant_context(practice):
        shift_ids = list(OnCallShift.objects.values_list("pk", flat=True))

    second = import_config(doc)

    assert counts(second) == {"escalation_protocols": (0, 0, 0), "on_call": (0, 0, 0)}
    assert {k: v.pk for k, v in live(practice).items()} == before
    with tenant_context(practice):
        assert list(OnCallShift.objects.values_list("pk", flat=True)) == shift_ids
    exported = export_config(practice)
    for section in SECTIONS:
        assert exported[section] == doc[section], section


def test_an_edited_protocol_becomes_a_new_approved_version_and_keeps_a_clinicians_draft():
    doc = demo()
    practice = Practice.objects.get(pk=import_config(doc).practice_id)
    clinician = UserFactory()
    MembershipFactory(user=clinician, practice=practice, role=Role.CLINICIAN)
    with tenant_context(practice):
        protocol = EscalationProtocol.objects.get(key="post-op-bleeding")
        draft = services.save_draft(
            protocol,
            services.ProtocolContent("Clinician's rewrite", ("fever",), "urgent", "on_call"),
            clinician,
        )
    assert draft.number == 2
    edited = copy.deepcopy(doc)
    edited["escalation_protocols"][0]["triggers"].append("pus from the incision")
    edited["escalation_protocols"][0]["within_days_of_procedure"] = 21

    result = import_config(edited, actor=clinician)

    assert counts(result)["escalation_protocols"] == (0, 1, 0)
    with tenant_context(practice):
        versions = {v.number: v for v in ProtocolVersion.objects.filter(protocol=protocol)}
    assert versions[1].status == VersionStatus.SUPERSEDED
    assert versions[2].status == VersionStatus.LIVE  # the imported content
    assert versions[2].approved_by == clinician
    assert versions[2].within_days_of_procedure == 21
    assert versions[3].pk == draft.pk and versions[3].status == VersionStatus.DRAFT
    assert export_config(practice)["escalation_protocols"] == edited["escalation_protocols"]


def test_a_protocol_left_out_of_the_file_is_withdrawn_and_can_come_back():
    doc = demo()
    practice = Practice.objects.get(pk=import_config(doc).practice_id)
    shorter = copy.deepcopy(doc)
    removed = shorter["escalation_protocols"].pop()
    shorter["on_call"] = []

    result = import_config(shorter)

    assert counts(result) == {"escalation_protocols": (0, 0, 1), "on_call": (0, 0, 1)}
    assert removed["key"] not in live(practice)
    with tenant_context(practice):
        assert ProtocolVersion.objects.get(protocol__key=removed["key"]).status == "withdrawn"
        assert OnCallShift.objects.count() == 0
    assert export_config(practice)["escalation_protocols"] == shorter["escalation_protocols"]

    again = import_config(doc)
    assert counts(again)["escalation_protocols"] == (0, 1, 0)
    assert live(practice)[removed["key"]].number == 2


def test_a_manager_uploading_the_file_only_drafts_protocols_for_a_clinician():
    doc = demo()
    practice = Practice.objects.get(pk=import_config(doc).practice_id)
    manager = UserFactory()
    MembershipFactory(user=manager, practice=practice, role=Role.PRACTICE_MANAGER)
    edited = copy.deepcopy(doc)
    edited["escalation_protocols"][0]["severity"] = "routine"
    edited["escalation_protocols"][0]["route"] = "message"
    removed = edited["escalation_protocols"].pop()

    result = import_config(edited, actor=manager)

    assert counts(result)["escalation_protocols"] == (0, 1, 0)
    notes = "\n".join(result.notes)
    assert "1 saved as draft(s) for a clinician to approve (post-op-bleeding)" in notes
    assert (
        f"not in the file but left live (only a clinician withdraws a protocol): {removed['key']}"
        in notes
    )
    versions = live(practice)
    assert versions["post-op-bleeding"].severity == "urgent"  # the live version still answers
    assert removed["key"] in versions
    with tenant_context(practice):
        draft = ProtocolVersion.objects.select_related("protocol").get(status=VersionStatus.DRAFT)
        assert AccessEvent.objects.filter(action=services.APPROVED_ACTION).count() == 2
    assert (draft.protocol.key, draft.severity, draft.created_by) == (
        "post-op-bleeding",
        "routine",
        manager,
    )
    # the same upload again changes nothing: the draft already says it
    assert counts(import_config(edited, actor=manager))["escalation_protocols"] == (0, 0, 0)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (
            lambda d: d["escalation_protocols"][1].update(route="on_call"),
            'escalation_protocols[1].route: an emergency routes to "911", and only an emergency '
            "does",
        ),
        (
            lambda d: d["escalation_protocols"][0].update(appointment_types=["no-such-type"]),
            'escalation_protocols[0].appointment_types[0]: unknown appointment type "no-such-type"',
        ),
        (
            lambda d: d["escalation_protocols"][0].update(triggers=[]),
            "escalation_protocols[0].triggers: must name at least one trigger phrase",
        ),
        (
            lambda d: d["on_call"].append(
                {"provider": "martinez", "start": "2026-12-01T08:00", "end": "2026-12-02T08:00"}
            ),
            "on_call[1].start: overlaps on_call entry 0 of the same provider",
        ),
    ],
)
def test_invalid_sections_name_their_path_and_change_nothing(change, error):
    doc = demo()
    practice = Practice.objects.get(pk=import_config(doc).practice_id)
    before = {k: v.pk for k, v in live(practice).items()}
    bad = copy.deepcopy(doc)
    change(bad)

    assert error in validate_config(bad)
    with pytest.raises(ConfigError):
        import_config(bad)
    assert {k: v.pk for k, v in live(practice).items()} == before
