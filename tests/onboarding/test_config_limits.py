"""Configuration files refused up front: an EHR without a BAA, and files over the size caps."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import CommandError, call_command

from core.tenancy import cross_tenant

pytestmark = pytest.mark.django_db

DEMO = Path(settings.BASE_DIR) / "demo" / "happy-smiles.json"


def demo() -> dict:
    return json.loads(DEMO.read_text())


def row_counts() -> dict[str, int]:
    """Every table's row count: "nothing was written" means all of them are unchanged."""
    with cross_tenant("test: nothing was written anywhere"):
        return {m._meta.label: m._default_manager.count() for m in apps.get_models()}


def write(tmp_path: Path, doc: dict) -> Path:
    path = tmp_path / "practice.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("status", ["draft", "sent", None])
def test_import_practice_refuses_an_ehr_without_an_executed_baa_and_writes_nothing(
    tmp_path, status
):
    doc = demo()
    assert doc["ehr"]["kind"] == "sandbox"
    if status is None:
        doc.pop("baa")
    else:
        doc["baa"] = {"status": status}
    before = row_counts()
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 error\\(s\\); nothing was imported"):
        call_command("import_practice", str(write(tmp_path, doc)), stderr=err)
    assert err.getvalue().strip() == "ehr: connecting an EHR needs an executed BAA"
    assert row_counts() == before
    with pytest.raises(CommandError):
        call_command("import_practice", str(write(tmp_path, doc)), "--check", stderr=err)


def test_a_baa_that_is_no_longer_in_force_does_not_connect_an_ehr(tmp_path):
    doc = demo()
    doc["baa"]["expires_on"] = "2026-01-06"
    before = row_counts()
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("import_practice", str(write(tmp_path, doc)), stderr=err)
    assert "ehr: connecting an EHR needs an executed BAA" in err.getvalue()
    assert row_counts() == before


def test_a_baa_already_in_force_lets_a_file_without_one_connect_the_ehr():
    from accounts.models import Practice
    from onboarding.services import ehr_gate_errors, import_config, parse_config
    from tests.factories import sign_baa

    doc = demo()
    doc.pop("baa")
    doc["ehr"]["kind"] = "none"
    practice = Practice.objects.get(pk=import_config(doc).practice_id)
    doc["ehr"]["kind"] = "sandbox"
    assert ehr_gate_errors(parse_config(doc)) == ["ehr: connecting an EHR needs an executed BAA"]
    sign_baa(practice)
    assert ehr_gate_errors(parse_config(doc)) == []


# --- size caps ------------------------------------------------------------------------------


def no_ehr() -> dict:
    doc = demo()
    doc["ehr"]["kind"] = "none"
    return doc


def test_a_file_that_sets_up_the_ehr_is_not_imported_inside_a_callers_transaction():
    """The EHR set-up makes HTTP calls once the import has committed; inside a caller's own
    transaction that commit would be no commit, so the import refuses before writing anything.
    A file without an EHR may be imported inside one."""
    from django.db import transaction

    from onboarding.services import import_document

    before = row_counts()
    with pytest.raises(RuntimeError, match="durable"), transaction.atomic():
        import_document(demo())
    assert row_counts() == before
    with transaction.atomic():
        outcome = import_document(no_ehr())
    assert outcome.result is not None and not outcome.errors


@pytest.mark.parametrize(
    ("grow", "expected"),
    [
        (
            lambda d: d["appointment_types"][1].update(phrases=[f"phrase {i}" for i in range(51)]),
            "appointment_types[1].phrases: at most 50 entries (this file has 51)",
        ),
        (
            lambda d: d["appointment_types"][0]["phrases"].append("x" * 201),
            "appointment_types[0].phrases[4]: must be at most 200 characters",
        ),
        (
            lambda d: d.update(locations=[{"key": f"l{i}", "name": f"L {i}"} for i in range(51)]),
            "locations: at most 50 entries (this file has 51)",
        ),
        (
            lambda d: d.update(blocks=d["blocks"] * 5001),
            "blocks: at most 5000 entries (this file has 5001)",
        ),
        (
            lambda d: d["appointment_types"].extend(
                {
                    "key": f"t{n}",
                    "name": f"T {n}",
                    "minutes": 30,
                    "phrases": [f"t{n} phrase {i}" for i in range(50)],
                }
                for n in range(20)
            ),
            "appointment_types: at most 1000 phrases in all (this file has 10",
        ),
    ],
)
def test_a_section_over_its_cap_is_refused_by_its_path_and_nothing_is_written(grow, expected):
    from onboarding.services import ConfigError, import_config, validate_config

    doc = no_ehr()
    grow(doc)
    errors = validate_config(doc)
    assert len(errors) == 1 and errors[0].startswith(expected), errors
    before = row_counts()
    with pytest.raises(ConfigError):
        import_config(doc)
    assert row_counts() == before


def test_a_file_over_the_size_cap_is_refused_before_it_is_parsed(tmp_path):
    path = tmp_path / "big.json"
    path.write_text(json.dumps(no_ehr()) + " " * (5 * 1024 * 1024))
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("import_practice", str(path), stderr=err)
    assert "the file is larger than 5 MB" in err.getvalue()


def test_the_json_schema_states_every_cap_and_accepts_the_demo_files():
    from jsonschema import Draft202012Validator

    from onboarding.document_schema import document_schema
    from onboarding.limits import LIMITS

    schema = document_schema()
    Draft202012Validator.check_schema(schema)
    for path in sorted(DEMO.parent.glob("*.json")):
        assert list(Draft202012Validator(schema).iter_errors(json.loads(path.read_text()))) == []
    props = schema["properties"]
    types = props["appointment_types"]
    item = types["items"]["properties"]
    assert schema["x-maxFileBytes"] == LIMITS["file_size"]
    assert types["x-maxTotalPhrases"] == LIMITS["phrases_total"]
    for section in (
        "locations",
        "operatories",
        "providers",
        "appointment_types",
        "working_hours",
        "blocks",
        "appointments",
        "provider_rules",
        "escalation_protocols",
        "on_call",
    ):
        assert props[section]["maxItems"] == LIMITS[section], section
    assert item["phrases"]["maxItems"] == LIMITS["phrases_per_type"]
    assert item["phrases"]["items"]["maxLength"] == LIMITS["phrase_length"]
    assert item["descriptors"]["maxItems"] == LIMITS["descriptors_per_type"]
    assert item["providers"]["maxItems"] == LIMITS["providers_per_type"]
    assert item["instructions"]["anyOf"][0]["maxLength"] == LIMITS["instructions_length"]
    assert item["name"]["maxLength"] == LIMITS["name_length"]
    ops = props["operatories"]["items"]["properties"]
    assert ops["capabilities"]["maxItems"] == LIMITS["capabilities"]
    protocol = props["escalation_protocols"]["items"]["properties"]
    assert protocol["triggers"]["maxItems"] == LIMITS["triggers_per_protocol"]


def test_the_docs_table_of_caps_is_the_codes():
    from onboarding.limits import CAPS

    text = (Path(settings.BASE_DIR) / "docs" / "practice-config.md").read_text()
    rows = []
    for line in text.splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) == 4:
            rows.append((cells[0], cells[1], int(cells[2].replace(",", "")), cells[3]))
    assert rows == [(c.name, c.path, c.limit, c.unit) for c in CAPS]


def test_config_schema_prints_the_schema():
    from onboarding.document_schema import document_schema

    out = io.StringIO()
    call_command("config_schema", stdout=out)
    assert json.loads(out.getvalue()) == document_schema()
