"""What the benchmarks share: Django set up for a bench process, a throwaway database, the
portal under gunicorn as deployed, a signed-in client and one page's server-time figures,
percentiles, and the result file with the machine's load around the run.

Run a benchmark as a module from the repository root (`python -m benchmarks.bench_x`, as
`make bench` does), so `benchmarks` and the apps import without path changes. This module
imports nothing of Django when it loads: a bench script calls `setup_django()` first, and a
child process that must stay lean (the audit export's) loads no more than Django itself."""

from __future__ import annotations

import json
import logging
import os
import platform
import runpy
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time as clock
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "benchmarks" / "results"
TARGET_MS = 150  # a page renders under 150 ms server time
GUNICORN_CONFIG = ROOT / "gunicorn.conf.py"


def environment() -> None:
    """The settings a bench process runs with (inside scripts/services.py, as the tests do)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ.setdefault("PORTAL_TESTING", "1")


def setup_django() -> None:
    environment()
    import django

    django.setup()


def quiet_tenancy_log() -> None:
    """Bulk set-up opens many cross-tenant blocks: no log line for each."""
    logging.getLogger("core.tenancy").setLevel(logging.WARNING)


# --- figures ---------------------------------------------------------------------------------


def pct(values: Iterable[float], q: float) -> float:
    """The q-quantile (0 < q < 1) of the values, the nearest rank at or above it."""
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def summary(values: list[float], unit: str = "ms") -> dict[str, float]:
    return {
        "n": len(values),
        f"p50_{unit}": round(statistics.median(values), 3),
        f"p95_{unit}": pct(values, 0.95),
        f"max_{unit}": round(max(values), 3),
    }


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


class Results:
    """One benchmark's result file (benchmarks/results/<name>.json). Made at the start of the
    run: the box may be shared, so the file says how busy it was at the start and at the end."""

    def __init__(self, name: str) -> None:
        self.path = RESULTS_DIR / f"{name}.json"
        self.load_at_start = load_average()

    def previous(self) -> dict[str, Any]:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def write(self, body: dict[str, Any], *, echo: bool = False) -> dict[str, Any]:
        result = {
            "machine": {
                "cpus": os.cpu_count(),
                "load_average_at_start": self.load_at_start,
                "load_average_at_end": load_average(),
            },
            "python": platform.python_version(),
            **body,
        }
        text = json.dumps(result, indent=2, default=str) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(text)
        print(text if echo else f"wrote {self.path.relative_to(ROOT)}", flush=True)
        return result


# --- the deployment's processes --------------------------------------------------------------


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


def database_url() -> str:
    """The URL of the database this process uses (the throwaway one, once it is in place), for
    the processes a benchmark starts."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    user, password = quote(db["USER"], safe=""), quote(db["PASSWORD"] or "", safe="")
    return f"postgres://{user}:{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_ms(pids: list[int]) -> float:
    """CPU time (user + system) the processes have used so far, from /proc (Linux; 0 where
    there is none). A breakdown figure: what a request costs, whatever else the box runs."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks * 1000 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.0


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(entry.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.parent.name))
        except (OSError, ValueError):
            continue
    return found


class Gunicorn:
    """The portal under gunicorn, on the benchmark database, as it is deployed: the
    repository's gunicorn.conf.py (workers, threads, keep-alive, worker start-up), only the
    address and log level given here. `Gunicorn(noop=True)` serves benchmarks/noop_wsgi.py
    with the same worker class, processes, threads and keep-alive instead (the floor)."""

    def __init__(self, noop: bool = False, separate_api_stack: bool = True) -> None:
        import httpx

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "LOG_LEVEL": "ERROR",
            "API_SEPARATE_STACK": "true" if separate_api_stack else "false",
        }
        if noop:
            config = deployment()
            # Run from benchmarks/, where no gunicorn.conf.py is read (its worker start-up
            # loads Django); the serving settings are the deployment's, given explicitly.
            app, cwd, ready = "noop_wsgi:application", ROOT / "benchmarks", ("/", 409)
            serving = ["--worker-class", config["worker_class"], "--workers"]
            serving += [str(config["workers"]), "--threads", str(config["threads"])]
            serving += ["--keep-alive", str(config["keepalive"])]
        else:
            app, cwd, ready = "portal.wsgi:application", ROOT, ("/api/v1/schema/", 200)
            serving = ["--config", str(GUNICORN_CONFIG)]
        serving += ["--bind", f"127.0.0.1:{self.port}", "--log-level", "error"]
        # Not the checkout's control socket: a deployment of this checkout may be using it.
        serving += ["--no-control-socket"]
        self.proc = subprocess.Popen(  # noqa: S603 - fixed command line
            [sys.executable, "-m", "gunicorn", app, *serving],
            cwd=cwd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = clock.monotonic() + 180  # a loaded shared box starts slowly
        while clock.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}{ready[0]}", timeout=2).status_code == ready[1]:
                    self.pids = [self.proc.pid, *children(self.proc.pid)]
                    return
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None:
                raise SystemExit("gunicorn exited during start-up")
            threading.Event().wait(0.2)
        self.proc.kill()  # not left serving the dropped database
        raise SystemExit("gunicorn did not answer within 180 s")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# --- the database and the pages --------------------------------------------------------------


@contextmanager
def throwaway_database(prefix: str) -> Iterator[None]:
    """A database of the benchmark's own for the duration (created, migrated, dropped), so its
    data never meets the developer's or another benchmark's; its audit tables protected as a
    deployment's are (compliance.protection), when a superuser URL is at hand."""
    from django.conf import settings
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    from compliance.protection import protect_connected_database

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


def practice_with_staff(slug: str, name: str, timezone: str, roles: Iterable[str]) -> Any:
    """A practice and one person holding `roles` in it, with a confirmed authenticator (for
    `signed_in`). Returns (practice, user)."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.models import Membership, Practice, User

    practice = Practice.objects.create(slug=slug, name=name, timezone=timezone)
    user = User.objects.create_user(username=f"{slug}@example.test", password="x")
    TOTPDevice.objects.create(user=user, name="bench", confirmed=True)
    for role in roles:
        Membership.objects.create(user=user, practice=practice, role=role)
    return practice, user


def signed_in(user: Any) -> Any:
    """A test client past the password and the second factor, as a person would be."""
    from django.test import Client
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
    http: Any, method: str, path: str, runs: int, *, target_ms: float = TARGET_MS, **kwargs: Any
) -> dict[str, Any]:
    """p50/p95 server time of one page through the whole middleware stack (warm connection),
    this process's CPU time, and the SQL statements one request runs."""
    from django.db import connection

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


def measure_pages(
    http: Any, pages: dict[str, tuple[str, str, dict[str, Any]]], runs: int
) -> dict[str, Any]:
    """`measure` for each named (method, path, request keyword arguments), printed as it goes."""
    results = {}
    for name, (method, path, kwargs) in pages.items():
        results[name] = measure(http, method, path, runs, **kwargs)
        print(f"{name}: {results[name]}", flush=True)
    return results


def runs_argument(default: int) -> int:
    """`--runs N` (or `--runs=N`) from the command line: how many requests per page."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=default)
    return int(parser.parse_args().runs)


class PageRun:
    """A page benchmark's run: its data built in a throwaway database (timed), a client signed
    in as the world's `user`, and the result file written with the scenario and the figures."""

    def __init__(self, name: str, world: dict[str, Any], setup_s: float, results: Results):
        self.name = name
        self.world = world
        self.setup_s = setup_s
        self.results = results
        self.http = signed_in(world["user"])
        self.base = f"/p/{world['practice'].slug}"

    def write(self, scenario: dict[str, Any], **figures: Any) -> None:
        self.results.write(
            {"scenario": {**scenario, "data_setup_s": round(self.setup_s, 1)}, **figures}
        )


@contextmanager
def page_run(name: str, build: Any) -> Iterator[PageRun]:
    quiet_tenancy_log()
    results = Results(name)
    with throwaway_database(f"bench_{name}"):
        t0 = clock.perf_counter()
        world = build()
        yield PageRun(name, world, clock.perf_counter() - t0, results)
