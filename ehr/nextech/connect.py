"""Connecting a location to Nextech: the credentials stored encrypted on the connection, then
the connection tested so its status says at once whether it works, and why not.

Unlike the NexHealth connect, a failing test does not undo the save: a service user whose
password must be changed is the practice's to fix, and the connection page must be able to say
"credentials need a reset" about the connection they just entered.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from accounts.models import Location
from compliance.gate import require_phi_allowed
from compliance.support_policy import SupportForbidden, refused_in_support_session
from core.tenancy import tenant_context
from ehr import services
from ehr.models import ConnectionKind, EHRConnection

from .config import SELECT_API_URL, TOKEN_URL, NextechConfig

SANDBOX_TOKEN_TENANT = "sandbox-tenant"  # the sandbox answers Azure AD's /{tenant}/oauth2/token


@dataclass(frozen=True)
class AppRegistration:
    """The OAuth client a practice's service user signs in through: Hello's at Nextech."""

    client_id: str
    client_secret: str
    token_url: str


class NotRegistered(ValueError):
    """No app registration is configured for this Select API."""


def app_registration(api_base_url: str) -> AppRegistration:
    """Hello's client at the Nextech behind `api_base_url`: the sandbox's own when the URL is
    the configured sandbox's (NEXTECH_SANDBOX_URL), else the production registration
    (NEXTECH_CLIENT_ID, NEXTECH_CLIENT_SECRET, NEXTECH_TOKEN_URL). The practice enters only
    its own part (practice id, service user) on the connection page."""
    sandbox = str(settings.NEXTECH_SANDBOX_URL or "").rstrip("/")
    if sandbox and api_base_url.rstrip("/").startswith(sandbox + "/"):
        return AppRegistration(
            settings.NEXTECH_SANDBOX_CLIENT_ID,
            settings.NEXTECH_SANDBOX_CLIENT_SECRET,
            f"{sandbox}/{SANDBOX_TOKEN_TENANT}/oauth2/token",
        )
    if not (settings.NEXTECH_CLIENT_ID and settings.NEXTECH_CLIENT_SECRET):
        raise NotRegistered(
            "Hello's Nextech app registration is not configured "
            "(NEXTECH_CLIENT_ID, NEXTECH_CLIENT_SECRET): ask Hello support"
        )
    return AppRegistration(
        settings.NEXTECH_CLIENT_ID,
        settings.NEXTECH_CLIENT_SECRET,
        settings.NEXTECH_TOKEN_URL or TOKEN_URL,
    )


@refused_in_support_session(SupportForbidden.CREDENTIALS)
def connect_location(
    location: Location,
    *,
    practice_id: str,
    ehr_location_id: int,
    client_id: str,
    client_secret: str,
    username: str,
    password: str,
    api_base_url: str = SELECT_API_URL,
    token_url: str = TOKEN_URL,
) -> tuple[EHRConnection, services.ConnectionCheck]:
    """Create or update the location's Nextech connection and test it (status recorded)."""
    require_phi_allowed(location.practice_id)
    credentials = {
        "client_id": client_id,
        "client_secret": client_secret,
        "username": username,
        "password": password,
        "token_url": token_url,
    }
    with tenant_context(location.practice_id), transaction.atomic():
        conn = EHRConnection.objects.filter(location=location).first()
        if conn is None:
            conn = EHRConnection(practice_id=location.practice_id, location=location)
        conn.kind = ConnectionKind.NEXTECH
        conn.base_url = api_base_url.rstrip("/")
        conn.subdomain = practice_id
        conn.ehr_location_id = ehr_location_id
        conn.api_key = json.dumps(credentials)
        # Nextech limits per service user: connections on one user share its buckets.
        conn.rate_limit_key = NextechConfig(
            practice_id=practice_id,
            client_id=client_id,
            client_secret=client_secret,
            username=username,
            password=password,
            token_url=token_url,
        ).user_scope
        services.save_connection(conn, location, ehr_location_id)
        conn = EHRConnection.objects.select_related("location__practice").get(pk=conn.pk)
    return conn, services.check_connection(conn)


@refused_in_support_session(SupportForbidden.CREDENTIALS)
def connect_with_app_registration(
    location: Location,
    *,
    api_base_url: str,
    practice_id: str,
    ehr_location_id: int,
    username: str,
    password: str,
) -> tuple[EHRConnection, services.ConnectionCheck]:
    """What the connection page does with the practice's part of the credentials: Hello's app
    registration for that Select API added (`app_registration`), then `connect_location`
    (refused in a support session, like every credential change). Raises `NotRegistered`."""
    app = app_registration(api_base_url)
    return connect_location(
        location,
        practice_id=practice_id,
        ehr_location_id=ehr_location_id,
        client_id=app.client_id,
        client_secret=app.client_secret,
        username=username,
        password=password,
        api_base_url=api_base_url,
        token_url=app.token_url,
    )
