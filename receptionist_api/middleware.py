"""Every answer under /api/v1/ is problem+json, whatever raised it, and no body is read that is
too big or carries a NUL character.

DRF's exception handler only sees errors raised inside a view. The URL resolver's 404 (a path id
that is not a number), a 405 outside DRF, and Django's own 400/500 pages were HTML; a body over
DATA_UPLOAD_MAX_MEMORY_SIZE raised inside the view, a 500; a NUL byte in a form or the query
string reached PostgreSQL, which refuses it (a 500). This middleware answers those first.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote_to_bytes

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject, CSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase

from receptionist_api.errors import PROBLEM_JSON

API_PREFIX = "/api/v1/"

# Problem types for statuses raised outside DRF (DRF's own answers are problem+json already).
_TYPES = {
    400: "validation_error",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}
_DETAILS = {
    400: "The request is malformed.",
    404: "There is nothing at this address.",
    405: "This address does not take that method.",
    413: "The request body is larger than this API accepts.",
    500: "Something went wrong on our side.",
}
_KEPT_HEADERS = ("Allow", "WWW-Authenticate", "Retry-After", "X-Request-ID", "Cache-Control")


def problem(status: int, detail: str = "", **extra: Any) -> HttpResponse:
    """A plain Django problem+json response (DRF's Response needs a view to render)."""
    phrase = HTTPStatus(status).phrase
    body = {
        "type": _TYPES.get(status, "server_error" if status >= 500 else "error"),
        "title": phrase,
        "status": status,
        "detail": detail or _DETAILS.get(status, phrase + "."),
        **extra,
    }
    return HttpResponse(json.dumps(body), status=status, content_type=PROBLEM_JSON)


def _bad_request(detail: str) -> HttpResponse:
    return problem(400, "The request is invalid; see errors.", errors={"body": [detail]})


def _has_nul(raw: bytes) -> bool:
    return b"\x00" in raw or b"\x00" in unquote_to_bytes(raw.replace(b"+", b" "))


def refuse(request: HttpRequest) -> HttpResponse | None:
    """Why this API request is refused before any view reads it, as a response; or None."""
    length = request.META.get("CONTENT_LENGTH") or "0"
    try:
        size = int(length)
    except ValueError:
        return _bad_request("Content-Length is not a number.")
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if limit is not None and size > limit:
        return problem(413, f"The body may be at most {limit} bytes.")
    if _has_nul(request.META.get("QUERY_STRING", "").encode("latin-1", "replace")):
        return _bad_request("The query string holds a NUL character.")
    if size and b"\x00" in request.body:
        return _bad_request("The body holds a NUL byte.")
    form = request.content_type == "application/x-www-form-urlencoded"
    if size and form and _has_nul(request.body):
        return _bad_request("The form holds a NUL character.")
    return None


class ApiProblemMiddleware:
    """Refuse unreadable API requests early; re-render any non-problem error as problem+json."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        refused = refuse(request)
        response = refused if refused is not None else self.get_response(request)
        if response.status_code < 400 or response.get("Content-Type", "") == PROBLEM_JSON:
            return response
        replaced = problem(response.status_code)
        for header in _KEPT_HEADERS:
            if header in response:
                replaced[header] = response[header]
        return replaced


# What a view or decorator of django-csp sets on a response to change its policy.
_PER_RESPONSE_POLICY = (
    "_csp_config",
    "_csp_update",
    "_csp_replace",
    "_csp_config_ro",
    "_csp_update_ro",
    "_csp_replace_ro",
    "_csp_exempt",
    "_csp_exempt_ro",
)


class SettledPolicyCSPMiddleware(CSPMiddleware):
    """django-csp's middleware, with the policy of a plain response built once per process.

    An API answer asks for no nonce and carries no policy of its own, so its headers depend on
    the settings alone; django-csp builds them anew for every response (most of its cost).
    Those are remembered per settings; any response with a nonce or a per-view policy (the
    schema's documentation pages, say) goes through django-csp unchanged."""

    _settled: tuple[Any, Any, str, str] | None = None

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if getattr(request, "_csp_nonce", None) is not None or any(
            hasattr(response, name) for name in _PER_RESPONSE_POLICY
        ):
            return super().process_response(request, response)
        if response.status_code in (500, 404) and settings.DEBUG:
            return response
        policies = (
            getattr(settings, "CONTENT_SECURITY_POLICY", None),
            getattr(settings, "CONTENT_SECURITY_POLICY_REPORT_ONLY", None),
        )
        settled = self._settled
        if settled is None or settled[0] is not policies[0] or settled[1] is not policies[1]:
            settled = self._settled = (*policies, build_policy(), build_policy(report_only=True))
        for header, policy, text in (
            (HEADER, policies[0], settled[2]),
            (HEADER_REPORT_ONLY, policies[1], settled[3]),
        ):
            prefixes = tuple((policy or {}).get("EXCLUDE_URL_PREFIXES", None) or ())
            if text and header not in response and not request.path_info.startswith(prefixes):
                response[header] = text
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)  # type: ignore[attr-defined]
        return response
