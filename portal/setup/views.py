"""Set-up pages for practice managers (compliance officers may read the go-live checklist).

Thin: forms validate, `portal.setup.services` and `onboarding.services` write, `portal.golive`
judges. Object ids come from the URL and are looked up among the practice's own rows (another
practice's id is a 404). Secrets are rendered once in the response to the POST that made them,
never stored or redirected through the session, and those responses are not cached.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import has_any_role, roles_required
from accounts.http import request_practice
from accounts.models import Practice, Role
from compliance.support_policy import SupportForbidden, forbidden_in_support_session
from onboarding import services as onboarding
from portal import golive
from portal.setup import services
from portal.setup.forms import (
    ApiClientForm,
    ConfigUploadForm,
    LayTermsForm,
    ScenarioForm,
    ScenarioPasteForm,
    SuggestedPhraseForm,
    lay_terms_text,
)
from scheduling.catalog import CatalogError
from scheduling.models import ApiClient, ConfigImport, TestScenario

MANAGER = Role.PRACTICE_MANAGER


def _practice(request: HttpRequest) -> Practice:
    return request_practice(request)


def _scenarios(request: HttpRequest) -> list[TestScenario]:
    return list(
        TestScenario.objects.for_practice(_practice(request))
        .select_related("expected_type", "last_got_type")
        .order_by("pk")
    )


# --- go-live checklist and test scenarios -----------------------------------------------------


def _golive_page(
    request: HttpRequest,
    form: ScenarioForm | None = None,
    status: int = 200,
    paste_form: ScenarioPasteForm | None = None,
    terms_form: LayTermsForm | None = None,
) -> HttpResponse:
    practice = _practice(request)
    checks = golive.checklist(practice)
    can_edit = has_any_role(request, MANAGER)
    scenarios = _scenarios(request)
    return render(
        request,
        "portal/setup/golive.html",
        {
            "checks": checks,
            "ready": golive.ready(checks),
            "scenarios": scenarios,
            "report": golive.scenario_report(practice, scenarios),
            "form": form or (ScenarioForm(practice=practice) if can_edit else None),
            "paste_form": paste_form
            or (ScenarioPasteForm(practice=practice) if can_edit else None),
            "terms_form": terms_form
            or LayTermsForm(initial={"lay_terms": lay_terms_text(practice.lay_terms)}),
            "can_edit": can_edit,
        },
        status=status,
    )


def _to_golive(practice_slug: str, section: str) -> HttpResponse:
    """Back to the go-live page, at the section the form was in."""
    return redirect(reverse("golive", kwargs={"practice_slug": practice_slug}) + f"#{section}")


@require_GET
@roles_required(MANAGER, Role.COMPLIANCE_OFFICER)
def golive_page(request: HttpRequest, practice_slug: str) -> HttpResponse:
    return _golive_page(request)


@require_POST
@roles_required(MANAGER)
def scenario_add(request: HttpRequest, practice_slug: str) -> HttpResponse:
    form = ScenarioForm(request.POST, practice=_practice(request))
    if not form.is_valid():
        return _golive_page(request, form, status=400)
    services.save_scenario(_practice(request), form.save(commit=False))
    messages.success(request, "Scenario added. Run all to see whether it passes.")
    return _to_golive(practice_slug, "scenarios")


@require_POST
@roles_required(MANAGER)
def scenarios_paste(request: HttpRequest, practice_slug: str) -> HttpResponse:
    """Many sentences for one expected type at once; duplicates are skipped and said so."""
    form = ScenarioPasteForm(request.POST, practice=_practice(request))
    if not form.is_valid():
        return _golive_page(request, paste_form=form, status=400)
    result = services.add_scenarios(
        _practice(request),
        form.cleaned_data["sentences"],
        form.cleaned_data["patient_status"],
        form.cleaned_data["expected_type"],
    )
    skipped = f" {result.duplicates} already tested, skipped." if result.duplicates else ""
    messages.success(request, f"{result.added} scenario(s) added.{skipped} Run all to see them.")
    return _to_golive(practice_slug, "scenarios")


@require_POST
@roles_required(MANAGER)
def lay_terms_save(request: HttpRequest, practice_slug: str) -> HttpResponse:
    """The practice's own lay terms, as text (the configuration file's `lay_terms`)."""
    form = LayTermsForm(request.POST)
    if not form.is_valid():
        return _golive_page(request, terms_form=form, status=400)
    services.set_lay_terms(_practice(request), form.cleaned_data["lay_terms"])
    messages.success(request, "Caller words saved. Run all to see the effect.")
    return _to_golive(practice_slug, "caller-words")


@require_POST
@roles_required(MANAGER)
def suggestion_add(request: HttpRequest, practice_slug: str) -> HttpResponse:
    """Adopt a phrase a missed scenario suggested as one of its type's caller phrases."""
    form = SuggestedPhraseForm(request.POST, practice=_practice(request))
    if not form.is_valid():
        messages.error(request, "That suggestion is not for one of this practice's types.")
        return _to_golive(practice_slug, "report")
    appointment_type = form.cleaned_data["appointment_type"]
    try:
        services.adopt_phrase(_practice(request), appointment_type, form.cleaned_data["text"])
    except CatalogError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"“{form.cleaned_data['text']}” is now a phrase of {appointment_type.name}. "
            "Run all to see the effect.",
        )
    return _to_golive(practice_slug, "report")


@require_http_methods(["GET", "POST"])
@roles_required(MANAGER)
def scenario_edit(request: HttpRequest, practice_slug: str, pk: int) -> HttpResponse:
    scenario = get_object_or_404(TestScenario.objects.for_practice(_practice(request)), pk=pk)
    form = ScenarioForm(request.POST or None, instance=scenario, practice=_practice(request))
    if request.method == "POST" and form.is_valid():
        services.save_scenario(_practice(request), form.save(commit=False))
        messages.success(request, "Scenario saved. Run all to see whether it passes.")
        return redirect("golive", practice_slug=practice_slug)
    return render(
        request,
        "portal/setup/scenario_edit.html",
        {"form": form, "scenario": scenario},
        status=400 if request.method == "POST" else 200,
    )


@require_http_methods(["GET", "POST"])
@roles_required(MANAGER)
def scenario_delete(request: HttpRequest, practice_slug: str, pk: int) -> HttpResponse:
    scenario = get_object_or_404(TestScenario.objects.for_practice(_practice(request)), pk=pk)
    if request.method == "POST":
        services.delete_scenario(scenario)
        messages.success(request, f"Scenario “{scenario.sentence}” deleted.")
        return redirect("golive", practice_slug=practice_slug)
    return render(request, "portal/setup/scenario_delete.html", {"scenario": scenario})


@require_POST
@roles_required(MANAGER)
def scenarios_run(request: HttpRequest, practice_slug: str) -> HttpResponse:
    """Run every scenario now. htmx gets the refreshed table (and the checklist, out of band);
    without JavaScript the page is reloaded with a message."""
    summary = services.run_scenarios(_practice(request))
    if request.headers.get("HX-Request"):
        checks = golive.checklist(_practice(request))
        scenarios = _scenarios(request)
        return render(
            request,
            "portal/setup/_scenarios_run.html",
            {
                "scenarios": scenarios,
                "report": golive.scenario_report(_practice(request), scenarios),
                "checks": checks,
                "ready": golive.ready(checks),
                "summary": summary,
                "can_edit": True,
            },
        )
    if summary.total:
        messages.info(request, f"{summary.passed} of {summary.total} scenario(s) passed.")
    return redirect("golive", practice_slug=practice_slug)


# --- API clients ------------------------------------------------------------------------------


def _clients_page(
    request: HttpRequest, form: ApiClientForm | None = None, status: int = 200
) -> HttpResponse:
    clients = list(
        ApiClient.objects.for_practice(_practice(request))
        .select_related("application", "created_by")
        .order_by("revoked_at", "name", "pk")
    )
    return render(
        request,
        "portal/setup/api_clients.html",
        {"clients": clients, "form": form or ApiClientForm()},
        status=status,
    )


def _client(request: HttpRequest, pk: int) -> ApiClient:
    return get_object_or_404(
        ApiClient.objects.for_practice(_practice(request)).select_related("application"), pk=pk
    )


@require_GET
@roles_required(MANAGER)
def api_clients(request: HttpRequest, practice_slug: str) -> HttpResponse:
    return _clients_page(request)


@never_cache
@require_POST
@roles_required(MANAGER)
@forbidden_in_support_session(SupportForbidden.CREDENTIALS)
def api_client_create(request: HttpRequest, practice_slug: str) -> HttpResponse:
    form = ApiClientForm(request.POST)
    if not form.is_valid():
        return _clients_page(request, form, status=400)
    client, secret = services.issue_api_client(
        _practice(request),
        form.cleaned_data["name"],
        form.cleaned_data["scopes"],
        created_by=request.user,  # type: ignore[arg-type]
    )
    return render(
        request,
        "portal/setup/api_client_secret.html",
        {"client": client, "secret": secret, "created": True},
    )


@never_cache
@require_http_methods(["GET", "POST"])
@roles_required(MANAGER)
@forbidden_in_support_session(SupportForbidden.CREDENTIALS)
def api_client_rotate(request: HttpRequest, practice_slug: str, pk: int) -> HttpResponse:
    client = _client(request, pk)
    if not client.is_active:
        messages.error(request, f"“{client.name}” is revoked; create a new client instead.")
        return redirect("setup_api_clients", practice_slug=practice_slug)
    if request.method == "POST":
        secret = services.rotate_api_client(client)
        return render(
            request,
            "portal/setup/api_client_secret.html",
            {"client": client, "secret": secret, "created": False},
        )
    return render(
        request, "portal/setup/api_client_confirm.html", {"client": client, "action": "rotate"}
    )


@require_http_methods(["GET", "POST"])
@roles_required(MANAGER)
@forbidden_in_support_session(SupportForbidden.CREDENTIALS)
def api_client_revoke(request: HttpRequest, practice_slug: str, pk: int) -> HttpResponse:
    client = _client(request, pk)
    if request.method == "POST":
        services.revoke_api_client(client)
        messages.success(request, f"“{client.name}” is revoked; its tokens no longer work.")
        return redirect("setup_api_clients", practice_slug=practice_slug)
    if not client.is_active:
        messages.info(request, f"“{client.name}” is already revoked.")
        return redirect("setup_api_clients", practice_slug=practice_slug)
    return render(
        request, "portal/setup/api_client_confirm.html", {"client": client, "action": "revoke"}
    )


# --- configuration ----------------------------------------------------------------------------


@require_GET
@roles_required(MANAGER)
def config_page(request: HttpRequest, practice_slug: str) -> HttpResponse:
    return render(request, "portal/setup/config.html", {"form": ConfigUploadForm()})


@never_cache
@require_GET
@roles_required(MANAGER)
@forbidden_in_support_session(SupportForbidden.EXPORT)
def config_download(request: HttpRequest, practice_slug: str) -> HttpResponse:
    practice = _practice(request)
    text = onboarding.dump_text(onboarding.export_config(practice), "json")
    onboarding.record_export(practice)
    stamp = timezone.localtime(timezone.now(), practice.tz).strftime("%Y%m%d-%H%M")
    response = HttpResponse(text, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{practice.slug}-{stamp}.json"'
    return response


@require_POST
@roles_required(MANAGER)
@forbidden_in_support_session(SupportForbidden.CONFIG_IMPORT)
def config_upload(request: HttpRequest, practice_slug: str) -> HttpResponse:
    form = ConfigUploadForm(request.POST, request.FILES)
    context: dict[str, object] = {"form": form}
    if form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            text = upload.read().decode("utf-8")
        except UnicodeDecodeError:
            form.add_error("file", "The file is not UTF-8 text.")
        else:
            preview = onboarding.preview_config(
                _practice(request),
                text,
                upload.name,
                may_import_baa=has_any_role(request, Role.COMPLIANCE_OFFICER),
                actor=request.user,  # type: ignore[arg-type]
            )
            if preview.errors:
                context["errors"] = [_by_path(e) for e in preview.errors]
            else:
                context["preview"] = preview
                context["form"] = ConfigUploadForm()
    # htmx swaps only successful responses; a plain form post gets the honest 400.
    ok = "preview" in context or bool(request.headers.get("HX-Request"))
    return render(request, "portal/setup/config.html", context, status=200 if ok else 400)


def _preview_job(request: HttpRequest, pk: int) -> ConfigImport:
    return get_object_or_404(ConfigImport.objects.for_practice(_practice(request)), pk=pk)


@require_POST
@roles_required(MANAGER)
@forbidden_in_support_session(SupportForbidden.CONFIG_IMPORT)
def config_apply(request: HttpRequest, practice_slug: str, pk: int) -> HttpResponse:
    """Apply a previewed upload (confirmed by the person looking at its preview)."""
    job = _preview_job(request, pk)
    outcome = onboarding.confirm_config(job, actor=request.user)  # type: ignore[arg-type]
    if outcome.job is not None:  # queued for a worker, or no longer waiting: its own page
        url = reverse("setup_config_import", kwargs={"practice_slug": practice_slug, "pk": pk})
        if request.headers.get("HX-Request"):
            response = HttpResponse(status=204)
            response["HX-Redirect"] = url
            return response
        return redirect(url)
    context: dict[str, object] = {"form": ConfigUploadForm()}
    if outcome.errors:
        context["errors"] = [_by_path(e) for e in outcome.errors]
    else:
        context["result"] = outcome.result
        context["warnings"] = outcome.warnings
    ok = "result" in context or bool(request.headers.get("HX-Request"))
    return render(request, "portal/setup/config.html", context, status=200 if ok else 400)


@require_POST
@roles_required(MANAGER)
@forbidden_in_support_session(SupportForbidden.CONFIG_IMPORT)
def config_discard(request: HttpRequest, practice_slug: str, pk: int) -> HttpResponse:
    onboarding.discard_config(_preview_job(request, pk))
    messages.info(request, "Discarded: nothing was changed.")
    return redirect("setup_config", practice_slug=practice_slug)


@never_cache
@require_GET
@roles_required(MANAGER)
def config_import(request: HttpRequest, practice_slug: str, pk: int) -> HttpResponse:
    """A background import's progress page; it polls itself (htmx) until the import is done."""
    job = get_object_or_404(ConfigImport.objects.for_practice(_practice(request)), pk=pk)
    outcome = job.outcome or {}
    done = onboarding.config_import_progress(job)
    context = {
        "job": job,
        "done": done,
        "percent": int(100 * done / job.entries_total) if job.entries_total else 100,
        "errors": [_by_path(e) for e in outcome.get("errors", [])],
        "sections": outcome.get("sections", {}),
        "notes": outcome.get("notes", []),
        "warnings": outcome.get("warnings", []),
    }
    return render(request, "portal/setup/config_import.html", context)


def _by_path(error: str) -> tuple[str, str]:
    """ "appointment_types[2].minutes: must be ..." -> (path, message); no path -> ("", error)."""
    path, sep, message = error.partition(": ")
    if sep and " " not in path:
        return path, message
    return "", error
