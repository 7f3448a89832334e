"""The failures a caller of the Nextech adapter acts on, as subclasses of our EHR errors so
the task policies that already handle those (transient: retry; auth: a human) apply unchanged.
"""

from __future__ import annotations

from ehr.errors import RESET_REQUIRED as RESET_MESSAGE
from ehr.errors import EHRCredentialsNeedReset, EHRSlotTaken


class NextechCredentialsNeedReset(EHRCredentialsNeedReset):
    """The practice's service user must change its password in Azure AD before Nextech lets it
    in (first sign-in, or an expired password). Nothing we retry fixes it: someone at the
    practice signs in once, sets a new password and gives it to us."""

    advice = (
        "the Nextech service user must set a new password (sign in once with it at "
        "portal.azure.com), then enter the new one here"
    )

    def __init__(self, message: str = RESET_MESSAGE, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class NextechSlotTaken(EHRSlotTaken):
    """Nextech answered 409 with an AppointmentResponse: the time is no longer free.
    ``reason`` is the AppointmentResponse's comment (Nextech's words, no patient fields)."""

    def __init__(self, reason: str, **kwargs: object) -> None:
        super().__init__(f"slot taken: {reason}", **kwargs)  # type: ignore[arg-type]
        self.reason = reason
