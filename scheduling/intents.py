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

The lexicon (data, `scheduling/data/intent_lexicon.json`) maps what callers say to what
practices configure: a term heard brings in its concept's other terms (a little below the word
itself) and its broader terms (lower again). A multi-word term is heard word for word, with one
short word slipped by a letter ("tummy tuk"), or with its words near each other in another
order ("my breasts made smaller"). A concept may name what its callers want to be done with
("tired of wearing glasses" asks for LASIK): those words are then not evidence of their own.

Confidence, in 0..1, for one phrase:
* all of its words heard as one contiguous run: the mean word similarity, so an exact
  containment is 1.0 and "rhinoplasy consultaton" about 0.91;
* otherwise the mean over the phrase's words of their best match anywhere in the utterance,
  times 0.9: all words heard but apart scores 0.9, two words of three 0.6, one of two 0.45.
Words are weighted by how distinctive they are among the practice's types (1 over how many
types use it, a quarter of that for generic words such as "consultation"); a generic word left
unsaid counts half, as it says little about which type was meant; a phrase heard by one word
alone needs that word to be nearly the type's own ("vision", shared by two types, does not pick
"vision test"). A type's confidence is that of its best phrase (its name counts as a phrase).
Ranking, never the threshold, also counts the type's next-best phrase and its instructions
naming a word the caller said. Ties rank the type whose matched phrase is longer (more
specific) first, then by name and id.

Cost: one SQL query (types with their phrases aggregated), cached in Redis per practice until a
type, a phrase or the practice changes (so usually none), matching in Python; phrase
normalisation is cached per distinct text, a practice's evidence is indexed once per distinct
set of types, and a word heard is compared with the practice's words through that index (same
stem by lookup, slips by rapidfuzz over all of them in one call), not one by one. The caller
runs inside `tenant_context(practice)`, as every request and task for a practice does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from django.contrib.postgres.aggregates import ArrayAgg
from django.core.cache import cache
from django.db import connection, transaction
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from accounts.models import Practice
from core.text import NEGATIONS as NEGATION_WORDS
from core.text import first_negation
from core.text import stem as _stem
from core.text import words as text_words
from scheduling.models import AppointmentType

__all__ = [
    "MIN_CONFIDENCE",
    "IntentMatch",
    "TypeEvidence",
    "normalise",
    "rank",
    "resolve_intent",
    "suggest_phrase",
]

MIN_CONFIDENCE = 0.65  # all words apart 0.9, three of four 0.675 pass; two of three 0.6 not
APART = 0.9  # a phrase's words heard, but not together
PREFIX_SIMILARITY = 0.85
# A stem that is a prefix of another counts only when the rest is a derivational ending
# (consult/consultation, evaluat/evaluation), not another word (tooth/toothache).
PREFIX_ENDINGS = ("ation", "ion", "ment", "al", "ive", "ic", "ical", "ary", "ory", "ist", "er")
MAX_MATCHES = 5
LEXICON_PATH = Path(__file__).resolve().parent / "data" / "intent_lexicon.json"
LEXICON_MIN = 0.85  # how well a lexicon term must be heard to bring in its synonyms
SYNONYM = 0.85  # a synonym the lexicon supplies counts a little less than the word itself
BROADER = 0.8  # a wider term ("cosmetic surgery" for a blepharoplasty) less again
SUPPORT = 0.1  # ranking weight of a type's second phrase heard
INSTRUCTION_SUPPORT = 0.05  # ranking weight of the type's instructions naming a word said
GENERIC_WEIGHT = 0.25  # "consultation", "visit": say little about which type
UNSAID_GENERIC = 0.5
SHARED = 0.6  # a phrase heard by one word alone needs that word to be (nearly) the type's own

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
    ("x", "rays"): "xrays",
    ("tooth", "ache"): "toothache",
    ("make", "over"): "makeover",
}


@dataclass(frozen=True)
class IntentMatch:
    appointment_type_id: int
    name: str
    confidence: float
    matched_phrase: str
    # Why, word by word, for people (the manager's console): each of the phrase's words and
    # what of the caller's it was matched to.
    evidence: tuple[str, ...] = ()
    score: float = 0.0  # what ranked it: the confidence and the type's further evidence


@dataclass(frozen=True, slots=True)
class _Word:
    raw: str
    stem: str


@lru_cache(maxsize=8192)
def normalise(text: str) -> tuple[_Word, ...]:
    """The meaningful words of `text`, joined compounds, stemmed. Falls back to every word when
    all of them are filler (a phrase such as "what to do" still means something)."""
    words = text_words(text)
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
    return tuple(_word(w) for w in kept)


_INTERNED: dict[str, _Word] = {}


def _word(raw: str) -> _Word:
    """One object per distinct word, so that scorers can key on identity (bounded: callers'
    words are unbounded; dropping the table only costs re-creating entries)."""
    found = _INTERNED.get(raw)
    if found is None:
        if len(_INTERNED) > 100_000:
            _INTERNED.clear()
        found = _INTERNED[raw] = _Word(raw, _stem(raw))
    return found


def _similarity(a: _Word, b: _Word) -> float:
    if a.stem == b.stem:
        return 1.0
    # Cheap rejections first (most pairs): too short for a slip, or lengths too far apart for
    # one, and not a stem with a derivational ending.
    la, lb = len(a.stem), len(b.stem)
    if min(la, lb, len(a.raw), len(b.raw)) < 5 or (
        abs(la - lb) > 2 and abs(len(a.raw) - len(b.raw)) > 2 and not _prefix_pair(a, b)
    ):
        return 0.0
    best = 0.0
    for x, y in ((a.raw, b.raw), (a.stem, b.stem)):
        shortest = min(len(x), len(y))
        budget = 0 if shortest < 6 else 1 if shortest < 9 else 2
        # A long word heard with two slips ("glocoma") still counts, if it starts right.
        if shortest >= 7 and x[:2] == y[:2]:
            budget = max(budget, 2)
        if budget:
            distance = Levenshtein.distance(x, y, score_cutoff=budget)
            if distance <= budget:
                best = max(best, 1.0 - distance / max(len(x), len(y)))
    short, long = sorted((a.stem, b.stem), key=len)
    if len(short) >= 5 and long.startswith(short) and long[len(short) :] in PREFIX_ENDINGS:
        best = max(best, PREFIX_SIMILARITY)
    return best


class _Vocabulary:
    """A fixed set of words, to find those a word may be similar to without comparing it with
    each: same stem by lookup, slips by rapidfuzz over all of them at once (C, not Python),
    derivational endings by lookup. `near` returns a superset of the words `_similarity` scores
    above zero (exactly those it then scores); answers are kept, as the same words recur."""

    def __init__(self, words: Sequence[_Word]) -> None:
        self.by_stem: dict[str, list[_Word]] = {}
        for w in dict.fromkeys(words):
            self.by_stem.setdefault(w.stem, []).append(w)
        self.long = [w for ws in self.by_stem.values() for w in ws if _long_enough(w)]
        self.raws = [w.raw for w in self.long]
        self.stems = [w.stem for w in self.long]
        self.by_root: dict[str, list[_Word]] = {}  # stem without a derivational ending
        for w in self.long:
            for ending in PREFIX_ENDINGS:
                if w.stem.endswith(ending) and len(w.stem) - len(ending) >= 5:
                    self.by_root.setdefault(w.stem[: -len(ending)], []).append(w)
        self.cache: dict[_Word, tuple[tuple[_Word, float], ...]] = {}

    def similar(self, word: _Word) -> tuple[tuple[_Word, float], ...]:
        """The words of the vocabulary similar to `word`, with how similar (`_similarity`)."""
        found = self.cache.get(word)
        if found is None:
            near: dict[_Word, None] = dict.fromkeys(self.by_stem.get(word.stem, ()))
            if _long_enough(word) and self.long:
                for query, choices in ((word.raw, self.raws), (word.stem, self.stems)):
                    for _, _, i in process.extract(
                        query, choices, scorer=Levenshtein.distance, score_cutoff=2, limit=None
                    ):
                        near[self.long[i]] = None
                near.update(dict.fromkeys(self.by_root.get(word.stem, ())))
                for ending in PREFIX_ENDINGS:
                    if word.stem.endswith(ending):
                        root = word.stem[: -len(ending)]
                        near.update(
                            dict.fromkeys(w for w in self.by_stem.get(root, ()) if _long_enough(w))
                        )
            scored = ((w, _similarity(w, word)) for w in near)
            found = tuple((w, sim) for w, sim in scored if sim > 0)
            if len(self.cache) > 20_000:
                self.cache.clear()
            self.cache[word] = found
        return found


def _long_enough(word: _Word) -> bool:
    """Shorter words are only ever the same word (see `_similarity`)."""
    return min(len(word.raw), len(word.stem)) >= 5


def _prefix_pair(a: _Word, b: _Word) -> bool:
    short, long = sorted((a.stem, b.stem), key=len)
    return long.startswith(short)


# --- the lexicon: what callers say for what practices configure ---------------------------------


@dataclass(frozen=True)
class _Concept:
    terms: tuple[tuple[_Word, ...], ...]
    broader: tuple[tuple[_Word, ...], ...]
    # stems of what a caller asking for this wants to be done with ("tired of my glasses" asks
    # for LASIK, not for glasses): heard with it, they are not evidence of their own
    instead_of: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Lexicon:
    generic: frozenset[str]  # stems
    concepts: tuple[_Concept, ...]
    # (concept index, term, the word's place in it) by each stem of the term, and the one-word
    # terms long enough to be heard misspelt
    by_stem: dict[str, tuple[tuple[int, tuple[_Word, ...], int], ...]]
    long_words: dict[_Word, tuple[int, ...]]  # word -> the concepts it is a one-word term of
    long_vocabulary: _Vocabulary


@lru_cache(maxsize=1)
def _shipped() -> dict[str, Any]:
    return dict(json.loads(LEXICON_PATH.read_text()))


def lexicon(lay_terms: LayTerms = ()) -> Lexicon:
    """Shipped as data (`scheduling/data/intent_lexicon.json`), read once per process, with a
    practice's own lay terms added (`Practice.lay_terms`: entries of the same shape). One per
    distinct set of lay terms, kept."""
    return _lexicon(lay_terms)


# A practice's lay terms as the ranker takes them (hashable): (terms, broader) per entry.
LayTerms = tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]


def lay_terms_of(entries: Any) -> LayTerms:
    """`Practice.lay_terms` (a list of {"terms": [...], "broader": [...]}) as `LayTerms`;
    anything malformed is left out (the config file and the portal validate on the way in)."""
    out = []
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, dict):
            continue
        terms = tuple(t for t in entry.get("terms") or () if isinstance(t, str) and t.strip())
        broader = tuple(t for t in entry.get("broader") or () if isinstance(t, str) and t.strip())
        if terms:
            out.append((terms, broader))
    return tuple(out)


@lru_cache(maxsize=256)
def _lexicon(lay_terms: LayTerms) -> Lexicon:
    data = _shipped()
    generic = frozenset(_stem(w) for w in data["generic"])
    entries = [
        (c["terms"], c.get("broader", ()), c.get("instead_of", ())) for c in data["concepts"]
    ] + [(terms, broader, ()) for terms, broader in lay_terms]
    concepts = tuple(
        _Concept(
            terms=tuple(t for t in (_words(x) for x in terms) if t),
            broader=tuple(t for t in (_words(x) for x in broader) if t),
            instead_of=frozenset(w.stem for x in instead_of for w in _words(x)),
        )
        for terms, broader, instead_of in entries
    )
    index: dict[str, list[tuple[int, tuple[_Word, ...], int]]] = {}
    long_words: dict[_Word, list[int]] = {}
    for i, concept in enumerate(concepts):
        for term in concept.terms:
            for k, word in enumerate(term):
                if k == 0 or word.stem not in generic:
                    index.setdefault(word.stem, []).append((i, term, k))
            if len(term) == 1 and len(term[0].stem) >= 6:
                long_words.setdefault(term[0], []).append(i)
    return Lexicon(
        generic=generic,
        concepts=concepts,
        by_stem={k: tuple(v) for k, v in index.items()},
        long_words={w: tuple(c) for w, c in long_words.items()},
        long_vocabulary=_Vocabulary(list(long_words)),
    )


def _words(text: str) -> tuple[_Word, ...]:
    """Every word of a lexicon entry (its own filler words are meant: "pull a tooth")."""
    kept = normalise(text)
    return kept


# --- what the caller affirmed -----------------------------------------------------------------

_CLAUSE = re.compile(r"[,.;:!?]+|\b(?:but|instead|actually|rather|though)\b", re.IGNORECASE)
NEGATIONS = NEGATION_WORDS | {"nothing", "neither"}


def affirmed(utterance: str) -> str:
    """The utterance without what the caller negated: in each clause, the words after a
    negation ("not a cleaning, I think I cracked a tooth" -> "I think I cracked a tooth")."""
    kept: list[str] = []
    for clause in _CLAUSE.split(utterance.replace("\u2019", "'")):
        if not clause:
            continue
        words = clause.split()
        negation = first_negation(words, NEGATIONS)
        if negation is not None and not _affirmative(words[negation:]):
            words = words[:negation]
        kept.append(" ".join(words))
    return " , ".join(kept)


@lru_cache(maxsize=1)
def _negative_terms() -> tuple[tuple[str, ...], ...]:
    """Lexicon terms that start with a negation and affirm something ("never been here",
    "not a patient yet" is a new patient)."""
    return tuple(
        tuple(text_words(term))
        for c in _shipped()["concepts"]
        for term in c["terms"]
        if text_words(term) and text_words(term)[0] in NEGATIONS
    )


def _affirmative(words: Sequence[str]) -> bool:
    said = text_words(" ".join(words))
    return any(tuple(said[: len(t)]) == t for t in _negative_terms())


@dataclass(frozen=True, slots=True)
class _Candidate:
    word: _Word
    start: int
    end: int
    weight: float = 1.0  # heard as said: 1; a lexicon term it implies: less
    source: str = ""  # for a lexicon term: the caller's word that brought it in
    origin: tuple[int, ...] = ()  # the caller's words it stands for (their places)


def _candidates(words: Sequence[_Word], lex: Lexicon) -> list[_Candidate]:
    """The utterance's words, each adjacent pair run together ("tooth ache"), and the terms
    the lexicon says they mean (each at positions of its own, so a multi-word term is heard
    together)."""
    out = [_Candidate(w, i, i, origin=(i,)) for i, w in enumerate(words)]
    for i in range(len(words) - 1):
        raw = words[i].raw + words[i + 1].raw
        out.append(_Candidate(_Word(raw, _stem(raw)), i, i + 1, origin=(i, i + 1)))
    heard = _concepts_heard(out, words, lex)
    claimed = {stem for index in heard for stem in lex.concepts[index].instead_of}
    if claimed:
        out = [c for c in out if c.word.stem not in claimed]
        claimers = {i: h for i, h in heard.items() if lex.concepts[i].instead_of}
        heard = {**_concepts_heard(out, words, lex), **claimers}
    position = len(words) + 1
    for index in sorted(heard):
        concept = lex.concepts[index]
        how_well, said, origin = heard[index]
        for terms, factor in ((concept.terms, SYNONYM), (concept.broader, BROADER)):
            for term in terms:
                for k, word in enumerate(term):
                    out.append(
                        _Candidate(
                            word, position + k, position + k, how_well * factor, said, origin
                        )
                    )
                position += len(term) + 1
    return out


Heard = tuple[float, str, tuple[int, ...]]  # how well, as what, the caller's words' places


def _concepts_heard(
    candidates: Sequence[_Candidate], words: Sequence[_Word], lex: Lexicon
) -> dict[int, Heard]:
    """The lexicon concepts the caller's words name: concept -> how well heard, as what, and
    where."""
    heard: dict[int, Heard] = {}

    def hear(index: int, found: Heard) -> None:
        # the best hearing says how well and as what; every hearing, where (a concept said
        # twice, "redone ... by another surgeon", accounts for both)
        before = heard.get(index)
        if before is None:
            heard[index] = found
            return
        best = found if found[0] > before[0] else before
        heard[index] = (best[0], best[1], tuple(sorted({*before[2], *found[2]})))

    for c in candidates:
        for index, term, place in lex.by_stem.get(c.word.stem, ()):
            if len(term) == 1:
                hear(index, (1.0, c.word.raw, c.origin))
                continue
            found = _term_heard(term, place, c, words)
            if found is not None:
                hear(index, found)
        if len(c.word.stem) >= 6:
            for word, sim in lex.long_vocabulary.similar(c.word):
                if sim < LEXICON_MIN:
                    continue
                for index in lex.long_words[word]:
                    hear(index, (sim, c.word.raw, c.origin))
    return heard


TERM_REORDERED = 0.95  # "breasts made smaller" for "smaller breasts"
TERM_SLIP = 0.9  # "tummy tuk": one short word of a term off by a letter, in its place
TERM_REACH = 2  # words a term's words may stand apart, beyond its own length


def _term_heard(
    term: Sequence[_Word], place: int, c: _Candidate, words: Sequence[_Word]
) -> Heard | None:
    """Whether a multi-word lexicon term is heard around the caller's word `c` (the term's word
    at `place`): word for word in order (1.0); or with its words near each other in another
    order ("my breasts made smaller"); or in order with one word slipped by a letter. Returns
    how well, and the caller's words for it."""
    if c.start != c.end:
        return None  # run-together pairs stand for one word; terms are matched on the words
    start = c.start - place
    if start >= 0 and start + len(term) <= len(words):
        run = words[start : start + len(term)]
        slips = 0
        for a, b in zip(term, run, strict=True):
            if a.stem == b.stem:
                continue
            if (
                min(len(a.raw), len(b.raw)) >= 3
                and a.raw[0] == b.raw[0]
                and Levenshtein.distance(a.raw, b.raw, score_cutoff=1) <= 1
            ):
                slips += 1
                continue
            slips = 2
            break
        if slips <= 1:
            said = " ".join(w.raw for w in run)
            return (1.0 if not slips else TERM_SLIP), said, tuple(range(start, start + len(term)))
    lo = max(0, c.start - len(term) - TERM_REACH + 1)
    near = words[lo : c.start + len(term) + TERM_REACH]
    positions = []
    for k, word in enumerate(term):
        if k == place:
            positions.append(c.start)
            continue
        found = next((lo + j for j, w in enumerate(near) if w.stem == word.stem), None)
        if found is None:
            return None
        positions.append(found)
    if len(set(positions)) < len(positions):
        return None
    first, last = min(positions), max(positions)
    return TERM_REORDERED, " ".join(w.raw for w in words[first : last + 1]), tuple(positions)


class _Entry(NamedTuple):
    """What one phrase word brings, against one utterance."""

    hits: tuple[tuple[int, float], ...]  # (candidate, similarity), only the non-zero ones
    best: float
    weight: float
    optional: bool


class _Scorer:
    """Scores phrases against one utterance; each distinct phrase word is compared with each
    distinct word of the utterance once per call, however many phrases share it. Vectors are
    sparse: most phrase words match nothing said."""

    def __init__(
        self,
        said: Sequence[_Word],
        candidates: Sequence[_Candidate],
        weights: dict[str, float],
        vocabulary: _Vocabulary,
    ) -> None:
        self.candidates = candidates
        self.said = said
        self.weights = weights
        self.generic = lexicon().generic
        by_word: dict[_Word, list[int]] = {}
        for ci, c in enumerate(candidates):
            by_word.setdefault(c.word, []).append(ci)
        # Each distinct word heard against the practice's words it is similar to: the phrase
        # words heard at all, and by which candidates.
        self.hits: dict[_Word, list[tuple[int, float]]] = {}
        for heard, indices in by_word.items():
            for word, sim in vocabulary.similar(heard):
                self.hits.setdefault(word, []).extend(
                    (ci, sim * candidates[ci].weight) for ci in indices
                )
        self.entries: dict[_Word, _Entry] = {}

    def entry(self, word: _Word) -> _Entry:
        found = self.entries.get(word)
        if found is None:
            hits = self.hits.get(word, ())
            found = self.entries[word] = _Entry(
                tuple(hits),
                max((s for _, s in hits), default=0.0),
                self.weights.get(word.stem, 1.0),
                word.stem in self.generic,
            )
        return found

    def explain(self, phrase: Sequence[_Word]) -> tuple[str, ...]:
        """Each phrase word and what it was matched to: said, misheard, or brought in by the
        lexicon from a word the caller said; generic words left unsaid are noted as such."""
        out = []
        for word in phrase:
            entry = self.entry(word)
            if not entry.hits:
                out.append(
                    f"{word.raw}: not said" + (" (a generic word)" if entry.optional else "")
                )
                continue
            ci, _ = max(entry.hits, key=lambda hit: hit[1])
            c = self.candidates[ci]
            if c.source:
                out.append(f"{word.raw}: from the lexicon, for “{c.source}”")
            elif c.word.raw == word.raw or c.word.stem == word.stem:
                out.append(f"{word.raw}: said")
            else:
                out.append(f"{word.raw}: heard as “{c.word.raw}”")
        return tuple(out)

    def origins(self, phrase: Sequence[_Word]) -> frozenset[int]:
        """The places of the caller's distinctive words (not generic) the phrase was heard
        from (through the lexicon, the words that brought its terms in)."""
        out: set[int] = set()
        for word in phrase:
            entry = self.entry(word)
            if entry.hits and not entry.optional:  # a generic word says little of the type
                ci, _ = max(entry.hits, key=lambda hit: hit[1])
                out.update(self.candidates[ci].origin)
        return frozenset(i for i in out if self.said[i].stem not in self.generic)

    def confidence(self, phrase: Sequence[_Word]) -> float:
        if not phrase or not self.candidates:
            return 0.0
        entries = [self.entry(p) for p in phrase]
        # A generic word left unsaid ("consultation" of "cosmetic surgery consultation") says
        # little about which type was meant: it counts for less in what was not heard.
        total = sum(
            e.weight * (UNSAID_GENERIC if e.optional and not e.best else 1.0) for e in entries
        )
        bound = sum(e.weight * e.best for e in entries) / total
        heard = [e for e in entries if e.best > 0]
        if len(entries) > 1 and len(heard) == 1 and heard[0].weight * heard[0].best < SHARED:
            # One word heard of several, and that one names other types too ("vision" for
            # "vision test" when "cloudy vision" is another type's): not evidence enough.
            return APART * bound * SHARED
        if bound < MIN_CONFIDENCE:
            return APART * bound
        return max(_together(entries, self.candidates) / total, APART * bound)


def _together(entries: Sequence[_Entry], candidates: Sequence[_Candidate]) -> float:
    """The best weighted similarity of the phrase's words heard one after another. An
    optional (generic) word left unsaid does not break the run ("rhinoplasty" heard for
    "rhinoplasty consultation" is heard together, at the weight of what was said)."""
    # best[end]: the best total of the phrase's first k words matched in a row, the last one
    # ending at utterance position `end`; a run not yet started is kept under None.
    first = entries[0]
    best: dict[int | None, float] = {None: 0.0} if first.optional else {}
    for ci, sim in first.hits:
        end = candidates[ci].end
        best[end] = max(best.get(end, 0.0), first.weight * sim)
    for e in entries[1:]:
        step: dict[int | None, float] = dict(best) if e.optional else {}
        unstarted = best.get(None)
        for ci, sim in e.hits:
            c = candidates[ci]
            before = best.get(c.start - 1)
            if unstarted is not None:
                before = max(before or 0.0, unstarted)
            if before is not None:
                step[c.end] = max(step.get(c.end, 0.0), before + e.weight * sim)
        best = step
        if not best:
            return 0.0
    best.pop(None, None)
    return max(best.values(), default=0.0)


@dataclass(frozen=True)
class _Index:
    """A practice's evidence, prepared once per distinct set of types: every phrase normalised,
    each word's weight, and where each word occurs (so a call scores only phrases it touched)."""

    evidence: tuple[tuple[tuple[_Word, ...], ...], ...]  # per type: name, then phrases
    weights: dict[str, float]
    postings: dict[_Word, tuple[tuple[int, int], ...]]  # word -> (type, phrase) positions
    vocabulary: _Vocabulary  # every word of the evidence


@lru_cache(maxsize=256)
def _index_for(texts: tuple[tuple[str, tuple[str, ...]], ...]) -> _Index:
    evidence = tuple(tuple(normalise(t) for t in (name, *phrases)) for name, phrases in texts)
    postings: dict[_Word, list[tuple[int, int]]] = {}
    for ti, phrases in enumerate(evidence):
        for pi, phrase in enumerate(phrases):
            for word in set(phrase):
                postings.setdefault(word, []).append((ti, pi))
    return _Index(
        evidence=evidence,
        weights=word_weights(evidence),
        postings={w: tuple(p) for w, p in postings.items()},
        vocabulary=_Vocabulary(list(postings)),
    )


@lru_cache(maxsize=256)
def _instruction_words(instructions: tuple[str, ...]) -> tuple[frozenset[str], ...]:
    """Per type, the distinctive words of its instructions: not generic, not in another type's
    instructions. They rank (a LASIK type that says "stop wearing contact lenses" for a caller
    tired of wearing them), never decide: instructions are written for patients, not callers."""
    generic = lexicon().generic
    words = [
        {w.stem for w in normalise(text) if len(w.stem) >= 4} - generic for text in instructions
    ]
    counts: dict[str, int] = {}
    for stems in words:
        for stem in stems:
            counts[stem] = counts.get(stem, 0) + 1
    return tuple(frozenset(s for s in stems if counts[s] == 1) for stems in words)


def word_weights(evidence: Sequence[Sequence[tuple[_Word, ...]]]) -> dict[str, float]:
    """Per stem: 1 over the number of the practice's types whose evidence has it, a quarter of
    that for words that name any appointment ("consultation", "visit")."""
    generic = lexicon().generic
    frequency: dict[str, int] = {}
    for phrases in evidence:
        for stem in {w.stem for phrase in phrases for w in phrase}:
            frequency[stem] = frequency.get(stem, 0) + 1
    return {
        stem: (GENERIC_WEIGHT if stem in generic else 1.0) / count
        for stem, count in frequency.items()
    }


EVIDENCE_SECONDS = 600  # a bound on staleness should a write ever bypass the signals


def _evidence_key(practice_id: int) -> str:
    # The database's name keeps test databases sharing one Redis apart.
    return f"intents:evidence:v1:{connection.settings_dict['NAME']}:{practice_id}"


def _evidence_rows(practice_id: int) -> list[tuple[Any, ...]]:
    """The practice's types with their phrases, as the ranker needs them: from the cache
    (Redis), else one query (kept until a type, a phrase or the practice changes:
    `forget_evidence`, wired to their signals in `scheduling.apps`)."""
    key = _evidence_key(practice_id)
    rows = cache.get(key)
    if rows is None:
        rows = list(
            AppointmentType.objects.for_practice(practice_id)
            .annotate(phrase_texts=ArrayAgg("phrases__text", order_by="phrases__id"))
            .values_list(
                "id",
                "name",
                "phrase_texts",
                "bookable",
                "new_patients",
                "existing_patients",
                "instructions",
            )
        )
        cache.set(key, rows, EVIDENCE_SECONDS)
    return rows


def forget_evidence(practice_id: int) -> None:
    """A type, a phrase or the practice changed: drop the cached evidence now (the writer's
    next resolve sees its change) and again when the transaction commits (a resolve in between
    may have cached what the others could still see)."""
    key = _evidence_key(practice_id)
    cache.delete(key)
    transaction.on_commit(lambda: cache.delete(key))


def resolve_intent(
    practice: Practice | int, utterance: str, patient_status: str
) -> list[IntentMatch]:
    """The practice's bookable types this caller may book, best first, that the utterance
    plausibly asks for; empty when none reaches MIN_CONFIDENCE."""
    if patient_status not in ("new", "existing"):
        raise ValueError('patient_status must be "new" or "existing"')
    practice_id = practice.pk if isinstance(practice, Practice) else practice
    rows = _evidence_rows(practice_id)
    types = [
        TypeEvidence(
            type_id,
            name,
            tuple(t for t in phrase_texts or () if t),
            bookable=bookable and (new if patient_status == "new" else existing),
            instructions=instructions,
        )
        for type_id, name, phrase_texts, bookable, new, existing, instructions in rows
    ]
    if isinstance(practice, Practice):
        entries = practice.lay_terms
    else:
        entries = Practice.objects.filter(pk=practice).values_list("lay_terms", flat=True).first()
    return rank(types, utterance, lay_terms_of(entries))


@dataclass(frozen=True)
class TypeEvidence:
    """One appointment type as the ranker sees it: what names it, and whether it may be
    offered to this caller (the others still count for how distinctive a word is)."""

    type_id: int
    name: str
    phrases: tuple[str, ...]
    bookable: bool = True
    instructions: str = ""


def rank(
    types: Sequence[TypeEvidence], utterance: str, lay_terms: LayTerms = ()
) -> list[IntentMatch]:
    """The ranking itself, without the database: pure, deterministic. `lay_terms`: the
    practice's own additions to the lexicon. A stage of care said around a procedure is read
    first; when that finds nothing this caller may book, the words as said are."""
    said = affirmed(utterance)
    if _not_asking(said):
        return []
    in_stage = staged(said)
    if in_stage != said:
        found = _rank(types, in_stage, lay_terms)
        if found:
            return found
    return _rank(types, said, lay_terms)


def _rank(types: Sequence[TypeEvidence], utterance: str, lay_terms: LayTerms) -> list[IntentMatch]:
    heard = normalise(utterance)
    if not heard:
        return []
    index = _index_for(tuple((t.name, t.phrases) for t in types))
    told = _instruction_words(tuple(t.instructions for t in types))
    said = {w.stem for w in heard}
    scorer = _Scorer(heard, _candidates(heard, lexicon(lay_terms)), index.weights, index.vocabulary)
    touched: dict[int, set[int]] = {}  # type -> its phrases with a word that was heard
    for word in scorer.hits:
        if scorer.entry(word).best > 0:
            for ti, pi in index.postings[word]:
                touched.setdefault(ti, set()).add(pi)
    scored: list[tuple[float, float, int, str, int, str]] = []
    best_words: dict[int, tuple[_Word, ...]] = {}
    best_origins: dict[int, frozenset[int]] = {}
    for ti, phrase_indices in touched.items():
        t = types[ti]
        if not t.bookable:
            continue
        texts = (t.name, *t.phrases)
        best: tuple[float, int, str] = (0.0, 0, "")
        # one per distinct wording: how well heard, from which of the caller's words
        heard_for_type: dict[tuple[str, ...], tuple[float, frozenset[int]]] = {}
        for pi in sorted(phrase_indices):
            words = index.evidence[ti][pi]
            confidence = round(scorer.confidence(words), 3)
            wording = tuple(w.stem for w in words)
            if confidence > heard_for_type.get(wording, (0.0,))[0]:
                heard_for_type[wording] = (confidence, scorer.origins(words))
            if (confidence, len(words)) > best[:2]:
                best = (confidence, len(words), texts[pi])
                best_words[ti] = words
        if best[0] >= MIN_CONFIDENCE:
            # Ranking (not the threshold) also counts the type's next-best phrase heard from
            # other words of the caller's: more evidence for the same type (one, so that a
            # lexicon's many synonyms of the same words do not pile up).
            others = sorted((c for c, _ in heard_for_type.values()), reverse=True)[1:2]
            # what of the caller's the type accounts for: its phrases heard well enough
            best_origins[ti] = frozenset().union(
                *(o for c, o in heard_for_type.values() if c >= MIN_CONFIDENCE)
            )
            support = SUPPORT * sum(c for c in others if c >= MIN_CONFIDENCE * APART)
            if told[ti] & said:  # the type's own instructions speak of what the caller said
                support += INSTRUCTION_SUPPORT
            scored.append((best[0] + support, best[0], best[1], t.name, ti, best[2]))
    scored.sort(key=lambda s: (-s[0], -s[2], s[3].casefold(), types[s[4]].type_id))
    scored = _more_said_first(scored, best_origins)
    if _torn(scored, best_origins):
        return []
    return [
        IntentMatch(
            appointment_type_id=types[ti].type_id,
            name=name,
            confidence=conf,
            matched_phrase=phrase,
            evidence=scorer.explain(best_words[ti]),
            score=round(score, 3),
        )
        for score, conf, _, name, ti, phrase in scored[:MAX_MATCHES]
    ]


COVERS_MORE = 0.15  # a type this close to the first that accounts for more of what was said


def _more_said_first(
    scored: list[tuple[float, float, int, str, int, str]], origins: dict[int, frozenset[int]]
) -> list[tuple[float, float, int, str, int, str]]:
    """A type nearly as well heard that accounts for all the caller's words the first does and
    more ("diabetic" besides "eye exam") goes first: the first left those words unexplained."""
    out = list(scored)
    moved = True
    while moved and len(out) > 1:
        moved = False
        top = out[0]
        for k, other in enumerate(out[1:], 1):
            if top[0] - other[0] <= COVERS_MORE and origins[other[4]] > origins[top[4]]:
                out.insert(0, out.pop(k))
                moved = True
                break
    return out


TORN = 0.1  # a second type this close, heard from other words of the caller's: no answer


def _torn(
    scored: list[tuple[float, float, int, str, int, str]], origins: dict[int, frozenset[int]]
) -> bool:
    """The first two types nearly tie and each accounts for words the other does not ("steroid
    shot" and "shoulder"): the caller may mean either, and a guess may book the wrong visit."""
    if len(scored) < 2:
        return False
    (first, *_, a, _), (second, *_, b, _) = scored[0], scored[1]
    return first - second <= TORN and not origins[b] <= origins[a]


# --- where the caller is in their care ---------------------------------------------------------


@dataclass(frozen=True)
class _Stage:
    """A stage of care said around a procedure ("I had my tummy tuck last week and need my
    follow-up"): the procedure's name then says which visit is meant, not which procedure is
    asked for, so its words are replaced by the stage's meaning."""

    procedures: frozenset[str]  # stems naming a procedure
    before: frozenset[str]  # said just before the procedure ("had my", "after the")
    after: frozenset[str]  # said just after it ("... ten days ago", "... two weeks out")
    asks: frozenset[str]  # what the caller then asks for (a check, the stitches out)
    means: str  # what is asked for instead, as a practice would configure it
    reach: int
    by_itself: frozenset[str] = frozenset()  # said before it, enough alone ("after my surgery")
    # said, these keep the procedure the request ("a consult about a facelift date"), unless
    # said as done ("I had my consult")
    unless: frozenset[str] = frozenset()


@lru_cache(maxsize=1)
def _stages() -> tuple[_Stage, ...]:
    data = _shipped()
    out = []
    for entry in data.get("stages", ()):
        named = set(entry.get("procedure_broader", ()))
        words = set(entry.get("procedures", ()))
        for concept in data["concepts"]:
            if named & set(concept.get("broader", ())):
                words.update(
                    w for term in concept["terms"] for w in text_words(term) if w not in STOP_WORDS
                )
        out.append(
            _Stage(
                procedures=frozenset(_stem(w) for w in words) - frozenset(entry.get("not", ())),
                before=frozenset(_stem(w) for w in entry.get("before", ())),
                after=frozenset(_stem(w) for w in entry.get("after", ())),
                asks=frozenset(_stem(w) for w in entry.get("asks", ())),
                means=entry["means"],
                reach=entry.get("reach", 4),
                by_itself=frozenset(_stem(w) for w in entry.get("by_itself", ())),
                unless=frozenset(_stem(w) for w in entry.get("unless", ())),
            )
        )
    return tuple(out)


@lru_cache(maxsize=1)
def _not_asking_phrases() -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(text_words(p)) for p in _shipped().get("not_asking", ()))


def _not_asking(utterance: str) -> bool:
    """A caller who names a type to cancel, move, price or pick something up is not asking
    for it (`not_asking` in the lexicon, each form of a word listed): the agent answers nothing
    and takes a message. Words as said, not stems: "Dr. Park" is not parking."""
    said = text_words(utterance)
    return any(
        tuple(said[i : i + len(p)]) == p
        for p in _not_asking_phrases()
        for i in range(len(said) - len(p) + 1)
    )


PAST_DONE = frozenset({"had", "did", "done", "already", "after", "since"})


def staged(utterance: str) -> str:
    """The utterance with a procedure said as past care ("had my facelift ten days ago, when's
    my follow-up") replaced by what the caller then asks for (`stages` in the lexicon)."""
    said = text_words(utterance)
    stems = [_stem(w) for w in said]
    for stage in _stages():
        places = [i for i, s in enumerate(stems) if s in stage.procedures]
        if not places:
            continue
        reasons = [
            i
            for i in places
            if any(s in stage.by_itself for s in stems[max(0, i - stage.reach) : i])
        ]
        if not reasons and stage.asks and not any(s in stage.asks for s in stems):
            continue
        reasons += [
            i
            for i in places
            if any(s in stage.before for s in stems[max(0, i - stage.reach) : i])
            or any(s in stage.after for s in stems[i + 1 : i + 1 + stage.reach])
        ]
        blocked = [
            i
            for i, s in enumerate(stems)
            if s in stage.unless and not set(stems[max(0, i - 3) : i]) & PAST_DONE
        ]
        if not reasons or blocked:
            continue
        # the procedure's run of words ("tummy tuck") goes, wherever it was said
        dropped = set(places)
        kept = [w for i, w in enumerate(said) if i not in dropped]
        return " ".join([*kept, ",", stage.means])
    return utterance


SUGGESTED_WORDS = 4


def suggest_phrase(utterance: str) -> str:
    """A caller phrase to add when a sentence was missed: its distinctive words as the caller
    said them (not negated, not filler, not generic such as "appointment"), in order, at most a
    few. Empty when nothing distinctive was said: then no phrase would help."""
    generic = lexicon().generic
    words = [w.raw for w in normalise(affirmed(utterance)) if w.stem not in generic]
    kept = list(dict.fromkeys(w for w in words if w not in STOP_WORDS and len(w) > 1))
    return " ".join(kept[:SUGGESTED_WORDS])
