"""Routes for webhook endpoints (owned by the API key) and subscriptions (per subdomain)."""

from __future__ import annotations

import re
from urllib.parse import urlparse

from starlette.responses import Response

from .api import Call, envelope, nested
from .errors import bad_request, not_found
from .store import Record, public
from .webhooks import EVENTS

# ---------------------------------------------------------------------------------------------
# Webhook endpoints and subscriptions (endpoints belong to the API key; subscriptions to a
# subdomain)


def _endpoint(call: Call) -> Record:
    record = call.sandbox.store.get("webhook_endpoints", call.path_int("id"))
    if record is None or record["_api_key"] != call.api_key:
        raise not_found("Webhook endpoint", call.request.path_params["id"])
    return record


def _target_url(value: object) -> str:
    if not isinstance(value, str):
        raise bad_request("target_url is required")
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise bad_request("target_url must be an http(s) URL (NexHealth requires https)")
    return value


def list_webhook_endpoints(call: Call) -> Response:
    rows = call.sandbox.store.rows("webhook_endpoints", lambda r: r["_api_key"] == call.api_key)
    return call.paginate([public(r) for r in rows])


def create_webhook_endpoint(call: Call) -> Response:
    body = nested(call.json(), "webhook_endpoint")
    endpoint = call.sandbox.create_webhook_endpoint(
        call.api_key, _target_url(body.get("target_url"))
    )
    return envelope(endpoint, status=201)


def get_webhook_endpoint(call: Call) -> Response:
    return envelope(public(_endpoint(call)))


def update_webhook_endpoint(call: Call) -> Response:
    """Re-activate an endpoint NexHealth switched off after 48 h of errors: ``{"active": true}``."""
    body = nested(call.json(), "webhook_endpoint")
    changes: Record = {}
    if "active" in body:
        if not isinstance(body["active"], bool):
            raise bad_request("active must be a boolean")
        changes["active"] = body["active"]
    if "target_url" in body:
        changes["target_url"] = _target_url(body["target_url"])
    with call.sandbox.store.tx():
        record = _endpoint(call)
        call.sandbox.store.update("webhook_endpoints", record["id"], changes)
        return envelope(public(record))


def delete_webhook_endpoint(call: Call) -> Response:
    sandbox = call.sandbox
    with sandbox.store.tx():
        record = _endpoint(call)
        sandbox.store.delete("webhook_endpoints", record["id"])
        for sub in sandbox.store.rows(
            "webhook_subscriptions", lambda r: r["webhook_endpoint_id"] == record["id"]
        ):
            sandbox.store.delete("webhook_subscriptions", sub["id"])
    return envelope(None, description="Deleted")


def list_subscriptions(call: Call) -> Response:
    endpoint = _endpoint(call)
    rows = call.sandbox.store.rows(
        "webhook_subscriptions", lambda r: r["webhook_endpoint_id"] == endpoint["id"]
    )
    return call.paginate([public(r) for r in rows])


def create_subscription(call: Call) -> Response:
    subdomain = call.subdomain()
    body = nested(call.json(), "webhook_subscription")
    event = body.get("event")
    if event not in EVENTS:
        raise bad_request(f"event must be one of {', '.join(EVENTS)}")
    resource = body.get("resource_type")
    normalised = re.sub(r"[^a-z]", "", str(resource).lower())
    if normalised != EVENTS[event].lower():
        raise bad_request(f"event {event} belongs to resource_type {EVENTS[event]}")
    active = body.get("active", True)
    if not isinstance(active, bool):
        raise bad_request("active must be a boolean")
    with call.sandbox.store.tx():
        endpoint = _endpoint(call)
        existing = call.sandbox.store.rows(
            "webhook_subscriptions",
            lambda r: (
                r["webhook_endpoint_id"] == endpoint["id"]
                and r["subdomain"] == subdomain
                and r["event"] == event
            ),
        )
        if existing:
            record = call.sandbox.store.update(
                "webhook_subscriptions", existing[0]["id"], {"active": active}
            )
            return envelope(public(record))
        record = call.sandbox.store.insert(
            "webhook_subscriptions",
            {
                "webhook_endpoint_id": endpoint["id"],
                "resource_type": EVENTS[event],
                "event": event,
                "subdomain": subdomain,
                "active": active,
            },
        )
        return envelope(public(record), status=201)


def _subscription(call: Call) -> Record:
    endpoint = _endpoint(call)
    record = call.sandbox.store.get("webhook_subscriptions", call.path_int("sub_id"))
    if record is None or record["webhook_endpoint_id"] != endpoint["id"]:
        raise not_found("Webhook subscription", call.request.path_params["sub_id"])
    return record


def update_subscription(call: Call) -> Response:
    body = nested(call.json(), "webhook_subscription")
    if not isinstance(body.get("active"), bool):
        raise bad_request("active must be a boolean")
    with call.sandbox.store.tx():
        record = _subscription(call)
        call.sandbox.store.update("webhook_subscriptions", record["id"], {"active": body["active"]})
        return envelope(public(record))


def delete_subscription(call: Call) -> Response:
    with call.sandbox.store.tx():
        record = _subscription(call)
        call.sandbox.store.delete("webhook_subscriptions", record["id"])
    return envelope(None, description="Deleted")
