"""How the portal is served: `gunicorn portal.wsgi:application` from the repository root reads
this file (gunicorn's default `./gunicorn.conf.py`; `-c gunicorn.conf.py` says so explicitly).
`benchmarks/bench_api.py` serves the portal with it, so what is measured is what is deployed.

Every value can be overridden on the command line or with GUNICORN_CMD_ARGS; the listening
address comes from GUNICORN_BIND (default 127.0.0.1:8000, behind the TLS-terminating proxy).

Sizing: a request is Python under one interpreter lock plus PostgreSQL
round trips. Threads keep a worker busy while a request waits for the database or for a hold's
lock, but every thread that comes back from a round trip queues for the interpreter lock
behind the others, so pools are kept small: one process per core plus one (a hold's waiters
can tie up a process's threads while the claim they wait for runs elsewhere), six threads
each. Larger pools (more processes or more threads) were no faster on a shared two-core box,
and CPU per request grew with the number of processes.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Any

from gunicorn.glogging import Logger

from core.logsafety import WITHHELD, install, redact, without_query

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "0")) or (os.cpu_count() or 1) + 1
threads = int(os.environ.get("GUNICORN_THREADS", "6"))
# The voice agent keeps its connection between calls: a reconnect costs more than a request.
keepalive = 30
# gunicorn's control socket (gunicornc) defaults to one path per user ($XDG_RUNTIME_DIR or
# ~/.gunicorn), so a second deployment on the host under the same account would take over the
# first one's socket. Each checkout keeps its own under its own directory instead (RUN_STATE_DIR,
# default .local/run/ beside this file; gunicorn creates the folder).
RUN_STATE_DIR = Path(
    os.environ.get("RUN_STATE_DIR") or Path(__file__).resolve().parent / ".local" / "run"
)
control_socket = str(RUN_STATE_DIR / "gunicorn.ctl")


class RedactingLogger(Logger):
    """gunicorn's logger with no PHI in its lines: the access log's request line, path, query
    and referer lose their query strings (a search term or an old link's parameters), every
    other field goes through `core.logsafety.redact`, and both logs' handlers carry the
    redacting filter (error lines quote exceptions)."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        install([*self.error_log.handlers, *self.access_log.handlers])

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> Any:
        atoms = super().atoms(resp, req, environ, request_time)
        for key, value in atoms.items():
            if not isinstance(value, str) or key == "t":
                continue
            if key in ("q", "{query_string}e"):
                atoms[key] = WITHHELD if value else ""
            else:
                atoms[key] = redact(without_query(value) if "?" in value else value)
        return atoms


logger_class = RedactingLogger


def post_worker_init(worker: Any) -> None:
    """Once the application is loaded, move everything it allocated (modules, URL patterns,
    models: over a hundred thousand objects) out of the garbage
    collector's sight. Without this, every full collection walks all of them while the
    worker's threads wait: tens of milliseconds, at random, in the middle of requests. The
    URL configuration (and with it every view module) is imported first, so it is frozen too
    rather than loaded by the first request."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imports the URL configuration and its views
    gc.collect()
    gc.freeze()
