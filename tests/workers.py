"""Real processes for tests, bound to the test database: a Celery worker on its own queue, the
portal under gunicorn."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
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


def _environment(extra_env: dict[str, str] | None) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "PORTAL_TESTING": "1",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "REDIS_URL": settings.REDIS_URL,
        **(extra_env or {}),
    }


@contextmanager
def _process(
    command: list[str],
    env: dict[str, str],
    log: Path,
    ready: Callable[[subprocess.Popen], bool],
    keep_log: bool = False,
) -> Iterator[subprocess.Popen]:
    """`command` as its own process logging to `log`, yielded once `ready(process)`, stopped
    after. The log is removed if the block passes, unless `keep_log`."""
    log.parent.mkdir(exist_ok=True)
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while not ready(proc):
                if proc.poll() is not None:
                    raise RuntimeError(f"{command[2]} exited early:\n{log.read_text()[-3000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{command[2]} not ready in 60s:\n{log.read_text()[-3000:]}")
            yield proc
        except BaseException:
            keep_log = True  # the test failed: the process's log is the first thing to read
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
    command = [sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q", queue]
    command += ["--concurrency", str(concurrency), "--pool", pool, "--loglevel", "INFO"]
    command += ["--hostname", f"{queue}@%h", "--without-mingle", "--without-gossip"]
    destination = [f"{queue}@{os.uname().nodename}"]

    def answers(proc: subprocess.Popen) -> bool:
        return bool(app.control.ping(destination=destination, timeout=0.5))

    with _process(command, _environment(extra_env), log_path(queue), answers, keep_log) as proc:
        yield proc, queue


def free_port() -> int:
    """A port nothing listens on (bound, then released): a server's, or a broker's that is
    down."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def portal_server(extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """The portal under gunicorn (the repository's gunicorn.conf.py, one small worker) as its
    own process on the test database; yields its URL once /healthz answers (healthy or not:
    `extra_env` may give it a broker that is down)."""
    import httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "gunicorn", "portal.wsgi:application"]
    command += ["--config", str(ROOT / "gunicorn.conf.py"), "--bind", f"127.0.0.1:{port}"]
    command += ["--no-control-socket"]
    env = _environment({"WEB_CONCURRENCY": "1", "GUNICORN_THREADS": "2", **(extra_env or {})})

    def answers(proc: subprocess.Popen) -> bool:
        try:
            httpx.get(f"{url}/healthz", timeout=5)
        except httpx.TransportError:
            threading.Event().wait(0.1)
            return False
        return True

    with _process(command, env, ROOT / ".local" / f"portal-{port}.log", answers):
        yield url
