"""The fresh screening batches (`screening_fresh`) hold the bar screening is judged by: no urgent
sentence missed, at most one benign look-alike in twenty escalated (by a protocol or as an
emergency), every emergency heard and no negated one; and, for the demo practices' own
protocols, screening end to end escalates the urgent ones and not (beyond that rate) the benign."""

from __future__ import annotations

import pytest

from calls.escalation.matching import best_trigger, concepts_heard, emergency_heard
from calls.escalation.screening import screen
from core.tenancy import tenant_context
from tests.calls.screening_fresh import BENIGN, EMERGENCY, NOT_EMERGENCY, PROTOCOLS, URGENT
from tests.calls.test_screen_sentences import DEMOS, NOW, _context, _demo

# the demo practices' protocols the fresh batches speak to
FRESH_DEMOS = {
    **DEMOS,
    "post-mohs-bleeding": "lakeside-eye-skin",
    "sudden-vision-loss": "lakeside-eye-skin",
}


def _escalated(key: str, text: str) -> bool:
    return best_trigger(PROTOCOLS[key], text) is not None or emergency_heard(text) is not None


def test_every_urgent_sentence_fires_its_protocol():
    missed = {t: concepts_heard(t) for k, t in URGENT if best_trigger(PROTOCOLS[k], t) is None}
    assert missed == {}


def test_at_most_one_benign_look_alike_in_twenty_escalates():
    escalated = [t for k, t in BENIGN if _escalated(k, t)]
    assert len(escalated) * 20 <= len(BENIGN), escalated


def test_each_protocol_keeps_the_benign_rate():
    for key in PROTOCOLS:
        benign = [t for k, t in BENIGN if k == key]
        escalated = [t for t in benign if _escalated(key, t)]
        assert benign and len(escalated) * 20 <= len(benign), (key, escalated)


def test_emergencies_are_heard_and_negated_ones_are_not():
    assert [t for t in EMERGENCY if emergency_heard(t) is None] == []
    assert [t for t in NOT_EMERGENCY if emergency_heard(t) is not None] == []


@pytest.mark.django_db
@pytest.mark.parametrize("key", sorted(FRESH_DEMOS))
def test_the_demo_practices_screen_the_fresh_sentences(key):
    practice, doc = _demo(FRESH_DEMOS[key])
    spec = next(p for p in doc["escalation_protocols"] if p["key"] == key)
    type_id, procedure = _context(practice, spec)
    with tenant_context(practice):
        missed = [
            t
            for k, t in URGENT
            if k == key and not screen(practice, t, type_id, procedure, NOW).escalate
        ]
        benign = [t for k, t in BENIGN if k == key]
        escalated = [t for t in benign if screen(practice, t, type_id, procedure, NOW).escalate]
    assert missed == []
    assert len(escalated) * 20 <= len(benign), escalated
