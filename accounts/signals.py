"""Account events without a Django signal of their own (sign-in itself uses django.contrib.auth's
user_logged_in / user_login_failed). Sent by accounts.services; the audit trail listens."""

from django.dispatch import Signal

# kwargs: request, user
second_factor_enrolled = Signal()
second_factor_verified = Signal()
# kwargs: request, user, stage ("enrolment" or "verification")
second_factor_failed = Signal()
# kwargs: request, user (None for a name no account has), username, reason; a sign-in refused
# before the password was checked (throttled)
sign_in_refused = Signal()
