"""Reading what callers say: one folding, one stemmer, one set of negation words.

The intent matcher (scheduling) and the screening matcher (calls) compare a caller's words with
configured phrases. Both sides of each comparison go through the same functions, so the two
matchers must agree on them: a stem computed one way and compared with a stem computed another
never matches.

* `fold`: lower case (casefold), apostrophes dropped ("I'm" -> "im", "can't" -> "cant");
* `words`: the letter-and-digit runs of folded text, everything else a separator;
* `stem`: a deliberately small English suffix stemmer (cleaned/cleaning -> clean, stitches ->
  stitch, surgeries -> surgery, bleeding -> bleed; words of three letters or fewer and words
  with digits stay as they are);
* `NEGATIONS`: the words that negate what follows them in both matchers; each matcher adds the
  ones its reading needs (`first_negation` finds one in a clause).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["NEGATIONS", "first_negation", "fold", "stem", "words"]

_WORD = re.compile(r"[^\W_]+")
_NOT_LETTER = re.compile(r"[^a-z]")

NEGATIONS = frozenset(
    ["no", "not", "never", "without", "nor", "dont", "doesnt", "didnt", "isnt", "arent", "wasnt"]
)


def fold(text: str) -> str:
    """Lower case, apostrophes (straight and typographic) dropped."""
    return text.casefold().replace("'", "").replace("\u2019", "")


def words(text: str) -> list[str]:
    """The words of `text`, folded; every character but a letter or digit separates."""
    return _WORD.findall(fold(text))


def stem(word: str) -> str:
    """A deliberately small English suffix stemmer; both sides of a comparison go through it."""
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


def first_negation(clause: Sequence[str], negations: frozenset[str] = NEGATIONS) -> int | None:
    """The position of the first negation word in `clause` (words as said: "Don't," counts
    as "dont"), or None."""
    for i, word in enumerate(clause):
        if _NOT_LETTER.sub("", word.casefold()) in negations:
            return i
    return None
