"""Practice configuration as a file: validation, import, idempotency, round trip, isolation."""

from __future__ import annotations

import copy
import io
import json
from datetime import UTC, datetime, time
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import Location, Practice
from core.tenancy import cross_tenant, tenant_context
from onboarding.services import (
    ConfigError,
    dump_text,
    export_config,
    import_config,
    parse_text,
    validate_config,
)
from scheduling.models import (
    Appointment,
    AppointmentDescriptor,
    AppointmentType,
    Block,
    CallerPhrase,
    Hold,
    Operatory,
    Provider,
    ProviderRule,
    WorkingHour,
)

pytestmark = pytest.mark.django_db

DEMO_DIR = Path(settings.BASE_DIR) / "demo"
DEMO_FILES = sorted(DEMO_DIR.glob("*.json"))
# Stored but not exported (baa: the agreement itself is the record).
UNSUPPORTED = ("baa",)
TENANT_MODELS = [
    Location,
    Operatory,
    Provider,
    AppointmentDescriptor,
    AppointmentType,
    CallerPhrase,
    WorkingHour,
    Block,
    Appointment,
    ProviderRule,
]
THROUGH = [
    AppointmentType.providers.through,
    AppointmentType.descriptors.through,
    WorkingHour.appointment_types.through,
    ProviderRule.appointment_types.through,
]


def demo(name: str) -> dict:
    """A demo file as a document without an EHR: these tests are about the file itself (importing
    into the EHR sandbox is tested in tests/ehr/test_sync.py)."""
    doc = json.loads((DEMO_DIR / f"{name}.json").read_text())
    doc["ehr"]["kind"] = "none"
    return doc


def supported(doc: dict) -> dict:
    """The parts of a document the importer stores (what an export can give back)."""
    out = {k: copy.deepcopy(v) for k, v in doc.items() if k not in UNSUPPORTED}
    for appointment in out.get("appointments", []):
        appointment.pop("patient", None)
    return out


def snapshot(practice: Practice) -> dict[str, list]:
    """Every row of the practice (ids and values), and every link row."""
    with tenant_context(practice):
        rows = {m.__name__: list(m.objects.order_by("id").values()) for m in TENANT_MODELS}
        type_ids = list(AppointmentType.objects.values_list("id", flat=True))
        hour_ids = list(WorkingHour.objects.values_list("id", flat=True))
        rule_ids = list(ProviderRule.objects.values_list("id", flat=True))
    owners = {
        THROUGH[0]: ("appointmenttype_id", type_ids),
        THROUGH[1]: ("appointmenttype_id", type_ids),
        THROUGH[2]: ("workinghour_id", hour_ids),
        THROUGH[3]: ("providerrule_id", rule_ids),
    }
    for model, (owner, ids) in owners.items():
        rows[model.__name__] = list(
            model.objects.filter(**{f"{owner}__in": ids}).order_by("id").values()
        )
    rows["practice"] = list(Practice.objects.filter(pk=practice.pk).values())
    return rows


def errors_of(doc: dict) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        import_config(doc)
    assert caught.value.errors == validate_config(doc)
    return caught.value.errors


# --- importing the demo practices -------------------------------------------------------------


def test_import_happy_smiles_creates_the_whole_set_up():
    result = import_config(demo("happy-smiles"))

    counts = {name: (c.created, c.updated, c.deleted) for name, c in result.sections.items()}
    assert counts == {
        "practice": (1, 0, 0),
        "locations": (1, 0, 0),
        "operatories": (3, 0, 0),
        "providers": (3, 0, 0),
        "descriptors": (4, 0, 0),
        "appointment_types": (4, 0, 0),
        "phrases": (13, 0, 0),
        "working_hours": (8, 0, 0),
        "blocks": (1, 0, 0),
        "appointments": (1, 0, 0),
        "provider_rules": (1, 0, 0),
        "escalation_protocols": (1, 0, 0),
        "on_call": (1, 0, 0),
    }
    practice = Practice.objects.get(slug="happy-smiles")
    assert (practice.name, practice.timezone) == ("Happy Smiles Dental", "America/Los_Angeles")
    with tenant_context(practice):
        main = Location.objects.get(key="main")
        assert main.working_hours_mode == "manual"
        assert Operatory.objects.get(key="op3").capabilities == ["imaging"]
        assert dict(Provider.objects.values_list("key", "on_call_phone")) == {
            "smith": "+15555550100",
            "patel": "+15555550101",
            "lee": "",
        }
        npe = AppointmentType.objects.get(key="new-patient-exam")
        assert (npe.minutes, npe.new_patients, npe.existing_patients) == (60, True, False)
        assert npe.required_capabilities == ["imaging"]
        assert (npe.lead_time_hours, npe.horizon_days) == (24, 60)
        assert set(npe.providers.values_list("key", flat=True)) == {"smith", "patel"}
        assert sorted(npe.descriptors.values_list("code", "location__key")) == [
            ("D0150", "main"),
            ("D0210", "main"),
        ]
        assert sorted(npe.phrases.values_list("text", flat=True)) == [
            "become a patient",
            "first visit",
            "new patient",
        ]
        hours = WorkingHour.objects.filter(provider__key="patel", operatory__key="op2")
        tuesday = hours.get(days=["Tuesday", "Thursday"])
        assert (tuesday.begin, tuesday.end, tuesday.source) == (time(13), time(17), "manual")
        assert set(tuesday.appointment_types.values_list("key", flat=True)) == {"exam", "cleaning"}
        rule = ProviderRule.objects.get()
        assert (rule.provider.key, rule.patient_status, rule.days) == (
            "smith",
            "new",
            ["Tuesday", "Thursday"],
        )
        assert list(rule.appointment_types.values_list("key", flat=True)) == ["new-patient-exam"]
        # 09:00 in Los Angeles in December is 17:00 UTC
        block = Block.objects.get()
        assert (block.start, block.end) == (
            datetime(2026, 12, 7, 17, tzinfo=UTC),
            datetime(2026, 12, 7, 19, tzinfo=UTC),
        )
        assert block.location == main
        appointment = Appointment.objects.get()
        assert appointment.start == datetime(2026, 12, 7, 16, tzinfo=UTC)
        assert appointment.end == datetime(2026, 12, 7, 17, tzinfo=UTC)
        assert appointment.appointment_type.key == "cleaning"
        assert appointment.patient_ehr_id is None  # patients are PHI: not stored
    # the BAA and the dropped patient are reported; every section is stored now
    notes = "\n".join(result.notes)
    assert "baa: version 1, executed" in notes
    assert "not imported" not in notes
    assert "1 patient record(s) validated but not stored" in notes


def test_import_bellavista_and_both_demo_files_are_valid():
    for path in DEMO_FILES:
        assert validate_config(json.loads(path.read_text())) == [], path.name
    import_config(demo("bellavista-plastic-surgery"))
    practice = Practice.objects.get(slug="bellavista")
    with tenant_context(practice):
        procedure = AppointmentType.objects.get(key="procedure-day")
        assert procedure.required_capabilities == ["or"]
        assert procedure.minutes == 180
        okafor = Provider.objects.get(key="okafor")
        assert okafor.accepts_new_patients is False
        assert okafor.on_call_phone == "+15555550203"
        # 10:00 New York in December is 15:00 UTC; 60 minutes
        appointment = Appointment.objects.get()
        assert (appointment.start, appointment.end) == (
            datetime(2026, 12, 7, 15, tzinfo=UTC),
            datetime(2026, 12, 7, 16, tzinfo=UTC),
        )


@pytest.mark.parametrize("path", DEMO_FILES, ids=lambda p: p.stem)
def test_importing_twice_changes_nothing_and_keeps_every_row_id(path):
    doc = demo(path.stem)
    first = import_config(doc)
    practice = Practice.objects.get(slug=doc["practice"]["slug"])
    before = snapshot(practice)

    second = import_config(doc)

    assert first.changes > 0
    assert second.changes == 0
    assert all(c.total == 0 for c in second.sections.values())
    assert snapshot(practice) == before
    assert second.summary()[0] == f"Practice {practice.slug}: no changes"


@pytest.mark.parametrize("path", DEMO_FILES, ids=lambda p: p.stem)
def test_round_trip_export_of_an_import_is_the_file(path):
    doc = demo(path.stem)
    import_config(doc)
    practice = Practice.objects.get(slug=doc["practice"]["slug"])

    exported = export_config(practice)

    assert exported == supported(doc)
    # ... and importing the export changes nothing
    assert import_config(exported).changes == 0


# --- validation -----------------------------------------------------------------------------


def test_an_invalid_file_changes_nothing_and_reports_every_error_with_its_path():
    doc = demo("happy-smiles")
    doc["appointment_types"][2]["minutes"] = 0
    doc["working_hours"][1]["provider"] = "smyth"
    doc["working_hours"][2]["days"] = ["Monday", "Funday"]
    doc["working_hours"][3]["begin"] = "17:00"
    doc["providers"].append({"key": "patel", "name": "Another Patel"})
    doc["surprise"] = True

    errors = errors_of(doc)

    assert errors == [
        "surprise: unknown field",
        'providers[3].key: duplicate key "patel"',
        "appointment_types[2].minutes: must be a positive integer",
        'working_hours[1].provider: unknown provider "smyth"',
        'working_hours[2].days[1]: unknown weekday "Funday"',
        "working_hours[3].end: must be after begin",
    ]
    assert not Practice.objects.filter(slug="happy-smiles").exists()
    with cross_tenant("test: nothing was written anywhere"):
        assert all(not m.objects.exists() for m in TENANT_MODELS)


def test_an_invalid_update_leaves_the_existing_practice_untouched():
    import_config(demo("happy-smiles"))
    practice = Practice.objects.get(slug="happy-smiles")
    before = snapshot(practice)
    doc = demo("happy-smiles")
    doc["practice"]["name"] = "Renamed"
    doc["appointment_types"][0]["phrases"] = ["cleaning"]
    doc["blocks"][0]["end"] = "2026-12-07T08:00"

    assert errors_of(doc) == ["blocks[0].end: must be after start"]
    assert snapshot(practice) == before


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (
            lambda d: d["practice"].update(timezone="Mars/Olympus_Mons"),
            'practice.timezone: unknown time zone "Mars/Olympus_Mons" '
            "(use an IANA name such as America/New_York)",
        ),
        (
            lambda d: d["ehr"].update(kind="epic"),
            'ehr.kind: must be one of "none", "sandbox", "nextech"',
        ),
        (
            lambda d: d["providers"][0].update(on_call_phone="555-01"),
            'providers[0].on_call_phone: "555-01" is not a valid phone number '
            "(use E.164, +15555550101)",
        ),
        (
            lambda d: d["appointment_types"][0].update(minuts=30),
            "appointment_types[0].minuts: unknown field",
        ),
        (
            lambda d: d["appointment_types"][0].update(new_patients=False, existing_patients=False),
            "appointment_types[0]: new_patients and existing_patients cannot both be false",
        ),
        (
            lambda d: d["appointment_types"][0]["phrases"].append("Teeth Cleaned"),
            'appointment_types[0].phrases[4]: "Teeth Cleaned" is listed twice',
        ),
        (
            lambda d: d["operatories"][0].update(location="annex"),
            'operatories[0].location: unknown location "annex"',
        ),
        (
            lambda d: d["working_hours"][0].update(appointment_types=["whitening"]),
            'working_hours[0].appointment_types[0]: unknown appointment type "whitening"',
        ),
        (
            lambda d: d["working_hours"][0].pop("days"),
            "working_hours[0].days: must name at least one weekday (or give specific_date)",
        ),
        (
            lambda d: d["working_hours"][0].update(begin="9am"),
            'working_hours[0].begin: must be a time of day "HH:MM" (24-hour)',
        ),
        (
            lambda d: d["blocks"][0].update(start="next tuesday"),
            'blocks[0].start: must be a date and time "YYYY-MM-DDTHH:MM" '
            "(local, or with an offset)",
        ),
        (
            lambda d: d["blocks"][0].update(operatory=None),
            "blocks[0].location: is required when there is no operatory",
        ),
        (
            lambda d: d["provider_rules"][0].update(patient_status="vip"),
            'provider_rules[0].patient_status: must be one of "new", "existing", "any"',
        ),
        (
            lambda d: d["appointments"][0]["patient"].update(date_of_birth="1980-02-30"),
            'appointments[0].patient.date_of_birth: must be a date "YYYY-MM-DD"',
        ),
        (
            lambda d: d["baa"].update(status="signed"),
            'baa.status: must be one of "draft", "sent", "executed", "terminated", "expired"',
        ),
        (
            lambda d: d["escalation_protocols"][0].update(severity="meh"),
            'escalation_protocols[0].severity: must be one of "routine", "urgent", "emergency"',
        ),
        (
            lambda d: d["on_call"][0].update(provider="lee"),
            'on_call[0].provider: "lee" has no on_call_phone',
        ),
        (
            lambda d: d["lay_terms"][0].update(terms=["Cleaning", "cleaning "]),
            'lay_terms[0].terms[1]: "cleaning" is listed twice',
        ),
        (
            lambda d: d["lay_terms"].append({"terms": []}),
            "lay_terms[1].terms: must name at least one term",
        ),
        (
            lambda d: d["lay_terms"].append({"broader": ["cleaning"]}),
            "lay_terms[1].terms: is required",
        ),
        (
            lambda d: d["ehr"].update(working_hours="synced"),
            'working_hours[0].operatory: location "main" takes its working hours from the EHR '
            '(working hours "synced"): manual working hours cannot be imported for it',
        ),
        (
            lambda d: d["ehr"].update(kind="sandbox", working_hours="native"),
            'ehr.working_hours: "native" needs an EHR with its own free slots (nextech)',
        ),
        (
            lambda d: (
                d["ehr"].update(kind="sandbox"),
                d["locations"][0].update(working_hours="native"),
            ),
            'locations[0].working_hours: "native" needs an EHR with its own free slots (nextech)',
        ),
    ],
)
def test_each_kind_of_error_names_its_path(change, error):
    doc = demo("happy-smiles")
    change(doc)
    assert error in validate_config(doc)


def test_documents_that_are_not_objects_or_lack_a_practice():
    assert validate_config([]) == ['(document): must be an object with a "practice" section']
    assert validate_config({"locations": []}) == ["practice: is required"]
    with pytest.raises(ConfigError, match="not valid JSON"):
        parse_text("{nope", "json")


def test_a_minimal_file_is_enough():
    result = import_config(
        {"practice": {"slug": "tiny", "name": "Tiny Clinic", "timezone": "Europe/Dublin"}}
    )
    assert result.sections["practice"].created == 1
    assert export_config(Practice.objects.get(slug="tiny")) == {
        "practice": {"slug": "tiny", "name": "Tiny Clinic", "timezone": "Europe/Dublin"},
        "ehr": {"kind": "none", "working_hours": "manual"},
        "locations": [],
        "operatories": [],
        "providers": [],
        "appointment_types": [],
        "working_hours": [],
        "blocks": [],
        "appointments": [],
        "provider_rules": [],
        "escalation_protocols": [],
        "on_call": [],
        "lay_terms": [],
    }


# --- time zones -------------------------------------------------------------------------------


def dst_doc() -> dict:
    doc = demo("bellavista-plastic-surgery")  # America/New_York
    doc["blocks"] = [
        # the night clocks spring forward (2026-03-08 02:00 EST -> 03:00 EDT): one real hour
        {"provider": "chen", "operatory": "consult-a", "start": "2026-03-08T01:30",
         "end": "2026-03-08T03:30", "reason": "Spring forward"},
        # the night clocks fall back (2026-11-01 02:00 EDT -> 01:00 EST): 01:30 happens twice
        {"provider": "chen", "operatory": "consult-a", "start": "2026-11-01T01:30",
         "end": "2026-11-01T01:30-05:00", "reason": "Fall back"},
    ]  # fmt: skip
    doc["appointments"] = [
        {"provider": "chen", "operatory": "consult-a", "start": "2026-03-08T01:30", "minutes": 60,
         "appointment_type": "new-consult"},
    ]  # fmt: skip
    return doc


def test_local_times_follow_the_practice_zone_across_dst():
    doc = dst_doc()
    import_config(doc)
    practice = Practice.objects.get(slug="bellavista")
    with tenant_context(practice):
        spring, fall = Block.objects.order_by("start")
        appointment = Appointment.objects.get()
    assert (spring.start, spring.end) == (
        datetime(2026, 3, 8, 6, 30, tzinfo=UTC),  # 01:30 EST
        datetime(2026, 3, 8, 7, 30, tzinfo=UTC),  # 03:30 EDT
    )
    # an ambiguous local time means its first occurrence; an offset picks the second
    assert (fall.start, fall.end) == (
        datetime(2026, 11, 1, 5, 30, tzinfo=UTC),  # 01:30 EDT
        datetime(2026, 11, 1, 6, 30, tzinfo=UTC),  # 01:30 EST
    )
    # end = start + minutes in real time: 01:30 EST + 60 min = 03:30 EDT
    assert appointment.end == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)
    # the export writes the repeated hour with its offset, so the round trip is exact
    assert export_config(practice)["blocks"] == doc["blocks"]
    assert import_config(export_config(practice)).changes == 0


def test_a_local_time_the_clocks_skip_is_an_error():
    doc = dst_doc()
    doc["blocks"][0]["start"] = "2026-03-08T02:30"
    assert validate_config(doc) == [
        'blocks[0].start: "2026-03-08T02:30" does not exist in America/New_York '
        "(the clocks skip it)"
    ]


# --- updates ----------------------------------------------------------------------------------


def test_changing_minutes_and_removing_a_phrase_updates_exactly_that():
    import_config(demo("happy-smiles"))
    practice = Practice.objects.get(slug="happy-smiles")
    before = snapshot(practice)
    doc = demo("happy-smiles")
    doc["appointment_types"][1]["minutes"] = 20  # exam
    doc["appointment_types"][0]["phrases"].remove("hygiene visit")  # cleaning

    result = import_config(doc)

    changed = {
        name: (c.created, c.updated, c.deleted) for name, c in result.sections.items() if c.total
    }
    assert changed == {"appointment_types": (0, 1, 0), "phrases": (0, 0, 1)}
    after = snapshot(practice)
    assert [r["id"] for r in after["AppointmentType"]] == [
        r["id"] for r in before["AppointmentType"]
    ]
    assert {r["key"]: r["minutes"] for r in after["AppointmentType"]}["exam"] == 20
    assert {r["text"] for r in before["CallerPhrase"]} - {
        r["text"] for r in after["CallerPhrase"]
    } == {"hygiene visit"}
    for name in after:
        if name not in ("AppointmentType", "CallerPhrase"):
            assert after[name] == before[name], name
    assert export_config(practice) == supported(doc)


def test_editing_keyless_rows_updates_them_in_place_and_links_follow():
    import_config(demo("happy-smiles"))
    practice = Practice.objects.get(slug="happy-smiles")
    with tenant_context(practice):
        hour_ids = list(WorkingHour.objects.order_by("id").values_list("id", flat=True))
        block_id = Block.objects.get().pk
    doc = demo("happy-smiles")
    doc["working_hours"][1]["end"] = "18:00"
    doc["working_hours"][5]["appointment_types"] = ["exam"]
    doc["blocks"][0]["reason"] = "Team training"
    doc["provider_rules"][0]["days"] = ["Tuesday"]

    result = import_config(doc)

    changed = {
        name: (c.created, c.updated, c.deleted) for name, c in result.sections.items() if c.total
    }
    assert changed == {"working_hours": (0, 2, 0), "blocks": (0, 1, 0), "provider_rules": (0, 1, 0)}
    with tenant_context(practice):
        assert list(WorkingHour.objects.order_by("id").values_list("id", flat=True)) == hour_ids
        assert WorkingHour.objects.get(pk=hour_ids[1]).end == time(18)
        assert list(
            WorkingHour.objects.get(pk=hour_ids[5]).appointment_types.values_list("key", flat=True)
        ) == ["exam"]
        assert Block.objects.get(pk=block_id).reason == "Team training"
    assert import_config(doc).changes == 0


def test_rows_missing_from_the_file_are_deleted():
    import_config(demo("happy-smiles"))
    practice = Practice.objects.get(slug="happy-smiles")
    doc = demo("happy-smiles")
    # drop Hygienist Lee and everything that mentions them, a type, a rule, the block
    doc["providers"] = [p for p in doc["providers"] if p["key"] != "lee"]
    doc["appointment_types"] = [t for t in doc["appointment_types"] if t["key"] != "root-canal"]
    for t in doc["appointment_types"]:
        t["providers"] = [p for p in t["providers"] if p != "lee"]
    doc["working_hours"] = [
        {**h, "appointment_types": [t for t in h["appointment_types"] if t != "root-canal"]}
        for h in doc["working_hours"]
        if h["provider"] != "lee"
    ]
    doc["provider_rules"] = []
    doc["blocks"] = []

    result = import_config(doc)

    deleted = {name: c.deleted for name, c in result.sections.items() if c.deleted}
    assert deleted == {
        "providers": 1,
        "appointment_types": 1,
        "working_hours": 2,
        "provider_rules": 1,
        "blocks": 1,
    }
    with tenant_context(practice):
        assert not Provider.objects.filter(key="lee").exists()
        assert not CallerPhrase.objects.filter(text="root canal").exists()
        # descriptors are the EHR's catalogue: kept even when no type uses them any more
        assert AppointmentDescriptor.objects.filter(code="D3310").exists()
    assert export_config(practice) == supported(doc)
    assert import_config(doc).changes == 0


def test_a_row_still_referenced_elsewhere_is_not_deleted_and_nothing_changes():
    import_config(demo("happy-smiles"))
    practice = Practice.objects.get(slug="happy-smiles")
    with tenant_context(practice):
        lee = Provider.objects.get(key="lee")
        cleaning = AppointmentType.objects.get(key="cleaning")
        start = timezone.now() + timezone.timedelta(days=3)
        Hold.objects.create(
            practice=practice,
            appointment_type=cleaning,
            provider=lee,
            operatory=Operatory.objects.get(key="op1"),
            location=Location.objects.get(key="main"),
            start=start,
            end=start + timezone.timedelta(minutes=30),
            expires_at=timezone.now() + timezone.timedelta(minutes=5),
        )
    before = snapshot(practice)
    doc = demo("happy-smiles")
    doc["providers"] = [p for p in doc["providers"] if p["key"] != "lee"]
    doc["appointment_types"][0]["providers"] = ["patel"]
    doc["working_hours"] = [h for h in doc["working_hours"] if h["provider"] != "lee"]

    assert errors_of_import(doc) == [
        'providers: "lee" is not in the file but cannot be deleted: still used by 1 holds '
        '(keep it in the file, with "active": false to retire it)'
    ]
    assert snapshot(practice) == before

    # retiring instead of deleting works
    doc = demo("happy-smiles")
    doc["providers"][2]["active"] = False
    assert import_config(doc).sections["providers"].updated == 1
    with tenant_context(practice):
        assert Provider.objects.get(key="lee").active is False
    assert export_config(practice)["providers"][2] == {**doc["providers"][2], "active": False}


def errors_of_import(doc: dict) -> list[str]:
    assert validate_config(doc) == []  # a valid document ...
    with pytest.raises(ConfigError) as caught:  # ... that cannot be applied
        import_config(doc)
    return caught.value.errors


def test_rows_owned_by_the_ehr_are_left_alone():
    import_config(demo("happy-smiles"))
    practice = Practice.objects.get(slug="happy-smiles")
    with tenant_context(practice):
        patel = Provider.objects.get(key="patel")
        op1 = Operatory.objects.get(key="op1")
        synced_hour = WorkingHour.objects.create(
            practice=practice, provider=patel, operatory=op1, days=["Friday"],
            begin=time(8), end=time(9), source="synced", ehr_id=77,
        )  # fmt: skip
        ehr_appointment = Appointment.objects.create(
            practice=practice, provider=patel, operatory=op1, location=op1.location, ehr_id=501,
            start=datetime(2026, 12, 8, 17, tzinfo=UTC), end=datetime(2026, 12, 8, 18, tzinfo=UTC),
        )  # fmt: skip

    assert import_config(demo("happy-smiles")).changes == 0
    with tenant_context(practice):
        assert WorkingHour.objects.filter(pk=synced_hour.pk).exists()
        assert Appointment.objects.filter(pk=ehr_appointment.pk).exists()
    assert export_config(practice) == supported(demo("happy-smiles"))


def test_new_set_members_are_appended_in_the_export():
    import_config(demo("happy-smiles"))
    doc = demo("happy-smiles")
    doc["appointment_types"][0]["phrases"].insert(0, "polish my teeth")
    doc["appointment_types"][0]["providers"] = ["lee", "patel", "smith"]
    import_config(doc)
    exported = export_config(Practice.objects.get(slug="happy-smiles"))
    cleaning = exported["appointment_types"][0]
    assert cleaning["phrases"] == [
        *demo("happy-smiles")["appointment_types"][0]["phrases"],
        "polish my teeth",
    ]
    assert cleaning["providers"] == ["patel", "lee", "smith"]


# --- tenancy ----------------------------------------------------------------------------------


def test_importing_practice_b_never_touches_practice_a():
    import_config(demo("happy-smiles"))
    a = Practice.objects.get(slug="happy-smiles")
    before = snapshot(a)
    # practice B reuses every key of A, then drops most of them
    doc = demo("happy-smiles")
    doc["practice"] = {"slug": "b-dental", "name": "B Dental", "timezone": "America/Chicago"}
    import_config(doc)
    doc["appointment_types"] = doc["appointment_types"][:1]
    doc["appointment_types"][0]["phrases"] = ["cleaning"]
    doc["working_hours"] = [{**doc["working_hours"][2], "appointment_types": ["cleaning"]}]
    doc["appointments"] = doc["blocks"] = doc["provider_rules"] = []
    result = import_config(doc)

    assert result.sections["appointment_types"].deleted == 3
    assert snapshot(a) == before
    b = Practice.objects.get(slug="b-dental")
    with tenant_context(b):
        assert list(AppointmentType.objects.values_list("key", flat=True)) == ["cleaning"]
        assert set(AppointmentType.objects.values_list("practice_id", flat=True)) == {b.pk}


# --- files and commands -----------------------------------------------------------------------


def test_yaml_documents_import_and_export(tmp_path):
    doc = demo("happy-smiles")
    path = tmp_path / "happy.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    # unquoted clock times must stay times (YAML 1.1 would read 13:00 as the integer 780)
    path.write_text(path.read_text().replace("'13:00'", "13:00").replace("'17:00'", "17:00"))
    assert "begin: 13:00" in path.read_text()

    out = io.StringIO()
    call_command("import_practice", str(path), stdout=out)

    assert "Practice happy-smiles: 42 change(s)" in out.getvalue()
    practice = Practice.objects.get(slug="happy-smiles")
    with tenant_context(practice):
        assert WorkingHour.objects.filter(begin=time(13), end=time(17)).count() == 3
    exported = tmp_path / "out.yml"
    call_command("export_practice", "happy-smiles", "-o", str(exported), stderr=io.StringIO())
    assert parse_text(exported.read_text(), "yaml") == supported(doc)
    assert yaml.safe_load(dump_text(supported(doc), "yaml")) == supported(doc)


def test_import_command_prints_a_summary_and_notes(tmp_path):
    path = tmp_path / "bellavista.json"
    path.write_text(json.dumps(demo("bellavista-plastic-surgery")))
    out = io.StringIO()
    call_command("import_practice", str(path), stdout=out)
    text = out.getvalue()
    assert "Practice bellavista: " in text
    assert "appointment_types  3 created, 0 updated, 0 deleted" in text
    assert "phrases            15 created, 0 updated, 0 deleted" in text
    assert "note: baa: version 1, executed" in text
    assert "escalation_protocols 2 created, 0 updated, 0 deleted" in text
    assert "on_call            1 created, 0 updated, 0 deleted" in text
    assert "patient record(s) validated but not stored" in text

    path = tmp_path / "bellavista.json"
    path.write_text(json.dumps(demo("bellavista-plastic-surgery")))
    out = io.StringIO()
    call_command("import_practice", str(path), stdout=out)
    assert out.getvalue().splitlines()[0] == "Practice bellavista: no changes"


def test_import_command_with_an_invalid_file_lists_the_errors(tmp_path):
    doc = demo("happy-smiles")
    doc["appointment_types"][2]["minutes"] = -5
    doc["working_hours"][1]["provider"] = "smyth"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    err = io.StringIO()
    with pytest.raises(CommandError, match=r"2 error\(s\); nothing was imported"):
        call_command("import_practice", str(path), stderr=err)
    assert "appointment_types[2].minutes: must be a positive integer" in err.getvalue()
    assert 'working_hours[1].provider: unknown provider "smyth"' in err.getvalue()
    assert not Practice.objects.filter(slug="happy-smiles").exists()

    err = io.StringIO()
    with pytest.raises(CommandError, match=r"1 error\(s\); nothing was imported"):
        call_command("import_practice", str(tmp_path / "happy.txt"), stderr=err)
    assert "happy.txt: unknown file type (use .json, .yaml or .yml)" in err.getvalue()
    out = io.StringIO()
    call_command("import_practice", str(DEMO_DIR / "happy-smiles.json"), "--check", stdout=out)
    assert "valid" in out.getvalue()
    assert not Practice.objects.filter(slug="happy-smiles").exists()


def test_export_command_writes_json_to_stdout_and_refuses_unknown_practices():
    import_config(demo("bellavista-plastic-surgery"))
    out = io.StringIO()
    call_command("export_practice", "bellavista", stdout=out)
    assert json.loads(out.getvalue()) == supported(demo("bellavista-plastic-surgery"))
    out = io.StringIO()
    call_command("export_practice", "bellavista", "--format", "yaml", stdout=out)
    assert parse_text(out.getvalue(), "yaml") == supported(demo("bellavista-plastic-surgery"))
    with pytest.raises(CommandError, match="no practice with slug 'nope'"):
        call_command("export_practice", "nope")


def test_the_baa_section_is_stored_so_phi_may_flow_once_it_is_in_force():
    from compliance.gate import phi_allowed

    result = import_config(demo("happy-smiles"))
    practice = Practice.objects.get(pk=result.practice_id)
    assert phi_allowed(practice)
    assert any(note.startswith("baa: version") for note in result.notes)
    again = import_config(demo("happy-smiles"))
    assert again.changes == 0


def test_an_invalid_baa_rolls_the_whole_import_back():
    doc = demo("happy-smiles")
    doc["baa"]["signed_by"] = ""
    with pytest.raises(ConfigError):
        import_config(doc)
    assert not Practice.objects.filter(slug="happy-smiles").exists()


# --- lay terms --------------------------------------------------------------------------------


def test_lay_terms_are_stored_on_the_practice_and_reach_the_intent_resolver():
    from scheduling.intents import resolve_intent

    doc = demo("happy-smiles")
    result = import_config(doc)
    practice = Practice.objects.get(pk=result.practice_id)
    assert practice.lay_terms == [{"terms": ["cleaning", "six month visit", "hygiene appointment"]}]
    with tenant_context(practice):
        cleaning = AppointmentType.objects.get(key="cleaning")
        heard = resolve_intent(practice.pk, "it's time for my six month visit", "existing")
    assert heard and heard[0].appointment_type_id == cleaning.pk
    assert any("six month visit" in e for e in heard[0].evidence)

    doc["lay_terms"] = []  # the file is the whole set-up: a section emptied is emptied
    import_config(doc)
    practice.refresh_from_db()
    assert practice.lay_terms == []
    with tenant_context(practice):
        assert resolve_intent(practice, "it's time for my six month visit", "existing") == []
