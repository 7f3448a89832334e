"""Caller phrases to appointment types: what the voice agent heard -> what it may book.

`resolve_intent(practice, utterance, patient_status)` ranks the practice's bookable types by how
well the caller's words match the type's caller phrases and its name, and returns nothing rather
than a guess when no type reaches `MIN_CONFIDENCE` (the agent then takes a message).

How text is compared. Both sides are normalised the same way: lower case, apostrophes dropped
("I'm" -> "im"), everything but letters and digits is a separator, common compounds joined
("follow up"/"follow-up" -> "followup", "post-op" -> "postop", "check up" -> "checkup"), filler
and function words dropped ("I'm interested in getting a", "I'd like to", "please"), and each
word reduced by a small suffix stemmer (cleaned/cleaning -> clean, stitches -> stitch, surgeries
-> surgery). Two words match when their stems are equal, or, for words of six letters or more,
within one edit (two for nine or more) by Levenshtein distance (rapidfuzz), or when one stem of
five letters or more is a prefix of the other (consult/consultation). Short words must match
exactly: "clear" is not "clean".

Confidence, in 0..1, for one phrase:
* all of its words heard as one contiguous run: the mean word similarity, so an exact
  containment is 1.0 and "rhinoplasy consultaton" about 0.91;
* otherwise the mean over the phrase's words of their best match anywhere in the utterance,
  times 0.9: all words heard but apart scores 0.9, two words of three 0.6, one of two 0.45.
A type's confidence is that of its best phrase (its name counts as a phrase). Ties rank the
type whose matched phrase is longer (more specific) first, then by name and id.

Cost: one SQL query (types with their phrases aggregated), matching in Python; phrase
normalisation is cached per distinct text. The caller runs inside `tenant_context(practice)`,
as every request and task for a practice does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from django.contrib.postgres.aggregates import ArrayAgg
from django.db.models import Q
from rapidfuzz.distance import Levenshtein

from portal.models import Practice
from scheduling.models import AppointmentType

__all__ = ["MIN_CONFIDENCE", "IntentMatch", "normalise", "resolve_intent"]

MIN_CONFIDENCE = 0.65  # all words apart 0.9, three of four 0.675 pass; two of three 0.6 not
APART = 0.9  # a phrase's words heard, but not together
PREFIX_SIMILARITY = 0.85
# A stem that is a prefix of another counts only when the rest is a derivational ending
# (consult/consultation, evaluat/evaluation), not another word (tooth/toothache).
PREFIX_ENDINGS = ("ation", "ion", "ment", "al", "ive", "ic", "ical", "ary", "ory", "ist", "er")
MAX_MATCHES = 5

STOP_WORDS = frozenset(
    """
    a an the i im id ive ill me my mine myself we our us you your he she him his her they them
    their it its this that these those there here what whats when where how why who which
    to in on at of for with from by about into as and or but so if then than after
    is am are was were be been being do does did doing have has had having
    would could should can will shall may might must
    like want wanted wanna need needs needed get gets getting got gotta gonna go going
    just some any really very also too please thanks thank hi hello hey um uh hmm yes yeah ok
    okay well oh interested looking trying try wondering calling call called
    make set up appointment appointments appt
    """.split()  # noqa: SIM905 (a word list reads better as text)
)
COMPOUNDS = {
    ("follow", "up"): "followup",
    ("check", "up"): "checkup",
    ("post", "op"): "postop",
    ("pre", "op"): "preop",
    ("x", "ray"): "xray",
    ("tooth", "ache"): "toothache",
}
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class IntentMatch:
    appointment_type_id: int
    name: str
    confidence: float
    matched_phrase: str


@dataclass(frozen=True, slots=True)
class _Word:
    raw: str
    stem: str


def _stem(word: str) -> str:
    """A deliberately small English suffix stemmer; both sides go through it."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("sses") or word.endswith(("ches", "shes", "xes", "zes")):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            if word[-1] == word[-2] and word[-1] not in "lsz":  # getting -> gett -> get
                word = word[:-1]
            break
    if word.endswith("e") and len(word) > 4:  # remove / removed / removing -> remov
        word = word[:-1]
    return word


@lru_cache(maxsize=8192)
def normalise(text: str) -> tuple[_Word, ...]:
    """The meaningful words of `text`, joined compounds, stemmed. Falls back to every word when
    all of them are filler (a phrase such as "what to do" still means something)."""
    words = _WORD.findall(text.casefold().replace("'", "").replace("\u2019", ""))
    joined: list[str] = []
    i = 0
    while i < len(words):
        compound = COMPOUNDS.get((words[i], words[i + 1])) if i + 1 < len(words) else None
        if compound is not None:
            joined.append(compound)
            i += 2
        else:
            joined.append(words[i])
            i += 1
    kept = [w for w in joined if w not in STOP_WORDS] or joined
    return tuple(_Word(w, _stem(w)) for w in kept)


def _similarity(a: _Word, b: _Word) -> float:
    if a.stem == b.stem:
        return 1.0
    best = 0.0
    for x, y in ((a.raw, b.raw), (a.stem, b.stem)):
        shortest = min(len(x), len(y))
        budget = 0 if shortest < 6 else 1 if shortest < 9 else 2
        if budget:
            distance = Levenshtein.distance(x, y, score_cutoff=budget)
            if distance <= budget:
                best = max(best, 1.0 - distance / max(len(x), len(y)))
    short, long = sorted((a.stem, b.stem), key=len)
    if len(short) >= 5 and long.startswith(short) and long[len(short) :] in PREFIX_ENDINGS:
        best = max(best, PREFIX_SIMILARITY)
    return best


@dataclass(frozen=True, slots=True)
class _Candidate:
    word: _Word
    start: int
    end: int


def _candidates(words: Sequence[_Word]) -> list[_Candidate]:
    """The utterance's words, plus each adjacent pair run together ("tooth ache")."""
    out = [_Candidate(w, i, i) for i, w in enumerate(words)]
    for i in range(len(words) - 1):
        raw = words[i].raw + words[i + 1].raw
        out.append(_Candidate(_Word(raw, _stem(raw)), i, i + 1))
    return out


class _Scorer:
    """Scores phrases against one utterance; each distinct phrase word is compared with the
    utterance once per call, however many phrases share it."""

    def __init__(self, candidates: Sequence[_Candidate]) -> None:
        self.candidates = candidates
        self.vectors: dict[_Word, tuple[float, ...]] = {}

    def vector(self, word: _Word) -> tuple[float, ...]:
        found = self.vectors.get(word)
        if found is None:
            found = self.vectors[word] = tuple(_similarity(word, c.word) for c in self.candidates)
        return found

    def confidence(self, phrase: Sequence[_Word]) -> float:
        if not phrase or not self.candidates:
            return 0.0
        sims = [self.vector(p) for p in phrase]
        return _phrase_confidence(sims, self.candidates)


def _phrase_confidence(sims: Sequence[Sequence[float]], candidates: Sequence[_Candidate]) -> float:
    """`sims[k][c]`: similarity of the phrase's k-th word to utterance candidate c."""
    bound = sum(max(row) for row in sims) / len(sims)  # neither score can exceed it
    if bound < MIN_CONFIDENCE:
        return APART * bound
    apart = APART * bound
    # Best contiguous run: best[end] = best total similarity of the phrase's first k words
    # matched one after another, the last one ending at utterance position `end`.
    best: dict[int, float] = {}
    for ci, c in enumerate(candidates):
        if sims[0][ci] > 0:
            best[c.end] = max(best.get(c.end, 0.0), sims[0][ci])
    for k in range(1, len(sims)):
        step: dict[int, float] = {}
        for ci, c in enumerate(candidates):
            before = best.get(c.start - 1)
            if sims[k][ci] > 0 and before is not None:
                step[c.end] = max(step.get(c.end, 0.0), before + sims[k][ci])
        best = step
        if not best:
            break
    together = max(best.values()) / len(sims) if best else 0.0
    return max(together, apart)


def resolve_intent(
    practice: Practice | int, utterance: str, patient_status: str
) -> list[IntentMatch]:
    """The practice's bookable types this caller may book, best first, that the utterance
    plausibly asks for; empty when none reaches MIN_CONFIDENCE."""
    if patient_status not in ("new", "existing"):
        raise ValueError('patient_status must be "new" or "existing"')
    heard = normalise(utterance)
    if not heard:
        return []
    scorer = _Scorer(_candidates(heard))
    allowed = Q(new_patients=True) if patient_status == "new" else Q(existing_patients=True)
    types = (
        AppointmentType.objects.for_practice(practice)
        .filter(allowed, bookable=True)
        .annotate(phrase_texts=ArrayAgg("phrases__text", order_by="phrases__id"))
        .values_list("id", "name", "phrase_texts")
    )
    scored: list[tuple[float, int, str, int, str]] = []
    for type_id, name, phrase_texts in types:
        best: tuple[float, int, str] = (0.0, 0, "")
        for text in [name, *(t for t in phrase_texts or () if t)]:
            words = normalise(text)
            confidence = round(scorer.confidence(words), 3)
            if (confidence, len(words)) > best[:2]:
                best = (confidence, len(words), text)
        if best[0] >= MIN_CONFIDENCE:
            scored.append((best[0], best[1], name, type_id, best[2]))
    scored.sort(key=lambda s: (-s[0], -s[1], s[2].casefold(), s[3]))
    return [
        IntentMatch(appointment_type_id=type_id, name=name, confidence=conf, matched_phrase=phrase)
        for conf, _, name, type_id, phrase in scored[:MAX_MATCHES]
    ]
