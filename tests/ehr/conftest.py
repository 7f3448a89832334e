"""Fixtures for the integration tests: the EHR sandbox as a real process (one per session),
reset between tests; practices connected to it; webhook capture; eager or real Celery.

Faults are switched on in the sandbox (`/_admin/faults`, `/_admin/rate_limits`), never by
patching our client; waits are on conditions with deadlines (`wait_until`), never fixed sleeps.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from accounts.models import Location, Practice
from compliance import crypto
from core.tenancy import tenant_context
from ehr import services
from ehr.models import ConnectionKind, EHRConnection
from ehr.nexhealth import client as client_module
from ehr_sandbox.nextech.testing import NextechServer
from ehr_sandbox.testing import SandboxServer, WebhookReceiver
from portal.celery import app as celery_app
from tests.factories import LocationFactory, PracticeFactory, sign_baa

API_KEY = "test-api-key"
KEY_B = "test-api-key-b"
KEY_C = "test-api-key-c"


@pytest.fixture(scope="session")
def ehr_server() -> Iterator[SandboxServer]:
    extra = ["--insertion-delay-ms", "30", "--time-scale", "0.001"]
    with SandboxServer(api_keys=[API_KEY, KEY_B, KEY_C], extra_args=extra) as server:
        yield server


@pytest.fixture(scope="session")
def nextech_server() -> Iterator[NextechServer]:
    """The sandbox's Nextech surface, its own process (one per test process)."""
    with NextechServer() as server:
        yield server


@pytest.fixture
def nextech_sandbox(nextech_server: NextechServer, settings: Any) -> Iterator[NextechServer]:
    """The Nextech sandbox, empty, as the one an import of a Nextech practice sets up."""
    nextech_server.reset()
    settings.NEXTECH_SANDBOX_URL = nextech_server.base_url
    settings.NEXTECH_SANDBOX_ADMIN_TOKEN = nextech_server.admin_token
    settings.NEXTECH_SANDBOX_CLIENT_ID = nextech_server.client_id
    settings.NEXTECH_SANDBOX_CLIENT_SECRET = nextech_server.client_secret
    yield nextech_server
    nextech_server.reset()


@pytest.fixture
def ehr(ehr_server: SandboxServer) -> Iterator[SandboxServer]:
    """The sandbox, empty, with default faults and limits, for this test."""
    ehr_server.reset()
    yield ehr_server
    ehr_server.reset()


@pytest.fixture(autouse=True)
def _fresh_process_state() -> Iterator[None]:
    crypto.clear_key_cache()
    client_module.reset_clients()
    yield
    client_module.reset_clients()
    crypto.clear_key_cache()


@pytest.fixture
def eager_celery() -> Iterator[None]:
    """Tasks run inline where they are queued (no broker traffic from tests without a worker)."""
    old = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = old


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as running:
        yield running


# --- a practice connected to the sandbox -------------------------------------------------------


@dataclass
class World:
    """One practice with one location connected to the sandbox, plus raw HTTP for set-up."""

    sandbox: SandboxServer
    practice: Practice
    location: Location
    conn: EHRConnection
    api: httpx.Client
    subdomain: str
    lid: int
    provider_id: int
    operatory_id: int
    operatory2_id: int
    type_id: int
    descriptor_id: int

    def ok(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        params.setdefault("subdomain", self.subdomain)
        response = self.api.request(method, path, params=params, json=body)
        assert response.status_code < 300, response.text
        return response.json()["data"]

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        return self.sandbox.admin(method, path, body).json()

    def reload(self) -> EHRConnection:
        with tenant_context(self.practice):
            self.conn = EHRConnection.objects.select_related("location").get(pk=self.conn.pk)
        return self.conn


def build_world(
    sandbox: SandboxServer,
    *,
    slug: str | None = None,
    api_key: str = API_KEY,
    mode: str = "manual",
    public_url: str | None = None,
    register_webhooks: bool = False,
    rate_limits: dict[str, Any] | None = None,
) -> World:
    """A practice (with an executed BAA) whose EHR location holds one provider, two operatories,
    one appointment type mapped to one descriptor, connected (and optionally webhook-registered)."""
    slug = slug or f"p-{uuid.uuid4().hex[:8]}"
    practice = PracticeFactory(slug=slug, name=f"Practice {slug}", timezone="America/Los_Angeles")
    sign_baa(practice)
    location = LocationFactory(
        practice=practice, key="main", name="Main Office", working_hours_mode=mode
    )
    api = sandbox.client(api_key)

    def ok(method: str, path: str, body: Any = None, **params: Any) -> Any:
        params.setdefault("subdomain", slug)
        response = api.request(method, path, params=params, json=body)
        assert response.status_code < 300, response.text
        return response.json()["data"]

    lid = ok(
        "POST", "/locations", {"location": {"name": "Main Office", "tz": "America/Los_Angeles"}}
    )["id"]
    provider = ok(
        "POST",
        "/providers",
        {"provider": {"first_name": "Ana", "last_name": "Patel", "name": "Dr. Patel"}},
        location_id=lid,
    )
    op1 = ok("POST", "/operatories", {"operatory": {"name": "Operatory 1"}}, location_id=lid)
    op2 = ok("POST", "/operatories", {"operatory": {"name": "Operatory 2"}}, location_id=lid)
    descriptor = ok(
        "POST",
        f"/locations/{lid}/appointment_descriptors",
        {"appointment_descriptor": {"code": "D1110", "name": "Prophylaxis Adult"}},
    )
    appt_type = ok(
        "POST",
        "/appointment_types",
        {"appointment_type": {"name": "Cleaning", "minutes": 30}, "location_id": lid},
    )
    ok(
        "PATCH",
        f"/appointment_types/{appt_type['id']}",
        {"appointment_type": {"emr_appt_descriptor_ids": [descriptor["id"]]}},
    )
    conn = services.connect_location(
        location,
        kind=ConnectionKind.SANDBOX,
        base_url=sandbox.base_url,
        subdomain=slug,
        api_key=api_key,
        ehr_location_id=lid,
        public_url=public_url,
        register_webhooks=register_webhooks,
        rate_limits=rate_limits,
    )
    return World(
        sandbox=sandbox,
        practice=practice,
        location=location,
        conn=conn,
        api=api,
        subdomain=slug,
        lid=lid,
        provider_id=provider["id"],
        operatory_id=op1["id"],
        operatory2_id=op2["id"],
        type_id=appt_type["id"],
        descriptor_id=descriptor["id"],
    )


@pytest.fixture
def world(ehr: SandboxServer, db: None) -> Iterator[World]:
    built = build_world(ehr)
    yield built
    built.api.close()


def resign(body: bytes, secret: str, timestamp: int) -> dict[str, str]:
    """Headers for `body` signed as the sandbox signs (for replaying captured deliveries)."""
    import hmac

    signature = hmac.new(
        secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    return {"HTTP_X_SIGNATURE": signature, "HTTP_X_TIMESTAMP": str(timestamp)}
