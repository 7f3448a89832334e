"""Benchmark screening's matching: a caller's sentence against a practice's live protocols.

24 protocols of 3 to 5 trigger phrases each (a large multi-specialty practice), 400 caller
sentences built from fragments and a random number so that no two are the same text (reading a
text is cached per distinct string: repeated sentences would measure the cache). Each timed call
is what `screening.screen` does besides its two queries: every protocol's best trigger.
Target: p95 under 5 ms per screening.

    .venv/bin/python -m benchmarks.bench_screening [--runs 400]

Writes p50/p95/max (ms) to benchmarks/results/screening.json.
"""

from __future__ import annotations

import argparse
import random
import sys
import time

from benchmarks.harness import Results, summary
from calls.escalation.matching import best_trigger

TRIGGERS = [
    ["bleeding that won't stop", "fever", "severe swelling"],
    ["sudden vision loss", "curtain over my vision", "severe eye pain", "flashes of light"],
    ["fever", "pus", "redness spreading from the wound"],
    ["calf pain", "swollen calf", "blood clot"],
    ["can't breathe", "chest pain", "short of breath"],
    ["refill my prescription", "ran out of pain medication"],
    ["knocked out tooth", "swelling in my face", "can't swallow"],
    ["incision opened", "stitches came out", "wound is gaping"],
    ["throwing up", "can't keep anything down"],
    ["passed out", "fainted", "numbness in my face"],
]
FRAGMENTS = [
    "I had my facelift on Tuesday and",
    "since the surgery",
    "my lower leg is really tender and puffy",
    "everything went dark in my right eye",
    "I've got the chills and the site is hot to the touch",
    "there's blood all over my pillow",
    "no fever but",
    "I just want to move my follow-up appointment",
    "is a little swelling normal",
    "my chest feels tight",
    "when can I wash my hair",
    "my son's front tooth got knocked out",
    "I keep throwing up",
    "I'm not sure if it's infected",
    "the stitches look fine",
]


def sentence(rng: random.Random, n: int) -> str:
    parts = rng.sample(FRAGMENTS, k=rng.randint(1, 3))
    return f"{' '.join(parts)}, it has been {n} hours"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=400)
    args = parser.parse_args()
    record = Results("screening")
    rng = random.Random(7)  # noqa: S311 - seeded test data, not secrets
    protocols = [TRIGGERS[i % len(TRIGGERS)] for i in range(24)]
    texts = [sentence(rng, n) for n in range(args.runs)]
    best_trigger(protocols[0], "warm up the lexicon")
    timings: list[float] = []
    matched = 0
    for text in texts:
        start = time.perf_counter()
        found = [best_trigger(triggers, text) for triggers in protocols]
        timings.append((time.perf_counter() - start) * 1000)
        matched += any(found)
    result = {
        "protocols": len(protocols),
        "runs": len(timings),
        "matched_share": round(matched / len(timings), 3),
        **summary(timings),
        "target_p95_ms": 5.0,
    }
    result["met"] = result["p95_ms"] < result["target_p95_ms"]
    record.write(result, echo=True)
    return 0  # a missed target is a result to report, not a crash of `make bench`


if __name__ == "__main__":
    sys.exit(main())
