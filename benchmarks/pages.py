"""What the page benchmarks share: a signed-in client and one page's server-time figures.

Import after `django.setup()` (the bench scripts set Django up first)."""

from __future__ import annotations

import os
import runpy
import statistics
import time as clock
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import setup_databases, teardown_databases

from compliance.protection import protect_connected_database

TARGET_MS = 150  # a page renders under 150 ms server time
GUNICORN_CONFIG = Path(__file__).resolve().parent.parent / "gunicorn.conf.py"


def deployment() -> dict[str, Any]:
    """The deployment's gunicorn settings (gunicorn.conf.py), as gunicorn will read them."""
    return runpy.run_path(str(GUNICORN_CONFIG))


def as_a_worker_once_loaded() -> None:
    """Do to this process's heap what a deployed worker does to its own once the application is
    loaded (gunicorn.conf.py's `post_worker_init`: collect, then freeze what is there). Call it
    after the data set-up: a benchmark process also holds those objects, which no worker has,
    and a full collection walking them would land in a measured request now and then, as this
    process's CPU time, far above the page's own."""
    deployment()["post_worker_init"](None)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def signed_in(user: Any) -> Client:
    """A test client past the password and the second factor, as a person would be."""
    from django_otp.oath import totp
    from django_otp.plugins.otp_totp.models import TOTPDevice

    http = Client()
    http.force_login(user)
    device = TOTPDevice.objects.get(user=user)
    token = f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"
    response = http.post("/accounts/2fa/verify/", {"token": token})
    assert response.status_code == 302, response.status_code
    return http


def measure(
    http: Client, method: str, path: str, runs: int, *, target_ms: float = TARGET_MS, **kwargs: Any
) -> dict[str, Any]:
    """p50/p95 server time of one page through the whole middleware stack (warm connection),
    this process's CPU time, and the SQL statements one request runs."""
    send = getattr(http, method)
    as_a_worker_once_loaded()
    assert send(path, **kwargs).status_code == 200, path  # warm
    statements = 0

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        # A wrapper, not CaptureQueriesContext: the test client's request signals reset the
        # captured log, which then reads 0.
        nonlocal statements
        statements += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        send(path, **kwargs)
    times, cpu = [], []
    for _ in range(runs):
        t0, c0 = clock.perf_counter(), clock.process_time()
        response = send(path, **kwargs)
        times.append((clock.perf_counter() - t0) * 1000)
        cpu.append((clock.process_time() - c0) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return {
        "n": runs,
        "p50_ms": round(statistics.median(times), 3),
        "p95_ms": pct(times, 0.95),
        "max_ms": round(max(times), 3),
        # This process's CPU (the database's work shows in the wall time only): on a loaded
        # machine it shows what the page costs when the CPU is ours.
        "python_cpu_p50_ms": round(statistics.median(cpu), 3),
        "python_cpu_p95_ms": pct(cpu, 0.95),
        "queries": statements,
        "target_p95_ms": target_ms,
    }


@contextmanager
def throwaway_database(prefix: str) -> Iterator[None]:
    """A database of the benchmark's own for the duration (created, migrated, dropped), so its
    data never meets the developer's or another benchmark's; its audit tables protected as a
    deployment's are (compliance.protection), when a superuser URL is at hand."""
    db = settings.DATABASES["default"]
    original_name = db["NAME"]
    db.setdefault("TEST", {})["NAME"] = f"{prefix}_{os.getpid()}"
    try:
        old = setup_databases(verbosity=0, interactive=False, serialized_aliases=set())
    except BaseException:
        if connection.settings_dict["NAME"] != original_name:
            connection.creation.destroy_test_db(original_name, verbosity=0)
        raise
    try:
        if settings.DATABASE_SUPERUSER_URL:
            protect_connected_database(settings.DATABASE_SUPERUSER_URL)
        yield
    finally:
        connection.close()
        teardown_databases(old, verbosity=0)
