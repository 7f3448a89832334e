"""The Starlette app: the public NexHealth-shaped routes, the admin routes, and the workers'
life cycle (started and stopped with the server)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from . import routes_booking as booking
from . import routes_practice as practice
from . import routes_webhooks as hooks
from .admin import admin_routes
from .api import Handler, error_envelope, wrap
from .errors import ApiError
from .runtime import Sandbox
from .timeutil import utc_now

PUBLIC_ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/locations", practice.list_locations),
    ("POST", "/locations", practice.create_location),
    ("GET", "/locations/{id}", practice.get_location),
    ("GET", "/locations/{id}/appointment_descriptors", practice.list_descriptors),
    ("POST", "/locations/{id}/appointment_descriptors", practice.create_descriptor),
    ("GET", "/providers", practice.list_providers),
    ("POST", "/providers", practice.create_provider),
    ("GET", "/providers/{id}", practice.get_provider),
    ("GET", "/operatories", practice.list_operatories),
    ("POST", "/operatories", practice.create_operatory),
    ("GET", "/operatories/{id}", practice.get_operatory),
    ("GET", "/patients", booking.list_patients),
    ("POST", "/patients", booking.create_patient),
    ("GET", "/patients/{id}", booking.get_patient),
    ("GET", "/patients/{id}/documents", booking.list_documents),
    ("POST", "/patients/{id}/documents", booking.create_document),
    ("GET", "/patients/{id}/documents/{doc_id}", booking.get_document),
    ("GET", "/appointment_types", practice.list_appointment_types),
    ("POST", "/appointment_types", practice.create_appointment_type),
    ("GET", "/appointment_types/{id}", practice.get_appointment_type),
    ("PATCH", "/appointment_types/{id}", practice.update_appointment_type),
    ("DELETE", "/appointment_types/{id}", practice.delete_appointment_type),
    ("GET", "/working_hours", practice.list_working_hours),
    ("POST", "/working_hours", practice.create_working_hour),
    ("GET", "/working_hours/{id}", practice.get_working_hour),
    ("PATCH", "/working_hours/{id}", practice.update_working_hour),
    ("DELETE", "/working_hours/{id}", practice.delete_working_hour),
    ("GET", "/availabilities", practice.list_availabilities),
    ("POST", "/availabilities", practice.create_availability),
    ("GET", "/availabilities/{id}", practice.get_availability),
    ("PATCH", "/availabilities/{id}", practice.update_availability),
    ("DELETE", "/availabilities/{id}", practice.delete_availability),
    ("GET", "/available_slots", booking.available_slots),
    ("GET", "/appointment_slots", booking.appointment_slots),
    ("GET", "/appointments", booking.list_appointments),
    ("POST", "/appointments", booking.create_appointment),
    ("GET", "/appointments/{id}", booking.get_appointment),
    ("PATCH", "/appointments/{id}", booking.update_appointment),
    ("GET", "/webhook_endpoints", hooks.list_webhook_endpoints),
    ("POST", "/webhook_endpoints", hooks.create_webhook_endpoint),
    ("GET", "/webhook_endpoints/{id}", hooks.get_webhook_endpoint),
    ("PATCH", "/webhook_endpoints/{id}", hooks.update_webhook_endpoint),
    ("DELETE", "/webhook_endpoints/{id}", hooks.delete_webhook_endpoint),
    ("GET", "/webhook_endpoints/{id}/webhook_subscriptions", hooks.list_subscriptions),
    ("POST", "/webhook_endpoints/{id}/webhook_subscriptions", hooks.create_subscription),
    (
        "PATCH",
        "/webhook_endpoints/{id}/webhook_subscriptions/{sub_id}",
        hooks.update_subscription,
    ),
    (
        "DELETE",
        "/webhook_endpoints/{id}/webhook_subscriptions/{sub_id}",
        hooks.delete_subscription,
    ),
]


async def _not_found(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    message = "Method Not Allowed" if status == 405 else f"No route for {request.url.path}"
    return error_envelope(ApiError(status, message))


def create_app(sandbox: Sandbox) -> Starlette:
    """The ASGI app; starts the background workers with the server and stops them after."""
    routes: list[BaseRoute] = [
        wrap(sandbox, "POST", "/authenticates", practice.authenticate, auth=False)
    ]
    routes += [wrap(sandbox, m, p, h, auth=True) for m, p, h in PUBLIC_ROUTES]
    routes += admin_routes(sandbox)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        sandbox.start()
        try:
            yield
        finally:
            sandbox.stop()

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: _not_found, 405: _not_found},
    )
    app.state.sandbox = sandbox
    app.state.started = utc_now()
    return app
