"""The failures a caller of the Nextech adapter acts on, as subclasses of our EHR errors so
the task policies that already handle those (transient: retry; auth: a human) apply unchanged.
"""

from __future__ import annotations

from ehr.errors import EHRAuthError, EHRError

RESET_MESSAGE = "credentials need a reset"


class NextechCredentialsNeedReset(EHRAuthError):
    """The practice's service user must change its password in Azure AD before Nextech lets it
    in (first sign-in, or an expired password). Nothing we retry fixes it: someone at the
    practice signs in once, sets a new password and gives it to us."""

    kind = "credentials_reset"

    def __init__(self, message: str = RESET_MESSAGE, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class NextechSlotTaken(EHRError):
    """Nextech answered 409 with an AppointmentResponse: the time is no longer free.
    ``reason`` is the AppointmentResponse's comment (Nextech's words, no patient fields)."""

    kind = "slot_taken"

    def __init__(self, reason: str, **kwargs: object) -> None:
        super().__init__(f"slot taken: {reason}", **kwargs)  # type: ignore[arg-type]
        self.reason = reason
