"""The practice manager's scheduling pages: appointment types (settings, caller phrases, EHR
codes, rules), the "what would the agent book?" console, providers and their rules, and the week
grid of working hours and blocks. Thin: reads from `scheduling.catalog_selectors`, writes through
`scheduling.catalog`.

Who: practice managers change things; clinicians may look (the same pages, read-only). Every
object is looked up within the request's practice first, so another practice's id is a 404
whatever the method.

The console and the PHI gate: the receptionist API's `/intents/resolve` is gated because a real
caller's words are PHI. Here a member of staff types test sentences to check the configuration,
often before go-live and before a BAA is executed; nothing typed is stored, logged or sent to the
EHR (POST, so it stays out of URLs and access logs), and the page asks for no real patient
details. So the console is not gated, like the rest of the configuration pages.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

from django.contrib import messages
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import has_any_role, roles_required
from accounts.http import request_practice
from accounts.models import Practice, Role
from core.formfields import bounded_day
from scheduling import catalog, catalog_selectors
from scheduling.catalog import CatalogError
from scheduling.models import (
    LOCAL_HOURS_MODES,
    AppointmentType,
    Block,
    BookingMode,
    CallerPhrase,
    Operatory,
    Provider,
    ProviderRule,
    WorkingHour,
)
from scheduling.web import forms

VIEWERS = (Role.PRACTICE_MANAGER, Role.CLINICIAN)
EDITORS = (Role.PRACTICE_MANAGER,)
PAGE_SIZE = 25
T = TypeVar("T")


def _practice(request: HttpRequest) -> Practice:
    return request_practice(request)


def _can_edit(request: HttpRequest) -> bool:
    return has_any_role(request, *EDITORS)


def _require_editor(request: HttpRequest) -> None:
    if not _can_edit(request):
        raise PermissionDenied("Only a practice manager changes the scheduling set-up.")


def _read_only(form: Any) -> None:
    for field in form.fields.values():
        field.disabled = True


def _save(form: Any, write: Any) -> Any:
    """Run a catalogue write; a refusal becomes an error next to its field. None if refused."""
    try:
        return write()
    except (CatalogError, ValidationError) as exc:
        forms.apply_errors(form, exc)
        return None


def _detail_or_404(read: Callable[[Practice, int], T], practice: Practice, pk: int) -> T:
    """A detail page's row, read by its selector; another practice's or a missing one is 404."""
    try:
        return read(practice, pk)
    except ObjectDoesNotExist as exc:
        raise Http404 from exc


def _settings_form(
    request: HttpRequest,
    make_form: Callable[[Any], Any],
    write: Callable[[dict[str, Any]], Any],
) -> tuple[Any, Any]:
    """A detail page's settings form and what its POST saved (None: nothing, show the form).
    Only an editor may post it, a refused write shows at its field, a saved one says so; for
    everyone else the form is read-only."""
    saved = None
    if request.method == "POST":
        _require_editor(request)
        form = make_form(request.POST)
        if form.is_valid():
            saved = _save(form, lambda: write(form.cleaned_data))
            if saved is not None:
                messages.success(request, f"Saved {saved.name}.")
    else:
        form = make_form(None)
    if not _can_edit(request):
        _read_only(form)
    return form, saved


def _page(request: HttpRequest, qs: Any) -> Any:
    return Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))


def _query_without_page(request: HttpRequest) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


def _new_form_page(
    request: HttpRequest,
    form: Any,
    *,
    manual: bool,
    write: Callable[[dict[str, Any]], Any],
    added: Callable[[Any], tuple[str, str]],
    what: str,
    back: str,
    back_label: str,
) -> HttpResponse:
    """The page that adds one catalogue row where the schedule is kept here (`manual`): a valid
    POST is written, a refusal shows at its field, a saved row says so and goes where
    `added(row)` says (message, URL); otherwise the form again (400 after a POST). `back` is
    the list page's URL name."""
    if request.method == "POST" and manual and form.is_valid():
        saved = _save(form, lambda: write(form.cleaned_data))
        if saved is not None:
            message, url = added(saved)
            messages.success(request, message)
            return redirect(url)
    return render(
        request,
        "scheduling/new_form.html",
        {
            "form": form,
            "manual": manual,
            "what": what,
            "back": reverse(back, kwargs={"practice_slug": _practice(request).slug}),
            "back_label": back_label,
        },
        status=400 if request.method == "POST" else 200,
    )


# --- appointment types -----------------------------------------------------------------------


@require_GET
@roles_required(*VIEWERS)
def type_list(request: HttpRequest, practice_slug: str) -> HttpResponse:
    practice = _practice(request)
    filters = forms.TypeFilterForm(request.GET or None)
    page = _page(request, catalog_selectors.appointment_types(practice, **filters.values()))
    return render(
        request,
        "scheduling/type_list.html",
        {
            "filters": filters,
            "page": page,
            "query": _query_without_page(request),
            "can_add": _can_edit(request) and catalog.schedule_is_manual(practice),
        },
    )


@require_http_methods(["GET", "POST"])
@roles_required(*EDITORS)
def type_new(request: HttpRequest, practice_slug: str) -> HttpResponse:
    """A type configured here, for a practice whose schedule is the portal's (an EHR-synced
    practice's types come from the EHR: the page says so and offers no form)."""
    practice = _practice(request)
    manual = catalog.schedule_is_manual(practice)
    form = forms.AppointmentTypeForm(
        practice,
        request.POST or None,
        initial={
            "minutes": 30,
            "new_patients": True,
            "existing_patients": True,
            "bookable": True,
            "booking_mode": BookingMode.BOOK,
            "lead_time_hours": 0,
            "horizon_days": 90,
        },
    )
    return _new_form_page(
        request,
        form,
        manual=manual,
        write=lambda data: catalog.create_appointment_type(practice, forms.type_settings(data)),
        added=lambda row: (
            f"Added {row.name}. Add the words callers use for it below.",
            reverse("scheduling_type", kwargs={"practice_slug": practice_slug, "pk": row.pk}),
        ),
        what="appointment type",
        back="scheduling_types",
        back_label="Appointment types",
    )


@require_http_methods(["GET", "POST"])
@roles_required(*VIEWERS)
def type_detail(request: HttpRequest, practice_slug: str, pk: int) -> HttpResponse:
    practice = _practice(request)
    appointment_type = _detail_or_404(catalog_selectors.appointment_type_detail, practice, pk)
    form, saved = _settings_form(
        request,
        lambda data: forms.AppointmentTypeForm(practice, data, instance=appointment_type),
        lambda data: catalog.update_appointment_type(
            practice, appointment_type, forms.type_settings(data)
        ),
    )
    if saved is not None:
        return redirect("scheduling_type", practice_slug=practice_slug, pk=pk)
    return render(
        request,
        "scheduling/type_detail.html",
        {
            "type": appointment_type,
            "form": form,
            "phrase_form": forms.PhraseForm(),
            "can_edit": _can_edit(request),
        },
    )


def _phrases_response(
    request: HttpRequest, appointment_type: AppointmentType, phrase_form: forms.PhraseForm
) -> HttpResponse:
    phrases = CallerPhrase.objects.for_practice(_practice(request)).filter(
        appointment_type=appointment_type
    )
    return render(
        request,
        "scheduling/_phrases.html",
        {
            "type": appointment_type,
            "phrases": phrases.order_by("text"),
            "phrase_form": phrase_form,
            "can_edit": True,
        },
    )


@require_POST
@roles_required(*EDITORS)
def phrase_add(request: HttpRequest, practice_slug: str, pk: int) -> HttpResponse:
    practice = _practice(request)
    appointment_type = get_object_or_404(AppointmentType.objects.for_practice(practice), pk=pk)
    form = forms.PhraseForm(request.POST)
    if form.is_valid():
        added = _save(
            form, lambda: catalog.add_phrase(practice, appointment_type, form.cleaned_data["text"])
        )
        if added is not None:
            form = forms.PhraseForm()
            if not request.htmx:  # type: ignore[attr-defined]
                messages.success(request, f"Added “{added.text}”.")
    if request.htmx:  # type: ignore[attr-defined]
        return _phrases_response(request, appointment_type, form)
    if form.errors:
        for error in form.errors.get("text", []):
            messages.error(request, str(error))
    return redirect("scheduling_type", practice_slug=practice_slug, pk=pk)


@require_POST
@roles_required(*EDITORS)
def phrase_delete(
    request: HttpRequest, practice_slug: str, pk: int, phrase_pk: int
) -> HttpResponse:
    practice = _practice(request)
    phrase = get_object_or_404(
        CallerPhrase.objects.for_practice(practice).select_related("appointment_type"),
        pk=phrase_pk,
        appointment_type_id=pk,
    )
    catalog.remove_phrase(practice, phrase)
    if request.htmx:  # type: ignore[attr-defined]
        return _phrases_response(request, phrase.appointment_type, forms.PhraseForm())
    messages.success(request, f"Removed “{phrase.text}”.")
    return redirect("scheduling_type", practice_slug=practice_slug, pk=pk)


# --- the console -----------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@roles_required(*VIEWERS)
def console(request: HttpRequest, practice_slug: str) -> HttpResponse:
    """Type what a caller says; see the type the agent would pick and the slots it would offer."""
    form = forms.ConsoleForm(request.POST or None)
    answers = None
    if request.method == "POST" and form.is_valid():
        answers = catalog_selectors.what_would_the_agent_book(
            _practice(request), form.cleaned_data["utterance"], form.cleaned_data["patient_status"]
        )
    context = {"form": form, "answers": answers, "tz": _practice(request).tz}
    if request.htmx and request.method == "POST":  # type: ignore[attr-defined]
        return render(request, "scheduling/_console_result.html", context)
    return render(request, "scheduling/console.html", context)


# --- providers and rules ---------------------------------------------------------------------


@require_GET
@roles_required(*VIEWERS)
def provider_list(request: HttpRequest, practice_slug: str) -> HttpResponse:
    name = request.GET.get("q", "").strip()[:100]
    page = _page(request, catalog_selectors.providers(_practice(request), name=name))
    return render(
        request,
        "scheduling/provider_list.html",
        {
            "page": page,
            "q": name,
            "query": _query_without_page(request),
            "can_add": _can_edit(request) and catalog.schedule_is_manual(_practice(request)),
        },
    )


@require_http_methods(["GET", "POST"])
@roles_required(*EDITORS)
def provider_new(request: HttpRequest, practice_slug: str) -> HttpResponse:
    practice = _practice(request)
    manual = catalog.schedule_is_manual(practice)
    form = forms.NewProviderForm(request.POST or None, initial={"accepts_new_patients": True})
    return _new_form_page(
        request,
        form,
        manual=manual,
        write=lambda data: catalog.create_provider(practice, **data),
        added=lambda row: (
            f"Added {row.name}. Give them working hours next.",
            reverse("scheduling_provider", kwargs={"practice_slug": practice_slug, "pk": row.pk}),
        ),
        what="provider",
        back="scheduling_providers",
        back_label="Providers",
    )


@require_http_methods(["GET", "POST"])
@roles_required(*VIEWERS)
def provider_detail(request: HttpRequest, practice_slug: str, pk: int) -> HttpResponse:
    practice = _practice(request)
    provider = _detail_or_404(catalog_selectors.provider_detail, practice, pk)
    initial = {
        "accepts_new_patients": provider.accepts_new_patients,
        "on_call_phone": provider.on_call_phone,
    }
    form, saved = _settings_form(
        request,
        lambda data: forms.ProviderForm(data, initial=initial),
        lambda data: catalog.update_provider(practice, provider, **data),
    )
    if saved is not None:
        return redirect("scheduling_provider", practice_slug=practice_slug, pk=pk)
    return render(
        request,
        "scheduling/provider_detail.html",
        {"provider": provider, "form": form, "can_edit": _can_edit(request)},
    )


def _rule(request: HttpRequest, provider_pk: int, rule_pk: int) -> ProviderRule:
    return get_object_or_404(
        ProviderRule.objects.for_practice(_practice(request)).select_related("provider"),
        pk=rule_pk,
        provider_id=provider_pk,
    )


@require_http_methods(["GET", "POST"])
@roles_required(*EDITORS)
def rule_edit(
    request: HttpRequest, practice_slug: str, pk: int, rule_pk: int | None = None
) -> HttpResponse:
    practice = _practice(request)
    provider = get_object_or_404(Provider.objects.for_practice(practice), pk=pk)
    rule = _rule(request, pk, rule_pk) if rule_pk is not None else None
    initial: dict[str, Any] = {}
    if rule is not None:
        initial = {
            "appointment_types": [t.pk for t in rule.appointment_types.all()],
            "patient_status": rule.patient_status,
            "days": rule.days,
            "begin": rule.begin,
            "end": rule.end,
        }
    form = forms.ProviderRuleForm(practice, request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        saved = _save(
            form, lambda: catalog.save_rule(practice, provider, rule=rule, **form.cleaned_data)
        )
        if saved is not None:
            messages.success(request, f"Saved the rule for {provider.name}.")
            return redirect("scheduling_provider", practice_slug=practice_slug, pk=pk)
    return render(
        request,
        "scheduling/rule_form.html",
        {"provider": provider, "rule": rule, "form": form},
    )


@require_http_methods(["GET", "POST"])
@roles_required(*EDITORS)
def rule_delete(request: HttpRequest, practice_slug: str, pk: int, rule_pk: int) -> HttpResponse:
    rule = _rule(request, pk, rule_pk)
    if request.method == "POST":
        catalog.delete_rule(_practice(request), rule)
        messages.success(request, f"Deleted a rule of {rule.provider.name}.")
        return redirect("scheduling_provider", practice_slug=practice_slug, pk=pk)
    return render(
        request,
        "scheduling/confirm_delete.html",
        {
            "what": f"this rule of {rule.provider.name} ({', '.join(rule.days)}, "
            f"{rule.begin:%H:%M} to {rule.end:%H:%M})",
            "cancel": reverse(
                "scheduling_provider", kwargs={"practice_slug": practice_slug, "pk": pk}
            ),
        },
    )


# --- the week grid ---------------------------------------------------------------------------


# --- rooms (operatories) ---------------------------------------------------------------------


@require_GET
@roles_required(*VIEWERS)
def room_list(request: HttpRequest, practice_slug: str) -> HttpResponse:
    practice = _practice(request)
    return render(
        request,
        "scheduling/room_list.html",
        {
            "page": _page(request, catalog_selectors.rooms(practice)),
            "query": _query_without_page(request),
            "can_add": _can_edit(request)
            and catalog_selectors.locations(practice)
            .filter(working_hours_mode__in=LOCAL_HOURS_MODES)
            .exists(),
            "can_edit": _can_edit(request),
        },
    )


@require_http_methods(["GET", "POST"])
@roles_required(*EDITORS)
def room_new(request: HttpRequest, practice_slug: str) -> HttpResponse:
    practice = _practice(request)
    form = forms.NewRoomForm(practice, request.POST or None)
    manual = _field_has_choices(form, "location")
    return _new_form_page(
        request,
        form,
        manual=manual,
        write=lambda data: catalog.create_operatory(
            practice,
            location=data["location"],
            name=data["name"],
            capabilities=data["capabilities"],
        ),
        added=lambda row: (
            f"Added {row.name} at {row.location.name}.",
            reverse("scheduling_rooms", kwargs={"practice_slug": practice_slug}),
        ),
        what="room",
        back="scheduling_rooms",
        back_label="Rooms",
    )


def _field_has_choices(form: Any, name: str) -> bool:
    return bool(form.fields[name].queryset.exists())


@require_http_methods(["GET", "POST"])
@roles_required(*VIEWERS)
def room_detail(request: HttpRequest, practice_slug: str, pk: int) -> HttpResponse:
    practice = _practice(request)
    room = _detail_or_404(catalog_selectors.room_detail, practice, pk)
    form, saved = _settings_form(
        request,
        lambda data: forms.RoomForm(data, room=room),
        lambda data: catalog.update_operatory(
            practice,
            room,
            name=data["name"],
            active=data["active"],
            capabilities=data["capabilities"],
        ),
    )
    if saved is not None:
        return redirect("scheduling_room", practice_slug=practice_slug, pk=pk)
    return render(
        request,
        "scheduling/room_detail.html",
        {"room": room, "form": form, "can_edit": _can_edit(request)},
    )


def _week(request: HttpRequest) -> date:
    day = bounded_day(request.GET.get("week", ""))  # 9999-12-31 plus a week overflowed
    if day is None:
        day = timezone.localtime(timezone.now(), _practice(request).tz).date()
    return catalog_selectors.week_start_of(day)


@require_GET
@roles_required(*VIEWERS)
def schedule(request: HttpRequest, practice_slug: str) -> HttpResponse:
    """One provider's or one room's week: `?show=provider-<id>` or `?show=operatory-<id>`."""
    practice = _practice(request)
    providers = list(Provider.objects.for_practice(practice).order_by("name"))
    rooms = list(catalog_selectors.operatories(practice))
    show = request.GET.get("show", "")
    kind, _, raw_id = show.partition("-")
    subject: Provider | Operatory | None = None
    if raw_id.isdigit():
        pool: list[Any] = providers if kind == "provider" else rooms if kind == "operatory" else []
        subject = next((x for x in pool if x.pk == int(raw_id)), None)
        if subject is None:
            raise Http404
    elif providers:
        subject, kind = providers[0], "provider"
    elif rooms:
        subject, kind = rooms[0], "operatory"
    week = _week(request)
    grid = None
    if subject is not None:
        grid = catalog_selectors.week_grid(
            practice,
            week,
            provider=subject if kind == "provider" else None,  # type: ignore[arg-type]
            operatory=subject if kind == "operatory" else None,  # type: ignore[arg-type]
        )
    locations = list(catalog_selectors.locations(practice))
    return render(
        request,
        "scheduling/schedule.html",
        {
            "providers": providers,
            "rooms": rooms,
            "choices": [
                ("Providers", [(f"provider-{p.pk}", p.name) for p in providers]),
                ("Rooms", [(f"operatory-{o.pk}", f"{o.name} ({o.location.name})") for o in rooms]),
            ],
            "subject": subject,
            "show": f"{kind}-{subject.pk}" if subject else "",
            "grid": grid,
            "synced_locations": [loc for loc in locations if loc.working_hours_mode == "synced"],
            "can_edit": _can_edit(request),
            "today": timezone.localtime(timezone.now(), practice.tz).date(),
        },
    )


def _back_to_schedule(request: HttpRequest, practice_slug: str) -> str:
    url = reverse("scheduling_schedule", kwargs={"practice_slug": practice_slug})
    query = {k: request.GET[k] for k in ("show", "week") if request.GET.get(k)}
    if query:
        from urllib.parse import urlencode

        url += "?" + urlencode(query)
    return url


@require_http_methods(["GET", "POST"])
@roles_required(*EDITORS)
def hour_edit(request: HttpRequest, practice_slug: str, pk: int | None = None) -> HttpResponse:
    practice = _practice(request)
    hour = None
    initial: dict[str, Any] = {}
    if pk is not None:
        hour = get_object_or_404(
            WorkingHour.objects.for_practice(practice).select_related("operatory__location"),
            pk=pk,
        )
        initial = {
            "provider": hour.provider_id,
            "operatory": hour.operatory_id,
            "days": hour.days,
            "specific_date": hour.specific_date,
            "begin": hour.begin,
            "end": hour.end,
            "appointment_types": [t.pk for t in hour.appointment_types.all()],
        }
    else:
        show = request.GET.get("show", "")
        kind, _, raw_id = show.partition("-")
        if raw_id.isdigit() and kind in ("provider", "operatory"):
            initial[kind] = int(raw_id)
    editable = hour is None or catalog.hour_is_editable(hour, hour.operatory.location)
    form = forms.WorkingHourForm(practice, request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        saved = _save(form, lambda: catalog.save_working_hour(practice, hour=hour, **data))
        if saved is not None:
            messages.success(request, "Saved the working hours.")
            for clash in catalog_selectors.provider_room_clashes(practice, saved):
                messages.warning(
                    request,
                    f"{saved.provider.name} is also in {clash.other.operatory.name} "
                    f"({clash.other.operatory.location.name}) on {', '.join(clash.days)}, "
                    f"{clash.begin:%H:%M} to {clash.end:%H:%M}: one person cannot be in two rooms "
                    "at once, and the agent would offer both. Change one of the two entries.",
                )
            return redirect(_back_to_schedule(request, practice_slug))
    if not editable:
        _read_only(form)
    return render(
        request,
        "scheduling/hour_form.html",
        {
            "hour": hour,
            "form": form,
            "editable": editable,
            "back": _back_to_schedule(request, practice_slug),
        },
    )


@require_http_methods(["GET", "POST"])
@roles_required(*EDITORS)
def hour_delete(request: HttpRequest, practice_slug: str, pk: int) -> HttpResponse:
    practice = _practice(request)
    hour = get_object_or_404(
        WorkingHour.objects.for_practice(practice).select_related(
            "provider", "operatory__location"
        ),
        pk=pk,
    )
    back = _back_to_schedule(request, practice_slug)
    if request.method == "POST":
        try:
            catalog.delete_working_hour(practice, hour)
        except CatalogError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "Deleted the working hours.")
        return redirect(back)
    return render(
        request,
        "scheduling/confirm_delete.html",
        {
            "what": f"the working hours of {hour.provider.name} in {hour.operatory.name} "
            f"({', '.join(hour.days) or hour.specific_date}, "
            f"{hour.begin:%H:%M} to {hour.end:%H:%M})",
            "cancel": back,
        },
    )


@require_http_methods(["GET", "POST"])
@roles_required(*EDITORS)
def block_edit(request: HttpRequest, practice_slug: str, pk: int | None = None) -> HttpResponse:
    practice = _practice(request)
    block = None
    initial: dict[str, Any] = {}
    if pk is not None:
        block = get_object_or_404(
            Block.objects.for_practice(practice).select_related("location"), pk=pk
        )
        initial = {
            "location": block.location_id,
            "provider": block.provider_id,
            "operatory": block.operatory_id,
            "start": forms.BlockForm.local_initial(block.start, block.location),
            "end": forms.BlockForm.local_initial(block.end, block.location),
            "reason": block.reason,
        }
    else:
        kind, _, raw_id = request.GET.get("show", "").partition("-")
        if raw_id.isdigit() and kind in ("provider", "operatory"):
            initial[kind] = int(raw_id)
    form = forms.BlockForm(practice, request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        saved = _save(form, lambda: catalog.save_block(practice, block=block, **data))
        if saved is not None:
            messages.success(request, "Saved the block.")
            return redirect(_back_to_schedule(request, practice_slug))
    return render(
        request,
        "scheduling/block_form.html",
        {"the_block": block, "form": form, "back": _back_to_schedule(request, practice_slug)},
    )


@require_http_methods(["GET", "POST"])
@roles_required(*EDITORS)
def block_delete(request: HttpRequest, practice_slug: str, pk: int) -> HttpResponse:
    practice = _practice(request)
    block = get_object_or_404(
        Block.objects.for_practice(practice).select_related("location"), pk=pk
    )
    back = _back_to_schedule(request, practice_slug)
    if request.method == "POST":
        catalog.delete_block(practice, block)
        messages.success(request, "Deleted the block.")
        return redirect(back)
    local = forms.BlockForm.local_initial
    return render(
        request,
        "scheduling/confirm_delete.html",
        {
            "what": f"the block “{block.reason or 'Blocked'}” "
            f"({local(block.start, block.location):%Y-%m-%d %H:%M} to "
            f"{local(block.end, block.location):%Y-%m-%d %H:%M})",
            "cancel": back,
        },
    )
