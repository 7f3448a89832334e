"""``/_admin/...``: the test harness's levers. Not part of NexHealth's API.

Protected by the admin token (``X-Admin-Token: <token>`` or ``Authorization: Bearer <token>``),
never by API tokens, and never subject to faults or rate limits. Answers are plain JSON (no
envelope). ``/_admin/health`` needs no token so a starter can poll it.

The ``/_admin/ehr/...`` routes are what practice staff do inside their own EHR: book or block
time, cancel, register a patient, change a provider's synced schedule. They take effect at once
and emit the webhooks NexHealth would send when it notices the change.
"""

from __future__ import annotations

import hmac
import json
import os
import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from . import __version__
from .errors import ApiError, bad_request, not_found
from .runtime import Sandbox
from .store import TABLES, Record, public

AdminHandler = Callable[[Sandbox, Request, Record], Any]


def _authorised(sandbox: Sandbox, request: Request) -> bool:
    presented = request.headers.get("x-admin-token") or ""
    auth = request.headers.get("authorization", "")
    if not presented and auth[:7].lower() == "bearer ":
        presented = auth[7:].strip()
    return hmac.compare_digest(presented.encode(), sandbox.config.admin_token.encode())


def _route(
    sandbox: Sandbox, method: str, path: str, handler: AdminHandler, *, open_: bool = False
) -> Route:
    status = 201 if method == "POST" and "/ehr/" in path else 200

    async def endpoint(request: Request) -> Response:
        if not open_ and not _authorised(sandbox, request):
            return JSONResponse({"error": "admin token required"}, status_code=401)
        raw = await request.body()
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            return JSONResponse({"error": "body must be JSON"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "body must be a JSON object"}, status_code=400)
        try:
            with sandbox.store.tx():
                result = handler(sandbox, request, body)
                # Rendered inside the lock so background workers cannot change it meanwhile.
                response = JSONResponse(result, status_code=status)
        except ApiError as exc:
            return JSONResponse({"error": "; ".join(exc.messages)}, status_code=exc.status)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return response

    return Route(path, endpoint, methods=[method], name=f"admin {method} {path}")


# ---------------------------------------------------------------------------------------------
# Health, stats, reset


def health(sandbox: Sandbox, request: Request, body: Record) -> Any:
    return {
        "status": "ok",
        "version": __version__,
        "pid": os.getpid(),
        "data_dir": str(sandbox.config.data_dir) if sandbox.config.data_dir else None,
        "uptime_seconds": round(time.time() - sandbox.started_at, 3),
    }


def stats(sandbox: Sandbox, request: Request, body: Record) -> Any:
    """Counters since start or the last reset, plus the rate limiter's per-key observations."""
    data = sandbox.stats.snapshot()
    data.setdefault("duplicates_detected", {})
    data["duplicates_detected"].setdefault("appointments", 0)
    data["duplicates_detected"].setdefault("patients", 0)
    data.setdefault("appointments", {})
    data["rate_limited_total"] = sum(data.get("rate_limited", {}).values())
    data["rate_limits"] = sandbox.limiter.snapshot()
    data["webhooks_pending"] = sandbox.webhooks.pending()
    data["insertions_pending"] = sandbox.scheduler.pending()
    return data


def reset(sandbox: Sandbox, request: Request, body: Record) -> Any:
    """Everything by default; ``{"data": false}`` keeps records and resets only the rest."""
    flags = {}
    for key in ("data", "stats", "faults", "rate_limits", "settings"):
        value = body.get(key, True)
        if not isinstance(value, bool):
            raise bad_request(f"{key} must be a boolean")
        flags[key] = value
    sandbox.reset(**flags)
    return {"reset": [k for k, v in flags.items() if v]}


def state(sandbox: Sandbox, request: Request, body: Record) -> Any:
    """Every record (public shape) for debugging a failing test."""
    return {table: [public(r) for r in sandbox.store.rows(table)] for table in TABLES}


# ---------------------------------------------------------------------------------------------
# Faults, rate limits, settings, tokens


def get_faults(sandbox: Sandbox, request: Request, body: Record) -> Any:
    return sandbox.faults.settings.as_dict()


def patch_faults(sandbox: Sandbox, request: Request, body: Record) -> Any:
    return sandbox.faults.update(body).as_dict()


def delete_faults(sandbox: Sandbox, request: Request, body: Record) -> Any:
    sandbox.faults.reset()
    return sandbox.faults.settings.as_dict()


def get_rate_limits(sandbox: Sandbox, request: Request, body: Record) -> Any:
    return sandbox.limiter.snapshot()


def put_rate_limits(sandbox: Sandbox, request: Request, body: Record) -> Any:
    """``{"api_key": "k", "limits": {"overall": {"limit": 100, "window_seconds": 60}}}``;
    without api_key the defaults change; ``"enabled": false`` turns limiting off."""
    api_key = body.get("api_key")
    if api_key is not None and not isinstance(api_key, str):
        raise bad_request("api_key must be a string")
    limits = body.get("limits", {})
    if not isinstance(limits, dict):
        raise bad_request("limits must be an object")
    enabled = body.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise bad_request("enabled must be a boolean")
    sandbox.limiter.configure(limits, api_key=api_key, enabled=enabled)
    return sandbox.limiter.snapshot()


def delete_rate_limits(sandbox: Sandbox, request: Request, body: Record) -> Any:
    sandbox.limiter.reset(request.query_params.get("api_key"))
    return sandbox.limiter.snapshot()


def get_config(sandbox: Sandbox, request: Request, body: Record) -> Any:
    return sandbox.settings.as_dict()


def patch_config(sandbox: Sandbox, request: Request, body: Record) -> Any:
    sandbox.settings.update(body)
    return sandbox.settings.as_dict()


def expire_tokens(sandbox: Sandbox, request: Request, body: Record) -> Any:
    """Expire every issued token (or one key's) now, to test a client's refresh."""
    api_key = body.get("api_key")
    if api_key is not None and not isinstance(api_key, str):
        raise bad_request("api_key must be a string")
    return {"expired": sandbox.store.expire_tokens(time.time(), api_key)}


def add_api_key(sandbox: Sandbox, request: Request, body: Record) -> Any:
    key = body.get("api_key")
    if not isinstance(key, str) or not key.strip():
        raise bad_request("api_key is required")
    sandbox.add_api_key(key.strip())
    return {"api_keys": len(sandbox.api_keys())}


def webhooks(sandbox: Sandbox, request: Request, body: Record) -> Any:
    """Queue depth and the delivery log (status, attempts, last answer) per delivery."""
    return {"pending": sandbox.webhooks.pending(), "deliveries": sandbox.webhooks.deliveries()}


# ---------------------------------------------------------------------------------------------
# The EHR side


def _ehr_location(sandbox: Sandbox, body: Record) -> tuple[str, Record]:
    location_id = body.get("location_id")
    location = sandbox.store.get("locations", location_id if isinstance(location_id, int) else None)
    if location is None:
        raise not_found("Location", location_id)
    return location["_subdomain"], location


def ehr_create_appointment(sandbox: Sandbox, request: Request, body: Record) -> Any:
    """``{"location_id", "appt": {provider_id, operatory_id, patient_id?, start_time,
    end_time | minutes | appointment_type_id, unavailable?, note?}}``."""
    subdomain, location = _ehr_location(sandbox, body)
    return sandbox.ehr_create_appointment(subdomain, location, body.get("appt"))


def ehr_update_appointment(sandbox: Sandbox, request: Request, body: Record) -> Any:
    """``{"appt": {"cancelled": true}}`` or a move (start_time, end_time, provider, operatory)."""
    appt_id = request.path_params["id"]
    record = sandbox.store.get("appointments", int(appt_id) if appt_id.isdigit() else None)
    if record is None:
        raise not_found("Appointment", appt_id)
    return sandbox.update_appointment(
        record["_subdomain"], record["id"], body.get("appt"), via="ehr"
    )


def ehr_create_patient(sandbox: Sandbox, request: Request, body: Record) -> Any:
    """``{"location_id", "patient": {...}}``: registered at the front desk; ``patient_created``."""
    subdomain, location = _ehr_location(sandbox, body)
    return sandbox.create_patient(subdomain, location, body, via="ehr")


def ehr_replace_working_hours(sandbox: Sandbox, request: Request, body: Record) -> Any:
    """``{"location_id", "provider_id", "working_hours": [{operatory_id, begin_time, end_time,
    days | specific_date, label?, appointment_type_ids?}]}``: Eaglesoft-style replacement."""
    subdomain, location = _ehr_location(sandbox, body)
    created, deleted = sandbox.replace_synced_working_hours(
        subdomain, location, body.get("provider_id"), body.get("working_hours")
    )
    return {"working_hours": created, "deleted_ids": deleted}


RENAMEABLE = {"locations": "Location", "providers": "Provider", "operatories": "Operatory"}


def ehr_rename(sandbox: Sandbox, request: Request, body: Record) -> Any:
    """``PATCH /_admin/ehr/{locations|providers|operatories}/{id}`` with ``{"name": ...}`` (a
    provider may also take ``first_name``/``last_name``): staff renaming it in their EHR; the
    record keeps its id."""
    table = request.path_params["table"]
    if table not in RENAMEABLE:
        raise not_found("Resource", table)
    raw_id = request.path_params["id"]
    record = sandbox.store.get(table, int(raw_id) if raw_id.isdigit() else None)
    if record is None:
        raise not_found(RENAMEABLE[table], raw_id)
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise bad_request("name is required")
    changes: Record = {"name": name.strip()}
    if table == "providers":
        changes["display_name"] = name.strip()
        for part in ("first_name", "last_name"):
            if isinstance(body.get(part), str) and body[part].strip():
                changes[part] = body[part].strip()
    return public(sandbox.store.update(table, record["id"], changes))


def admin_routes(sandbox: Sandbox) -> list[BaseRoute]:
    table: list[tuple[str, str, AdminHandler]] = [
        ("GET", "/_admin/stats", stats),
        ("POST", "/_admin/reset", reset),
        ("GET", "/_admin/state", state),
        ("GET", "/_admin/faults", get_faults),
        ("PATCH", "/_admin/faults", patch_faults),
        ("DELETE", "/_admin/faults", delete_faults),
        ("GET", "/_admin/rate_limits", get_rate_limits),
        ("PUT", "/_admin/rate_limits", put_rate_limits),
        ("DELETE", "/_admin/rate_limits", delete_rate_limits),
        ("GET", "/_admin/config", get_config),
        ("PATCH", "/_admin/config", patch_config),
        ("POST", "/_admin/tokens/expire", expire_tokens),
        ("POST", "/_admin/api_keys", add_api_key),
        ("GET", "/_admin/webhooks", webhooks),
        ("POST", "/_admin/ehr/appointments", ehr_create_appointment),
        ("PATCH", "/_admin/ehr/appointments/{id}", ehr_update_appointment),
        ("POST", "/_admin/ehr/patients", ehr_create_patient),
        ("PUT", "/_admin/ehr/working_hours", ehr_replace_working_hours),
        ("PATCH", "/_admin/ehr/{table}/{id}", ehr_rename),
    ]
    routes: list[BaseRoute] = [_route(sandbox, "GET", "/_admin/health", health, open_=True)]
    routes += [_route(sandbox, method, path, handler) for method, path, handler in table]
    return routes
