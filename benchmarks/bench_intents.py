"""Benchmark intent resolution against the cheapest authenticated API read, in one run.

Run by `make bench` (PORTAL_TESTING=1, inside scripts/services.py), in a throwaway database: one
practice with 40 appointment types and 400 caller phrases (specialty words, the lexicon's lay
terms among them). Through Django's test Client in this process with a warm connection (the whole
stack: auth, tenant scoping, the BAA gate, audit), interleaved so both see the same machine:

* `POST /api/v1/intents/resolve` over a rotating set of caller sentences (matches, misspellings,
  lay words, negatives);
* `GET /api/v1/appointment-types`, the reference.

Reported: p50 / p95 of each and the ratio of resolve's p50 to the reference's (goal: at most 2).

    .venv/bin/python benchmarks/bench_intents.py [--runs 300]

Writes benchmarks/results/intents.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time as clock
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("PORTAL_TESTING", "1")

import django  # noqa: E402

django.setup()

from django.test import Client  # noqa: E402

from benchmarks.bench_api import issue_token, summary  # noqa: E402
from benchmarks.pages import throwaway_database  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "intents.json"
TYPES = 40
PHRASES_PER_TYPE = 10
GOAL_RATIO = 2.0
WORDS = [
    "rhinoplasty",
    "facelift",
    "blepharoplasty",
    "liposuction",
    "abdominoplasty",
    "augmentation",
    "implant",
    "botox",
    "filler",
    "acne",
    "mole",
    "skin",
    "cancer",
    "mohs",
    "cataract",
    "glaucoma",
    "lasik",
    "retina",
    "eyelid",
    "knee",
    "hip",
    "shoulder",
    "spine",
    "ankle",
    "wrist",
    "fracture",
    "cast",
    "sprain",
    "cleaning",
    "crown",
    "filling",
    "root",
    "canal",
    "whitening",
    "implant",
    "extraction",
    "wisdom",
    "braces",
    "invisalign",
    "consultation",
    "evaluation",
    "follow",
    "up",
    "post",
    "op",
    "check",
    "visit",
]
SENTENCES = (
    "I'd like a rhinoplasty consultation please",
    "um I was thinking about getting my nose done",
    "my tooth is killing me",
    "I need my eye pressure checked",
    "glocoma check",
    "I tore my ACL playing soccer",
    "not a cleaning, I think I cracked a tooth",
    "what are your hours",
    "can I pay my bill",
    "I want botox and maybe some lip filler",
)


def build(seed: int = 20261207) -> tuple[Any, str]:
    from core.tenancy import tenant_context
    from tests.factories import PracticeFactory, sign_baa
    from tests.receptionist_api.factories import api_client
    from tests.scheduling.factories import AppointmentTypeFactory

    rng = random.Random(seed)  # noqa: S311 - test data
    practice = PracticeFactory(slug="bench-intents", name="Bench Intents")
    sign_baa(practice)
    with tenant_context(practice):
        for i in range(TYPES):
            words = rng.sample(WORDS, 2)
            AppointmentTypeFactory(
                practice=practice,
                key=f"type-{i}",
                name=f"{words[0].title()} {words[1].title()} {i}",
                phrases=[" ".join(rng.sample(WORDS, 3)) for _ in range(PHRASES_PER_TYPE)],
            )
    client, _ = api_client(practice)
    return practice, issue_token(client)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    load_at_start = os.getloadavg()
    with throwaway_database("bench_intents"):
        _, token = build()
        http = Client()
        auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}

        def resolve(i: int) -> Any:
            body = {"utterance": SENTENCES[i % len(SENTENCES)], "patient_status": "new"}
            return http.post(
                "/api/v1/intents/resolve", body, content_type="application/json", **auth
            )

        def types(_: int) -> Any:
            return http.get("/api/v1/appointment-types", **auth)

        for i in range(20):  # warm both paths (caches, prepared statements)
            assert resolve(i).status_code == 200, resolve(i).content[:300]
            assert types(i).status_code == 200
        times: dict[str, list[float]] = {"resolve": [], "appointment_types": []}
        for i in range(args.runs):
            for name, call in (("resolve", resolve), ("appointment_types", types)):
                started = clock.perf_counter()
                call(i)
                times[name].append((clock.perf_counter() - started) * 1000)
    resolve_s = summary(times["resolve"])
    types_s = summary(times["appointment_types"])
    ratio = resolve_s["p50_ms"] / types_s["p50_ms"]
    result = {
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_at_start": [round(x, 2) for x in load_at_start],
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "scenario": {
            "types": TYPES,
            "phrases": TYPES * PHRASES_PER_TYPE,
            "sentences": len(SENTENCES),
            "runs": args.runs,
        },
        "python": platform.python_version(),
        "resolve": resolve_s,
        "appointment_types": types_s,
        "p50_ratio_resolve_to_appointment_types": round(ratio, 2),
        "goal_ratio": GOAL_RATIO,
        "met": ratio <= GOAL_RATIO,
    }
    print(json.dumps(result, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
