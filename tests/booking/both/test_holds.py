"""Holds under contention, the same for either EHR: thirty callers' agents hold one slot at
the same instant, each on its own HTTP connection to the live portal."""

from __future__ import annotations

from core.tenancy import tenant_context
from scheduling.models import Hold, HoldStatus
from tests.scheduling.test_holds import fire_together, tally

from .conftest import World


def test_30_concurrent_holds_on_one_slot_give_one_201_and_29_clean_409s(world: World) -> None:
    slot = world.slot(10)
    body = {
        "appointment_type_id": world.cleaning.pk,
        "provider_id": slot["provider_id"],
        "operatory_id": slot["operatory_id"],
        "start": slot["start"],
    }
    responses = fire_together(world.agent.url, world.agent.token, [body] * 30)
    assert tally(responses) == {201: 1, 409: 29}
    with tenant_context(world.practice):
        assert Hold.objects.filter(status=HoldStatus.ACTIVE).count() == 1
    assert not world.offered(world.at(10))
