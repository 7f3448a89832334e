"""Portal pages: escalation protocols (list, write, approve, history, test console) and the
on-call rota (calendar, gaps, add, delete). Clinicians write and approve; practice managers may
look. Thin: selectors read, services write."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from accounts.access import has_any_role, roles_required
from accounts.http import request_practice
from accounts.models import Practice, Role
from calls.escalation import selectors, services
from calls.escalation.forms import (
    ApprovalPolicyForm,
    ApproveForm,
    ConsoleForm,
    GroupForm,
    ProtocolForm,
    ShiftForm,
)
from calls.escalation.screening import ProtocolExplanation, explain, screen
from calls.models import (
    DEFAULT_GROUP_KEY,
    EscalationProtocol,
    OnCallShift,
    ProtocolVersion,
    VersionStatus,
)
from compliance.support_policy import SupportForbidden, forbidden_in_support_session

VIEW = (Role.CLINICIAN, Role.PRACTICE_MANAGER)
WRITE = (Role.CLINICIAN,)
POLICY = (Role.CLINICIAN, Role.PRACTICE_MANAGER)


def _practice(request: HttpRequest) -> Practice:
    return request_practice(request)


def _can_write(request: HttpRequest) -> bool:
    return has_any_role(request, Role.CLINICIAN)


def _protocol(request: HttpRequest, pk: int) -> EscalationProtocol:
    return get_object_or_404(EscalationProtocol.objects.for_practice(_practice(request)), pk=pk)


# --- protocols -------------------------------------------------------------------------------


@require_GET
@roles_required(*VIEW)
def protocol_list(request: HttpRequest, practice_slug: str) -> HttpResponse:
    practice = _practice(request)
    return render(
        request,
        "calls/escalation/protocol_list.html",
        {
            "rows": selectors.protocols_overview(practice),
            "can_write": _can_write(request),
            **_policy_context(practice),
        },
    )


def _policy_context(practice: Practice, form: ApprovalPolicyForm | None = None) -> dict:
    policy = services.approval_policy(practice)
    clinicians = services.clinician_count(practice)
    return {
        "policy": policy,
        "clinicians": clinicians,
        "self_approval": policy.allow_self_approval and clinicians <= 1,
        "policy_form": form
        or ApprovalPolicyForm(initial={"allow_self_approval": policy.allow_self_approval}),
    }


@require_http_methods(["GET", "POST"])
@roles_required(*POLICY)
@forbidden_in_support_session(SupportForbidden.CLINICAL_APPROVAL, methods=("POST",))
def approval_policy(request: HttpRequest, practice_slug: str) -> HttpResponse:
    """Whether the practice's single clinician may approve their own protocols."""
    practice = _practice(request)
    form = ApprovalPolicyForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        allow = form.cleaned_data["allow_self_approval"]
        try:
            services.set_self_approval(practice, allow, request.user)  # type: ignore[arg-type]
        except ValidationError as exc:
            for message in exc.message_dict.get("allow_self_approval", []):
                form.add_error("allow_self_approval", message)
        else:
            messages.success(
                request,
                "Self-approval allowed: our clinician may approve their own protocols."
                if allow
                else "Self-approval off: another clinician approves each protocol.",
            )
            return redirect("escalation_approval_policy", practice_slug=practice_slug)
    return render(
        request,
        "calls/escalation/approval_policy.html",
        _policy_context(practice, form if request.method == "POST" else None),
    )


@require_http_methods(["GET", "POST"])
@roles_required(*WRITE)
def protocol_new(request: HttpRequest, practice_slug: str) -> HttpResponse:
    practice = _practice(request)
    form = ProtocolForm(practice, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            version = services.create_protocol(practice, form.content(), request.user)  # type: ignore[arg-type]
        except ValidationError as exc:
            _errors_to_form(form, exc)
        else:
            messages.success(request, f"Draft saved: {version.name}. A clinician approves it next.")
            return redirect(
                "escalation_protocol", practice_slug=practice_slug, pk=version.protocol_id
            )
    return render(request, "calls/escalation/protocol_form.html", {"form": form, "protocol": None})


@require_GET
@roles_required(*VIEW)
def protocol_detail(request: HttpRequest, practice_slug: str, pk: int) -> HttpResponse:
    protocol = _protocol(request, pk)
    versions = list(selectors.versions_of(protocol))
    return render(
        request,
        "calls/escalation/protocol_detail.html",
        {
            "protocol": protocol,
            "versions": versions,
            "live": next((v for v in versions if v.status == VersionStatus.LIVE), None),
            "draft": next((v for v in versions if v.status == VersionStatus.DRAFT), None),
            "can_write": _can_write(request),
        },
    )


@require_http_methods(["GET", "POST"])
@roles_required(*WRITE)
def protocol_edit(request: HttpRequest, practice_slug: str, pk: int) -> HttpResponse:
    """Editing never changes an approved version: it saves the protocol's draft."""
    practice = _practice(request)
    protocol = _protocol(request, pk)
    base = (
        protocol.versions.filter(status=VersionStatus.DRAFT).first()
        or protocol.versions.filter(status=VersionStatus.LIVE).first()
        or protocol.versions.order_by("-number").first()
    )
    initial = ProtocolForm.initial_from(base) if base else None
    form = ProtocolForm(practice, request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            draft = services.save_draft(protocol, form.content(), request.user)  # type: ignore[arg-type]
        except ValidationError as exc:
            _errors_to_form(form, exc)
        else:
            messages.success(
                request,
                f"Draft version {draft.number} saved. Callers still get the live version until "
                "a clinician approves the draft.",
            )
            return redirect("escalation_protocol", practice_slug=practice_slug, pk=protocol.pk)
    return render(
        request, "calls/escalation/protocol_form.html", {"form": form, "protocol": protocol}
    )


@require_http_methods(["GET", "POST"])
@roles_required(*WRITE)
@forbidden_in_support_session(SupportForbidden.CLINICAL_APPROVAL)
def protocol_approve(
    request: HttpRequest, practice_slug: str, pk: int, version_pk: int
) -> HttpResponse:
    """Confirm, then make the draft live (audited)."""
    protocol = _protocol(request, pk)
    version = get_object_or_404(
        ProtocolVersion.objects.filter(protocol=protocol).prefetch_related("appointment_types"),
        pk=version_pk,
    )
    live = protocol.versions.filter(status=VersionStatus.LIVE).first()
    form = ApproveForm(request.POST or None)
    if version.status != VersionStatus.DRAFT:
        messages.error(request, f"Version {version.number} is not a draft.")
        return redirect("escalation_protocol", practice_slug=practice_slug, pk=protocol.pk)
    refusal = services.approval_refusal(version, request.user)  # type: ignore[arg-type]
    if refusal and request.method == "POST":
        messages.error(request, refusal)
        return redirect("escalation_protocol", practice_slug=practice_slug, pk=protocol.pk)
    if request.method == "POST" and form.is_valid():
        try:
            services.approve_version(version, request.user, note=form.cleaned_data["note"])  # type: ignore[arg-type]
        except services.ApprovalError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Version {version.number} approved: it is live now.")
        return redirect("escalation_protocol", practice_slug=practice_slug, pk=protocol.pk)
    return render(
        request,
        "calls/escalation/protocol_approve.html",
        {
            "protocol": protocol,
            "version": version,
            "live": live,
            "form": form,
            "refusal": refusal,
        },
    )


@require_http_methods(["GET", "POST"])
@roles_required(*WRITE)
@forbidden_in_support_session(SupportForbidden.CLINICAL_APPROVAL)
def protocol_withdraw(request: HttpRequest, practice_slug: str, pk: int) -> HttpResponse:
    protocol = _protocol(request, pk)
    if request.method == "POST":
        if services.withdraw_protocol(protocol, request.user):  # type: ignore[arg-type]
            messages.success(request, "Protocol withdrawn: screening no longer applies it.")
        return redirect("escalation_protocol", practice_slug=practice_slug, pk=protocol.pk)
    return render(
        request,
        "calls/escalation/confirm.html",
        {
            "title": "Withdraw this protocol?",
            "question": "Screening stops applying it at once. Its history is kept; approving a "
            "new version brings it back.",
            "button": "Withdraw",
            "cancel": f"/p/{practice_slug}/protocols/{protocol.pk}/",
        },
    )


@require_http_methods(["GET", "POST"])
@roles_required(*VIEW)
def protocol_console(request: HttpRequest, practice_slug: str) -> HttpResponse:
    """Type what a caller might say, at a time of one's choosing (the rota of that moment);
    see what screening decides. Nothing typed is stored."""
    practice = _practice(request)
    initial = {"drafts": request.GET.get("drafts") == "1"}
    decision = None
    explanation: list[ProtocolExplanation] = []
    with timezone.override(practice.tz):
        form = ConsoleForm(practice, request.POST or None, initial=initial)
        valid = request.method == "POST" and form.is_valid()
    at = None
    if valid:
        data = form.cleaned_data
        kind = data.get("appointment_type")
        at = data.get("at")
        # The decision and why it was made, from the same words and context.
        call = (practice, data["text"], kind.pk if kind else None, data.get("procedure_date"), at)
        decision = screen(*call, drafts=data.get("drafts", False))
        explanation = explain(*call, drafts=data.get("drafts", False))
    context = {
        "form": form,
        "decision": decision,
        "explanation": explanation,
        "posted": request.method == "POST",
        "at": at,
    }
    template = (
        "calls/escalation/_decision.html"
        if getattr(request, "htmx", False) and request.method == "POST"
        else "calls/escalation/console.html"
    )
    with timezone.override(practice.tz):
        return render(request, template, context)


def _errors_to_form(form: ProtocolForm | ShiftForm, exc: ValidationError) -> None:
    for field, messages_ in exc.message_dict.items():
        for message in messages_:
            form.add_error(field if field in form.fields else None, message)


# --- the on-call rota ------------------------------------------------------------------------


def _month(request: HttpRequest, practice: Practice) -> date:
    raw = request.GET.get("month", "")
    try:
        year, month = (int(x) for x in raw.split("-"))
        return date(year, month, 1)
    except ValueError:
        return selectors.today(practice).replace(day=1)


@require_http_methods(["GET", "POST"])
@roles_required(*VIEW)
def oncall(request: HttpRequest, practice_slug: str) -> HttpResponse:
    practice = _practice(request)
    form = None
    group_form = None
    if _can_write(request):
        adding_group = "group_name" in request.POST
        group_form = GroupForm(request.POST if adding_group else None)
        if adding_group and group_form.is_valid():
            group = services.add_group(practice, group_form.cleaned_data["group_name"])
            messages.success(request, f"{group.name} added to the rota.")
            return redirect(f"/p/{practice_slug}/on-call/?group={group.key}")
        with timezone.override(practice.tz):
            form = ShiftForm(practice, None if adding_group else (request.POST or None))
            if request.method == "POST" and not adding_group and form.is_valid():
                data = form.cleaned_data
                try:
                    services.add_shift(
                        practice,
                        data["provider"],
                        data["start"],
                        data["end"],
                        request.user,  # type: ignore[arg-type]
                        data["note"],
                        group=data.get("group"),
                    )
                except ValidationError as exc:
                    _errors_to_form(form, exc)
                else:
                    messages.success(request, f"{data['provider'].name} is on call then.")
                    shown = timezone.localtime(data["start"], practice.tz).strftime("%Y-%m")
                    chosen = data.get("group")
                    which = (
                        f"group={chosen.key}&" if chosen and chosen.key != DEFAULT_GROUP_KEY else ""
                    )
                    return redirect(f"/p/{practice_slug}/on-call/?{which}month={shown}")
    elif request.method == "POST":
        return HttpResponse(status=403)
    month = _month(request, practice)
    groups = list(selectors.on_call_groups(practice))
    group_shown = next((g for g in groups if g.key == request.GET.get("group")), None)
    group_shown = group_shown or next((g for g in groups if g.key == DEFAULT_GROUP_KEY), None)
    group_shown = group_shown or (groups[0] if groups else None)
    weeks = selectors.calendar_weeks(practice, month, group_shown.pk if group_shown else None)
    tz = practice.tz
    month_start = datetime.combine(month, time.min, tz)
    month_end = datetime.combine((month + timedelta(days=32)).replace(day=1), time.min, tz)
    with timezone.override(tz):
        shifts = list(selectors.shifts_between(practice, month_start, month_end, every_group=True))
        response = render(
            request,
            "calls/escalation/oncall.html",
            {
                "form": form,
                "weeks": weeks,
                "month": month,
                "previous_month": (month - timedelta(days=1)).strftime("%Y-%m"),
                "next_month": (month + timedelta(days=32)).replace(day=1).strftime("%Y-%m"),
                "shifts": shifts,
                "gaps": selectors.on_call_gaps(
                    practice, timezone.now(), 14, group_shown.pk if group_shown else None
                ),
                "on_call_now": selectors.on_call_at(
                    practice, None, group_shown.pk if group_shown else None
                ),
                "lines": selectors.rota_lines(practice, timezone.now(), 14),
                "groups": groups,
                "shown_group": group_shown,
                "group_form": group_form,
                "today": selectors.today(practice),
                "can_write": form is not None,
            },
        )
    return response


@require_http_methods(["GET", "POST"])
@roles_required(*WRITE)
def oncall_delete(request: HttpRequest, practice_slug: str, pk: int) -> HttpResponse:
    practice = _practice(request)
    shift = get_object_or_404(
        OnCallShift.objects.for_practice(practice).select_related("provider"), pk=pk
    )
    month = timezone.localtime(shift.start, practice.tz).strftime("%Y-%m")
    if request.method == "POST":
        services.delete_shift(shift)
        messages.success(request, "On-call shift deleted.")
        return redirect(f"/p/{practice_slug}/on-call/?month={month}")
    with timezone.override(practice.tz):
        return render(
            request,
            "calls/escalation/confirm.html",
            {
                "title": "Delete this on-call shift?",
                "question": f"{shift.provider.name}, "
                f"{timezone.localtime(shift.start):%a %d %b %H:%M} to "
                f"{timezone.localtime(shift.end):%a %d %b %H:%M}. Nobody covers that time "
                "unless another shift does.",
                "button": "Delete",
                "cancel": f"/p/{practice_slug}/on-call/?month={month}",
            },
        )
