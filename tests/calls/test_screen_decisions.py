"""Screening decisions: realistic caller sentences per specialty against live protocols, the
paraphrases protocols do not list, what must NOT escalate, the procedure context, emergencies
beating everything, and who is on call now."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from calls.escalation import services
from calls.escalation.matching import concepts_heard, match_trigger
from calls.escalation.screening import screen
from core.tenancy import tenant_context
from tests.calls.test_escalation_world import Clinic, clinic

pytestmark = pytest.mark.django_db

LA = ZoneInfo("America/Los_Angeles")
NOW = datetime(2026, 11, 20, 21, 30, tzinfo=LA)  # a Friday evening: the office is closed
TODAY = NOW.date()


@pytest.fixture
def surgery() -> Clinic:
    """A multi-specialty surgery centre with the protocols its clinicians approved."""
    c = clinic()
    c.protocol(
        "Post-op bleeding or fever",
        ["bleeding that won't stop", "fever", "severe swelling"],
        types=["facelift"],
        within_days=14,
        instructions="Connect the caller to the on-call surgeon now.",
    )
    c.protocol(
        "Vision loss after cataract surgery",
        ["sudden vision loss", "curtain over my vision", "severe eye pain"],
        types=["cataract"],
        within_days=30,
        instructions="Connect the caller to the on-call ophthalmologist now.",
    )
    c.protocol(
        "Infection after Mohs",
        ["fever", "pus", "redness spreading from the wound"],
        types=["mohs"],
        within_days=14,
    )
    c.protocol(
        "Possible DVT",
        ["calf pain", "swollen calf"],
        types=["knee"],
        within_days=42,
        instructions="Connect the caller to the on-call orthopedist now.",
    )
    c.protocol(
        "Trouble breathing or chest pain",
        ["can't breathe", "chest pain", "short of breath"],
        severity="emergency",
        instructions="Tell the caller to hang up and dial 911 now.",
    )
    c.protocol(
        "Prescription refill",
        ["refill my prescription", "ran out of pain medication"],
        severity="routine",
        instructions="Take a message for the nurse line on the next business day.",
    )
    c.on_call("martinez", NOW - timedelta(hours=4), NOW + timedelta(hours=11))
    return c


def decide(c: Clinic, text: str, kind: str | None = None, days_ago: int | None = None):
    type_id = c.types[kind].pk if kind else None
    procedure = TODAY - timedelta(days=days_ago) if days_ago is not None else None
    with tenant_context(c.practice):
        return screen(c.practice, text, type_id, procedure, NOW)


# --- one realistic caller per specialty --------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "days_ago", "text", "protocol", "heard"),
    [
        (
            "facelift",
            3,
            "Hi, I had my facelift on Tuesday and the bandage under my jaw is soaked through, "
            "I've changed it twice already.",
            "Post-op bleeding or fever",
            "soaked through",
        ),
        (
            "cataract",
            2,
            "I had cataract surgery on Wednesday and about an hour ago everything in my right eye "
            "just went dark.",
            "Vision loss after cataract surgery",
            "went dark",
        ),
        (
            "mohs",
            5,
            "They took a skin cancer off my nose with Mohs last week and tonight I've got the "
            "chills and the site is hot to the touch.",
            "Infection after Mohs",
            "chills",
        ),
        (
            "knee",
            9,
            "I'm nine days out from my knee scope and my lower leg is really tender and puffy.",
            "Possible DVT",
            "lower leg is really tender",
        ),
    ],
)
def test_realistic_callers_per_specialty_reach_the_on_call_provider(
    surgery, kind, days_ago, text, protocol, heard
):
    decision = decide(surgery, text, kind, days_ago)

    assert decision.escalate
    assert decision.protocol_name == protocol
    assert decision.severity == "urgent"
    assert decision.heard == heard
    assert decision.route_to is not None
    assert (decision.route_to.name, decision.route_to.phone) == ("Dr. Martinez", "+15555550111")
    body = decision.as_api()
    assert body["route_to"] == {
        "provider_id": surgery.providers["martinez"].pk,
        "name": "Dr. Martinez",
        "phone": "+15555550111",
    }
    assert body["protocol_id"] == decision.protocol_id and body["instructions"]


# --- paraphrases the protocols do not list word for word --------------------------------------


@pytest.mark.parametrize(
    ("trigger", "text"),
    [
        ("bleeding that won't stop", "there's blood all over my pillow"),
        ("bleeding that won't stop", "it keeps oozing from the incision behind my ear"),
        ("bleeding that won't stop", "it hasn't stopped bleeding since last night"),
        ("bleeding that won't stop", "I'm bleding a lot"),  # a typing slip
        ("fever", "I'm running a temperature of 101"),
        ("fever", "I feel like I'm burning up"),
        ("fever", "I'm not sure if it's a fever, I feel awful"),  # unsure callers count
        ("severe swelling", "my whole face is swolen"),  # speech-to-text slip
        ("sudden vision loss", "it's like a curtain came down over my left eye"),
        ("sudden vision loss", "I can't see out of the eye they operated on"),
        ("sudden vision loss", "my vision went really blurry all of a sudden"),
        ("calf pain", "the back of my leg hurts when I walk"),
        ("swollen calf", "my calf is swollen and red"),
        ("chest pain", "my chest feels really tight"),
        ("short of breath", "I can't catch my breath"),
        ("can't breathe", "it's hard to breathe"),
        ("redness spreading from the wound", "there's a red streak going up from the stitches"),
    ],
)
def test_paraphrases_match_their_trigger(trigger, text):
    assert match_trigger(trigger, text) is not None, concepts_heard(text)


@pytest.mark.parametrize(
    ("trigger", "text"),
    [
        ("fever", "no fever, just wondering when I can shower"),
        ("fever", "I don't have a fever or anything"),
        ("bleeding that won't stop", "the bleeding has stopped now"),
        ("bleeding that won't stop", "I'm not bleeding anymore"),
        ("bleeding that won't stop", "what should I do if it starts bleeding?"),
        ("severe swelling", "is a little swelling normal after a facelift?"),
        ("fever", "what are the signs of infection I should watch for?"),
        ("sudden vision loss", "I see some dark bruising around the eye"),
        ("calf pain", "my knee is stiff in the morning"),
        ("short of breath", "I'm breathing fine, thanks"),
        ("swelling in my face", "my ankle is swollen"),
    ],
)
def test_negated_hypothetical_or_unrelated_words_do_not_match(trigger, text):
    assert match_trigger(trigger, text) is None, concepts_heard(text)


@pytest.mark.parametrize(
    "text",
    [
        "When can I wash my hair after my facelift?",
        "Can I move my post-op appointment to next Thursday?",
        "Is it normal to have a little swelling a week after surgery?",
        "What time does the office open on Monday?",
        "I don't have any fever or bleeding, I just want to book my follow-up.",
    ],
)
def test_routine_questions_do_not_escalate(surgery, text):
    decision = decide(surgery, text, "facelift", 4)
    assert not decision.escalate
    assert decision.as_api() == {
        "escalate": False,
        "protocol_id": None,
        "severity": None,
        "route_to": None,
        "instructions": None,
        "route": None,
        "protocol_version": None,
        "protocol_name": None,
        "matched_trigger": None,
        "on_call_missing": False,
        "emergency": None,
        "qualifiers": [],
    }


# --- the procedure context ---------------------------------------------------------------------


def test_the_days_since_the_procedure_decide_whether_a_protocol_applies(surgery):
    text = "I've had a fever since this morning"
    assert decide(surgery, text, "facelift", 14).protocol_name == "Post-op bleeding or fever"
    # 40 days after a facelift, the 14-day protocol is over: nothing else covers a fever
    late = decide(surgery, text, "facelift", 40)
    assert not late.escalate
    # a procedure still to come is not "after" it either
    assert not decide(surgery, text, "facelift", -3).escalate


def test_a_protocol_for_other_procedures_does_not_apply(surgery):
    # DVT is watched for after knee surgery, not after a consultation
    assert not decide(surgery, "my calf is sore and swollen", "consult", 2).escalate
    assert decide(surgery, "my calf is sore and swollen", "knee", 2).protocol_name == "Possible DVT"


def test_unknown_context_rules_nothing_out(surgery):
    """The agent may not know the procedure: missing an escalation costs more than an extra
    one, so protocols for any procedure apply."""
    decision = decide(surgery, "my lower leg is swollen and tender")
    assert decision.protocol_name == "Possible DVT"
    assert decide(surgery, "my calf hurts", "knee").escalate  # type known, date not


# --- emergencies beat everything --------------------------------------------------------------


def test_an_emergency_beats_an_urgent_match_in_the_same_sentence(surgery):
    decision = decide(surgery, "my calf has been aching and now I'm short of breath", "knee", 6)

    assert decision.severity == "emergency"
    assert decision.protocol_name == "Trouble breathing or chest pain"
    assert decision.route == "911" and decision.route_to is None
    assert decision.instructions == "Tell the caller to hang up and dial 911 now."


def test_emergencies_apply_whatever_the_procedure_and_date(surgery):
    for kind, days in (("consult", None), ("facelift", 200), (None, None)):
        assert decide(surgery, "I have crushing chest pain", kind, days).severity == "emergency"


def test_a_routine_protocol_takes_a_message_and_urgent_outranks_it(surgery):
    routine = decide(surgery, "I ran out of pain medication, can someone refill my prescription")
    assert (routine.escalate, routine.severity, routine.route) == (True, "routine", "message")
    assert routine.route_to is None
    both = decide(surgery, "I need a refill of my prescription and I have a fever", "mohs", 3)
    assert both.severity == "urgent"


# --- only live versions; the rota ----------------------------------------------------------------


def test_only_the_live_version_is_applied_and_a_draft_only_on_request(surgery):
    draft = surgery.protocol("Nausea after anaesthesia", ["throwing up"], approve=False)
    assert not decide(surgery, "I keep throwing up").escalate
    with tenant_context(surgery.practice):
        tried = screen(surgery.practice, "I keep throwing up", now=NOW, drafts=True)
    assert tried.version_id == draft.pk
    # an edit of a live protocol does not change what callers get until it is approved
    fever = decide(surgery, "I have a fever", "mohs", 2)
    with tenant_context(surgery.practice):
        from calls.models import EscalationProtocol

        protocol = EscalationProtocol.objects.get(pk=fever.protocol_id)
        services.save_draft(
            protocol,
            services.ProtocolContent("Infection after Mohs", ("pus",), "urgent", "on_call"),
            None,
        )
    assert decide(surgery, "I have a fever", "mohs", 2).version_id == fever.version_id


def test_route_to_is_whoever_is_on_call_at_that_moment(surgery):
    text = "my face is really swollen"
    later = NOW + timedelta(hours=12)  # Martinez's shift ended at NOW + 11 h
    surgery.on_call("chen", NOW + timedelta(hours=11), NOW + timedelta(days=2))
    with tenant_context(surgery.practice):
        decision = screen(surgery.practice, text, surgery.types["facelift"].pk, TODAY, later)
    assert decision.route_to is not None and decision.route_to.name == "Dr. Chen"


def test_nobody_on_call_still_escalates_and_says_so():
    c = clinic()
    c.protocol("Fever", ["fever"])
    with tenant_context(c.practice):
        decision = screen(c.practice, "I have a fever", now=NOW)
    assert decision.escalate and decision.route_to is None and decision.on_call_missing


def test_screening_reads_the_database_a_fixed_number_of_times(surgery, django_assert_num_queries):
    with tenant_context(surgery.practice), django_assert_num_queries(2):
        screen(
            surgery.practice, "I have a fever", surgery.types["mohs"].pk, date(2026, 11, 18), NOW
        )
    with tenant_context(surgery.practice), django_assert_num_queries(1):
        screen(surgery.practice, "when do you open?", None, None, NOW)
