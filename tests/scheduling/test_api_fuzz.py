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
from typing import Any

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import sign_baa
from tests.scheduling.api_factories import api_client, bearer, level_2d, schedule, token_for

pytestmark = pytest.mark.django_db

EXAMPLES = 15  # per operation and generation mode
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


@pytest.fixture
def auth() -> dict[str, str]:
    world = level_2d(schedule("alpha", "Alpha Dental"))
    sign_baa(world.s.practice)
    client, _ = api_client(world.s.practice)
    raw, _ = token_for(client)
    return {"Authorization": bearer(raw)["HTTP_AUTHORIZATION"]}


def _exercise(
    operation: Any, mode: GenerationMode, headers: dict[str, str], statuses: Counter[int]
) -> list[str]:
    failures: list[str] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        try:
            response = case.call_and_validate(headers=headers, checks=CHECKS)
            statuses[response.status_code] += 1
        except Exception as exc:  # collected: one run reports every operation's failures
            failures.append(f"{operation.label} [{mode.value}]: {exc}"[:2000])

    # Nothing to negate: an operation without parameters or body has no invalid input.
    with contextlib.suppress(Unsatisfiable):
        run()
    return failures


def test_every_operation_survives_schemathesis(in_process, auth):
    started = time.monotonic()
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", WSGIHandler())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 12, [op.label for op in operations]
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            failures += _exercise(operation, mode, auth, statuses)
    print("schemathesis statuses:", dict(statuses), f"{time.monotonic() - started:.1f} s")
    assert not failures, "\n\n".join(failures[:20])
    assert sum(statuses.values()) >= len(operations) * EXAMPLES  # it did run
    assert time.monotonic() - started < 60
