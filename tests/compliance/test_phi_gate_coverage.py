"""Every receptionist API route and every Celery task is either behind the PHI gate or declared,
here, with a reason, to carry no PHI. A new route or task fails this test until someone decides."""

from __future__ import annotations

from compliance.gate import is_phi_gated
from portal.celery import app
from tests.urlconf import routes

# Routes that never receive or return PHI, and why.
PHI_FREE_ROUTES = {
    "api/v1/oauth/token": "client credentials only",
    "api/v1/schema/": "the public OpenAPI document",
    "api/v1/appointment-types": "the practice's catalogue of visit types",
    "api/v1/availability": "free time slots; no patient in the request or the answer",
    "api/v1/holds": "a provider, a room and a time; no patient",
    "api/v1/holds/<api_id:hold_id>": "releasing a hold; no patient",
    "api/v1/tools.json": "the tools' definitions (function-calling schema); no patient",
}
# Routes that check the BAA themselves, with the test that proves it.
SELF_GATED_ROUTES = {
    "integrations/webhooks/nexhealth/<int:connection_id>": (
        "tests/ehr/test_webhooks.py::test_without_a_baa_in_force_nothing_is_stored"
    ),
}
PHI_FREE_TASKS = {
    "calls.purge_expired": "deletes expired transcripts and note copies; reads no PHI",
    "calls.sweep_encounter_notes": "links ids and re-queues write_encounter_note (gated)",
    "compliance.expire_agreements": "marks agreements past their dates; no PHI",
    "compliance.close_expired_support_sessions": "closes sessions, revokes API clients; no PHI",
    "compliance.seal_audit": "hashes queued audit entries into their chains; reads no PHI",
    "integrations.flush_health": "moves call counters from Redis to the database",
    "integrations.reconcile_all": "fans out to reconcile_connection, which is gated",
    "integrations.reconcile_near_all": "fans out to reconcile_near_connection (gated)",
    "integrations.poll_nextech_all": "fans out to poll_nextech_connection (gated)",
    "integrations.requeue_stale_webhooks": "re-sends delivery ids to process_webhook (gated)",
    "portal.count_locations": "counts rows",
    "scheduling.expire_booking_requests": (
        "declines the front desk's overdue requests and frees their slots; reads no PHI"
    ),
    "scheduling.relay_outbox": "hands outbox ids to process_booking (gated)",
    "scheduling.requeue_stale_bookings": "re-sends booking ids to the gated booking tasks",
    "scheduling.run_config_import": (
        "imports a configuration file; its patients are dropped without an EHR, and reach the "
        "EHR only through the set-up, which needs a BAA (checked before, gated inside)"
    ),
}
OUR_APPS = {"portal", "scheduling", "integrations", "compliance", "calls"}


def machine_routes():
    return [r for r in routes() if r.template.startswith(("api/", "integrations/"))]


def test_every_api_route_is_gated_or_declared_phi_free():
    seen = set()
    for route in machine_routes():
        seen.add(route.template)
        if route.template in PHI_FREE_ROUTES or route.template in SELF_GATED_ROUTES:
            continue
        assert is_phi_gated(route.callback), f"{route.template} is neither gated nor declared"
    assert set(PHI_FREE_ROUTES) | set(SELF_GATED_ROUTES) <= seen, "stale declarations"
    assert {"api/v1/bookings", "api/v1/intents/resolve"} <= seen


def test_every_task_is_gated_or_declared_phi_free():
    app.loader.import_default_modules()
    ours = {name: task for name, task in app.tasks.items() if name.split(".")[0] in OUR_APPS}
    assert "scheduling.process_booking" in ours
    for name, task in sorted(ours.items()):
        if name in PHI_FREE_TASKS:
            continue
        assert is_phi_gated(task), f"task {name} is neither gated nor declared PHI-free"
    assert set(PHI_FREE_TASKS) <= set(ours), "stale declarations"
