"""The PHI gate for the receptionist API (DRF)."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, status

from compliance.gate import BAA_REQUIRED_CODE, BAARequired, _request_practice, require_phi_allowed


class BAARequiredAPIException(exceptions.APIException):
    """403 problem+json `baa_required` (the API's exception handler uses `default_code` as the
    problem type)."""

    status_code = status.HTTP_403_FORBIDDEN
    default_code = BAA_REQUIRED_CODE
    default_detail = (
        "No executed business associate agreement is in force for this practice, so no PHI can "
        "be processed for it."
    )
    title = "Business associate agreement required"


class PHIGatedMixin:
    """Put first in an APIView's bases: after authentication, permissions and the view's own
    `initial()` (which finds the practice), refuse unless the practice has a BAA in force.

    The practice is `self.get_phi_practice(request)` if defined, else `self.practice`, else
    `request.practice`. Without one the view refuses (fail closed).
    """

    phi_gated = True

    def initial(self, request: Any, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        try:
            require_phi_allowed(_request_practice(request, self))
        except BAARequired as exc:
            raise BAARequiredAPIException() from exc
