"""The NexHealth client against the sandbox process, over HTTP, with faults turned on in the
sandbox (never by patching the client)."""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta

import httpx
import pytest
from django.utils import timezone

from ehr import health, selectors, services
from ehr.errors import (
    EHRNotFound,
    EHRRateLimited,
    EHRUnavailable,
    EHRValidationError,
    EHRWriteUncertain,
)
from ehr.nexhealth.client import ConnectionConfig, NexHealthClient, client_for
from ehr_sandbox.testing import wait_until
from tests.ehr.conftest import KEY_B, KEY_C, build_world
from tests.ehr.storm import hammer

pytestmark = pytest.mark.django_db


def stats(world) -> dict:
    return world.admin("GET", "/_admin/stats")


def tuned(world, **kwargs) -> NexHealthClient:
    """A client for the world's connection with test-sized timeouts/backoff."""
    kwargs.setdefault("backoff_base", 0.01)
    kwargs.setdefault("backoff_cap", 0.05)
    return NexHealthClient(ConnectionConfig.from_connection(world.reload()), **kwargs)


def future(days: int = 7, hour: int = 10) -> datetime:
    day = timezone.now().astimezone(timezone.get_default_timezone()).date() + timedelta(days=days)
    from zoneinfo import ZoneInfo

    return datetime(day.year, day.month, day.day, hour, tzinfo=ZoneInfo("America/Los_Angeles"))


def test_envelope_is_unwrapped_and_records_are_normalised_at_the_edge(world):
    client = client_for(world.conn)
    [provider] = client.providers()
    assert provider.id == world.provider_id and provider.name == "Dr. Patel"
    assert {o.name for o in client.operatories()} == {"Operatory 1", "Operatory 2"}
    [appt_type] = client.appointment_types()
    assert appt_type.minutes == 30 and appt_type.descriptor_ids == (world.descriptor_id,)
    patient = client.create_patient(
        first_name="  Ana ",
        last_name="Lopez",
        date_of_birth=date(1980, 2, 3),
        phone_number="(555) 555-0101",
    )
    assert patient.first_name == "Ana" and patient.phone == "+15555550101"
    [found] = client.search_patients(name="ana lopez", date_of_birth=date(1980, 2, 3))
    assert found.id == patient.id and found.date_of_birth == date(1980, 2, 3)
    check = services.check_connection(world.conn)
    assert check.ok and check.location_name == "Main Office"


def test_the_token_is_cached_in_redis_and_shared_by_every_client(world):
    before = stats(world)["auth"]["tokens_issued"]
    client_for(world.conn).providers()
    other = NexHealthClient(ConnectionConfig.from_connection(world.reload()))  # "another worker"
    other.operatories()
    other.close()
    assert stats(world)["auth"]["tokens_issued"] == before


def test_token_expiry_mid_run_is_refreshed_transparently(world):
    client = client_for(world.conn)
    for _ in range(3):
        client.providers()
    issued = stats(world)["auth"]["tokens_issued"]
    world.admin("POST", "/_admin/tokens/expire", {})
    for _ in range(3):
        client.providers()
    after = stats(world)
    assert after["auth"]["tokens_issued"] == issued + 1
    assert after["responses"].get("401") == 1  # one refusal, one refresh, then fine


def test_5xx_is_retried_and_exhaustion_raises_unavailable(world):
    client = tuned(world, max_attempts=3)
    world.admin(
        "PATCH", "/_admin/faults", {"error_share": 1.0, "only_endpoints": ["GET /providers"]}
    )
    with pytest.raises(EHRUnavailable):
        client.providers()
    assert stats(world)["requests"]["GET /providers"] == 3
    world.admin("PATCH", "/_admin/faults", {"error_share": 0.3})
    patient_client = tuned(world, max_attempts=15)
    for _ in range(15):
        assert len(patient_client.providers()) == 1
    assert stats(world)["faults_injected"]["error_5xx"] > 3


def test_timeouts_are_retried_for_reads(world):
    quick = httpx.Timeout(connect=2.0, read=0.3, write=2.0, pool=2.0)
    world.admin(
        "PATCH",
        "/_admin/faults",
        {"timeout_share": 1.0, "timeout_seconds": 2, "only_endpoints": ["GET /operatories"]},
    )
    with pytest.raises(EHRUnavailable):
        tuned(world, max_attempts=2, timeout=quick).operatories()
    world.admin("PATCH", "/_admin/faults", {"timeout_share": 0.3})
    client = tuned(world, max_attempts=15, timeout=quick)
    for _ in range(6):
        assert len(client.operatories()) == 2
    assert stats(world)["faults_injected"]["timeout"] >= 2


def test_validation_errors_and_not_found_are_not_retried(world):
    client = client_for(world.conn)
    patient = client.create_patient(first_name="Ana", last_name="Lopez")
    with pytest.raises(EHRValidationError) as refused:
        client.create_appointment(
            patient_id=patient.id,
            provider_id=world.provider_id,
            operatory_id=world.operatory_id,
            start=timezone.now() - timedelta(days=1),
            appointment_type_id=world.type_id,
        )
    assert refused.value.status == 400 and "future" in str(refused.value)
    with pytest.raises(EHRNotFound):
        client.provider(1)
    counts = stats(world)["requests"]
    assert counts["POST /appointments"] == 1
    assert counts["GET /providers/{id}"] == 1


def test_a_post_that_times_out_after_landing_is_found_not_booked_twice(world):
    client = tuned(world, max_attempts=4, timeout=httpx.Timeout(5.0, read=0.5))
    patient = client.create_patient(first_name="Ana", last_name="Lopez")
    world.admin(
        "PATCH",
        "/_admin/faults",
        {
            "timeout_share": 1.0,
            "timeout_seconds": 1.5,
            "timeout_mode": "after",  # the write lands, the answer is lost
            "only_endpoints": ["POST /appointments"],
        },
    )
    start = future(days=5)
    appt = client.create_appointment(
        patient_id=patient.id,
        provider_id=world.provider_id,
        operatory_id=world.operatory_id,
        start=start,
        appointment_type_id=world.type_id,
    )
    assert appt.start == start and appt.patient_id == patient.id
    state = world.admin("GET", "/_admin/state")["appointments"]
    assert len(state) == 1 and state[0]["id"] == appt.id
    assert stats(world)["duplicates_detected"]["appointments"] == 0
    # Without a lookup strategy the client refuses to guess: the caller must look it up.
    with pytest.raises(EHRWriteUncertain):
        client.request(
            "POST",
            "/appointments",
            params={"location_id": world.lid},
            json={
                "appt": {
                    "patient_id": patient.id,
                    "provider_id": world.provider_id,
                    "operatory_id": world.operatory2_id,
                    "start_time": future(days=6).isoformat(),
                    "appointment_type_id": world.type_id,
                }
            },
        )
    assert stats(world)["requests"]["POST /appointments"] == 2  # never blindly retried


def test_post_appointment_service_mirrors_the_accepted_appointment(world):
    from core.tenancy import tenant_context
    from scheduling.models import Appointment

    services.sync_connection(world.conn)
    patient, created = services.find_or_create_patient(
        world.conn, first_name="Ana", last_name="Lopez", date_of_birth=date(1980, 2, 3)
    )
    again, created_again = services.find_or_create_patient(
        world.conn, first_name="ana", last_name="LOPEZ", date_of_birth=date(1980, 2, 3)
    )
    assert created and not created_again and again.id == patient.id
    with tenant_context(world.practice):
        from scheduling.models import AppointmentType, Operatory, Provider

        ids = selectors.ehr_ids_for_booking(
            world.conn,
            provider=Provider.objects.get(ehr_id=world.provider_id),
            operatory=Operatory.objects.get(ehr_id=world.operatory_id),
            appointment_type=AppointmentType.objects.get(ehr_id=world.type_id),
        )
    assert ids.appointment_type_id == world.type_id and ids.descriptor_ids == [world.descriptor_id]
    start = future(days=3)
    accepted = services.post_appointment(
        world.conn,
        patient_id=patient.id,
        provider_id=ids.provider_id,
        operatory_id=ids.operatory_id,
        start=start,
        appointment_type_id=ids.appointment_type_id,
        descriptor_ids=ids.descriptor_ids,
    )
    assert accepted.insertion_status == "pending"
    with tenant_context(world.practice):
        row = Appointment.objects.get(ehr_id=accepted.id)
        assert row.start == start and row.end == start + timedelta(minutes=30)
        assert not row.cancelled
    services.cancel_appointment(world.conn, accepted.id)
    with tenant_context(world.practice):
        assert Appointment.objects.get(ehr_id=accepted.id).cancelled


def test_429_from_the_ehr_is_retried_after_retry_after(ehr, db):
    world = build_world(ehr, api_key=KEY_B)
    world.admin(
        "PUT",
        "/_admin/rate_limits",
        {"api_key": KEY_B, "limits": {"overall": {"limit": 3, "window_seconds": 1}}},
    )
    client = client_for(world.conn)  # does not know the EHR's lower limit
    for _ in range(7):
        assert len(client.providers()) == 1
    assert stats(world)["rate_limited_total"] > 0
    live = health.live(world.conn.health_key)["counters"]
    assert live.get("429", 0) > 0 and live.get("retries", 0) > 0


def test_a_429_storm_at_three_times_the_rate_from_threads_and_processes(ehr, db):
    """Three processes (this one and two spawned), three threads each, 45 calls against a
    practice limited to 10/s: every call succeeds and the EHR never sees more than 10 in a
    second, because all of them draw from one Redis bucket."""
    limits = {"overall": {"limit": 10, "window_seconds": 1}}
    world = build_world(ehr, api_key=KEY_C, rate_limits=limits)
    world.admin("PUT", "/_admin/rate_limits", {"api_key": KEY_C, "limits": limits})
    ehr.admin(
        "POST",
        "/_admin/reset",
        {"data": False, "faults": False, "rate_limits": False, "settings": False},
    )
    config = ConnectionConfig.from_connection(world.reload())
    started = time.monotonic()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        remote = [pool.apply_async(hammer, (config, 3, 5)) for _ in range(2)]
        local_ok, local_errors = hammer(config, 3, 5)
        results = [r.get(timeout=120) for r in remote]
    elapsed = time.monotonic() - started
    ok = local_ok + sum(r[0] for r in results)
    errors = local_errors + [e for r in results for e in r[1]]
    assert errors == [] and ok == 45
    observed = stats(world)["rate_limits"]["observed"][KEY_C]["overall"]
    assert observed["max_observed"] <= 10, observed
    assert observed["accepted"] == 45 and stats(world)["rate_limited_total"] == 0
    assert elapsed > 3.5  # 45 calls at 10/s: they were spread out, not refused


def test_a_throttled_practice_does_not_delay_another(world, ehr):
    slow = build_world(
        ehr, api_key=KEY_B, rate_limits={"overall": {"limit": 5, "window_seconds": 60}}
    )
    throttled = client_for(slow.conn)
    with pytest.raises(EHRRateLimited) as refused:
        for _ in range(10):
            NexHealthClient(
                ConnectionConfig.from_connection(slow.reload()), rate_wait=0
            ).providers()
    assert refused.value.retry_after > 30
    fast = client_for(world.conn)
    with ThreadPoolExecutor(4) as pool:
        answered = list(pool.map(lambda _: fast.providers(), range(20)))
        # Meanwhile the throttled practice keeps asking, and keeps being told to come back later.
        with pytest.raises(EHRRateLimited):
            NexHealthClient(
                ConnectionConfig.from_connection(slow.reload()), rate_wait=0
            ).providers()
    # Not delayed, counted rather than timed: every call answered and none waited on a limit.
    assert len(answered) == 20 and all(answered)
    assert health.live(world.conn.health_key)["counters"].get("rl_waits", 0) == 0
    assert stats(world)["rate_limited_total"] == 0  # our bucket stopped the slow one first
    del throttled


def test_the_token_is_refreshed_before_it_expires(world):
    """With a short token life the cached token lapses in Redis ahead of its `exp`, so the next
    call authenticates first and the EHR never has to refuse an expired token."""
    world.admin("PATCH", "/_admin/config", {"token_ttl_seconds": 7})
    world.admin("POST", "/_admin/tokens/expire", {})
    client = client_for(world.conn)
    client.tokens.invalidate(client.tokens.get() or "")
    client.providers()  # a token living 7 s, cached for 7 - 5 (refresh margin) = 2 s
    issued = stats(world)["auth"]["tokens_issued"]
    wait_until(lambda: client.tokens.get() is None, timeout=10, message="the cached token lapses")
    client.providers()
    after = stats(world)
    assert after["auth"]["tokens_issued"] == issued + 1
    assert "401" not in after["responses"]  # never refused: refreshed ahead of time
