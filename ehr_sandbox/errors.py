"""The one exception type the sandbox's handlers raise to answer with an error envelope."""

from __future__ import annotations


class ApiError(Exception):
    """An error answer: HTTP status plus messages for the envelope's ``error`` list."""

    def __init__(self, status: int, *messages: str, description: str | None = None) -> None:
        super().__init__(messages[0] if messages else str(status))
        self.status = status
        self.messages = list(messages) or [description or "Error"]
        self.description = description or self.messages[0]


def bad_request(*messages: str) -> ApiError:
    return ApiError(400, *messages, description="Bad Request")


def not_found(what: str, ident: object) -> ApiError:
    return ApiError(404, f"{what} {ident} not found", description="Not Found")
