"""One WSGI entry point, two middleware stacks: the browser's and the voice agent's.

The voice agent's routes (`API_PREFIXES`) authenticate every request with a bearer token and
need none of the browser's machinery: sessions, messages, CSRF, the second factor, the idle
timeout, the portal's practice resolution, support sessions, CSP for HTML. They get
`settings.API_MIDDLEWARE` instead of `settings.MIDDLEWARE`: less work on the path the caller is
waiting on, and no browser state (a session cookie, a CSRF token) on a machine client's answers.
Both stacks share the URL configuration, so a path answers the same way through either; the
split is by path prefix alone, decided before any middleware runs.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, MiddlewareNotUsed
from django.core.handlers.base import BaseHandler
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import HttpRequest, HttpResponseBase
from django.utils.module_loading import import_string

API_PREFIXES = ("/api/", "/mcp/")

# Django's CONN_HEALTH_CHECKS costs every request a round trip (a `SELECT 1` before its first
# statement). A connection that served this thread's previous API request without an error
# moments ago is taken as healthy: under load, when the voice agent's requests queue, that is
# one round trip in four or five saved; a connection idle longer is checked as before.
RECENTLY_USED_SECONDS = 1.0
_USED_AT = "_api_used_cleanly_at"


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIXES)


class _ApiStack(BaseHandler):
    """The machine clients' middleware chain, built from `settings.API_MIDDLEWARE` the way
    BaseHandler builds the browser's from `settings.MIDDLEWARE` (which is all it reads). WSGI
    only: every entry there is a synchronous middleware."""

    def load_middleware(self, is_async: bool = False) -> None:
        if is_async:
            raise ImproperlyConfigured("The API middleware stack is served over WSGI only")
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        handler = convert_exception_to_response(self._get_response)
        for path in reversed(settings.API_MIDDLEWARE):
            try:
                middleware = import_string(path)(handler)
            except MiddlewareNotUsed:
                continue
            if middleware is None:
                raise ImproperlyConfigured(f"Middleware factory {path} returned None.")
            if hasattr(middleware, "process_view"):
                self._view_middleware.insert(0, middleware.process_view)
            if hasattr(middleware, "process_template_response"):
                self._template_response_middleware.append(middleware.process_template_response)
            if hasattr(middleware, "process_exception"):
                self._exception_middleware.append(middleware.process_exception)
            handler = convert_exception_to_response(middleware)
        self._middleware_chain = handler


class SplitStackMixin:
    """Routes a request to the API stack or the browser stack by its path."""

    _api_stack: _ApiStack | None = None

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async)  # type: ignore[misc]
        if not settings.API_SEPARATE_STACK:
            return
        api = _ApiStack()
        api.load_middleware(is_async)
        self._api_stack = api

    def get_response(self, request: HttpRequest) -> HttpResponseBase:
        if self._api_stack is not None and is_api_path(request.path_info):
            db = connections[DEFAULT_DB_ALIAS]
            used_at = getattr(db, _USED_AT, None)
            if (
                db.connection is not None
                and used_at is not None
                and time.monotonic() - used_at < RECENTLY_USED_SECONDS
            ):
                db.health_check_done = True  # type: ignore[attr-defined]
            response = self._api_stack.get_response(request)
            clean = db.connection is not None and not db.errors_occurred
            setattr(db, _USED_AT, time.monotonic() if clean else None)
            return response
        return super().get_response(request)  # type: ignore[misc]


class PortalWSGIHandler(SplitStackMixin, WSGIHandler):
    pass
