"""The receptionist as an MCP server, driven by the MCP SDK's own client over HTTP against a
live portal: a whole call (resolve, find, hold, book, wait until confirmed, transcript) with
the EHR sandbox and a real worker, and the refusals (wrong scope, no BAA, another practice's
ids, bad input, no token)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

from calls.models import EncounterNote, NoteStatus
from core.tenancy import tenant_context
from ehr_sandbox.testing import wait_until
from scheduling.models import Booking, BookingStatus, HoldStatus
from tests.booking.test_bookings import desk
from tests.factories import sign_baa
from tests.receptionist_api.factories import (
    CALLER,
    api_client,
    level_2d,
    schedule,
    token_for,
)


def with_mcp(url: str, token: str, session: Callable[[Client], Awaitable[Any]]) -> Any:
    """Run `session` against the portal's /mcp/ with the SDK's Streamable HTTP client."""

    async def main() -> Any:
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
            transport = streamable_http_client(f"{url}/mcp/", http_client=http)
            async with Client(transport) as client:
                return await session(client)

    return anyio.run(main)


def structured(result: Any) -> dict[str, Any]:
    assert result.structured_content is not None, result
    assert isinstance(result.structured_content.get("say"), str)
    assert result.content[0].text == result.structured_content["say"]
    return result.structured_content


@pytest.mark.worker
def test_a_whole_call_over_mcp(transactional_db, live_server, settings):
    with desk(live_server, settings) as d:
        with tenant_context(d.world.practice):
            provider = d.cleaning.working_hours.get().provider

        async def call(client: Client) -> dict[str, Any]:
            listed = await client.list_tools()
            names = [t.name for t in listed.tools]
            seen: dict[str, Any] = {"names": names}
            calls = await client.call_tool(
                "start_call",
                {
                    "external_id": "voice-1",
                    "started_at": "2026-01-05T10:00:00Z",
                },
            )
            seen["call"] = structured(calls)
            resolved = await client.call_tool(
                "resolve_appointment_type",
                {
                    "utterance": d.cleaning.name,
                    "patient_status": "existing",
                },
            )
            seen["resolve"] = structured(resolved)
            found = await client.call_tool(
                "find_slots",
                {
                    "appointment_type_id": d.cleaning.pk,
                    "start_date": d.day.isoformat(),
                    "days": 1,
                    "limit": 2,
                },
            )
            seen["find"] = structured(found)
            slot = seen["find"]["slots"][0]
            held = await client.call_tool(
                "hold_slot",
                {
                    "appointment_type_id": d.cleaning.pk,
                    "provider_id": slot["provider_id"],
                    "operatory_id": slot["operatory_id"],
                    "start": slot["start"],
                },
            )
            seen["hold"] = structured(held)
            booked = await client.call_tool(
                "book",
                {
                    "hold_id": seen["hold"]["id"],
                    "patient": CALLER,
                    "reason": "cleaning",
                    "call_id": "voice-1",
                },
            )
            seen["book"] = structured(booked)
            state = seen["book"]
            with anyio.fail_after(60):
                while state["status"] == "pending":
                    waited = await client.call_tool(
                        "booking_status",
                        {
                            "booking_id": state["id"],
                            "wait_seconds": 15,
                            "known_status": "pending",
                        },
                    )
                    state = structured(waited)
            seen["status"] = state
            at = "2026-01-05T10:01:00Z"
            saved = await client.call_tool(
                "save_transcript",
                {
                    "call_id": seen["call"]["id"],
                    "turns": [
                        {"speaker": "caller", "text": "I need a cleaning", "at": at},
                        {"speaker": "agent", "text": state["say"], "at": at},
                    ],
                },
            )
            seen["transcript"] = structured(saved)
            return seen

        seen = with_mcp(d.portal_url, d.token, call)

        def note_written() -> bool:
            with tenant_context(d.world.practice):
                return EncounterNote.objects.filter(
                    call__external_id="voice-1", status=NoteStatus.WRITTEN
                ).exists()

        # Transcript and confirmed booking: the same worker writes the note to the chart.
        wait_until(note_written, timeout=60, message="the call's encounter note to be written")

    assert seen["names"] == [
        "resolve_appointment_type",
        "find_slots",
        "hold_slot",
        "release_hold",
        "book",
        "booking_status",
        "cancel_booking",
        "start_call",
        "save_transcript",
        "screen_symptoms",
    ]
    assert seen["resolve"]["matches"][0]["appointment_type_id"] == d.cleaning.pk
    assert d.cleaning.name in seen["resolve"]["say"]
    find = seen["find"]
    assert len(find["slots"]) == 2 and find["total"] >= 2
    assert find["say"].startswith(f"{provider.name} has ")
    assert " at 9 AM" in find["say"]  # the sandbox's 09:00, in the practice's zone
    assert seen["hold"]["start"] == find["slots"][0]["start"]
    assert "I'm holding" in seen["hold"]["say"]
    assert seen["book"]["status"] in ("pending", "confirmed")
    assert seen["status"]["status"] == "confirmed", seen["status"]
    assert seen["status"]["say"].startswith("You're all set for ")
    assert seen["transcript"].get("turns") == 2, seen["transcript"]
    with tenant_context(d.world.practice):
        booking = Booking.objects.get(pk=seen["book"]["id"])
        assert booking.status == BookingStatus.CONFIRMED and booking.ehr_appointment_id


# --- refusals ---------------------------------------------------------------------------------


def test_refusals_are_tool_errors_with_the_rest_types(transactional_db, live_server):
    alpha = level_2d(schedule("alpha", "Alpha Dental"))
    beta = level_2d(schedule("beta", "Beta Surgery"))
    sign_baa(beta.s.practice)  # alpha has no BAA
    alpha_client, _ = api_client(alpha.s.practice)
    alpha_token, _ = token_for(alpha_client)
    read_only, _ = token_for(alpha_client, scopes=["availability:read"])
    beta_client, _ = api_client(beta.s.practice)
    beta_token, _ = token_for(beta_client)
    with tenant_context(alpha.s.practice):
        alpha_hold = alpha.cleaning_hold(11)

    async def errors(client: Client, calls: list[tuple[str, dict[str, Any]]]) -> list[dict]:
        out = []
        for name, arguments in calls:
            result = await client.call_tool(name, arguments)
            assert result.is_error, (name, result)
            out.append(structured(result))
        return out

    (no_baa,) = with_mcp(
        live_server.url,
        alpha_token,
        lambda c: errors(
            c,
            [
                ("resolve_appointment_type", {"utterance": "cleaning", "patient_status": "new"}),
            ],
        ),
    )
    assert no_baa["type"] == "baa_required" and no_baa["status"] == 403

    (scope,) = with_mcp(
        live_server.url,
        read_only,
        lambda c: errors(
            c,
            [
                ("release_hold", {"hold_id": alpha_hold.pk}),
            ],
        ),
    )
    assert scope["type"] == "insufficient_scope" and scope["status"] == 403

    other, bad, extra, wait, huge = with_mcp(
        live_server.url,
        beta_token,
        lambda c: errors(
            c,
            [
                ("release_hold", {"hold_id": alpha_hold.pk}),
                (
                    "find_slots",
                    {"appointment_type_id": beta.cleaning.pk, "start_date": "someday", "days": 1},
                ),
                (
                    "find_slots",
                    {
                        "appointment_type_id": beta.cleaning.pk,
                        "start_date": beta.day.isoformat(),
                        "days": 1,
                        "limit": 500,
                    },
                ),
                ("booking_status", {"booking_id": 1, "wait_seconds": 60}),
                ("cancel_booking", {"booking_id": 10**20}),
            ],
        ),
    )
    assert other["type"] == "not_found" and other["status"] == 404  # alpha's hold
    assert bad["type"] == "validation_error" and "start_date" in bad["errors"]
    assert extra["type"] == "validation_error" and "limit" in extra["errors"]
    assert wait["type"] == "validation_error" and "wait_seconds" in wait["errors"]
    assert huge["type"] == "not_found"
    for problem in (no_baa, scope, other, bad):
        assert problem["say"]
    with tenant_context(alpha.s.practice):
        alpha_hold.refresh_from_db()
        assert alpha_hold.status == HoldStatus.ACTIVE  # beta's call did not release it


def test_no_token_is_401_and_tools_json_lists_the_same_tools(transactional_db, live_server):
    refused = httpx.post(
        f"{live_server.url}/mcp/",
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={"Authorization": "Bearer nope", "Accept": "application/json, text/event-stream"},
    )
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")

    alpha = level_2d(schedule("alpha", "Alpha Dental"))
    client, _ = api_client(alpha.s.practice)
    token, _ = token_for(client)

    async def listing(c: Client) -> Any:
        return (await c.list_tools()).tools

    listed = with_mcp(live_server.url, token, listing)
    tools_url = f"{live_server.url}/api/v1/tools.json"
    assert httpx.get(tools_url).status_code == 401
    answer = httpx.get(tools_url, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    functions = answer.json()["tools"]
    assert [f["function"]["name"] for f in functions] == [t.name for t in listed]
    for function, tool in zip(functions, listed, strict=True):
        assert function["type"] == "function"
        assert function["function"]["parameters"] == tool.input_schema
        assert "say" in tool.output_schema["properties"]


# --- without a worker: booking stays pending; the other tools; the audit trail ------------------


def booking_changes(practice, booking_id: int) -> set[tuple[int, str, bool]]:
    """The booking's change entries: (action, acting API client, has a request id)."""
    from compliance.models import ChangeEntry
    from core.tenancy import cross_tenant

    with cross_tenant("test: read the audit trail"):
        rows = ChangeEntry.objects.filter(
            practice_id=practice.pk,
            content_type__model="booking",
            object_pk=str(booking_id),
        )
        return {(e.action, e.api_client_id, bool(e.cid)) for e in rows}


def test_book_answers_at_once_and_status_waits_bounded(transactional_db, live_server):
    alpha = level_2d(schedule("alpha", "Alpha Dental"))
    sign_baa(alpha.s.practice)
    client, _ = api_client(alpha.s.practice)
    token, _ = token_for(client)
    patient = dict(CALLER)
    with tenant_context(alpha.s.practice):
        holds = [alpha.cleaning_hold(hh, mm) for hh, mm in ((11, 0), (11, 30))]
    # The same booking through REST, for the audit trail's comparison.
    rest = httpx.post(
        f"{live_server.url}/api/v1/bookings",
        json={"hold_id": holds[1].pk, "patient": patient, "reason": "cleaning"},
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "rest-1"},
    )
    assert rest.status_code == 202, rest.text
    rest_id = rest.json()["id"]
    assert (
        httpx.get(
            f"{live_server.url}/api/v1/bookings/{rest_id}",
            headers={"Authorization": f"Bearer {token}"},
        ).status_code
        == 200
    )

    async def session(c: Client) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        seen["book"] = structured(
            await c.call_tool(
                "book", {"hold_id": holds[0].pk, "patient": patient, "reason": "cleaning"}
            )
        )
        t0 = anyio.current_time()
        seen["wait"] = structured(
            await c.call_tool(
                "booking_status",
                {"booking_id": seen["book"]["id"], "wait_seconds": 1, "known_status": "pending"},
            )
        )
        seen["wait_s"] = anyio.current_time() - t0
        seen["cancel"] = structured(
            await c.call_tool("cancel_booking", {"booking_id": seen["book"]["id"]})
        )
        call = structured(
            await c.call_tool(
                "start_call", {"external_id": "voice-2", "started_at": "2026-01-05T10:00:00Z"}
            )
        )
        seen["screen"] = structured(
            await c.call_tool(
                "screen_symptoms", {"call_id": call["id"], "text": "I'd like a cleaning"}
            )
        )
        return seen

    seen = with_mcp(live_server.url, token, session)
    book, wait = seen["book"], seen["wait"]
    assert book["status"] == "pending" and book["pending_reason"] == "queued", book
    assert book["say"] == book["pending_message"]
    # At once: "pending, queued" with no worker running means no EHR write was awaited. The
    # status call waited the second it was given and answered (no stop-watch ceiling: these
    # machines swing by the hour, and an unbounded wait would hang into the test's timeout).
    assert wait["status"] == "pending" and seen["wait_s"] >= 1
    assert seen["cancel"]["status"] == "cancelled"
    assert seen["cancel"]["say"] == "That appointment is cancelled."
    assert seen["screen"]["escalate"] is False and seen["screen"]["say"]
    # The MCP booking left the trail the REST one did (its creation), its cancelling aside.
    mcp_changes = booking_changes(alpha.s.practice, book["id"])
    rest_changes = booking_changes(alpha.s.practice, rest_id)
    assert rest_changes and rest_changes <= mcp_changes, (rest_changes, mcp_changes)
    assert all(api_client_id == str(client.pk) for _, api_client_id, _ in mcp_changes)


def test_the_docs_tool_table_is_the_codes():
    from pathlib import Path

    from receptionist_api.voice import tools

    text = (Path(__file__).resolve().parents[2] / "docs" / "voice-platforms.md").read_text()
    table = text.split("<!-- tools:start -->\n", 1)[1].split("\n<!-- tools:end -->", 1)[0]
    assert table == tools.markdown_table(), tools.markdown_table()
