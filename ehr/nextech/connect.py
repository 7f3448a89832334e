"""Connecting a location to Nextech: the credentials stored encrypted on the connection, then
the connection tested so its status says at once whether it works, and why not.

Unlike the NexHealth connect, a failing test does not undo the save: a service user whose
password must be changed is the practice's to fix, and the connection page must be able to say
"credentials need a reset" about the connection they just entered.
"""

from __future__ import annotations

import json

from django.db import transaction

from accounts.models import Location
from compliance.gate import require_phi_allowed
from compliance.support_policy import SupportForbidden, refused_in_support_session
from core.tenancy import tenant_context
from ehr import services
from ehr.models import ConnectionKind, EHRConnection

from .config import SELECT_API_URL, TOKEN_URL, NextechConfig


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
