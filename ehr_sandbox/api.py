"""The HTTP edge shared by every public route: envelope, request parsing and the wrapper.

Every public route goes through :func:`wrap`, which does what NexHealth's edge does before a
handler runs, in this order: count the request, apply the rate limit (429 + Retry-After), inject
the configured faults (latency, timeouts, 5xx), check the bearer token (401), and wrap the
handler's answer in the ``{code, description, error, data, count}`` envelope.

Handlers are plain synchronous functions run under the store's lock: the store is in memory, so
they are quick; the slow things (insertions, webhooks) happen on background threads.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .errors import ApiError, bad_request, not_found
from .faults import buckets_for, retry_after_header
from .runtime import Sandbox
from .store import Record

log = logging.getLogger("ehr_sandbox")
T = TypeVar("T")
DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 1000


# ---------------------------------------------------------------------------------------------
# Envelope and request helpers


def envelope(
    data: Any,
    *,
    count: int | None = None,
    description: str | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"code": True, "description": description, "error": None, "data": data, "count": count}
    return JSONResponse(body, status_code=status, headers=headers)


def error_envelope(exc: ApiError, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {
        "code": False,
        "description": exc.description,
        "error": exc.messages,
        "data": None,
        "count": None,
    }
    return JSONResponse(body, status_code=exc.status, headers=headers)


@dataclass
class Call:
    """One API request as a handler sees it."""

    sandbox: Sandbox
    request: Request
    api_key: str
    raw_body: bytes

    @property
    def query(self) -> Any:
        return self.request.query_params

    def path_int(self, name: str) -> int:
        value = self.request.path_params[name]
        if not str(value).isdigit():
            raise not_found("Resource", value)
        return int(value)

    def subdomain(self) -> str:
        return self.sandbox.require_subdomain(self.query.get("subdomain"))

    def q_str(self, name: str) -> str | None:
        value = self.query.get(name)
        return value.strip() if isinstance(value, str) and value.strip() else None

    def q_int(self, name: str, *, required: bool = False) -> int | None:
        value = self.q_str(name)
        if value is None:
            if required:
                raise bad_request(f"{name} is required")
            return None
        if not value.isdigit():
            raise bad_request(f"{name} must be a positive integer")
        return int(value)

    def q_ints(self, name: str) -> list[int]:
        """``name[]=1&name[]=2``, ``name=1&name=2`` or ``name=1,2``."""
        raw = self.query.getlist(f"{name}[]") + self.query.getlist(name)
        out: list[int] = []
        for item in raw:
            for part in str(item).split(","):
                part = part.strip()
                if not part:
                    continue
                if not part.isdigit():
                    raise bad_request(f"{name} must be integer ids")
                out.append(int(part))
        return list(dict.fromkeys(out))

    def q_bool(self, name: str) -> bool | None:
        value = self.q_str(name)
        if value is None:
            return None
        if value.lower() in ("true", "1", "yes"):
            return True
        if value.lower() in ("false", "0", "no"):
            return False
        raise bad_request(f"{name} must be true or false")

    def json(self) -> Record:
        if not self.raw_body.strip():
            return {}
        try:
            body = json.loads(self.raw_body)
        except ValueError as exc:
            raise bad_request("request body must be JSON") from exc
        if not isinstance(body, dict):
            raise bad_request("request body must be a JSON object")
        return body

    def location(self, subdomain: str, *, required: bool = True, body: Record | None = None) -> Any:
        location_id = self.q_int("location_id")
        if location_id is None and body is not None:
            candidate = body.get("location_id")
            location_id = candidate if isinstance(candidate, int) else None
        if location_id is None:
            if required:
                raise bad_request("location_id is required")
            return None
        return self.sandbox.location(subdomain, location_id)

    def page_of(self, rows: list[T]) -> list[T]:
        """The slice ``page``/``per_page`` select (``page`` from 1)."""
        page = self.q_int("page") or 1
        per_page = self.q_int("per_page") or DEFAULT_PER_PAGE
        if per_page > MAX_PER_PAGE:
            raise bad_request(f"per_page must be at most {MAX_PER_PAGE}")
        start = (page - 1) * per_page
        return rows[start : start + per_page]

    def paginate(self, rows: list[Record]) -> JSONResponse:
        return envelope(self.page_of(rows), count=len(rows))


Handler = Callable[[Call], Response]


def nested(body: Record, key: str) -> Record:
    """Bodies wrap the record (``{"appointment_type": {...}}``); tolerate a flat body too."""
    inner = body.get(key, body)
    if not isinstance(inner, dict):
        raise bad_request(f"{key} must be an object")
    return inner


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return None


# ---------------------------------------------------------------------------------------------
# The wrapper every public route goes through


def wrap(sandbox: Sandbox, method: str, path: str, handler: Handler, *, auth: bool) -> Route:
    endpoint_key = f"{method} {path}"
    buckets = buckets_for(method, path)

    async def endpoint(request: Request) -> Response:
        stats = sandbox.stats
        stats.add("requests", endpoint_key)
        token = _bearer(request)
        key, valid = sandbox.token_key(token) if token else (None, False)
        if not auth:  # /authenticates is limited by the key it presents
            presented = request.headers.get("authorization", "").strip()
            key = presented if presented in sandbox.api_keys() else None
        wait = sandbox.limiter.check(key or "anonymous", buckets)
        if wait is not None:
            stats.add("responses", "429")
            stats.add("rate_limited", endpoint_key)
            exc = ApiError(429, "Rate limit exceeded", description="Too Many Requests")
            return error_envelope(exc, headers={"Retry-After": retry_after_header(wait)})
        injected = await sandbox.faults.inject(endpoint_key, stats)
        if injected.status == 504:
            stats.add("responses", "504")
            return error_envelope(ApiError(504, "Gateway Timeout"))
        if injected.status is not None:
            stats.add("responses", str(injected.status))
            return error_envelope(
                ApiError(injected.status, "Internal Server Error (injected fault)")
            )
        try:
            if auth:
                if token is None:
                    raise ApiError(401, "Missing bearer token", description="Unauthorized")
                if key is None:
                    raise ApiError(401, "Invalid bearer token", description="Unauthorized")
                if not valid:
                    raise ApiError(401, "Bearer token expired", description="Unauthorized")
            call = Call(sandbox, request, key or "", await request.body())
            # One lock for the whole handler: a consistent snapshot, rendered before any
            # background insertion can change it, and one save of the state per request.
            with sandbox.store.tx():
                response = handler(call)
        except ApiError as exc:
            if exc.status == 401:
                stats.add("auth", "rejected")
            response = error_envelope(exc)
        except Exception:  # a sandbox bug: still answer in NexHealth's shape, and say so
            log.exception("unhandled error in %s", endpoint_key)
            response = error_envelope(ApiError(500, "Internal error in the EHR sandbox"))
        if injected.lose_answer_after:
            await asyncio.sleep(injected.lose_answer_after)
            stats.add("responses", "504")
            return error_envelope(ApiError(504, "Gateway Timeout"))
        stats.add("responses", str(response.status_code))
        return response

    return Route(path, endpoint, methods=[method], name=endpoint_key)
