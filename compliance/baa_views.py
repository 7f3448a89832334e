"""The compliance officer's BAA pages: versions and history, drafts, the signed PDF, sending,
execution, termination and amendment. Thin over compliance.services; an executed agreement is
never edited here (the model and a database trigger refuse it too): "Amend" starts a new draft.
Practice managers may look; only compliance officers change anything."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import has_any_role, roles_required
from accounts.http import request_practice
from accounts.models import Role
from compliance import baa_selectors, services
from compliance.baa_forms import DraftForm, ExecuteForm, TerminateForm, UploadForm
from compliance.gate import agreement_in_force
from compliance.models import BAAStatus, BusinessAssociateAgreement
from compliance.support_policy import SupportForbidden, forbidden_in_support_session

READERS = (Role.COMPLIANCE_OFFICER, Role.PRACTICE_MANAGER)
WRITERS = (Role.COMPLIANCE_OFFICER,)


def _agreement(
    request: HttpRequest, pk: int, *, with_pdf: bool = False
) -> BusinessAssociateAgreement:
    try:
        return baa_selectors.agreement(request_practice(request), pk, with_pdf=with_pdf)
    except BusinessAssociateAgreement.DoesNotExist as exc:
        raise Http404("No such agreement") from exc


def _today(request: HttpRequest) -> date:
    return timezone.localdate(timezone=request_practice(request).tz)


def _form_page(request: HttpRequest, form: Any, **context: Any) -> HttpResponse:
    """The agreement form page (baa_form.html) for one step: an invalid POST answers 400."""
    return render(
        request,
        "compliance/baa_form.html",
        {"form": form, **context},
        status=400 if request.method == "POST" else 200,
    )


def _detail(
    request: HttpRequest,
    agreement: BusinessAssociateAgreement,
    status: int = 200,
    problem: str = "",
    **forms: object,
) -> HttpResponse:
    can_change = has_any_role(request, *WRITERS)
    context = {
        "a": agreement,
        "history": baa_selectors.history(agreement),
        "in_force": agreement_in_force(request_practice(request)),
        "can_change": can_change,
        "problem": problem,
        "upload_form": forms.get("upload_form") or UploadForm(),
    }
    return render(request, "compliance/baa_detail.html", context, status=status)


@require_GET
@roles_required(*READERS)
def baa_list(request: HttpRequest, practice_slug: str) -> HttpResponse:
    practice = request_practice(request)
    return render(
        request,
        "compliance/baa_list.html",
        {
            "versions": list(baa_selectors.versions(practice)),
            "in_force": agreement_in_force(practice),
            "can_change": has_any_role(request, *WRITERS),
        },
    )


@require_http_methods(["GET", "POST"])
@roles_required(*WRITERS)
@forbidden_in_support_session(SupportForbidden.BAA)
def baa_new(request: HttpRequest, practice_slug: str) -> HttpResponse:
    form = DraftForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        terms = {k: v.strip() for k, v in form.cleaned_data.items()}
        agreement = services.create_draft(request_practice(request), **terms)
        messages.success(request, f"Draft version {agreement.version} created.")
        return redirect("compliance_baa_detail", practice_slug=practice_slug, pk=agreement.pk)
    return _form_page(request, form, heading="New agreement (draft)", submit="Create draft")


@require_GET
@roles_required(*READERS)
def baa_detail(request: HttpRequest, practice_slug: str, pk: int) -> HttpResponse:
    return _detail(request, _agreement(request, pk))


@require_GET
@roles_required(*READERS)
def baa_pdf(request: HttpRequest, practice_slug: str, pk: int) -> HttpResponse:
    agreement = _agreement(request, pk, with_pdf=True)
    if agreement.signed_pdf is None:
        raise Http404("No signed PDF for this agreement")
    response = HttpResponse(bytes(agreement.signed_pdf), content_type="application/pdf")
    name = f"baa-{request_practice(request).slug}-v{agreement.version}.pdf"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["X-Content-SHA256"] = agreement.signed_pdf_sha256
    return response


@require_POST
@roles_required(*WRITERS)
@forbidden_in_support_session(SupportForbidden.BAA)
def baa_upload(request: HttpRequest, practice_slug: str, pk: int) -> HttpResponse:
    agreement = _agreement(request, pk)
    form = UploadForm(request.POST, request.FILES)
    if agreement.is_signed:
        problem = f"{agreement} is signed: its PDF cannot change. Amend it with a new version."
        return _detail(request, agreement, status=400, problem=problem)
    if not form.is_valid():
        return _detail(request, agreement, status=400, upload_form=form)
    services.attach_signed_pdf(agreement, form.cleaned_data["signed_pdf"])
    messages.success(request, f"Signed PDF stored (SHA-256 {agreement.signed_pdf_sha256[:16]}…).")
    return redirect("compliance_baa_detail", practice_slug=practice_slug, pk=pk)


@require_POST
@roles_required(*WRITERS)
@forbidden_in_support_session(SupportForbidden.BAA)
def baa_send(request: HttpRequest, practice_slug: str, pk: int) -> HttpResponse:
    agreement = _agreement(request, pk)
    try:
        services.mark_sent(agreement)
    except services.BAAError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Version {agreement.version} marked as sent for signature.")
    return redirect("compliance_baa_detail", practice_slug=practice_slug, pk=pk)


@require_http_methods(["GET", "POST"])
@roles_required(*WRITERS)
@forbidden_in_support_session(SupportForbidden.BAA)
def baa_execute(request: HttpRequest, practice_slug: str, pk: int) -> HttpResponse:
    agreement = _agreement(request, pk, with_pdf=True)
    if agreement.is_signed:
        messages.error(request, f"{agreement} is already signed; amend it to change its terms.")
        return redirect("compliance_baa_detail", practice_slug=practice_slug, pk=pk)
    initial = {
        f: getattr(agreement, f)
        for f in (
            "practice_signer_name",
            "practice_signer_title",
            "practice_signer_email",
            "hello_signer_name",
            "hello_signer_title",
        )
    }
    form = ExecuteForm(
        request.POST if request.method == "POST" else None,
        request.FILES if request.method == "POST" else None,
        initial=initial,
        has_pdf=agreement.signed_pdf is not None,
        today=_today(request),
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        pdf = data.pop("signed_pdf") or bytes(agreement.signed_pdf or b"")
        try:
            services.execute(agreement, signed_pdf=pdf, **data)
        except services.BAAError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Version {agreement.version} is executed.")
            return redirect("compliance_baa_detail", practice_slug=practice_slug, pk=pk)
    return _form_page(
        request,
        form,
        a=agreement,
        multipart=True,
        heading=f"Record the signature of version {agreement.version}",
        intro="Once executed, the agreement's terms and PDF can no longer change.",
        submit="Execute",
        confirm="Execute this agreement? Its terms and PDF will be frozen.",
    )


@require_http_methods(["GET", "POST"])
@roles_required(*WRITERS)
@forbidden_in_support_session(SupportForbidden.BAA)
def baa_terminate(request: HttpRequest, practice_slug: str, pk: int) -> HttpResponse:
    agreement = _agreement(request, pk)
    if agreement.status != BAAStatus.EXECUTED:
        messages.error(request, "Only an executed agreement can be terminated.")
        return redirect("compliance_baa_detail", practice_slug=practice_slug, pk=pk)
    form = TerminateForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        services.terminate(agreement, reason=form.cleaned_data["reason"])
        messages.success(request, f"Version {agreement.version} terminated.")
        return redirect("compliance_baa_detail", practice_slug=practice_slug, pk=pk)
    return _form_page(
        request,
        form,
        a=agreement,
        heading=f"Terminate version {agreement.version}",
        intro="From now on no PHI is processed for this practice unless another "
        "agreement is in force: bookings by the voice agent stop.",
        submit="Terminate",
        danger=True,
    )


@require_POST
@roles_required(*WRITERS)
@forbidden_in_support_session(SupportForbidden.BAA)
def baa_amend(request: HttpRequest, practice_slug: str, pk: int) -> HttpResponse:
    agreement = _agreement(request, pk)
    try:
        draft = services.amend(agreement)
    except services.BAAError as exc:
        messages.error(request, str(exc))
        return redirect("compliance_baa_detail", practice_slug=practice_slug, pk=pk)
    messages.success(
        request, f"Draft version {draft.version} started; version {agreement.version} is unchanged."
    )
    return redirect("compliance_baa_detail", practice_slug=practice_slug, pk=draft.pk)
