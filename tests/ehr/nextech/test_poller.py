"""Staff changes in Nextech reach the mirror by polling ``_lastUpdated`` (no webhooks)."""

from __future__ import annotations

import io
import json

import pytest

from core.tenancy import tenant_context
from ehr.models import ConnectionKind, EHRConnection
from ehr.nextech.poller import poll_changes
from ehr.nextech.port import reset_ports
from ehr.services import check_connection
from scheduling.models import Appointment
from tests.factories import LocationFactory, PracticeFactory, sign_baa

from .conftest import Connected, NextechWorld, local, make_config, next_weekday


def mirrored(conn: EHRConnection, ehr_id: int) -> Appointment | None:
    with tenant_context(conn.practice_id):
        return Appointment.objects.filter(ehr_id=ehr_id).first()


def test_staff_booking_and_cancellation_reach_the_mirror(
    connected: Connected, nextech: NextechWorld
) -> None:
    assert poll_changes(connected.conn, connected.port).changed == 0
    staff = nextech.admin(
        "POST",
        f"/_admin/practices/{nextech.practice_id}/appointments",
        {
            "practitioner": "9323",
            "location": "1",
            "start": local(next_weekday(1), "09:00").isoformat(),
        },
    )
    first = poll_changes(connected.conn, connected.port)
    assert first.changed == 1
    assert first.outcomes["created"] == 1
    row = mirrored(connected.conn, int(staff["id"]))
    assert row is not None and not row.cancelled
    assert poll_changes(connected.conn, connected.port).changed == 0
    nextech.admin(
        "POST", f"/_admin/practices/{nextech.practice_id}/appointments/{staff['id']}/cancel"
    )
    assert poll_changes(connected.conn, connected.port).outcomes["updated"] == 1
    row = mirrored(connected.conn, int(staff["id"]))
    assert row is not None and row.cancelled
    # One GET /Appointment a poll (each fits in one page here).
    assert nextech.stats()["requests"]["GET /Appointment"] == 4


def test_test_connection_says_credentials_need_a_reset(
    connected: Connected, nextech: NextechWorld
) -> None:
    ok = check_connection(connected.conn)
    assert ok.ok and ok.location_name == "Lakeside Eye & Skin - Main"
    nextech.admin("POST", f"/_admin/users/{nextech.username}/require_reset")
    result = check_connection(connected.conn)
    assert not result.ok
    assert result.detail.startswith("credentials need a reset")
    with tenant_context(connected.conn.practice_id):
        connected.conn.refresh_from_db()
    assert connected.conn.status == "error"
    assert connected.conn.status_detail.startswith("credentials need a reset")


def test_the_beat_polls_nextech_and_reconciles_only_the_others(
    connected: Connected, nextech: NextechWorld
) -> None:
    from ehr import tasks

    assert check_connection(connected.conn).ok  # status: connected
    pair = (connected.conn.pk, connected.conn.practice_id)
    assert pair in tasks._active_connections(kinds=tasks._POLLED_KINDS)
    assert pair not in tasks._active_connections(exclude_kinds=tasks._POLLED_KINDS)
    nextech.admin(
        "POST",
        f"/_admin/practices/{nextech.practice_id}/appointments",
        {
            "practitioner": "9323",
            "location": "1",
            "start": local(next_weekday(2), "13:00").isoformat(),
        },
    )
    result = tasks.poll_nextech_connection(*pair)
    assert result == {"changed": 1, "outcomes": {"created": 1}, "busy": False, "slots": 0}


def test_connect_command_stores_and_tests_the_credentials(
    nextech: NextechWorld, db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.core.management import CommandError, call_command

    practice = PracticeFactory(slug=f"nx-{nextech.username[4:12]}", timezone="America/Chicago")
    sign_baa(practice)
    location = LocationFactory(practice=practice, key="main")
    config = make_config(nextech)
    monkeypatch.setenv("NEXTECH_CLIENT_SECRET", config.client_secret)
    monkeypatch.setenv("NEXTECH_PASSWORD", config.password)
    argv = [
        practice.slug,
        "main",
        "--practice-id",
        nextech.practice_id,
        "--location-id",
        "1",
        "--client-id",
        config.client_id,
        "--username",
        config.username,
        "--api-url",
        nextech.server.api_url,
        "--token-url",
        config.token_url,
    ]
    try:
        call_command("connect_nextech", *argv)
        with tenant_context(practice.pk):
            conn = EHRConnection.objects.get(location=location)
            assert conn.kind == ConnectionKind.NEXTECH
            assert conn.status == "connected"
            assert json.loads(conn.api_key)["username"] == config.username
        nextech.admin("POST", f"/_admin/users/{nextech.username}/require_reset")
        out = io.StringIO()
        with pytest.raises(CommandError):
            call_command("test_connection", practice.slug, stdout=out)
        # The page's words (ehr.models.ConnectionState), then what the practice does about it.
        assert f"{location.name}: credentials need a reset (" in out.getvalue()
        assert "set a new password" in out.getvalue()
    finally:
        reset_ports()
