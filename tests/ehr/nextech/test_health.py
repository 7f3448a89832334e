"""A Nextech connection's integration health, in the same figures as a NexHealth one
(ehr.selectors.HealthFigures): first-try success, failures by reason, rate-limit waits and
freshness lag (here poll lag: from staff's change in Nextech to the poll that saw it). The
faults are the sandbox's: its rate limit answering 429, its 5xx."""

from __future__ import annotations

import pytest

from core.tenancy import tenant_context
from ehr import selectors
from ehr.errors import EHRUnavailable
from ehr.models import EHRConnection
from ehr.nextech.poller import poll_changes
from ehr.nextech.port import NextechPort, reset_ports
from ehr.registry import port_for

from .conftest import Connected, NextechWorld, local, next_weekday


def figures(conn: EHRConnection) -> selectors.HealthFigures:
    with tenant_context(conn.practice_id):
        [row] = selectors.connections_with_health(conn.practice_id)
        return selectors.health_figures(row)


def test_a_429_is_waited_out_and_the_call_is_not_a_first_try_success(
    connected: Connected, nextech: NextechWorld
) -> None:
    nextech.server.admin("POST", "/_admin/rate_limits", {"limit": 1, "window_seconds": 1.0})
    port = connected.port
    assert port.nextech.locations()  # the endpoint's one request of the second
    assert port.nextech.locations()  # 429, Retry-After honoured, then answered
    h = figures(connected.conn)
    assert (h.requests, h.first_try_ok, h.first_try_percent) == (2, 1, 50)
    assert h.failures == {}
    assert h.rate_limit_waits >= 1 and h.rate_limit_wait_seconds > 0
    assert h.throttled_429 >= 1
    assert nextech.stats()["responses"]["429"] >= 1


def test_a_call_that_keeps_failing_counts_once_by_its_reason(
    connected: Connected, nextech: NextechWorld, settings
) -> None:
    settings.EHR_MAX_ATTEMPTS = 2
    reset_ports()
    port = port_for(connected.conn)
    assert isinstance(port, NextechPort)
    nextech.faults(error_share=1.0, only_endpoints=["GET /Location"])
    with pytest.raises(EHRUnavailable):
        port.nextech.locations()
    h = figures(connected.conn)
    assert h.failures == {"unavailable": 1} and h.failed == 1
    assert h.errors.get("5xx") == 2  # both attempts, counted per attempt
    assert h.requests - h.first_try_ok == 1  # the failed call; sign-in is not an API call


def test_staff_changes_found_by_the_poller_give_the_poll_lag(
    connected: Connected, nextech: NextechWorld
) -> None:
    assert poll_changes(connected.conn, connected.port).changed == 0
    assert figures(connected.conn).freshness_lag_p50_ms is None  # no change seen yet
    nextech.admin(
        "POST",
        f"/_admin/practices/{nextech.practice_id}/appointments",
        {
            "practitioner": "9323",
            "location": "1",
            "start": local(next_weekday(3), "10:00").isoformat(),
        },
    )
    assert poll_changes(connected.conn, connected.port).changed == 1
    h = figures(connected.conn)
    assert h.freshness_source == "poll lag"
    assert h.freshness_lag_p50_ms is not None and 0 <= h.freshness_lag_p50_ms < 60_000
