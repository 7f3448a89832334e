"""Writes for accounts and tenancy: throttled sign-in, TOTP enrolment, backup codes."""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from typing import Any

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.contrib.auth import authenticate
from django.http import HttpRequest
from django_otp import devices_for_user
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import signals, throttle
from accounts.models import User
from core.client_ip import client_ip


@dataclass(frozen=True)
class SignIn:
    user: User | None
    error: str = ""
    retry_after: float = 0.0  # > 0: refused by the throttle, before the password was checked


THROTTLED_MESSAGE = "Too many sign-in attempts. Wait {wait} and try again."
INVALID_MESSAGE = "That email or password is not right."


def _wait_text(seconds: float) -> str:
    if seconds <= 90:
        whole = max(1, math.ceil(seconds))
        return f"{whole} second{'s' if whole != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minutes"


def sign_in(request: HttpRequest, username: str, password: str) -> SignIn:
    """Check a password, unless this name from this address (or this address over all names)
    has failed too often lately: then the answer is to wait, with the password unchecked, so a
    correct guess while throttled teaches nothing. Known and unknown names are counted and
    answered alike, and the owner's own address is not slowed by a stranger's failures."""
    ip = client_ip(request)
    admission = throttle.admit(username, ip)
    account = User.objects.filter(username__iexact=username).first()
    if admission.retry_after > 0:
        signals.sign_in_refused.send(
            User, request=request, user=account, username=username, reason="throttled"
        )
        return SignIn(
            None,
            THROTTLED_MESSAGE.format(wait=_wait_text(admission.retry_after)),
            admission.retry_after,
        )
    user = authenticate(
        request, username=account.username if account else username, password=password
    )
    if user is None:
        return SignIn(None, INVALID_MESSAGE)
    throttle.succeeded(username, ip)
    return SignIn(user)


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
