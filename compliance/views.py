"""The compliance officer's audit log: filter, preview, verify, export. Thin over compliance.*"""

from __future__ import annotations

import json
from collections.abc import Iterator

from django.core.exceptions import ImproperlyConfigured
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from accounts.access import roles_required
from accounts.http import request_practice
from accounts.models import Role
from compliance import audit, checkpoints, export
from compliance.context import current
from compliance.forms import AuditFilterForm, action_label
from compliance.models import AccessEvent, AuditAction
from compliance.support_policy import SupportForbidden, forbidden_in_support_session
from core.tenancy import tenant_context

CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}


@require_GET
@roles_required(Role.COMPLIANCE_OFFICER)
def audit_log(request: HttpRequest, practice_slug: str) -> HttpResponse:
    practice = request_practice(request)
    form = AuditFilterForm(request.GET or None)
    filters = form.filters(practice.pk, practice.tz)
    rows, older = export.page(filters, before=request.GET.get("before", ""))
    query = request.GET.copy()
    query.pop("before", None)
    return render(
        request,
        "compliance/audit_log.html",
        {
            "form": form,
            "rows": [(row, action_label(row.action)) for row in rows],
            "older": older,
            "query": query.urlencode(),
            "head": audit.chain_head(practice.pk),
            **_signing_keys(),
        },
    )


def _signing_keys() -> dict[str, object]:
    """The public half of the checkpoints' key, which an auditor pins when checking an export,
    and the earlier ones (checkpoints signed before a rotation still name them)."""
    try:
        key: checkpoints.SigningKey | None = checkpoints.signing_key()
    except ImproperlyConfigured:  # `check --deploy` says so (compliance.W002)
        key = None
    earlier = {k: v for k, v in checkpoints.public_keys().items() if key is None or k != key.key_id}
    return {
        "signing_key_id": key.key_id if key is not None else "",
        "signing_public_key": key.public.hex() if key is not None else "",
        "earlier_keys": sorted(earlier.items()),
        "verifier": export.VERIFIER,
    }


@require_GET
@roles_required(Role.COMPLIANCE_OFFICER)
def audit_verify(request: HttpRequest, practice_slug: str) -> HttpResponse:
    practice = request_practice(request)
    report = audit.verify_chain(audit.chain_name(practice.pk))
    audit.record(
        AuditAction.AUDIT_VERIFY,
        practice=practice,
        details={
            "ok": report.ok,
            "entries": report.entries,
            "problem": str(report.first_break or ""),
        },
    )
    template = (
        "compliance/_verify_result.html"
        if getattr(request, "htmx", False)
        else ("compliance/audit_verify.html")
    )
    return render(request, template, {"report": report})


def _streamed(
    practice_id: int, event: AccessEvent, filters: export.AuditFilters, fmt: str, fields: dict
) -> Iterator[bytes]:
    # The response is iterated after the view (and its tenant scope) returned: scope it again.
    try:
        with tenant_context(practice_id):
            yield from export.stream(filters, fmt, fields)
    except export.ExportFailed as failure:
        export.record_failure(event, failure)
        raise  # the server aborts the response: the client sees an error, not a short file


@require_GET
@roles_required(Role.COMPLIANCE_OFFICER)
@forbidden_in_support_session(SupportForbidden.EXPORT)
def audit_export(request: HttpRequest, practice_slug: str, fmt: str) -> HttpResponse:
    if fmt not in CONTENT_TYPES:
        raise Http404
    practice = request_practice(request)
    filters = AuditFilterForm(request.GET or None).filters(practice.pk, practice.tz)
    fields = {"exported_by": request.user.get_username(), "request_id": current().request_id}
    manifest = export.manifest(filters, fmt, **fields)
    event = audit.record(  # the export is itself audited, before a byte leaves
        AuditAction.AUDIT_EXPORT,
        practice=practice,
        object_type="compliance.audit",
        details={
            "format": fmt,
            "filters": filters.describe(),
            "chain_heads": manifest["chain_heads"],
        },
    )
    response = StreamingHttpResponse(
        _streamed(practice.pk, event, filters, fmt, fields), content_type=CONTENT_TYPES[fmt]
    )
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="audit-{practice.slug}-{stamp}.{fmt}"'
    response["X-Audit-Manifest"] = json.dumps(manifest, separators=(",", ":"))
    response["Cache-Control"] = "no-store"
    return response  # type: ignore[return-value]  # streamed: never held in memory
