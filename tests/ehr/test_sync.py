"""Full sync, reconcile and sandbox provisioning into the scheduling mirror, against the sandbox."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.utils import timezone

from accounts.models import Practice
from core.tenancy import cross_tenant, tenant_context
from ehr import services, tasks
from ehr.models import AppointmentTypeLink, ConnectionHealth
from ehr.nexhealth import normalize as norm
from ehr.sync import Mirror
from ehr_sandbox.testing import wait_until
from onboarding.provisioning import provision_sandbox
from scheduling.models import (
    Appointment,
    AppointmentDescriptor,
    AppointmentType,
    Block,
    Operatory,
    Provider,
    WorkingHour,
)
from tests.ehr.conftest import API_KEY, KEY_B, World, build_world, sign_baa
from tests.scheduling.factories import AppointmentTypeFactory, OperatoryFactory, ProviderFactory

pytestmark = pytest.mark.django_db
LA = ZoneInfo("America/Los_Angeles")


def day_ahead(days: int) -> date:
    return timezone.now().astimezone(LA).date() + timedelta(days=days)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), LA)


def populate(world: World) -> dict:
    """Manual and synced working hours, two blocks, a live and a cancelled appointment."""
    manual = world.working_hours(["Monday", "Wednesday"])[0]
    special = day_ahead(10)
    synced = world.ehr_working_hours(
        [
            {
                "operatory_id": world.operatory2_id,
                "begin_time": "13:00",
                "end_time": "17:00",
                "specific_date": special.isoformat(),
                "label": "Exam",
                "appointment_type_ids": [world.type_id],
            }
        ]
    )[0]
    day = day_ahead(7)
    block = world.ehr_appointment(
        {
            "provider_id": world.provider_id,
            "operatory_id": world.operatory_id,
            "start_time": at(day, 9).isoformat(),
            "end_time": at(day, 11).isoformat(),
            "unavailable": True,
            "note": "Staff meeting",
        }
    )
    holiday = world.ehr_appointment(
        {
            "start_time": at(day_ahead(20), 0).isoformat(),
            "end_time": at(day_ahead(21), 0).isoformat(),
            "unavailable": True,
            "note": "Holiday",
        }
    )
    patient = world.ehr_patient(
        {
            "first_name": "Ana",
            "last_name": "Lopez",
            "bio": {"phone_number": "5555550101"},
        }
    )
    appt = world.ehr_appointment(
        {
            "provider_id": world.provider_id,
            "operatory_id": world.operatory_id,
            "patient_id": patient["id"],
            "start_time": at(day, 11).isoformat(),
            "appointment_type_id": world.type_id,
        }
    )
    gone = world.ehr_appointment(
        {
            "provider_id": world.provider_id,
            "operatory_id": world.operatory2_id,
            "patient_id": patient["id"],
            "start_time": at(day, 14).isoformat(),
            "minutes": 30,
        }
    )
    world.admin("PATCH", f"/_admin/ehr/appointments/{gone['id']}", {"appt": {"cancelled": True}})
    return {
        "manual": manual,
        "synced": synced,
        "block": block,
        "holiday": holiday,
        "appt": appt,
        "gone": gone,
        "patient": patient,
        "special": special,
        "day": day,
    }


def test_full_sync_mirrors_the_ehr_and_a_second_sync_changes_nothing(world):
    ehr = populate(world)
    report = services.sync_connection(world.conn)
    assert report.problems == []
    assert report.counts["providers"].created == 1
    assert report.counts["operatories"].created == 2
    assert report.counts["working_hours"].created == 2
    assert report.counts["blocks"].created == 2
    assert report.counts["appointments"].created == 1  # the cancelled one is not mirrored
    with tenant_context(world.practice):
        provider = Provider.objects.get(ehr_id=world.provider_id)
        assert provider.name == "Dr. Patel" and provider.active
        ops = {o.ehr_id: o for o in Operatory.objects.all()}
        assert set(ops) == {world.operatory_id, world.operatory2_id}
        assert all(o.location_id == world.location.pk for o in ops.values())
        descriptor = AppointmentDescriptor.objects.get(ehr_id=world.descriptor_id)
        assert descriptor.code == "D1110" and descriptor.description == "Prophylaxis Adult"
        cleaning = AppointmentType.objects.get(ehr_id=world.type_id)
        assert cleaning.minutes == 30 and not cleaning.bookable  # staff map it first
        assert list(cleaning.descriptors.all()) == [descriptor]
        assert AppointmentTypeLink.objects.get(connection=world.conn).ehr_id == world.type_id
        manual = WorkingHour.objects.get(ehr_id=ehr["manual"]["id"])
        assert (manual.source, manual.label, manual.days) == ("manual", "", ["Monday", "Wednesday"])
        assert (manual.begin, manual.end) == (time(9), time(12))
        assert list(manual.appointment_types.all()) == [cleaning]
        synced = WorkingHour.objects.get(ehr_id=ehr["synced"]["id"])
        assert (synced.source, synced.label) == ("synced", "Exam")
        assert (
            synced.specific_date == ehr["special"]
            and synced.operatory.ehr_id == world.operatory2_id
        )
        block = Block.objects.get(ehr_id=ehr["block"]["id"])
        assert block.reason == "Staff meeting" and block.provider == provider
        assert block.start == at(ehr["day"], 9) and block.end == at(ehr["day"], 11)
        holiday = Block.objects.get(ehr_id=ehr["holiday"]["id"])
        assert holiday.provider is None and holiday.operatory is None
        appt = Appointment.objects.get(ehr_id=ehr["appt"]["id"])
        assert appt.start == at(ehr["day"], 11) and appt.end == at(ehr["day"], 11, 30)
        assert appt.appointment_type == cleaning and appt.patient_ehr_id == ehr["patient"]["id"]
        assert not appt.cancelled and appt.ehr_updated_at is not None
        assert not Appointment.objects.filter(ehr_id=ehr["gone"]["id"]).exists()
        counts = {m: m.objects.count() for m in (Provider, Operatory, WorkingHour, Block)}

    second = services.sync_connection(world.reload())
    assert second.changes == 0, second.as_dict()
    with tenant_context(world.practice):
        assert {m: m.objects.count() for m in counts} == counts
        health = ConnectionHealth.objects.get(connection=world.conn)
        assert health.last_successful_sync_at is not None
    assert world.reload().status == "connected"


def test_sync_adopts_the_rows_the_importer_made_instead_of_duplicating(world):
    provider = ProviderFactory(practice=world.practice, key="patel", name="Dr. Patel")
    operatory = OperatoryFactory(
        practice=world.practice, location=world.location, key="op1", name="Operatory 1"
    )
    cleaning = AppointmentTypeFactory(
        practice=world.practice, key="cleaning", name="Cleaning", minutes=30
    )
    services.sync_connection(world.conn)
    with tenant_context(world.practice):
        assert Provider.objects.get().pk == provider.pk
        assert Provider.objects.get().ehr_id == world.provider_id
        assert Operatory.objects.get(key="op1").pk == operatory.pk
        assert Operatory.objects.count() == 2
        assert AppointmentType.objects.get().pk == cleaning.pk
        adopted = AppointmentType.objects.get()
        assert adopted.ehr_id == world.type_id and adopted.bookable  # staff's choice kept


def test_a_change_upstream_is_followed_and_a_deletion_retires_the_mirror_row(world):
    ehr = populate(world)
    services.sync_connection(world.conn)
    world.admin(
        "PATCH",
        f"/_admin/ehr/appointments/{ehr['appt']['id']}",
        {
            "appt": {
                "start_time": at(ehr["day"], 15).isoformat(),
                "end_time": at(ehr["day"], 15, 30).isoformat(),
            }
        },
    )
    world.admin(
        "PATCH", f"/_admin/ehr/appointments/{ehr['block']['id']}", {"appt": {"cancelled": True}}
    )
    world.ok("DELETE", f"/working_hours/{ehr['manual']['id']}")
    report = services.sync_connection(world.reload())
    assert report.counts["appointments"].updated == 1
    assert report.counts["blocks"].deleted == 1
    assert report.counts["working_hours"].deleted == 1
    with tenant_context(world.practice):
        assert Appointment.objects.get(ehr_id=ehr["appt"]["id"]).start == at(ehr["day"], 15)
        assert not Block.objects.filter(ehr_id=ehr["block"]["id"]).exists()
        assert not WorkingHour.objects.filter(ehr_id=ehr["manual"]["id"]).exists()


def test_reconcile_repairs_drift_and_records_it_on_the_connection_health(world, eager_celery):
    ehr = populate(world)
    services.sync_connection(world.conn)
    with tenant_context(world.practice):
        WorkingHour.objects.filter(ehr_id=ehr["synced"]["id"]).delete()
        Appointment.objects.filter(ehr_id=ehr["appt"]["id"]).update(cancelled=True)
        Block.objects.filter(ehr_id=ehr["block"]["id"]).delete()
        Block.objects.filter(ehr_id=ehr["holiday"]["id"]).update(reason="edited")
    assert "integrations.reconcile_all" in {
        entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }
    assert tasks.reconcile_all.delay().get() == 1
    with tenant_context(world.practice):
        health = ConnectionHealth.objects.get(connection=world.conn)
        assert health.last_drift == {"working_hours": 1, "appointments": 1, "blocks": 2}
        assert health.drift_total == 4 and health.last_reconcile_at is not None
        assert not Appointment.objects.get(ehr_id=ehr["appt"]["id"]).cancelled
        assert WorkingHour.objects.filter(ehr_id=ehr["synced"]["id"]).exists()
    tasks.reconcile_all.delay().get()
    with tenant_context(world.practice):
        health.refresh_from_db()
        assert health.last_drift == {} and health.drift_total == 4


def test_older_state_never_overwrites_newer(world):
    ehr = populate(world)
    services.sync_connection(world.conn)
    raw = world.ok("GET", f"/appointments/{ehr['appt']['id']}")
    newer = norm.appointment({**raw, "cancelled": True})
    older = norm.appointment(
        {**raw, "start_time": at(ehr["day"], 16).isoformat(), "updated_at": "2020-01-01T00:00:00Z"}
    )
    with tenant_context(world.practice):
        assert Mirror(world.conn).apply_appointment(newer) == "updated"
        assert Mirror(world.conn).apply_appointment(older) == "stale"
        # Same instant as the cancellation, but not cancelled: the cancellation wins.
        assert Mirror(world.conn).apply_appointment(norm.appointment(raw)) == "stale"
        row = Appointment.objects.get(ehr_id=ehr["appt"]["id"])
        assert row.cancelled and row.start == at(ehr["day"], 11)


def test_health_counters_are_flushed_for_the_dashboard(world, eager_celery):
    from ehr import selectors

    services.sync_connection(world.conn)
    live = selectors.health_figures(world.reload())
    assert live.calls >= 7 and live.latency_p50_ms is not None
    # Every call of the sync was answered on its first attempt (the sandbox has no faults).
    assert live.requests == live.first_try_ok == live.calls and live.first_try_percent == 100
    assert tasks.flush_health.delay().get() == 1
    with tenant_context(world.practice):
        health = ConnectionHealth.objects.get(connection=world.conn)
    assert health.calls >= 7 and health.latency_p95_ms is not None and health.errors == {}
    assert health.requests == health.first_try_ok == live.requests and health.failures == {}
    with tenant_context(world.practice):  # as the dashboard reads it, inside its tenant
        [conn] = selectors.connections_with_health(world.practice)
        again = selectors.health_figures(conn)
        assert (again.calls, again.requests) == (health.calls, health.requests)


# --- provisioning the sandbox from a practice configuration ---------------------------------


DEMO = Path(settings.BASE_DIR) / "demo" / "happy-smiles.json"


def test_provisioning_the_demo_practice_is_idempotent_and_the_mirror_comes_from_the_ehr(
    ehr, receiver
):
    from onboarding.services import import_config

    config = json.loads(DEMO.read_text())
    config["ehr"]["kind"] = "none"  # write the practice first; provision explicitly below
    config.pop("baa")
    result = import_config(config)
    practice = Practice.objects.get(pk=result.practice_id)
    sign_baa(practice)
    public = receiver.url.removesuffix("/hooks")

    def provision():
        return provision_sandbox(
            practice,
            config,
            base_url=ehr.base_url,
            api_key=API_KEY,
            admin_token=ehr.admin_token,
            public_url=public,
        )

    first = provision()
    assert dict(first.created) == {
        "locations": 1,
        "providers": 3,
        "operatories": 3,
        "descriptors": 4,
        "appointment_types": 4,
        "working_hours": 8,
        "blocks": 1,
        "patients": 1,
        "appointments": 1,
    }
    state = ehr.admin("GET", "/_admin/state").json()
    assert len(state["webhook_endpoints"]) == 1 and len(state["webhook_subscriptions"]) == 5
    cleaning = next(t for t in state["appointment_types"] if t["name"] == "Cleaning")
    codes = {d["id"]: d["code"] for d in state["descriptors"]}
    assert [codes[i] for i in cleaning["emr_appt_descriptor_ids"]] == ["D1110"]

    def mirror() -> dict:
        with tenant_context(practice):
            return {
                "providers": sorted(Provider.objects.values_list("key", "ehr_id")),
                "operatories": sorted(Operatory.objects.values_list("key", "ehr_id")),
                "types": sorted(AppointmentType.objects.values_list("key", "ehr_id", "bookable")),
                "descriptors": sorted(AppointmentDescriptor.objects.values_list("code", "ehr_id")),
                "hours": sorted(
                    WorkingHour.objects.values_list("ehr_id", "source", "provider__key", "begin")
                ),
                "blocks": list(Block.objects.values_list("ehr_id", "reason")),
                "appointments": list(Appointment.objects.values_list("ehr_id", "cancelled")),
            }

    before = mirror()
    assert [key for key, _ in before["providers"]] == ["lee", "patel", "smith"]
    assert all(ehr_id for _, ehr_id in before["providers"] + before["operatories"])
    assert all(ehr_id and bookable for _, ehr_id, bookable in before["types"])
    assert len(before["descriptors"]) == 4 and all(ehr_id for _, ehr_id in before["descriptors"])
    assert len(before["hours"]) == 8 and all(h[0] and h[1] == "manual" for h in before["hours"])
    assert before["blocks"] == [(state["appointments"][0]["id"], "Staff meeting")]
    assert len(before["appointments"]) == 1 and before["appointments"][0][0]
    with tenant_context(practice):
        exam = AppointmentType.objects.get(key="new-patient-exam")
        assert sorted(exam.descriptors.values_list("code", flat=True)) == ["D0150", "D0210"]
        assert sorted(
            WorkingHour.objects.get(
                provider__key="lee", operatory__key="op2"
            ).appointment_types.values_list("key", flat=True)
        ) == ["cleaning"]

    second = provision()
    assert second.ehr_changes == 0, second.summary()
    assert second.sync_changes == {}
    assert mirror() == before
    again = ehr.admin("GET", "/_admin/state").json()
    assert {k: len(v) for k, v in again.items()} == {k: len(v) for k, v in state.items()}


def test_import_practice_with_the_sandbox_ehr_writes_the_ehr_and_mirrors_it_back(
    ehr, receiver, settings
):
    """`manage.py import_practice` on a file with `ehr.kind = "sandbox"`: the BAA is stored,
    the practice is created in the EHR, and the mirror (with EHR ids) comes from the sync."""
    from onboarding.services import import_config

    settings.EHR_SANDBOX_URL = ehr.base_url
    settings.EHR_SANDBOX_API_KEY = API_KEY
    settings.EHR_SANDBOX_ADMIN_TOKEN = ehr.admin_token
    settings.PORTAL_PUBLIC_URL = receiver.url.removesuffix("/hooks")
    config = json.loads(DEMO.read_text())
    assert config["ehr"]["kind"] == "sandbox"

    first = import_config(config)
    practice = Practice.objects.get(pk=first.practice_id)
    with tenant_context(practice):
        blocks = list(Block.objects.values_list("ehr_id", "reason"))
        assert blocks and all(ehr_id for ehr_id, _ in blocks)
        appointments = list(Appointment.objects.values_list("ehr_id", flat=True))
        assert len(appointments) == 1 and appointments[0]
        assert not Provider.objects.filter(ehr_id__isnull=True).exists()
    state = ehr.admin("GET", "/_admin/state").json()
    assert sorted(p["name"] for p in state["providers"]) == [
        "Dr. Patel",
        "Dr. Smith",
        "Hygienist Lee",
    ]

    second = import_config(config)
    assert second.changes == 0, second.summary()
    assert "EHR: already up to date with the file." in second.notes
    with tenant_context(practice):
        assert list(Block.objects.values_list("ehr_id", "reason")) == blocks


def test_load_demo_imports_every_demo_practice_into_its_sandbox_idempotently(
    ehr, nextech_sandbox, receiver, settings, tmp_path
):
    import io

    from django.core.management import call_command

    settings.EHR_SANDBOX_URL = ehr.base_url
    settings.EHR_SANDBOX_API_KEY = API_KEY
    settings.EHR_SANDBOX_ADMIN_TOKEN = ehr.admin_token
    settings.PORTAL_PUBLIC_URL = receiver.url.removesuffix("/hooks")
    password_file = str(tmp_path / "demo-password")

    def mirror() -> dict:
        with cross_tenant("test: both demo practices"):
            return {
                "types": sorted(AppointmentType.objects.values_list("practice__slug", "ehr_id")),
                "blocks": sorted(Block.objects.values_list("practice__slug", "ehr_id")),
            }

    call_command("load_demo", "--password-file", password_file, stdout=io.StringIO())
    before = mirror()
    assert {slug for slug, _ in before["types"]} == {
        "bellavista",
        "happy-smiles",
        "lakeside-eye-skin",
    }
    assert all(ehr_id for _, ehr_id in before["types"] + before["blocks"])
    call_command("load_demo", "--password-file", password_file, stdout=io.StringIO())
    assert mirror() == before


def test_import_practice_whose_ehr_set_up_fails_keeps_the_import_and_says_so(
    ehr, receiver, settings, tmp_path
):
    """The command prints what it imported, then why the EHR set-up failed, and exits non-zero;
    running it again once the EHR answers finishes the set-up."""
    import io

    from django.core.management import call_command
    from django.core.management.base import CommandError

    settings.EHR_SANDBOX_URL = ehr.base_url
    settings.EHR_SANDBOX_API_KEY = "a-key-the-sandbox-does-not-know"
    settings.EHR_SANDBOX_ADMIN_TOKEN = ehr.admin_token
    settings.PORTAL_PUBLIC_URL = receiver.url.removesuffix("/hooks")
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="imported, but the EHR set-up failed"):
        call_command("import_practice", str(DEMO), stdout=out, stderr=err)
    assert "happy-smiles" in out.getvalue() and "setting up the EHR failed" in err.getvalue()
    practice = Practice.objects.get(slug="happy-smiles")
    with tenant_context(practice):
        assert not Provider.objects.exclude(ehr_id=None).exists()

    settings.EHR_SANDBOX_API_KEY = API_KEY
    call_command("import_practice", str(DEMO), stdout=io.StringIO())
    with tenant_context(practice):
        assert Provider.objects.exists() and not Provider.objects.filter(ehr_id=None).exists()


@pytest.mark.django_db(transaction=True)
def test_load_demo_commits_a_practice_before_setting_up_the_sandbox_and_loading_again_repairs_it(
    ehr, nextech_sandbox, receiver, settings, tmp_path
):
    """The sandbox refuses the portal's key: the import is committed all the same (no HTTP call
    runs inside its transaction), the command fails saying why, and loading again finishes it."""
    import io

    from django.core.management import call_command
    from django.core.management.base import CommandError

    settings.EHR_SANDBOX_URL = ehr.base_url
    settings.EHR_SANDBOX_API_KEY = "a-key-the-sandbox-does-not-know"
    settings.EHR_SANDBOX_ADMIN_TOKEN = ehr.admin_token
    settings.PORTAL_PUBLIC_URL = receiver.url.removesuffix("/hooks")
    password_file = str(tmp_path / "demo-password")

    def types() -> list[tuple[str, int | None]]:
        with cross_tenant("test: the demo practices"):
            return list(AppointmentType.objects.values_list("practice__slug", "ehr_id"))

    with pytest.raises(CommandError, match="Demo data not loaded: bellavista"):
        call_command("load_demo", "--password-file", password_file, stdout=io.StringIO())
    imported = types()
    assert imported and {slug for slug, _ in imported} == {"bellavista"}
    assert all(ehr_id is None for _, ehr_id in imported)

    settings.EHR_SANDBOX_API_KEY = API_KEY
    call_command("load_demo", "--password-file", password_file, stdout=io.StringIO())
    repaired = types()
    assert {slug for slug, _ in repaired} == {"bellavista", "happy-smiles", "lakeside-eye-skin"}
    assert all(ehr_id for _, ehr_id in repaired)


# --- a throttled practice's tasks never hold the worker another practice needs ----------------


@pytest.mark.worker
def test_a_throttled_practices_sync_task_requeues_instead_of_blocking_the_worker(
    ehr, transactional_db
):
    from portal.celery import app
    from tests.workers import celery_worker

    slow = build_world(
        ehr, api_key=KEY_B, rate_limits={"overall": {"limit": 4, "window_seconds": 60}}
    )
    fast = build_world(ehr)
    from ehr.errors import EHRRateLimited
    from ehr.nexhealth.client import client_for

    with pytest.raises(EHRRateLimited):
        for _ in range(10):
            client_for(slow.reload()).providers()
    with celery_worker(concurrency=1) as (_proc, queue):
        stuck = tasks.sync_connection.apply_async(
            args=(slow.conn.pk, slow.practice.pk), queue=queue
        )
        wait_until(lambda: stuck.state == "RETRY", timeout=30, message="the throttled task retries")
        quick = tasks.sync_connection.apply_async(
            args=(fast.conn.pk, fast.practice.pk), queue=queue
        )
        report = quick.get(timeout=30)
        assert report["counts"]["providers"]["created"] == 1
        assert stuck.state == "RETRY"  # still waiting for its bucket, not in the worker
        with app.connection_for_write() as connection:
            connection.default_channel.queue_purge(queue)
    with cross_tenant("test assertions"):
        assert Provider.objects.filter(practice=fast.practice).count() == 1
        assert not Provider.objects.filter(practice=slow.practice).exists()


def test_the_management_commands_test_and_sync_a_practice(world):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("test_connection", world.practice.slug, stdout=out)
    assert "Main Office: connected (" in out.getvalue()
    out = StringIO()
    call_command("sync_practice", world.practice.slug, stdout=out)
    assert "'providers': 1" in out.getvalue()
    out = StringIO()
    call_command("sync_practice", world.practice.slug, "--reconcile", stdout=out)
    assert "no changes" in out.getvalue()
