"""Caller's words against a protocol's trigger phrases: pure functions, no database.

Protocols list a few trigger phrases ("bleeding that won't stop", "fever", "severe swelling");
callers never say them word for word ("the dressing is soaked through", "I've got the chills").
So both sides are read the same way into clinical *concepts* from a compact lexicon, and a
trigger matches when every concept it names is present, not negated, in what the caller said.

Reading text:
* normalised: lower case, apostrophes dropped ("can't" -> "cant"), split into words, each
  reduced by a small suffix stemmer (bleeding/bleeds -> bleed, swollen stays, chills -> chill);
  punctuation and "but"/"and"/"though"... split clauses, sentence ends split sentences; a
  decimal ("101.2") is one word;
* ATOMS are word groups (bleed: bleed, blood, oozing, soaked through, ...). Lexicon words must
  match exactly (after stemming); any other word of six letters or more may match a lexicon word
  one edit away (two from nine letters, rapidfuzz Levenshtein) if it starts with the same two
  letters: speech-to-text and typing slips ("bleding", "swolen") without "smelling" -> swelling;
  a five-letter lexicon word only takes a letter too many ("feaver"), as one changed letter in
  so short a word is usually another word ("fewer"). A lexicon phrase may have one filler
  inside it ("came clean out", "soaked right through");
* CONCEPTS are atoms (fever) or pairs of atoms in one sentence a few words apart (calf + pain:
  "my lower leg is tender" is DVT; chest + tightness; vision + went dark; tooth + knocked out;
  gauze + turns red is bleeding, feeling + hot a fever, a veil or shadow + the eye lost vision);
  a concept is a family of ways to say it, not a list of sentences;
* TEMPERATURES said as a number decide by value in a sentence about temperature: from 100.4 F
  (38 C) a fever, below it a normal reading that rules the fever words out ("my temp is 98.6");
* GARMENTS and dressings are tight by design: "tight" in a clause naming one is the garment;
* NEGATION: an occurrence is discarded when, in its clause and up to five words before it, there
  is a negator (no, not, don't, without, never...), unless the negator is a hedge ("not sure",
  "don't know": the caller is unsure, so the symptom counts) or the words between speak of
  stopping ("hasn't stopped bleeding" is still bleeding); or when it is followed by "stopped" /
  "gone" / "resolved". Hypotheticals count as negated: "what if", "signs of", "in case";
* QUALIFIERS are read on the caller's side, for every trigger: words playing a symptom up
  (severe, really, rapidly, getting worse, spreading, won't stop, sudden, on one side) or down
  (a little, mild, going down, improving, the same on both sides, "is that normal?"; "barely"
  or "hardly" right before one of its words). The
  course beats the state, up beats down: "the swelling is going down, is that normal?" and "a
  little swelling" match nothing, "a little swollen but now getting worse fast" matches; a
  symptom said plainly matches (a missed escalation costs more). The words that decided are
  kept on the match, so the test console can show why it fired;
* EMERGENCIES (cannot breathe, chest pain, heavy bleeding, stroke signs) are heard whatever
  plays them down, only negation rules them out (`emergency_heard`).

A trigger whose words the lexicon does not know falls back to fuzzy word matching: every content
word must be heard (same stem, or within the edit budget), confidence the mean similarity, 0.9x
when the words are apart. Unknown context is handled by the caller of this module (see
`screening`): this module only answers "did the caller say this".
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from rapidfuzz.distance import Levenshtein

from core.text import NEGATIONS as NEGATION_WORDS
from core.text import fold
from core.text import stem as core_stem

__all__ = [
    "CONCEPTS",
    "EMERGENCY_CONCEPTS",
    "EmergencyHeard",
    "TriggerCheck",
    "TriggerMatch",
    "check_trigger",
    "concepts_heard",
    "emergency_heard",
    "match_trigger",
    "stem",
]


def stem(word: str) -> str:
    """`core.text.stem`, plus comparatives (puffier, puffiest -> puffy), which symptoms need."""
    if len(word) > 5 and word.isalpha() and word.endswith(("ier", "iest")):
        return word[: word.rindex("i")] + "y"
    return core_stem(word)


# --- the lexicon ------------------------------------------------------------------------------

# Word groups and concepts are data (`data/symptom_lexicon.json`): a family of ways to say a
# symptom, written as a caller says it; both sides are normalised alike.
LEXICON_PATH = Path(__file__).resolve().parent / "data" / "symptom_lexicon.json"
_LEXICON = json.loads(LEXICON_PATH.read_text())
ATOMS: dict[str, tuple[str, ...]] = {
    atom: tuple(entry["words"]) for atom, entry in _LEXICON["atoms"].items()
}
UP = frozenset({"severe", "worsening", "persistent", "sudden", "one_side"})
DOWN = frozenset({"improving", "mild"})
DYNAMIC = frozenset({"worsening", "persistent", "sudden", "improving"})
MODIFIERS = UP | DOWN
SEVERITY_MODIFIER = "severe"


@dataclass(frozen=True)
class Concept:
    atoms: tuple[str, ...] = ()
    pairs: tuple[tuple[str, str], ...] = ()
    window: int = 5  # words between the two atoms of a pair, at most
    broad: bool = False  # a symptom anywhere, though a pair may say it ("my cheek is huge")
    # atoms that, in the same clause, say what it is instead ("my chest is sore where the
    # incision is" is the wound, not chest pain)
    explained_by: tuple[str, ...] = ()
    # where such an atom explains it: its clause, or (for symptoms a cause said anywhere near
    # explains: "my eyes get tired and sore after staring at the computer") its sentence
    explained_within: str = "clause"

    @property
    def components(self) -> frozenset[str]:
        return frozenset(a for pair in self.pairs for a in pair)


CONCEPTS: dict[str, Concept] = {
    name: Concept(
        atoms=tuple(entry.get("atoms", ())),
        pairs=tuple((a, b) for a, b in entry.get("pairs", ())),
        window=entry.get("window", 5),
        broad=entry.get("broad", False),
        explained_by=tuple(entry.get("explained_by", ())),
        explained_within=entry.get("explained_within", "clause"),
    )
    for name, entry in _LEXICON["concepts"].items()
}
# Heard (not negated) in what a caller says, these are answered "call 911" first, whatever the
# practice's protocols say: no protocol can rule them out, and a playing-down word does not.
EMERGENCY_CONCEPTS: dict[str, str] = {
    "breathing": "cannot breathe",
    "chest_pain": "chest pain",
    "heavy_bleeding": "heavy bleeding",
    "stroke": "stroke signs",
}
# A concept made of pairs covers the single-atom concepts of its parts: "calf pain" asks for
# DVT, not for pain anywhere.
SUBSUMES: dict[str, frozenset[str]] = {
    name: frozenset(
        other
        for other, c in CONCEPTS.items()
        if other != name and c.atoms and set(c.atoms) <= concept.components
    )
    for name, concept in CONCEPTS.items()
    if concept.pairs
}

NEGATORS = NEGATION_WORDS | {
    "werent",
    "havent",
    "hasnt",
    "hadnt",
    "none",
    "nothing",
    "neither",
    "deny",
    "denies",
    "denied",
    "wont",
    "wouldnt",
}
HEDGES = frozenset(["sure", "certain", "know"])  # "I don't think I have a fever" denies it
STOPPING = frozenset({"stop", "quit", "end", "eas"})  # "hasn't stopped bleeding" is bleeding
HYPOTHETICAL = (("what", "if"), ("sign", "of"), ("symptom", "of"), ("in", "case"), ("if",))
ENDED = frozenset({"stop", "gone", "resolv", "subsid", "brok"})  # stems
BROKEN_PART = frozenset({"off", "out", "in", "apart", "loose"})
FINE = frozenset({"fine", "normal", "ok", "okay", "good"})
AUXILIARY = frozenset(
    [
        "has",
        "have",
        "had",
        "is",
        "was",
        "its",
        "it",
        "finally",
        "now",
        "already",
        "completely",
        "totally",
        "all",
        "pretty",
        "much",
        "mostly",
        "almost",
        "nearly",
        "basically",
        "seem",
        "seems",
    ]
)
BOUNDARY_WORDS = frozenset(
    [
        "but",
        "and",
        "although",
        "though",
        "however",
        "except",
        "yet",
        "so",
        "because",
        "while",
        "whereas",
    ]
)
SENTENCE_END = frozenset(".;!?")
STOP_WORDS = frozenset(
    """
    a an the i im id ive ill me my mine we our us you your he she him his her they them their it
    its this that these those there theres here to in on at of for with from by about into as
    or if is am are was were be been being do does did have has had having got get gets getting
    very really just some any all like feel feels felt seem seems since after over up down out
    now today yesterday night morning still also please think
    """.split()  # noqa: SIM905 (a word list reads better as text)
)
_TOKEN = re.compile(r"[0-9]+\.[0-9]+|[a-z0-9]+|[.,;:!?]")  # "101.2" is one word


@dataclass(frozen=True, slots=True)
class Token:
    raw: str
    stem: str
    sentence: int
    clause: int
    boundary: bool  # "but", "and"...: ends a clause for negation
    question: bool = False  # the sentence ends with "?"


# A question starting with one of these asks about all of it ("is it normal that my cheek is
# swollen and hard?"); any other asks only after its last comma ("my tooth was knocked out,
# is someone there?" reports the tooth and asks for someone).
QUESTION_OPENERS = frozenset(
    """is are am was were can could should would will do does did how what when where why
    which who may might has have isnt arent doesnt""".split()  # noqa: SIM905
)
UNMARKED_QUESTIONS = frozenset({"how", "what"})
LEADING_FILLERS = frozenset("um uh so hi hey hello ok okay yeah yes well and but oh".split())  # noqa: SIM905


def _question_words(words: Sequence[tuple[str, bool]]) -> set[int]:
    """Which words of a sentence ending in "?" the question asks about (`words`: each with
    whether a comma follows it)."""
    first = next((i for i, (w, _) in enumerate(words) if w not in LEADING_FILLERS), 0)
    if first < len(words) and words[first][0] in QUESTION_OPENERS:
        return set(range(len(words)))
    last_comma = max((i for i, (_, comma) in enumerate(words[:-1]) if comma), default=-1)
    return set(range(last_comma + 1, len(words)))


def tokenize(text: str) -> tuple[Token, ...]:
    cleaned = _spelled_temperatures(fold(text).replace("-", " "))
    out: list[Token] = []
    sentence = clause = 0
    comma_after: set[int] = set()
    questions: set[int] = set()
    for match in _TOKEN.finditer(cleaned):
        word = match.group()
        if not word[0].isalnum():
            clause += 1
            if out and out[-1].sentence == sentence:
                comma_after.add(len(out) - 1)
            if word in SENTENCE_END:
                if word == "?":
                    questions.add(sentence)
                sentence += 1
            continue
        boundary = word in BOUNDARY_WORDS
        if boundary:
            clause += 1
        out.append(Token(word, stem(word), sentence, clause, boundary))
    for sentence_id in {t.sentence for t in out} - questions:
        first = next(
            (t.raw for t in out if t.sentence == sentence_id and t.raw not in LEADING_FILLERS), ""
        )
        if first in UNMARKED_QUESTIONS:  # "how long will the swelling last" (no "?" heard)
            questions.add(sentence_id)
    for q in questions:
        index = [i for i, t in enumerate(out) if t.sentence == q]
        asked = _question_words([(out[i].raw, i in comma_after) for i in index])
        for k in asked:
            t = out[index[k]]
            out[index[k]] = Token(t.raw, t.stem, t.sentence, t.clause, t.boundary, True)
    return tuple(out)


_UNITS = {
    w: n
    for n, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen".split()  # noqa: SIM905
    )
}
_TENS = {"thirty": 30, "forty": 40, "ninety": 90}
_SPELLED = re.compile(
    r"\b(?:(?:a|one) )?hundred (?:and )?(?P<hu>one|two|three|four|five|six)\b"
    r"|\bone (?:oh|o) (?P<oh>one|two|three|four|five)\b"
    r"|\b(?P<tens>thirty|forty|ninety) (?P<unit>one|two|three|four|five|six|seven|eight|nine)\b"
    r"|\b(?P<ten>thirty|forty)\b(?= (?:degrees|point))"
)
_POINT = re.compile(
    r"\b(?P<n>[0-9]+) point (?P<d>zero|one|two|three|four|five|six|seven|eight|nine)\b"
)


def _spelled_temperatures(text: str) -> str:
    """Numbers said in words the way callers read a thermometer ("a hundred and two", "one oh
    one", "thirty nine point five") become digits, so they are read by value."""

    def number(m: re.Match[str]) -> str:
        if m["hu"] or m["oh"]:
            return str(100 + _UNITS[m["hu"] or m["oh"]])
        if m["tens"]:
            return str(_TENS[m["tens"]] + _UNITS[m["unit"]])
        return str(_TENS[m["ten"]])

    text = _SPELLED.sub(number, text)
    return _POINT.sub(lambda m: f"{m['n']}.{_UNITS[m['d']]}", text)


def _phrase(text: str) -> tuple[str, ...]:
    return tuple(t.stem for t in tokenize(text))


# atom -> phrases as stem tuples; first stem -> (atom, phrase); every lexicon stem
PHRASES: dict[str, tuple[tuple[str, ...], ...]] = {
    atom: tuple(dict.fromkeys(_phrase(p) for p in phrases)) for atom, phrases in ATOMS.items()
}
_BY_FIRST: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
for _atom, _phrases in PHRASES.items():
    for _p in _phrases:
        _BY_FIRST.setdefault(_p[0], []).append((_atom, _p))
VOCABULARY = frozenset(s for phrases in PHRASES.values() for p in phrases for s in p)
# raw lexicon word -> its stem, for slips (compared before stemming: "bleding" ~ "bleeding")
_FUZZY_TARGETS: dict[str, str] = {
    t.raw: t.stem
    for phrases in ATOMS.values()
    for phrase in phrases
    for t in tokenize(phrase)
    if len(t.raw) >= 5 and t.raw.isalpha()
}
# words one letter from a lexicon word that callers mean as themselves (injection, infection)
NOT_SLIPS = frozenset(_LEXICON.get("not_slips", ()))
_FUZZY_BY_PREFIX: dict[str, list[tuple[str, str]]] = {}
for _raw, _stem in _FUZZY_TARGETS.items():
    _FUZZY_BY_PREFIX.setdefault(_raw[:2], []).append((_raw, _stem))


def _budget(a: str, b: str) -> int:
    shortest = min(len(a), len(b))
    return 0 if shortest < 6 else 1 if shortest < 9 else 2


@lru_cache(maxsize=4096)
def _fuzzy_lexicon_word(word: str) -> str | None:
    """The stem of the lexicon word an unknown word is a slip of, if any (module docstring)."""
    if stem(word) in VOCABULARY or len(word) < 6 or word in STOP_WORDS or word in NOT_SLIPS:
        return None
    best: tuple[int, str] | None = None
    for target, target_stem in _FUZZY_BY_PREFIX.get(word[:2], ()):
        # a five-letter word takes one slip only as a letter too many ("feaver" -> fever; a
        # changed letter in so short a word is another word: "fewer")
        budget = _budget(word, target) or int(len(target) == 5 and len(word) == 6)
        if not budget:
            continue
        distance = Levenshtein.distance(word, target, score_cutoff=budget)
        if distance <= budget and (best is None or distance < best[0]):
            best = (distance, target_stem)
    return best[1] if best else None


@dataclass(frozen=True, slots=True)
class Hit:
    atom: str
    start: int
    end: int  # inclusive
    fuzzy: bool


def _longest(hits: list[Hit]) -> list[Hit]:
    """Drop a hit lying strictly inside a longer one of another atom: "pain medication" is
    medication, not pain; "blood clot" is a clot, not bleeding."""
    return [
        h
        for h in hits
        if not any(
            o.atom != h.atom
            and (o.atom not in MODIFIERS or h.atom in MODIFIERS)  # "left side" keeps "side"
            and o.start <= h.start
            and h.end <= o.end
            and (o.end - o.start) > (h.end - h.start)
            for o in hits
        )
    ]


def _atom_hits(tokens: Sequence[Token]) -> list[Hit]:
    stems = [t.stem for t in tokens]
    fuzzy = [_fuzzy_lexicon_word(t.raw) for t in tokens]
    hits: list[Hit] = []
    for i in range(len(tokens)):
        firsts = [(stems[i], False)]
        if fuzzy[i]:
            firsts.append((fuzzy[i], True))  # type: ignore[arg-type]
        for first, slipped in firsts:
            for atom, phrase in _BY_FIRST.get(first, ()):
                found = _phrase_at(tokens, stems, fuzzy, i, phrase)
                if found is not None:
                    end, used_fuzzy = found
                    hits.append(Hit(atom, i, end, slipped or used_fuzzy))
    return hits


# Words a caller slips inside a phrase without changing it: "came clean out", "soaked right
# through", "won't really stop". One per phrase, in its clause.
FILLERS = frozenset(
    "right clean all completely just straight totally fully really like um uh kind sort".split()  # noqa: SIM905
)


def _phrase_at(
    tokens: Sequence[Token],
    stems: Sequence[str],
    fuzzy: Sequence[str | None],
    i: int,
    phrase: tuple[str, ...],
) -> tuple[int, bool] | None:
    """Where `phrase` (its first word at `i` already matched) ends, and whether a slip was
    heard in it; None when the words there are not the phrase."""
    j, used_fuzzy, skipped = i, False, False
    for k in range(1, len(phrase)):
        j += 1
        if (
            not skipped
            and j + 1 < len(tokens)
            and stems[j] != phrase[k]
            and tokens[j].raw in FILLERS
            and tokens[j + 1].clause == tokens[i].clause
        ):
            skipped, j = True, j + 1
        if j >= len(tokens):
            return None
        if stems[j] == phrase[k]:
            continue
        if fuzzy[j] == phrase[k]:
            used_fuzzy = True
            continue
        return None
    return j, used_fuzzy


_HYPOTHETICAL_STEMS = tuple(tuple(stem(w) for w in words) for words in HYPOTHETICAL)
_UNSURE = HEDGES | {"wonder", "wondering"}


def _starts_with(tokens: Sequence[Token], i: int, stems: tuple[str, ...]) -> bool:
    return i + len(stems) <= len(tokens) and all(
        tokens[i + k].stem == s for k, s in enumerate(stems)
    )


# "can't stop the bleeding" and "won't stop bleeding" go on; "it stopped bleeding" ended
UNSTOPPABLE = NEGATORS | {"cant", "cannot", "couldnt", "keep", "keeps", "try", "trying", "tried"}
PAST = frozenset({"was", "were", "had", "used"})  # "it was fine an hour ago" is no longer
GOING = frozenset({"go", "goe", "goes", "going", "gone", "went"})  # "... away"


def _stopped_before(tokens: Sequence[Token], hit: Hit) -> bool:
    """ "it stopped bleeding", "finally quit oozing": a stopping word just before, itself not
    denied or tried."""
    clause = tokens[hit.start].clause
    for i in range(hit.start - 1, max(0, hit.start - 3) - 1, -1):
        if tokens[i].clause != clause:
            return False
        if tokens[i].stem in {"stop", "quit"}:
            before = {t.raw for t in tokens[max(0, i - 2) : i]}
            return not before & UNSTOPPABLE
    return False


def _away(tokens: Sequence[Token], k: int) -> bool:
    return tokens[k].stem in GOING and k + 1 < len(tokens) and tokens[k + 1].raw == "away"


def _negated(tokens: Sequence[Token], hit: Hit, *, hypothetical: bool = True) -> bool:
    clause = tokens[hit.start].clause
    first = max(0, hit.start - 5)
    if _stopped_before(tokens, hit):
        return True
    listed = any(
        t.raw in {"or", "nor"} for t in tokens[max(0, hit.start - 6) : hit.start]
    )  # a negator reaches over a list: "no chest pain or shortness of breath"
    if listed:
        first = max(0, hit.start - 10)
    for i in range(hit.start - 1, first - 1, -1):
        if tokens[i].clause != clause:
            break
        raw = tokens[i].raw
        if hypothetical and any(_starts_with(tokens, i, h) for h in _HYPOTHETICAL_STEMS):
            unsure = i > 0 and tokens[i - 1].raw in _UNSURE
            if not unsure:  # "not sure if it's infected" is a report, "what if" is not
                return True
            continue
        if raw in NEGATORS:
            if i + 1 < len(tokens) and tokens[i + 1].raw in HEDGES:
                continue  # "not sure", "don't know": unsure callers are taken at their word
            if any(tokens[j].stem in STOPPING for j in range(i + 1, hit.start)):
                continue  # "hasn't stopped bleeding"
            return True
        if raw == "longer" and i > 0 and tokens[i - 1].raw == "no":
            return True
    j = hit.end + 1
    past = False
    while j < len(tokens) and tokens[j].raw in AUXILIARY and j - hit.end <= 3:
        past = past or tokens[j].raw in PAST
        j += 1
    if j < len(tokens) and tokens[j].clause == tokens[hit.end].clause:
        if tokens[j].stem in ENDED and (
            j + 1 >= len(tokens) or tokens[j + 1].raw not in BROKEN_PART
        ):  # "the fever broke" ended, "the tooth broke off" did not
            return True
        if tokens[j].raw in FINE and not tokens[j].question and not past:
            return True  # "my temperature is normal"; "it was fine an hour ago" is no more
        if _away(tokens, j):
            return True
    return _ended_after(tokens, hit)


def _ended_after(tokens: Sequence[Token], hit: Hit) -> bool:
    """ "a low fever yesterday, but it's gone now": the next clause says it ended."""
    sentence = tokens[hit.end].sentence
    for j in range(hit.end + 1, min(len(tokens), hit.end + 12)):
        if tokens[j].sentence != sentence:
            break
        if (
            tokens[j].raw in {"nothing", "none"}
            and j + 1 < len(tokens)
            and tokens[j + 1].raw in {"since", "more", "else"}
        ):
            return True  # "a spot of blood this morning but nothing since"
        if tokens[j].raw not in {"it", "its", "that", "thats"}:
            continue
        k = j + 1
        past = tokens[j].raw == "was"
        while k < len(tokens) and tokens[k].raw in AUXILIARY and k - j <= 3:
            past = past or tokens[k].raw in PAST
            k += 1
        if k < len(tokens) and (
            tokens[k].stem in ENDED
            or (tokens[k].raw in FINE and not tokens[k].question and not past)
            or _away(tokens, k)
        ):
            return True
    return False


TIME_UNITS = frozenset(
    stem(w)
    for w in "seconds minutes hours days weeks months years while ago times".split()  # noqa: SIM905
)
PEOPLE = frozenset(
    stem(w)
    for w in "boy girl one ones kid kids guy brother sister son daughter baby".split()  # noqa: SIM905
)
OBJECTS = frozenset("my it the her his your them a an this that".split())  # noqa: SIM905
QUALIFIER_REACH = 12  # words either side of a symptom its qualifiers may stand
INTENSIFIERS = frozenset({"very", "really", "extremely", "badly", "so", "super", "incredibly"})
DIMINISHERS = frozenset({"barely", "hardly", "scarcely"})


@dataclass(frozen=True, slots=True)
class Qualifier:
    start: int
    end: int
    up: bool  # plays the symptom up (worse, severe, one side) or down (a little, improving)
    dynamic: bool  # speaks of the course (getting worse, going down), not of the state


def _qualifiers(tokens: Sequence[Token], hits: Iterable[Hit]) -> list[Qualifier]:
    """Qualifier words with their direction: a negated one turns round ("not getting worse")."""
    out: list[Qualifier] = []
    for hit in hits:
        after = tokens[hit.end + 1].stem if hit.end + 1 < len(tokens) else ""
        if hit.atom == "mild" and (after in TIME_UNITS or after in PEOPLE):
            continue  # "a few days ago" says when, "my little boy" who, not how much
        if hit.atom == "persistent" and tokens[hit.start].stem == "keep" and after in OBJECTS:
            continue  # "I keep my leg up" is what the caller does, "it keeps bleeding" goes on
        up = hit.atom in UP
        if _negated(tokens, hit, hypothetical=False):  # "if it's getting smaller" stays down
            up = not up
        out.append(Qualifier(hit.start, hit.end, up, hit.atom in DYNAMIC))
    return out


@dataclass(frozen=True, slots=True)
class Occurrence:
    start: int
    end: int
    fuzzy: bool
    diminished: bool  # played down (a little, going down, is that normal?) and not up
    qualified_by: tuple[tuple[int, int], ...] = ()  # spans of the words that decided it


# Atoms alarming by nature: a curtain "coming down" over the vision is not a symptom "coming
# down"; only negation rules them out.
ALARMS = frozenset(atom for atom, entry in _LEXICON["atoms"].items() if entry.get("alarm"))
# A question asking for help is a report ("my face is swollen, should I go to the ER?")
HELP_SEEKING = frozenset(
    [
        "er",
        "emergency",
        "hospital",
        "serious",
        "concerned",
        "concern",
        "panicking",
        "saved",
        "save",
        "worried",
        "worry",
        "dangerous",
        "urgent",
        "help",
        "bad",
        "scared",
        "ambulance",
        "911",
    ]
)
QUESTION = (-1, -1)  # a qualifier span standing for "asked as a question"
ASKING_NORMAL = frozenset(
    {"normal", "normally", "expected", "usual", "usually", "typical", "ok", "okay", "alright"}
)


def _assess(
    tokens: Sequence[Token],
    own: tuple[tuple[int, int], ...],
    qualifiers: Sequence[Qualifier],
    foreign_clauses: frozenset[int],
    fuzzy: bool,
    alarm: bool = False,
    busy: frozenset[int] = frozenset(),
) -> Occurrence:
    """How the caller qualifies one occurrence (`own`: the spans of its words). Its sentence is
    read, up to `QUALIFIER_REACH` words away, leaving out clauses about another symptom ("the
    swelling is going down but the pain is worse"). In order: an intensifier right before it
    ("really swollen") plays it up; then the course, the latest word on it winning (worse,
    spreading up; going down, improving down: a swelling on one side that is improving is not
    urgent, "it was going down but now it's worse" is); asking whether it is
    normal; then a severe state (huge, on one side) plays it up, a mild one (a little) down;
    any other question about it is a question, not a report; and a symptom said plainly
    counts (a caller who does not play it down is taken at their word). The sentences after
    it that name no symptom of their own (`busy`: those that do) go on talking about it ("My
    face is swollen. Is that normal? It's getting worse.")."""
    start, end = min(a for a, _ in own), max(b for _, b in own)
    sentence = tokens[start].sentence
    sentences = {sentence}
    for later in (sentence + 1, sentence + 2):
        if later in busy:
            break
        sentences.add(later)
    for i in range(max(0, start - 2), start):  # "really swollen", "so badly swollen"
        if (
            tokens[i].raw in INTENSIFIERS
            and tokens[i].clause == tokens[start].clause
            # not "so the swelling": an intensifier stands right before what it intensifies
            and all(t.raw in INTENSIFIERS or t.raw.endswith("ly") for t in tokens[i + 1 : start])
        ):
            return Occurrence(start, end, fuzzy, False, ((i, i),))
    # "barely swollen": a diminisher right before one of its words plays it down
    inside = {k for a, b in own for k in range(a, b + 1)}
    qualifiers = list(qualifiers) + [
        Qualifier(a - 1, a - 1, False, False)
        for a, _ in own
        if a > 0 and tokens[a - 1].raw in DIMINISHERS and a - 1 not in inside
    ]
    if alarm:
        return Occurrence(start, end, fuzzy, False)
    near = [
        q
        for q in qualifiers
        if tokens[q.start].sentence in sentences
        and not any(a <= q.start and q.end <= b for a, b in own)
        and min(abs(q.start - start), abs(q.start - end))
        <= (QUALIFIER_REACH if tokens[q.start].sentence == sentence else 2 * QUALIFIER_REACH)
        and (
            tokens[q.start].clause not in foreign_clauses
            or tokens[q.start].clause == tokens[start].clause
        )
    ]
    context = [t for t in tokens if t.sentence in sentences]
    raws = [t.raw for t in context]
    asks_help = (
        any(r in HELP_SEEKING for r in raws)
        or any(  # "what should I do?"
            r == "what" and "do" in raws[i + 1 : i + 4] for i, r in enumerate(raws)
        )
    )
    # asked about it: in its own question, or a question of its own after it ("My face is
    # swollen. Can I take ibuprofen?"); a tag question after a comma asks something else
    asked = not asks_help and (
        tokens[start].question or any(t.question for t in context if t.sentence != sentence)
    )
    asks_normal = not asks_help and any(t.raw in ASKING_NORMAL and t.question for t in context)
    course = [q for q in near if q.dynamic]
    if course:  # the latest word on the course wins: "was worse yesterday, now much better"
        last = max(course, key=lambda q: q.start)
        chosen = [q for q in course if q.up == last.up]
        return Occurrence(start, end, fuzzy, not last.up, _outermost(chosen))
    # a question of its own ("what temperature is too high?") asks before a severe word counts
    own_question = asked and tokens[start].question
    steps: list[tuple[bool, bool] | str] = (
        ["normal", "asked", (False, True), (False, False)]
        if own_question
        else ["normal", (False, True), (False, False), "asked"]
    )
    for step in steps:
        if step == "normal":
            if asks_normal:
                return Occurrence(start, end, fuzzy, True, (QUESTION,))
            continue
        if step == "asked":
            if asked:
                return Occurrence(start, end, fuzzy, True, (QUESTION,))
            continue
        dynamic, up = step  # type: ignore[misc]
        chosen = [q for q in near if q.dynamic == dynamic and q.up == up]
        if chosen:
            return Occurrence(start, end, fuzzy, not up, _outermost(chosen))
    return Occurrence(start, end, fuzzy, False)


def _outermost(qualifiers: Sequence[Qualifier]) -> tuple[tuple[int, int], ...]:
    spans = sorted({(q.start, q.end) for q in qualifiers})
    return tuple(
        (a, b)
        for a, b in spans
        if not any(c <= a and b <= d and (c, d) != (a, b) for c, d in spans)
    )


@dataclass(frozen=True)
class Reading:
    """What a text says: its tokens and the concepts heard (not negated), with where."""

    tokens: tuple[Token, ...]
    concepts: dict[str, tuple[Occurrence, ...]]
    modifiers: frozenset[str]

    def words(self, start: int, end: int) -> str:
        return " ".join(t.raw for t in self.tokens[start : end + 1])

    def qualifiers(self, occurrence: Occurrence) -> tuple[str, ...]:
        return tuple(
            "asked as a question" if (a, b) == QUESTION else self.words(a, b)
            for a, b in occurrence.qualified_by
        )


@lru_cache(maxsize=2048)
def read(text: str, *, negation: bool = True) -> Reading:
    tokens = tokenize(text)
    by_atom: dict[str, list[Hit]] = {}
    modifiers: set[str] = set()
    qualifier_hits: list[Hit] = []
    for hit in _longest(_atom_hits(tokens)):
        if hit.atom in MODIFIERS:
            modifiers.add(hit.atom)
            qualifier_hits.append(hit)
            continue
        if negation and _negated(tokens, hit):
            continue
        if hit.atom == "tight" and _worn(tokens, hit):
            continue
        by_atom.setdefault(hit.atom, []).append(hit)
    if negation:
        _read_temperatures(tokens, by_atom)
    qualifiers = _qualifiers(tokens, qualifier_hits) if negation else []
    atom_clauses: dict[str, set[int]] = {}
    for atom, hits in by_atom.items():
        for h in hits:
            atom_clauses.setdefault(atom, set()).add(tokens[h.start].clause)
    busy = frozenset(
        tokens[h.start].sentence
        for atom, hits in by_atom.items()
        if atom in _STANDALONE
        for h in hits
    )
    concepts: dict[str, tuple[Occurrence, ...]] = {}
    for name, concept in CONCEPTS.items():
        own = set(concept.atoms) | concept.components
        foreign = frozenset(
            c
            for atom, clauses in atom_clauses.items()
            if atom not in own and atom in _STANDALONE
            for c in clauses
        )
        found: list[Occurrence] = []
        for atom in concept.atoms:
            for h in by_atom.get(atom, ()):
                found.append(
                    _assess(
                        tokens,
                        ((h.start, h.end),),
                        qualifiers,
                        foreign,
                        h.fuzzy,
                        atom in ALARMS,
                        busy,
                    )
                )
        for a_name, b_name in concept.pairs:
            for a in by_atom.get(a_name, ()):
                for b in by_atom.get(b_name, ()):
                    if a is b or tokens[a.start].sentence != tokens[b.start].sentence:
                        continue
                    gap = max(a.start, b.start) - min(a.end, b.end) - 1
                    if (
                        gap <= concept.window
                        and (a.start, a.end) != (b.start, b.end)
                        and not _joined(tokens, a, b)
                    ):
                        found.append(
                            _assess(
                                tokens,
                                ((a.start, a.end), (b.start, b.end)),
                                qualifiers,
                                foreign,
                                a.fuzzy or b.fuzzy,
                                bool({a_name, b_name} & ALARMS),
                                busy,
                            )
                        )
        if concept.explained_by:
            part = "sentence" if concept.explained_within == "sentence" else "clause"
            explaining = {
                getattr(tokens[h.start], part)
                for a in concept.explained_by
                for h in by_atom.get(a, ())
            }
            found = [
                o
                for o in found
                if getattr(tokens[o.start], part) not in explaining
                # a cause said in another clause does not explain a symptom played up
                or (part == "sentence" and o.qualified_by and o.qualified_by != (QUESTION,))
            ]
        if found:
            concepts[name] = tuple(sorted(found, key=lambda o: (o.start, o.end)))
    return Reading(tokens, concepts, frozenset(modifiers))


def _joined(tokens: Sequence[Token], a: Hit, b: Hit) -> bool:
    """Two atoms with "and"/"but" between them belong to two statements ("a tooth taken out
    yesterday and I lost my retainer"), unless the second has no subject of its own ("my cheek
    is swollen and hot")."""
    first, second = (a, b) if a.start < b.start else (b, a)
    for i in range(first.end + 1, second.start):
        if tokens[i].boundary and i + 1 < len(tokens) and tokens[i + 1].raw in SUBJECTS:
            return True
    return False


SUBJECTS = frozenset("i im ive id we my he hes she shes they her his our you".split())  # noqa: SIM905


# Clothing and dressings are tight by design: "the compression garment is tight around my chest"
# is the garment, not chest tightness.
GARMENTS = frozenset(
    """garment garments binder bra vest bandage bandages wrap compression dressing shirt strap
    straps tape clothes clothing belt""".split()  # noqa: SIM905
)


def _worn(tokens: Sequence[Token], hit: Hit) -> bool:
    clause = tokens[hit.start].clause
    return any(t.raw in GARMENTS for t in tokens if t.clause == clause)


# A temperature said as a number decides by its value: from 100.4 F (38 C) it is a fever, below
# it a normal reading ("my temp is 98.6" is not a fever, "my thermometer says 101.2" is).
THERMAL = frozenset(
    stem(w)
    for w in (
        "thermometer",
        "degrees",
        "degree",
        "fahrenheit",
        "celsius",
        "measured",
        "temperature",
        "temp",
    )
)


def _reads_as_temperature(raw: str) -> bool:
    """ "it's 101.5": a number with a decimal in the body's range is a thermometer reading."""
    return "." in raw and _temperature(raw) is not None


def _temperature(raw: str) -> bool | None:
    """True for a fever reading, False for a normal one, None for a number that is neither."""
    try:
        value = float(raw)
    except ValueError:
        return None
    if 100.4 <= value <= 108 or 38.0 <= value <= 43:
        return True
    if 95 <= value < 100.4 or 35 <= value < 38.0:
        return False
    return None


def _read_temperatures(tokens: Sequence[Token], by_atom: dict[str, list[Hit]]) -> None:
    """In a sentence about temperature (a fever word or a thermometer), a fever reading is a
    fever and a normal reading alone rules the fever words out."""
    fevers = by_atom.get("fever", [])
    for sentence in {t.sentence for t in tokens if t.raw[0].isdigit()}:
        thermal = any(tokens[h.start].sentence == sentence for h in fevers) or any(
            t.sentence == sentence and (t.stem in THERMAL or _reads_as_temperature(t.raw))
            for t in tokens
        )
        if not thermal:
            continue
        readings = [
            (i, _temperature(t.raw))
            for i, t in enumerate(tokens)
            if t.sentence == sentence and t.raw[0].isdigit()
        ]
        high = [i for i, r in readings if r is True]
        if high:
            fevers.extend(
                Hit("fever", i, i, False)
                for i in high
                if not _negated(tokens, Hit("", i, i, False))
            )
        elif any(r is False for _, r in readings):
            fevers = [h for h in fevers if tokens[h.start].sentence != sentence]
    if fevers:
        by_atom["fever"] = sorted(fevers, key=lambda h: h.start)
    else:
        by_atom.pop("fever", None)


# Atoms that name a symptom on their own (the others only in a pair: "worse" + vision); those
# whose clause still speaks of the symptom (the medicines for it) leave it its qualifiers.
_STANDALONE = frozenset(
    a for c in CONCEPTS.values() for a in c.atoms if not _LEXICON["atoms"][a].get("of_the_symptom")
)


def concepts_heard(text: str) -> list[str]:
    """The concepts a text mentions, not negated (for the test console and for tests)."""
    return sorted(read(text).concepts)


@dataclass(frozen=True)
class TriggerPattern:
    text: str
    required: frozenset[str]
    names_severity: bool
    words: tuple[str, ...]  # content words, for triggers the lexicon does not cover


@lru_cache(maxsize=4096)
def compile_trigger(trigger: str) -> TriggerPattern:
    reading = read(trigger, negation=False)
    present = set(reading.concepts)
    for name in list(present):
        present -= SUBSUMES.get(name, frozenset())
    words = tuple(
        dict.fromkeys(t.stem for t in reading.tokens if t.raw not in STOP_WORDS and not t.boundary)
    )
    return TriggerPattern(
        text=trigger,
        required=frozenset(present),
        names_severity=SEVERITY_MODIFIER in reading.modifiers,
        words=words,
    )


@dataclass(frozen=True)
class TriggerMatch:
    trigger: str
    confidence: float
    heard: str  # the caller's words that matched
    specificity: int = 0  # concepts matched, pairs counting double ("calf pain" > "swelling")
    qualifiers: tuple[str, ...] = ()  # the caller's words that played it up ("getting worse")


FALLBACK_MIN = 0.8


def _word_similarity(a: str, b: str) -> float:
    if a == b:
        return 1.0
    budget = _budget(a, b)
    if not budget:
        return 0.0
    distance = Levenshtein.distance(a, b, score_cutoff=budget)
    return 1.0 - distance / max(len(a), len(b)) if distance <= budget else 0.0


def _fallback(pattern: TriggerPattern, reading: Reading) -> TriggerMatch | None:
    tokens = reading.tokens
    if not pattern.words or not tokens:
        return None
    positions: list[int] = []
    sims: list[float] = []
    for word in pattern.words:
        best = (0.0, -1)
        for i, t in enumerate(tokens):
            sim = _word_similarity(word, t.stem)
            if sim > best[0]:
                best = (sim, i)
        if best[0] < FALLBACK_MIN:
            return None
        sims.append(best[0])
        positions.append(best[1])
    first, last = min(positions), max(positions)
    if _negated(tokens, Hit("", first, first, False)):
        return None
    together = positions == list(range(first, first + len(positions)))
    confidence = sum(sims) / len(sims) * (1.0 if together else 0.9)
    if confidence < FALLBACK_MIN:
        return None
    return TriggerMatch(pattern.text, round(confidence, 3), reading.words(first, last))


def match_trigger(trigger: str, text: str) -> TriggerMatch | None:
    """Whether the caller's `text` says what `trigger` describes, and how sure we are."""
    pattern = compile_trigger(trigger)
    reading = read(text)
    if not pattern.required:
        return _fallback(pattern, reading)
    spans: list[Occurrence] = []
    for name in sorted(pattern.required):
        usable = [o for o in reading.concepts.get(name, ()) if not o.diminished]
        if not usable:
            return None
        usable.sort(key=lambda o: not o.qualified_by)  # a played-up occurrence explains best
        spans.append(usable[0])
    confidence = 0.85 if any(o.fuzzy for o in spans) else 1.0
    start = min(o.start for o in spans)
    end = max(o.end for o in spans)
    specificity = sum(
        2 if CONCEPTS[name].pairs and not CONCEPTS[name].broad else 1 for name in pattern.required
    )
    qualifiers = tuple(dict.fromkeys(q for o in spans for q in reading.qualifiers(o)))
    return TriggerMatch(
        pattern.text, confidence, reading.words(start, end), specificity, qualifiers
    )


@dataclass(frozen=True)
class EmergencyHeard:
    kind: str  # "chest pain", "cannot breathe", "heavy bleeding", "stroke signs"
    heard: str


def emergency_heard(text: str) -> EmergencyHeard | None:
    """An emergency the caller reports (not negated), whatever words play it down: these are
    answered "call 911" before any protocol is consulted."""
    reading = read(text)
    found = [
        (occurrences[0].start, label, occurrences[0])
        for name, label in EMERGENCY_CONCEPTS.items()
        if (occurrences := reading.concepts.get(name))
    ]
    if not found:
        return None
    _, label, o = min(found, key=lambda f: f[0])
    return EmergencyHeard(label, reading.words(o.start, o.end))


def best_trigger(triggers: Iterable[str], text: str) -> TriggerMatch | None:
    """The best-matching of a protocol's triggers (highest confidence, then first listed)."""
    best: TriggerMatch | None = None
    for trigger in triggers:
        found = match_trigger(trigger, text)
        if found is not None and (
            best is None
            or (found.specificity, found.confidence) > (best.specificity, best.confidence)
        ):
            best = found
    return best


@dataclass(frozen=True)
class TriggerCheck:
    """Why a trigger did or did not fire, for a clinician reading the test console."""

    trigger: str
    outcome: str  # "fired", "played down", "negated", "not heard"
    heard: str = ""  # the caller's words for the symptom
    qualifiers: tuple[str, ...] = ()  # the words that played it up (fired) or down


def check_trigger(trigger: str, text: str) -> TriggerCheck:
    match = match_trigger(trigger, text)
    if match is not None:
        return TriggerCheck(trigger, "fired", match.heard, match.qualifiers)
    pattern = compile_trigger(trigger)
    reading = read(text)
    for name in sorted(pattern.required):
        down = [o for o in reading.concepts.get(name, ()) if o.diminished]
        if down and not any(not o.diminished for o in reading.concepts.get(name, ())):
            o = down[0]
            return TriggerCheck(
                trigger, "played down", reading.words(o.start, o.end), reading.qualifiers(o)
            )
    unnegated = read(text, negation=False)
    if pattern.required and all(unnegated.concepts.get(n) for n in pattern.required):
        o = unnegated.concepts[sorted(pattern.required)[0]][0]
        return TriggerCheck(trigger, "negated", unnegated.words(o.start, o.end))
    return TriggerCheck(trigger, "not heard")
