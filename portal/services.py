"""Writes for accounts and tenancy: sign-in with lockout, TOTP enrolment, backup codes."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.contrib.auth import authenticate
from django.db import transaction
from django.db.models import F
from django.http import HttpRequest
from django.utils import timezone
from django_otp import devices_for_user
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal import signals
from portal.models import User


@dataclass(frozen=True)
class SignIn:
    user: User | None
    error: str = ""


LOCKED_MESSAGE = "Too many failed sign-in attempts. Try again in {minutes} minutes."
INVALID_MESSAGE = "That email or password is not right."


def sign_in(request: HttpRequest, username: str, password: str) -> SignIn:
    """Check a password, counting failures per account so guessing locks the account for a while.

    A locked account is refused before the password is even checked, so a correct guess during
    the lockout teaches an attacker nothing.
    """
    now = timezone.now()
    account = User.objects.filter(username__iexact=username).first()
    if account and account.locked_until and account.locked_until > now:
        signals.sign_in_refused.send(User, request=request, user=account, reason="locked")
        minutes = max(1, int((account.locked_until - now).total_seconds() // 60) + 1)
        return SignIn(None, LOCKED_MESSAGE.format(minutes=minutes))
    user = authenticate(
        request, username=account.username if account else username, password=password
    )
    if user is None:
        if account:
            _record_failure(account.pk)
            account.refresh_from_db(fields=["locked_until"])
            if account.locked_until and account.locked_until > now:
                return SignIn(
                    None, LOCKED_MESSAGE.format(minutes=settings.LOGIN_LOCKOUT_SECONDS // 60)
                )
        return SignIn(None, INVALID_MESSAGE)
    User.objects.filter(pk=user.pk).update(failed_login_count=0, locked_until=None)
    return SignIn(user)


def _record_failure(user_id: int) -> None:
    with transaction.atomic():
        User.objects.filter(pk=user_id).update(failed_login_count=F("failed_login_count") + 1)
        account = User.objects.select_for_update().get(pk=user_id)
        if account.failed_login_count >= settings.LOGIN_LOCKOUT_THRESHOLD:
            account.locked_until = timezone.now() + timedelta(
                seconds=settings.LOGIN_LOCKOUT_SECONDS
            )
            account.failed_login_count = 0
            account.save(update_fields=["locked_until", "failed_login_count"])


def has_confirmed_device(user: User) -> bool:
    return any(True for _ in devices_for_user(user, confirmed=True))


def pending_totp_device(user: User) -> TOTPDevice:
    """The unconfirmed authenticator being enrolled; one per user until it is confirmed."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    return device or TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)


def totp_secret_base32(device: TOTPDevice) -> str:
    return base64.b32encode(device.bin_key).decode().rstrip("=")


def totp_qr_svg(device: TOTPDevice) -> str:
    image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    buf = io.BytesIO()
    image.save(buf)
    return buf.getvalue().decode()


def confirm_totp(request: HttpRequest, device: TOTPDevice, token: str) -> list[str] | None:
    """Confirm enrolment with a first code; returns fresh single-use backup codes, or None."""
    if not device.verify_token(token.strip().replace(" ", "")):
        signals.second_factor_failed.send(
            User, request=request, user=device.user, stage="enrolment"
        )
        return None
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    _complete_second_factor(request, device)
    signals.second_factor_enrolled.send(User, request=request, user=device.user)
    return regenerate_backup_codes(device.user)


def _complete_second_factor(request: HttpRequest, device: Any) -> None:
    """Mark the session verified under a new session key: the key a page saw before the second
    factor (fixed by an attacker, or read from a half-signed-in browser) must not become a fully
    signed-in session, as Django's login() does for the password step."""
    otp_login(request, device)
    request.session.cycle_key()


def regenerate_backup_codes(user: User) -> list[str]:
    static, _ = StaticDevice.objects.get_or_create(
        user=user, name="Backup codes", defaults={"confirmed": True}
    )
    static.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(settings.OTP_STATIC_BACKUP_CODES)]
    StaticToken.objects.bulk_create([StaticToken(device=static, token=c) for c in codes])
    return codes


def verify_second_factor(request: HttpRequest, user: User, token: str) -> bool:
    """Accept a current TOTP code or an unused backup code (which is then spent)."""
    token = token.strip().replace(" ", "").lower()
    for device in devices_for_user(user, confirmed=True):
        if device.verify_is_allowed()[0] and device.verify_token(token):
            _complete_second_factor(request, device)
            signals.second_factor_verified.send(User, request=request, user=user)
            return True
    signals.second_factor_failed.send(User, request=request, user=user, stage="verification")
    return False
