"""Schemathesis against the served OpenAPI document: every operation, with valid and invalid
data, answers no 5xx, only documented statuses and content types, and bodies that match the
schema.

In process through the WSGI handler, so the requests run on the test's own database connection
(real PostgreSQL, row-level security) with a real bearer token and an executed BAA. Bounded:
a fixed number of examples per operation and mode, derandomised so a CI failure replays.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from booking import services as bookings
from calls.services import record_call
from core.tenancy import tenant_context
from scheduling.services import place_hold
from tests.factories import sign_baa
from tests.receptionist_api.factories import (
    api_client,
    bearer,
    level_2d,
    local,
    schedule,
    token_for,
)

pytestmark = pytest.mark.django_db

EXAMPLES = 10  # per operation and generation mode: ~270 requests
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(autouse=True)
def fast_secret_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def in_process():
    """As Django's test client does: a finished request must not close the test's connection
    (its transaction holds the test data)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@dataclass
class Agent:
    headers: dict[str, str]
    ids: dict[str, int]  # path parameter -> an id that exists, so generated bodies go deep


@pytest.fixture
def agent() -> Agent:
    world = level_2d(schedule("alpha", "Alpha Dental"))
    practice = world.s.practice
    sign_baa(practice)
    client, _ = api_client(practice)
    raw, _ = token_for(client)
    with tenant_context(practice):
        holds = [
            place_hold(
                practice,
                appointment_type_id=world.cleaning.pk,
                provider_id=world.patel.pk,
                operatory_id=world.op1.pk,
                start=local(world.day, hour, minute),
            )
            for hour, minute in ((11, 0), (11, 30))
        ]
        booking, _ = bookings.create_booking(
            practice,
            idempotency_key="fuzz",
            body={"hold_id": holds[1].pk, "patient": {"first_name": "Ana"}, "reason": ""},
        )
        call, _ = record_call(practice, external_id="fuzz", started_at=local(world.day, 8))
    return Agent(
        headers={"Authorization": bearer(raw)["HTTP_AUTHORIZATION"]},
        ids={"hold_id": holds[0].pk, "booking_id": booking.pk, "call_id": call.pk},
    )


def _strategy(operation: Any, mode: GenerationMode, ids: dict[str, int]) -> Any:
    """Generated cases, half of them (where the path takes an id) on a row that exists."""
    generated = operation.as_strategy(generation_mode=mode)
    names = {p.name for p in operation.path_parameters}
    if not names:
        return generated
    known = operation.as_strategy(generation_mode=mode, path_parameters={n: ids[n] for n in names})
    return st.one_of(known, generated)


def _exercise(operation: Any, mode: GenerationMode, agent: Agent, statuses: Counter[int]) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=_strategy(operation, mode, agent.ids))
    def run(case: Any) -> None:
        response = case.call_and_validate(headers=agent.headers, checks=CHECKS)
        statuses[response.status_code] += 1

    # Nothing to negate: an operation without parameters or body has no invalid input.
    with contextlib.suppress(Unsatisfiable):
        run()


@pytest.mark.timeout(120)  # a bound, not the expectation: 7 s of CPU, 33 s at load 11 here
def test_every_operation_survives_schemathesis(in_process, agent):
    started, cpu = time.monotonic(), time.process_time()
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", WSGIHandler())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 12, [op.label for op in operations]
    statuses: Counter[int] = Counter()
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _exercise(operation, mode, agent, statuses)  # raises schemathesis' failure report
    print(
        "schemathesis statuses:",
        dict(statuses),
        f"{time.monotonic() - started:.1f} s, {time.process_time() - cpu:.1f} s of CPU",
    )
    assert sum(statuses.values()) >= len(operations) * EXAMPLES  # it did run
