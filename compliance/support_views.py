"""Vendor support: start and end a support session (impersonation). Thin over
compliance.impersonation; the tenant pages themselves are the practice's own."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import roles_required
from accounts.models import Practice, Role
from compliance import impersonation, support_selectors
from compliance.models import IMPERSONATION_MAX_MINUTES
from compliance.support_policy import SupportForbidden, forbidden_in_support_session


class StartForm(forms.Form):
    practice = forms.ModelChoiceField(
        queryset=Practice.objects.order_by("name"), to_field_name="slug"
    )
    reason = forms.CharField(widget=forms.Textarea, max_length=2000)
    ticket = forms.CharField(max_length=100, label="Ticket reference")
    minutes = forms.IntegerField(min_value=1, max_value=IMPERSONATION_MAX_MINUTES, initial=30)


@require_http_methods(["GET", "POST"])
def start(request: HttpRequest) -> HttpResponse:
    problem = impersonation.may_impersonate(request.user)  # type: ignore[arg-type]
    if problem:
        return render(request, "compliance/support_start.html", {"problem": problem}, status=403)
    form = StartForm(request.POST or None, initial={"practice": request.GET.get("practice", "")})
    if request.method == "POST" and form.is_valid():
        practice = form.cleaned_data["practice"]
        impersonation.start(
            request,
            practice,
            reason=form.cleaned_data["reason"],
            ticket=form.cleaned_data["ticket"],
            minutes=form.cleaned_data["minutes"],
        )
        return redirect("dashboard", practice_slug=practice.slug)
    return render(request, "compliance/support_start.html", {"form": form})


@require_POST
def end(request: HttpRequest) -> HttpResponse:
    impersonation.end(request)
    messages.info(request, "Support session ended.")
    return redirect("support_directory")


@require_POST
def end_session(request: HttpRequest, pk: int) -> HttpResponse:
    """End one of one's own open sessions, whichever browser started it."""
    if impersonation.end_own(request, pk):
        messages.info(request, f"Support session {pk} ended.")
    else:
        messages.error(request, f"Support session {pk} is not one of your open sessions.")
    return redirect("support_directory")


@require_GET
def directory(request: HttpRequest) -> HttpResponse:
    """Vendor support's practice directory: search, BAA standing, "Start support access"."""
    problem = impersonation.may_impersonate(request.user)  # type: ignore[arg-type]
    if problem:
        return render(
            request, "compliance/support_directory.html", {"problem": problem}, status=403
        )
    query = request.GET.get("q", "").strip()[:100]
    page, rows = support_selectors.directory_page(query, request.GET.get("page"))
    return render(
        request,
        "compliance/support_directory.html",
        {
            "q": query,
            "page": page,
            "rows": rows,
            "query": f"q={query}" if query else "",
            "open_sessions": impersonation.open_sessions(request.user),  # type: ignore[arg-type]
        },
    )


class WriteAccessForm(forms.Form):
    allow_write = forms.BooleanField(required=False, label="Allow Hello support to make changes")


@require_http_methods(["GET", "POST"])
@roles_required(Role.PRACTICE_MANAGER, Role.COMPLIANCE_OFFICER)
@forbidden_in_support_session(SupportForbidden.SECURITY_SETTINGS, methods=("POST",))
def support_access(request: HttpRequest, practice_slug: str) -> HttpResponse:
    """The practice's support access history, and (managers) whether support may write."""
    practice = request.practice  # type: ignore[attr-defined]
    if request.method == "POST":
        if Role.PRACTICE_MANAGER not in request.roles:  # type: ignore[attr-defined]
            return HttpResponse(status=403)
        form = WriteAccessForm(request.POST)
        if form.is_valid():
            impersonation.set_write_access(
                practice,
                form.cleaned_data["allow_write"],
                request.user,  # type: ignore[arg-type]
            )
        return redirect("compliance_support_access", practice_slug=practice.slug)
    from compliance.models import SupportAccess
    from compliance.scoping import practice_scope

    with practice_scope(practice.pk):
        access = SupportAccess.objects.filter(practice=practice).first()
    return render(
        request,
        "compliance/support_access.html",
        {
            "sessions": impersonation.history(practice),
            "form": WriteAccessForm(initial={"allow_write": bool(access and access.allow_write)}),
            "can_change": Role.PRACTICE_MANAGER in request.roles,  # type: ignore[attr-defined]
        },
    )
