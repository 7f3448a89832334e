"""The development set (`screening_sentences`) against the matcher and, for the demo practices'
own protocols, against screening end to end: urgent sentences (also buried in a long rambling
turn) reach the right person with the protocol's instructions, benign look-alikes (qualifiers
playing it down, negations, "is that normal?") do not escalate, emergencies get 911 first."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from django.conf import settings

from accounts.models import Practice
from calls.escalation.matching import best_trigger, concepts_heard, emergency_heard
from calls.escalation.screening import screen
from core.tenancy import tenant_context
from onboarding.services import import_config
from scheduling.models import AppointmentType, Provider
from tests.calls.screening_sentences import (
    BENIGN,
    EMERGENCY,
    NOT_EMERGENCY,
    PROTOCOLS,
    URGENT,
)

DEMO_DIR = Path(settings.BASE_DIR) / "demo"


def _label(case: tuple[str, str]) -> str:
    return f"{case[0]}:{case[1][-48:]}"


@pytest.mark.parametrize("case", URGENT, ids=_label)
def test_urgent_sentences_fire_their_protocol(case):
    key, text = case
    match = best_trigger(PROTOCOLS[key], text)
    assert match is not None, concepts_heard(text)


@pytest.mark.parametrize("case", BENIGN, ids=_label)
def test_benign_look_alikes_do_not_fire(case):
    key, text = case
    assert best_trigger(PROTOCOLS[key], text) is None
    assert emergency_heard(text) is None


def test_the_development_set_meets_the_bar():
    """No urgent sentence missed, at most one benign in twenty escalated."""
    missed = [t for k, t in URGENT if best_trigger(PROTOCOLS[k], t) is None]
    escalated = [t for k, t in BENIGN if best_trigger(PROTOCOLS[k], t) is not None]
    assert missed == []
    assert len(escalated) * 20 <= len(BENIGN)


@pytest.mark.parametrize("text", EMERGENCY)
def test_emergencies_are_heard(text):
    assert emergency_heard(text) is not None


@pytest.mark.parametrize("text", NOT_EMERGENCY)
def test_negated_emergencies_are_not(text):
    assert emergency_heard(text) is None


@pytest.mark.parametrize(
    ("trigger", "text", "qualifiers"),
    [
        (
            "rapidly increasing swelling",
            "the swelling is getting worse by the hour",
            ("getting worse", "by the hour"),
        ),
        (
            "swelling on one side",
            "my left cheek is much more swollen than the other",
            ("much more",),
        ),
        ("severe swelling", "my face is really swollen, is that normal?", ("really",)),
    ],
)
def test_a_match_names_the_words_that_qualified_it(trigger, text, qualifiers):
    match = best_trigger((trigger,), text)
    assert match is not None and match.qualifiers == qualifiers


# --- end to end on the demo practices ------------------------------------------------------


def _demo(name: str) -> tuple[Practice, dict]:
    doc = json.loads((DEMO_DIR / f"{name}.json").read_text())
    doc["ehr"]["kind"] = "none"
    result = import_config(doc)
    return Practice.objects.get(pk=result.practice_id), doc


DEMOS = {"post-op-bleeding": "bellavista-plastic-surgery", "dental-trauma": "happy-smiles"}
NOW = datetime(2026, 12, 1, 21, 0, tzinfo=UTC)  # inside both demo rotas


def _context(practice: Practice, spec: dict) -> tuple[int | None, date]:
    with tenant_context(practice):
        type_id = (
            AppointmentType.objects.get(key=spec["appointment_types"][0]).pk
            if spec["appointment_types"]
            else None
        )
    return type_id, (NOW - timedelta(days=3)).date()


@pytest.mark.django_db
@pytest.mark.parametrize("key", sorted(DEMOS))
def test_every_demo_protocol_sends_urgent_sentences_to_the_on_call_and_not_benign_ones(key):
    practice, doc = _demo(DEMOS[key])
    spec = next(p for p in doc["escalation_protocols"] if p["key"] == key)
    type_id, procedure = _context(practice, spec)
    with tenant_context(practice):
        on_call = Provider.objects.get(key=doc["on_call"][0]["provider"])
        for text in [t for k, t in URGENT if k == key]:
            decision = screen(practice, text, type_id, procedure, NOW)
            assert decision.escalate, text
            assert (decision.protocol_name, decision.instructions) == (
                spec["name"],
                spec["instructions"],
            ), text
            assert decision.route_to is not None
            assert decision.route_to.provider_id == on_call.pk, text
        for text in [t for k, t in BENIGN if k == key]:
            assert not screen(practice, text, type_id, procedure, NOW).escalate, text


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(set(DEMOS.values())))
def test_emergencies_answer_911_first_whatever_the_protocols_say(name):
    """Happy Smiles has no breathing protocol at all; Bellavista's post-op protocol would match
    "won't stop" too: 911 comes first either way."""
    practice, _ = _demo(name)
    with tenant_context(practice):
        for text in EMERGENCY:
            decision = screen(practice, text, None, None, NOW)
            assert decision.escalate and decision.severity == "emergency", text
            assert decision.route == "911" and decision.route_to is None, text
            assert decision.instructions and "911" in decision.instructions.split(".")[0], text
            assert decision.as_api()["emergency"], text
        for text in NOT_EMERGENCY:
            assert not screen(practice, text, None, None, NOW).escalate, text
