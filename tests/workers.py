"""A real Celery worker process for tests, bound to the test database and its own queue."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

from portal.celery import app

ROOT = Path(__file__).resolve().parent.parent


def test_database_url() -> str:
    s = connection.settings_dict
    return (
        f"postgres://{quote(s['USER'])}:{quote(s['PASSWORD'] or '')}@{s['HOST']}:{s['PORT']}/"
        f"{s['NAME']}"
    )


def log_path(queue: str) -> Path:
    return ROOT / ".local" / f"worker-{queue}.log"


@contextmanager
def celery_worker(
    queues: str | None = None,
    concurrency: int = 1,
    extra_env: dict[str, str] | None = None,
    pool: str = "prefork",
    keep_log: bool = False,
) -> Iterator[tuple[subprocess.Popen, str]]:
    """Start `celery worker` as its own process; yields (process, queue) and stops it after.
    Its log (`log_path(queue)`) is removed if the test passes, unless `keep_log`."""
    queue = queues or f"test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "PORTAL_TESTING": "1",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        **(extra_env or {}),
    }
    log = log_path(queue)
    log.parent.mkdir(exist_ok=True)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "portal",
                "worker",
                "-Q",
                queue,
                "--concurrency",
                str(concurrency),
                "--pool",
                pool,
                "--loglevel",
                "INFO",
                "--hostname",
                f"{queue}@%h",
                "--without-mingle",
                "--without-gossip",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                replies = app.control.ping(
                    destination=[f"{queue}@{os.uname().nodename}"], timeout=0.5
                )
                if replies:
                    break
                if proc.poll() is not None:
                    raise RuntimeError(f"worker exited early:\n{log.read_text()[-3000:]}")
            else:
                raise RuntimeError(f"worker did not answer within 60s:\n{log.read_text()[-3000:]}")
            yield proc, queue
        except BaseException:
            keep_log = True  # the test failed: its worker's log is the first thing to read
            raise
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
    if not keep_log:
        log.unlink(missing_ok=True)
