"""The resolver on the development set (`intent_dev_set.py`): specialty practices configured
the ordinary way and sentences that contain none of their phrases word for word."""

from __future__ import annotations

import pytest

from scheduling.intents import TypeEvidence, affirmed, lexicon, normalise, rank
from tests.scheduling.intent_dev_set import CASES, PRACTICES, Case

pytestmark = pytest.mark.django_db  # `scheduling.intents` imports the models; no query is made


def answer(case: Case) -> str | None:
    specs = PRACTICES[case.practice]
    types = [
        TypeEvidence(
            i,
            t.name,
            t.phrases,
            bookable=t.new_patients if case.status == "new" else t.existing_patients,
            instructions=t.instructions,
        )
        for i, t in enumerate(specs)
    ]
    matches = rank(types, case.sentence)
    return specs[matches[0].appointment_type_id].key if matches else None


def test_callers_are_understood_and_never_misread():
    positives = [c for c in CASES if c.expected is not None]
    results = {c: answer(c) for c in positives}
    wrong = {c.sentence: got for c, got in results.items() if got not in (None, c.expected)}
    right = sum(1 for c, got in results.items() if got == c.expected)
    assert wrong == {}
    assert right / len(positives) >= 0.9, {c.sentence for c, g in results.items() if g is None}


def test_what_is_not_an_appointment_stays_empty():
    fired = {(c.practice, c.sentence): answer(c) for c in CASES if c.expected is None}
    assert {k: v for k, v in fired.items() if v is not None} == {}


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        ("rhinoplasty", "new-consult"),  # one distinctive word against a two-word phrase
        ("I want a rhinoplasty", "new-consult"),
        ("breast augmentation", "new-consult"),
        ("I'm interested in a facelift", "new-consult"),
        ("my nose job", "new-consult"),
    ],
)
def test_the_demo_practice_understands_single_distinctive_words(sentence, expected):
    assert answer(Case("plastic", sentence, expected, "new")) == expected


def test_negation_and_contrast_count():
    kept = [w.raw for w in normalise(affirmed("not a cleaning, I think I cracked a tooth"))]
    assert kept == ["think", "cracked", "tooth"]
    assert answer(Case("dental", "I don't want a cleaning", None)) is None
    assert answer(Case("dental", "no toothache, just my cleaning", "cleaning")) == "cleaning"
    assert answer(Case("dental", "not the exam but a root canal", "root-canal")) == "root-canal"


def test_lay_words_and_misspellings_reach_clinical_types():
    assert answer(Case("eye", "glocoma check", "glaucoma")) == "glaucoma"
    assert answer(Case("eye", "my eye pressure", "glaucoma")) == "glaucoma"
    assert answer(Case("plastic", "I want to get my eyelids done", "new-consult", "new"))
    assert answer(Case("derm", "basal cell, my doctor said Mohs", "mohs")) == "mohs"


def test_lay_words_in_another_order_or_slipped_still_name_the_procedure():
    assert answer(Case("plastic", "I want my breasts made smaller", "new-consult", "new"))
    assert answer(Case("plastic", "um I want a tummy tuk", "new-consult", "new"))
    assert answer(Case("ortho", "my shoulder needs replacing", None, "new")) == "joint-replacement"


def test_one_shared_word_is_not_evidence_enough():
    """ "vision" is in the cataract type's phrases and the eye exam's: said alone beside other
    words, it picks neither ("vision test" would win only by its unsaid generic word)."""
    assert answer(Case("eye", "something is sagging into my vision", None)) is None


def test_what_the_caller_wants_to_be_done_with_is_not_what_they_ask_for():
    tired = "I'm tired of wearing glasses, can I get laser surgery"
    assert answer(Case("eye", tired, "lasik-consult", "new")) == "lasik-consult"
    assert answer(Case("eye", "I want to get rid of my contacts", None, "new")) == "lasik-consult"
    assert answer(Case("eye", "I need new glasses", None)) == "eye-exam"


def test_every_lexicon_term_survives_normalisation():
    """A term is matched as the caller's words are: a filler word inside it would be dropped
    from the utterance and the term could change meaning ("after my surgery" -> "surgery")."""
    import json

    from scheduling.intents import LEXICON_PATH

    data = json.loads(LEXICON_PATH.read_text())
    for concept in data["concepts"]:
        for term in (*concept["terms"], *concept.get("broader", ())):
            words = term.replace("'", "").split()
            kept = normalise(term)
            assert kept, term
            # several words may join into one compound ("post op" -> "postop"), never shrink
            # to one of themselves
            assert len(words) == 1 or len(kept) >= 2 or kept[0].raw not in words, term
    assert lexicon().concepts


def test_each_match_says_why_word_by_word():
    specs = PRACTICES["plastic"]
    types = [TypeEvidence(i, t.name, t.phrases) for i, t in enumerate(specs)]

    eye = [TypeEvidence(i, t.name, t.phrases) for i, t in enumerate(PRACTICES["eye"])]
    misheard = rank(eye, "glocoma check please")[0]
    assert "glaucoma: heard as \u201cglocoma\u201d" in misheard.evidence, misheard.evidence

    lay = rank(types, "I'm thinking about lipo")[0]
    assert any("from the lexicon, for \u201clipo\u201d" in e for e in lay.evidence), lay.evidence

    partly = rank(types, "a rhinoplasty consult for my daughter")[0]
    assert partly.matched_phrase == "rhinoplasty consultation"
    assert partly.evidence == ("rhinoplasty: said", "consultation: heard as \u201cconsult\u201d")


def test_a_missed_sentence_suggests_its_distinctive_words_as_a_phrase():
    from scheduling.intents import suggest_phrase

    assert suggest_phrase("um can I get the tartar off my teeth please") == "tartar off teeth"
    assert suggest_phrase("not a cleaning, I'd like my gums looked at") == "gums"
    assert suggest_phrase("I want to book an appointment") == ""  # nothing distinctive


def test_a_practices_lay_terms_count_for_it_alone():
    from scheduling.intents import lay_terms_of

    derm = [TypeEvidence(i, t.name, t.phrases) for i, t in enumerate(PRACTICES["derm"])]
    sentence = "I'd like to get my elevens done"
    assert rank(derm, sentence) == []
    own = lay_terms_of([{"terms": ["botox", "my elevens"]}, {"bad": 1}, "x"])
    assert own == ((("botox", "my elevens"), ()),)
    heard = rank(derm, sentence, own)
    assert heard and PRACTICES["derm"][heard[0].appointment_type_id].key == "botox"
    assert rank(derm, sentence) == []  # another practice, the shipped lexicon alone
