"""Sign-in, the second factor, sign-out. Thin: the rules live in accounts.services."""

from __future__ import annotations

import math

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import services
from accounts.forms import SignInForm, TokenForm


def _next_url(request: HttpRequest, default: str = "home") -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, {request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse(default)


IDLE_REASON = "idle"


def _signed_out_because(request: HttpRequest) -> str:
    """Why the sign-in page is shown to someone who was signed in, when we know."""
    if request.GET.get("reason") == IDLE_REASON:
        minutes = max(1, round(settings.IDLE_TIMEOUT_SECONDS / 60))
        return (
            f"You were signed out after {minutes} minute{'s' if minutes != 1 else ''} without "
            "activity, so that an unattended screen does not show patient information. "
            "Sign in again to carry on."
        )
    return ""


@never_cache
@require_GET
def keepalive(request: HttpRequest) -> HttpResponse:
    """ "Stay signed in": any signed-in request restarts the idle clock; this one does only that."""
    return HttpResponse(status=204)


@never_cache
@require_http_methods(["GET", "POST"])
def sign_in(request: HttpRequest) -> HttpResponse:
    form = SignInForm(request.POST or None)
    why = _signed_out_because(request)
    if request.method == "POST" and form.is_valid():
        result = services.sign_in(
            request, form.cleaned_data["username"], form.cleaned_data["password"]
        )
        if result.user is not None:
            login(request, result.user)
            step = (
                "two_factor_verify"
                if services.has_confirmed_device(result.user)
                else "two_factor_setup"
            )
            return redirect(f"{reverse(step)}?{urlencode({'next': _next_url(request)})}")
        form.add_error(None, result.error)
        if result.retry_after > 0:
            response = render(
                request,
                "portal/login.html",
                {"form": form, "next": _next_url(request), "signed_out_because": why},
                status=429,
            )
            response["Retry-After"] = str(math.ceil(result.retry_after))
            return response
    return render(
        request,
        "portal/login.html",
        {"form": form, "next": _next_url(request), "signed_out_because": why},
    )


@never_cache
@require_http_methods(["GET", "POST"])
def two_factor_setup(request: HttpRequest) -> HttpResponse:
    user = request.user
    if services.has_confirmed_device(user):  # type: ignore[arg-type]
        return redirect("two_factor_verify")
    device = services.pending_totp_device(user)  # type: ignore[arg-type]
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        codes = services.confirm_totp(request, device, form.cleaned_data["token"])
        if codes is not None:
            return render(
                request, "portal/backup_codes.html", {"codes": codes, "next": _next_url(request)}
            )
        form.add_error(
            "token",
            "That code did not match. Check the time on your phone and enter the newest code.",
        )
    return render(
        request,
        "portal/two_factor_setup.html",
        {
            "form": form,
            "qr_svg": services.totp_qr_svg(device),
            "secret": services.totp_secret_base32(device),
            "next": _next_url(request),
        },
    )


@never_cache
@require_http_methods(["GET", "POST"])
def two_factor_verify(request: HttpRequest) -> HttpResponse:
    if not services.has_confirmed_device(request.user):  # type: ignore[arg-type]
        return redirect("two_factor_setup")
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if services.verify_second_factor(request, request.user, form.cleaned_data["token"]):  # type: ignore[arg-type]
            return redirect(_next_url(request))
        form.add_error(
            "token",
            "That code did not match, or too many tries: wait a moment and use the newest code.",
        )
    return render(
        request, "portal/two_factor_verify.html", {"form": form, "next": _next_url(request)}
    )


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    logout(request)
    if request.POST.get("reason") == IDLE_REASON:  # the page's idle clock ran out
        return redirect(f"{reverse('login')}?reason={IDLE_REASON}")
    messages.info(request, "You are signed out.")
    return redirect("login")
