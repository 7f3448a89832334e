"""Benchmark the EHR client's own overhead against the sandbox (needs Redis: run via `make bench`).

1. The shared rate limiter: one Lua round trip to Redis per admission (p50/p95 in ms).
2. `GET /providers` through the full client (limiter, token from Redis, envelope, health
   counters: three Redis round trips) versus the same call with bare httpx, one thread, sandbox
   limits off. The difference is what the client costs per call; sequential so it is not hidden
   behind (or inflated by) contention.

    .venv/bin/python benchmarks/bench_client.py [--calls 400]

Writes the figures to benchmarks/results/client.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("PORTAL_TESTING", "1")

from ehr.nexhealth.client import ConnectionConfig, NexHealthClient  # noqa: E402
from ehr.nexhealth.ratelimit import DEFAULT_LIMITS  # noqa: E402
from ehr.ratelimit import Limit, RateLimiter  # noqa: E402
from ehr_sandbox.testing import SandboxServer  # noqa: E402

KEY = "bench-api-key"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return round(ordered[max(0, int(len(ordered) * p / 100) - 1)], 3)


def timed(fn, calls: int, threads: int = 8) -> list[float]:
    def one(_: int) -> float:
        began = time.perf_counter()
        fn()
        return (time.perf_counter() - began) * 1000

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(calls)))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=400)
    args = parser.parse_args()

    limiter = RateLimiter(
        f"bench-{uuid.uuid4().hex}", {**DEFAULT_LIMITS, "overall": Limit(10**6, 1.0)}
    )
    admissions = timed(lambda: limiter.try_acquire(["overall", "other"]), args.calls, threads=1)

    with SandboxServer(api_keys=[KEY]) as sandbox:
        sandbox.admin("PUT", "/_admin/rate_limits", {"enabled": False})
        raw = sandbox.client(KEY)
        raw.post(
            "/locations",
            params={"subdomain": "bench"},
            json={"location": {"name": "Bench", "tz": "UTC"}},
        )
        lid = raw.get("/locations", params={"subdomain": "bench"}).json()["data"][0]["id"]
        raw.post(
            "/providers",
            params={"subdomain": "bench", "location_id": lid},
            json={"provider": {"first_name": "Ana", "last_name": "Patel"}},
        )
        limits = {name: Limit(10**6, 1.0) for name in DEFAULT_LIMITS}
        config = ConnectionConfig(
            base_url=sandbox.base_url,
            subdomain="bench",
            api_key=KEY,
            location_id=lid,
            rate_limit_key=f"bench-{uuid.uuid4().hex}",
            health_key=f"bench-{uuid.uuid4().hex}",
            limits=limits,
        )
        client = NexHealthClient(config)
        client.providers()  # token
        params = {"subdomain": "bench", "location_id": lid, "page": 1, "per_page": 200}
        bare = timed(lambda: raw.get("/providers", params=params), args.calls, threads=1)
        full = timed(client.providers, args.calls, threads=1)
        client.close()
        raw.close()

    result = {
        "limiter_admission_ms": {"p50": pct(admissions, 50), "p95": pct(admissions, 95)},
        "bare_httpx_ms": {"p50": pct(bare, 50), "p95": pct(bare, 95)},
        "client_ms": {"p50": pct(full, 50), "p95": pct(full, 95)},
        "client_overhead_p50_ms": round(statistics.median(full) - statistics.median(bare), 3),
        "calls": args.calls,
    }
    out = ROOT / "benchmarks" / "results" / "client.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
