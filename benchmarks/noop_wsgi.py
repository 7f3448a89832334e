"""A WSGI application that answers every request with a fixed 409 and does nothing else.

`bench_api.py` serves it exactly as the portal is served (same worker class, processes, threads
and keep-alive) and fires 30 requests at it at once, as it does at the hold endpoint: the result
is the floor of that figure on this machine, what the server, the loopback and the load
generator cost before any application code runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

_BODY = b'{"status": 409, "title": "noop"}'


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    start_response(
        "409 Conflict",
        [("Content-Type", "application/problem+json"), ("Content-Length", str(len(_BODY)))],
    )
    return [_BODY]
