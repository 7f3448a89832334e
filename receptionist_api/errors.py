"""Errors as `application/problem+json` (RFC 9457), the shape the contract fixes.

`{"type", "title", "status", "detail"}`, plus `"errors": {field: [message]}` for 400. `type` is a
short stable code clients branch on (`validation_error`, `slot_unavailable`, `hold_expired`, ...).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, UnreadablePostError
from django.http.multipartparser import MultiPartParserError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler

log = logging.getLogger("receptionist_api")

PROBLEM_JSON = "application/problem+json"

# DRF's default codes that clients see under another name.
_TYPES = {
    "invalid": "validation_error",
    "parse_error": "validation_error",
    "throttled": "rate_limited",
    "permission_denied": "forbidden",
}


class Problem(exceptions.APIException):
    """An API error with its own problem type; subclasses set status, code and title."""

    title = ""


class SlotUnavailable(Problem):
    status_code = status.HTTP_409_CONFLICT
    default_code = "slot_unavailable"
    default_detail = "That slot is not available (taken, held by another caller, or not offered)."
    title = "Slot unavailable"


class HoldExpired(Problem):
    status_code = status.HTTP_409_CONFLICT
    default_code = "hold_expired"
    default_detail = "The hold has expired; hold the slot again."
    title = "Hold expired"


class HoldBooked(Problem):
    status_code = status.HTTP_409_CONFLICT
    default_code = "hold_booked"
    default_detail = "The hold has been booked; cancel the booking instead."
    title = "Hold booked"


class IdempotencyConflict(Problem):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "idempotency_conflict"
    default_detail = "This Idempotency-Key was used with a different request body."
    title = "Idempotency-Key reused"


class PayloadTooLarge(Problem):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"
    default_detail = "The request body is larger than this API accepts."
    title = "Request too large"


class TranscriptPurgedProblem(Problem):
    status_code = status.HTTP_409_CONFLICT
    default_code = "transcript_purged"
    default_detail = "This call's transcript was purged under the practice's retention policy."
    title = "Transcript purged"


class InsufficientScope(exceptions.PermissionDenied):
    default_code = "insufficient_scope"
    default_detail = "The access token lacks the scope this call needs."


def problem_response(
    status_code: int,
    type_: str,
    detail: str,
    *,
    title: str = "",
    errors: Mapping[str, list[str]] | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> Response:
    body: dict[str, Any] = {
        "type": type_,
        "title": title or HTTPStatus(status_code).phrase,
        "status": status_code,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = dict(errors)
    body.update(extra)
    return Response(body, status=status_code, headers=headers, content_type=PROBLEM_JSON)


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail -> {"field.sub[0]": [messages]}."""
    if isinstance(detail, Mapping):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            out.update(_flatten(value, path))
        return out
    if isinstance(detail, list) and any(isinstance(v, Mapping | list) for v in detail):
        out = {}
        for i, value in enumerate(detail):
            out.update(_flatten(value, f"{prefix}[{i}]"))
        return out
    messages = detail if isinstance(detail, list) else [detail]
    return {prefix or "non_field_errors": [str(m) for m in messages]}


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF EXCEPTION_HANDLER: every error the API answers, as problem+json."""
    if isinstance(exc, ObjectDoesNotExist | Http404):
        # Another practice's ids are simply not there (row-level security): 404, never 403.
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, SuspiciousOperation | MultiPartParserError | UnreadablePostError):
        # Django's own refusals of a body it cannot read (too many fields, a broken multipart).
        exc = exceptions.ParseError(str(exc) or "The request body cannot be read.")

    response = exception_handler(exc, context)  # headers (WWW-Authenticate, Retry-After), rollback
    if response is None or not isinstance(exc, exceptions.APIException):
        log.exception("unhandled error in the receptionist API", exc_info=exc)
        return problem_response(500, "server_error", "Something went wrong on our side.")

    type_ = _TYPES.get(str(exc.default_code), str(exc.default_code))
    headers = {k: v for k, v in response.items() if k in ("WWW-Authenticate", "Retry-After")}
    title = getattr(exc, "title", "")
    if isinstance(exc, exceptions.ValidationError | exceptions.ParseError):
        errors = (
            {"body": [str(exc.detail)]}
            if isinstance(exc, exceptions.ParseError)
            else _flatten(exc.detail)
        )
        return problem_response(
            400,
            "validation_error",
            "The request is invalid; see errors.",
            title="Invalid request",
            errors=errors,
            headers=headers,
        )
    return problem_response(
        response.status_code, type_, str(exc.detail), title=title, headers=headers
    )


# Answers any operation can give outside its own list: the middleware and DRF produce them for
# malformed requests (400), ids that are not there (404), other methods (405), bodies that are
# too big (413) or of another media type (415), and a rate limit (429).
COMMON_PROBLEMS = (400, 404, 405, 406, 413, 415, 429)


def add_common_problems(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: every operation documents the common problems."""
    ref = {"$ref": "#/components/schemas/Problem"}
    for methods in result.get("paths", {}).values():
        for operation in methods.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for code in COMMON_PROBLEMS:
                operation["responses"].setdefault(
                    str(code),
                    {
                        "content": {PROBLEM_JSON: {"schema": ref}},
                        "description": HTTPStatus(code).phrase,
                    },
                )
    return result
