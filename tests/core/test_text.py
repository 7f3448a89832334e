"""core.text: the folding, stemmer and negation words both caller-phrase matchers share."""

from __future__ import annotations

import pytest

from calls.escalation import matching
from core.text import NEGATIONS, first_negation, fold, stem, words
from scheduling import intents


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("cleaning", "clean"),
        ("cleaned", "clean"),
        ("stitches", "stitch"),
        ("surgeries", "surgery"),
        ("bleeding", "bleed"),
        ("getting", "get"),
        ("removed", "remov"),
        ("chills", "chill"),
        ("swollen", "swollen"),
        ("glasses", "glass"),
        ("abscess", "abscess"),
        ("pus", "pus"),
        ("x2", "x2"),
    ],
)
def test_stem(word: str, expected: str) -> None:
    assert stem(word) == expected


def test_fold_and_words() -> None:
    assert fold("I'm NOT sure it\u2019s Infected") == "im not sure its infected"
    assert words("Follow-up, post-op: I'd like one!") == [
        "follow",
        "up",
        "post",
        "op",
        "id",
        "like",
        "one",
    ]


def test_first_negation_reads_words_as_said() -> None:
    assert first_negation(["it's", "not", "a", "cleaning"]) == 1
    assert first_negation(["Don't,", "please"]) == 0
    assert first_negation(["a", "cleaning", "please"]) is None
    assert first_negation(["nothing"]) is None
    assert first_negation(["nothing"], NEGATIONS | {"nothing"}) == 0


def test_both_matchers_use_the_shared_helpers() -> None:
    """One stemmer: a stem the intent matcher computes is the one screening computes."""
    assert intents._stem is stem
    assert matching.core_stem is stem  # screening adds comparatives on top, nothing else
    for word in ("cleaning", "stitches", "removed", "bleeding", "surgeries", "swollen"):
        assert matching.stem(word) == stem(word)
    assert matching.stem("puffier") == matching.stem("puffiest") == "puffy"
    assert NEGATIONS <= intents.NEGATIONS
    assert NEGATIONS <= matching.NEGATORS
    assert [w.stem for w in intents.normalise("Cleanings and stitches removed")] == [
        "clean",
        "stitch",
        "remov",
    ]
    assert [t.stem for t in matching.tokenize("It's bleeding")] == ["its", "bleed"]
