"""Caller phrases to appointment types, on what callers really say."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings

from accounts.models import Practice
from core.tenancy import cross_tenant, tenant_context
from onboarding.services import import_config
from scheduling.intents import MIN_CONFIDENCE, IntentMatch, normalise, resolve_intent
from scheduling.models import AppointmentType
from tests.factories import PracticeFactory
from tests.scheduling.factories import AppointmentTypeFactory

pytestmark = pytest.mark.django_db

DEMO_DIR = Path(settings.BASE_DIR) / "demo"


def load(name: str) -> Practice:
    doc = json.loads((DEMO_DIR / f"{name}.json").read_text())
    doc["ehr"]["kind"] = "none"  # the phrases are what matter here, not the EHR
    result = import_config(doc)
    return Practice.objects.get(pk=result.practice_id)


@pytest.fixture
def bellavista():
    return load("bellavista-plastic-surgery")


@pytest.fixture
def happy_smiles():
    return load("happy-smiles")


@pytest.fixture
def ophthalmology():
    practice = PracticeFactory(slug="clearview", name="Clearview Eye Center")
    AppointmentTypeFactory(
        practice=practice,
        name="Post-op Cataract Follow-up",
        minutes=20,
        new_patients=False,
        phrases=[
            "cataract surgery follow up",
            "question about my vision after surgery",
            "blurry vision after cataract",
        ],
    )
    AppointmentTypeFactory(
        practice=practice,
        name="Cataract Evaluation",
        minutes=90,
        phrases=["cataract evaluation", "cataract consult", "cloudy vision"],
    )
    AppointmentTypeFactory(
        practice=practice,
        name="Comprehensive Eye Exam",
        minutes=45,
        phrases=["eye exam", "new glasses", "vision test"],
    )
    # in the EHR, but only staff book surgery (pre-op clearance first): not for the agent
    AppointmentTypeFactory(
        practice=practice,
        name="Cataract Surgery",
        minutes=120,
        new_patients=False,
        bookable=False,
        phrases=["cataract surgery", "schedule my cataract surgery"],
    )
    return practice


def resolve(practice: Practice, utterance: str, status: str = "existing") -> list[IntentMatch]:
    with tenant_context(practice):
        return resolve_intent(practice, utterance, status)


def names(matches: list[IntentMatch]) -> list[str]:
    return [m.name for m in matches]


# --- what callers say -------------------------------------------------------------------------


def test_rhinoplasty_consultation(bellavista):
    matches = resolve(bellavista, "I'm interested in getting a rhinoplasty consultation", "new")

    assert names(matches) == ["New Patient Consultation"]
    best = matches[0]
    assert best.confidence == 1.0
    assert best.matched_phrase == "rhinoplasty consultation"
    with tenant_context(bellavista):
        assert best.appointment_type_id == AppointmentType.objects.get(key="new-consult").pk


def test_cataract_surgery_last_month_and_a_question_about_my_vision(ophthalmology):
    utterance = "I had cataract surgery last month and I have a question about my vision"

    matches = resolve(ophthalmology, utterance, "existing")

    assert matches[0].name == "Post-op Cataract Follow-up"
    assert matches[0].matched_phrase == "question about my vision after surgery"
    assert MIN_CONFIDENCE <= matches[0].confidence < 1.0  # all its words, but not together
    assert "Cataract Surgery" not in names(matches)  # not bookable by the agent
    # a new patient cannot book a post-op visit, and nothing else fits well enough
    assert resolve(ophthalmology, utterance, "new") == []


@pytest.mark.parametrize(
    ("utterance", "expected"),
    [
        ("my vision has been blurry since the cataract surgery", "Post-op Cataract Follow-up"),
        ("I think I need new glasses", "Comprehensive Eye Exam"),
        ("I'd like a cataract evaluation please", "Cataract Evaluation"),
        ("I need to book my follow-up after cataract surgery", "Post-op Cataract Follow-up"),
    ],
)
def test_other_eye_care_requests(ophthalmology, utterance, expected):
    assert names(resolve(ophthalmology, utterance))[0] == expected


def test_teeth_cleaned(happy_smiles):
    for utterance in (
        "I need my teeth cleaned",
        "Hi, I'd like to get my teeth cleaned please",
        "can I book a cleaning",
    ):
        matches = resolve(happy_smiles, utterance, "new")
        assert names(matches)[:1] == ["Cleaning"], utterance
        assert matches[0].confidence == 1.0


@pytest.mark.parametrize(
    ("practice_name", "utterance", "expected"),
    [
        ("bellavista", "I'm intrested in a rhinoplasy consultaton", "New Patient Consultation"),
        ("bellavista", "I need my stiches removed", "Post-op Follow-up"),
        ("bellavista", "I want to schedule my surgury", "Procedure Day"),
        ("happy_smiles", "I need my teeth cleened", "Cleaning"),
        ("happy_smiles", "I think I need a rute canal, I have a toothache", "Root Canal"),
        ("happy_smiles", "I have a tooth ache", "Root Canal"),
    ],
)
def test_misspellings_and_word_forms(request, practice_name, utterance, expected):
    practice = request.getfixturevalue(practice_name)
    matches = resolve(practice, utterance, "existing")
    assert names(matches)[:1] == [expected]
    assert matches[0].confidence >= 0.8


def test_misspelt_words_rank_below_exact_ones(bellavista):
    exact = resolve(bellavista, "rhinoplasty consultation", "new")[0]
    misspelt = resolve(bellavista, "rhinoplasy consultaton", "new")[0]
    assert exact.name == misspelt.name == "New Patient Consultation"
    assert exact.confidence == 1.0
    assert 0.85 < misspelt.confidence < 1.0


def test_type_names_count_as_phrases(happy_smiles):
    matches = resolve(happy_smiles, "I'd like to come in as a new patient for an exam", "new")
    assert matches[0].name == "New Patient Exam"
    assert matches[0].matched_phrase == "New Patient Exam"
    assert matches[0].confidence == 1.0


# --- who may book what ----------------------------------------------------------------------


def test_patient_status_filters_types(happy_smiles, bellavista):
    # New Patient Exam is for new patients only; Exam and Root Canal for existing ones only
    assert names(resolve(happy_smiles, "I want to become a patient", "new")) == ["New Patient Exam"]
    assert resolve(happy_smiles, "I want to become a patient", "existing") == []
    assert names(resolve(happy_smiles, "I need a root canal", "existing")) == ["Root Canal"]
    assert resolve(happy_smiles, "I need a root canal", "new") == []
    # post-op visits and procedure days are for existing patients
    assert names(resolve(bellavista, "can someone check my stitches", "existing")) == [
        "Post-op Follow-up"
    ]
    assert resolve(bellavista, "can someone check my stitches", "new") == []
    with pytest.raises(ValueError, match="patient_status"):
        resolve(happy_smiles, "cleaning", "vip")


def test_types_the_agent_may_not_book_are_never_offered(happy_smiles):
    with cross_tenant("test setup"):
        AppointmentType.objects.filter(practice=happy_smiles, key="cleaning").update(bookable=False)
    assert "Cleaning" not in names(resolve(happy_smiles, "I need my teeth cleaned", "existing"))


def test_other_practices_types_are_never_matched(happy_smiles, bellavista):
    assert resolve(happy_smiles, "I'm interested in a rhinoplasty consultation", "new") == []
    assert resolve(bellavista, "I need my teeth cleaned", "new") == []


# --- nothing rather than a guess ------------------------------------------------------------


@pytest.mark.parametrize(
    "utterance",
    [
        "what's the weather tomorrow",
        "can I speak to someone about my bill",
        "what are your opening hours",
        "",
        "   ...   ",
        "um, hello?",
    ],
)
def test_nonsense_and_off_topic_give_nothing(happy_smiles, bellavista, utterance):
    assert resolve(happy_smiles, utterance, "existing") == []
    assert resolve(bellavista, utterance, "existing") == []


def test_a_few_generic_words_are_not_enough(ophthalmology):
    # "question" and "surgery" are two of the three words of "question about my vision after
    # surgery" (confidence 0.6): a guess, below the threshold, so the agent takes a message
    assert resolve(ophthalmology, "I have a question about my knee surgery", "existing") == []


# --- ranking ----------------------------------------------------------------------------------


def test_ties_rank_the_more_specific_phrase_first(happy_smiles):
    # "checkup" (Exam) and "checkup and cleaning" (Cleaning) are both heard in full
    matches = resolve(happy_smiles, "I'd like a check-up and cleaning", "existing")
    assert [(m.name, m.confidence, m.matched_phrase) for m in matches] == [
        ("Cleaning", 1.0, "checkup and cleaning"),
        ("Exam", 1.0, "checkup"),
    ]


def test_equal_matches_rank_by_name_then_id():
    practice = PracticeFactory()
    zebra = AppointmentTypeFactory(practice=practice, name="Zebra Visit", phrases=["laser"])
    alpha = AppointmentTypeFactory(practice=practice, name="Alpha Visit", phrases=["laser"])
    matches = resolve(practice, "laser please")
    assert [m.appointment_type_id for m in matches] == [alpha.pk, zebra.pk]


def test_partial_overlaps_rank_below_full_ones(ophthalmology):
    matches = resolve(ophthalmology, "I need a follow up for my cataract surgery")
    assert matches[0].name == "Post-op Cataract Follow-up"
    assert matches[0].confidence == 0.9  # every word of "cataract surgery follow up", reordered
    for lower in matches[1:]:
        assert lower.confidence < matches[0].confidence
    confidences = [m.confidence for m in matches]
    assert confidences == sorted(confidences, reverse=True)
    assert all(0.0 <= c <= 1.0 for c in confidences)


# --- cost -------------------------------------------------------------------------------------


def test_one_query_whatever_the_number_of_types_and_phrases(
    happy_smiles, django_assert_num_queries
):
    with tenant_context(happy_smiles):
        with django_assert_num_queries(1):
            resolve_intent(happy_smiles, "I need my teeth cleaned", "existing")
        with cross_tenant("test setup"):
            for n in range(20):
                AppointmentTypeFactory(
                    practice=happy_smiles, phrases=[f"extra phrase {n}", f"another {n}"]
                )
        with django_assert_num_queries(1):
            matches = resolve_intent(happy_smiles, "I need my teeth cleaned", "existing")
    assert names(matches)[0] == "Cleaning"


# --- normalisation ----------------------------------------------------------------------------


def test_normalisation_drops_filler_and_reduces_word_forms():
    def stems(text: str) -> list[str]:
        return [w.stem for w in normalise(text)]

    assert stems("I'm interested in getting a rhinoplasty consultation, please!") == [
        "rhinoplasty",
        "consultation",
    ]
    assert (
        stems("I'd like to get my teeth cleaned") == stems("teeth cleaning") == ["teeth", "clean"]
    )
    assert stems("Follow-up after my post-op") == ["followup", "postop"]
    assert stems("stitches removed") == stems("stitch remove") == ["stitch", "remov"]
    assert stems("surgeries") == stems("surgery") == ["surgery"]
