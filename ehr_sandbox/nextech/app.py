"""The Nextech sandbox's Starlette app: the token endpoint (Azure AD's password and refresh
grants), the Select API below ``/api``, and ``/_admin`` for tests and the demo.

Every ``/api`` request passes the edge in this order, as Nextech's gateway would: count it,
apply the 20/s per user per endpoint limit (429 + ``Retry-After``), inject the switched-on
faults (latency, 5xx, timeouts before or after the write), check the bearer token (401), and
require ``nx-practice-id`` naming a practice the user may act for (400/403).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ehr_sandbox.faults import EndpointLimiter, Faults, Injection, Stats, retry_after_header

from . import admin
from .fhirjson import ApiError
from .routes import ROUTES, Ctx
from .store import State

log = logging.getLogger("ehr_sandbox.nextech")
DEFAULT_CLIENT_ID = "sandbox-client"
DEFAULT_CLIENT_SECRET = "sandbox-secret"
DEFAULT_ADMIN_TOKEN = "sandbox-admin"


class NextechSandbox:
    """The process-wide objects: state, faults, limiter, counters and settings."""

    def __init__(
        self,
        *,
        admin_token: str = DEFAULT_ADMIN_TOKEN,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        token_ttl: float = 3600.0,
    ) -> None:
        self.admin_token = admin_token
        self.client_id = client_id
        self.client_secret = client_secret
        self.default_token_ttl = token_ttl
        self.state = State(token_ttl=token_ttl)
        self.faults = Faults()
        self.stats = Stats()
        self.limiter = EndpointLimiter()

    def reset(self) -> None:
        with self.state.lock:
            self.state.reset()
            self.state.token_ttl = self.default_token_ttl
        self.faults.reset()
        self.limiter.reset()
        self.stats.reset()


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return None


def _injected_answer(injected: Injection) -> Response | None:
    """The answer an injected fault puts in place of the request's (None: handle it)."""
    if injected.status == 504:
        return ApiError(504, "Gateway Timeout").response()
    if injected.status is not None:
        return ApiError(injected.status, "Internal Server Error (injected fault)").response()
    return None


def api_route(
    sandbox: NextechSandbox, method: str, path: str, handler: Callable[..., Response]
) -> Route:
    key = f"{method} {path}"

    async def endpoint(request: Request) -> Response:
        stats = sandbox.stats
        stats.add("requests", key)
        with sandbox.state.lock:
            user, why = sandbox.state.user_for_access_token(_bearer(request))
        wait = sandbox.limiter.check(user.username if user else "anonymous", key)
        if wait is not None:
            stats.add("responses", "429")
            stats.add("rate_limited", key)
            return ApiError(
                429,
                "Too many requests",
                headers={"Retry-After": retry_after_header(wait)},
                code="throttled",
            ).response()
        injected = await sandbox.faults.inject(key, stats)
        replaced = _injected_answer(injected)
        if replaced is not None:
            stats.add("responses", str(replaced.status_code))
            return replaced
        try:
            if user is None:
                stats.add("auth", f"rejected_{why}")
                raise ApiError(
                    401,
                    f"bearer token {why}",
                    headers={"WWW-Authenticate": f'Bearer error="invalid_token", error="{why}"'},
                    code="login",
                )
            practice_id = request.headers.get("nx-practice-id", "").strip()
            if not practice_id:
                raise ApiError(400, "the nx-practice-id header is required", code="required")
            if practice_id not in user.practices:
                raise ApiError(
                    403, f"the user may not act for practice {practice_id}", code="forbidden"
                )
            body = await request.body()
            with sandbox.state.lock:
                if practice_id not in sandbox.state.practices:
                    raise ApiError(403, f"practice {practice_id} is not set up", code="forbidden")
                ctx = Ctx(sandbox.state, request, user, sandbox.state.practices[practice_id], body)
                response = handler(ctx, **request.path_params)
                stats.add("handled", f"{key} {response.status_code}")
        except ApiError as exc:
            response = exc.response()
        except Exception:  # a sandbox bug: still answer as FHIR, and say so
            log.exception("unhandled error in %s", key)
            response = ApiError(500, "internal error in the Nextech sandbox").response()
        if injected.lose_answer_after:
            await asyncio.sleep(injected.lose_answer_after)
            stats.add("responses", "504")
            return ApiError(504, "Gateway Timeout").response()
        stats.add("responses", str(response.status_code))
        return response

    return Route("/api" + path, endpoint, methods=[method], name=key)


def _aad_error(status: int, error: str, code: int, text: str) -> JSONResponse:
    return JSONResponse(
        {
            "error": error,
            "error_description": f"AADSTS{code}: {text}\r\nTrace ID: sandbox",
            "error_codes": [code],
        },
        status_code=status,
    )


def token_route(sandbox: NextechSandbox) -> list[Route]:
    """Azure AD's v1 token endpoint: ``grant_type=password`` and ``grant_type=refresh_token``."""
    key = "POST /oauth2/token"

    async def endpoint(request: Request) -> Response:
        sandbox.stats.add("requests", key)
        injected = await sandbox.faults.inject(key, sandbox.stats)
        replaced = _injected_answer(injected)
        if replaced is not None:
            return replaced
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        response = _grant(sandbox, form)
        if injected.lose_answer_after:
            await asyncio.sleep(injected.lose_answer_after)
            return ApiError(504, "Gateway Timeout").response()
        return response

    return [
        Route("/oauth2/token", endpoint, methods=["POST"]),
        Route("/{tenant}/oauth2/token", endpoint, methods=["POST"]),
    ]


def _grant(sandbox: NextechSandbox, form: dict[str, str]) -> Response:
    stats = sandbox.stats
    if (
        form.get("client_id") != sandbox.client_id
        or form.get("client_secret") != sandbox.client_secret
    ):
        stats.add("tokens", "invalid_client")
        return _aad_error(401, "invalid_client", 7000215, "Invalid client secret is provided.")
    grant = form.get("grant_type")
    with sandbox.state.lock:
        state = sandbox.state
        if grant == "password":
            user = state.users.get(form.get("username", ""))
            if user is None or user.password != form.get("password"):
                stats.add("tokens", "bad_password")
                return _aad_error(
                    400,
                    "invalid_grant",
                    50126,
                    "Error validating credentials due to invalid username or password.",
                )
            if user.must_reset:
                stats.add("tokens", "reset_required")
                return _aad_error(400, "invalid_grant", 50055, "The password is expired.")
            stats.add("tokens", "password")
            return JSONResponse(state.issue(user))
        if grant == "refresh_token":
            token = state.tokens.get(form.get("refresh_token", ""))
            user = state.users.get(token.username) if token else None
            from .store import utc_now

            if (
                token is None
                or token.kind != "refresh"
                or user is None
                or token.expires_at <= utc_now()
            ):
                stats.add("tokens", "bad_refresh")
                return _aad_error(
                    400, "invalid_grant", 700082, "The refresh token has expired or been revoked."
                )
            if user.must_reset:
                stats.add("tokens", "reset_required")
                return _aad_error(400, "invalid_grant", 50055, "The password is expired.")
            stats.add("tokens", "refresh")
            return JSONResponse(state.issue(user))
    return _aad_error(
        400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type."
    )


def create_app(sandbox: NextechSandbox) -> Starlette:
    routes: list[BaseRoute] = [*token_route(sandbox)]
    routes += [api_route(sandbox, m, p, h) for m, p, h in ROUTES]
    routes += admin.routes(sandbox)

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        return ApiError(
            status, f"no route for {request.method} {request.url.path}", code="not-found"
        ).response()

    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
    app.state.sandbox = sandbox
    app.state.pid = os.getpid()
    return app


__all__ = ["NextechSandbox", "create_app"]
