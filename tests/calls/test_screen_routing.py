"""Who takes an urgent call: the protocol names a provider or the on-call of a group, the rota
has a line per group, and the caller's appointment type picks the protocol and so the group. A
group with nobody on call is a gap, never a reason to ring another group's on-call."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings

from accounts.models import Practice
from calls.escalation import services
from calls.escalation.screening import screen
from calls.models import DEFAULT_GROUP_KEY, OnCallGroup, OnCallShift, ProtocolVersion
from core.tenancy import tenant_context
from onboarding.services import export_config, import_config, validate_config
from tests.calls.test_escalation_world import Clinic, clinic

pytestmark = pytest.mark.django_db

LA = ZoneInfo("America/Los_Angeles")
NOW = datetime(2026, 11, 20, 21, 30, tzinfo=LA)
TODAY = NOW.date()


def _protocol(c: Clinic, name: str, triggers: list[str], types: list[str], **taker) -> None:
    content = services.ProtocolContent(
        name=name,
        triggers=tuple(triggers),
        severity="urgent",
        route="on_call",
        instructions=f"{name}: connect the caller now.",
        within_days_of_procedure=30,
        appointment_type_ids=tuple(c.types[t].pk for t in types),
        **taker,
    )
    with tenant_context(c.practice):
        services.approve_version(services.create_protocol(c.practice, content, None), None)


@pytest.fixture
def centre() -> Clinic:
    c = clinic()
    with tenant_context(c.practice):
        eyes = services.group_for(c.practice, "ophthalmology", "Ophthalmology on call")
        plastics = services.group_for(c.practice, "plastic-surgery", "Plastic surgery on call")
        day = (NOW - timedelta(hours=4), NOW + timedelta(hours=11))
        services.add_shift(c.practice, c.providers["martinez"], *day, group=plastics)
        services.add_shift(c.practice, c.providers["chen"], *day, group=eyes)
    _protocol(
        c,
        "Vision loss after cataract surgery",
        ["sudden vision loss", "severe eye pain", "severe swelling"],
        ["cataract"],
        on_call_group_id=eyes.pk,
    )
    _protocol(
        c,
        "Post-op bleeding or swelling",
        ["bleeding that won't stop", "severe swelling"],
        ["facelift"],
        on_call_group_id=plastics.pk,
    )
    return c


def decide(c: Clinic, text: str, kind: str, at: datetime = NOW):
    with tenant_context(c.practice):
        return screen(c.practice, text, c.types[kind].pk, TODAY - timedelta(days=2), at)


def test_the_appointment_type_picks_the_protocol_and_so_the_groups_on_call(centre):
    text = "My eyelid is really swollen and getting worse by the hour."
    cataract = decide(centre, text, "cataract")
    facelift = decide(centre, text, "facelift")

    assert cataract.protocol_name == "Vision loss after cataract surgery"
    assert cataract.route_to is not None and cataract.route_to.name == "Dr. Chen"
    assert facelift.protocol_name == "Post-op bleeding or swelling"
    assert facelift.route_to is not None and facelift.route_to.name == "Dr. Martinez"


def test_a_group_with_nobody_on_call_is_a_gap_not_another_groups_surgeon(centre):
    with tenant_context(centre.practice):
        OnCallShift.objects.filter(group__key="ophthalmology").delete()
    decision = decide(centre, "Suddenly I can't see out of my operated eye.", "cataract")

    assert decision.escalate and decision.on_call_missing
    assert decision.route_to is None


def test_a_protocol_may_name_the_provider_who_takes_it(centre):
    _protocol(
        centre,
        "Mohs wound opened",
        ["stitches came apart"],
        ["mohs"],
        route_provider_id=centre.providers["chen"].pk,
    )
    decision = decide(centre, "The stitches came apart on my nose.", "mohs")
    assert decision.route_to is not None
    assert (decision.route_to.name, decision.route_to.phone) == ("Dr. Chen", "+15555550112")


def test_a_shift_or_protocol_naming_no_group_is_the_default_groups():
    c = clinic()
    c.on_call("martinez", NOW - timedelta(hours=1), NOW + timedelta(hours=1))
    c.protocol("Fever", ["fever"])
    with tenant_context(c.practice):
        shift = OnCallShift.objects.select_related("group").get()
        decision = screen(c.practice, "I have a fever of 102", None, None, NOW)
    assert shift.group.key == DEFAULT_GROUP_KEY
    assert decision.route_to is not None and decision.route_to.name == "Dr. Martinez"


def test_another_practices_group_cannot_be_named():
    mine, theirs = clinic(), clinic("other", "Other")
    with tenant_context(theirs.practice):
        foreign = services.group_for(theirs.practice, "eyes")
    with tenant_context(mine.practice):
        version = services.create_protocol(
            mine.practice,
            services.ProtocolContent(
                name="x",
                triggers=("fever",),
                severity="urgent",
                route="on_call",
                on_call_group_id=foreign.pk,
            ),
            None,
        )
        assert ProtocolVersion.objects.get(pk=version.pk).on_call_group_id is None


def test_the_configuration_file_states_groups_and_exports_them_back():
    doc = json.loads((Path(settings.BASE_DIR) / "demo/bellavista-plastic-surgery.json").read_text())
    doc["ehr"]["kind"] = "none"
    doc = copy.deepcopy(doc)
    doc["escalation_protocols"][0]["route"] = {"on_call_group": "plastic-surgery"}
    doc["escalation_protocols"].append(
        {
            "key": "eyes",
            "name": "Eye pain",
            "triggers": ["severe eye pain"],
            "severity": "urgent",
            "route": {"provider": "chen"},
        }
    )
    doc["on_call"][0]["group"] = "plastic-surgery"
    doc["on_call"].append(
        {"provider": "chen", "start": "2026-11-23T17:00", "end": "2026-12-31T08:00"}
    )
    result = import_config(doc)
    practice = Practice.objects.get(pk=result.practice_id)

    with tenant_context(practice):
        groups = set(OnCallGroup.objects.values_list("key", flat=True))
        at = datetime(2026, 12, 1, 23, 0, tzinfo=practice.tz)
        bleeding = screen(practice, "The bleeding won't stop.", None, None, at)
        eyes = screen(practice, "The pain in my eye is unbearable.", None, None, at)
    assert groups == {"plastic-surgery", DEFAULT_GROUP_KEY}
    assert bleeding.route_to is not None and bleeding.route_to.name == "Dr. Luis Martinez"
    assert eyes.route_to is not None and eyes.route_to.name == "Dr. Mei Chen"

    exported = export_config(practice)
    routes = {p["key"]: p["route"] for p in exported["escalation_protocols"]}
    assert routes == {
        "post-op-bleeding": {"on_call_group": "plastic-surgery"},
        "breathing": "911",
        "eyes": {"provider": "chen"},
    }
    assert [r.get("group") for r in exported["on_call"]] == ["plastic-surgery", None]
    assert import_config(exported).sections["escalation_protocols"].updated == 0


@pytest.mark.parametrize(
    ("route", "error"),
    [
        (
            {"provider": "nobody"},
            'escalation_protocols[0].route.provider: unknown provider "nobody"',
        ),
        (
            {"provider": "chen", "on_call_group": "eyes"},
            "escalation_protocols[0].route: must name one",
        ),
        (
            {"on_call_group": "not a key"},
            "escalation_protocols[0].route.on_call_group: must be a key",
        ),
    ],
)
def test_a_route_naming_who_takes_it_is_checked(route, error):
    doc = json.loads((Path(settings.BASE_DIR) / "demo/bellavista-plastic-surgery.json").read_text())
    doc["ehr"]["kind"] = "none"
    doc["escalation_protocols"][0]["route"] = route
    assert any(e.startswith(error) for e in validate_config(doc)), validate_config(doc)
