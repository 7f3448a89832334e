"""Builders for the escalation tests (a specialty practice with protocols and a rota), and the
database rules the models declare: one live and one draft version per protocol, approved live
versions, sensible on-call shifts, row-level security."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Practice, User
from calls.escalation import services
from calls.models import EscalationProtocol, OnCallShift, ProtocolVersion, VersionStatus
from core.tenancy import cross_tenant, tenant_context
from scheduling.models import AppointmentType, Provider
from tests.factories import PracticeFactory

TYPES = {
    "facelift": "Facelift (procedure day)",
    "cataract": "Cataract surgery",
    "mohs": "Mohs surgery",
    "knee": "Knee arthroscopy",
    "consult": "New patient consultation",
}
PROVIDERS = {
    "martinez": ("Dr. Martinez", "+15555550111"),
    "chen": ("Dr. Chen", "+15555550112"),
    "lee": ("Dr. Lee", ""),
}


@dataclass
class Clinic:
    practice: Practice
    types: dict[str, AppointmentType] = field(default_factory=dict)
    providers: dict[str, Provider] = field(default_factory=dict)

    def protocol(
        self,
        name: str,
        triggers: Sequence[str],
        *,
        severity: str = "urgent",
        route: str | None = None,
        types: Sequence[str] = (),
        within_days: int | None = None,
        instructions: str = "",
        approve: bool = True,
        user: User | None = None,
    ) -> ProtocolVersion:
        route = route or {"emergency": "911", "urgent": "on_call", "routine": "message"}[severity]
        content = services.ProtocolContent(
            name=name,
            triggers=tuple(triggers),
            severity=severity,
            route=route,
            instructions=instructions or f"{name}: follow the protocol.",
            within_days_of_procedure=within_days,
            appointment_type_ids=tuple(self.types[t].pk for t in types),
        )
        with tenant_context(self.practice):
            version = services.create_protocol(self.practice, content, user)
            if approve:
                version = services.approve_version(version, user)
        return version

    def on_call(self, provider: str, start: datetime, end: datetime) -> OnCallShift:
        with tenant_context(self.practice):
            return services.add_shift(self.practice, self.providers[provider], start, end)


def clinic(slug: str = "bellavista", name: str = "Bellavista Surgery") -> Clinic:
    practice = PracticeFactory(slug=slug, name=name, timezone="America/Los_Angeles")
    out = Clinic(practice)
    with cross_tenant("test data setup"):
        for key, label in TYPES.items():
            out.types[key] = AppointmentType.objects.create(
                practice=practice, key=key, name=label, minutes=60
            )
        for key, (label, phone) in PROVIDERS.items():
            out.providers[key] = Provider.objects.create(
                practice=practice, key=key, name=label, on_call_phone=phone
            )
    return out


pytestmark = pytest.mark.django_db


# --- the database's own rules ------------------------------------------------------------------


def test_one_live_and_one_draft_version_per_protocol_are_database_rules():
    c = clinic()
    v1 = c.protocol("Post-op bleeding", ["bleeding"])
    with tenant_context(c.practice):
        with pytest.raises(IntegrityError), transaction.atomic():
            ProtocolVersion.objects.create(
                practice=c.practice,
                protocol=v1.protocol,
                number=2,
                status=VersionStatus.LIVE,
                name="x",
                triggers=["x"],
                severity="urgent",
                route="on_call",
                approved_at=timezone.now(),
            )
        services.save_draft(
            v1.protocol,
            services.ProtocolContent("Bleeding v2", ("bleed",), "urgent", "on_call"),
            None,
        )
        with pytest.raises(IntegrityError), transaction.atomic():
            ProtocolVersion.objects.create(
                practice=c.practice,
                protocol=v1.protocol,
                number=9,
                name="x",
                triggers=["x"],
                severity="urgent",
                route="on_call",
            )


def test_a_live_version_is_always_approved_and_has_triggers():
    c = clinic()
    with tenant_context(c.practice):
        protocol = EscalationProtocol.objects.create(practice=c.practice, key="p")
        for bad in (
            {"status": VersionStatus.LIVE, "triggers": ["fever"]},  # not approved
            {"status": VersionStatus.DRAFT, "triggers": []},  # nothing to listen for
            {"status": VersionStatus.DRAFT, "triggers": ["fever"], "within_days_of_procedure": 0},
        ):
            with pytest.raises(IntegrityError), transaction.atomic():
                ProtocolVersion.objects.create(
                    practice=c.practice,
                    protocol=protocol,
                    number=1,
                    name="x",
                    severity="urgent",
                    route="on_call",
                    **bad,
                )


def test_an_on_call_shift_ends_after_it_starts_and_a_provider_never_overlaps_themself():
    c = clinic()
    start = timezone.now().replace(microsecond=0)
    with tenant_context(c.practice):
        with pytest.raises(IntegrityError), transaction.atomic():
            OnCallShift.objects.create(
                practice=c.practice, provider=c.providers["martinez"], start=start, end=start
            )
        OnCallShift.objects.create(
            practice=c.practice,
            provider=c.providers["martinez"],
            start=start,
            end=start + timedelta(hours=12),
        )
        with pytest.raises(IntegrityError), transaction.atomic():
            OnCallShift.objects.create(
                practice=c.practice,
                provider=c.providers["martinez"],
                start=start + timedelta(hours=11),
                end=start + timedelta(hours=20),
            )
        # another provider may overlap (a backup), and back-to-back shifts are fine
        OnCallShift.objects.create(
            practice=c.practice,
            provider=c.providers["chen"],
            start=start + timedelta(hours=6),
            end=start + timedelta(hours=18),
        )
        OnCallShift.objects.create(
            practice=c.practice,
            provider=c.providers["martinez"],
            start=start + timedelta(hours=12),
            end=start + timedelta(hours=24),
        )
        assert OnCallShift.objects.count() == 3


def test_protocols_and_rota_are_invisible_to_another_practice():
    a, b = clinic("alpha", "Alpha"), clinic("beta", "Beta")
    a.protocol("Fever", ["fever"])
    now = timezone.now()
    a.on_call("martinez", now, now + timedelta(hours=8))
    with tenant_context(b.practice):
        assert ProtocolVersion.objects.count() == 0
        assert EscalationProtocol.objects.count() == 0
        assert OnCallShift.objects.count() == 0
    with tenant_context(a.practice):
        assert ProtocolVersion.objects.count() == 1
